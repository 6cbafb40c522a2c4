//! Person detection with YOLOX-family ONNX models (yolox-nano: COCO-80, class 0 = person;
//! person-lw: one class). Input: letterboxed BGR 0..255, pad 114. Output: N×(4+1+C) with
//! grid-relative centres and log sizes for strides 8/16/32.

use std::path::Path;

use tract_onnx::prelude::*;
use vitrine_signals::track::Detection;

use crate::manifest::{entry, verified_path};
use crate::preprocess::{grid_box, letterbox_bgr};
use crate::ModelError;

use crate::precision::{choose, load_plan_in, Arith, Cpu, Precision};
pub(crate) use crate::precision::{load_plan, Plan};

/// A people detector loaded once per box and shared by every camera: the verified model file
/// and one optimized plan per input shape (cameras of the same aspect ratio share it, so four
/// cameras cost one copy of the weights, not four).
pub struct PeopleDetector {
    name: String,
    path: std::path::PathBuf,
    /// The arithmetic `path` runs in (see [`Precision`]).
    arith: Arith,
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
    /// a sentence on the precision chosen and why (for the log).
    pub fn load(
        name: &str,
        dir: &Path,
        size: Option<usize>,
        threshold: f32,
        nms_iou: f32,
        precision: Precision,
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
        let cpu = Cpu::detect();
        if let Some(w) = cpu.warning() {
            tracing::warn!(cpu = %cpu.arch, "{w}");
        }
        let choice = choose(&e, &float, dir, size, precision, &cpu)?;
        Ok((
            std::sync::Arc::new(PeopleDetector {
                name: name.to_string(),
                path: choice.path,
                arith: choice.arith,
                size,
                classes,
                threshold,
                nms_iou,
                plans: Default::default(),
            }),
            choice.why,
        ))
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The arithmetic it runs in (f32, f16 or int8).
    pub fn arith(&self) -> Arith {
        self.arith
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
        let plan = load_plan_in(&self.path, &[(0, vec![1, 3, h, w])], self.arith)?;
        let kernels: Vec<String> = plan
            .kernels()
            .iter()
            .map(|(k, n)| format!("{k} x{n}"))
            .collect();
        tracing::info!(
            detector = %self.name,
            input = %format!("{w}x{h}"),
            precision = self.arith.name(),
            "detector plan built; matrix kernels: {}",
            kernels.join(", ")
        );
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
