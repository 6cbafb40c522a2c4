//! `vitrine-lab eval`: accuracy on annotated media, as tables (developer and technician tooling;
//! the daemon never runs it).
//!
//! - `eval suite`: the accuracy suite (`eval/suite.toml`): public sequences with MOT ground
//!   truth, each with lines across and along the walking direction and zones. Per sequence:
//!   line-count error, false crossings on the lines along the way, MOTA, IDF1, precision and
//!   recall of the people reported, people-in-view error and whole-process frames per
//!   CPU-second, for Vitrine and, in the same run on the same frames, for the onnxruntime +
//!   ByteTrack anchor (`tools/ort_bytetrack.py`);
//! - `eval tracking`: the same for one video, ground truth and config (a technician's own
//!   recording);
//! - `eval vad`: voice activity frame agreement on speech mixed with real noise;
//! - `eval forecast`: the traffic forecast backtested on a public hourly footfall series
//!   against seasonal-naive and a library model (`forecast.rs`).
//!
//! Track ids and boxes stay in this process (this is the one place they are compared with
//! anything); only the figures are printed.

pub mod anchor;
pub mod crossings;
pub mod expressions;
pub mod federated;
pub mod forecast;
pub mod grid;
pub mod gt;
pub mod hota;
pub mod mot;
mod report;
pub mod suite;

use std::path::{Path, PathBuf};

use vitrine_models::Vad;
use vitrine_sensors::Pacing;

use anchor::Anchor;
use gt::GroundTruth;
use suite::{Missing, Overrides, Score, Sequence};

pub struct SuiteArgs {
    pub suite: PathBuf,
    pub media: Vec<PathBuf>,
    pub models: Option<PathBuf>,
    pub overrides: Overrides,
    /// Run the onnxruntime + ByteTrack anchor beside Vitrine.
    pub anchor: bool,
    /// Only the sequences whose name contains this.
    pub only: Option<String>,
}

/// `vitrine-lab eval suite`.
pub fn suite(a: SuiteArgs) -> anyhow::Result<()> {
    let (seqs, missing) = suite::load(
        &a.suite,
        &a.media,
        &a.overrides,
        a.models.as_deref(),
        a.only.as_deref(),
    )?;
    let root = a
        .suite
        .canonicalize()
        .ok()
        .and_then(|p| p.parent()?.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("."));
    let anchors = if a.anchor {
        match Anchor::find(&root) {
            Ok(x) => x,
            Err(why) => {
                println!("anchor (onnxruntime + ByteTrack) SKIPPED: {why}");
                Vec::new()
            }
        }
    } else {
        Vec::new()
    };
    run_all(&seqs, &missing, &anchors)
}

pub struct TrackingArgs {
    pub config: PathBuf,
    pub video: PathBuf,
    pub gt: PathBuf,
    pub main_line: Option<String>,
    pub along: Vec<String>,
    pub anchor: bool,
    pub models: Option<PathBuf>,
    pub overrides: Overrides,
    /// The ground truth's pixels are of this size (the video is a scaled copy).
    pub gt_size: Option<[u32; 2]>,
}

/// `vitrine-lab eval tracking`: one video, its ground truth and a config, scored like a sequence
/// of the suite.
pub fn tracking(a: TrackingArgs) -> anyhow::Result<()> {
    let cfg = vitrine_config::Config::load(&a.config).map_err(|e| anyhow::anyhow!("{e}"))?;
    let main_line = match a.main_line {
        Some(l) => l,
        None => cfg
            .cameras
            .first()
            .and_then(|c| c.lines.first())
            .map(|l| l.id.clone())
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "{}: no counting line in the first camera; fix: add a [[cameras.lines]]",
                    a.config.display()
                )
            })?,
    };
    let here = std::env::current_dir()?;
    let abs = |p: &Path| {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            here.join(p)
        }
    };
    let file = suite::SequenceFile {
        gt_size: a.gt_size,
        scene: String::new(),
        tuned: false,
        name: a
            .video
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default(),
        video: abs(&a.video),
        gt: abs(&a.gt),
        config: abs(&a.config),
        main_line,
        along: a.along,
        source: String::new(),
    };
    let seq = suite::resolve(&here, file, &[], &a.overrides, a.models.as_deref())?;
    let anchors = if a.anchor {
        let root = std::env::current_exe()
            .ok()
            .and_then(|e| {
                e.ancestors()
                    .find(|d| d.join("tools/ort_bytetrack.py").is_file())
                    .map(Path::to_path_buf)
            })
            .unwrap_or(here);
        Anchor::find(&root).map_err(|e| anyhow::anyhow!("anchor: {e}"))?
    } else {
        Vec::new()
    };
    run_all(&[seq], &[], &anchors)
}

