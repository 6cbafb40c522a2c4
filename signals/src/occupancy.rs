//! The store's live occupancy: people inside = crossings in − out of its entrance lines (on one
//! or several cameras of the box) since opening. Pure: the cameras' running line totals, the
//! time and the store's local time of day are passed in.
//!
//! Every people counter drifts (a missed exit is someone forever inside); the drift is handled
//! in the open, each correction an [`Adjustment`] published with the window it happened in:
//! - **never below zero**: an exit with nobody inside is not subtracted (`below_zero`, +1);
//! - **opening**: at the store's opening time the count starts again from zero (`opening`);
//! - **closing**: at closing time the store is empty (`closing`);
//! - **empty**: nobody seen on any camera of the box for `empty_after` (`empty`; only where the
//!   cameras see the whole floor).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use vitrine_config::{AlertOn, AlertRule, StoreOccupancy};

use crate::alert::{AlertChange, AlertState};
use crate::audit::Tally;
use crate::event::{rfc3339, suppress, EventMeta, Window};

/// The source id of the store's occupancy (topic `occupancy/store`, alerts' `source_id`).
pub const SOURCE: &str = "store";
/// The capacity alert's rule id.
pub const CAPACITY_ALERT: &str = "capacity";
/// The occupancy payload's schema name (`signals/schema/occupancy.v1.json`).
pub const OCCUPANCY_SCHEMA: &str = "vitrine.occupancy.v1";
/// Corrections kept for one window at most (beyond, the oldest are merged into the count).
const MAX_ADJUSTMENTS: usize = 64;

/// Why the count was corrected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    Opening,
    Closing,
    Empty,
    BelowZero,
}

/// One correction: the people added (+) or removed (−) at `at_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Adjustment {
    pub reason: Reason,
    pub at_ms: u64,
    pub people: i64,
}

/// The store's local time: a day number and the minute of that day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalTime {
    pub day: i64,
    pub minute: u32,
}

/// The window's figures (unsuppressed; [`OccupancyEvent::window`] suppresses them).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OccupancyWindow {
    pub now: u64,
    pub max: u64,
    pub ins: u64,
    pub outs: u64,
    /// Parties that came in and went out together (`scene::group`): conversion's denominator.
    pub groups_in: u64,
    pub groups_out: u64,
    pub adjustments: Vec<Adjustment>,
}

/// An entrance line's running totals on its camera: people and groups, in and out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EntranceCount {
    pub line: String,
    pub people: Tally,
    pub groups: Tally,
}

/// What a running total added since it was last seen (a restarted camera starts from zero).
fn added(now: Tally, before: Tally) -> Tally {
    if now.ins < before.ins || now.outs < before.outs {
        now
    } else {
        Tally {
            ins: now.ins - before.ins,
            outs: now.outs - before.outs,
        }
    }
}

#[derive(Debug)]
pub struct Occupancy {
    p: StoreOccupancy,
    value: u64,
    /// Per entrance (camera, line): the camera's running totals last seen.
    last: BTreeMap<(String, String), EntranceCount>,
    /// Per camera: whether it sees anyone now, and since when it has not.
    empty_since: BTreeMap<String, Option<u64>>,
    opened: Option<i64>,
    closed: Option<i64>,
    corrected_empty: bool,
    window: OccupancyWindow,
    alert: Option<AlertState>,
}

impl Occupancy {
    pub fn new(p: StoreOccupancy) -> Occupancy {
        let alert = p.capacity.map(|c| {
            AlertState::new(AlertRule {
                id: CAPACITY_ALERT.to_string(),
                on: AlertOn::Occupancy(SOURCE.to_string()),
                above: Some(f64::from(c)),
                forecast_factor: None,
                clear_below: None,
                hold_secs: 0.0,
                min_interval_secs: 300.0,
            })
        });
        Occupancy {
            p,
            value: 0,
            last: BTreeMap::new(),
            empty_since: BTreeMap::new(),
            opened: None,
            closed: None,
            corrected_empty: false,
            window: OccupancyWindow::default(),
            alert,
        }
    }

    /// People inside now.
    pub fn now(&self) -> u64 {
        self.value
    }

    /// A box restarted on the same day continues from the count it last published.
    pub fn resume(&mut self, value: u64, local: LocalTime) {
        self.value = value;
        self.window.max = value;
        self.opened = Some(local.day).filter(|_| local.minute >= self.p.opens_minute);
    }

