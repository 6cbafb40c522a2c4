//! `vitrine-lab bench delivery`: events per second through the durable outbox and the MQTT uplink
//! into a real Mosquitto, and what that costs the disk (SD cards wear).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use vitrine_config::Config;
use vitrine_signals::event::{
    AreaStats, Body, CameraBody, Coverage, DwellStats, EventMeta, LineStats, PeopleStats,
    WindowEvent,
};

use vitrine::clock::now_ms;
use vitrine::daemon::open_outbox;
use vitrine::outbox::lock_outbox;
use vitrine::uplink::Uplink;

/// Bytes this process caused to be written to storage (Linux `/proc/self/io`).
fn write_bytes() -> Option<u64> {
    let io = std::fs::read_to_string("/proc/self/io").ok()?;
    io.lines()
        .find_map(|l| l.strip_prefix("write_bytes: "))
        .and_then(|v| v.trim().parse().ok())
}

/// A realistic camera window (two zones, a line, a display).
pub(crate) fn body() -> Body {
    Body::Camera(CameraBody {
        coverage: Coverage::frames(60.0, 300, 297, 3, 0.4),
        people: PeopleStats::new(Some(3.2), 7, 5),
        zones: vec![
            AreaStats::new(
                "promo-table".into(),
                Some(1.4),
                4,
                9,
                DwellStats::from_ms(&mut [4_000, 12_000, 31_000, 7_500, 18_000]),
                5,
            ),
            AreaStats::new(
                "checkout-queue".into(),
                Some(2.1),
                5,
                6,
                DwellStats::from_ms(&mut [45_000, 60_000, 38_000, 52_000, 41_000, 70_000]),
                5,
            ),
        ],
        lines: vec![LineStats::new("door".into(), (14, 11), (10, 8), 5)],
        displays: vec![AreaStats::new(
            "window-display".into(),
            Some(0.8),
            3,
            12,
            DwellStats::from_ms(&mut [2_000, 3_500, 6_000, 1_500, 2_500]),
            5,
        )],
        queues: vec![],
        heatmap: None,
        funnel: None,
        staff: None,
    })
}

pub fn delivery(events: u64, interval_ms: u64, broker: Option<String>) -> anyhow::Result<()> {
    let state = std::env::temp_dir().join(format!("vitrine-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&state);
    std::fs::create_dir_all(&state)?;
    let mut _mosquitto = None;
    let url = match broker {
        Some(u) => u,
        None => {
            let (b, port) = crate::demo::start_mosquitto(&state)?
                .ok_or_else(|| anyhow::anyhow!("mosquitto is not installed; pass --broker"))?;
            _mosquitto = Some(b);
            format!("mqtt://127.0.0.1:{port}")
        }
    };
    let text = format!(
        "[device]\nid = \"bench-box\"\nstore_id = \"bench\"\n[[microphones]]\nid = \"m\"\ndevice = \"default\"\n[mqtt]\nurl = \"{url}\"\n[outbox]\ndir = \"{}\"\nmax_mb = 256\n",
        state.join("outbox").display()
    );
    let cfg = Config::parse(&text, Path::new("bench.toml")).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mqtt = cfg
        .mqtt
        .clone()
        .ok_or_else(|| anyhow::anyhow!("no broker"))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let outbox = Arc::new(std::sync::Mutex::new(open_outbox(&cfg)?));
    let wake = Arc::new(tokio::sync::Notify::new());
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let uplink = Uplink::new(&cfg, &mqtt, outbox.clone(), Default::default())?;
    let task = rt.spawn(uplink.run(wake.clone(), stop_rx, Duration::from_secs(30)));
    // Let the connection come up before timing.
    std::thread::sleep(Duration::from_millis(500));
    let written_before = write_bytes();
    let meta = EventMeta {
        device_id: "bench-box",
        store_id: "bench",
        source_id: "entrance",
        k_min: 5,
    };
    let body = body();
    let start = Instant::now();
    let t0 = now_ms();
    for i in 0..events {
        let (s, e) = (t0 + i * 60_000, t0 + (i + 1) * 60_000);
        lock_outbox(&outbox).try_append(vitrine::clock::mono_ms(), |seq| {
            serde_json::to_vec(&WindowEvent::new(&meta, seq, s, e, body.clone()))
        })?;
        wake.notify_one();
        if interval_ms > 0 {
            std::thread::sleep(Duration::from_millis(interval_ms));
        }
    }
    let appended_in = start.elapsed();
    let deadline = Instant::now() + Duration::from_secs(120);
    while lock_outbox(&outbox).depth().0 > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let delivered_in = start.elapsed();
    let written = match (written_before, write_bytes()) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a)),
        _ => None,
    };
    let left = lock_outbox(&outbox).depth().0;
    let stats = lock_outbox(&outbox).stats;
    let _ = stop.send(true);
    wake.notify_one();
    let up = rt.block_on(task)??;
    let payload = serde_json::to_vec(&WindowEvent::new(&meta, 1, t0, t0 + 60_000, body))?.len();
    println!("delivery benchmark: {events} camera window events ({payload} B JSON each), {}, through outbox + MQTT v5 QoS 1 to {url}", if interval_ms > 0 { format!("one every {interval_ms} ms") } else { "as fast as possible".into() });
    println!(
        "  append only           {:>10.0} events/s",
        events as f64 / appended_in.as_secs_f64()
    );
    println!(
        "  append → PUBACK       {:>10.0} events/s  ({:.2} s; {} acked, {} left)",
        events as f64 / delivered_in.as_secs_f64(),
        delivered_in.as_secs_f64(),
        up.acked,
        left
    );
    println!(
        "  record bytes / event  {:>10.1}  (payload + 16 B framing)",
        stats.bytes_written as f64 / stats.appended.max(1) as f64
    );
    if let Some(w) = written {
        println!("  disk bytes / event    {:>10.1}  (/proc/self/io write_bytes: data, metadata and the ack file)", w as f64 / events.max(1) as f64);
    }
    println!(
        "  fsyncs / event        {:>10.3}  (group commit: at most one per {} ms)",
        stats.syncs as f64 / events.max(1) as f64,
        vitrine::outbox::Limits::for_cap(1).sync_interval_ms
    );
    let _ = std::fs::remove_dir_all(&state);
    Ok(())
}