/// Score every sequence and print the detail, then the summary.
pub fn run_all(seqs: &[Sequence], missing: &[Missing], anchors: &[Anchor]) -> anyhow::Result<()> {
    for m in missing {
        println!(
            "SKIPPED sequence {}: {}; it is {}; fix: put it in the evaluation data directory (VITRINE_EVAL_MEDIA, default ../shared/media)",
            m.name, m.what, m.source
        );
    }
    let scratch = tempdir()?;
    let mut rows: Vec<(&Sequence, Score)> = Vec::new();
    for seq in seqs {
        let (facts, native) = suite::video_facts(&seq.video)?;
        let gt = GroundTruth::read_scaled(&seq.gt, facts, seq.gt_size)?;
        let gridded = seq.with_grid(&gt);
        let truth_run = suite::truth_counts(&gridded, &gt, native, facts.frames);
        report::header(&gridded, facts, native);
        let ours = suite::run_vitrine(&gridded)?;
        let hidden = suite::truth_crossings(&truth_run, &gt, native, &ours);
        let truth = suite::Truth {
            gt: &gt,
            run: &truth_run,
            crossings: &hidden,
            height_px: facts.height as f32,
            main_line: &seq.main_line,
            video_ms: (facts.frames as f64 * 1000.0 / f64::from(native)) as u64,
        };
        if let Some(dir) = std::env::var_os("VITRINE_EVAL_DUMP") {
            dump(std::path::Path::new(&dir), &seq.name, &ours, &hidden, facts)?;
            dump_lines(std::path::Path::new(&dir), &gridded)?;
        }
        if let Ok(line) = std::env::var("VITRINE_EVAL_DEBUG_LINE") {
            debug_line(&line, &hidden, &ours, &gt, native);
        }
        let mut scores = vec![suite::score("vitrine", &ours, &truth)];
        for x in anchors {
            match x.run(&gridded, scratch.path()) {
                Ok(runs) => {
                    for (name, run) in runs {
                        scores.push(suite::score(&name, &run, &truth));
                    }
                }
                Err(e) => println!("anchor failed on {}: {e:#}", seq.name),
            }
        }
        report::detail(&gridded, &scores, facts);
        report::placement(&suite::placement(seq, &ours, facts, native));
        for s in scores {
            rows.push((seq, s));
        }
    }
    report::summary(&rows);
    Ok(())
}