    /// The capacity rule (the alert's payload names it).
    pub fn capacity_rule(&self) -> Option<&AlertRule> {
        self.alert.as_ref().map(|a| &a.rule)
    }

    /// Whether `camera` has an entrance line.
    pub fn watches(&self, camera: &str) -> bool {
        self.p.entrances.iter().any(|e| e.camera == camera)
    }

    /// One camera's news: the running totals of its entrance lines (in configuration order of
    /// its lines, by id) and the people it sees now. Returns a capacity alert change.
    pub fn observe(
        &mut self,
        now_ms: u64,
        local: LocalTime,
        camera: &str,
        lines: &[EntranceCount],
        people: u32,
        k_min: u32,
    ) -> Option<AlertChange> {
        self.tick(now_ms, local);
        for count in lines {
            if !self
                .p
                .entrances
                .iter()
                .any(|e| e.camera == camera && e.line == count.line)
            {
                continue;
            }
            let key = (camera.to_string(), count.line.clone());
            let before = self.last.insert(key, count.clone()).unwrap_or_default();
            let people = added(count.people, before.people);
            let groups = added(count.groups, before.groups);
            self.window.groups_in += groups.ins;
            self.window.groups_out += groups.outs;
            self.enter(now_ms, people.ins);
            self.leave(now_ms, people.outs);
        }
        let since = self.empty_since.entry(camera.to_string()).or_insert(None);
        match (people, *since) {
            (0, None) => *since = Some(now_ms),
            (0, Some(_)) => {}
            (_, _) => {
                *since = None;
                self.corrected_empty = false;
            }
        }
        self.evaluate(now_ms, k_min)
    }

    fn enter(&mut self, _now_ms: u64, n: u64) {
        self.value += n;
        self.window.ins += n;
        self.window.max = self.window.max.max(self.value);
    }

    fn leave(&mut self, now_ms: u64, n: u64) {
        let gone = n.min(self.value);
        self.value -= gone;
        self.window.outs += n;
        if n > gone {
            self.adjust(now_ms, Reason::BelowZero, (n - gone) as i64);
        }
    }

    fn adjust(&mut self, at_ms: u64, reason: Reason, people: i64) {
        let a = &mut self.window.adjustments;
        if a.len() < MAX_ADJUSTMENTS {
            a.push(Adjustment {
                reason,
                at_ms,
                people,
            });
        } else if let Some(last) = a.last_mut() {
            // Full: the correction is added to the last one (the sum stays true).
            last.people += people;
        }
    }

    /// The store's clock: opening, closing and the empty scene.
    pub fn tick(&mut self, now_ms: u64, local: LocalTime) {
        if local.minute >= self.p.opens_minute && self.opened != Some(local.day) {
            self.opened = Some(local.day);
            self.empty_out(now_ms, Reason::Opening);
        }
        if let Some(closes) = self.p.closes_minute {
            if local.minute >= closes && self.closed != Some(local.day) {
                self.closed = Some(local.day);
                self.empty_out(now_ms, Reason::Closing);
            }
        }
        if let Some(after) = self.p.empty_after_secs {
            let all_empty_since = self
                .empty_since
                .values()
                .try_fold(0u64, |acc, s| s.map(|t| acc.max(t)));
            let long = all_empty_since
                .is_some_and(|t| now_ms.saturating_sub(t) >= u64::from(after) * 1000);
            if long && !self.empty_since.is_empty() && !self.corrected_empty {
                self.corrected_empty = true;
                self.empty_out(now_ms, Reason::Empty);
            }
        }
    }

    fn empty_out(&mut self, now_ms: u64, reason: Reason) {
        if self.value > 0 {
            let n = self.value as i64;
            self.value = 0;
            self.adjust(now_ms, reason, -n);
        }
    }

    /// The capacity alert on the value now.
    pub fn evaluate(&mut self, now_ms: u64, k_min: u32) -> Option<AlertChange> {
        let v = self.value as f64;
        self.alert.as_mut()?.observe(now_ms, Some(v), None, k_min)
    }

    /// The window's figures; the next window starts from the count now.
    pub fn take_window(&mut self) -> OccupancyWindow {
        let now = self.value;
        let mut w = std::mem::take(&mut self.window);
        w.now = now;
        w.max = w.max.max(now);
        self.window.max = now;
        w
    }
}

