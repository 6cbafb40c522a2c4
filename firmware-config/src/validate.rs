//! Raw → typed, collecting every problem.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

use crate::calendar;
use crate::error::{closest, Collector, Problem};
use crate::item::{check_id, item};
use crate::occupancy;
use crate::raw::*;
use crate::*;

const CAMERA_KEYS: &[&str] = &[
    "id",
    "file",
    "device",
    "rtsp",
    "format",
    "transport",
    "decoder",
    "fps",
    "width",
    "height",
    "detect_every",
    "detect_every_near",
    "motion_gating",
    "input_size",
    "zones",
    "lines",
    "displays",
    "queues",
    "heatmap",
    "funnel",
    "alerts",
    "staff",
];
const AREA_KEYS: &[&str] = &["id", "polygon"];
const DISPLAY_KEYS: &[&str] = &[
    "id",
    "polygon",
    "gaze_yaw",
    "gaze_pitch",
    "gaze_tolerance",
    "expressions",
    "expressions_min_face_px",
];
const LINE_KEYS: &[&str] = &["id", "from", "to", "in"];
const MIC_KEYS: &[&str] = &["id", "file", "device"];
const DEVICE_KEYS: &[&str] = &["id", "store_id", "timezone"];
const MODELS_KEYS: &[&str] = &[
    "dir",
    "detector",
    "detector_threshold",
    "nms_iou",
    "input_size",
    "vad",
    "vad_threshold",
    "precision",
    "faces",
    "head_pose",
    "audio_events",
];
const MQTT_KEYS: &[&str] = &[
    "url",
    "client_id",
    "topic_prefix",
    "qos",
    "keep_alive_secs",
    "health_secs",
    "tls",
];
const TLS_KEYS: &[&str] = &["ca", "cert", "key"];
const PRIVACY_KEYS: &[&str] = &["window_secs", "k_min"];
const OUTBOX_KEYS: &[&str] = &["dir", "max_mb", "reserve_mb"];
const STATUS_KEYS: &[&str] = &["metrics", "display", "display_secs"];

/// `$CREDENTIALS_DIRECTORY/name` (or `${CREDENTIALS_DIRECTORY}/name`): a credential systemd
/// passed with `LoadCredential=`; the directory exists only for the service's processes.
fn credential(p: &str) -> Result<String, ()> {
    for var in ["${CREDENTIALS_DIRECTORY}", "$CREDENTIALS_DIRECTORY"] {
        if let Some(rest) = p.strip_prefix(var) {
            let dir = std::env::var("CREDENTIALS_DIRECTORY").map_err(|_| ())?;
            return Ok(format!("{dir}{rest}"));
        }
    }
    Ok(p.to_string())
}

