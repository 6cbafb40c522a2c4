//! Attention models: YuNet (faces with 5 landmarks, 320x320, BGR 0..255) finds faces in a frame,
//! FSA-Net (two stages, averaged as upstream's demo does) estimates each face's yaw and pitch
//! from a 64x64 crop. What leaves this module is a box and a head pose per face: no crop, no
//! landmark, no embedding.

use std::path::Path;

use tract_onnx::prelude::*;
use vitrine_signals::attention::{Face, HeadPose};
use vitrine_signals::geom::BBox;
use vitrine_signals::track::Detection;

use crate::detector::nms;
use crate::manifest::{entry, verified_path};
use crate::precision::{choose, load_plan_in, Arith, Cpu, Plan, Precision};
use crate::preprocess::{crop_resize_bgr, grid_box, letterbox_bgr};
use crate::ModelError;

const SIZE: usize = 320;
const POSE: usize = 64;
/// Faces below this score are ignored (YuNet's sqrt(cls·obj)).
pub const FACE_THRESHOLD: f32 = 0.6;
/// Faces smaller than this (pixels of the analysed frame) give no usable head pose.
pub const MIN_FACE_PX: f32 = 12.0;

pub struct FaceAnalyser {
    yunet: Plan,
    pose: [Plan; 2],
    input: Vec<f32>,
    crop: Vec<f32>,
}

fn run_err(model: &str) -> impl Fn(TractError) -> ModelError + '_ {
    move |e| ModelError::Run {
        model: model.to_string(),
        message: format!("{e:#}"),
    }
}

impl FaceAnalyser {
    /// Load the face detector and head-pose models named in the config (`yunet`, `fsanet`),
    /// the float files.
    pub fn load(faces: &str, head_pose: &str, dir: &Path) -> Result<FaceAnalyser, ModelError> {
        Self::load_in(faces, head_pose, dir, Precision::F32).map(|(f, _)| f)
    }

    /// Load them in the chosen precision (see [`Precision`]: the face detector may run a
    /// verified int8 file; head pose follows in f16 or stays f32); returns the analyser and why
    /// that precision.
    pub fn load_in(
        faces: &str,
        head_pose: &str,
        dir: &Path,
        precision: Precision,
    ) -> Result<(FaceAnalyser, String), ModelError> {
        if faces != "yunet" {
            return Err(ModelError::Unknown(faces.to_string()));
        }
        if head_pose != "fsanet" {
            return Err(ModelError::Unknown(head_pose.to_string()));
        }
        let e = entry("yunet")?;
        let choice = choose(
            &e,
            &verified_path(dir, &e)?,
            dir,
            SIZE,
            precision,
            &Cpu::detect(),
        )?;
        let yunet = load_plan_in(&choice.path, &[(0, vec![1, 3, SIZE, SIZE])], choice.arith)?;
        let pose_arith = match choice.arith {
            Arith::F16 => Arith::F16,
            _ => Arith::F32,
        };
        let pose = |name: &str| -> Result<Plan, ModelError> {
            let e = entry(name)?;
            let fact = [(0, vec![1, 3, POSE, POSE])];
            load_plan_in(&verified_path(dir, &e)?, &fact, pose_arith)
        };
        let why = choice.why;
        Ok((
            FaceAnalyser {
                yunet,
                pose: [pose("fsanet-1x1")?, pose("fsanet-var")?],
                input: vec![0.0; 3 * SIZE * SIZE],
                crop: vec![0.0; 3 * POSE * POSE],
            },
            why,
        ))
    }

    /// Faces in an RGB24 frame with their head poses; boxes normalized to the frame.
    pub fn analyse(&mut self, rgb: &[u8], w: usize, h: usize) -> Result<Vec<Face>, ModelError> {
        let boxes = self.detect(rgb, w, h)?;
        let mut faces = Vec::with_capacity(boxes.len());
        for d in boxes {
            let (bw, bh) = (d.bbox.w() * w as f32, d.bbox.h() * h as f32);
            if bw.min(bh) < MIN_FACE_PX {
                continue;
            }
            faces.push(Face {
                bbox: d.bbox,
                pose: self.head_pose(rgb, w, h, &d.bbox)?,
            });
        }
        Ok(faces)
    }

