//! Finding a lost person again after a longer gap: behind a post, a sign, a shelf end or other
//! people, someone is out of sight for seconds and comes out a few steps further on, often
//! with a box unlike their last one (cut by the occluder, or merged with a neighbour's).
//! Overlap no longer says anything then; what does (OC-SORT's virtual trajectory, Hybrid-SORT's
//! weak cues):
//!
//! - **where they can be**: on their way from the last observation, at the speed they walked
//!   before they were lost (measured from observations, not the filter, so an occluder eating
//!   into the box does not bend it), or anywhere short of it (people stop behind things), give
//!   or take a margin that grows with the gap;
//! - **how tall they are**: the track's full height (a box cut short by an occluder does not
//!   shrink it), within a ratio;
//! - **what they look like** (where both sides have a descriptor): colour statistics of the
//!   torso and legs (`appearance`).
//!
//! All distances are in the person's heights, with x scaled to the image's aspect.

use super::appearance::Appearance;
use crate::geom::{BBox, Point};

/// The longest gap bridged by default: someone out of sight this long is still the same person
/// (the scene keeps their visits and crossings open as long, see `scene::GRACE_MS`). Measured on
/// the accuracy suite: 2 s lost crossings made behind a group or a post (people come out later
/// than that); beyond 3 s nothing more was gained.
pub const MAX_GAP_MS: u64 = 3000;

/// How a lost track may be found again.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Relink {
    /// Longest gap bridged (a track lost away from the image's border lives this long).
    pub max_gap_ms: u64,
    /// Margin around the path, in heights, at a gap of zero...
    pub base: f32,
    /// ... growing by this many heights per second of the gap.
    pub reach: f32,
    /// The speed taken from before the loss is capped (heights per second).
    pub max_speed: f32,
    /// Largest ratio between the candidate's height and the track's full height.
    pub height_ratio: f32,
    /// Appearance distance (0..1) beyond which a candidate is someone else.
    pub max_appearance: f32,
    /// Weight of the appearance distance in the cost (the motion part is 0..1).
    pub appearance_weight: f32,
}

impl Default for Relink {
    fn default() -> Self {
        Relink {
            max_gap_ms: MAX_GAP_MS,
            base: 0.35,
            reach: 0.5,
            max_speed: 1.5,
            height_ratio: 1.35,
            max_appearance: 0.6,
            appearance_weight: 1.0,
        }
    }
}

/// What a lost track offers to the re-link: where and when it was last seen, how tall it is,
/// how it was moving and what it looked like.
#[derive(Debug, Clone, Copy)]
pub struct LostView {
    pub last_ms: u64,
    pub foot: Point,
    pub height: f32,
    /// Foot velocity when lost, normalized units per second.
    pub velocity: (f32, f32),
    pub appearance: Option<Appearance>,
}

/// Whether a box is cut short against the person's full height: a good deal shorter, and not
/// because the image's top cuts it.
pub fn cut_short(b: &BBox, height: f32) -> bool {
    b.h() < 0.85 * height && b.y1 > 0.01
}

/// Where a box's person stands, given their full height: the bottom of the box, unless the
/// box is cut short (then the top plus the full height).
pub fn foot_of(b: &BBox, height: f32) -> Point {
    if cut_short(b, height) {
        Point {
            x: b.center().x,
            y: b.y1 + height,
        }
    } else {
        b.foot()
    }
}

/// Distance from `p` to the segment `a`–`b`, x scaled by `aspect`.
fn to_segment(p: Point, a: Point, b: Point, aspect: f32) -> f32 {
    let (px, ax, bx) = (p.x * aspect, a.x * aspect, b.x * aspect);
    let (dx, dy) = (bx - ax, b.y - a.y);
    let len2 = dx * dx + dy * dy;
    let t = if len2 > 0.0 {
        (((px - ax) * dx + (p.y - a.y) * dy) / len2).clamp(0.0, 1.0)
    } else {
        0.0
    };
    (px - ax - t * dx).hypot(p.y - a.y - t * dy)
}

