//! The clocks: wall time for stamping events, a monotonic clock for heartbeats and timeouts,
//! and [`ClockWatch`], the pure decision whether the wall clock is plausible and when it was
//! stepped. A leaf: nothing else in the crate is imported here.

use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch on the wall clock (0 if the clock is before 1970).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Milliseconds on a monotonic clock since the process started (heartbeats use it: wall-clock
/// jumps must not look like stalls).
pub fn mono_ms() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_millis() as u64
}

/// Wall-clock times before this are not trusted (a box without a real-time clock boots in
/// 1970 until NTP answers): 2026-01-01T00:00:00Z, no earlier than this release was built.
pub const PLAUSIBLE_FLOOR_MS: u64 = 1_767_225_600_000;

/// A change of (wall − monotonic) larger than this is a step of the wall clock (NTP slews
/// far less; a step is a boot-time sync, an RTC correction or a manual `date`).
pub const STEP_MS: i64 = 2_000;

pub fn plausible(wall_ms: u64) -> bool {
    wall_ms >= PLAUSIBLE_FLOOR_MS
}

/// A step of the wall clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockStep {
    /// How far the wall clock moved relative to the monotonic clock, ms (negative: back).
    pub by_ms: i64,
    /// Whether the wall clock was plausible before the step, and is after it.
    pub was_plausible: bool,
    pub plausible: bool,
}

/// Watches the wall clock against the monotonic clock; takes both readings as arguments.
#[derive(Debug, Clone)]
pub struct ClockWatch {
    offset_ms: i64,
    plausible: bool,
}

impl ClockWatch {
    pub fn new(wall_ms: u64, mono_ms: u64) -> ClockWatch {
        ClockWatch {
            offset_ms: wall_ms as i64 - mono_ms as i64,
            plausible: plausible(wall_ms),
        }
    }

    pub fn plausible(&self) -> bool {
        self.plausible
    }

