//! The running agent, wired from the components in named steps:
//! open the outbox → start the sources → the uplink → the observers → store events until the
//! sources end → drain. Each step is a function below; `run` reads as that list.

mod outbox;
mod shell;
mod summary;

use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::runtime::Runtime;
use tokio::sync::{watch, Notify};
use vitrine_config::Config;

pub use outbox::{gap_payload, open_outbox};
pub use shell::{install_stop_signal, join, runtime};
pub use summary::summary;

use crate::clock::now_ms;
use crate::observe::{self, Shared};
use crate::outbox::{lock_outbox, SharedOutbox};
use crate::pipeline::{self, Options, Running, WindowOut, WINDOW_CHANNEL};
use crate::telemetry::{SourceProgress, UplinkStats};
use crate::uplink::Uplink;

/// How long the uplink may keep sending what is left once the sources have ended.
const DRAIN: Duration = Duration::from_secs(10);

/// Run the agent for `cfg` until its sources end or a stop signal arrives.
pub fn run(
    cfg: &Config,
    realtime: bool,
    print: bool,
    base_ms: Option<u64>,
) -> anyhow::Result<ExitCode> {
    let rt = runtime()?;
    let stop = Arc::new(AtomicBool::new(false));
    install_stop_signal(&rt, stop.clone());
    let outbox: SharedOutbox = Arc::new(Mutex::new(open_outbox(cfg)?));
    let (tx, rx) = sync_channel::<WindowOut>(WINDOW_CHANNEL);
    let opts = Options::new(cfg, base_ms.unwrap_or_else(now_ms), realtime);
    let sources = Sources::start(cfg, &opts, tx, &stop)?;
    let tasks = Tasks::new();
    let uplink = start_uplink(&rt, cfg, &outbox, &sources, &tasks)?;
    let shared = Shared {
        device_id: cfg.device.id.clone(),
        store_id: cfg.device.store_id.clone(),
        k_min: cfg.privacy.k_min,
        started: std::time::Instant::now(),
        sources: sources.progress(),
        failed: sources.failed.clone(),
        outbox: outbox.clone(),
        uplink: uplink.as_ref().map(|(stats, _)| stats.clone()),
        last_outbox: Arc::default(),
    };
    let supervisor = start_observers(&rt, cfg, &shared, &tasks)?;
    let counts = store_events(cfg, rx, &outbox, &tasks.wake, print);
    let ended = join(sources.running);
    observe::supervise::stopping();
    supervisor.finish();
    let delivery = drain(&rt, &outbox, &tasks, uplink.map(|(_, task)| task))?;
    report(cfg, counts?, delivery, &outbox);
    ended?;
    if !sources.failed.is_empty() {
        anyhow::bail!("source(s) not started: {}", sources.failed.join(", "));
    }
    Ok(ExitCode::SUCCESS)
}

/// The configured sources that started, and those that could not.
struct Sources {
    running: Vec<Running>,
    failed: Vec<String>,
}

impl Sources {
    /// Start every camera and microphone. One failing source never stops the others: it is
    /// reported and the rest go on; with none running there is nothing to do.
    fn start(
        cfg: &Config,
        opts: &Options,
        tx: std::sync::mpsc::SyncSender<WindowOut>,
        stop: &Arc<AtomicBool>,
    ) -> anyhow::Result<Sources> {
        let mut s = Sources {
            running: Vec::new(),
            failed: Vec::new(),
        };
        let models = pipeline::SharedModels::default();
        for cam in &cfg.cameras {
            let r = pipeline::start_camera(cfg, cam, None, opts, &models, tx.clone(), stop.clone());
            s.add(&cam.id, "camera", r);
        }
        for mic in &cfg.microphones {
            let r = pipeline::start_microphone(cfg, mic, None, opts, tx.clone(), stop.clone());
            s.add(&mic.id, "microphone", r);
        }
        if s.running.is_empty() {
            anyhow::bail!(
                "no source could be started ({}); see the errors above",
                s.failed.join(", ")
            );
        }
        tracing::info!(
            sources = s.running.len(),
            failed = s.failed.len(),
            window_secs = cfg.privacy.window_secs,
            "pipeline running"
        );
        Ok(s)
    }

    fn add(&mut self, id: &str, kind: &str, started: anyhow::Result<Running>) {
        match started {
            Ok(r) => self.running.push(r),
            Err(e) => {
                tracing::error!(source = %id, error = %format!("{e:#}"), "{kind} not started");
                self.failed.push(id.to_string());
            }
        }
    }

