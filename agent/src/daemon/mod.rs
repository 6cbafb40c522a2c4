//! The running agent, wired from the components in named steps:
//! open the outbox → start the sources → the uplink → the observers → store events until the
//! sources end → drain. Each step is a function below; `run` reads as that list.

mod clockwatch;
pub mod control;
mod events;
mod forecast;
mod outbox;
mod reload;
mod remote;
mod shell;
mod sources;
mod summary;

use std::process::ExitCode;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::mpsc::{channel, sync_channel, Receiver};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::runtime::Runtime;
use tokio::sync::{watch, Notify};
use vitrine_config::Config;

pub use outbox::{gap_payload, open_outbox};
pub use shell::{install_signals, install_stop_signal, join, runtime, Signal};
pub use summary::summary;

use crate::clock::{mono_ms, now_ms, ClockStep};
use crate::observe::{self, Shared};
use crate::outbox::{lock_outbox, SharedOutbox};
use crate::pipeline::{Options, Record, WINDOW_CHANNEL};
use crate::telemetry::{SourceList, UplinkStats};
use crate::uplink::Uplink;
use sources::SourceSet;

/// How long the uplink may keep sending what is left once the sources have ended.
const DRAIN: Duration = Duration::from_secs(10);

/// What the daemon's control loop reacts to.
#[derive(Debug)]
pub enum Control {
    Signal(Signal),
    /// The wall clock was stepped (see `clock::ClockWatch`).
    Clock(ClockStep),
    /// A source's thread ended (end of a file, a fatal error, or asked to stop); the key
    /// of that run of the source.
    Ended(u64),
    /// A `config/set` request from the uplink (payload, retained by the broker).
    Remote(Vec<u8>, bool),
    /// A save of the setup page: the whole new file, and where to answer with the save's
    /// number (or why it was refused).
    Save(String, std::sync::mpsc::Sender<Result<u64, String>>),
}

/// Run the agent for `cfg` until its sources end or a stop signal arrives.
/// `interrupted`: the version of a remote configuration whose apply a crash interrupted
/// (rolled back before `cfg` was read; reported once the outbox is open).
pub fn run(
    cfg: &Config,
    realtime: bool,
    print: bool,
    base_ms: Option<u64>,
    interrupted: Option<u64>,
) -> anyhow::Result<ExitCode> {
    let rt = runtime()?;
    let (control_tx, control) = channel::<Control>();
    let ctl = control_tx.clone();
    install_signals(&rt, move |sig| {
        let _ = ctl.send(Control::Signal(sig));
    });
    let outbox: SharedOutbox = Arc::new(Mutex::new(open_outbox(cfg)?));
    let (tx, rx) = sync_channel::<Record>(WINDOW_CHANNEL);
    let control_tx_for_clock = control_tx.clone();
    let control_tx_for_uplink = control_tx.clone();
    let control_tx_for_socket = control_tx.clone();
    let mut sources = SourceSet::new(tx, control_tx);
    let forecaster = forecast::Forecaster::open(cfg);
    sources.forecast = Some((forecaster.book.clone(), forecaster.clock.clone()));
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
    let current = Arc::new(RwLock::new(cfg.clone()));
    let uplink = start_uplink(
        &rt,
        cfg,
        &outbox,
        &sources.list,
        &tasks,
        (
            control_tx_for_uplink,
            forecast::prior_sink(current.clone(), forecaster.book.clone()),
            forecast::federation(cfg, forecaster.book.clone()),
        ),
    )?;
    let remote = remote::Remote::new(cfg, outbox.clone(), tasks.wake.clone());
    if let Some(version) = interrupted {
        remote::report_interrupted(&remote, cfg, version);
    }
    let shared = Shared {
        device_id: cfg.device.id.clone(),
        store_id: cfg.device.store_id.clone(),
        k_min: cfg.privacy.k_min,
        started: std::time::Instant::now(),
        sources: sources.list.clone(),
        outbox: outbox.clone(),
        uplink: uplink.as_ref().map(|(stats, _)| stats.clone()),
        last_outbox: Arc::default(),
        setup: Arc::default(),
    };
    let supervisor = start_observers(&rt, cfg, &shared, &tasks)?;
    let shift = Arc::new(AtomicI64::new(events::NO_SHIFT));
    let writer = events::store_events(
        current.clone(),
        rx,
        &outbox,
        &tasks.wake,
        shift.clone(),
        (print, forecaster),
    );
    let socket = control::socket_path(cfg);
    let socket_ctx = control::ControlContext {
        taps: sources.taps.clone(),
        control: control_tx_for_socket,
        current: current.clone(),
        outbox: outbox.clone(),
        wake: tasks.wake.clone(),
        notice: shared.setup.clone(),
        published: Default::default(),
        saves: remote.saves.clone(),
    };
    if let Err(e) = control::serve(&socket, socket_ctx) {
        tracing::warn!(path = %socket.display(), error = %e, "control socket not started: `vitrine setup` and `vitrine audit` cannot reach this agent");
    }
    let failed_at_start = sources.failed().to_vec();
    let watch = clockwatch::start(control_tx_for_clock)?;
    let mut ctl = ControlState {
        current: &current,
        realtime,
        shift: &shift,
        ahead_ms: 0,
        stopping: false,
        remote,
    };
    let sources = ctl.run(sources, &control);
    let _ = std::fs::remove_file(&socket);
    watch.finish();
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

/// The control loop's state: the configuration in effect (replaced by reloads), how the
/// clock steps shift held windows, how far the sources' timeline runs ahead of the wall clock.
struct ControlState<'a> {
    current: &'a RwLock<Config>,
    realtime: bool,
    shift: &'a AtomicI64,
    /// After a step back the timeline resumes where the last window ended, ahead of the wall
    /// clock by at most the step, so no two windows of a source overlap.
    ahead_ms: u64,
    stopping: bool,
    remote: remote::Remote,
}

