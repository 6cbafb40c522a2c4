//! Live sources: opening (and reopening, with backoff) cameras and microphones that can be
//! unplugged, stall or vanish; the bookkeeping every live source shares.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use vitrine_config::{Camera, CaptureFormat, VideoSource};
use vitrine_sensors::live::{Backoff, LiveRequest};
#[cfg(feature = "alsa")]
use vitrine_sensors::AudioSource;
use vitrine_sensors::{FrameSource, SourceError};

use super::queue::BoundedQueue;
use super::*;
use crate::telemetry::SourceProgress;

/// Opens a live camera (again): what the reader thread calls after each loss.
pub(super) type Opener = Box<dyn FnMut() -> Result<Box<dyn FrameSource>, SourceError> + Send>;

/// The sensors' pixel format for a configured capture format.
#[cfg_attr(not(feature = "v4l"), allow(dead_code))]
fn pixel_format(f: CaptureFormat) -> vitrine_sensors::convert::PixelFormat {
    use vitrine_sensors::convert::PixelFormat as P;
    match f {
        CaptureFormat::Mjpeg => P::Mjpeg,
        CaptureFormat::Yuyv => P::Yuyv,
        CaptureFormat::Nv12 => P::Nv12,
        CaptureFormat::Rgb24 => P::Rgb24,
        CaptureFormat::Bgr24 => P::Bgr24,
        CaptureFormat::Gray => P::Gray,
    }
}

/// The config's decoder as the sensors crate's choice.
#[cfg(feature = "rtsp")]
pub fn decoder_choice(d: vitrine_config::VideoDecoder) -> vitrine_sensors::h264::DecoderChoice {
    use vitrine_config::VideoDecoder as V;
    use vitrine_sensors::h264::{DecoderChoice, DecoderKind as K};
    match d {
        V::Auto => DecoderChoice::Auto,
        V::Openh264 => DecoderChoice::Prefer(K::Openh264),
        V::Ffmpeg => DecoderChoice::Prefer(K::Ffmpeg),
        V::Vaapi => DecoderChoice::Prefer(K::Vaapi),
        V::V4l2m2m => DecoderChoice::Prefer(K::V4l2m2m),
        V::Rkmpp => DecoderChoice::Prefer(K::Rkmpp),
    }
}

#[cfg_attr(
    not(all(feature = "v4l", feature = "rtsp")),
    allow(unused_variables, unused_assignments, unused_mut)
)]
pub(super) fn live_camera(cam: &Camera, opts: &Options) -> anyhow::Result<Opener> {
    let mut req = LiveRequest::new(cam.fps, cam.size, opts.epoch);
    req.format = cam.format.map(pixel_format);
    match &cam.source {
        #[cfg(feature = "v4l")]
        VideoSource::Device(d) => {
            let d = d.clone();
            Ok(Box::new(move || {
                vitrine_sensors::v4l2::V4l2Camera::open(&d, &req)
                    .map(|c| Box::new(c) as Box<dyn FrameSource>)
            }))
        }
        #[cfg(feature = "rtsp")]
        VideoSource::Rtsp(u) => {
            let u = u.clone();
            let t = match cam.rtsp_transport {
                vitrine_config::RtspTransport::Tcp => vitrine_sensors::rtsp::RtspTransport::Tcp,
                vitrine_config::RtspTransport::Udp => vitrine_sensors::rtsp::RtspTransport::Udp,
            };
            let d = decoder_choice(cam.decoder);
            Ok(Box::new(move || {
                vitrine_sensors::rtsp::RtspCamera::open(&u, t, d, &req)
                    .map(|c| Box::new(c) as Box<dyn FrameSource>)
            }))
        }
        #[allow(unreachable_patterns)]
        other => anyhow::bail!(
            "camera {:?}: {} capture is not in this build (built without the `{}` feature)",
            cam.id,
            match other {
                VideoSource::Rtsp(_) => "RTSP",
                _ => "V4L2",
            },
            match other {
                VideoSource::Rtsp(_) => "rtsp",
                _ => "v4l",
            }
        ),
    }
}

/// The reopen bookkeeping every live source shares: backoff between attempts, the up/down flag
/// and loss counter in its progress, and logs that do not flood the journal (a failing open is
/// logged on attempts 1, 2, 4, 8 ...: a camera missing all night stays readable).
struct Reopen<'a> {
    id: &'a str,
    /// "camera" or "microphone", for the logs.
    what: &'static str,
    p: &'a SourceProgress,
    backoff: Backoff,
    failures: u64,
}