fn resolve(base: &Path, p: &str) -> PathBuf {
    let p = Path::new(p);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

fn point(c: &mut Collector, field: &str, xy: &[f64]) -> Option<Point> {
    if xy.len() != 2 {
        c.push(
            field,
            format!("a point needs 2 numbers [x, y], got {}", xy.len()),
            Some("write points as [x, y] with 0 <= x, y <= 1".to_string()),
        );
        return None;
    }
    let (x, y) = (xy[0], xy[1]);
    if !(0.0..=1.0).contains(&x) || !(0.0..=1.0).contains(&y) || x.is_nan() || y.is_nan() {
        c.push(
            field,
            format!("point [{x}, {y}] is outside the image"),
            Some(
                "coordinates are normalized: 0 is the left/top edge, 1 the right/bottom edge"
                    .to_string(),
            ),
        );
        return None;
    }
    Some(Point {
        x: x as f32,
        y: y as f32,
    })
}

fn polygon_area(p: &[Point]) -> f32 {
    let n = p.len();
    (0..n)
        .map(|i| {
            let (a, b) = (p[i], p[(i + 1) % n]);
            a.x * b.y - b.x * a.y
        })
        .sum::<f32>()
        .abs()
        / 2.0
}

pub(crate) fn area(c: &mut Collector, at: &str, v: toml::Value) -> Option<Area> {
    let raw: RawArea = item(c, at, v, AREA_KEYS)?;
    polygon_area_of(c, at, raw.id, raw.polygon)
}

fn display(c: &mut Collector, at: &str, v: toml::Value) -> Option<DisplayArea> {
    let raw: RawDisplay = item(c, at, v, DISPLAY_KEYS)?;
    let mut angle = |key: &str, v: Option<f64>, default: f64, lo: f64, hi: f64, hint: &str| {
        let x = v.unwrap_or(default);
        if !(lo..=hi).contains(&x) {
            c.push(
                format!("{at}.{key}"),
                format!("{x} degrees is outside {lo}..{hi}"),
                Some(hint.to_string()),
            );
        }
        x as f32
    };
    let gaze_yaw = angle(
        "gaze_yaw",
        raw.gaze_yaw,
        0.0,
        -90.0,
        90.0,
        "the display's direction as seen from the camera, -90..90 (0: the camera is on the display)",
    );
    let gaze_pitch = angle(
        "gaze_pitch",
        raw.gaze_pitch,
        0.0,
        -90.0,
        90.0,
        "the display's direction as seen from the camera, -90..90 (0: the camera is on the display)",
    );
    let gaze_tolerance = angle(
        "gaze_tolerance",
        raw.gaze_tolerance,
        22.5,
        1.0,
        90.0,
        "how far a head may turn away and still look at the display, 1..90 (22.5 is the usual)",
    );
    let expressions_min_face_px = expression_face_px(c, at, raw.expressions_min_face_px);
    Some(DisplayArea {
        area: polygon_area_of(c, at, raw.id, raw.polygon)?,
        gaze_yaw,
        gaze_pitch,
        gaze_tolerance,
        expressions: raw.expressions.unwrap_or(false),
        expressions_min_face_px,
    })
}

/// The smallest face a display reads expressions on: refused below what the model can serve.
fn expression_face_px(c: &mut Collector, at: &str, v: Option<i64>) -> u32 {
    let min = i64::from(crate::EXPRESSIONS_MIN_FACE_PX);
    let v = v.unwrap_or(48);
    if !(min..=1024).contains(&v) {
        c.push(
            format!("{at}.expressions_min_face_px"),
            format!("{v} px is outside {min}..1024"),
            Some(format!(
                "the expression model cannot read faces under {min} px (measured: 7 points fewer right \
                 below; docs/evaluator.md#expressions); use {min} or more (48 is the default), and \
                 place the camera so that lookers' faces reach it"
            )),
        );
    }
    v.clamp(min, 1024) as u32
}

pub(crate) fn polygon_area_of(
    c: &mut Collector,
    at: &str,
    id: String,
    polygon: Vec<Vec<f64>>,
) -> Option<Area> {
    let raw = RawArea { id, polygon };
    check_id(c, &format!("{at}.id"), &raw.id);
    if raw.polygon.len() < 3 {
        c.push(
            format!("{at}.polygon"),
            format!(
                "a polygon needs at least 3 points, got {}",
                raw.polygon.len()
            ),
            Some(
                "list the corners in order, e.g. [[0.1,0.5],[0.9,0.5],[0.9,1.0],[0.1,1.0]]"
                    .to_string(),
            ),
        );
        return None;
    }
    let before = c.problems.len();
    let polygon: Vec<Point> = raw
        .polygon
        .iter()
        .enumerate()
        .filter_map(|(i, xy)| point(c, &format!("{at}.polygon[{i}]"), xy))
        .collect();
    if c.problems.len() > before {
        return None;
    }
    if polygon_area(&polygon) < 1e-4 {
        c.push(
            format!("{at}.polygon"),
            "the polygon has (almost) no area".to_string(),
            Some("its points are collinear or repeated: spread the corners out".to_string()),
        );
        return None;
    }
    Some(Area {
        id: raw.id,
        polygon,
    })
}

fn line(c: &mut Collector, at: &str, v: toml::Value) -> Option<Line> {
    let raw: RawLine = item(c, at, v, LINE_KEYS)?;
    check_id(c, &format!("{at}.id"), &raw.id);
    let from = point(c, &format!("{at}.from"), &raw.from);
    let to = point(c, &format!("{at}.to"), &raw.to);
    let in_side = match raw.in_side.as_str() {
        "left" => Some(Side::Left),
        "right" => Some(Side::Right),
        other => {
            c.push(
                format!("{at}.in"),
                format!("unknown side {other:?}"),
                Some("`in` is \"left\" or \"right\": the side that counts as inside, looking from `from` towards `to`".to_string()),
            );
            None
        }
    };
    let (from, to, in_side) = (from?, to?, in_side?);
    if (from.x - to.x).hypot(from.y - to.y) < 0.01 {
        c.push(
            format!("{at}.to"),
            "`from` and `to` are (almost) the same point".to_string(),
            Some("a counting line needs two distinct ends".to_string()),
        );
        return None;
    }
    Some(Line {
        id: raw.id,
        from,
        to,
        in_side,
    })
}

pub(crate) fn unique(
    c: &mut Collector,
    seen: &mut HashSet<String>,
    field: String,
    id: &str,
    what: &str,
) {
    if !seen.insert(id.to_string()) {
        c.push(
            field,
            format!("duplicate {what} id {id:?}"),
            Some(format!("give every {what} its own id")),
        );
    }
}

fn section<T: DeserializeOwned>(
    c: &mut Collector,
    at: &str,
    v: toml::Value,
    keys: &[&str],
) -> Option<T> {
    let v = table_of(c, at, v)?;
    item(c, at, v, keys)
}

fn table_of(c: &mut Collector, at: &str, v: toml::Value) -> Option<toml::Value> {
    if v.is_table() {
        Some(v)
    } else {
        c.push(
            at,
            format!("expected a table, got a {}", v.type_str()),
            Some(format!("write it as a [{at}] section")),
        );
        None
    }
}

fn camera(c: &mut Collector, at: &str, v: toml::Value, base: &Path, k_min: u32) -> Option<Camera> {
    let raw: RawCamera = item(c, at, v, CAMERA_KEYS)?;
    check_id(c, &format!("{at}.id"), &raw.id);
    let sources = [raw.file.is_some(), raw.device.is_some(), raw.rtsp.is_some()]
        .iter()
        .filter(|b| **b)
        .count();
    let source = if sources != 1 {
        c.push(
            at,
            format!("a camera needs exactly one source (file, device or rtsp), found {sources}"),
            Some("set one of: file = \"recording.mp4\", device = \"/dev/video0\", rtsp = \"rtsp://host/stream\"".to_string()),
        );
        None
    } else if let Some(f) = &raw.file {
        let p = resolve(base, f);
        if !p.is_file() {
            c.push(
                format!("{at}.file"),
                format!("video file {} does not exist", p.display()),
                Some("give a path to an existing recording (relative paths start at the config file's directory)".to_string()),
            );
        }
        Some(VideoSource::File(p))
    } else if let Some(d) = &raw.device {
        if !d.starts_with("/dev/") {
            c.push(
                format!("{at}.device"),
                format!("{d:?} is not a device node"),
                Some("use a V4L2 node such as \"/dev/video0\" (see `vitrine probe`)".to_string()),
            );
        }
        Some(VideoSource::Device(PathBuf::from(d)))
    } else {
        let u = raw.rtsp.clone().unwrap_or_default();
        if !(u.starts_with("rtsp://") || u.starts_with("rtsps://")) || u.len() < 10 {
            c.push(
                format!("{at}.rtsp"),
                format!("{u:?} is not an RTSP URL"),
                Some("write it as rtsp://host[:port]/path".to_string()),
            );
        }
        Some(VideoSource::Rtsp(u))
    };
    let format = match &raw.format {
        None => None,
        Some(_) if raw.device.is_none() => {
            c.push(
                format!("{at}.format"),
                "format applies to USB cameras (device = ...) only".to_string(),
                Some("remove it: files and RTSP streams bring their own format".to_string()),
            );
            None
        }
        Some(f) if CaptureFormat::parse(f).is_some() => CaptureFormat::parse(f),
        Some(f) => {
            c.push(
                format!("{at}.format"),
                format!("{f:?} is not a capture format"),
                Some(format!(
                    "use one of {} (or leave it out to let Vitrine choose)",
                    CaptureFormat::ALL.map(CaptureFormat::name).join(", ")
                )),
            );
            None
        }
    };
    let rtsp_transport = match raw.transport.as_deref() {
        None => RtspTransport::Tcp,
        Some(_) if raw.rtsp.is_none() => {
            c.push(
                format!("{at}.transport"),
                "transport applies to RTSP cameras (rtsp = ...) only".to_string(),
                Some("remove it".to_string()),
            );
            RtspTransport::Tcp
        }
        Some(t) if t.eq_ignore_ascii_case("tcp") => RtspTransport::Tcp,
        Some(t) if t.eq_ignore_ascii_case("udp") => RtspTransport::Udp,
        Some(t) => {
            c.push(
                format!("{at}.transport"),
                format!("{t:?} is not an RTSP transport"),
                Some("use \"tcp\" (default, works through firewalls) or \"udp\"".to_string()),
            );
            RtspTransport::Tcp
        }
    };
    let decoder = match raw.decoder.as_deref() {
        None => VideoDecoder::Auto,
        Some(_) if raw.rtsp.is_none() => {
            c.push(
                format!("{at}.decoder"),
                "decoder applies to RTSP cameras (rtsp = ...) only".to_string(),
                Some("remove it".to_string()),
            );
            VideoDecoder::Auto
        }
        Some(d) => match VideoDecoder::ALL
            .into_iter()
            .find(|v| v.name().eq_ignore_ascii_case(d))
        {
            Some(v) => v,
            None => {
                c.push(
                    format!("{at}.decoder"),
                    format!("{d:?} is not an H.264 decoder"),
                    Some(format!(
                        "use one of {} (\"auto\": hardware where present, then software)",
                        VideoDecoder::ALL.map(VideoDecoder::name).join(", ")
                    )),
                );
                VideoDecoder::Auto
            }
        },
    };
    let fps = raw.fps.unwrap_or(DEFAULT_FPS);
    if !(crate::MIN_FPS..=60.0).contains(&fps) {
        c.push(
            format!("{at}.fps"),
            format!("fps {fps} is out of range"),
            Some(format!(
                "analyse between {} (a time-lapse: a frame every ~2.8 hours) and 60 frames per \
                 second (5 is a good default)",
                crate::MIN_FPS
            )),
        );
    }
    let size = match (raw.width, raw.height) {
        (None, None) => None,
        (Some(w), Some(h)) => {
            let ok = |v: i64| (32..=4096).contains(&v) && v % 2 == 0;
            if !ok(w) || !ok(h) {
                c.push(
                    format!("{at}.width"),
                    format!("resolution {w}x{h} is not supported"),
                    Some("width and height must be even, between 32 and 4096".to_string()),
                );
                None
            } else {
                Some((w as u32, h as u32))
            }
        }
        _ => {
            c.push(
                format!("{at}.width"),
                "width and height go together".to_string(),
                Some("set both, or neither to keep the source's resolution".to_string()),
            );
            None
        }
    };
    let detect_every = raw.detect_every.unwrap_or(i64::from(DEFAULT_DETECT_EVERY));
    if !(1..=30).contains(&detect_every) {
        c.push(
            format!("{at}.detect_every"),
            format!("detect_every = {detect_every} is out of range"),
            Some("run the detector on every n-th moving frame, n between 1 and 30 (the tracker predicts between; 1 = every frame)".to_string()),
        );
    }
    let detect_every = detect_every.clamp(1, 30) as u32;
    let near_default = i64::from(crate::default_detect_every_near(detect_every));
    let detect_every_near = raw.detect_every_near.unwrap_or(near_default);
    if !(1..=i64::from(detect_every)).contains(&detect_every_near) {
        c.push(
            format!("{at}.detect_every_near"),
            format!("detect_every_near = {detect_every_near} is out of range"),
            Some(format!("the detector's cadence while people are near the camera: between 1 and detect_every ({detect_every}); detect_every_near = {detect_every} keeps one cadence")),
        );
    }
    let mut seen = HashSet::new();
    let mut zones = Vec::new();
    for (i, z) in raw.zones.into_iter().enumerate() {
        let zat = format!("{at}.zones[{i}]");
        if let Some(z) = area(c, &zat, z) {
            unique(
                c,
                &mut seen,
                format!("{zat}.id"),
                &z.id,
                "zone/line/display",
            );
            zones.push(z);
        }
    }
    let mut lines = Vec::new();
    for (i, l) in raw.lines.into_iter().enumerate() {
        let lat = format!("{at}.lines[{i}]");
        if let Some(l) = line(c, &lat, l) {
            unique(
                c,
                &mut seen,
                format!("{lat}.id"),
                &l.id,
                "zone/line/display",
            );
            lines.push(l);
        }
    }
    let mut displays = Vec::new();
    for (i, d) in raw.displays.into_iter().enumerate() {
        let dat = format!("{at}.displays[{i}]");
        if let Some(d) = display(c, &dat, d) {
            unique(
                c,
                &mut seen,
                format!("{dat}.id"),
                &d.area.id,
                "zone/line/display",
            );
            displays.push(d);
        }
    }
    let mut queues = Vec::new();
    for (i, q) in raw.queues.into_iter().enumerate() {
        let qat = format!("{at}.queues[{i}]");
        if let Some(q) = operations::queue(c, &qat, q) {
            unique(
                c,
                &mut seen,
                format!("{qat}.id"),
                &q.area.id,
                "zone/line/display/queue",
            );
            queues.push(q);
        }
    }
    let geometry = operations::Geometry {
        lines: lines.iter().map(|l| l.id.clone()).collect(),
        areas: zones
            .iter()
            .chain(displays.iter().map(|d| &d.area))
            .chain(queues.iter().map(|q| &q.area))
            .map(|a| a.id.clone())
            .collect(),
        queues: queues.iter().map(|q| q.area.id.clone()).collect(),
        k_min,
    };
    let heatmap = raw
        .heatmap
        .and_then(|v| operations::heatmap(c, &format!("{at}.heatmap"), v));
    let funnel = raw
        .funnel
        .and_then(|v| operations::funnel(c, &format!("{at}.funnel"), v, &geometry));
    let staff = raw
        .staff
        .and_then(|v| operations::staff(c, &format!("{at}.staff"), v, &mut seen));
    if raw.alerts.len() > operations::MAX_ALERTS {
        c.push(
            format!("{at}.alerts"),
            format!("{} alerts on one camera", raw.alerts.len()),
            Some(format!("at most {} per camera", operations::MAX_ALERTS)),
        );
    }
    let mut alerts = Vec::new();
    let mut alert_ids = HashSet::new();
    for (i, a) in raw.alerts.into_iter().enumerate() {
        let aat = format!("{at}.alerts[{i}]");
        if let Some(a) = operations::alert(c, &aat, a, &geometry) {
            unique(c, &mut alert_ids, format!("{aat}.id"), &a.id, "alert");
            alerts.push(a);
        }
    }
    Some(Camera {
        id: raw.id,
        source: source?,
        format,
        rtsp_transport,
        decoder,
        fps: fps as f32,
        size,
        detect_every,
        detect_every_near: detect_every_near.clamp(1, i64::from(detect_every)) as u32,
        motion_gating: raw.motion_gating.unwrap_or(true),
        input_size: raw
            .input_size
            .and_then(|v| detector_input_size(c, &format!("{at}.input_size"), v)),
        zones,
        lines,
        displays,
        queues,
        heatmap,
        funnel,
        alerts,
        staff,
    })
}

/// A detector input size (`[models]` or a camera's), one of [`DETECTOR_INPUT_SIZES`].
fn detector_input_size(c: &mut Collector, at: &str, v: i64) -> Option<u32> {
    let ok = u32::try_from(v)
        .ok()
        .filter(|v| DETECTOR_INPUT_SIZES.contains(v));
    if ok.is_none() {
        c.push(
            at.to_string(),
            format!("input size {v} is not supported"),
            Some(format!(
                "choose one of: {} (pixels, the longer side of the detector's input for a 4:3 picture)",
                DETECTOR_INPUT_SIZES
                    .iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        );
    }
    ok
}

fn microphone(c: &mut Collector, at: &str, v: toml::Value, base: &Path) -> Option<Microphone> {
    let raw: RawMicrophone = item(c, at, v, MIC_KEYS)?;
    check_id(c, &format!("{at}.id"), &raw.id);
    let source = match (&raw.file, &raw.device) {
        (Some(f), None) => {
            let p = resolve(base, f);
            if !p.is_file() {
                c.push(
                    format!("{at}.file"),
                    format!("audio file {} does not exist", p.display()),
                    Some("give a path to an existing WAV or FLAC file".to_string()),
                );
            }
            let ext = p
                .extension()
                .and_then(|e| e.to_str())
                .unwrap_or("")
                .to_ascii_lowercase();
            if !matches!(ext.as_str(), "wav" | "flac") {
                c.push(
                    format!("{at}.file"),
                    format!("{} is not a .wav or .flac file", p.display()),
                    Some("convert it, e.g. `sox in.mp3 out.wav`".to_string()),
                );
            }
            Some(AudioSource::File(p))
        }
        (None, Some(d)) => Some(AudioSource::Device(d.clone())),
        _ => {
            c.push(
                at,
                "a microphone needs exactly one source (file or device)".to_string(),
                Some(
                    "set file = \"speech.wav\" or device = \"default\" (see `vitrine probe`)"
                        .to_string(),
                ),
            );
            None
        }
    };
    Some(Microphone {
        id: raw.id,
        source: source?,
    })
}

fn unit_range(c: &mut Collector, field: &str, v: Option<f64>, default: f64, hint: &str) -> f32 {
    let x = v.unwrap_or(default);
    if !(x > 0.0 && x < 1.0) {
        c.push(
            field,
            format!("{x} is outside (0, 1)"),
            Some(hint.to_string()),
        );
    }
    x as f32
}

fn models(c: &mut Collector, v: Option<toml::Value>, base: &Path) -> Option<Models> {
    let raw: RawModels = match v {
        Some(v) => section(c, "models", v, MODELS_KEYS)?,
        None => RawModels {
            dir: None,
            detector: None,
            detector_threshold: None,
            nms_iou: None,
            input_size: None,
            vad: None,
            vad_threshold: None,
            precision: None,
            faces: None,
            head_pose: None,
            audio_events: None,
        },
    };
    let precision = raw.precision.unwrap_or_else(|| "auto".into());
    let precision = ModelPrecision::ALL
        .into_iter()
        .find(|v| v.name() == precision)
        .unwrap_or_else(|| {
            let names = ModelPrecision::ALL.map(ModelPrecision::name);
            c.push(
                "models.precision",
                format!("unknown precision {precision:?}"),
                Some(format!("choose one of: {}", names.join(", "))),
            );
            ModelPrecision::Auto
        });
    let mut pick = |field: &str, v: Option<String>, default: &str, known: &[&str]| {
        let v = v.unwrap_or_else(|| default.to_string());
        if !known.contains(&v.as_str()) {
            c.push(
                format!("models.{field}"),
                format!("unknown model {v:?}"),
                Some(format!("choose one of: {}", known.join(", "))),
            );
        }
        v
    };
    let faces = pick("faces", raw.faces, "yunet", FACES);
    let head_pose = pick("head_pose", raw.head_pose, "fsanet", HEAD_POSES);
    let audio_events = pick("audio_events", raw.audio_events, "yamnet", AUDIO_EVENTS);
    let audio_events = (audio_events != "none").then_some(audio_events);
    let detector = raw.detector.unwrap_or_else(|| "yolox-nano".into());
    if !DETECTORS.contains(&detector.as_str()) {
        c.push(
            "models.detector",
            format!("unknown detector {detector:?}"),
            Some(format!("choose one of: {}", DETECTORS.join(", "))),
        );
    }
    let vad = raw.vad.unwrap_or_else(|| "silero-vad".into());
    if !VADS.contains(&vad.as_str()) {
        c.push(
            "models.vad",
            format!("unknown VAD model {vad:?}"),
            Some(format!("choose one of: {}", VADS.join(", "))),
        );
    }
    let detector_threshold = unit_range(
        c,
        "models.detector_threshold",
        raw.detector_threshold,
        0.30,
        "a detection score threshold between 0 and 1, e.g. 0.3",
    );
    let nms_iou = unit_range(
        c,
        "models.nms_iou",
        raw.nms_iou,
        0.45,
        "an overlap (IoU) threshold between 0 and 1, e.g. 0.45",
    );
    let input_size = raw
        .input_size
        .and_then(|v| detector_input_size(c, "models.input_size", v));
    let vad_threshold = unit_range(
        c,
        "models.vad_threshold",
        raw.vad_threshold,
        0.5,
        "a speech probability threshold between 0 and 1, e.g. 0.5",
    );
    Some(Models {
        dir: raw
            .dir
            .map(|d| resolve(base, &d))
            .unwrap_or_else(|| PathBuf::from("/var/lib/vitrine/models")),
        detector,
        detector_threshold,
        nms_iou,
        input_size,
        precision,
        vad,
        vad_threshold,
        faces,
        head_pose,
        audio_events,
    })
}

/// A private key readable by other users is a leak waiting to happen: refuse it.
#[cfg(unix)]
fn check_private(c: &mut Collector, key: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(m) = std::fs::metadata(key) {
        let mode = m.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            c.push(
                "mqtt.tls.key",
                format!(
                    "{} is readable by other users (mode {mode:03o})",
                    key.display()
                ),
                Some(format!(
                    "chmod 600 {} (under systemd, pass it with LoadCredential=)",
                    key.display()
                )),
            );
        }
    }
}

#[cfg(not(unix))]
fn check_private(_: &mut Collector, _: &Path) {}

fn mqtt(c: &mut Collector, v: toml::Value, device_id: Option<&str>, base: &Path) -> Option<Mqtt> {
    let raw: RawMqtt = section(c, "mqtt", v, MQTT_KEYS)?;
    let (scheme, rest) = match raw.url.split_once("://") {
        Some(x) => x,
        None => {
            c.push(
                "mqtt.url",
                format!("{:?} is not a URL", raw.url),
                Some("write mqtt://host:1883 or mqtts://host:8883".to_string()),
            );
            return None;
        }
    };
    let tls_scheme = match scheme {
        "mqtt" | "tcp" => false,
        "mqtts" | "ssl" => true,
        other => {
            c.push(
                "mqtt.url",
                format!("unsupported scheme {other:?}"),
                Some("use mqtt:// (plain) or mqtts:// (TLS)".to_string()),
            );
            false
        }
    };
    let hostport = rest.trim_end_matches('/');
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) => match p.parse::<u16>() {
            Ok(p) if p > 0 => (h.to_string(), p),
            _ => {
                c.push(
                    "mqtt.url",
                    format!("invalid port {p:?}"),
                    Some("ports are 1-65535; 1883 plain, 8883 TLS".to_string()),
                );
                (h.to_string(), 1883)
            }
        },
        None => (hostport.to_string(), if tls_scheme { 8883 } else { 1883 }),
    };
    if host.is_empty() || host.contains('/') {
        c.push(
            "mqtt.url",
            format!("no valid broker host in {:?}", raw.url),
            Some("write mqtt://host:1883".to_string()),
        );
    }
    // A derived client id is valid whenever the device id is (checked there).
    if let Some(id) = &raw.client_id {
        check_id(c, "mqtt.client_id", id);
    }
    let client_id = raw
        .client_id
        .unwrap_or_else(|| format!("vitrine-{}", device_id.unwrap_or("device")));
    let topic_prefix = raw.topic_prefix.unwrap_or_else(|| "vitrine".into());
    if topic_prefix.is_empty()
        || topic_prefix.contains(['+', '#'])
        || topic_prefix.starts_with('/')
        || topic_prefix.ends_with('/')
    {
        c.push("mqtt.topic_prefix", format!("invalid topic prefix {topic_prefix:?}"), Some("no wildcards (+ #) and no leading/trailing '/', e.g. \"vitrine\" or \"acme/analytics\"".to_string()));
    }
    let qos = raw.qos.unwrap_or(1);
    if !(0..=1).contains(&qos) {
        c.push(
            "mqtt.qos",
            format!("QoS {qos} is not supported"),
            Some("use 1 (at least once, with the outbox) or 0 (fire and forget)".to_string()),
        );
    }
    let keep_alive = raw.keep_alive_secs.unwrap_or(30);
    if !(5..=600).contains(&keep_alive) {
        c.push(
            "mqtt.keep_alive_secs",
            format!("{keep_alive} s is out of range"),
            Some("use 5 to 600 seconds".to_string()),
        );
    }
    let health = raw.health_secs.unwrap_or(30);
    if !(5..=3600).contains(&health) {
        c.push(
            "mqtt.health_secs",
            format!("{health} s is out of range"),
            Some("send health every 5 to 3600 seconds (30 is the default)".to_string()),
        );
    }
    let tls = match raw.tls {
        Some(t) => {
            let t: RawTls = section(c, "mqtt.tls", t, TLS_KEYS)?;
            let file = |c: &mut Collector, field: &str, p: &str| {
                let p = match credential(p) {
                    Ok(p) => p,
                    Err(()) => {
                        c.push(
                            format!("mqtt.tls.{field}"),
                            format!("{p} names $CREDENTIALS_DIRECTORY, which is not set"),
                            Some("run under systemd with LoadCredential= (see systemd/vitrine.service), or give a plain path".to_string()),
                        );
                        return PathBuf::from(p);
                    }
                };
                let p = resolve(base, &p);
                if !p.is_file() {
                    c.push(
                        format!("mqtt.tls.{field}"),
                        format!("{} does not exist", p.display()),
                        Some("give the path to a PEM file".to_string()),
                    );
                }
                p
            };
            let ca = file(c, "ca", &t.ca);
            let cert = t.cert.as_deref().map(|p| file(c, "cert", p));
            let key = t.key.as_deref().map(|p| file(c, "key", p));
            if let Some(k) = &key {
                check_private(c, k);
            }
            if cert.is_some() != key.is_some() {
                c.push(
                    "mqtt.tls",
                    "client `cert` and `key` go together".to_string(),
                    Some("set both for mutual TLS, or neither".to_string()),
                );
            }
            if !tls_scheme {
                c.push(
                    "mqtt.url",
                    "TLS files are set but the URL is plain mqtt://".to_string(),
                    Some("use mqtts://host:8883 with [mqtt.tls]".to_string()),
                );
            }
            Some(Tls { ca, cert, key })
        }
        None => {
            if tls_scheme {
                c.push(
                    "mqtt.tls",
                    "mqtts:// needs a [mqtt.tls] section".to_string(),
                    Some(
                        "add [mqtt.tls] with ca = \"ca.pem\" (and cert/key for mutual TLS)"
                            .to_string(),
                    ),
                );
            }
            None
        }
    };
    Some(Mqtt {
        host,
        port,
        client_id,
        topic_prefix,
        qos: qos.clamp(0, 1) as u8,
        keep_alive_secs: keep_alive.clamp(5, 600) as u16,
        health_secs: health.clamp(5, 3600) as u32,
        tls,
    })
}

