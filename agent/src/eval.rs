//! `vitrine eval`: accuracy on annotated media, as tables.
//!
//! - `eval tracking`: a video with MOT-style ground truth (`frame,id,x,y,w,h,...`, e.g.
//!   MOT15 TUD-Stadtmitte): detection recall/precision (IoU ≥ 0.5, detector frames), tracking
//!   MOTA and IDF1 (CLEAR-MOT matching with kept correspondences; IDF1 from the optimal
//!   identity assignment), and the config's line and zone counts computed from our tracks vs
//!   from the annotated tracks through the very same zone/line logic;
//! - `eval vad`: voice activity frame agreement on speech mixed with real noise at a chosen
//!   SNR, the labels coming from the clean speech's energy.
//!
//! Track ids and boxes stay in this process (this is the one place they are compared with
//! anything); only the figures are printed.

use std::collections::HashMap;
use std::path::Path;

use anyhow::Context;
use vitrine_config::Camera;
use vitrine_models::{Detector, Vad};
use vitrine_sensors::motion::{MotionDetector, MotionParams};
use vitrine_sensors::video_file::VideoFile;
use vitrine_sensors::{FrameSource, Pacing};
use vitrine_signals::cadence::{Cadence, CadenceParams, Step};
use vitrine_signals::geom::BBox;
use vitrine_signals::track::{TrackUpdate, TrackView};
use vitrine_signals::CameraSignals;

/// Ground truth: frame number (1-based) → (id, box normalized to the frame).
fn read_gt(path: &Path, w: f32, h: f32) -> anyhow::Result<HashMap<u64, Vec<(u64, BBox)>>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut gt: HashMap<u64, Vec<(u64, BBox)>> = HashMap::new();
    for (n, line) in text.lines().enumerate() {
        let v: Vec<f32> = line
            .split(',')
            .take(7)
            .map(|x| x.trim().parse::<f32>())
            .collect::<Result<_, _>>()
            .with_context(|| {
                format!(
                    "{}:{}: not a MOT line (frame,id,x,y,w,h,conf,...)",
                    path.display(),
                    n + 1
                )
            })?;
        anyhow::ensure!(
            v.len() >= 6,
            "{}:{}: needs at least 6 fields",
            path.display(),
            n + 1
        );
        if v.len() >= 7 && v[6] == 0.0 {
            continue; // "ignore" annotations
        }
        let b = BBox::new(v[2] / w, v[3] / h, (v[2] + v[4]) / w, (v[3] + v[5]) / h);
        gt.entry(v[0] as u64).or_default().push((v[1] as u64, b));
    }
    Ok(gt)
}

/// Greedy IoU matching (≥ 0.5), best pairs first; returns (gt index, hyp index) pairs.
fn greedy(gt: &[BBox], hyp: &[BBox], taken_gt: &[bool], taken_hyp: &[bool]) -> Vec<(usize, usize)> {
    let mut pairs: Vec<(f32, usize, usize)> = Vec::new();
    for (i, g) in gt.iter().enumerate() {
        for (j, h) in hyp.iter().enumerate() {
            let iou = g.iou(h);
            if iou >= 0.5 && !taken_gt[i] && !taken_hyp[j] {
                pairs.push((iou, i, j));
            }
        }
    }
    pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
    let (mut ug, mut uh) = (taken_gt.to_vec(), taken_hyp.to_vec());
    let mut out = Vec::new();
    for (_, i, j) in pairs {
        if !ug[i] && !uh[j] {
            ug[i] = true;
            uh[j] = true;
            out.push((i, j));
        }
    }
    out
}

