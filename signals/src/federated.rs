//! Learning across a chain without sharing any store's counts.
//!
//! A box's forecast model ([`crate::forecast::Series`]) learns the weekly profile of its own
//! footfall; a new store has none for weeks. What boxes share instead of counts is a **model
//! update**: the profile's *shape* (168 weekday hours, mean 1: when in the week people come, not
//! how many) and a weight (weeks learned, capped). The central side averages them, weighted
//! (federated averaging), into a **chain prior**; a box blends the prior with its own profile at
//! its own level, trusting itself more with every week it has seen
//! ([`crate::forecast::Series::forecast_with`]).
//!
//! **Secure aggregation** ([`secagg`]): the central side must learn the sum of the updates, not
//! any one of them. Each pair of boxes shares a secret; each box adds, per peer, a mask
//! stretched from that secret (plus when its index is lower, minus when higher) to its update in
//! fixed point (arithmetic modulo 2^64): every mask appears once with each sign, so they cancel
//! in the sum and only the sum is readable. A box that drops out after masking leaves its peers'
//! masks with it uncancelled; the survivors then reveal their secret with the dropped box only,
//! and the aggregator removes those masks. This is Bonawitz et al. (CCS 2017) without the
//! second (self) mask and without secret sharing of the keys — the guarantee therefore holds
//! against an honest-but-curious aggregator that does not collude with boxes and does not claim
//! that a box which sent its update dropped out (a box reveals a secret only for a peer the
//! aggregator has listed, before unmasking, as missing; a listed box that did send sees itself
//! listed and the round is void).

use crate::forecast::WEEK;
pub use crate::forecast::{choose, Prior, CHOOSE_MARGIN};

/// Weighted federated averaging of `(shape, weight)` updates (in the clear: the reference
/// for [`secagg`], and what a single trusted aggregator would compute).
pub fn fedavg(updates: &[(Vec<f64>, f64)]) -> Option<Prior> {
    let (sum, weight) = weighted_sum(updates);
    Prior::from_sum(&sum, weight)
}

/// `(Σ w·shape, Σ w)` over updates of the right length and a positive weight.
pub fn weighted_sum(updates: &[(Vec<f64>, f64)]) -> (Vec<f64>, f64) {
    let mut sum = vec![0.0; WEEK];
    let mut weight = 0.0;
    for (shape, w) in updates {
        if shape.len() != WEEK || w.is_nan() || *w <= 0.0 {
            continue;
        }
        for (s, v) in sum.iter_mut().zip(shape) {
            *s += w * v;
        }
        weight += w;
    }
    (sum, weight)
}

/// A cluster prior is published only when at least this many stores made it: fewer would
/// show one store's habits (k-anonymity, as for counts).
pub const MIN_STORES: u32 = 3;

/// Chains are not one shape: an office street empties at the weekend, a nightlife street fills
/// at night. The chain's priors are therefore a few clusters of shapes, found by federated
/// k-means: each store assigns itself to the nearest prior by its own shape and sends its
/// update in that cluster's block of a vector with one block per cluster (zeros elsewhere), so
/// that, masked, the aggregator learns each cluster's sum but not which store chose which.
/// Block layout: `w·shape` (168), `w`, `1` (the store count).
pub const BLOCK: usize = WEEK + 2;

/// The store's first-round cluster, from its own shape against the chain's average: more or
/// less weekend, more or less evening than the chain (four clusters).
pub fn first_cluster(shape: &[f64], chain: &Prior) -> usize {
    let share = |v: &[f64], f: &dyn Fn(usize) -> bool| -> f64 {
        let all: f64 = v.iter().sum();
        v.iter()
            .enumerate()
            .filter(|(i, _)| f(*i))
            .map(|(_, x)| x)
            .sum::<f64>()
            / all.max(1e-9)
    };
    let weekend = |i: usize| i >= 5 * 24;
    let evening = |i: usize| i % 24 >= 18;
    let w = share(shape, &weekend) > share(&chain.shape, &weekend);
    let e = share(shape, &evening) > share(&chain.shape, &evening);
    usize::from(w) * 2 + usize::from(e)
}

/// The nearest prior to a store's own shape (squared difference of the mean-1 shapes).
pub fn nearest(shape: &[f64], priors: &[Prior]) -> Option<usize> {
    let d = |p: &Prior| -> f64 {
        p.shape
            .iter()
            .zip(shape)
            .map(|(a, b)| (a - b).powi(2))
            .sum()
    };
    (0..priors.len()).min_by(|&a, &b| d(&priors[a]).total_cmp(&d(&priors[b])))
}

/// A store's update placed in cluster `c` of `clusters` blocks.
pub fn block_update(c: usize, clusters: usize, shape: &[f64], weight: f64) -> Vec<f64> {
    let mut v = vec![0.0; clusters * BLOCK];
    if c < clusters && shape.len() == WEEK {
        let b = &mut v[c * BLOCK..(c + 1) * BLOCK];
        for (x, s) in b.iter_mut().zip(shape) {
            *x = weight * s;
        }
        b[WEEK] = weight;
        b[WEEK + 1] = 1.0;
    }
    v
}

/// The cluster priors from the sum of block updates: a cluster made by fewer than
/// [`MIN_STORES`] stores is left out.
pub fn priors_from_blocks(sum: &[f64]) -> Vec<Prior> {
    sum.chunks_exact(BLOCK)
        .filter(|b| b[WEEK + 1].round() >= f64::from(MIN_STORES))
        .filter_map(|b| Prior::from_sum(&b[..WEEK], b[WEEK]))
        .collect()
}