fn privacy(c: &mut Collector, v: Option<toml::Value>) -> Option<Privacy> {
    let raw: RawPrivacy = match v {
        Some(v) => section(c, "privacy", v, PRIVACY_KEYS)?,
        None => RawPrivacy {
            window_secs: None,
            k_min: None,
        },
    };
    let window_secs = raw.window_secs.unwrap_or(60);
    if !(5..=3600).contains(&window_secs) || 3600 % window_secs != 0 {
        c.push(
            "privacy.window_secs",
            format!("window of {window_secs} s is not supported"),
            Some("use a divisor of 3600 between 5 and 3600 (e.g. 10, 60, 300, 900) so windows align to the hour".to_string()),
        );
    }
    let k_min = raw.k_min.unwrap_or(0);
    if !(0..=100).contains(&k_min) {
        c.push(
            "privacy.k_min",
            format!("k_min {k_min} is out of range"),
            Some("use 0 (off) up to 100; 5 is common".to_string()),
        );
    }
    Some(Privacy {
        window_secs: window_secs.clamp(5, 3600) as u32,
        k_min: k_min.clamp(0, 100) as u32,
    })
}

fn outbox(c: &mut Collector, v: Option<toml::Value>, base: &Path) -> Option<Outbox> {
    let raw: RawOutbox = match v {
        Some(v) => section(c, "outbox", v, OUTBOX_KEYS)?,
        None => RawOutbox {
            dir: None,
            max_mb: None,
            reserve_mb: None,
        },
    };
    let reserve_mb = raw.reserve_mb.unwrap_or(16);
    if !(0..=100_000).contains(&reserve_mb) {
        c.push(
            "outbox.reserve_mb",
            format!("{reserve_mb} MB is out of range"),
            Some(
                "free space to leave on the filesystem, 0 to 100000 MB (16 is the default)"
                    .to_string(),
            ),
        );
    }
    let max_mb = raw.max_mb.unwrap_or(64);
    if !(1..=1_000_000).contains(&max_mb) {
        c.push(
            "outbox.max_mb",
            format!("{max_mb} MB is out of range"),
            Some("give the outbox at least 1 MB (64 keeps days of events)".to_string()),
        );
    }
    Some(Outbox {
        dir: raw
            .dir
            .map(|d| resolve(base, &d))
            .unwrap_or_else(|| PathBuf::from("/var/lib/vitrine/outbox")),
        max_bytes: max_mb.clamp(1, 1_000_000) as u64 * 1024 * 1024,
        reserve_bytes: reserve_mb.clamp(0, 100_000) as u64 * 1024 * 1024,
    })
}

