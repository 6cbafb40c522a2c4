//! tract's outputs on a model file against reference outputs (onnxruntime's, written by
//! `tools/quantize.py --check-tract`): the largest absolute difference per output; tract's
//! own outputs are written beside each reference (`REF.tract`).
//!   agree MODEL INPUT.f32 D0xD1xD2xD3 REF0.f32 [REF1.f32 ...]
use vitrine_models::Arith;

fn read_f32(path: &str) -> Result<Vec<f32>, Box<dyn std::error::Error>> {
    let b = std::fs::read(path)?;
    Ok(b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [model, input, shape, refs @ ..] = args.as_slice() else {
        return Err("usage: agree MODEL INPUT.f32 D0xD1xD2xD3 REF0.f32 ...".into());
    };
    let shape: Vec<usize> = shape.split('x').map(str::parse).collect::<Result<_, _>>()?;
    let outs = vitrine_models::bench::outputs(
        std::path::Path::new(model),
        &[(shape, read_f32(input)?)],
        Arith::F32,
    )?;
    for (i, (ours, r)) in outs.iter().zip(refs).enumerate() {
        let bytes: Vec<u8> = ours.iter().flat_map(|v| v.to_le_bytes()).collect();
        std::fs::write(format!("{r}.tract"), bytes)?;
        let want = read_f32(r)?;
        let worst = ours
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        let mean = want.iter().map(|v| v.abs()).sum::<f32>() / want.len().max(1) as f32;
        println!(
            "{{\"output\": {i}, \"values\": {}, \"max_abs_diff\": {worst}, \"mean_abs_value\": {mean}}}",
            want.len()
        );
    }
    Ok(())
}
