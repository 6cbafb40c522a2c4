//! The H.264 decoders an RTSP camera's frames can go through, and the chain that picks one.
//!
//! - `openh264`: Cisco's decoder, in process, built from its bundled source: always there.
//! - `ffmpeg`: ffmpeg's own software decoder in a child process (about half of openh264's CPU
//!   per frame: `vitrine probe --rtsp` measures both), fed the Annex B access units retina
//!   demuxes and read back as I420 pictures through pipes.
//! - `vaapi`: ffmpeg with VAAPI (Intel/AMD graphics, `/dev/dri/renderD*`).
//! - `v4l2m2m`: ffmpeg's `h264_v4l2m2m` (a V4L2 memory-to-memory decoder: the Raspberry Pi 4's
//!   codec block, other SoCs' stateful decoders; the Pi 5 has none for H.264).
//! - `rkmpp`: `h264_rkmpp` of an ffmpeg built with Rockchip's MPP (RK3588/RK3568 boxes; Debian's
//!   ffmpeg has no MPP: point `$VITRINE_FFMPEG` at ffmpeg-rockchip or jellyfin-ffmpeg).
//!
//! `auto` tries the hardware decoders the box has, then ffmpeg, then openh264; a decoder that
//! does not start, ends, or gives no picture hands over to the next one (logged; the decoder in
//! use is what `probe`, the status screen and the metrics show). A decoder named in the config is
//! tried first, with the software ones behind it: a store keeps counting when a driver breaks.
//! ffmpeg is found on `PATH`, or at `$VITRINE_FFMPEG`.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError, TrySendError};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;

use openh264::decoder::{DecodedYUV, Decoder, DecoderConfig, Flush};
use openh264::formats::YUVSource;
use openh264::OpenH264API;

use crate::convert::i420_to_rgb;

/// One H.264 decoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DecoderKind {
    Vaapi,
    V4l2m2m,
    Rkmpp,
    Ffmpeg,
    Openh264,
}

impl DecoderKind {
    pub const ALL: [DecoderKind; 5] = [
        DecoderKind::Vaapi,
        DecoderKind::V4l2m2m,
        DecoderKind::Rkmpp,
        DecoderKind::Ffmpeg,
        DecoderKind::Openh264,
    ];

    /// The config's spelling (`decoder = "vaapi"`).
    pub fn name(self) -> &'static str {
        match self {
            DecoderKind::Vaapi => "vaapi",
            DecoderKind::V4l2m2m => "v4l2m2m",
            DecoderKind::Rkmpp => "rkmpp",
            DecoderKind::Ffmpeg => "ffmpeg",
            DecoderKind::Openh264 => "openh264",
        }
    }

    /// What logs, `probe`, the status screen and the metrics show.
    pub fn describe(self) -> &'static str {
        match self {
            DecoderKind::Vaapi => "vaapi (hardware, via ffmpeg)",
            DecoderKind::V4l2m2m => "v4l2m2m (hardware, via ffmpeg)",
            DecoderKind::Rkmpp => "rkmpp (hardware, via ffmpeg)",
            DecoderKind::Ffmpeg => "ffmpeg (software)",
            DecoderKind::Openh264 => "openh264 (software)",
        }
    }

    pub fn hardware(self) -> bool {
        matches!(
            self,
            DecoderKind::Vaapi | DecoderKind::V4l2m2m | DecoderKind::Rkmpp
        )
    }

    /// ffmpeg's arguments before `-i` that select this decoder.
    fn input_args(self, device: &str) -> Vec<String> {
        match self {
            DecoderKind::Vaapi => ["-hwaccel", "vaapi", "-hwaccel_device", device]
                .map(String::from)
                .to_vec(),
            DecoderKind::V4l2m2m => ["-c:v", "h264_v4l2m2m"].map(String::from).to_vec(),
            DecoderKind::Rkmpp => ["-c:v", "h264_rkmpp"].map(String::from).to_vec(),
            DecoderKind::Ffmpeg | DecoderKind::Openh264 => Vec::new(),
        }
    }
}

