//! Frame conversion on real encoded frames: a frame of the PETS2009 pedestrian video (Debian's
//! opencv-doc, fetched by scripts/fetch-media.sh) encoded by ffmpeg as a camera would send it
//! (MJPEG, YUYV, NV12, I420), converted by `sensors::convert` and compared with ffmpeg's own
//! conversion of the same bytes. Chroma upsampling differs (nearest here, bilinear in swscale),
//! so the check is a PSNR floor, not equality.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use vitrine_sensors::convert::{to_rgb, PixelFormat};

mod common;
use common::{ffmpeg, media};

/// Frame 200 of the video at `w`x`h`, as `pix_fmt` raw bytes.
fn raw_frame(w: usize, h: usize, pix_fmt: &str) -> Vec<u8> {
    let v = media("vtest.avi");
    let scale = format!("select=eq(n\\,200),scale={w}:{h}");
    ffmpeg(&[
        "-i",
        v.to_str().unwrap(),
        "-vf",
        &scale,
        "-frames:v",
        "1",
        "-f",
        "rawvideo",
        "-pix_fmt",
        pix_fmt,
    ])
}

/// ffmpeg's RGB24 of raw `bytes` in `pix_fmt` (its own reference conversion).
fn reference_rgb(bytes: &[u8], w: usize, h: usize, pix_fmt: &str, demuxer: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("frame");
    std::fs::write(&f, bytes).unwrap();
    let size = format!("{w}x{h}");
    let mut args: Vec<&str> = vec!["-f", demuxer];
    if demuxer == "rawvideo" {
        args.extend(["-pix_fmt", pix_fmt, "-s", &size]);
    }
    let fs = f.to_str().unwrap().to_string();
    args.extend(["-i", &fs, "-f", "rawvideo", "-pix_fmt", "rgb24"]);
    ffmpeg(&args)
}

fn psnr(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len());
    let mse = a
        .iter()
        .zip(b)
        .map(|(x, y)| (f64::from(*x) - f64::from(*y)).powi(2))
        .sum::<f64>()
        / a.len() as f64;
    10.0 * (255.0f64 * 255.0 / mse.max(1e-9)).log10()
}

fn check(format: PixelFormat, pix_fmt: &str, w: usize, h: usize, floor_db: f64) {
    let bytes = raw_frame(w, h, pix_fmt);
    assert_eq!(Some(bytes.len()), format.frame_len(w, h));
    let mut ours = Vec::new();
    to_rgb(format, &bytes, w, h, &mut ours).unwrap();
    let theirs = reference_rgb(&bytes, w, h, pix_fmt, "rawvideo");
    let db = psnr(&ours, &theirs);
    eprintln!("{format} {w}x{h}: PSNR {db:.1} dB against ffmpeg");
    assert!(db > floor_db, "{format} {w}x{h}: PSNR {db:.1} dB");
    // And the picture is the scene, not a flat buffer: real pedestrians have contrast.
    let mean = ours.iter().map(|&v| f64::from(v)).sum::<f64>() / ours.len() as f64;
    let var = ours
        .iter()
        .map(|&v| (f64::from(v) - mean).powi(2))
        .sum::<f64>()
        / ours.len() as f64;
    assert!(var.sqrt() > 20.0, "flat image, stddev {}", var.sqrt());
}

#[test]
fn yuyv_from_a_real_frame_matches_ffmpeg() {
    check(PixelFormat::Yuyv, "yuyv422", 640, 480, 38.0);
}

#[test]
fn nv12_from_a_real_frame_matches_ffmpeg() {
    check(PixelFormat::Nv12, "nv12", 640, 480, 35.0);
}

#[test]
fn i420_from_a_real_frame_matches_ffmpeg() {
    check(PixelFormat::I420, "yuv420p", 640, 480, 35.0);
}

#[test]
fn odd_sized_i420_and_yuyv_frames_convert() {
    check(PixelFormat::I420, "yuv420p", 322, 242, 33.0);
    check(PixelFormat::Yuyv, "yuyv422", 322, 242, 35.0);
}

#[test]
fn mjpeg_from_a_real_frame_matches_ffmpegs_decode() {
    let v = media("vtest.avi");
    let jpeg = ffmpeg(&[
        "-i",
        v.to_str().unwrap(),
        "-vf",
        "select=eq(n\\,200),scale=640:480",
        "-frames:v",
        "1",
        "-c:v",
        "mjpeg",
        "-q:v",
        "4",
        "-f",
        "mjpeg",
    ]);
    assert_eq!(&jpeg[..2], b"\xff\xd8");
    let mut ours = Vec::new();
    to_rgb(PixelFormat::Mjpeg, &jpeg, 640, 480, &mut ours).unwrap();
    let theirs = reference_rgb(&jpeg, 640, 480, "", "mjpeg");
    let db = psnr(&ours, &theirs);
    eprintln!("mjpeg 640x480: PSNR {db:.1} dB against ffmpeg's decoder");
    assert!(db > 35.0, "PSNR {db:.1}");
    // A frame of another size than the camera announced is an error, not a smeared image.
    let e = to_rgb(PixelFormat::Mjpeg, &jpeg, 1280, 720, &mut ours).unwrap_err();
    assert!(e.to_string().contains("640x480"), "{e}");
    // A truncated frame (a USB glitch) never panics: an error, or a partial picture of the
    // announced size (decoders fill the missing rows).
    let cut = &jpeg[..jpeg.len() / 3];
    if to_rgb(PixelFormat::Mjpeg, cut, 640, 480, &mut ours).is_ok() {
        assert_eq!(ours.len(), 640 * 480 * 3);
    }
}
