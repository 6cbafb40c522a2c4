//! The technician's setup page and accuracy audit, for real: a running agent on real video,
//! `vitrine setup` serving the page, Debian's chromium (headless, driven by playwright-core:
//! `tests/support/browser/drive.mjs`) opening it with the one-time token, dragging a line,
//! saving, and auditing the line with taps scripted from the video's ground truth; a real
//! Mosquitto receives the published audit. While the page is open, the agent's directory, the
//! configuration's, the logs and the wire are scanned for pictures.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::scan::*;
use common::*;
use serde_json::{json, Value};

/// PETS09-S2L1 (vtest.avi) is 768x576 at 10 fps.
const FPS: f64 = 10.0;

/// The ground truth's crossings of the demo line x = 0.45 (y 0.28..0.72) of vtest.avi:
/// (time in ms from the start of the video, direction for a line drawn top to bottom with
/// `in = "left"`: walking left to right is "in").
/// `None` (and a SKIPPED line naming what is missing) without the evaluation data.
fn truth_crossings() -> Option<Vec<(u64, &'static str)>> {
    let Some(path) = eval_media("mot15/PETS09-S2L1/gt.txt") else {
        eprintln!("SKIPPED: the audit needs mot15/PETS09-S2L1/gt.txt from the evaluation data (../shared/media or VITRINE_EVAL_MEDIA)");
        return None;
    };
    let gt = std::fs::read_to_string(path).unwrap();
    let mut tracks: std::collections::BTreeMap<i64, Vec<(i64, f64, f64)>> = Default::default();
    for l in gt.lines() {
        let f: Vec<f64> = l.split(',').map(|v| v.trim().parse().unwrap()).collect();
        let (x, y) = ((f[2] + f[4] / 2.0) / 768.0, (f[3] + f[5]) / 576.0);
        tracks
            .entry(f[1] as i64)
            .or_default()
            .push((f[0] as i64, x, y));
    }
    let mut out = Vec::new();
    for t in tracks.values_mut() {
        t.sort_by_key(|p| p.0);
        for w in t.windows(2) {
            let ((_, xa, ya), (fb, xb, yb)) = (w[0], w[1]);
            if (xa - 0.45) * (xb - 0.45) < 0.0 {
                let yc = ya + (yb - ya) * (0.45 - xa) / (xb - xa);
                if (0.28..=0.72).contains(&yc) {
                    let ms = ((fb - 1) as f64 / FPS * 1000.0) as u64;
                    out.push((ms, if xb > xa { "in" } else { "out" }));
                }
            }
        }
    }
    out.sort();
    assert_eq!(out.len(), 27, "the suite's truth for walkway-x045");
    Some(out)
}

const GEOMETRY: &str = r#"# The technician's camera.
[[cameras]]
id = "walkway"
file = "{video}"
fps = 10

# A first guess, where nobody walks.
[[cameras.lines]]
id = "entry"
from = [0.05, 0.05]   # top left
to = [0.15, 0.05]
in = "left"

[privacy]
k_min = 5
"#;

struct Agent {
    child: Option<Child>,
    log: PathBuf,
}

impl Agent {
    fn start(dir: &Path, cfg: &Path) -> Agent {
        let log = dir.join("agent.log");
        let socket = dir.join("state/control.sock");
        let child = vitrine()
            .args(["run", "--realtime", "--config"])
            .arg(cfg)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let until = Instant::now() + Duration::from_secs(60);
        while !socket.exists() {
            assert!(
                Instant::now() < until,
                "no control socket:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Agent {
            child: Some(child),
            log,
        }
    }

    fn stop(&mut self) -> String {
        if let Some(c) = self.child.take() {
            sigterm_and_wait(c);
        }
        std::fs::read_to_string(&self.log).unwrap()
    }
}

impl Agent {
    fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().unwrap().is_none())
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// `vitrine setup` on a free port; its child and the address with the token it printed.
struct Setup {
    child: Child,
    url: String,
    out: std::sync::mpsc::Receiver<String>,
}

impl Setup {
    fn start(cfg: &Path, extra: &[&str]) -> Setup {
        let mut child = vitrine()
            .args(["setup", "--listen", "127.0.0.1:0", "--config"])
            .arg(cfg)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(l);
            }
        });
        let url = loop {
            let l = rx
                .recv_timeout(Duration::from_secs(30))
                .expect("setup prints its address");
            if let Some(u) = l.strip_prefix("Open ") {
                break u.to_string();
            }
        };
        Setup {
            child,
            url,
            out: rx,
        }
    }

    fn base(&self) -> String {
        self.url.split('?').next().unwrap().to_string()
    }

    fn token(&self) -> String {
        self.url.split("token=").nth(1).unwrap().to_string()
    }

    /// Ends the session (SIGTERM) and returns what it printed and logged.
    fn stop(mut self) -> String {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let mut err = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            use std::io::Read;
            let _ = e.read_to_string(&mut err);
        }
        let _ = self.child.wait();
        let out: Vec<String> = self.out.try_iter().collect();
        format!("{}\n{err}", out.join("\n"))
    }
}

