//! The traffic forecast on the box: per series (a line's crossings, a zone's visits, a zone's
//! occupancy), hour by hour, from the box's own history. Pure: the caller gives local hours.
//!
//! The model is a seasonal profile of the 168 hours of a week, each an exponentially weighted
//! mean of what that hour brought in past weeks ([`ALPHA_SEASON`]: recent weeks weigh most),
//! with the hour of day over all days as the fallback while a weekday hour has not been seen
//! yet, plus a damped correction: how far the last hours ran above or below their profile,
//! fading by [`PHI`] per hour ahead (a busy morning says something about the afternoon, little
//! about next week). Measured against seasonal-naive and a library model by `vitrine-lab eval
//! forecast` (docs/data-team.md). An hour covered less than half (the box started, the camera was down)
//! is not learned; its count is scaled to the hour when it is.
//!
//! Windows arrive in time order; one stamped before the hour being learned (the clock was set
//! back) is ignored rather than mixed into a wrong hour. The state is a few hundred numbers per
//! series and serializes as JSON (the agent keeps it in its state directory).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::event::{round3, suppress, SeriesForecast};

/// Hours in a week: the seasonal profile's slots.
pub const WEEK: usize = 168;
/// Weight of the newest week in a weekday hour's profile.
pub const ALPHA_SEASON: f64 = 0.3;
/// Weight of the newest day in the hour-of-day fallback.
pub const ALPHA_DAILY: f64 = 0.2;
/// Weight of the newest hour in the correction.
pub const ALPHA_LEVEL: f64 = 0.5;
/// How much of the correction is left one hour further ahead.
pub const PHI: f64 = 0.8;
/// An hour covered less than this share is not learned.
pub const MIN_COVERED: f64 = 0.5;
/// Hours ahead published with each window.
pub const AHEAD: usize = 3;
/// In a weekday hour the box has seen, a chain prior weighs as much as this many weeks of its
/// own data (`vitrine-lab eval federated`: 1 beat 2 and 4 at every history, mature stores included).
pub const PRIOR_WEEKS: f64 = 1.0;
/// In a weekday hour the box has not seen yet, its own hour of day (carried to that weekday by
/// the prior) weighs one per day seen against the prior's this many.
pub const PRIOR_DAYS: f64 = 2.0;
/// A box's own weeks count up to this many against the prior (its profile is a moving mean of
/// about this many weeks, `ALPHA_SEASON`).
pub const PRIOR_CAP: f64 = 6.0;

/// Most series a book keeps (lines and zones of every camera, three per zone).
pub const MAX_SERIES: usize = 512;

const HOUR_MS: u64 = 3_600_000;

/// An hour in the store's local time: `index` counts local hours since 1970-01-01T00:00 local
/// (consecutive hours differ by one), `slot` is the hour of the week, 0 = Monday 00:00.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalHour {
    pub index: i64,
    pub slot: u16,
}

impl LocalHour {
    /// From the local hours since the epoch (1970-01-01 was a Thursday).
    pub fn from_index(index: i64) -> LocalHour {
        let slot = (index + 3 * 24).rem_euclid(WEEK as i64) as u16;
        LocalHour { index, slot }
    }

    pub fn plus(self, hours: i64) -> LocalHour {
        LocalHour::from_index(self.index + hours)
    }

    pub fn hour_of_day(self) -> u16 {
        self.slot % 24
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct OpenHour {
    index: i64,
    sum: f64,
    covered_ms: u64,
    /// The calendar's name for the hour's day, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    day: Option<NamedDay>,
}

/// A day the store's calendar names (`[[calendar]]`): a public holiday or a known event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamedDay {
    pub name: String,
    /// Forecast like a Sunday until a day of this name was seen (else like its weekday).
    pub holiday: bool,
}

/// The store's named days, by local day (days since 1970-01-01).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Calendar {
    days: BTreeMap<i64, NamedDay>,
}

impl Calendar {
    pub fn new(days: &[vitrine_config::CalendarDay]) -> Calendar {
        let days = days
            .iter()
            .map(|d| {
                let holiday = d.kind == vitrine_config::DayKind::Holiday;
                (
                    d.day,
                    NamedDay {
                        name: d.name.clone(),
                        holiday,
                    },
                )
            })
            .collect();
        Calendar { days }
    }

    /// The name of the day `at` falls on, if the calendar has one.
    pub fn day(&self, at: LocalHour) -> Option<&NamedDay> {
        self.days.get(&at.index.div_euclid(24))
    }
}

/// How much a named day's hour weighs against the last one of its name.
pub const ALPHA_NAMED: f64 = 0.5;

/// The Sunday hour of the same time of day (slot 0 is Monday 00:00).
fn sunday(slot: u16) -> u16 {
    6 * 24 + slot % 24
}

