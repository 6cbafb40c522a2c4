//! The anchor pipelines Vitrine is measured against: `tools/ort_bytetrack.py` (YOLOX-nano in
//! onnxruntime on one thread, then supervision's ByteTrack — and, where BoxMOT is installed,
//! its OC-SORT, BoT-SORT, Hybrid-SORT and Deep OC-SORT — each with supervision's LineZone),
//! run on the same video at the same analysis rate: ByteTrack in the Python venv of
//! `tools/setup-venv.sh`, BoxMOT's trackers in the one of `tools/setup-venv.sh --boxmot`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context;
use vitrine_signals::geom::BBox;
use vitrine_signals::scene::Crossing;

use super::suite::{FrameOut, LineCount, Run, Sequence};

/// Where an anchor runs: a venv's python, the script and the trackers it runs there.
#[derive(Debug, Clone)]
pub struct Anchor {
    pub python: PathBuf,
    pub script: PathBuf,
    pub trackers: Vec<&'static str>,
}

/// BoxMOT's trackers that run without re-identification weights.
const BOXMOT: [&str; 4] = ["ocsort", "botsort", "hybridsort", "deepocsort"];

impl Anchor {
    /// The anchors whose venvs are under `root` (the repository): ByteTrack's (required:
    /// an error says how to make it) and BoxMOT's (when `tools/setup-venv.sh --boxmot` made it).
    pub fn find(root: &Path) -> Result<Vec<Anchor>, String> {
        let python = std::env::var_os("VITRINE_PYTHON")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join(".cache/pyenv/bin/python"));
        let script = root.join("tools/ort_bytetrack.py");
        if !script.is_file() {
            return Err(format!("{} is missing", script.display()));
        }
        if !python.is_file() {
            return Err(format!(
                "no Python venv at {}; fix: run tools/setup-venv.sh",
                python.display()
            ));
        }
        let mut found = vec![Anchor {
            python,
            script: script.clone(),
            trackers: vec!["bytetrack"],
        }];
        let boxmot = std::env::var_os("VITRINE_PYTHON_BOXMOT")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join(".cache/pyenv-boxmot/bin/python"));
        if boxmot.is_file() {
            found.push(Anchor {
                python: boxmot,
                script,
                trackers: BOXMOT.to_vec(),
            });
        }
        Ok(found)
    }

    /// Run the anchor's trackers on `seq`; `scratch` receives the spec and tracks. Returns
    /// each pipeline's name and run.
    pub fn run(&self, seq: &Sequence, scratch: &Path) -> anyhow::Result<Vec<(String, Run)>> {
        let model = seq.cfg.models.dir.join("yolox_nano.onnx");
        let out_dir = scratch.join(format!("{}.{}", seq.name, self.trackers.join("+")));
        std::fs::create_dir_all(&out_dir)?;
        let spec = out_dir.join("spec.json");
        let lines: Vec<serde_json::Value> = seq
            .camera
            .lines
            .iter()
            .map(|l| {
                serde_json::json!({
                    "id": l.id,
                    "from": [l.from.x, l.from.y],
                    "to": [l.to.x, l.to.y],
                    "in": match l.in_side { vitrine_config::Side::Left => "left", vitrine_config::Side::Right => "right" },
                    "timed": !l.id.starts_with(super::grid::PREFIX),
                })
            })
            .collect();
        let body = serde_json::json!({
            "model": model,
            "video": seq.video,
            "fps": seq.camera.fps,
            "out_dir": out_dir,
            "trackers": self.trackers,
            "lines": lines,
        });
        std::fs::write(&spec, body.to_string())?;
        let out = Command::new(&self.python)
            .arg(&self.script)
            .arg(&spec)
            .output()
            .with_context(|| format!("running {}", self.python.display()))?;
        if !out.status.success() {
            anyhow::bail!(
                "the anchor failed on {}: {}",
                seq.name,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        let summary: serde_json::Value = serde_json::from_slice(
            out.stdout
                .split(|b| *b == b'\n')
                .rfind(|l| !l.is_empty())
                .unwrap_or_default(),
        )
        .with_context(|| format!("the anchor's summary on {}", seq.name))?;
        let (w, h) = frame_size(&seq.video)?;
        let (_, native) = super::suite::video_facts(&seq.video)?;
        let mut runs = Vec::new();
        for t in &self.trackers {
            let name = format!("ort+{t}");
            let p = &summary["pipelines"][&name];
            let tracks = out_dir.join(format!("{name}.txt"));
            runs.push((
                name,
                Run {
                    frames: read_tracks(&tracks, w, h, &seq.video, seq.camera.fps)?,
                    cpu_s: p["cpu_s"].as_f64().unwrap_or(f64::NAN),
                    video_s: f64::NAN,
                    model_s: None,
                    detector_frames: summary["frames"].as_u64().unwrap_or(0),
                    lines: line_counts(p),
                    zones: Vec::new(),
                    crossings: crossings(p, native),
                },
            ));
        }
        Ok(runs)
    }
}

fn line_counts(p: &serde_json::Value) -> Vec<LineCount> {
    p["lines"]
        .as_object()
        .map(|o| {
            o.iter()
                .map(|(id, v)| LineCount {
                    id: id.clone(),
                    ins: v["in"].as_u64().unwrap_or(0),
                    outs: v["out"].as_u64().unwrap_or(0),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Each line's crossings: `[frame, inwards]` pairs, frames 1-based at the video's own rate.
fn crossings(p: &serde_json::Value, native: f32) -> BTreeMap<String, Vec<Crossing>> {
    let at = |f: u64| (f.saturating_sub(1) as f64 * 1000.0 / f64::from(native)) as u64;
    p["crossings"]
        .as_object()
        .map(|o| {
            o.iter()
                .map(|(id, v)| {
                    let list = v
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .map(|c| Crossing {
                                    t_ms: at(c[0].as_u64().unwrap_or(0)),
                                    key: 0,
                                    inwards: c[1].as_bool().unwrap_or(false),
                                    group: 0,
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    (id.clone(), list)
                })
                .collect()
        })
        .unwrap_or_default()
}

fn frame_size(video: &Path) -> anyhow::Result<(f32, f32)> {
    let (w, h, _, _) = vitrine_sensors::video_file::probe(video)?;
    Ok((w as f32, h as f32))
}

/// The anchor's MOT-style tracks, grouped by the analysed frames (every analysed frame is
/// present, also those without a track).
fn read_tracks(
    path: &Path,
    w: f32,
    h: f32,
    video: &Path,
    fps: f32,
) -> anyhow::Result<Vec<FrameOut>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut by_frame: BTreeMap<u64, Vec<(u64, BBox)>> = BTreeMap::new();
    for line in text.lines() {
        let v: Vec<f32> = line
            .split(',')
            .filter_map(|x| x.trim().parse().ok())
            .collect();
        if v.len() < 6 {
            continue;
        }
        let b = BBox::new(v[2] / w, v[3] / h, (v[2] + v[4]) / w, (v[3] + v[5]) / h);
        by_frame
            .entry(v[0] as u64)
            .or_default()
            .push((v[1] as u64, b));
    }
    let (facts, native) = super::suite::video_facts(video)?;
    let mut out = Vec::new();
    let mut k = 0;
    loop {
        let n = super::suite::native_frame(k, fps, native);
        if n > facts.frames {
            break;
        }
        out.push(FrameOut {
            frame: n,
            people: by_frame.remove(&n).unwrap_or_default(),
            detections: None,
        });
        k += 1;
    }
    Ok(out)
}
