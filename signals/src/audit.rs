//! The technician's accuracy audit of one counting line: they tap "in" or "out" for every
//! person they see cross while the agent counts the same line; at the end both tallies, their
//! agreement and a confidence interval for the agent's count relative to theirs.
//!
//! Pure: the caller gives the agent's running totals of the line (`Tally`, since its camera
//! started) and the time. No video is needed and none is kept: the audit holds six numbers.
//!
//! Statistics. `agreement` = min(A, M) / max(A, M) for the agent's count A and the manual
//! count M (1 = the same count). `ratio` = A / M with a 95 % interval from the conditional
//! binomial method for two Poisson counts (given A + M = n, A ~ Binomial(n, r / (1 + r)); a
//! Wilson interval on that proportion is mapped back to r). It treats the two counts as
//! independent; they are not (they count the same people), so the interval is conservative:
//! wider than the truth, never narrower. It narrows as the audit runs longer: for equal counts
//! 61–165 % at 30 crossings a side, 76–132 % at 100, 88–113 % at 500.

use serde::{Deserialize, Serialize};

use crate::event::{rfc3339, suppress, EventMeta};

pub const AUDIT_SCHEMA: &str = "vitrine.audit.v1";

/// Crossings in each direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    #[serde(rename = "in")]
    pub ins: u64,
    #[serde(rename = "out")]
    pub outs: u64,
}

impl Tally {
    pub fn total(&self) -> u64 {
        self.ins + self.outs
    }

    fn since(&self, earlier: &Tally) -> Tally {
        Tally {
            ins: self.ins.saturating_sub(earlier.ins),
            outs: self.outs.saturating_sub(earlier.outs),
        }
    }
}

/// The agent's running count of a line: its totals since the camera (re)started, and which
/// start that was (a reload that restarts the camera begins a new `run`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentCount {
    pub run: u64,
    pub totals: Tally,
}

/// A tap's direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    In,
    Out,
}

/// One audit in progress (or finished).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Audit {
    pub camera: String,
    pub line: String,
    pub started_ms: u64,
    pub ended_ms: Option<u64>,
    pub manual: Tally,
    /// The agent's count when the audit started, and the latest one read.
    agent_start: AgentCount,
    agent_now: AgentCount,
    /// The camera restarted meanwhile (a reload changed it): the agent's count no longer
    /// covers the audit's minutes.
    pub interrupted: bool,
}

/// What an audit found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditResult {
    pub camera: String,
    pub line: String,
    pub minutes: f64,
    pub manual: Tally,
    pub agent: Tally,
    /// min / max of the two totals; `None` before anyone crossed.
    pub agreement: Option<f64>,
    /// Agent total / manual total and its 95 % interval; `None` without a manual count.
    pub ratio: Option<f64>,
    pub ratio_low: Option<f64>,
    pub ratio_high: Option<f64>,
    pub interrupted: bool,
}

/// Why an audit result cannot be published.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PublishRefused {
    #[error("the audit is still running; stop it first")]
    Running,
    #[error("the camera restarted during the audit (a configuration change): its count does not cover the audit; start a new audit")]
    Interrupted,
    #[error("too few crossings to publish ({manual} tapped, {agent} counted; privacy.k_min = {k_min}): keep counting longer, small counts are never published")]
    TooFew { manual: u64, agent: u64, k_min: u32 },
}

impl Audit {
    pub fn start(camera: &str, line: &str, now_ms: u64, agent: AgentCount) -> Audit {
        Audit {
            camera: camera.to_string(),
            line: line.to_string(),
            started_ms: now_ms,
            ended_ms: None,
            manual: Tally::default(),
            agent_start: agent,
            agent_now: agent,
            interrupted: false,
        }
    }

    pub fn running(&self) -> bool {
        self.ended_ms.is_none()
    }

    /// The technician saw someone cross (ignored once the audit ended).
    pub fn tap(&mut self, dir: Direction) {
        if !self.running() {
            return;
        }
        match dir {
            Direction::In => self.manual.ins += 1,
            Direction::Out => self.manual.outs += 1,
        }
    }

    /// The agent's latest count of the line (ignored once the audit ended).
    pub fn agent(&mut self, now: AgentCount) {
        if !self.running() {
            return;
        }
        if now.run != self.agent_start.run || now.totals.total() < self.agent_now.totals.total() {
            self.interrupted = true;
        }
        self.agent_now = now;
    }

    pub fn stop(&mut self, now_ms: u64, agent: AgentCount) {
        self.agent(agent);
        if self.ended_ms.is_none() {
            self.ended_ms = Some(now_ms.max(self.started_ms));
        }
    }

