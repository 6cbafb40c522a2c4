//! Real-time alerts: one rule's state machine. Pure: the camera gives it the watched value of
//! every frame, the rule's forecast band, and the time.
//!
//! A rule is raised when the value stays above its threshold (the configured `above`, or
//! `forecast_factor` times the forecast, whichever is lower) for `hold_secs`, and cleared when
//! it stays below `clear_below` (default 80 % of the threshold that raised it) as long: the gap
//! and the hold are the hysteresis, so a value wobbling around the threshold raises one alert,
//! not a storm. A rule raises at most once per `min_interval_secs` (the rate limit); its clear
//! is always reported. A value below `k_min` is never published (k-anonymity): a rule is not
//! raised on one, and a clear reports it as null.

use vitrine_config::AlertRule;

/// What raised an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    Threshold,
    Forecast,
}

/// A change of a rule's state, to publish.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertChange {
    pub rule: String,
    pub raised: bool,
    /// When it happened (the frame's time).
    pub at_ms: u64,
    /// The watched value then (`None`: below `k_min`).
    pub value: Option<f64>,
    pub threshold: f64,
    pub trigger: Trigger,
}

#[derive(Debug)]
pub struct AlertState {
    pub rule: AlertRule,
    /// Since when the value has been beyond the raise (or, raised, below the clear) threshold.
    beyond_since: Option<u64>,
    /// While raised: the threshold and trigger that raised it.
    raised: Option<(f64, Trigger)>,
    last_raised_ms: Option<u64>,
}

impl AlertState {
    pub fn new(rule: AlertRule) -> AlertState {
        AlertState {
            rule,
            beyond_since: None,
            raised: None,
            last_raised_ms: None,
        }
    }

    pub fn is_raised(&self) -> bool {
        self.raised.is_some()
    }

    /// The threshold now: the lower of the fixed one and the forecast band.
    fn threshold(&self, forecast: Option<f64>) -> Option<(f64, Trigger)> {
        let band = self
            .rule
            .forecast_factor
            .zip(forecast)
            .map(|(f, v)| (f * v, Trigger::Forecast));
        let fixed = self.rule.above.map(|a| (a, Trigger::Threshold));
        match (fixed, band) {
            (Some(a), Some(b)) => Some(if b.0 < a.0 { b } else { a }),
            (a, b) => a.or(b),
        }
    }

    /// One frame's value (`None`: unknown now, e.g. no queue estimate yet), the forecast of
    /// the value for this hour (`None`: no forecast yet).
    pub fn observe(
        &mut self,
        now_ms: u64,
        value: Option<f64>,
        forecast: Option<f64>,
        k_min: u32,
    ) -> Option<AlertChange> {
        let hold = (self.rule.hold_secs * 1000.0) as u64;
        let held = |since: &mut Option<u64>, beyond: bool| {
            if !beyond {
                *since = None;
                return false;
            }
            now_ms.saturating_sub(*since.get_or_insert(now_ms)) >= hold
        };
        let publishable = |v: f64| (v >= f64::from(k_min)).then_some(v);
        match self.raised {
            None => {
                let (threshold, trigger) = self.threshold(forecast)?;
                let v = value?;
                let beyond = v > threshold && publishable(v).is_some();
                if !held(&mut self.beyond_since, beyond) {
                    return None;
                }
                let limit = (self.rule.min_interval_secs * 1000.0) as u64;
                if self
                    .last_raised_ms
                    .is_some_and(|t| now_ms.saturating_sub(t) < limit)
                {
                    return None;
                }
                self.beyond_since = None;
                self.raised = Some((threshold, trigger));
                self.last_raised_ms = Some(now_ms);
                Some(self.change(now_ms, true, Some(v), threshold, trigger))
            }
            Some((threshold, trigger)) => {
                let clear = self.rule.clear_below.unwrap_or(0.8 * threshold);
                let below = value.is_none_or(|v| v < clear);
                if !held(&mut self.beyond_since, below) {
                    return None;
                }
                self.beyond_since = None;
                self.raised = None;
                Some(self.change(
                    now_ms,
                    false,
                    value.and_then(publishable),
                    threshold,
                    trigger,
                ))
            }
        }
    }

