//! What a person looks like, coarsely: colour statistics of the torso and of the legs, enough
//! to tell the person in the red coat from the one in the black one when someone comes out
//! from behind a post, never enough to recognise anyone.
//!
//! Each part is a 12-bin histogram of the box's central half: 8 hue bins for coloured pixels
//! and 4 brightness bins for greys (saturation under 0.2). Two descriptors are compared
//! by the Hellinger distance averaged over the parts (0 = the same colours, 1 = nothing in
//! common).
//!
//! **Personal data.** A descriptor lives in the tracker's memory for its track's life and the
//! lost buffer only: the type is not serializable, its `Debug` prints nothing of it, and
//! nothing outside the tracker holds one.

use crate::geom::BBox;

const HUES: usize = 8;
const GREYS: usize = 4;
const BINS: usize = HUES + GREYS;
/// Saturation (0..1) under which a pixel counts as grey.
const GREY: f32 = 0.2;
/// Fewest pixels a part must have for a descriptor (a box of a few pixels says nothing).
const MIN_PIXELS: usize = 24;
/// Most pixels sampled per part (larger boxes are subsampled: the cost is bounded).
const MAX_PIXELS: usize = 1024;

/// A person's coarse colours: torso and legs (each a normalized histogram).
#[derive(Clone, Copy, PartialEq)]
pub struct Appearance {
    parts: [[f32; BINS]; 2],
}

/// `Appearance` must never become serializable (nothing of it may be written or sent): if it
/// implemented `serde::Serialize`, this would not compile (both impls would apply, and the
/// call below would be ambiguous).
const _: () = {
    trait NotSerialize<A> {
        fn check() {}
    }
    impl<T: ?Sized> NotSerialize<()> for T {}
    #[allow(dead_code)]
    struct Serializable;
    impl<T: ?Sized + serde::Serialize> NotSerialize<Serializable> for T {}
    let _ = <Appearance as NotSerialize<_>>::check;
};

impl std::fmt::Debug for Appearance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Appearance(..)")
    }
}

/// The torso and the legs as shares of the box's height (top, bottom), and the central share
/// of its width that is sampled.
const PARTS: [(f32, f32); 2] = [(0.18, 0.52), (0.55, 0.92)];
const WIDTH: f32 = 0.5;

impl Appearance {
    /// The appearance of the person in `b` (normalized) on an RGB24 frame `w`×`h`, or `None`
    /// when the box is too small or outside the frame.
    pub fn from_rgb(rgb: &[u8], w: usize, h: usize, b: &BBox) -> Option<Appearance> {
        if rgb.len() < w * h * 3 || w == 0 || h == 0 {
            return None;
        }
        let mut parts = [[0f32; BINS]; 2];
        let cx = b.center().x;
        let x0 = ((cx - b.w() * WIDTH / 2.0) * w as f32).max(0.0) as usize;
        let x1 = (((cx + b.w() * WIDTH / 2.0) * w as f32) as usize).min(w);
        for (part, (top, bottom)) in parts.iter_mut().zip(PARTS) {
            let y0 = ((b.y1 + b.h() * top) * h as f32).max(0.0) as usize;
            let y1 = (((b.y1 + b.h() * bottom) * h as f32) as usize).min(h);
            let (cols, rows) = (x1.saturating_sub(x0), y1.saturating_sub(y0));
            let n = cols * rows;
            if n < MIN_PIXELS {
                return None;
            }
            // Sample every `step`-th pixel in each direction when the part is large.
            let step = ((n as f32 / MAX_PIXELS as f32).sqrt().ceil() as usize).max(1);
            let mut count = 0f32;
            for y in (y0..y1).step_by(step) {
                let row = &rgb[y * w * 3..(y + 1) * w * 3];
                for x in (x0..x1).step_by(step) {
                    let p = &row[x * 3..x * 3 + 3];
                    part[bin(p[0], p[1], p[2])] += 1.0;
                    count += 1.0;
                }
            }
            for v in part.iter_mut() {
                *v /= count.max(1.0);
            }
        }
        Some(Appearance { parts })
    }