impl<'a> Reopen<'a> {
    fn new(id: &'a str, what: &'static str, p: &'a SourceProgress) -> Reopen<'a> {
        p.connected.store(false, Ordering::Relaxed);
        Reopen {
            id,
            what,
            p,
            backoff: Backoff::new(MAX_BACKOFF),
            failures: 0,
        }
    }

    fn opened(&mut self) {
        if self.failures > 0 {
            tracing::info!(source = %self.id, attempts = self.failures, "{} is back", self.what);
        }
        self.failures = 0;
        self.backoff.reset();
        self.p.connected.store(true, Ordering::Relaxed);
    }

    fn failed(&mut self, e: &dyn std::fmt::Display) {
        self.failures += 1;
        if self.failures.is_power_of_two() {
            tracing::error!(source = %self.id, attempts = self.failures, error = %e, "{} not available; retrying", self.what);
        }
    }

    /// The source stopped delivering: `Some(why)` if it was lost (then reopen), `None` if the
    /// agent is stopping. Returns whether to reopen.
    fn ended(&mut self, lost: Option<String>) -> bool {
        self.p.connected.store(false, Ordering::Relaxed);
        match lost {
            None => false,
            Some(e) => {
                self.p.lost.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(source = %self.id, error = %e, "{} lost; reopening (the outage shows as blind time in coverage)", self.what);
                true
            }
        }
    }

    /// Wait for the next attempt in small steps, calling `tick` (closing windows on the clock)
    /// and stamping the heartbeat meanwhile; false if asked to stop.
    fn wait(
        &mut self,
        stop: &AtomicBool,
        tick: &mut dyn FnMut() -> anyhow::Result<()>,
    ) -> anyhow::Result<bool> {
        let until = Instant::now() + self.backoff.next_wait();
        while Instant::now() < until {
            if stop.load(Ordering::Relaxed) {
                return Ok(false);
            }
            tick()?;
            self.p.beat();
            std::thread::sleep(Duration::from_millis(100).min(until - Instant::now()));
        }
        Ok(!stop.load(Ordering::Relaxed))
    }
}

/// The reader of a live camera: open, read until lost, reopen with backoff; never gives up
/// (a camera plugged in an hour later is picked up), stops only when asked.
pub(super) fn live_reader(
    id: &str,
    mut open: Opener,
    q: &BoundedQueue<vitrine_sensors::Frame>,
    stop: &AtomicBool,
    p: &SourceProgress,
) {
    let mut reopen = Reopen::new(id, "camera", p);
    while !stop.load(Ordering::Relaxed) {
        match open() {
            Ok(mut src) => {
                reopen.opened();
                let lost = loop {
                    if stop.load(Ordering::Relaxed) {
                        break None;
                    }
                    match src.next_frame() {
                        Ok(Some(f)) => {
                            p.set_decoder(src.decoder());
                            if !q.push(f) {
                                break None;
                            }
                        }
                        Ok(None) => break Some("the stream ended".to_string()),
                        Err(e) => break Some(e.to_string()),
                    }
                };
                drop(src);
                if !reopen.ended(lost) {
                    break;
                }
            }
            Err(e) => reopen.failed(&e),
        }
        // The analysis thread closes this camera's windows on its own tick.
        if !matches!(reopen.wait(stop, &mut || Ok(())), Ok(true)) {
            break;
        }
    }
    q.close();
}

/// Capture from a live microphone until asked to stop, reopening it with backoff after loss.
/// `each` gets every block, and `None` on a clock tick while the device is down.
#[cfg(feature = "alsa")]
pub(super) fn live_microphone(
    id: &str,
    device: &str,
    opts: &Options,
    stop: &AtomicBool,
    p: &SourceProgress,
    each: &mut dyn FnMut(Option<vitrine_sensors::AudioBlock>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    use vitrine_sensors::mic::{Microphone as Mic, Ring};
    let mut ring = Some(Ring::new());
    let mut reopen = Reopen::new(id, "microphone", p);
    while !stop.load(Ordering::Relaxed) {
        let Some(r) = ring.take() else { break };
        match Mic::open(device, r, opts.epoch) {
            Ok(mut mic) => {
                reopen.opened();
                let lost = loop {
                    if stop.load(Ordering::Relaxed) {
                        break None;
                    }
                    match mic.next_block() {
                        Ok(Some(b)) => {
                            p.overflowed.store(mic.overflowed(), Ordering::Relaxed);
                            each(Some(b))?;
                        }
                        Ok(None) => break Some("the stream ended".to_string()),
                        Err(e) => break Some(e.to_string()),
                    }
                };
                ring = Some(mic.close());
                if !reopen.ended(lost) {
                    break;
                }
            }
            Err((e, r)) => {
                ring = Some(r);
                reopen.failed(&e);
            }
        }
        // While the device is down, windows still close on the clock.
        if !reopen.wait(stop, &mut || each(None))? {
            break;
        }
    }
    Ok(())
}
