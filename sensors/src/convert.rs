//! Pixel conversion from what cameras deliver (MJPEG, YUYV, NV12, I420, RGB, GRAY) to the
//! RGB24 frames the models take, plus a nearest-neighbour downscale to the analysis size.
//!
//! YUV uses the BT.601 limited-range integer matrix (what UVC webcams and most H.264 IP
//! cameras send; the same one ffmpeg's swscale assumes by default), so the tests compare
//! against ffmpeg's own conversion of real frames. Output buffers are reused by the caller:
//! a steady stream allocates nothing per frame.

use zune_jpeg::zune_core::bytestream::ZCursor;
use zune_jpeg::zune_core::colorspace::ColorSpace;
use zune_jpeg::zune_core::options::DecoderOptions;
use zune_jpeg::JpegDecoder;

/// The pixel layouts a live source can hand over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PixelFormat {
    /// Motion JPEG: one JPEG image per frame (USB cameras at higher resolutions).
    Mjpeg,
    /// Packed 4:2:2, Y0 U Y1 V (the UVC uncompressed format).
    Yuyv,
    /// Planar Y, then interleaved UV at half resolution (4:2:0).
    Nv12,
    /// Planar Y, U, V (4:2:0), what H.264 decoders produce.
    I420,
    Rgb24,
    Bgr24,
    Gray,
}

impl PixelFormat {
    pub fn name(self) -> &'static str {
        match self {
            PixelFormat::Mjpeg => "mjpeg",
            PixelFormat::Yuyv => "yuyv",
            PixelFormat::Nv12 => "nv12",
            PixelFormat::I420 => "i420",
            PixelFormat::Rgb24 => "rgb24",
            PixelFormat::Bgr24 => "bgr24",
            PixelFormat::Gray => "gray",
        }
    }

    /// Parse a config value (`format = "mjpeg"`), case-insensitively.
    pub fn parse(s: &str) -> Option<PixelFormat> {
        Some(match s.to_ascii_lowercase().as_str() {
            "mjpeg" | "mjpg" => PixelFormat::Mjpeg,
            "yuyv" | "yuy2" => PixelFormat::Yuyv,
            "nv12" => PixelFormat::Nv12,
            "i420" | "yuv420p" => PixelFormat::I420,
            "rgb24" | "rgb" => PixelFormat::Rgb24,
            "bgr24" | "bgr" => PixelFormat::Bgr24,
            "gray" | "grey" => PixelFormat::Gray,
            _ => return None,
        })
    }

    /// Bytes of one `w`x`h` frame for the uncompressed layouts (`None` for MJPEG).
    pub fn frame_len(self, w: usize, h: usize) -> Option<usize> {
        let chroma = w.div_ceil(2) * h.div_ceil(2);
        match self {
            PixelFormat::Mjpeg => None,
            PixelFormat::Yuyv => Some(w.div_ceil(2) * 4 * h),
            PixelFormat::Nv12 | PixelFormat::I420 => Some(w * h + 2 * chroma),
            PixelFormat::Rgb24 | PixelFormat::Bgr24 => Some(w * h * 3),
            PixelFormat::Gray => Some(w * h),
        }
    }
}

impl std::fmt::Display for PixelFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConvertError {
    #[error("{format} frame of {got} bytes is too short for {width}x{height} (needs {need})")]
    Short {
        format: PixelFormat,
        got: usize,
        need: usize,
        width: usize,
        height: usize,
    },
    #[error("corrupt JPEG frame: {0}")]
    Jpeg(String),
    #[error("JPEG frame is {got_w}x{got_h}, the camera announced {width}x{height}")]
    Size {
        got_w: usize,
        got_h: usize,
        width: usize,
        height: usize,
    },
}

#[inline(always)]
fn clamp(v: i32) -> u8 {
    v.clamp(0, 255) as u8
}

/// The chroma terms of one U/V pair (shared by the pixels that pair covers).
#[inline(always)]
fn chroma(u: u8, v: u8) -> (i32, i32, i32) {
    let d = i32::from(u) - 128;
    let e = i32::from(v) - 128;
    (409 * e + 128, -100 * d - 208 * e + 128, 516 * d + 128)
}

/// One pixel from its luma and precomputed chroma terms.
#[inline(always)]
fn luma_px(y: u8, (r, g, b): (i32, i32, i32), out: &mut [u8]) {
    let c = 298 * (i32::from(y) - 16);
    out[0] = clamp((c + r) >> 8);
    out[1] = clamp((c + g) >> 8);
    out[2] = clamp((c + b) >> 8);
}

/// One pixel, BT.601 limited range (16..235 luma, 16..240 chroma), 8-bit fixed point.
#[inline(always)]
fn yuv_px(y: u8, u: u8, v: u8, out: &mut [u8]) {
    luma_px(y, chroma(u, v), out);
}

fn check(format: PixelFormat, got: usize, width: usize, height: usize) -> Result<(), ConvertError> {
    let need = format.frame_len(width, height).unwrap_or(0);
    if got < need {
        return Err(ConvertError::Short {
            format,
            got,
            need,
            width,
            height,
        });
    }
    Ok(())
}

