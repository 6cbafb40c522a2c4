//! Person detection with YOLOX-family ONNX models (yolox-nano: COCO-80, class 0 = person;
//! person-lw: one class). Input: letterboxed BGR 0..255, pad 114. Output: N×(4+1+C) with
//! grid-relative centres and log sizes for strides 8/16/32.

use std::path::Path;

use tract_onnx::prelude::*;
use vitrine_signals::track::Detection;

use crate::manifest::{entry, verified_path};
use crate::preprocess::{grid_box, letterbox_bgr};
use crate::ModelError;

pub(crate) type Plan = std::sync::Arc<TypedRunnableModel>;

pub struct Detector {
    name: String,
    plan: Plan,
    size: usize,
    classes: usize,
    threshold: f32,
    nms_iou: f32,
    input: Vec<f32>,
    /// Anchor grid: (x, y, stride) per output row.
    grid: Vec<(f32, f32, f32)>,
}

pub(crate) fn load_plan(path: &Path, facts: &[(usize, Vec<usize>)]) -> Result<Plan, ModelError> {
    let err = |e: TractError| ModelError::Load {
        path: path.to_path_buf(),
        message: format!("{e:#}"),
    };
    let mut model = tract_onnx::onnx().model_for_path(path).map_err(err)?;
    for (i, shape) in facts {
        model = model
            .with_input_fact(*i, f32::fact(shape).into())
            .map_err(err)?;
    }
    model
        .into_optimized()
        .map_err(err)?
        .into_runnable()
        .map_err(err)
}

/// Which file of a detector runs: the pinned float model, its int8 variant (made and verified
/// by `tools/quantize.py`), or whichever of the two is faster on this box among those that
/// passed verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    F32,
    Int8,
    Auto,
}

/// The int8 variant beside the float file (`x.onnx` → `x.int8.onnx`) if its verification
/// record (`x.int8.json`, written by tools/quantize.py) says it passed and names this very
/// file by sha256; otherwise why not.
pub fn verified_int8(dir: &Path, file: &str) -> Result<std::path::PathBuf, String> {
    let path = dir.join(file.replace(".onnx", ".int8.onnx"));
    let record = dir.join(file.replace(".onnx", ".int8.json"));
    if !path.is_file() {
        return Err(format!(
            "no int8 variant {} (make one with tools/quantize.py)",
            path.display()
        ));
    }
    let text = std::fs::read_to_string(&record)
        .map_err(|e| format!("{}: {e} (tools/quantize.py writes it)", record.display()))?;
    let v: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| format!("{}: not a verification record: {e}", record.display()))?;
    let sha =
        crate::manifest::sha256_file(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    if v["sha256"].as_str() != Some(sha.as_str()) {
        return Err(format!(
            "{} is not the file its record verified (sha256 differs): re-run tools/quantize.py",
            path.display()
        ));
    }
    if v["passes"].as_bool() != Some(true) {
        return Err(format!(
            "{} failed its accuracy check against the float model (recall {}, precision {} vs float; 0.9 needed)",
            path.display(),
            v["recall_vs_float"],
            v["precision_vs_float"]
        ));
    }
    Ok(path)
}

impl Detector {
    /// Load the named detector from `dir`, checking its pinned sha256 first.
    pub fn load(
        name: &str,
        dir: &Path,
        threshold: f32,
        nms_iou: f32,
    ) -> Result<Detector, ModelError> {
        Self::load_variant(name, dir, threshold, nms_iou, Variant::F32).map(|(d, _)| d)
    }

