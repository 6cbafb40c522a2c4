//! The heatmap: where people stood over a window, as person-seconds per cell of a coarse grid
//! over the image (feet positions). A cell is published only when at least `k_min` different
//! people stood in it (k-anonymity per cell); the distinct people are counted up to a fixed
//! bound, so memory does not grow with traffic.

use vitrine_config::Heatmap;

use super::foot::Foot;
use crate::event::{round3, HeatmapStats};

/// Distinct people remembered per cell (enough for any sensible `k_min`).
pub const MAX_DISTINCT: usize = 64;

#[derive(Debug)]
pub struct HeatAcc {
    grid: Heatmap,
    person_ms: Vec<u64>,
    people: Vec<Vec<u64>>,
    last_ms: Option<u64>,
}

impl HeatAcc {
    pub fn new(grid: Heatmap) -> HeatAcc {
        let n = (grid.cols * grid.rows) as usize;
        HeatAcc {
            grid,
            person_ms: vec![0; n],
            people: vec![Vec::new(); n],
            last_ms: None,
        }
    }

    fn cell(&self, f: &Foot) -> usize {
        let c = (f.at.x.clamp(0.0, 0.9999) * self.grid.cols as f32) as usize;
        let r = (f.at.y.clamp(0.0, 0.9999) * self.grid.rows as f32) as usize;
        r * self.grid.cols as usize + c
    }

    /// One placed frame: each person adds the time since the previous frame (at most
    /// `interval_ms`, the frame interval: a gap in the input is not time spent) to their cell.
    pub fn observe(&mut self, now_ms: u64, feet: &[Foot], interval_ms: u64) {
        let dt = match self.last_ms {
            Some(prev) => now_ms.saturating_sub(prev).min(interval_ms),
            None => interval_ms,
        };
        self.last_ms = Some(now_ms);
        for f in feet {
            let i = self.cell(f);
            self.person_ms[i] += dt;
            let seen = &mut self.people[i];
            if seen.len() < MAX_DISTINCT && !seen.contains(&f.key) {
                seen.push(f.key);
            }
        }
    }

    /// The window's grid (row by row from the top), then a fresh window.
    pub fn take(&mut self, k_min: u32) -> HeatmapStats {
        let mut suppressed = 0;
        let cells = self
            .person_ms
            .iter()
            .zip(&self.people)
            .map(|(ms, who)| {
                if *ms > 0 && (who.len() as u32) < k_min {
                    suppressed += 1;
                    None
                } else {
                    Some(round3(*ms as f64 / 1000.0))
                }
            })
            .collect();
        self.person_ms.iter_mut().for_each(|m| *m = 0);
        self.people.iter_mut().for_each(Vec::clear);
        HeatmapStats {
            cols: self.grid.cols,
            rows: self.grid.rows,
            person_seconds: cells,
            suppressed_cells: suppressed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geom::Point;

    fn foot(key: u64, x: f32, y: f32) -> Foot {
        Foot {
            key,
            at: Point { x, y },
            height: 0.2,
        }
    }

    #[test]
    fn person_seconds_land_in_the_cell_under_the_feet() {
        let mut h = HeatAcc::new(Heatmap { cols: 4, rows: 2 });
        for i in 0..10 {
            h.observe(i * 100, &[foot(1, 0.1, 0.9), foot(2, 0.9, 0.1)], 100);
        }
        let s = h.take(0);
        assert_eq!(s.person_seconds.len(), 8);
        assert_eq!(s.person_seconds[4], Some(1.0), "bottom-left");
        assert_eq!(s.person_seconds[3], Some(1.0), "top-right");
        assert_eq!(s.person_seconds.iter().flatten().sum::<f64>(), 2.0);
    }

    #[test]
    fn a_cell_fewer_than_k_people_stood_in_is_suppressed_and_empty_cells_are_zero() {
        let mut h = HeatAcc::new(Heatmap { cols: 2, rows: 1 });
        for i in 0..50 {
            h.observe(i * 100, &[foot(1, 0.1, 0.5)], 100);
        }
        for k in 10..13 {
            h.observe(6000 + (k - 10) * 100, &[foot(k, 0.9, 0.5)], 100);
        }
        let s = h.take(3);
        assert_eq!(s.person_seconds, vec![None, Some(0.3)]);
        assert_eq!(s.suppressed_cells, 1);
        assert_eq!(h.take(3).person_seconds, vec![Some(0.0), Some(0.0)]);
    }

    #[test]
    fn a_gap_in_the_input_is_not_time_spent() {
        let mut h = HeatAcc::new(Heatmap { cols: 1, rows: 1 });
        h.observe(0, &[foot(1, 0.5, 0.5)], 100);
        h.observe(60_000, &[foot(1, 0.5, 0.5)], 100);
        assert_eq!(h.take(0).person_seconds, vec![Some(0.2)]);
    }
}
