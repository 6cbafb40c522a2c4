//! The anchor pipeline Vitrine is measured against: `tools/ort_bytetrack.py` (YOLOX-nano in
//! onnxruntime on one thread, supervision's ByteTrack and LineZone), run on the same video at
//! the same analysis rate, in the Python venv of `tools/setup-venv.sh`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context;
use vitrine_signals::geom::BBox;

use super::suite::{FrameOut, Run, Sequence};

/// Where the anchor runs: the venv's python and the script.
#[derive(Debug, Clone)]
pub struct Anchor {
    pub python: PathBuf,
    pub script: PathBuf,
}

impl Anchor {
    /// The venv made by `tools/setup-venv.sh` under `root` (the repository), if it is there.
    pub fn find(root: &Path) -> Result<Anchor, String> {
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
        Ok(Anchor { python, script })
    }

    /// Run the anchor on `seq`; `scratch` receives its spec and tracks.
    pub fn run(&self, seq: &Sequence, scratch: &Path) -> anyhow::Result<Run> {
        let model = seq.cfg.models.dir.join("yolox_nano.onnx");
        let tracks = scratch.join(format!("{}.anchor.txt", seq.name));
        let spec = scratch.join(format!("{}.anchor.json", seq.name));
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
                })
            })
            .collect();
        let body = serde_json::json!({
            "model": model,
            "video": seq.video,
            "fps": seq.camera.fps,
            "tracks_out": tracks,
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
        let frames = read_tracks(&tracks, w, h, &seq.video, seq.camera.fps)?;
        let lines = summary["lines"]
            .as_object()
            .map(|o| {
                o.iter()
                    .map(|(id, v)| super::suite::LineCount {
                        id: id.clone(),
                        ins: v["in"].as_u64().unwrap_or(0),
                        outs: v["out"].as_u64().unwrap_or(0),
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(Run {
            frames,
            cpu_s: summary["cpu_s"].as_f64().unwrap_or(f64::NAN),
            model_s: None,
            detector_frames: summary["frames"].as_u64().unwrap_or(0),
            lines,
            zones: Vec::new(),
        })
    }
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
