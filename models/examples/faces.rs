//! Faces and head poses in raw RGB24 frames: `faces MODELS_DIR W H < frames.rgb`
//! (e.g. `ffmpeg -i clip.gif -f rawvideo -pix_fmt rgb24 -`). Prints one line per frame.
use std::io::Read;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a: Vec<String> = std::env::args().collect();
    let (dir, w, h): (&str, usize, usize) = (&a[1], a[2].parse()?, a[3].parse()?);
    let mut f = vitrine_models::FaceAnalyser::load("yunet", "fsanet", dir.as_ref())?;
    let mut buf = vec![0u8; w * h * 3];
    let mut i = 0;
    while std::io::stdin().read_exact(&mut buf).is_ok() {
        let faces = f.analyse(&buf, w, h)?;
        let s: Vec<String> = faces
            .iter()
            .map(|f| {
                format!(
                    "({:.2},{:.2} {:.0}px yaw {:.0} pitch {:.0})",
                    f.bbox.center().x,
                    f.bbox.center().y,
                    f.bbox.w() * w as f32,
                    f.pose.yaw,
                    f.pose.pitch
                )
            })
            .collect();
        println!("{i}: {}", s.join(" "));
        i += 1;
    }
    Ok(())
}