    fn change(
        &self,
        at_ms: u64,
        raised: bool,
        value: Option<f64>,
        threshold: f64,
        trigger: Trigger,
    ) -> AlertChange {
        AlertChange {
            rule: self.rule.id.clone(),
            raised,
            at_ms,
            value,
            threshold,
            trigger,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vitrine_config::AlertOn;

    fn rule(above: Option<f64>, factor: Option<f64>) -> AlertState {
        AlertState::new(AlertRule {
            id: "rush".into(),
            on: AlertOn::Occupancy("promo".into()),
            above,
            forecast_factor: factor,
            clear_below: None,
            hold_secs: 2.0,
            min_interval_secs: 60.0,
        })
    }

    /// Feed `values` one per 500 ms from `t0`; the changes seen.
    fn run(a: &mut AlertState, t0: u64, values: &[f64], forecast: Option<f64>) -> Vec<(u64, bool)> {
        values
            .iter()
            .enumerate()
            .filter_map(|(i, v)| a.observe(t0 + i as u64 * 500, Some(*v), forecast, 3))
            .map(|c| (c.at_ms, c.raised))
            .collect()
    }

    #[test]
    fn raised_after_the_hold_and_cleared_below_the_hysteresis() {
        let mut a = rule(Some(10.0), None);
        // A 1 s spike does not raise; 2 s above does.
        let v = [5.0, 12.0, 12.0, 5.0, 12.0, 12.0, 12.0, 12.0, 12.0];
        assert_eq!(run(&mut a, 0, &v, None), vec![(4000, true)]);
        // 9 is below the threshold but above 80 % of it: still raised.
        assert!(run(&mut a, 5000, &[9.0; 10], None).is_empty());
        assert_eq!(run(&mut a, 10_000, &[7.0; 6], None), vec![(12_000, false)]);
    }

    #[test]
    fn at_most_one_raise_per_interval() {
        let mut a = rule(Some(10.0), None);
        let mut seen = run(&mut a, 0, &[12.0; 6], None);
        seen.extend(run(&mut a, 3000, &[1.0; 6], None));
        seen.extend(run(&mut a, 6000, &[12.0; 20], None));
        assert_eq!(seen, vec![(2000, true), (5000, false)], "rate-limited");
        // Still above since 6 s (held): raised as soon as the interval allows.
        assert_eq!(run(&mut a, 62_000, &[12.0; 6], None), vec![(62_000, true)]);
    }

    #[test]
    fn the_forecast_band_raises_below_the_fixed_threshold() {
        let mut a = rule(Some(50.0), Some(2.0));
        let c: Vec<_> = (0..6)
            .filter_map(|i| a.observe(i * 500, Some(12.0), Some(5.0), 3))
            .collect();
        assert_eq!(c.len(), 1);
        assert_eq!((c[0].trigger, c[0].threshold), (Trigger::Forecast, 10.0));
        // Without a forecast yet, a forecast-only rule stays quiet.
        let mut b = rule(None, Some(2.0));
        assert!(run(&mut b, 0, &[100.0; 10], None).is_empty());
    }

    #[test]
    fn a_value_below_k_is_never_published() {
        let mut a = rule(None, Some(1.5));
        // Forecast 1, value 2: above the band but below k = 3.
        assert!(run(&mut a, 0, &[2.0; 10], Some(1.0)).is_empty());
        let raised = run(&mut a, 5000, &[4.0; 5], Some(1.0));
        assert_eq!(raised, vec![(7000, true)]);
        let c = (0..6)
            .filter_map(|i| a.observe(8000 + i * 500, Some(1.0), Some(1.0), 3))
            .next()
            .unwrap();
        assert_eq!((c.raised, c.value), (false, None));
    }
}

/// The alert payload's schema name (`signals/schema/alert.v1.json`).
pub const ALERT_SCHEMA: &str = "vitrine.alert.v1";

/// A published alert: a rule raised or cleared. Unlike windows, it is stamped to the second
/// (it is meant to be acted on at once); it carries only the watched aggregate (a count of at
/// least `k_min`, a rate or a wait), never who.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AlertEvent {
    pub schema: String,
    pub device_id: String,
    pub store_id: String,
    pub source_id: String,
    pub seq: u64,
    /// `store/device/source/alert/rule/at-ms/seq`: deduplication, as for windows.
    pub idempotency_key: String,
    pub alert: String,
    /// `line_rate` (crossings per minute), `occupancy` (people), `queue_wait` (seconds).
    pub watches: String,
    /// The line, zone or queue watched.
    pub target: String,
    /// `raised` or `cleared`.
    pub state: String,
    /// RFC 3339, UTC, whole seconds.
    pub at: String,
    pub value: Option<f64>,
    pub threshold: f64,
    /// `threshold` (the configured one) or `forecast` (the forecast band).
    pub trigger: String,
    pub k_min: u32,
}

impl AlertEvent {
    pub fn new(
        meta: &crate::event::EventMeta<'_>,
        seq: u64,
        rule: &AlertRule,
        c: &AlertChange,
    ) -> AlertEvent {
        let (watches, target) = match &rule.on {
            vitrine_config::AlertOn::LineRate(id) => ("line_rate", id),
            vitrine_config::AlertOn::Occupancy(id) => ("occupancy", id),
            vitrine_config::AlertOn::QueueWait(id) => ("queue_wait", id),
        };
        let at_ms = c.at_ms / 1000 * 1000;
        AlertEvent {
            schema: ALERT_SCHEMA.to_string(),
            device_id: meta.device_id.to_string(),
            store_id: meta.store_id.to_string(),
            source_id: meta.source_id.to_string(),
            seq,
            idempotency_key: format!(
                "{}/{}/{}/alert/{}/{}/{}",
                meta.store_id, meta.device_id, meta.source_id, c.rule, at_ms, seq
            ),
            alert: c.rule.clone(),
            watches: watches.to_string(),
            target: target.clone(),
            state: if c.raised { "raised" } else { "cleared" }.to_string(),
            at: crate::event::rfc3339(at_ms),
            value: c.value.map(crate::event::round3),
            threshold: crate::event::round3(c.threshold),
            trigger: match c.trigger {
                Trigger::Threshold => "threshold",
                Trigger::Forecast => "forecast",
            }
            .to_string(),
            k_min: meta.k_min,
        }
    }
}

#[cfg(test)]
mod schema_tests {
    use super::*;
    use crate::event::EventMeta;
    use vitrine_config::AlertOn;

