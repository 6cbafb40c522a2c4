//! The outbox's IO thread for async callers: the uplink hands each outbox operation (read the
//! next record, acknowledge, tick the group commit, read the depth) to this thread and awaits
//! the answer, so the async runtime never waits on a disk: an fsync, a rename or a hung disk
//! holds this thread, not the runtime's worker. Plain threads (the event writer, the
//! observers) take the outbox lock themselves.

use tokio::sync::{mpsc, oneshot};

use super::{lock_outbox, DirStorage, Outbox, SharedOutbox};

type Job = Box<dyn FnOnce(&mut Outbox<DirStorage>) + Send>;

/// Operations waiting for the IO thread; a full queue makes the caller wait (`Block`).
const QUEUE: usize = 16;

#[derive(Debug, thiserror::Error)]
#[error("the outbox IO thread has ended")]
pub struct IoGone;

/// A handle on the outbox's IO thread. The thread ends when the last handle is dropped.
#[derive(Clone)]
pub struct OutboxIo {
    tx: mpsc::Sender<Job>,
}

impl OutboxIo {
    pub fn start(outbox: SharedOutbox) -> std::io::Result<OutboxIo> {
        let (tx, mut rx) = mpsc::channel::<Job>(QUEUE);
        std::thread::Builder::new()
            .name("outbox-io".into())
            .spawn(move || {
                while let Some(job) = rx.blocking_recv() {
                    job(&mut lock_outbox(&outbox));
                }
            })?;
        Ok(OutboxIo { tx })
    }

    /// Run `f` on the outbox, on the IO thread; the caller awaits without blocking.
    pub async fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Outbox<DirStorage>) -> R + Send + 'static,
    ) -> Result<R, IoGone> {
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move |o| {
            let _ = reply.send(f(o));
        });
        self.tx.send(job).await.map_err(|_| IoGone)?;
        answer.await.map_err(|_| IoGone)
    }
}
