//! Motion gating (Frigate's idea): a frame that did not change since the last frame the
//! detector saw needs no new detection. Frames are reduced to a small grayscale thumbnail
//! (block averages, which also removes sensor noise) and compared pixel by pixel with the
//! thumbnail of the last detected frame; slow changes therefore accumulate until they count.
//!
//! The thumbnail is a fixed 64x48 buffer allocated once; it never leaves this struct.

/// Thumbnail size: coarse enough to ignore noise, fine enough that a distant person (a few
/// percent of the image height) covers several cells.
pub const THUMB_W: usize = 64;
pub const THUMB_H: usize = 48;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MotionParams {
    /// A cell changed when its mean gray level moved by more than this (0..255).
    pub cell_delta: u8,
    /// Motion when more than this fraction of cells changed.
    pub min_fraction: f32,
}

impl Default for MotionParams {
    fn default() -> Self {
        MotionParams {
            cell_delta: 12,
            min_fraction: 0.002,
        }
    }
}

pub struct MotionDetector {
    params: MotionParams,
    reference: Option<Box<[u8; THUMB_W * THUMB_H]>>,
    current: Box<[u8; THUMB_W * THUMB_H]>,
    sums: Box<[u32; THUMB_W * THUMB_H]>,
    counts: Box<[u32; THUMB_W * THUMB_H]>,
    /// Thumbnail column of every second source column, for the last frame width.
    col_cell: Vec<usize>,
}

impl std::fmt::Debug for MotionDetector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MotionDetector {{ {:?} }}", self.params)
    }
}

impl MotionDetector {
    pub fn new(params: MotionParams) -> MotionDetector {
        MotionDetector {
            params,
            reference: None,
            current: Box::new([0; THUMB_W * THUMB_H]),
            sums: Box::new([0; THUMB_W * THUMB_H]),
            counts: Box::new([0; THUMB_W * THUMB_H]),
            col_cell: Vec::new(),
        }
    }

    /// Thumbnail `rgb` (w×h RGB24) and return the fraction of cells that changed since the
    /// reference (1.0 when there is no reference yet or the size is unusable).
    pub fn measure(&mut self, rgb: &[u8], w: usize, h: usize) -> f32 {
        if w < THUMB_W || h < THUMB_H || rgb.len() != w * h * 3 {
            return 1.0;
        }
        self.sums.fill(0);
        self.counts.fill(0);
        // Every second row and column: a quarter of the reads, same block means in practice.
        // The column map is computed once per frame width (no allocation per frame).
        if self.col_cell.len() != w.div_ceil(2) {
            self.col_cell = (0..w).step_by(2).map(|x| x * THUMB_W / w).collect();
        }
        let (col_cell, counts) = (&self.col_cell, &mut self.counts);
        for y in (0..h).step_by(2) {
            let cy = y * THUMB_H / h;
            let row = &rgb[y * w * 3..(y + 1) * w * 3];
            let base = cy * THUMB_W;
            for (i, &cx) in col_cell.iter().enumerate() {
                let p = &row[i * 6..i * 6 + 3];
                // Integer luma (BT.601 weights / 256).
                let luma =
                    (77 * u32::from(p[0]) + 150 * u32::from(p[1]) + 29 * u32::from(p[2])) >> 8;
                self.sums[base + cx] += luma;
                counts[base + cx] += 1;
            }
        }
        for ((c, s), n) in self
            .current
            .iter_mut()
            .zip(self.sums.iter())
            .zip(counts.iter())
        {
            *c = (s / (*n).max(1)) as u8;
        }
        let Some(reference) = &self.reference else {
            return 1.0;
        };
        let changed = self
            .current
            .iter()
            .zip(reference.iter())
            .filter(|(a, b)| a.abs_diff(**b) > self.params.cell_delta)
            .count();
        changed as f32 / (THUMB_W * THUMB_H) as f32
    }

    /// Measure and decide: did the frame change since the reference?
    pub fn moved(&mut self, rgb: &[u8], w: usize, h: usize) -> bool {
        let f = self.measure(rgb, w, h);
        self.is_motion(f)
    }

    /// Whether a measured fraction counts as motion.
    pub fn is_motion(&self, fraction: f32) -> bool {
        fraction > self.params.min_fraction
    }

    /// The detector ran on the last measured frame: it becomes the reference.
    pub fn accept(&mut self) {
        match &mut self.reference {
            Some(r) => r.copy_from_slice(&self.current[..]),
            None => self.reference = Some(self.current.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(w: usize, h: usize, fill: u8) -> Vec<u8> {
        vec![fill; w * h * 3]
    }

    #[test]
    fn the_first_frame_always_counts_as_motion() {
        let mut m = MotionDetector::new(MotionParams::default());
        assert_eq!(m.measure(&frame(640, 480, 90), 640, 480), 1.0);
    }

    #[test]
    fn an_unchanged_noisy_frame_is_still() {
        let mut m = MotionDetector::new(MotionParams::default());
        let mut f = frame(640, 480, 100);
        m.measure(&f, 640, 480);
        m.accept();
        // Sensor noise: ±8 levels on every pixel, deterministic pattern.
        for (i, v) in f.iter_mut().enumerate() {
            *v = (100 + (i * 7919 % 17) as i32 - 8) as u8;
        }
        let frac = m.measure(&f, 640, 480);
        assert!(!m.is_motion(frac), "noise counted as motion: {frac}");
    }

    #[test]
    fn a_small_person_sized_change_is_motion() {
        let mut m = MotionDetector::new(MotionParams::default());
        let (w, h) = (768, 576);
        let mut f = frame(w, h, 120);
        m.measure(&f, w, h);
        m.accept();
        // A 20x50 px dark figure (a distant pedestrian seen from above).
        for y in 300..350 {
            for x in 400..420 {
                f[(y * w + x) * 3..(y * w + x) * 3 + 3].fill(30);
            }
        }
        let frac = m.measure(&f, w, h);
        assert!(m.is_motion(frac), "person not seen: {frac}");
    }

    #[test]
    fn slow_changes_accumulate_against_the_detected_frame() {
        let mut m = MotionDetector::new(MotionParams::default());
        let (w, h) = (320, 240);
        let mut f = frame(w, h, 100);
        m.measure(&f, w, h);
        m.accept();
        let mut moved = false;
        for step in 1..=10u8 {
            // A region brightening by 3 levels per frame: each step alone is below the delta.
            for y in 0..120 {
                for x in 0..160 {
                    f[(y * w + x) * 3..(y * w + x) * 3 + 3].fill(100 + 3 * step);
                }
            }
            let frac = m.measure(&f, w, h);
            moved |= m.is_motion(frac);
        }
        assert!(moved, "accumulated change never detected");
    }

    #[test]
    fn a_frame_smaller_than_the_thumbnail_is_always_analysed() {
        let mut m = MotionDetector::new(MotionParams::default());
        assert_eq!(m.measure(&frame(32, 24, 0), 32, 24), 1.0);
        assert_eq!(m.measure(&[0; 5], 64, 48), 1.0);
    }
}
