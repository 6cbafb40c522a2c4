//! Where a person stands: the bottom-centre of their box — unless the box lost its feet.
//!
//! A person half hidden behind another (or behind a counter) gets a box cut short at the
//! bottom: its bottom edge jumps up by a third of a body, which to a line along the walkway
//! looks like a crossing and to a zone like a step. A box that suddenly is noticeably shorter
//! than the person's recent height ([`TRUNCATED`]) keeps its top (the head is what stays in
//! view) and the recent height: the feet are placed where they were, not where the box ends.
//! A box touching the image's left, right or bottom border has no reliable feet at all (the
//! person is partly out of view): lines wait for a better look ([`Foot::reliable`]).

use std::collections::HashMap;

use crate::geom::Point;
use crate::track::TrackView;

/// A box shorter than this share of the person's recent height is taken as cut short.
pub const TRUNCATED: f32 = 0.85;
/// How fast the recent height may fall, as a share per second (walking away shrinks a person
/// by a few per cent a second; an occlusion by a third at once).
pub const HEIGHT_FALL_PER_S: f32 = 0.2;
/// Boxes within this distance of a border (normalized) touch it.
const BORDER: f32 = 0.01;

/// A person's standing point in one frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Foot {
    pub key: u64,
    pub at: Point,
    /// The person's recent height (normalized): what lines scale their band with.
    pub height: f32,
    /// False when the box touches the image border: the feet may be out of view.
    pub reliable: bool,
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
                let reliable = b.x1 > BORDER && b.x2 < 1.0 - BORDER && b.y2 < 1.0 - BORDER;
                Foot {
                    key: t.id,
                    at,
                    height: recent,
                    reliable,
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
        assert!(foot.reliable);
        // A person walking away shrinks slowly: feet follow the box.
        let mut f = Footing::default();
        for i in 0..10u64 {
            let foot = f.place(i * 100, &[view(0.3, 0.7 - 0.002 * i as f32)])[0];
            assert!((foot.at.y - (0.7 - 0.002 * i as f32)).abs() < 1e-6);
        }
    }

    #[test]
    fn a_box_at_the_border_has_no_reliable_feet() {
        let mut f = Footing::default();
        let b = TrackView {
            id: 2,
            bbox: BBox::new(0.95, 0.3, 1.0, 0.7),
        };
        assert!(!f.place(0, &[b])[0].reliable);
        let b = TrackView {
            id: 3,
            bbox: BBox::new(0.4, 0.6, 0.5, 1.0),
        };
        assert!(!f.place(0, &[b])[0].reliable);
        // Cut at the top (head out of view): the bottom is still the feet.
        f.place(0, &[view(0.2, 0.7)]);
        let foot = f.place(100, &[view(0.0, 0.7)])[0];
        assert!((foot.at.y - 0.7).abs() < 1e-6);
    }
}
