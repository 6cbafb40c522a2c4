//! `vitrine replay`: one recording through one source's pipeline, window events as JSON lines.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use vitrine_config::Config;
use vitrine_signals::Windower;

use super::load_config;
use super::seq::Sequencer;
use crate::clock::now_ms;
use crate::daemon::{install_stop_signal, join, runtime};
use crate::pipeline::store::{StoreCount, StoreOut};
use crate::pipeline::{self, Options, Record, WINDOW_CHANNEL};
use crate::telemetry::SourceProgress;

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
fn progress_loop(running: &[(String, Arc<SourceProgress>)], stop: &AtomicBool) {
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
    let (tx, rx) = sync_channel::<Record>(WINDOW_CHANNEL);
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
    rx: &Receiver<Record>,
    seq: &mut Sequencer,
    out: &mut dyn Write,
) -> anyhow::Result<usize> {
    let mut n = 0;
    let mut line = |out: &mut dyn Write, v: serde_json::Result<Vec<u8>>| -> anyhow::Result<()> {
        out.write_all(&v?)?;
        out.write_all(b"\n")?;
        n += 1;
        Ok(())
    };
    // The replay's store count starts empty and keeps nothing (replays are reproducible).
    let mut store = StoreCount::new(cfg, None, 0);
    for r in rx.iter() {
        let news = store
            .as_mut()
            .map(|s| s.record(&r, cfg.privacy.k_min))
            .unwrap_or_default();
        match r {
            Record::Window(w) => line(out, serde_json::to_vec(&seq.number(cfg, *w)))?,
            Record::Alert(a) => line(out, serde_json::to_vec(&seq.number_alert(cfg, &a)))?,
            Record::Entrances(_) => {}
        }
        for s in news {
            let v = match s {
                StoreOut::Alert(a) => serde_json::to_vec(&seq.number_alert(cfg, &a)),
                StoreOut::Occupancy(o) => serde_json::to_vec(&seq.number_occupancy(cfg, &o)),
            };
            line(out, v)?;
        }
    }
    Ok(n)
}
