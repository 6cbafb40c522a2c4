//! Vitrine's device configuration: one TOML file per device.
//!
//! Parsing is two-staged: the text is read into raw serde structs (`raw`, unknown keys
//! rejected), item by item, then validated into the typed [`Config`]. Every problem found in
//! either stage is collected and returned at once in [`ConfigErrors`], each with the field's
//! dotted path, its line in the file, and a hint. Relative paths are resolved against the
//! directory of the configuration file.
//!
//! The example configurations in `firmware-config/examples/` are documented and used as test
//! fixtures.

pub mod calendar;
mod error;
mod item;
mod locate;
mod occupancy;
pub use calendar::{CalendarDay, DayKind};
mod operations;
mod raw;
mod remote;
mod validate;

use std::path::{Path, PathBuf};

pub use error::{ConfigErrors, Problem};

/// A point in normalized image coordinates: (0,0) top-left, (1,1) bottom-right.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub x: f32,
    pub y: f32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The file this configuration was read from.
    pub file: PathBuf,
    pub device: Device,
    pub cameras: Vec<Camera>,
    pub microphones: Vec<Microphone>,
    pub models: Models,
    /// `None`: no broker configured (events stay in the outbox; `vitrine-lab demo` starts one).
    pub mqtt: Option<Mqtt>,
    pub privacy: Privacy,
    pub outbox: Outbox,
    pub status: Status,
    /// `None`: the box takes no configuration over MQTT.
    pub remote_config: Option<RemoteConfig>,
    /// The store's live occupancy from its entrances (`None`: not computed).
    pub occupancy: Option<StoreOccupancy>,
    /// The named days the traffic forecast treats apart (`[[calendar]]`, in date order).
    pub calendar: Vec<CalendarDay>,
}

/// `[occupancy]`: people inside the store = crossings in − out of its entrance lines since
/// opening, never below zero, reset at opening time, corrected to zero when the store is known
/// empty (closing time, a long empty scene), every correction published.
#[derive(Debug, Clone, PartialEq)]
pub struct StoreOccupancy {
    pub entrances: Vec<Entrance>,
    /// People allowed inside; above it the `capacity` alert is raised.
    pub capacity: Option<u32>,
    /// Opening and closing time, minutes after the store's local midnight.
    pub opens_minute: u32,
    pub closes_minute: Option<u32>,
    /// Nobody seen on any camera of the box this long: the store is empty.
    pub empty_after_secs: Option<u32>,
}

/// An entrance: a camera's line whose `in` side is the store's inside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entrance {
    pub camera: String,
    pub line: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Device {
    pub id: String,
    pub store_id: String,
    /// The store's IANA time zone (`Europe/Berlin`): hours and days of the traffic forecast
    /// are the store's. `None`: the box's own (`/etc/localtime`).
    pub timezone: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum VideoSource {
    /// A recorded video file (any format ffmpeg decodes: MP4/H.264, AVI, ...).
    File(PathBuf),
    /// A V4L2 device node, e.g. `/dev/video0` (USB/UVC camera).
    Device(PathBuf),
    /// An RTSP URL, credentials included (`rtsp://user:pass@host/path`).
    Rtsp(String),
}

/// How RTP travels from an RTSP camera.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RtspTransport {
    /// Interleaved on the RTSP TCP connection (default: works through NAT and firewalls).
    #[default]
    Tcp,
    Udp,
}

/// The H.264 decoder an RTSP camera's stream goes through (`decoder = "auto"` etc.).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VideoDecoder {
    /// A hardware decoder where the box has one, then ffmpeg's software decoder, then openh264.
    #[default]
    Auto,
    /// Cisco's openh264, in process (always available).
    Openh264,
    /// ffmpeg's software decoder (a child process).
    Ffmpeg,
    /// VAAPI through ffmpeg (Intel/AMD graphics).
    Vaapi,
    /// A V4L2 memory-to-memory decoder through ffmpeg (Raspberry Pi 4).
    V4l2m2m,
    /// Rockchip's MPP through an ffmpeg built with it (RK3588-class boxes).
    Rkmpp,
}

impl VideoDecoder {
    pub const ALL: [VideoDecoder; 6] = [
        VideoDecoder::Auto,
        VideoDecoder::Openh264,
        VideoDecoder::Ffmpeg,
        VideoDecoder::Vaapi,
        VideoDecoder::V4l2m2m,
        VideoDecoder::Rkmpp,
    ];