fn status(c: &mut Collector, v: Option<toml::Value>, base: &Path) -> Option<Status> {
    let raw: RawStatus = match v {
        Some(v) => section(c, "status", v, STATUS_KEYS)?,
        None => RawStatus {
            metrics: None,
            display: None,
            display_secs: None,
        },
    };
    let metrics = match raw.metrics.as_deref() {
        None | Some("") => None,
        Some(s) => match s.parse::<std::net::SocketAddr>() {
            Ok(a) => Some(a),
            Err(_) => {
                c.push(
                    "status.metrics",
                    format!("{s:?} is not an address and port"),
                    Some(
                        "write it like \"127.0.0.1:9464\" (or remove it to turn metrics off)"
                            .to_string(),
                    ),
                );
                None
            }
        },
    };
    let display = match raw.display.as_deref() {
        None | Some("") => None,
        Some(s) if s.ends_with(".png") => Some(Display::Png(resolve(base, s))),
        Some(s) if s.starts_with("/dev/") => Some(Display::Framebuffer(PathBuf::from(s))),
        Some(s) => {
            c.push(
                "status.display",
                format!("{s:?} is neither a framebuffer device nor a .png file"),
                Some("use \"/dev/fb0\" for a screen, or a path ending in .png".to_string()),
            );
            None
        }
    };
    let secs = raw.display_secs.unwrap_or(2);
    if !(1..=3600).contains(&secs) {
        c.push(
            "status.display_secs",
            format!("{secs} s is out of range"),
            Some("redraw every 1 to 3600 seconds (2 is the default)".to_string()),
        );
    }
    Some(Status {
        metrics,
        display,
        display_secs: secs.clamp(1, 3600) as u32,
    })
}

