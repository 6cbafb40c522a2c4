//! `vitrine run` on real media into a real Mosquitto started by the test.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use common::*;
use serde_json::Value;

fn config(dir: &std::path::Path, port: u16, fps: u32, mic: &str) -> std::path::PathBuf {
    write_config(
        dir,
        &format!(
            "{}\n[[microphones]]\nid = \"floor\"\nfile = \"{}\"\n\n[mqtt]\nurl = \"mqtt://127.0.0.1:{port}\"\nkeep_alive_secs = 5\n\n[privacy]\nwindow_secs = 10\n",
            walkway_camera(fps),
            media(mic).display()
        ),
    )
}

fn windows(msgs: &[(String, Vec<u8>, bool)]) -> Vec<(String, Value)> {
    msgs.iter()
        .filter(|(t, _, _)| t.contains("/window/"))
        .map(|(t, p, _)| {
            (
                t.clone(),
                serde_json::from_slice(p).expect("payload is JSON"),
            )
        })
        .collect()
}

fn window_seqs(msgs: &[(String, Vec<u8>, bool)]) -> BTreeSet<u64> {
    windows(msgs)
        .iter()
        .map(|(_, e)| e["seq"].as_u64().unwrap())
        .collect()
}

fn statuses(msgs: &[(String, Vec<u8>, bool)]) -> Vec<Value> {
    msgs.iter()
        .filter(|(t, _, _)| t.ends_with("/status"))
        .map(|(_, p, _)| serde_json::from_slice(p).unwrap())
        .collect()
}

#[test]
fn run_publishes_every_window_to_a_real_broker() {
    let broker = Mosquitto::start();
    let sub = Subscriber::start(broker.port, "vitrine/#");
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), broker.port, 2, "speech.wav");
    run_to_end(&cfg);
    let msgs = sub.drain(Duration::from_secs(2));
    let events = windows(&msgs);
    let schema = schema();
    let mut seqs = BTreeSet::new();
    let (mut frames, mut audio_s) = (0, 0.0);
    for (topic, e) in &events {
        assert_valid(&schema, e);
        let source = e["source_id"].as_str().unwrap();
        assert_eq!(
            topic,
            &format!("vitrine/test-store/test-box/window/{source}")
        );
        assert!(seqs.insert(e["seq"].as_u64().unwrap()), "duplicate seq");
        match source {
            "walkway" => frames += e["coverage"]["frames_analysed"].as_u64().unwrap(),
            "floor" => audio_s += e["coverage"]["seconds_analysed"].as_f64().unwrap(),
            other => panic!("unexpected source {other}"),
        }
    }
    // Nothing lost: seq is contiguous from 1, and the windows add up to the whole media.
    assert_eq!(seqs, (1..=events.len() as u64).collect::<BTreeSet<_>>());
    assert_eq!(frames, 159, "79.5 s at 2 fps, every frame in some window");
    assert!((audio_s - 14.5).abs() < 0.2, "{audio_s} s of speech.wav");
    // Status: online when connected, offline (retained) on a clean shutdown.
    let st = statuses(&msgs);
    let status_schema = schema_named("status.v1.json");
    for s in &st {
        assert_valid(&status_schema, s);
    }
    assert_eq!(
        st.first().map(|s| s["state"].clone()),
        Some("online".into()),
        "{st:?}"
    );
    assert_eq!(
        st.last().map(|s| (s["state"].clone(), s["reason"].clone())),
        Some(("offline".into(), "shutdown".into()))
    );
    // A subscriber arriving later still learns the device's state: it is retained.
    let late = Subscriber::start(broker.port, "vitrine/+/+/status");
    let retained = late.drain(Duration::from_millis(500));
    assert_eq!(retained.len(), 1);
    assert!(retained[0].2, "status is retained");
    assert_eq!(
        serde_json::from_slice::<Value>(&retained[0].1).unwrap()["state"],
        "offline"
    );
}

