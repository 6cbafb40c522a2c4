//! The event writer: closed windows are numbered and stored in the outbox on a plain thread
//! (never on the runtime), and the uplink is woken to send them.
//!
//! Windows closed while the wall clock is implausible (a box that booted in 1970 and has not
//! heard from NTP yet) are held in memory, not stored with a false date. When the clock is
//! set, they are moved by the step (rounded to whole windows, so they stay aligned) and
//! stored in order. If the agent stops before that, they are stored as they are, with a
//! warning: a wrong date is better than a lost count.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, RwLock};

use tokio::sync::Notify;
use vitrine_config::Config;

use super::forecast::Forecaster;
use super::summary;
use crate::clock::{mono_ms, plausible};
use crate::outbox::{lock_outbox, SharedOutbox};
use crate::pipeline::store::{OccupancyOut, StoreCount, StoreOut};
use crate::pipeline::{AlertOut, Record, WindowOut};
use crate::telemetry::ALERT_LATENCY;

/// Windows held while the clock is implausible; beyond this the oldest is stored as it is.
pub const MAX_HELD: usize = 10_000;

/// No clock step known yet (the shift shared with the control loop).
pub const NO_SHIFT: i64 = i64::MIN;

/// The pure part: which records (windows, alerts) to store now.
#[derive(Debug, Default)]
pub struct Holding {
    held: VecDeque<Record>,
}

impl Holding {
    /// A closed window; returns those to store now, in order. `shift_ms` is how far the clock
    /// was stepped since the held windows were stamped (`None`: not set yet).
    pub fn admit(&mut self, w: Record, shift_ms: Option<i64>, window_ms: u64) -> Vec<Record> {
        let mut out = Vec::new();
        if plausible(w.stamp_ms()) {
            if let Some(by) = shift_ms {
                out.extend(self.release(by, window_ms));
            }
            out.push(w);
            return out;
        }
        // Stamped by the unset clock: held, or moved at once when the step is known (the
        // last window a source closes on its old timeline arrives after the step).
        if self.held.len() >= MAX_HELD {
            out.extend(self.held.pop_front());
        }
        self.held.push_back(w);
        if let Some(by) = shift_ms {
            out.extend(self.release(by, window_ms));
        }
        out
    }

    /// Held windows moved by `by_ms` rounded to whole windows.
    fn release(&mut self, by_ms: i64, window_ms: u64) -> Vec<Record> {
        let w = window_ms.max(1) as i64;
        let by = (by_ms + by_ms.signum() * w / 2) / w * w;
        self.held
            .drain(..)
            .map(|mut h| {
                h.shift(by);
                h
            })
            .collect()
    }

    /// At the end: held windows, moved if the clock was set meanwhile, else as they are.
    pub fn finish(&mut self, shift_ms: Option<i64>, window_ms: u64) -> Vec<Record> {
        match shift_ms {
            Some(by) => self.release(by, window_ms),
            None => {
                if !self.held.is_empty() {
                    tracing::warn!(windows = self.held.len(), "the wall clock was never set: windows stored with the box's (implausible) date");
                }
                self.held.drain(..).collect()
            }
        }
    }

    pub fn held(&self) -> usize {
        self.held.len()
    }
}

