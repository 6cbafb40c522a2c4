//! HOTA (Luiten et al., IJCV 2020) as TrackEval computes it (`trackeval/metrics/hota.py`):
//! detection and association accuracy at 19 IoU thresholds (0.05 … 0.95), each matched per
//! frame by the Hungarian algorithm on IoU weighted by the pair's global alignment score,
//! HOTA = √(DetA·AssA) averaged over the thresholds. Frames are the same scored annotations
//! and hypotheses as the CLEAR metrics ([`super::mot::scored`]: ignored annotations and
//! the hypotheses on them left out, MOTChallenge's rule).

use std::collections::HashMap;

use vitrine_signals::assign;
use vitrine_signals::geom::BBox;

use super::gt::{GroundTruth, GtBox};

const ALPHAS: usize = 19;

fn alpha(i: usize) -> f64 {
    0.05 * (i + 1) as f64
}

/// One frame: annotated ids, reported ids, IoU (row-major, annotations × reports).
struct Frame {
    gt: Vec<u64>,
    hyp: Vec<u64>,
    iou: Vec<f64>,
}

/// Frames collected for HOTA (computed at the end: association needs the whole sequence).
#[derive(Default)]
pub struct Hota {
    frames: Vec<Frame>,
}

/// HOTA and its parts, averaged over the thresholds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct HotaScore {
    pub hota: f64,
    pub deta: f64,
    pub assa: f64,
    pub loca: f64,
}

impl Hota {
    pub fn frame(&mut self, truth: &GroundTruth, gt: &[GtBox], hyp: &[(u64, BBox)]) {
        let (g, h) = super::mot::scored(truth, gt, hyp);
        self.push(&g, &h);
    }

    /// One frame of scored boxes with their ids.
    pub fn push(&mut self, g: &[(u64, BBox)], h: &[(u64, BBox)]) {
        let mut iou = Vec::with_capacity(g.len() * h.len());
        for a in g {
            for b in h {
                iou.push(f64::from(a.1.iou(&b.1)));
            }
        }
        self.frames.push(Frame {
            gt: g.iter().map(|x| x.0).collect(),
            hyp: h.iter().map(|x| x.0).collect(),
            iou,
        });
    }

    pub fn score(&self) -> HotaScore {
        let align = self.global_alignment();
        let mut tp = [0f64; ALPHAS];
        let mut fn_ = [0f64; ALPHAS];
        let mut fp = [0f64; ALPHAS];
        let mut loc = [0f64; ALPHAS];
        let mut matches: Vec<HashMap<(u64, u64), f64>> = vec![HashMap::new(); ALPHAS];
        for f in &self.frames {
            let (r, c) = (f.gt.len(), f.hyp.len());
            let mut cost = Vec::with_capacity(r * c);
            for i in 0..r {
                for j in 0..c {
                    let a = align.score(f.gt[i], f.hyp[j]);
                    cost.push((1.0 - a * f.iou[i * c + j]) as f32);
                }
            }
            let pairs = if r > 0 && c > 0 {
                assign::min_cost(&cost, r, c, 1.0)
            } else {
                Vec::new()
            };
            for a in 0..ALPHAS {
                let kept: Vec<&(usize, usize)> = pairs
                    .iter()
                    .filter(|(i, j)| f.iou[i * c + j] >= alpha(a) - 1e-9)
                    .collect();
                let n = kept.len() as f64;
                tp[a] += n;
                fn_[a] += r as f64 - n;
                fp[a] += c as f64 - n;
                for &&(i, j) in &kept {
                    loc[a] += f.iou[i * c + j];
                    *matches[a].entry((f.gt[i], f.hyp[j])).or_default() += 1.0;
                }
            }
        }
        let mut out = HotaScore::default();
        for a in 0..ALPHAS {
            let assa = matches[a]
                .iter()
                .map(|(&(g, h), &m)| m * m / (align.gt_count(g) + align.hyp_count(h) - m))
                .sum::<f64>()
                / tp[a].max(1.0);
            let deta = tp[a] / (tp[a] + fn_[a] + fp[a]).max(1.0);
            out.hota += (deta * assa).sqrt() / ALPHAS as f64;
            out.deta += deta / ALPHAS as f64;
            out.assa += assa / ALPHAS as f64;
            out.loca += loc[a] / tp[a].max(1e-10) / ALPHAS as f64;
        }
        out
    }

