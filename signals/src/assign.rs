//! Optimal one-to-one assignment (the Hungarian method): the tracker's association step and the
//! evaluation's identity matching share this one solver.
//!
//! [`min_cost`] takes a dense `rows × cols` cost matrix and a cost limit, and returns the pairs
//! of the cheapest assignment in which every pair costs at most the limit. Leaving a row and a
//! column unmatched costs `limit` together (as in `lapjv`'s `cost_limit`), so a pair is taken
//! only when it is worth it and one expensive pair never forces a worse one elsewhere.

/// A cost too large to ever be chosen (finite, so the potentials stay exact).
const FORBIDDEN: f64 = 1e9;

/// The cheapest assignment of rows to columns with every pair at most `limit`; returns
/// `(row, col)` pairs sorted by row. `cost` is row-major, `rows * cols` long.
pub fn min_cost(cost: &[f32], rows: usize, cols: usize, limit: f32) -> Vec<(usize, usize)> {
    debug_assert_eq!(cost.len(), rows * cols);
    if rows == 0 || cols == 0 || cost.len() != rows * cols {
        return Vec::new();
    }
    // Square (rows + cols) matrix: real pairs top-left, "row unmatched" top-right diagonal,
    // "column unmatched" bottom-left diagonal, dummy-to-dummy bottom-right free.
    let n = rows + cols;
    let half = f64::from(limit) / 2.0;
    let at = |i: usize, j: usize| -> f64 {
        match (i < rows, j < cols) {
            (true, true) => {
                let c = f64::from(cost[i * cols + j]);
                if c <= f64::from(limit) && c.is_finite() {
                    c
                } else {
                    FORBIDDEN
                }
            }
            (true, false) if j - cols == i => half,
            (false, true) if i - rows == j => half,
            (false, false) => 0.0,
            _ => FORBIDDEN,
        }
    };
    let assignment = hungarian(n, at);
    let mut pairs: Vec<(usize, usize)> = assignment
        .into_iter()
        .enumerate()
        .filter(|&(i, j)| i < rows && j < cols && at(i, j) < FORBIDDEN)
        .collect();
    pairs.sort_unstable();
    pairs
}

/// The largest one-to-one matching with every pair at most `limit`, and among those the
/// cheapest: how evaluations match reported boxes to annotated ones (a match is a match,
/// whatever its cost). Returns `(row, col)` pairs sorted by row.
pub fn max_matching(cost: &[f32], rows: usize, cols: usize, limit: f32) -> Vec<(usize, usize)> {
    if rows == 0 || cols == 0 || cost.len() != rows * cols {
        return Vec::new();
    }
    // Every allowed pair is worth far more than any difference in cost.
    let bonus = 1e6;
    let valid = |i: usize, j: usize| {
        let c = cost[i * cols + j];
        (c <= limit && c.is_finite()).then_some(f64::from(c))
    };
    let n = rows.max(cols);
    let assignment = hungarian(n, |i, j| {
        if i < rows && j < cols {
            valid(i, j).map_or(0.0, |c| c - bonus)
        } else {
            0.0
        }
    });
    assignment
        .into_iter()
        .enumerate()
        .filter(|&(i, j)| i < rows && j < cols && valid(i, j).is_some())
        .collect()
}

/// Maximum total weight of a one-to-one matching (rows and columns may differ in number;
/// zero-weight pairs are as good as none). The evaluation's IDF1 uses it.
pub fn max_weight(w: &[Vec<i64>]) -> i64 {
    let rows = w.len();
    let cols = w.iter().map(Vec::len).max().unwrap_or(0);
    if rows == 0 || cols == 0 {
        return 0;
    }
    let get = |i: usize, j: usize| w[i].get(j).copied().unwrap_or(0);
    let maxw = (0..rows)
        .flat_map(|i| (0..cols).map(move |j| (i, j)))
        .map(|(i, j)| get(i, j))
        .max()
        .unwrap_or(0);
    let n = rows.max(cols);
    let assignment = hungarian(n, |i, j| {
        if i < rows && j < cols {
            (maxw - get(i, j)) as f64
        } else {
            maxw as f64
        }
    });
    assignment
        .into_iter()
        .enumerate()
        .filter(|&(i, j)| i < rows && j < cols)
        .map(|(i, j)| get(i, j))
        .sum()
}

