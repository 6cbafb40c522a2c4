//! `vitrine probe`: what a field technician needs to fill the config: the V4L2 cameras with
//! the modes they offer (and the one Vitrine would choose), the capture devices with their
//! configurations, a check of an RTSP URL (connect, first decoded frame), and the arithmetic the
//! models run in on this CPU.

use std::fmt::Write as _;
use std::process::ExitCode;

/// Print the report; exit 0 when everything asked for answered, 1 when an RTSP check failed.
pub fn probe(
    rtsp: &[String],
    udp: bool,
    decoder: &str,
    onvif: &[String],
) -> anyhow::Result<ExitCode> {
    let decoders = decoders_to_try(decoder)?;
    let mut out = String::new();
    let mut ok = true;
    cpu(&mut out);
    cameras(&mut out);
    microphones(&mut out);
    h264_decoders(&mut out);
    for target in onvif {
        ok &= onvif_streams(&mut out, target, true);
    }
    for url in rtsp {
        onvif_streams(&mut out, url, false);
        for d in &decoders {
            ok &= rtsp_check(&mut out, url, udp, *d);
        }
    }
    print!("{out}");
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The CPU's features and the arithmetic `[models] precision = "auto"` takes on them.
fn cpu(out: &mut String) {
    let cpu = vitrine_models::Cpu::detect();
    let (_, why) = cpu.float_choice();
    let _ = writeln!(out, "CPU: {}", cpu.describe());
    let _ = writeln!(
        out,
        "  -> precision = \"auto\" runs the models in {why} (a verified int8 file instead where it measures faster)"
    );
}

#[cfg(feature = "v4l")]
fn cameras(out: &mut String) {
    use vitrine_sensors::live::{choose, LiveRequest};
    let _ = writeln!(out, "Cameras (V4L2):");
    match vitrine_sensors::v4l2::probe() {
        Ok(list) if list.is_empty() => {
            let _ = writeln!(out, "  none found (no /dev/video* capture node)");
        }
        Ok(list) => {
            for c in list {
                let _ = writeln!(out, "  {}  {}", c.path.display(), c.name);
                match c.offers {
                    Ok(offers) => {
                        for o in &offers {
                            let fps: Vec<String> = o.fps.iter().map(|f| f.to_string()).collect();
                            let _ = writeln!(
                                out,
                                "    {:<6} {:>4}x{:<4} fps {}",
                                o.format.name(),
                                o.width,
                                o.height,
                                fps.join(",")
                            );
                        }
                        let req = LiveRequest::new(5.0, None, std::time::Instant::now());
                        match choose(&offers, &req) {
                            Ok(ch) => {
                                let _ = writeln!(
                                    out,
                                    "    -> at fps = 5 Vitrine would capture {} {}x{} at {} fps: device = \"{}\"",
                                    ch.format,
                                    ch.width,
                                    ch.height,
                                    ch.fps,
                                    c.path.display()
                                );
                            }
                            Err(e) => {
                                let _ = writeln!(out, "    -> not usable: {e}");
                            }
                        }
                    }
                    Err(e) => {
                        let _ = writeln!(out, "    {e}");
                    }
                }
            }
        }
        Err(e) => {
            let _ = writeln!(out, "  cannot list: {e}");
        }
    }
}

#[cfg(not(feature = "v4l"))]
fn cameras(out: &mut String) {
    let _ = writeln!(out, "Cameras (V4L2): not in this build (feature `v4l`)");
}

#[cfg(feature = "alsa")]
fn microphones(out: &mut String) {
    let _ = writeln!(out, "Microphones (ALSA):");
    match vitrine_sensors::mic::probe() {
        Ok(list) if list.is_empty() => {
            let _ = writeln!(out, "  none found");
        }
        Ok(list) => {
            for m in list {
                let _ = writeln!(
                    out,
                    "  device = \"{}\"{}  {}",
                    m.id,
                    if m.is_default { " (default)" } else { "" },
                    m.name
                );
                match m.configs {
                    Ok(c) if c.is_empty() => {
                        let _ = writeln!(out, "    no capture configurations");
                    }
                    Ok(c) => {
                        for c in c {
                            let _ = writeln!(out, "    {c}");
                        }
                    }
                    Err(e) => {
                        let _ = writeln!(out, "    cannot read configurations: {e}");
                    }
                }
            }
        }
        Err(e) => {
            let _ = writeln!(out, "  cannot list: {e}");
        }
    }
}

#[cfg(not(feature = "alsa"))]
fn microphones(out: &mut String) {
    let _ = writeln!(
        out,
        "Microphones (ALSA): not in this build (feature `alsa`)"
    );
}

/// `--decoder`: one config spelling, or `all` (each decoder this box has, measured in turn).
fn decoders_to_try(name: &str) -> anyhow::Result<Vec<vitrine_config::VideoDecoder>> {
    use vitrine_config::VideoDecoder as V;
    if name == "all" {
        #[cfg(feature = "rtsp")]
        {
            use vitrine_sensors::h264::DecoderKind as K;
            return Ok(vitrine_sensors::h264::survey()
                .into_iter()
                .filter(|(_, r)| r.is_ok())
                .map(|(k, _)| match k {
                    K::Vaapi => V::Vaapi,
                    K::V4l2m2m => V::V4l2m2m,
                    K::Rkmpp => V::Rkmpp,
                    K::Ffmpeg => V::Ffmpeg,
                    K::Openh264 => V::Openh264,
                })
                .collect());
        }
    }
    V::ALL
        .into_iter()
        .find(|v| v.name() == name)
        .map(|v| vec![v])
        .ok_or_else(|| {
            anyhow::anyhow!(
                "--decoder {name:?} is not a decoder; fix: use all, {}",
                V::ALL.map(V::name).join(", ")
            )
        })
}

/// The streams a camera offers over ONVIF, the one to analyse marked. `explicit`: `--onvif
/// TARGET` (a failure fails the probe); else the camera of an `--rtsp` URL, asked on port 80
/// (no answer is only noted: many cameras serve ONVIF elsewhere, or not at all).
#[cfg(feature = "rtsp")]
fn onvif_streams(out: &mut String, target: &str, explicit: bool) -> bool {
    use vitrine_sensors::onvif::{profiles, recommend, Target};
    let t = if explicit {
        Target::parse(target)
    } else {
        Target::from_rtsp(target).ok_or_else(|| "no host in the URL".to_string())
    };
    let t = match t {
        Ok(t) => t,
        Err(e) => {
            let _ = writeln!(out, "ONVIF: FAILED: {e}; fix: give [user:pass@]host[:port]");
            return false;
        }
    };
    let _ = writeln!(out, "ONVIF {}:{} (the camera's streams):", t.host, t.port);
    match profiles(&t) {
        Ok(list) => {
            let need = vitrine_sensors::stream::SUBSTREAM.0;
            let pick = recommend(&list, need).map(|p| p.token.clone());
            for p in &list {
                let fps = p.fps.map_or("-".to_string(), |f| format!("{f:.0} fps"));
                let mark = if pick.as_deref() == Some(p.token.as_str()) {
                    "  <- analyse this one (the smallest H.264 stream at least 640 px wide)"
                } else {
                    ""
                };
                let _ = writeln!(
                    out,
                    "  {:<16} {:<5} {:>4}x{:<4} {:>7}  {}{mark}",
                    p.name,
                    p.encoding,
                    p.width,
                    p.height,
                    fps,
                    p.uri.as_deref().unwrap_or("(no stream URL given)")
                );
            }
            true
        }
        Err(e) if explicit => {
            let _ = writeln!(out, "  FAILED: {e}; fix: check the address, ONVIF user and password (the camera's ONVIF settings)");
            false
        }
        Err(e) => {
            let _ = writeln!(
                out,
                "  not answered ({e}): only the URL's own stream is checked below"
            );
            true
        }
    }
}

#[cfg(not(feature = "rtsp"))]
fn onvif_streams(out: &mut String, _target: &str, _explicit: bool) -> bool {
    let _ = writeln!(out, "ONVIF: not in this build (feature `rtsp`)");
    false
}

/// The H.264 decoders this box can run for RTSP cameras, and why the others cannot.
#[cfg(feature = "rtsp")]
fn h264_decoders(out: &mut String) {
    use vitrine_sensors::h264::{chain, survey, DecoderChoice};
    let s = survey();
    let _ = writeln!(out, "H.264 decoders (RTSP cameras):");
    for (k, r) in &s {
        let _ = match r {
            Ok(what) => writeln!(out, "  {:<9} yes   {what}", k.name()),
            Err(why) => writeln!(out, "  {:<9} no    {why}", k.name()),
        };
    }
    let order: Vec<&str> = chain(DecoderChoice::Auto, &s)
        .into_iter()
        .map(|k| k.name())
        .collect();
    let _ = writeln!(
        out,
        "  -> decoder = \"auto\" tries {}",
        order.join(", then ")
    );
}

#[cfg(not(feature = "rtsp"))]
fn h264_decoders(_out: &mut String) {}

#[cfg(feature = "rtsp")]
fn rtsp_check(
    out: &mut String,
    url: &str,
    udp: bool,
    decoder: vitrine_config::VideoDecoder,
) -> bool {
    use vitrine_sensors::rtsp::{check, redact, RtspTransport};
    let t = if udp {
        RtspTransport::Udp
    } else {
        RtspTransport::Tcp
    };
    let _ = writeln!(
        out,
        "RTSP {} ({:?}, decoder {}):",
        redact(url),
        t,
        decoder.name()
    );
    let choice = crate::pipeline::decoder_choice(decoder);
    match check(url, t, choice, vitrine_config::DEFAULT_FPS) {
        Ok(r) => {
            let fps = r
                .fps
                .map_or("an unknown rate".into(), |f| format!("{f:.1} fps"));
            let _ = writeln!(
                out,
                "  ok: H.264 {}x{} at {fps}, first frame decoded after {} ms: rtsp = \"{}\"",
                r.width, r.height, r.first_frame_ms, r.url
            );
            for g in &r.given_up {
                let _ = writeln!(out, "  decoder given up: {g}");
            }
            if let Some(share) = r.core_share {
                let _ = writeln!(
                    out,
                    "  receiving and decoding every frame ({}): {:.3} of a core of this machine \
                     per camera, whatever the analysis rate",
                    r.decoder, share
                );
            }
            if let Some(d) = r.disposable.filter(|&d| d > 0.0) {
                let _ = writeln!(
                    out,
                    "  {:.0} % of its frames are referred to by no other: the agent decodes \
                     those only when analysis takes them",
                    d * 100.0
                );
            }
            for a in &r.advice {
                let _ = writeln!(out, "  advice: {a}");
            }
            true
        }
        Err(e) => {
            let _ = writeln!(out, "  FAILED: {e}");
            false
        }
    }
}

#[cfg(not(feature = "rtsp"))]
fn rtsp_check(
    out: &mut String,
    url: &str,
    _udp: bool,
    _decoder: vitrine_config::VideoDecoder,
) -> bool {
    let _ = writeln!(out, "RTSP {url}: not in this build (feature `rtsp`)");
    false
}
