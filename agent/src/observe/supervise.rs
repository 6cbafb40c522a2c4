//! Supervision: systemd's notify protocol (`READY=1`, `STATUS=`, `WATCHDOG=1`, `STOPPING=1`)
//! and the status screen, on one plain thread.
//!
//! The watchdog is fed only while [`Liveness`] says the pipeline and the outbox make progress;
//! a stuck decoder, a blocked analysis thread or a hung disk stop the feeding, and systemd
//! restarts the service after `WatchdogSec`. Without `NOTIFY_SOCKET` (not under systemd) every
//! notification is a no-op.

use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use sd_notify::NotifyState;

use super::display::{self, Panel};
use super::{Liveness, Shared, Verdict, OUTBOX_PATIENCE};
use crate::clock::mono_ms;

fn notify(states: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!(error = %e, "systemd notify failed");
    }
}

/// Tell systemd the agent is up (sources, models and outbox opened).
pub fn ready(line: &str) {
    notify(&[NotifyState::Ready, NotifyState::Status(line)]);
}

/// Tell systemd a reload is under way (`ready` follows when it is done).
pub fn reloading() {
    notify(&[
        NotifyState::Reloading,
        NotifyState::Status("reloading the configuration"),
    ]);
}

/// Tell systemd a clean shutdown is under way.
pub fn stopping() {
    notify(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
}

pub struct Supervisor {
    /// Dropping it (in `finish`) wakes the thread at once and ends it.
    stop: Option<std::sync::mpsc::Sender<()>>,
    handle: Option<JoinHandle<()>>,
}

impl Supervisor {
    /// Start supervising. `WATCHDOG_USEC` (set by systemd from `WatchdogSec=`) turns the
    /// watchdog on; `status.display` the screen.
    pub fn start(shared: Shared, status: &vitrine_config::Status) -> anyhow::Result<Supervisor> {
        let watchdog = sd_notify::watchdog_enabled();
        let panel: Option<Box<dyn Panel>> = match &status.display {
            Some(d) => match display::open(d) {
                Ok(p) => {
                    tracing::info!(panel = %p.describe(), "status display");
                    Some(p)
                }
                Err(e) => {
                    // A missing screen is reported, never fatal: analytics go on.
                    tracing::error!(error = %e, "status display unavailable");
                    None
                }
            },
            None => None,
        };
        let redraw = Duration::from_secs(u64::from(status.display_secs));
        if let Some(w) = watchdog {
            tracing::info!(period_ms = w.as_millis() as u64, "systemd watchdog on");
        }
        let (stop, stopped) = std::sync::mpsc::channel();
        let handle = std::thread::Builder::new()
            .name("supervise".into())
            .spawn(move || run(shared, watchdog, panel, redraw, stopped))?;
        Ok(Supervisor {
            stop: Some(stop),
            handle: Some(handle),
        })
    }

    pub fn finish(mut self) {
        drop(self.stop.take());
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn run(
    shared: Shared,
    watchdog: Option<Duration>,
    mut panel: Option<Box<dyn Panel>>,
    redraw: Duration,
    stopped: std::sync::mpsc::Receiver<()>,
) {
    // Feed three times per period (systemd's advice is at least twice).
    let tick = match watchdog {
        Some(w) => (w / 3).clamp(Duration::from_millis(100), redraw),
        None => redraw,
    };
    let liveness = watchdog.map(Liveness::for_watchdog);
    // A hung outbox must be noticed well within the watchdog period.
    let patience = liveness.map_or(OUTBOX_PATIENCE, |l| {
        OUTBOX_PATIENCE.min(Duration::from_millis(l.stall_ms / 2))
    });
    let mut stalled = false;
    let mut last_line = String::new();
    let mut last_draw: Option<Instant> = None;
    let mut display_failed = false;
    loop {
        let snap = shared.snapshot(mono_ms(), patience);
        let mut line = snap.line();
        if let Some(l) = &liveness {
            match shared.verdict(l, mono_ms(), &snap) {
                Verdict::Alive => {
                    if stalled {
                        tracing::info!("pipeline progressing again: watchdog fed");
                        stalled = false;
                    }
                    notify(&[NotifyState::Watchdog]);
                }
                Verdict::Stalled(why) => {
                    if !stalled {
                        tracing::error!(reason = %why, "pipeline stalled: not feeding the systemd watchdog (systemd restarts the agent if this lasts WatchdogSec)");
                        stalled = true;
                    }
                    line = format!("STALLED: {why}");
                }
            }
        }
        if line != last_line {
            notify(&[NotifyState::Status(&line)]);
            last_line = line;
        }
        if let Some(p) = panel.as_mut() {
            if last_draw.is_none_or(|t| t.elapsed() >= redraw) {
                last_draw = Some(Instant::now());
                match p.show(&display::render(&snap)) {
                    Ok(()) if display_failed => {
                        tracing::info!("status display works again");
                        display_failed = false;
                    }
                    Ok(()) => {}
                    Err(e) if !display_failed => {
                        tracing::error!(error = %e, panel = %p.describe(), "status display: cannot draw");
                        display_failed = true;
                    }
                    Err(_) => {}
                }
            }
        }
        // Wait for the next tick; a stop (the sender dropped) ends the wait at once.
        match stopped.recv_timeout(tick) {
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            _ => return,
        }
    }
}
