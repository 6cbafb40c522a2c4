//! The running agent, wired from the components in named steps:
//! open the outbox → start the sources → the uplink → the observers → store events until the
//! sources end → drain. Each step is a function below; `run` reads as that list.

mod outbox;
mod reload;
mod shell;
mod sources;
mod summary;

use std::process::ExitCode;
use std::sync::mpsc::{channel, sync_channel, Receiver};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::runtime::Runtime;
use tokio::sync::{watch, Notify};
use vitrine_config::Config;

pub use outbox::{gap_payload, open_outbox};
pub use shell::{install_signals, install_stop_signal, join, runtime, Signal};
pub use summary::summary;

use crate::clock::now_ms;
use crate::observe::{self, Shared};
use crate::outbox::{lock_outbox, SharedOutbox};
use crate::pipeline::{Options, WindowOut, WINDOW_CHANNEL};
use crate::telemetry::{SourceList, UplinkStats};
use crate::uplink::Uplink;
use sources::SourceSet;

/// How long the uplink may keep sending what is left once the sources have ended.
const DRAIN: Duration = Duration::from_secs(10);

/// What the daemon's control loop reacts to.
#[derive(Debug)]
pub enum Control {
    Signal(Signal),
    /// A source's thread ended (end of a file, a fatal error, or asked to stop); the key
    /// of that run of the source.
    Ended(u64),
}

/// Run the agent for `cfg` until its sources end or a stop signal arrives.
pub fn run(
    cfg: &Config,
    realtime: bool,
    print: bool,
    base_ms: Option<u64>,
) -> anyhow::Result<ExitCode> {
    let rt = runtime()?;
    let (control_tx, control) = channel::<Control>();
    let ctl = control_tx.clone();
    install_signals(&rt, move |sig| {
        let _ = ctl.send(Control::Signal(sig));
    });
    let outbox: SharedOutbox = Arc::new(Mutex::new(open_outbox(cfg)?));
    let (tx, rx) = sync_channel::<WindowOut>(WINDOW_CHANNEL);
    let mut sources = SourceSet::new(tx, control_tx);
    let opts = Options::new(cfg, base_ms.unwrap_or_else(now_ms), realtime);
    sources.start(cfg, &opts, None);
    if sources.is_empty() {
        anyhow::bail!(
            "no source could be started ({}); see the errors above",
            sources.failed().join(", ")
        );
    }
    tracing::info!(
        sources = sources.ids().len(),
        failed = sources.failed().len(),
        window_secs = cfg.privacy.window_secs,
        "pipeline running"
    );
    let tasks = Tasks::new();
    let uplink = start_uplink(&rt, cfg, &outbox, &sources.list, &tasks)?;
    let shared = Shared {
        device_id: cfg.device.id.clone(),
        store_id: cfg.device.store_id.clone(),
        k_min: cfg.privacy.k_min,
        started: std::time::Instant::now(),
        sources: sources.list.clone(),
        outbox: outbox.clone(),
        uplink: uplink.as_ref().map(|(stats, _)| stats.clone()),
        last_outbox: Arc::default(),
    };
    let supervisor = start_observers(&rt, cfg, &shared, &tasks)?;
    let current = Arc::new(RwLock::new(cfg.clone()));
    let writer = store_events(current.clone(), rx, &outbox, &tasks.wake, print);
    let failed_at_start = sources.failed().to_vec();
    let sources = control_loop(sources, &control, &current, realtime);
    let counts = writer
        .join()
        .map_err(|_| anyhow::anyhow!("event thread panicked"));
    observe::supervise::stopping();
    supervisor.finish();
    let delivery = drain(&rt, &outbox, &tasks, uplink.map(|(_, task)| task))?;
    report(cfg, counts?, delivery, &outbox);
    sources?;
    if !failed_at_start.is_empty() {
        anyhow::bail!("source(s) not started: {}", failed_at_start.join(", "));
    }
    Ok(ExitCode::SUCCESS)
}