/// Start the writer thread; it returns (stored, refused) once the event channel closes.
pub fn store_events(
    current: Arc<RwLock<Config>>,
    rx: Receiver<Record>,
    outbox: &SharedOutbox,
    wake: &Arc<Notify>,
    shift: Arc<AtomicI64>,
    (print, mut forecaster): (bool, Forecaster),
) -> std::thread::JoinHandle<(u64, u64)> {
    let (ob, wk) = (outbox.clone(), wake.clone());
    std::thread::spawn(move || {
        let mut counts = (0, 0);
        let mut holding = Holding::default();
        let shift_now = || Some(shift.load(Ordering::Relaxed)).filter(|s| *s != NO_SHIFT);
        let mut occupancy: (Option<vitrine_config::StoreOccupancy>, Option<StoreCount>) =
            (None, None);
        let mut store = |r: Record, counts: &mut (u64, u64)| {
            let cfg = current.read().unwrap_or_else(|p| p.into_inner()).clone();
            if cfg.occupancy != occupancy.0 {
                // Configured, or changed by a reload: the count restarts from its saved value.
                occupancy.0.clone_from(&cfg.occupancy);
                occupancy.1 = StoreCount::new(&cfg, Some(&cfg.outbox.dir), crate::clock::now_ms());
            }
            let store_news = occupancy
                .1
                .as_mut()
                .map(|s| s.record(&r, cfg.privacy.k_min))
                .unwrap_or_default();
            match r {
                Record::Window(w) => {
                    let due = forecaster.learn(&cfg, &w);
                    let forecast = due.then(|| w.clone());
                    store_one(&cfg, *w, &ob, print, counts);
                    if let Some(w) = forecast {
                        store_forecast(&cfg, &w, &mut forecaster, &ob, counts);
                    }
                }
                Record::Alert(a) => store_alert(&cfg, a, &ob, print, counts),
                Record::Entrances(_) => {}
            }
            for news in store_news {
                match news {
                    StoreOut::Alert(a) => store_alert(&cfg, a, &ob, print, counts),
                    StoreOut::Occupancy(o) => store_occupancy(&cfg, &o, &ob, print, counts),
                }
            }
            wk.notify_one();
        };
        for w in rx.iter() {
            let window_ms = window_ms(&current);
            let was_holding = holding.held() > 0;
            for w in holding.admit(w, shift_now(), window_ms) {
                store(w, &mut counts);
            }
            if holding.held() > 0 && !was_holding {
                tracing::warn!(
                    "the wall clock is not set yet (before {}): windows are held until it is",
                    crate::clock::PLAUSIBLE_FLOOR_MS / 1000
                );
            }
        }
        let window_ms = window_ms(&current);
        for w in holding.finish(shift_now(), window_ms) {
            store(w, &mut counts);
        }
        counts
    })
}

fn window_ms(current: &RwLock<Config>) -> u64 {
    u64::from(
        current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .privacy
            .window_secs,
    ) * 1000
}

/// An alert, stored at once; its seq is registered for the delivery latency.
fn store_alert(cfg: &Config, a: AlertOut, ob: &SharedOutbox, print: bool, counts: &mut (u64, u64)) {
    let mut line = None;
    let res = lock_outbox(ob).try_append(mono_ms(), |seq| {
        let ev = a.to_event(cfg, seq);
        line = Some(format!(
            "{} alert {} {} value={:?}",
            ev.source_id, ev.alert, ev.state, ev.value
        ));
        serde_json::to_vec(&ev)
    });
    match res {
        Ok(seq) => {
            counts.0 += 1;
            ALERT_LATENCY.stored(seq, a.frame_mono_ms);
            tracing::info!(source = %a.source_id, alert = %a.rule.id, raised = a.change.raised, seq, "alert stored");
        }
        Err(e) => {
            counts.1 += 1;
            tracing::error!(error = %e, "alert not stored");
        }
    }
    if let (true, Some(l)) = (print, line) {
        println!("{l}");
    }
}

/// The store's occupancy (a window's, or the live count).
fn store_occupancy(
    cfg: &Config,
    o: &OccupancyOut,
    ob: &SharedOutbox,
    print: bool,
    counts: &mut (u64, u64),
) {
    let mut people = None;
    let res = lock_outbox(ob).try_append(mono_ms(), |seq| {
        let ev = o.to_event(cfg, seq);
        people = Some((ev.kind.clone(), ev.people));
        serde_json::to_vec(&ev)
    });
    match res {
        Ok(_) => counts.0 += 1,
        Err(e) => {
            counts.1 += 1;
            tracing::error!(error = %e, "store occupancy not stored");
        }
    }
    if let (true, Some((kind, Some(n)))) = (print, people) {
        if kind == "window" {
            println!("store occupancy {n}");
        }
    }
}

