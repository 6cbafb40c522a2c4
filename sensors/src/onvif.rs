//! The streams an IP camera offers, asked over ONVIF (Profile S): its media profiles with each
//! one's encoding, size and frame-rate limit, and the RTSP URL of each (`GetProfiles`,
//! `GetStreamUri`). What `vitrine probe` lists so that a technician picks the substream.
//!
//! SOAP 1.2 over plain HTTP with a WS-Security UsernameToken (password digest, SHA-1 as the
//! standard says); a camera that insists on HTTP digest authentication instead answers 401, which
//! is reported as such. Bounded: connect and read time out, an answer is read up to 1 MiB.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use base64::Engine as _;
use sha1::{Digest, Sha1};

/// How long one ONVIF request may take (connect, send, answer).
pub const TIMEOUT: Duration = Duration::from_secs(4);
/// The most of an answer read.
const MAX_ANSWER: u64 = 1 << 20;

/// One media profile of a camera.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    pub token: String,
    pub name: String,
    /// `H264`, `H265`, `JPEG`, ... as the camera names it.
    pub encoding: String,
    pub width: u32,
    pub height: u32,
    pub fps: Option<f64>,
    /// The profile's RTSP URL (without credentials), when the camera gave one.
    pub uri: Option<String>,
}

/// Where and as whom to ask.
#[derive(Debug, Clone)]
pub struct Target {
    pub host: String,
    pub port: u16,
    pub user: Option<String>,
    pub password: Option<String>,
}

impl Target {
    /// The camera of an RTSP URL, asked on ONVIF's usual port 80 with the URL's credentials.
    pub fn from_rtsp(url: &str) -> Option<Target> {
        let u = url::Url::parse(url).ok()?;
        let dec = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        };
        Some(Target {
            host: u.host_str()?.to_string(),
            port: 80,
            user: (!u.username().is_empty()).then(|| dec(u.username())),
            password: u.password().map(dec),
        })
    }

    /// `[user:pass@]host[:port]`.
    pub fn parse(s: &str) -> Result<Target, String> {
        // Errors never echo the input: it may hold a password.
        let u = url::Url::parse(&format!("http://{s}"))
            .map_err(|e| format!("not [user:pass@]host[:port]: {e}"))?;
        let mut t = Target::from_rtsp(u.as_str().replacen("http", "rtsp", 1).as_str())
            .ok_or_else(|| "no host".to_string())?;
        t.port = u.port().unwrap_or(80);
        Ok(t)
    }
}

/// The camera's profiles, each with its stream URL.
pub fn profiles(t: &Target) -> Result<Vec<Profile>, String> {
    let caps = call(t, "/onvif/device_service", GET_CAPABILITIES)?;
    let media = media_path(&caps).unwrap_or_else(|| "/onvif/media_service".to_string());
    let answer = call(t, &media, GET_PROFILES)?;
    let mut list = parse_profiles(&answer)?;
    for p in &mut list {
        let body = GET_STREAM_URI.replace("{token}", &xml_escape(&p.token));
        p.uri = call(t, &media, &body)
            .ok()
            .and_then(|a| first_text(&a, "Uri"));
    }
    Ok(list)
}

/// The profile to analyse: the smallest H.264 one whose longer side reaches `need` pixels (the
/// detector's input), else the largest H.264 one.
pub fn recommend(list: &[Profile], need: u32) -> Option<&Profile> {
    let h264: Vec<&Profile> = list
        .iter()
        .filter(|p| p.encoding.eq_ignore_ascii_case("h264"))
        .collect();
    let long = |p: &Profile| p.width.max(p.height);
    h264.iter()
        .filter(|p| long(p) >= need)
        .min_by_key(|p| p.width * p.height)
        .or_else(|| h264.iter().max_by_key(|p| p.width * p.height))
        .copied()
}

const GET_CAPABILITIES: &str = r#"<GetCapabilities xmlns="http://www.onvif.org/ver10/device/wsdl"><Category>Media</Category></GetCapabilities>"#;
const GET_PROFILES: &str = r#"<GetProfiles xmlns="http://www.onvif.org/ver10/media/wsdl"/>"#;
const GET_STREAM_URI: &str = r#"<GetStreamUri xmlns="http://www.onvif.org/ver10/media/wsdl"><StreamSetup><Stream xmlns="http://www.onvif.org/ver10/schema">RTP-Unicast</Stream><Transport xmlns="http://www.onvif.org/ver10/schema"><Protocol>RTSP</Protocol></Transport></StreamSetup><ProfileToken>{token}</ProfileToken></GetStreamUri>"#;

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The WS-Security header: PasswordDigest = Base64(SHA-1(nonce + created + password)).
fn security(user: &str, password: &str, nonce: &[u8], created: &str) -> String {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut h = Sha1::new();
    h.update(nonce);
    h.update(created.as_bytes());
    h.update(password.as_bytes());
    let digest = b64.encode(h.finalize());
    format!(
        r#"<Security xmlns="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"><UsernameToken><Username>{}</Username><Password Type="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordDigest">{digest}</Password><Nonce EncodingType="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary">{}</Nonce><Created xmlns="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd">{created}</Created></UsernameToken></Security>"#,
        xml_escape(user),
        b64.encode(nonce)
    )
}