/// Convert one frame to RGB24 into `out` (resized to `width*height*3`). For MJPEG the
/// announced size is checked against the JPEG's own.
pub fn to_rgb(
    format: PixelFormat,
    data: &[u8],
    width: usize,
    height: usize,
    out: &mut Vec<u8>,
) -> Result<(), ConvertError> {
    if format == PixelFormat::Mjpeg {
        let (w, h) = jpeg_to_rgb(data, out)?;
        if (w, h) != (width, height) {
            return Err(ConvertError::Size {
                got_w: w,
                got_h: h,
                width,
                height,
            });
        }
        return Ok(());
    }
    check(format, data.len(), width, height)?;
    out.resize(width * height * 3, 0);
    match format {
        PixelFormat::Mjpeg => {} // decoded above
        PixelFormat::Yuyv => yuyv_to_rgb(data, width, height, out),
        PixelFormat::Nv12 => {
            let (y, uv) = data.split_at(width * height);
            nv12_to_rgb(y, width, uv, width.div_ceil(2) * 2, width, height, out);
        }
        PixelFormat::I420 => {
            let cw = width.div_ceil(2);
            let ch = height.div_ceil(2);
            let (y, rest) = data.split_at(width * height);
            let (u, v) = rest.split_at(cw * ch);
            i420_to_rgb((y, width), (u, cw), (v, cw), width, height, out);
        }
        PixelFormat::Rgb24 => out.copy_from_slice(&data[..width * height * 3]),
        PixelFormat::Bgr24 => {
            for (o, i) in out.chunks_exact_mut(3).zip(data.chunks_exact(3)) {
                o[0] = i[2];
                o[1] = i[1];
                o[2] = i[0];
            }
        }
        PixelFormat::Gray => {
            for (o, &g) in out.chunks_exact_mut(3).zip(data) {
                o.fill(g);
            }
        }
    }
    Ok(())
}

/// YUYV (YUY2) 4:2:2 packed to RGB24. `out` must hold `w*h*3` bytes.
pub fn yuyv_to_rgb(src: &[u8], w: usize, h: usize, out: &mut [u8]) {
    let src_stride = w.div_ceil(2) * 4;
    for row in 0..h {
        let s = &src[row * src_stride..(row + 1) * src_stride];
        let o = &mut out[row * w * 3..(row + 1) * w * 3];
        let pairs = w / 2;
        for (quad, px) in s.chunks_exact(4).zip(o.chunks_exact_mut(6)).take(pairs) {
            let c = chroma(quad[1], quad[3]);
            luma_px(quad[0], c, &mut px[..3]);
            luma_px(quad[2], c, &mut px[3..]);
        }
        if w % 2 == 1 {
            let q = &s[pairs * 4..pairs * 4 + 4];
            yuv_px(q[0], q[1], q[3], &mut o[(w - 1) * 3..]);
        }
    }
}

/// NV12 (Y plane, then interleaved UV at half resolution) to RGB24.
pub fn nv12_to_rgb(
    y: &[u8],
    y_stride: usize,
    uv: &[u8],
    uv_stride: usize,
    w: usize,
    h: usize,
    out: &mut [u8],
) {
    for row in 0..h {
        let yr = &y[row * y_stride..row * y_stride + w];
        let cr = &uv[(row / 2) * uv_stride..(row / 2) * uv_stride + w.div_ceil(2) * 2];
        let o = &mut out[row * w * 3..(row + 1) * w * 3];
        for ((ys, c), px) in yr.chunks(2).zip(cr.chunks_exact(2)).zip(o.chunks_mut(6)) {
            let c = chroma(c[0], c[1]);
            for (yy, p) in ys.iter().zip(px.chunks_exact_mut(3)) {
                luma_px(*yy, c, p);
            }
        }
    }
}

/// Planar 4:2:0 (each plane with its stride) to RGB24: what the H.264 decoder hands over.
pub fn i420_to_rgb(
    y: (&[u8], usize),
    u: (&[u8], usize),
    v: (&[u8], usize),
    w: usize,
    h: usize,
    out: &mut [u8],
) {
    for row in 0..h {
        let cw = w.div_ceil(2);
        let yr = &y.0[row * y.1..row * y.1 + w];
        let ur = &u.0[(row / 2) * u.1..(row / 2) * u.1 + cw];
        let vr = &v.0[(row / 2) * v.1..(row / 2) * v.1 + cw];
        let o = &mut out[row * w * 3..(row + 1) * w * 3];
        for (((ys, &uu), &vv), px) in yr.chunks(2).zip(ur).zip(vr).zip(o.chunks_mut(6)) {
            let c = chroma(uu, vv);
            for (yy, p) in ys.iter().zip(px.chunks_exact_mut(3)) {
                luma_px(*yy, c, p);
            }
        }
    }
}

