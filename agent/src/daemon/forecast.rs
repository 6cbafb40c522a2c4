//! The box's traffic forecast: taught by the event writer from every camera window's totals,
//! kept in the state directory (`forecast.json` beside the outbox's segments, written
//! atomically when an hour was learned, so it survives restarts), published hourly per camera
//! through the outbox (retained topic), and read by the cameras' alerts for their bands.
//! A missing or unreadable file starts a fresh history (logged), never a failure.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use vitrine_config::CalendarDay;
use vitrine_config::Config;
use vitrine_signals::forecast::{Calendar, ForecastBook, ForecastEvent, Measure};

use crate::clock::StoreClock;
use crate::pipeline::{SharedForecast, WindowOut};

pub const FILE: &str = "forecast.json";

pub struct Forecaster {
    pub book: SharedForecast,
    pub clock: StoreClock,
    path: PathBuf,
    /// Sources whose forecast was published since start, with the local hour it was for.
    published: std::collections::HashMap<String, i64>,
    /// The named days in effect (the configuration's `[[calendar]]`, again after a reload).
    calendar: Vec<CalendarDay>,
}

impl Forecaster {
    pub fn open(cfg: &Config) -> Forecaster {
        let path = cfg.outbox.dir.join(FILE);
        let mut book = read_history(&path);
        let keep = configured(cfg);
        book.retain(|k| keep.iter().any(|p| k.starts_with(p.as_str())));
        book.set_calendar(Calendar::new(&cfg.calendar));
        Forecaster {
            book: Arc::new(Mutex::new(book)),
            clock: StoreClock::new(cfg.device.timezone.as_deref()),
            path,
            published: Default::default(),
            calendar: cfg.calendar.clone(),
        }
    }

    /// Teach the forecast a camera window (under the configuration in effect, `cfg`); true
    /// when its forecast is due (an hour was learned, or none was published for the source
    /// since start).
    pub fn learn(&mut self, cfg: &Config, w: &WindowOut) -> bool {
        if self.calendar != cfg.calendar {
            self.calendar.clone_from(&cfg.calendar);
            let mut b = self.book.lock().unwrap_or_else(|p| p.into_inner());
            b.set_calendar(Calendar::new(&cfg.calendar));
        }
        let Some(t) = &w.totals else {
            return false;
        };
        let hour = self.clock.local_hour(w.start_ms);
        let mut learned = false;
        {
            let mut b = self.book.lock().unwrap_or_else(|p| p.into_inner());
            let src = &w.source_id;
            for (id, n) in &t.lines {
                learned |= b.add(
                    src,
                    id,
                    Measure::Crossings,
                    hour,
                    f64::from(*n),
                    t.covered_ms,
                );
            }
            for (id, visits, person_s) in &t.zones {
                learned |= b.add(
                    src,
                    id,
                    Measure::Visits,
                    hour,
                    f64::from(*visits),
                    t.covered_ms,
                );
                learned |= b.add(
                    src,
                    id,
                    Measure::PersonSeconds,
                    hour,
                    *person_s,
                    t.covered_ms,
                );
            }
        }
        if learned {
            if let Err(e) = self.write_history() {
                tracing::warn!(file = %self.path.display(), error = %e, "forecast history not saved");
            }
        }
        let due = self.published.get(&w.source_id) != Some(&hour.index);
        learned || due
    }

    /// The forecast event of the source of `w`, given its seq; `None` while there is no
    /// history for it.
    pub fn event(
        &mut self,
        cfg: &Config,
        w: &WindowOut,
    ) -> Option<impl FnOnce(u64) -> ForecastEvent> {
        let t = w.totals.as_ref()?;
        let hour = self.clock.local_hour(w.end_ms.saturating_sub(1));
        let lines: Vec<String> = t.lines.iter().map(|(id, _)| id.clone()).collect();
        let zones: Vec<String> = t.zones.iter().map(|(id, ..)| id.clone()).collect();
        let (lf, zf) = self
            .book
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .camera_outlook(&w.source_id, &lines, &zones, hour, cfg.privacy.k_min)?;
        self.published.insert(w.source_id.clone(), hour.index);
        let from = self.clock.next_hour_ms(w.end_ms.saturating_sub(1));
        let (cfg, source, tz) = (
            cfg.clone(),
            w.source_id.clone(),
            self.clock.name().to_string(),
        );
        Some(move |seq| {
            let meta = vitrine_signals::event::EventMeta::of(&cfg, &source);
            ForecastEvent::new(&meta, seq, from, &tz, lf, zf)
        })
    }

