//! Field operations through their real interfaces: systemd's notify protocol over a real
//! `NOTIFY_SOCKET` (READY, STATUS, WATCHDOG fed only while the pipeline progresses, STOPPING),
//! the status screen written as a PNG by the running agent, and the Prometheus endpoint
//! scraped over TCP while a real Mosquitto acknowledges events.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// Notifications received on the socket, with their arrival time.
struct Notes {
    sock: UnixDatagram,
    log: Vec<(Instant, String)>,
}

impl Notes {
    fn bind(path: &std::path::Path) -> Notes {
        let sock = UnixDatagram::bind(path).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        Notes { sock, log: vec![] }
    }

    /// Collect for `d`; returns the messages that arrived.
    fn collect(&mut self, d: Duration) -> Vec<(Instant, String)> {
        let end = Instant::now() + d;
        let mut got = vec![];
        let mut buf = [0u8; 4096];
        while Instant::now() < end {
            if let Ok(n) = self.sock.recv(&mut buf) {
                let m = String::from_utf8_lossy(&buf[..n]).to_string();
                got.push((Instant::now(), m.clone()));
                self.log.push((Instant::now(), m));
            }
        }
        got
    }

    /// Wait until a message containing `what` arrives (at most `d`).
    fn wait_for(&mut self, what: &str, d: Duration) -> bool {
        let end = Instant::now() + d;
        while Instant::now() < end {
            if self
                .collect(Duration::from_millis(100))
                .iter()
                .any(|(_, m)| m.contains(what))
            {
                return true;
            }
        }
        false
    }
}

fn count(msgs: &[(Instant, String)], what: &str) -> usize {
    msgs.iter().filter(|(_, m)| m.contains(what)).count()
}

/// The agent's ffmpeg decoder (its child process).
fn decoder_pid(agent: u32) -> String {
    let out = Command::new("pgrep")
        .args(["-P", &agent.to_string(), "ffmpeg"])
        .output()
        .unwrap();
    let pid = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(!pid.is_empty(), "no ffmpeg child of {agent}");
    pid
}

/// `GET path` from the agent's metrics port: the whole response, or `None` if not listening.
#[test]
fn systemd_notify_watchdog_fed_only_while_the_pipeline_progresses() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("notify.sock");
    let mut notes = Notes::bind(&sock);
    let png = dir.path().join("status.png");
    let cfg = write_config(
        dir.path(),
        &format!(
            "{}\n[privacy]\nwindow_secs = 10\n\n[status]\ndisplay = \"{}\"\ndisplay_secs = 1\n",
            walkway_camera(5),
            png.display()
        ),
    );
    let agent = vitrine()
        .args(["run", "--realtime", "--config"])
        .arg(&cfg)
        .env("NOTIFY_SOCKET", &sock)
        .env("WATCHDOG_USEC", "3000000")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = agent.id();

    // READY=1 once the model is loaded and the sources and outbox are open.
    assert!(
        notes.wait_for("READY=1", Duration::from_secs(60)),
        "{:?}",
        notes.log
    );
    let ready = notes
        .log
        .iter()
        .find(|(_, m)| m.contains("READY=1"))
        .unwrap();
    assert!(ready.1.contains("STATUS=1/1 sources up"), "{}", ready.1);

    // Progressing: fed about three times per 3 s period.
    let healthy = notes.collect(Duration::from_secs(4));
    assert!(count(&healthy, "WATCHDOG=1") >= 3, "{healthy:?}");

    // The screen shows up as a PNG the size of the panel.
    let page = vitrine::observe::display::read_png(&png).unwrap();
    assert_eq!((page.width, page.height), (320, 240));

    // Freeze the decoder: no frames, no progress. The feeding must stop (stall = 1.5 s).
    let ffmpeg = decoder_pid(pid);
    assert!(Command::new("kill")
        .args(["-STOP", &ffmpeg])
        .status()
        .unwrap()
        .success());
    assert!(
        notes.wait_for(
            "STATUS=STALLED: source walkway made no progress",
            Duration::from_secs(5)
        ),
        "{:?}",
        notes.log
    );
    let stalled = notes.collect(Duration::from_secs(4));
    assert_eq!(
        count(&stalled, "WATCHDOG=1"),
        0,
        "fed while stalled: {stalled:?}"
    );

    // Thaw it: feeding resumes.
    assert!(Command::new("kill")
        .args(["-CONT", &ffmpeg])
        .status()
        .unwrap()
        .success());
    assert!(
        notes.wait_for("WATCHDOG=1", Duration::from_secs(5)),
        "{:?}",
        notes.log
    );

    // SIGTERM: STOPPING=1, clean exit.
    let out = sigterm_and_wait(agent);
    notes.collect(Duration::from_millis(300));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(count(&notes.log, "STOPPING=1") >= 1, "{:?}", notes.log);
    assert!(stderr.contains("pipeline stalled"), "{stderr}");
    assert!(stderr.contains("progressing again"), "{stderr}");
}