    /// How well each annotated identity and each reported one go together over the whole
    /// sequence (TrackEval's `global_alignment_score`).
    fn global_alignment(&self) -> Alignment {
        let mut al = Alignment::default();
        for f in &self.frames {
            let c = f.hyp.len();
            let row: Vec<f64> = (0..f.gt.len())
                .map(|i| f.iou[i * c..(i + 1) * c].iter().sum())
                .collect();
            let col: Vec<f64> = (0..c)
                .map(|j| (0..f.gt.len()).map(|i| f.iou[i * c + j]).sum())
                .collect();
            for (i, g) in f.gt.iter().enumerate() {
                for (j, h) in f.hyp.iter().enumerate() {
                    let s = f.iou[i * c + j];
                    let denom = row[i] + col[j] - s;
                    if denom > f64::EPSILON && s > 0.0 {
                        *al.potential.entry((*g, *h)).or_default() += s / denom;
                    }
                }
            }
            for g in &f.gt {
                *al.gt.entry(*g).or_default() += 1.0;
            }
            for h in &f.hyp {
                *al.hyp.entry(*h).or_default() += 1.0;
            }
        }
        al
    }
}

#[derive(Default)]
struct Alignment {
    potential: HashMap<(u64, u64), f64>,
    gt: HashMap<u64, f64>,
    hyp: HashMap<u64, f64>,
}

impl Alignment {
    fn gt_count(&self, g: u64) -> f64 {
        self.gt.get(&g).copied().unwrap_or(0.0)
    }

    fn hyp_count(&self, h: u64) -> f64 {
        self.hyp.get(&h).copied().unwrap_or(0.0)
    }

    fn score(&self, g: u64, h: u64) -> f64 {
        let p = self.potential.get(&(g, h)).copied().unwrap_or(0.0);
        p / (self.gt_count(g) + self.hyp_count(h) - p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(x: f32) -> BBox {
        BBox::new(x, 0.1, x + 0.1, 0.5)
    }

    #[test]
    fn a_perfect_tracker_scores_one_and_a_silent_one_zero() {
        let mut h = Hota::default();
        for k in 0..5 {
            let x = 0.1 + 0.02 * k as f32;
            h.push(&[(1, b(x)), (2, b(0.6))], &[(7, b(x)), (8, b(0.6))]);
        }
        let s = h.score();
        assert!((s.hota - 1.0).abs() < 1e-9, "{s:?}");
        let mut h = Hota::default();
        h.push(&[(1, b(0.1))], &[]);
        assert_eq!(h.score().hota, 0.0);
    }

    /// The figures TrackEval 1.3.0 (`trackeval.metrics.HOTA().eval_sequence`) gives for the
    /// same data: one annotated person for 4 frames, reported as track 1 for two frames and
    /// track 2 for two (an identity switch), the boxes exact; and a false alarm in frame 0.
    #[test]
    fn an_identity_switch_halves_association_as_trackeval_computes_it() {
        let mut h = Hota::default();
        h.push(&[(1, b(0.1))], &[(1, b(0.1)), (3, b(0.7))]);
        h.push(&[(1, b(0.1))], &[(1, b(0.1))]);
        h.push(&[(1, b(0.1))], &[(2, b(0.1))]);
        h.push(&[(1, b(0.1))], &[(2, b(0.1))]);
        let s = h.score();
        // DetA = 4 / (4 + 0 + 1) = 0.8; AssA = 0.5; HOTA = √0.4.
        assert!((s.deta - 0.8).abs() < 1e-9, "{s:?}");
        assert!((s.assa - 0.5).abs() < 1e-9, "{s:?}");
        assert!((s.hota - 0.4f64.sqrt()).abs() < 1e-9, "{s:?}");
    }

    /// Partial overlaps, a switch, a late track and a false alarm: TrackEval 1.3.0 gives
    /// HOTA 0.372999, DetA 0.475379, AssA 0.307211, LocA 0.773785 for these frames.
    #[test]
    fn partial_overlaps_score_as_trackeval_scores_them() {
        let b = |x: f32| BBox::new(x, 0.1, x + 0.1, 0.5);
        type Ids<'a> = &'a [(u64, f32)];
        let frames: [(Ids, Ids); 5] = [
            (&[(1, 0.10), (2, 0.30)], &[(5, 0.12), (6, 0.33)]),
            (&[(1, 0.12), (2, 0.28)], &[(5, 0.15), (6, 0.25)]),
            (&[(1, 0.14), (2, 0.26)], &[(6, 0.18), (7, 0.27)]),
            (&[(1, 0.16), (2, 0.24)], &[(6, 0.16), (7, 0.31)]),
            (&[(2, 0.22)], &[(7, 0.21), (8, 0.6)]),
        ];
        let mut h = Hota::default();
        for (g, t) in frames {
            let g: Vec<(u64, BBox)> = g.iter().map(|&(i, x)| (i, b(x))).collect();
            let t: Vec<(u64, BBox)> = t.iter().map(|&(i, x)| (i, b(x))).collect();
            h.push(&g, &t);
        }
        let s = h.score();
        assert!((s.hota - 0.372999).abs() < 1e-4, "{s:?}");
        assert!((s.deta - 0.475379).abs() < 1e-4, "{s:?}");
        assert!((s.assa - 0.307211).abs() < 1e-4, "{s:?}");
        assert!((s.loca - 0.773785).abs() < 1e-4, "{s:?}");
    }
}
