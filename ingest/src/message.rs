//! What a message is, from its topic and payload: pure, no IO.
//!
//! Topics follow the agent's layout `{prefix}/{store}/{device}/{kind}[/{source}]` (see the
//! AsyncAPI document, `signals/schema/asyncapi.yaml`). A payload must agree with its topic
//! (store, device, schema); anything else is a [`Reject`] with the reason, stored by the
//! ingest in its `rejected` table, never silently dropped.

use serde_json::Value;

/// Longest excerpt of a rejected payload kept for the data team (no more: it is untrusted).
pub const EXCERPT: usize = 512;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Window,
    Alert,
    Forecast,
    Gap,
    ConfigResult,
    /// A technician's accuracy audit of a line (`vitrine setup` / `vitrine audit`).
    Audit,
    /// The store's occupancy counted by a box (a window's, or the live count).
    Occupancy,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Window => "window",
            Kind::Alert => "alert",
            Kind::Forecast => "forecast",
            Kind::Gap => "gap",
            Kind::ConfigResult => "config_result",
            Kind::Audit => "audit",
            Kind::Occupancy => "occupancy",
        }
    }
    fn schema(self) -> &'static str {
        match self {
            Kind::Window => "vitrine.window.v1",
            Kind::Alert => "vitrine.alert.v1",
            Kind::Forecast => "vitrine.forecast.v1",
            Kind::Gap => "vitrine.gap.v1",
            Kind::ConfigResult => "vitrine.config-result.v1",
            Kind::Audit => "vitrine.audit.v1",
            Kind::Occupancy => "vitrine.occupancy.v1",
        }
    }
}

/// One event of a box, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRow {
    pub key: String,
    pub store_id: String,
    pub device_id: String,
    pub seq: i64,
    pub kind: Kind,
    pub source_id: Option<String>,
    /// RFC 3339, windows only.
    pub window: Option<(String, String)>,
    /// The seqs a gap record accounts for, inclusive.
    pub lost: Option<(i64, i64)>,
    pub payload: Value,
}