/// Minimum-cost perfect matching on an `n × n` matrix given by `cost(i, j)` (the O(n³)
/// potentials formulation). Returns the column of each row.
fn hungarian(n: usize, cost: impl Fn(usize, usize) -> f64) -> Vec<usize> {
    // 1-based potentials; p[j] = row matched to column j (0 = none), way = augmenting path.
    let (mut u, mut v) = (vec![0f64; n + 1], vec![0f64; n + 1]);
    let (mut p, mut way) = (vec![0usize; n + 1], vec![0usize; n + 1]);
    for i in 1..=n {
        p[0] = i;
        let mut j0 = 0;
        let mut minv = vec![f64::INFINITY; n + 1];
        let mut used = vec![false; n + 1];
        loop {
            used[j0] = true;
            let i0 = p[j0];
            let (mut delta, mut j1) = (f64::INFINITY, 0);
            for j in 1..=n {
                if used[j] {
                    continue;
                }
                let cur = cost(i0 - 1, j - 1) - u[i0] - v[j];
                if cur < minv[j] {
                    minv[j] = cur;
                    way[j] = j0;
                }
                if minv[j] < delta {
                    delta = minv[j];
                    j1 = j;
                }
            }
            for j in 0..=n {
                if used[j] {
                    u[p[j]] += delta;
                    v[j] -= delta;
                } else {
                    minv[j] -= delta;
                }
            }
            j0 = j1;
            if p[j0] == 0 {
                break;
            }
        }
        loop {
            let j1 = way[j0];
            p[j0] = p[j1];
            j0 = j1;
            if j0 == 0 {
                break;
            }
        }
    }
    let mut row_to_col = vec![0usize; n];
    for j in 1..=n {
        if p[j] > 0 {
            row_to_col[p[j] - 1] = j - 1;
        }
    }
    row_to_col
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_optimum_is_not_the_greedy_choice() {
        // Greedy takes (0,0) at 0.1 and is left with (1,1) at 0.9: 1.0. The optimum is 0.4.
        let cost = [0.1, 0.2, 0.2, 0.9];
        assert_eq!(min_cost(&cost, 2, 2, 1.0), vec![(0, 1), (1, 0)]);
        assert_eq!(max_weight(&[vec![9, 8], vec![7, 1]]), 15);
        assert_eq!(max_weight(&[vec![5, 0, 0]]), 5);
        assert_eq!(max_weight(&[vec![1], vec![4], vec![2]]), 4);
        assert_eq!(max_weight(&[]), 0);
    }

    #[test]
    fn pairs_above_the_limit_are_never_taken() {
        let cost = [0.9, 0.3, 0.95, 0.99];
        assert_eq!(min_cost(&cost, 2, 2, 0.5), vec![(0, 1)]);
        assert!(min_cost(&[0.6], 1, 1, 0.5).is_empty());
        assert!(min_cost(&[], 0, 3, 0.5).is_empty());
    }

    #[test]
    fn one_costly_pair_does_not_force_a_worse_assignment() {
        // Rows 0 and 1 both like column 0; column 1 is just within the limit for row 1.
        // Taking (0,0) + (1,1) costs 0.1 + 0.75; (1,0) alone 0.2 + leaving two unmatched 0.8.
        let cost = [0.1, 0.9, 0.2, 0.75];
        assert_eq!(min_cost(&cost, 2, 2, 0.8), vec![(0, 0), (1, 1)]);
    }

    #[test]
    fn the_largest_matching_wins_over_the_cheapest() {
        // Row 0 fits column 0 well and column 1 barely; row 1 fits only column 0, barely.
        let cost = [0.2, 0.45, 0.45, 0.9];
        assert_eq!(max_matching(&cost, 2, 2, 0.5), vec![(0, 1), (1, 0)]);
        assert_eq!(min_cost(&cost, 2, 2, 0.5), vec![(0, 0)]);
        assert!(max_matching(&[0.7], 1, 1, 0.5).is_empty());
    }

    /// Brute force over every partial assignment, for the property test.
    fn brute(cost: &[f32], rows: usize, cols: usize, limit: f32) -> f64 {
        fn go(r: usize, used: &mut Vec<bool>, c: &[f32], rows: usize, cols: usize, l: f32) -> f64 {
            if r == rows {
                let unmatched_cols = used.iter().filter(|u| !**u).count();
                return f64::from(l) / 2.0 * unmatched_cols as f64;
            }
            let mut best = f64::from(l) / 2.0 + go(r + 1, used, c, rows, cols, l);
            for j in 0..cols {
                let x = c[r * cols + j];
                if !used[j] && x <= l {
                    used[j] = true;
                    best = best.min(f64::from(x) + go(r + 1, used, c, rows, cols, l));
                    used[j] = false;
                }
            }
            best
        }
        go(0, &mut vec![false; cols], cost, rows, cols, limit)
    }

    proptest! {
        #[test]
        fn matches_brute_force(rows in 1usize..5, cols in 1usize..5, seed in proptest::collection::vec(0.0f32..1.0, 16), limit in 0.1f32..1.0) {
            let cost: Vec<f32> = seed[..rows * cols].to_vec();
            let pairs = min_cost(&cost, rows, cols, limit);
            // One-to-one, within the limit.
            let mut rs: Vec<usize> = pairs.iter().map(|p| p.0).collect();
            let mut cs: Vec<usize> = pairs.iter().map(|p| p.1).collect();
            rs.dedup();
            cs.sort_unstable();
            cs.dedup();
            prop_assert_eq!(rs.len(), pairs.len());
            prop_assert_eq!(cs.len(), pairs.len());
            prop_assert!(pairs.iter().all(|&(i, j)| cost[i * cols + j] <= limit));
            let total: f64 = pairs.iter().map(|&(i, j)| f64::from(cost[i * cols + j])).sum::<f64>()
                + f64::from(limit) / 2.0 * ((rows - pairs.len()) + (cols - pairs.len())) as f64;
            prop_assert!((total - brute(&cost, rows, cols, limit)).abs() < 1e-4, "{} vs brute", total);
        }
    }
}
