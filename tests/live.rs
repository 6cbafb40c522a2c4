//! Live capture through the real code paths: an IP camera served by a real RTSP server
//! (GStreamer's, `tests/support/rtsp_server.py`) that is killed and restarted mid-stream, and
//! a microphone through ALSA's default device into a real PulseAudio null sink playing real
//! speech and noise. USB cameras go through the real V4L2 drivers in a QEMU guest:
//! `scripts/hwtest.sh` (see the README).

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

const USER: &str = "admin";
/// A password with a character that must be percent-encoded in the URL.
const PASSWORD: &str = "s3cr+t";
const PASSWORD_IN_URL: &str = "s3cr%2Bt";

/// An H.264 MP4 (no B-frames, what an IP camera streams) of the real pedestrian video, encoded
/// by ffmpeg with `args` (duration, filters, preset, GOP) into `dir/name`.
fn h264_mp4(dir: &Path, name: &str, args: &[&str]) -> PathBuf {
    let out = dir.join(name);
    let st = Command::new("ffmpeg")
        .args(["-v", "error", "-nostdin", "-y", "-i"])
        .arg(media("vtest.avi"))
        .args(args)
        .args(["-c:v", "libx264", "-bf", "0", "-pix_fmt", "yuv420p"])
        .arg(&out)
        .status()
        .expect("ffmpeg runs (scripts/setup.sh installs it)");
    assert!(st.success());
    out
}

/// The pedestrian video as an IP camera streams it, made once per test.
fn camera_mp4(dir: &Path) -> PathBuf {
    h264_mp4(
        dir,
        "camera.mp4",
        &["-t", "60", "-preset", "veryfast", "-g", "10"],
    )
}

/// The pedestrian video served as an IP camera on a free port (the directory holds the clip).
fn camera_on_rtsp() -> (tempfile::TempDir, RtspServer) {
    let dir = tempfile::tempdir().unwrap();
    let mp4 = camera_mp4(dir.path());
    let server = RtspServer::start(free_port(), &mp4);
    (dir, server)
}

struct RtspServer {
    child: Child,
    port: u16,
    mp4: PathBuf,
}

impl RtspServer {
    fn start(port: u16, mp4: &Path) -> RtspServer {
        let mut s = RtspServer {
            child: Self::spawn(port, mp4),
            port,
            mp4: mp4.to_path_buf(),
        };
        s.wait_listening();
        s
    }

    fn spawn(port: u16, mp4: &Path) -> Child {
        Command::new("/usr/bin/python3")
            .arg(repo().join("tests/support/rtsp_server.py"))
            .arg(port.to_string())
            .arg(mp4)
            .args([USER, PASSWORD])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the RTSP test server starts: scripts/setup.sh installs gir1.2-gst-rtsp-server-1.0 python3-gi gstreamer1.0-plugins-*")
    }

