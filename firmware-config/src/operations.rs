//! Validation of the store-operations settings of a camera: queues, the heatmap, the funnel and
//! alerts (their references to the camera's lines and areas are checked here), and the store's
//! time zone.

use crate::error::Collector;
use std::collections::HashSet;

use crate::item::item;
use crate::raw::{RawAlert, RawFunnel, RawHeatmap, RawQueue, RawStaff};
use crate::validate::{area, polygon_area_of, unique};
use crate::{AlertOn, AlertRule, Funnel, Heatmap, Point, Queue, Staff, StageAt};

pub(crate) const QUEUE_KEYS: &[&str] = &["id", "polygon", "service", "abandon_secs"];
pub(crate) const HEATMAP_KEYS: &[&str] = &["cols", "rows"];
pub(crate) const STAFF_KEYS: &[&str] = &["areas", "dwell_minutes"];

/// Longest `dwell_minutes` of the staff rule (a shift).
pub const MAX_STAFF_DWELL_MINUTES: f64 = 12.0 * 60.0;
/// Shortest: below it, shoppers who browse become staff.
pub const MIN_STAFF_DWELL_MINUTES: f64 = 5.0;
pub(crate) const FUNNEL_KEYS: &[&str] =
    &["passed", "entered", "engaged", "engaged_secs", "checkout"];
pub(crate) const ALERT_KEYS: &[&str] = &[
    "id",
    "line",
    "zone",
    "queue",
    "above",
    "forecast_factor",
    "clear_below",
    "hold_secs",
    "min_interval_secs",
];

/// Most alerts per camera (each is a small state machine evaluated on every frame).
pub const MAX_ALERTS: usize = 16;

/// The ids a camera's funnel and alerts may refer to.
pub(crate) struct Geometry {
    pub lines: Vec<String>,
    /// Zones, display areas and queue waiting areas.
    pub areas: Vec<String>,
    pub queues: Vec<String>,
    /// k-anonymity's threshold: a count alert's threshold may not be below it.
    pub k_min: u32,
}

impl Geometry {
    fn known(&self) -> String {
        let all: Vec<&str> = self
            .lines
            .iter()
            .chain(&self.areas)
            .map(String::as_str)
            .collect();
        if all.is_empty() {
            "this camera has no lines, zones, displays or queues yet".to_string()
        } else {
            format!("this camera has: {}", all.join(", "))
        }
    }
}

pub(crate) fn queue(c: &mut Collector, at: &str, v: toml::Value) -> Option<Queue> {
    let raw: RawQueue = item(c, at, v, QUEUE_KEYS)?;
    let abandon = raw.abandon_secs.unwrap_or(10.0);
    if !(1.0..=3600.0).contains(&abandon) {
        c.push(
            format!("{at}.abandon_secs"),
            format!("{abandon} s is out of range"),
            Some("someone who waited this long and left unserved abandoned the queue: 1 to 3600 s (10 is the default)".to_string()),
        );
    }
    let service = polygon_area_of(c, &format!("{at}.service"), raw.id.clone(), raw.service);
    let area = polygon_area_of(c, at, raw.id, raw.polygon);
    let service: Vec<Point> = service?.polygon;
    Some(Queue {
        area: area?,
        service,
        abandon_secs: abandon as f32,
    })
}

pub(crate) fn heatmap(c: &mut Collector, at: &str, v: toml::Value) -> Option<Heatmap> {
    let raw: RawHeatmap = item(c, at, v, HEATMAP_KEYS)?;
    let mut dim = |key: &str, v: Option<i64>, default: i64| {
        let n = v.unwrap_or(default);
        if !(2..=64).contains(&n) {
            c.push(
                format!("{at}.{key}"),
                format!("{n} cells is out of range"),
                Some("use 2 to 64 cells (16 across and 12 down is the default)".to_string()),
            );
            return None;
        }
        Some(n as u32)
    };
    let cols = dim("cols", raw.cols, 16);
    let rows = dim("rows", raw.rows, 12);
    Some(Heatmap {
        cols: cols?,
        rows: rows?,
    })
}

