//! Handles on the running agent's state, from which snapshots and the watchdog's verdict are
//! taken.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::liveness::{Beat, Liveness, Verdict};
use crate::outbox::SharedOutbox;
use crate::telemetry::{Broker, Snapshot, SourceList, SourceStatus, UplinkStats};

/// Handles on the running agent's state, from which snapshots are taken.
#[derive(Clone)]
pub struct Shared {
    pub device_id: String,
    pub store_id: String,
    pub k_min: u32,
    pub started: Instant,
    pub sources: Arc<SourceList>,
    pub outbox: SharedOutbox,
    /// `None` when no broker is configured.
    pub uplink: Option<Arc<Mutex<UplinkStats>>>,
    /// The outbox figures last read, shown while the outbox does not answer.
    pub last_outbox: Arc<Mutex<OutboxFigures>>,
    /// `vitrine setup`'s notice for the status screen.
    pub setup: Arc<crate::telemetry::SetupNotice>,
}

/// What a snapshot reports of the outbox.
#[derive(Debug, Default, Clone, Copy)]
pub struct OutboxFigures {
    events: u64,
    bytes: u64,
    oldest_s: Option<u64>,
}

/// How long the supervisor waits for the outbox lock before calling the outbox hung (it is
/// held only for short appends, flushes and reads; a hung disk holds it forever).
pub const OUTBOX_PATIENCE: Duration = Duration::from_secs(2);

impl Shared {
    /// A snapshot, waiting at most `patience` for the outbox: if it does not answer (a hung
    /// disk), the last figures are shown and `outbox_answers` is false. Never blocks longer.
    pub fn snapshot(&self, now_mono_ms: u64, patience: Duration) -> Snapshot {
        let outbox = self.read_outbox(now_mono_ms, patience);
        let last = *self.last_outbox.lock().unwrap_or_else(|p| p.into_inner());
        let uplink = self
            .uplink
            .as_ref()
            .map(|u| *u.lock().unwrap_or_else(|p| p.into_inner()))
            .unwrap_or_default();
        let listing = self.sources.get();
        let sources = listing
            .running
            .iter()
            .map(|(id, p)| {
                let occupancy = (p.kind == "camera")
                    .then(|| p.occupancy.load(Ordering::Relaxed))
                    .filter(|n| *n >= u64::from(self.k_min));
                SourceStatus {
                    id: id.clone(),
                    kind: p.kind,
                    up: p.is_up(),
                    analysed: p.analysed.load(Ordering::Relaxed),
                    dropped: p.dropped.load(Ordering::Relaxed),
                    decoder: p.decoder(),
                    occupancy,
                }
            })
            .collect();
        Snapshot {
            device_id: self.device_id.clone(),
            store_id: self.store_id.clone(),
            uptime_s: self.started.elapsed().as_secs(),
            sources,
            failed: listing.failed,
            broker: match &self.uplink {
                None => Broker::None,
                Some(_) if uplink.connected => Broker::Connected,
                Some(_) => Broker::Disconnected,
            },
            uplink,
            outbox_answers: outbox.is_some(),
            outbox_events: last.events,
            outbox_bytes: last.bytes,
            outbox_oldest_s: last.oldest_s,
            k_min: self.k_min,
            setup: self.setup.get(now_mono_ms),
            models: listing.models,
        }
    }

    /// The watchdog's question, asked of the live state and of a snapshot just taken (whose
    /// `outbox_answers` says whether the outbox could be read).
    pub fn verdict(&self, liveness: &Liveness, now_mono_ms: u64, snap: &Snapshot) -> Verdict {
        let listing = self.sources.get();
        let beats: Vec<Beat<'_>> = listing
            .running
            .iter()
            .map(|(id, p)| Beat {
                id,
                last_ms: p.heartbeat_ms.load(Ordering::Relaxed),
                done: p.done.load(Ordering::Relaxed),
            })
            .collect();
        liveness.check(now_mono_ms, &beats, snap.outbox_answers)
    }

    /// The outbox's figures if its lock can be taken within `patience` (and remembered).
    fn read_outbox(&self, now_mono_ms: u64, patience: Duration) -> Option<OutboxFigures> {
        let deadline = Instant::now() + patience;
        let o = loop {
            match self.outbox.try_lock() {
                Ok(o) => break o,
                Err(std::sync::TryLockError::Poisoned(p)) => break p.into_inner(),
                Err(std::sync::TryLockError::WouldBlock) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(std::sync::TryLockError::WouldBlock) => return None,
            }
        };
        let (n, b) = o.depth();
        let figures = OutboxFigures {
            events: n as u64,
            bytes: b,
            oldest_s: o.oldest_age_ms(now_mono_ms).map(|a| a / 1000),
        };
        drop(o);
        *self.last_outbox.lock().unwrap_or_else(|p| p.into_inner()) = figures;
        Some(figures)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbox::{DirStorage, Limits, Outbox};
    use crate::telemetry::{Listing, SourceProgress};

    fn shared(dir: &std::path::Path) -> Shared {
        let storage = DirStorage::open(dir).expect("dir");
        let (outbox, _) = Outbox::open(
            storage,
            Limits::for_cap(1 << 20),
            Box::new(|_, _| b"gap".to_vec()),
        )
        .expect("outbox");
        Shared {
            device_id: "d".into(),
            store_id: "s".into(),
            k_min: 3,
            started: Instant::now(),
            sources: Arc::new(SourceList::new(Listing {
                running: vec![("door".into(), Arc::new(SourceProgress::new("camera")))],
                failed: vec![],
                models: None,
            })),
            outbox: Arc::new(Mutex::new(outbox)),
            uplink: None,
            last_outbox: Arc::default(),
            setup: Arc::default(),
        }
    }

    #[test]
    fn a_hung_disk_is_reported_by_the_watchdog_within_its_period() {
        let dir = tempfile::tempdir().expect("tmp");
        let s = shared(dir.path());
        s.outbox
            .lock()
            .expect("lock")
            .append(0, |_| b"{}".to_vec())
            .expect("append");
        let liveness = Liveness { stall_ms: 10_000 };
        let snap = s.snapshot(0, Duration::from_millis(200));
        assert_eq!(
            s.verdict(&liveness, crate::clock::mono_ms(), &snap),
            Verdict::Alive
        );
        // A write stuck on a hung disk holds the outbox lock forever.
        let hung = s.outbox.clone();
        let (held, release) = std::sync::mpsc::channel::<()>();
        let (locked_tx, locked) = std::sync::mpsc::channel::<()>();
        let holder = std::thread::spawn(move || {
            let _guard = hung.lock().expect("lock");
            locked_tx.send(()).expect("send");
            let _ = release.recv();
        });
        locked.recv().expect("locked");
        let t0 = Instant::now();
        let snap = s.snapshot(0, Duration::from_millis(200));
        let verdict = s.verdict(&liveness, crate::clock::mono_ms(), &snap);
        assert!(
            t0.elapsed() < Duration::from_secs(1),
            "the snapshot waited {:?}",
            t0.elapsed()
        );
        assert!(
            matches!(&verdict, Verdict::Stalled(w) if w.contains("outbox")),
            "{verdict:?}"
        );
        assert!(!snap.outbox_answers);
        assert_eq!(snap.outbox_events, 1, "the last figures are kept");
        assert!(snap.line().contains("NOT ANSWERING"), "{}", snap.line());
        drop(held);
        holder.join().expect("join");
    }
}