/// One hourly series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Series {
    season: Vec<Option<f64>>,
    daily: Vec<Option<f64>>,
    level: f64,
    learned_to: Option<i64>,
    open: Option<OpenHour>,
    /// Hours learned per weekday hour (how far the box trusts its own profile over a chain
    /// prior); absent in states saved before the prior existed: those count as mature.
    #[serde(default)]
    seen: Vec<u16>,
    /// Per named day of the calendar: its hours of the day, learned from the days of that
    /// name only (and never into `season`/`daily`: a holiday does not teach the weekday).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    named: BTreeMap<String, Vec<Option<f64>>>,
}

impl Default for Series {
    fn default() -> Series {
        Series {
            season: vec![None; WEEK],
            daily: vec![None; 24],
            level: 0.0,
            learned_to: None,
            open: None,
            seen: vec![0; WEEK],
            named: BTreeMap::new(),
        }
    }
}

fn ema(old: Option<f64>, new: f64, alpha: f64) -> Option<f64> {
    Some(old.map_or(new, |o| o + alpha * (new - o)))
}

impl Series {
    /// Part of an hour: `sum` observed over `covered_ms`. Returns whether an hour was learned
    /// (the previous one closed). A part before the open hour is ignored.
    pub fn add(&mut self, at: LocalHour, sum: f64, covered_ms: u64) -> bool {
        self.add_with(at, sum, covered_ms, None)
    }

    /// [`Self::add`] for a box that forecasts with a chain prior: the correction learns how
    /// far hours ran from the blended profile it forecasts with.
    pub fn add_with(
        &mut self,
        at: LocalHour,
        sum: f64,
        covered_ms: u64,
        prior: Option<&Prior>,
    ) -> bool {
        self.add_on(at, sum, covered_ms, prior, None)
    }

    /// [`Self::add_with`] for an hour of a day the calendar names (`day`).
    pub fn add_on(
        &mut self,
        at: LocalHour,
        sum: f64,
        covered_ms: u64,
        prior: Option<&Prior>,
        day: Option<&NamedDay>,
    ) -> bool {
        let mut learned = false;
        match self.open.as_ref().map(|o| o.index) {
            Some(i) if at.index < i => return false,
            Some(i) if at.index > i => {
                if let Some(o) = self.open.take() {
                    learned = self.learn(o, prior);
                }
            }
            _ => {}
        }
        let o = self.open.get_or_insert_with(|| OpenHour {
            index: at.index,
            sum: 0.0,
            covered_ms: 0,
            day: day.cloned(),
        });
        o.sum += sum;
        o.covered_ms = (o.covered_ms + covered_ms).min(HOUR_MS);
        learned
    }

    /// A whole hour's value (the backtest feeds these directly).
    pub fn add_hour(&mut self, at: LocalHour, value: f64) -> bool {
        self.add(at, value, HOUR_MS)
    }

    fn base(&self, slot: u16) -> Option<f64> {
        self.season[slot as usize].or(self.daily[(slot % 24) as usize])
    }

    /// The profile's value for a weekday hour, with the prior blended in when there is one.
    fn base_with(&self, slot: u16, prior: Option<&Prior>) -> Option<f64> {
        prior
            .and_then(|p| self.blend(slot, p))
            .or_else(|| self.base(slot))
    }

    fn learn(&mut self, o: OpenHour, prior: Option<&Prior>) -> bool {
        if (o.covered_ms as f64) < MIN_COVERED * HOUR_MS as f64 {
            return false;
        }
        let v = o.sum * HOUR_MS as f64 / o.covered_ms as f64;
        let at = LocalHour::from_index(o.index);
        let gap = self.learned_to.map_or(1, |t| (o.index - t).max(1));
        let faded = self.level * PHI.powi(gap.min(1000) as i32);
        self.level = match self.base_on(at, prior, o.day.as_ref()) {
            Some(b) => faded + ALPHA_LEVEL * ((v - b) - faded),
            None => 0.0,
        };
        self.learned_to = Some(o.index);
        if let Some(d) = &o.day {
            self.learn_named(d, at, v);
            return true;
        }
        self.season[at.slot as usize] = ema(self.season[at.slot as usize], v, ALPHA_SEASON);
        if let Some(n) = self.seen.get_mut(at.slot as usize) {
            *n = n.saturating_add(1);
        }
        let hod = at.hour_of_day() as usize;
        self.daily[hod] = ema(self.daily[hod], v, ALPHA_DAILY);
        true
    }