fn envelope(t: &Target, body: &str) -> String {
    let header = match (&t.user, &t.password) {
        (Some(u), p) => {
            let nonce: [u8; 16] = std::array::from_fn(|_| rand_byte());
            security(u, p.as_deref().unwrap_or(""), &nonce, &utc_now())
        }
        _ => String::new(),
    };
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Header>{header}</s:Header><s:Body>{body}</s:Body></s:Envelope>"#
    )
}

/// A byte from the OS's random source (a nonce need not be secret, only fresh).
fn rand_byte() -> u8 {
    let mut b = [0u8; 1];
    // SAFETY: getrandom writes at most one byte into the buffer we own.
    let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), 1, 0) };
    if n == 1 {
        b[0]
    } else {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos() as u8)
    }
}

/// Now as `2026-12-05T17:20:00Z` (the clock the camera compares with: keep the box on NTP).
fn utc_now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// POST one SOAP request; the answer's body, or why not.
fn call(t: &Target, path: &str, body: &str) -> Result<String, String> {
    let at = format!("{}:{}", t.host, t.port);
    let addr = at
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {at}: {e}"))?
        .next()
        .ok_or_else(|| format!("{at} has no address"))?;
    let mut s = TcpStream::connect_timeout(&addr, TIMEOUT)
        .map_err(|e| format!("no ONVIF answer at {at}: {e}"))?;
    s.set_read_timeout(Some(TIMEOUT))
        .map_err(|e| e.to_string())?;
    s.set_write_timeout(Some(TIMEOUT))
        .map_err(|e| e.to_string())?;
    let xml = envelope(t, body);
    // HTTP/1.0: the answer ends with the connection, never chunked.
    let req = format!(
        "POST {path} HTTP/1.0\r\nHost: {at}\r\nContent-Type: application/soap+xml; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{xml}",
        xml.len()
    );
    s.write_all(req.as_bytes())
        .map_err(|e| format!("{at}: sending the request: {e}"))?;
    let mut raw = Vec::new();
    s.take(MAX_ANSWER)
        .read_to_end(&mut raw)
        .map_err(|e| format!("{at}: reading the answer: {e}"))?;
    let text = String::from_utf8_lossy(&raw);
    let (head, answer) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("{at}: not an HTTP answer"))?;
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    match status {
        200 => Ok(answer.to_string()),
        401 => Err(format!(
            "{at}{path}: 401 unauthorized (wrong user or password, or the camera wants HTTP digest authentication)"
        )),
        _ => Err(match first_text(answer, "Text") {
            Some(reason) => format!("{at}{path}: {status}: {reason}"),
            None => format!("{at}{path}: HTTP {status}"),
        }),
    }
}

/// The text of the first element named `local` (any namespace).
fn first_text(xml: &str, local: &str) -> Option<String> {
    let doc = roxmltree::Document::parse(xml).ok()?;
    doc.descendants()
        .find(|n| n.tag_name().name() == local)
        .and_then(|n| n.text())
        .map(|s| s.trim().to_string())
}

/// The media service's path from a `GetCapabilities` answer (`.../Media/XAddr`).
fn media_path(xml: &str) -> Option<String> {
    let doc = roxmltree::Document::parse(xml).ok()?;
    let media = doc.descendants().find(|n| n.tag_name().name() == "Media")?;
    let xaddr = media
        .descendants()
        .find(|n| n.tag_name().name() == "XAddr")?
        .text()?;
    url::Url::parse(xaddr.trim())
        .ok()
        .map(|u| u.path().to_string())
}

