//! USB/UVC cameras through V4L2, with `nokhwa`'s Linux backend: the capture mode is chosen
//! from what the device offers (`live::choose`), frames that are not due are skipped before
//! any conversion, and the rest are converted to RGB by `convert`. A read error (the camera
//! was unplugged) ends this source with an error; the agent reopens it with backoff.
//!
//! nokhwa chooses and sets the mode; the frames are read from a memory-mapped stream of the
//! `v4l` crate (the one nokhwa uses) opened with a read timeout, because nokhwa's own stream
//! has none: a camera that stays open but stops sending would block its reader forever.
//! After [`READ_TIMEOUT`] without a frame the read fails and the camera counts as lost.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nokhwa::backends::capture::V4LCaptureDevice;
use nokhwa::camera_traits::CaptureBackendTrait;
use nokhwa::utils::{
    ApiBackend, CameraFormat, CameraIndex, FrameFormat, RequestedFormat, RequestedFormatType,
    Resolution,
};

use v4l::io::traits::CaptureStream;

use crate::convert::{to_rgb, PixelFormat};
use crate::live::{choose, frame_at_size, Choice, LiveRequest, Offer, RateGate};
use crate::{Frame, FrameSource, SourceError, SourceInfo};

const ALL: [FrameFormat; 6] = [
    FrameFormat::MJPEG,
    FrameFormat::YUYV,
    FrameFormat::NV12,
    FrameFormat::GRAY,
    FrameFormat::RAWRGB,
    FrameFormat::RAWBGR,
];

fn pixel(f: FrameFormat) -> PixelFormat {
    match f {
        FrameFormat::MJPEG => PixelFormat::Mjpeg,
        FrameFormat::YUYV => PixelFormat::Yuyv,
        FrameFormat::NV12 => PixelFormat::Nv12,
        FrameFormat::GRAY => PixelFormat::Gray,
        FrameFormat::RAWRGB => PixelFormat::Rgb24,
        FrameFormat::RAWBGR => PixelFormat::Bgr24,
    }
}

fn frame_format(p: PixelFormat) -> Option<FrameFormat> {
    ALL.iter().copied().find(|f| pixel(*f) == p)
}

/// `/dev/video2` (or a udev symlink such as `/dev/v4l/by-id/...`) to V4L2 index 2.
pub fn device_index(device: &Path) -> Result<u32, SourceError> {
    let what = format!("camera {}", device.display());
    let real = std::fs::canonicalize(device).map_err(|e| SourceError::Open {
        what: what.clone(),
        message: format!("{e}"),
        fix: "plug the camera in, or set `device` to a node `vitrine probe` lists".into(),
    })?;
    real.file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix("video"))
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| SourceError::Open {
            what,
            message: format!("{} is not a V4L2 video node", real.display()),
            fix: "use a /dev/videoN node (see `vitrine probe`)".into(),
        })
}

fn open_err(what: &str, e: impl std::fmt::Display) -> SourceError {
    let message = e.to_string();
    let fix = if message.contains("ermission") {
        "give the agent access to the camera: add its user to group `video` (the packaged service has DeviceAllow=char-video4linux)"
    } else if message.contains("busy") || message.contains("Busy") {
        "another program holds the camera: stop it (`fuser /dev/videoN`)"
    } else {
        "check the camera with `vitrine probe`; replug it if it is listed without formats"
    };
    SourceError::Open {
        what: what.to_string(),
        message,
        fix: fix.to_string(),
    }
}

fn open_device(index: u32, what: &str) -> Result<V4LCaptureDevice<'static>, SourceError> {
    V4LCaptureDevice::new(
        &CameraIndex::Index(index),
        RequestedFormat::with_formats(RequestedFormatType::None, &ALL),
    )
    .map_err(|e| open_err(what, e))
}

fn offers(dev: &mut V4LCaptureDevice<'static>, what: &str) -> Result<Vec<Offer>, SourceError> {
    let mut out = Vec::new();
    for ff in dev.compatible_fourcc().map_err(|e| open_err(what, e))? {
        let by_res = dev
            .compatible_list_by_resolution(ff)
            .map_err(|e| open_err(what, e))?;
        for (res, mut fps) in by_res {
            fps.sort_unstable();
            fps.dedup();
            out.push(Offer {
                format: pixel(ff),
                width: res.width(),
                height: res.height(),
                fps,
            });
        }
    }
    out.sort_by_key(|o| (o.format.name(), o.width, o.height));
    Ok(out)
}

/// How long a read waits for the next frame before the camera counts as lost.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Buffers of the memory-mapped capture stream (nokhwa uses 4 too).
const BUFFERS: u32 = 4;

pub struct V4l2Camera {
    // Field order is drop order: the stream is stopped before the device handles close.
    stream: v4l::io::mmap::Stream<'static>,
    _capture: v4l::Device,
    /// nokhwa's handle, which set the mode; kept open so the mode stays while we stream.
    _dev: V4LCaptureDevice<'static>,
    what: String,
    choice: Choice,
    req: LiveRequest,
    info: SourceInfo,
    gate: RateGate,
    rgb: Vec<u8>,
    scratch: Vec<u8>,
    corrupt: u64,
}