#[test]
fn last_will_marks_the_device_offline_when_killed() {
    let broker = Mosquitto::start();
    let sub = Subscriber::start(broker.port, "vitrine/+/+/status");
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), broker.port, 1, "noise.wav");
    let mut child = vitrine()
        .args(["run", "--realtime", "--config"])
        .arg(&cfg)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let online: Value = serde_json::from_slice(
        &sub.rx
            .recv_timeout(Duration::from_secs(20))
            .expect("online status")
            .1,
    )
    .unwrap();
    assert_eq!(online["state"], "online");
    child.kill().unwrap(); // SIGKILL: no goodbye, the broker must publish the will.
    child.wait().unwrap();
    let (_, payload, _) = sub
        .rx
        .recv_timeout(Duration::from_secs(15))
        .expect("last will");
    let will: Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(
        (will["state"].as_str(), will["reason"].as_str()),
        (Some("offline"), Some("connection lost"))
    );
}

#[test]
fn sequence_numbers_continue_across_restarts() {
    let broker = Mosquitto::start();
    let sub = Subscriber::start(broker.port, "vitrine/+/+/window/#");
    let dir = tempfile::tempdir().unwrap();
    let cfg = mic_to_broker(dir.path(), "noise.wav", broker.port, "");
    for _ in 0..2 {
        run_to_end(&cfg);
    }
    let seqs: Vec<u64> = windows(&sub.drain(Duration::from_secs(1)))
        .iter()
        .map(|(_, e)| e["seq"].as_u64().unwrap())
        .collect();
    assert!(seqs.len() >= 6, "{seqs:?}");
    assert_eq!(
        seqs,
        (1..=seqs.len() as u64).collect::<Vec<_>>(),
        "contiguous across the restart"
    );
}

#[test]
fn sigterm_drains_the_open_windows_and_says_goodbye() {
    let broker = Mosquitto::start();
    let sub = Subscriber::start(broker.port, "vitrine/#");
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), broker.port, 2, "demo-mic.wav");
    let child = spawn_realtime(&cfg);
    let (_, online, _) = sub
        .rx
        .recv_timeout(Duration::from_secs(20))
        .expect("online status");
    assert_eq!(
        serde_json::from_slice::<Value>(&online).unwrap()["state"],
        "online"
    );
    std::thread::sleep(Duration::from_secs(3));
    let out = sigterm_and_wait(child);
    assert!(
        out.status.success(),
        "clean exit on SIGTERM: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let msgs = sub.drain(Duration::from_secs(1));
    let events = windows(&msgs);
    // Both sources publish the window they were in when the stop came, marked as partial.
    let sources: BTreeSet<&str> = events
        .iter()
        .map(|(_, e)| e["source_id"].as_str().unwrap())
        .collect();
    assert_eq!(sources, ["floor", "walkway"].into_iter().collect());
    for (_, e) in &events {
        assert_valid(&schema(), e);
        assert_ne!(e["coverage"]["status"], "blind");
    }
    let last = statuses(&msgs).pop().unwrap();
    assert_eq!(
        (last["state"].as_str(), last["reason"].as_str()),
        (Some("offline"), Some("shutdown"))
    );
}