pub(crate) fn validate(text: &str, _file: &Path, base: &Path) -> Result<Config, Vec<Problem>> {
    let mut c = Collector::default();
    let mut top: toml::Table = match text.parse() {
        Ok(t) => t,
        Err(e) => {
            let line = e.span().map(|s| {
                text.as_bytes()[..s.start.min(text.len())]
                    .iter()
                    .filter(|b| **b == b'\n')
                    .count()
                    + 1
            });
            return Err(vec![Problem {
                field: "(syntax)".into(),
                line,
                message: e.message().to_string(),
                hint: Some(
                    "this is not valid TOML; see firmware-config/examples/ for the layout".into(),
                ),
            }]);
        }
    };
    let unknown: Vec<String> = top
        .keys()
        .filter(|k| !SECTIONS.contains(&k.as_str()))
        .cloned()
        .collect();
    for k in unknown {
        let hint = match closest(&k, SECTIONS.iter().copied()) {
            Some(s) => format!("did you mean `{s}`? sections: {}", SECTIONS.join(", ")),
            None => format!("remove it; sections: {}", SECTIONS.join(", ")),
        };
        c.push(k.clone(), format!("unknown section `{k}`"), Some(hint));
    }

    let device = match top.remove("device") {
        Some(v) => table_of(&mut c, "device", v)
            .and_then(|v| item::<RawDevice>(&mut c, "device", v, DEVICE_KEYS)),
        None => {
            c.push(
                "device",
                "the [device] section is missing".to_string(),
                Some("add [device] with id = \"...\" and store_id = \"...\"".to_string()),
            );
            None
        }
    };
    if let Some(d) = &device {
        check_id(&mut c, "device.id", &d.id);
        check_id(&mut c, "device.store_id", &d.store_id);
        if let Some(tz) = &d.timezone {
            operations::timezone(&mut c, "device.timezone", tz);
        }
    }

    let list = |c: &mut Collector, name: &str, v: Option<toml::Value>| -> Vec<toml::Value> {
        match v {
            None => Vec::new(),
            Some(toml::Value::Array(a)) => a,
            Some(other) => {
                c.push(
                    name,
                    format!(
                        "expected a list of [[{name}]] tables, got a {}",
                        other.type_str()
                    ),
                    Some(format!("write each entry as a [[{name}]] section")),
                );
                Vec::new()
            }
        }
    };
    let privacy = privacy(&mut c, top.remove("privacy"));
    let k_min = privacy.as_ref().map_or(0, |p| p.k_min);
    let mut seen = HashSet::new();
    let mut cameras = Vec::new();
    for (i, v) in list(&mut c, "cameras", top.remove("cameras"))
        .into_iter()
        .enumerate()
    {
        let at = format!("cameras[{i}]");
        if let Some(cam) = camera(&mut c, &at, v, base, k_min) {
            unique(
                &mut c,
                &mut seen,
                format!("{at}.id"),
                &cam.id,
                "camera/microphone",
            );
            cameras.push(cam);
        }
    }
    let mut microphones = Vec::new();
    for (i, v) in list(&mut c, "microphones", top.remove("microphones"))
        .into_iter()
        .enumerate()
    {
        let at = format!("microphones[{i}]");
        if let Some(m) = microphone(&mut c, &at, v, base) {
            unique(
                &mut c,
                &mut seen,
                format!("{at}.id"),
                &m.id,
                "camera/microphone",
            );
            microphones.push(m);
        }
    }
    if seen.is_empty()
        && !c
            .problems
            .iter()
            .any(|p| p.field.starts_with("cameras") || p.field.starts_with("microphones"))
    {
        c.push(
            "cameras",
            "no camera and no microphone configured".to_string(),
            Some("add at least one [[cameras]] or [[microphones]] section".to_string()),
        );
    }
    let models = models(&mut c, top.remove("models"), base);
    let mqtt = top
        .remove("mqtt")
        .and_then(|v| mqtt(&mut c, v, device.as_ref().map(|d| d.id.as_str()), base));

    let outbox = outbox(&mut c, top.remove("outbox"), base);
    let status = status(&mut c, top.remove("status"), base);
    let remote_config = top
        .remove("remote_config")
        .and_then(|v| section(&mut c, "remote_config", v, remote::KEYS))
        .and_then(|raw| remote::validate(&mut c, raw, mqtt.is_some()));
    let days = list(&mut c, "calendar", top.remove("calendar"));
    let calendar = calendar::validate(&mut c, days);
    let occupancy = top
        .remove("occupancy")
        .and_then(|v| section(&mut c, "occupancy", v, occupancy::KEYS))
        .and_then(|raw| occupancy::validate(&mut c, raw, &cameras, k_min));

    if !c.problems.is_empty() {
        return Err(c.problems);
    }
    match (device, models, privacy, outbox, status) {
        (Some(d), Some(models), Some(privacy), Some(outbox), Some(status)) => Ok(Config {
            file: _file.to_path_buf(),
            device: Device {
                id: d.id,
                store_id: d.store_id,
                timezone: d.timezone,
            },
            cameras,
            microphones,
            models,
            mqtt,
            privacy,
            outbox,
            status,
            remote_config,
            occupancy,
            calendar,
        }),
        _ => Err(vec![Problem {
            field: "(config)".into(),
            line: None,
            message: "incomplete configuration".into(),
            hint: None,
        }]),
    }
}

