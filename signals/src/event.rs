//! The published payload: one JSON document per source per window. Schema:
//! `signals/schema/window-event.v1.json` (tests validate emitted payloads against it).
//!
//! Only aggregates: counts, means, distributions over the window. No track id, no box, no
//! timestamp finer than the window, no pixel or sample.

use serde::{Deserialize, Serialize};

pub const SCHEMA: &str = "vitrine.window.v1";

/// Apply k-anonymity: a count in `1..k_min` becomes `None` (published as null).
pub fn suppress(count: u32, k_min: u32) -> Option<u32> {
    if count > 0 && count < k_min {
        None
    } else {
        Some(count)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CoverageStatus {
    /// At least 90 % of the window had input.
    Ok,
    /// Input for part of the window only.
    Partial,
    /// No input at all: counts are unknown, not zero.
    Blind,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Coverage {
    pub status: CoverageStatus,
    /// Camera: frames the configured fps asks for in this window.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frames_expected: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frames_analysed: Option<u64>,
    /// Frames received but skipped because analysis was behind.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frames_dropped: Option<u64>,
    /// Microphone: seconds of audio analysed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seconds_analysed: Option<f64>,
    /// Seconds of the window with no input from the source at all.
    pub seconds_blind: f64,
}

impl Coverage {
    pub fn frames(
        window_secs: f64,
        expected: u64,
        analysed: u64,
        dropped: u64,
        seconds_blind: f64,
    ) -> Coverage {
        let status = status(analysed + dropped == 0, seconds_blind, window_secs);
        Coverage {
            status,
            frames_expected: Some(expected),
            frames_analysed: Some(analysed),
            frames_dropped: Some(dropped),
            seconds_analysed: None,
            seconds_blind: round3(seconds_blind),
        }
    }

    pub fn audio(window_secs: f64, seconds_analysed: f64, seconds_blind: f64) -> Coverage {
        Coverage {
            status: status(seconds_analysed <= 0.0, seconds_blind, window_secs),
            frames_expected: None,
            frames_analysed: None,
            frames_dropped: None,
            seconds_analysed: Some(round3(seconds_analysed)),
            seconds_blind: round3(seconds_blind),
        }
    }
}

/// Blind: no input at all. Partial: more than a tenth of the window without input.
fn status(nothing: bool, blind: f64, window_secs: f64) -> CoverageStatus {
    if nothing {
        CoverageStatus::Blind
    } else if blind > 0.1 * window_secs {
        CoverageStatus::Partial
    } else {
        CoverageStatus::Ok
    }
}

pub fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DwellStats {
    /// Visits that ended in this window.
    pub count: u32,
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub max: f64,
}

impl DwellStats {
    /// Distribution of dwell times (ms in, seconds out); `None` when no visit ended.
    pub fn from_ms(dwell_ms: &mut [u64]) -> Option<DwellStats> {
        if dwell_ms.is_empty() {
            return None;
        }
        dwell_ms.sort_unstable();
        let n = dwell_ms.len();
        let q = |f: f64| dwell_ms[((n as f64 - 1.0) * f).round() as usize] as f64 / 1000.0;
        Some(DwellStats {
            count: n as u32,
            mean: round3(dwell_ms.iter().sum::<u64>() as f64 / n as f64 / 1000.0),
            p50: q(0.5),
            p90: q(0.9),
            max: dwell_ms[n - 1] as f64 / 1000.0,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AreaStats {
    pub id: String,
    /// Mean number of people inside per analysed frame.
    pub occupancy_mean: Option<f64>,
    pub occupancy_max: Option<u32>,
    /// Visits that started in this window.
    pub visits: Option<u32>,
    /// Dwell of the visits that ended in this window.
    pub dwell_seconds: Option<DwellStats>,
    /// Whether k-anonymity suppressed any figure of this area.
    pub suppressed: bool,
    /// Displays only, when attention runs (a face and a head-pose model are loaded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attention: Option<AttentionStats>,
}

/// Attention to a display over the window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttentionStats {
    /// People seen in the display's viewing area.
    pub passers: Option<u32>,
    /// Of them, people whose head pointed at the display at least once.
    pub lookers: Option<u32>,
    /// Looking time per looker within this window.
    pub looking_seconds: Option<DwellStats>,
    pub suppressed: bool,
    /// Opt-in (`expressions = true` on the display): the lookers' dominant expressions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expressions: Option<ExpressionStats>,
}

/// Of a window's lookers at a display, how many had each dominant facial expression while
/// looking, and how many could not be read. Counts only, each k-suppressed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExpressionStats {
    pub neutral: Option<u32>,
    pub happy: Option<u32>,
    pub surprise: Option<u32>,
    pub sad: Option<u32>,
    pub angry: Option<u32>,
    pub fear: Option<u32>,
    pub disgust: Option<u32>,
    /// Lookers whose face was never large enough to read while they looked.
    pub unread: Option<u32>,
    /// At least one count above was suppressed (k-anonymity).
    pub suppressed: bool,
}

impl AreaStats {
    pub fn new(
        id: String,
        occupancy_mean: Option<f64>,
        occupancy_max: u32,
        visits: u32,
        dwell: Option<DwellStats>,
        k_min: u32,
    ) -> AreaStats {
        let max = suppress(occupancy_max, k_min);
        let v = suppress(visits, k_min);
        let dwell_ok = dwell
            .as_ref()
            .map(|d| suppress(d.count, k_min).is_some())
            .unwrap_or(true);
        AreaStats {
            id,
            occupancy_mean: if max.is_some() {
                occupancy_mean.map(round3)
            } else {
                None
            },
            occupancy_max: max,
            visits: v,
            dwell_seconds: if dwell_ok { dwell } else { None },
            suppressed: max.is_none() || v.is_none() || !dwell_ok,
            attention: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LineStats {
    pub id: String,
    pub r#in: Option<u32>,
    pub out: Option<u32>,
    /// Parties that crossed in together (`scene::group`); a group counts in the window of its
    /// first member. k-suppressed like the people (null); absent in events from agents before
    /// 2026-12 (read as null).
    #[serde(default)]
    pub groups_in: Option<u32>,
    #[serde(default)]
    pub groups_out: Option<u32>,
    pub suppressed: bool,
}

impl LineStats {
    /// People `(in, out)` and groups `(in, out)`, each k-suppressed.
    pub fn new(id: String, people: (u32, u32), groups: (u32, u32), k_min: u32) -> LineStats {
        let (i, o) = (suppress(people.0, k_min), suppress(people.1, k_min));
        let (gi, go) = (suppress(groups.0, k_min), suppress(groups.1, k_min));
        LineStats {
            id,
            r#in: i,
            out: o,
            groups_in: gi,
            groups_out: go,
            suppressed: i.is_none() || o.is_none(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeopleStats {
    /// Mean number of people in view per analysed frame (null when blind or suppressed).
    pub mean: Option<f64>,
    pub max: Option<u32>,
    pub suppressed: bool,
}

impl PeopleStats {
    pub fn new(mean: Option<f64>, max: u32, k_min: u32) -> PeopleStats {
        let blind = mean.is_none();
        let m = if blind { None } else { suppress(max, k_min) };
        PeopleStats {
            mean: if m.is_some() { mean.map(round3) } else { None },
            max: m,
            suppressed: !blind && m.is_none(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CameraBody {
    pub coverage: Coverage,
    pub people: PeopleStats,
    pub zones: Vec<AreaStats>,
    pub lines: Vec<LineStats>,
    pub displays: Vec<AreaStats>,
    /// Configured queues (`[[cameras.queues]]`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub queues: Vec<QueueStats>,
    /// Configured heatmap (`[cameras.heatmap]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heatmap: Option<HeatmapStats>,
    /// Configured funnel (`[cameras.funnel]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub funnel: Option<FunnelStats>,
    /// Staff movements, where the camera has a staff rule (`[cameras.staff]`): staff are in
    /// none of the other counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub staff: Option<StaffStats>,
}

/// Staff over the window (`scene::staff`): counts only, k-suppressed (null).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StaffStats {
    /// Different staff tracks seen (someone lost from view and found again may count twice).
    pub people: Option<u32>,
    /// Staff crossings of each of the camera's lines.
    pub lines: Vec<StaffLineStats>,
    pub suppressed: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StaffLineStats {
    pub id: String,
    pub r#in: Option<u32>,
    pub out: Option<u32>,
}

/// A waiting line over the window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueStats {
    pub id: String,
    /// People in the waiting area per analysed frame.
    pub length_mean: Option<f64>,
    pub length_max: Option<u32>,
    /// People who reached the service point from the queue in this window.
    pub served: Option<u32>,
    /// Their waits, from joining the queue to reaching the service point.
    pub wait_seconds: Option<DwellStats>,
    /// People who waited at least `abandon_secs` and left unserved.
    pub abandoned: Option<u32>,
    pub suppressed: bool,
}

/// Person-seconds per cell of a `cols` x `rows` grid over the image, row by row from the top
/// left; a cell fewer than `k_min` different people stood in is null.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeatmapStats {
    pub cols: u32,
    pub rows: u32,
    pub person_seconds: Vec<Option<f64>>,
    pub suppressed_cells: u32,
}

/// People reaching each stage of the funnel in this window (each stage only after the earlier
/// ones).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunnelStats {
    pub passed: Option<u32>,
    pub entered: Option<u32>,
    pub engaged: Option<u32>,
    pub checkout: Option<u32>,
    pub suppressed: bool,
}

/// Expected values of one series: the next hours, and the rest of the local day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesForecast {
    pub next_hours: Vec<Option<f64>>,
    pub rest_of_today: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LineForecast {
    pub id: String,
    /// Crossings per hour, both directions.
    pub crossings: SeriesForecast,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ZoneForecast {
    pub id: String,
    /// Visits starting per hour.
    pub visits: SeriesForecast,
    /// Mean people inside per hour (no day total).
    pub occupancy: SeriesForecast,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Level {
    /// Energy mean over the window (Leq), dBFS.
    pub mean: f64,
    /// Loudest 32 ms block, dBFS.
    pub max: f64,
    /// Quietest 32 ms block, dBFS (the floor).
    pub min: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AudioBody {
    pub coverage: Coverage,
    /// Fraction of analysed audio classified as speech (0..1).
    pub speech_ratio: Option<f64>,
    pub speech_seconds: f64,
    pub level_dbfs: Option<Level>,
    /// Share of classified time per sound category (when a classifier runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sounds: Option<SoundShares>,
}

/// Fractions (0..1) of the window's classified audio per content-free category; null when
/// nothing was classified.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SoundShares {
    pub speech: Option<f64>,
    pub music: Option<f64>,
    pub crowd: Option<f64>,
    pub silence: Option<f64>,
    pub other: Option<f64>,
}

impl SoundShares {
    /// From seconds per category (speech, music, crowd, silence, other).
    pub fn from_seconds(s: [f64; 5]) -> SoundShares {
        let total: f64 = s.iter().sum();
        let f = |x: f64| (total > 0.0).then(|| round3(x / total));
        SoundShares {
            speech: f(s[0]),
            music: f(s[1]),
            crowd: f(s[2]),
            silence: f(s[3]),
            other: f(s[4]),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Body {
    Camera(CameraBody),
    Microphone(AudioBody),
}

impl Body {
    pub fn coverage(&self) -> &Coverage {
        match self {
            Body::Camera(c) => &c.coverage,
            Body::Microphone(a) => &a.coverage,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Window {
    /// RFC 3339, UTC, whole seconds.
    pub start: String,
    pub end: String,
    pub seconds: u32,
}

/// One published event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowEvent {
    pub schema: String,
    pub device_id: String,
    pub store_id: String,
    pub source_id: String,
    /// Per-device sequence number, strictly increasing across restarts.
    pub seq: u64,
    /// `store/device/source/window-start-ms/seq`: the same event always carries the same key
    /// (it is stored and redelivered verbatim), two events never share one (a restart in the
    /// middle of a window yields two partial windows with different keys). Delivery is at
    /// least once: the central service deduplicates on this key.
    pub idempotency_key: String,
    pub window: Window,
    pub k_min: u32,
    #[serde(flatten)]
    pub body: Body,
}

/// RFC 3339 (UTC, seconds) for a Unix time in milliseconds. Pure arithmetic: no clock is read.
pub fn rfc3339(ms: u64) -> String {
    let secs = ms / 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

pub struct EventMeta<'a> {
    pub device_id: &'a str,
    pub store_id: &'a str,
    pub source_id: &'a str,
    pub k_min: u32,
}

impl<'a> EventMeta<'a> {
    /// The envelope of an event of `source_id` on the device configured by `cfg`.
    pub fn of(cfg: &'a vitrine_config::Config, source_id: &'a str) -> EventMeta<'a> {
        EventMeta {
            device_id: &cfg.device.id,
            store_id: &cfg.device.store_id,
            source_id,
            k_min: cfg.privacy.k_min,
        }
    }
}

impl WindowEvent {
    pub fn new(
        meta: &EventMeta<'_>,
        seq: u64,
        start_ms: u64,
        end_ms: u64,
        body: Body,
    ) -> WindowEvent {
        WindowEvent {
            schema: SCHEMA.to_string(),
            device_id: meta.device_id.to_string(),
            store_id: meta.store_id.to_string(),
            source_id: meta.source_id.to_string(),
            seq,
            idempotency_key: format!(
                "{}/{}/{}/{}/{}",
                meta.store_id, meta.device_id, meta.source_id, start_ms, seq
            ),
            window: Window {
                start: rfc3339(start_ms),
                end: rfc3339(end_ms),
                seconds: ((end_ms - start_ms) / 1000) as u32,
            },
            k_min: meta.k_min,
            body,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_known_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_795_953_600_000), "2026-11-29T12:00:00Z");
    }

    #[test]
    fn suppression_keeps_zero_and_large_counts() {
        assert_eq!(suppress(0, 5), Some(0));
        assert_eq!(suppress(4, 5), None);
        assert_eq!(suppress(5, 5), Some(5));
        assert_eq!(suppress(1, 0), Some(1));
    }

    #[test]
    fn dwell_quantiles() {
        let mut v = vec![1000, 2000, 3000, 4000, 10000];
        let d = DwellStats::from_ms(&mut v).unwrap();
        assert_eq!((d.count, d.p50, d.max), (5, 3.0, 10.0));
        assert_eq!(d.mean, 4.0);
    }
}

#[cfg(test)]
mod schema_tests {
    use super::*;

    fn validator() -> jsonschema::Validator {
        let text = include_str!("../schema/window-event.v1.json");
        jsonschema::validator_for(&serde_json::from_str(text).unwrap()).unwrap()
    }

    fn meta() -> EventMeta<'static> {
        EventMeta {
            device_id: "box-1",
            store_id: "store.42",
            source_id: "door_cam",
            k_min: 5,
        }
    }

    fn check(ev: &WindowEvent) {
        let v = serde_json::to_value(ev).unwrap();
        let errors: Vec<String> = validator()
            .iter_errors(&v)
            .map(|e| format!("{e} at {}", e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{errors:?}\n{v}");
    }

    #[test]
    fn every_body_shape_matches_the_published_schema() {
        let camera = |blind: bool, k: u32| CameraBody {
            coverage: Coverage::frames(
                60.0,
                300,
                if blind { 0 } else { 290 },
                3,
                if blind { 60.0 } else { 1.5 },
            ),
            people: PeopleStats::new(if blind { None } else { Some(2.5) }, 4, k),
            zones: vec![AreaStats::new(
                "promo".into(),
                Some(1.2),
                3,
                2,
                DwellStats::from_ms(&mut [1500, 2500]),
                k,
            )],
            lines: vec![LineStats::new("door".into(), (7, 2), (5, 2), k)],
            displays: vec![
                AreaStats::new("window".into(), None, 0, 0, None, k),
                AreaStats {
                    attention: Some(AttentionStats {
                        passers: suppress(9, k),
                        lookers: suppress(6, k),
                        looking_seconds: DwellStats::from_ms(&mut [400, 2500, 900]),
                        suppressed: false,
                        expressions: Some(ExpressionStats {
                            neutral: suppress(3, k),
                            happy: suppress(2, k),
                            unread: suppress(1, k),
                            suppressed: true,
                            ..ExpressionStats::default()
                        }),
                    }),
                    ..AreaStats::new("shelf".into(), Some(0.4), 2, 9, None, k)
                },
            ],
            queues: vec![QueueStats {
                id: "till".into(),
                length_mean: Some(2.5),
                length_max: suppress(6, k),
                served: suppress(7, k),
                wait_seconds: DwellStats::from_ms(&mut [30_000, 95_000, 60_000]),
                abandoned: suppress(1, k),
                suppressed: k > 1,
            }],
            heatmap: Some(HeatmapStats {
                cols: 2,
                rows: 2,
                person_seconds: vec![Some(12.5), None, Some(0.0), Some(3.25)],
                suppressed_cells: 1,
            }),
            funnel: Some(FunnelStats {
                passed: suppress(40, k),
                entered: suppress(12, k),
                engaged: suppress(6, k),
                checkout: suppress(2, k),
                suppressed: k > 2,
            }),
            staff: Some(StaffStats {
                people: suppress(3, k),
                lines: vec![StaffLineStats {
                    id: "door".into(),
                    r#in: suppress(2, k),
                    out: suppress(0, k),
                }],
                suppressed: k > 2,
            }),
        };
        for (blind, k) in [(false, 0), (false, 5), (true, 5)] {
            check(&WindowEvent::new(
                &meta(),
                7,
                1_795_946_400_000,
                1_795_946_460_000,
                Body::Camera(camera(blind, k)),
            ));
        }
        let audio = AudioBody {
            coverage: Coverage::audio(60.0, 60.0, 0.0),
            speech_ratio: Some(0.25),
            speech_seconds: 15.0,
            level_dbfs: Some(Level {
                mean: -32.0,
                max: -10.0,
                min: -60.0,
            }),
            sounds: Some(SoundShares::from_seconds([6.0, 1.0, 1.0, 2.0, 0.0])),
        };
        check(&WindowEvent::new(
            &meta(),
            8,
            0,
            60_000,
            Body::Microphone(audio),
        ));
        let silent = AudioBody {
            coverage: Coverage::audio(60.0, 0.0, 60.0),
            speech_ratio: None,
            speech_seconds: 0.0,
            level_dbfs: None,
            sounds: None,
        };
        check(&WindowEvent::new(
            &meta(),
            9,
            0,
            60_000,
            Body::Microphone(silent),
        ));
    }

    #[test]
    fn the_schema_rejects_a_smuggled_box() {
        let body = Body::Camera(CameraBody {
            coverage: Coverage::frames(60.0, 300, 300, 0, 0.0),
            people: PeopleStats::new(Some(1.0), 1, 0),
            zones: vec![],
            lines: vec![],
            displays: vec![],
            queues: vec![],
            heatmap: None,
            funnel: None,
            staff: None,
        });
        let mut v = serde_json::to_value(WindowEvent::new(&meta(), 1, 0, 60_000, body)).unwrap();
        v["people"]["bbox"] = serde_json::json!([0.1, 0.2, 0.3, 0.4]);
        assert!(!validator().is_valid(&v));
        v["people"].as_object_mut().unwrap().remove("bbox");
        v["seq"] = serde_json::json!("7");
        assert!(!validator().is_valid(&v), "numbers as strings are invalid");
    }
}