/// The chain's priors from the stores' updates, as the rounds compute them (in the clear
/// here; [`secagg`] gives the aggregator the same sums without the updates): the average,
/// then four clusters by weekend and evening, then `rounds` k-means rounds. The chain's average
/// comes first and always (a store that has seen nothing yet uses it).
pub fn chain_priors(updates: &[(Vec<f64>, f64)], rounds: usize) -> Vec<Prior> {
    chain_priors_noisy(updates, rounds, &mut |_| {})
}

/// The sums a chain prior takes: the average, the first clustering, and each k-means round.
pub fn sums(rounds: usize) -> usize {
    rounds + 2
}

/// [`chain_priors`] with differential privacy ([`dp`]): shapes clipped, and Gaussian noise of
/// `sigma` on every sum (as the boxes' shares add it up; [`round::Chain`] sets negative values
/// of a sum to zero).
pub fn chain_priors_private(
    updates: &[(Vec<f64>, f64)],
    rounds: usize,
    sigma: f64,
    normal: &mut dyn FnMut() -> f64,
) -> Vec<Prior> {
    let bounded: Vec<(Vec<f64>, f64)> = updates.iter().map(|(s, w)| dp::bounded(s, *w)).collect();
    chain_priors_noisy(&bounded, rounds, &mut |sum| {
        dp::share(sum, sigma, 1, normal)
    })
}

fn chain_priors_noisy(
    updates: &[(Vec<f64>, f64)],
    rounds: usize,
    noise: &mut dyn FnMut(&mut [f64]),
) -> Vec<Prior> {
    let mut chain = round::Chain::new(rounds);
    let mut stage = Some(round::Stage::Average);
    while let Some(s) = stage {
        let mut sum = vec![0.0; s.len()];
        for (shape, w) in updates {
            for (x, u) in sum.iter_mut().zip(s.update(shape, *w)) {
                *x += u;
            }
        }
        noise(&mut sum);
        stage = chain.next(&s, &sum);
    }
    chain.priors()
}

pub mod dp;
pub mod round;

/// Pairwise-masked secure aggregation of fixed-point vectors (see the module's text).
pub mod secagg {
    use sha2::{Digest, Sha256};

    /// Fixed point: a value `v` travels as `round(v · SCALE)` modulo 2^64. A shape value is at
    /// most 168 (all of a week in one hour) times a weight of at most 6: far inside the range.
    pub const SCALE: f64 = 1e6;

    /// Values in fixed point modulo 2^64.
    pub fn to_fixed(values: &[f64]) -> Vec<u64> {
        values
            .iter()
            .map(|v| (v * SCALE).round() as i64 as u64)
            .collect()
    }

    /// A sum in fixed point back in floating point.
    pub fn from_fixed(sum: &[u64]) -> Vec<f64> {
        sum.iter().map(|x| *x as i64 as f64 / SCALE).collect()
    }

    /// A box's update as it is masked: the weighted shape followed by the weight.
    pub fn encode(weighted_shape: &[f64], weight: f64) -> Vec<u64> {
        let mut v = weighted_shape.to_vec();
        v.push(weight);
        to_fixed(&v)
    }

    /// The aggregate back in floating point: `(Σ w·shape, Σ w)`.
    pub fn decode(sum: &[u64]) -> (Vec<f64>, f64) {
        let v = from_fixed(sum);
        match v.split_last() {
            Some((w, shape)) => (shape.to_vec(), *w),
            None => (Vec::new(), 0.0),
        }
    }

    /// The mask stretched from a pair's shared secret: SHA-256 in counter mode.
    pub fn stretch(secret: &[u8; 32], len: usize) -> Vec<u64> {
        let mut out = Vec::with_capacity(len);
        let mut counter: u64 = 0;
        while out.len() < len {
            let mut h = Sha256::new();
            h.update(b"vitrine-secagg-v1");
            h.update(secret);
            h.update(counter.to_le_bytes());
            let block = h.finalize();
            for c in block.chunks_exact(8) {
                if out.len() < len {
                    let mut b = [0u8; 8];
                    b.copy_from_slice(c);
                    out.push(u64::from_le_bytes(b));
                }
            }
            counter += 1;
        }
        out
    }

    /// Mask box `me`'s encoded update with every peer's pairwise mask: added when `me` is the
    /// lower index of the pair, subtracted when it is the higher.
    pub fn mask(me: u32, update: &mut [u64], peers: &[(u32, [u8; 32])]) {
        for (peer, secret) in peers {
            if *peer == me {
                continue;
            }
            let m = stretch(secret, update.len());
            for (u, m) in update.iter_mut().zip(m) {
                *u = if me < *peer {
                    u.wrapping_add(m)
                } else {
                    u.wrapping_sub(m)
                };
            }
        }
    }

    /// Add one masked update into the running sum.
    pub fn add(sum: &mut [u64], update: &[u64]) {
        for (s, u) in sum.iter_mut().zip(update) {
            *s = s.wrapping_add(*u);
        }
    }

    /// Remove from the survivors' sum the masks they hold with boxes that dropped out, from
    /// the secrets the survivors revealed: `(survivor, dropped, secret)`.
    pub fn unmask_dropped(sum: &mut [u64], revealed: &[(u32, u32, [u8; 32])]) {
        for (survivor, dropped, secret) in revealed {
            let m = stretch(secret, sum.len());
            for (s, m) in sum.iter_mut().zip(m) {
                // The survivor added the mask if its index is lower, subtracted it otherwise.
                *s = if survivor < dropped {
                    s.wrapping_sub(m)
                } else {
                    s.wrapping_add(m)
                };
            }
        }
    }
}

#[cfg(test)]
mod tests;