/// A box's status (`online`/`offline`, the last will included).
#[derive(Debug, Clone, PartialEq)]
pub struct StatusRow {
    pub store_id: String,
    pub device_id: String,
    pub state: String,
    pub reason: String,
    pub version: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    Event(EventRow),
    Status(StatusRow),
    /// A sale from the store's point of sale (`crate::pos`).
    Transaction(crate::pos::TransactionRow),
    /// Published by the agent but not stored by this ingest (health: QoS 0 telemetry).
    Ignored,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{reason}")]
pub struct Reject {
    pub reason: String,
}

fn reject(reason: impl Into<String>) -> Reject {
    Reject {
        reason: reason.into(),
    }
}

/// The bounded excerpt of an untrusted payload kept beside a rejection.
pub fn excerpt(payload: &[u8]) -> String {
    let cut = &payload[..payload.len().min(EXCERPT)];
    // PostgreSQL text holds no NUL.
    String::from_utf8_lossy(cut).replace('\0', "\u{fffd}")
}

/// Classify a message received under `prefix`.
pub fn classify(prefix: &str, topic: &str, payload: &[u8]) -> Result<Incoming, Reject> {
    let rest = topic
        .strip_prefix(prefix)
        .and_then(|r| r.strip_prefix('/'))
        .ok_or_else(|| reject(format!("topic outside the prefix {prefix:?}")))?;
    let parts: Vec<&str> = rest.split('/').collect();
    let (store, device, kind, source) = match parts.as_slice() {
        [s, d, k] => (*s, *d, *k, None),
        [s, d, k, x] => (*s, *d, *k, Some(*x)),
        _ => {
            return Err(reject(
                "topic is not {prefix}/{store}/{device}/{kind}[/{source}]",
            ))
        }
    };
    let kind = match (kind, source) {
        ("health", None) => return Ok(Incoming::Ignored),
        ("transaction", None) if device == "pos" => {
            return crate::pos::from_message(store, payload)
                .map(Incoming::Transaction)
                .map_err(reject)
        }
        ("status", None) => return status(store, device, payload),
        ("window", Some(_)) => Kind::Window,
        ("alert", Some(_)) => Kind::Alert,
        ("audit", Some(_)) => Kind::Audit,
        // Forecasts take a seq like every event: stored, or the seq would look lost.
        ("forecast", Some(_)) => Kind::Forecast,
        ("occupancy", Some(_)) => Kind::Occupancy,
        ("gap", None) => Kind::Gap,
        ("config", Some("result")) => Kind::ConfigResult,
        _ => return Err(reject(format!("unknown topic kind {kind:?}"))),
    };
    let v: Value =
        serde_json::from_slice(payload).map_err(|e| reject(format!("payload is not JSON: {e}")))?;
    let text = |field: &str| -> Result<String, Reject> {
        v.get(field)
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| reject(format!("{field} missing or not a string")))
    };
    if text("schema")? != kind.schema() {
        return Err(reject(format!(
            "schema is not {} on a {} topic",
            kind.schema(),
            kind.as_str()
        )));
    }
    if text("store_id")? != store || text("device_id")? != device {
        return Err(reject("store_id/device_id disagree with the topic"));
    }
    let seq = v
        .get("seq")
        .and_then(Value::as_i64)
        .filter(|s| *s >= 1)
        .ok_or_else(|| reject("seq missing or not a positive integer"))?;
    let key = text("idempotency_key")?;
    if !key.starts_with(&format!("{store}/{device}/")) {
        return Err(reject(
            "idempotency_key does not name this store and device",
        ));
    }
    let source_id = match (kind, source) {
        (Kind::Window | Kind::Alert | Kind::Forecast | Kind::Audit | Kind::Occupancy, Some(s)) => {
            if text("source_id")? != s {
                return Err(reject("source_id disagrees with the topic"));
            }
            Some(s.to_string())
        }
        _ => None,
    };
    let window = match kind {
        // An occupancy window is stored with its span too (conversion sums them by hour).
        Kind::Window | Kind::Occupancy if kind == Kind::Window || v.get("window").is_some() => {
            let w = v.get("window").ok_or_else(|| reject("window missing"))?;
            let at = |f: &str| {
                w.get(f)
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .ok_or_else(|| reject(format!("window.{f} missing")))
            };
            Some((at("start")?, at("end")?))
        }
        _ => None,
    };
    let lost = match kind {
        Kind::Gap => {
            let at = |f: &str| {
                v.pointer(&format!("/lost/{f}"))
                    .and_then(Value::as_i64)
                    .ok_or_else(|| reject(format!("lost.{f} missing")))
            };
            Some((at("from_seq")?, at("to_seq")?))
        }
        _ => None,
    };
    Ok(Incoming::Event(EventRow {
        key,
        store_id: store.to_string(),
        device_id: device.to_string(),
        seq,
        kind,
        source_id,
        window,
        lost,
        payload: v,
    }))
}