    /// A named day's hour: into that name's hours only (a new name while
    /// [`vitrine_config::calendar::MAX_NAMES`] are held is not learned).
    fn learn_named(&mut self, d: &NamedDay, at: LocalHour, v: f64) {
        let max = vitrine_config::calendar::MAX_NAMES;
        if !self.named.contains_key(&d.name) && self.named.len() >= max {
            return;
        }
        let hours = self
            .named
            .entry(d.name.clone())
            .or_insert_with(|| vec![None; 24]);
        let hod = at.hour_of_day() as usize;
        hours[hod] = ema(hours[hod], v, ALPHA_NAMED);
    }

    /// The profile's value for hour `at`: a named day's own hours once one of its name was
    /// seen; before that a holiday's Sunday, an event's weekday.
    fn base_on(&self, at: LocalHour, prior: Option<&Prior>, day: Option<&NamedDay>) -> Option<f64> {
        let Some(d) = day else {
            return self.base_with(at.slot, prior);
        };
        let own = self
            .named
            .get(&d.name)
            .and_then(|h| h[at.hour_of_day() as usize]);
        let slot = if d.holiday { sunday(at.slot) } else { at.slot };
        own.or_else(|| self.base_with(slot, prior))
    }

    /// The expected value of hour `at` (after the hours learned so far); `None` before any
    /// hour of that time of day was seen.
    pub fn forecast(&self, at: LocalHour) -> Option<f64> {
        self.forecast_with(at, None)
    }

    /// [`Self::forecast`] with the chain's prior blended in (see the `federated` module): a
    /// weekday hour the box has seen `n` times weighs its own profile `n` against the prior's
    /// `PRIOR_WEEKS` at the box's own level; an hour never seen takes the prior's.
    pub fn forecast_with(&self, at: LocalHour, prior: Option<&Prior>) -> Option<f64> {
        self.forecast_on(at, prior, None)
    }

    /// [`Self::forecast_with`] for an hour of a day the calendar names (`day`).
    pub fn forecast_on(
        &self,
        at: LocalHour,
        prior: Option<&Prior>,
        day: Option<&NamedDay>,
    ) -> Option<f64> {
        let b = self.base_on(at, prior, day)?;
        let ahead = self.learned_to.map_or(1, |t| (at.index - t).max(1));
        Some((b + self.level * PHI.powi(ahead.min(1000) as i32)).max(0.0))
    }

    fn blend(&self, slot: u16, prior: &Prior) -> Option<f64> {
        let level = self.level_against(prior)?;
        let p = level * prior.shape[slot as usize];
        let own = self.season[slot as usize];
        let n = if self.seen.len() == WEEK {
            f64::from(self.seen[slot as usize]).min(PRIOR_CAP)
        } else {
            PRIOR_CAP
        };
        Some(match own {
            Some(o) => (n * o + PRIOR_WEEKS * p) / (n + PRIOR_WEEKS),
            None => match self.same_hour_scaled(slot, prior) {
                Some((d, days)) => (days * d + PRIOR_DAYS * p) / (days + PRIOR_DAYS),
                None => p,
            },
        })
    }

    /// The box's own hour of day (over the days it has seen) carried to this weekday by the
    /// prior's ratio between them, and how many days of that hour it has seen.
    fn same_hour_scaled(&self, slot: u16, prior: &Prior) -> Option<(f64, f64)> {
        let hod = (slot % 24) as usize;
        let daily = self.daily[hod]?;
        let (mut refp, mut n) = (0.0, 0.0);
        for d in 0..7 {
            let s = d * 24 + hod;
            if self.season[s].is_some() {
                refp += prior.shape[s];
                n += 1.0;
            }
        }
        if n < 1.0 || refp <= 1e-9 {
            return None;
        }
        Some((daily * prior.shape[slot as usize] / (refp / n), n))
    }

    /// The box's volume against the prior's shape (mean 1): what it saw in the weekday hours
    /// it has seen over what the shape expects of them. `None` before anything was learned.
    fn level_against(&self, prior: &Prior) -> Option<f64> {
        let (mut own, mut expected) = (0.0, 0.0);
        for (slot, v) in self.season.iter().enumerate() {
            if let Some(v) = v {
                own += v;
                expected += prior.shape[slot];
            }
        }
        (expected > 1e-9).then(|| own / expected)
    }

    /// How badly `prior` explains the weekday hours this series has seen: the squared error
    /// of its shape at the series' level against the profile, over the profile's energy (0:
    /// the same shape). `None` before anything was learned.
    pub fn misfit(&self, prior: &Prior) -> Option<f64> {
        let level = self.level_against(prior)?;
        let (mut err, mut energy) = (0.0, 0.0);
        for (slot, v) in self.season.iter().enumerate() {
            if let Some(v) = v {
                err += (v - level * prior.shape[slot]).powi(2);
                energy += v * v;
            }
        }
        (energy > 1e-9).then(|| err / energy)
    }

