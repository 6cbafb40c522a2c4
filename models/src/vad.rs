//! Voice activity with Silero VAD (the OpenVINO-compatible 16 kHz export, which tract runs):
//! 512 new samples per call plus the previous 64 as context, recurrent state carried over.

use std::path::Path;

use tract_onnx::prelude::*;

use crate::detector::{load_plan, Plan};
use crate::manifest::{entry, verified_path};
use crate::ModelError;

pub const SAMPLE_RATE: u32 = 16_000;
pub const CHUNK: usize = 512;
const CONTEXT: usize = 64;

pub struct Vad {
    plan: Plan,
    state: Tensor,
    input: Vec<f32>,
}

impl Vad {
    pub fn load(name: &str, dir: &Path) -> Result<Vad, ModelError> {
        let e = entry(name)?;
        let path = verified_path(dir, &e)?;
        // The model declares its input shapes ([1,576], [2,1,128]); restating them as facts
        // makes tract 0.23 fail at graph compaction ("duplicate name ... Const").
        let plan = load_plan(&path, &[])?;
        Ok(Vad {
            plan,
            state: Tensor::zero::<f32>(&[2, 1, 128]).map_err(|e| ModelError::Load {
                path,
                message: e.to_string(),
            })?,
            input: vec![0.0; CONTEXT + CHUNK],
        })
    }

    /// Speech probability of the next 512 samples (16 kHz mono, [-1, 1]).
    pub fn process(&mut self, chunk: &[f32]) -> Result<f32, ModelError> {
        let run_err = |e: TractError| ModelError::Run {
            model: "silero-vad".into(),
            message: format!("{e:#}"),
        };
        if chunk.len() != CHUNK {
            return Err(ModelError::Run {
                model: "silero-vad".into(),
                message: format!("chunk of {} samples, expected {CHUNK}", chunk.len()),
            });
        }
        self.input[CONTEXT..].copy_from_slice(chunk);
        let x = Tensor::from_shape(&[1, CONTEXT + CHUNK], &self.input).map_err(run_err)?;
        let out = self
            .plan
            .run(tvec!(x.into(), self.state.clone().into()))
            .map_err(run_err)?;
        let prob = out[0]
            .to_plain_array_view::<f32>()
            .map_err(run_err)?
            .iter()
            .next()
            .copied()
            .unwrap_or(0.0);
        self.state = out[1].clone().into_tensor();
        self.input.copy_within(CHUNK.., 0);
        Ok(prob)
    }

    pub fn reset(&mut self) {
        if let Ok(z) = Tensor::zero::<f32>(&[2, 1, 128]) {
            self.state = z;
        }
        self.input.fill(0.0);
    }
}
