//! Opening the device's durable outbox, and the gap records it writes.

use vitrine_config::Config;

use crate::outbox::{DirStorage, GapPayload, Limits, Outbox};

/// The payload of a gap record (`signals/schema/gap.v1.json`).
pub fn gap_payload(cfg: &Config) -> GapPayload {
    let (device, store) = (cfg.device.id.clone(), cfg.device.store_id.clone());
    Box::new(move |seq, g| {
        serde_json::json!({
            "schema": crate::uplink::GAP_SCHEMA,
            "device_id": device,
            "store_id": store,
            "seq": seq,
            "idempotency_key": format!("{store}/{device}/gap/{seq}"),
            "lost": { "from_seq": g.from_seq, "to_seq": g.to_seq, "count": g.count },
            "reason": "the outbox was full or could not be written; these events were dropped on the device",
        })
        .to_string()
        .into_bytes()
    })
}

/// Open the device's durable outbox (it also numbers the events).
pub fn open_outbox(cfg: &Config) -> anyhow::Result<Outbox<DirStorage>> {
    let dir = &cfg.outbox.dir;
    let storage = DirStorage::open(dir).map_err(|e| {
        anyhow::anyhow!(
            "cannot open the outbox directory {}: {e}; fix: check outbox.dir and its permissions",
            dir.display()
        )
    })?;
    let gap = gap_payload(cfg);
    let (outbox, report) = Outbox::open(
        storage,
        Limits {
            reserve_bytes: cfg.outbox.reserve_bytes,
            ..Limits::for_cap(cfg.outbox.max_bytes)
        },
        gap,
    )
    .map_err(|e| anyhow::anyhow!("outbox {}: {e}", dir.display()))?;
    if report.truncated_bytes > 0 {
        tracing::warn!(
            bytes = report.truncated_bytes,
            "outbox: cut a torn or corrupt tail (an interrupted write)"
        );
    }
    if let Some(g) = report.corrupt_gap {
        tracing::error!(
            from = g.from_seq,
            to = g.to_seq,
            count = g.count,
            "outbox: records lost to corruption; a gap record will report them"
        );
    }
    tracing::info!(
        unacked = report.unacked,
        segments = report.segments,
        next_seq = outbox.next_seq(),
        "outbox opened"
    );
    Ok(outbox)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn gap_records_match_their_schema() {
        let cfg = Config::parse("[device]\nid = \"box-1\"\nstore_id = \"s.42\"\n[[microphones]]\nid = \"m\"\ndevice = \"default\"\n", Path::new("x.toml")).expect("config");
        let payload = gap_payload(&cfg)(
            17,
            &crate::outbox::Gap {
                from_seq: 3,
                to_seq: 9,
                count: 6,
            },
        );
        let v: serde_json::Value = serde_json::from_slice(&payload).expect("json");
        let schema: serde_json::Value =
            serde_json::from_str(include_str!("../../../signals/schema/gap.v1.json"))
                .expect("schema");
        let validator = jsonschema::validator_for(&schema).expect("valid schema");
        assert!(validator.is_valid(&v), "{v}");
        assert_eq!(v["lost"]["count"], 6);
        assert_eq!(v["idempotency_key"], "s.42/box-1/gap/17");
    }
}