    /// This series' contribution to a chain prior: its weekly profile as a shape (mean 1 over
    /// the 168 hours, the hour of day standing in for weekday hours not seen yet) and its
    /// weight (weeks learned, at most [`PRIOR_CAP`]). `None` before every hour of the day was
    /// seen, or for a series that never counted anyone.
    pub fn shape(&self) -> Option<(Vec<f64>, f64)> {
        let raw: Option<Vec<f64>> = (0..WEEK as u16).map(|s| self.base(s)).collect();
        let raw = raw?;
        let mean = raw.iter().sum::<f64>() / WEEK as f64;
        if mean <= 1e-9 {
            return None;
        }
        let weeks = if self.seen.len() == WEEK {
            f64::from(self.seen.iter().map(|&n| u32::from(n)).sum::<u32>()) / WEEK as f64
        } else {
            PRIOR_CAP
        };
        Some((raw.iter().map(|v| v / mean).collect(), weeks.min(PRIOR_CAP)))
    }
}

/// A cluster's prior replaces the chain's average only when it explains the store's hours this
/// much better (a store whose weekdays fit two clusters has not shown which one it is).
pub const CHOOSE_MARGIN: f64 = 0.9;

/// The prior a store uses: the cluster that best explains what it has seen, if clearly better
/// than the chain's average ([`CHOOSE_MARGIN`]), else the average (also before it saw anything).
/// (Chain priors are made by the `federated` module.)
pub fn choose<'a>(priors: &'a [Prior], series: &Series) -> Option<&'a Prior> {
    let chain = priors.first()?;
    let Some(base) = series.misfit(chain) else {
        return Some(chain);
    };
    priors[1..]
        .iter()
        .filter_map(|p| series.misfit(p).map(|m| (m, p)))
        .filter(|(m, _)| *m < CHOOSE_MARGIN * base)
        .min_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, p)| p)
        .or(Some(chain))
}

/// A chain prior (made by the `federated` module): the shape of a week's footfall (168
/// weekday hours from Monday 00:00, mean 1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prior {
    pub shape: Vec<f64>,
}

impl Prior {
    /// A shape of 168 finite, non-negative values with a positive mean, rescaled to mean 1;
    /// `None` otherwise (a malformed prior is not used).
    pub fn new(shape: Vec<f64>) -> Option<Prior> {
        if shape.len() != WEEK || shape.iter().any(|v| !v.is_finite() || *v < 0.0) {
            return None;
        }
        let mean = shape.iter().sum::<f64>() / WEEK as f64;
        (mean > 1e-9).then(|| Prior {
            shape: shape.iter().map(|v| v / mean).collect(),
        })
    }

    /// The prior from an aggregate: the weighted sum of shapes and the sum of weights.
    pub fn from_sum(weighted: &[f64], weight: f64) -> Option<Prior> {
        if weight <= 0.0 {
            return None;
        }
        Prior::new(weighted.iter().map(|v| v / weight).collect())
    }
}

/// What a series measures (the forecast's unit follows).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measure {
    /// Crossings of a line (both directions) per hour.
    Crossings,
    /// Visits to a zone starting per hour.
    Visits,
    /// Person-seconds in a zone per hour (÷ 3600: mean occupancy).
    PersonSeconds,
}

impl Measure {
    fn name(self) -> &'static str {
        match self {
            Measure::Crossings => "crossings",
            Measure::Visits => "visits",
            Measure::PersonSeconds => "person_seconds",
        }
    }
}

/// The series of a box, by `source/id/measure`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ForecastBook {
    series: BTreeMap<String, Series>,
    /// The chain's priors, when the central side published some (see the `federated` module).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    chain: Option<ChainPriors>,
    /// The store's named days (from the configuration, not saved with the history).
    #[serde(skip)]
    calendar: Calendar,
}

/// The chain priors a box holds: the chain's average first, then its clusters, and the
/// version they were published with (a box never goes back to an older one).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChainPriors {
    pub version: u64,
    pub priors: Vec<Prior>,
}

/// Footfall series (crossings, visits) take a chain prior; occupancy (person-seconds), whose
/// shape also depends on how long people stay, does not.
fn takes_prior(m: Measure) -> bool {
    !matches!(m, Measure::PersonSeconds)
}

fn key(source: &str, id: &str, m: Measure) -> String {
    format!("{source}/{id}/{}", m.name())
}

impl ForecastBook {
    /// Part of an hour of one series. Returns whether an hour was learned (worth saving).
    pub fn add(
        &mut self,
        source: &str,
        id: &str,
        m: Measure,
        at: LocalHour,
        sum: f64,
        covered_ms: u64,
    ) -> bool {
        let k = key(source, id, m);
        if !self.series.contains_key(&k) && self.series.len() >= MAX_SERIES {
            return false;
        }
        let series = self.series.entry(k).or_default();
        let prior = match &self.chain {
            Some(c) if takes_prior(m) => choose(&c.priors, series).cloned(),
            _ => None,
        };
        series.add_on(at, sum, covered_ms, prior.as_ref(), self.calendar.day(at))
    }