impl ControlState<'_> {
    /// React to signals, clock steps and source ends until every source has ended. Returns
    /// the sources' result; the event channel closes when this returns (the set, holding its
    /// sender, is dropped), which ends the event writer.
    fn run(&mut self, mut sources: SourceSet, control: &Receiver<Control>) -> anyhow::Result<()> {
        while !sources.is_empty() || self.remote.trying() {
            let msg = match control.recv_timeout(self.remote.patience()) {
                Ok(m) => m,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    self.remote_tick(&mut sources);
                    continue;
                }
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
            };
            match msg {
                Control::Signal(Signal::Stop) => {
                    self.stopping = true;
                    sources.stop_all();
                }
                Control::Signal(Signal::Reload) | Control::Clock(_) if self.stopping => {
                    tracing::info!("ignored while stopping: {msg:?}");
                }
                Control::Signal(Signal::Reload) => self.reload(&mut sources),
                Control::Clock(step) => self.clock_stepped(&mut sources, step),
                Control::Ended(key) => sources.ended(key),
                Control::Remote(..) if self.stopping => {
                    tracing::info!("configuration request ignored while stopping (the broker's retained copy or the central service's retry brings it back)");
                }
                Control::Remote(payload, retained) => {
                    let cfg = remote::current(self.current);
                    if self.remote.request(&cfg, &payload, retained) == remote::Action::Reload {
                        self.reload(&mut sources);
                    }
                }
                Control::Save(_, answer) if self.stopping => {
                    let _ = answer.send(Err("the agent is stopping; nothing was changed".into()));
                }
                Control::Save(text, answer) => {
                    let cfg = remote::current(self.current);
                    let saved = self.remote.try_setup_save(&cfg, &text);
                    let reload = saved.is_ok();
                    let _ = answer.send(saved);
                    if reload {
                        self.reload(&mut sources);
                    }
                }
            }
            self.remote_tick(&mut sources);
        }
        sources.result()
    }

    fn reload(&mut self, sources: &mut SourceSet) {
        observe::supervise::reloading();
        reload(sources, self.current, self.realtime, self.ahead_ms);
        observe::supervise::ready("configuration reloaded");
    }

    /// A remote configuration on trial: kept once healthy, rolled back at its deadline.
    fn remote_tick(&mut self, sources: &mut SourceSet) {
        if self.stopping {
            return;
        }
        let cfg = remote::current(self.current);
        if self.remote.tick(&cfg, sources) == remote::Action::Reload {
            self.reload(sources);
        }
    }

    /// The wall clock was stepped: every source closes its window on the old timeline and
    /// starts again on the new one (no catch-up of windows that never happened, no overlap).
    fn clock_stepped(&mut self, sources: &mut SourceSet, step: ClockStep) {
        let cfg = self
            .current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let window_ms = u64::from(cfg.privacy.window_secs) * 1000;
        if !step.was_plausible {
            // Windows held while the clock was implausible move with it.
            let known = self.shift.load(Ordering::Relaxed);
            let total = if known == events::NO_SHIFT {
                step.by_ms
            } else {
                known + step.by_ms
            };
            self.shift.store(total, Ordering::Relaxed);
        }
        let now = now_ms();
        // Where the old timeline is now, and the end of the window it is in.
        let old_now = (now as i64 + self.ahead_ms as i64 - step.by_ms).max(0) as u64;
        let old_end = old_now.div_ceil(window_ms.max(1)) * window_ms.max(1);
        let base = if step.by_ms < 0 {
            old_end.max(now)
        } else {
            now
        };
        self.ahead_ms = base - now;
        tracing::warn!(
            by_ms = step.by_ms,
            plausible = step.plausible,
            ahead_ms = self.ahead_ms,
            "the wall clock was stepped: windows split at the step, sources restart on the new time"
        );
        let ids = sources.ids();
        sources.stop_and_join(&ids);
        let opts = Options::new(&cfg, base, self.realtime);
        sources.start(&cfg, &opts, Some(&ids));
    }
}

