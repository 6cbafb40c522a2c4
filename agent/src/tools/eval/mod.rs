//! `vitrine eval`: accuracy on annotated media, as tables (developer and technician tooling;
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
pub mod forecast;
pub mod gt;
pub mod mot;
pub mod suite;

use std::path::{Path, PathBuf};

use vitrine_models::Vad;
use vitrine_sensors::Pacing;

use anchor::Anchor;
use gt::GroundTruth;
use suite::{Overrides, Score, Sequence};

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

/// `vitrine eval suite`.
pub fn suite(a: SuiteArgs) -> anyhow::Result<()> {
    let seqs = suite::load(&a.suite, &a.media, &a.overrides, a.models.as_deref())?;
    let root = a
        .suite
        .canonicalize()
        .ok()
        .and_then(|p| p.parent()?.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("."));
    let anchor = if a.anchor {
        match Anchor::find(&root) {
            Ok(x) => Some(x),
            Err(why) => {
                println!("anchor (onnxruntime + ByteTrack) SKIPPED: {why}");
                None
            }
        }
    } else {
        None
    };
    let seqs: Vec<Sequence> = seqs
        .into_iter()
        .filter(|s| a.only.as_deref().is_none_or(|o| s.name.contains(o)))
        .collect();
    run_all(&seqs, anchor.as_ref())
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
}

/// `vitrine eval tracking`: one video, its ground truth and a config, scored like a sequence
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
    let anchor = if a.anchor {
        let root = std::env::current_exe()
            .ok()
            .and_then(|e| {
                e.ancestors()
                    .find(|d| d.join("tools/ort_bytetrack.py").is_file())
                    .map(Path::to_path_buf)
            })
            .unwrap_or(here);
        Some(Anchor::find(&root).map_err(|e| anyhow::anyhow!("anchor: {e}"))?)
    } else {
        None
    };
    run_all(&[seq], anchor.as_ref())
}

/// Score every sequence and print the detail, then the summary.
pub fn run_all(seqs: &[Sequence], anchor: Option<&Anchor>) -> anyhow::Result<()> {
    let scratch = tempdir()?;
    let mut rows: Vec<(String, Vec<String>, Score)> = Vec::new();
    for seq in seqs {
        let (facts, native) = suite::video_facts(&seq.video)?;
        let gt = GroundTruth::read(&seq.gt, facts)?;
        let truth = suite::truth_counts(seq, &gt, native, facts.frames);
        let c = &seq.camera;
        println!(
            "\n## {} — {}x{}, {} frames at {native} fps; analysed at {} fps, detect_every {}, motion gating {}, {} input {}, threshold {}\n{}",
            seq.name,
            facts.width,
            facts.height,
            facts.frames,
            c.fps,
            c.detect_every,
            if c.motion_gating { "on" } else { "off" },
            seq.cfg.models.detector,
            seq.cfg.models.input_size.map(|s| s.to_string()).unwrap_or_else(|| "(model's)".into()),
            seq.cfg.models.detector_threshold,
            seq.source,
        );
        let mut scores = vec![suite::score(
            "vitrine",
            &suite::run_vitrine(seq)?,
            &truth,
            &gt,
        )];
        if let Some(x) = anchor {
            match x.run(seq, scratch.path()) {
                Ok(run) => scores.push(suite::score("ort+bytetrack", &run, &truth, &gt)),
                Err(e) => println!("anchor failed on {}: {e:#}", seq.name),
            }
        }
        print_detail(seq, &scores);
        for s in scores {
            rows.push((seq.name.clone(), seq.along.clone(), s));
        }
    }
    print_summary(seqs, &rows);
    Ok(())
}

fn pct(x: f64) -> String {
    format!("{:.1} %", 100.0 * x)
}

