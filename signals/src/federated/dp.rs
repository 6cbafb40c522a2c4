//! Differential privacy for the chain prior (optional): what the aggregator learns from the
//! rounds' sums says little about whether any one store took part, or what its week looks like.
//!
//! - Each store's shape is **clipped** to an L2 norm of at most [`CLIP`] (a mean-1 shape over
//!   168 hours has norm 13 when flat, 22 for a store open eight hours a day; only a shape
//!   crammed into fewer hours is scaled down), and its weight is at most
//!   [`crate::forecast::PRIOR_CAP`]: one store's block update `(w·shape, w, 1)` then moves a
//!   round's sum by at most [`sensitivity`] in L2.
//! - Each round's sum carries **Gaussian noise** of standard deviation [`Budget::sigma`]. On
//!   the boxes it is *distributed*: each of `n` boxes adds `N(0, σ²/n)` to its update before
//!   masking ([`share`]), so the sum carries `N(0, σ²)` and no party ever sees a noiseless
//!   sum. A box that drops out takes its share with it: with `d` of `n` out, the sum carries
//!   `σ²·(n−d)/n` (the privacy of that round is correspondingly weaker; the round reports it).
//! - Accounting in **zero-concentrated DP** (Bun & Steinke 2016): a round with noise σ on
//!   sensitivity Δ is ρ = Δ²/2σ²-zCDP, rounds add up, and ρ-zCDP implies (ε, δ)-DP with
//!   ε = ρ + 2√(ρ·ln(1/δ)) for every δ > 0. [`Budget::sigma`] inverts that for the rounds a
//!   chain prior takes ([`crate::federated::chain_priors`]: the average, the first clustering
//!   and its k-means rounds). The guarantee is per store and per prior (a store's whole
//!   update is the unit protected); a prior refreshed weekly spends the budget every week.
//! - Negative values of a noisy sum are set to zero before it becomes a prior: post-processing,
//!   which costs no privacy.

/// Largest L2 norm of a store's mean-1 shape that travels unchanged.
pub const CLIP: f64 = 26.0;

/// Scale a shape down to norm [`CLIP`] if it is longer (never up).
pub fn clip(shape: &[f64]) -> Vec<f64> {
    let norm = shape.iter().map(|v| v * v).sum::<f64>().sqrt();
    let k = if norm > CLIP { CLIP / norm } else { 1.0 };
    shape.iter().map(|v| v * k).collect()
}

/// A store's update as it travels under a privacy budget: its shape clipped, its weight at
/// most [`crate::forecast::PRIOR_CAP`].
pub fn bounded(shape: &[f64], weight: f64) -> (Vec<f64>, f64) {
    (clip(shape), weight.min(crate::forecast::PRIOR_CAP))
}

/// How far one store's block update `(w·shape, w, 1)` can move a sum (L2), its weight at most
/// `cap` and its shape clipped.
pub fn sensitivity(cap: f64) -> f64 {
    (cap * cap * (CLIP * CLIP + 1.0) + 1.0).sqrt()
}

/// A privacy budget for one chain prior: (ε, δ)-DP over all its rounds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Budget {
    pub epsilon: f64,
    pub delta: f64,
}

impl Budget {
    /// The zCDP parameter ρ whose (ε, δ) conversion is exactly this budget.
    pub fn rho(&self) -> f64 {
        let l = (1.0 / self.delta).ln();
        ((l + self.epsilon).sqrt() - l.sqrt()).powi(2)
    }

    /// The noise (standard deviation per value of a sum) each of `rounds` sums needs so that
    /// all of them together stay within the budget, for updates whose weight is at most `cap`.
    pub fn sigma(&self, rounds: usize, cap: f64) -> f64 {
        let per_round = self.rho() / rounds.max(1) as f64;
        sensitivity(cap) / (2.0 * per_round).sqrt()
    }

    /// The ε actually spent by `rounds` sums with noise `sigma` (e.g. a round with dropouts,
    /// whose sum carries less noise than planned).
    pub fn spent(sigma: f64, rounds: usize, cap: f64, delta: f64) -> f64 {
        let rho = rounds as f64 * sensitivity(cap).powi(2) / (2.0 * sigma * sigma);
        rho + 2.0 * (rho * (1.0 / delta).ln()).sqrt()
    }
}

/// One box's share of a round's noise: `N(0, σ²/n)` added to every value of its update
/// (`normal` draws standard normal values; on a box from the operating system's randomness).
pub fn share(update: &mut [f64], sigma: f64, n: usize, normal: &mut dyn FnMut() -> f64) {
    let s = sigma / (n.max(1) as f64).sqrt();
    for v in update {
        *v += s * normal();
    }
}

/// Standard normal values from uniform ones in (0, 1] (Box–Muller).
pub fn normal_from(uniform: &mut dyn FnMut() -> f64) -> f64 {
    let (u1, u2) = (uniform().max(f64::MIN_POSITIVE), uniform());
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lcg(seed: u64) -> impl FnMut() -> f64 {
        let mut x = seed;
        move || {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((x >> 11) as f64 + 1.0) / (1u64 << 53) as f64
        }
    }

    #[test]
    fn the_budget_converts_back_to_the_epsilon_it_was_given() {
        for eps in [0.5, 1.0, 4.0, 16.0] {
            let b = Budget {
                epsilon: eps,
                delta: 1e-6,
            };
            let sigma = b.sigma(5, 6.0);
            let spent = Budget::spent(sigma, 5, 6.0, 1e-6);
            assert!((spent - eps).abs() < 1e-9 * eps.max(1.0), "{eps} → {spent}");
        }
        // More rounds on the same budget need more noise; a smaller budget too.
        let b = Budget {
            epsilon: 1.0,
            delta: 1e-6,
        };
        assert!(b.sigma(5, 6.0) > b.sigma(1, 6.0));
        let tighter = Budget { epsilon: 0.5, ..b };
        assert!(tighter.sigma(5, 6.0) > b.sigma(5, 6.0));
    }

    #[test]
    fn clipping_bounds_every_shape_and_leaves_ordinary_ones_alone() {
        let flat = vec![1.0; 168];
        assert_eq!(clip(&flat), flat);
        let mut crammed = vec![0.0; 168];
        crammed[10] = 168.0;
        let c = clip(&crammed);
        let norm = c.iter().map(|v| v * v).sum::<f64>().sqrt();
        assert!((norm - CLIP).abs() < 1e-9);
    }

    #[test]
    fn shares_of_n_boxes_add_up_to_the_planned_noise() {
        let (n, sigma, len) = (20, 3.0, 4000);
        let mut uniform = lcg(7);
        let mut normal = || normal_from(&mut uniform);
        let mut sum = vec![0.0; len];
        for _ in 0..n {
            let mut u = vec![0.0; len];
            share(&mut u, sigma, n, &mut normal);
            for (s, v) in sum.iter_mut().zip(u) {
                *s += v;
            }
        }
        let mean = sum.iter().sum::<f64>() / len as f64;
        let sd = (sum.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / len as f64).sqrt();
        assert!(mean.abs() < 0.15, "mean {mean}");
        assert!((sd - sigma).abs() < 0.15, "sd {sd}");
    }
}
