//! Recorded video through an `ffmpeg` subprocess: any container/codec ffmpeg reads (MP4/H.264,
//! AVI/MS-MPEG4, MKV, ...). ffmpeg also selects the analysis rate (`fps` filter) and size
//! (`scale`), so only the frames we analyse cross the pipe into our memory: as RGB24 at the
//! file's own size (ffmpeg's unscaled conversion is the fast one), as planar YUV 4:2:0 when
//! scaled (ffmpeg's scaled RGB output is three times slower than scaling the YUV planes and
//! converting here; measured on 768x576 → 416x312).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};

use crate::{Frame, FrameSource, Pacer, Pacing, SourceError, SourceInfo};

pub struct VideoFile {
    path: PathBuf,
    info: SourceInfo,
    child: Child,
    stdout: ChildStdout,
    index: u64,
    pacer: Pacer,
    /// Frames arrive as I420 and are converted here (scaled output); else as RGB24.
    yuv: Option<Vec<u8>>,
}

/// Width, height, frame rate and duration of a video file, from ffprobe.
pub fn probe(path: &Path) -> Result<(u32, u32, f32, Option<u64>), SourceError> {
    let what = format!("video file {}", path.display());
    if !path.is_file() {
        return Err(SourceError::Open {
            what,
            message: "no such file".into(),
            fix: "check the camera's `file` path".into(),
        });
    }
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=width,height,avg_frame_rate,r_frame_rate:format=duration",
            "-of",
            "json",
        ])
        .arg(path)
        .output()
        .map_err(|e| SourceError::Open {
            what: what.clone(),
            message: format!("cannot run ffprobe: {e}"),
            fix: "install ffmpeg (apt-get install ffmpeg)".into(),
        })?;
    if !out.status.success() {
        return Err(SourceError::Open {
            what,
            message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            fix: "the file is not a readable video; re-export it (H.264 MP4 works everywhere)"
                .into(),
        });
    }
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| SourceError::Open {
            what: what.clone(),
            message: format!("unreadable ffprobe output: {e}"),
            fix: "check the ffmpeg installation".into(),
        })?;
    let s = &v["streams"][0];
    let (w, h) = (
        s["width"].as_u64().unwrap_or(0) as u32,
        s["height"].as_u64().unwrap_or(0) as u32,
    );
    if w == 0 || h == 0 {
        return Err(SourceError::Open {
            what,
            message: "no video stream".into(),
            fix: "give a file with a video track".into(),
        });
    }
    let rate = |k: &str| -> Option<f32> {
        let r = s[k].as_str()?;
        let (n, d) = r.split_once('/')?;
        let (n, d): (f32, f32) = (n.parse().ok()?, d.parse().ok()?);
        (d > 0.0 && n > 0.0).then_some(n / d)
    };
    let fps = rate("avg_frame_rate")
        .or_else(|| rate("r_frame_rate"))
        .unwrap_or(25.0);
    let duration = v["format"]["duration"]
        .as_str()
        .and_then(|d| d.parse::<f64>().ok())
        .map(|d| (d * 1000.0) as u64);
    Ok((w, h, fps, duration))
}

/// The slowest rate delivered: a frame every ~2.8 hours (the configuration's floor,
/// `vitrine_config::MIN_FPS`; this crate does not read configuration).
pub const MIN_FPS: f32 = 1e-4;

/// How the decoder works for analysis. Every frame of an H.264 stream is decoded, even those the
/// frame-rate filter then drops, so the decoder's own cost is paid per camera-second.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Decode {
    /// ffmpeg's defaults: every frame, the in-loop deblocking filter, frame threads.
    Full,
    /// What analysis needs (the default): a picture of 720p or more, which analysis scales
    /// down at least twice per side anyway, is decoded without the deblocking filter
    /// (`-skip_loop_filter all`). Smaller pictures are decoded as in `Full`. (Skipping the
    /// frames no other frame refers to, `-skip_frame noref`, was measured and left out for
    /// files: ffmpeg's rate filter then hands over a neighbouring frame, up to two frames off
    /// its time, and that jitter cost MOT17-02's grid 9 of 72 lines; live cameras skip them
    /// exactly, see `h264::disposable`.)
    #[default]
    Analysis,
    /// One thread (no frame-threading overhead; cameras run in parallel anyway) and the
    /// deblocking filter skipped at every size (blockier edges, less CPU).
    Cheap,
}

/// Pictures at least this large (720p) are decoded without the deblocking filter for analysis.
const SKIP_DEBLOCKING_PIXELS: u64 = 1280 * 720;

/// Whether a picture of `source` pixels, analysed at `analysed` pixels (a quarter or less), is
/// decoded without the deblocking filter: its block edges are smoothed away by the scaling.
fn skip_deblocking(source: u64, analysed: u64) -> bool {
    source >= SKIP_DEBLOCKING_PIXELS && analysed.saturating_mul(4) <= source
}

impl Decode {
    /// ffmpeg's input options for a `source`-sized video delivered at `size`.
    fn input_options(self, source: (u32, u32), size: (u32, u32)) -> Vec<&'static str> {
        let pixels = |(w, h): (u32, u32)| u64::from(w) * u64::from(h);
        match self {
            Decode::Full => Vec::new(),
            Decode::Analysis if skip_deblocking(pixels(source), pixels(size)) => {
                vec!["-skip_loop_filter", "all"]
            }
            Decode::Analysis => Vec::new(),
            Decode::Cheap => vec!["-threads", "1", "-skip_loop_filter", "all"],
        }
    }
}

impl VideoFile {
    /// Open `path`, delivering `fps` frames per second (at most the file's own rate) at `size`
    /// (default: the file's).
    pub fn open(
        path: &Path,
        fps: f32,
        size: Option<(u32, u32)>,
        pacing: Pacing,
    ) -> Result<VideoFile, SourceError> {
        Self::open_with(path, fps, size, pacing, Decode::default())
    }

