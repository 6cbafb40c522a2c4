//! Raw, serde-shaped view of `agent.toml`. Every struct rejects unknown keys. Values are only
//! shape-checked here; meaning is checked in `validate`.
//!
//! Items (each camera, zone, line, ...) are deserialized one by one from `toml::Value`, so a
//! mistake in one item never hides the mistakes in another: all of them are reported at once.

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDevice {
    pub id: String,
    pub store_id: String,
    pub timezone: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCamera {
    pub id: String,
    pub file: Option<String>,
    pub device: Option<String>,
    pub rtsp: Option<String>,
    pub format: Option<String>,
    pub transport: Option<String>,
    pub decoder: Option<String>,
    pub fps: Option<f64>,
    pub width: Option<i64>,
    pub height: Option<i64>,
    pub detect_every: Option<i64>,
    pub detect_every_near: Option<i64>,
    pub motion_gating: Option<bool>,
    pub input_size: Option<i64>,
    #[serde(default)]
    pub zones: Vec<toml::Value>,
    #[serde(default)]
    pub lines: Vec<toml::Value>,
    #[serde(default)]
    pub displays: Vec<toml::Value>,
    #[serde(default)]
    pub queues: Vec<toml::Value>,
    pub heatmap: Option<toml::Value>,
    pub funnel: Option<toml::Value>,
    pub staff: Option<toml::Value>,
    #[serde(default)]
    pub alerts: Vec<toml::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCalendarDay {
    pub date: String,
    pub name: String,
    pub kind: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawQueue {
    pub id: String,
    pub polygon: Vec<Vec<f64>>,
    pub service: Vec<Vec<f64>>,
    pub abandon_secs: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOccupancy {
    pub entrances: Vec<String>,
    pub capacity: Option<i64>,
    pub opens: Option<String>,
    pub closes: Option<String>,
    pub empty_after_minutes: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStaff {
    #[serde(default)]
    pub areas: Vec<toml::Value>,
    pub dwell_minutes: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHeatmap {
    pub cols: Option<i64>,
    pub rows: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFunnel {
    pub passed: Option<String>,
    pub entered: String,
    #[serde(default)]
    pub engaged: Vec<String>,
    pub engaged_secs: Option<f64>,
    pub checkout: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAlert {
    pub id: String,
    pub line: Option<String>,
    pub zone: Option<String>,
    pub queue: Option<String>,
    pub above: Option<f64>,
    pub forecast_factor: Option<f64>,
    pub clear_below: Option<f64>,
    pub hold_secs: Option<f64>,
    pub min_interval_secs: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawArea {
    pub id: String,
    pub polygon: Vec<Vec<f64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDisplay {
    pub id: String,
    pub polygon: Vec<Vec<f64>>,
    pub gaze_yaw: Option<f64>,
    pub gaze_pitch: Option<f64>,
    pub gaze_tolerance: Option<f64>,
    pub expressions: Option<bool>,
    pub expressions_min_face_px: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLine {
    pub id: String,
    pub from: Vec<f64>,
    pub to: Vec<f64>,
    #[serde(rename = "in")]
    pub in_side: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMicrophone {
    pub id: String,
    pub file: Option<String>,
    pub device: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawModels {
    pub dir: Option<String>,
    pub detector: Option<String>,
    pub detector_threshold: Option<f64>,
    pub nms_iou: Option<f64>,
    pub input_size: Option<i64>,
    pub vad: Option<String>,
    pub vad_threshold: Option<f64>,
    /// `variant` is the spelling of releases before f16 (same values but f16).
    #[serde(alias = "variant")]
    pub precision: Option<String>,
    pub faces: Option<String>,
    pub head_pose: Option<String>,
    pub audio_events: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMqtt {
    pub url: String,
    pub client_id: Option<String>,
    pub topic_prefix: Option<String>,
    pub qos: Option<i64>,
    pub keep_alive_secs: Option<i64>,
    pub health_secs: Option<i64>,
    pub tls: Option<toml::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    pub ca: String,
    pub cert: Option<String>,
    pub key: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPrivacy {
    pub window_secs: Option<i64>,
    pub k_min: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOutbox {
    pub dir: Option<String>,
    pub max_mb: Option<i64>,
    pub reserve_mb: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStatus {
    pub metrics: Option<String>,
    pub display: Option<String>,
    pub display_secs: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRemoteConfig {
    pub public_key: String,
    pub apply_timeout_secs: Option<i64>,
    pub federated: Option<bool>,
}

/// Top-level sections and the keys each accepts (for "did you mean" hints).
pub const SECTIONS: &[&str] = &[
    "device",
    "cameras",
    "microphones",
    "models",
    "mqtt",
    "privacy",
    "outbox",
    "status",
    "remote_config",
    "occupancy",
    "calendar",
];