    /// A new pair of readings: `Some` when the wall clock was stepped since the last one.
    pub fn observe(&mut self, wall_ms: u64, mono_ms: u64) -> Option<ClockStep> {
        let offset = wall_ms as i64 - mono_ms as i64;
        let by_ms = offset - self.offset_ms;
        if by_ms.abs() <= STEP_MS {
            // Slewing (NTP's gentle corrections) is followed, never accumulated into a step.
            self.offset_ms = offset;
            return None;
        }
        let step = ClockStep {
            by_ms,
            was_plausible: self.plausible,
            plausible: plausible(wall_ms),
        };
        self.offset_ms = offset;
        self.plausible = step.plausible;
        Some(step)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = PLAUSIBLE_FLOOR_MS + 400 * 86_400_000;

    #[test]
    fn a_box_booting_in_1970_is_implausible_until_ntp_steps_the_clock() {
        let mut w = ClockWatch::new(5_000, 1_000);
        assert!(!w.plausible());
        assert_eq!(w.observe(6_000, 2_000), None, "time runs, no step");
        let step = w.observe(NOW, 3_000).expect("a step");
        assert_eq!(step.by_ms, NOW as i64 - 3_000 - 4_000);
        assert!(!step.was_plausible && step.plausible);
        assert!(w.plausible());
    }

    #[test]
    fn slewing_is_not_a_step_and_a_step_back_is() {
        let mut w = ClockWatch::new(NOW, 0);
        assert_eq!(w.observe(NOW + 10_500, 10_000), None, "500 ms of slew");
        let back = w
            .observe(NOW + 20_000 - 30_000, 20_000)
            .expect("a step back");
        assert_eq!(back.by_ms, -30_500);
        assert!(back.was_plausible && back.plausible);
        assert_eq!(
            w.observe(NOW - 10_000 + 1_000, 21_000),
            None,
            "measured from the new offset"
        );
    }
}

/// The store's local time: hours and days of the traffic forecast are the store's, daylight
/// saving included (the IANA database of the box, `/usr/share/zoneinfo`).
#[derive(Debug, Clone)]
pub struct StoreClock {
    tz: jiff::tz::TimeZone,
    name: String,
}

impl StoreClock {
    /// The configured zone (validated), else the box's own; UTC if neither can be read.
    pub fn new(timezone: Option<&str>) -> StoreClock {
        let tz = match timezone {
            Some(name) => jiff::tz::TimeZone::get(name).ok(),
            None => jiff::tz::TimeZone::try_system().ok(),
        };
        let tz = tz.unwrap_or(jiff::tz::TimeZone::UTC);
        let name = tz.iana_name().unwrap_or("UTC").to_string();
        StoreClock { tz, name }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The local hour a Unix time (ms) falls in.
    pub fn local_hour(&self, unix_ms: u64) -> vitrine_signals::forecast::LocalHour {
        let index = jiff::Timestamp::from_millisecond(unix_ms as i64)
            .map(|t| {
                let offset = self.tz.to_offset(t).seconds() as i64;
                (unix_ms as i64 / 1000 + offset).div_euclid(3600)
            })
            .unwrap_or((unix_ms / 3_600_000) as i64);
        vitrine_signals::forecast::LocalHour::from_index(index)
    }

    /// The store's local day and minute of day at a Unix time (ms).
    pub fn local_time(&self, unix_ms: u64) -> vitrine_signals::occupancy::LocalTime {
        let offset = jiff::Timestamp::from_millisecond(unix_ms as i64)
            .map(|t| self.tz.to_offset(t).seconds() as i64)
            .unwrap_or(0);
        let local_min = (unix_ms as i64 / 1000 + offset).div_euclid(60);
        vitrine_signals::occupancy::LocalTime {
            day: local_min.div_euclid(24 * 60),
            minute: local_min.rem_euclid(24 * 60) as u32,
        }
    }

    /// The Unix time (ms) the local hour after the one of `unix_ms` starts.
    pub fn next_hour_ms(&self, unix_ms: u64) -> u64 {
        let index = self.local_hour(unix_ms).index;
        // The offset of the next hour is that of a time an hour on (exact outside the one
        // hour a year whose offset changes; there it is off by that hour's shift).
        let probe = unix_ms + 3_600_000;
        let offset = jiff::Timestamp::from_millisecond(probe as i64)
            .map(|t| self.tz.to_offset(t).seconds() as i64)
            .unwrap_or(0);
        (((index + 1) * 3600 - offset) * 1000).max(0) as u64
    }
}

#[cfg(test)]
mod store_clock_tests {
    use super::*;

    #[test]
    fn local_hours_follow_the_store_zone_and_daylight_saving() {
        let berlin = StoreClock::new(Some("Europe/Berlin"));
        // 2026-07-01T10:30Z is 12:30 in Berlin (CEST, +2), a Wednesday: slot 2*24+12.
        let summer = 1_782_901_800_000;
        assert_eq!(berlin.local_hour(summer).slot, 2 * 24 + 12);
        assert_eq!(
            berlin.next_hour_ms(summer),
            1_782_903_600_000,
            "11:00Z = 13:00 CEST"
        );
        // 2026-12-02T10:30Z is 11:30 in Berlin (CET, +1), a Wednesday.
        let winter = 1_796_207_400_000;
        assert_eq!(berlin.local_hour(winter).slot, 2 * 24 + 11);
        let utc = StoreClock::new(Some("UTC"));
        assert_eq!(utc.local_hour(winter).slot, 2 * 24 + 10);
        assert_eq!(utc.name(), "UTC");
        // 12:30 CEST on 2026-07-01, 11:30 CET on 2026-12-02; local days run from local midnight.
        assert_eq!(berlin.local_time(summer).minute, 12 * 60 + 30);
        assert_eq!(berlin.local_time(winter).minute, 11 * 60 + 30);
        let before_midnight = berlin.local_time(1_782_856_740_000); // 21:59Z = 23:59 CEST
        let after_midnight = berlin.local_time(1_782_856_860_000); // 22:01Z = 00:01 CEST
        assert_eq!(after_midnight.day, before_midnight.day + 1);
        assert_eq!(after_midnight.minute, 1);
    }
}
