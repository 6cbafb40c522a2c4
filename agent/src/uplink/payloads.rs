//! The payloads the uplink itself writes: the retained status and the periodic health
//! message. Pure functions of what they report.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use vitrine_config::Config;

use crate::outbox::Stats as OutboxStats;
use crate::telemetry::{SourceProgress, UplinkStats};

pub fn status(state: &str, reason: &str, cfg: &Config) -> Vec<u8> {
    json!({
        "schema": "vitrine.status.v1",
        "state": state,
        "reason": reason,
        "device_id": cfg.device.id,
        "store_id": cfg.device.store_id,
        "version": env!("CARGO_PKG_VERSION"),
        "sources": cfg.source_ids().collect::<Vec<_>>(),
    })
    .to_string()
    .into_bytes()
}

/// The outbox's side of the health message.
#[derive(Debug, Clone, Copy)]
pub struct OutboxHealth {
    pub unacked: usize,
    pub bytes: u64,
    pub oldest_age_ms: Option<u64>,
    pub stats: OutboxStats,
}

/// The health message: what a remote operator needs to see that the box works.
pub fn health(
    cfg: &Config,
    uptime: Duration,
    outbox: &OutboxHealth,
    up: &UplinkStats,
    sources: &[(String, Arc<SourceProgress>)],
) -> Vec<u8> {
    let sources: Vec<serde_json::Value> = sources
        .iter()
        .map(|(id, p)| {
            json!({
                "id": id,
                "kind": p.kind,
                "up": p.is_up(),
                "analysed": p.analysed(),
                "dropped": p.dropped(),
                "inference_ms_mean": p.inference_ms_mean().map(|ms| (ms * 100.0).round() / 100.0).unwrap_or(0.0),
            })
        })
        .collect();
    json!({
        "schema": "vitrine.health.v1",
        "device_id": cfg.device.id,
        "store_id": cfg.device.store_id,
        "uptime_s": uptime.as_secs(),
        "outbox": {
            "unacked": outbox.unacked,
            "bytes": outbox.bytes,
            "oldest_age_s": outbox.oldest_age_ms.map(|a| a / 1000),
            "appended": outbox.stats.appended,
            "dropped": outbox.stats.dropped,
            "gap_records": outbox.stats.gap_records,
        },
        "uplink": { "connections": up.connections, "sent": up.sent, "acked": up.acked, "rejected": up.rejected },
        "sources": sources,
    })
    .to_string()
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::atomic::Ordering;

    use super::*;
    use vitrine_signals::cadence::Step;

    fn cfg() -> Config {
        Config::parse(
            "[device]\nid = \"box-1\"\nstore_id = \"s\"\n[[microphones]]\nid = \"m\"\ndevice = \"default\"\n",
            Path::new("x.toml"),
        )
        .expect("config")
    }

    fn health_of(sources: &[(String, Arc<SourceProgress>)]) -> serde_json::Value {
        let outbox = OutboxHealth {
            unacked: 0,
            bytes: 0,
            oldest_age_ms: None,
            stats: OutboxStats::default(),
        };
        let bytes = health(
            &cfg(),
            Duration::from_secs(5),
            &outbox,
            &UplinkStats::default(),
            sources,
        );
        serde_json::from_slice(&bytes).expect("json")
    }

    #[test]
    fn health_reports_a_lost_camera_as_down() {
        let cam = Arc::new(SourceProgress::new("camera"));
        cam.connected.store(false, Ordering::Relaxed);
        let h = health_of(&[("door".into(), cam)]);
        assert_eq!(h["sources"][0]["up"], false, "{h}");
    }

    #[test]
    fn health_inference_mean_counts_only_frames_the_model_ran_on() {
        let cam = Arc::new(SourceProgress::new("camera"));
        cam.inferred(Duration::from_millis(50));
        for _ in 0..9 {
            cam.skipped(Step::Predict);
        }
        let h = health_of(&[("door".into(), cam)]);
        assert_eq!(h["sources"][0]["inference_ms_mean"], 50.0, "{h}");
        assert_eq!(h["sources"][0]["analysed"], 10, "{h}");
    }
}

#[cfg(test)]
mod schema_tests {
    use super::tests_support::*;
    use super::*;

    fn validator(name: &str) -> jsonschema::Validator {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../signals/schema")
            .join(name);
        let text = std::fs::read_to_string(path).expect("schema");
        jsonschema::validator_for(&serde_json::from_str(&text).expect("json")).expect("schema")
    }

    fn check(v: &jsonschema::Validator, bytes: &[u8]) {
        let doc: serde_json::Value = serde_json::from_slice(bytes).expect("json");
        let errors: Vec<String> = v.iter_errors(&doc).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{errors:?}\n{doc}");
    }

    #[test]
    fn status_and_health_match_their_published_schemas() {
        let status_schema = validator("status.v1.json");
        for (state, reason) in [
            ("online", "connected"),
            ("offline", "shutdown"),
            ("offline", "connection lost"),
        ] {
            check(&status_schema, &status(state, reason, &cfg()));
        }
        let cam = Arc::new(SourceProgress::new("camera"));
        cam.inferred(Duration::from_millis(42));
        let outbox = OutboxHealth {
            unacked: 3,
            bytes: 1200,
            oldest_age_ms: Some(5_500),
            stats: OutboxStats::default(),
        };
        let h = health(
            &cfg(),
            Duration::from_secs(60),
            &outbox,
            &UplinkStats::default(),
            &[("door".into(), cam)],
        );
        check(&validator("health.v1.json"), &h);
    }
}

#[cfg(test)]
mod tests_support {
    use std::path::Path;

    use vitrine_config::Config;

    pub fn cfg() -> Config {
        Config::parse(
            "[device]\nid = \"box-1\"\nstore_id = \"s\"\n[[microphones]]\nid = \"m\"\ndevice = \"default\"\n",
            Path::new("x.toml"),
        )
        .expect("config")
    }
}
