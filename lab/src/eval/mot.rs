//! CLEAR-MOT (MOTA), IDF1 and precision/recall, as MOTChallenge's devkit computes them:
//! per frame, hypotheses are matched to annotations at IoU ≥ 0.5, keeping last frame's
//! correspondences where they still hold, the rest by optimal assignment (the most matches,
//! then the best overlap). A hypothesis
//! matched to an ignored annotation (or whose feet stand outside the annotated region) is
//! neither a hit nor a false alarm; an ignored annotation is never a miss.

use std::collections::HashMap;

use vitrine_signals::assign;
use vitrine_signals::geom::BBox;

use super::gt::{GroundTruth, GtBox};

/// Smallest IoU of a match.
pub const MIN_IOU: f32 = 0.5;

/// Visibility (MOT17's column) below which an annotated person counts as hidden.
pub const VISIBLE: f32 = 0.5;

/// Upper edges of the person-height bins (pixels at the source) recall is reported by.
pub const HEIGHT_BINS: [f32; 6] = [20.0, 40.0, 60.0, 100.0, 200.0, f32::INFINITY];

/// Annotated people and those found, by their height in pixels at the source.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct ByHeight {
    pub gt: [u64; HEIGHT_BINS.len()],
    pub tp: [u64; HEIGHT_BINS.len()],
}

impl ByHeight {
    fn bin(h_px: f32) -> usize {
        HEIGHT_BINS
            .iter()
            .position(|&e| h_px < e)
            .unwrap_or(HEIGHT_BINS.len() - 1)
    }

    /// Scored annotations `g` and whether each was found; people the annotation says are
    /// mostly hidden (`all`'s visibility under [`VISIBLE`]) are left out: size is the question.
    fn add(&mut self, all: &[GtBox], g: &[(u64, BBox)], matched: &[bool], px: f32) {
        let hidden = |id: u64| {
            all.iter()
                .any(|a| a.id == id && a.visibility.is_some_and(|v| v < VISIBLE))
        };
        for ((id, b), &m) in g.iter().zip(matched) {
            if px <= 0.0 || hidden(*id) {
                continue;
            }
            let i = Self::bin(b.h() * px);
            self.gt[i] += 1;
            self.tp[i] += u64::from(m);
        }
    }

    /// Recall of the people at least `min_px` tall (bins starting at or above it).
    pub fn recall_from(&self, min_px: f32) -> Option<f64> {
        let lower = |i: usize| if i == 0 { 0.0 } else { HEIGHT_BINS[i - 1] };
        let (mut g, mut t) = (0, 0);
        for i in (0..HEIGHT_BINS.len()).filter(|&i| lower(i) >= min_px) {
            g += self.gt[i];
            t += self.tp[i];
        }
        (g > 0).then(|| t as f64 / g as f64)
    }
}

#[derive(Debug, Default, Clone)]
pub struct Mot {
    /// Annotations scored (not ignored, inside the region).
    pub gt: u64,
    /// Hypotheses scored (not matched to an ignored annotation, inside the region).
    pub hyp: u64,
    pub tp: u64,
    pub fn_: u64,
    pub fp: u64,
    pub idsw: u64,
    /// (annotation id, hypothesis id) → frames matched at IoU ≥ 0.5 (for IDF1).
    overlap: HashMap<(u64, u64), i64>,
    last_match: HashMap<u64, u64>,
    /// Recall by person height (see [`Mot::set_height_px`]).
    pub by_height: ByHeight,
    /// The video's height in pixels (boxes are normalized): 0 until set.
    height_px: f32,
}

/// Optimal IoU matching of `hyp` to `gt` with `keep` pairs forced first; returns pairs.
fn match_frame(gt: &[BBox], hyp: &[BBox], keep: &[(usize, usize)]) -> Vec<(usize, usize)> {
    let (mut tg, mut th) = (vec![false; gt.len()], vec![false; hyp.len()]);
    for &(i, j) in keep {
        tg[i] = true;
        th[j] = true;
    }
    let rows: Vec<usize> = (0..gt.len()).filter(|&i| !tg[i]).collect();
    let cols: Vec<usize> = (0..hyp.len()).filter(|&j| !th[j]).collect();
    let mut cost = Vec::with_capacity(rows.len() * cols.len());
    for &i in &rows {
        for &j in &cols {
            cost.push(1.0 - gt[i].iou(&hyp[j]));
        }
    }
    let mut out = keep.to_vec();
    for (r, c) in assign::max_matching(&cost, rows.len(), cols.len(), 1.0 - MIN_IOU) {
        out.push((rows[r], cols[c]));
    }
    out
}