    /// The tallies so far (`now_ms` for a running audit's minutes).
    pub fn result(&self, now_ms: u64) -> AuditResult {
        let end = self.ended_ms.unwrap_or(now_ms).max(self.started_ms);
        let agent = if self.interrupted {
            Tally::default()
        } else {
            self.agent_now.totals.since(&self.agent_start.totals)
        };
        let (a, m) = (agent.total(), self.manual.total());
        let (ratio, ratio_low, ratio_high) = match ratio_interval(a, m) {
            Some((r, lo, hi)) => (Some(r), Some(lo), hi),
            None => (None, None, None),
        };
        AuditResult {
            camera: self.camera.clone(),
            line: self.line.clone(),
            minutes: (end - self.started_ms) as f64 / 60_000.0,
            manual: self.manual,
            agent,
            agreement: (a.max(m) > 0).then(|| a.min(m) as f64 / a.max(m) as f64),
            ratio,
            ratio_low,
            ratio_high,
            interrupted: self.interrupted,
        }
    }

    /// The published event for this audit, once it ended with enough crossings.
    pub fn event(&self, meta: &EventMeta<'_>, seq: u64) -> Result<AuditEvent, PublishRefused> {
        let ended = self.ended_ms.ok_or(PublishRefused::Running)?;
        if self.interrupted {
            return Err(PublishRefused::Interrupted);
        }
        let r = self.result(ended);
        let k = u64::from(meta.k_min);
        if r.manual.total() < k || r.agent.total() < k {
            return Err(PublishRefused::TooFew {
                manual: r.manual.total(),
                agent: r.agent.total(),
                k_min: meta.k_min,
            });
        }
        let started = self.started_ms / 1000 * 1000;
        let direction = |t: Tally| AuditCounts {
            ins: suppress_u64(t.ins, meta.k_min),
            outs: suppress_u64(t.outs, meta.k_min),
            total: t.total(),
        };
        Ok(AuditEvent {
            schema: AUDIT_SCHEMA.to_string(),
            device_id: meta.device_id.to_string(),
            store_id: meta.store_id.to_string(),
            source_id: meta.source_id.to_string(),
            seq,
            idempotency_key: format!(
                "{}/{}/{}/audit/{}/{}/{}",
                meta.store_id, meta.device_id, meta.source_id, self.line, started, seq
            ),
            line: self.line.clone(),
            started: rfc3339(started),
            ended: rfc3339(ended / 1000 * 1000),
            minutes: crate::event::round3(r.minutes),
            manual: direction(r.manual),
            agent: direction(r.agent),
            agreement: r.agreement.map(crate::event::round3),
            ratio: r.ratio.map(crate::event::round3),
            ratio_low: r.ratio_low.map(crate::event::round3),
            ratio_high: r.ratio_high.map(crate::event::round3),
            k_min: meta.k_min,
        })
    }
}

fn suppress_u64(n: u64, k_min: u32) -> Option<u64> {
    match u32::try_from(n) {
        Ok(n) => suppress(n, k_min).map(u64::from),
        Err(_) => Some(n),
    }
}

/// A / M with its 95 % interval (conditional binomial, Wilson); the upper bound is `None`
/// (unbounded) when the agent counted everything and the technician nothing beyond.
pub fn ratio_interval(agent: u64, manual: u64) -> Option<(f64, f64, Option<f64>)> {
    if manual == 0 {
        return None;
    }
    let n = (agent + manual) as f64;
    let p = agent as f64 / n;
    let z = 1.959_964_f64;
    let centre = (p + z * z / (2.0 * n)) / (1.0 + z * z / n);
    let half = z / (1.0 + z * z / n) * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt();
    let (lo, hi) = ((centre - half).max(0.0), (centre + half).min(1.0));
    let odds = |q: f64| q / (1.0 - q);
    let upper = (hi < 1.0).then(|| odds(hi));
    Some((agent as f64 / manual as f64, odds(lo), upper))
}

/// Counts of one side of an audit: each direction k-suppressed like a window's line counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditCounts {
    #[serde(rename = "in")]
    pub ins: Option<u64>,
    #[serde(rename = "out")]
    pub outs: Option<u64>,
    pub total: u64,
}