    pub fn name(self) -> &'static str {
        match self {
            VideoDecoder::Auto => "auto",
            VideoDecoder::Openh264 => "openh264",
            VideoDecoder::Ffmpeg => "ffmpeg",
            VideoDecoder::Vaapi => "vaapi",
            VideoDecoder::V4l2m2m => "v4l2m2m",
            VideoDecoder::Rkmpp => "rkmpp",
        }
    }
}

/// A USB camera's capture format (`format = "mjpeg"` etc.).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptureFormat {
    Mjpeg,
    Yuyv,
    Nv12,
    Rgb24,
    Bgr24,
    Gray,
}

impl CaptureFormat {
    pub const ALL: [CaptureFormat; 6] = [
        CaptureFormat::Mjpeg,
        CaptureFormat::Yuyv,
        CaptureFormat::Nv12,
        CaptureFormat::Rgb24,
        CaptureFormat::Bgr24,
        CaptureFormat::Gray,
    ];

    /// The name in the config file.
    pub fn name(self) -> &'static str {
        match self {
            CaptureFormat::Mjpeg => "mjpeg",
            CaptureFormat::Yuyv => "yuyv",
            CaptureFormat::Nv12 => "nv12",
            CaptureFormat::Rgb24 => "rgb24",
            CaptureFormat::Bgr24 => "bgr24",
            CaptureFormat::Gray => "gray",
        }
    }

    pub fn parse(s: &str) -> Option<CaptureFormat> {
        let s = s.to_ascii_lowercase();
        CaptureFormat::ALL.into_iter().find(|f| f.name() == s)
    }
}

/// The arithmetic the detector and the face models run in (`[models] precision`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelPrecision {
    /// Chosen by the CPU's features at start: f16 on cores with half-precision arithmetic,
    /// else f32; a verified int8 file if it measures faster.
    Auto,
    F32,
    /// The float file transformed to f16 at load (fast only on cores with `asimdhp`).
    F16,
    /// The verified int8 file (tools/quantize.py); required.
    Int8,
}

impl ModelPrecision {
    pub const ALL: [ModelPrecision; 4] = [
        ModelPrecision::Auto,
        ModelPrecision::F32,
        ModelPrecision::F16,
        ModelPrecision::Int8,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ModelPrecision::Auto => "auto",
            ModelPrecision::F32 => "f32",
            ModelPrecision::F16 => "f16",
            ModelPrecision::Int8 => "int8",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Camera {
    pub id: String,
    pub source: VideoSource,
    /// A capture format a USB camera must use; `None` lets Vitrine choose.
    pub format: Option<CaptureFormat>,
    pub rtsp_transport: RtspTransport,
    /// An RTSP camera's H.264 decoder (tried first; the software decoders behind it).
    pub decoder: VideoDecoder,
    /// Frames analysed per second.
    pub fps: f32,
    /// Analysis resolution; `None` keeps the source's own.
    pub size: Option<(u32, u32)>,
    /// Run the detector on every n-th moving frame; the tracker predicts between (1 = all).
    pub detect_every: u32,
    /// The same while people are near the camera (an eye-level camera: see
    /// `vitrine_signals::cadence`); at most `detect_every`.
    pub detect_every_near: u32,
    /// Skip the detector on frames that did not change since the last detection.
    pub motion_gating: bool,
    /// This camera's detector input size (longer side for a 4:3 frame), when it differs from
    /// `[models] input_size`: a camera whose people are small at the default (what the
    /// placement check measures) gets a larger input.
    pub input_size: Option<u32>,
    pub zones: Vec<Area>,
    pub lines: Vec<Line>,
    pub displays: Vec<DisplayArea>,
    /// Waiting lines: a waiting area and its service point.
    pub queues: Vec<Queue>,
    /// An occupancy grid of person-seconds per window (`None`: not published).
    pub heatmap: Option<Heatmap>,
    /// The shopper funnel: passed by → entered → engaged → reached checkout.
    pub funnel: Option<Funnel>,
    /// Real-time alerts on a line's rate, a zone's occupancy or a queue's wait.
    pub alerts: Vec<AlertRule>,
    /// Who is staff (left out of every customer count); `None`: everyone is a customer.
    pub staff: Option<Staff>,
}

/// How a camera tells staff from customers: a person who stands in a staff-only area (behind
/// the till, the stock-room door) or, with `dwell_secs`, stays in view longer than that is
/// staff for the rest of their track. Badges are what commercial counters use; this cannot
/// see a staff member who never does either.
#[derive(Debug, Clone, PartialEq)]
pub struct Staff {
    pub areas: Vec<Area>,
    pub dwell_secs: Option<f32>,
}

/// A waiting line: people stand in `area` until they reach `service` (a till, a counter).
#[derive(Debug, Clone, PartialEq)]
pub struct Queue {
    pub area: Area,
    pub service: Vec<Point>,
    /// Someone who waited at least this long and left without reaching the service point
    /// abandoned the queue (shorter: they walked through).
    pub abandon_secs: f32,
}

/// The heatmap's grid (cells across, cells down).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Heatmap {
    pub cols: u32,
    pub rows: u32,
}

/// Where a funnel stage is reached: crossing a line inwards, or being inside an area (a zone,
/// a display's area or a queue's waiting area).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StageAt {
    Line(String),
    Area(String),
}