    /// Load a variant of the named detector; returns it with a sentence on what was chosen
    /// and why (for the log).
    pub fn load_variant(
        name: &str,
        dir: &Path,
        threshold: f32,
        nms_iou: f32,
        variant: Variant,
    ) -> Result<(Detector, String), ModelError> {
        let e = entry(name)?;
        let path = verified_path(dir, &e)?;
        let (size, classes) = match name {
            "person-lw" => (192, 1),
            _ => (416, 80),
        };
        let (plan, why) = variant_plan(&e, &path, dir, size, variant)?;
        let mut grid = Vec::new();
        for stride in [8usize, 16, 32] {
            let n = size / stride;
            for y in 0..n {
                for x in 0..n {
                    grid.push((x as f32, y as f32, stride as f32));
                }
            }
        }
        Ok((
            Detector {
                name: name.to_string(),
                plan,
                size,
                classes,
                threshold,
                nms_iou,
                input: vec![0.0; 3 * size * size],
                grid,
            },
            why,
        ))
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// People in an RGB24 frame, boxes normalized to the frame (0..1).
    pub fn detect(
        &mut self,
        rgb: &[u8],
        width: usize,
        height: usize,
    ) -> Result<Vec<Detection>, ModelError> {
        let run_err = |e: TractError| ModelError::Run {
            model: self.name.clone(),
            message: format!("{e:#}"),
        };
        if rgb.len() != width * height * 3 || width == 0 || height == 0 {
            return Err(ModelError::Run {
                model: self.name.clone(),
                message: format!("frame of {} bytes is not {width}x{height} RGB", rgb.len()),
            });
        }
        let lb = letterbox_bgr(rgb, width, height, self.size, 114.0, &mut self.input);
        let tensor =
            Tensor::from_shape(&[1, 3, self.size, self.size], &self.input).map_err(run_err)?;
        let out = self.plan.run(tvec!(tensor.into())).map_err(run_err)?;
        let view = out[0].to_plain_array_view::<f32>().map_err(run_err)?;
        let stride = 5 + self.classes;
        let data = view.as_slice().ok_or_else(|| ModelError::Run {
            model: self.name.clone(),
            message: "non-contiguous output".into(),
        })?;
        if data.len() != self.grid.len() * stride {
            return Err(ModelError::Run {
                model: self.name.clone(),
                message: format!("unexpected output size {}", data.len()),
            });
        }
        let mut dets = Vec::new();
        for (row, &(gx, gy, s)) in data.chunks_exact(stride).zip(&self.grid) {
            let score = row[4] * row[5];
            if score < self.threshold {
                continue;
            }
            if let Some(bbox) = grid_box(&lb, (gx, gy), s, &row[..4], width, height) {
                dets.push(Detection { bbox, score });
            }
        }
        Ok(nms(dets, self.nms_iou))
    }
}

/// Load the float file or its verified int8 variant of a model taking one 1x3xSxS image
/// (see [`Variant`]); returns the plan and why it was chosen.
pub(crate) fn variant_plan(
    e: &crate::manifest::ModelEntry,
    path: &Path,
    dir: &Path,
    size: usize,
    variant: Variant,
) -> Result<(Plan, String), ModelError> {
    let fact = [(0, vec![1, 3, size, size])];
    Ok(match (variant, verified_int8(dir, &e.file)) {
        (Variant::F32, _) => (load_plan(path, &fact)?, "float (configured)".to_string()),
        (Variant::Int8, Ok(p)) => (load_plan(&p, &fact)?, "int8 (configured, verified)".into()),
        (Variant::Int8, Err(why)) => {
            return Err(ModelError::Load {
                path: dir.join(e.file.replace(".onnx", ".int8.onnx")),
                message: format!("variant = \"int8\" but {why}; fix: use \"auto\" or \"f32\""),
            })
        }
        (Variant::Auto, Err(why)) => (load_plan(path, &fact)?, format!("float ({why})")),
        (Variant::Auto, Ok(p)) => {
            let (f, i) = (load_plan(path, &fact)?, load_plan(&p, &fact)?);
            let (tf, ti) = (time_plan(&f, size)?, time_plan(&i, size)?);
            let msg = format!("{ti:.1} ms int8 vs {tf:.1} ms float on this box");
            if ti < tf {
                (i, format!("int8, verified and faster: {msg}"))
            } else {
                (f, format!("float, faster than the verified int8: {msg}"))
            }
        }
    })
}

/// Best of 3 runs on a mid-gray input (after a warm-up), ms.
fn time_plan(plan: &Plan, size: usize) -> Result<f64, ModelError> {
    let err = |e: TractError| ModelError::Run {
        model: "detector".into(),
        message: format!("{e:#}"),
    };
    let input = || Tensor::from_shape(&[1, 3, size, size], &vec![114f32; 3 * size * size]);
    plan.run(tvec!(input().map_err(err)?.into())).map_err(err)?;
    let mut best = f64::MAX;
    for _ in 0..3 {
        let t = input().map_err(err)?;
        let start = std::time::Instant::now();
        plan.run(tvec!(t.into())).map_err(err)?;
        best = best.min(start.elapsed().as_secs_f64() * 1000.0);
    }
    Ok(best)
}

/// Greedy non-maximum suppression, highest score first.
pub fn nms(mut dets: Vec<Detection>, iou: f32) -> Vec<Detection> {
    dets.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut keep: Vec<Detection> = Vec::with_capacity(dets.len());
    for d in dets {
        if keep.iter().all(|k| k.bbox.iou(&d.bbox) <= iou) {
            keep.push(d);
        }
    }
    keep
}

#[cfg(test)]
mod tests {
    use super::*;
    use vitrine_signals::geom::BBox;

    #[test]
    fn an_int8_variant_runs_only_when_its_record_verifies_this_very_file() {
        let dir = std::env::temp_dir().join(format!("vitrine-int8-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let err = verified_int8(&dir, "m.onnx").unwrap_err();
        assert!(err.contains("tools/quantize.py"), "{err}");
        std::fs::write(dir.join("m.int8.onnx"), b"int8 weights").unwrap();
        let sha = crate::manifest::sha256_file(&dir.join("m.int8.onnx")).unwrap();
        let record = |sha: &str, passes: bool| {
            std::fs::write(
                dir.join("m.int8.json"),
                format!(r#"{{"sha256": "{sha}", "passes": {passes}, "recall_vs_float": 0.83, "precision_vs_float": 0.97}}"#),
            )
            .unwrap()
        };
        record(&sha, false);
        let err = verified_int8(&dir, "m.onnx").unwrap_err();
        assert!(
            err.contains("failed its accuracy check") && err.contains("0.83"),
            "{err}"
        );
        record("0000", true);
        assert!(verified_int8(&dir, "m.onnx")
            .unwrap_err()
            .contains("sha256 differs"));
        record(&sha, true);
        assert_eq!(
            verified_int8(&dir, "m.onnx").unwrap(),
            dir.join("m.int8.onnx")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn nms_keeps_the_best_of_overlapping_boxes() {
        let d = |x: f32, s: f32| Detection {
            bbox: BBox::new(x, 0.1, x + 0.2, 0.5),
            score: s,
        };
        let kept = nms(vec![d(0.1, 0.6), d(0.11, 0.9), d(0.6, 0.5)], 0.45);
        assert_eq!(kept.len(), 2);
        assert_eq!(kept[0].score, 0.9);
        assert_eq!(kept[1].score, 0.5);
    }
}