    /// YuNet: face boxes (normalized), best first after NMS.
    pub fn detect(&mut self, rgb: &[u8], w: usize, h: usize) -> Result<Vec<Detection>, ModelError> {
        if rgb.len() != w * h * 3 || w == 0 || h == 0 {
            return Err(ModelError::Run {
                model: "yunet".into(),
                message: format!("frame of {} bytes is not {w}x{h} RGB", rgb.len()),
            });
        }
        let err = run_err("yunet");
        let lb = letterbox_bgr(rgb, w, h, (SIZE, SIZE), 0.0, &mut self.input);
        let t = Tensor::from_shape(&[1, 3, SIZE, SIZE], &self.input).map_err(&err)?;
        let out = self.yunet.run(tvec!(t.into())).map_err(&err)?;
        if out.len() < 9 {
            return Err(ModelError::Run {
                model: "yunet".into(),
                message: format!("{} outputs, expected 12", out.len()),
            });
        }
        let mut dets = Vec::new();
        for (k, stride) in [8usize, 16, 32].into_iter().enumerate() {
            let view = |i: usize| -> Result<Vec<f32>, ModelError> {
                Ok(out[i]
                    .to_plain_array_view::<f32>()
                    .map_err(&err)?
                    .iter()
                    .copied()
                    .collect())
            };
            let (cls, obj, bbox) = (view(k)?, view(3 + k)?, view(6 + k)?);
            let cols = SIZE / stride;
            if cls.len() != cols * cols || bbox.len() != 4 * cols * cols || obj.len() != cls.len() {
                return Err(ModelError::Run {
                    model: "yunet".into(),
                    message: format!("unexpected output sizes at stride {stride}"),
                });
            }
            for i in 0..cls.len() {
                let score = (cls[i].clamp(0.0, 1.0) * obj[i].clamp(0.0, 1.0)).sqrt();
                if score < FACE_THRESHOLD {
                    continue;
                }
                let (c, r) = ((i % cols) as f32, (i / cols) as f32);
                let s = stride as f32;
                if let Some(bbox) = grid_box(&lb, (c, r), s, &bbox[i * 4..i * 4 + 4], w, h) {
                    dets.push(Detection { bbox, score });
                }
            }
        }
        Ok(nms(dets, 0.3))
    }

    /// FSA-Net on the face box enlarged by 60 % on each side (as in upstream's demo).
    pub fn head_pose(
        &mut self,
        rgb: &[u8],
        w: usize,
        h: usize,
        face: &BBox,
    ) -> Result<HeadPose, ModelError> {
        let (fw, fh) = (face.w() * w as f32, face.h() * h as f32);
        let (x0, y0) = (face.x1 * w as f32, face.y1 * h as f32);
        let ad = 0.6;
        let crop = (
            x0 - ad * fw,
            y0 - ad * fh,
            x0 + fw + ad * fw,
            y0 + fh + ad * fh,
        );
        crop_resize_bgr(rgb, w, h, crop, POSE, 127.5, 128.0, &mut self.crop);
        let err = run_err("fsanet");
        let mut sum = [0.0f32; 2];
        for plan in &self.pose {
            let t = Tensor::from_shape(&[1, 3, POSE, POSE], &self.crop).map_err(&err)?;
            let out = plan.run(tvec!(t.into())).map_err(&err)?;
            let v = out[0].to_plain_array_view::<f32>().map_err(&err)?;
            let v: Vec<f32> = v.iter().copied().collect();
            if v.len() < 2 {
                return Err(ModelError::Run {
                    model: "fsanet".into(),
                    message: format!("output of {} values, expected 3", v.len()),
                });
            }
            sum[0] += v[0];
            sum[1] += v[1];
        }
        Ok(HeadPose {
            yaw: sum[0] / 2.0,
            pitch: sum[1] / 2.0,
        })
    }
}