fn parse_profiles(xml: &str) -> Result<Vec<Profile>, String> {
    let doc = roxmltree::Document::parse(xml).map_err(|e| format!("not XML: {e}"))?;
    let child_text = |n: roxmltree::Node, name: &str| {
        n.descendants()
            .find(|c| c.tag_name().name() == name)
            .and_then(|c| c.text())
            .map(|s| s.trim().to_string())
    };
    let list: Vec<Profile> = doc
        .descendants()
        .filter(|n| n.tag_name().name() == "Profiles")
        .map(|p| {
            let enc = p
                .descendants()
                .find(|c| c.tag_name().name() == "VideoEncoderConfiguration");
            let num = |name: &str| {
                enc.and_then(|e| child_text(e, name))
                    .and_then(|v| v.parse::<f64>().ok())
            };
            Profile {
                token: p.attribute("token").unwrap_or_default().to_string(),
                name: child_text(p, "Name").unwrap_or_default(),
                encoding: enc
                    .and_then(|e| child_text(e, "Encoding"))
                    .unwrap_or_default(),
                width: num("Width").unwrap_or(0.0) as u32,
                height: num("Height").unwrap_or(0.0) as u32,
                fps: num("FrameRateLimit"),
                uri: None,
            }
        })
        .collect();
    if list.is_empty() {
        return Err("the camera answered GetProfiles with no profile".into());
    }
    Ok(list)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_digest_is_the_standards() {
        // ONVIF Application Programmer's Guide, 6.1.1.3: nonce, created and password as given
        // there; the digest it states.
        let b64 = base64::engine::general_purpose::STANDARD;
        let nonce = b64.decode("LKqI6G/AikKCQrN0zqZFlg==").unwrap();
        let h = security("admin", "userpassword", &nonce, "2010-09-16T07:50:45Z");
        assert!(h.contains(">tuOSpGlFlIXsozq4HFNeeGeFLEI=<"), "{h}");
    }

    #[test]
    fn profiles_are_read_from_a_cameras_answer_and_the_substream_recommended() {
        let xml = r#"<?xml version="1.0"?><s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:trt="http://www.onvif.org/ver10/media/wsdl" xmlns:tt="http://www.onvif.org/ver10/schema"><s:Body><trt:GetProfilesResponse>
          <trt:Profiles token="main"><tt:Name>mainStream</tt:Name><tt:VideoEncoderConfiguration token="v1"><tt:Encoding>H264</tt:Encoding><tt:Resolution><tt:Width>1920</tt:Width><tt:Height>1080</tt:Height></tt:Resolution><tt:RateControl><tt:FrameRateLimit>25</tt:FrameRateLimit></tt:RateControl></tt:VideoEncoderConfiguration></trt:Profiles>
          <trt:Profiles token="sub"><tt:Name>subStream</tt:Name><tt:VideoEncoderConfiguration token="v2"><tt:Encoding>H264</tt:Encoding><tt:Resolution><tt:Width>640</tt:Width><tt:Height>360</tt:Height></tt:Resolution><tt:RateControl><tt:FrameRateLimit>15</tt:FrameRateLimit></tt:RateControl></tt:VideoEncoderConfiguration></trt:Profiles>
          <trt:Profiles token="tiny"><tt:Name>third</tt:Name><tt:VideoEncoderConfiguration><tt:Encoding>JPEG</tt:Encoding><tt:Resolution><tt:Width>320</tt:Width><tt:Height>180</tt:Height></tt:Resolution></tt:VideoEncoderConfiguration></trt:Profiles>
        </trt:GetProfilesResponse></s:Body></s:Envelope>"#;
        let list = parse_profiles(xml).unwrap();
        assert_eq!(list.len(), 3);
        assert_eq!(
            (
                list[0].token.as_str(),
                list[0].width,
                list[0].height,
                list[0].fps
            ),
            ("main", 1920, 1080, Some(25.0))
        );
        assert_eq!(recommend(&list, 640).map(|p| p.token.as_str()), Some("sub"));
        // Only a main stream: that one, large as it is.
        assert_eq!(
            recommend(&list[..1], 640).map(|p| p.token.as_str()),
            Some("main")
        );
    }

    #[test]
    fn a_target_comes_from_an_rtsp_url_or_host_port() {
        let t =
            Target::from_rtsp("rtsp://admin:p%40ss@10.0.0.11:554/Streaming/Channels/101").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("10.0.0.11", 80));
        assert_eq!(
            (t.user.as_deref(), t.password.as_deref()),
            (Some("admin"), Some("p@ss"))
        );
        let t = Target::parse("u:pw@cam.local:8080").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.user.as_deref()),
            ("cam.local", 8080, Some("u"))
        );
        assert!(Target::parse("").is_err());
        let now = utc_now();
        assert!(
            now.parse::<jiff::Timestamp>().is_ok() && now.len() == 20,
            "{now}"
        );
    }
}