/// Vitrine's tracks of a sequence, MOT-style in the video's pixels (`VITRINE_EVAL_DUMP`: for
/// looking at them, or scoring them with another tool).
fn dump(
    dir: &Path,
    name: &str,
    run: &suite::Run,
    truth: &std::collections::BTreeMap<String, Vec<crossings::TruthCrossing>>,
    facts: gt::VideoFacts,
) -> anyhow::Result<()> {
    use std::fmt::Write as _;
    let (w, h) = (facts.width as f32, facts.height as f32);
    let mut out = String::new();
    for f in &run.frames {
        for (id, b) in &f.people {
            let _ = writeln!(
                out,
                "{},{id},{:.1},{:.1},{:.1},{:.1},1,-1,-1,-1",
                f.frame,
                b.x1 * w,
                b.y1 * h,
                b.w() * w,
                b.h() * h
            );
        }
    }
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join(format!("{name}.vitrine.txt")), out)?;
    let mut lines = serde_json::Map::new();
    for (id, t) in truth {
        let o = run.crossings.get(id).cloned().unwrap_or_default();
        let (tm, om) = crossings::matching(t, &o);
        let tj: Vec<serde_json::Value> = t
            .iter()
            .zip(tm)
            .map(|(c, m)| {
                serde_json::json!([
                    c.crossing.t_ms,
                    c.crossing.key,
                    c.crossing.inwards,
                    c.hidden,
                    m
                ])
            })
            .collect();
        let oj: Vec<serde_json::Value> = o
            .iter()
            .zip(om)
            .map(|(c, m)| serde_json::json!([c.t_ms, c.key, c.inwards, m]))
            .collect();
        lines.insert(id.clone(), serde_json::json!({"truth": tj, "ours": oj}));
    }
    std::fs::write(
        dir.join(format!("{name}.crossings.json")),
        serde_json::Value::Object(lines).to_string(),
    )?;
    Ok(())
}

/// The sequence's lines, grid included, as `[[cameras.lines]]` (to count them with another
/// build of the agent: `vitrine-lab eval tracking` on a config with these lines).
fn dump_lines(dir: &Path, seq: &Sequence) -> anyhow::Result<()> {
    use std::fmt::Write as _;
    let mut out = String::new();
    for l in &seq.camera.lines {
        let _ = writeln!(
            out,
            "[[cameras.lines]]\nid = \"{}\"\nfrom = [{}, {}]\nto = [{}, {}]\nin = \"{}\"\n",
            l.id,
            l.from.x,
            l.from.y,
            l.to.x,
            l.to.y,
            match l.in_side {
                vitrine_config::Side::Left => "left",
                vitrine_config::Side::Right => "right",
            }
        );
    }
    std::fs::write(dir.join(format!("{}.lines.toml", seq.name)), out)?;
    Ok(())
}

fn debug_line(
    line: &str,
    truth: &std::collections::BTreeMap<String, Vec<crossings::TruthCrossing>>,
    ours: &suite::Run,
    gt: &GroundTruth,
    native: f32,
) {
    let t = truth.get(line).cloned().unwrap_or_default();
    let o = ours.crossings.get(line).cloned().unwrap_or_default();
    let (tm, om) = crossings::matching(&t, &o);
    println!("DEBUG {line}: truth");
    for (c, m) in t.iter().zip(&tm) {
        let n = (c.crossing.t_ms as f64 * f64::from(native) / 1000.0).round() as u64 + 1;
        let g = gt
            .frame(n)
            .iter()
            .find(|g| g.id == c.crossing.key)
            .map(|g| g.bbox);
        // Our people near the annotated box around that time.
        let near: Vec<String> = ours
            .frames
            .iter()
            .filter(|f| f.frame.abs_diff(n) <= (native as u64) * 2)
            .map(|f| {
                let ids: Vec<String> = f
                    .people
                    .iter()
                    .filter(|(_, b)| {
                        g.is_some_and(|g| {
                            (b.foot().x - g.foot().x).abs() < 0.08
                                && (b.foot().y - g.foot().y).abs() < 0.08
                        })
                    })
                    .map(|(id, b)| format!("{id}@{:.2},{:.2}", b.foot().x, b.foot().y))
                    .collect();
                format!("{}:[{}]", f.frame, ids.join(" "))
            })
            .collect();
        println!(
            "  {} t {:6} gt {:3} {} hidden {} box {:?}\n     {}",
            if *m { "ok    " } else { "MISSED" },
            c.crossing.t_ms,
            c.crossing.key,
            if c.crossing.inwards { "in " } else { "out" },
            c.hidden,
            g.map(|g| (g.foot().x, g.foot().y, g.h())),
            near.join(" ")
        );
    }
    println!("DEBUG {line}: ours");
    for (c, m) in o.iter().zip(&om) {
        println!(
            "  {} t {:6} key {:3} {}",
            if *m { "ok   " } else { "EXTRA" },
            c.t_ms,
            c.key,
            if c.inwards { "in" } else { "out" }
        );
    }
}