    pub fn forecast(&self, source: &str, id: &str, m: Measure, at: LocalHour) -> Option<f64> {
        let series = self.series.get(&key(source, id, m))?;
        let prior = match &self.chain {
            Some(c) if takes_prior(m) => choose(&c.priors, series),
            _ => None,
        };
        series.forecast_on(at, prior, self.calendar.day(at))
    }

    /// The store's named days from now on (the configuration's `[[calendar]]`).
    pub fn set_calendar(&mut self, c: Calendar) {
        self.calendar = c;
    }

    /// Take the chain's priors if they are newer than those held; returns whether they were.
    pub fn set_chain(&mut self, c: ChainPriors) -> bool {
        if self.chain.as_ref().is_some_and(|h| h.version >= c.version) || c.priors.is_empty() {
            return false;
        }
        self.chain = Some(c);
        true
    }

    /// This box's contribution to the chain prior's rounds: the shape and weight of its
    /// best-learned footfall series (crossings of a line; the most weeks learned, then the
    /// first by name). `None` before any series has a week's profile.
    pub fn update(&self) -> Option<(Vec<f64>, f64)> {
        let suffix = format!("/{}", Measure::Crossings.name());
        self.series
            .iter()
            .filter(|(k, _)| k.ends_with(&suffix))
            .filter_map(|(_, s)| s.shape())
            .fold(None, |best: Option<(Vec<f64>, f64)>, u| match best {
                Some(b) if b.1 >= u.1 => Some(b),
                _ => Some(u),
            })
    }

    /// The version of the chain priors held.
    pub fn chain_version(&self) -> Option<u64> {
        self.chain.as_ref().map(|c| c.version)
    }

    /// Keep only the series `keep` accepts (the configured sources, lines and zones).
    pub fn retain(&mut self, keep: impl Fn(&str) -> bool) {
        self.series.retain(|k, _| keep(k));
    }