/// The published audit result (`{prefix}/{store}/{device}/audit/{camera}`, through the
/// outbox): counts and statistics, never who.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    pub schema: String,
    pub device_id: String,
    pub store_id: String,
    pub source_id: String,
    pub seq: u64,
    /// `store/device/camera/audit/line/started-ms/seq`.
    pub idempotency_key: String,
    pub line: String,
    /// RFC 3339, UTC, whole seconds.
    pub started: String,
    pub ended: String,
    pub minutes: f64,
    pub manual: AuditCounts,
    pub agent: AuditCounts,
    pub agreement: Option<f64>,
    pub ratio: Option<f64>,
    pub ratio_low: Option<f64>,
    pub ratio_high: Option<f64>,
    pub k_min: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(run: u64, ins: u64, outs: u64) -> AgentCount {
        AgentCount {
            run,
            totals: Tally { ins, outs },
        }
    }

    fn meta() -> EventMeta<'static> {
        EventMeta {
            device_id: "box1",
            store_id: "s1",
            source_id: "door",
            k_min: 5,
        }
    }

    #[test]
    fn tallies_count_from_the_audit_start_not_the_camera_start() {
        let mut a = Audit::start("door", "entry", 1_000, count(1, 40, 30));
        for _ in 0..9 {
            a.tap(Direction::In);
        }
        a.tap(Direction::Out);
        a.stop(121_000, count(1, 48, 32));
        let r = a.result(999_999);
        assert_eq!(r.manual, Tally { ins: 9, outs: 1 });
        assert_eq!(r.agent, Tally { ins: 8, outs: 2 });
        assert_eq!(r.minutes, 2.0);
        assert_eq!(r.agreement, Some(1.0));
        assert_eq!(r.ratio, Some(1.0));
        let (lo, hi) = (r.ratio_low.unwrap(), r.ratio_high.unwrap());
        assert!(lo < 1.0 && hi > 1.0 && lo > 0.3 && hi < 3.0, "{lo} {hi}");
    }

    #[test]
    fn taps_after_the_end_are_ignored() {
        let mut a = Audit::start("door", "entry", 0, count(1, 0, 0));
        a.stop(60_000, count(1, 0, 0));
        a.tap(Direction::In);
        assert_eq!(a.result(0).manual.total(), 0);
    }

    #[test]
    fn a_camera_restart_during_the_audit_interrupts_it() {
        let mut a = Audit::start("door", "entry", 0, count(1, 10, 10));
        a.agent(count(2, 1, 0));
        a.stop(60_000, count(2, 3, 0));
        assert!(a.result(0).interrupted);
        assert_eq!(a.event(&meta(), 1), Err(PublishRefused::Interrupted));
    }

    #[test]
    fn the_interval_narrows_with_more_crossings_and_covers_the_ratio() {
        let (r1, lo1, hi1) = ratio_interval(90, 100).unwrap();
        let (r2, lo2, hi2) = ratio_interval(900, 1000).unwrap();
        assert!((r1 - 0.9).abs() < 1e-9 && (r2 - 0.9).abs() < 1e-9);
        assert!(lo1 < 0.9 && hi1.unwrap() > 0.9);
        assert!(hi2.unwrap() - lo2 < (hi1.unwrap() - lo1) / 2.0);
        // Published figures: about +/-20 % at 100 crossings a side.
        assert!((0.65..0.8).contains(&lo1) && (1.05..1.25).contains(&hi1.unwrap()));
        assert_eq!(ratio_interval(5, 0), None);
        assert_eq!(ratio_interval(0, 5).unwrap().2.map(|h| h > 0.0), Some(true));
    }

    #[test]
    fn small_audits_are_never_published_and_directions_are_suppressed() {
        let mut a = Audit::start("door", "entry", 0, count(1, 0, 0));
        for _ in 0..3 {
            a.tap(Direction::In);
        }
        assert_eq!(a.event(&meta(), 1), Err(PublishRefused::Running));
        a.stop(60_000, count(1, 3, 0));
        assert!(matches!(
            a.event(&meta(), 1),
            Err(PublishRefused::TooFew { .. })
        ));
        let mut a = Audit::start("door", "entry", 0, count(1, 0, 0));
        for _ in 0..20 {
            a.tap(Direction::In);
        }
        a.tap(Direction::Out);
        a.stop(300_500, count(1, 19, 2));
        let e = a.event(&meta(), 7).unwrap();
        assert_eq!(e.manual.ins, Some(20));
        assert_eq!(e.manual.outs, None, "1 is below k_min");
        assert_eq!(e.agent.total, 21);
        assert_eq!(e.idempotency_key, "s1/box1/door/audit/entry/0/7");
        assert_eq!(e.ended, "1970-01-01T00:05:00Z");
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(json["manual"]["in"], 20);
    }

    #[test]
    fn audit_events_match_the_published_schema() {
        let text = include_str!("../schema/audit.v1.json");
        let v = jsonschema::validator_for(&serde_json::from_str(text).unwrap()).unwrap();
        let mut a = Audit::start("door", "entry", 1_795_946_401_234, count(3, 100, 90));
        for _ in 0..30 {
            a.tap(Direction::In);
        }
        for _ in 0..2 {
            a.tap(Direction::Out);
        }
        a.stop(1_795_946_701_999, count(3, 128, 93));
        let ev = serde_json::to_value(a.event(&meta(), 12).unwrap()).unwrap();
        let errors: Vec<String> = v.iter_errors(&ev).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{errors:?}\n{ev}");
        let mut bad = ev.clone();
        bad["track_ids"] = serde_json::json!([1, 2]);
        assert!(!v.is_valid(&bad), "extra fields are refused");
    }
}