/// Runs the browser through `steps`; one result per step (panics on a driver error).
fn drive(url: &str, steps: Value) -> Vec<Value> {
    let dir = repo().join("tests/support/browser");
    assert!(
        dir.join("node_modules/playwright-core").is_dir(),
        "playwright-core missing: run scripts/setup.sh (scripts/test.sh does)"
    );
    let plan = json!({ "url": url, "steps": steps });
    let out = Command::new("node")
        .arg(dir.join("drive.mjs"))
        .arg(plan.to_string())
        .current_dir(&dir)
        .output()
        .unwrap();
    let results: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        out.status.success() && results.iter().all(|r| r["step"] != "error"),
        "browser: {results:?}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    results
}

fn step<'a>(results: &'a [Value], name: &str) -> &'a Value {
    results
        .iter()
        .find(|r| r["step"] == name)
        .unwrap_or_else(|| panic!("no {name} in {results:?}"))
}

/// The video padded with 40 s of its last frame, so the agent keeps running (still) after the
/// last crossing while the audit ends and publishes.
fn padded_video(dir: &Path) -> PathBuf {
    let out = dir.join("walkway.avi");
    let st = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-i"])
        .arg(media("vtest.avi"))
        .args([
            "-vf",
            "tpad=stop_mode=clone:stop_duration=40",
            "-c:v",
            "mjpeg",
            "-q:v",
            "4",
        ])
        .arg(&out)
        .status()
        .unwrap();
    assert!(st.success());
    out
}

fn config(dir: &Path, video: &Path, broker: Option<u16>) -> PathBuf {
    let mut body = GEOMETRY.replace("{video}", &video.display().to_string());
    if let Some(port) = broker {
        body.push_str(&format!("\n[mqtt]\nurl = \"mqtt://127.0.0.1:{port}\"\n"));
    }
    write_config(dir, &body)
}

fn screenshot(name: &str, dir: &Path) -> String {
    // VITRINE_SCREENSHOTS=docs refreshes the README's pictures.
    match std::env::var_os("VITRINE_SCREENSHOTS") {
        Some(d) => Path::new(&d).join(name),
        None => dir.join(name),
    }
    .display()
    .to_string()
}

