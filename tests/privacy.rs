//! Privacy by construction, checked on real media end to end: what reaches the broker, the
//! logs and the disk is aggregates only. No pixel or sample bytes, nothing per person (ids,
//! boxes, positions), no timestamp finer than the window.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::scan::*;
use common::*;
use serde_json::Value;

/// Numbers that could time an individual: a Unix time (s or ms) that is not a window
/// boundary, anywhere in a payload (in numbers, or digit runs inside strings such as keys).
fn finer_than_the_window(v: &Value, window_ms: u64) -> Vec<String> {
    let mut bad = Vec::new();
    let mut check = |path: &str, n: u64| {
        let ms = if (1_000_000_000..10_000_000_000).contains(&n) {
            Some(n * 1000)
        } else if (1_000_000_000_000..10_000_000_000_000).contains(&n) {
            Some(n)
        } else {
            None
        };
        if ms.is_some_and(|ms| ms % window_ms != 0) {
            bad.push(format!("{path}: {n}"));
        }
    };
    walk(v, "", &mut |path, x| match x {
        Value::Number(n) => {
            if let Some(n) = n.as_u64() {
                check(path, n);
            } else if let Some(f) = n.as_f64() {
                if f >= 1e9 {
                    check(path, f as u64);
                }
            }
        }
        Value::String(s) => {
            for run in s
                .split(|c: char| !c.is_ascii_digit())
                .filter(|r| r.len() >= 10)
            {
                if let Ok(n) = run.parse::<u64>() {
                    check(path, n);
                }
            }
        }
        _ => {}
    });
    bad
}

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
    "appearance",
    "descriptor",
    "histogram",
    "colour",
    "color",
    "reid",
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
    // Displays read lookers' expressions (opt-in): the faces of walkers looking into the
    // camera (Intel's sample, where the evaluation media are) go through the expression model.
    let expressions = "expressions = true\nexpressions_min_face_px = 48\n";
    let mut cameras = walkway_camera(2).replace(
        "id = \"info-sign\"\n",
        &format!("id = \"info-sign\"\n{expressions}"),
    );
    if let Some(gif) = eval_media("video/intel-previews/face-demographics-walking-and-pause.gif") {
        cameras.push_str(&format!(
            "\n[[cameras]]\nid = \"shelf-cam\"\nfile = \"{}\"\nfps = 10\n\n[[cameras.displays]]\nid = \"shelf\"\npolygon = [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]\n{expressions}",
            gif.display()
        ));
    }
    let cfg = write_config(
        dir.path(),
        &format!(
            "{cameras}\n[[microphones]]\nid = \"floor\"\nfile = \"{}\"\n[mqtt]\nurl = \"mqtt://127.0.0.1:{}\"\n[privacy]\nwindow_secs = 10\n",
            media("prompts.wav").display(),
            broker.port
        ),
    );
    // Every directory the agent may write: its state, its temp and home directories.
    let (tmp, home) = (dir.path().join("tmp"), dir.path().join("home"));
    std::fs::create_dir_all(&tmp).unwrap();
    std::fs::create_dir_all(&home).unwrap();
    let scanner = Scanner::start(vec![dir.path().join("state"), tmp.clone(), home.clone()]);
    // Most verbose logging: even debug output must not carry raw or per-person data.
    let out = vitrine()
        .env("VITRINE_LOG", "debug")
        .env("TMPDIR", &tmp)
        .env("HOME", &home)
        .args(["run", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let (found, rounds) = scanner.finish();
    assert!(rounds >= 3, "the scanner ran {rounds} times");
    assert!(
        found.is_empty(),
        "media-like bytes on disk while running:\n{}",
        found.join("\n")
    );
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
        // No number or digit run finer than the window (10 s) in any payload.
        let fine = finer_than_the_window(&v, 10_000);
        assert!(fine.is_empty(), "{topic}: {fine:?}");
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
            // The tracker's colour statistics of a person (`signals::track::appearance`):
            // never serialized (a compile-time guard), never printed (its Debug is redacted).
            "Appearance",
            "appearance",
            "parts: [",
            // A face's expression reading (`attention::Reading`) stays in the accumulator.
            "Reading {",
            "face_px",
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

    // 3. The disk, after the run too (the live scan above saw it while events waited).
    for d in [dir.path().join("state"), tmp, home] {
        let found = scan_for_media(&d);
        assert!(found.is_empty(), "{}", found.join("\n"));
    }
    // Everything published was acknowledged and removed: nothing is left behind.
    assert!(outbox_events(&dir.path().join("state")).is_empty());
}

/// Events waiting in the outbox (no broker configured: nothing is acknowledged, nothing
/// deleted) are the same aggregates: JSON that passes the strict schema, nothing media-like
/// in the segments.
#[test]
fn events_waiting_in_the_outbox_are_aggregates_only() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        &format!(
            "{}\n[[microphones]]\nid = \"floor\"\nfile = \"{}\"\n[privacy]\nwindow_secs = 10\n",
            walkway_camera(2),
            media("prompts.wav").display()
        ),
    );
    run_to_end(&cfg);
    let state = dir.path().join("state");
    let events = outbox_events(&state);
    assert!(events.len() >= 4, "{} events kept", events.len());
    let schema = schema();
    for e in &events {
        assert_valid(&schema, e);
        let fine = finer_than_the_window(e, 10_000);
        assert!(fine.is_empty(), "{fine:?}");
    }
    let found = scan_for_media(&state);
    assert!(found.is_empty(), "{}", found.join("\n"));
}

