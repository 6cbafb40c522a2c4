//! IP cameras over RTSP: the pure-Rust `retina` client (TCP interleaved or UDP), H.264 decoded
//! by Cisco's `openh264` (built from its bundled source: no system codec to install on a box).
//!
//! A source owns a small current-thread tokio runtime and is driven from its reader thread
//! (`next_frame` blocks), so the network and the decoder never run on the agent's async
//! workers. Every frame another frame refers to is decoded (H.264 needs its references), the
//! others only when due (`h264::disposable`), and only the frames that are due are converted
//! to RGB. Frames before the first keyframe are skipped. A stalled or closed
//! stream ends the source with an error; the agent reopens it with backoff (retina does not
//! reconnect by itself). Credentials come from the URL (`rtsp://user:pass@host/...`) and are
//! never logged: `redact` is what logs and errors show.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use retina::client::{
    Credentials, Demuxed, PlayOptions, Session, SessionGroup, SessionOptions, SetupOptions,
    TcpTransportOptions, Transport, UdpTransportOptions,
};
use retina::codec::{CodecItem, FrameFormat, VideoFrame};

use crate::h264::{DecoderChoice, Decoders, Step};
use crate::live::{frame_at_size, LiveRequest, RateGate};
use crate::stream::{rate_advice, size_advice, RateMeter};
use crate::{Frame, FrameSource, SourceError, SourceInfo};

/// How long a stream may stay silent before it counts as lost.
pub const STALL: Duration = Duration::from_secs(10);
/// How long connecting (DESCRIBE/SETUP/PLAY) may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RtspTransport {
    /// RTP interleaved on the RTSP TCP connection: works through NAT and firewalls (default).
    #[default]
    Tcp,
    /// RTP over UDP: less latency on a clean LAN; lost packets drop frames.
    Udp,
}

/// The URL with its password replaced by `***` (for logs, errors and `vitrine probe`).
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        Ok(u) => u.to_string(),
        Err(_) => "<invalid RTSP URL>".to_string(),
    }
}

/// Split `rtsp://user:pass@host/path` into a credential-free URL and the credentials.
pub fn split_credentials(url: &str) -> Result<(url::Url, Option<Credentials>), String> {
    let mut u = url::Url::parse(url).map_err(|e| format!("not a URL: {e}"))?;
    if u.scheme() != "rtsp" {
        return Err(format!(
            "scheme {:?} is not supported (only rtsp://)",
            u.scheme()
        ));
    }
    if u.host_str().is_none() {
        return Err("the URL has no host".into());
    }
    let creds = if u.username().is_empty() {
        None
    } else {
        let dec = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        };
        Some(Credentials {
            username: dec(u.username()),
            password: dec(u.password().unwrap_or("")),
        })
    };
    let _ = u.set_username("");
    let _ = u.set_password(None);
    Ok((u, creds))
}

pub struct RtspCamera {
    rt: tokio::runtime::Runtime,
    /// Always `Some` until dropped (retina tears a session down from a task on drop, which
    /// needs the runtime entered: see `Drop`).
    session: Option<Pin<Box<Demuxed>>>,
    decoder: Decoders,
    what: String,
    req: LiveRequest,
    info: SourceInfo,
    /// Admits decoded pictures for analysis.
    gate: RateGate,
    /// The same schedule on arrival: which access units analysis would want. Separate from
    /// `gate` because a decoder with output delay (ffmpeg's reorder and thread buffers)
    /// answers for a picture several units later; asking `gate` on arrival would find it
    /// still due and send every disposable unit in the meantime.
    arrivals: RateGate,
    keyframe_seen: bool,
    rgb: Vec<u8>,
    scratch: Vec<u8>,
    /// Frames the decoder rejected (packet loss on UDP, a corrupt stream); skipped, counted.
    pub decode_errors: u64,
    /// The stream's own frame rate, measured from its timestamps (every frame is received).
    rate: RateMeter,
    rate_checked: bool,
    /// Access units left undecoded: not due, and no other picture refers to them.
    pub skipped: u64,
}

fn err_open(what: &str, e: impl std::fmt::Display, fix: &str) -> SourceError {
    SourceError::Open {
        what: what.to_string(),
        message: e.to_string(),
        fix: fix.to_string(),
    }
}

