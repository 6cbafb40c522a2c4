//! The media scanner of the privacy tests: finds raw pixels or samples, or media files, in
//! what the agent writes (its own test is in tests/privacy.rs).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Bytes per block the media scanner judges at a time.
pub const BLOCK: usize = 4096;

/// Why a block of bytes looks like raw pixels or samples rather than the agent's framed JSON:
/// raw RGB/YUV and PCM (s16 or f32) have no magic bytes, but they are dense with bytes that
/// never appear in JSON text, and carry far more entropy per byte than text does.
pub fn media_like(block: &[u8]) -> Option<String> {
    let binary = block
        .iter()
        .filter(|b| !(b.is_ascii_graphic() || b" \t\r\n".contains(b)))
        .count();
    let mut hist = [0u32; 256];
    block.iter().for_each(|b| hist[*b as usize] += 1);
    let n = block.len() as f64;
    let entropy: f64 = hist
        .iter()
        .filter(|c| **c > 0)
        .map(|c| {
            let p = f64::from(*c) / n;
            -p * p.log2()
        })
        .sum();
    let share = binary as f64 / n;
    (share > 0.2 || entropy > 6.5).then(|| {
        format!(
            "{:.0} % non-text bytes, {entropy:.1} bits/byte",
            share * 100.0
        )
    })
}

/// Every file under `dir` (recursively) that holds magic bytes of a media format or a block
/// that looks like raw pixels or samples.
pub fn scan_for_media(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for p in entries.flatten().map(|e| e.path()) {
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            // A file may vanish between listing and reading (segments are deleted on ack).
            let Ok(bytes) = std::fs::read(&p) else {
                continue;
            };
            found.extend(media_in(&p, &bytes));
        }
    }
    found
}

pub fn media_in(p: &Path, bytes: &[u8]) -> Vec<String> {
    let mut found = Vec::new();
    if bytes.len() > 4 * 1024 * 1024 {
        found.push(format!(
            "{}: {} bytes is large for aggregates",
            p.display(),
            bytes.len()
        ));
    }
    for magic in [
        &b"\xff\xd8\xff"[..],
        b"\x89PNG",
        b"RIFF",
        b"fLaC",
        b"\x1aE\xdf\xa3",
        b"ftyp",
    ] {
        if bytes.windows(magic.len()).any(|w| w == magic) {
            found.push(format!("{}: media magic bytes {magic:?}", p.display()));
        }
    }
    for (i, block) in bytes.chunks(BLOCK).enumerate() {
        if block.len() >= 256 {
            if let Some(why) = media_like(block) {
                found.push(format!(
                    "{}: block {i} looks like raw media ({why})",
                    p.display()
                ));
                break;
            }
        }
    }
    found
}

/// Scans `dirs` every 200 ms until stopped: catches what a file holds while the agent runs
/// (events waiting for their acknowledgement, temp files) and not only what is left after.
pub struct Scanner {
    stop: Arc<AtomicBool>,
    found: Arc<Mutex<Vec<String>>>,
    rounds: Arc<Mutex<u32>>,
    thread: std::thread::JoinHandle<()>,
}

impl Scanner {
    pub fn start(dirs: Vec<PathBuf>) -> Scanner {
        let stop = Arc::new(AtomicBool::new(false));
        let found = Arc::new(Mutex::new(Vec::new()));
        let rounds = Arc::new(Mutex::new(0));
        let (st, f, r) = (stop.clone(), found.clone(), rounds.clone());
        let thread = std::thread::spawn(move || {
            while !st.load(Ordering::Relaxed) {
                for d in &dirs {
                    f.lock().unwrap().extend(scan_for_media(d));
                }
                *r.lock().unwrap() += 1;
                std::thread::sleep(Duration::from_millis(200));
            }
        });
        Scanner {
            stop,
            found,
            rounds,
            thread,
        }
    }

    pub fn finish(self) -> (Vec<String>, u32) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap();
        let found = self.found.lock().unwrap().clone();
        let rounds = *self.rounds.lock().unwrap();
        (found, rounds)
    }
}