/// Whether the status screen (a PNG panel) comes to show (`shown`) or not the setup band
/// within 5 s.
fn screen_shows_setup(png: &Path, shown: bool) -> bool {
    use vitrine::observe::display::{read_png, HEIGHT};
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until {
        if let Ok(page) = read_png(png) {
            if (page.pixel(2, HEIGHT - 44 - 18 + 4) == [240, 180, 50]) == shown {
                return true;
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}

#[test]
fn the_technician_moves_a_line_saves_and_audits_it_in_the_browser() {
    let media_dir = tempfile::tempdir().unwrap();
    let video = padded_video(media_dir.path());
    let dir = tempfile::tempdir().unwrap();
    let broker = Mosquitto::start();
    let wire = Subscriber::start(broker.port, "vitrine/#");
    let cfg = config(dir.path(), &video, Some(broker.port));
    let original = std::fs::read_to_string(&cfg).unwrap();
    let scanner = Scanner::start(vec![dir.path().to_path_buf()]);
    let mut agent = Agent::start(dir.path(), &cfg);
    let setup = Setup::start(&cfg, &[]);

    // The scripted technician taps every crossing of the truth after the audit started.
    let Some(truth) = truth_crossings() else {
        return;
    };
    let schedule: Vec<Value> = truth
        .into_iter()
        .map(|(ms, dir)| json!([ms + 400, dir]))
        .collect();
    // Screenshots are the test's own pictures: kept out of the scanned directories.
    let shots = media_dir.path();
    let publish = format!("{}api/audit/publish", setup.base());
    let again =
        json!({"do": "fetch", "path": publish, "body": "", "headers": {"X-Vitrine-Setup": "1"}});
    let results = drive(
        &setup.url,
        json!([
            {"do": "open"},
            {"do": "wait_still"},
            {"do": "drag", "kind": "lines", "index": 0, "point": "from", "to": [0.45, 0.28]},
            {"do": "drag", "kind": "lines", "index": 0, "point": "to", "to": [0.45, 0.72]},
            {"do": "screenshot", "file": screenshot("setup-page.png", shots)},
            {"do": "save"},
            {"do": "wait_new_run"},
            {"do": "audit_start", "line": "entry"},
            {"do": "wait_count", "line": "entry", "min": 1},
            {"do": "taps", "schedule": schedule},
            {"do": "wait_until", "ms": 81_500},
            {"do": "audit_stop"},
            {"do": "screenshot", "file": screenshot("setup-audit.png", shots)},
            {"do": "audit_publish"},
            // Published again (the button pressed twice, a retried request): the same event.
            again,
            again,
        ]),
    );
    let setup_out = setup.stop();

    // The page opened with the token and moved the line.
    assert_eq!(step(&results, "open")["status"], 200, "{results:?}");
    let coords = step(&results, "drag")["coords"].as_str().unwrap();
    assert!(coords.starts_with("[0.450, 0.280]"), "{coords}");
    // Saved through the validator, comments kept, previous file backed up.
    let saved = step(&results, "save")["message"].as_str().unwrap();
    assert!(saved.contains("Saved"), "{saved}");
    let now = std::fs::read_to_string(&cfg).unwrap();
    for kept in [
        "# The technician's camera.",
        "# top left",
        "k_min = 5",
        "[mqtt]",
    ] {
        assert!(now.contains(kept), "lost {kept:?}:\n{now}");
    }
    assert!(
        now.contains("from = [0.45, 0.28]") && now.contains("to = [0.45, 0.72]"),
        "{now}"
    );
    let backup = std::fs::read_to_string(dir.path().join("agent.toml.previous")).unwrap();
    assert_eq!(backup, original);
    let check = vitrine().args(["check-config"]).arg(&cfg).output().unwrap();
    assert!(check.status.success());
    // The agent reloaded and counts on the new line.
    let counted = step(&results, "wait_count");
    assert!(counted.get("error").is_none(), "{counted}");

    // The audit: taps against the agent's count of the same minutes.
    let taps = step(&results, "taps");
    let done = taps["done"].as_u64().unwrap();
    assert!(done >= 20, "{taps}");
    let r = &step(&results, "audit_stop")["result"];
    let manual = r["manual"]["in"].as_u64().unwrap() + r["manual"]["out"].as_u64().unwrap();
    let agent_total = r["agent"]["in"].as_u64().unwrap() + r["agent"]["out"].as_u64().unwrap();
    assert_eq!(manual, done, "{r}");
    let agreement = r["agreement"].as_f64().unwrap();
    assert!(
        agreement >= 0.8,
        "agent {agent_total} vs taps {manual}: {r}"
    );
    let (lo, hi) = (
        r["ratio_low"].as_f64().unwrap(),
        r["ratio_high"].as_f64().unwrap(),
    );
    assert!(
        lo < r["ratio"].as_f64().unwrap() && r["ratio"].as_f64().unwrap() < hi,
        "{r}"
    );
    assert_eq!(r["interrupted"], false);
    let published = step(&results, "audit_publish")["message"].as_str().unwrap();
    assert!(published.contains("Published"), "{published}");
    let repeats: Vec<Value> = results
        .iter()
        .filter(|r| r["step"] == "fetch")
        .map(|r| serde_json::from_str(r["body"].as_str().unwrap()).unwrap())
        .collect();
    assert_eq!(repeats.len(), 2);
    assert!(
        repeats
            .iter()
            .all(|r| r["ok"] == true && r["seq"] == repeats[0]["seq"]),
        "a repeated publish is the same event: {repeats:?}"
    );

    // The central platform receives the audit (counts only, valid against its schema).
    let audit_schema = schema_named("audit.v1.json");
    let until = Instant::now() + Duration::from_secs(20);
    let mut messages = Vec::new();
    let audit = loop {
        assert!(
            Instant::now() < until,
            "no audit on the wire: {:?}",
            messages
                .iter()
                .map(|(t, _, _): &(String, Vec<u8>, bool)| t.clone())
                .collect::<Vec<_>>()
        );
        if let Ok(m) = wire.rx.recv_timeout(Duration::from_millis(500)) {
            messages.push(m.clone());
            if m.0 == "vitrine/test-store/test-box/audit/walkway" {
                break serde_json::from_slice::<Value>(&m.1).unwrap();
            }
        }
    };
    assert_valid(&audit_schema, &audit);
    assert_eq!(audit["line"], "entry");
    assert_eq!(audit["manual"]["total"].as_u64(), Some(manual));
    assert_eq!(audit["agent"]["total"].as_u64(), Some(agent_total));

    // Privacy: while the page was open nothing picture-like reached the agent's directories,
    // the configuration's directory, the logs or the wire.
    let log = agent.stop();
    messages.extend(wire.drain(Duration::from_secs(1)));
    let audits = messages
        .iter()
        .filter(|(t, _, _)| t == "vitrine/test-store/test-box/audit/walkway")
        .count();
    assert_eq!(audits, 1, "one audit, published three times, is one event");
    let (found, rounds) = scanner.finish();
    assert!(rounds > 100, "the scanner ran {rounds} rounds");
    assert!(found.is_empty(), "{:?}", &found[..found.len().min(5)]);
    for (topic, payload, _) in &messages {
        let media = media_in(Path::new(topic), payload);
        assert!(media.is_empty(), "{media:?}");
    }
    for (name, text) in [("agent log", &log), ("setup output", &setup_out)] {
        let media = media_in(Path::new(name), text.as_bytes());
        assert!(media.is_empty(), "{media:?}");
    }
    assert!(log.contains("configuration reloaded"), "{log}");
    assert!(log.contains("audit result stored"), "{log}");
}

#[test]
fn wrong_expired_and_malformed_requests_are_refused_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let screen = dir.path().join("screen.png");
    let body = GEOMETRY.replace("{video}", &media("vtest.avi").display().to_string())
        + &format!(
            "\n[status]\ndisplay = \"{}\"\ndisplay_secs = 1\n",
            screen.display()
        );
    let cfg = write_config(dir.path(), &body);
    let original = std::fs::read(&cfg).unwrap();
    let _agent = Agent::start(dir.path(), &cfg);

    // An expired token.
    let expired = Setup::start(&cfg, &["--token-ttl", "1s"]);
    std::thread::sleep(Duration::from_millis(1500));
    let r = drive(&expired.url, json!([{"do": "open"}]));
    assert_eq!(r[0]["status"], 403);
    assert!(r[0]["text"].as_str().unwrap().contains("expired"), "{r:?}");
    expired.stop();

    let setup = Setup::start(&cfg, &[]);
    // The status screen shows the setup band (address and token) while setup runs.
    assert!(
        screen_shows_setup(&screen, true),
        "no setup band on the status screen"
    );
    let wrong = format!("{}?token=abcd-efgh-jkmn", setup.base());
    let api = |path: &str| format!("{}{}", setup.base().trim_end_matches('/'), path);
    let results = drive(
        &setup.url,
        json!([
            {"do": "open", "url": wrong},
            {"do": "open", "url": setup.base()},
            {"do": "open"},
            {"do": "open"},
            {"do": "fetch", "path": api("/api/save"), "body": "{\"camera\": \"walkway\", \"lines\": [", "headers": {"X-Vitrine-Setup": "1"}},
            {"do": "fetch", "path": api("/api/save"), "body": "{\"camera\": \"walkway\", \"lines\": [], \"rm\": true}", "headers": {"X-Vitrine-Setup": "1"}},
            {"do": "fetch", "path": api("/api/save"), "body": "{\"camera\": \"walkway\", \"lines\": []}", "headers": {}},
            {"do": "fetch", "path": api("/api/save"), "body": "{\"camera\": \"walkway\", \"lines\": [{\"id\": \"entry\", \"from\": [1.5, 0.2], \"to\": [0.5, 0.9], \"in\": \"left\"}]}", "headers": {"X-Vitrine-Setup": "1"}},
            {"do": "fetch", "path": api("/api/save"), "body": "{\"camera\": \"roof\", \"lines\": []}", "headers": {"X-Vitrine-Setup": "1"}},
        ]),
    );
    let text = |i: usize| results[i]["text"].as_str().unwrap().to_string();
    assert_eq!(results[0]["status"], 403);
    assert!(text(0).contains("Wrong token"), "{}", text(0));
    assert_eq!(results[1]["status"], 403);
    assert!(text(1).contains("needs the one-time token"), "{}", text(1));
    assert_eq!(results[2]["status"], 200, "the right token opens the page");
    // Opening the address again in the same browser shows the page (its session cookie).
    assert_eq!(results[3]["status"], 200);
    let fetched = |i: usize| -> (u64, Value) {
        (
            results[i]["status"].as_u64().unwrap(),
            serde_json::from_str(results[i]["body"].as_str().unwrap()).unwrap(),
        )
    };
    let (status, body) = fetched(4);
    assert_eq!(status, 400);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("malformed save request"),
        "{body}"
    );
    assert_eq!(fetched(5).0, 400, "unknown fields are refused");
    let (status, body) = fetched(6);
    assert_eq!(status, 403, "{body}");
    assert!(body["error"].as_str().unwrap().contains("X-Vitrine-Setup"));
    let (status, body) = fetched(7);
    assert_eq!(status, 422);
    let problems = body["problems"].as_array().unwrap();
    assert!(
        problems
            .iter()
            .any(|p| p["field"] == "cameras[0].lines[0].from"),
        "the error names the field: {body}"
    );
    let (status, body) = fetched(8);
    assert_eq!(status, 422);
    assert!(body["error"].as_str().unwrap().contains("roof"), "{body}");
    // Nothing changed: the file is byte for byte the same and no backup was made.
    assert_eq!(std::fs::read(&cfg).unwrap(), original);
    assert!(!dir.path().join("agent.toml.previous").exists());
    setup.stop();
    assert!(
        screen_shows_setup(&screen, false),
        "the setup band stays after setup ended"
    );

    // The refused page has a field for the token read off the status screen.
    let typed = Setup::start(&cfg, &[]);
    let r = drive(
        &typed.base(),
        json!([{"do": "open"}, {"do": "type_token", "token": typed.token()}]),
    );
    assert_eq!(r[0]["status"], 403);
    assert_eq!(r[1]["status"], 200, "{r:?}");
    assert_eq!(
        r[1]["page"], true,
        "the token typed in opens the page: {r:?}"
    );
    typed.stop();

    // Another browser with the used token is refused.
    let third = Setup::start(&cfg, &[]);
    let used = format!("{}?token={}", third.base(), third.token());
    let _ = drive(&used, json!([{"do": "open"}]));
    let r = drive(&used, json!([{"do": "open"}]));
    assert_eq!(r[0]["status"], 403);
    assert!(
        r[0]["text"].as_str().unwrap().contains("already used"),
        "{r:?}"
    );
    third.stop();
}

#[test]
fn vitrine_audit_in_a_terminal_counts_scripted_taps_and_check_config_live_reports_placement() {
    let Some(truth) = truth_crossings() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let body = GEOMETRY
        .replace("{video}", &media("vtest.avi").display().to_string())
        .replace("from = [0.05, 0.05]   # top left", "from = [0.45, 0.28]")
        .replace("to = [0.15, 0.05]", "to = [0.45, 0.72]")
        .replace(
            "[privacy]",
            // The accuracy suite's line along the walkway (eval/pets09-s2l1.toml).
            "[[cameras.lines]]\nid = \"walkway-centre\"\nfrom = [0.05, 0.44]\nto = [0.45, 0.50]\nin = \"left\"\n\n[privacy]",
        );
    let cfg = write_config(dir.path(), &body);
    let mut agent = Agent::start(dir.path(), &cfg);
    let t0 = Instant::now();
    let mut audit = vitrine()
        .args([
            "audit",
            "--line",
            "entry",
            "--minutes",
            "0.6",
            "--publish",
            "--config",
        ])
        .arg(&cfg)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = audit.stdin.take().unwrap();
    let mut taps = 0;
    for (ms, d) in truth.into_iter().filter(|(ms, _)| *ms < 33_000) {
        let at = Duration::from_millis(ms + 400);
        let Some(wait) = at.checked_sub(t0.elapsed()) else {
            continue;
        };
        std::thread::sleep(wait);
        writeln!(stdin, "{}", if d == "in" { "i" } else { "o" }).unwrap();
        taps += 1;
    }
    let out = audit.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(taps >= 7, "{taps} taps");
    assert!(text.contains("you tapped"), "{text}");
    let agreement: f64 = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("agreement "))
        .and_then(|v| v.trim_end_matches(" %").parse().ok())
        .unwrap_or_else(|| panic!("{text}"));
    assert!(agreement >= 70.0, "{text}");
    assert!(text.contains("published (event seq"), "{text}");

    // The camera placement checks from the same run's tracks.
    let live = vitrine()
        .args(["check-config", "--live"])
        .arg(&cfg)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&live.stdout);
    assert!(live.status.success(), "{report}");
    assert!(report.contains("camera walkway:"), "{report}");
    assert!(
        report.contains("near line \"walkway-centre\" walk along it"),
        "the line along the walkway is flagged: {report}"
    );
    assert!(
        !report.contains("near line \"entry\""),
        "the line across the walkway is not flagged: {report}"
    );

    // The audit is an event in the outbox (no broker configured), counts only.
    agent.stop();
    let events = outbox_events(&dir.path().join("state"));
    let audit = events
        .iter()
        .find(|e| e["schema"] == "vitrine.audit.v1")
        .expect("audit stored");
    assert_valid(&schema_named("audit.v1.json"), audit);
    assert_eq!(audit["manual"]["total"].as_u64(), Some(taps));
}