/// SIGHUP (`systemctl reload`): a valid new file restarts exactly the sources it changed and
/// starts the new ones; a broken file is refused with its errors and changes nothing; every
/// window (including those closed by the restart) is delivered, seqs contiguous.
#[test]
fn sighup_reloads_the_config_restarts_only_changed_sources_and_loses_nothing() {
    let broker = Mosquitto::start();
    let sub = Subscriber::start(broker.port, "vitrine/+/+/window/#");
    let dir = tempfile::tempdir().unwrap();
    let till = dir.path().join("till.wav");
    std::fs::copy(media("demo-mic.wav"), &till).unwrap();
    let mic = |id: &str, file: &std::path::Path| {
        format!(
            "[[microphones]]\nid = \"{id}\"\nfile = \"{}\"\n",
            file.display()
        )
    };
    let common = format!(
        "[mqtt]\nurl = \"mqtt://127.0.0.1:{}\"\n[privacy]\nwindow_secs = 5\n",
        broker.port
    );
    let demo = media("demo-mic.wav");
    let first = format!("{}{}{common}", mic("floor", &demo), mic("till", &demo));
    let cfg = write_config(dir.path(), &first);
    let child = spawn_realtime(&cfg);
    let hup = |pid: u32| {
        assert!(Command::new("kill")
            .args(["-HUP", &pid.to_string()])
            .status()
            .unwrap()
            .success())
    };
    std::thread::sleep(Duration::from_secs(8));
    // `till` now reads another file, `door` is new, `floor` is unchanged.
    let second = format!(
        "{}{}{}{common}",
        mic("floor", &demo),
        mic("till", &till),
        mic("door", &demo)
    );
    write_config(dir.path(), &second);
    hup(child.id());
    std::thread::sleep(Duration::from_secs(8));
    // A broken file: refused, nothing changes, the agent keeps running.
    std::fs::write(&cfg, "[device]\nid = \"test-box\"\nstore_id = 7\n").unwrap();
    hup(child.id());
    std::thread::sleep(Duration::from_secs(3));
    let out = sigterm_and_wait(child);
    let log = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{log}");
    assert!(log.contains("configuration reloaded"), "{log}");
    assert!(
        log.contains("restarted=till")
            && log.contains("started=door")
            && log.contains("unchanged=floor"),
        "{log}"
    );
    assert!(
        log.contains("reload refused") && log.contains("store_id"),
        "{log}"
    );
    let msgs = sub.drain(Duration::from_secs(1));
    let events = windows(&msgs);
    let seqs = window_seqs(&msgs);
    assert_all_delivered(&seqs, 8, dir.path());
    let of = |id: &str| -> Vec<&Value> {
        events
            .iter()
            .map(|(_, e)| e)
            .filter(|e| e["source_id"] == id)
            .collect()
    };
    let partial = |evs: &[&Value]| {
        evs.iter()
            .filter(|e| e["coverage"]["status"] == "partial")
            .count()
    };
    // `floor` ran through both reloads: partial only where it started and stopped.
    let floor = of("floor");
    assert_eq!(partial(&floor[1..floor.len() - 1]), 0, "{floor:?}");
    // `till` was restarted: windows before and after; `door` started with the reload.
    assert!(of("till").len() >= 3, "{:?}", of("till"));
    assert!(!of("door").is_empty());
    let windows_of = |id: &str| {
        of(id)
            .iter()
            .map(|e| {
                format!(
                    "{} {} {}",
                    e["seq"], e["window"]["start"], e["coverage"]["status"]
                )
            })
            .collect::<Vec<_>>()
    };
    assert!(
        of("door").len() < of("floor").len(),
        "floor {:?}\ndoor {:?}\ntill {:?}\n{log}",
        windows_of("floor"),
        windows_of("door"),
        windows_of("till")
    );
}

