//! Privacy by construction, checked on real media end to end: what reaches the broker, the
//! logs and the disk is aggregates only. No pixel or sample bytes, nothing per person (ids,
//! boxes, positions), no timestamp finer than the window.

mod common;

use std::time::Duration;

use common::*;
use serde_json::Value;

/// Keys that would carry per-person or raw data. None may appear anywhere in a payload.
const FORBIDDEN_KEYS: &[&str] = &[
    "bbox",
    "box",
    "boxes",
    "track",
    "track_id",
    "tracks",
    "x",
    "y",
    "x1",
    "y1",
    "x2",
    "y2",
    "face",
    "faces",
    "embedding",
    "landmarks",
    "pixels",
    "frame",
    "image",
    "samples",
    "audio",
    "timestamp",
    "t_ms",
];

fn walk(v: &Value, path: &str, f: &mut dyn FnMut(&str, &Value)) {
    f(path, v);
    match v {
        Value::Object(m) => m
            .iter()
            .for_each(|(k, v)| walk(v, &format!("{path}.{k}"), f)),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .for_each(|(i, v)| walk(v, &format!("{path}[{i}]"), f)),
        _ => {}
    }
}

fn is_rfc3339(s: &str) -> bool {
    s.len() == 20 && s.as_bytes()[4] == b'-' && s.as_bytes()[10] == b'T' && s.ends_with('Z')
}

#[test]
fn only_aggregates_reach_the_wire_the_logs_and_the_disk() {
    let broker = Mosquitto::start();
    let sub = Subscriber::start(broker.port, "#");
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        &format!(
            "{}\n[[microphones]]\nid = \"floor\"\nfile = \"{}\"\n[mqtt]\nurl = \"mqtt://127.0.0.1:{}\"\n[privacy]\nwindow_secs = 10\n",
            walkway_camera(2),
            media("prompts.wav").display(),
            broker.port
        ),
    );
    // Most verbose logging: even debug output must not carry raw or per-person data.
    let out = vitrine()
        .env("VITRINE_LOG", "debug")
        .args(["run", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let msgs = sub.drain(Duration::from_secs(2));
    assert!(msgs.len() >= 10, "{} messages", msgs.len());
    let schema = schema();

    // 1. The wire: small UTF-8 JSON documents, aggregates only.
    for (topic, payload, _) in &msgs {
        assert!(
            payload.len() < 4096,
            "{topic}: {} bytes is more than an aggregate",
            payload.len()
        );
        let text = std::str::from_utf8(payload).expect("payloads are text, never binary");
        assert!(
            text.chars().all(|c| !c.is_control()),
            "{topic}: control bytes in payload"
        );
        let v: Value = serde_json::from_str(text).expect("payloads are JSON");
        if topic.contains("/window/") {
            // The strict schema (additionalProperties: false everywhere) admits no extra field.
            assert_valid(&schema, &v);
            let (start, end) = (v["window"]["start"].clone(), v["window"]["end"].clone());
            walk(&v, "", &mut |path, x| {
                let key = path.rsplit('.').next().unwrap_or("");
                assert!(
                    !FORBIDDEN_KEYS.contains(&key),
                    "{topic}: forbidden key at {path}"
                );
                if let Value::String(s) = x {
                    assert!(s.len() < 200, "{topic}: long string at {path}");
                    if is_rfc3339(s) {
                        assert!(
                            *x == start || *x == end,
                            "{topic}: timestamp {s} finer than the window at {path}"
                        );
                    }
                }
                if let Value::Array(a) = x {
                    assert!(
                        a.iter().all(Value::is_object),
                        "{topic}: bare number array at {path} (coordinates?)"
                    );
                }
            });
        }
    }

    // 2. The logs (stderr), at debug level.
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.lines().count() > 3, "the run logged something");
    for line in log.lines() {
        for word in [
            "bbox",
            "BBox",
            "track_id",
            "TrackView",
            "rgb",
            "Detection {",
            "samples: [",
        ] {
            assert!(!line.contains(word), "log line carries {word:?}: {line}");
        }
        assert!(
            line.split_whitespace().all(|w| w.len() < 200),
            "suspiciously long token in log: {line}"
        );
        assert!(
            line.matches(", ").count() < 40,
            "log line looks like a data dump: {line}"
        );
    }

    // 3. The disk: the outbox holds framed JSON aggregates and nothing media-like.
    let state = dir.path().join("state");
    for entry in std::fs::read_dir(&state).unwrap() {
        let p = entry.unwrap().path();
        let bytes = std::fs::read(&p).unwrap();
        assert!(bytes.len() < 1024 * 1024, "{} is large", p.display());
        for magic in [
            &b"\xff\xd8\xff"[..],
            b"\x89PNG",
            b"RIFF",
            b"fLaC",
            b"\x1aE\xdf\xa3",
        ] {
            assert!(
                !bytes.windows(magic.len()).any(|w| w == magic),
                "{} holds media bytes",
                p.display()
            );
        }
    }
    // Everything published was acknowledged and removed: nothing is left behind.
    assert!(outbox_events(&state).is_empty());
}