/// `[cameras.staff]`: staff-only areas and/or a dwell rule (their ids share the camera's
/// namespace of zone, line, display and queue ids, `seen`).
pub(crate) fn staff(
    c: &mut Collector,
    at: &str,
    v: toml::Value,
    seen: &mut HashSet<String>,
) -> Option<Staff> {
    let raw: RawStaff = item(c, at, v, STAFF_KEYS)?;
    let mut areas = Vec::new();
    for (i, a) in raw.areas.into_iter().enumerate() {
        let aat = format!("{at}.areas[{i}]");
        if let Some(a) = area(c, &aat, a) {
            unique(
                c,
                seen,
                format!("{aat}.id"),
                &a.id,
                "zone/line/display/queue/staff area",
            );
            areas.push(a);
        }
    }
    let dwell_secs = match raw.dwell_minutes {
        None => None,
        Some(m) if (MIN_STAFF_DWELL_MINUTES..=MAX_STAFF_DWELL_MINUTES).contains(&m) => {
            Some((m * 60.0) as f32)
        }
        Some(m) => {
            c.push(
                format!("{at}.dwell_minutes"),
                format!("{m} minutes is out of range"),
                Some(format!(
                    "someone in view longer than this is staff: {MIN_STAFF_DWELL_MINUTES}..{MAX_STAFF_DWELL_MINUTES} minutes \
                     (shorter makes browsing shoppers staff); leave it out to use staff areas only"
                )),
            );
            None
        }
    };
    if areas.is_empty() && raw.dwell_minutes.is_none() {
        c.push(
            at,
            "a staff rule needs staff areas or dwell_minutes".to_string(),
            Some(
                "add areas = [{ id = \"behind-till\", polygon = [[x, y], ...] }] (where only staff \
                 stand) and/or dwell_minutes = 45, or remove [cameras.staff]"
                    .to_string(),
            ),
        );
        return None;
    }
    Some(Staff { areas, dwell_secs })
}

/// A stage: a line id (crossed inwards) or an area id.
fn stage(c: &mut Collector, field: &str, id: &str, g: &Geometry) -> Option<StageAt> {
    if g.lines.iter().any(|l| l == id) {
        Some(StageAt::Line(id.to_string()))
    } else if g.areas.iter().any(|a| a == id) {
        Some(StageAt::Area(id.to_string()))
    } else {
        c.push(
            field,
            format!("{id:?} is not a line, zone, display or queue of this camera"),
            Some(g.known()),
        );
        None
    }
}

pub(crate) fn funnel(c: &mut Collector, at: &str, v: toml::Value, g: &Geometry) -> Option<Funnel> {
    let raw: RawFunnel = item(c, at, v, FUNNEL_KEYS)?;
    let passed = raw
        .passed
        .as_ref()
        .map(|p| stage(c, &format!("{at}.passed"), p, g));
    let entered = stage(c, &format!("{at}.entered"), &raw.entered, g);
    let checkout = stage(c, &format!("{at}.checkout"), &raw.checkout, g);
    let mut engaged = Vec::new();
    for (i, e) in raw.engaged.iter().enumerate() {
        if g.areas.contains(e) {
            engaged.push(e.clone());
        } else {
            c.push(
                format!("{at}.engaged[{i}]"),
                format!("{e:?} is not a zone, display or queue of this camera"),
                Some(format!("engaging means staying in an area; {}", g.known())),
            );
        }
    }
    if raw.engaged.is_empty() {
        c.push(
            format!("{at}.engaged"),
            "no area to engage in".to_string(),
            Some("list the zones or displays where staying counts as engaging, e.g. engaged = [\"promo\"]".to_string()),
        );
    }
    let secs = raw.engaged_secs.unwrap_or(10.0);
    if !(1.0..=3600.0).contains(&secs) {
        c.push(
            format!("{at}.engaged_secs"),
            format!("{secs} s is out of range"),
            Some("how long a stay counts as engaging: 1 to 3600 s (10 is the default)".to_string()),
        );
    }
    if raw.engaged.len() != engaged.len() {
        return None;
    }
    Some(Funnel {
        passed: match passed {
            Some(p) => Some(p?),
            None => None,
        },
        entered: entered?,
        engaged,
        engaged_secs: secs as f32,
        checkout: checkout?,
    })
}

