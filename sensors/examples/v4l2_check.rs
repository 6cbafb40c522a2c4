//! Real-driver check for USB-camera capture, run inside the QEMU guest of `scripts/hwtest.sh`
//! (vivid for YUYV, v4l2loopback fed MJPEG), since a build host has no camera.
//!
//! ```text
//! v4l2_check capture DEVICE FORMAT FRAMES [--unplug]
//!     open DEVICE through vitrine's V4l2Camera (FORMAT required: yuyv, mjpeg, ...), capture
//!     FRAMES frames and print what was chosen and what the frames look like; with --unplug,
//!     then keep reading until the device is lost (the script unbinds the driver), reopen it
//!     with backoff like the agent does, capture FRAMES more and print REOPENED.
//! v4l2_check probe
//!     list the cameras with their modes, as `vitrine probe` does.
//! v4l2_check feed DEVICE WIDTH HEIGHT FPS JPEG...
//!     a camera for v4l2loopback: write the JPEG files to DEVICE as an MJPEG stream, in a loop.
//! ```

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use vitrine_sensors::convert::PixelFormat;
use vitrine_sensors::live::{Backoff, LiveRequest};
use vitrine_sensors::v4l2::V4l2Camera;
use vitrine_sensors::FrameSource;

fn stats(rgb: &[u8]) -> (f64, f64) {
    let n = rgb.len().max(1) as f64;
    let mean = rgb.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
    let var = rgb
        .iter()
        .map(|&v| (f64::from(v) - mean).powi(2))
        .sum::<f64>()
        / n;
    (mean, var.sqrt())
}

fn capture(cam: &mut V4l2Camera, frames: usize) -> Result<(), String> {
    let start = Instant::now();
    for i in 0..frames {
        let f = cam
            .next_frame()
            .map_err(|e| e.to_string())?
            .ok_or("stream ended")?;
        if i == 0 || i + 1 == frames {
            let (mean, sd) = stats(&f.rgb);
            println!(
                "frame {i}: {}x{} t={} ms mean {mean:.1} stddev {sd:.1}",
                f.width, f.height, f.t_ms
            );
        }
    }
    println!(
        "captured {frames} frames in {:.1} s (corrupt skipped: {})",
        start.elapsed().as_secs_f64(),
        cam.corrupt_frames()
    );
    Ok(())
}

fn open(device: &Path, req: &LiveRequest) -> Result<V4l2Camera, String> {
    let cam = V4l2Camera::open(device, req).map_err(|e| e.to_string())?;
    let c = cam.choice();
    println!(
        "opened: {} {}x{} at {} fps",
        c.format, c.width, c.height, c.fps
    );
    Ok(cam)
}

fn run_capture(args: &[String]) -> Result<(), String> {
    let device = Path::new(args.first().ok_or("DEVICE")?);
    let format = PixelFormat::parse(args.get(1).ok_or("FORMAT")?).ok_or("unknown FORMAT")?;
    let frames: usize = args.get(2).ok_or("FRAMES")?.parse().map_err(|_| "FRAMES")?;
    let unplug = args.iter().any(|a| a == "--unplug");
    let stall = args.iter().any(|a| a == "--stall");
    let mut req = LiveRequest::new(10.0, None, Instant::now());
    req.format = Some(format);
    let mut cam = open(device, &req)?;
    capture(&mut cam, frames)?;
    if stall {
        // The feeder is paused (kept open, sending nothing): the read must time out.
        println!("READY-FOR-STALL");
        let t0 = Instant::now();
        loop {
            match cam.next_frame() {
                Ok(_) if t0.elapsed() < Duration::from_secs(120) => continue,
                Ok(_) => return Err("frames never stopped".into()),
                Err(e) => {
                    println!("LOST: {e}");
                    return Ok(());
                }
            }
        }
    }
    if !unplug {
        return Ok(());
    }
    println!("READY-FOR-UNPLUG");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        match cam.next_frame() {
            Ok(_) if Instant::now() < deadline => continue,
            Ok(_) => return Err("the device was never lost".into()),
            Err(e) => {
                println!("LOST: {e}");
                break;
            }
        }
    }
    drop(cam);
    let mut backoff = Backoff::new(Duration::from_secs(4));
    let mut attempts = 0;
    loop {
        attempts += 1;
        match open(device, &req) {
            Ok(mut cam) => {
                capture(&mut cam, frames)?;
                println!("REOPENED after {attempts} attempts");
                return Ok(());
            }
            Err(e) if Instant::now() < deadline => {
                if attempts == 1 {
                    println!("reopen failed (retrying with backoff): {e}");
                }
                std::thread::sleep(backoff.next_wait());
            }
            Err(e) => return Err(format!("never came back: {e}")),
        }
    }
}

fn run_feed(args: &[String]) -> Result<(), String> {
    use v4l::video::Output;
    let device = args.first().ok_or("DEVICE")?;
    let w: u32 = args.get(1).ok_or("WIDTH")?.parse().map_err(|_| "WIDTH")?;
    let h: u32 = args.get(2).ok_or("HEIGHT")?.parse().map_err(|_| "HEIGHT")?;
    let fps: u64 = args.get(3).ok_or("FPS")?.parse().map_err(|_| "FPS")?;
    let jpegs: Vec<Vec<u8>> = args[4..]
        .iter()
        .map(std::fs::read)
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    if jpegs.is_empty() {
        return Err("JPEG files".into());
    }
    let mut dev = v4l::Device::with_path(device).map_err(|e| e.to_string())?;
    let mut fmt = v4l::Format::new(w, h, v4l::FourCC::new(b"MJPG"));
    fmt.size = w * h * 2;
    dev.set_format(&fmt).map_err(|e| e.to_string())?;
    let every = Duration::from_millis(1000 / fps.max(1));
    let mut i = 0usize;
    loop {
        dev.write_all(&jpegs[i % jpegs.len()])
            .map_err(|e| e.to_string())?;
        i += 1;
        std::thread::sleep(every);
    }
}

fn run_probe() -> Result<(), String> {
    for c in vitrine_sensors::v4l2::probe().map_err(|e| e.to_string())? {
        println!("{} {}", c.path.display(), c.name);
        for o in c.offers? {
            println!("  {} {}x{} fps {:?}", o.format, o.width, o.height, o.fps);
        }
    }
    Ok(())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("capture") => run_capture(&args[1..]),
        Some("feed") => run_feed(&args[1..]),
        Some("probe") => run_probe(),
        _ => Err("usage: v4l2_check capture DEVICE FORMAT FRAMES [--unplug|--stall] | feed DEVICE W H FPS JPEG...".into()),
    };
    if let Err(e) = result {
        println!("ERROR: {e}");
        std::process::exit(1);
    }
}
