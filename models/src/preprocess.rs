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
}
