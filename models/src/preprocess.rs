//! Frame → model input. Frames are RGB24, row-major; models take NCHW f32.

use vitrine_signals::geom::BBox;

/// Where a letterboxed image sits in the model input: scale and size of the resized frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Letterbox {
    pub scale: f32,
    pub width: usize,
    pub height: usize,
}

/// Decode one anchor-free (YOLOX-style) box, as YOLOX and YuNet emit them: `raw` is
/// `[dx, dy, log w, log h]` in units of `stride` at grid cell (`gx`, `gy`) of the letterboxed
/// input. Returns the box back in the `w`×`h` frame, normalised to 0..1 and clamped; `None` when
/// nothing of it is left inside the frame.
pub fn grid_box(
    lb: &Letterbox,
    (gx, gy): (f32, f32),
    stride: f32,
    raw: &[f32],
    w: usize,
    h: usize,
) -> Option<BBox> {
    let [dx, dy, lw, lh] = raw else {
        return None;
    };
    let at = |v: f32| v * stride / lb.scale;
    let (cx, cy) = (at(gx + dx), at(gy + dy));
    let (bw, bh) = (at(lw.exp()), at(lh.exp()));
    let (fw, fh) = (w as f32, h as f32);
    let b = BBox::new(
        ((cx - bw / 2.0) / fw).clamp(0.0, 1.0),
        ((cy - bh / 2.0) / fh).clamp(0.0, 1.0),
        ((cx + bw / 2.0) / fw).clamp(0.0, 1.0),
        ((cy + bh / 2.0) / fh).clamp(0.0, 1.0),
    );
    (b.area() > 0.0).then_some(b)
}

/// Resize `rgb` (w×h) preserving aspect ratio into the top-left of an `iw`×`ih` NCHW tensor
/// in **BGR** order, padding with `pad`; bilinear sampling. `out` must hold 3·iw·ih values.
pub fn letterbox_bgr(
    rgb: &[u8],
    w: usize,
    h: usize,
    (iw, ih): (usize, usize),
    pad: f32,
    out: &mut [f32],
) -> Letterbox {
    let scale = (iw as f32 / w as f32).min(ih as f32 / h as f32);
    let nw = ((w as f32 * scale).round() as usize).clamp(1, iw);
    let nh = ((h as f32 * scale).round() as usize).clamp(1, ih);
    let plane = iw * ih;
    // Source byte offsets of each output column's two neighbours and the weight of the right
    // one, computed once per frame.
    let xs: Vec<(usize, usize, f32)> = (0..nw)
        .map(|x| {
            let sx = ((x as f32 + 0.5) / scale - 0.5).clamp(0.0, (w - 1) as f32);
            let x0 = sx.floor() as usize;
            (x0 * 3, (x0 + 1).min(w - 1) * 3, sx - x0 as f32)
        })
        .collect();
    // RGB in, BGR planes out.
    let (blue, rest) = out[..3 * plane].split_at_mut(plane);
    if (nw, nh) == (w, h) {
        // Already at the content size (decoded so): a plain copy into the planes.
        let (green, red) = rest.split_at_mut(plane);
        copy_planes(rgb, w, (iw, ih), pad, [red, green, blue]);
        return Letterbox {
            scale,
            width: nw,
            height: nh,
        };
    }
    let (green, red) = rest.split_at_mut(plane);
    for (y, ((b_row, g_row), r_row)) in blue
        .chunks_exact_mut(iw)
        .zip(green.chunks_exact_mut(iw))
        .zip(red.chunks_exact_mut(iw))
        .enumerate()
    {
        if y >= nh {
            b_row.fill(pad);
            g_row.fill(pad);
            r_row.fill(pad);
            continue;
        }
        let sy = ((y as f32 + 0.5) / scale - 0.5).clamp(0.0, (h - 1) as f32);
        let y0 = sy.floor() as usize;
        let y1 = (y0 + 1).min(h - 1);
        let fy = sy - y0 as f32;
        let (r0, r1) = (
            &rgb[y0 * w * 3..(y0 + 1) * w * 3],
            &rgb[y1 * w * 3..(y1 + 1) * w * 3],
        );
        let px = |row: &[u8], o: usize| -> [f32; 3] {
            match row.get(o..o + 3) {
                Some(&[r, g, b]) => [f32::from(r), f32::from(g), f32::from(b)],
                _ => [pad; 3],
            }
        };
        for (x, &(o0, o1, fx)) in xs.iter().enumerate() {
            let (a0, a1, c0, c1) = (px(r0, o0), px(r0, o1), px(r1, o0), px(r1, o1));
            let v = |c: usize| {
                let top = a0[c] + (a1[c] - a0[c]) * fx;
                let bottom = c0[c] + (c1[c] - c0[c]) * fx;
                top + (bottom - top) * fy
            };
            r_row[x] = v(0);
            g_row[x] = v(1);
            b_row[x] = v(2);
        }
        b_row[nw..].fill(pad);
        g_row[nw..].fill(pad);
        r_row[nw..].fill(pad);
    }
    Letterbox {
        scale,
        width: nw,
        height: nh,
    }
}