/// Frames of the real pedestrian video, encoded the way each camera type delivers them.
fn encoded_frames(
    media: &Path,
    w: usize,
    h: usize,
    n: usize,
    args: &[&str],
) -> anyhow::Result<Vec<u8>> {
    let vf = format!("scale={w}:{h}");
    let out = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-nostdin", "-i"])
        .arg(media)
        .args(["-vf", &vf, "-frames:v", &n.to_string()])
        .args(args)
        .arg("pipe:1")
        .output()
        .map_err(|e| anyhow::anyhow!("ffmpeg: {e}; fix: install ffmpeg (scripts/setup.sh does)"))?;
    anyhow::ensure!(
        out.status.success(),
        "ffmpeg {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(out.stdout)
}

/// Split a concatenation of JPEGs (ffmpeg's `-f mjpeg`) at its start-of-image markers.
fn split_jpegs(data: &[u8]) -> Vec<&[u8]> {
    let mut starts: Vec<usize> = data
        .windows(3)
        .enumerate()
        .filter(|(_, w)| w == b"\xff\xd8\xff")
        .map(|(i, _)| i)
        .collect();
    starts.push(data.len());
    starts.windows(2).map(|w| &data[w[0]..w[1]]).collect()
}

/// `vitrine-lab bench capture`: decode + preprocess cost per frame for each camera type
/// (USB YUYV, NV12, MJPEG; RTSP H.264) at 640x480 and 1080p, on frames of a real video, and
/// what an idle camera costs the live path at 10 analysed frames/s: each due frame is decoded
/// and motion-gated, never letterboxed or detected (an RTSP stream decodes all of its 25 fps).
pub fn capture(media: &Path, frames: usize) -> anyhow::Result<()> {
    use vitrine_sensors::convert::{to_rgb, PixelFormat};
    anyhow::ensure!(
        media.is_file(),
        "{} does not exist; fix: run scripts/fetch-media.sh or pass --media VIDEO",
        media.display()
    );
    const SIZE: usize = 416; // the default detector's input
    let mut input = vec![0f32; 3 * SIZE * SIZE];
    println!(
        "decode + preprocess per frame, {frames} frames of {} (1 core)",
        media.display()
    );
    println!(
        "{:<16} {:>9} {:>14} {:>12} {:>10} {:>12} {:>9} {:>17}",
        "source",
        "size",
        "decode+rgb ms",
        "letterbox ms",
        "total ms",
        "frames/s",
        "gate ms",
        "idle % of a core"
    );
    for (w, h) in [(640usize, 480usize), (1920, 1080)] {
        let mut rows: Vec<(String, Vec<Vec<u8>>, Option<PixelFormat>)> = Vec::new();
        for (name, pix, fmt) in [
            ("usb yuyv", "yuyv422", PixelFormat::Yuyv),
            ("usb nv12", "nv12", PixelFormat::Nv12),
        ] {
            let raw = encoded_frames(media, w, h, frames, &["-f", "rawvideo", "-pix_fmt", pix])?;
            let len = fmt.frame_len(w, h).unwrap_or(1);
            rows.push((
                name.to_string(),
                raw.chunks_exact(len).map(<[u8]>::to_vec).collect(),
                Some(fmt),
            ));
        }
        let mj = encoded_frames(
            media,
            w,
            h,
            frames,
            &["-c:v", "mjpeg", "-q:v", "5", "-f", "mjpeg"],
        )?;
        rows.push((
            "usb mjpeg".into(),
            split_jpegs(&mj).into_iter().map(<[u8]>::to_vec).collect(),
            Some(PixelFormat::Mjpeg),
        ));
        #[cfg(feature = "rtsp")]
        {
            let h264 = encoded_frames(
                media,
                w,
                h,
                frames,
                &[
                    "-c:v", "libx264", "-preset", "veryfast", "-bf", "0", "-g", "25", "-f", "h264",
                ],
            )?;
            rows.push((
                "rtsp h264".into(),
                vitrine_sensors::rtsp::nal_units(&h264)
                    .map(<[u8]>::to_vec)
                    .collect(),
                None,
            ));
        }
        for (name, units, fmt) in rows {
            let mut rgb = Vec::new();
            let mut motion = vitrine_sensors::motion::MotionDetector::new(Default::default());
            let (mut decode, mut prep, mut pictures) = (Duration::ZERO, Duration::ZERO, 0u32);
            let mut gate = Duration::ZERO;
            #[cfg(feature = "rtsp")]
            let mut h264 = match fmt {
                None => {
                    Some(vitrine_sensors::rtsp::H264Decoder::new().map_err(anyhow::Error::msg)?)
                }
                Some(_) => None,
            };
            for unit in &units {
                let t = Instant::now();
                let got = match fmt {
                    Some(f) => {
                        to_rgb(f, unit, w, h, &mut rgb)?;
                        true
                    }
                    #[cfg(feature = "rtsp")]
                    None => h264
                        .as_mut()
                        .map(|d| d.decode(unit, true, &mut rgb))
                        .transpose()
                        .map_err(anyhow::Error::msg)?
                        .flatten()
                        .is_some(),
                    #[cfg(not(feature = "rtsp"))]
                    None => false,
                };
                decode += t.elapsed();
                if got {
                    let t = Instant::now();
                    if motion.moved(&rgb, w, h) {
                        motion.accept();
                    }
                    gate += t.elapsed();
                    let t = Instant::now();
                    vitrine_models::preprocess::letterbox_bgr(
                        &rgb,
                        w,
                        h,
                        (SIZE, SIZE),
                        114.0,
                        &mut input,
                    );
                    prep += t.elapsed();
                    pictures += 1;
                }
            }
            if pictures == 0 {
                continue;
            }
            let d = decode.as_secs_f64() * 1e3 / f64::from(pictures);
            let p = prep.as_secs_f64() * 1e3 / f64::from(pictures);
            let g = gate.as_secs_f64() * 1e3 / f64::from(pictures);
            // ms of work per second of an idle camera, as a share of 1000 ms.
            let decoded_per_s = if fmt.is_some() { 10.0 } else { 25.0 };
            let idle = (d * decoded_per_s + g * 10.0) / 10.0;
            println!(
                "{:<16} {:>9} {:>14.2} {:>12.2} {:>10.2} {:>12.0} {:>9.2} {:>17.1}",
                name,
                format!("{w}x{h}"),
                d,
                p,
                d + p,
                1e3 / (d + p),
                g,
                idle
            );
        }
    }
    Ok(())
}