impl V4l2Camera {
    /// Open `device`, choose a capture mode for `req` and start streaming.
    pub fn open(device: &Path, req: &LiveRequest) -> Result<V4l2Camera, SourceError> {
        let what = format!("camera {}", device.display());
        let index = device_index(device)?;
        let mut dev = open_device(index, &what)?;
        let offered = offers(&mut dev, &what)?;
        let choice = choose(&offered, req).map_err(|message| SourceError::Open {
            what: what.clone(),
            message,
            fix: "see `vitrine probe` for the modes this camera offers".into(),
        })?;
        let ff =
            frame_format(choice.format).ok_or_else(|| open_err(&what, "unsupported format"))?;
        dev.set_camera_format(CameraFormat::new(
            Resolution::new(choice.width, choice.height),
            ff,
            choice.fps,
        ))
        .map_err(|e| open_err(&what, e))?;
        let capture = v4l::Device::new(index as usize).map_err(|e| open_err(&what, e))?;
        let mut stream =
            v4l::io::mmap::Stream::with_buffers(&capture, v4l::buffer::Type::VideoCapture, BUFFERS)
                .map_err(|e| open_err(&what, e))?;
        stream.set_timeout(READ_TIMEOUT);
        tracing::info!(
            camera = %device.display(),
            format = %choice.format,
            width = choice.width,
            height = choice.height,
            fps = choice.fps,
            "camera streaming"
        );
        let (w, h) = req.size.unwrap_or((choice.width, choice.height));
        Ok(V4l2Camera {
            stream,
            _capture: capture,
            _dev: dev,
            what,
            choice,
            req: req.clone(),
            info: SourceInfo {
                width: w,
                height: h,
                fps: req.fps.min(choice.fps as f32),
                duration_ms: None,
            },
            gate: RateGate::new(req.fps),
            rgb: Vec::new(),
            scratch: Vec::new(),
            corrupt: 0,
        })
    }

    /// The capture mode in use.
    pub fn choice(&self) -> Choice {
        self.choice
    }

    /// Frames the camera sent that could not be converted (corrupt MJPEG, short buffers).
    pub fn corrupt_frames(&self) -> u64 {
        self.corrupt
    }
}

impl FrameSource for V4l2Camera {
    fn info(&self) -> &SourceInfo {
        &self.info
    }

    fn next_frame(&mut self) -> Result<Option<Frame>, SourceError> {
        loop {
            let raw = match self.stream.next() {
                Ok((data, _)) => data,
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                    return Err(SourceError::Read {
                        what: self.what.clone(),
                        message: format!(
                            "no frame for {} s: the camera is open but stopped sending",
                            READ_TIMEOUT.as_secs()
                        ),
                    })
                }
                Err(e) => {
                    return Err(SourceError::Read {
                        what: self.what.clone(),
                        message: e.to_string(),
                    })
                }
            };
            let now = self.req.epoch.elapsed();
            if !self.gate.admit(now) {
                continue;
            }
            let (w, h) = (self.choice.width, self.choice.height);
            match to_rgb(
                self.choice.format,
                raw,
                w as usize,
                h as usize,
                &mut self.rgb,
            ) {
                Ok(()) => {
                    let t_ms = now.as_millis() as u64;
                    return Ok(Some(frame_at_size(
                        t_ms,
                        &self.rgb,
                        w,
                        h,
                        self.req.size,
                        &mut self.scratch,
                    )));
                }
                Err(e) => {
                    // A glitched USB transfer: skip the frame, count it, say so (rate-limited).
                    self.corrupt += 1;
                    if self.corrupt.is_power_of_two() {
                        tracing::warn!(camera = %self.what, corrupt = self.corrupt, "skipped a frame: {e}");
                    }
                }
            }
        }
    }
}

/// One V4L2 node as `vitrine probe` shows it.
#[derive(Debug, Clone)]
pub struct CameraReport {
    pub path: PathBuf,
    pub name: String,
    /// The modes it offers, or why they could not be read (metadata nodes, busy devices).
    pub offers: Result<Vec<Offer>, String>,
}

/// List the V4L2 capture nodes of this machine with their modes.
pub fn probe() -> Result<Vec<CameraReport>, SourceError> {
    let started = Instant::now();
    let infos = nokhwa::query(ApiBackend::Video4Linux).map_err(|e| SourceError::Open {
        what: "V4L2 cameras".into(),
        message: e.to_string(),
        fix: "check that /dev/video* exists and is readable".into(),
    })?;
    let mut out = Vec::new();
    for info in infos {
        let Ok(index) = info.index().as_index() else {
            continue;
        };
        let path = PathBuf::from(format!("/dev/video{index}"));
        let what = format!("camera {}", path.display());
        let offers = open_device(index, &what)
            .and_then(|mut d| offers(&mut d, &what))
            .map_err(|e| match e {
                SourceError::Open { message, .. } if message.contains("Fufill") => {
                    "no capture formats (a metadata node; use the camera's other node)".into()
                }
                other => other.to_string(),
            });
        out.push(CameraReport {
            path,
            name: info.human_name(),
            offers,
        });
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    tracing::debug!(
        took_ms = started.elapsed().as_millis() as u64,
        "probed cameras"
    );
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_device_is_a_clear_open_error() {
        let e = V4l2Camera::open(
            Path::new("/dev/video-vitrine-missing"),
            &LiveRequest::new(5.0, None, Instant::now()),
        )
        .err()
        .expect("no such device");
        let s = e.to_string();
        assert!(s.contains("/dev/video-vitrine-missing"), "{s}");
        assert!(s.contains("vitrine probe"), "{s}");
    }

    #[test]
    fn a_node_that_is_not_video_is_named() {
        let e = device_index(Path::new("/dev/null"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a V4L2 video node"), "{e}");
    }

    #[test]
    fn format_mapping_round_trips() {
        for f in ALL {
            assert_eq!(frame_format(pixel(f)), Some(f));
        }
        assert_eq!(frame_format(PixelFormat::I420), None);
    }
}
