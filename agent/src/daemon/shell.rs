//! The async shell's plumbing: the runtime, the stop signal, joining source threads.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Context;

use crate::pipeline::Running;

/// What a process signal asks of the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// Ctrl-C or SIGTERM: close the current windows, drain, exit.
    Stop,
    /// SIGHUP (`systemctl reload`): read the configuration file again.
    Reload,
}

/// The one place process signals are handled: each one is passed to `on` (from the async
/// runtime; `on` must not block). SIGHUP no longer kills the process.
pub fn install_signals(rt: &tokio::runtime::Runtime, on: impl Fn(Signal) + Send + 'static) {
    use tokio::signal::unix::{signal, SignalKind};
    // Registered now, before `run` goes on: a SIGHUP right after start must not kill us.
    let _in_runtime = rt.enter();
    let term = signal(SignalKind::terminate());
    let hup = signal(SignalKind::hangup());
    rt.spawn(async move {
        let (mut term, mut hup) = match (term, hup) {
            (Ok(t), Ok(h)) => (t, h),
            (Err(e), _) | (_, Err(e)) => {
                tracing::error!(error = %e, "cannot handle process signals");
                return;
            }
        };
        loop {
            let sig = tokio::select! {
                _ = tokio::signal::ctrl_c() => Signal::Stop,
                _ = term.recv() => Signal::Stop,
                _ = hup.recv() => Signal::Reload,
            };
            if sig == Signal::Stop {
                tracing::info!("stop requested: finishing the current windows");
                crate::observe::supervise::stopping();
            }
            on(sig);
        }
    });
}

/// Ctrl-C / SIGTERM set `stop` (one-shot commands such as `replay`, which have nothing to
/// reload: SIGHUP is logged and ignored).
pub fn install_stop_signal(rt: &tokio::runtime::Runtime, stop: Arc<AtomicBool>) {
    install_signals(rt, move |sig| match sig {
        Signal::Stop => stop.store(true, Ordering::Relaxed),
        Signal::Reload => {
            tracing::info!("SIGHUP ignored: only `vitrine run` reloads its configuration")
        }
    });
}

pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Wait for every source thread; the first error is returned, all are logged.
pub fn join(running: Vec<Running>) -> anyhow::Result<()> {
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
