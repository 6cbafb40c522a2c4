//! Sequence numbers for `vitrine replay` (from 1, not persisted: replays are reproducible).
//! The daemon's numbers come from the durable outbox, which keeps them contiguous and
//! increasing across restarts.

use vitrine_config::Config;
use vitrine_signals::event::{EventMeta, WindowEvent};

use crate::pipeline::WindowOut;

pub struct Sequencer {
    next: u64,
}

impl Sequencer {
    pub fn in_memory() -> Sequencer {
        Sequencer { next: 1 }
    }

    /// Number a closed window of a device configured by `cfg`.
    pub fn number(&mut self, cfg: &Config, w: WindowOut) -> WindowEvent {
        let source = w.source_id.clone();
        let meta = EventMeta {
            device_id: &cfg.device.id,
            store_id: &cfg.device.store_id,
            source_id: &source,
            k_min: cfg.privacy.k_min,
        };
        let seq = self.next;
        self.next += 1;
        WindowEvent::new(&meta, seq, w.start_ms, w.end_ms, w.body)
    }
}