/// The uplink runs on the async runtime's only worker; while the outbox is stuck (a hung disk
/// holding its lock), that worker must stay free: other tasks (metrics, signals, timers) go
/// on. Before the outbox had an IO thread of its own, this ticker stopped dead.
#[test]
fn the_uplink_never_blocks_the_runtime_on_a_hung_disk() {
    let broker = Mosquitto::start();
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        dir.path(),
        &format!(
            "[[microphones]]\nid = \"floor\"\nfile = \"{}\"\n[mqtt]\nurl = \"mqtt://127.0.0.1:{}\"\n",
            media("demo-mic.wav").display(),
            broker.port
        ),
    );
    let cfg = vitrine_config::Config::load(&path).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let outbox = std::sync::Arc::new(std::sync::Mutex::new(
        vitrine::daemon::open_outbox(&cfg).unwrap(),
    ));
    let uplink = vitrine::uplink::Uplink::new(
        &cfg,
        cfg.mqtt.as_ref().unwrap(),
        outbox.clone(),
        Default::default(),
    )
    .unwrap();
    let stats = uplink.stats.clone();
    let wake = std::sync::Arc::new(tokio::sync::Notify::new());
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let task = rt.spawn(uplink.run(wake.clone(), stop_rx, Duration::from_secs(2)));
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while !stats.lock().unwrap().connected {
        assert!(
            std::time::Instant::now() < deadline,
            "uplink did not connect"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let ticks = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let t = ticks.clone();
    rt.spawn(async move {
        let mut every = tokio::time::interval(Duration::from_millis(20));
        loop {
            every.tick().await;
            t.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    });
    // The disk hangs: the outbox lock is held for 1.5 s while the uplink keeps working
    // (its group-commit tick every 50 ms, a wake-up to send).
    let hung = outbox.lock().unwrap();
    let before = ticks.load(std::sync::atomic::Ordering::Relaxed);
    wake.notify_one();
    std::thread::sleep(Duration::from_millis(1500));
    let during = ticks.load(std::sync::atomic::Ordering::Relaxed) - before;
    drop(hung);
    stop.send(true).unwrap();
    rt.block_on(task).unwrap().unwrap();
    // 75 ticks in 1.5 s when free; a blocked worker gives 0 or 1.
    assert!(
        during >= 30,
        "the runtime's worker was blocked: {during} ticks in 1.5 s"
    );
}

/// libfaketime's preload library, if installed (scripts/setup.sh installs it).
fn libfaketime() -> Option<std::path::PathBuf> {
    let out = Command::new("sh")
        .args([
            "-c",
            "ls /usr/lib/*/faketime/libfaketime.so.1 2>/dev/null | head -1",
        ])
        .output()
        .ok()?;
    let p = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (!p.is_empty()).then(|| p.into())
}

/// A box without a real-time clock boots in 1970 (libfaketime: 20,000 days back); NTP then
/// sets the clock, and later a correction steps it 30 s back. No window is published with a
/// 1970 date, every window is delivered, and no stretch of time is counted twice: within any
/// window's bounds, the analysed seconds of all its parts add up to at most its length.
#[test]
fn a_box_booting_in_1970_holds_its_windows_until_the_clock_is_set_and_steps_split_windows() {
    let Some(faketime) = libfaketime() else {
        eprintln!("SKIPPED: libfaketime is not installed (scripts/setup.sh installs it)");
        return;
    };
    let broker = Mosquitto::start();
    let sub = Subscriber::start(broker.port, "vitrine/+/+/window/#");
    let dir = tempfile::tempdir().unwrap();
    let clock = dir.path().join("faketime");
    std::fs::write(&clock, "-20000d\n").unwrap();
    let cfg = write_config(
        dir.path(),
        &format!(
            "[[microphones]]\nid = \"floor\"\nfile = \"{}\"\n[mqtt]\nurl = \"mqtt://127.0.0.1:{}\"\n[privacy]\nwindow_secs = 5\n",
            media("demo-mic.wav").display(),
            broker.port
        ),
    );
    let child = vitrine()
        .args(["run", "--realtime", "--config"])
        .arg(&cfg)
        .env("LD_PRELOAD", &faketime)
        .env("FAKETIME_TIMESTAMP_FILE", &clock)
        .env("FAKETIME_NO_CACHE", "1")
        .env("DONT_FAKE_MONOTONIC", "1")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(8));
    std::fs::write(&clock, "+0\n").unwrap(); // NTP answers
    std::thread::sleep(Duration::from_secs(8));
    std::fs::write(&clock, "-30s\n").unwrap(); // a correction 30 s back
    std::thread::sleep(Duration::from_secs(8));
    let out = sigterm_and_wait(child);
    let log = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{log}");
    assert_eq!(
        log.matches("the wall clock was stepped").count(),
        2,
        "{log}"
    );
    let msgs = sub.drain(Duration::from_secs(1));
    let events = windows(&msgs);
    let seqs = window_seqs(&msgs);
    assert_contiguous(&seqs, 5, "every window delivered");
    let mut by_window: std::collections::BTreeMap<String, f64> = Default::default();
    for (_, e) in &events {
        assert_valid(&schema(), e);
        let start = e["window"]["start"].as_str().unwrap();
        assert!(
            start >= "2026",
            "a window stamped with the unset clock: {e}"
        );
        assert!(e["window"]["end"].as_str().unwrap() > start, "{e}");
        *by_window.entry(start.to_string()).or_default() +=
            e["coverage"]["seconds_analysed"].as_f64().unwrap();
    }
    for (start, secs) in &by_window {
        assert!(
            *secs <= 5.1,
            "{secs} s analysed in the window starting {start}: time counted twice\n{log}"
        );
    }
    let analysed: f64 = by_window.values().sum();
    assert!(analysed > 18.0, "{analysed} s analysed of ~24 s\n{log}");
}

/// Fault: the broker is killed (SIGKILL) while events flow and comes back 8 s later. Events
/// closed during the outage wait in the outbox and are delivered after the reconnection;
/// every seq reaches the subscriber and the outbox ends empty.
#[test]
fn broker_kill_and_restart_loses_nothing() {
    let mut broker = Mosquitto::start();
    let sub = Subscriber::start(broker.port, "vitrine/+/+/window/#");
    let dir = tempfile::tempdir().unwrap();
    let cfg = mic_to_broker(
        dir.path(),
        "demo-mic.wav",
        broker.port,
        "keep_alive_secs = 5\n",
    );
    let child = spawn_realtime(&cfg);
    std::thread::sleep(Duration::from_secs(7));
    broker.kill9();
    std::thread::sleep(Duration::from_secs(8));
    broker.restart();
    std::thread::sleep(Duration::from_secs(12));
    let out = sigterm_and_wait(child);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains("MQTT connection lost"),
        "the outage was noticed: {log}"
    );
    assert_all_delivered(
        &window_seqs(&sub.drain(Duration::from_secs(2))),
        5,
        dir.path(),
    );
}

