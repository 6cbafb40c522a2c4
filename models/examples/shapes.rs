//! Time the people detector's preprocessing and model at several input shapes (developer
//! check; `vitrine-lab eval suite` reports the same split on real video).
use std::time::Instant;

fn median(mut t: Vec<f64>) -> f64 {
    t.sort_by(f64::total_cmp);
    t[t.len() / 2]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::path::PathBuf::from(std::env::args().nth(1).unwrap_or(".cache/models".into()));
    for (w, h) in [(768usize, 576usize), (1280, 720)] {
        let rgb: Vec<u8> = (0..w * h * 3).map(|i| (i * 7 % 251) as u8).collect();
        for size in [416usize, 320] {
            let (iw, ih) = vitrine_models::detector::input_shape(size, w, h);
            let mut input = vec![0f32; 3 * iw * ih];
            let lb = median(
                (0..20)
                    .map(|_| {
                        let a = Instant::now();
                        vitrine_models::preprocess::letterbox_bgr(
                            &rgb,
                            w,
                            h,
                            (iw, ih),
                            114.0,
                            &mut input,
                        );
                        a.elapsed().as_secs_f64() * 1000.0
                    })
                    .collect(),
            );
            let (d, _) = vitrine_models::PeopleDetector::load(
                "yolox-nano",
                &dir,
                Some(size),
                0.1,
                0.45,
                vitrine_models::Precision::F32,
            )?;
            let mut s = d.session(w, h)?;
            s.detect(&rgb, w, h)?;
            let all = median(
                (0..10)
                    .map(|_| {
                        let a = Instant::now();
                        let _ = s.detect(&rgb, w, h);
                        a.elapsed().as_secs_f64() * 1000.0
                    })
                    .collect(),
            );
            println!("frame {w}x{h} input {iw}x{ih}: letterbox {lb:.2} ms, detect {all:.1} ms");
        }
    }
    Ok(())
}
