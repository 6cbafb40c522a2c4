//! Where a person stands: the bottom-centre of their box — unless the box lost its feet.
//!
//! A person half hidden behind another (or behind a counter) gets a box cut short at the
//! bottom: its bottom edge jumps up by a third of a body, which to a line along the walkway
//! looks like a crossing and to a zone like a step. A box that suddenly is noticeably shorter
//! than the person's recent height ([`TRUNCATED`]) keeps its top (the head is what stays in
//! view) and the recent height: the feet are placed where they were, not where the box ends.
//! A box cut by the image's top border keeps its bottom. (Treating boxes at the other borders as
//! footless was tried and measured: it lost crossings near the border — a door at the image's
//! edge — and fixed nothing on the suite; a box cut at the bottom border still has its feet on
//! the right side of any line in the image.)

use std::collections::HashMap;

use crate::geom::Point;
use crate::track::TrackView;

/// A box shorter than this share of the person's recent height is taken as cut short.
pub const TRUNCATED: f32 = 0.85;
/// How fast the recent height may fall, as a share per second (walking away shrinks a person
/// by a few per cent a second; an occlusion by a third at once).
pub const HEIGHT_FALL_PER_S: f32 = 0.2;
/// Boxes within this distance of the top border (normalized) are cut there, not below.
const BORDER: f32 = 0.01;
/// The largest coordinate of a standing point: just inside the picture's right and bottom
/// edges (a point on an area's edge is outside it).
const INSIDE: f32 = 1.0 - 1e-4;

/// A person's standing point in one frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Foot {
    pub key: u64,
    pub at: Point,
    /// The person's recent height (normalized): what lines scale their band with.
    pub height: f32,
}

/// Each person's recent height.
#[derive(Debug, Default)]
pub struct Footing {
    recent: HashMap<u64, (f32, u64)>,
}

impl Footing {
    pub fn place(&mut self, now_ms: u64, people: &[TrackView]) -> Vec<Foot> {
        people
            .iter()
            .map(|t| {
                let b = t.bbox;
                let h = b.h();
                let recent = match self.recent.get(&t.id) {
                    Some(&(r, at)) => {
                        let dt = now_ms.saturating_sub(at) as f32 / 1000.0;
                        h.max(r * (1.0 - HEIGHT_FALL_PER_S * dt).max(0.0))
                    }
                    None => h,
                };
                self.recent.insert(t.id, (recent, now_ms));
                let touches_top = b.y1 <= BORDER;
                let cut_short = h < TRUNCATED * recent && !touches_top;
                let at = if cut_short {
                    Point {
                        x: b.center().x,
                        y: b.y1 + recent,
                    }
                } else {
                    b.foot()
                };
                // Someone whose feet are below the picture (a box cut by its bottom edge, or a
                // smoothed box overshooting it) stands on its edge: inside an area drawn to it.
                let at = Point {
                    x: at.x.clamp(0.0, INSIDE),
                    y: at.y.clamp(0.0, INSIDE),
                };
                Foot {
                    key: t.id,
                    at,
                    height: recent,
                }
            })
            .collect()
    }

    pub fn forget(&mut self, key: u64) {
        self.recent.remove(&key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geom::BBox;

    fn view(y1: f32, y2: f32) -> TrackView {
        TrackView {
            id: 1,
            bbox: BBox::new(0.4, y1, 0.5, y2),
        }
    }

    #[test]
    fn a_box_cut_short_keeps_its_feet_where_they_were() {
        let mut f = Footing::default();
        f.place(0, &[view(0.3, 0.7)]);
        // Legs hidden: the box ends at 0.55; the feet stay near 0.7.
        let foot = f.place(100, &[view(0.3, 0.55)])[0];
        assert!((foot.at.y - 0.7).abs() < 0.01, "{foot:?}");
        // A person walking away shrinks slowly: feet follow the box.
        let mut f = Footing::default();
        for i in 0..10u64 {
            let foot = f.place(i * 100, &[view(0.3, 0.7 - 0.002 * i as f32)])[0];
            assert!((foot.at.y - (0.7 - 0.002 * i as f32)).abs() < 1e-6);
        }
    }

    #[test]
    fn feet_below_the_picture_stand_on_its_edge() {
        let mut f = Footing::default();
        let foot = f.place(0, &[view(0.5, 1.08)])[0];
        assert!(foot.at.y < 1.0 && foot.at.y > 0.999, "{foot:?}");
        let whole = [
            Point { x: 0.0, y: 0.0 },
            Point { x: 1.0, y: 0.0 },
            Point { x: 1.0, y: 1.0 },
            Point { x: 0.0, y: 1.0 },
        ];
        assert!(crate::geom::in_polygon(foot.at, &whole));
    }

    #[test]
    fn a_box_cut_at_the_top_keeps_its_feet() {
        let mut f = Footing::default();
        // Head out of view: the bottom is still the feet.
        f.place(0, &[view(0.2, 0.7)]);
        let foot = f.place(100, &[view(0.0, 0.7)])[0];
        assert!((foot.at.y - 0.7).abs() < 1e-6);
    }
}
