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

/// A people detector loaded once per box and shared by every camera: the verified model file
/// and one optimized plan per input shape (cameras of the same aspect ratio share it, so four
/// cameras cost one copy of the weights, not four).
pub struct PeopleDetector {
    name: String,
    path: std::path::PathBuf,
    /// Longer side of the model input.
    size: usize,
    classes: usize,
    threshold: f32,
    nms_iou: f32,
    plans: std::sync::Mutex<std::collections::HashMap<(usize, usize), Plan>>,
}

/// The model input for a `w`×`h` frame. `size` is the longer side for a 4:3 frame; a frame of
/// another shape gets about the same number of input pixels (so the same detector time): the
/// shorter side follows the frame, rounded up to the network's stride (32), and a wide (or
/// tall) frame gets a longer side, up to twice `size`, instead of squeezing its people into a
/// thin strip. A square frame keeps `size` on both sides. Returns (input width, input height).
pub fn input_shape(size: usize, w: usize, h: usize) -> (usize, usize) {
    let (w, h) = (w.max(1) as f32, h.max(1) as f32);
    let ratio = w.min(h) / w.max(h);
    let short =
        |long: usize| (((long as f32 * ratio).ceil() as usize).div_ceil(32) * 32).clamp(32, long);
    let budget = size * (size * 3 / 4).div_ceil(32) * 32;
    let mut long = size;
    while long + 32 <= 2 * size && (long + 32) * short(long + 32) <= budget {
        long += 32;
    }
    if w >= h {
        (long, short(long))
    } else {
        (short(long), long)
    }
}

/// The size a `w`×`h` frame has inside the model input (its letterboxed content): decoding a
/// recording straight at this size spares the copy and resampling of pixels the detector would
/// throw away. Even numbers (what video scalers like).
pub fn content_size(size: usize, w: usize, h: usize) -> (usize, usize) {
    let (iw, ih) = input_shape(size, w, h);
    let scale = (iw as f32 / w.max(1) as f32).min(ih as f32 / h.max(1) as f32);
    let even = |v: f32| ((v.round() as usize) & !1).max(2);
    (
        even(w as f32 * scale).min(iw),
        even(h as f32 * scale).min(ih),
    )
}