/// Boxes with their ids (annotated or reported).
type Identified = Vec<(u64, BBox)>;

/// Annotations and hypotheses of one frame, restricted to the annotated region: hypotheses
/// matched to an ignored annotation are dropped. Returns (scored annotations, scored
/// hypotheses), each with its id.
pub fn scored(truth: &GroundTruth, gt: &[GtBox], hyp: &[(u64, BBox)]) -> (Identified, Identified) {
    let hyp: Vec<(u64, BBox)> = hyp
        .iter()
        .copied()
        .filter(|(_, b)| truth.annotated(b.foot()))
        .collect();
    let gb: Vec<BBox> = gt.iter().map(|g| g.bbox).collect();
    let hb: Vec<BBox> = hyp.iter().map(|h| h.1).collect();
    let mut dropped = vec![false; hyp.len()];
    for (i, j) in match_frame(&gb, &hb, &[]) {
        if gt[i].ignore {
            dropped[j] = true;
        }
    }
    let g = gt
        .iter()
        .filter(|g| !g.ignore)
        .map(|g| (g.id, g.bbox))
        .collect();
    let h = hyp
        .into_iter()
        .zip(dropped)
        .filter(|(_, d)| !d)
        .map(|(h, _)| h)
        .collect();
    (g, h)
}

impl Mot {
    /// The video's height in pixels, so that recall is also kept by person height.
    pub fn set_height_px(&mut self, px: f32) {
        self.height_px = px;
    }

    /// One frame's tracks (`hyp`: id, box) against its annotations.
    pub fn frame(&mut self, truth: &GroundTruth, gt: &[GtBox], hyp: &[(u64, BBox)]) {
        let (g, h) = scored(truth, gt, hyp);
        self.gt += g.len() as u64;
        self.hyp += h.len() as u64;
        let gb: Vec<BBox> = g.iter().map(|x| x.1).collect();
        let hb: Vec<BBox> = h.iter().map(|x| x.1).collect();
        for (i, a) in gb.iter().enumerate() {
            for (j, b) in hb.iter().enumerate() {
                if a.iou(b) >= MIN_IOU {
                    *self.overlap.entry((g[i].0, h[j].0)).or_default() += 1;
                }
            }
        }
        // Last frame's correspondences that still overlap are kept.
        let mut keep = Vec::new();
        for (i, (gid, gbox)) in g.iter().enumerate() {
            let Some(hid) = self.last_match.get(gid) else {
                continue;
            };
            if let Some(j) = h.iter().position(|x| x.0 == *hid) {
                if gbox.iou(&hb[j]) >= MIN_IOU && !keep.iter().any(|&(_, k)| k == j) {
                    keep.push((i, j));
                }
            }
        }
        let matches = match_frame(&gb, &hb, &keep);
        for &(i, j) in &matches {
            if let Some(prev) = self.last_match.insert(g[i].0, h[j].0) {
                if prev != h[j].0 {
                    self.idsw += 1;
                }
            }
        }
        self.tp += matches.len() as u64;
        self.fn_ += (g.len() - matches.len()) as u64;
        self.fp += (h.len() - matches.len()) as u64;
        let mut found = vec![false; g.len()];
        for &(i, _) in &matches {
            found[i] = true;
        }
        self.by_height.add(gt, &g, &found, self.height_px);
    }

    pub fn mota(&self) -> f64 {
        1.0 - (self.fn_ + self.fp + self.idsw) as f64 / self.gt.max(1) as f64
    }

    pub fn precision(&self) -> f64 {
        self.tp as f64 / (self.tp + self.fp).max(1) as f64
    }

    pub fn recall(&self) -> f64 {
        self.tp as f64 / (self.tp + self.fn_).max(1) as f64
    }

    pub fn idf1(&self) -> f64 {
        let mut gids: Vec<u64> = self.overlap.keys().map(|k| k.0).collect();
        let mut hids: Vec<u64> = self.overlap.keys().map(|k| k.1).collect();
        gids.sort_unstable();
        gids.dedup();
        hids.sort_unstable();
        hids.dedup();
        let w: Vec<Vec<i64>> = gids
            .iter()
            .map(|g| {
                hids.iter()
                    .map(|h| self.overlap.get(&(*g, *h)).copied().unwrap_or(0))
                    .collect()
            })
            .collect();
        let idtp = assign::max_weight(&w) as f64;
        2.0 * idtp / (self.gt + self.hyp).max(1) as f64
    }
}

/// Detector precision and recall on the frames it ran (no identities).
#[derive(Debug, Default, Clone, Copy)]
pub struct Detections {
    pub tp: u64,
    pub fp: u64,
    pub fn_: u64,
    pub by_height: ByHeight,
}