/// What a camera asks for (`[[cameras]] decoder`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DecoderChoice {
    /// Hardware where present, then ffmpeg, then openh264.
    #[default]
    Auto,
    /// This one first; the software decoders behind it.
    Prefer(DecoderKind),
}

/// The order decoders are tried in for `choice`, given what this box has.
pub fn chain(
    choice: DecoderChoice,
    present: &[(DecoderKind, Result<String, String>)],
) -> Vec<DecoderKind> {
    let has = |k: DecoderKind| present.iter().any(|(p, r)| *p == k && r.is_ok());
    let mut out = match choice {
        DecoderChoice::Auto => DecoderKind::ALL
            .iter()
            .copied()
            .filter(|k| has(*k))
            .collect(),
        DecoderChoice::Prefer(k) => vec![k],
    };
    for soft in [DecoderKind::Ffmpeg, DecoderKind::Openh264] {
        if !out.contains(&soft) && (soft == DecoderKind::Openh264 || has(soft)) {
            out.push(soft);
        }
    }
    out
}

/// The ffmpeg this process runs: `$VITRINE_FFMPEG`, else `ffmpeg` on `PATH`.
pub fn ffmpeg_program() -> PathBuf {
    std::env::var_os("VITRINE_FFMPEG")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("ffmpeg"))
}

/// ffmpeg's hardware acceleration methods and H.264 decoders, asked once per process.
fn ffmpeg_caps() -> &'static Result<(String, String), String> {
    static CAPS: OnceLock<Result<(String, String), String>> = OnceLock::new();
    CAPS.get_or_init(|| {
        let ask = |what: &str| {
            Command::new(ffmpeg_program())
                .args(["-hide_banner", what])
                .stdin(Stdio::null())
                .stderr(Stdio::null())
                .output()
                .map_err(|e| format!("cannot run {}: {e}", ffmpeg_program().display()))
                .and_then(|o| {
                    if o.status.success() {
                        Ok(String::from_utf8_lossy(&o.stdout).into_owned())
                    } else {
                        Err(format!("{} {what} failed", ffmpeg_program().display()))
                    }
                })
        };
        Ok((ask("-hwaccels")?, ask("-decoders")?))
    })
}

/// The first VAAPI render node (`/dev/dri/renderD128` on a box with one GPU).
fn render_node() -> Option<String> {
    let mut nodes: Vec<String> = std::fs::read_dir("/dev/dri")
        .ok()?
        .flatten()
        .map(|e| e.path().to_string_lossy().into_owned())
        .filter(|p| p.contains("renderD"))
        .collect();
    nodes.sort();
    nodes.into_iter().next()
}

/// A V4L2 memory-to-memory decoder's device, by the name its driver gives it
/// (`bcm2835-codec-decode` on a Raspberry Pi 4; other SoCs' decoders name themselves `*dec*`).
fn m2m_decoder() -> Option<String> {
    let mut found: Vec<(String, String)> = std::fs::read_dir("/sys/class/video4linux")
        .ok()?
        .flatten()
        .filter_map(|e| {
            let name = std::fs::read_to_string(e.path().join("name")).ok()?;
            let dev = format!("/dev/{}", e.file_name().to_string_lossy());
            Some((dev, name.trim().to_string()))
        })
        .filter(|(_, n)| n.to_ascii_lowercase().contains("dec"))
        .collect();
    found.sort();
    found.into_iter().next().map(|(d, n)| format!("{d} ({n})"))
}

/// Rockchip's MPP service device.
const MPP_DEVICE: &str = "/dev/mpp_service";