/// The camera's forecast, after its window, when one is due.
fn store_forecast(
    cfg: &Config,
    w: &WindowOut,
    f: &mut Forecaster,
    ob: &SharedOutbox,
    counts: &mut (u64, u64),
) {
    let Some(event) = f.event(cfg, w) else {
        return;
    };
    let res = lock_outbox(ob).try_append(mono_ms(), |seq| serde_json::to_vec(&event(seq)));
    match res {
        Ok(_) => counts.0 += 1,
        Err(e) => {
            counts.1 += 1;
            tracing::error!(error = %e, "forecast not stored");
        }
    }
}

fn store_one(cfg: &Config, w: WindowOut, ob: &SharedOutbox, print: bool, counts: &mut (u64, u64)) {
    let mut event = None;
    let res = lock_outbox(ob).try_append(mono_ms(), |seq| {
        let ev = w.into_event(cfg, seq);
        let bytes = serde_json::to_vec(&ev);
        event = Some(ev);
        bytes
    });
    match res {
        Ok(_) => counts.0 += 1,
        Err(e) => {
            counts.1 += 1;
            tracing::error!(error = %e, "event not stored");
        }
    }
    if let (true, Some(ev)) = (print, &event) {
        println!("{}", summary(ev));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::PLAUSIBLE_FLOOR_MS;

    fn window(start_ms: u64) -> Record {
        Record::Window(Box::new(WindowOut {
            source_id: "mic".into(),
            start_ms,
            end_ms: start_ms + 5_000,
            body: vitrine_signals::Body::Microphone(vitrine_signals::event::AudioBody {
                coverage: vitrine_signals::event::Coverage {
                    status: vitrine_signals::event::CoverageStatus::Blind,
                    frames_expected: None,
                    frames_analysed: None,
                    frames_dropped: None,
                    seconds_analysed: Some(0.0),
                    seconds_blind: 5.0,
                },
                speech_ratio: None,
                speech_seconds: 0.0,
                level_dbfs: None,
                sounds: None,
            }),
            totals: None,
        }))
    }

    fn start(r: &Record) -> u64 {
        r.stamp_ms()
    }

    #[test]
    fn windows_of_a_box_in_1970_wait_for_the_clock_and_move_with_it() {
        let mut h = Holding::default();
        assert!(h.admit(window(10_000), None, 5_000).is_empty());
        assert!(h.admit(window(15_000), None, 5_000).is_empty());
        // NTP steps the clock by about 56 years (not a whole number of windows).
        let by = (PLAUSIBLE_FLOOR_MS + 3 * 86_400_000 + 1_234) as i64;
        let now = window(PLAUSIBLE_FLOOR_MS + 3 * 86_400_000 + 25_000);
        let out = h.admit(now, Some(by), 5_000);
        let starts: Vec<u64> = out.iter().map(start).collect();
        let base = PLAUSIBLE_FLOOR_MS + 3 * 86_400_000;
        assert_eq!(starts, vec![base + 10_000, base + 15_000, base + 25_000]);
        assert!(out.iter().all(|r| match r {
            Record::Window(w) => w.end_ms - w.start_ms == 5_000 && w.start_ms % 5_000 == 0,
            Record::Alert(_) | Record::Entrances(_) => false,
        }));
        assert_eq!(h.held(), 0);
        // The last window of the old timeline, closed after the step, moves too.
        let late = h.admit(window(20_000), Some(by), 5_000);
        assert_eq!(start(&late[0]), base + 20_000);
    }

    #[test]
    fn held_windows_are_stored_at_the_end_even_if_the_clock_never_comes() {
        let mut h = Holding::default();
        for i in 0..3 {
            assert!(h.admit(window(i * 5_000), None, 5_000).is_empty());
        }
        assert_eq!(h.finish(None, 5_000).len(), 3, "nothing lost");
    }

    #[test]
    fn holding_is_bounded() {
        let mut h = Holding::default();
        let mut stored = 0;
        for i in 0..(MAX_HELD as u64 + 5) {
            stored += h.admit(window(i * 5_000), None, 5_000).len();
        }
        assert_eq!((stored, h.held()), (5, MAX_HELD));
    }
}
