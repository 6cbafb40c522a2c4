use super::*;
use crate::forecast::{LocalHour, Series};

/// A deterministic pseudo-random stream for the tests (no RNG crate in the pure core).
fn noise(seed: u64) -> impl FnMut() -> f64 {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn secret(a: u32, b: u32) -> [u8; 32] {
    let mut s = [0u8; 32];
    s[..4].copy_from_slice(&a.min(b).to_le_bytes());
    s[4..8].copy_from_slice(&a.max(b).to_le_bytes());
    s[8] = 0x5a;
    s
}

/// A store's week: busy weekday lunchtimes and Saturday afternoons, at its own volume.
fn store_week(volume: f64, seed: u64) -> Vec<f64> {
    let mut r = noise(seed);
    (0..WEEK)
        .map(|slot| {
            let (day, hour) = (slot / 24, slot % 24);
            let base = match hour {
                8..=20 => 1.0 + if (12..=13).contains(&hour) { 1.5 } else { 0.0 },
                _ => 0.05,
            };
            let weekend = if day == 5 {
                1.6
            } else if day == 6 {
                0.5
            } else {
                1.0
            };
            volume * base * weekend * (0.9 + 0.2 * r())
        })
        .collect()
}

fn learned(volume: f64, weeks: usize, seed: u64) -> Series {
    let mut s = Series::default();
    let start = 4 * 24; // a Monday
    let week = store_week(volume, seed);
    for i in 0..(weeks * WEEK) {
        s.add_hour(LocalHour::from_index((start + i) as i64), week[i % WEEK]);
    }
    s.add(LocalHour::from_index((start + weeks * WEEK) as i64), 0.0, 0);
    s
}

#[test]
fn a_prior_is_a_shape_of_mean_one_and_malformed_ones_are_refused() {
    let p = Prior::new(store_week(50.0, 1)).expect("shape");
    let mean = p.shape.iter().sum::<f64>() / WEEK as f64;
    assert!((mean - 1.0).abs() < 1e-9);
    assert!(Prior::new(vec![1.0; 10]).is_none(), "wrong length");
    assert!(Prior::new(vec![0.0; WEEK]).is_none(), "nobody ever");
    let mut nan = vec![1.0; WEEK];
    nan[3] = f64::NAN;
    assert!(Prior::new(nan).is_none());
}

#[test]
fn masked_updates_sum_to_the_clear_sum_and_a_dropped_box_is_unmasked_by_its_peers() {
    let boxes: Vec<(Vec<f64>, f64)> = (0..5)
        .map(|i| {
            let (shape, w) = learned(20.0 + 30.0 * i as f64, 3, i).shape().unwrap();
            (shape.iter().map(|v| v * w).collect(), w)
        })
        .collect();
    let ids: Vec<u32> = (1..=5).collect();
    let masked: Vec<Vec<u64>> = boxes
        .iter()
        .zip(&ids)
        .map(|((ws, w), me)| {
            let mut u = secagg::encode(ws, *w);
            let peers: Vec<(u32, [u8; 32])> = ids.iter().map(|p| (*p, secret(*me, *p))).collect();
            secagg::mask(*me, &mut u, &peers);
            u
        })
        .collect();
    // All five arrive: the masks cancel.
    let mut sum = vec![0u64; WEEK + 1];
    for m in &masked {
        secagg::add(&mut sum, m);
    }
    let (got, weight) = secagg::decode(&sum);
    let clear_weight: f64 = boxes.iter().map(|b| b.1).sum();
    assert!((weight - clear_weight).abs() < 1e-5);
    for (slot, g) in got.iter().enumerate() {
        let clear: f64 = boxes.iter().map(|b| b.0[slot]).sum();
        assert!((g - clear).abs() < 1e-4, "slot {slot}: {g} vs {clear}");
    }
    // Box 3 drops after masking: the four survivors reveal their secret with box 3 only.
    let mut sum = vec![0u64; WEEK + 1];
    for (m, id) in masked.iter().zip(&ids) {
        if *id != 3 {
            secagg::add(&mut sum, m);
        }
    }
    let revealed: Vec<(u32, u32, [u8; 32])> = ids
        .iter()
        .filter(|i| **i != 3)
        .map(|i| (*i, 3, secret(*i, 3)))
        .collect();
    secagg::unmask_dropped(&mut sum, &revealed);
    let (got, weight) = secagg::decode(&sum);
    let survivors: Vec<&(Vec<f64>, f64)> = boxes
        .iter()
        .zip(&ids)
        .filter(|(_, i)| **i != 3)
        .map(|(b, _)| b)
        .collect();
    assert!((weight - survivors.iter().map(|b| b.1).sum::<f64>()).abs() < 1e-5);
    let clear: f64 = survivors.iter().map(|b| b.0[40]).sum();
    assert!((got[40] - clear).abs() < 1e-4);
    let prior = Prior::from_sum(&got, weight).expect("prior");
    let reference = fedavg(
        &survivors
            .iter()
            .map(|b| (*b).clone())
            .map(|(ws, w)| (ws.iter().map(|v| v / w).collect(), w))
            .collect::<Vec<_>>(),
    )
    .expect("fedavg");
    for (a, b) in prior.shape.iter().zip(&reference.shape) {
        assert!((a - b).abs() < 1e-6);
    }
}

#[test]
fn a_curious_aggregator_cannot_read_one_box_from_its_masked_update() {
    // Two stores whose updates differ a lot (a night shop and a lunchtime one): what the
    // aggregator receives from either looks the same — uniform 64-bit words, uncorrelated with
    // the update, and no decoding of a single message lands near the truth.
    let night: Vec<f64> = (0..WEEK)
        .map(|s| if s % 24 < 6 { 5.0 } else { 0.1 })
        .collect();
    let lunch: Vec<f64> = store_week(10.0, 7);
    for (me, shape) in [(1u32, &night), (2u32, &lunch)] {
        let mut u = secagg::encode(shape, 3.0);
        let peers: Vec<(u32, [u8; 32])> = (1..=4).map(|p| (p, secret(me, p))).collect();
        secagg::mask(me, &mut u, &peers);
        let (decoded, w) = secagg::decode(&u);
        let near = decoded
            .iter()
            .zip(shape.iter())
            .filter(|(d, s)| (*d - *s).abs() < 1.0)
            .count();
        assert!(
            near == 0,
            "{near} of 168 values readable from one masked update"
        );
        assert!((w - 3.0).abs() > 1.0, "the weight is masked too");
        // Bits look uniform: about half of all bits set.
        let ones: u32 = u.iter().map(|x| x.count_ones()).sum();
        let share = f64::from(ones) / (64.0 * u.len() as f64);
        assert!((share - 0.5).abs() < 0.02, "bit share {share}");
        // The masked words do not follow the update's pattern (correlation near zero).
        let xs: Vec<f64> = u.iter().take(WEEK).map(|x| (*x >> 11) as f64).collect();
        let corr = correlation(&xs, shape);
        assert!(corr.abs() < 0.25, "correlation {corr}");
    }
}

fn correlation(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let cov: f64 = a.iter().zip(b).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let va: f64 = a.iter().map(|x| (x - ma).powi(2)).sum();
    let vb: f64 = b.iter().map(|y| (y - mb).powi(2)).sum();
    cov / (va.sqrt() * vb.sqrt()).max(1e-12)
}

#[test]
fn a_new_store_forecasts_its_first_week_better_with_the_chain_prior() {
    // The chain: four mature stores of different volumes, same weekly habits.
    let updates: Vec<(Vec<f64>, f64)> = (0..4)
        .map(|i| learned(30.0 + 40.0 * i as f64, 8, 10 + i).shape().unwrap())
        .collect();
    let prior = fedavg(&updates).expect("prior");
    // A new store has seen two days (Monday, Tuesday) at its own volume.
    let mut new = Series::default();
    let week = store_week(80.0, 99);
    let start = 4 * 24;
    for (i, v) in week.iter().take(48).enumerate() {
        new.add_hour(LocalHour::from_index((start + i) as i64), *v);
    }
    new.add(LocalHour::from_index(start as i64 + 48), 0.0, 0);
    // Saturday 13:00 this week: never seen by the new store.
    let sat = LocalHour::from_index(start as i64 + 5 * 24 + 13);
    let truth = week[5 * 24 + 13];
    let alone = new.forecast(sat).unwrap();
    let with = new.forecast_with(sat, Some(&prior)).unwrap();
    assert!(
        (with - truth).abs() < 0.5 * (alone - truth).abs(),
        "with the prior {with:.1}, alone {alone:.1}, truth {truth:.1}"
    );
    // A mature store barely moves: its own eight weeks weigh 6 against the prior's 2.
    let mature = learned(80.0, 8, 5);
    let own = mature.forecast(sat).unwrap();
    let blended = mature.forecast_with(sat, Some(&prior)).unwrap();
    assert!((own - blended).abs() < 0.15 * own, "{own} vs {blended}");
}

#[test]
fn states_saved_before_the_prior_count_as_mature() {
    let s = learned(40.0, 2, 3);
    let mut json = serde_json::to_value(&s).unwrap();
    json.as_object_mut().unwrap().remove("seen");
    let old: Series = serde_json::from_value(json).unwrap();
    let prior = Prior::new(vec![1.0; WEEK]).unwrap();
    let at = LocalHour::from_index(4 * 24 + 3 * WEEK as i64 + 12);
    let (own, blended) = (
        old.forecast(at).unwrap(),
        old.forecast_with(at, Some(&prior)).unwrap(),
    );
    // Capped weeks (6) against the prior's 2: at most a quarter of the way to the flat prior.
    assert!((own - blended).abs() <= 0.25 * (own - 40.0_f64).abs().max(own) + 1e-9);
}

mod rounds {
    use super::*;
    use crate::federated::round::{Aggregator, Announce, BoxRound, Chain, RoundError, Stage};
    use std::collections::BTreeSet;

    fn stores(n: u64) -> Vec<(Vec<f64>, f64)> {
        (0..n)
            .map(|i| learned(20.0 + 30.0 * i as f64, 1 + (i as usize % 4), i))
            .map(|s| s.shape().unwrap())
            .collect()
    }

    fn announce(round: u64, stage: Stage, n: u32, sigma: f64) -> Announce {
        Announce {
            round,
            stage,
            boxes: (0..n).collect(),
            sigma,
        }
    }

    /// One round over masked updates; `lost`: boxes whose update never arrives.
    fn play(
        a: &Announce,
        stores: &[(Vec<f64>, f64)],
        lost: &[u32],
    ) -> Result<Vec<f64>, RoundError> {
        let mut agg = Aggregator::new(a.clone());
        let mut sides = Vec::new();
        let mut normal = noise(9);
        for (i, (shape, w)) in stores.iter().enumerate() {
            let me = i as u32;
            let secret_with = |p: u32| secret(me, p);
            let (side, m) = BoxRound::mask(a, me, (shape, *w), &secret_with, &mut normal)?;
            if !lost.contains(&me) {
                agg.receive(&m)?;
                sides.push(side);
            }
        }
        let missing = agg.close();
        for side in &sides {
            let me = side.me();
            agg.reveal(&side.reveal(&missing, &|p| secret(me, p))?)?;
        }
        agg.finish()
    }

    fn clear(stage: &Stage, stores: &[(Vec<f64>, f64)], skip: &[u32]) -> Vec<f64> {
        let mut sum = vec![0.0; stage.len()];
        for (i, (shape, w)) in stores.iter().enumerate() {
            if !skip.contains(&(i as u32)) {
                for (s, u) in sum.iter_mut().zip(stage.update(shape, *w)) {
                    *s += u;
                }
            }
        }
        sum
    }

    #[test]
    fn rounds_over_masked_updates_make_the_priors_of_the_clear_sums() {
        let s = stores(7);
        let mut chain = Chain::new(3);
        let mut stage = Some(Stage::Average);
        let mut round = 0;
        while let Some(st) = stage {
            round += 1;
            let sum = play(&announce(round, st.clone(), 7, 0.0), &s, &[]).unwrap();
            stage = chain.next(&st, &sum);
        }
        let want = chain_priors(&s, 3);
        let got = chain.priors();
        assert!(round >= 3, "{round} rounds");
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(&want) {
            for (a, b) in g.shape.iter().zip(&w.shape) {
                assert!((a - b).abs() < 1e-5, "{a} vs {b}");
            }
        }
    }

    #[test]
    fn a_box_lost_after_the_announce_is_unmasked_by_the_survivors_reveals() {
        let s = stores(5);
        let a = announce(4, Stage::Average, 5, 0.0);
        let got = play(&a, &s, &[3]).unwrap();
        let want = clear(&a.stage, &s, &[3]);
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() < 1e-4, "{g} vs {w}");
        }
        // Three lost of five: two survivors are too few to publish anything.
        assert_eq!(
            play(&a, &s, &[0, 1, 3]),
            Err(RoundError::TooFew { got: 2, min: 3 })
        );
    }

    #[test]
    fn an_aggregator_that_lists_a_box_which_sent_gets_no_secret_of_it() {
        let s = stores(4);
        let a = announce(1, Stage::Average, 4, 0.0);
        let mut agg = Aggregator::new(a.clone());
        let mut sides = Vec::new();
        for (i, (shape, w)) in s.iter().enumerate() {
            let me = i as u32;
            let (side, m) =
                BoxRound::mask(&a, me, (shape, *w), &|p| secret(me, p), &mut noise(1)).unwrap();
            agg.receive(&m).unwrap();
            assert_eq!(agg.receive(&m), Err(RoundError::Duplicate(me)));
            sides.push(side);
        }
        // A curious aggregator claims box 2 dropped out, to unmask its update.
        let lie = crate::federated::round::Missing {
            round: 1,
            missing: BTreeSet::from([2]),
        };
        assert_eq!(
            sides[2].reveal(&lie, &|p| secret(2, p)),
            Err(RoundError::ListedButSent(2))
        );
        // An honest aggregator lists nobody; a reveal naming a box it did not list is
        // refused, and so is a message of another round or from a box not taking part.
        let missing = agg.close();
        assert!(missing.missing.is_empty());
        let r = sides[0].reveal(&lie, &|p| secret(0, p)).unwrap();
        assert_eq!(agg.reveal(&r), Err(RoundError::NotMissing(2)));
        let other = Announce {
            round: 9,
            ..a.clone()
        };
        let (_, m) = BoxRound::mask(
            &other,
            0,
            (&s[0].0, s[0].1),
            &|p| secret(0, p),
            &mut noise(1),
        )
        .unwrap();
        assert_eq!(
            Aggregator::new(a.clone()).receive(&m),
            Err(RoundError::WrongRound { round: 1, got: 9 })
        );
        assert!(matches!(
            BoxRound::mask(&a, 7, (&s[0].0, s[0].1), &|p| secret(7, p), &mut noise(1)),
            Err(RoundError::NotTakingPart(7))
        ));
    }

    #[test]
    fn a_survivor_that_does_not_reveal_leaves_the_sum_masked() {
        let s = stores(5);
        let a = announce(2, Stage::Average, 5, 0.0);
        let mut agg = Aggregator::new(a.clone());
        let mut sides = Vec::new();
        for (i, (shape, w)) in s.iter().enumerate() {
            let me = i as u32;
            let (side, m) =
                BoxRound::mask(&a, me, (shape, *w), &|p| secret(me, p), &mut noise(1)).unwrap();
            if me != 4 {
                agg.receive(&m).unwrap();
                sides.push((me, side));
            }
        }
        let missing = agg.close();
        for (me, side) in &sides[..3] {
            agg.reveal(&side.reveal(&missing, &|p| secret(*me, p)).unwrap())
                .unwrap();
        }
        assert_eq!(agg.finish(), Err(RoundError::NotRevealed(vec![3])));
    }

    #[test]
    fn the_boxes_shares_of_noise_add_up_to_the_rounds_sigma() {
        let s = stores(6);
        let sigma = 2.0;
        let a = announce(3, Stage::Average, 6, sigma);
        let got = play(&a, &s, &[]).unwrap();
        let bounded: Vec<(Vec<f64>, f64)> = s
            .iter()
            .map(|(x, w)| crate::federated::dp::bounded(x, *w))
            .collect();
        let want = clear(&a.stage, &bounded, &[]);
        let d: Vec<f64> = got.iter().zip(&want).map(|(g, w)| g - w).collect();
        let sd = (d.iter().map(|x| x * x).sum::<f64>() / d.len() as f64).sqrt();
        assert!((0.7 * sigma..1.3 * sigma).contains(&sd), "sd {sd}");
    }
}