impl Detections {
    /// One detector frame; `height_px`: the video's height in pixels (0: no height bins).
    pub fn frame(&mut self, truth: &GroundTruth, gt: &[GtBox], dets: &[BBox], height_px: f32) {
        let hyp: Vec<(u64, BBox)> = dets.iter().map(|b| (0, *b)).collect();
        let (g, h) = scored(truth, gt, &hyp);
        let gb: Vec<BBox> = g.iter().map(|x| x.1).collect();
        let hb: Vec<BBox> = h.iter().map(|x| x.1).collect();
        let matches = match_frame(&gb, &hb, &[]);
        let m = matches.len() as u64;
        self.tp += m;
        self.fn_ += gb.len() as u64 - m;
        self.fp += hb.len() as u64 - m;
        let mut found = vec![false; g.len()];
        for &(i, _) in &matches {
            found[i] = true;
        }
        self.by_height.add(gt, &g, &found, height_px);
    }

    pub fn precision(&self) -> f64 {
        self.tp as f64 / (self.tp + self.fp).max(1) as f64
    }

    pub fn recall(&self) -> f64 {
        self.tp as f64 / (self.tp + self.fn_).max(1) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::gt::VideoFacts;

    fn truth() -> GroundTruth {
        let d = tempfile::tempdir().unwrap();
        // A region covering most of the frame: feet at the corners.
        let p = d.path().join("gt.txt");
        std::fs::write(
            &p,
            "1,1,0,0,10,470\n1,2,620,0,10,470\n1,3,0,0,10,10\n1,4,620,0,10,10\n",
        )
        .unwrap();
        GroundTruth::read(
            &p,
            VideoFacts {
                width: 640,
                height: 480,
                frames: 10,
            },
        )
        .unwrap()
    }

    fn g(id: u64, b: BBox, ignore: bool) -> GtBox {
        GtBox {
            id,
            bbox: b,
            ignore,
            walker: true,
            person: true,
            visibility: None,
        }
    }

    #[test]
    fn mota_counts_misses_false_positives_and_switches() {
        let t = truth();
        let b = BBox::new(0.1, 0.1, 0.3, 0.5);
        let far = BBox::new(0.6, 0.1, 0.8, 0.5);
        let mut m = Mot::default();
        m.frame(&t, &[g(1, b, false)], &[(10, b)]);
        m.frame(&t, &[g(1, b, false)], &[(11, b), (12, far)]);
        m.frame(&t, &[g(1, b, false), g(2, far, false)], &[(11, b)]);
        assert_eq!((m.gt, m.fn_, m.fp, m.idsw), (4, 1, 1, 1));
        assert!((m.mota() - 0.25).abs() < 1e-9);
        // Identity: gt 1 with hyp 11 for 2 of its 3 frames.
        assert!((m.idf1() - 2.0 * 2.0 / (4.0 + 4.0)).abs() < 1e-9);
    }

    #[test]
    fn an_ignored_annotation_is_neither_missed_nor_a_false_alarm() {
        let t = truth();
        let b = BBox::new(0.1, 0.1, 0.3, 0.5);
        let far = BBox::new(0.6, 0.1, 0.8, 0.5);
        let mut m = Mot::default();
        m.frame(
            &t,
            &[g(1, b, false), g(2, far, true)],
            &[(10, b), (11, far)],
        );
        m.frame(&t, &[g(1, b, false), g(2, far, true)], &[(10, b)]);
        assert_eq!((m.gt, m.tp, m.fn_, m.fp), (2, 2, 0, 0));
        let mut d = Detections::default();
        d.frame(&t, &[g(2, far, true)], &[far, b], 480.0);
        assert_eq!((d.tp, d.fp, d.fn_), (0, 1, 0));
    }

    #[test]
    fn the_optimal_match_is_used_within_a_frame() {
        let t = truth();
        // Hyp A overlaps both annotations; hyp B only the first: greedy would pair A with the
        // first (higher IoU, 0.82) and leave the second unmatched.
        let g1 = BBox::new(0.10, 0.1, 0.20, 0.5);
        let g2 = BBox::new(0.14, 0.1, 0.24, 0.5);
        let a = BBox::new(0.11, 0.1, 0.21, 0.5);
        let b = BBox::new(0.07, 0.1, 0.17, 0.5);
        let mut m = Mot::default();
        m.frame(&t, &[g(1, g1, false), g(2, g2, false)], &[(1, a), (2, b)]);
        assert_eq!((m.tp, m.fp, m.fn_), (2, 0, 0));
    }
}
