//! Lines nobody chose: a dense grid of counting lines over where people walk.
//!
//! Four families — vertical, horizontal and both diagonals — one line every [`STEP`] of the
//! image, each cut to the walkable region (the convex hull of the annotated feet, see
//! [`super::gt::GroundTruth::region`]) less a margin along the image's edges ([`EDGE`]). A segment shorter than [`MIN_LENGTH`] is left out:
//! it would be crossed by the edge of the region's few walkers only. The suite counts every
//! sequence on all of them and judges a pipeline by the worst line, not the sum alone.

use vitrine_config::{Line, Point, Side};

/// Spacing of a family's lines, in normalized image units along the image's axes.
pub const STEP: f32 = 0.05;
/// Shortest segment kept, normalized image units.
pub const MIN_LENGTH: f32 = 0.1;
/// Lines keep this far from the image's edges: people there are only partly in view, and
/// annotations start and end there (a person entering is annotated once well inside), so
/// neither the truth nor a count can be right on the edge.
pub const EDGE: f32 = 0.06;
/// Id prefix of every grid line (the suite tells them from the chosen lines by it).
pub const PREFIX: &str = "grid-";

/// A family of parallel lines: `a·x + b·y = c` for `c` on a grid of [`STEP`].
struct Family {
    name: &'static str,
    a: f32,
    b: f32,
    /// The range of `c` over the image.
    c: (f32, f32),
}

const FAMILIES: [Family; 4] = [
    Family {
        name: "v",
        a: 1.0,
        b: 0.0,
        c: (0.0, 1.0),
    },
    Family {
        name: "h",
        a: 0.0,
        b: 1.0,
        c: (0.0, 1.0),
    },
    // "\" lines: x - y = c.
    Family {
        name: "d",
        a: 1.0,
        b: -1.0,
        c: (-1.0, 1.0),
    },
    // "/" lines: x + y = c.
    Family {
        name: "a",
        a: 1.0,
        b: 1.0,
        c: (0.0, 2.0),
    },
];

/// The grid lines over `region` (a convex polygon in normalized coordinates), ids like
/// `grid-v0.45` (x = 0.45), `grid-h0.60` (y = 0.60), `grid-d0.30` ("\\": x - y = 0.30; `grid-d-0.30`: x - y = -0.30),
/// `grid-a1.20` ("/": x + y = 1.20).
pub fn lines(region: &[Point]) -> Vec<Line> {
    let region = clip_to_frame(region);
    let region = region.as_slice();
    let mut out = Vec::new();
    for f in &FAMILIES {
        let steps = ((f.c.1 - f.c.0) / STEP).round() as i32;
        for i in 1..steps {
            let c = f.c.0 + i as f32 * STEP;
            let Some((from, to)) = clip(f.a, f.b, c, region) else {
                continue;
            };
            if (to.x - from.x).hypot(to.y - from.y) < MIN_LENGTH {
                continue;
            }
            let id = format!("{PREFIX}{}{c:.2}", f.name);
            out.push(Line {
                id,
                from,
                to,
                in_side: Side::Left,
            });
        }
    }
    out
}

/// The convex polygon cut to the image less its [`EDGE`] (Sutherland–Hodgman against the four
/// sides).
fn clip_to_frame(poly: &[Point]) -> Vec<Point> {
    let (lo, hi) = (EDGE, 1.0 - EDGE);
    // Each side: (inside test, intersection with the side's line).
    type Side = (fn(Point, f32) -> bool, fn(Point, Point, f32) -> Point, f32);
    let cut_x = |p: Point, q: Point, x: f32| Point {
        x,
        y: p.y + (q.y - p.y) * (x - p.x) / (q.x - p.x),
    };
    let cut_y = |p: Point, q: Point, y: f32| Point {
        x: p.x + (q.x - p.x) * (y - p.y) / (q.y - p.y),
        y,
    };
    let sides: [Side; 4] = [
        (|p, v| p.x >= v, cut_x, lo),
        (|p, v| p.x <= v, cut_x, hi),
        (|p, v| p.y >= v, cut_y, lo),
        (|p, v| p.y <= v, cut_y, hi),
    ];
    let mut out = poly.to_vec();
    for (inside, cut, v) in sides {
        let input = std::mem::take(&mut out);
        for i in 0..input.len() {
            let (p, q) = (input[i], input[(i + 1) % input.len()]);
            match (inside(p, v), inside(q, v)) {
                (true, true) => out.push(q),
                (true, false) => out.push(cut(p, q, v)),
                (false, true) => {
                    out.push(cut(p, q, v));
                    out.push(q);
                }
                (false, false) => {}
            }
        }
    }
    out
}