#[test]
fn health_reports_uptime_outbox_uplink_and_sources() {
    let broker = Mosquitto::start();
    let sub = Subscriber::start(broker.port, "vitrine/+/+/health");
    let dir = tempfile::tempdir().unwrap();
    let cfg = mic_to_broker(dir.path(), "demo-mic.wav", broker.port, "health_secs = 5\n");
    let child = vitrine()
        .args(["run", "--realtime", "--config"])
        .arg(&cfg)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let (topic, payload, retained) = sub
        .rx
        .recv_timeout(Duration::from_secs(15))
        .expect("a health message");
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let h: Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(topic, "vitrine/test-store/test-box/health");
    assert!(!retained);
    assert_eq!(h["schema"], "vitrine.health.v1");
    assert_valid(&schema_named("health.v1.json"), &h);
    assert!(h["uptime_s"].as_u64().unwrap() >= 4);
    assert!(h["outbox"]["unacked"].is_u64() && h["outbox"]["dropped"] == 0);
    assert!(h["uplink"]["connections"].as_u64().unwrap() >= 1);
    let src = &h["sources"][0];
    assert_eq!(
        (
            src["id"].as_str(),
            src["kind"].as_str(),
            src["up"].as_bool()
        ),
        (Some("floor"), Some("microphone"), Some(true))
    );
    assert!(src["analysed"].as_u64().unwrap() > 100, "{h}");
    assert!(src["inference_ms_mean"].as_f64().unwrap() > 0.0, "{h}");
    child.wait_with_output().unwrap();
}

/// Fault: the agent is SIGKILLed 20 times while events flow (power cuts, OOM kills). Whatever
/// a run stored but could not deliver is delivered by a later run; seqs stay contiguous.
#[test]
fn agent_kill9_loop_loses_nothing() {
    let broker = Mosquitto::start();
    let sub = Subscriber::start(broker.port, "vitrine/+/+/window/#");
    let dir = tempfile::tempdir().unwrap();
    let cfg = mic_to_broker(dir.path(), "demo-mic.wav", broker.port, "");
    for round in 0..20u64 {
        let mut child = vitrine()
            .args(["run", "--realtime", "--config"])
            .arg(&cfg)
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // 1.5 to 3.4 s per round: windows close (every 5 s of wall clock) in some rounds, at
        // varying distances from the kill.
        std::thread::sleep(Duration::from_millis(1500 + (round * 7919) % 1900));
        child.kill().unwrap();
        child.wait().unwrap();
    }
    // A last, clean run delivers whatever is left.
    let child = spawn_realtime(&cfg);
    std::thread::sleep(Duration::from_secs(3));
    let out = sigterm_and_wait(child);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_all_delivered(
        &window_seqs(&sub.drain(Duration::from_secs(2))),
        6,
        dir.path(),
    );
}

