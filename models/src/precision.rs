//! Which arithmetic a model runs in, chosen per CPU: the pinned float file in f32, the same
//! file transformed to f16 at load (tract's `f32_to_f16`: half the memory traffic and twice
//! the SIMD lanes on cores with half-precision arithmetic), or a verified int8 sibling file
//! (`tools/quantize.py`).
//!
//! `auto` reads the CPU's features once (`asimdhp` and `asimddp` on aarch64) and would pick f16
//! on a core with half-precision arithmetic (Cortex-A55/A76, Raspberry Pi 5, RK3588), where
//! tract has native f16 kernels, once f16 passes the accuracy suite's acceptance rule
//! ([`F16_ACCEPTED`]; it has not yet); f32 elsewhere (Cortex-A53/A72 such as the Raspberry Pi
//! 4, and x86, where tract's f16 is emulated and several times slower). A verified int8 file is
//! taken only if it measures faster than that choice on this box at start.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tract_onnx::prelude::*;

use crate::manifest::ModelEntry;
use crate::ModelError;

/// Whether f16 passed the acceptance rule on every sequence of the accuracy suite (docs/evaluator.md,
/// "Precision"): `auto` takes it on a half-precision core only then. It failed by one
/// crossing (MOT17-02's main line moved by 2, the rule allows 1), so `auto` stays f32.
pub const F16_ACCEPTED: bool = false;

/// `[models] precision`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    Auto,
    F32,
    F16,
    Int8,
}

/// The CPU features that decide `auto`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cpu {
    pub arch: &'static str,
    /// Half-precision arithmetic in SIMD (aarch64 `asimdhp`, Linux HWCAP `FPHP|ASIMDHP`).
    pub fp16: bool,
    /// Int8 dot products (aarch64 `asimddp`): tract's `sdot` kernels.
    pub dotprod: bool,
    /// NEON on 32-bit ARM (armv7): tract's `armv7neon` kernels, else its scalar VFP ones.
    pub neon: bool,
    /// On ARM tract chooses its kernels from /proc/cpuinfo (`Features`, `CPU part`): `true`
    /// where that file cannot be read (a service unit with `ProcSubset=pid`), so tract falls
    /// back to its slowest kernels (no NEON on armv7; no half precision and no core tuning on
    /// aarch64).
    pub cpuinfo_hidden: bool,
}

impl Cpu {
    /// This machine's CPU. Half precision as tract sees it (the `asimdhp` flag of
    /// /proc/cpuinfo, or a core it knows by part number): where tract would not dispatch its
    /// f16 kernels, an f16 graph runs emulated and slow, so `auto` must agree with tract.
    /// Dot products from the auxiliary vector (HWCAP `asimddp`).
    pub fn detect() -> Cpu {
        let fp16 = tract_onnx::tract_core::tract_linalg::has_fp16();
        #[cfg(target_arch = "aarch64")]
        let dotprod = std::arch::is_aarch64_feature_detected!("dotprod");
        #[cfg(not(target_arch = "aarch64"))]
        let dotprod = false;
        let arm = cfg!(any(target_arch = "arm", target_arch = "aarch64"));
        let features = cpuinfo_features();
        Cpu {
            arch: std::env::consts::ARCH,
            fp16,
            dotprod,
            // The same test as tract's armv7 start-up (`neon` or `asimd` in `Features`).
            neon: cfg!(target_arch = "arm")
                && features
                    .as_deref()
                    .is_some_and(|f| f.contains(" neon") || f.contains(" asimd")),
            cpuinfo_hidden: arm && features.is_none(),
        }
    }

    /// `aarch64 (fp16: yes, dotprod: no)`; `arm (neon: yes, fp16: no, dotprod: no)`; with
    /// [`Cpu::warning`] after it when there is one.
    pub fn describe(&self) -> String {
        let mut text = self.features();
        if let Some(w) = self.warning() {
            text.push_str("; ");
            text.push_str(&w);
        }
        text
    }

