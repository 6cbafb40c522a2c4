//! The topic layout (see the table in `uplink`'s documentation).

use vitrine_config::Mqtt;
use vitrine_signals::alert::ALERT_SCHEMA;
use vitrine_signals::audit::AUDIT_SCHEMA;
use vitrine_signals::forecast::FORECAST_SCHEMA;
use vitrine_signals::occupancy::OCCUPANCY_SCHEMA;

use crate::remote::RESULT_SCHEMA;

/// The schema name of gap records (`signals/schema/gap.v1.json`).
pub const GAP_SCHEMA: &str = "vitrine.gap.v1";

#[derive(Debug, Clone)]
pub struct Topics {
    pub status: String,
    base: String,
    /// The chain's prior, for every box of the chain (retained; the box subscribes).
    pub chain_prior: String,
    /// The chain prior's rounds: announced, and who is missing (the box subscribes).
    pub chain_round: String,
    pub chain_missing: String,
}

impl Topics {
    pub fn new(mqtt: &Mqtt, store: &str, device: &str) -> Topics {
        let base = format!("{}/{}/{}", mqtt.topic_prefix, store, device);
        Topics {
            status: format!("{base}/status"),
            base,
            chain_prior: format!("{}/chain/prior", mqtt.topic_prefix),
            chain_round: format!("{}/chain/round", mqtt.topic_prefix),
            chain_missing: format!("{}/chain/round/missing", mqtt.topic_prefix),
        }
    }
    /// The box's federation key (retained), masked updates and reveals (`federate`).
    pub fn federate(&self, what: &str) -> String {
        format!("{}/federate/{what}", self.base)
    }
    pub fn window(&self, source: &str) -> String {
        format!("{}/window/{source}", self.base)
    }
    pub fn alert(&self, source: &str) -> String {
        format!("{}/alert/{source}", self.base)
    }
    /// A technician's accuracy audit of one of the camera's lines.
    pub fn audit(&self, source: &str) -> String {
        format!("{}/audit/{source}", self.base)
    }
    pub fn forecast(&self, source: &str) -> String {
        format!("{}/forecast/{source}", self.base)
    }
    /// The store's occupancy counted by this box (retained: the last one is the count now).
    pub fn occupancy(&self, source: &str) -> String {
        format!("{}/occupancy/{source}", self.base)
    }
    pub fn gap(&self) -> String {
        format!("{}/gap", self.base)
    }
    pub fn health(&self) -> String {
        format!("{}/health", self.base)
    }
    /// Where the central service sends this box a configuration (the box subscribes).
    pub fn config_set(&self) -> String {
        format!("{}/config/set", self.base)
    }
    pub fn config_result(&self) -> String {
        format!("{}/config/result", self.base)
    }
}

/// The topic of a stored record, and whether the broker retains it: alerts, forecasts and
/// occupancy say so in their schema (forecasts and occupancy are retained: the latest one is
/// state); other events naming
/// a source are windows; gap records say so in their schema. Nothing else is ever stored (an empty or unencodable event is refused by the
/// outbox); a record that is neither is logged and sent to the gap topic, where a consumer
/// that validates against the schema rejects it loudly.
pub fn topic_of(topics: &Topics, payload: &[u8]) -> (String, bool) {
    #[derive(serde::Deserialize)]
    struct Hint {
        source_id: Option<String>,
        schema: Option<String>,
    }
    match serde_json::from_slice::<Hint>(payload) {
        Ok(Hint {
            source_id: Some(s),
            schema: Some(schema),
        }) if schema == ALERT_SCHEMA => (topics.alert(&s), false),
        Ok(Hint {
            source_id: Some(s),
            schema: Some(schema),
        }) if schema == FORECAST_SCHEMA => (topics.forecast(&s), true),
        Ok(Hint {
            source_id: Some(s),
            schema: Some(schema),
        }) if schema == AUDIT_SCHEMA => (topics.audit(&s), false),
        Ok(Hint {
            source_id: Some(s),
            schema: Some(schema),
        }) if schema == OCCUPANCY_SCHEMA => (topics.occupancy(&s), true),
        Ok(Hint {
            source_id: Some(s), ..
        }) => (topics.window(&s), false),
        Ok(Hint {
            schema: Some(s), ..
        }) if s == RESULT_SCHEMA => (topics.config_result(), false),
        Ok(Hint {
            schema: Some(s), ..
        }) if s == GAP_SCHEMA => (topics.gap(), false),
        _ => {
            tracing::error!(
                bytes = payload.len(),
                "outbox record is neither a window event nor a gap record; sent to the gap topic"
            );
            (topics.gap(), false)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topics() -> Topics {
        let mqtt: Mqtt = vitrine_config::Config::parse(
            "[device]\nid = \"d\"\nstore_id = \"s\"\n[[microphones]]\nid = \"m\"\ndevice = \"default\"\n[mqtt]\nurl = \"mqtt://localhost\"\n",
            std::path::Path::new("x.toml"),
        )
        .expect("config")
        .mqtt
        .expect("mqtt");
        Topics::new(&mqtt, "s", "d")
    }

    #[test]
    fn records_go_to_the_topic_their_content_names() {
        let t = topics();
        let topic = |p: &[u8]| topic_of(&t, p);
        assert_eq!(
            topic(br#"{"schema":"vitrine.window.v1","source_id":"door","seq":1}"#),
            ("vitrine/s/d/window/door".into(), false)
        );
        assert_eq!(
            topic(br#"{"schema":"vitrine.occupancy.v1","source_id":"store","seq":9}"#),
            ("vitrine/s/d/occupancy/store".into(), true)
        );
        assert_eq!(
            topic(br#"{"schema":"vitrine.gap.v1","seq":2}"#),
            ("vitrine/s/d/gap".into(), false)
        );
        assert_eq!(
            topic(br#"{"schema":"vitrine.alert.v1","source_id":"door","seq":3}"#),
            ("vitrine/s/d/alert/door".into(), false)
        );
        assert_eq!(
            topic(br#"{"schema":"vitrine.forecast.v1","source_id":"door","seq":4}"#),
            ("vitrine/s/d/forecast/door".into(), true),
            "the latest forecast is retained"
        );
        assert_eq!(
            topic(br#"{"schema":"vitrine.config-result.v1","seq":5}"#),
            ("vitrine/s/d/config/result".into(), false)
        );
        assert_eq!(t.health(), "vitrine/s/d/health");
        assert_eq!(t.config_set(), "vitrine/s/d/config/set");
        assert_eq!(t.status, "vitrine/s/d/status");
    }
}
