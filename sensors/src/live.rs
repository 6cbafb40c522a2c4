//! Pieces shared by the live sources (V4L2, RTSP, microphone): the clock they stamp frames
//! with, frame-rate gating (a camera sending 30 fps analysed at 5 fps converts only the frames
//! that are due), the analysis-size step, and the format choice for cameras that offer many.
//! All pure; unit-tested without a device.

use std::time::{Duration, Instant};

use crate::convert::{resize_rgb, PixelFormat};
use crate::Frame;

/// What a live camera is asked for (from the camera's config).
#[derive(Debug, Clone, PartialEq)]
pub struct LiveRequest {
    /// Frames analysed per second; extra frames are skipped before conversion.
    pub fps: f32,
    /// Analysis resolution; `None` keeps the camera's (V4L2 asks for 640x480 then).
    pub size: Option<(u32, u32)>,
    /// A pixel format the installer insists on (`format = "mjpeg"`); `None` chooses.
    pub format: Option<PixelFormat>,
    /// Media time 0 of the pipeline: frames are stamped with the time since then, so a
    /// source reopened after an outage continues the same timeline.
    pub epoch: Instant,
}

impl LiveRequest {
    pub fn new(fps: f32, size: Option<(u32, u32)>, epoch: Instant) -> LiveRequest {
        LiveRequest {
            fps,
            size,
            format: None,
            epoch,
        }
    }

    pub fn t_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }
}

/// Admits frames at a target rate from a faster stream ("frame skipping").
#[derive(Debug, Clone)]
pub struct RateGate {
    every: Duration,
    next: Option<Duration>,
}

impl RateGate {
    pub fn new(fps: f32) -> RateGate {
        RateGate {
            every: Duration::from_secs_f32(1.0 / fps.max(crate::video_file::MIN_FPS)),
            next: None,
        }
    }

    /// Whether a frame arriving at `now` (since the epoch) is due. Tolerates an eighth of a
    /// period of jitter so a 25 fps camera analysed at 5 fps takes every 5th frame, not every 6th.
    pub fn admit(&mut self, now: Duration) -> bool {
        let slack = self.every / 8;
        match self.next {
            Some(next) if now + slack < next => false,
            Some(next) => {
                let mut n = next + self.every;
                if n + slack < now {
                    // Far behind (an outage): restart the schedule instead of bursting.
                    n = now + self.every;
                }
                self.next = Some(n);
                true
            }
            None => {
                self.next = Some(now + self.every);
                true
            }
        }
    }
}

/// Wrap converted RGB into a frame at the analysis size.
pub fn frame_at_size(
    t_ms: u64,
    rgb: &[u8],
    w: u32,
    h: u32,
    size: Option<(u32, u32)>,
    scratch: &mut Vec<u8>,
) -> Frame {
    match size {
        Some((dw, dh)) if (dw, dh) != (w, h) => {
            resize_rgb(
                rgb,
                w as usize,
                h as usize,
                dw as usize,
                dh as usize,
                scratch,
            );
            Frame {
                t_ms,
                width: dw,
                height: dh,
                rgb: std::mem::take(scratch),
                arrived: std::time::Instant::now(),
            }
        }
        _ => Frame {
            t_ms,
            width: w,
            height: h,
            rgb: rgb[..(w * h * 3) as usize].to_vec(),
            arrived: std::time::Instant::now(),
        },
    }
}

/// One capture mode a camera offers.
#[derive(Debug, Clone, PartialEq)]
pub struct Offer {
    pub format: PixelFormat,
    pub width: u32,
    pub height: u32,
    /// Frame rates offered at this size (whole fps).
    pub fps: Vec<u32>,
}

/// The capture mode chosen for a request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Choice {
    pub format: PixelFormat,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
}