    fn wait_listening(&mut self) {
        let t = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                self.child.try_wait().unwrap().is_none(),
                "the RTSP server exited: is GStreamer's RTSP server installed (scripts/setup.sh)?"
            );
            assert!(
                t.elapsed() < Duration::from_secs(20),
                "RTSP server not listening"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn restart(&mut self) {
        self.child = Self::spawn(self.port, &self.mp4);
        self.wait_listening();
    }

    fn url(&self, password: &str) -> String {
        format!("rtsp://{USER}:{password}@127.0.0.1:{}/file", self.port)
    }
}

impl Drop for RtspServer {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// The agent under test, killed if the test fails before stopping it (no orphan agents).
struct Agent(Option<Child>);

impl Agent {
    fn take(mut self) -> Child {
        self.0.take().expect("the agent is stopped once")
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Poll the agent's metrics until `cond` holds (or panic after `within`).
fn wait_metrics(port: u16, within: Duration, what: &str, cond: impl Fn(&str) -> bool) -> String {
    let t = Instant::now();
    loop {
        if let Some(text) = get(port, "/metrics") {
            if cond(&text) {
                return text;
            }
            if t.elapsed() > within {
                panic!("{what}: not within {within:?}; metrics:\n{text}");
            }
        } else if t.elapsed() > within {
            panic!("{what}: metrics endpoint not answering");
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Also the isolation of sources: a USB camera and a microphone that are not plugged in are
/// retried beside the IP camera the whole time, and never stall it.
#[test]
fn rtsp_camera_with_credentials_survives_a_server_restart_and_reports_the_outage() {
    let (dir, mut server) = camera_on_rtsp();
    let metrics = free_port();
    let cfg = write_config(
        dir.path(),
        &format!(
            "[[cameras]]\nid = \"door-ip\"\nrtsp = \"{}\"\nfps = 5\n\n[[cameras]]\nid = \"usb-unplugged\"\ndevice = \"/dev/video-vitrine-test-absent\"\n\n[[microphones]]\nid = \"mic-absent\"\ndevice = \"hw:CARD=VitrineAbsent,DEV=0\"\n\n[privacy]\nwindow_secs = 5\nk_min = 1\n\n[status]\nmetrics = \"127.0.0.1:{metrics}\"\n",
            server.url(PASSWORD_IN_URL)
        ),
    );
    let log = dir.path().join("agent.log");
    let agent = Agent(Some(
        vitrine()
            .args(["run", "-c"])
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    ));
    let src = "{source=\"door-ip\",kind=\"camera\"}";
    let analysed =
        |t: &str| try_sample(t, &format!("vitrine_frames_analysed_total{src}")).unwrap_or(0.0);
    let up = |t: &str| try_sample(t, &format!("vitrine_source_up{src}")) == Some(1.0);
    let before = wait_metrics(
        metrics,
        Duration::from_secs(90),
        "frames analysed from RTSP",
        |t| up(t) && analysed(t) >= 10.0,
    );
    let n1 = analysed(&before);
    // The decoder auto chose (ffmpeg's software decoder on a box without a hardware one) is
    // in the metrics, as the status screen shows it.
    let first = auto_decoder();
    assert_eq!(
        try_sample(
            &before,
            &format!(
                "vitrine_source_decoder_info{{source=\"door-ip\",decoder=\"{}\",hardware=\"{}\"}}",
                first.name(),
                first.hardware()
            )
        ),
        Some(1.0),
        "{before}"
    );

    // The camera goes away (power cut: no RTSP teardown). The agent keeps running, shows the
    // source down and counts the loss.
    server.kill9();
    let down = wait_metrics(metrics, Duration::from_secs(30), "source shown down", |t| {
        !up(t) && try_sample(t, &format!("vitrine_source_lost_total{src}")).unwrap_or(0.0) >= 1.0
    });
    std::thread::sleep(Duration::from_secs(4));
    let still = get(metrics, "/metrics").expect("the agent still runs while the camera is down");
    assert!(!up(&still));
    assert!(
        analysed(&still) - analysed(&down) <= 1.0,
        "no frames while down"
    );

    // It comes back on the same address: the agent reconnects by itself (backoff <= 30 s).
    server.restart();
    wait_metrics(
        metrics,
        Duration::from_secs(60),
        "reconnected and analysing again",
        |t| up(t) && analysed(t) >= n1 + 10.0,
    );
    let text = get(metrics, "/metrics").unwrap();
    let usb = "{source=\"usb-unplugged\",kind=\"camera\"}";
    assert_eq!(sample(&text, &format!("vitrine_source_up{usb}")), 0.0);
    assert_eq!(
        sample(&text, &format!("vitrine_frames_analysed_total{usb}")),
        0.0
    );
    let mic = "{source=\"mic-absent\",kind=\"microphone\"}";
    assert_eq!(sample(&text, &format!("vitrine_source_up{mic}")), 0.0);
    let out = sigterm_and_wait(agent.take());
    let stderr = std::fs::read_to_string(&log).unwrap();
    assert!(
        out.status.success(),
        "agent exit {:?}\n{stderr}",
        out.status
    );
    assert!(stderr.contains("camera lost; reopening"), "{stderr}");
    assert!(
        stderr.contains("camera not available; retrying")
            && stderr.contains("/dev/video-vitrine-test-absent")
            && stderr.contains("vitrine probe")
            && stderr.contains("microphone not available; retrying"),
        "the absent camera is named with a fix:\n{stderr}"
    );
    assert!(
        !stderr.contains(PASSWORD) && !stderr.contains(PASSWORD_IN_URL),
        "the camera password must never be logged:\n{stderr}"
    );
    assert!(stderr.contains("admin:***@"), "{stderr}");

    // Every window was published, the outage included: contiguous, and the outage is blind
    // time in coverage (not silently an empty store).
    let events: Vec<_> = outbox_events(&dir.path().join("state"))
        .into_iter()
        .filter(|e| e["source_id"] == "door-ip")
        .collect();
    assert!(events.len() >= 3, "{} windows", events.len());
    let v = schema();
    for e in &events {
        assert_valid(&v, e);
    }
    for w in events.windows(2) {
        assert_eq!(
            w[0]["window"]["end"], w[1]["window"]["start"],
            "windows are contiguous across the outage"
        );
    }
    let blind: f64 = events
        .iter()
        .map(|e| e["coverage"]["seconds_blind"].as_f64().unwrap())
        .sum();
    assert!(
        blind >= 4.0,
        "outage of >= 4 s shows as blind time, got {blind}"
    );
    let people: u64 = events
        .iter()
        .filter_map(|e| e["people"]["max"].as_u64())
        .max()
        .unwrap_or(0);
    assert!(
        people >= 2,
        "the pedestrians of the stream were seen (max {people})"
    );
    // The absent camera's and microphone's windows are published too, on time, entirely blind.
    let absent: Vec<_> = outbox_events(&dir.path().join("state"))
        .into_iter()
        .filter(|e| e["source_id"] == "usb-unplugged" || e["source_id"] == "mic-absent")
        .collect();
    assert!(absent.len() >= 6, "{} windows", absent.len());
    assert!(
        absent
            .iter()
            .all(|e| e["coverage"]["status"] == "blind" && e["people"]["max"].is_null()),
        "{absent:?}"
    );
}

/// The decoder `decoder = "auto"` starts with on this machine.
fn auto_decoder() -> vitrine_sensors::h264::DecoderKind {
    use vitrine_sensors::h264::{chain, survey, DecoderChoice};
    chain(DecoderChoice::Auto, &survey())[0]
}

/// H.264 decoding is exact: ffmpeg (in its child process, through pipes) and openh264 (in
/// process) must hand the analysis the same pictures of the same stream.
#[test]
fn ffmpeg_and_openh264_decode_an_ip_camera_to_the_same_pictures() {
    use vitrine_sensors::h264::{DecoderChoice, DecoderKind};
    use vitrine_sensors::live::LiveRequest;
    use vitrine_sensors::rtsp::{RtspCamera, RtspTransport};
    use vitrine_sensors::FrameSource;
    let (_clip, server) = camera_on_rtsp();
    let pictures = |kind: DecoderKind| {
        // Analysed at up to 60 fps: every picture of the stream is due.
        let req = LiveRequest::new(60.0, None, Instant::now());
        let url = server.url(PASSWORD_IN_URL);
        let mut cam =
            RtspCamera::open(&url, RtspTransport::Tcp, DecoderChoice::Prefer(kind), &req).unwrap();
        assert_eq!(cam.decoder(), Some(kind.describe()));
        (0..12)
            .map(|_| cam.next_frame().unwrap().unwrap())
            .collect::<Vec<_>>()
    };
    let ffmpeg = pictures(DecoderKind::Ffmpeg);
    let openh264 = pictures(DecoderKind::Openh264);
    for (i, (a, b)) in ffmpeg.iter().zip(&openh264).enumerate() {
        assert_eq!((a.width, a.height), (b.width, b.height));
        let diff: u64 = a
            .rgb
            .iter()
            .zip(&b.rgb)
            .map(|(x, y)| u64::from(x.abs_diff(*y)))
            .sum();
        let mean = diff as f64 / a.rgb.len() as f64;
        assert!(
            mean < 0.5,
            "picture {i}: mean difference {mean:.2} per byte"
        );
    }
}

/// A camera that streams B-frames (frames no other refers to), analysed at a third of its
/// rate: those not due are never decoded (`h264::disposable`), with every decoder, and the
/// analysed pictures still come at the analysis rate with no decode error. (That the pictures
/// are exactly those decoded with every frame is `sensors/tests/disposable_real.rs`.)
#[test]
fn frames_no_other_refers_to_are_not_decoded_unless_due() {
    use vitrine_sensors::h264::{DecoderChoice, DecoderKind};
    use vitrine_sensors::live::LiveRequest;
    use vitrine_sensors::rtsp::{RtspCamera, RtspTransport};
    use vitrine_sensors::FrameSource;
    let dir = tempfile::tempdir().unwrap();
    let mp4 = dir.path().join("b-frames.mp4");
    let st = Command::new("ffmpeg")
        .args(["-v", "error", "-nostdin", "-y", "-i"])
        .arg(media("vtest.avi"))
        .args(["-t", "20", "-vf", "scale=640:480,fps=30", "-c:v", "libx264"])
        .args(["-preset", "veryfast", "-g", "30", "-bf", "2"])
        .args(["-x264-params", "b-pyramid=0", "-pix_fmt", "yuv420p"])
        .arg(&mp4)
        .status()
        .unwrap();
    assert!(st.success());
    let server = RtspServer::start(free_port(), &mp4);
    for kind in [DecoderKind::Openh264, DecoderKind::Ffmpeg] {
        let req = LiveRequest::new(10.0, None, Instant::now());
        let url = server.url(PASSWORD_IN_URL);
        let mut cam =
            RtspCamera::open(&url, RtspTransport::Tcp, DecoderChoice::Prefer(kind), &req).unwrap();
        let frames: Vec<u64> = (0..20)
            .map(|_| cam.next_frame().unwrap().unwrap().t_ms)
            .collect();
        // 19 gaps of 100 ms; never a burst (the gate spaces them by arrival), and a loaded
        // test machine may hold the stream back a little.
        let span = (frames[19] - frames[0]) as f64 / 1000.0;
        assert!(
            (1.6..=5.0).contains(&span),
            "{kind:?}: 20 frames at 10 fps took {span} s"
        );
        assert_eq!(cam.decode_errors, 0, "{kind:?}");
        // About two in three of the 30 fps stream's frames are B-frames; of the ~57 frames
        // received, at least a third were left undecoded.
        assert!(cam.skipped >= 15, "{kind:?}: {} skipped", cam.skipped);
        eprintln!("{kind:?}: {} access units not decoded", cam.skipped);
    }
}

/// A decoder that breaks hands over to the next one and the camera keeps being analysed. The
/// ffmpeg here answers what it can do but dies on the stream (a stand-in for a hardware decoder
/// whose driver fails); the real ffmpeg path is the restart test's and the one above.
#[test]
fn a_decoder_that_dies_hands_over_to_openh264_and_the_camera_goes_on() {
    let (dir, server) = camera_on_rtsp();
    let fake = dir.path().join("ffmpeg");
    std::fs::write(
        &fake,
        "#!/bin/sh\n\
         case \"$*\" in *-hwaccels*|*-decoders*) exec ffmpeg \"$@\";; esac\n\
         echo \"simulated decoder failure: cannot open the codec\" >&2\n\
         exit 1\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let metrics = free_port();
    let cfg = write_config(
        dir.path(),
        &format!(
            "[[cameras]]\nid = \"door-ip\"\nrtsp = \"{}\"\ndecoder = \"ffmpeg\"\nfps = 5\n\n[privacy]\nwindow_secs = 5\nk_min = 1\n\n[status]\nmetrics = \"127.0.0.1:{metrics}\"\n",
            server.url(PASSWORD_IN_URL)
        ),
    );
    let log = dir.path().join("agent.log");
    let agent = Agent(Some(
        vitrine()
            .args(["run", "-c"])
            .arg(&cfg)
            .env("VITRINE_FFMPEG", &fake)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    ));
    let src = "{source=\"door-ip\",kind=\"camera\"}";
    let text = wait_metrics(
        metrics,
        Duration::from_secs(90),
        "frames analysed after the decoder died",
        |t| try_sample(t, &format!("vitrine_frames_analysed_total{src}")).unwrap_or(0.0) >= 10.0,
    );
    assert_eq!(
        try_sample(
            &text,
            "vitrine_source_decoder_info{source=\"door-ip\",decoder=\"openh264\",hardware=\"false\"}"
        ),
        Some(1.0),
        "{text}"
    );
    let out = sigterm_and_wait(agent.take());
    assert!(out.status.success());
    let stderr = std::fs::read_to_string(&log).unwrap();
    assert!(
        stderr.contains("H.264 decoder given up")
            && stderr.contains("simulated decoder failure")
            && stderr.contains("goes on with the next decoder"),
        "{stderr}"
    );
}

#[test]
fn probe_checks_an_rtsp_url_and_names_a_wrong_password() {
    let (_clip, server) = camera_on_rtsp();
    let ok = vitrine()
        .args(["probe", "--rtsp", &server.url(PASSWORD_IN_URL)])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&ok.stdout);
    assert!(
        ok.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(text.contains("ok: H.264 768x576 at 10.0 fps"), "{text}");
    // The decoder `auto` took, and what the box has: openh264 is built in.
    assert!(
        text.contains(&format!(
            "receiving and decoding every frame ({})",
            auto_decoder().describe()
        )),
        "{text}"
    );
    assert!(
        text.contains("H.264 decoders (RTSP cameras):")
            && text.contains("openh264  yes   built in"),
        "{text}"
    );
    assert!(
        !text.contains("advice:"),
        "a 768x576 10 fps stream is sized right: {text}"
    );
    assert!(
        text.contains("Cameras (V4L2):") && text.contains("Microphones (ALSA):"),
        "{text}"
    );
    assert!(!text.contains(PASSWORD_IN_URL), "{text}");
    // RTP over UDP (loopback) as well.
    let udp = vitrine()
        .args(["probe", "--udp", "--rtsp", &server.url(PASSWORD_IN_URL)])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&udp.stdout);
    assert!(udp.status.success(), "{text}");
    assert!(
        text.contains("(Udp, ") && text.contains("ok: H.264 768x576"),
        "{text}"
    );
    let bad = vitrine()
        .args(["probe", "--rtsp", &server.url("wrong")])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&bad.stdout);
    assert_eq!(bad.status.code(), Some(1), "{text}");
    assert!(text.contains("FAILED") && text.contains("fix:"), "{text}");
    assert!(
        text.to_lowercase().contains("401") || text.to_lowercase().contains("unauthorized"),
        "{text}"
    );
    assert!(!text.contains("wrong@"), "{text}");
}

/// The ONVIF stand-in camera on a free port, killed when dropped.
struct OnvifCamera {
    child: Child,
    port: u16,
}

impl OnvifCamera {
    fn start() -> OnvifCamera {
        let port = free_port();
        let child = Command::new("/usr/bin/python3")
            .arg(repo().join("tests/support/onvif_server.py"))
            .args([&port.to_string(), USER, PASSWORD, "rtsp://127.0.0.1:554"])
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let t = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                t.elapsed() < Duration::from_secs(20),
                "ONVIF stand-in not listening"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        OnvifCamera { child, port }
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for OnvifCamera {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A camera's streams over ONVIF: the profiles listed with size and rate, the substream marked
/// to analyse, a wrong password named. The camera is `tests/support/onvif_server.py`, a stand-in
/// that checks WS-Security digests as a camera does (no ONVIF camera is on this machine).
#[test]
fn probe_lists_a_cameras_onvif_streams_and_marks_the_substream() {
    let mut camera = OnvifCamera::start();
    let port = camera.port;
    let probe = |password: &str| {
        let out = vitrine()
            .args([
                "probe",
                "--onvif",
                &format!("{USER}:{password}@127.0.0.1:{port}"),
            ])
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (code, text) = probe(PASSWORD_IN_URL);
    camera.stop();
    let (code_gone, gone) = probe(PASSWORD_IN_URL);
    assert_eq!(code, Some(0), "{text}");
    let sub = text
        .lines()
        .find(|l| l.contains("640x360"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        sub.contains("15 fps")
            && sub.contains("rtsp://127.0.0.1:554/Streaming/Channels/102")
            && sub.contains("<- analyse this one"),
        "{text}"
    );
    assert_eq!(text.matches("<- analyse").count(), 1, "{text}");
    assert!(
        text.contains("1920x1080") && text.contains("JPEG"),
        "{text}"
    );
    assert!(
        !text.contains(PASSWORD_IN_URL) && !text.contains(PASSWORD),
        "{text}"
    );
    // The camera is gone by now: a refused connection, named, exit 1.
    assert_eq!(code_gone, Some(1), "{gone}");
    assert!(gone.contains("FAILED") && gone.contains("fix:"), "{gone}");
}

/// A wrong ONVIF password is told apart from an absent camera.
#[test]
fn probe_names_a_wrong_onvif_password() {
    let mut camera = OnvifCamera::start();
    let port = camera.port;
    let out = vitrine()
        .args([
            "probe",
            "--onvif",
            &format!("{USER}:wrong@127.0.0.1:{port}"),
        ])
        .output()
        .unwrap();
    camera.stop();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("Sender not Authorized") && text.contains("ONVIF user and password"),
        "{text}"
    );
    assert!(!text.contains("wrong@"), "{text}");
}

/// The clip at `w`x`h`, 30 fps, 8 s (a 1080p main stream and its substream twin).
fn stream_mp4(dir: &Path, w: u32, h: u32) -> PathBuf {
    let scale = format!("scale={w}:{h},fps=30");
    let args = ["-t", "8", "-vf", &scale, "-preset", "ultrafast", "-g", "30"];
    h264_mp4(dir, &format!("stream-{w}x{h}.mp4"), &args)
}

/// A camera's 1080p30 main stream is named as such, with its measured cost and the fix (its
/// substream, a lower rate); the 640x360 twin gets only the rate advice. Every decoder this box
/// has is measured on the same stream (`--decoder all`), side by side.
#[test]
fn probe_measures_a_main_stream_and_advises_the_substream() {
    let dir = tempfile::tempdir().unwrap();
    for (w, h) in [(1920, 1080), (640, 360)] {
        let server = RtspServer::start(free_port(), &stream_mp4(dir.path(), w, h));
        let out = vitrine()
            .args([
                "probe",
                "--decoder",
                "all",
                "--rtsp",
                &server.url(PASSWORD_IN_URL),
            ])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{text}");
        assert!(
            text.contains(&format!("ok: H.264 {w}x{h} at 30.0 fps")),
            "{text}"
        );
        let advice: Vec<&str> = text.lines().filter(|l| l.contains("advice:")).collect();
        let substream = advice.iter().any(|l| l.contains("substream URL"));
        assert_eq!(substream, w == 1920, "{text}");
        assert!(
            advice
                .iter()
                .any(|l| l.contains("set the camera's (sub)stream to 10 fps")),
            "{text}"
        );
        let shares: Vec<(&str, f64)> = text
            .lines()
            .filter_map(|l| {
                let rest = l.split("receiving and decoding every frame (").nth(1)?;
                let (decoder, cost) = rest.split_once("): ")?;
                let share = cost.split(" of a core").next()?.trim().parse().ok()?;
                Some((decoder, share))
            })
            .collect();
        // ffmpeg (scripts/setup.sh installs it) and the built-in openh264 at least.
        let names: Vec<&str> = shares.iter().map(|(d, _)| *d).collect();
        assert!(
            names.contains(&"ffmpeg (software)") && names.contains(&"openh264 (software)"),
            "{text}"
        );
        eprintln!("receiving and decoding {w}x{h} at 30 fps, share of a core: {shares:?}");
    }
}

/// A PulseAudio daemon with a null sink whose monitor is the default source: ALSA's default
/// device (the pulse plugin) captures whatever is played into the sink.
struct Pulse {
    runtime: tempfile::TempDir,
    home: tempfile::TempDir,
}

impl Pulse {
    fn start() -> Pulse {
        let p = Pulse {
            runtime: tempfile::tempdir().unwrap(),
            home: tempfile::tempdir().unwrap(),
        };
        p.launch();
        p
    }

    /// Start (again) the daemon with its null sink, and make the sink's monitor the default source.
    fn launch(&self) {
        let p = self;
        let st = p
            .cmd("pulseaudio")
            .args([
                "--daemonize=yes",
                "--exit-idle-time=-1",
                "-n",
                "--load=module-native-protocol-unix",
            ])
            .arg("--load=module-null-sink sink_name=fakesink rate=48000 channels=2")
            .status()
            .expect("pulseaudio runs (scripts/setup.sh installs pulseaudio pulseaudio-utils)");
        assert!(st.success(), "pulseaudio did not start");
        let t = Instant::now();
        while !p
            .cmd("pactl")
            .arg("info")
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
        {
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "pulseaudio not answering"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(p
            .cmd("pactl")
            .args(["set-default-source", "fakesink.monitor"])
            .status()
            .unwrap()
            .success());
    }

    /// The sound server goes away (its socket with it): the capture device is lost.
    fn kill(&self) {
        let _ = self.cmd("pulseaudio").arg("--kill").status();
    }

    fn cmd(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env("XDG_RUNTIME_DIR", self.runtime.path())
            .env("HOME", self.home.path());
        c
    }

    fn play(&self, wav: &Path) -> Child {
        self.cmd("paplay")
            .args(["-d", "fakesink"])
            .arg(wav)
            .spawn()
            .unwrap()
    }
}

impl Drop for Pulse {
    fn drop(&mut self) {
        let _ = self.cmd("pulseaudio").arg("--kill").status();
    }
}

/// Then the sound server is killed and restarted: the device is lost, the agent keeps running,
/// reports it down, and captures again when it returns.
#[test]
fn microphone_through_alsa_and_pulseaudio_measures_speech_ratio_and_level() {
    let dir = tempfile::tempdir().unwrap();
    let pulse = Pulse::start();
    let metrics = free_port();
    let cfg = write_config(
        dir.path(),
        &format!("[[microphones]]\nid = \"room\"\ndevice = \"default\"\n\n[privacy]\nwindow_secs = 5\n\n[status]\nmetrics = \"127.0.0.1:{metrics}\"\n"),
    );
    let log = dir.path().join("agent.log");
    let agent = Agent(Some(
        pulse
            .cmd(env!("CARGO_BIN_EXE_vitrine"))
            .env("VITRINE_LOG", "info")
            .args(["run", "-c"])
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    ));
    std::thread::sleep(Duration::from_secs(2));
    // Real speech (espeak-ng, ~14.5 s), then brown noise at -30 dBFS RMS (15 s), in real time.
    let mut speech = pulse.play(&media("speech.wav"));
    let speech_started = Instant::now();
    assert!(speech.wait().unwrap().success());
    let speech_secs = speech_started.elapsed().as_secs_f64();
    let mut noise = pulse.play(&media("noise.wav"));
    assert!(noise.wait().unwrap().success());
    std::thread::sleep(Duration::from_secs(1));
    let events = outbox_events(&dir.path().join("state"));

    // The device goes away and comes back.
    let src = "{source=\"room\",kind=\"microphone\"}";
    let up = move |t: &str| try_sample(t, &format!("vitrine_source_up{src}")) == Some(1.0);
    let analysed =
        move |t: &str| try_sample(t, &format!("vitrine_frames_analysed_total{src}")).unwrap_or(0.0);
    pulse.kill();
    let down = wait_metrics(
        metrics,
        Duration::from_secs(20),
        "microphone shown down",
        |t| {
            !up(t)
                && try_sample(t, &format!("vitrine_source_lost_total{src}")).unwrap_or(0.0) >= 1.0
        },
    );
    std::thread::sleep(Duration::from_secs(2));
    pulse.launch();
    let mut again = pulse.play(&media("speech.wav"));
    wait_metrics(metrics, Duration::from_secs(45), "microphone back", |t| {
        up(t) && analysed(t) >= analysed(&down) + 50.0
    });
    let _ = again.kill();
    let _ = again.wait();
    let out = sigterm_and_wait(agent.take());
    let stderr = std::fs::read_to_string(&log).unwrap();
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("microphone capturing"), "{stderr}");
    assert!(stderr.contains("microphone lost; reopening"), "{stderr}");
    let v = schema();
    for e in &events {
        assert_valid(&v, e);
        // Aggregates only: a window is a few hundred bytes, never audio.
        assert!(e.to_string().len() < 2048, "{e}");
    }
    let ratio = |e: &serde_json::Value| e["speech_ratio"].as_f64();
    let full: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e["coverage"]["seconds_blind"].as_f64().unwrap_or(5.0) < 1.0)
        .collect();
    assert!(
        full.len() >= 4,
        "{} fully covered windows of {}:\n{stderr}",
        full.len(),
        events.len()
    );
    let max_ratio = full.iter().filter_map(|e| ratio(e)).fold(0.0, f64::max);
    assert!(
        max_ratio > 0.4,
        "speech windows: max speech ratio {max_ratio}"
    );
    // A window of noise only: little speech, level close to the noise's -30 dBFS.
    let noise_windows: Vec<_> = full
        .iter()
        .filter(|e| ratio(e).unwrap_or(1.0) < 0.15)
        .filter_map(|e| e["level_dbfs"]["mean"].as_f64())
        .collect();
    assert!(
        noise_windows.iter().any(|db| (-34.0..=-26.0).contains(db)),
        "a noise window near -30 dBFS: {noise_windows:?} (speech took {speech_secs:.1} s)"
    );
}
