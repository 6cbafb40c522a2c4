//! Handles on the running agent's state, from which snapshots and the watchdog's verdict are
//! taken.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::liveness::{Beat, Liveness, Verdict};
use crate::outbox::{lock_outbox, SharedOutbox};
use crate::telemetry::{Broker, Snapshot, SourceProgress, SourceStatus, UplinkStats};

/// Handles on the running agent's state, from which snapshots are taken.
#[derive(Clone)]
pub struct Shared {
    pub device_id: String,
    pub store_id: String,
    pub k_min: u32,
    pub started: Instant,
    pub sources: Vec<(String, Arc<SourceProgress>)>,
    pub failed: Vec<String>,
    pub outbox: SharedOutbox,
    /// `None` when no broker is configured.
    pub uplink: Option<Arc<Mutex<UplinkStats>>>,
}

impl Shared {
    pub fn snapshot(&self, now_wall_ms: u64) -> Snapshot {
        let (events, bytes, oldest) = {
            let o = lock_outbox(&self.outbox);
            let (n, b) = o.depth();
            (n, b, o.oldest_age_ms(now_wall_ms).map(|a| a / 1000))
        };
        let uplink = self
            .uplink
            .as_ref()
            .map(|u| *u.lock().unwrap_or_else(|p| p.into_inner()))
            .unwrap_or_default();
        let sources = self
            .sources
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
                    occupancy,
                }
            })
            .collect();
        Snapshot {
            device_id: self.device_id.clone(),
            store_id: self.store_id.clone(),
            uptime_s: self.started.elapsed().as_secs(),
            sources,
            failed: self.failed.clone(),
            broker: match &self.uplink {
                None => Broker::None,
                Some(_) if uplink.connected => Broker::Connected,
                Some(_) => Broker::Disconnected,
            },
            uplink,
            outbox_events: events as u64,
            outbox_bytes: bytes,
            outbox_oldest_s: oldest,
            k_min: self.k_min,
        }
    }

    /// The watchdog's question, asked of the live state.
    pub fn verdict(&self, liveness: &Liveness, now_mono_ms: u64) -> Verdict {
        let beats: Vec<Beat<'_>> = self
            .sources
            .iter()
            .map(|(id, p)| Beat {
                id,
                last_ms: p.heartbeat_ms.load(Ordering::Relaxed),
                done: p.done.load(Ordering::Relaxed),
            })
            .collect();
        liveness.check(
            now_mono_ms,
            &beats,
            self.outbox_answers(Duration::from_secs(2)),
        )
    }

    /// The outbox lock can be taken within `patience` (it is held only for short appends,
    /// flushes and reads; a hung disk holds it forever).
    fn outbox_answers(&self, patience: Duration) -> bool {
        let deadline = Instant::now() + patience;
        loop {
            match self.outbox.try_lock() {
                Ok(_) | Err(std::sync::TryLockError::Poisoned(_)) => return true,
                Err(std::sync::TryLockError::WouldBlock) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(std::sync::TryLockError::WouldBlock) => return false,
            }
        }
    }
}
