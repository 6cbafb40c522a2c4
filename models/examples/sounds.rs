//! Sound categories of raw 16 kHz mono f32le audio: `sounds MODELS_DIR < audio.f32`
//! (e.g. `ffmpeg -i speech.flac -ac 1 -ar 16000 -f f32le -`). Prints the share per category.
use std::io::Read;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| ".cache/models".into());
    let mut y = vitrine_models::AudioEvents::load("yamnet", dir.as_ref())?;
    let mut bytes = Vec::new();
    std::io::stdin().read_to_end(&mut bytes)?;
    let samples: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let mut counts = std::collections::BTreeMap::new();
    for c in samples.chunks(512) {
        for s in y.push(c)? {
            *counts.entry(format!("{s:?}")).or_insert(0u32) += 1;
        }
    }
    println!("{counts:?}");
    Ok(())
}
