//! Person detection with YOLOX-family ONNX models (yolox-nano: COCO-80, class 0 = person;
//! person-lw: one class). Input: letterboxed BGR 0..255, pad 114. Output: N×(4+1+C) with
//! grid-relative centres and log sizes for strides 8/16/32.

use std::path::Path;

use tract_onnx::prelude::*;
use vitrine_signals::geom::BBox;
use vitrine_signals::track::Detection;

use crate::manifest::{entry, verified_path};
use crate::preprocess::letterbox_bgr;
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

impl Detector {
    /// Load the named detector from `dir`, checking its pinned sha256 first.
    pub fn load(
        name: &str,
        dir: &Path,
        threshold: f32,
        nms_iou: f32,
    ) -> Result<Detector, ModelError> {
        let e = entry(name)?;
        let path = verified_path(dir, &e)?;
        let (size, classes) = match name {
            "person-lw" => (192, 1),
            _ => (416, 80),
        };
        let plan = load_plan(&path, &[(0, vec![1, 3, size, size])])?;
        let mut grid = Vec::new();
        for stride in [8usize, 16, 32] {
            let n = size / stride;
            for y in 0..n {
                for x in 0..n {
                    grid.push((x as f32, y as f32, stride as f32));
                }
            }
        }
        Ok(Detector {
            name: name.to_string(),
            plan,
            size,
            classes,
            threshold,
            nms_iou,
            input: vec![0.0; 3 * size * size],
            grid,
        })
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
            let cx = (row[0] + gx) * s / lb.scale;
            let cy = (row[1] + gy) * s / lb.scale;
            let w = row[2].exp() * s / lb.scale;
            let h = row[3].exp() * s / lb.scale;
            let (fw, fh) = (width as f32, height as f32);
            let b = BBox::new(
                ((cx - w / 2.0) / fw).clamp(0.0, 1.0),
                ((cy - h / 2.0) / fh).clamp(0.0, 1.0),
                ((cx + w / 2.0) / fw).clamp(0.0, 1.0),
                ((cy + h / 2.0) / fh).clamp(0.0, 1.0),
            );
            if b.area() > 0.0 {
                dets.push(Detection { bbox: b, score });
            }
        }
        Ok(nms(dets, self.nms_iou))
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