/// Each decoder and whether this box can run it: `Ok(what it uses)` or `Err(why not)`.
pub fn survey() -> Vec<(DecoderKind, Result<String, String>)> {
    let caps = ffmpeg_caps();
    DecoderKind::ALL
        .iter()
        .map(|&k| {
            let r = match (k, caps) {
                (DecoderKind::Openh264, _) => Ok("built in".to_string()),
                (_, Err(e)) => Err(format!("{e} (install ffmpeg)")),
                (DecoderKind::Ffmpeg, Ok(_)) => Ok(ffmpeg_program().display().to_string()),
                (DecoderKind::Vaapi, Ok((hw, _))) if !hw.lines().any(|l| l.trim() == "vaapi") => {
                    Err("this ffmpeg was built without VAAPI".into())
                }
                (DecoderKind::Vaapi, Ok(_)) => render_node()
                    .ok_or_else(|| "no /dev/dri/renderD* (no Intel/AMD graphics driver)".into()),
                (DecoderKind::V4l2m2m, Ok((_, dec))) if !dec.contains("h264_v4l2m2m") => {
                    Err("this ffmpeg has no h264_v4l2m2m decoder".into())
                }
                (DecoderKind::V4l2m2m, Ok(_)) => {
                    m2m_decoder().ok_or_else(|| "no V4L2 memory-to-memory decoder device".into())
                }
                (DecoderKind::Rkmpp, Ok((_, dec))) if !dec.contains("h264_rkmpp") => Err(
                    "this ffmpeg has no h264_rkmpp decoder (Rockchip boxes: ffmpeg-rockchip)"
                        .into(),
                ),
                (DecoderKind::Rkmpp, Ok(_)) => std::path::Path::new(MPP_DEVICE)
                    .exists()
                    .then(|| MPP_DEVICE.to_string())
                    .ok_or_else(|| format!("no {MPP_DEVICE} (not a Rockchip SoC)")),
            };
            (k, r)
        })
        .collect()
}

/// Access units queued for ffmpeg's input (about a second of a 25 fps stream).
const FEED_QUEUE: usize = 32;
/// Decoded pictures queued for the camera's thread.
const PICTURE_QUEUE: usize = 2;
/// Access units after which a decoder that gave no picture counts as broken.
pub const NO_PICTURE_LIMIT: u64 = 60;
/// A decoder that gives no picture this long while the stream flows counts as hung.
pub const DECODER_STALL: std::time::Duration = std::time::Duration::from_secs(10);

/// I420 bytes of a `w`x`h` picture (chroma planes rounded up, as ffmpeg's `yuv420p`).
pub fn i420_len(w: u32, h: u32) -> usize {
    let (w, h) = (w as usize, h as usize);
    w * h + 2 * w.div_ceil(2) * h.div_ceil(2)
}

/// ffmpeg decoding H.264 from its stdin to I420 pictures of a fixed size on its stdout; two
/// threads move the bytes so that neither pipe can block the camera's thread.
pub struct FfmpegPipe {
    kind: DecoderKind,
    child: Child,
    width: u32,
    height: u32,
    feed: Option<SyncSender<Vec<u8>>>,
    /// `None` only while dropping: the reader thread may be blocked handing over a picture,
    /// and is released by dropping this end before it is joined.
    pictures: Option<Receiver<Vec<u8>>>,
    spare: SyncSender<Vec<u8>>,
    stderr: Arc<Mutex<String>>,
    threads: Vec<JoinHandle<()>>,
    stderr_thread: Option<JoinHandle<()>>,
    pub pushed: u64,
    pub received: u64,
    /// When the last picture came (or the decoder started), and `pushed` then.
    last_picture: std::time::Instant,
    pushed_then: u64,
}