/// The cost (0..1 plus the weighted appearance distance) of taking the detection `d` for the
/// lost person, or `None` when it cannot be them.
pub fn cost(
    lost: &LostView,
    d: &BBox,
    d_look: Option<&Appearance>,
    now_ms: u64,
    aspect: f32,
    p: &Relink,
) -> Option<f32> {
    let gap = now_ms.saturating_sub(lost.last_ms);
    if gap > p.max_gap_ms || lost.height <= 0.0 {
        return None;
    }
    let dt = gap as f32 / 1000.0;
    let h = lost.height;
    let ratio = d.h() / h;
    let cut_at_top = d.y1 <= 0.01;
    if ratio > p.height_ratio || (ratio < 1.0 / p.height_ratio && !cut_at_top) {
        return None;
    }
    // Where they could have walked to, at their speed before the loss (capped).
    let (vx, vy) = lost.velocity;
    let speed = (vx * aspect).hypot(vy) / h;
    let k = if speed > p.max_speed {
        p.max_speed / speed
    } else {
        1.0
    };
    let ahead = Point {
        x: lost.foot.x + vx * k * dt,
        y: lost.foot.y + vy * k * dt,
    };
    let at = foot_of(d, h);
    let dist = to_segment(at, lost.foot, ahead, aspect) / h;
    let gate = p.base + p.reach * dt;
    if dist > gate {
        return None;
    }
    let look = match (lost.appearance.as_ref(), d_look) {
        (Some(a), Some(b)) => {
            let x = a.distance(b);
            if x > p.max_appearance {
                return None;
            }
            x
        }
        _ => 0.0,
    };
    Some(dist / gate + p.appearance_weight * look)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lost(x: f32, vx: f32) -> LostView {
        LostView {
            last_ms: 0,
            foot: Point { x, y: 0.6 },
            height: 0.2,
            velocity: (vx, 0.0),
            appearance: None,
        }
    }

    fn person(x: f32, h: f32) -> BBox {
        BBox::new(x - 0.03, 0.6 - h, x + 0.03, 0.6)
    }

    #[test]
    fn a_walker_is_found_further_on_their_way_or_where_they_stopped() {
        let p = Relink::default();
        // Walking right at 0.1/s (half a height a second), gone 2 s: gate 1.35 heights.
        let l = lost(0.4, 0.1);
        assert!(cost(&l, &person(0.6, 0.2), None, 2000, 1.0, &p).is_some());
        assert!(cost(&l, &person(0.45, 0.2), None, 2000, 1.0, &p).is_some());
        // Far back the way they came, or much too far ahead: someone else.
        assert!(cost(&l, &person(0.1, 0.2), None, 2000, 1.0, &p).is_none());
        assert!(cost(&l, &person(0.95, 0.2), None, 2000, 1.0, &p).is_none());
        // On the way is cheaper than off it.
        let on = cost(&l, &person(0.55, 0.2), None, 2000, 1.0, &p).unwrap();
        let off = cost(&l, &person(0.3, 0.2), None, 2000, 1.0, &p).unwrap();
        assert!(on < off, "{on} {off}");
    }

    #[test]
    fn a_child_is_not_the_adult_who_went_behind_the_post() {
        let p = Relink::default();
        let l = lost(0.4, 0.1);
        assert!(cost(&l, &person(0.6, 0.12), None, 2000, 1.0, &p).is_none());
        // A box cut at the image's top is allowed to be short.
        let cut = BBox::new(0.57, 0.0, 0.63, 0.12);
        assert!(cost(
            &LostView {
                foot: Point { x: 0.4, y: 0.12 },
                ..l
            },
            &cut,
            None,
            2000,
            1.0,
            &p
        )
        .is_some());
    }

    #[test]
    fn the_gap_has_a_limit() {
        let p = Relink::default();
        let l = lost(0.4, 0.0);
        assert!(cost(&l, &person(0.4, 0.2), None, p.max_gap_ms, 1.0, &p).is_some());
        assert!(cost(&l, &person(0.4, 0.2), None, p.max_gap_ms + 1, 1.0, &p).is_none());
    }

    #[test]
    fn a_box_cut_short_stands_where_the_full_height_puts_it() {
        let b = BBox::new(0.4, 0.3, 0.45, 0.4);
        assert!((foot_of(&b, 0.2).y - 0.5).abs() < 1e-6);
        assert!((foot_of(&b, 0.1).y - 0.4).abs() < 1e-6);
    }
}
