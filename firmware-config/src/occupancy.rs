//! Validation of `[occupancy]`: the store's entrances (lines of the configured cameras), its
//! capacity, opening and closing time, and the empty-scene rule.

use crate::error::Collector;
use crate::raw::RawOccupancy;
use crate::{Camera, Entrance, StoreOccupancy};

pub(crate) const KEYS: &[&str] = &[
    "entrances",
    "capacity",
    "opens",
    "closes",
    "empty_after_minutes",
];

/// Largest capacity accepted (a stadium is not a store).
pub const MAX_CAPACITY: i64 = 100_000;

pub(crate) fn validate(
    c: &mut Collector,
    raw: RawOccupancy,
    cameras: &[Camera],
    k_min: u32,
) -> Option<StoreOccupancy> {
    let at = "occupancy";
    if raw.entrances.is_empty() {
        c.push(
            format!("{at}.entrances"),
            "no entrance".to_string(),
            Some("list the store's entrance lines as \"camera/line\", e.g. entrances = [\"door/entrance\"]".to_string()),
        );
    }
    let mut entrances: Vec<Entrance> = Vec::new();
    for (i, e) in raw.entrances.iter().enumerate() {
        if let Some(e) = entrance(c, &format!("{at}.entrances[{i}]"), e, cameras) {
            if entrances.contains(&e) {
                c.push(
                    format!("{at}.entrances[{i}]"),
                    format!("{}/{} is listed twice", e.camera, e.line),
                    Some("list each entrance once".to_string()),
                );
            }
            entrances.push(e);
        }
    }
    let capacity = raw.capacity.and_then(|n| {
        let floor = i64::from(k_min.max(1));
        if (floor..=MAX_CAPACITY).contains(&n) {
            Some(n as u32)
        } else {
            c.push(
                format!("{at}.capacity"),
                format!("capacity {n} is out of range"),
                Some(format!(
                    "people allowed inside, {floor}..{MAX_CAPACITY} (at least k_min: a smaller count is never published)"
                )),
            );
            None
        }
    });
    let opens = raw
        .opens
        .as_deref()
        .map_or(Some(0), |t| time_of_day(c, &format!("{at}.opens"), t));
    let closes = raw
        .closes
        .as_deref()
        .and_then(|t| time_of_day(c, &format!("{at}.closes"), t));
    let empty_after_secs = raw.empty_after_minutes.and_then(|m| {
        if (5.0..=720.0).contains(&m) {
            Some((m * 60.0) as u32)
        } else {
            c.push(
                format!("{at}.empty_after_minutes"),
                format!("{m} minutes is out of range"),
                Some("5..720: nobody seen on any camera of the box this long means the store is empty; leave it out when the cameras do not see the whole floor".to_string()),
            );
            None
        }
    });
    Some(StoreOccupancy {
        entrances,
        capacity,
        opens_minute: opens?,
        closes_minute: closes,
        empty_after_secs,
    })
}

/// `"camera/line"`, both configured.
fn entrance(c: &mut Collector, at: &str, e: &str, cameras: &[Camera]) -> Option<Entrance> {
    let Some((cam, line)) = e.split_once('/') else {
        c.push(
            at,
            format!("{e:?} is not \"camera/line\""),
            Some("name the camera and its line, e.g. \"door/entrance\"".to_string()),
        );
        return None;
    };
    let Some(camera) = cameras.iter().find(|c| c.id == cam) else {
        let ids: Vec<&str> = cameras.iter().map(|c| c.id.as_str()).collect();
        c.push(
            at,
            format!("camera {cam:?} is not configured"),
            Some(format!("cameras: {}", ids.join(", "))),
        );
        return None;
    };
    if !camera.lines.iter().any(|l| l.id == line) {
        let ids: Vec<&str> = camera.lines.iter().map(|l| l.id.as_str()).collect();
        c.push(
            at,
            format!("camera {cam:?} has no line {line:?}"),
            Some(format!(
                "this camera has: {} (its `in` side must be the store's inside)",
                ids.join(", ")
            )),
        );
        return None;
    }
    Some(Entrance {
        camera: cam.to_string(),
        line: line.to_string(),
    })
}

/// `"HH:MM"` → minutes after midnight.
fn time_of_day(c: &mut Collector, at: &str, t: &str) -> Option<u32> {
    let parsed = t.split_once(':').and_then(|(h, m)| {
        let (h, m) = (h.parse::<u32>().ok()?, m.parse::<u32>().ok()?);
        (h < 24 && m < 60 && t.len() == 5).then_some(h * 60 + m)
    });
    if parsed.is_none() {
        c.push(
            at,
            format!("{t:?} is not a time of day"),
            Some("write it as \"HH:MM\", 24-hour, in the store's time zone ([device] timezone), e.g. \"08:30\"".to_string()),
        );
    }
    parsed
}