impl RtspCamera {
    /// Connect, set up the first H.264 video stream and start playing.
    pub fn open(
        url: &str,
        transport: RtspTransport,
        choice: DecoderChoice,
        req: &LiveRequest,
    ) -> Result<RtspCamera, SourceError> {
        let what = format!("camera {}", redact(url));
        let (u, creds) = split_credentials(url)
            .map_err(|m| err_open(&what, m, "write it as rtsp://[user:pass@]host[:port]/path"))?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| err_open(&what, e, "the system is out of threads or file handles"))?;
        let session = rt.block_on(async {
            tokio::time::timeout(CONNECT_TIMEOUT, connect(u, creds, transport, &what))
                .await
                .map_err(|_| {
                    err_open(
                        &what,
                        format!("no answer within {} s", CONNECT_TIMEOUT.as_secs()),
                        "check the camera is on and reachable (`vitrine probe --rtsp URL`)",
                    )
                })?
        })?;
        let (w, h) = session
            .streams()
            .iter()
            .find_map(|s| match s.parameters() {
                Some(retina::codec::ParametersRef::Video(v)) => Some(v.pixel_dimensions()),
                _ => None,
            })
            .unwrap_or((0, 0));
        let decoder = Decoders::open(choice, w, h).map_err(|e| {
            err_open(
                &what,
                e,
                "install ffmpeg, or set decoder = \"openh264\" for this camera",
            )
        })?;
        let (iw, ih) = req.size.unwrap_or((w, h));
        tracing::info!(camera = %redact(url), width = w, height = h, ?transport, decoder = decoder.kind().describe(), "RTSP stream playing");
        if let Some(advice) = size_advice(w, h) {
            tracing::warn!(camera = %redact(url), "stream larger than analysis needs: {advice}");
        }
        Ok(RtspCamera {
            rt,
            session: Some(Box::pin(session)),
            decoder,
            what,
            req: req.clone(),
            info: SourceInfo {
                width: iw,
                height: ih,
                fps: req.fps,
                duration_ms: None,
            },
            gate: RateGate::new(req.fps),
            arrivals: RateGate::new(req.fps),
            keyframe_seen: false,
            rgb: Vec::new(),
            scratch: Vec::new(),
            decode_errors: 0,
            rate: RateMeter::default(),
            rate_checked: false,
            skipped: 0,
        })
    }

    /// The next video frame as retina hands it over (from the first keyframe on), its rate
    /// measured; after 5 s of stream, a rate far above the analysis rate is logged once.
    fn next_video(&mut self) -> Result<VideoFrame, SourceError> {
        loop {
            let Some(session) = self.session.as_mut() else {
                return Err(self.read_err("the session is closed"));
            };
            let item = {
                let mut session = session.as_mut();
                self.rt
                    .block_on(async { tokio::time::timeout(STALL, session.next()).await })
            };
            let frame = match item {
                Err(_) => {
                    return Err(self.read_err(format!(
                        "no video for {} s (stream stalled)",
                        STALL.as_secs()
                    )))
                }
                Ok(None) => return Err(self.read_err("the camera closed the stream")),
                Ok(Some(Err(e))) => return Err(self.read_err(e)),
                Ok(Some(Ok(CodecItem::VideoFrame(f)))) => f,
                Ok(Some(Ok(_))) => continue,
            };
            if !self.keyframe_seen {
                if !frame.is_random_access_point() {
                    continue;
                }
                self.keyframe_seen = true;
            }
            self.rate.frame(frame.timestamp().elapsed_secs());
            if !self.rate_checked && self.rate.span() >= 5.0 {
                self.rate_checked = true;
                let fps = self.rate.fps().unwrap_or(0.0);
                if let Some(advice) = rate_advice(fps, f64::from(self.req.fps)) {
                    tracing::warn!(camera = %self.what, "stream faster than analysis needs: {advice}");
                }
            }
            return Ok(frame);
        }
    }

    fn read_err(&self, message: impl std::fmt::Display) -> SourceError {
        SourceError::Read {
            what: self.what.clone(),
            message: message.to_string(),
        }
    }
}

impl Drop for RtspCamera {
    fn drop(&mut self) {
        let _in_runtime = self.rt.enter();
        self.session.take();
    }
}

