//! A waiting line: people stand in its waiting area until they reach the service point (a till,
//! a counter). Per window: the queue's length (people in the waiting area per frame: mean and
//! max), the waits of those served (from entering the area to reaching the service point),
//! and how many abandoned (waited at least `abandon_secs` and left unserved; shorter stays are
//! people walking through). Live: the estimated wait for someone joining now, by Little's law
//! (people waiting ÷ service rate over the last [`RATE_HORIZON_MS`]).
//!
//! As with zones, a track that breaks inside the waiting area is continued by the track that
//! appears where it was within the grace: one wait, not two.

use std::collections::{HashMap, HashSet, VecDeque};

use vitrine_config::Queue;

use super::area::TAKEOVER_HEIGHTS;
use super::foot::Foot;
use super::presence::GRACE_MS;
use crate::event::{round3, suppress, DwellStats, QueueStats};
use crate::geom::{in_polygon, Point};

/// The service rate behind the live wait estimate is measured over this long.
pub const RATE_HORIZON_MS: u64 = 300_000;
/// Services remembered for the rate (a queue serves far fewer in the horizon).
const MAX_SERVICES: usize = 512;

#[derive(Debug, Clone, Copy)]
struct Waiter {
    entered_ms: u64,
    last_inside_ms: u64,
    last_at: Point,
}

#[derive(Debug)]
pub struct QueueState {
    pub(crate) queue: Queue,
    waiting: HashMap<u64, Waiter>,
    /// People already served (not counted again while they linger at the counter).
    served_keys: HashSet<u64>,
    waits_ms: Vec<u64>,
    abandoned: u32,
    length_sum: u64,
    length_max: u32,
    length_now: u32,
    services: VecDeque<u64>,
    started_ms: Option<u64>,
}

impl QueueState {
    pub fn new(queue: Queue) -> QueueState {
        QueueState {
            queue,
            waiting: HashMap::new(),
            served_keys: HashSet::new(),
            waits_ms: Vec::new(),
            abandoned: 0,
            length_sum: 0,
            length_max: 0,
            length_now: 0,
            services: VecDeque::new(),
            started_ms: None,
        }
    }

    /// One frame: where everyone in view stands.
    pub fn observe(&mut self, now_ms: u64, people: &[Foot]) {
        self.started_ms.get_or_insert(now_ms);
        let in_view: HashSet<u64> = people.iter().map(|f| f.key).collect();
        let mut length = 0;
        for f in people {
            if in_polygon(f.at, &self.queue.service) {
                self.serve(now_ms, f.key);
            } else if in_polygon(f.at, &self.queue.area.polygon) {
                length += 1;
                self.wait(now_ms, f, &in_view);
            }
        }
        let ended: Vec<u64> = self
            .waiting
            .iter()
            .filter(|(_, w)| now_ms.saturating_sub(w.last_inside_ms) > GRACE_MS)
            .map(|(k, _)| *k)
            .collect();
        for key in ended {
            self.leave(key);
        }
        self.served_keys.retain(|k| in_view.contains(k));
        self.length_now = length;
        self.length_sum += u64::from(length);
        self.length_max = self.length_max.max(length);
    }

    fn wait(&mut self, now_ms: u64, f: &Foot, in_view: &HashSet<u64>) {
        if self.served_keys.contains(&f.key) {
            return;
        }
        if let Some(w) = self.waiting.get_mut(&f.key) {
            w.last_inside_ms = now_ms;
            w.last_at = f.at;
            return;
        }
        let orphan = self
            .waiting
            .iter()
            .filter(|(k, w)| {
                !in_view.contains(k)
                    && (w.last_at.x - f.at.x).hypot(w.last_at.y - f.at.y)
                        <= TAKEOVER_HEIGHTS * f.height
            })
            .max_by_key(|(k, w)| (w.last_inside_ms, **k))
            .map(|(k, _)| *k);
        let mut w = orphan
            .and_then(|k| self.waiting.remove(&k))
            .unwrap_or(Waiter {
                entered_ms: now_ms,
                last_inside_ms: now_ms,
                last_at: f.at,
            });
        w.last_inside_ms = now_ms;
        w.last_at = f.at;
        self.waiting.insert(f.key, w);
    }

    fn serve(&mut self, now_ms: u64, key: u64) {
        if let Some(w) = self.waiting.remove(&key) {
            self.waits_ms.push(now_ms.saturating_sub(w.entered_ms));
            self.served_keys.insert(key);
            if self.services.len() >= MAX_SERVICES {
                self.services.pop_front();
            }
            self.services.push_back(now_ms);
        }
    }

    /// Someone left the waiting area (or the view) for good, unserved.
    fn leave(&mut self, key: u64) {
        if let Some(w) = self.waiting.remove(&key) {
            let stayed = w.last_inside_ms.saturating_sub(w.entered_ms);
            if stayed as f32 >= self.queue.abandon_secs * 1000.0 {
                self.abandoned += 1;
            }
        }
    }

    /// The person is gone for good (the camera's presence decided it).
    pub fn forget(&mut self, key: u64) {
        self.served_keys.remove(&key);
    }

    /// People in the waiting area in the last frame.
    pub fn length_now(&self) -> u32 {
        self.length_now
    }

