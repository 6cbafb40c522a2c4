//! The `vitrine` commands. Each returns the process exit code.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use vitrine_config::{Config, ConfigErrors};
use vitrine_signals::{Body, WindowEvent, Windower};

use crate::outbox::{DirStorage, GapPayload, Limits, Outbox};
use crate::pipeline::{self, Options, Running, WindowOut, WINDOW_CHANNEL};
use crate::publish::{lock_outbox, Uplink};
use crate::seq::Sequencer;

/// sysexits.h EX_CONFIG-ish: the configuration is wrong, restarting will not help.
pub const EXIT_CONFIG: u8 = 64;

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Load a configuration or print every problem and return exit code 64.
pub fn load_config(path: &Path) -> Result<Config, ExitCode> {
    Config::load(path).map_err(|e: ConfigErrors| {
        eprint!("{e}");
        ExitCode::from(EXIT_CONFIG)
    })
}

pub fn check_config(path: &Path) -> ExitCode {
    match load_config(path) {
        Ok(c) => {
            println!(
                "{}: ok (device {}, store {}, {} camera(s), {} microphone(s), {} s windows, k_min {}, broker {})",
                path.display(),
                c.device.id,
                c.device.store_id,
                c.cameras.len(),
                c.microphones.len(),
                c.privacy.window_secs,
                c.privacy.k_min,
                c.mqtt.as_ref().map(|m| format!("{}:{}", m.host, m.port)).unwrap_or_else(|| "none (outbox only)".into())
            );
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}

/// Ctrl-C / SIGTERM set `stop`: sources close their current window and the pipeline drains.
pub fn install_stop_signal(rt: &tokio::runtime::Runtime, stop: Arc<AtomicBool>) {
    rt.spawn(async move {
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {},
            _ = term => {},
        }
        tracing::info!("stop requested: finishing the current windows");
        crate::supervise::stopping();
        stop.store(true, Ordering::Relaxed);
    });
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// A one-line human summary of an event (for the demo and logs: aggregates only).
pub fn summary(ev: &WindowEvent) -> String {
    let f = |v: Option<u32>| v.map(|v| v.to_string()).unwrap_or_else(|| "<k".into());
    let time = ev.window.start.get(11..19).unwrap_or("");
    match &ev.body {
        Body::Camera(c) => {
            let mut s = format!(
                "{time} +{}s {:<10} people mean {:.1} max {} ",
                ev.window.seconds,
                ev.source_id,
                c.people.mean.unwrap_or(0.0),
                f(c.people.max)
            );
            for l in &c.lines {
                s += &format!("| line {} in {} out {} ", l.id, f(l.r#in), f(l.out));
            }
            for z in c.zones.iter().chain(&c.displays) {
                s += &format!(
                    "| {} occ {:.1} visits {} ",
                    z.id,
                    z.occupancy_mean.unwrap_or(0.0),
                    f(z.visits)
                );
                if let Some(d) = &z.dwell_seconds {
                    s += &format!("dwell p50 {:.1}s ", d.p50);
                }
                if let Some(a) = &z.attention {
                    s += &format!("lookers {}/{} ", f(a.lookers), f(a.passers));
                }
            }
            s + &format!(
                "| coverage {:?} {}/{} frames",
                c.coverage.status,
                c.coverage.frames_analysed.unwrap_or(0),
                c.coverage.frames_expected.unwrap_or(0)
            )
            .to_lowercase()
        }
        Body::Microphone(a) => {
            let sounds = a
                .sounds
                .as_ref()
                .map(|s| {
                    let pct = |v: Option<f64>| {
                        v.map(|v| format!("{:.0}%", v * 100.0))
                            .unwrap_or("-".into())
                    };
                    format!(
                        " | sounds speech {} music {} crowd {} silence {} other {}",
                        pct(s.speech),
                        pct(s.music),
                        pct(s.crowd),
                        pct(s.silence),
                        pct(s.other)
                    )
                })
                .unwrap_or_default();
            format!(
                "{time} +{}s {:<10} speech {:.0}% level {} dBFS{sounds} | coverage {}",
                ev.window.seconds,
                ev.source_id,
                a.speech_ratio.unwrap_or(0.0) * 100.0,
                a.level_dbfs
                    .as_ref()
                    .map(|l| format!("{:.1}", l.mean))
                    .unwrap_or_else(|| "-".into()),
                format!("{:?}", a.coverage.status).to_lowercase()
            )
        }
    }
}

pub struct ReplayArgs {
    pub config: PathBuf,
    pub input: PathBuf,
    pub source: Option<String>,
    pub out: Option<PathBuf>,
    pub realtime: bool,
    pub start_ms: Option<u64>,
    pub progress: bool,
}

fn is_audio(p: &Path) -> bool {
    matches!(
        p.extension()
            .and_then(|e| e.to_str())
            .map(|e| e.to_ascii_lowercase())
            .as_deref(),
        Some("wav" | "flac")
    )
}

/// Prints replay progress to stderr once a second until every source is done.
fn progress_loop(running: &[(String, Arc<pipeline::SourceProgress>)], stop: &AtomicBool) {
    let tty = std::io::stderr().is_terminal();
    let mut last_line = std::time::Instant::now();
    loop {
        let done = running.iter().all(|(_, p)| p.done.load(Ordering::Relaxed));
        let parts: Vec<String> = running
            .iter()
            .map(|(id, p)| {
                let m = p.media_ms.load(Ordering::Relaxed) as f64 / 1000.0;
                let d = p.duration_ms.load(Ordering::Relaxed) as f64 / 1000.0;
                let pct = if d > 0.0 {
                    (m / d * 100.0).min(100.0)
                } else {
                    0.0
                };
                format!(
                    "{id}: {m:.1}/{d:.1} s ({pct:.0}%), {} analysed, {} windows",
                    p.analysed.load(Ordering::Relaxed),
                    p.windows.load(Ordering::Relaxed)
                )
            })
            .collect();
        if tty {
            eprint!("\rreplay {}   ", parts.join("; "));
        } else if done || last_line.elapsed() >= Duration::from_secs(10) {
            eprintln!("replay {}", parts.join("; "));
            last_line = std::time::Instant::now();
        }
        if done
            || stop.load(Ordering::Relaxed)
                && running.iter().all(|(_, p)| p.done.load(Ordering::Relaxed))
        {
            if tty {
                eprintln!();
            }
            return;
        }
        std::thread::sleep(Duration::from_millis(if tty { 250 } else { 500 }));
    }
}

pub fn replay(a: ReplayArgs) -> anyhow::Result<ExitCode> {
    let cfg = match load_config(&a.config) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    let rt = runtime()?;
    let stop = Arc::new(AtomicBool::new(false));
    install_stop_signal(&rt, stop.clone());
    let windower = Windower::new(cfg.privacy.window_secs);
    let base_ms = a.start_ms.unwrap_or_else(|| windower.bounds_of(now_ms()).0);
    let opts = Options::new(&cfg, base_ms, a.realtime);
    let (tx, rx) = sync_channel::<WindowOut>(WINDOW_CHANNEL);
    let running = if is_audio(&a.input) {
        let mic = match &a.source {
            Some(id) => cfg.microphones.iter().find(|m| &m.id == id),
            None => cfg.microphones.first(),
        }
        .with_context(|| format!("{} is audio but the config has no microphone{}; fix: add a [[microphones]] section or pass --source", a.input.display(), a.source.as_ref().map(|s| format!(" {s:?}")).unwrap_or_default()))?;
        pipeline::start_microphone(&cfg, mic, Some(&a.input), &opts, tx, stop.clone())?
    } else {
        let cam = match &a.source {
            Some(id) => cfg.cameras.iter().find(|c| &c.id == id),
            None => cfg.cameras.first(),
        }
        .with_context(|| {
            format!(
                "no camera {} in {}; fix: pass --camera with one of: {}",
                a.source.as_deref().unwrap_or("(first)"),
                a.config.display(),
                cfg.cameras
                    .iter()
                    .map(|c| c.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })?;
        pipeline::start_camera(
            &cfg,
            cam,
            Some(&a.input),
            &opts,
            &pipeline::SharedModels::default(),
            tx,
            stop.clone(),
        )?
    };
    let mut out: Box<dyn Write> = match &a.out {
        Some(p) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("cannot create {}", p.display()))?,
        )),
        None => Box::new(std::io::stdout().lock()),
    };
    let prog = running.progress.clone();
    let progress = vec![(running.source_id.clone(), running.progress.clone())];
    let show = a.progress;
    let st = stop.clone();
    let progress_thread = std::thread::spawn(move || {
        if show {
            progress_loop(&progress, &st)
        }
    });
    let mut seq = Sequencer::in_memory();
    let n = write_events(&cfg, &rx, &mut seq, &mut *out)?;
    out.flush()?;
    let result = join(vec![running]);
    let _ = progress_thread.join();
    result?;
    if prog.kind == "camera" {
        let (all, still, predicted) = (
            prog.analysed.load(Ordering::Relaxed),
            prog.skipped_still.load(Ordering::Relaxed),
            prog.skipped_cadence.load(Ordering::Relaxed),
        );
        eprintln!(
            "detector ran on {} of {all} frames ({still} unchanged, {predicted} predicted)",
            all - still - predicted
        );
    }
    if let Some(p) = &a.out {
        eprintln!("wrote {n} window event(s) to {}", p.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn write_events(
    cfg: &Config,
    rx: &Receiver<WindowOut>,
    seq: &mut Sequencer,
    out: &mut dyn Write,
) -> anyhow::Result<usize> {
    let mut n = 0;
    for w in rx.iter() {
        let ev = seq.number(cfg, w);
        serde_json::to_writer(&mut *out, &ev)?;
        out.write_all(b"\n")?;
        n += 1;
    }
    Ok(n)
}

fn join(running: Vec<Running>) -> anyhow::Result<()> {
    let mut first_err = None;
    for r in running {
        match r.handle.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::error!(source = %r.source_id, error = %format!("{e:#}"), "source failed");
                first_err.get_or_insert(e);
            }
            Err(_) => {
                first_err.get_or_insert(anyhow::anyhow!("source {} panicked", r.source_id));
            }
        }
    }
    first_err.map_or(Ok(()), Err)
}

/// The payload of a gap record (`signals/schema/gap.v1.json`).
pub fn gap_payload(cfg: &Config) -> GapPayload {
    let (device, store) = (cfg.device.id.clone(), cfg.device.store_id.clone());
    Box::new(move |seq, g| {
        serde_json::json!({
            "schema": "vitrine.gap.v1",
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

pub struct RunArgs {
    pub config: PathBuf,
    pub realtime: bool,
    /// Print a summary line per window on stdout (the demo).
    pub print: bool,
    /// Wall-clock ms of media time 0 (default: now).
    pub base_ms: Option<u64>,
}

/// The daemon: every configured source through the pipeline, events numbered (persistent
/// seq), published to the broker, or appended to the outbox directory when none is configured.
pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let cfg = match load_config(&args.config) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    run_config(&cfg, args.realtime, args.print, args.base_ms)
}

pub fn run_config(
    cfg: &Config,
    realtime: bool,
    print: bool,
    base_ms: Option<u64>,
) -> anyhow::Result<ExitCode> {
    let rt = runtime()?;
    let stop = Arc::new(AtomicBool::new(false));
    install_stop_signal(&rt, stop.clone());
    let outbox = open_outbox(cfg)?;
    let opts = Options::new(cfg, base_ms.unwrap_or_else(now_ms), realtime);
    let (tx, rx) = sync_channel::<WindowOut>(WINDOW_CHANNEL);
    let mut running = Vec::new();
    let mut failed = Vec::new();
    let models = pipeline::SharedModels::default();
    // One failing source never stops the others: it is reported and the rest go on.
    for cam in &cfg.cameras {
        match pipeline::start_camera(cfg, cam, None, &opts, &models, tx.clone(), stop.clone()) {
            Ok(r) => running.push(r),
            Err(e) => {
                tracing::error!(source = %cam.id, error = %format!("{e:#}"), "camera not started");
                failed.push(cam.id.clone());
            }
        }
    }
    for mic in &cfg.microphones {
        match pipeline::start_microphone(cfg, mic, None, &opts, tx.clone(), stop.clone()) {
            Ok(r) => running.push(r),
            Err(e) => {
                tracing::error!(source = %mic.id, error = %format!("{e:#}"), "microphone not started");
                failed.push(mic.id.clone());
            }
        }
    }
    drop(tx);
    if running.is_empty() {
        anyhow::bail!(
            "no source could be started ({}); see the errors above",
            failed.join(", ")
        );
    }
    tracing::info!(
        sources = running.len(),
        failed = failed.len(),
        window_secs = cfg.privacy.window_secs,
        "pipeline running"
    );
    let outbox = Arc::new(std::sync::Mutex::new(outbox));
    let wake = Arc::new(tokio::sync::Notify::new());
    let (stop_uplink, stop_rx) = tokio::sync::watch::channel(false);
    let sources: Vec<_> = running
        .iter()
        .map(|r| (r.source_id.clone(), r.progress.clone()))
        .collect();
    let mut uplink_stats = None;
    let uplink = match &cfg.mqtt {
        Some(m) => {
            let u = Uplink::new(cfg, m, outbox.clone(), sources.clone())?;
            uplink_stats = Some(u.stats.clone());
            Some(rt.spawn(u.run(wake.clone(), stop_rx.clone(), Duration::from_secs(10))))
        }
        None => None,
    };
    let shared = crate::status::Shared {
        device_id: cfg.device.id.clone(),
        store_id: cfg.device.store_id.clone(),
        k_min: cfg.privacy.k_min,
        started: std::time::Instant::now(),
        sources,
        failed: failed.clone(),
        outbox: outbox.clone(),
        uplink: uplink_stats,
    };
    if let Some(addr) = cfg.status.metrics {
        // A taken port is reported, not fatal: the analytics matter more than their metrics.
        match rt.block_on(tokio::net::TcpListener::bind(addr)) {
            Ok(l) => {
                tracing::info!(%addr, "metrics on http://{addr}/metrics");
                rt.spawn(crate::metrics::serve(l, shared.clone(), stop_rx));
            }
            Err(e) => {
                tracing::error!(%addr, error = %e, "metrics endpoint not started; fix: free the port or change status.metrics")
            }
        }
    }
    let supervisor = crate::supervise::Supervisor::start(shared.clone(), &cfg.status)?;
    crate::supervise::ready(&shared.snapshot(now_ms()).line());
    // Bridge: closed windows are numbered and stored in the outbox on a plain thread; the
    // uplink is woken to send them.
    let (cfg2, ob, wk) = (cfg.clone(), outbox.clone(), wake.clone());
    let bridge = std::thread::spawn(move || -> anyhow::Result<(u64, u64)> {
        let (mut stored, mut refused) = (0, 0);
        for w in rx.iter() {
            let mut event = None;
            let res = lock_outbox(&ob).append(now_ms(), |seq| {
                let ev = w.into_event(&cfg2, seq);
                let bytes = serde_json::to_vec(&ev).unwrap_or_default();
                event = Some(ev);
                bytes
            });
            match res {
                Ok(_) => stored += 1,
                Err(e) => {
                    refused += 1;
                    tracing::error!(error = %e, "event not stored");
                }
            }
            if let (true, Some(ev)) = (print, &event) {
                println!("{}", summary(ev));
            }
            wk.notify_one();
        }
        Ok((stored, refused))
    });
    let counts = bridge
        .join()
        .map_err(|_| anyhow::anyhow!("event thread panicked"))?;
    let sources = join(running);
    crate::supervise::stopping();
    supervisor.finish();
    lock_outbox(&outbox).flush(now_ms())?;
    let _ = stop_uplink.send(true);
    wake.notify_one();
    let delivery = match uplink {
        Some(task) => Some(
            rt.block_on(task)
                .map_err(|e| anyhow::anyhow!("uplink task: {e}"))??,
        ),
        None => None,
    };
    lock_outbox(&outbox).checkpoint(now_ms())?;
    let (stored, refused) = counts?;
    let (left, _) = lock_outbox(&outbox).depth();
    match delivery {
        Some(d) => tracing::info!(
            stored,
            refused,
            acked = d.acked,
            rejected = d.rejected,
            unacked = left,
            "stopped"
        ),
        None => tracing::info!(
            stored,
            refused,
            kept = left,
            "stopped (no broker configured: events stay in the outbox)"
        ),
    }
    if left > 0 && cfg.mqtt.is_some() {
        tracing::warn!(unacked = left, dir = %cfg.outbox.dir.display(), "events not yet acknowledged stay in the outbox and are sent on the next start");
    }
    sources?;
    if !failed.is_empty() {
        anyhow::bail!("source(s) not started: {}", failed.join(", "));
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
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
            serde_json::from_str(include_str!("../../signals/schema/gap.v1.json")).expect("schema");
        let validator = jsonschema::validator_for(&schema).expect("valid schema");
        assert!(validator.is_valid(&v), "{v}");
        assert_eq!(v["lost"]["count"], 6);
        assert_eq!(v["idempotency_key"], "s.42/box-1/gap/17");
    }
}