/// Maximum-weight assignment (Hungarian algorithm, O(n³)) on a dense matrix `w[r][c]`;
/// returns the total weight. Rows and columns may differ in number (padded with zeros).
pub fn max_assignment(w: &[Vec<i64>]) -> i64 {
    let rows = w.len();
    let cols = w.iter().map(Vec::len).max().unwrap_or(0);
    let n = rows.max(cols);
    if n == 0 {
        return 0;
    }
    let maxw = w.iter().flatten().copied().max().unwrap_or(0);
    // Minimise cost = maxw - weight on an n×n matrix (1-based potentials, e-maxx formulation).
    let cost = |i: usize, j: usize| -> i64 {
        maxw - w.get(i).and_then(|r| r.get(j)).copied().unwrap_or(0)
    };
    let (mut u, mut v) = (vec![0i64; n + 1], vec![0i64; n + 1]);
    let (mut p, mut way) = (vec![0usize; n + 1], vec![0usize; n + 1]);
    for i in 1..=n {
        p[0] = i;
        let mut j0 = 0;
        let mut minv = vec![i64::MAX; n + 1];
        let mut used = vec![false; n + 1];
        loop {
            used[j0] = true;
            let i0 = p[j0];
            let mut delta = i64::MAX;
            let mut j1 = 0;
            for j in 1..=n {
                if !used[j] {
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
    (1..=n)
        .filter(|&j| p[j] > 0)
        .map(|j| {
            w.get(p[j] - 1)
                .and_then(|r| r.get(j - 1))
                .copied()
                .unwrap_or(0)
        })
        .sum()
}

#[derive(Default)]
struct Mot {
    gt: u64,
    hyp: u64,
    fn_: u64,
    fp: u64,
    idsw: u64,
    det_tp: u64,
    det_fn: u64,
    det_fp: u64,
    /// (gt id, hyp id) → frames with IoU ≥ 0.5 (for IDF1).
    overlap: HashMap<(u64, u64), i64>,
    last_match: HashMap<u64, u64>,
}

impl Mot {
    fn frame(&mut self, gt: &[(u64, BBox)], hyp: &[TrackView]) {
        self.gt += gt.len() as u64;
        self.hyp += hyp.len() as u64;
        let gb: Vec<BBox> = gt.iter().map(|g| g.1).collect();
        let hb: Vec<BBox> = hyp.iter().map(|h| h.bbox).collect();
        for (i, g) in gb.iter().enumerate() {
            for (j, h) in hb.iter().enumerate() {
                if g.iou(h) >= 0.5 {
                    *self.overlap.entry((gt[i].0, hyp[j].id)).or_default() += 1;
                }
            }
        }
        // CLEAR MOT: keep last frame's correspondences while they still overlap.
        let (mut tg, mut th) = (vec![false; gt.len()], vec![false; hyp.len()]);
        let mut matches = Vec::new();
        for (i, (gid, g)) in gt.iter().enumerate() {
            if let Some(hid) = self.last_match.get(gid) {
                if let Some(j) = hyp
                    .iter()
                    .position(|h| h.id == *hid && !th[h_index(hyp, h.id)])
                {
                    if g.iou(&hb[j]) >= 0.5 {
                        tg[i] = true;
                        th[j] = true;
                        matches.push((i, j));
                    }
                }
            }
        }
        matches.extend(greedy(&gb, &hb, &tg, &th));
        for &(i, j) in &matches {
            let (gid, hid) = (gt[i].0, hyp[j].id);
            if let Some(prev) = self.last_match.insert(gid, hid) {
                if prev != hid {
                    self.idsw += 1;
                }
            }
        }
        self.fn_ += (gt.len() - matches.len()) as u64;
        self.fp += (hyp.len() - matches.len()) as u64;
    }

    fn detections(&mut self, gt: &[(u64, BBox)], dets: &[BBox]) {
        let gb: Vec<BBox> = gt.iter().map(|g| g.1).collect();
        let m = greedy(&gb, dets, &vec![false; gb.len()], &vec![false; dets.len()]).len() as u64;
        self.det_tp += m;
        self.det_fn += gb.len() as u64 - m;
        self.det_fp += dets.len() as u64 - m;
    }

    fn mota(&self) -> f64 {
        1.0 - (self.fn_ + self.fp + self.idsw) as f64 / self.gt.max(1) as f64
    }

    fn idf1(&self) -> f64 {
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
        let idtp = max_assignment(&w) as f64;
        2.0 * idtp / (self.gt + self.hyp).max(1) as f64
    }
}

fn h_index(hyp: &[TrackView], id: u64) -> usize {
    hyp.iter().position(|h| h.id == id).unwrap_or(0)
}

pub struct TrackingArgs<'a> {
    pub video: &'a Path,
    pub gt: &'a Path,
    pub camera: Camera,
    pub models: &'a Path,
    pub detector: &'a str,
    pub threshold: f32,
    pub nms_iou: f32,
}

pub fn tracking(a: TrackingArgs<'_>) -> anyhow::Result<()> {
    let mut detector = Detector::load(a.detector, a.models, a.threshold, a.nms_iou)?;
    let fps = a.camera.fps;
    println!(
        "{} — {} at {fps} fps, detect_every {}, motion gating {}",
        a.video.display(),
        a.detector,
        a.camera.detect_every,
        if a.camera.motion_gating { "on" } else { "off" }
    );
    let mut video = VideoFile::open(a.video, fps, None, Pacing::AsFastAsPossible)?;
    let info = video.info();
    let (w, h) = (info.width as f32, info.height as f32);
    // Ground-truth frame numbers count the video's own frames (seqinfo.ini beside gt.txt).
    let native =
        a.gt.parent()
            .and_then(|d| std::fs::read_to_string(d.join("seqinfo.ini")).ok())
            .and_then(|t| {
                t.lines()
                    .find_map(|l| l.strip_prefix("frameRate="))
                    .and_then(|v| v.trim().parse::<f32>().ok())
            })
            .unwrap_or(fps);
    let gt = read_gt(a.gt, w, h)?;
    let mut ours = CameraSignals::new(&a.camera);
    let mut truth = CameraSignals::new(&a.camera);
    let mut cadence = Cadence::new(CadenceParams {
        detect_every: a.camera.detect_every,
        motion_gating: a.camera.motion_gating,
        ..CadenceParams::default()
    });
    let mut motion = MotionDetector::new(MotionParams::default());
    let mut mot = Mot::default();
    let (mut frames, mut detected) = (0u64, 0u64);
    let mut last = Vec::new();
    while let Some(f) = video.next_frame()? {
        let n = (f.t_ms as f64 * f64::from(native) / 1000.0).round() as u64 + 1;
        let g = gt.get(&n).cloned().unwrap_or_default();
        let (fw, fh) = (f.width as usize, f.height as usize);
        let moved = !a.camera.motion_gating || motion.moved(&f.rgb, fw, fh);
        let update = match cadence.decide(f.t_ms, moved) {
            Step::Detect => {
                let d = detector.detect(&f.rgb, fw, fh)?;
                motion.accept();
                detected += 1;
                mot.detections(&g, &d.iter().map(|d| d.bbox).collect::<Vec<_>>());
                last = d;
                ours.observe(f.t_ms, &last)
            }
            Step::Reuse => ours.observe(f.t_ms, &last),
            Step::Predict => ours.observe_predicted(f.t_ms),
        };
        mot.frame(&g, &update.tracks);
        truth.observe_tracks(
            f.t_ms,
            TrackUpdate {
                tracks: g
                    .iter()
                    .map(|(id, b)| TrackView {
                        id: *id,
                        bbox: *b,
                        coasting: false,
                    })
                    .collect(),
                ended: vec![],
            },
        );
        frames += 1;
    }
    ours.finish();
    let end = (frames as f64 * 1000.0 / f64::from(fps)) as u64 + 1;
    let (a_body, t_body) = (ours.take_window(0, end, 0), truth.take_window(0, end, 0));
    let pct = |x: f64| format!("{:.1} %", 100.0 * x);
    let recall = mot.det_tp as f64 / (mot.det_tp + mot.det_fn).max(1) as f64;
    let precision = mot.det_tp as f64 / (mot.det_tp + mot.det_fp).max(1) as f64;
    println!("\n| metric | value |\n|---|---|");
    println!("| frames (detector ran) | {frames} ({detected}) |");
    println!("| ground-truth boxes | {} |", mot.gt);
    println!(
        "| detection recall / precision (IoU ≥ 0.5) | {} / {} |",
        pct(recall),
        pct(precision)
    );
    println!(
        "| MOTA | {} (FN {}, FP {}, ID switches {}) |",
        pct(mot.mota()),
        mot.fn_,
        mot.fp,
        mot.idsw
    );
    println!("| IDF1 | {} |", pct(mot.idf1()));
    println!("\n| count | ground truth | Vitrine | error |\n|---|---|---|---|");
    let mut total_gt = 0u64;
    let mut total_err = 0u64;
    for (o, t) in a_body.lines.iter().zip(&t_body.lines) {
        for (dir, x, y) in [("in", o.r#in, t.r#in), ("out", o.out, t.out)] {
            let (x, y) = (u64::from(x.unwrap_or(0)), u64::from(y.unwrap_or(0)));
            total_gt += y;
            total_err += x.abs_diff(y);
            println!(
                "| line {} {dir} | {y} | {x} | {:+} |",
                o.id,
                x as i64 - y as i64
            );
        }
    }
    for (o, t) in a_body.zones.iter().zip(&t_body.zones) {
        let (x, y) = (
            u64::from(o.visits.unwrap_or(0)),
            u64::from(t.visits.unwrap_or(0)),
        );
        println!(
            "| zone {} visits | {y} | {x} | {:+} |",
            o.id,
            x as i64 - y as i64
        );
        println!(
            "| zone {} mean occupancy | {:.2} | {:.2} | |",
            o.id,
            t.occupancy_mean.unwrap_or(0.0),
            o.occupancy_mean.unwrap_or(0.0)
        );
    }
    println!(
        "| people in view (mean) | {:.2} | {:.2} | |",
        t_body.people.mean.unwrap_or(0.0),
        a_body.people.mean.unwrap_or(0.0)
    );
    if total_gt > 0 {
        println!(
            "\nline counts: {total_err} off out of {total_gt} crossings ({:.1} %)",
            100.0 * total_err as f64 / total_gt as f64
        );
    }
    Ok(())
}

/// Voice activity frame agreement: `speech` (clean) mixed with `noise` at `snr_db`.
pub fn vad(
    models: &Path,
    speech: &Path,
    noise: &Path,
    snr_db: f64,
    threshold: f32,
) -> anyhow::Result<()> {
    use vitrine_models::vad::CHUNK;
    use vitrine_sensors::audio_file::AudioFile;
    use vitrine_sensors::AudioSource;
    let read = |p: &Path| -> anyhow::Result<Vec<f32>> {
        let mut f = AudioFile::open(p, Pacing::AsFastAsPossible)?;
        let mut v = Vec::new();
        while let Some(b) = f.next_block()? {
            v.extend_from_slice(&b.samples);
        }
        Ok(v)
    };
    let (s, n) = (read(speech)?, read(noise)?);
    anyhow::ensure!(!s.is_empty() && !n.is_empty(), "empty audio");
    let chunks = s.len() / CHUNK;
    let db = |x: &[f32]| vitrine_signals::audio::dbfs(vitrine_signals::audio::rms(x));
    // Labels from the clean speech: a chunk is speech when within 30 dB of the loudest chunk.
    let levels: Vec<f64> = (0..chunks)
        .map(|i| db(&s[i * CHUNK..(i + 1) * CHUNK]))
        .collect();
    let loud = levels.iter().copied().fold(f64::MIN, f64::max);
    let labels: Vec<bool> = levels.iter().map(|l| *l > loud - 30.0).collect();
    let speech_pow: f64 = (0..chunks)
        .filter(|i| labels[*i])
        .map(|i| {
            s[i * CHUNK..(i + 1) * CHUNK]
                .iter()
                .map(|x| f64::from(*x).powi(2))
                .sum::<f64>()
        })
        .sum::<f64>()
        / (labels.iter().filter(|l| **l).count().max(1) * CHUNK) as f64;
    let noise_pow = n.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>() / n.len() as f64;
    let gain = (speech_pow / noise_pow.max(1e-12) / 10f64.powf(snr_db / 10.0)).sqrt() as f32;
    let mut vad = Vad::load("silero-vad", models)?;
    let (mut agree, mut tp, mut fp, mut fn_) = (0u64, 0u64, 0u64, 0u64);
    let mut mix = vec![0f32; CHUNK];
    for (i, &label) in labels.iter().enumerate() {
        for (k, m) in mix.iter_mut().enumerate() {
            let j = i * CHUNK + k;
            *m = (s[j] + gain * n[j % n.len()]).clamp(-1.0, 1.0);
        }
        let said = vad.process(&mix)? >= threshold;
        agree += u64::from(said == label);
        match (said, label) {
            (true, true) => tp += 1,
            (true, false) => fp += 1,
            (false, true) => fn_ += 1,
            _ => {}
        }
    }
    println!(
        "| VAD: {} + {} at {snr_db} dB SNR | frames {chunks} (32 ms) | labelled speech {:.0} % | agreement {:.1} % | speech recall {:.1} % | precision {:.1} % |",
        speech.file_name().unwrap_or_default().to_string_lossy(),
        noise.file_name().unwrap_or_default().to_string_lossy(),
        100.0 * labels.iter().filter(|l| **l).count() as f64 / chunks.max(1) as f64,
        100.0 * agree as f64 / chunks.max(1) as f64,
        100.0 * tp as f64 / (tp + fn_).max(1) as f64,
        100.0 * tp as f64 / (tp + fp).max(1) as f64,
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_assignment_finds_the_best_total_not_the_greedy_one() {
        // Greedy takes 9 then 1 (total 10); the optimum is 8 + 7 = 15.
        assert_eq!(max_assignment(&[vec![9, 8], vec![7, 1]]), 15);
        assert_eq!(max_assignment(&[vec![5, 0, 0]]), 5);
        assert_eq!(max_assignment(&[vec![1], vec![4], vec![2]]), 4);
        assert_eq!(max_assignment(&[]), 0);
    }

    #[test]
    fn mota_counts_misses_false_positives_and_switches() {
        let b = BBox::new(0.1, 0.1, 0.3, 0.5);
        let far = BBox::new(0.6, 0.1, 0.8, 0.5);
        let view = |id, bbox| TrackView {
            id,
            bbox,
            coasting: false,
        };
        let mut m = Mot::default();
        m.frame(&[(1, b)], &[view(10, b)]);
        m.frame(&[(1, b)], &[view(11, b), view(12, far)]);
        m.frame(&[(1, b), (2, far)], &[view(11, b)]);
        assert_eq!((m.gt, m.fn_, m.fp, m.idsw), (4, 1, 1, 1));
        assert!((m.mota() - 0.25).abs() < 1e-9);
        // Identity: gt 1 with hyp 11 for 2 of its 3 frames.
        assert!((m.idf1() - 2.0 * 2.0 / (4.0 + 4.0)).abs() < 1e-9);
    }
}