#[test]
fn metrics_endpoint_reports_frames_latency_outbox_and_acks() {
    let broker = Mosquitto::start();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = write_config(
        dir.path(),
        &format!(
            "{}\n[privacy]\nwindow_secs = 5\n\n[mqtt]\nurl = \"mqtt://127.0.0.1:{}\"\n\n[status]\nmetrics = \"127.0.0.1:{port}\"\n",
            walkway_camera(5),
            broker.port
        ),
    );
    let agent = vitrine()
        .args(["run", "--realtime", "--config"])
        .arg(&cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Until two 5 s windows were acknowledged (model load + ~11 s of video).
    let deadline = Instant::now() + Duration::from_secs(90);
    let text = loop {
        std::thread::sleep(Duration::from_millis(500));
        if let Some(t) = get(port, "/metrics") {
            if t.lines().any(|l| {
                l.starts_with("vitrine_publish_acked_total ")
                    && !l.ends_with(" 0")
                    && !l.ends_with(" 1")
            }) {
                break t;
            }
        }
        assert!(Instant::now() < deadline, "no acks in metrics");
    };
    assert!(text.starts_with("HTTP/1.0 200 OK"), "{text}");
    let src = "{source=\"walkway\",kind=\"camera\"}";
    assert!(
        sample(&text, &format!("vitrine_frames_analysed_total{src}")) >= 10.0,
        "{text}"
    );
    assert_eq!(sample(&text, &format!("vitrine_source_up{src}")), 1.0);
    let n = sample(&text, "vitrine_inference_seconds_count{");
    assert!(n >= 10.0, "{text}");
    let inf = text
        .lines()
        .find(|l| l.starts_with("vitrine_inference_seconds_bucket{") && l.contains("le=\"+Inf\""))
        .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no +Inf bucket in\n{text}"));
    assert_eq!(inf, n, "+Inf bucket = count");
    assert!(sample(&text, "vitrine_inference_seconds_sum{") > 0.0);
    assert_eq!(sample(&text, "vitrine_broker_connected "), 1.0);
    assert!(sample(&text, "vitrine_broker_connections_total ") >= 1.0);
    // The detector and the arithmetic `auto` chose on this CPU (f32 on x86).
    let info = if cfg!(target_arch = "x86_64") {
        "vitrine_detector_info{model=\"yolox-nano\",precision=\"f32\"} 1"
    } else {
        "vitrine_detector_info{model=\"yolox-nano\""
    };
    assert!(text.contains(info), "{text}");
    assert!(text.contains("vitrine_outbox_events "), "{text}");
    assert!(
        text.contains("vitrine_outbox_oldest_age_seconds "),
        "{text}"
    );
    assert!(
        text.ends_with("# EOF\n"),
        "OpenMetrics text ends with # EOF"
    );

    // Anything but GET /metrics is refused, and the endpoint keeps serving.
    let t = get(port, "/secret").unwrap();
    assert!(t.starts_with("HTTP/1.0 404"), "{t}");
    assert!(get(port, "/metrics")
        .unwrap()
        .starts_with("HTTP/1.0 200 OK"));

    let out = sigterm_and_wait(agent);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The shipped unit, checked offline as CI does: `systemd-analyze verify` with nothing on
/// stderr, and `systemd-analyze security` exposure at most 2.0.
#[test]
fn systemd_unit_verifies_clean_with_exposure_at_most_2() {
    let out = Command::new(repo().join("systemd/check.sh"))
        .arg(env!("CARGO_BIN_EXE_vitrine"))
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains("verify clean"), "{text}");
}

/// `ProcSubset=pid` hides /proc/cpuinfo, from which tract chooses its ARM kernels: under it a
/// Raspberry Pi on a 32-bit OS ran the detector on scalar VFP kernels instead of NEON, and
/// aarch64 cores lost their f16 and tuned kernels, with nothing said (`cross/test.sh` shows the
/// warning the agent now logs in that case).
#[test]
fn systemd_unit_leaves_proc_cpuinfo_readable_for_tracts_kernel_choice() {
    let unit = std::fs::read_to_string(repo().join("systemd/vitrine.service")).unwrap();
    let hiding: Vec<&str> = unit
        .lines()
        .filter(|l| l.trim_start().starts_with("ProcSubset=") && !l.contains("=all"))
        .collect();
    assert!(hiding.is_empty(), "{hiding:?}");
    assert!(unit.lines().any(|l| l == "ProtectProc=invisible"));
}

/// Exit 64 for a bad config must be what the unit refuses to restart on.
#[test]
fn systemd_unit_does_not_restart_on_bad_config() {
    let unit = std::fs::read_to_string(repo().join("systemd/vitrine.service")).unwrap();
    for line in [
        "Type=notify",
        "RestartPreventExitStatus=64",
        "ExecStartPre=/usr/bin/vitrine check-config /etc/vitrine/agent.toml",
        "WatchdogSec=",
        "StateDirectory=vitrine",
        "LoadCredential=tls:/etc/vitrine/tls",
        "ProtectSystem=strict",
    ] {
        assert!(unit.lines().any(|l| l.starts_with(line)), "missing {line}");
    }
}
