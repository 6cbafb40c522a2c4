//! `vitrine-lab bench capacity`: can this box carry N busy cameras and a microphone in real time?
//! Runs the real daemon (`vitrine run --realtime`) on N copies of the busy pedestrian video and
//! the demo microphone recording at the documented defaults, then reads what it stored: frames
//! expected, analysed and dropped per camera, the CPU it took (decoders included) and its peak
//! and steady resident memory.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;

/// Resident and peak resident memory of a process, KiB (from /proc).
fn memory_kib(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let get = |k: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(k))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
    };
    Some((get("VmRSS:")?, get("VmHWM:")?))
}

/// The first `seconds` of the busy pedestrian video (vtest.avi), cut without re-encoding into
/// `dir` (the benchmarks that run the real daemon on several copies of it).
pub fn busy_clip(media: &Path, dir: &Path, seconds: u32) -> anyhow::Result<std::path::PathBuf> {
    let clip = dir.join("busy.avi");
    let st = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-i"])
        .arg(media.join("vtest.avi"))
        .args(["-t", &seconds.to_string(), "-c", "copy"])
        .arg(&clip)
        .status()?;
    anyhow::ensure!(
        st.success(),
        "ffmpeg could not cut {}",
        media.join("vtest.avi").display()
    );
    Ok(clip)
}

pub fn capacity(models: &Path, media: &Path, cameras: u32, seconds: u32) -> anyhow::Result<()> {
    let exe = crate::sibling_bin("vitrine")?;
    let models =
        std::fs::canonicalize(models).with_context(|| format!("models {}", models.display()))?;
    let media =
        &std::fs::canonicalize(media).with_context(|| format!("media {}", media.display()))?;
    let dir = std::env::temp_dir().join(format!("vitrine-bench-capacity-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let clip = busy_clip(media, &dir, seconds)?;
    let mut cfg = String::from("[device]\nid = \"bench\"\nstore_id = \"bench\"\n");
    for i in 1..=cameras {
        cfg += &format!(
            "[[cameras]]\nid = \"cam{i}\"\nfile = \"{}\"\n[[cameras.lines]]\nid = \"door\"\nfrom = [0.45, 0.28]\nto = [0.45, 0.72]\nin = \"left\"\n[[cameras.zones]]\nid = \"pavement\"\npolygon = [[0.0, 0.31], [0.42, 0.31], [0.42, 0.50], [0.0, 0.45]]\n",
            clip.display()
        );
    }
    cfg += &format!(
        "[[microphones]]\nid = \"mic\"\nfile = \"{}\"\n[models]\ndir = \"{}\"\n[privacy]\nwindow_secs = 10\n[outbox]\ndir = \"{}\"\n",
        media.join("demo-mic.wav").display(),
        models.display(),
        dir.join("state").display()
    );
    let cfg_path = dir.join("capacity.toml");
    std::fs::write(&cfg_path, cfg)?;
    let cpu0 = crate::cputime::process_and_children_s();
    let started = Instant::now();
    let mut child = Command::new(&exe)
        .args(["run", "--realtime", "--config"])
        .arg(&cfg_path)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("agent.log"))?)
        .spawn()?;
    let (mut peak, mut samples) = (0u64, Vec::new());
    while child.try_wait()?.is_none() {
        if let Some((rss, hwm)) = memory_kib(child.id()) {
            peak = peak.max(hwm);
            if started.elapsed() > Duration::from_secs(10) {
                samples.push(rss);
            }
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let status = child.wait()?;
    let wall = started.elapsed().as_secs_f64();
    anyhow::ensure!(
        status.success(),
        "the agent failed: {}",
        std::fs::read_to_string(dir.join("agent.log")).unwrap_or_default()
    );
    let cpu = crate::cputime::process_and_children_s() - cpu0;
    let (mut analysed, mut dropped) = (0u64, 0u64);
    for (_, bytes) in vitrine::outbox::inspect(&dir.join("state"))? {
        let v: serde_json::Value = serde_json::from_slice(&bytes)?;
        if v["kind"] == "camera" {
            let c = &v["coverage"];
            analysed += c["frames_analysed"].as_u64().unwrap_or(0);
            dropped += c["frames_dropped"].as_u64().unwrap_or(0);
        }
    }
    samples.sort_unstable();
    let steady = samples.get(samples.len() / 2).copied().unwrap_or(0);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("{cameras} busy cameras (vtest.avi, 4-8 walkers) + 1 microphone, real time, {seconds} s, defaults (10 fps, detector every 3rd frame)");
    println!("| frames in the video | analysed | dropped | CPU (all {cores} cores) | peak RSS | steady RSS |");
    println!("|---|---|---|---|---|---|");
    println!(
        "| {} | {analysed} | {dropped} | {:.1} % | {:.0} MB | {:.0} MB |",
        u64::from(cameras) * u64::from(seconds) * 10,
        100.0 * cpu / wall / cores as f64,
        peak as f64 / 1024.0,
        steady as f64 / 1024.0
    );
    println!(
        "CPU: the daemon and its ffmpeg decoders over the wall time; RSS: the daemon process."
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
