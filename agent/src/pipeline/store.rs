//! The store's occupancy across the box's cameras (`[occupancy]`): the event writer (and
//! `vitrine replay`) passes every record through a [`StoreCount`], which turns the cameras'
//! entrance news into the live count, the capacity alert and the occupancy payloads. The
//! counting itself is `vitrine_signals::occupancy` (pure); this adds the store's clock, the
//! pacing of live values and the window boundaries.

use std::path::{Path, PathBuf};

use vitrine_config::Config;
use vitrine_signals::event::EventMeta;
use vitrine_signals::occupancy::{Occupancy, OccupancyEvent, OccupancyWindow, SOURCE};
use vitrine_signals::Body;

use super::{AlertOut, Record};
use crate::clock::StoreClock;

/// Live values are published at most this often (the window's value follows at its end).
pub const LIVE_MS: u64 = 5_000;
/// Where the count survives a restart on the same day (beside the outbox).
const FILE: &str = "occupancy.json";

/// An occupancy payload before it gets its sequence number.
#[derive(Debug, Clone, PartialEq)]
pub enum OccupancyOut {
    Window {
        span: (u64, u64),
        figures: OccupancyWindow,
        capacity: Option<u32>,
    },
    Live {
        at_ms: u64,
        people: u64,
        capacity: Option<u32>,
    },
}

impl OccupancyOut {
    pub fn to_event(&self, cfg: &Config, seq: u64) -> OccupancyEvent {
        let meta = EventMeta::of(cfg, SOURCE);
        match self {
            OccupancyOut::Window {
                span,
                figures,
                capacity,
            } => OccupancyEvent::window(&meta, seq, *span, figures, *capacity),
            OccupancyOut::Live {
                at_ms,
                people,
                capacity,
            } => OccupancyEvent::live(&meta, seq, *at_ms, *people, *capacity),
        }
    }
}

/// What the store's count adds to the records.
#[derive(Debug, Clone)]
pub enum StoreOut {
    Alert(AlertOut),
    Occupancy(OccupancyOut),
}

pub struct StoreCount {
    occ: Occupancy,
    clock: StoreClock,
    capacity: Option<u32>,
    last_live: Option<(u64, u64)>,
    last_window_end: u64,
    saved: Option<PathBuf>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Saved {
    day: i64,
    people: u64,
}

impl StoreCount {
    /// The box's store count, where `[occupancy]` is configured; `state_dir` keeps the count
    /// across restarts on the same day (`None`: a replay, nothing kept).
    pub fn new(cfg: &Config, state_dir: Option<&Path>, now_ms: u64) -> Option<StoreCount> {
        let p = cfg.occupancy.clone()?;
        let clock = StoreClock::new(cfg.device.timezone.as_deref());
        let capacity = p.capacity;
        let mut occ = Occupancy::new(p);
        let saved = state_dir.map(|d| d.join(FILE));
        if let Some(s) = saved.as_deref().and_then(read) {
            let today = clock.local_time(now_ms);
            if s.day == today.day {
                occ.resume(s.people, today);
                tracing::info!(people = s.people, "store occupancy resumed from {FILE}");
            }
        }
        Some(StoreCount {
            occ,
            clock,
            capacity,
            last_live: None,
            last_window_end: 0,
            saved,
        })
    }

    /// One record: the count follows it; alerts and payloads to store, in order.
    pub fn record(&mut self, r: &Record, k_min: u32) -> Vec<StoreOut> {
        let mut out = Vec::new();
        match r {
            Record::Entrances(e) => {
                let local = self.clock.local_time(e.t_ms);
                let change =
                    self.occ
                        .observe(e.t_ms, local, &e.source_id, &e.lines, e.people, k_min);
                if let (Some(change), Some(rule)) = (change, self.occ.capacity_rule()) {
                    out.push(StoreOut::Alert(AlertOut {
                        source_id: SOURCE.to_string(),
                        rule: rule.clone(),
                        change,
                        frame_mono_ms: e.frame_mono_ms,
                    }));
                }
                self.live(e.t_ms, &mut out);
            }
            Record::Window(w) if matches!(w.body, Body::Camera(_)) => {
                self.occ.tick(w.end_ms, self.clock.local_time(w.end_ms));
                if w.end_ms > self.last_window_end {
                    self.last_window_end = w.end_ms;
                    self.window(w.start_ms, w.end_ms, &mut out);
                }
            }
            Record::Window(_) | Record::Alert(_) => {}
        }
        out
    }

    /// The live value, when it changed and the last one is old enough.
    fn live(&mut self, now_ms: u64, out: &mut Vec<StoreOut>) {
        let people = self.occ.now();
        let due = match self.last_live {
            None => true,
            Some((at, v)) => v != people && now_ms.saturating_sub(at) >= LIVE_MS,
        };
        if due {
            self.last_live = Some((now_ms, people));
            out.push(StoreOut::Occupancy(OccupancyOut::Live {
                at_ms: now_ms,
                people,
                capacity: self.capacity,
            }));
        }
    }

    fn window(&mut self, start_ms: u64, end_ms: u64, out: &mut Vec<StoreOut>) {
        let figures = self.occ.take_window();
        self.last_live = Some((end_ms, figures.now));
        self.persist(end_ms, figures.now);
        out.push(StoreOut::Occupancy(OccupancyOut::Window {
            span: (start_ms, end_ms),
            figures,
            capacity: self.capacity,
        }));
    }

    /// The count and its day, replaced atomically (a power cut leaves the old or the new).
    fn persist(&self, now_ms: u64, people: u64) {
        let Some(path) = &self.saved else { return };
        let s = Saved {
            day: self.clock.local_time(now_ms).day,
            people,
        };
        let tmp = path.with_extension("json.tmp");
        let res = serde_json::to_vec(&s)
            .map_err(std::io::Error::other)
            .and_then(|b| std::fs::write(&tmp, b))
            .and_then(|()| std::fs::rename(&tmp, path));
        if let Err(e) = res {
            tracing::warn!(error = %e, file = %path.display(), "store occupancy not saved (a restart today starts from zero)");
        }
    }
}

fn read(path: &Path) -> Option<Saved> {
    let text = std::fs::read(path).ok()?;
    serde_json::from_slice(&text)
        .map_err(|e| tracing::warn!(error = %e, file = %path.display(), "store occupancy file unreadable; starting from zero"))
        .ok()
}
