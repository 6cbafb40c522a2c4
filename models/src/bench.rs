//! Latency of a model file on given inputs, for `vitrine bench models` (any ONNX file: the
//! pinned float models and the int8 variants `tools/quantize.py` makes).

use std::path::Path;
use std::time::Instant;

use tract_onnx::prelude::*;

use crate::detector::load_plan;
use crate::ModelError;

/// Load `path` with these input shapes and return the median latency (ms) of `runs` runs on
/// `inputs` (after one warm-up run).
pub fn latency_ms(
    path: &Path,
    inputs: &[(Vec<usize>, Vec<f32>)],
    runs: usize,
    set_facts: bool,
) -> Result<f64, ModelError> {
    let facts: Vec<(usize, Vec<usize>)> = if set_facts {
        inputs.iter().map(|(s, _)| s.clone()).enumerate().collect()
    } else {
        Vec::new()
    };
    let plan = load_plan(path, &facts)?;
    let err = |e: TractError| ModelError::Run {
        model: path.display().to_string(),
        message: format!("{e:#}"),
    };
    let tensors = || -> Result<TVec<TValue>, ModelError> {
        inputs
            .iter()
            .map(|(s, d)| Ok(Tensor::from_shape(s, d).map_err(err)?.into()))
            .collect()
    };
    plan.run(tensors()?).map_err(err)?;
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs.max(1) {
        let t = tensors()?;
        let start = Instant::now();
        plan.run(t).map_err(err)?;
        times.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}
