//! The topic layout (see the table in `uplink`'s documentation).

use vitrine_config::Mqtt;

/// The schema name of gap records (`signals/schema/gap.v1.json`).
pub const GAP_SCHEMA: &str = "vitrine.gap.v1";

#[derive(Debug, Clone)]
pub struct Topics {
    pub status: String,
    base: String,
}

impl Topics {
    pub fn new(mqtt: &Mqtt, store: &str, device: &str) -> Topics {
        let base = format!("{}/{}/{}", mqtt.topic_prefix, store, device);
        Topics {
            status: format!("{base}/status"),
            base,
        }
    }
    pub fn window(&self, source: &str) -> String {
        format!("{}/window/{source}", self.base)
    }
    pub fn gap(&self) -> String {
        format!("{}/gap", self.base)
    }
    pub fn health(&self) -> String {
        format!("{}/health", self.base)
    }
}

/// The topic of a stored record: window events name their source; gap records say so in
/// their schema. Nothing else is ever stored (an empty or unencodable event is refused by the
/// outbox); a record that is neither is logged and sent to the gap topic, where a consumer
/// that validates against the schema rejects it loudly.
pub fn topic_of(topics: &Topics, payload: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Hint {
        source_id: Option<String>,
        schema: Option<String>,
    }
    match serde_json::from_slice::<Hint>(payload) {
        Ok(Hint {
            source_id: Some(s), ..
        }) => topics.window(&s),
        Ok(Hint {
            schema: Some(s), ..
        }) if s == GAP_SCHEMA => topics.gap(),
        _ => {
            tracing::error!(
                bytes = payload.len(),
                "outbox record is neither a window event nor a gap record; sent to the gap topic"
            );
            topics.gap()
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
        assert_eq!(
            topic_of(&t, br#"{"source_id":"door","seq":1}"#),
            "vitrine/s/d/window/door"
        );
        assert_eq!(
            topic_of(&t, br#"{"schema":"vitrine.gap.v1","seq":2}"#),
            "vitrine/s/d/gap"
        );
        assert_eq!(t.health(), "vitrine/s/d/health");
        assert_eq!(t.status, "vitrine/s/d/status");
    }
}