/// The funnel's stages. A person counts at a stage when they reach it after every earlier
/// one (`passed` is optional: without it, everyone seen has passed by).
#[derive(Debug, Clone, PartialEq)]
pub struct Funnel {
    pub passed: Option<StageAt>,
    pub entered: StageAt,
    /// Areas where staying `engaged_secs` counts as engaging.
    pub engaged: Vec<String>,
    pub engaged_secs: f32,
    pub checkout: StageAt,
}

/// What an alert watches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlertOn {
    /// Crossings of a line (both directions) per minute, over the last minute.
    LineRate(String),
    /// People inside a zone (or a display's or a queue's area) now.
    Occupancy(String),
    /// A queue's estimated wait now, seconds.
    QueueWait(String),
}

/// A real-time alert: raised when the watched value stays above `above` (or above
/// `forecast_factor` times its forecast) for `hold_secs`; cleared when it stays below
/// `clear_below` as long; raised at most once per `min_interval_secs`.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRule {
    pub id: String,
    pub on: AlertOn,
    pub above: Option<f64>,
    pub forecast_factor: Option<f64>,
    pub clear_below: Option<f64>,
    pub hold_secs: f32,
    pub min_interval_secs: f32,
}

/// A display (shelf, screen, window) whose viewers are counted: `area` is where its viewers
/// stand in the image; a viewer is a *looker* while their head points at the display, i.e.
/// yaw and pitch (degrees, as seen by the camera; 0/0 = looking into the camera) both within
/// `gaze_tolerance` of `gaze_yaw`/`gaze_pitch`.
#[derive(Debug, Clone, PartialEq)]
pub struct DisplayArea {
    pub area: Area,
    pub gaze_yaw: f32,
    pub gaze_pitch: f32,
    pub gaze_tolerance: f32,
    /// Opt-in: read the lookers' facial expressions (counts only; see the README's limits).
    pub expressions: bool,
    /// Faces smaller than this (the face box's shorter side, pixels of the analysed frame) are
    /// not read: the lookers count as unread. At least [`EXPRESSIONS_MIN_FACE_PX`].
    pub expressions_min_face_px: u32,
}

/// The smallest face (box side, px) the config lets a display read: on FER2013's test split
/// (`vitrine-lab eval expressions`) the model reads 57-59 % right from crops of 32 px up (a face box
/// of ~27 px) and 51 % from 24 px crops (a 20 px box); under 32 px it is refused.
pub const EXPRESSIONS_MIN_FACE_PX: u32 = 32;

#[derive(Debug, Clone, PartialEq)]
pub struct Area {
    pub id: String,
    pub polygon: Vec<Point>,
}

/// Which side of a line (seen walking from `from` to `to`) is "inside".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Left,
    Right,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub id: String,
    pub from: Point,
    pub to: Point,
    pub in_side: Side,
}