    /// Write the history atomically: a temporary file, fsync, rename.
    fn write_history(&self) -> std::io::Result<()> {
        use std::io::Write;
        let bytes = {
            let b = self.book.lock().unwrap_or_else(|p| p.into_inner());
            serde_json::to_vec(&*b).map_err(std::io::Error::other)?
        };
        let tmp = self.path.with_extension("json.tmp");
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &self.path)
    }
}

/// Where the uplink hands a chain prior (`remote::prior`): verified with the key the current
/// configuration pins for remote configuration (a new key applies at once, as for requests),
/// taken into the forecast book when newer than the one held (saved with the history at its
/// next hour; the broker retains the prior meanwhile). Nothing here touches the disk: it runs
/// on the uplink's task, and the book is locked only to read its version and to take the prior.
pub fn prior_sink(
    current: Arc<std::sync::RwLock<Config>>,
    book: SharedForecast,
) -> crate::uplink::PriorSink {
    Arc::new(move |payload: &[u8]| {
        let key = {
            let c = current.read().unwrap_or_else(|p| p.into_inner());
            c.remote_config.as_ref().map(|r| r.public_key)
        };
        let Some(key) = key else {
            return;
        };
        let lock = || book.lock().unwrap_or_else(|p| p.into_inner());
        let held = lock().chain_version();
        match crate::remote::prior::verify(payload, &key, held) {
            Ok(c) => {
                let (version, n) = (c.version, c.priors.len());
                if lock().set_chain(c) {
                    tracing::info!(
                        version,
                        priors = n,
                        "chain prior taken: footfall forecasts blend it in"
                    );
                } else {
                    tracing::debug!(version, "chain prior already held");
                }
            }
            Err(reason) => tracing::warn!(%reason, "chain prior refused"),
        }
    })
}

/// The box's side of the chain prior's rounds (`[remote_config] federated`): its key from the
/// state directory (made on first use), its update from the forecast book. `None` when off, or
/// when the key cannot be read or made (logged: the box then only takes the published prior).
pub fn federation(cfg: &Config, book: SharedForecast) -> Option<crate::uplink::Federation> {
    if !cfg.remote_config.as_ref().is_some_and(|r| r.federated) {
        return None;
    }
    let secret = match crate::federate::load_or_create(&cfg.outbox.dir) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "federation key unusable: this box sits the chain prior's rounds out");
            return None;
        }
    };
    let me = Arc::new(Mutex::new(crate::federate::Federate::new(
        secret,
        &cfg.device.store_id,
        &cfg.device.id,
    )));
    let key = me.lock().unwrap_or_else(|p| p.into_inner()).key_message();
    let answer = |result: Result<Option<Vec<u8>>, String>, what: &'static str| match result {
        Ok(reply) => {
            if reply.is_some() {
                tracing::info!("chain prior round: {what} sent");
            }
            reply
        }
        Err(reason) => {
            tracing::warn!(%reason, "chain prior round: no {what}");
            None
        }
    };
    let (m1, m2) = (me.clone(), me);
    Some(crate::uplink::Federation {
        key,
        on_round: Arc::new(move |payload: &[u8]| {
            let update = book.lock().unwrap_or_else(|p| p.into_inner()).update();
            let r = m1
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .on_round(payload, update);
            answer(r, "masked update")
        }),
        on_missing: Arc::new(move |payload: &[u8]| {
            let r = m2
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .on_missing(payload);
            answer(r, "reveal")
        }),
    })
}

