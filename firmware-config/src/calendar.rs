//! Validation of `[[calendar]]`: the days the traffic forecast must not take for ordinary ones —
//! public holidays and known events (a promotion, a parade, the days between Christmas and New
//! Year) — each with a name that recurs: days of the same name are forecast from each other
//! (this year's Christmas from last year's), and none of them is learned into the ordinary
//! week. Sent by the central side like any setting (remote configuration), or written here.

use std::path::Path;

use crate::error::{Collector, ConfigErrors, Problem};
use crate::item::{check_id, item};
use crate::raw::RawCalendarDay;

pub(crate) const KEYS: &[&str] = &["date", "name", "kind"];

/// At most this many days (several years of a country's holidays and a chain's events).
pub const MAX_DAYS: usize = 1000;
/// At most this many distinct names (each is a 24-hour profile per forecast series).
pub const MAX_NAMES: usize = 64;

/// What a named day is like before the box has seen one of its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DayKind {
    /// A public holiday: like a Sunday until the box has seen one of this name.
    Holiday,
    /// A known event: like the same weekday until the box has seen one of this name.
    Event,
}

/// One named day of the store's calendar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalendarDay {
    /// Days since 1970-01-01 (the store's local date).
    pub day: i64,
    /// The date as written (`YYYY-MM-DD`).
    pub date: String,
    pub name: String,
    pub kind: DayKind,
}