/// React to signals and source ends until every source has ended. Returns the sources'
/// result; the event channel closes when this returns (the set, holding its sender, is
/// dropped), which ends the event writer.
fn control_loop(
    mut sources: SourceSet,
    control: &Receiver<Control>,
    current: &RwLock<Config>,
    realtime: bool,
) -> anyhow::Result<()> {
    let mut stopping = false;
    while !sources.is_empty() {
        let Ok(msg) = control.recv() else { break };
        match msg {
            Control::Signal(Signal::Stop) => {
                stopping = true;
                sources.stop_all();
            }
            Control::Signal(Signal::Reload) if stopping => {
                tracing::info!("reload ignored: the agent is stopping");
            }
            Control::Signal(Signal::Reload) => {
                observe::supervise::reloading();
                reload(&mut sources, current, realtime);
                observe::supervise::ready("configuration reloaded");
            }
            Control::Ended(key) => sources.ended(key),
        }
    }
    sources.result()
}

/// SIGHUP: read the configuration file again. A file with errors is logged with all of them
/// and changes nothing; a valid one restarts exactly the sources it changed (their open
/// windows are closed and stored first).
fn reload(sources: &mut SourceSet, current: &RwLock<Config>, realtime: bool) {
    let old = current.read().unwrap_or_else(|p| p.into_inner()).clone();
    let new = match Config::load(&old.file) {
        Ok(c) => c,
        Err(errors) => {
            tracing::error!(file = %old.file.display(), "reload refused, the running configuration stays:\n{errors}");
            return;
        }
    };
    let plan = reload::plan(&old, &new, &sources.ids());
    if plan.is_empty() {
        tracing::info!(file = %old.file.display(), "configuration reloaded: nothing changed");
        return;
    }
    let effective = reload::effective(&old, &new);
    let mut going = plan.restart.clone();
    going.extend(plan.stop.iter().cloned());
    sources.stop_and_join(&going);
    // The windows of stopped sources are in the event channel; events from now on are
    // stamped with the new privacy settings.
    *current.write().unwrap_or_else(|p| p.into_inner()) = effective.clone();
    let mut coming = plan.restart.clone();
    coming.extend(plan.start.iter().cloned());
    if !coming.is_empty() {
        let opts = Options::new(&effective, now_ms(), realtime);
        sources.start(&effective, &opts, Some(&coming));
    }
    if !plan.need_restart.is_empty() {
        tracing::warn!(sections = %plan.need_restart.join(", "), "changed sections take effect on the next restart (systemctl restart vitrine)");
    }
    tracing::info!(
        file = %old.file.display(),
        restarted = %plan.restart.join(","),
        started = %plan.start.join(","),
        stopped = %plan.stop.join(","),
        unchanged = %plan.keep.join(","),
        failed = %sources.failed().join(","),
        "configuration reloaded"
    );
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
    sources: &Arc<SourceList>,
    tasks: &Tasks,
) -> anyhow::Result<Option<(Arc<Mutex<UplinkStats>>, UplinkTask)>> {
    let Some(m) = &cfg.mqtt else {
        return Ok(None);
    };
    let u = Uplink::new(cfg, m, outbox.clone(), sources.clone())?;
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
/// runtime); the uplink is woken to send them. The thread returns (stored, refused) once the
/// event channel closes.
fn store_events(
    current: Arc<RwLock<Config>>,
    rx: Receiver<WindowOut>,
    outbox: &SharedOutbox,
    wake: &Arc<Notify>,
    print: bool,
) -> std::thread::JoinHandle<(u64, u64)> {
    let (ob, wk) = (outbox.clone(), wake.clone());
    std::thread::spawn(move || {
        let (mut stored, mut refused) = (0, 0);
        for w in rx.iter() {
            let cfg = current.read().unwrap_or_else(|p| p.into_inner()).clone();
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
    })
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