/// Decode one JPEG (an MJPEG frame) to RGB24 into `out`; returns its width and height.
pub fn jpeg_to_rgb(src: &[u8], out: &mut Vec<u8>) -> Result<(usize, usize), ConvertError> {
    let opts = DecoderOptions::default()
        .jpeg_set_out_colorspace(ColorSpace::RGB)
        .set_max_width(8192)
        .set_max_height(8192);
    let mut dec = JpegDecoder::new_with_options(ZCursor::new(src), opts);
    dec.decode_headers()
        .map_err(|e| ConvertError::Jpeg(format!("{e:?}")))?;
    let (w, h) = dec
        .dimensions()
        .ok_or_else(|| ConvertError::Jpeg("no frame header".into()))?;
    let len = dec
        .output_buffer_size()
        .ok_or_else(|| ConvertError::Jpeg("no frame header".into()))?;
    out.resize(len, 0);
    dec.decode_into(out)
        .map_err(|e| ConvertError::Jpeg(format!("{e:?}")))?;
    out.truncate(w * h * 3);
    Ok((w, h))
}

/// Nearest-neighbour downscale (or copy) of an RGB24 image into `out` at `dw`x`dh`.
/// Analysis sizes are a fraction of the source; the detector letterboxes again anyway.
pub fn resize_rgb(src: &[u8], sw: usize, sh: usize, dw: usize, dh: usize, out: &mut Vec<u8>) {
    out.resize(dw * dh * 3, 0);
    if (sw, sh) == (dw, dh) {
        out.copy_from_slice(&src[..sw * sh * 3]);
        return;
    }
    let xs: Vec<usize> = (0..dw).map(|x| (x * sw + sw / 2) / dw * 3).collect();
    for y in 0..dh {
        let sy = ((y * sh + sh / 2) / dh).min(sh - 1);
        let srow = &src[sy * sw * 3..(sy + 1) * sw * 3];
        let orow = &mut out[y * dw * 3..(y + 1) * dw * 3];
        for (o, &sx) in orow.chunks_exact_mut(3).zip(&xs) {
            o.copy_from_slice(&srow[sx..sx + 3]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_colours_match_bt601_limited_range() {
        let mut o = [0u8; 3];
        yuv_px(16, 128, 128, &mut o);
        assert_eq!(o, [0, 0, 0]);
        yuv_px(235, 128, 128, &mut o);
        assert_eq!(o, [255, 255, 255]);
        // Pure red in BT.601 limited range is Y=81 U=90 V=240.
        yuv_px(81, 90, 240, &mut o);
        assert!(o[0] > 240 && o[1] < 10 && o[2] < 10, "{o:?}");
    }

    #[test]
    fn short_frames_are_errors_not_panics() {
        let mut out = Vec::new();
        let e = to_rgb(PixelFormat::Yuyv, &[0; 100], 640, 480, &mut out).unwrap_err();
        assert!(e.to_string().contains("too short"), "{e}");
        let e = to_rgb(PixelFormat::Nv12, &[0; 100], 64, 48, &mut out).unwrap_err();
        assert!(e.to_string().contains("needs 4608"), "{e}");
        let e = to_rgb(PixelFormat::Mjpeg, b"\xff\xd8garbage", 64, 48, &mut out).unwrap_err();
        assert!(e.to_string().contains("corrupt JPEG"), "{e}");
        let e = to_rgb(PixelFormat::Mjpeg, &[], 64, 48, &mut out).unwrap_err();
        assert!(matches!(e, ConvertError::Jpeg(_)));
    }

    #[test]
    fn odd_widths_do_not_read_past_the_frame() {
        let (w, h) = (5, 3);
        let mut out = Vec::new();
        for f in [PixelFormat::Yuyv, PixelFormat::Nv12, PixelFormat::I420] {
            let n = f.frame_len(w, h).unwrap();
            to_rgb(f, &vec![128; n], w, h, &mut out).unwrap();
            assert_eq!(out.len(), w * h * 3);
        }
    }

    #[test]
    fn resize_keeps_corners_and_sizes() {
        let (sw, sh) = (8, 4);
        let src: Vec<u8> = (0..sw * sh).flat_map(|i| [i as u8, 0, 0]).collect();
        let mut out = Vec::new();
        resize_rgb(&src, sw, sh, 4, 2, &mut out);
        assert_eq!(out.len(), 4 * 2 * 3);
        resize_rgb(&src, sw, sh, sw, sh, &mut out);
        assert_eq!(out, src);
    }

    #[test]
    fn format_names_round_trip() {
        for f in [
            PixelFormat::Mjpeg,
            PixelFormat::Yuyv,
            PixelFormat::Nv12,
            PixelFormat::I420,
            PixelFormat::Rgb24,
            PixelFormat::Bgr24,
            PixelFormat::Gray,
        ] {
            assert_eq!(PixelFormat::parse(f.name()), Some(f));
        }
        assert_eq!(PixelFormat::parse("MJPG"), Some(PixelFormat::Mjpeg));
        assert_eq!(PixelFormat::parse("h264"), None);
    }
}