/// A process's resident memory, kB.
fn rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// A process's open descriptors.
fn descriptors(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

/// A TCP connection to `to` from the loopback address `from` (127.0.0.1 and 127.0.0.2 are two
/// machines to the server).
fn connect_from(from: [u8; 4], to: std::net::SocketAddr) -> std::io::Result<std::net::TcpStream> {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    s.bind(&std::net::SocketAddr::from((from, 0)).into())?;
    s.connect_timeout(&to.into(), Duration::from_secs(2))?;
    Ok(s.into())
}

/// What the server sends on `s` until it closes the connection or `within` passes, and whether
/// it closed it (end of stream or reset) in that time.
fn read_until_closed(s: &mut std::net::TcpStream, within: Duration) -> (String, bool) {
    use std::io::{ErrorKind, Read};
    let until = Instant::now() + within;
    let (mut got, mut buf) = (Vec::new(), [0u8; 4096]);
    loop {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return (String::from_utf8_lossy(&got).into_owned(), false);
        }
        s.set_read_timeout(Some(left)).unwrap();
        match s.read(&mut buf) {
            Ok(0) => return (String::from_utf8_lossy(&got).into_owned(), true),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return (String::from_utf8_lossy(&got).into_owned(), false)
            }
            Err(_) => return (String::from_utf8_lossy(&got).into_owned(), true),
        }
    }
}