/// The saved history; none (a first start) or an unreadable one (logged) is a fresh start.
fn read_history(path: &std::path::Path) -> ForecastBook {
    let read = std::fs::read(path)
        .map_err(|e| e.to_string())
        .and_then(|b| serde_json::from_slice::<ForecastBook>(&b).map_err(|e| e.to_string()));
    match read {
        Ok(book) => book,
        Err(_) if !path.exists() => ForecastBook::default(),
        Err(e) => {
            tracing::warn!(file = %path.display(), error = %e, "forecast history unreadable: starting afresh");
            ForecastBook::default()
        }
    }
}

/// Key prefixes of the series the configuration still has (others are dropped on load).
fn configured(cfg: &Config) -> Vec<String> {
    let mut v = Vec::new();
    for c in &cfg.cameras {
        for l in &c.lines {
            v.push(format!("{}/{}/", c.id, l.id));
        }
        for z in &c.zones {
            v.push(format!("{}/{}/", c.id, z.id));
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::WindowOut;
    use vitrine_signals::scene::WindowTotals;

    fn config(dir: &std::path::Path) -> Config {
        config_with(dir, "")
    }

    fn config_with(dir: &std::path::Path, more: &str) -> Config {
        let text = format!(
            "[device]\nid = \"d\"\nstore_id = \"s\"\ntimezone = \"UTC\"\n[[cameras]]\nid = \"door\"\ndevice = \"/dev/video0\"\n[[cameras.lines]]\nid = \"in\"\nfrom = [0.5, 0.0]\nto = [0.5, 1.0]\nin = \"left\"\n[outbox]\ndir = \"{}\"\n{more}",
            dir.display()
        );
        Config::parse(&text, &dir.join("agent.toml")).expect("config")
    }

    fn window(start_ms: u64, crossings: u32) -> WindowOut {
        WindowOut {
            source_id: "door".into(),
            start_ms,
            end_ms: start_ms + 60_000,
            body: vitrine_signals::Body::Microphone(vitrine_signals::event::AudioBody {
                coverage: vitrine_signals::event::Coverage::audio(60.0, 0.0, 60.0),
                speech_ratio: None,
                speech_seconds: 0.0,
                level_dbfs: None,
                sounds: None,
            }),
            totals: Some(WindowTotals {
                covered_ms: 60_000,
                lines: vec![("in".into(), crossings)],
                zones: vec![],
            }),
        }
    }

    #[test]
    fn an_unreadable_history_starts_afresh_and_a_learned_hour_is_kept_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path());
        std::fs::write(dir.path().join(FILE), b"{ not json").unwrap();
        let mut f = Forecaster::open(&cfg);
        assert!(f.book.lock().unwrap().is_empty());
        let hour = 1_795_950_000_000 / 3_600_000 * 3_600_000;
        for m in 0..60 {
            f.learn(&cfg, &window(hour + m * 60_000, 2));
        }
        // The next hour's first window: the hour is learned, saved, and a forecast is due.
        assert!(f.learn(&cfg, &window(hour + 3_600_000, 0)));
        let again = Forecaster::open(&cfg);
        let book = again.book.lock().unwrap();
        let at = again.clock.local_hour(hour + 7 * 24 * 3_600_000);
        assert_eq!(
            book.forecast("door", "in", Measure::Crossings, at),
            Some(120.0)
        );
    }

    #[test]
    fn a_calendar_given_by_a_reload_names_the_days_learned_from_then_on() {
        let dir = tempfile::tempdir().unwrap();
        let hour = 1_795_950_000_000 / 3_600_000 * 3_600_000;
        let date = jiff::Timestamp::from_millisecond(hour as i64)
            .unwrap()
            .to_zoned(jiff::tz::TimeZone::UTC)
            .date();
        let mut f = Forecaster::open(&config(dir.path()));
        let named = config_with(
            dir.path(),
            &format!("[[calendar]]\ndate = \"{date}\"\nname = \"labour-day\"\n"),
        );
        for m in 0..=60 {
            f.learn(&named, &window(hour + m * 60_000, 2));
        }
        let saved = std::fs::read_to_string(dir.path().join(FILE)).unwrap();
        assert!(saved.contains("\"named\":{\"labour-day\""), "{saved}");
    }
}