/// The part of the line `a·x + b·y = c` inside the convex polygon `poly`, ordered along the
/// line's direction `(b, -a)` (so every family runs the same way across the image).
pub fn clip(a: f32, b: f32, c: f32, poly: &[Point]) -> Option<(Point, Point)> {
    if poly.len() < 3 {
        return None;
    }
    // Points on the line: p(t) = p0 + t·d, d = (b, -a) / |(a, b)|.
    let n = a.hypot(b);
    let (a, b, c) = (a / n, b / n, c / n);
    let p0 = Point { x: a * c, y: b * c };
    let d = Point { x: b, y: -a };
    let mut ts: Vec<f32> = Vec::new();
    for i in 0..poly.len() {
        let (p, q) = (poly[i], poly[(i + 1) % poly.len()]);
        let (fp, fq) = (a * p.x + b * p.y - c, a * q.x + b * q.y - c);
        if (fp > 0.0) == (fq > 0.0) && fp != 0.0 && fq != 0.0 {
            continue;
        }
        let s = if (fp - fq).abs() < 1e-9 {
            0.0
        } else {
            fp / (fp - fq)
        };
        let x = Point {
            x: p.x + s * (q.x - p.x),
            y: p.y + s * (q.y - p.y),
        };
        ts.push((x.x - p0.x) * d.x + (x.y - p0.y) * d.y);
    }
    let lo = ts.iter().copied().fold(f32::INFINITY, f32::min);
    let hi = ts.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if hi.partial_cmp(&lo) != Some(std::cmp::Ordering::Greater) {
        return None;
    }
    let at = |t: f32| Point {
        x: p0.x + t * d.x,
        y: p0.y + t * d.y,
    };
    Some((at(lo), at(hi)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(x: f32, y: f32) -> Point {
        Point { x, y }
    }

    fn square() -> Vec<Point> {
        vec![p(0.21, 0.21), p(0.79, 0.21), p(0.79, 0.79), p(0.21, 0.79)]
    }

    #[test]
    fn a_line_is_cut_to_the_region() {
        let (a, b) = clip(1.0, 0.0, 0.5, &square()).unwrap();
        assert!((a.x - 0.5).abs() < 1e-5 && (b.x - 0.5).abs() < 1e-5);
        assert!(((a.y - b.y).abs() - 0.58).abs() < 1e-4);
        let (a, b) = clip(1.0, -1.0, 0.0, &square()).unwrap();
        assert!((a.x - a.y).abs() < 1e-5 && (b.x - b.y).abs() < 1e-5);
        assert!(((a.x - b.x).abs() - 0.58).abs() < 1e-4);
        assert!(clip(1.0, 0.0, 0.9, &square()).is_none());
    }

    #[test]
    fn the_grid_keeps_off_the_image_edges() {
        let whole = vec![p(0.0, 0.0), p(1.0, 0.0), p(1.0, 1.0), p(0.0, 1.0)];
        let lines = lines(&whole);
        for l in &lines {
            for q in [l.from, l.to] {
                assert!(q.x >= EDGE - 1e-5 && q.x <= 1.0 - EDGE + 1e-5, "{}", l.id);
                assert!(q.y >= EDGE - 1e-5 && q.y <= 1.0 - EDGE + 1e-5, "{}", l.id);
            }
        }
        assert!(lines.iter().any(|l| l.id == "grid-v0.10"));
        assert!(!lines
            .iter()
            .any(|l| l.id == "grid-v0.05" || l.id == "grid-v0.95"));
    }

    #[test]
    fn the_grid_covers_the_region_in_four_directions_every_step() {
        let lines = lines(&square());
        let count = |fam: &str| {
            let prefix = format!("{PREFIX}{fam}");
            lines.iter().filter(|l| l.id.starts_with(&prefix)).count()
        };
        // x = 0.25 .. 0.75 inside the square: 11 lines; the same for y.
        assert_eq!(count("v"), 11);
        assert_eq!(count("h"), 11);
        // Diagonals: x - y in (-0.58, 0.58), segments of at least 0.1.
        assert!(count("d") >= 20 && count("a") >= 20);
        assert!(lines.iter().any(|l| l.id == "grid-d0.30"));
        assert!(lines.iter().any(|l| l.id == "grid-d-0.30"));
        assert!(lines.iter().any(|l| l.id == "grid-a1.20"));
        for l in &lines {
            let len = (l.to.x - l.from.x).hypot(l.to.y - l.from.y);
            assert!(len >= MIN_LENGTH, "{}", l.id);
        }
        let mut ids: Vec<&String> = lines.iter().map(|l| &l.id).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), lines.len(), "ids are unique");
    }
}
