//! Facial expressions (opt-in, per display): mini-Xception trained on FER2013 (Arriaga et al.
//! 2017; 7 classes from a 64x64 grey face, input `(px/255 - 0.5)·2`, softmax inside).
//!
//! It runs only on the faces the attention path already found looking at a display that has
//! `expressions = true`, only while they look. What leaves this module is one class per face:
//! no crop, no score. The crop buffer is overwritten with zeros after every reading, so nothing
//! of a face outlives the frame.

use std::path::Path;

use tract_onnx::prelude::*;
use vitrine_signals::attention::Expression;
use vitrine_signals::geom::BBox;

use crate::manifest::{entry, verified_path};
use crate::precision::{load_plan_in, Arith, Plan};
use crate::preprocess::crop_resize_bgr;
use crate::ModelError;

/// The model's name in the pinned manifest.
pub const MODEL: &str = "fer-mini-xception";
const SIZE: usize = 64;
/// The face box (YuNet's, tight around the face) is made square and grown by this share of
/// its side on every side: FER2013's faces include the chin and the forehead.
pub const MARGIN: f32 = 0.1;

pub struct ExpressionReader {
    plan: Plan,
    bgr: Vec<f32>,
    grey: Vec<f32>,
}

impl ExpressionReader {
    /// Load the pinned expression model from `dir` (sha256 checked first).
    pub fn load(dir: &Path) -> Result<ExpressionReader, ModelError> {
        let e = entry(MODEL)?;
        let plan = load_plan_in(
            &verified_path(dir, &e)?,
            &[(0, vec![1, 1, SIZE, SIZE])],
            Arith::F32,
        )?;
        Ok(ExpressionReader {
            plan,
            bgr: vec![0.0; 3 * SIZE * SIZE],
            grey: vec![0.0; SIZE * SIZE],
        })
    }

    /// The dominant expression of the face `face` (normalized box) in an RGB24 frame.
    pub fn read(
        &mut self,
        rgb: &[u8],
        w: usize,
        h: usize,
        face: &BBox,
    ) -> Result<Expression, ModelError> {
        if rgb.len() != w * h * 3 || w == 0 || h == 0 {
            return Err(ModelError::Run {
                model: MODEL.into(),
                message: format!("frame of {} bytes is not {w}x{h} RGB", rgb.len()),
            });
        }
        let (fw, fh) = (face.w() * w as f32, face.h() * h as f32);
        let side = fw.max(fh) * (1.0 + 2.0 * MARGIN);
        let c = face.center();
        let (cx, cy) = (c.x * w as f32, c.y * h as f32);
        let crop = (
            cx - side / 2.0,
            cy - side / 2.0,
            cx + side / 2.0,
            cy + side / 2.0,
        );
        // BGR planes scaled to (px - 127.5)/127.5 = (px/255 - 0.5)·2; grey is their weighted
        // sum (OpenCV's 0.299 R + 0.587 G + 0.114 B, weights summing to 1).
        crop_resize_bgr(rgb, w, h, crop, SIZE, 127.5, 127.5, &mut self.bgr);
        let plane = SIZE * SIZE;
        for i in 0..plane {
            self.grey[i] =
                0.114 * self.bgr[i] + 0.587 * self.bgr[plane + i] + 0.299 * self.bgr[2 * plane + i];
        }
        let probs = self.probabilities_of_grey();
        self.bgr.fill(0.0);
        self.grey.fill(0.0);
        Ok(dominant(&probs?))
    }

    /// The seven probabilities for a prepared 64x64 grey input (already scaled to -1..1),
    /// in [`Expression::ALL`]'s order. For tests and the model's checks.
    pub fn probabilities(&mut self, grey: &[f32]) -> Result<[f32; 7], ModelError> {
        if grey.len() != SIZE * SIZE {
            return Err(ModelError::Run {
                model: MODEL.into(),
                message: format!("input of {} values, expected {}", grey.len(), SIZE * SIZE),
            });
        }
        self.grey.copy_from_slice(grey);
        let p = self.probabilities_of_grey();
        self.grey.fill(0.0);
        p
    }

    fn probabilities_of_grey(&mut self) -> Result<[f32; 7], ModelError> {
        let err = |e: TractError| ModelError::Run {
            model: MODEL.into(),
            message: format!("{e:#}"),
        };
        let t = Tensor::from_shape(&[1, 1, SIZE, SIZE], &self.grey).map_err(err)?;
        let out = self.plan.run(tvec!(t.into())).map_err(err)?;
        let v = out[0].to_plain_array_view::<f32>().map_err(err)?;
        let v: Vec<f32> = v.iter().copied().collect();
        let mut p = [0.0f32; 7];
        if v.len() != 7 {
            return Err(ModelError::Run {
                model: MODEL.into(),
                message: format!("output of {} values, expected 7", v.len()),
            });
        }
        p.copy_from_slice(&v);
        Ok(p)
    }
}

/// The most probable class.
pub fn dominant(p: &[f32; 7]) -> Expression {
    let mut best = 6;
    for (i, v) in p.iter().enumerate() {
        if *v > p[best] {
            best = i;
        }
    }
    Expression::ALL[best]
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    /// The model mirror (`VITRINE_MODEL_MIRROR`, else `../shared/models` beside the checkout):
    /// it holds the model's smoke inputs with onnxruntime's outputs.
    fn mirror() -> Option<std::path::PathBuf> {
        let dir = std::env::var_os(crate::manifest::MIRROR_ENV)
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/models"))
            .join("fer-mini-xception");
        dir.join("smoke/expected.json").is_file().then_some(dir)
    }

    #[test]
    fn tract_reads_the_smoke_faces_as_onnxruntime_does() {
        let Some(dir) = mirror() else {
            eprintln!("SKIPPED: the model mirror (VITRINE_MODEL_MIRROR) with fer-mini-xception/smoke is not here");
            return;
        };
        let mut r = ExpressionReader::load(&dir).expect("model");
        let expected: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("smoke/expected.json")).unwrap())
                .unwrap();
        for face in ["justin.jpg", "astronaut.png"] {
            let e = &expected[face];
            let raw =
                std::fs::read(dir.join("smoke").join(e["input_file"].as_str().unwrap())).unwrap();
            let input: Vec<f32> = raw
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            let got = r.probabilities(&input).expect("run");
            for (i, want) in e["expected_probs_onnxruntime"]
                .as_array()
                .unwrap()
                .iter()
                .enumerate()
            {
                let want = want.as_f64().unwrap() as f32;
                assert!(
                    (got[i] - want).abs() < 1e-4,
                    "{face} class {i}: {} vs {want}",
                    got[i]
                );
            }
            assert_eq!(dominant(&got).name(), e["top"].as_str().unwrap());
        }
    }

    #[test]
    fn the_dominant_class_is_the_most_probable_and_ties_stay_neutral() {
        let mut p = [0.0; 7];
        p[3] = 0.9;
        assert_eq!(dominant(&p), Expression::Happy);
        assert_eq!(dominant(&[1.0 / 7.0; 7]), Expression::Neutral);
    }
}