/// The formats Vitrine converts, in order of preference at equal size.
pub const CONVERTIBLE: [PixelFormat; 6] = [
    PixelFormat::Yuyv,
    PixelFormat::Nv12,
    PixelFormat::Mjpeg,
    PixelFormat::Rgb24,
    PixelFormat::Bgr24,
    PixelFormat::Gray,
];

/// Choose a capture mode: the requested format if set (an error naming what the camera
/// offers when it is missing: never a silent substitute), the size closest to the analysis
/// size (default 640x480: detection needs no more), a rate at least the analysis rate, and at
/// equal size the cheapest format to convert (uncompressed up to 640x480, where USB 2 keeps up;
/// MJPEG above, where uncompressed frames usually come at a crawl).
pub fn choose(offers: &[Offer], req: &LiveRequest) -> Result<Choice, String> {
    let usable: Vec<&Offer> = offers
        .iter()
        .filter(|o| CONVERTIBLE.contains(&o.format) && !o.fps.is_empty())
        .collect();
    let listed = || {
        let mut v: Vec<String> = offers
            .iter()
            .map(|o| format!("{} {}x{}", o.format, o.width, o.height))
            .collect();
        v.dedup();
        if v.is_empty() {
            "nothing".to_string()
        } else {
            v.join(", ")
        }
    };
    let candidates: Vec<&Offer> = match req.format {
        Some(f) => usable.iter().copied().filter(|o| o.format == f).collect(),
        None => usable.clone(),
    };
    if candidates.is_empty() {
        return Err(match req.format {
            Some(f) => format!(
                "the camera does not offer {f} (it offers: {}); remove `format` or set one of those",
                listed()
            ),
            None => format!(
                "the camera offers no format Vitrine converts (it offers: {}); Vitrine takes MJPEG, YUYV, NV12, RGB or GRAY",
                listed()
            ),
        });
    }
    let (tw, th) = req.size.unwrap_or((640, 480));
    let want_fps = req.fps.ceil() as u32;
    let score = |o: &Offer| {
        let dist = (i64::from(o.width) - i64::from(tw)).abs()
            + (i64::from(o.height) - i64::from(th)).abs();
        // Smaller than asked costs more than larger (detail is lost, not just time).
        let small = i64::from(o.width < tw || o.height < th);
        let fast_enough = o.fps.iter().any(|&f| f >= want_fps);
        let pref = if o.width * o.height > 640 * 480 {
            // Large frames: MJPEG first.
            match o.format {
                PixelFormat::Mjpeg => 0,
                _ => 1 + CONVERTIBLE.iter().position(|f| *f == o.format).unwrap_or(9),
            }
        } else {
            CONVERTIBLE.iter().position(|f| *f == o.format).unwrap_or(9)
        };
        (!fast_enough, small, dist, pref)
    };
    let best = candidates
        .iter()
        .min_by_key(|o| score(o))
        .ok_or_else(|| "no capture mode".to_string())?;
    let fps = best
        .fps
        .iter()
        .copied()
        .filter(|&f| f >= want_fps)
        .min()
        .or_else(|| best.fps.iter().copied().max())
        .unwrap_or(want_fps);
    Ok(Choice {
        format: best.format,
        width: best.width,
        height: best.height,
        fps,
    })
}