impl PeopleDetector {
    /// Load the named detector from `dir` (sha256-checked) with the model input's longer side
    /// `size` (a multiple of 32; the model's own size when `None`). Detections below
    /// `threshold` are dropped, overlaps above `nms_iou` suppressed. Returns the detector and
    /// a sentence on the variant chosen (for the log).
    pub fn load(
        name: &str,
        dir: &Path,
        size: Option<usize>,
        threshold: f32,
        nms_iou: f32,
        variant: Variant,
    ) -> Result<(std::sync::Arc<PeopleDetector>, String), ModelError> {
        let e = entry(name)?;
        let float = verified_path(dir, &e)?;
        let (native, classes) = match name {
            "person-lw" => (192, 1),
            _ => (416, 80),
        };
        let size = size.unwrap_or(native);
        if !size.is_multiple_of(32) || size == 0 {
            return Err(ModelError::Load {
                path: float,
                message: format!(
                    "input size {size} is not a multiple of 32; fix: use e.g. 320 or 416"
                ),
            });
        }
        let (path, why) = variant_file(&e, &float, dir, size, variant)?;
        Ok((
            std::sync::Arc::new(PeopleDetector {
                name: name.to_string(),
                path,
                size,
                classes,
                threshold,
                nms_iou,
                plans: Default::default(),
            }),
            why,
        ))
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The longer side of the model input.
    pub fn size(&self) -> usize {
        self.size
    }

    /// See [`content_size`].
    pub fn content_size(&self, w: usize, h: usize) -> (usize, usize) {
        content_size(self.size, w, h)
    }

    /// A camera's input size: its own (`[[cameras]] input_size`), else the detector's.
    pub fn size_for(&self, camera: Option<u32>) -> usize {
        camera.map_or(self.size, |s| s as usize)
    }

    /// The plan for an input of `w`×`h`, optimized once and shared.
    fn plan(&self, w: usize, h: usize) -> Result<Plan, ModelError> {
        let mut plans = self.plans.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(p) = plans.get(&(w, h)) {
            return Ok(p.clone());
        }
        let plan = load_plan(&self.path, &[(0, vec![1, 3, h, w])])?;
        plans.insert((w, h), plan.clone());
        Ok(plan)
    }

    /// Plans built so far (distinct input shapes).
    pub fn plans(&self) -> usize {
        self.plans.lock().map(|p| p.len()).unwrap_or(0)
    }

    /// A camera's use of the detector for frames of `w`×`h` (builds the plan now, so a model
    /// that cannot run at this size fails at start, not on the first frame).
    pub fn session(
        self: &std::sync::Arc<Self>,
        w: usize,
        h: usize,
    ) -> Result<Detector, ModelError> {
        self.session_sized(self.size, w, h)
    }

    /// As [`PeopleDetector::session`], at a camera's own input size (a multiple of 32).
    pub fn session_sized(
        self: &std::sync::Arc<Self>,
        size: usize,
        w: usize,
        h: usize,
    ) -> Result<Detector, ModelError> {
        if !size.is_multiple_of(32) || size == 0 {
            return Err(ModelError::Load {
                path: self.path.clone(),
                message: format!(
                    "input size {size} is not a multiple of 32; fix: use e.g. 320 or 416"
                ),
            });
        }
        let (iw, ih) = input_shape(size, w, h);
        let plan = self.plan(iw, ih)?;
        let mut grid = Vec::new();
        for stride in [8usize, 16, 32] {
            for y in 0..ih / stride {
                for x in 0..iw / stride {
                    grid.push((x as f32, y as f32, stride as f32));
                }
            }
        }
        Ok(Detector {
            model: self.clone(),
            plan,
            frame: (w, h),
            input_w: iw,
            input_h: ih,
            input: vec![0.0; 3 * iw * ih],
            grid,
            model_time: std::time::Duration::ZERO,
        })
    }
}

/// One camera's detector: the shared model, the plan for its frame size and its own input
/// buffer. Frames of another size (a camera that renegotiated) get a new plan.
pub struct Detector {
    model: std::sync::Arc<PeopleDetector>,
    plan: Plan,
    frame: (usize, usize),
    input_w: usize,
    input_h: usize,
    input: Vec<f32>,
    /// Anchor grid: (x, y, stride) per output row.
    grid: Vec<(f32, f32, f32)>,
    /// Time the last `detect` spent in the model itself (the rest is pre/post-processing).
    model_time: std::time::Duration,
}

pub(crate) fn load_plan(path: &Path, facts: &[(usize, Vec<usize>)]) -> Result<Plan, ModelError> {
    let err = |e: TractError| ModelError::Load {
        path: path.to_path_buf(),
        message: format!("{e:#}"),
    };
    let mut model = tract_onnx::onnx().model_for_path(path).map_err(err)?;
    // Shapes recorded in the file hold for the exported input size only: forget them, so the
    // graph is analysed again from the input given here (a 416x320 input, say).
    for id in 0..model.nodes().len() {
        if model
            .input_outlets()
            .map_err(err)?
            .iter()
            .any(|o| o.node == id)
        {
            continue;
        }
        for slot in 0..model.nodes()[id].outputs.len() {
            model
                .set_outlet_fact(OutletId::new(id, slot), InferenceFact::default())
                .map_err(err)?;
        }
    }
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
    pub fn name(&self) -> &str {
        &self.model.name
    }

    /// Time the last [`Detector::detect`] spent running the model (without letterbox, decoding
    /// and suppression).
    pub fn model_time(&self) -> std::time::Duration {
        self.model_time
    }

    /// The model input (width, height) this camera's frames are letterboxed into.
    pub fn input_shape(&self) -> (usize, usize) {
        (self.input_w, self.input_h)
    }

    /// People in an RGB24 frame, boxes normalized to the frame (0..1).
    pub fn detect(
        &mut self,
        rgb: &[u8],
        width: usize,
        height: usize,
    ) -> Result<Vec<Detection>, ModelError> {
        let name = self.model.name.clone();
        let run_err = |e: TractError| ModelError::Run {
            model: name.clone(),
            message: format!("{e:#}"),
        };
        if rgb.len() != width * height * 3 || width == 0 || height == 0 {
            return Err(ModelError::Run {
                model: name,
                message: format!("frame of {} bytes is not {width}x{height} RGB", rgb.len()),
            });
        }
        if self.frame != (width, height) {
            *self = self.model.session(width, height)?;
        }
        let (iw, ih) = (self.input_w, self.input_h);
        let lb = letterbox_bgr(rgb, width, height, (iw, ih), 114.0, &mut self.input);
        let tensor = Tensor::from_shape(&[1, 3, ih, iw], &self.input).map_err(run_err)?;
        let started = std::time::Instant::now();
        let out = self.plan.run(tvec!(tensor.into())).map_err(run_err)?;
        self.model_time = started.elapsed();
        let view = out[0].to_plain_array_view::<f32>().map_err(run_err)?;
        let stride = 5 + self.model.classes;
        let data = view.as_slice().ok_or_else(|| ModelError::Run {
            model: name.clone(),
            message: "non-contiguous output".into(),
        })?;
        if data.len() != self.grid.len() * stride {
            return Err(ModelError::Run {
                model: name.clone(),
                message: format!("unexpected output size {}", data.len()),
            });
        }
        let threshold = self.model.threshold;
        let mut dets = Vec::new();
        for (row, &(gx, gy, s)) in data.chunks_exact(stride).zip(&self.grid) {
            let score = row[4] * row[5];
            if score < threshold {
                continue;
            }
            if let Some(bbox) = grid_box(&lb, (gx, gy), s, &row[..4], width, height) {
                dets.push(Detection { bbox, score });
            }
        }
        Ok(nms(dets, self.model.nms_iou))
    }
}

/// The file to run for `variant` (float, or its verified int8 sibling) and why.
fn variant_file(
    e: &crate::manifest::ModelEntry,
    float: &Path,
    dir: &Path,
    size: usize,
    variant: Variant,
) -> Result<(std::path::PathBuf, String), ModelError> {
    Ok(match (variant, verified_int8(dir, &e.file)) {
        (Variant::F32, _) => (float.to_path_buf(), "float (configured)".to_string()),
        (Variant::Int8, Ok(p)) => (p, "int8 (configured, verified)".into()),
        (Variant::Int8, Err(why)) => {
            return Err(ModelError::Load {
                path: dir.join(e.file.replace(".onnx", ".int8.onnx")),
                message: format!("variant = \"int8\" but {why}; fix: use \"auto\" or \"f32\""),
            })
        }
        (Variant::Auto, Err(why)) => (float.to_path_buf(), format!("float ({why})")),
        (Variant::Auto, Ok(p)) => {
            let fact = [(0, vec![1, 3, size, size])];
            let (f, i) = (load_plan(float, &fact)?, load_plan(&p, &fact)?);
            let (tf, ti) = (time_plan(&f, size)?, time_plan(&i, size)?);
            let msg = format!("{ti:.1} ms int8 vs {tf:.1} ms float on this box");
            if ti < tf {
                (p, format!("int8, verified and faster: {msg}"))
            } else {
                (
                    float.to_path_buf(),
                    format!("float, faster than the verified int8: {msg}"),
                )
            }
        }
    })
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
    fn every_frame_shape_gets_about_the_pixels_of_a_4_3_one() {
        // 4:3 and square: the longer side is the configured size.
        assert_eq!(input_shape(416, 768, 576), (416, 320));
        assert_eq!(input_shape(416, 640, 480), (416, 320));
        assert_eq!(input_shape(416, 500, 500), (416, 416));
        // 16:9: a little longer; a 3.3:1 street camera: much longer, people not squeezed.
        assert_eq!(input_shape(416, 1920, 1080), (448, 256));
        assert_eq!(input_shape(416, 1224, 370), (608, 192));
        // Portrait frames the other way round; never beyond twice the size.
        assert_eq!(input_shape(416, 576, 768), (320, 416));
        assert_eq!(input_shape(320, 4000, 100), (640, 32));
        for (w, h) in [(768, 576), (1920, 1080), (1224, 370), (1000, 1000)] {
            let (iw, ih) = input_shape(416, w, h);
            assert!(iw % 32 == 0 && ih % 32 == 0);
            assert!(iw * ih <= 416 * 416, "{w}x{h}: {iw}x{ih}");
        }
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