    #[test]
    fn alert_events_match_the_published_schema() {
        let text = include_str!("../schema/alert.v1.json");
        let v = jsonschema::validator_for(&serde_json::from_str(text).unwrap()).unwrap();
        let meta = EventMeta {
            device_id: "box-1",
            store_id: "store.42",
            source_id: "door_cam",
            k_min: 5,
        };
        let rule = AlertRule {
            id: "till_wait".into(),
            on: AlertOn::QueueWait("till".into()),
            above: Some(120.0),
            forecast_factor: None,
            clear_below: None,
            hold_secs: 2.0,
            min_interval_secs: 300.0,
        };
        for (raised, value) in [(true, Some(150.25)), (false, None)] {
            let c = AlertChange {
                rule: "till_wait".into(),
                raised,
                at_ms: 1_795_946_401_234,
                value,
                threshold: 120.0,
                trigger: Trigger::Threshold,
            };
            let ev = serde_json::to_value(AlertEvent::new(&meta, 9, &rule, &c)).unwrap();
            let errors: Vec<String> = v.iter_errors(&ev).map(|e| e.to_string()).collect();
            assert!(errors.is_empty(), "{errors:?}\n{ev}");
            assert_eq!(ev["at"], "2026-11-29T10:00:01Z", "to the second, no finer");
        }
    }
}