/// Deinterleave a `w`-wide RGB24 image into the top-left of three `iw`×`ih` planes (in the
/// order given), padding the rest.
fn copy_planes(rgb: &[u8], w: usize, (iw, ih): (usize, usize), pad: f32, planes: [&mut [f32]; 3]) {
    let [p0, p1, p2] = planes;
    let rows = rgb.chunks_exact(w * 3);
    for (y, ((r0, r1), r2)) in p0
        .chunks_exact_mut(iw)
        .zip(p1.chunks_exact_mut(iw))
        .zip(p2.chunks_exact_mut(iw))
        .take(ih)
        .enumerate()
    {
        let Some(src) = rows.clone().nth(y) else {
            r0.fill(pad);
            r1.fill(pad);
            r2.fill(pad);
            continue;
        };
        for (x, px) in src.chunks_exact(3).enumerate().take(iw) {
            r0[x] = f32::from(px[0]);
            r1[x] = f32::from(px[1]);
            r2[x] = f32::from(px[2]);
        }
        let n = w.min(iw);
        r0[n..].fill(pad);
        r1[n..].fill(pad);
        r2[n..].fill(pad);
    }
}

/// Crop `[x0, x1) × [y0, y1)` (pixels, clamped to the image) out of `rgb` (w×h) and resize it
/// bilinearly to `size`×`size` NCHW **BGR**, each value mapped by `(v - mean) / scale`.
/// `out` must hold 3·size·size values. An empty crop fills `out` with the mapped zero.
#[allow(clippy::too_many_arguments)]
pub fn crop_resize_bgr(
    rgb: &[u8],
    w: usize,
    h: usize,
    (x0, y0, x1, y1): (f32, f32, f32, f32),
    size: usize,
    mean: f32,
    scale: f32,
    out: &mut [f32],
) {
    let (x0, x1) = (x0.clamp(0.0, w as f32), x1.clamp(0.0, w as f32));
    let (y0, y1) = (y0.clamp(0.0, h as f32), y1.clamp(0.0, h as f32));
    if x1 - x0 < 1.0 || y1 - y0 < 1.0 || w == 0 || h == 0 {
        out.fill((0.0 - mean) / scale);
        return;
    }
    let (sx, sy) = ((x1 - x0) / size as f32, (y1 - y0) / size as f32);
    let plane = size * size;
    for oy in 0..size {
        let fy = (y0 + (oy as f32 + 0.5) * sy - 0.5).clamp(0.0, (h - 1) as f32);
        let (ya, yb, wy) = (fy as usize, (fy as usize + 1).min(h - 1), fy.fract());
        for ox in 0..size {
            let fx = (x0 + (ox as f32 + 0.5) * sx - 0.5).clamp(0.0, (w - 1) as f32);
            let (xa, xb, wx) = (fx as usize, (fx as usize + 1).min(w - 1), fx.fract());
            for c in 0..3 {
                let at = |x: usize, y: usize| f32::from(rgb[(y * w + x) * 3 + c]);
                let top = at(xa, ya) * (1.0 - wx) + at(xb, ya) * wx;
                let bottom = at(xa, yb) * (1.0 - wx) + at(xb, yb) * wx;
                out[(2 - c) * plane + oy * size + ox] =
                    (top * (1.0 - wy) + bottom * wy - mean) / scale;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_box_maps_a_letterboxed_box_back_to_the_frame() {
        // A 640x480 frame letterboxed into 416: scale 0.65.
        let lb = Letterbox {
            scale: 0.65,
            width: 416,
            height: 312,
        };
        // Cell (10, 5) at stride 8, centre offset 0.5, size exp(ln 4) = 4 cells = 32 px.
        let raw = [0.5, 0.5, 4f32.ln(), 4f32.ln()];
        let b = grid_box(&lb, (10.0, 5.0), 8.0, &raw, 640, 480).expect("inside");
        let (cx, cy, side) = (10.5 * 8.0 / 0.65, 5.5 * 8.0 / 0.65, 32.0 / 0.65);
        let want = [
            (cx - side / 2.0) / 640.0,
            (cy - side / 2.0) / 480.0,
            (cx + side / 2.0) / 640.0,
            (cy + side / 2.0) / 480.0,
        ];
        for (got, want) in [b.x1, b.y1, b.x2, b.y2].into_iter().zip(want) {
            assert!((got - want).abs() < 1e-5, "{b:?} vs {want:?}");
        }
        // Entirely in the padding below the frame: nothing left.
        assert!(grid_box(&lb, (10.0, 50.0), 8.0, &raw, 640, 480).is_none());
        // A malformed row is no box.
        assert!(grid_box(&lb, (0.0, 0.0), 8.0, &raw[..3], 640, 480).is_none());
    }

    #[test]
    fn letterbox_keeps_aspect_and_swaps_channels() {
        // 4x2 image, pure red.
        let rgb: Vec<u8> = [255u8, 0, 0].repeat(8);
        let mut out = vec![0.0; 3 * 8 * 8];
        let lb = letterbox_bgr(&rgb, 4, 2, (8, 8), 114.0, &mut out);
        assert_eq!((lb.width, lb.height), (8, 4));
        assert_eq!(lb.scale, 2.0);
        let plane = 64;
        assert_eq!(
            out[2 * plane],
            255.0,
            "red lands in the last (R of BGR) plane"
        );
        assert_eq!(out[0], 0.0, "blue plane is 0");
        assert_eq!(out[5 * 8], 114.0, "below the image is padding");
    }

    #[test]
    fn a_frame_at_the_content_size_is_copied_not_resampled() {
        // A 4x2 image with distinct pixels into a 4x4 input: scale 1.
        let rgb: Vec<u8> = (0..24).map(|i| i as u8).collect();
        let mut out = vec![0.0; 3 * 4 * 4];
        let lb = letterbox_bgr(&rgb, 4, 2, (4, 4), 114.0, &mut out);
        assert_eq!((lb.width, lb.height, lb.scale), (4, 2, 1.0));
        let plane = 16;
        // Pixel (1, 1) is bytes 15..18 (r, g, b) = 15, 16, 17: blue first.
        assert_eq!(out[5], 17.0);
        assert_eq!(out[plane + 5], 16.0);
        assert_eq!(out[2 * plane + 5], 15.0);
        assert_eq!(out[2 * 4], 114.0, "rows below the image are padding");
    }

    #[test]
    fn crop_resize_takes_the_crop_only_and_normalizes() {
        // 8x8 image: left half black, right half green.
        let mut rgb = vec![0u8; 8 * 8 * 3];
        for y in 0..8 {
            for x in 4..8 {
                rgb[(y * 8 + x) * 3 + 1] = 255;
            }
        }
        let mut out = vec![0.0; 3 * 4 * 4];
        crop_resize_bgr(&rgb, 8, 8, (4.0, 0.0, 8.0, 8.0), 4, 127.5, 128.0, &mut out);
        let plane = 16;
        assert!(out[plane..2 * plane]
            .iter()
            .all(|v| (*v - 127.5 / 128.0).abs() < 1e-6));
        assert!(out[..plane]
            .iter()
            .all(|v| (*v + 127.5 / 128.0).abs() < 1e-6));
        crop_resize_bgr(&rgb, 8, 8, (9.0, 0.0, 12.0, 8.0), 4, 0.0, 1.0, &mut out);
        assert!(
            out.iter().all(|v| *v == 0.0),
            "a crop outside the image is empty"
        );
    }
}