#[cfg(test)]
mod docs_tests {
    use super::*;

    /// Every section of the file with its keys, as docs/field-technician.md lists them.
    const SECTIONS: &[(&str, &str, &[&str])] = &[
        ("[device]", "RawDevice", DEVICE_KEYS),
        ("[[cameras]]", "RawCamera", CAMERA_KEYS),
        ("[[cameras.lines]]", "RawLine", LINE_KEYS),
        ("[[cameras.zones]]", "RawArea", AREA_KEYS),
        ("[[cameras.displays]]", "RawDisplay", DISPLAY_KEYS),
        ("[[cameras.queues]]", "RawQueue", operations::QUEUE_KEYS),
        ("[cameras.heatmap]", "RawHeatmap", operations::HEATMAP_KEYS),
        ("[cameras.funnel]", "RawFunnel", operations::FUNNEL_KEYS),
        ("[[cameras.alerts]]", "RawAlert", operations::ALERT_KEYS),
        ("[cameras.staff]", "RawStaff", operations::STAFF_KEYS),
        ("[occupancy]", "RawOccupancy", occupancy::KEYS),
        ("[[calendar]]", "RawCalendarDay", calendar::KEYS),
        ("[[microphones]]", "RawMicrophone", MIC_KEYS),
        ("[models]", "RawModels", MODELS_KEYS),
        ("[mqtt]", "RawMqtt", MQTT_KEYS),
        ("[mqtt.tls]", "RawTls", TLS_KEYS),
        ("[privacy]", "RawPrivacy", PRIVACY_KEYS),
        ("[outbox]", "RawOutbox", OUTBOX_KEYS),
        ("[status]", "RawStatus", STATUS_KEYS),
        ("[remote_config]", "RawRemoteConfig", remote::KEYS),
    ];

