//! Latency of a model file on given inputs, for `vitrine-lab bench models` (any ONNX file: the
//! pinned float models and the int8 variants `tools/quantize.py` makes).

use std::path::Path;
use std::time::Instant;

use tract_onnx::prelude::*;

use crate::precision::{load_plan, load_plan_in, Arith};
use crate::ModelError;

/// Load `path` with these input shapes in `arith` and return the median latency (ms) of
/// `runs` runs on `inputs` (after one warm-up run).
pub fn latency_ms(
    path: &Path,
    inputs: &[(Vec<usize>, Vec<f32>)],
    runs: usize,
    set_facts: bool,
    arith: Arith,
) -> Result<f64, ModelError> {
    let facts: Vec<(usize, Vec<usize>)> = if set_facts {
        inputs.iter().map(|(s, _)| s.clone()).enumerate().collect()
    } else {
        Vec::new()
    };
    let plan = load_plan_in(path, &facts, arith)?;
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

/// The outputs (flattened f32) of one run of `path` on `inputs` in `arith`: for comparing
/// tract with onnxruntime on the same file (`tools/quantize.py --format qoperator` does).
pub fn outputs(
    path: &Path,
    inputs: &[(Vec<usize>, Vec<f32>)],
    arith: Arith,
) -> Result<Vec<Vec<f32>>, ModelError> {
    let facts: Vec<(usize, Vec<usize>)> =
        inputs.iter().map(|(s, _)| s.clone()).enumerate().collect();
    let plan = load_plan_in(path, &facts, arith)?;
    let err = |e: TractError| ModelError::Run {
        model: path.display().to_string(),
        message: format!("{e:#}"),
    };
    let tensors = inputs
        .iter()
        .map(|(s, d)| Ok(Tensor::from_shape(s, d).map_err(err)?.into()))
        .collect::<Result<TVec<TValue>, ModelError>>()?;
    plan.run(tensors)
        .map_err(err)?
        .iter()
        .map(|t| {
            let v = t.to_plain_array_view::<f32>().map_err(err)?;
            Ok(v.iter().copied().collect())
        })
        .collect()
}

/// Multiply-accumulates of one run of `path` at these input shapes (tract's cost model).
pub fn fmas(path: &Path, facts: &[(usize, Vec<usize>)]) -> Result<u64, ModelError> {
    load_plan(path, facts)?
        .fmas()
        .map_err(|e| ModelError::Load {
            path: path.to_path_buf(),
            message: format!("{e:#}"),
        })
}

/// A class of ARM core a store box carries, with what its SIMD units do per cycle (per core,
/// both pipes, from the cores' optimization guides).
#[derive(Debug, Clone, Copy)]
pub struct CoreClass {
    pub name: &'static str,
    pub boxes: &'static str,
    pub ghz: f64,
    /// f32 multiply-accumulates per cycle (FMLA .4S on two 128-bit pipes).
    pub f32: f64,
    /// f16 (FMLA .8H), where the core has half-precision arithmetic.
    pub f16: Option<f64>,
    /// int8 (SDOT on cores with dot products; SMLAL widening otherwise).
    pub int8: f64,
}

pub const CORE_CLASSES: [CoreClass; 3] = [
    CoreClass {
        name: "Cortex-A72 1.8 GHz",
        boxes: "Raspberry Pi 4 / 400 / CM4",
        ghz: 1.8,
        f32: 8.0,
        f16: None,
        int8: 16.0,
    },
    CoreClass {
        name: "Cortex-A76 2.4 GHz",
        boxes: "Raspberry Pi 5 / CM5",
        ghz: 2.4,
        f32: 8.0,
        f16: Some(16.0),
        int8: 32.0,
    },
    CoreClass {
        name: "Cortex-A76 2.4 GHz (x4 of 8)",
        boxes: "RK3588 (Orange Pi 5, Rock 5B)",
        ghz: 2.4,
        f32: 8.0,
        f16: Some(16.0),
        int8: 32.0,
    },
];

/// The share of a core's peak multiply-accumulate rate a small convolutional detector reaches
/// in tract (im2col, packing, depthwise layers and activations in between): an assumption,
/// replaced by a measurement once `vitrine-lab bench models` runs on the box.
pub const ASSUMED_EFFICIENCY: f64 = 0.3;

/// Estimated milliseconds of one run of `fmas` multiply-accumulates on one core doing
/// `per_cycle` of them at `ghz`, at [`ASSUMED_EFFICIENCY`].
pub fn estimate_ms(fmas: u64, per_cycle: f64, ghz: f64) -> f64 {
    fmas as f64 / (per_cycle * ghz * 1e9 * ASSUMED_EFFICIENCY) * 1e3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_precision_and_dot_products_divide_the_estimate() {
        let a76 = CORE_CLASSES[1];
        let f32_ms = estimate_ms(400_000_000, a76.f32, a76.ghz);
        let f16_ms = estimate_ms(400_000_000, a76.f16.unwrap_or(a76.f32), a76.ghz);
        assert!((f32_ms - 69.4).abs() < 0.1, "{f32_ms}");
        assert!((f16_ms / f32_ms - 0.5).abs() < 1e-9);
        assert!(estimate_ms(1, a76.int8, a76.ghz) < estimate_ms(1, a76.f32, a76.ghz) / 3.9);
    }
}