fn status(store: &str, device: &str, payload: &[u8]) -> Result<Incoming, Reject> {
    #[derive(serde::Deserialize)]
    struct Status {
        state: String,
        reason: String,
        store_id: String,
        device_id: String,
        version: Option<String>,
    }
    let s: Status =
        serde_json::from_slice(payload).map_err(|e| reject(format!("status payload: {e}")))?;
    if s.store_id != store || s.device_id != device {
        return Err(reject("store_id/device_id disagree with the topic"));
    }
    if s.state != "online" && s.state != "offline" {
        return Err(reject(format!("unknown state {:?}", s.state)));
    }
    Ok(Incoming::Status(StatusRow {
        store_id: s.store_id,
        device_id: s.device_id,
        state: s.state,
        reason: s.reason,
        version: s.version,
    }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn window(store: &str, source: &str, seq: i64) -> Vec<u8> {
        serde_json::json!({
            "schema": "vitrine.window.v1", "store_id": store, "device_id": "d1", "source_id": source,
            "seq": seq, "idempotency_key": format!("{store}/d1/{source}/0/{seq}"),
            "window": {"start": "2026-12-02T10:00:00Z", "end": "2026-12-02T10:01:00Z", "seconds": 60},
        })
        .to_string()
        .into_bytes()
    }

    #[test]
    fn a_window_becomes_a_row_keyed_by_its_idempotency_key() {
        let Ok(Incoming::Event(e)) = classify(
            "vitrine",
            "vitrine/s1/d1/window/door",
            &window("s1", "door", 7),
        ) else {
            panic!("not an event")
        };
        assert_eq!(e.key, "s1/d1/door/0/7");
        assert_eq!((e.seq, e.kind), (7, Kind::Window));
        assert_eq!(e.window.unwrap().0, "2026-12-02T10:00:00Z");
    }

    #[test]
    fn a_payload_that_disagrees_with_its_topic_is_rejected_with_the_reason() {
        let r = classify(
            "vitrine",
            "vitrine/s2/d1/window/door",
            &window("s1", "door", 7),
        );
        assert!(r.unwrap_err().reason.contains("disagree"));
        let r = classify(
            "vitrine",
            "vitrine/s1/d1/window/till",
            &window("s1", "door", 7),
        );
        assert!(r.unwrap_err().reason.contains("source_id"));
        let r = classify(
            "vitrine",
            "vitrine/s1/d1/alert/door",
            &window("s1", "door", 7),
        );
        assert!(r.unwrap_err().reason.contains("schema"));
        let r = classify("vitrine", "vitrine/s1/d1/window/door", b"\xff{not json");
        assert!(r.unwrap_err().reason.contains("JSON"));
        let r = classify("vitrine", "elsewhere/s1/d1/window/door", b"{}");
        assert!(r.unwrap_err().reason.contains("prefix"));
    }

    #[test]
    fn an_audit_is_an_event_of_its_camera() {
        let p = serde_json::json!({"schema": "vitrine.audit.v1", "store_id": "s", "device_id": "d", "seq": 4,
            "source_id": "door", "idempotency_key": "s/d/door/audit/entry/1000/4", "line": "entry"});
        let Ok(Incoming::Event(e)) = classify(
            "vitrine",
            "vitrine/s/d/audit/door",
            p.to_string().as_bytes(),
        ) else {
            panic!()
        };
        assert_eq!(
            (e.kind, e.source_id.as_deref()),
            (Kind::Audit, Some("door"))
        );
        let r = classify(
            "vitrine",
            "vitrine/s/d/audit/till",
            p.to_string().as_bytes(),
        );
        assert!(r.unwrap_err().reason.contains("source_id"));
    }

    #[test]
    fn gap_records_carry_the_range_they_account_for() {
        let p = serde_json::json!({"schema": "vitrine.gap.v1", "store_id": "s", "device_id": "d", "seq": 9,
            "idempotency_key": "s/d/gap/9", "lost": {"from_seq": 3, "to_seq": 8, "count": 6}, "reason": "full"});
        let Ok(Incoming::Event(e)) =
            classify("vitrine", "vitrine/s/d/gap", p.to_string().as_bytes())
        else {
            panic!()
        };
        assert_eq!(e.lost, Some((3, 8)));
    }

    #[test]
    fn status_and_the_last_will_update_the_device() {
        let p = br#"{"schema":"vitrine.status.v1","state":"offline","reason":"connection lost","store_id":"s","device_id":"d","version":"0.1.0","sources":[]}"#;
        let Ok(Incoming::Status(s)) = classify("vitrine", "vitrine/s/d/status", p) else {
            panic!()
        };
        assert_eq!(
            (s.state.as_str(), s.reason.as_str()),
            ("offline", "connection lost")
        );
        assert_eq!(
            classify("vitrine", "vitrine/s/d/health", b"{}"),
            Ok(Incoming::Ignored)
        );
    }

    #[test]
    fn excerpts_of_untrusted_payloads_are_bounded() {
        assert_eq!(excerpt(&[b'a'; 10_000]).len(), EXCERPT);
    }
}