    /// The serde field names of `struct name` in raw.rs (renames applied).
    fn raw_fields(name: &str) -> Vec<String> {
        let src = include_str!("raw.rs");
        let start = src
            .find(&format!("pub struct {name} {{"))
            .unwrap_or_else(|| panic!("{name} in raw.rs"));
        let body = &src[start..start + src[start..].find("\n}").expect("end of struct")];
        let mut out = Vec::new();
        let mut rename = None;
        for line in body.lines().skip(1).map(str::trim) {
            if let Some(r) = line.strip_prefix("#[serde(rename = \"") {
                rename = r.split('"').next().map(String::from);
            } else if let Some(f) = line.strip_prefix("pub ") {
                let field = f.split(':').next().unwrap_or("").trim().to_string();
                out.push(rename.take().unwrap_or(field));
            }
        }
        out
    }

    #[test]
    fn the_key_lists_match_the_raw_structs() {
        for (section, raw, keys) in SECTIONS {
            let mut a = raw_fields(raw);
            let mut b: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
            a.sort();
            b.sort();
            assert_eq!(
                a, b,
                "{section}: raw.rs ({raw}) and the key list in validate.rs differ"
            );
        }
    }

    #[test]
    fn the_readme_lists_every_config_key() {
        let readme = include_str!("../../docs/field-technician.md");
        let start = readme
            .find("\n## Configuration")
            .expect("docs/field-technician.md has a Configuration section");
        let section = &readme[start + 1..];
        let section = &section[..section[3..].find("\n## ").map_or(section.len(), |e| e + 3)];
        let mut missing = Vec::new();
        for (header, _, keys) in SECTIONS {
            let quoted = format!("`{header}`");
            let Some(at) = section.find(&quoted) else {
                missing.push(format!("{header} (the section itself)"));
                continue;
            };
            let rest = &section[at + quoted.len()..];
            let span = &rest[..rest.find("`[").unwrap_or(rest.len())];
            for key in keys.iter().filter(|k| {
                ![
                    "zones", "lines", "displays", "tls", "queues", "heatmap", "funnel", "alerts",
                ]
                .contains(k)
            }) {
                if !span.contains(&format!("`{key}`")) {
                    missing.push(format!("{header} {key}"));
                }
            }
        }
        assert!(
            missing.is_empty(),
            "keys missing from the Configuration section of docs/field-technician.md: {missing:?}"
        );
    }
}
