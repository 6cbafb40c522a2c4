//! `vitrine-lab bench models` and `vitrine-lab bench pipeline`: what inference and the whole camera
//! pipeline cost on this machine, in one run.
//!
//! - models: per model, the median latency (1 thread) of tract on the pinned float file and on
//!   the int8 variant made by `tools/quantize.py` (if present), and of onnxruntime (PyPI, in the
//!   venv of `tools/setup-venv.sh`) on the very same input tensors;
//! - pipeline: `vitrine replay` of a busy scene (vtest.avi) and of an idle one (one vtest frame
//!   with temporal sensor noise) with and without motion gating, as analysed frames per
//!   CPU-second (decoding included: the CPU time of the replay and its ffmpeg).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context;
use vitrine_models::audio_events::{LogMel, MELS, PATCH};
use vitrine_models::manifest::entry;
use vitrine_models::preprocess::{crop_resize_bgr, letterbox_bgr};
use vitrine_models::Arith;

const W: usize = 768;
const H: usize = 576;

fn frame(media: &Path, at_s: f64) -> anyhow::Result<Vec<u8>> {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-ss", &at_s.to_string(), "-i"])
        .arg(media)
        .args([
            "-frames:v",
            "1",
            "-s",
            &format!("{W}x{H}"),
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-",
        ])
        .output()
        .context("running ffmpeg")?;
    anyhow::ensure!(
        out.stdout.len() == W * H * 3,
        "could not decode a frame of {}",
        media.display()
    );
    Ok(out.stdout)
}

fn audio(media: &Path, seconds: f64) -> anyhow::Result<Vec<f32>> {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(media)
        .args([
            "-t",
            &seconds.to_string(),
            "-ac",
            "1",
            "-ar",
            "16000",
            "-f",
            "f32le",
            "-",
        ])
        .output()
        .context("running ffmpeg")?;
    Ok(out
        .stdout
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect())
}

struct Case {
    name: &'static str,
    /// Manifest names of the files (FSA-Net has two stages: timed separately, the first here).
    model: &'static str,
    inputs: Vec<(Vec<usize>, Vec<f32>)>,
    facts: bool,
}

fn cases(media: &Path) -> anyhow::Result<Vec<Case>> {
    let video = media.join("vtest.avi");
    let rgb = frame(&video, 30.0)?;
    let lb = |size: usize, pad: f32| {
        let mut v = vec![0f32; 3 * size * size];
        letterbox_bgr(&rgb, W, H, (size, size), pad, &mut v);
        (vec![1, 3, size, size], v)
    };
    let mut crop = vec![0f32; 3 * 64 * 64];
    crop_resize_bgr(
        &rgb,
        W,
        H,
        (300.0, 200.0, 364.0, 264.0),
        64,
        127.5,
        128.0,
        &mut crop,
    );
    let speech = audio(&media.join("speech.wav"), 2.0)?;
    let mut mel = LogMel::new();
    let mut frames = Vec::new();
    mel.push(&speech, &mut frames);
    let patch: Vec<f32> = frames.iter().take(PATCH).flatten().copied().collect();
    anyhow::ensure!(patch.len() == PATCH * MELS, "speech.wav is too short");
    let mut vad_in = speech[..576].to_vec();
    vad_in.truncate(576);
    Ok(vec![
        Case {
            name: "yolox-nano (people, 416)",
            model: "yolox-nano",
            inputs: vec![lb(416, 114.0)],
            facts: true,
        },
        Case {
            name: "person-lw (people, 192)",
            model: "person-lw",
            inputs: vec![lb(192, 114.0)],
            facts: true,
        },
        Case {
            name: "yunet (faces, 320)",
            model: "yunet",
            inputs: vec![lb(320, 0.0)],
            facts: true,
        },
        Case {
            name: "fsanet-1x1 (head pose)",
            model: "fsanet-1x1",
            inputs: vec![(vec![1, 3, 64, 64], crop.clone())],
            facts: true,
        },
        Case {
            name: "fsanet-var (head pose)",
            model: "fsanet-var",
            inputs: vec![(vec![1, 3, 64, 64], crop)],
            facts: true,
        },
        Case {
            name: "yamnet (0.96 s patch)",
            model: "yamnet",
            inputs: vec![(vec![PATCH, MELS], patch)],
            facts: true,
        },
        Case {
            name: "silero-vad (32 ms chunk)",
            model: "silero-vad",
            inputs: vec![(vec![1, 576], vad_in), (vec![2, 1, 128], vec![0.0; 256])],
            facts: false,
        },
    ])
}