/// Fault: the broker hangs (SIGSTOP) for 15 s: keep-alive notices, the agent reconnects once
/// it answers again and delivers what closed meanwhile.
#[test]
fn broker_hang_loses_nothing() {
    let broker = Mosquitto::start();
    let sub = Subscriber::start(broker.port, "vitrine/+/+/window/#");
    let dir = tempfile::tempdir().unwrap();
    let cfg = mic_to_broker(
        dir.path(),
        "demo-mic.wav",
        broker.port,
        "keep_alive_secs = 5\n",
    );
    let child = spawn_realtime(&cfg);
    std::thread::sleep(Duration::from_secs(6));
    broker.pause(true);
    std::thread::sleep(Duration::from_secs(15));
    broker.pause(false);
    std::thread::sleep(Duration::from_secs(20));
    let out = sigterm_and_wait(child);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_all_delivered(
        &window_seqs(&sub.drain(Duration::from_secs(2))),
        7,
        dir.path(),
    );
}

/// Fault: the broker's ACL refuses the device's window topic. PUBACK 135 (not authorized):
/// the events stay in the outbox and an error is logged; once the ACL is fixed, the next start
/// delivers them.
#[test]
fn acl_denial_keeps_events_and_raises_an_alarm() {
    let mut broker = Mosquitto::start();
    let acl = broker.dir().join("acl");
    std::fs::write(&acl, "topic readwrite vitrine/test-store/test-box/status\ntopic readwrite vitrine/test-store/test-box/health\ntopic read #\n").unwrap();
    broker.restart_with(&format!("acl_file {}\n", acl.display()));
    let dir = tempfile::tempdir().unwrap();
    let cfg = mic_to_broker(dir.path(), "noise.wav", broker.port, "");
    let out = vitrine()
        .args(["run", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the agent keeps going and stops cleanly: {log}"
    );
    assert!(
        log.contains("broker refused an event") && log.contains("NotAuthorized"),
        "{log}"
    );
    let kept = outbox_events(&dir.path().join("state"));
    assert!(
        (3..=4).contains(&kept.len()),
        "15 s of audio in 5 s windows (unaligned start), all kept: {}",
        kept.len()
    );
    // The ACL is fixed: the next start delivers them.
    broker.restart_with("");
    let sub = Subscriber::start(broker.port, "vitrine/+/+/window/#");
    let out = vitrine()
        .args(["run", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(out.status.success());
    let seqs = window_seqs(&sub.drain(Duration::from_secs(2)));
    assert!(
        seqs.is_superset(&(1..=kept.len() as u64).collect()),
        "{seqs:?}"
    );
    assert!(outbox_events(&dir.path().join("state")).is_empty());
}

struct Mount(std::path::PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

/// Fault: the outbox's filesystem is full (a 512 KiB tmpfs filled to the last byte). Events
/// that cannot be stored are counted, the agent keeps running, and as soon as space returns a
/// gap record reports exactly which seqs were lost. Needs root (mount); CI runs as root.
#[test]
fn disk_full_is_counted_and_reported_in_a_gap_record() {
    let uid = String::from_utf8(
        std::process::Command::new("id")
            .arg("-u")
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    if uid.trim() != "0" {
        eprintln!("SKIPPED disk_full_is_counted_and_reported_in_a_gap_record: needs root to mount a tmpfs");
        return;
    }
    let broker = Mosquitto::start();
    let sub = Subscriber::start(broker.port, "vitrine/+/+/#");
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    assert!(std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=512k", "tmpfs"])
        .arg(&state)
        .status()
        .unwrap()
        .success());
    let _mount = Mount(state.clone());
    // Fill it up.
    let filler = state.join("filler");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&filler).unwrap();
        while f.write_all(&[0u8; 4096]).is_ok() {}
        let _ = f.sync_all();
    }
    let cfg = mic_to_broker(dir.path(), "demo-mic.wav", broker.port, "");
    // write_config puts [outbox] last: add the reserve there.
    let text = std::fs::read_to_string(&cfg).unwrap() + "reserve_mb = 0\n";
    std::fs::write(&cfg, text).unwrap();
    let child = spawn_realtime(&cfg);
    std::thread::sleep(Duration::from_secs(12));
    std::fs::remove_file(&filler).unwrap();
    std::thread::sleep(Duration::from_secs(9));
    let out = sigterm_and_wait(child);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the agent kept running and stopped cleanly: {log}"
    );
    assert!(log.contains("event not stored"), "{log}");
    let msgs = sub.drain(Duration::from_secs(2));
    let gaps: Vec<Value> = msgs
        .iter()
        .filter(|(t, _, _)| t.ends_with("/gap"))
        .map(|(_, p, _)| serde_json::from_slice(p).unwrap())
        .collect();
    assert_eq!(gaps.len(), 1, "one gap record: {msgs:?}");
    let gap_schema: Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("signals/schema/gap.v1.json")).unwrap(),
    )
    .unwrap();
    assert!(
        jsonschema::validator_for(&gap_schema)
            .unwrap()
            .is_valid(&gaps[0]),
        "{}",
        gaps[0]
    );
    let lost = &gaps[0]["lost"];
    let (from, to, count) = (
        lost["from_seq"].as_u64().unwrap(),
        lost["to_seq"].as_u64().unwrap(),
        lost["count"].as_u64().unwrap(),
    );
    assert!(count >= 2 && to - from + 1 == count, "{lost}");
    // Every seq is delivered, or inside the gap, or is the gap record itself.
    let mut seen = window_seqs(&msgs);
    seen.extend(from..=to);
    seen.insert(gaps[0]["seq"].as_u64().unwrap());
    assert_contiguous(&seen, 1, &format!("gap {lost}"));
}

