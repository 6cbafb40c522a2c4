//! Sequence numbers for `vitrine replay` (from 1, not persisted: replays are reproducible).
//! The daemon's numbers come from the durable outbox, which keeps them contiguous and
//! increasing across restarts.

use vitrine_config::Config;
use vitrine_signals::WindowEvent;

use crate::pipeline::store::OccupancyOut;
use crate::pipeline::{AlertOut, WindowOut};
use vitrine_signals::alert::AlertEvent;
use vitrine_signals::occupancy::OccupancyEvent;

pub struct Sequencer {
    next: u64,
}

impl Sequencer {
    pub fn in_memory() -> Sequencer {
        Sequencer { next: 1 }
    }

    /// Number a closed window of a device configured by `cfg`.
    pub fn number(&mut self, cfg: &Config, w: WindowOut) -> WindowEvent {
        self.next += 1;
        w.into_event(cfg, self.next - 1)
    }

    /// Number an occupancy payload of a device configured by `cfg`.
    pub fn number_occupancy(&mut self, cfg: &Config, o: &OccupancyOut) -> OccupancyEvent {
        self.next += 1;
        o.to_event(cfg, self.next - 1)
    }

    /// Number an alert of a device configured by `cfg`.
    pub fn number_alert(&mut self, cfg: &Config, a: &AlertOut) -> AlertEvent {
        self.next += 1;
        a.to_event(cfg, self.next - 1)
    }
}