    pub fn len(&self) -> usize {
        self.series.len()
    }

    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    /// The next [`AHEAD`] hours after `now` and the rest of the local day after `now`'s hour,
    /// each value k-suppressed like a count (`per` divides, e.g. 3600 for mean occupancy).
    pub fn outlook(
        &self,
        source: &str,
        id: &str,
        m: Measure,
        now: LocalHour,
        k_min: u32,
    ) -> SeriesForecast {
        let f = |h: LocalHour| self.forecast(source, id, m, h);
        let publish = |v: f64| {
            let v = round3(v);
            match m {
                Measure::PersonSeconds => Some(round3(v / 3600.0)),
                _ => suppress(v.round() as u32, k_min).map(|_| (v * 10.0).round() / 10.0),
            }
        };
        let next: Vec<Option<f64>> = (1..=AHEAD as i64)
            .map(|h| f(now.plus(h)).and_then(publish))
            .collect();
        let rest_hours = 23 - i64::from(now.hour_of_day());
        let rest: Option<f64> = (1..=rest_hours).map(|h| f(now.plus(h))).sum();
        SeriesForecast {
            next_hours: next,
            rest_of_today: match m {
                Measure::PersonSeconds => None,
                _ if rest_hours == 0 => Some(0.0),
                _ => rest.and_then(publish),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A week of a shop: 0 at night, `peak` at 12:00, ramping.
    fn shop(hour_of_day: u16, peak: f64) -> f64 {
        match hour_of_day {
            8..=19 => peak * (1.0 - (f64::from(hour_of_day) - 13.5).abs() / 7.0),
            _ => 0.0,
        }
    }

    #[test]
    fn a_book_forecasts_footfall_with_the_chain_priors_and_keeps_only_newer_ones() {
        // A shop open 8-20, seen for two days (a Monday and a Tuesday).
        let mut book = ForecastBook::default();
        let monday = 4 * 24;
        for h in 0..48 {
            let at = LocalHour::from_index(monday + h);
            let v = shop(at.hour_of_day(), 40.0);
            book.add("door", "in", Measure::Crossings, at, v, 3_600_000);
            book.add("door", "z", Measure::PersonSeconds, at, v * 60.0, 3_600_000);
        }
        let saturday = LocalHour::from_index(monday + 5 * 24 + 12);
        let alone = book.forecast("door", "in", Measure::Crossings, saturday);
        // The chain knows that Saturdays are twice as busy.
        let shape: Vec<f64> = (0..WEEK)
            .map(|s| shop((s % 24) as u16, 1.0) * if s / 24 == 5 { 2.0 } else { 1.0 } + 0.01)
            .collect();
        let prior = Prior::new(shape).expect("prior");
        assert!(book.set_chain(ChainPriors {
            version: 3,
            priors: vec![prior.clone()],
        }));
        let with = book.forecast("door", "in", Measure::Crossings, saturday);
        let (alone, with) = (alone.expect("own"), with.expect("with the prior"));
        assert!(with > 1.5 * alone, "{alone} → {with}");
        // Occupancy does not take the footfall prior.
        let occ = |b: &ForecastBook| b.forecast("door", "z", Measure::PersonSeconds, saturday);
        let mut plain = book.clone();
        plain.chain = None;
        assert_eq!(occ(&book), occ(&plain));
        // An older or the same version is not taken; the priors survive a save.
        let older = ChainPriors {
            version: 2,
            priors: vec![prior],
        };
        assert!(!book.set_chain(older));
        assert_eq!(book.chain_version(), Some(3));
        let saved: ForecastBook =
            serde_json::from_str(&serde_json::to_string(&book).unwrap()).unwrap();
        assert_eq!(saved, book);
        // A history saved before chain priors existed still reads.
        let old: ForecastBook = serde_json::from_str(r#"{"series":{}}"#).unwrap();
        assert_eq!(old.chain_version(), None);
    }

    /// Four weeks of a shop busy on weekdays (peak 100), quiet on Sundays (peak 20), with the
    /// Monday of the third week a public holiday as quiet as a Sunday; `cal` names it or not.
    fn holiday_weeks(cal: &Calendar) -> (ForecastBook, i64) {
        let mut book = ForecastBook::default();
        book.set_calendar(cal.clone());
        let monday = 4 * 24;
        let holiday_day = monday / 24 + 14;
        for h in 0..(4 * WEEK as i64) {
            let at = LocalHour::from_index(monday + h);
            let quiet = at.slot >= 6 * 24 || at.index.div_euclid(24) == holiday_day;
            let v = shop(at.hour_of_day(), if quiet { 20.0 } else { 100.0 });
            book.add("door", "in", Measure::Crossings, at, v, 3_600_000);
        }
        (book, holiday_day)
    }

    fn labour_day(days: &[i64]) -> Calendar {
        let days: Vec<vitrine_config::CalendarDay> = days
            .iter()
            .map(|&day| vitrine_config::CalendarDay {
                day,
                date: String::new(),
                name: "labour-day".into(),
                kind: vitrine_config::DayKind::Holiday,
            })
            .collect();
        Calendar::new(&days)
    }

    #[test]
    fn a_holiday_is_forecast_like_a_sunday_until_one_of_its_name_was_seen_then_like_that_one() {
        let monday = 4 * 24;
        let next_year = monday / 24 + 14 + 364;
        let (plain, _) = holiday_weeks(&Calendar::default());
        let noon = |day: i64| LocalHour::from_index(day * 24 + 12);
        let f = |b: &ForecastBook, at| b.forecast("door", "in", Measure::Crossings, at).unwrap();
        // Before any: a calendar naming next year's Labour Day forecasts it like a Sunday.
        let mut named = plain.clone();
        named.set_calendar(labour_day(&[next_year]));
        let (weekday, sunday) = (f(&plain, noon(next_year)), f(&named, noon(next_year)));
        assert!(weekday > 50.0 && sunday < 20.0, "{weekday} / {sunday}");
        // This year's named: next year's is forecast from it (quiet), not from the Sundays.
        let (book, _) = holiday_weeks(&labour_day(&[monday / 24 + 14, next_year]));
        let own = f(&book, noon(next_year));
        assert!((own - shop(12, 20.0)).abs() < 1.0, "{own}");
        assert!(book.series["door/in/crossings"]
            .named
            .contains_key("labour-day"));
        // ... and kept with the history.
        let saved: ForecastBook =
            serde_json::from_str(&serde_json::to_string(&book).unwrap()).unwrap();
        assert_eq!(saved.series, book.series);
    }

    #[test]
    fn a_named_day_does_not_teach_the_weekday() {
        let (plain, day) = holiday_weeks(&Calendar::default());
        let (named, _) = holiday_weeks(&labour_day(&[day]));
        // The Monday after the holiday's week, at noon.
        let at = LocalHour::from_index((day + 7) * 24 + 12);
        let f = |b: &ForecastBook| b.forecast("door", "in", Measure::Crossings, at).unwrap();
        let (taught, apart) = (f(&plain), f(&named));
        assert!(
            apart > taught + 10.0,
            "a quiet holiday pulls the Monday down: {taught} vs {apart}"
        );
        assert!((apart - shop(12, 100.0)).abs() < 1.0, "{apart}");
    }

    #[test]
    fn local_hours_know_the_weekday() {
        // 1970-01-01 00:00 was a Thursday: slot 3 * 24.
        assert_eq!(LocalHour::from_index(0).slot, 72);
        assert_eq!(LocalHour::from_index(4 * 24).slot, 0, "Monday 1970-01-05");
        assert_eq!(LocalHour::from_index(-1).slot, 71);
    }

    #[test]
    fn a_steady_weekly_pattern_is_forecast_closely_after_a_few_weeks() {
        let mut s = Series::default();
        let start = 4 * 24; // a Monday
        for i in 0..(3 * WEEK as i64) {
            let h = LocalHour::from_index(start + i);
            s.add_hour(h, shop(h.hour_of_day(), 100.0));
        }
        let next = LocalHour::from_index(start + 3 * WEEK as i64 + 12);
        s.add_hour(LocalHour::from_index(next.index - 12), 0.0);
        let f = s.forecast(next).unwrap();
        assert!((f - shop(12, 100.0)).abs() < 1.0, "forecast {f}");
    }

    #[test]
    fn a_busier_day_than_usual_lifts_the_next_hours_and_fades() {
        let mut s = Series::default();
        for i in 0..(2 * WEEK as i64) {
            let h = LocalHour::from_index(i);
            s.add_hour(h, 100.0);
        }
        for i in 0..3 {
            s.add_hour(LocalHour::from_index(2 * WEEK as i64 + i), 200.0);
        }
        // The last hour is learned once the next one opens.
        s.add(LocalHour::from_index(2 * WEEK as i64 + 3), 0.0, 0);
        let near = s
            .forecast(LocalHour::from_index(2 * WEEK as i64 + 3))
            .unwrap();
        let far = s
            .forecast(LocalHour::from_index(2 * WEEK as i64 + 30))
            .unwrap();
        assert!(
            near > 150.0 && far < near && far < 115.0,
            "near {near} far {far}"
        );
    }

    #[test]
    fn part_hours_are_scaled_and_thin_hours_are_not_learned() {
        let mut s = Series::default();
        // 40 minutes seen, 20 crossings: 30 per hour.
        s.add(LocalHour::from_index(10), 20.0, 2_400_000);
        // 10 minutes seen: not learned.
        s.add(LocalHour::from_index(11), 50.0, 600_000);
        s.add(LocalHour::from_index(12), 0.0, 0);
        assert_eq!(
            s.forecast(LocalHour::from_index(10 + WEEK as i64)),
            Some(30.0)
        );
        assert_eq!(s.forecast(LocalHour::from_index(11 + WEEK as i64)), None);
    }

    #[test]
    fn a_clock_set_back_does_not_mix_hours() {
        let mut s = Series::default();
        s.add(LocalHour::from_index(100), 10.0, HOUR_MS / 2);
        assert!(!s.add(LocalHour::from_index(90), 1000.0, HOUR_MS));
        s.add(LocalHour::from_index(100), 10.0, HOUR_MS / 2);
        s.add(LocalHour::from_index(101), 0.0, 0);
        assert_eq!(
            s.forecast(LocalHour::from_index(100 + WEEK as i64)),
            Some(20.0)
        );
    }

    #[test]
    fn the_book_survives_a_round_trip_and_is_bounded() {
        let mut b = ForecastBook::default();
        for i in 0..(MAX_SERIES + 10) {
            b.add(
                "cam",
                &format!("l{i}"),
                Measure::Crossings,
                LocalHour::from_index(0),
                1.0,
                HOUR_MS,
            );
        }
        assert_eq!(b.len(), MAX_SERIES);
        let text = serde_json::to_string(&b).unwrap();
        let back: ForecastBook = serde_json::from_str(&text).unwrap();
        assert_eq!(back, b);
        b.retain(|k| k.starts_with("cam/l1/"));
        assert_eq!(b.len(), 1);
    }

    #[test]
    fn small_forecasts_are_suppressed_like_counts() {
        let mut b = ForecastBook::default();
        for i in 0..(WEEK as i64 + 2) {
            let v = if i % 24 == 13 { 3.0 } else { 40.0 };
            b.add(
                "cam",
                "door",
                Measure::Crossings,
                LocalHour::from_index(i),
                v,
                HOUR_MS,
            );
        }
        // Now: 11:00 on the second Thursday; hours 12, 13, 14 ahead.
        let now = LocalHour::from_index(WEEK as i64 + 11);
        let o = b.outlook("cam", "door", Measure::Crossings, now, 5);
        assert_eq!(o.next_hours.len(), AHEAD);
        assert!(o.next_hours[0].is_some() && o.next_hours[1].is_none());
        assert!(o.rest_of_today.unwrap() > 300.0);
    }
}

/// The forecast payload's schema name (`signals/schema/forecast.v1.json`).
pub const FORECAST_SCHEMA: &str = "vitrine.forecast.v1";

/// A camera's forecast, published once an hour (retained: a consumer that connects later gets
/// the latest at once). `next_hours[i]` is the hour starting at `from` plus i hours.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForecastEvent {
    pub schema: String,
    pub device_id: String,
    pub store_id: String,
    pub source_id: String,
    pub seq: u64,
    /// `store/device/source/forecast/from-ms/seq`.
    pub idempotency_key: String,
    /// RFC 3339 (UTC): the start of the first forecast hour.
    pub from: String,
    /// The store's time zone the hours and "today" are taken in.
    pub timezone: String,
    pub k_min: u32,
    pub lines: Vec<crate::event::LineForecast>,
    pub zones: Vec<crate::event::ZoneForecast>,
}

impl ForecastBook {
    /// A camera's outlook after `now` for its `lines` and `zones`; `None` while nothing of it
    /// can be forecast yet.
    pub fn camera_outlook(
        &self,
        source: &str,
        lines: &[String],
        zones: &[String],
        now: LocalHour,
        k_min: u32,
    ) -> Option<(
        Vec<crate::event::LineForecast>,
        Vec<crate::event::ZoneForecast>,
    )> {
        let lf: Vec<_> = lines
            .iter()
            .map(|id| crate::event::LineForecast {
                id: id.clone(),
                crossings: self.outlook(source, id, Measure::Crossings, now, k_min),
            })
            .collect();
        let zf: Vec<_> = zones
            .iter()
            .map(|id| crate::event::ZoneForecast {
                id: id.clone(),
                visits: self.outlook(source, id, Measure::Visits, now, k_min),
                occupancy: self.outlook(source, id, Measure::PersonSeconds, now, k_min),
            })
            .collect();
        // Known when any series has history (a forecast suppressed as small is still one).
        let next = now.plus(1);
        let known = lines.iter().any(|id| {
            self.forecast(source, id, Measure::Crossings, next)
                .is_some()
        }) || zones
            .iter()
            .any(|id| self.forecast(source, id, Measure::Visits, next).is_some());
        known.then_some((lf, zf))
    }
}

impl ForecastEvent {
    pub fn new(
        meta: &crate::event::EventMeta<'_>,
        seq: u64,
        from_ms: u64,
        timezone: &str,
        lines: Vec<crate::event::LineForecast>,
        zones: Vec<crate::event::ZoneForecast>,
    ) -> ForecastEvent {
        ForecastEvent {
            schema: FORECAST_SCHEMA.to_string(),
            device_id: meta.device_id.to_string(),
            store_id: meta.store_id.to_string(),
            source_id: meta.source_id.to_string(),
            seq,
            idempotency_key: format!(
                "{}/{}/{}/forecast/{}/{}",
                meta.store_id, meta.device_id, meta.source_id, from_ms, seq
            ),
            from: crate::event::rfc3339(from_ms),
            timezone: timezone.to_string(),
            k_min: meta.k_min,
            lines,
            zones,
        }
    }
}

#[cfg(test)]
mod schema_tests {
    use super::*;
    use crate::event::EventMeta;

    #[test]
    fn forecast_events_match_the_published_schema() {
        let text = include_str!("../schema/forecast.v1.json");
        let v = jsonschema::validator_for(&serde_json::from_str(text).unwrap()).unwrap();
        let mut b = ForecastBook::default();
        for i in 0..(WEEK as i64 + 30) {
            let h = LocalHour::from_index(i);
            let v = f64::from(h.hour_of_day()) * 3.0;
            b.add("cam", "door", Measure::Crossings, h, v, HOUR_MS);
            b.add("cam", "promo", Measure::Visits, h, v / 2.0, HOUR_MS);
            b.add("cam", "promo", Measure::PersonSeconds, h, v * 60.0, HOUR_MS);
        }
        let now = LocalHour::from_index(WEEK as i64 + 29);
        let (lines, zones) = b
            .camera_outlook("cam", &["door".into()], &["promo".into()], now, 5)
            .unwrap();
        let meta = EventMeta {
            device_id: "box-1",
            store_id: "store.42",
            source_id: "cam",
            k_min: 5,
        };
        let ev = ForecastEvent::new(&meta, 3, 1_795_950_000_000, "Europe/Berlin", lines, zones);
        let ev = serde_json::to_value(ev).unwrap();
        let errors: Vec<String> = v.iter_errors(&ev).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{errors:?}\n{ev}");
        assert!(b
            .camera_outlook("other", &["door".into()], &[], now, 5)
            .is_none());
    }
}
