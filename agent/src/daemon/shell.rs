//! The async shell's plumbing: the runtime, the stop signal, joining source threads.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Context;

use crate::pipeline::Running;

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
        crate::observe::supervise::stopping();
        stop.store(true, Ordering::Relaxed);
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