    /// The features alone (what `auto`'s reason quotes: the warning is said once, by
    /// [`Cpu::describe`]).
    fn features(&self) -> String {
        let yn = |b: bool| if b { "yes" } else { "no" };
        let neon = if self.arch == "arm" {
            format!("neon: {}, ", yn(self.neon))
        } else {
            String::new()
        };
        format!(
            "{} ({neon}fp16: {}, dotprod: {})",
            self.arch,
            yn(self.fp16),
            yn(self.dotprod)
        )
    }

    /// Why tract will run slower than this CPU allows, if it will.
    pub fn warning(&self) -> Option<String> {
        self.cpuinfo_hidden.then(|| {
            "/proc/cpuinfo cannot be read, so tract takes its slowest kernels; fix: let the \
             process read it (a systemd unit must not set ProcSubset=pid)"
                .to_string()
        })
    }

    /// The float arithmetic `auto` uses on this CPU, and why (`f32: aarch64 (fp16: no, …)
    /// has no half-precision arithmetic`).
    pub fn float_choice(&self) -> (Arith, String) {
        self.float_choice_with(F16_ACCEPTED)
    }

    fn float_choice_with(&self, f16_accepted: bool) -> (Arith, String) {
        let cpu = self.features();
        match (self.fp16, f16_accepted) {
            (true, true) => (
                Arith::F16,
                format!("f16: {cpu} has half-precision arithmetic"),
            ),
            (true, false) => (
                Arith::F32,
                format!("f32: {cpu} has half-precision arithmetic, but f16 has not passed the accuracy suite's acceptance rule (MOT17-02: a main line moved by 2 crossings); precision = \"f16\" runs it anyway"),
            ),
            (false, _) => (
                Arith::F32,
                format!("f32: {cpu} has no half-precision arithmetic"),
            ),
        }
    }
}

/// The `Features` line of /proc/cpuinfo, the way tract reads it on ARM; `None` when the file
/// cannot be read or has no such line (x86 has `flags` instead: not used there).
fn cpuinfo_features() -> Option<String> {
    let text = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("Features"))?;
    Some(format!(" {}", line.split_once(':')?.1.trim()))
}

/// How a loaded network computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arith {
    F32,
    F16,
    /// An int8 operator-form or QDQ file (its own graph decides the types).
    Int8,
}

impl Arith {
    pub fn name(self) -> &'static str {
        match self {
            Arith::F32 => "f32",
            Arith::F16 => "f16",
            Arith::Int8 => "int8",
        }
    }
}

/// An optimized network that takes and gives f32 tensors whatever it computes in.
#[derive(Debug)]
pub struct Net {
    plan: Arc<TypedSimplePlan>,
    arith: Arith,
}

pub(crate) type Plan = Arc<Net>;

impl Net {
    pub fn arith(&self) -> Arith {
        self.arith
    }

    /// Multiply-accumulates of one run, from tract's cost model of the optimized graph (each
    /// operator's `FMA` cost at these input shapes).
    pub fn fmas(&self) -> TractResult<u64> {
        let model = self.plan.model();
        let mut total = 0u64;
        for node in model.nodes() {
            let facts = model.node_input_facts(node.id)?;
            for (cost, n) in node.op.cost(&facts)? {
                if let tract_onnx::tract_core::ops::Cost::FMA(_) = cost {
                    total += n.to_i64().unwrap_or(0).max(0) as u64;
                }
            }
        }
        Ok(total)
    }

    /// The matrix-multiplication kernels tract dispatched for this CPU, by name, with how
    /// many operations use each (`arm64fp16_mmm_f16_32x6…` on a half-precision core,
    /// `fma_mmm_f32…` on x86): the proof that a precision reached its fast path.
    pub fn kernels(&self) -> std::collections::BTreeMap<String, usize> {
        use tract_onnx::tract_core::ops::matmul::optimized::OptMatMul;
        let mut names = std::collections::BTreeMap::new();
        for node in self.plan.model().nodes() {
            if let Some(op) = node.op_as::<OptMatMul>() {
                for k in &op.mmm {
                    *names.entry(k.name().to_string()).or_insert(0) += 1;
                }
            }
        }
        names
    }

