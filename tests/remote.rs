//! Remote configuration over MQTT against a real Mosquitto, real Ed25519 signatures (keys
//! made by `vitrine config-keygen`, requests by `vitrine config-request`) and the real agent.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

struct Central {
    dir: PathBuf,
    key: PathBuf,
    public: String,
    port: u16,
}

impl Central {
    fn new(dir: &Path, port: u16) -> Central {
        let key = dir.join("central.key");
        let out = ok(vitrine().args(["config-keygen", "--out"]).arg(&key));
        let public = String::from_utf8(out.stdout).unwrap().trim().to_string();
        Central {
            dir: dir.to_path_buf(),
            key,
            public,
            port,
        }
    }

    /// A signed request carrying `body` (a whole config file) as version `version`.
    fn request(&self, key: &Path, version: u64, body: &str) -> String {
        let file = self.dir.join(format!("request-{version}.toml"));
        std::fs::write(&file, body).unwrap();
        let out = ok(vitrine()
            .args([
                "config-request",
                "--store",
                "test-store",
                "--device",
                "test-box",
            ])
            .arg("--key")
            .arg(key)
            .args(["--version", &version.to_string(), "--config"])
            .arg(&file));
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    fn send(&self, payload: &str, retain: bool) {
        self.publish("vitrine/test-store/test-box/config/set", payload, retain);
    }

    /// A chain prior from the shapes in `priors` (a JSON file), signed with `key`.
    fn chain_prior(&self, key: &Path, version: u64, priors: &Path) -> String {
        let out = ok(vitrine()
            .arg("chain-prior")
            .arg("--key")
            .arg(key)
            .args(["--version", &version.to_string(), "--priors"])
            .arg(priors));
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    fn publish(&self, topic: &str, payload: &str, retain: bool) {
        let file = self.dir.join("payload.json");
        std::fs::write(&file, payload).unwrap();
        let mut c = Command::new("mosquitto_pub");
        c.args([
            "-V",
            "mqttv5",
            "-h",
            "127.0.0.1",
            "-p",
            &self.port.to_string(),
            "-q",
            "1",
        ])
        .args(["-t", topic, "-f"])
        .arg(&file);
        if retain {
            c.arg("-r");
        }
        assert!(c.status().unwrap().success());
    }
}

/// The box's config: one or two microphones reading the demo recording in real time.
fn config(dir: &Path, port: u16, public: &str, extra_mic: &str, timeout_secs: u32) -> String {
    let mic = |id: &str| {
        format!(
            "[[microphones]]\nid = \"{id}\"\nfile = \"{}\"\n",
            media("demo-mic.wav").display()
        )
    };
    let extra = match extra_mic {
        "" => String::new(),
        "broken" => "[[microphones]]\nid = \"door\"\ndevice = \"hw:CARD=NoSuchCard\"\n".into(),
        id => mic(id),
    };
    format!(
        "# The box's configuration (comment kept by the test)\n[device]\nid = \"test-box\"\nstore_id = \"test-store\"\n\n{}{extra}\n\
         [models]\ndir = \"{}\"\n\n[outbox]\ndir = \"{}\"\n\n[privacy]\nwindow_secs = 5\n\n\
         [mqtt]\nurl = \"mqtt://127.0.0.1:{port}\"\n\n[remote_config]\npublic_key = \"{public}\"\napply_timeout_secs = {timeout_secs}\n",
        mic("floor"),
        models().display(),
        dir.join("state").display()
    )
}

fn start(cfg: &Path, log: &Path) -> Child {
    vitrine()
        .args(["run", "--realtime", "--config"])
        .arg(cfg)
        .stderr(Stdio::from(std::fs::File::create(log).unwrap()))
        .spawn()
        .unwrap()
}

/// Wait for the result of `version` on the subscriber; every result is checked against its
/// schema on the way.
fn result_of(
    sub: &Subscriber,
    seen: &mut Vec<Value>,
    version: Option<u64>,
    limit: Duration,
) -> Value {
    let schema = schema_named("config-result.v1.json");
    let until = Instant::now() + limit;
    loop {
        if let Some(r) = seen.iter().find(|r| r["version"].as_u64() == version) {
            return r.clone();
        }
        assert!(
            Instant::now() < until,
            "no result for {version:?}; got {seen:?}"
        );
        if let Ok((_, p, _)) = sub.rx.recv_timeout(Duration::from_millis(200)) {
            let v: Value = serde_json::from_slice(&p).unwrap();
            assert_valid(&schema, &v);
            seen.push(v);
        }
    }
}

fn wait_connected(log: &Path) {
    let until = Instant::now() + Duration::from_secs(30);
    while !std::fs::read_to_string(log)
        .unwrap_or_default()
        .contains("connected to MQTT broker")
    {
        assert!(Instant::now() < until, "agent did not connect");
        std::thread::sleep(Duration::from_millis(100));
    }
    // The subscription to config/set follows the connection.
    std::thread::sleep(Duration::from_millis(500));
}

/// Unsigned, wrongly signed, oversized, invalid and replayed requests are refused with the
/// reason and change nothing; a valid one is applied like a reload (comments and all: the
/// file is the request's); one that does not come up healthy is rolled back.
#[test]
fn signed_requests_are_applied_bad_ones_refused_with_a_reason_and_unhealthy_ones_rolled_back() {
    let broker = Mosquitto::start();
    let dir = tempfile::tempdir().unwrap();
    let central = Central::new(dir.path(), broker.port);
    let sub = Subscriber::start(broker.port, "vitrine/+/+/config/result");
    let first = config(dir.path(), broker.port, &central.public, "", 5);
    let cfg = dir.path().join("agent.toml");
    std::fs::write(&cfg, &first).unwrap();
    let log = dir.path().join("agent.log");
    let child = start(&cfg, &log);
    wait_connected(&log);
    let mut seen = Vec::new();

    let with_door = config(dir.path(), broker.port, &central.public, "door", 5);
    let good = central.request(&central.key, 3, &with_door);
    let mut unsigned: Value = serde_json::from_str(&good).unwrap();
    unsigned["signature"] = "".into();
    unsigned["version"] = 100.into();
    central.send(&unsigned.to_string(), false);
    let r = result_of(&sub, &mut seen, Some(100), Duration::from_secs(10));
    assert_eq!(r["status"], "rejected");
    assert!(r["reason"].as_str().unwrap().starts_with("unsigned"), "{r}");

    std::fs::create_dir_all(dir.path().join("elsewhere")).unwrap();
    let stranger = Central::new(&dir.path().join("elsewhere"), broker.port);
    let forged = central.request(&stranger.key, 101, &with_door);
    central.send(&forged, false);
    let r = result_of(&sub, &mut seen, Some(101), Duration::from_secs(10));
    assert!(
        r["reason"].as_str().unwrap().starts_with("bad signature"),
        "{r}"
    );

    central.send(&"#".repeat(300 * 1024), false);
    let r = result_of(&sub, &mut seen, None, Duration::from_secs(10));
    assert!(
        r["reason"].as_str().unwrap().starts_with("oversized"),
        "{r}"
    );

    let invalid = central.request(
        &central.key,
        2,
        "[device]\nid = \"test-box\"\nstore_id = 7\n",
    );
    central.send(&invalid, false);
    let r = result_of(&sub, &mut seen, Some(2), Duration::from_secs(10));
    assert_eq!(r["status"], "rejected");
    assert!(r["reason"].as_str().unwrap().contains("store_id"), "{r}");
    assert_eq!(
        std::fs::read_to_string(&cfg).unwrap(),
        first,
        "nothing changed"
    );

    central.send(&good, false);
    let r = result_of(&sub, &mut seen, Some(3), Duration::from_secs(20));
    assert_eq!(r["status"], "applied", "{r}");
    assert_eq!(std::fs::read_to_string(&cfg).unwrap(), with_door);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("agent.toml.previous")).unwrap(),
        first,
        "the previous file is kept as a backup"
    );