impl FfmpegPipe {
    pub fn start(
        kind: DecoderKind,
        device: &str,
        width: u32,
        height: u32,
    ) -> Result<FfmpegPipe, String> {
        if width == 0 || height == 0 {
            return Err("the stream did not announce its picture size".into());
        }
        let mut cmd = Command::new(ffmpeg_program());
        cmd.args(["-hide_banner", "-nostdin", "-v", "error", "-threads", "2"])
            // Probe one access unit, no more: the stream's size is known from its SDP. (Not
            // `-fflags nobuffer`: with a pipe it holds pictures back until the next keyframe.)
            .args(["-flags", "low_delay", "-probesize", "32"])
            .args(kind.input_args(device))
            .args(["-f", "h264", "-i", "pipe:0", "-map", "0:v:0"])
            .args(["-fps_mode", "passthrough", "-pix_fmt", "yuv420p"])
            .args([
                "-s",
                &format!("{width}x{height}"),
                "-f",
                "rawvideo",
                "pipe:1",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", ffmpeg_program().display()))?;
        let (stdin, stdout, stderr) =
            match (child.stdin.take(), child.stdout.take(), child.stderr.take()) {
                (Some(i), Some(o), Some(e)) => (i, o, e),
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err("ffmpeg started without its pipes".into());
                }
            };
        let (feed, feed_rx) = mpsc::sync_channel::<Vec<u8>>(FEED_QUEUE);
        let (pic_tx, pictures) = mpsc::sync_channel::<Vec<u8>>(PICTURE_QUEUE);
        let (spare, spare_rx) = mpsc::sync_channel::<Vec<u8>>(PICTURE_QUEUE + 1);
        let tail = Arc::new(Mutex::new(String::new()));
        let len = i420_len(width, height);
        let spawn = |name: &str, f: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(name.to_string())
                .spawn(f)
                .map_err(|e| format!("cannot start a decoder thread: {e}"))
        };
        let threads = vec![
            spawn("h264-feed", Box::new(move || write_units(stdin, feed_rx)))?,
            spawn(
                "h264-pictures",
                Box::new(move || read_pictures(stdout, len, pic_tx, spare_rx)),
            )?,
        ];
        let stderr_thread = Some(spawn("h264-stderr", {
            let tail = Arc::clone(&tail);
            Box::new(move || keep_tail(stderr, &tail))
        })?);
        Ok(FfmpegPipe {
            kind,
            child,
            width,
            height,
            feed: Some(feed),
            pictures: Some(pictures),
            spare,
            stderr: tail,
            threads,
            stderr_thread,
            pushed: 0,
            received: 0,
            last_picture: std::time::Instant::now(),
            pushed_then: 0,
        })
    }

    pub fn kind(&self) -> DecoderKind {
        self.kind
    }

    /// Queue one access unit. `Ok(false)`: the queue is full (ffmpeg is behind) and the unit was
    /// dropped: the caller waits for the next keyframe.
    pub fn push(&mut self, unit: &[u8]) -> Result<bool, String> {
        let Some(feed) = &self.feed else {
            return Err(self.ended());
        };
        match feed.try_send(unit.to_vec()) {
            Ok(()) => {
                self.pushed += 1;
                Ok(true)
            }
            Err(TrySendError::Full(_)) => Ok(false),
            Err(TrySendError::Disconnected(_)) => Err(self.ended()),
        }
    }

    /// The next decoded picture (I420, `width`x`height`), if one is ready. Give it back with
    /// `recycle`.
    pub fn picture(&mut self) -> Result<Option<Vec<u8>>, String> {
        let Some(pictures) = &self.pictures else {
            return Err(self.ended());
        };
        match pictures.try_recv() {
            Ok(p) => {
                self.received += 1;
                self.last_picture = std::time::Instant::now();
                self.pushed_then = self.pushed;
                Ok(Some(p))
            }
            Err(TryRecvError::Empty) => Ok(None),
            Err(TryRecvError::Disconnected) => Err(self.ended()),
        }
    }

    /// Why this decoder counts as broken although it runs: no picture from the first
    /// `NO_PICTURE_LIMIT` access units, or none for `DECODER_STALL` since the last.
    pub fn stuck(&self) -> Option<String> {
        if self.received == 0 && self.pushed >= NO_PICTURE_LIMIT {
            return Some(format!("no picture from {} access units", self.pushed));
        }
        // Units kept coming meanwhile (a paused stream is the stall check's business).
        let quiet = self.last_picture.elapsed();
        (self.pushed - self.pushed_then >= NO_PICTURE_LIMIT && quiet > DECODER_STALL)
            .then(|| format!("no picture for {} s", quiet.as_secs()))
    }

    pub fn recycle(&self, buf: Vec<u8>) {
        let _ = self.spare.try_send(buf);
    }