/// Exponential backoff for reopening a lost source: 1 s, 2 s, 4 s ... capped.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    pub fn new(max: Duration) -> Backoff {
        Backoff {
            next: Duration::from_secs(1).min(max),
            max,
        }
    }

    /// The wait before the next attempt (and doubles the one after).
    pub fn next_wait(&mut self) -> Duration {
        let w = self.next;
        self.next = (self.next * 2).min(self.max);
        w
    }

    /// A successful (re)open: start again from the shortest wait.
    pub fn reset(&mut self) {
        self.next = Duration::from_secs(1).min(self.max);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(fps: f32, size: Option<(u32, u32)>, format: Option<PixelFormat>) -> LiveRequest {
        LiveRequest {
            fps,
            size,
            format,
            epoch: Instant::now(),
        }
    }

    fn webcam() -> Vec<Offer> {
        vec![
            Offer {
                format: PixelFormat::Mjpeg,
                width: 1920,
                height: 1080,
                fps: vec![30, 15],
            },
            Offer {
                format: PixelFormat::Mjpeg,
                width: 640,
                height: 480,
                fps: vec![30],
            },
            Offer {
                format: PixelFormat::Yuyv,
                width: 640,
                height: 480,
                fps: vec![30, 15],
            },
            Offer {
                format: PixelFormat::Yuyv,
                width: 1920,
                height: 1080,
                fps: vec![5],
            },
        ]
    }

    #[test]
    fn default_request_takes_yuyv_at_640x480_with_the_lowest_sufficient_rate() {
        let c = choose(&webcam(), &req(5.0, None, None)).unwrap();
        assert_eq!(
            c,
            Choice {
                format: PixelFormat::Yuyv,
                width: 640,
                height: 480,
                fps: 15
            }
        );
    }

    #[test]
    fn full_hd_at_10_fps_takes_mjpeg_because_yuyv_is_too_slow_there() {
        let c = choose(&webcam(), &req(10.0, Some((1920, 1080)), None)).unwrap();
        assert_eq!((c.format, c.width, c.fps), (PixelFormat::Mjpeg, 1920, 15));
    }

    #[test]
    fn a_required_format_is_honoured_or_named_as_missing() {
        let c = choose(&webcam(), &req(5.0, None, Some(PixelFormat::Mjpeg))).unwrap();
        assert_eq!((c.format, c.width), (PixelFormat::Mjpeg, 640));
        let e = choose(&webcam(), &req(5.0, None, Some(PixelFormat::Nv12))).unwrap_err();
        assert!(e.contains("does not offer nv12"), "{e}");
        assert!(e.contains("mjpeg 1920x1080"), "{e}");
    }

    #[test]
    fn a_camera_with_nothing_convertible_is_an_error_listing_its_offers() {
        let e = choose(&[], &req(5.0, None, None)).unwrap_err();
        assert!(e.contains("offers: nothing"), "{e}");
    }

    #[test]
    fn rate_gate_takes_every_fifth_frame_of_25_fps_for_5_fps() {
        let mut g = RateGate::new(5.0);
        let taken: Vec<u64> = (0..50u64)
            .filter(|i| g.admit(Duration::from_millis(i * 40)))
            .collect();
        assert_eq!(taken, vec![0, 5, 10, 15, 20, 25, 30, 35, 40, 45]);
    }

    #[test]
    fn rate_gate_does_not_burst_after_an_outage() {
        let mut g = RateGate::new(5.0);
        assert!(g.admit(Duration::from_millis(0)));
        assert!(g.admit(Duration::from_secs(10)));
        assert!(!g.admit(Duration::from_millis(10_040)));
        assert!(g.admit(Duration::from_millis(10_200)));
    }

    #[test]
    fn backoff_doubles_to_its_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_secs(5));
        let w: Vec<u64> = (0..5).map(|_| b.next_wait().as_secs()).collect();
        assert_eq!(w, vec![1, 2, 4, 5, 5]);
        b.reset();
        assert_eq!(b.next_wait().as_secs(), 1);
    }

    #[test]
    fn frames_are_resized_to_the_analysis_size() {
        let rgb = vec![7u8; 64 * 48 * 3];
        let mut scratch = Vec::new();
        let f = frame_at_size(5, &rgb, 64, 48, Some((32, 24)), &mut scratch);
        assert_eq!((f.width, f.height, f.rgb.len()), (32, 24, 32 * 24 * 3));
        let f = frame_at_size(5, &rgb, 64, 48, None, &mut scratch);
        assert_eq!((f.width, f.rgb.len()), (64, 64 * 48 * 3));
    }
}
