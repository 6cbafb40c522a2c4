//! `vitrine-lab bench alerts`: how long an alert takes from the frame that raised it to the
//! broker's PUBACK, with N busy cameras in real time. Runs the real daemon (`vitrine run
//! --realtime`) on N copies of the busy pedestrian video, each camera with two line-rate and
//! three zone-occupancy alerts at low thresholds (many raises and clears), and the store's
//! occupancy over every camera's door line with a low capacity (its alert goes through the
//! event writer, not a camera's thread), against a local Mosquitto;
//! the daemon measures every alert (`telemetry::ALERT_LATENCY`) and logs p50/p99 at its end.
//! The same run's windows reach the broker only at window close: a crossing waits on average
//! half a window there (30 s at the default 60 s) — the figure an alert replaces.

use std::path::Path;
use std::process::Command;

use anyhow::Context;

/// Three zones across the view and an alert on each, plus one per line: thresholds just
/// above the walkers' usual numbers, no hold and no rate limit, so alerts are many.
const ZONES_AND_ALERTS: &str = "[[cameras.zones]]\nid = \"west\"\npolygon = [[0.0, 0.2], [0.33, 0.2], [0.33, 1.0], [0.0, 1.0]]\n[[cameras.zones]]\nid = \"middle\"\npolygon = [[0.33, 0.2], [0.66, 0.2], [0.66, 1.0], [0.33, 1.0]]\n[[cameras.zones]]\nid = \"east\"\npolygon = [[0.66, 0.2], [1.0, 0.2], [1.0, 1.0], [0.66, 1.0]]\n[[cameras.alerts]]\nid = \"rush\"\nline = \"door\"\nabove = 2\nhold_secs = 0\nmin_interval_secs = 0\n[[cameras.alerts]]\nid = \"rush-east\"\nline = \"east-line\"\nabove = 2\nhold_secs = 0\nmin_interval_secs = 0\n[[cameras.alerts]]\nid = \"west\"\nzone = \"west\"\nabove = 2\nclear_below = 2\nhold_secs = 0\nmin_interval_secs = 0\n[[cameras.alerts]]\nid = \"middle\"\nzone = \"middle\"\nabove = 2\nclear_below = 2\nhold_secs = 0\nmin_interval_secs = 0\n[[cameras.alerts]]\nid = \"east\"\nzone = \"east\"\nabove = 2\nclear_below = 2\nhold_secs = 0\nmin_interval_secs = 0\n";

/// The value of `key=` in a log line.
fn field(line: &str, key: &str) -> Option<u64> {
    let at = line.find(&format!("{key}="))? + key.len() + 1;
    line[at..]
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

pub fn alerts(models: &Path, media: &Path, cameras: u32, seconds: u32) -> anyhow::Result<()> {
    let exe = crate::sibling_bin("vitrine")?;
    let models =
        std::fs::canonicalize(models).with_context(|| format!("models {}", models.display()))?;
    let media =
        std::fs::canonicalize(media).with_context(|| format!("media {}", media.display()))?;
    let dir = std::env::temp_dir().join(format!("vitrine-bench-alerts-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let (_broker, port) = crate::demo::start_mosquitto(&dir)?
        .context("mosquitto is not installed (scripts/setup.sh installs it)")?;
    let clip = crate::bench_capacity::busy_clip(&media, &dir, seconds)?;
    let mut cfg = String::from("[device]\nid = \"bench\"\nstore_id = \"bench\"\n");
    for i in 1..=cameras {
        cfg += &format!(
            "[[cameras]]\nid = \"cam{i}\"\nfile = \"{}\"\n[[cameras.lines]]\nid = \"door\"\nfrom = [0.45, 0.28]\nto = [0.45, 0.72]\nin = \"left\"\n[[cameras.lines]]\nid = \"east-line\"\nfrom = [0.7, 0.2]\nto = [0.7, 0.9]\nin = \"left\"\n{}",
            clip.display(),
            ZONES_AND_ALERTS
        );
    }
    let doors: Vec<String> = (1..=cameras).map(|i| format!("\"cam{i}/door\"")).collect();
    cfg += &format!(
        "[occupancy]\nentrances = [{}]\ncapacity = 2\n",
        doors.join(", ")
    );
    cfg += &format!(
        "[[microphones]]\nid = \"mic\"\nfile = \"{}\"\n[models]\ndir = \"{}\"\n[mqtt]\nurl = \"mqtt://127.0.0.1:{port}\"\n[privacy]\nk_min = 2\n[outbox]\ndir = \"{}\"\n",
        media.join("demo-mic.wav").display(),
        models.display(),
        dir.join("state").display()
    );
    let cfg_path = dir.join("alerts.toml");
    std::fs::write(&cfg_path, cfg)?;
    let out = Command::new(&exe)
        .args(["run", "--realtime", "--config"])
        .arg(&cfg_path)
        .env("VITRINE_LOG", "info")
        .env("NO_COLOR", "1")
        .output()?;
    let log = String::from_utf8_lossy(&out.stderr);
    anyhow::ensure!(out.status.success(), "the agent failed: {log}");
    let line = log
        .lines()
        .find(|l| l.contains("alert delivery latency"))
        .context("no alert was delivered (the agent logged no latency)")?;
    let get = |k: &str| field(line, k).unwrap_or(0);
    println!("{cameras} busy cameras (vtest.avi, 4-8 walkers) + 1 microphone, real time, {seconds} s; alerts per camera: 2 line rates and 3 zone occupancies above 2, no hold, no rate limit; and the store's capacity (2) over every door line");
    println!("| alerts delivered | p50 frame→PUBACK | p99 | max | goal p99 |");
    println!("|---|---|---|---|---|");
    println!(
        "| {} | {} ms | {} ms | {} ms | < 1000 ms |",
        get("alerts"),
        get("p50_ms"),
        get("p99_ms"),
        get("max_ms")
    );
    println!("Without alerts, a crossing reaches the broker with its window: on average half a window later (30 s at the default 60 s windows).");
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn log_fields_are_read_by_name() {
        let l = "INFO vitrine::daemon: alert delivery latency (frame to PUBACK) alerts=12 p50_ms=85 p99_ms=310 max_ms=402";
        assert_eq!(super::field(l, "p99_ms"), Some(310));
        assert_eq!(super::field(l, "alerts"), Some(12));
        assert_eq!(super::field(l, "nothing"), None);
    }
}