    /// The estimated wait for someone joining now, ms: people waiting ÷ recent service rate.
    /// `None` until someone has been served within the horizon.
    pub fn estimated_wait_ms(&self, now_ms: u64) -> Option<u64> {
        let since = now_ms.saturating_sub(RATE_HORIZON_MS);
        let served = self.services.iter().filter(|t| **t >= since).count() as u64;
        if served == 0 {
            return None;
        }
        let observed = now_ms
            .saturating_sub(self.started_ms.unwrap_or(now_ms))
            .clamp(1, RATE_HORIZON_MS);
        Some(u64::from(self.length_now) * observed / served)
    }

    /// The window's figures (`frames` analysed), then a fresh window; waiting people go on.
    pub fn take(&mut self, frames: u64, k_min: u32) -> QueueStats {
        let max = suppress(self.length_max, k_min);
        let served = suppress(self.waits_ms.len() as u32, k_min);
        let abandoned = suppress(self.abandoned, k_min);
        let stats = QueueStats {
            id: self.queue.area.id.clone(),
            length_mean: match (max, frames) {
                (Some(_), f) if f > 0 => Some(round3(self.length_sum as f64 / f as f64)),
                _ => None,
            },
            length_max: max,
            served,
            wait_seconds: served.and(DwellStats::from_ms(&mut self.waits_ms)),
            abandoned,
            suppressed: max.is_none() || served.is_none() || abandoned.is_none(),
        };
        self.waits_ms.clear();
        self.abandoned = 0;
        self.length_sum = 0;
        self.length_max = 0;
        stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vitrine_config::Area;

    fn p(x: f32, y: f32) -> Point {
        Point { x, y }
    }

    /// Waiting area: the left half; service point: a box at the right.
    fn queue() -> QueueState {
        QueueState::new(Queue {
            area: Area {
                id: "till".into(),
                polygon: vec![p(0.0, 0.0), p(0.5, 0.0), p(0.5, 1.0), p(0.0, 1.0)],
            },
            service: vec![p(0.7, 0.0), p(1.0, 0.0), p(1.0, 1.0), p(0.7, 1.0)],
            abandon_secs: 10.0,
        })
    }

    fn at(key: u64, x: f32) -> Foot {
        Foot {
            key,
            at: p(x, 0.5),
            height: 0.2,
        }
    }

    #[test]
    fn a_served_wait_runs_from_joining_to_the_service_point() {
        let mut q = queue();
        for s in 0..30 {
            q.observe(s * 1000, &[at(1, 0.2)]);
        }
        q.observe(30_000, &[at(1, 0.8)]);
        q.observe(31_000, &[at(1, 0.8)]);
        let st = q.take(32, 0);
        assert_eq!(st.served, Some(1));
        assert_eq!(st.wait_seconds.unwrap().max, 30.0);
        assert_eq!((st.abandoned, st.length_max), (Some(0), Some(1)));
    }

    #[test]
    fn leaving_unserved_after_a_long_wait_is_abandoning_and_walking_through_is_not() {
        let mut q = queue();
        for s in 0..20 {
            q.observe(s * 1000, &[at(1, 0.2), at(2, 0.6)]);
        }
        // Person 2 walks through the area in 3 s; person 1 gives up after 20 s.
        for s in 20..23 {
            q.observe(s * 1000, &[at(2, 0.3)]);
        }
        for s in 23..30 {
            q.observe(s * 1000, &[]);
        }
        let st = q.take(30, 0);
        assert_eq!((st.abandoned, st.served), (Some(1), Some(0)));
    }

    #[test]
    fn the_live_estimate_is_length_over_the_service_rate() {
        let mut q = queue();
        // One person served every 30 s for 5 minutes, three waiting now.
        for i in 0..10u64 {
            let t = i * 30_000;
            q.observe(t, &[at(100 + i, 0.2)]);
            q.observe(t + 29_000, &[at(100 + i, 0.9)]);
        }
        q.observe(300_000, &[at(1, 0.1), at(2, 0.2), at(3, 0.3)]);
        let est = q.estimated_wait_ms(300_000).unwrap();
        assert_eq!(est, 90_000, "3 waiting, one served per 30 s");
        assert_eq!(queue().estimated_wait_ms(0), None);
    }

    #[test]
    fn a_broken_track_in_the_queue_keeps_its_wait() {
        let mut q = queue();
        for s in 0..10 {
            q.observe(s * 1000, &[at(1, 0.2)]);
        }
        // The tracker lost person 1 and calls them 2 from second 10.
        for s in 10..20 {
            q.observe(s * 1000, &[at(2, 0.2)]);
        }
        q.observe(20_000, &[at(2, 0.8)]);
        let st = q.take(21, 0);
        assert_eq!(st.wait_seconds.unwrap().max, 20.0);
    }

    #[test]
    fn small_counts_are_suppressed() {
        let mut q = queue();
        q.observe(0, &[at(1, 0.2)]);
        q.observe(1000, &[at(1, 0.8)]);
        let st = q.take(2, 5);
        assert!(st.suppressed);
        assert_eq!(
            (st.served, st.length_max, st.length_mean),
            (None, None, None)
        );
        assert!(st.wait_seconds.is_none());
    }
}