/// A scratch directory removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(what: &str) -> anyhow::Result<Scratch> {
        let p = std::env::temp_dir().join(format!("vitrine-bench-{what}-{}", std::process::id()));
        std::fs::create_dir_all(&p).with_context(|| format!("creating {}", p.display()))?;
        Ok(Scratch(p))
    }
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn int8_path(dir: &Path, file: &str) -> PathBuf {
    dir.join(file.replace(".onnx", ".int8.onnx"))
}

fn fmt(v: Option<f64>) -> String {
    v.map(|x| format!("{x:.2}")).unwrap_or_else(|| "—".into())
}

pub fn models(
    dir: &Path,
    media: &Path,
    python: Option<&Path>,
    tools: &Path,
    runs: usize,
) -> anyhow::Result<()> {
    let cases = cases(media)?;
    // onnxruntime on the same tensors: written once, read by tools/ort_bench.py.
    let tmp = Scratch::new("models")?;
    let mut spec = Vec::new();
    let mut rows = Vec::new();
    for c in &cases {
        let e = entry(c.model)?;
        let f32_path = vitrine_models::manifest::verified_path(dir, &e)?;
        let i8_path = int8_path(dir, &e.file);
        let latency = |p: &Path, runs, arith| {
            vitrine_models::bench::latency_ms(p, &c.inputs, runs, c.facts, arith)
        };
        let tract_f32 = latency(&f32_path, runs, Arith::F32)?;
        // f16 is emulated off ARM (tens of times slower): a few runs say enough.
        let tract_f16 = latency(&f32_path, runs.min(3), Arith::F16).ok();
        let tract_i8 = if i8_path.is_file() {
            Some(latency(&i8_path, runs, Arith::Int8)?)
        } else {
            None
        };
        let mut inputs = Vec::new();
        for (i, (shape, data)) in c.inputs.iter().enumerate() {
            let f = tmp.path().join(format!("{}-{i}.f32", c.model));
            let bytes: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
            std::fs::write(&f, bytes)?;
            inputs.push(serde_json::json!({"shape": shape, "file": f}));
        }
        for (variant, p) in [
            ("f32", Some(f32_path)),
            ("int8", i8_path.is_file().then_some(i8_path)),
        ] {
            if let Some(p) = p {
                spec.push(serde_json::json!({"name": c.model, "variant": variant, "path": p, "inputs": inputs}));
            }
        }
        rows.push((c.name, c.model, tract_f32, tract_f16, tract_i8));
    }
    let mut ort: std::collections::HashMap<(String, String), f64> = Default::default();
    let mut ort_note = String::new();
    match python {
        Some(py) => {
            let spec_path = tmp.path().join("spec.json");
            std::fs::write(&spec_path, serde_json::to_vec(&spec)?)?;
            let out = Command::new(py)
                .arg(tools.join("ort_bench.py"))
                .arg(&spec_path)
                .arg(runs.to_string())
                .output()
                .with_context(|| format!("running {}", py.display()))?;
            for l in String::from_utf8_lossy(&out.stdout).lines() {
                let v: serde_json::Value = serde_json::from_str(l).unwrap_or_default();
                if let (Some(n), Some(var), Some(ms)) =
                    (v["name"].as_str(), v["variant"].as_str(), v["ms"].as_f64())
                {
                    ort.insert((n.into(), var.into()), ms);
                } else if let Some(err) = v["error"].as_str() {
                    ort_note.push_str(&format!(
                        "\n  onnxruntime {} {}: {err}",
                        v["name"], v["variant"]
                    ));
                }
            }
            if !out.status.success() {
                ort_note.push_str(&format!(
                    "\n  onnxruntime bench failed: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
            }
        }
        None => ort_note
            .push_str("\n  onnxruntime: not measured (run tools/setup-venv.sh, or pass --python)"),
    }
    let (_, auto) = vitrine_models::Cpu::detect().float_choice();
    println!("CPU: precision = \"auto\" takes {auto}");
    println!("model latency, median of {runs} runs (f16: 3), 1 thread, same input tensors (real frame / real speech); ms");
    println!(
        "{:<26} {:>10} {:>10} {:>10} {:>9} {:>10} {:>10} {:>12}",
        "model",
        "tract f32",
        "tract f16",
        "tract int8",
        "int8/f32",
        "ort f32",
        "ort int8",
        "tract/ort f32"
    );
    for (name, model, f, h, i) in rows {
        let of = ort.get(&(model.to_string(), "f32".to_string())).copied();
        let oi = ort.get(&(model.to_string(), "int8".to_string())).copied();
        println!(
            "{:<26} {:>10} {:>10} {:>10} {:>9} {:>10} {:>10} {:>12}",
            name,
            fmt(Some(f)),
            fmt(h),
            fmt(i),
            i.map(|i| format!("{:.2}x", i / f))
                .unwrap_or_else(|| "—".into()),
            fmt(of),
            fmt(oi),
            of.map(|o| format!("{:.2}x", f / o))
                .unwrap_or_else(|| "—".into()),
        );
    }
    if !ort_note.is_empty() {
        println!("notes:{ort_note}");
    }
    println!("int8 files: tools/quantize.py MODEL (— = none made; see docs/evaluator.md, Models)");
    arm_estimates(dir)
}

/// The people detector on ARM store boxes, estimated from tract's cost model (its
/// multiply-accumulates at the default 416x320 input) and what each core's SIMD does per
/// cycle: an estimate until this command runs on the box itself.
fn arm_estimates(dir: &Path) -> anyhow::Result<()> {
    use vitrine_models::bench::{estimate_ms, ASSUMED_EFFICIENCY, CORE_CLASSES};
    let e = entry("yolox-nano")?;
    let path = vitrine_models::manifest::verified_path(dir, &e)?;
    let fmas = vitrine_models::bench::fmas(&path, &[(0, vec![1, 3, 320, 416])])?;
    println!(
        "\nESTIMATED, not measured: yolox-nano 416x320 ({:.2} G multiply-accumulates, tract's cost model) on one core at {:.0} % of its SIMD peak; ms per frame",
        fmas as f64 / 1e9,
        ASSUMED_EFFICIENCY * 100.0
    );
    println!(
        "{:<30} {:<30} {:>8} {:>8} {:>8} {:>8}",
        "core", "boxes", "f32", "f16", "int8", "f16/f32"
    );
    for c in CORE_CLASSES {
        let f32_ms = estimate_ms(fmas, c.f32, c.ghz);
        let f16_ms = c.f16.map(|p| estimate_ms(fmas, p, c.ghz));
        println!(
            "{:<30} {:<30} {:>8.0} {:>8} {:>8.0} {:>8}",
            c.name,
            c.boxes,
            f32_ms,
            f16_ms.map_or("—".into(), |m| format!("{m:.0}")),
            estimate_ms(fmas, c.int8, c.ghz),
            f16_ms.map_or("—".into(), |m| format!("{:.2}x", m / f32_ms)),
        );
    }
    println!("int8 needs a verified int8 file (none passes for yolox-nano yet). Replace these with measurements: run `vitrine-lab bench models --variants` on the box.");
    Ok(())
}

pub fn pipeline(models_dir: &Path, media: &Path, fps: u32, seconds: u32) -> anyhow::Result<()> {
    let exe = crate::sibling_bin("vitrine")?;
    let models_dir = &std::fs::canonicalize(models_dir)
        .with_context(|| format!("models directory {}", models_dir.display()))?;
    let tmp = Scratch::new("pipeline")?;
    let busy = tmp.path().join("busy.avi");
    let st = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-i"])
        .arg(media.join("vtest.avi"))
        .args(["-t", &seconds.to_string(), "-c", "copy"])
        .arg(&busy)
        .status()?;
    anyhow::ensure!(
        st.success(),
        "ffmpeg could not cut {}",
        media.join("vtest.avi").display()
    );
    // An idle shop: one frame of the same camera, with temporal sensor noise (ffmpeg's noise
    // filter, changing every frame) — what a camera sees when nobody is there.
    let idle = tmp.path().join("idle.avi");
    let st = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-ss", "3", "-i"])
        .arg(&busy)
        .args(["-frames:v", "1", "-f", "image2", "-c:v", "png"])
        .arg(tmp.path().join("still.png"))
        .status()?;
    anyhow::ensure!(
        st.success(),
        "ffmpeg could not take a frame of {}",
        busy.display()
    );
    let st = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-loop", "1", "-framerate", "10", "-i"])
        .arg(tmp.path().join("still.png"))
        .args([
            "-t",
            &seconds.to_string(),
            "-vf",
            "noise=alls=6:allf=t",
            // MJPEG, as a USB camera delivers it (and cheap to decode, unlike lossless
            // codecs on noise).
            "-c:v",
            "mjpeg",
            "-q:v",
            "3",
        ])
        .arg(&idle)
        .status()?;
    anyhow::ensure!(st.success(), "ffmpeg could not make the idle clip");
    println!("whole camera pipeline (decode, gating, detector, tracker, signals; no displays), {fps} fps, {seconds} s of video, `vitrine replay`");
    println!(
        "{:<12} {:<30} {:>8} {:>9} {:>10} {:>14} {:>14}",
        "scene", "mode", "frames", "detected", "CPU s", "frames/CPU-s", "CPU % @10fps"
    );
    let short = |clip: &Path| -> anyhow::Result<PathBuf> {
        let p = tmp.path().join(format!(
            "short-{}",
            clip.file_name().unwrap_or_default().to_string_lossy()
        ));
        if !p.is_file() {
            let st = Command::new("ffmpeg")
                .args(["-v", "error", "-y", "-i"])
                .arg(clip)
                .args(["-t", "1", "-c", "copy"])
                .arg(&p)
                .status()?;
            anyhow::ensure!(st.success(), "ffmpeg could not cut {}", clip.display());
        }
        Ok(p)
    };
    for (scene, clip) in [("busy", &busy), ("idle", &idle)] {
        for (mode, extra) in [
            ("every frame", "motion_gating = false\ndetect_every = 1"),
            ("motion gating", "motion_gating = true\ndetect_every = 1"),
            (
                "gating + every 3rd (default)",
                "motion_gating = true\ndetect_every = 3",
            ),
        ] {
            let cfg = tmp.path().join("bench.toml");
            std::fs::write(
                &cfg,
                format!(
                    "[device]\nid = \"bench\"\nstore_id = \"bench\"\n[[cameras]]\nid = \"cam\"\nfile = \"{}\"\nfps = {fps}\n{extra}\n[[cameras.lines]]\nid = \"l\"\nfrom = [0.45, 0.28]\nto = [0.45, 0.72]\nin = \"left\"\n[models]\ndir = \"{}\"\n[privacy]\nwindow_secs = 10\n[outbox]\ndir = \"{}\"\n",
                    clip.display(),
                    models_dir.display(),
                    tmp.path().join("state").display()
                ),
            )?;
            let run = |clip: &Path| -> anyhow::Result<(u64, u64, f64)> {
                let before = crate::cputime::children_s();
                let out = Command::new(&exe)
                    .args([
                        "replay",
                        "--quiet",
                        "--start",
                        "2026-11-29T10:00:00Z",
                        "--config",
                    ])
                    .arg(&cfg)
                    .arg("--input")
                    .arg(clip)
                    .output()?;
                let cpu = crate::cputime::children_s() - before;
                anyhow::ensure!(
                    out.status.success(),
                    "replay failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                let mut frames = 0u64;
                for l in String::from_utf8_lossy(&out.stdout).lines() {
                    let v: serde_json::Value = serde_json::from_str(l)?;
                    frames += v["coverage"]["frames_analysed"].as_u64().unwrap_or(0);
                }
                Ok((frames, detected_frames(&out.stderr).unwrap_or(0), cpu))
            };
            // Start-up (process, model loading and optimisation) measured on the first second
            // and taken out: the steady state is what a running agent pays.
            let (f0, _, c0) = run(&short(clip)?)?;
            let (frames, detected, cpu) = run(clip)?;
            let rate = (frames - f0.min(frames)) as f64 / (cpu - c0).max(1e-9);
            println!(
                "{:<12} {:<30} {:>8} {:>9} {:>10.2} {:>14.1} {:>13.1}%",
                scene,
                mode,
                frames,
                detected,
                cpu,
                rate,
                100.0 * f64::from(fps.min(10)) / rate
            );
        }
    }
    println!("frames/CPU-s: steady state (the CPU of a 1 s run, start-up included, taken out); CPU s: the whole run.");
    println!("CPU % @10fps: one camera analysed at 10 frames/s, share of one core (decoding by ffmpeg included).");
    Ok(())
}

/// The replay's summary line on stderr: "... detector ran on N frames ...".
fn detected_frames(stderr: &[u8]) -> Option<u64> {
    let s = String::from_utf8_lossy(stderr);
    s.lines().find_map(|l| {
        let i = l.find("detector ran on ")?;
        l[i + 16..].split_whitespace().next()?.parse().ok()
    })
}