/// What the alert watches: exactly one of `line`, `zone`, `queue`, and it must exist.
fn watched(c: &mut Collector, at: &str, raw: &RawAlert, g: &Geometry) -> Option<AlertOn> {
    let given = [&raw.line, &raw.zone, &raw.queue]
        .iter()
        .filter(|v| v.is_some())
        .count();
    if given != 1 {
        c.push(
            at,
            format!("an alert watches exactly one of line, zone or queue; found {given}"),
            Some("set line = \"door\" (crossings per minute), zone = \"promo\" (people inside) or queue = \"till\" (estimated wait, s)".to_string()),
        );
        return None;
    }
    let check = |c: &mut Collector, key: &str, id: &str, among: &[String], what: &str| {
        if among.iter().any(|x| x == id) {
            true
        } else {
            c.push(
                format!("{at}.{key}"),
                format!("{id:?} is not a {what} of this camera"),
                Some(g.known()),
            );
            false
        }
    };
    if let Some(l) = &raw.line {
        check(c, "line", l, &g.lines, "line").then(|| AlertOn::LineRate(l.clone()))
    } else if let Some(z) = &raw.zone {
        check(c, "zone", z, &g.areas, "zone, display or queue")
            .then(|| AlertOn::Occupancy(z.clone()))
    } else {
        let q = raw.queue.clone().unwrap_or_default();
        let ok = check(c, "queue", &q, &g.queues, "queue");
        ok.then_some(AlertOn::QueueWait(q))
    }
}

pub(crate) fn alert(
    c: &mut Collector,
    at: &str,
    v: toml::Value,
    g: &Geometry,
) -> Option<AlertRule> {
    let raw: RawAlert = item(c, at, v, ALERT_KEYS)?;
    crate::item::check_id(c, &format!("{at}.id"), &raw.id);
    let on = watched(c, at, &raw, g);
    if raw.above.is_none() && raw.forecast_factor.is_none() {
        c.push(
            at,
            "the alert has no trigger".to_string(),
            Some("set above = N (a fixed threshold), forecast_factor = F (F times the forecast), or both".to_string()),
        );
    }
    let count = raw.line.is_some() || raw.zone.is_some();
    if let (true, Some(above)) = (count, raw.above) {
        if above < f64::from(g.k_min) {
            c.push(
                format!("{at}.above"),
                format!("the threshold {above} is below privacy.k_min = {}", g.k_min),
                Some(format!(
                    "an alert publishes the count that raised it; use above >= {} (k-anonymity)",
                    g.k_min
                )),
            );
        }
    }
    if raw.queue.is_some() && raw.forecast_factor.is_some() {
        c.push(
            format!("{at}.forecast_factor"),
            "queue waits have no forecast".to_string(),
            Some("use above = N seconds for a queue's wait".to_string()),
        );
    }
    let mut positive = |key: &str, v: Option<f64>, lo: f64, hi: f64, hint: &str| {
        if let Some(x) = v {
            if !(lo..=hi).contains(&x) {
                c.push(
                    format!("{at}.{key}"),
                    format!("{x} is out of range"),
                    Some(hint.to_string()),
                );
            }
        }
    };
    positive("above", raw.above, 0.0, 1e6, "a threshold of 0 or more");
    positive(
        "forecast_factor",
        raw.forecast_factor,
        1.0,
        100.0,
        "how many times the forecast counts as a surge: 1 to 100 (1.5 is usual)",
    );
    positive(
        "clear_below",
        raw.clear_below,
        0.0,
        1e6,
        "a value of 0 or more",
    );
    positive(
        "hold_secs",
        raw.hold_secs,
        0.0,
        600.0,
        "how long the value must stay beyond the threshold: 0 to 600 s (2 is the default)",
    );
    positive(
        "min_interval_secs",
        raw.min_interval_secs,
        0.0,
        86_400.0,
        "the least time between two alerts of this rule: 0 to 86400 s (300 is the default)",
    );
    if let (Some(a), Some(b)) = (raw.above, raw.clear_below) {
        if b > a {
            c.push(
                format!("{at}.clear_below"),
                format!("clear_below = {b} is above the threshold {a}"),
                Some("clear_below must not exceed `above` (the gap is the hysteresis; leave it out for 80 % of `above`)".to_string()),
            );
        }
    }
    Some(AlertRule {
        id: raw.id,
        on: on?,
        above: raw.above,
        forecast_factor: raw.forecast_factor,
        clear_below: raw.clear_below,
        hold_secs: raw.hold_secs.unwrap_or(2.0) as f32,
        min_interval_secs: raw.min_interval_secs.unwrap_or(300.0) as f32,
    })
}

pub(crate) fn timezone(c: &mut Collector, field: &str, tz: &str) {
    if jiff::tz::TimeZone::get(tz).is_err() {
        c.push(
            field,
            format!("unknown time zone {tz:?}"),
            Some("use an IANA name such as \"Europe/Berlin\" (see /usr/share/zoneinfo; Debian package tzdata), or leave it out to use the box's own".to_string()),
        );
    }
}
