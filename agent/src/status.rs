//! What the box is doing right now. One [`Snapshot`] feeds the status screen, the metrics
//! endpoint, systemd's `STATUS=` line and the watchdog; [`Liveness`] is the pure decision
//! whether the watchdog may be fed (it takes `now`, reads no clock).

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::pipeline::SourceProgress;
use crate::publish::UplinkStats;
use crate::publish::{lock_outbox, SharedOutbox};

/// Milliseconds on a monotonic clock since the process started (heartbeats use it: wall-clock
/// jumps must not look like stalls).
pub fn mono_ms() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_millis() as u64
}

/// One source's heartbeat, as the liveness check sees it.
#[derive(Debug, Clone)]
pub struct Beat<'a> {
    pub id: &'a str,
    /// `mono_ms()` of the source's last step (a frame or block analysed, or a reconnect try).
    pub last_ms: u64,
    /// A source that finished (end of a file) is not stalled.
    pub done: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Alive,
    /// Why the watchdog is not fed (logged once per episode, and shown in `STATUS=`).
    Stalled(String),
}

/// The watchdog policy: feed only while every running source makes progress and the outbox
/// answers. A source stuck longer than `stall_ms` (a hung decoder, a blocked analysis thread)
/// or an outbox that cannot be taken (a hung disk) stops the feeding; systemd then restarts us.
#[derive(Debug, Clone, Copy)]
pub struct Liveness {
    pub stall_ms: u64,
}

impl Liveness {
    /// From systemd's watchdog period: stalled after half of it, so a stall is noticed and
    /// the feeding stopped well before systemd's deadline would be reached anyway.
    pub fn for_watchdog(period: Duration) -> Liveness {
        Liveness {
            stall_ms: (period.as_millis() as u64 / 2).max(1000),
        }
    }

    pub fn check(&self, now_ms: u64, beats: &[Beat<'_>], outbox_answers: bool) -> Verdict {
        let mut stuck: Vec<String> = beats
            .iter()
            .filter(|b| !b.done && now_ms.saturating_sub(b.last_ms) > self.stall_ms)
            .map(|b| {
                format!(
                    "source {} made no progress for {} s",
                    b.id,
                    now_ms.saturating_sub(b.last_ms) / 1000
                )
            })
            .collect();
        if !outbox_answers {
            stuck.push("the outbox did not answer (disk hung?)".to_string());
        }
        if stuck.is_empty() {
            Verdict::Alive
        } else {
            Verdict::Stalled(stuck.join("; "))
        }
    }
}

/// Where the broker connection stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Broker {
    /// No `[mqtt]`: events stay in the outbox.
    None,
    Connected,
    Disconnected,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SourceStatus {
    pub id: String,
    pub kind: &'static str,
    pub up: bool,
    pub analysed: u64,
    pub dropped: u64,
    /// People in view now (cameras), `None` when below `privacy.k_min` or not a camera.
    pub occupancy: Option<u64>,
}

/// A point-in-time view of the agent: aggregates and counters only.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub device_id: String,
    pub store_id: String,
    pub uptime_s: u64,
    pub sources: Vec<SourceStatus>,
    /// Configured sources that could not be started.
    pub failed: Vec<String>,
    pub broker: Broker,
    pub uplink: UplinkStats,
    pub outbox_events: u64,
    pub outbox_bytes: u64,
    pub outbox_oldest_s: Option<u64>,
    pub k_min: u32,
}

impl Snapshot {
    pub fn sources_up(&self) -> usize {
        self.sources.iter().filter(|s| s.up).count()
    }

    pub fn sources_total(&self) -> usize {
        self.sources.len() + self.failed.len()
    }

    /// People in view over all cameras, `None` if any camera's count is suppressed or none runs.
    pub fn occupancy(&self) -> Option<u64> {
        let cams: Vec<&SourceStatus> = self
            .sources
            .iter()
            .filter(|s| s.kind == "camera" && s.up)
            .collect();
        if cams.is_empty() {
            return None;
        }
        cams.iter().map(|s| s.occupancy).sum()
    }

    /// One line for systemd's `STATUS=` (what `systemctl status vitrine` shows).
    pub fn line(&self) -> String {
        let broker = match self.broker {
            Broker::None => "no broker configured",
            Broker::Connected => "broker connected",
            Broker::Disconnected => "broker disconnected",
        };
        format!(
            "{}/{} sources up, {broker}, outbox {} events",
            self.sources_up(),
            self.sources_total(),
            self.outbox_events
        )
    }
}

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
                    up: !p.done.load(Ordering::Relaxed) && p.connected.load(Ordering::Relaxed),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn beat(id: &str, last_ms: u64, done: bool) -> Beat<'_> {
        Beat { id, last_ms, done }
    }

    #[test]
    fn alive_while_every_source_beats() {
        let l = Liveness { stall_ms: 5000 };
        let beats = [beat("door", 9_000, false), beat("mic", 12_000, false)];
        assert_eq!(l.check(13_000, &beats, true), Verdict::Alive);
    }

    #[test]
    fn a_stuck_source_stops_the_watchdog() {
        let l = Liveness { stall_ms: 5000 };
        let beats = [beat("door", 1_000, false), beat("mic", 12_000, false)];
        match l.check(13_000, &beats, true) {
            Verdict::Stalled(why) => assert!(why.contains("door") && !why.contains("mic"), "{why}"),
            v => panic!("{v:?}"),
        }
    }

    #[test]
    fn a_finished_source_is_not_stalled() {
        let l = Liveness { stall_ms: 5000 };
        assert_eq!(
            l.check(60_000, &[beat("file", 1_000, true)], true),
            Verdict::Alive
        );
    }

    #[test]
    fn a_hung_outbox_stops_the_watchdog() {
        let l = Liveness { stall_ms: 5000 };
        assert!(matches!(
            l.check(1_000, &[beat("door", 1_000, false)], false),
            Verdict::Stalled(w) if w.contains("outbox")
        ));
    }

    #[test]
    fn stall_threshold_is_half_the_watchdog_period() {
        assert_eq!(
            Liveness::for_watchdog(Duration::from_secs(30)).stall_ms,
            15_000
        );
        assert_eq!(
            Liveness::for_watchdog(Duration::from_millis(10)).stall_ms,
            1000
        );
    }

    #[test]
    fn occupancy_is_suppressed_when_any_camera_is_below_k() {
        let src = |id: &str, occ: Option<u64>| SourceStatus {
            id: id.into(),
            kind: "camera",
            up: true,
            analysed: 1,
            dropped: 0,
            occupancy: occ,
        };
        let mut s = Snapshot {
            device_id: "d".into(),
            store_id: "s".into(),
            uptime_s: 0,
            sources: vec![src("a", Some(4)), src("b", Some(7))],
            failed: vec![],
            broker: Broker::None,
            uplink: UplinkStats::default(),
            outbox_events: 0,
            outbox_bytes: 0,
            outbox_oldest_s: None,
            k_min: 3,
        };
        assert_eq!(s.occupancy(), Some(11));
        s.sources[1].occupancy = None;
        assert_eq!(s.occupancy(), None);
        assert_eq!(
            s.line(),
            "2/2 sources up, no broker configured, outbox 0 events"
        );
    }
}