    central.send(&good, false);
    seen.retain(|r| r["version"] != 3);
    let r = result_of(&sub, &mut seen, Some(3), Duration::from_secs(10));
    assert!(r["reason"].as_str().unwrap().starts_with("replayed"), "{r}");

    let broken = config(dir.path(), broker.port, &central.public, "broken", 5);
    central.send(&central.request(&central.key, 4, &broken), false);
    let r = result_of(&sub, &mut seen, Some(4), Duration::from_secs(30));
    assert_eq!(r["status"], "rolled_back", "{r}");
    assert!(r["reason"].as_str().unwrap().contains("door"), "{r}");
    assert_eq!(
        std::fs::read_to_string(&cfg).unwrap(),
        with_door,
        "restored"
    );

    let out = sigterm_and_wait(child);
    assert!(out.status.success());
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(
        log.contains("started=door"),
        "applied like a reload:\n{log}"
    );
    // Every result is an event with its own seq; none was lost or left behind.
    assert!(outbox_events(&dir.path().join("state")).is_empty());
}

/// A request sent while the box is offline is delivered when it reconnects; a kill -9 in the
/// middle of applying leaves the previous file in place at the next start, reported; a
/// retained request is answered once, not on every reconnection.
#[test]
fn requests_reach_an_offline_box_and_a_kill_mid_apply_rolls_back_at_the_next_start() {
    let broker = Mosquitto::start();
    let dir = tempfile::tempdir().unwrap();
    let central = Central::new(dir.path(), broker.port);
    let sub = Subscriber::start(broker.port, "vitrine/+/+/config/result");
    let first = config(dir.path(), broker.port, &central.public, "", 60);
    let cfg = dir.path().join("agent.toml");
    std::fs::write(&cfg, &first).unwrap();
    let log = dir.path().join("agent.log");
    let mut seen = Vec::new();

    // Once connected, the broker keeps the box's session (and its subscription).
    let child = start(&cfg, &log);
    wait_connected(&log);
    assert!(sigterm_and_wait(child).status.success());
    let with_door = config(dir.path(), broker.port, &central.public, "door", 60);
    central.send(&central.request(&central.key, 1, &with_door), false);
    let child = start(&cfg, &log);
    let r = result_of(&sub, &mut seen, Some(1), Duration::from_secs(30));
    assert_eq!(r["status"], "applied", "{r}");
    assert_eq!(std::fs::read_to_string(&cfg).unwrap(), with_door);

    // A configuration that will not come up (its deadline is a minute away): killed mid-trial.
    let broken = config(dir.path(), broker.port, &central.public, "broken", 60);
    central.send(&central.request(&central.key, 2, &broken), false);
    let marker = dir.path().join("agent.toml.applying");
    let until = Instant::now() + Duration::from_secs(20);
    while !marker.exists() {
        assert!(Instant::now() < until, "the apply did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut child = child;
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(
        std::fs::read_to_string(&cfg).unwrap(),
        broken,
        "killed mid-apply"
    );

    let log2 = dir.path().join("agent2.log");
    let child = start(&cfg, &log2);
    let r = result_of(&sub, &mut seen, Some(2), Duration::from_secs(30));
    assert_eq!(r["status"], "rolled_back", "{r}");
    assert!(
        r["reason"]
            .as_str()
            .unwrap()
            .contains("stopped while applying"),
        "{r}"
    );
    assert_eq!(
        std::fs::read_to_string(&cfg).unwrap(),
        with_door,
        "the previous file is back"
    );
    assert!(!marker.exists());

    // Retained: applied once; the broker's copy on the next connection is not answered again.
    central.send(&central.request(&central.key, 3, &first), true);
    let r = result_of(&sub, &mut seen, Some(3), Duration::from_secs(30));
    assert_eq!(r["status"], "applied", "{r}");
    assert!(sigterm_and_wait(child).status.success());
    let log3 = dir.path().join("agent3.log");
    let child = start(&cfg, &log3);
    wait_connected(&log3);
    std::thread::sleep(Duration::from_secs(3));
    assert!(sigterm_and_wait(child).status.success());
    let more: Vec<Value> = sub
        .drain(Duration::from_secs(1))
        .into_iter()
        .map(|(_, p, _)| serde_json::from_slice(&p).unwrap())
        .collect();
    assert!(
        more.iter().all(|r| r["version"] != 3),
        "a retained request answered twice: {more:?}"
    );
    assert_eq!(std::fs::read_to_string(&cfg).unwrap(), first);
    // Clear the retained request (the broker is per test anyway).
    central.send("", true);
}

/// Waits until the agent's log holds every one of `needles` (on one line).
fn wait_logged(log: &Path, needles: &[&str]) {
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if text.lines().any(|l| needles.iter().all(|n| l.contains(n))) {
            return;
        }
        assert!(
            Instant::now() < until,
            "no log line with {needles:?}:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The chain prior of the federated forecast: shapes signed with the central key
/// (`vitrine chain-prior`), published retained on `vitrine/chain/prior` before the box starts;
/// the box takes it at its subscription, refuses a forged one, an older one and a malformed
/// one with the reason, and takes a newer genuine one.
#[test]
fn a_signed_chain_prior_is_taken_and_forged_older_or_malformed_ones_refused() {
    let broker = Mosquitto::start();
    let dir = tempfile::tempdir().unwrap();
    let central = Central::new(dir.path(), broker.port);
    let shape = |weekend: f64| -> Vec<f64> {
        (0..168)
            .map(|s| {
                let open = if (8..20).contains(&(s % 24)) {
                    1.0
                } else {
                    0.05
                };
                open * if s / 24 >= 5 { weekend } else { 1.0 }
            })
            .collect()
    };
    let priors = dir.path().join("priors.json");
    std::fs::write(
        &priors,
        serde_json::to_string(&[shape(1.5), shape(0.5)]).unwrap(),
    )
    .unwrap();
    let topic = "vitrine/chain/prior";
    let first = central.chain_prior(&central.key, 7, &priors);
    assert_valid(
        &schema_named("chain-prior.v1.json"),
        &serde_json::from_str(&first).unwrap(),
    );
    central.publish(topic, &first, true);
    let cfg = dir.path().join("agent.toml");
    std::fs::write(
        &cfg,
        config(dir.path(), broker.port, &central.public, "", 5),
    )
    .unwrap();
    let log = dir.path().join("agent.log");
    let mut child = start(&cfg, &log);
    wait_logged(&log, &["chain prior taken", "version=7", "priors=2"]);

    std::fs::create_dir_all(dir.path().join("elsewhere")).unwrap();
    let stranger = Central::new(&dir.path().join("elsewhere"), broker.port);
    central.publish(topic, &central.chain_prior(&stranger.key, 8, &priors), true);
    wait_logged(&log, &["chain prior refused", "bad signature"]);
    central.publish(topic, &central.chain_prior(&central.key, 5, &priors), true);
    wait_logged(
        &log,
        &[
            "chain prior refused",
            "version 5 is older than the one held (7)",
        ],
    );
    central.publish(topic, "{\"schema\": \"vitrine.chain-prior.v1\"}", true);
    wait_logged(&log, &["chain prior refused", "malformed chain prior"]);
    central.publish(topic, &central.chain_prior(&central.key, 9, &priors), true);
    wait_logged(&log, &["chain prior taken", "version=9"]);
    // The central side refuses to sign shapes a box would refuse.
    std::fs::write(&priors, "[[1.0, 2.0]]").unwrap();
    let out = vitrine()
        .arg("chain-prior")
        .arg("--key")
        .arg(&central.key)
        .args(["--version", "10", "--priors"])
        .arg(&priors)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("prior 0 is not 168"));
    child.kill().unwrap();
    child.wait().unwrap();
}

/// A box of the federation test: a camera whose line has two weeks of history (`weekend`:
/// its Saturdays and Sundays against its weekdays), a microphone so that it runs, and
/// `[remote_config] federated = true`. Returns the config path and the box's update.
fn federated_box(
    dir: &Path,
    i: usize,
    port: u16,
    public: &str,
    weekend: f64,
) -> (PathBuf, (Vec<f64>, f64)) {
    use vitrine_signals::forecast::{ForecastBook, LocalHour, Measure};
    let state = dir.join(format!("box{i}"));
    std::fs::create_dir_all(&state).unwrap();
    let mut book = ForecastBook::default();
    let monday = 4 * 24;
    for h in 0..(2 * 168 + 1) {
        let at = LocalHour::from_index(monday + h);
        let hour = at.hour_of_day();
        let open = if (9..19).contains(&hour) {
            10.0 + f64::from(hour)
        } else {
            0.5
        };
        let v = open * if (h / 24) % 7 >= 5 { weekend } else { 1.0 };
        book.add("door", "in", Measure::Crossings, at, v, 3_600_000);
    }
    std::fs::write(
        state.join("forecast.json"),
        serde_json::to_vec(&book).unwrap(),
    )
    .unwrap();
    let update = book.update().expect("two weeks make a shape");
    let cfg = dir.join(format!("box{i}.toml"));
    std::fs::write(
        &cfg,
        format!(
            "[device]\nid = \"box-{i}\"\nstore_id = \"store-{i}\"\ntimezone = \"UTC\"\n\n\
             [[cameras]]\nid = \"door\"\ndevice = \"/dev/video99\"\n[[cameras.lines]]\nid = \"in\"\nfrom = [0.5, 0.0]\nto = [0.5, 1.0]\nin = \"left\"\n\n\
             [[microphones]]\nid = \"floor\"\nfile = \"{}\"\n\n[models]\ndir = \"{}\"\n\n[outbox]\ndir = \"{}\"\n\n\
             [mqtt]\nurl = \"mqtt://127.0.0.1:{port}\"\n\n[remote_config]\npublic_key = \"{public}\"\nfederated = true\n",
            media("demo-mic.wav").display(),
            models().display(),
            state.display()
        ),
    )
    .unwrap();
    (cfg, update)
}

/// The chain prior made over MQTT by `vitrine federate` with four federated boxes, one of
/// which is gone (killed after publishing its key): the survivors' masked updates, the
/// missing list and their reveals give exactly the prior of the three survivors' updates in
/// the clear, which the aggregator publishes signed and the survivors take.
#[test]
fn the_chain_prior_is_made_over_mqtt_from_masked_updates_with_a_box_gone() {
    use vitrine_signals::federated::chain_priors;
    let broker = Mosquitto::start();
    let dir = tempfile::tempdir().unwrap();
    let central = Central::new(dir.path(), broker.port);
    let mut boxes = Vec::new();
    for (i, weekend) in [0.5, 1.0, 1.5, 2.0].into_iter().enumerate() {
        let (cfg, update) = federated_box(dir.path(), i, broker.port, &central.public, weekend);
        let log = dir.path().join(format!("box{i}.log"));
        let child = Reaped(start(&cfg, &log));
        boxes.push((child, log, update));
    }
    for (_, log, _) in &boxes {
        wait_connected(log);
    }
    // Everything on the wire, checked against the contract's schemas below.
    let wire = Subscriber::start(broker.port, "vitrine/#");
    // Box 3 goes away after publishing its key: listed in every round, sends nothing.
    drop(boxes.pop());
    let out = ok(vitrine()
        .args([
            "federate",
            "--broker",
            &format!("127.0.0.1:{}", broker.port),
        ])
        .arg("--key")
        .arg(&central.key)
        .args([
            "--version",
            "5",
            "--wait-secs",
            "2",
            "--deadline-secs",
            "5",
            "--kmeans",
            "1",
        ]));
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(report.contains("4 boxes take part"), "{report}");
    assert!(
        report.contains("3 of 4 boxes sent, missing {3}"),
        "{report}"
    );
    assert!(
        report.contains("chain prior version 5 published"),
        "{report}"
    );
    for (_, log, _) in &boxes {
        wait_logged(log, &["chain prior round: masked update sent"]);
        wait_logged(log, &["chain prior taken", "version=5"]);
    }
    // What was published is the survivors' prior in the clear.
    let sub = Subscriber::start(broker.port, "vitrine/chain/prior");
    let (_, payload, _) = sub.rx.recv_timeout(Duration::from_secs(10)).unwrap();
    let msg: Value = serde_json::from_slice(&payload).unwrap();
    assert_valid(&schema_named("chain-prior.v1.json"), &msg);
    let survivors: Vec<(Vec<f64>, f64)> = boxes.iter().map(|b| b.2.clone()).collect();
    let want = chain_priors(&survivors, 1);
    let got: Vec<Vec<f64>> = serde_json::from_value(msg["priors"].clone()).unwrap();
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(&want) {
        let mean = g.iter().sum::<f64>() / g.len() as f64;
        for (a, b) in g.iter().zip(&w.shape) {
            assert!((a / mean - b).abs() < 1e-4, "{a} vs {b}");
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    let until = Instant::now() + Duration::from_secs(3);
    while let Ok((topic, payload, _)) = wire
        .rx
        .recv_timeout(until.saturating_duration_since(Instant::now()))
    {
        let schema = [
            ("/federate/key", "federate-key"),
            ("/federate/update", "federate-masked"),
            ("/federate/reveal", "federate-reveal"),
            ("/chain/round", "federate-round"),
            ("/chain/round/missing", "federate-missing"),
            ("/chain/prior", "chain-prior"),
        ]
        .into_iter()
        .find(|(end, _)| topic.ends_with(end));
        if let Some((_, name)) = schema {
            let v: Value = serde_json::from_slice(&payload).unwrap();
            assert_valid(&schema_named(&format!("{name}.v1.json")), &v);
            seen.insert(name);
        }
    }
    assert_eq!(
        seen.len(),
        6,
        "not every federation message was seen: {seen:?}"
    );
}

/// An agent killed when the test lets go of it (also when an assertion fails).
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
