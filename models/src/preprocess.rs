//! Frame → model input. Frames are RGB24, row-major; models take NCHW f32.

/// Where a letterboxed image sits in the model input: scale and size of the resized frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Letterbox {
    pub scale: f32,
    pub width: usize,
    pub height: usize,
}

/// Resize `rgb` (w×h) preserving aspect ratio into the top-left of a `size`×`size` NCHW
/// tensor in **BGR** order, padding with `pad`; bilinear sampling. `out` must hold
/// 3·size·size values.
pub fn letterbox_bgr(
    rgb: &[u8],
    w: usize,
    h: usize,
    size: usize,
    pad: f32,
    out: &mut [f32],
) -> Letterbox {
    let scale = (size as f32 / w as f32).min(size as f32 / h as f32);
    let nw = ((w as f32 * scale).round() as usize).clamp(1, size);
    let nh = ((h as f32 * scale).round() as usize).clamp(1, size);
    out.fill(pad);
    let plane = size * size;
    // Source coordinate of each output column: index and weight, computed once per frame.
    let xs: Vec<(usize, usize, f32)> = (0..nw)
        .map(|x| {
            let sx = ((x as f32 + 0.5) / scale - 0.5).clamp(0.0, (w - 1) as f32);
            let x0 = sx.floor() as usize;
            (x0, (x0 + 1).min(w - 1), sx - x0 as f32)
        })
        .collect();
    for y in 0..nh {
        let sy = ((y as f32 + 0.5) / scale - 0.5).clamp(0.0, (h - 1) as f32);
        let y0 = sy.floor() as usize;
        let y1 = (y0 + 1).min(h - 1);
        let fy = sy - y0 as f32;
        let (r0, r1) = (
            &rgb[y0 * w * 3..(y0 + 1) * w * 3],
            &rgb[y1 * w * 3..(y1 + 1) * w * 3],
        );
        for (x, &(x0, x1, fx)) in xs.iter().enumerate() {
            for c in 0..3 {
                let a = f32::from(r0[x0 * 3 + c]) * (1.0 - fx) + f32::from(r0[x1 * 3 + c]) * fx;
                let b = f32::from(r1[x0 * 3 + c]) * (1.0 - fx) + f32::from(r1[x1 * 3 + c]) * fx;
                // RGB in, BGR planes out.
                out[(2 - c) * plane + y * size + x] = a * (1.0 - fy) + b * fy;
            }
        }
    }
    Letterbox {
        scale,
        width: nw,
        height: nh,
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
    fn letterbox_keeps_aspect_and_swaps_channels() {
        // 4x2 image, pure red.
        let rgb: Vec<u8> = [255u8, 0, 0].repeat(8);
        let mut out = vec![0.0; 3 * 8 * 8];
        let lb = letterbox_bgr(&rgb, 4, 2, 8, 114.0, &mut out);
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
