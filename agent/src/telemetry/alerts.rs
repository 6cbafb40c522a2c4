//! How long alerts take to reach the broker: from the frame that raised one (its arrival from
//! the camera) to the broker's PUBACK of the stored alert. The event writer registers each
//! stored alert's seq with its frame's monotonic time; the uplink reports PUBACKs. Bounded:
//! at most [`MAX_PENDING`] alerts awaited and [`MAX_SAMPLES`] latencies kept (the oldest go).
//! One per process (a static): the daemon has one outbox and one uplink.

use std::collections::VecDeque;
use std::sync::Mutex;

pub const MAX_PENDING: usize = 1024;
pub const MAX_SAMPLES: usize = 8192;

#[derive(Debug)]
pub struct AlertLatency {
    pending: Mutex<VecDeque<(u64, u64)>>,
    samples: Mutex<VecDeque<u64>>,
}

/// The process's alert latency record.
pub static ALERT_LATENCY: AlertLatency = AlertLatency {
    pending: Mutex::new(VecDeque::new()),
    samples: Mutex::new(VecDeque::new()),
};

impl AlertLatency {
    /// An alert was stored as `seq`; its frame arrived at `frame_mono_ms`.
    pub fn stored(&self, seq: u64, frame_mono_ms: u64) {
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        if p.len() >= MAX_PENDING {
            p.pop_front();
        }
        p.push_back((seq, frame_mono_ms));
    }

    /// The broker acknowledged `seq` at `now_mono_ms` (any record; alerts are recognised).
    pub fn acked(&self, seq: u64, now_mono_ms: u64) {
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let Some(i) = p.iter().position(|(s, _)| *s == seq) else {
            return;
        };
        let (_, t0) = p.remove(i).unwrap_or((seq, now_mono_ms));
        drop(p);
        let mut s = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        if s.len() >= MAX_SAMPLES {
            s.pop_front();
        }
        s.push_back(now_mono_ms.saturating_sub(t0));
    }

    /// (count, p50 ms, p99 ms, max ms) of the latencies kept.
    pub fn summary(&self) -> Option<(usize, u64, u64, u64)> {
        let mut v: Vec<u64> = self
            .samples
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .copied()
            .collect();
        if v.is_empty() {
            return None;
        }
        v.sort_unstable();
        let q = |f: f64| v[((v.len() - 1) as f64 * f).round() as usize];
        Some((v.len(), q(0.5), q(0.99), v[v.len() - 1]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_runs_from_the_frame_to_the_puback_of_that_alert_only() {
        let l = AlertLatency {
            pending: Mutex::new(VecDeque::new()),
            samples: Mutex::new(VecDeque::new()),
        };
        l.stored(7, 1_000);
        l.stored(9, 2_000);
        l.acked(8, 5_000); // a window, not an alert
        l.acked(9, 2_150);
        l.acked(7, 1_400);
        let (n, _, _, max) = l.summary().unwrap();
        assert_eq!((n, max), (2, 400));
        for i in 0..(MAX_PENDING as u64 + 10) {
            l.stored(100 + i, 0);
        }
        assert_eq!(l.pending.lock().unwrap().len(), MAX_PENDING);
    }
}