    /// Run on f32 inputs; outputs are f32.
    pub fn run(&self, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        if self.arith != Arith::F16 {
            return self.plan.run(inputs);
        }
        let half = inputs
            .into_iter()
            .map(|t| Ok(t.cast_to::<f16>()?.into_owned().into_tvalue()))
            .collect::<TractResult<TVec<_>>>()?;
        self.plan
            .run(half)?
            .into_iter()
            .map(|t| match t.datum_type() {
                DatumType::F16 => Ok(t.cast_to::<f32>()?.into_owned().into_tvalue()),
                _ => Ok(t),
            })
            .collect()
    }
}

/// Load `path` for the given input shapes, in `arith` (f16 transforms the float graph).
pub(crate) fn load_plan_in(
    path: &Path,
    facts: &[(usize, Vec<usize>)],
    arith: Arith,
) -> Result<Plan, ModelError> {
    let err = |e: TractError| ModelError::Load {
        path: path.to_path_buf(),
        message: format!("{e:#}"),
    };
    let mut model = tract_onnx::onnx().model_for_path(path).map_err(err)?;
    // Shapes recorded in the file hold for the exported input size only: forget them, so the
    // graph is analysed again from the input given here (a 416x320 input, say).
    let inputs: Vec<usize> = model
        .input_outlets()
        .map_err(err)?
        .iter()
        .map(|o| o.node)
        .collect();
    for id in (0..model.nodes().len()).filter(|id| !inputs.contains(id)) {
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
    let mut typed = model
        .into_typed()
        .map_err(err)?
        .into_decluttered()
        .map_err(err)?;
    if arith == Arith::F16 {
        use tract_onnx::tract_core::transform::{build_float_translator, NodeFilter};
        let filter = NodeFilter {
            exclude: Some(head_nodes(&typed)),
            ..Default::default()
        };
        build_float_translator(f32::datum_type(), f16::datum_type(), filter)
            .transform(&mut typed)
            .map_err(err)?;
    }
    let plan = typed
        .into_optimized()
        .map_err(err)?
        .into_runnable()
        .map_err(err)?;
    Ok(Arc::new(Net { plan, arith }))
}

/// The prediction head, kept in f32 when a model runs in f16: every node between the last
/// convolutions and the outputs, those convolutions included (box offsets, log sizes and
/// scores, where f16's 11-bit mantissa would move boxes and scores near the threshold). The
/// backbone, where the work is, runs in f16.
fn head_nodes(model: &TypedModel) -> Vec<String> {
    use tract_onnx::tract_core::ops::cnn::Conv;
    let mut names = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut todo: Vec<usize> = model
        .output_outlets()
        .map(|o| o.iter().map(|o| o.node).collect())
        .unwrap_or_default();
    while let Some(id) = todo.pop() {
        if !seen.insert(id) {
            continue;
        }
        let node = model.node(id);
        names.push(node.name.clone());
        if node.op_is::<Conv>() {
            continue;
        }
        todo.extend(node.inputs.iter().map(|i| i.node));
    }
    names
}

/// Load `path` in f32.
pub(crate) fn load_plan(path: &Path, facts: &[(usize, Vec<usize>)]) -> Result<Plan, ModelError> {
    load_plan_in(path, facts, Arith::F32)
}

/// What runs for `precision`: the file, its arithmetic, and why (for the log).
#[derive(Debug, Clone)]
pub struct Choice {
    pub path: PathBuf,
    pub arith: Arith,
    pub why: String,
}

/// Resolve `precision` for a model taking one 1x3xSxS image (`size`), the float file `float`
/// beside its possible int8 sibling in `dir`, on `cpu`.
pub fn choose(
    e: &ModelEntry,
    float: &Path,
    dir: &Path,
    size: usize,
    precision: Precision,
    cpu: &Cpu,
) -> Result<Choice, ModelError> {
    let pick = |path: &Path, arith, why: String| Choice {
        path: path.to_path_buf(),
        arith,
        why,
    };
    let int8 = verified_int8(dir, &e.file);
    Ok(match (precision, int8) {
        (Precision::F32, _) => pick(float, Arith::F32, "f32 (configured)".into()),
        (Precision::F16, _) => pick(float, Arith::F16, "f16 (configured)".into()),
        (Precision::Int8, Ok(p)) => pick(&p, Arith::Int8, "int8 (configured, verified)".into()),
        (Precision::Int8, Err(why)) => {
            return Err(ModelError::Load {
                path: dir.join(e.file.replace(".onnx", ".int8.onnx")),
                message: format!("precision = \"int8\" but {why}; fix: use \"auto\" or \"f32\""),
            })
        }
        (Precision::Auto, Err(no_int8)) => {
            let (arith, why) = cpu.float_choice();
            pick(float, arith, format!("{why}; no int8: {no_int8}"))
        }
        (Precision::Auto, Ok(p)) => {
            let (arith, why) = cpu.float_choice();
            let fact = [(0, vec![1, 3, size, size])];
            let f = load_plan_in(float, &fact, arith)?;
            let i = load_plan_in(&p, &fact, Arith::Int8)?;
            let (tf, ti) = (time_plan(&f, size)?, time_plan(&i, size)?);
            let msg = format!("{ti:.1} ms int8 vs {tf:.1} ms {} on this box", arith.name());
            if ti < tf {
                pick(&p, Arith::Int8, format!("int8, verified and faster: {msg}"))
            } else {
                pick(
                    float,
                    arith,
                    format!("{why}; faster than the verified int8: {msg}"),
                )
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

/// The int8 variant beside the float file (`x.onnx` → `x.int8.onnx`) if its verification
/// record (`x.int8.json`, written by tools/quantize.py) says it passed and names this very
/// file by sha256; otherwise why not.
pub fn verified_int8(dir: &Path, file: &str) -> Result<PathBuf, String> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_takes_f16_only_on_a_core_with_half_precision_arithmetic_once_accepted() {
        let a72 = Cpu {
            arch: "aarch64",
            fp16: false,
            dotprod: false,
            neon: false,
            cpuinfo_hidden: false,
        };
        let a76 = Cpu {
            fp16: true,
            dotprod: true,
            ..a72
        };
        assert_eq!(a72.float_choice_with(true).0, Arith::F32);
        assert_eq!(a76.float_choice_with(true).0, Arith::F16);
        assert!(a76.float_choice_with(true).1.contains("fp16: yes"));
        // Until f16 passes the suite's acceptance rule, `auto` says why it does not take it.
        let (arith, why) = a76.float_choice_with(false);
        assert_eq!(arith, Arith::F32);
        assert!(why.contains("acceptance rule"), "{why}");
        #[cfg(target_arch = "x86_64")]
        assert_eq!(Cpu::detect().float_choice().0, Arith::F32);
    }

    /// The hardened unit once hid /proc/cpuinfo (`ProcSubset=pid`): tract then ran its scalar
    /// kernels on armv7 and never its f16 or core-tuned ones on aarch64, silently.
    #[test]
    fn a_hidden_proc_cpuinfo_is_said_with_the_fix() {
        let pi2 = Cpu {
            arch: "arm",
            fp16: false,
            dotprod: false,
            neon: true,
            cpuinfo_hidden: false,
        };
        assert_eq!(pi2.describe(), "arm (neon: yes, fp16: no, dotprod: no)");
        assert_eq!(pi2.warning(), None);
        let sandboxed = Cpu {
            neon: false,
            cpuinfo_hidden: true,
            ..pi2
        };
        let text = sandboxed.describe();
        assert!(text.starts_with("arm (neon: no, "), "{text}");
        assert!(text.contains("/proc/cpuinfo cannot be read"), "{text}");
        assert!(text.contains("ProcSubset=pid"), "{text}");
        #[cfg(target_arch = "x86_64")]
        assert_eq!(Cpu::detect().warning(), None);
    }

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
}