/// The scanner itself can fail: raw RGB frames and PCM blocks of the real media, planted
/// between JSON records as a leak would put them, are found; the agent's own segments are not.
#[test]
fn the_media_scanner_finds_raw_frames_and_samples() {
    let raw = |args: &[&str]| -> Vec<u8> {
        let out = ok(Command::new("ffmpeg")
            .args(["-v", "error", "-i"])
            .args(args)
            .arg("-"));
        out.stdout
    };
    let video = media("vtest.avi");
    let audio = media("prompts.wav");
    let v = video.to_str().unwrap();
    let a = audio.to_str().unwrap();
    let leaks = [
        (
            "rgb24",
            raw(&[
                v,
                "-frames:v",
                "1",
                "-s",
                "320x240",
                "-pix_fmt",
                "rgb24",
                "-f",
                "rawvideo",
            ]),
        ),
        (
            "yuv420p",
            raw(&[
                v,
                "-frames:v",
                "1",
                "-s",
                "320x240",
                "-pix_fmt",
                "yuv420p",
                "-f",
                "rawvideo",
            ]),
        ),
        (
            "s16le",
            raw(&[
                a, "-ss", "2", "-t", "1", "-ac", "1", "-ar", "16000", "-f", "s16le",
            ]),
        ),
        (
            "f32le",
            raw(&[
                a, "-ss", "2", "-t", "1", "-ac", "1", "-ar", "16000", "-f", "f32le",
            ]),
        ),
    ];
    let json = br#"{"schema":"vitrine.window.v1","people":{"mean":1.5,"max":3}}"#.repeat(40);
    for (what, bytes) in &leaks {
        assert!(bytes.len() > 8192, "{what}: {} bytes", bytes.len());
        // A leak of one frame or block (or any 8 KiB of it) between two records.
        let mut seg = json.clone();
        seg.extend_from_slice(&bytes[..8192]);
        seg.extend_from_slice(&json);
        let found = media_in(Path::new(what), &seg);
        assert!(!found.is_empty(), "{what} leaked and not found");
    }
    // A real outbox with real events: nothing found.
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        &format!(
            "[[microphones]]\nid = \"floor\"\nfile = \"{}\"\n[privacy]\nwindow_secs = 5\n",
            media("prompts.wav").display()
        ),
    );
    run_to_end(&cfg);
    assert!(!outbox_events(&dir.path().join("state")).is_empty());
    let found = scan_for_media(&dir.path().join("state"));
    assert!(found.is_empty(), "false alarm: {}", found.join("\n"));
}