    /// Hellinger distance averaged over the parts: 0 (same colours) .. 1 (disjoint).
    pub fn distance(&self, o: &Appearance) -> f32 {
        let mut d = 0.0;
        for (a, b) in self.parts.iter().zip(&o.parts) {
            let bc: f32 = a.iter().zip(b).map(|(x, y)| (x * y).sqrt()).sum();
            d += (1.0 - bc.min(1.0)).max(0.0).sqrt();
        }
        d / 2.0
    }

    /// Blend a new observation in (weight `w` for the new one).
    pub fn blend(&mut self, o: &Appearance, w: f32) {
        for (a, b) in self.parts.iter_mut().zip(&o.parts) {
            for (x, y) in a.iter_mut().zip(b) {
                *x = *x * (1.0 - w) + y * w;
            }
        }
    }
}

/// The histogram bin of one RGB pixel.
fn bin(r: u8, g: u8, b: u8) -> usize {
    let (r, g, b) = (f32::from(r), f32::from(g), f32::from(b));
    let max = r.max(g).max(b);
    let min = r.min(g).min(b);
    let sat = if max > 0.0 { (max - min) / max } else { 0.0 };
    if sat < GREY || max < 40.0 {
        return HUES + ((max / 256.0 * GREYS as f32) as usize).min(GREYS - 1);
    }
    let d = max - min;
    let hue = if max == r {
        ((g - b) / d).rem_euclid(6.0)
    } else if max == g {
        (b - r) / d + 2.0
    } else {
        (r - g) / d + 4.0
    };
    ((hue / 6.0 * HUES as f32) as usize).min(HUES - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 100×100 frame, grey background, with a person at x 40..60, y 20..80: torso `top`
    /// colour, legs `legs` colour.
    fn frame(top: [u8; 3], legs: [u8; 3]) -> Vec<u8> {
        let mut f = vec![128u8; 100 * 100 * 3];
        for y in 20..80 {
            for x in 40..60 {
                let c = if y < 50 { top } else { legs };
                f[(y * 100 + x) * 3..(y * 100 + x) * 3 + 3].copy_from_slice(&c);
            }
        }
        f
    }

    fn person() -> BBox {
        BBox::new(0.4, 0.2, 0.6, 0.8)
    }

    #[test]
    fn the_same_clothes_are_close_and_other_colours_far() {
        let red_blue = frame([200, 30, 30], [30, 30, 160]);
        let a = Appearance::from_rgb(&red_blue, 100, 100, &person()).unwrap();
        let again = Appearance::from_rgb(&red_blue, 100, 100, &person()).unwrap();
        assert!(a.distance(&again) < 1e-6);
        let green_blue = frame([30, 180, 30], [30, 30, 160]);
        let b = Appearance::from_rgb(&green_blue, 100, 100, &person()).unwrap();
        let black = frame([20, 20, 20], [20, 20, 20]);
        let c = Appearance::from_rgb(&black, 100, 100, &person()).unwrap();
        assert!(a.distance(&b) > 0.4, "{}", a.distance(&b));
        assert!(a.distance(&c) > a.distance(&b));
        assert!(a.distance(&c) <= 1.0);
    }

    #[test]
    fn a_box_too_small_or_outside_gives_nothing() {
        let f = frame([200, 30, 30], [30, 30, 160]);
        assert!(Appearance::from_rgb(&f, 100, 100, &BBox::new(0.4, 0.4, 0.42, 0.45)).is_none());
        assert!(Appearance::from_rgb(&f, 100, 100, &BBox::new(1.2, 0.2, 1.4, 0.8)).is_none());
        assert!(Appearance::from_rgb(&f[..10], 100, 100, &person()).is_none());
    }

    #[test]
    fn its_debug_output_reveals_nothing() {
        let f = frame([200, 30, 30], [30, 30, 160]);
        let a = Appearance::from_rgb(&f, 100, 100, &person()).unwrap();
        assert_eq!(format!("{a:?}"), "Appearance(..)");
    }
}