    fn progress(&self) -> Vec<(String, Arc<SourceProgress>)> {
        self.running
            .iter()
            .map(|r| (r.source_id.clone(), r.progress.clone()))
            .collect()
    }
}

/// What the async tasks share: a wake-up for the uplink, and one stop for all of them.
struct Tasks {
    wake: Arc<Notify>,
    stop: watch::Sender<bool>,
}

impl Tasks {
    fn new() -> Tasks {
        Tasks {
            wake: Arc::new(Notify::new()),
            stop: watch::channel(false).0,
        }
    }
}

type UplinkTask = tokio::task::JoinHandle<anyhow::Result<UplinkStats>>;

/// The uplink task, when a broker is configured (else events stay in the outbox).
fn start_uplink(
    rt: &Runtime,
    cfg: &Config,
    outbox: &SharedOutbox,
    sources: &Sources,
    tasks: &Tasks,
) -> anyhow::Result<Option<(Arc<Mutex<UplinkStats>>, UplinkTask)>> {
    let Some(m) = &cfg.mqtt else {
        return Ok(None);
    };
    let u = Uplink::new(cfg, m, outbox.clone(), sources.progress())?;
    let stats = u.stats.clone();
    let task = rt.spawn(u.run(tasks.wake.clone(), tasks.stop.subscribe(), DRAIN));
    Ok(Some((stats, task)))
}

/// The metrics endpoint (if configured) and the supervisor (watchdog, status display).
fn start_observers(
    rt: &Runtime,
    cfg: &Config,
    shared: &Shared,
    tasks: &Tasks,
) -> anyhow::Result<observe::supervise::Supervisor> {
    if let Some(addr) = cfg.status.metrics {
        // A taken port is reported, not fatal: the analytics matter more than their metrics.
        match rt.block_on(tokio::net::TcpListener::bind(addr)) {
            Ok(l) => {
                tracing::info!(%addr, "metrics on http://{addr}/metrics");
                rt.spawn(observe::metrics::serve(
                    l,
                    shared.clone(),
                    tasks.stop.subscribe(),
                ));
            }
            Err(e) => {
                tracing::error!(%addr, error = %e, "metrics endpoint not started; fix: free the port or change status.metrics")
            }
        }
    }
    let supervisor = observe::supervise::Supervisor::start(shared.clone(), &cfg.status)?;
    observe::supervise::ready(&shared.snapshot(now_ms(), observe::OUTBOX_PATIENCE).line());
    Ok(supervisor)
}

/// Closed windows are numbered and stored in the outbox on a plain thread (never on the
/// runtime); the uplink is woken to send them. Returns (stored, refused) once every source
/// has ended.
fn store_events(
    cfg: &Config,
    rx: Receiver<WindowOut>,
    outbox: &SharedOutbox,
    wake: &Arc<Notify>,
    print: bool,
) -> anyhow::Result<(u64, u64)> {
    let (cfg, ob, wk) = (cfg.clone(), outbox.clone(), wake.clone());
    let writer = std::thread::spawn(move || {
        let (mut stored, mut refused) = (0, 0);
        for w in rx.iter() {
            let mut event = None;
            let res = lock_outbox(&ob).try_append(now_ms(), |seq| {
                let ev = w.into_event(&cfg, seq);
                let bytes = serde_json::to_vec(&ev);
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
        (stored, refused)
    });
    writer
        .join()
        .map_err(|_| anyhow::anyhow!("event thread panicked"))
}

/// Flush the outbox, let the uplink send what is left (bounded by [`DRAIN`]), checkpoint.
fn drain(
    rt: &Runtime,
    outbox: &SharedOutbox,
    tasks: &Tasks,
    uplink: Option<UplinkTask>,
) -> anyhow::Result<Option<UplinkStats>> {
    lock_outbox(outbox).flush(now_ms())?;
    let _ = tasks.stop.send(true);
    tasks.wake.notify_one();
    let delivery = match uplink {
        Some(task) => Some(
            rt.block_on(task)
                .map_err(|e| anyhow::anyhow!("uplink task: {e}"))??,
        ),
        None => None,
    };
    lock_outbox(outbox).checkpoint(now_ms())?;
    Ok(delivery)
}

fn report(
    cfg: &Config,
    (stored, refused): (u64, u64),
    delivery: Option<UplinkStats>,
    outbox: &SharedOutbox,
) {
    let (left, _) = lock_outbox(outbox).depth();
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
}