async fn connect(
    url: url::Url,
    creds: Option<Credentials>,
    transport: RtspTransport,
    what: &str,
) -> Result<Demuxed, SourceError> {
    let fix_net = "check the URL, the credentials and that the camera is reachable (`vitrine probe --rtsp URL`)";
    let opts = SessionOptions::default()
        .creds(creds)
        .user_agent(format!("vitrine/{}", env!("CARGO_PKG_VERSION")))
        .session_group(Arc::new(SessionGroup::default()));
    let mut session = Session::describe(url, opts)
        .await
        .map_err(|e| err_open(what, e, fix_net))?;
    let video = session
        .streams()
        .iter()
        .position(|s| s.media() == "video" && s.encoding_name() == "h264")
        .ok_or_else(|| {
            let offered: Vec<String> = session
                .streams()
                .iter()
                .map(|s| format!("{}/{}", s.media(), s.encoding_name()))
                .collect();
            err_open(
                what,
                format!("no H.264 video stream (the camera offers {})", offered.join(", ")),
                "set the camera's stream to H.264 in its web settings, or pick its H.264 sub-stream URL",
            )
        })?;
    let t = match transport {
        RtspTransport::Tcp => Transport::Tcp(TcpTransportOptions::default()),
        RtspTransport::Udp => Transport::Udp(UdpTransportOptions::default()),
    };
    session
        .setup(
            video,
            SetupOptions::default()
                .transport(t)
                .frame_format(FrameFormat::SIMPLE),
        )
        .await
        .map_err(|e| err_open(what, e, fix_net))?;
    let playing = session
        .play(PlayOptions::default())
        .await
        .map_err(|e| err_open(what, e, fix_net))?;
    playing.demuxed().map_err(|e| err_open(what, e, fix_net))
}

/// Re-exported for benchmarks that decode files.
pub use crate::h264::{nal_units, H264Decoder};

impl FrameSource for RtspCamera {
    fn info(&self) -> &SourceInfo {
        &self.info
    }

    fn decoder(&self) -> Option<&'static str> {
        Some(self.decoder.kind().describe())
    }

    fn next_frame(&mut self) -> Result<Option<Frame>, SourceError> {
        loop {
            let frame = self.next_video()?;
            let now = self.req.epoch.elapsed();
            let wanted = self.arrivals.admit(now);
            if !wanted && crate::h264::disposable(frame.data()) {
                // No picture refers to it and analysis does not want it: not decoded at all.
                self.skipped += 1;
                continue;
            }
            let gate = &mut self.gate;
            match self
                .decoder
                .decode(frame.data(), || gate.admit(now), &mut self.rgb)
            {
                Step::Picture(w, h) => {
                    return Ok(Some(frame_at_size(
                        now.as_millis() as u64,
                        &self.rgb,
                        w,
                        h,
                        self.req.size,
                        &mut self.scratch,
                    )));
                }
                Step::Nothing => {}
                Step::Resync => self.keyframe_seen = false,
                Step::Corrupt(e) => {
                    self.decode_errors += 1;
                    if self.decode_errors.is_power_of_two() {
                        tracing::warn!(camera = %self.what, errors = self.decode_errors, "H.264 decode error: {e}");
                    }
                }
                Step::Failed(e) => return Err(self.read_err(e)),
            }
        }
    }
}

/// What `vitrine probe --rtsp URL` reports: the stream's size and rate, what receiving and
/// decoding it costs here, the first frame's delay, and advice when it is larger than
/// analysis needs.
#[derive(Debug, Clone)]
pub struct RtspReport {
    pub url: String,
    pub width: u32,
    pub height: u32,
    pub first_frame_ms: u64,
    /// Frames per second, from the stream's timestamps; `None` if under a second was seen.
    pub fps: Option<f64>,
    /// CPU seconds spent receiving and decoding per second of stream (a share of one core).
    pub core_share: Option<f64>,
    /// The share of the stream's frames no other frame refers to (B-frames, a camera's
    /// temporal layers): the agent decodes those only when analysis wants them.
    pub disposable: Option<f64>,
    /// The decoder that decoded the measured stream.
    pub decoder: &'static str,
    /// Decoders tried before it, and why each was given up.
    pub given_up: Vec<String>,
    pub advice: Vec<String>,
}

/// How much of a stream `check` decodes to measure its rate and cost.
pub const MEASURE: Duration = Duration::from_secs(3);