    pub fn size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    /// CPU seconds the ffmpeg process has used (user + system), from /proc.
    pub fn cpu_secs(&self) -> Option<f64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).ok()?;
        // Fields after the command name (which may hold spaces) start after the last ')'.
        let rest = stat.rsplit_once(')')?.1;
        let f: Vec<&str> = rest.split_whitespace().collect();
        let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
        // SAFETY: sysconf only reads a system constant.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        (hz > 0).then(|| ticks / hz as f64)
    }

    fn ended(&mut self) -> String {
        // ffmpeg closed a pipe: it is exiting. Its last words are on stderr, read to the end
        // once it has exited.
        let t = std::time::Instant::now();
        let mut status = None;
        while status.is_none() && t.elapsed() < std::time::Duration::from_millis(500) {
            status = self.child.try_wait().ok().flatten();
            if status.is_none() {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
        if status.is_some() {
            if let Some(h) = self.stderr_thread.take() {
                let _ = h.join();
            }
        }
        let tail = self
            .stderr
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .trim()
            .to_string();
        let how = match status {
            Some(s) => format!("ffmpeg ended ({s})"),
            None => "ffmpeg stopped answering".to_string(),
        };
        if tail.is_empty() {
            how
        } else {
            format!("{how}: {tail}")
        }
    }
}

impl Drop for FfmpegPipe {
    fn drop(&mut self) {
        // Release both queue ends first: a thread blocked on either would never be joined.
        self.feed.take();
        self.pictures.take();
        let _ = self.child.kill();
        let _ = self.child.wait();
        for t in self.threads.drain(..).chain(self.stderr_thread.take()) {
            let _ = t.join();
        }
    }
}

fn write_units(mut stdin: std::process::ChildStdin, units: Receiver<Vec<u8>>) {
    for unit in units {
        if stdin.write_all(&unit).is_err() {
            return;
        }
    }
}

fn read_pictures(
    mut stdout: std::process::ChildStdout,
    len: usize,
    out: SyncSender<Vec<u8>>,
    spare: Receiver<Vec<u8>>,
) {
    loop {
        let mut buf = spare.try_recv().unwrap_or_default();
        buf.resize(len, 0);
        if stdout.read_exact(&mut buf).is_err() || out.send(buf).is_err() {
            return;
        }
    }
}

/// The last lines ffmpeg wrote to stderr (bounded: a chatty decoder cannot grow it).
fn keep_tail(mut stderr: std::process::ChildStderr, tail: &Mutex<String>) {
    let mut chunk = [0u8; 1024];
    while let Ok(n) = stderr.read(&mut chunk) {
        if n == 0 {
            return;
        }
        let mut t = tail.lock().unwrap_or_else(|p| p.into_inner());
        t.push_str(&String::from_utf8_lossy(&chunk[..n]));
        if t.len() > 600 {
            let cut = t.len() - 400;
            let cut = (cut..t.len()).find(|&i| t.is_char_boundary(i)).unwrap_or(0);
            t.drain(..cut);
        }
    }
}

/// Write an I420 picture as RGB24 into `rgb`.
pub fn picture_to_rgb(i420: &[u8], w: u32, h: u32, rgb: &mut Vec<u8>) {
    let (wu, hu) = (w as usize, h as usize);
    let cw = wu.div_ceil(2);
    let ch = hu.div_ceil(2);
    let (y, rest) = i420.split_at(wu * hu);
    let (u, v) = rest.split_at(cw * ch);
    rgb.resize(wu * hu * 3, 0);
    i420_to_rgb((y, wu), (u, cw), (v, cw), wu, hu, rgb);
}

/// Cisco's openh264 in process, producing RGB24.
pub struct H264Decoder {
    decoder: Decoder,
}

impl H264Decoder {
    pub fn new() -> Result<H264Decoder, String> {
        // No flush after each access unit: streams with B-frames would lose frames otherwise.
        let cfg = DecoderConfig::new().flush_after_decode(Flush::NoFlush);
        Decoder::with_api_config(OpenH264API::from_source(), cfg)
            .map(|decoder| H264Decoder { decoder })
            .map_err(|e| e.to_string())
    }

    /// Decode one access unit (or NAL unit); when it completes a picture and `convert` is
    /// set, write it as RGB24 into `rgb` and return its size. `Ok(None)`: no picture yet, or
    /// not converted.
    pub fn decode(
        &mut self,
        data: &[u8],
        convert: bool,
        rgb: &mut Vec<u8>,
    ) -> Result<Option<(u32, u32)>, String> {
        match self.decoder.decode(data) {
            Ok(Some(yuv)) if convert => Ok(Some(yuv_to_rgb(&yuv, rgb))),
            Ok(_) => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// Split an Annex B byte stream into its NAL units (for files and benchmarks).
pub fn nal_units(stream: &[u8]) -> impl Iterator<Item = &[u8]> {
    openh264::nal_units(stream)
}

/// Whether an Annex B access unit can be left undecoded: it holds picture slices and every one
/// of them is a non-reference slice (`nal_ref_idc` 0: a B-frame of most encoders, the
/// non-reference P-frames of a camera's temporal layers), and no parameter set or IDR picture.
/// No later picture refers to it, so the pictures decoded without it are exactly those decoded
/// with it: a camera analysed at a lower rate than it streams skips such units when they are
/// not due (ffmpeg's `-skip_frame noref`, done before the decoder so it works for every one).
pub fn disposable(unit: &[u8]) -> bool {
    let mut slices = 0;
    for nal in nal_units(unit) {
        let Some(&header) = nal.iter().skip_while(|&&b| b == 0).nth(1) else {
            continue;
        };
        let (ref_idc, kind) = ((header >> 5) & 3, header & 0x1f);
        match kind {
            // A non-IDR slice, or its data partition A.
            1 | 2 if ref_idc == 0 => slices += 1,
            // Partitions B and C, SEI, delimiters, end of sequence/stream, filler.
            3 | 4 | 6 | 9..=12 => {}
            // A reference slice, an IDR picture, parameter sets, anything else: keep.
            _ => return false,
        }
    }
    slices > 0
}

fn yuv_to_rgb(yuv: &DecodedYUV<'_>, rgb: &mut Vec<u8>) -> (u32, u32) {
    let (w, h) = yuv.dimensions();
    let (sy, su, sv) = yuv.strides();
    rgb.resize(w * h * 3, 0);
    i420_to_rgb((yuv.y(), sy), (yuv.u(), su), (yuv.v(), sv), w, h, rgb);
    (w as u32, h as u32)
}

enum Active {
    Open(H264Decoder),
    Pipe(FfmpegPipe),
}

/// What one access unit gave.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// A due picture, written as RGB24 (its size).
    Picture(u32, u32),
    /// No picture (not complete yet, or not due).
    Nothing,
    /// The unit was not decoded (the decoder is behind, or it was just replaced): feed from
    /// the next keyframe on.
    Resync,
    /// The unit was rejected (a corrupt or lost packet); the stream goes on.
    Corrupt(String),
    /// No decoder is left to try.
    Failed(String),
}

/// The decoder chain of one camera: the decoder in use and the ones behind it.
pub struct Decoders {
    chain: Vec<DecoderKind>,
    at: usize,
    active: Option<Active>,
    survey: Vec<(DecoderKind, Result<String, String>)>,
    width: u32,
    height: u32,
    /// Each decoder given up, and why (oldest first).
    pub given_up: Vec<(DecoderKind, String)>,
    /// Access units dropped because ffmpeg was behind (its input queue full).
    pub behind: u64,
}

impl Decoders {
    /// Start the first decoder of `choice`'s chain that starts, for pictures of `width`x`height`.
    pub fn open(choice: DecoderChoice, width: u32, height: u32) -> Result<Decoders, String> {
        let survey = survey();
        let mut d = Decoders {
            chain: chain(choice, &survey),
            at: 0,
            active: None,
            survey,
            width,
            height,
            given_up: Vec::new(),
            behind: 0,
        };
        d.start_from(0)?;
        Ok(d)
    }

    /// The decoder in use.
    pub fn kind(&self) -> DecoderKind {
        self.chain
            .get(self.at)
            .copied()
            .unwrap_or(DecoderKind::Openh264)
    }

    fn start_from(&mut self, first: usize) -> Result<(), String> {
        self.active = None;
        for i in first..self.chain.len() {
            let kind = self.chain[i];
            match self.start(kind) {
                Ok(a) => {
                    self.at = i;
                    self.active = Some(a);
                    return Ok(());
                }
                Err(why) => self.give_up(kind, why),
            }
        }
        self.at = self.chain.len();
        Err(format!(
            "no H.264 decoder works here ({})",
            self.given_up
                .iter()
                .map(|(k, w)| format!("{}: {w}", k.name()))
                .collect::<Vec<_>>()
                .join("; ")
        ))
    }

    fn start(&self, kind: DecoderKind) -> Result<Active, String> {
        if kind == DecoderKind::Openh264 {
            return H264Decoder::new().map(Active::Open);
        }
        let device = match self.survey.iter().find(|(k, _)| *k == kind) {
            Some((_, Ok(d))) => d.clone(),
            Some((_, Err(why))) => return Err(why.clone()),
            None => String::new(),
        };
        FfmpegPipe::start(kind, &device, self.width, self.height).map(Active::Pipe)
    }

    fn give_up(&mut self, kind: DecoderKind, why: String) {
        tracing::warn!(decoder = kind.describe(), "H.264 decoder given up: {why}");
        self.given_up.push((kind, why));
    }

    /// Replace the decoder in use with the next one of the chain.
    fn fail_over(&mut self, why: String) -> Step {
        let kind = self.kind();
        self.give_up(kind, why);
        match self.start_from(self.at + 1) {
            Ok(()) => {
                tracing::warn!(
                    decoder = self.kind().describe(),
                    "H.264 decoding goes on with the next decoder"
                );
                Step::Resync
            }
            Err(e) => Step::Failed(e),
        }
    }

    /// Feed one access unit. `due` is asked when a picture is complete; a due picture is
    /// written as RGB24 into `rgb`.
    pub fn decode(
        &mut self,
        unit: &[u8],
        mut due: impl FnMut() -> bool,
        rgb: &mut Vec<u8>,
    ) -> Step {
        match self.active.as_mut() {
            None => Step::Failed("no H.264 decoder is running".into()),
            Some(Active::Open(d)) => match d.decode(unit, due(), rgb) {
                Ok(Some((w, h))) => Step::Picture(w, h),
                Ok(None) => Step::Nothing,
                Err(e) => Step::Corrupt(e),
            },
            Some(Active::Pipe(p)) => {
                if let Some(why) = p.stuck() {
                    return self.fail_over(why);
                }
                match p.push(unit) {
                    Err(e) => return self.fail_over(e),
                    Ok(false) => {
                        self.behind += 1;
                        if self.behind.is_power_of_two() {
                            tracing::warn!(decoder = p.kind().describe(), dropped = self.behind, "H.264 decoder behind the stream: access units dropped up to the next keyframe");
                        }
                        return Step::Resync;
                    }
                    Ok(true) => {}
                }
                loop {
                    match p.picture() {
                        Err(e) => return self.fail_over(e),
                        Ok(None) => return Step::Nothing,
                        Ok(Some(pic)) => {
                            let (w, h) = p.size();
                            let take = due();
                            if take {
                                picture_to_rgb(&pic, w, h, rgb);
                            }
                            p.recycle(pic);
                            if take {
                                return Step::Picture(w, h);
                            }
                        }
                    }
                }
            }
        }
    }

    /// CPU seconds spent outside this process (an ffmpeg decoder's), if any.
    pub fn child_cpu_secs(&self) -> f64 {
        match &self.active {
            Some(Active::Pipe(p)) => p.cpu_secs().unwrap_or(0.0),
            _ => 0.0,
        }
    }
}

#[cfg(test)]
mod tests {
    // Test code: a failed unwrap is a failed test.
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn present(ok: &[DecoderKind]) -> Vec<(DecoderKind, Result<String, String>)> {
        DecoderKind::ALL
            .iter()
            .map(|&k| {
                let r = if ok.contains(&k) {
                    Ok("here".to_string())
                } else {
                    Err("absent".to_string())
                };
                (k, r)
            })
            .collect()
    }

    #[test]
    fn auto_tries_hardware_then_ffmpeg_then_openh264() {
        use DecoderKind::*;
        let all = present(&[Vaapi, Ffmpeg, Openh264]);
        assert_eq!(chain(DecoderChoice::Auto, &all), [Vaapi, Ffmpeg, Openh264]);
        let pi = present(&[V4l2m2m, Ffmpeg, Openh264]);
        assert_eq!(chain(DecoderChoice::Auto, &pi), [V4l2m2m, Ffmpeg, Openh264]);
        let bare = present(&[Openh264]);
        assert_eq!(chain(DecoderChoice::Auto, &bare), [Openh264]);
    }

    #[test]
    fn a_named_decoder_goes_first_with_the_software_ones_behind_it() {
        use DecoderKind::*;
        let box_ = present(&[Ffmpeg, Openh264]);
        // Named but absent: still tried first, so that its failure is logged with its reason.
        assert_eq!(
            chain(DecoderChoice::Prefer(Vaapi), &box_),
            [Vaapi, Ffmpeg, Openh264]
        );
        assert_eq!(
            chain(DecoderChoice::Prefer(Openh264), &box_),
            [Openh264, Ffmpeg]
        );
        let no_ffmpeg = present(&[Openh264]);
        assert_eq!(
            chain(DecoderChoice::Prefer(Ffmpeg), &no_ffmpeg),
            [Ffmpeg, Openh264]
        );
    }

    /// Regression: dropping a decoder whose picture queue was full hung forever (the reader
    /// thread, blocked handing over a picture, was joined before its receiver was dropped).
    #[test]
    fn dropping_a_decoder_with_pictures_waiting_does_not_hang() {
        let out = Command::new("ffmpeg")
            .args([
                "-v",
                "error",
                "-f",
                "lavfi",
                "-i",
                "testsrc=size=160x120:rate=10",
            ])
            .args([
                "-frames:v",
                "30",
                "-c:v",
                "libx264",
                "-bf",
                "0",
                "-f",
                "h264",
                "pipe:1",
            ])
            .output()
            .expect("ffmpeg runs (scripts/setup.sh installs it)");
        assert!(out.status.success());
        let mut pipe = FfmpegPipe::start(DecoderKind::Ffmpeg, "", 160, 120).unwrap();
        for unit in nal_units(&out.stdout) {
            while !pipe.push(unit).unwrap() {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        }
        // Pictures come back and fill the queue; nobody takes them.
        std::thread::sleep(std::time::Duration::from_secs(2));
        let (done, dropped) = mpsc::channel();
        std::thread::spawn(move || {
            drop(pipe);
            let _ = done.send(());
        });
        assert!(
            dropped
                .recv_timeout(std::time::Duration::from_secs(10))
                .is_ok(),
            "dropping the decoder hung"
        );
    }

    /// An Annex B unit of NAL units with these header bytes (and a byte of payload each).
    fn unit(headers: &[u8]) -> Vec<u8> {
        headers
            .iter()
            .flat_map(|&h| [0, 0, 0, 1, h, 0x88])
            .collect()
    }

    #[test]
    fn only_units_of_non_reference_slices_are_disposable() {
        // nal_ref_idc in bits 5-6, the type in bits 0-4.
        let (b_slice, p_slice, idr, sps, pps, sei, aud) =
            (0x01, 0x41, 0x65, 0x67, 0x68, 0x06, 0x09);
        assert!(disposable(&unit(&[b_slice])));
        assert!(disposable(&unit(&[aud, sei, b_slice, b_slice])));
        assert!(!disposable(&unit(&[p_slice])));
        assert!(
            !disposable(&unit(&[b_slice, p_slice])),
            "one reference slice keeps it"
        );
        assert!(!disposable(&unit(&[sps, pps, idr])));
        assert!(
            !disposable(&unit(&[sps, b_slice])),
            "parameter sets must reach the decoder"
        );
        assert!(!disposable(&unit(&[sei])), "no picture: nothing to skip");
        assert!(!disposable(&[]));
    }

    #[test]
    fn i420_sizes_round_chroma_up() {
        assert_eq!(i420_len(640, 360), 640 * 360 * 3 / 2);
        assert_eq!(i420_len(3, 3), 9 + 2 * 4);
    }
}