fn print_detail(seq: &Sequence, scores: &[Score]) {
    let names: Vec<&str> = scores.iter().map(|s| s.pipeline.as_str()).collect();
    println!("\n| count | truth | {} |", names.join(" | "));
    println!("|---|---|{}", "---|".repeat(names.len()));
    let Some(first) = scores.first() else { return };
    let show_grid = std::env::var_os("VITRINE_EVAL_GRID").is_some();
    for (i, (truth, _)) in first.lines.iter().enumerate() {
        let id = &truth.id;
        if id.starts_with("grid-") && !show_grid {
            continue;
        }
        let kind = if *id == seq.main_line {
            " (main)"
        } else if seq.along.contains(id) {
            " (along)"
        } else {
            ""
        };
        for (dir, t, pick) in [("in", truth.ins, 0), ("out", truth.outs, 1)] {
            let cells: Vec<String> = scores
                .iter()
                .map(|s| {
                    let o = &s.lines[i].1;
                    let v = if pick == 0 { o.ins } else { o.outs };
                    format!("{v} ({:+})", v as i64 - t as i64)
                })
                .collect();
            println!("| line {id}{kind} {dir} | {t} | {} |", cells.join(" | "));
        }
    }
    for (i, (truth, _)) in first.zones.iter().enumerate() {
        let cells: Vec<String> = scores
            .iter()
            .map(|s| match s.zones.get(i).and_then(|z| z.1.as_ref()) {
                Some(z) => format!("{} visits, occupancy {:.2}", z.visits, z.occupancy),
                None => "—".into(),
            })
            .collect();
        println!(
            "| zone {} | {} visits, occupancy {:.2} | {} |",
            truth.id,
            truth.visits,
            truth.occupancy,
            cells.join(" | ")
        );
    }
    println!();
    for s in scores {
        let m = &s.mot;
        print!(
            "{}: {} people-frames annotated, {} reported; FN {}, FP {}, identity switches {}",
            s.pipeline, m.gt, m.hyp, m.fn_, m.fp, m.idsw
        );
        match s.det {
            Some(d) => println!(
                "; detector alone (at the threshold) on its {} frames: recall {} / precision {}",
                s.detector_frames,
                pct(d.recall()),
                pct(d.precision())
            ),
            None => println!(),
        }
        if let Some(model) = s.model_s {
            println!(
                "{}: {:.2} s of CPU for {} frames ({:.1} ms each), of which the detector's model {:.2} s ({:.1} ms per detector run): everything else is {} of the CPU",
                s.pipeline,
                s.cpu_s,
                s.frames,
                1000.0 * s.cpu_s / s.frames.max(1) as f64,
                model,
                1000.0 * model / s.detector_frames.max(1) as f64,
                pct(1.0 - model / s.cpu_s.max(1e-9)),
            );
        }
    }
}

fn print_summary(seqs: &[Sequence], rows: &[(String, Vec<String>, Score)]) {
    println!("\n| sequence | pipeline | frames | main line error | along: false crossings | grid lines error | MOTA | IDF1 | precision / recall | people in view | frames per CPU-s |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for (name, along, s) in rows {
        let main = seqs
            .iter()
            .find(|q| &q.name == name)
            .map(|q| q.main_line.as_str())
            .unwrap_or("");
        let (err, n) = s.line_error(main);
        let (gerr, gn) = s.grid_error();
        println!(
            "| {name} | {} | {} | {err} of {n} ({}) | {} | {gerr} of {gn} ({}) | {} | {} | {} / {} | {:.2} vs {:.2} ({:+.1} %) | {:.1} |",
            s.pipeline,
            s.frames,
            pct(err as f64 / n.max(1) as f64),
            s.false_crossings(along),
            pct(gerr as f64 / gn.max(1) as f64),
            pct(s.mot.mota()),
            pct(s.mot.idf1()),
            pct(s.mot.precision()),
            pct(s.mot.recall()),
            s.people.0,
            s.people.1,
            100.0 * s.people_error(),
            s.fps_per_cpu(),
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