/// A scratch directory removed on drop.
fn tempdir() -> anyhow::Result<Scratch> {
    let p = std::env::temp_dir().join(format!("vitrine-eval-{}", std::process::id()));
    std::fs::create_dir_all(&p)?;
    Ok(Scratch(p))
}

struct Scratch(PathBuf);

impl Scratch {
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Voice activity frame agreement: `speech` (clean) mixed with `noise` at `snr_db`.
pub fn vad(
    models: &Path,
    speech: &Path,
    noise: &Path,
    snr_db: f64,
    threshold: f32,
) -> anyhow::Result<()> {
    use vitrine_models::vad::CHUNK;
    use vitrine_sensors::audio_file::AudioFile;
    use vitrine_sensors::AudioSource;
    let read = |p: &Path| -> anyhow::Result<Vec<f32>> {
        let mut f = AudioFile::open(p, Pacing::AsFastAsPossible)?;
        let mut v = Vec::new();
        while let Some(b) = f.next_block()? {
            v.extend_from_slice(&b.samples);
        }
        Ok(v)
    };
    let (s, n) = (read(speech)?, read(noise)?);
    anyhow::ensure!(!s.is_empty() && !n.is_empty(), "empty audio");
    let chunks = s.len() / CHUNK;
    let db = |x: &[f32]| vitrine_signals::audio::dbfs(vitrine_signals::audio::rms(x));
    // Labels from the clean speech: a chunk is speech when within 30 dB of the loudest chunk.
    let levels: Vec<f64> = (0..chunks)
        .map(|i| db(&s[i * CHUNK..(i + 1) * CHUNK]))
        .collect();
    let loud = levels.iter().copied().fold(f64::MIN, f64::max);
    let labels: Vec<bool> = levels.iter().map(|l| *l > loud - 30.0).collect();
    let speech_pow: f64 = (0..chunks)
        .filter(|i| labels[*i])
        .map(|i| {
            s[i * CHUNK..(i + 1) * CHUNK]
                .iter()
                .map(|x| f64::from(*x).powi(2))
                .sum::<f64>()
        })
        .sum::<f64>()
        / (labels.iter().filter(|l| **l).count().max(1) * CHUNK) as f64;
    let noise_pow = n.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>() / n.len() as f64;
    let gain = (speech_pow / noise_pow.max(1e-12) / 10f64.powf(snr_db / 10.0)).sqrt() as f32;
    let mut vad = Vad::load("silero-vad", models)?;
    let (mut agree, mut tp, mut fp, mut fn_) = (0u64, 0u64, 0u64, 0u64);
    let mut mix = vec![0f32; CHUNK];
    for (i, &label) in labels.iter().enumerate() {
        for (k, m) in mix.iter_mut().enumerate() {
            let j = i * CHUNK + k;
            *m = (s[j] + gain * n[j % n.len()]).clamp(-1.0, 1.0);
        }
        let said = vad.process(&mix)? >= threshold;
        agree += u64::from(said == label);
        match (said, label) {
            (true, true) => tp += 1,
            (true, false) => fp += 1,
            (false, true) => fn_ += 1,
            _ => {}
        }
    }
    println!(
        "| VAD: {} + {} at {snr_db} dB SNR | frames {chunks} (32 ms) | labelled speech {:.0} % | agreement {:.1} % | speech recall {:.1} % | precision {:.1} % |",
        speech.file_name().unwrap_or_default().to_string_lossy(),
        noise.file_name().unwrap_or_default().to_string_lossy(),
        100.0 * labels.iter().filter(|l| **l).count() as f64 / chunks.max(1) as f64,
        100.0 * agree as f64 / chunks.max(1) as f64,
        100.0 * tp as f64 / (tp + fn_).max(1) as f64,
        100.0 * tp as f64 / (tp + fp).max(1) as f64,
    );
    Ok(())
}