/// SIGHUP: read the configuration file again. A file with errors is logged with all of them
/// and changes nothing; a valid one restarts exactly the sources it changed (their open
/// windows are closed and stored first).
fn reload(sources: &mut SourceSet, current: &RwLock<Config>, realtime: bool, ahead_ms: u64) {
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
        let opts = Options::new(&effective, now_ms() + ahead_ms, realtime);
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
    (control, priors, federation): (
        std::sync::mpsc::Sender<Control>,
        crate::uplink::PriorSink,
        Option<crate::uplink::Federation>,
    ),
) -> anyhow::Result<Option<(Arc<Mutex<UplinkStats>>, UplinkTask)>> {
    let Some(m) = &cfg.mqtt else {
        return Ok(None);
    };
    let control = Mutex::new(control);
    let u = Uplink::new(cfg, m, outbox.clone(), sources.clone())?
        .with_requests(Arc::new(move |payload, retained| {
            let tx = control.lock().unwrap_or_else(|p| p.into_inner());
            let _ = tx.send(Control::Remote(payload, retained));
        }))
        .with_priors(priors)
        .with_federation(federation);
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
    observe::supervise::ready(&shared.snapshot(mono_ms(), observe::OUTBOX_PATIENCE).line());
    Ok(supervisor)
}

/// Flush the outbox, let the uplink send what is left (bounded by [`DRAIN`]), checkpoint.
fn drain(
    rt: &Runtime,
    outbox: &SharedOutbox,
    tasks: &Tasks,
    uplink: Option<UplinkTask>,
) -> anyhow::Result<Option<UplinkStats>> {
    lock_outbox(outbox).flush(mono_ms())?;
    let _ = tasks.stop.send(true);
    tasks.wake.notify_one();
    let delivery = match uplink {
        Some(task) => Some(
            rt.block_on(task)
                .map_err(|e| anyhow::anyhow!("uplink task: {e}"))??,
        ),
        None => None,
    };
    lock_outbox(outbox).checkpoint(mono_ms())?;
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
    if let Some((alerts, p50_ms, p99_ms, max_ms)) = crate::telemetry::ALERT_LATENCY.summary() {
        tracing::info!(
            alerts,
            p50_ms,
            p99_ms,
            max_ms,
            "alert delivery latency (frame to PUBACK)"
        );
    }
    if left > 0 && cfg.mqtt.is_some() {
        tracing::warn!(unacked = left, dir = %cfg.outbox.dir.display(), "events not yet acknowledged stay in the outbox and are sent on the next start");
    }
}