/// Fault: a byte of the outbox is damaged on disk (bit rot, a bad SD card) while the device
/// is offline. On the next start the damaged record is skipped, the others are delivered, and
/// a gap record reports the seq that was lost.
#[test]
fn a_corrupt_outbox_segment_is_reported_and_the_rest_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let mic = format!(
        "[[microphones]]\nid = \"floor\"\nfile = \"{}\"\n[privacy]\nwindow_secs = 5\n",
        media("noise.wav").display()
    );
    // Offline: no broker configured, events stay in the outbox.
    let offline = write_config(dir.path(), &mic);
    for _ in 0..2 {
        assert!(vitrine()
            .args(["run", "--config"])
            .arg(&offline)
            .output()
            .unwrap()
            .status
            .success());
    }
    let kept = outbox_events(&dir.path().join("state")).len();
    assert!(kept >= 6);
    let seg = std::fs::read_dir(dir.path().join("state"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("seg-"))
        .unwrap();
    let mut bytes = std::fs::read(&seg).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x5a;
    std::fs::write(&seg, &bytes).unwrap();
    // Online again.
    let broker = Mosquitto::start();
    let sub = Subscriber::start(broker.port, "vitrine/+/+/#");
    let online = write_config(
        dir.path(),
        &format!("{mic}[mqtt]\nurl = \"mqtt://127.0.0.1:{}\"\n", broker.port),
    );
    let out = vitrine()
        .args(["run", "--config"])
        .arg(&online)
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(log.contains("records lost to corruption"), "{log}");
    let msgs = sub.drain(Duration::from_secs(2));
    let gaps: Vec<Value> = msgs
        .iter()
        .filter(|(t, _, _)| t.ends_with("/gap"))
        .map(|(_, p, _)| serde_json::from_slice(p).unwrap())
        .collect();
    assert_eq!(gaps.len(), 1, "{msgs:?}");
    assert_eq!(gaps[0]["lost"]["count"], 1);
    let mut seen = window_seqs(&msgs);
    let lost = gaps[0]["lost"]["from_seq"].as_u64().unwrap();
    assert!(!seen.contains(&lost));
    seen.insert(lost);
    seen.insert(gaps[0]["seq"].as_u64().unwrap());
    assert_contiguous(&seen, 1, "every other seq delivered");
    assert!(outbox_events(&dir.path().join("state")).is_empty());
}
