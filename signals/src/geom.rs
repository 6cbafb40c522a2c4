//! Geometry in normalized image coordinates (0..1, y down).

pub use vitrine_config::Point;

/// An axis-aligned box, normalized coordinates, `x1 <= x2`, `y1 <= y2`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BBox {
    pub x1: f32,
    pub y1: f32,
    pub x2: f32,
    pub y2: f32,
}

impl BBox {
    pub fn new(x1: f32, y1: f32, x2: f32, y2: f32) -> BBox {
        BBox {
            x1: x1.min(x2),
            y1: y1.min(y2),
            x2: x1.max(x2),
            y2: y1.max(y2),
        }
    }
    pub fn from_center(cx: f32, cy: f32, w: f32, h: f32) -> BBox {
        BBox::new(cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0)
    }
    pub fn w(&self) -> f32 {
        self.x2 - self.x1
    }
    pub fn h(&self) -> f32 {
        self.y2 - self.y1
    }
    pub fn area(&self) -> f32 {
        self.w().max(0.0) * self.h().max(0.0)
    }
    pub fn center(&self) -> Point {
        Point {
            x: (self.x1 + self.x2) / 2.0,
            y: (self.y1 + self.y2) / 2.0,
        }
    }
    /// Bottom-centre: where the person stands. Zones and lines are tested with this point.
    pub fn foot(&self) -> Point {
        Point {
            x: (self.x1 + self.x2) / 2.0,
            y: self.y2,
        }
    }
    /// The box a fraction `f` of the way from this one to `o` (each edge in a straight line).
    pub fn lerp(&self, o: &BBox, f: f32) -> BBox {
        let at = |a: f32, b: f32| a + (b - a) * f;
        BBox::new(
            at(self.x1, o.x1),
            at(self.y1, o.y1),
            at(self.x2, o.x2),
            at(self.y2, o.y2),
        )
    }

    pub fn iou(&self, o: &BBox) -> f32 {
        let iw = (self.x2.min(o.x2) - self.x1.max(o.x1)).max(0.0);
        let ih = (self.y2.min(o.y2) - self.y1.max(o.y1)).max(0.0);
        let inter = iw * ih;
        let union = self.area() + o.area() - inter;
        if union <= 0.0 {
            0.0
        } else {
            inter / union
        }
    }
}

/// Even-odd point-in-polygon test.
pub fn in_polygon(p: Point, poly: &[Point]) -> bool {
    let mut inside = false;
    let n = poly.len();
    let mut j = n.wrapping_sub(1);
    for i in 0..n {
        let (a, b) = (poly[i], poly[j]);
        if (a.y > p.y) != (b.y > p.y) {
            let x = (b.x - a.x) * (p.y - a.y) / (b.y - a.y) + a.x;
            if p.x < x {
                inside = !inside;
            }
        }
        j = i;
    }
    inside
}

/// Signed distance of `p` from the infinite line through `a`→`b`. Negative: left of the
/// direction of travel as seen on the screen (y down), positive: right.
pub fn signed_distance(p: Point, a: Point, b: Point) -> f32 {
    let (dx, dy) = (b.x - a.x, b.y - a.y);
    let len = (dx * dx + dy * dy).sqrt().max(1e-6);
    (dx * (p.y - a.y) - dy * (p.x - a.x)) / len
}

fn orient(a: Point, b: Point, c: Point) -> f32 {
    (b.x - a.x) * (c.y - a.y) - (b.y - a.y) * (c.x - a.x)
}

/// Whether segments p1-p2 and q1-q2 intersect (touching counts).
pub fn segments_intersect(p1: Point, p2: Point, q1: Point, q2: Point) -> bool {
    let d1 = orient(q1, q2, p1);
    let d2 = orient(q1, q2, p2);
    let d3 = orient(p1, p2, q1);
    let d4 = orient(p1, p2, q2);
    (d1 * d2 <= 0.0) && (d3 * d4 <= 0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(x: f32, y: f32) -> Point {
        Point { x, y }
    }

    #[test]
    fn iou_of_identical_and_disjoint_boxes() {
        let a = BBox::new(0.1, 0.1, 0.3, 0.5);
        assert!((a.iou(&a) - 1.0).abs() < 1e-6);
        assert_eq!(a.iou(&BBox::new(0.5, 0.5, 0.6, 0.6)), 0.0);
        let b = BBox::new(0.2, 0.1, 0.4, 0.5);
        assert!((a.iou(&b) - 1.0 / 3.0).abs() < 1e-5);
    }

    #[test]
    fn a_box_part_of_the_way_to_another() {
        let a = BBox::new(0.0, 0.0, 0.2, 0.4);
        let b = BBox::new(0.4, 0.2, 0.8, 0.4);
        assert_eq!(a.lerp(&b, 0.0), a);
        assert_eq!(a.lerp(&b, 1.0), b);
        let m = a.lerp(&b, 0.5);
        assert!(
            (m.x1 - 0.2).abs() < 1e-6 && (m.x2 - 0.5).abs() < 1e-6 && (m.y1 - 0.1).abs() < 1e-6
        );
    }

    #[test]
    fn polygon_membership() {
        let sq = [p(0.2, 0.2), p(0.8, 0.2), p(0.8, 0.8), p(0.2, 0.8)];
        assert!(in_polygon(p(0.5, 0.5), &sq));
        assert!(!in_polygon(p(0.1, 0.5), &sq));
        assert!(!in_polygon(p(0.5, 0.9), &sq));
        let tri = [p(0.0, 1.0), p(0.5, 0.0), p(1.0, 1.0)];
        assert!(in_polygon(p(0.5, 0.9), &tri));
        assert!(!in_polygon(p(0.1, 0.1), &tri));
    }

    #[test]
    fn left_is_negative_on_screen() {
        // Walking right along the screen, "up" on the screen is on the left hand.
        let (a, b) = (p(0.0, 0.5), p(1.0, 0.5));
        assert!(signed_distance(p(0.5, 0.2), a, b) < 0.0);
        assert!(signed_distance(p(0.5, 0.8), a, b) > 0.0);
        assert!((signed_distance(p(0.5, 0.8), a, b) - 0.3).abs() < 1e-6);
    }

    #[test]
    fn segment_intersection() {
        assert!(segments_intersect(
            p(0.0, 0.0),
            p(1.0, 1.0),
            p(0.0, 1.0),
            p(1.0, 0.0)
        ));
        assert!(!segments_intersect(
            p(0.0, 0.0),
            p(0.4, 0.4),
            p(0.6, 0.0),
            p(1.0, 0.0)
        ));
    }
}
