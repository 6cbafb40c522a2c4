//! The people detector in f32 and f16 on the same real frames: time per frame and how far the
//! f16 detections are from the f32 ones (developer check; the proof on counts is
//! `vitrine-lab eval suite --precision f16`).
//!   cargo run --release -p vitrine-models --example precision -- MODELS_DIR VIDEO [FRAMES]
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Instant;

use vitrine_models::{PeopleDetector, Precision};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = std::path::PathBuf::from(args.next().ok_or("MODELS_DIR")?);
    let video = args.next().ok_or("VIDEO")?;
    let frames: usize = args.next().map_or(Ok(20), |n| n.parse())?;
    let (w, h) = (640usize, 480usize);
    let mut ff = Command::new("ffmpeg")
        .args(["-v", "error", "-i", &video, "-vf"])
        .arg(format!("fps=1,scale={w}:{h}"))
        .args([
            "-frames:v",
            &frames.to_string(),
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-",
        ])
        .stdout(Stdio::piped())
        .spawn()?;
    let mut raw = Vec::new();
    ff.stdout
        .take()
        .ok_or("ffmpeg stdout")?
        .read_to_end(&mut raw)?;
    ff.wait()?;
    let load = |p| PeopleDetector::load("yolox-nano", &dir, None, 0.3, 0.45, p);
    let (f32d, _) = load(Precision::F32)?;
    let (f16d, _) = load(Precision::F16)?;
    let (mut a, mut b) = (f32d.session(w, h)?, f16d.session(w, h)?);
    let (mut ta, mut tb, mut matched, mut na, mut nb) = (0.0, 0.0, 0usize, 0usize, 0usize);
    for rgb in raw.chunks_exact(w * h * 3) {
        let t = Instant::now();
        let da = a.detect(rgb, w, h)?;
        ta += t.elapsed().as_secs_f64();
        let t = Instant::now();
        let db = b.detect(rgb, w, h)?;
        tb += t.elapsed().as_secs_f64();
        na += da.len();
        nb += db.len();
        matched += da
            .iter()
            .filter(|x| db.iter().any(|y| x.bbox.iou(&y.bbox) >= 0.7))
            .count();
    }
    let n = (raw.len() / (w * h * 3)).max(1) as f64;
    println!(
        "{n} frames: f32 {:.1} ms, f16 {:.1} ms per frame; detections f32 {na}, f16 {nb}, matched at IoU 0.7: {matched} (recall of f32's {:.3})",
        ta * 1000.0 / n,
        tb * 1000.0 / n,
        matched as f64 / na.max(1) as f64
    );
    Ok(())
}