/// Days since 1970-01-01 of a `YYYY-MM-DD` date; `None` unless it is a real date.
pub fn day_number(date: &str) -> Option<i64> {
    let d: jiff::civil::Date = date.parse().ok()?;
    if date.len() != 10 {
        return None;
    }
    let (y, m, d) = (
        i64::from(d.year()),
        i64::from(d.month()),
        i64::from(d.day()),
    );
    // Howard Hinnant's days_from_civil.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

pub(crate) fn validate(c: &mut Collector, items: Vec<toml::Value>) -> Vec<CalendarDay> {
    if items.len() > MAX_DAYS {
        c.push(
            "calendar",
            format!("{} days listed, at most {MAX_DAYS}", items.len()),
            Some("keep the coming year's days and the past year's (the box learns a name from its last occurrence)".to_string()),
        );
        return Vec::new();
    }
    let mut days: Vec<CalendarDay> = Vec::new();
    for (i, v) in items.into_iter().enumerate() {
        let at = format!("calendar[{i}]");
        let Some(raw) = item::<RawCalendarDay>(c, &at, v, KEYS) else {
            continue;
        };
        if let Some(d) = one(c, &at, raw) {
            if days.iter().any(|o| o.day == d.day) {
                c.push(
                    format!("{at}.date"),
                    "this date is listed twice".to_string(),
                    Some(
                        "give each date one name (a holiday during an event: the holiday)"
                            .to_string(),
                    ),
                );
            }
            days.push(d);
        }
    }
    let mut names: Vec<&str> = days.iter().map(|d| d.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    if names.len() > MAX_NAMES {
        c.push(
            "calendar",
            format!("{} distinct names, at most {MAX_NAMES}", names.len()),
            Some("name recurring days alike (\"christmas\" every year), not by date".to_string()),
        );
    }
    for n in &names {
        let kinds: Vec<DayKind> = days
            .iter()
            .filter(|d| d.name == *n)
            .map(|d| d.kind)
            .collect();
        if kinds.windows(2).any(|w| w[0] != w[1]) {
            c.push(
                "calendar",
                format!("{n:?} is both a holiday and an event"),
                Some("give every day of one name the same kind".to_string()),
            );
        }
    }
    days.sort_by_key(|d| d.day);
    days
}

/// A file of `[[calendar]]` days only (a country's holidays and a chain's events as the central
/// side keeps them; `vitrine-lab eval federated --calendar` reads one), validated like the
/// section of `agent.toml`.
pub fn load(path: &Path) -> Result<Vec<CalendarDay>, ConfigErrors> {
    let fail = |problems: Vec<Problem>| ConfigErrors {
        file: path.to_path_buf(),
        problems,
    };
    let text = std::fs::read_to_string(path).map_err(|e| {
        fail(vec![Problem {
            field: "(file)".into(),
            line: None,
            message: format!("cannot read the file: {e}"),
            hint: Some("check the path and the file's permissions".into()),
        }])
    })?;
    let mut c = Collector::default();
    let days = match text.parse::<toml::Table>() {
        Ok(mut t) => {
            let days = match t.remove("calendar") {
                Some(toml::Value::Array(a)) => validate(&mut c, a),
                _ => {
                    c.push(
                        "calendar",
                        "no [[calendar]] days".to_string(),
                        Some(
                            "write each day as a [[calendar]] table with date, name and kind"
                                .to_string(),
                        ),
                    );
                    Vec::new()
                }
            };
            for k in t.keys() {
                c.push(
                    k.clone(),
                    format!("unknown key `{k}`"),
                    Some("a calendar file holds [[calendar]] tables only".to_string()),
                );
            }
            days
        }
        Err(e) => {
            c.push(
                "(syntax)",
                e.message().to_string(),
                Some("this is not valid TOML".to_string()),
            );
            Vec::new()
        }
    };
    if c.problems.is_empty() {
        Ok(days)
    } else {
        crate::locate::add_lines(&text, &mut c.problems);
        Err(fail(c.problems))
    }
}

fn one(c: &mut Collector, at: &str, raw: RawCalendarDay) -> Option<CalendarDay> {
    let day = day_number(&raw.date);
    if day.is_none() {
        c.push(
            format!("{at}.date"),
            format!("{:?} is not a date", raw.date),
            Some("write the store's local date as YYYY-MM-DD, e.g. \"2026-12-25\"".to_string()),
        );
    }
    check_id(c, &format!("{at}.name"), &raw.name);
    let kind = match raw.kind.as_deref() {
        None | Some("holiday") => Some(DayKind::Holiday),
        Some("event") => Some(DayKind::Event),
        Some(other) => {
            c.push(
                format!("{at}.kind"),
                format!("unknown kind {other:?}"),
                Some("holiday (forecast like a Sunday until one of its name was seen) or event (like the same weekday until then)".to_string()),
            );
            None
        }
    };
    Some(CalendarDay {
        day: day?,
        date: raw.date,
        name: raw.name,
        kind: kind?,
    })
}

#[cfg(test)]
mod tests {
    // Test code: a failed unwrap is a failed test.
    #![allow(clippy::unwrap_used)]
    use super::*;

    const BASE: &str = "[device]\nid = \"box\"\nstore_id = \"s\"\n\
        [[cameras]]\nid = \"door\"\nrtsp = \"rtsp://10.0.0.5/door\"\n\
        [outbox]\ndir = \"/tmp/o\"\n";

    fn parse(days: &str) -> Result<crate::Config, crate::ConfigErrors> {
        crate::Config::parse(
            &format!("{BASE}{days}"),
            Path::new("/etc/vitrine/agent.toml"),
        )
    }

    #[test]
    fn named_days_are_read_in_date_order_and_holiday_is_the_default_kind() {
        let c = parse(
            "[[calendar]]\ndate = \"2026-12-31\"\nname = \"new-years-eve\"\nkind = \"event\"\n\
             [[calendar]]\ndate = \"2026-12-25\"\nname = \"christmas-day\"\n",
        )
        .unwrap();
        let got: Vec<(i64, &str, DayKind)> = c
            .calendar
            .iter()
            .map(|d| (d.day, d.name.as_str(), d.kind))
            .collect();
        let (xmas, nye) = (
            day_number("2026-12-25").unwrap(),
            day_number("2026-12-31").unwrap(),
        );
        assert_eq!(
            got,
            vec![
                (xmas, "christmas-day", DayKind::Holiday),
                (nye, "new-years-eve", DayKind::Event)
            ]
        );
        assert!(parse("").unwrap().calendar.is_empty());
    }

    #[test]
    fn a_wrong_calendar_names_every_field_and_its_fix() {
        let e = parse(
            "[[calendar]]\ndate = \"2026-02-30\"\nname = \"x\"\n\
             [[calendar]]\ndate = \"2026-12-25\"\nname = \"christmas day\"\nkind = \"feast\"\n\
             [[calendar]]\ndate = \"2026-12-26\"\nname = \"boxing-day\"\n\
             [[calendar]]\ndate = \"2026-12-26\"\nname = \"sale\"\nkind = \"event\"\nwhen = 1\n",
        )
        .unwrap_err();
        let text = e.to_string();
        for (field, fix) in [
            ("calendar[0].date", "YYYY-MM-DD"),
            ("calendar[1].name", "1-64 characters"),
            ("calendar[1].kind", "holiday (forecast like a Sunday"),
            ("calendar[3].when", "accepted keys here: date, name, kind"),
        ] {
            assert!(
                text.contains(field) && text.contains(fix),
                "{field}: {text}"
            );
        }
        let twice = parse(
            "[[calendar]]\ndate = \"2026-12-26\"\nname = \"boxing-day\"\n\
             [[calendar]]\ndate = \"2026-12-26\"\nname = \"sale\"\nkind = \"event\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            twice.contains("calendar[1].date") && twice.contains("listed twice"),
            "{twice}"
        );
        let mixed = parse(
            "[[calendar]]\ndate = \"2025-12-26\"\nname = \"boxing-day\"\n\
             [[calendar]]\ndate = \"2026-12-26\"\nname = \"boxing-day\"\nkind = \"event\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(mixed.contains("both a holiday and an event"), "{mixed}");
    }

    #[test]
    fn the_backtests_calendars_are_valid() {
        let eval = Path::new(env!("CARGO_MANIFEST_DIR")).join("../eval");
        let holidays = load(&eval.join("nz-holidays.toml")).unwrap();
        let events = load(&eval.join("nz-events.toml")).unwrap();
        assert!(holidays.len() >= 7 * 11 && events.len() >= 7 * 3);
        assert!(holidays
            .iter()
            .all(|h| events.iter().all(|e| e.day != h.day)));
        let bad =
            std::env::temp_dir().join(format!("vitrine-calendar-{}.toml", std::process::id()));
        std::fs::write(
            &bad,
            "[[calendar]]\ndate = \"2026-13-01\"\nname = \"x\"\n[device]\n",
        )
        .unwrap();
        let e = load(&bad).unwrap_err().to_string();
        std::fs::remove_file(&bad).ok();
        assert!(
            e.contains("calendar[0].date") && e.contains("unknown key `device`"),
            "{e}"
        );
    }

    #[test]
    fn dates_count_days_from_the_epoch_and_only_real_dates_do() {
        assert_eq!(day_number("1970-01-01"), Some(0));
        assert_eq!(day_number("2019-01-01"), Some(17_897));
        assert_eq!(day_number("2000-03-01"), Some(11_017));
        assert_eq!(day_number("2025-02-29"), None);
        assert_eq!(day_number("2025-13-01"), None);
        assert_eq!(day_number("25-12-25"), None);
        assert_eq!(day_number("christmas"), None);
    }
}