    /// As [`VideoFile::open`], decoding as `decode` says.
    pub fn open_with(
        path: &Path,
        fps: f32,
        size: Option<(u32, u32)>,
        pacing: Pacing,
        decode: Decode,
    ) -> Result<VideoFile, SourceError> {
        let (w0, h0, native_fps, duration_ms) = probe(path)?;
        let (width, height) = size.unwrap_or((w0 & !1, h0 & !1));
        let scaled = (width, height) != (w0, h0) && width % 2 == 0 && height % 2 == 0;
        // The floor only keeps ffmpeg's filter away from zero: a time-lapse or a slow camera
        // gets the rate it was configured at (a frame every 100 s was once the floor, and
        // a frame every 15 minutes was delivered nine times).
        let fps = fps.min(native_fps).max(MIN_FPS);
        let (filter, pix_fmt) = if scaled {
            (
                format!("fps={fps},scale={width}:{height}:flags=bilinear"),
                "yuv420p",
            )
        } else {
            (format!("fps={fps},scale={width}:{height}"), "rgb24")
        };
        let mut child = Command::new("ffmpeg")
            .args(["-nostdin", "-hide_banner", "-loglevel", "error"])
            .args(decode.input_options((w0, h0), (width, height)))
            .arg("-i")
            .arg(path)
            .args([
                "-an", "-sn", "-vf", &filter, "-f", "rawvideo", "-pix_fmt", pix_fmt, "-",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| SourceError::Open {
                what: format!("video file {}", path.display()),
                message: format!("cannot run ffmpeg: {e}"),
                fix: "install ffmpeg (apt-get install ffmpeg)".into(),
            })?;
        let stdout = child.stdout.take().ok_or_else(|| SourceError::Open {
            what: path.display().to_string(),
            message: "no pipe from ffmpeg".into(),
            fix: "retry".into(),
        })?;
        widen_pipe(&stdout, width as usize * height as usize * 3);
        Ok(VideoFile {
            path: path.to_path_buf(),
            info: SourceInfo {
                width,
                height,
                fps,
                duration_ms,
            },
            child,
            stdout,
            index: 0,
            pacer: Pacer::new(pacing),
            yuv: scaled.then(Vec::new),
        })
    }
}

/// Let the pipe hold a whole frame (up to the system's limit, 1 MiB by default): with the
/// default 64 KiB a 768x576 frame crosses in 21 rounds of wake-ups on both sides. Best effort.
fn widen_pipe(pipe: &ChildStdout, frame_bytes: usize) {
    use std::os::fd::AsRawFd;
    let want = frame_bytes.clamp(64 << 10, 1 << 20) as libc::c_int;
    // SAFETY: F_SETPIPE_SZ on a pipe descriptor we own; failure leaves the pipe as it was.
    unsafe {
        libc::fcntl(pipe.as_raw_fd(), libc::F_SETPIPE_SZ, want);
    }
}

impl VideoFile {
    /// Fill `buf` from ffmpeg; false at the end of the stream.
    fn read_exact(&mut self, buf: &mut [u8]) -> Result<bool, SourceError> {
        let mut filled = 0;
        while filled < buf.len() {
            match self.stdout.read(&mut buf[filled..]) {
                Ok(0) => return Ok(false),
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(SourceError::Read {
                        what: self.path.display().to_string(),
                        message: e.to_string(),
                    })
                }
            }
        }
        Ok(true)
    }
}

impl FrameSource for VideoFile {
    fn info(&self) -> &SourceInfo {
        &self.info
    }

    fn next_frame(&mut self) -> Result<Option<Frame>, SourceError> {
        let (w, h) = (self.info.width as usize, self.info.height as usize);
        let mut rgb = vec![0u8; w * h * 3];
        let complete = match self.yuv.take() {
            None => self.read_exact(&mut rgb)?,
            Some(mut yuv) => {
                let format = crate::convert::PixelFormat::I420;
                yuv.resize(format.frame_len(w, h).unwrap_or(0), 0);
                let complete = self.read_exact(&mut yuv)?;
                if complete {
                    crate::convert::to_rgb(format, &yuv, w, h, &mut rgb).map_err(|e| {
                        SourceError::Read {
                            what: self.path.display().to_string(),
                            message: e.to_string(),
                        }
                    })?;
                }
                self.yuv = Some(yuv);
                complete
            }
        };
        if !complete {
            // End of stream (a truncated last frame is dropped).
            let _ = self.child.wait();
            return Ok(None);
        }
        let t_ms = (self.index as f64 * 1000.0 / f64::from(self.info.fps)).round() as u64;
        self.index += 1;
        self.pacer.wait(t_ms);
        Ok(Some(Frame {
            t_ms,
            width: self.info.width,
            height: self.info.height,
            rgb,
            arrived: std::time::Instant::now(),
        }))
    }
}

impl Drop for VideoFile {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn analysis_skips_deblocking_only_for_large_pictures_scaled_down() {
        let opts = |src, size| Decode::Analysis.input_options(src, size);
        assert_eq!(opts((1920, 1080), (448, 256)), ["-skip_loop_filter", "all"]);
        assert!(
            opts((1280, 720), (640, 360)).len() == 2,
            "720p to a quarter"
        );
        assert!(
            opts((1920, 1080), (1920, 1080)).is_empty(),
            "analysed whole"
        );
        assert!(opts((960, 540), (448, 256)).is_empty(), "below 720p");
        assert!(Decode::Full
            .input_options((1920, 1080), (448, 256))
            .is_empty());
        assert_eq!(Decode::default(), Decode::Analysis);
    }
}