#[test]
fn stalled_and_unauthenticated_clients_cannot_exhaust_setup_and_ctrl_c_ends_it() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &media("vtest.avi"), None);
    let _agent = Agent::start(dir.path(), &cfg);
    let mut setup = Setup::start(&cfg, &[]);
    let pid = setup.child.id();
    let addr: std::net::SocketAddr = setup
        .base()
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .unwrap();
    let (rss_before, fds_before) = (rss_kb(pid), descriptors(pid));

    // 1. 200 unauthenticated uploads announcing 2 MB each, stalled after 32 kB: refused before
    //    a byte of the body is read (the cookie is checked first), or closed on arrival beyond
    //    the per-client cap. Memory stays small; every one of them is closed.
    let head = "POST /api/save HTTP/1.1\r\nHost: x\r\nX-Vitrine-Setup: 1\r\nContent-Type: application/json\r\nContent-Length: 2000000\r\n\r\n";
    let mut uploads = Vec::new();
    for _ in 0..200 {
        let Ok(mut s) = connect_from([127, 0, 0, 1], addr) else {
            continue;
        };
        s.set_write_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let _ = s.write_all(head.as_bytes());
        let _ = s.write_all(&[b' '; 32 * 1024]);
        uploads.push(s);
    }
    let rss_uploads = rss_kb(pid);
    let mut refused = 0;
    for s in &mut uploads {
        let (text, closed) = read_until_closed(s, Duration::from_secs(30));
        assert!(
            closed,
            "an unauthenticated upload held a socket 30 s: {text}"
        );
        refused += usize::from(text.starts_with("HTTP/1.1 403"));
    }
    assert!(refused >= 1, "no upload was answered 403");
    drop(uploads);

    // 2. 300 idle sockets and half-sent heads from one machine: the descriptors stay bounded,
    //    the technician on another machine opens the page meanwhile, and the server closes
    //    every one of them within its header timeout.
    let mut idle = Vec::new();
    for i in 0..300 {
        if let Ok(mut s) = connect_from([127, 0, 0, 1], addr) {
            if i % 2 == 0 {
                let _ = s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n");
            }
            idle.push(s);
        }
    }
    let held_from = Instant::now();
    std::thread::sleep(Duration::from_millis(300));
    let fds_idle = descriptors(pid);
    // Meanwhile another web page the technician has open tries tokens in pictures (a dozen
    // <img src=...?token=...>, more than the guesses that lock the session), and a page of
    // another name resolved to this address (DNS rebinding) tries one: refused without
    // counting as guesses.
    let try_token = |headers: &str| {
        let mut s = connect_from([127, 0, 0, 2], addr).unwrap();
        write!(
            s,
            "GET /?token=abcd-efgh-jkmn HTTP/1.1\r\n{headers}Connection: close\r\n\r\n"
        )
        .unwrap();
        read_until_closed(&mut s, Duration::from_secs(10)).0
    };
    for _ in 0..12 {
        let r = try_token(&format!(
            "Host: {addr}\r\nSec-Fetch-Site: cross-site\r\nSec-Fetch-Dest: image\r\n"
        ));
        assert!(
            r.starts_with("HTTP/1.1 403") && r.contains("Nothing was counted"),
            "{r}"
        );
    }
    let port = addr.port();
    let r = try_token(&format!(
        "Host: rebind.example:{port}\r\nSec-Fetch-Site: same-origin\r\nSec-Fetch-Dest: document\r\n"
    ));
    assert!(
        r.starts_with("HTTP/1.1 403") && r.contains("own address"),
        "{r}"
    );
    let mut tech = connect_from([127, 0, 0, 2], addr).unwrap();
    write!(
        tech,
        "GET /?token={} HTTP/1.1\r\nHost: {addr}\r\nSec-Fetch-Site: none\r\nSec-Fetch-Dest: document\r\nConnection: close\r\n\r\n",
        setup.token()
    )
    .unwrap();
    let (page, _) = read_until_closed(&mut tech, Duration::from_secs(10));
    // The token buys the session cookie and a redirect to the page.
    assert!(
        page.starts_with("HTTP/1.1 303"),
        "the technician is locked out: {page:.300}"
    );
    let session = page
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .and_then(|c| c.split(';').next())
        .expect("a session cookie")
        .to_string();
    // An unknown camera is a 404 naming the running ones, not a gateway error.
    let mut ask = connect_from([127, 0, 0, 2], addr).unwrap();
    write!(
        ask,
        "GET /api/view/roof HTTP/1.1\r\nHost: {addr}\r\nCookie: {session}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let (answer, _) = read_until_closed(&mut ask, Duration::from_secs(10));
    assert!(
        answer.starts_with("HTTP/1.1 404") && answer.contains("walkway"),
        "{answer}"
    );
    for s in &mut idle {
        let (_, closed) = read_until_closed(s, Duration::from_secs(30));
        assert!(closed, "an idle socket was held 30 s");
    }
    let held = held_from.elapsed();
    drop(idle);
    let rss_after = rss_kb(pid);
    eprintln!(
        "setup: {rss_before} kB before, {rss_uploads} kB with 200 stalled uploads, {rss_after} kB after; \
         {fds_before} descriptors before, {fds_idle} with 300 idle sockets; idle sockets closed within {held:?}"
    );
    assert!(rss_uploads < 50_000 && rss_after < 50_000, "memory grew");
    assert!(
        fds_idle <= fds_before + 16 + 2,
        "descriptors grew with idle sockets: {fds_before} -> {fds_idle}"
    );
    assert!(held < Duration::from_secs(30));

    // 3. Ctrl-C ends setup while one client holds an unfinished request (a session's save
    //    whose body stalls) and another a half-sent head.
    let mut stalled = connect_from([127, 0, 0, 2], addr).unwrap();
    write!(
        stalled,
        "POST /api/save HTTP/1.1\r\nHost: {addr}\r\nCookie: {session}\r\nX-Vitrine-Setup: 1\r\nContent-Length: 100\r\n\r\n{{"
    )
    .unwrap();
    let mut half = connect_from([127, 0, 0, 1], addr).unwrap();
    half.write_all(b"GET /api/state HTTP/1.1\r\nHost:").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let sent = Instant::now();
    let st = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let ended = loop {
        if let Some(status) = setup.child.try_wait().unwrap() {
            break Some(status);
        }
        if sent.elapsed() > Duration::from_secs(10) {
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let took = sent.elapsed();
    assert!(
        ended.is_some_and(|s| s.success()) && took < Duration::from_secs(3),
        "setup did not end on Ctrl-C within 3 s ({took:?}, {ended:?})"
    );
    let out = setup.stop();
    assert!(out.contains("setup session ended"), "{out}");
}

#[test]
fn the_page_fits_a_phone_and_its_labels_do_not_overprint() {
    // Two lines side by side: their labels would be drawn at the same height.
    let dir = tempfile::tempdir().unwrap();
    let body = GEOMETRY
        .replace("{video}", &media("vtest.avi").display().to_string())
        .replace("id = \"entry\"", "id = \"entrance-left\"")
        .replace("from = [0.05, 0.05]   # top left", "from = [0.45, 0.3]")
        .replace("to = [0.15, 0.05]", "to = [0.45, 0.7]")
        .replace(
            "[privacy]",
            "[[cameras.lines]]\nid = \"entrance-right\"\nfrom = [0.5, 0.3]\nto = [0.5, 0.7]\nin = \"left\"\n\n[[cameras.displays]]\nid = \"shelf\"\npolygon = [[0.05, 0.8], [0.3, 0.8], [0.3, 0.95], [0.05, 0.95]]\nexpressions = true\n\n[privacy]",
        );
    let cfg = write_config(dir.path(), &body);
    let _agent = Agent::start(dir.path(), &cfg);
    let setup = Setup::start(&cfg, &[]);
    let r = drive(
        &setup.url,
        json!([
            {"do": "open"},
            {"do": "wait_still"},
            {"do": "texts"},
            {"do": "labels"},
            {"do": "viewport", "width": 390, "height": 844},
            {"do": "labels"},
        ]),
    );
    setup.stop();
    let overlaps = |boxes: &Value| {
        let b: Vec<[f64; 4]> = serde_json::from_value(boxes.clone()).unwrap();
        // The display's label first, then the two lines'.
        assert_eq!(b.len(), 3, "{b:?}");
        let (p, q) = (b[1], b[2]);
        p[0] < q[2] - 0.5 && q[0] < p[2] - 0.5 && p[1] < q[3] - 0.5 && q[1] < p[3] - 0.5
    };
    // A display that reads expressions says so on the picture and in its card.
    let texts = step(&r, "texts");
    assert!(
        texts["overlay"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t == "shelf · expressions on")
            && texts["displays"]
                .as_str()
                .unwrap()
                .contains("expressions on"),
        "{texts}"
    );
    let labels: Vec<&Value> = r.iter().filter(|s| s["step"] == "labels").collect();
    for l in &labels {
        assert!(!overlaps(&l["boxes"]), "labels overprint: {l}");
    }
    let phone = step(&r, "viewport");
    let width = phone["width"].as_f64().unwrap();
    assert!(
        phone["scroll_width"].as_f64().unwrap() <= width,
        "the page scrolls sideways on a phone: {phone}"
    );
    let still: Vec<f64> = serde_json::from_value(phone["still"].clone()).unwrap();
    assert!(
        still[0] >= 0.0
            && still[2] >= 0.8 * width
            && still[3] >= 0.5 * still[2]
            && still[1] < 844.0,
        "the live view is not on the phone's screen: {phone}"
    );
}

#[test]
fn a_save_that_cannot_start_is_rolled_back_and_the_page_says_so() {
    // The box has the people detector but not the face models a display needs: a save that
    // adds a display passes validation and cannot start.
    let dir = tempfile::tempdir().unwrap();
    let models = dir.path().join("models");
    std::fs::create_dir(&models).unwrap();
    std::os::unix::fs::symlink(
        common::models().join("yolox_nano.onnx"),
        models.join("yolox_nano.onnx"),
    )
    .unwrap();
    let body = GEOMETRY.replace("{video}", &padded_video(dir.path()).display().to_string());
    let cfg = write_config(dir.path(), &body);
    let text = std::fs::read_to_string(&cfg).unwrap().replace(
        &common::models().display().to_string(),
        &models.display().to_string(),
    );
    std::fs::write(&cfg, &text).unwrap();
    let mut agent = Agent::start(dir.path(), &cfg);
    let setup = Setup::start(&cfg, &[]);
    let r = drive(
        &setup.url,
        json!([
            {"do": "open"},
            {"do": "wait_still"},
            {"do": "add_display", "id": "shelf"},
            {"do": "save"},
            // The technician takes the display out again and moves the line instead.
            {"do": "clear_displays"},
            {"do": "drag", "kind": "lines", "index": 0, "point": "from", "to": [0.45, 0.28]},
            {"do": "save"},
        ]),
    );
    setup.stop();
    let saves: Vec<&str> = r
        .iter()
        .filter(|s| s["step"] == "save")
        .map(|s| s["message"].as_str().unwrap())
        .collect();
    assert!(
        saves[0].contains("Not applied")
            && saves[0].contains("did not start")
            && saves[0].contains("previous configuration"),
        "the page shows the roll-back and why: {saves:?}"
    );
    assert!(saves[1].contains("Saved and applied"), "{saves:?}");
    assert!(agent.running(), "the agent stopped: {}", agent.stop());
    // The failed save left the file as it was; the good one is kept, with the file before it
    // as the backup.
    let now = std::fs::read_to_string(&cfg).unwrap();
    assert!(
        !now.contains("shelf") && now.contains("from = [0.45, 0.28]"),
        "{now}"
    );
    let backup = std::fs::read_to_string(dir.path().join("agent.toml.previous")).unwrap();
    assert_eq!(backup, text);
    let log = agent.stop();
    assert!(
        log.contains("rolled_back") || log.contains("rolled back"),
        "{log}"
    );
}