/// Connect to `url`, wait for the first decoded frame, then receive and decode `MEASURE` of
/// stream (every frame, none converted: what the agent pays per camera-second before
/// analysis) and report. `analysis_fps`: the rate the camera would be analysed at.
pub fn check(
    url: &str,
    transport: RtspTransport,
    choice: DecoderChoice,
    analysis_fps: f64,
) -> Result<RtspReport, SourceError> {
    let started = std::time::Instant::now();
    let req = LiveRequest::new(100.0, None, started);
    let mut cam = RtspCamera::open(url, transport, choice, &req)?;
    let f = cam.next_frame()?.ok_or_else(|| cam.read_err("no frame"))?;
    let first_frame_ms = started.elapsed().as_millis() as u64;
    let cpu = |cam: &RtspCamera| process_cpu_secs().map(|s| s + cam.decoder.child_cpu_secs());
    let cpu0 = cpu(&cam);
    let mut meter = RateMeter::default();
    let (mut units, mut disposable) = (0u64, 0u64);
    let deadline = started.elapsed() + MEASURE + Duration::from_secs(2);
    while meter.span() < MEASURE.as_secs_f64() && started.elapsed() < deadline {
        let v = cam.next_video()?;
        meter.frame(v.timestamp().elapsed_secs());
        units += 1;
        disposable += u64::from(crate::h264::disposable(v.data()));
        match cam.decoder.decode(v.data(), || false, &mut cam.rgb) {
            Step::Corrupt(_) => cam.decode_errors += 1,
            Step::Failed(e) => return Err(cam.read_err(e)),
            _ => {}
        }
    }
    let fps = meter.fps();
    let core_share = match (cpu0, cpu(&cam)) {
        (Some(a), Some(b)) if meter.span() >= 1.0 => Some((b - a) / meter.span()),
        _ => None,
    };
    Ok(RtspReport {
        url: redact(url),
        width: f.width,
        height: f.height,
        first_frame_ms,
        fps,
        core_share,
        disposable: (units > 0).then(|| disposable as f64 / units as f64),
        decoder: cam.decoder.kind().describe(),
        given_up: cam
            .decoder
            .given_up
            .iter()
            .map(|(k, why)| format!("{}: {why}", k.name()))
            .collect(),
        advice: crate::stream::advice(f.width, f.height, fps, analysis_fps),
    })
}

/// CPU time of this process (the RTSP client and an in-process decoder), in seconds.
fn process_cpu_secs() -> Option<f64> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec we own; failure is reported by its result.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    (rc == 0).then_some(ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_appear_in_what_is_logged() {
        let r = redact("rtsp://admin:s3cret@10.0.0.11:554/stream1");
        assert_eq!(r, "rtsp://admin:***@10.0.0.11:554/stream1");
        assert!(!redact("rtsp://u:p%40ss@h/x").contains("p%40ss"));
        assert_eq!(redact("rtsp://10.0.0.11/s"), "rtsp://10.0.0.11/s");
    }

    #[test]
    fn credentials_are_split_from_the_url_and_percent_decoded() {
        let (u, c) = split_credentials("rtsp://admin:p%40ss@cam.local:8554/live").unwrap();
        assert_eq!(u.as_str(), "rtsp://cam.local:8554/live");
        let c = c.unwrap();
        assert_eq!(
            (c.username.as_str(), c.password.as_str()),
            ("admin", "p@ss")
        );
        let (_, none) = split_credentials("rtsp://cam.local/live").unwrap();
        assert!(none.is_none());
        assert!(split_credentials("http://cam/live")
            .unwrap_err()
            .contains("scheme"));
    }

    #[test]
    fn an_unreachable_camera_is_a_clear_open_error() {
        // Port 9 on loopback: nothing listens; connect is refused at once.
        let req = LiveRequest::new(5.0, None, std::time::Instant::now());
        let e = RtspCamera::open(
            "rtsp://u:pw@127.0.0.1:9/x",
            RtspTransport::Tcp,
            DecoderChoice::Auto,
            &req,
        )
        .err()
        .expect("refused");
        let s = e.to_string();
        assert!(s.contains("rtsp://u:***@127.0.0.1:9/x"), "{s}");
        assert!(!s.contains("pw@"), "{s}");
        assert!(s.contains("fix:"), "{s}");
    }
}
