//! `vitrine-lab eval expressions`: the expression model's accuracy on a labelled set of face crops
//! at the face sizes a display camera sees.
//!
//! The set is a directory with one folder per class (`angry`, `disgust`, `fear`, `happy`,
//! `sad`, `surprise`, `neutral`; others are skipped) of face crops in any format ffmpeg reads
//! (FER2013's test split is laid out so). Each crop is scaled to `s`x`s` pixels (ffmpeg's area
//! filter, as a camera's sensor would see a face that size), then read exactly as the daemon
//! reads a looker's face (`ExpressionReader::read`: bilinear to 64x64, grey), the whole crop
//! taken as the face with its margin. Reported per size: accuracy, per-class recall and the
//! confusion matrix (rows: truth, columns: read).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context;
use vitrine_models::ExpressionReader;
use vitrine_signals::attention::Expression;
use vitrine_signals::geom::BBox;

/// `[truth][read]` counts.
type Confusion = [[u32; 7]; 7];

pub fn expressions(models: &Path, data: &Path, sizes: &[u32]) -> anyhow::Result<()> {
    let mut reader = ExpressionReader::load(models)
        .with_context(|| format!("the expression model in {}", models.display()))?;
    let classes: Vec<(Expression, PathBuf)> = Expression::ALL
        .iter()
        .map(|e| (*e, data.join(e.name())))
        .filter(|(_, d)| d.is_dir())
        .collect();
    anyhow::ensure!(
        !classes.is_empty(),
        "{}: no class folder (angry, disgust, fear, happy, sad, surprise, neutral); fix: point --data at a directory with one folder of face crops per class",
        data.display()
    );
    println!("## Expressions: {}\n", data.display());
    for &s in sizes {
        let mut m: Confusion = [[0; 7]; 7];
        for (truth, dir) in &classes {
            for rgb in crops(dir, s)? {
                let read = reader.read(&rgb, s as usize, s as usize, &whole_crop())?;
                m[*truth as usize][read as usize] += 1;
            }
        }
        report(s, &m);
    }
    Ok(())
}

/// The face box whose crop (grown by the reader's margin) is the whole picture.
fn whole_crop() -> BBox {
    let m = 1.0 / (1.0 + 2.0 * vitrine_models::expressions::MARGIN);
    BBox::from_center(0.5, 0.5, m, m)
}

/// Every image of `dir` scaled to `s`x`s`, RGB24, in name order.
fn crops(dir: &Path, s: u32) -> anyhow::Result<Vec<Vec<u8>>> {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-f", "image2", "-pattern_type", "glob", "-i"])
        .arg(dir.join("*"))
        .args(["-vf", &format!("scale={s}:{s}:flags=area")])
        .args(["-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
        .output()
        .context("running ffmpeg (install it: apt install ffmpeg)")?;
    anyhow::ensure!(
        out.status.success(),
        "ffmpeg could not read the images in {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    let frame = (s * s * 3) as usize;
    Ok(out.stdout.chunks_exact(frame).map(<[u8]>::to_vec).collect())
}

fn report(s: u32, m: &Confusion) {
    let total: u32 = m.iter().flatten().sum();
    let right: u32 = (0..7).map(|i| m[i][i]).sum();
    let face_px = (s as f32 / (1.0 + 2.0 * vitrine_models::expressions::MARGIN)).round();
    println!(
        "### crops of {s} px (a face box of about {face_px} px): {right} of {total} right ({:.1} %)\n",
        pct(right, total)
    );
    let names: Vec<&str> = Expression::ALL.iter().map(|e| e.name()).collect();
    println!("| truth \\ read | {} | recall |", names.join(" | "));
    println!("|---|{}---|", "---|".repeat(7));
    for (i, row) in m.iter().enumerate() {
        let n: u32 = row.iter().sum();
        let cells: Vec<String> = row.iter().map(u32::to_string).collect();
        println!(
            "| {} | {} | {:.1} % |",
            names[i],
            cells.join(" | "),
            pct(row[i], n)
        );
    }
    println!();
}

fn pct(a: u32, b: u32) -> f64 {
    if b == 0 {
        0.0
    } else {
        100.0 * f64::from(a) / f64::from(b)
    }
}