/// A published correction: no finer time than its window's (a `below_zero` at the second
/// would say when one person walked out).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdjustmentOut {
    pub reason: Reason,
    /// People added (+) or removed (−); null below `k_min`.
    pub people: Option<i64>,
}

/// The store's occupancy, published per window (`kind = "window"`) and live when it changes
/// (`kind = "live"`, at most every few seconds) on one retained topic: the last message is the
/// count now. Counts only, k-suppressed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OccupancyEvent {
    pub schema: String,
    pub device_id: String,
    pub store_id: String,
    pub source_id: String,
    pub seq: u64,
    /// `store/device/store/occupancy/at-ms/seq`.
    pub idempotency_key: String,
    /// `window` or `live`.
    pub kind: String,
    /// RFC 3339, whole seconds: the window's end, or when the live count was taken.
    pub at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<Window>,
    /// People inside at `at`.
    pub people: Option<u32>,
    /// Window only: the most inside, crossings in and out of the entrances, the groups among
    /// them, corrections.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<Option<u32>>,
    #[serde(default, rename = "in", skip_serializing_if = "Option::is_none")]
    pub ins: Option<Option<u32>>,
    #[serde(default, rename = "out", skip_serializing_if = "Option::is_none")]
    pub outs: Option<Option<u32>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups_in: Option<Option<u32>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups_out: Option<Option<u32>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adjustments: Option<Vec<AdjustmentOut>>,
    pub capacity: Option<u32>,
    pub k_min: u32,
}

fn count(n: u64, k_min: u32) -> Option<u32> {
    suppress(u32::try_from(n).unwrap_or(u32::MAX), k_min)
}

impl OccupancyEvent {
    fn envelope(meta: &EventMeta<'_>, seq: u64, kind: &str, at_ms: u64) -> OccupancyEvent {
        let at_ms = at_ms / 1000 * 1000;
        OccupancyEvent {
            schema: OCCUPANCY_SCHEMA.to_string(),
            device_id: meta.device_id.to_string(),
            store_id: meta.store_id.to_string(),
            source_id: meta.source_id.to_string(),
            seq,
            idempotency_key: format!(
                "{}/{}/{}/occupancy/{at_ms}/{seq}",
                meta.store_id, meta.device_id, meta.source_id
            ),
            kind: kind.to_string(),
            at: rfc3339(at_ms),
            window: None,
            people: None,
            max: None,
            ins: None,
            outs: None,
            groups_in: None,
            groups_out: None,
            adjustments: None,
            capacity: None,
            k_min: meta.k_min,
        }
    }

    /// The window `[start_ms, end_ms)`'s occupancy.
    pub fn window(
        meta: &EventMeta<'_>,
        seq: u64,
        (start_ms, end_ms): (u64, u64),
        w: &OccupancyWindow,
        capacity: Option<u32>,
    ) -> OccupancyEvent {
        let k = meta.k_min;
        let adjustments = w
            .adjustments
            .iter()
            .map(|a| AdjustmentOut {
                reason: a.reason,
                people: count(a.people.unsigned_abs(), k).map(|n| i64::from(n) * a.people.signum()),
            })
            .collect();
        OccupancyEvent {
            window: Some(Window {
                start: rfc3339(start_ms),
                end: rfc3339(end_ms),
                seconds: (end_ms.saturating_sub(start_ms) / 1000) as u32,
            }),
            people: count(w.now, k),
            max: Some(count(w.max, k)),
            ins: Some(count(w.ins, k)),
            outs: Some(count(w.outs, k)),
            groups_in: Some(count(w.groups_in, k)),
            groups_out: Some(count(w.groups_out, k)),
            adjustments: Some(adjustments),
            capacity,
            ..Self::envelope(meta, seq, "window", end_ms)
        }
    }

    /// The count at `at_ms`.
    pub fn live(
        meta: &EventMeta<'_>,
        seq: u64,
        at_ms: u64,
        people: u64,
        capacity: Option<u32>,
    ) -> OccupancyEvent {
        OccupancyEvent {
            people: count(people, meta.k_min),
            capacity,
            ..Self::envelope(meta, seq, "live", at_ms)
        }
    }
}

#[cfg(test)]
mod tests;