#[derive(Debug, Clone, PartialEq)]
pub enum AudioSource {
    /// A WAV or FLAC file.
    File(PathBuf),
    /// A capture device: "default", an ALSA name ("hw:CARD=Mic,DEV=0") or a cpal id.
    Device(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Microphone {
    pub id: String,
    pub source: AudioSource,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Models {
    /// Where `vitrine models fetch` put the model files.
    pub dir: PathBuf,
    /// Name of the person detector in the pinned manifest.
    pub detector: String,
    /// Detections at or above this score start and lead tracks; the tracker keeps weaker ones
    /// (down to 0.1) only to follow a half-hidden person it already tracks.
    pub detector_threshold: f32,
    pub nms_iou: f32,
    /// Longer side of the detector's input in pixels (a multiple of 32, see
    /// [`DETECTOR_INPUT_SIZES`]); `None`: the model's own size (416 for yolox-nano).
    pub input_size: Option<u32>,
    /// The detector's and the face models' arithmetic.
    pub precision: ModelPrecision,
    /// Name of the voice-activity model in the pinned manifest.
    pub vad: String,
    pub vad_threshold: f32,
    /// Face detector with landmarks for attention (used only by cameras with displays).
    pub faces: String,
    /// Head-pose model for attention.
    pub head_pose: String,
    /// Audio-event classifier for sound categories; `None` = off (`audio_events = "none"`).
    pub audio_events: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Mqtt {
    pub host: String,
    pub port: u16,
    pub client_id: String,
    pub topic_prefix: String,
    pub qos: u8,
    pub keep_alive_secs: u16,
    /// Interval of the health message (`.../health`).
    pub health_secs: u32,
    pub tls: Option<Tls>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Tls {
    pub ca: PathBuf,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Privacy {
    /// Aggregation window length in seconds.
    pub window_secs: u32,
    /// Counts in `1..k_min` are suppressed (published as null). 0 or 1 disables suppression.
    pub k_min: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Outbox {
    pub dir: PathBuf,
    pub max_bytes: u64,
    /// Free space the outbox leaves on its filesystem.
    pub reserve_bytes: u64,
}

/// Remote configuration over MQTT (`{prefix}/{store}/{device}/config/set`): requests signed
/// by the central service's Ed25519 key pinned here are applied like a reload.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteConfig {
    /// The central service's Ed25519 public key (32 bytes).
    pub public_key: [u8; 32],
    /// A new configuration must come up healthy within this, else the previous one is
    /// restored.
    pub apply_timeout_secs: u32,
    /// Take part in the chain prior's rounds (masked forecast updates, see
    /// `signals::federated`); off unless set. Taking the published prior needs only the key.
    pub federated: bool,
}

/// Local status: the Prometheus endpoint and the status screen.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Status {
    /// Where the Prometheus metrics endpoint listens (off when `None`).
    pub metrics: Option<std::net::SocketAddr>,
    pub display: Option<Display>,
    /// Seconds between redraws of the status screen.
    pub display_secs: u32,
}

/// Where the status screen is drawn.
#[derive(Debug, Clone, PartialEq)]
pub enum Display {
    /// A Linux framebuffer device such as `/dev/fb0` (geometry read from sysfs).
    Framebuffer(PathBuf),
    /// A PNG file, rewritten atomically on each redraw (for kiosks, docs and tests).
    Png(PathBuf),
}

/// Known model names (the pinned manifest in `vitrine-models` must carry each of them).
pub const DETECTORS: &[&str] = &["yolox-nano", "person-lw"];
/// Frames analysed per second by default. With [`DEFAULT_DETECT_EVERY`] and the detector's
/// own input size, the cheapest setting that meets the counting goals on the accuracy suite
/// (`eval/`, docs/evaluator.md "Counting accuracy").
pub const DEFAULT_FPS: f64 = 10.0;
/// The slowest analysis rate a camera can be configured at: a frame every ~2.8 hours (a
/// time-lapse). Sources and coverage use the configured rate down to this, never a higher floor.
pub const MIN_FPS: f64 = 1e-4;
/// The detector runs on every third moving frame by default; frames between are placed by
/// interpolating the tracks between the detections that enclose them.
pub const DEFAULT_DETECT_EVERY: u32 = 3;

/// The detector's cadence while people are near the camera, by default: a third fewer frames
/// between detections than `detect_every` (2 for the default 3).
pub fn default_detect_every_near(detect_every: u32) -> u32 {
    (detect_every * 2).div_ceil(3).max(1)
}
/// Detector input sizes accepted by `input_size` (longer side, pixels).
pub const DETECTOR_INPUT_SIZES: &[u32] = &[256, 320, 384, 416, 512, 640];
pub const VADS: &[&str] = &["silero-vad"];
pub const FACES: &[&str] = &["yunet"];
pub const HEAD_POSES: &[&str] = &["fsanet"];
/// `none` turns audio categories off.
pub const AUDIO_EVENTS: &[&str] = &["yamnet", "none"];

impl Config {
    /// Read and validate a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigErrors {
            file: path.to_path_buf(),
            problems: vec![Problem {
                field: "(file)".into(),
                line: None,
                message: format!("cannot read the file: {e}"),
                hint: Some("check the path given with --config and the file's permissions".into()),
            }],
        })?;
        Config::parse(&text, path)
    }

    /// Validate configuration text; `file` names it in messages and anchors relative paths.
    pub fn parse(text: &str, file: &Path) -> Result<Config, ConfigErrors> {
        let base = file
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        match validate::validate(text, file, &base) {
            Ok(c) => Ok(c),
            Err(mut problems) => {
                locate::add_lines(text, &mut problems);
                // In file order, problems without a line last.
                problems.sort_by_key(|p| p.line.unwrap_or(usize::MAX));
                Err(ConfigErrors {
                    file: file.to_path_buf(),
                    problems,
                })
            }
        }
    }

    /// Every source id (cameras then microphones).
    pub fn source_ids(&self) -> impl Iterator<Item = &str> {
        self.cameras
            .iter()
            .map(|c| c.id.as_str())
            .chain(self.microphones.iter().map(|m| m.id.as_str()))
    }
}

#[cfg(test)]
mod precision_tests {
    // Test code: a failed unwrap is a failed test.
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn precision(models: &str) -> ModelPrecision {
        let dir = std::env::temp_dir().join(format!("vitrine-precision-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let wav = dir.join("m.wav");
        std::fs::write(&wav, b"").unwrap();
        let text = format!(
            "[device]\nid = \"b\"\nstore_id = \"s\"\n[[microphones]]\nid = \"m\"\nfile = \"{}\"\n[models]\n{models}\n[outbox]\ndir = \"/tmp/o\"\n",
            wav.display()
        );
        Config::parse(&text, &dir.join("agent.toml"))
            .unwrap()
            .models
            .precision
    }

    #[test]
    fn precision_defaults_to_auto_and_keeps_the_older_spelling_variant() {
        assert_eq!(precision(""), ModelPrecision::Auto);
        assert_eq!(precision("precision = \"f16\""), ModelPrecision::F16);
        assert_eq!(precision("variant = \"int8\""), ModelPrecision::Int8);
    }
}

#[cfg(test)]
mod decoder_tests {
    // Test code: a failed unwrap is a failed test.
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn parse(camera: &str) -> Result<Config, String> {
        let text = format!(
            "[device]\nid = \"b\"\nstore_id = \"s\"\n[[cameras]]\nid = \"c\"\n{camera}\n[outbox]\ndir = \"/tmp/o\"\n"
        );
        Config::parse(&text, std::path::Path::new("/tmp/agent.toml")).map_err(|e| e.to_string())
    }

    #[test]
    fn an_ip_cameras_decoder_defaults_to_auto_and_takes_each_name() {
        let rtsp = "rtsp = \"rtsp://cam/stream2\"";
        assert_eq!(parse(rtsp).unwrap().cameras[0].decoder, VideoDecoder::Auto);
        for d in VideoDecoder::ALL {
            let c = parse(&format!("{rtsp}\ndecoder = \"{}\"", d.name())).unwrap();
            assert_eq!(c.cameras[0].decoder, d);
        }
    }

    #[test]
    fn a_wrong_decoder_is_refused_with_the_field_and_the_choices() {
        let e = parse("rtsp = \"rtsp://cam/s\"\ndecoder = \"nvdec\"").unwrap_err();
        assert!(
            e.contains("cameras[0].decoder") && e.contains("v4l2m2m"),
            "{e}"
        );
        let e = parse("device = \"/dev/video0\"\ndecoder = \"vaapi\"").unwrap_err();
        assert!(
            e.contains("cameras[0].decoder") && e.contains("RTSP cameras"),
            "{e}"
        );
    }

    #[test]
    fn the_near_cadence_defaults_to_a_third_fewer_frames_and_stays_within_detect_every() {
        let rtsp = "rtsp = \"rtsp://cam/s\"";
        let c = parse(rtsp).unwrap();
        assert_eq!(
            (c.cameras[0].detect_every, c.cameras[0].detect_every_near),
            (3, 2)
        );
        let c = parse(&format!("{rtsp}\ndetect_every = 6")).unwrap();
        assert_eq!(c.cameras[0].detect_every_near, 4);
        let c = parse(&format!("{rtsp}\ndetect_every = 1")).unwrap();
        assert_eq!(c.cameras[0].detect_every_near, 1);
        let c = parse(&format!("{rtsp}\ndetect_every_near = 3")).unwrap();
        assert_eq!(
            c.cameras[0].detect_every_near, 3,
            "one cadence, near or far"
        );
        let e = parse(&format!("{rtsp}\ndetect_every_near = 4")).unwrap_err();
        assert!(
            e.contains("cameras[0].detect_every_near")
                && e.contains("between 1 and detect_every (3)"),
            "{e}"
        );
    }
}