/// The store-operations fields: every count published is 0 or at least k (queues, funnel,
/// alerts, forecasts, groups at lines, staff movements, the store's occupancy), heatmap cells are nulls where suppressed, no per-person key anywhere,
/// bare number arrays only where the schema has them (heatmap cells, forecast hours), and an
/// alert — the one payload stamped finer than its window — carries the second and one value.
#[test]
fn store_operations_publish_no_count_below_k_and_no_per_person_record() {
    let k = 3u64;
    let broker = Mosquitto::start();
    let sub = Subscriber::start(broker.port, "#");
    let dir = tempfile::tempdir().unwrap();
    let ops = format!(
        "[[cameras.queues]]\nid = \"q\"\npolygon = [[0.0, 0.31], [0.42, 0.31], [0.42, 0.50], [0.0, 0.45]]\nservice = [[0.48, 0.34], [0.64, 0.34], [0.64, 0.52], [0.48, 0.52]]\nabandon_secs = 2\n[cameras.heatmap]\n[cameras.funnel]\nentered = \"walkway-x045\"\nengaged = [\"info-sign\"]\nengaged_secs = 1\ncheckout = \"pavement-west\"\n[[cameras.alerts]]\nid = \"rush\"\nline = \"walkway-x045\"\nabove = {k}\nhold_secs = 0\nmin_interval_secs = 0\n[[cameras.alerts]]\nid = \"wait\"\nqueue = \"q\"\nabove = 1\nhold_secs = 0\nmin_interval_secs = 0\n[cameras.staff]\nareas = [{{ id = \"west-end\", polygon = [[0.0, 0.25], [0.12, 0.25], [0.12, 0.6], [0.0, 0.6]] }}]\n"
    );
    let cfg = write_config(
        dir.path(),
        &format!(
            "{}{ops}\n[mqtt]\nurl = \"mqtt://127.0.0.1:{}\"\n[privacy]\nwindow_secs = 10\nk_min = {k}\n[occupancy]\nentrances = [\"walkway/walkway-x045\"]\ncapacity = {k}\n",
            walkway_camera(5),
            broker.port
        ),
    );
    run_to_end(&cfg);
    let msgs = sub.drain(Duration::from_secs(2));
    let counts = [
        "length_max",
        "served",
        "abandoned",
        "passed",
        "entered",
        "engaged",
        "checkout",
        "in",
        "out",
        "groups_in",
        "groups_out",
        "people",
        "visits",
        "occupancy_max",
        "max",
        "count",
    ];
    let (mut windows, mut alerts, mut occupancy) = (0, 0, 0);
    for (topic, payload, _) in &msgs {
        let v: Value = serde_json::from_slice(payload).unwrap();
        walk(&v, "", &mut |path, x| {
            let key = path.rsplit('.').next().unwrap_or("");
            assert!(
                !FORBIDDEN_KEYS.contains(&key),
                "{topic}: forbidden key at {path}"
            );
            if counts.contains(&key) && !path.contains("seconds") && !path.starts_with(".people") {
                if let Some(n) = x.as_u64() {
                    assert!(n == 0 || n >= k, "{topic}: count {n} below k at {path}");
                }
            }
            if let Value::Array(a) = x {
                let numbers_allowed =
                    path.ends_with("person_seconds") || path.ends_with("next_hours");
                assert!(
                    numbers_allowed || !a.iter().any(Value::is_number),
                    "{topic}: bare number array at {path}"
                );
            }
        });
        if topic.contains("/window/") && v["kind"] == "camera" {
            windows += 1;
            let h = &v["heatmap"];
            let cells = h["person_seconds"].as_array().unwrap();
            assert_eq!(cells.len(), 16 * 12);
            let nulls = cells.iter().filter(|c| c.is_null()).count() as u64;
            assert_eq!(nulls, h["suppressed_cells"].as_u64().unwrap());
            assert!(v["staff"]["lines"].is_array(), "a staff section: {v}");
            let fine = finer_than_the_window(&v, 10_000);
            assert!(fine.is_empty(), "{topic}: {fine:?}");
        }
        if topic.ends_with("/occupancy/store") {
            occupancy += 1;
            if v["kind"] == "live" {
                assert!(is_rfc3339(v["at"].as_str().unwrap()));
            } else {
                let fine = finer_than_the_window(&v, 10_000);
                assert!(fine.is_empty(), "{topic}: {fine:?}");
            }
        }
        if topic.contains("/alert/") {
            alerts += 1;
            let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
            assert_eq!(keys.len(), 15, "{v}");
            assert!(is_rfc3339(v["at"].as_str().unwrap()));
            if v["alert"] == "wait" && v["state"] == "raised" {
                // A queue's wait is published only while at least k people wait.
                assert!(v["value"].as_f64().unwrap() > 0.0);
            }
            if v["state"] == "raised" && v["alert"] == "rush" {
                assert!(v["value"].as_f64().unwrap() >= k as f64, "{v}");
            }
        }
    }
    assert!(
        windows >= 7 && alerts >= 1 && occupancy >= windows,
        "{windows} windows, {alerts} alerts, {occupancy} occupancy payloads"
    );
}
