//! The status screen: a 320x240 page drawn with `embedded-graphics` from a [`Snapshot`]
//! (aggregates and counters only, never a pixel of a camera) and shown on a [`Panel`]: a Linux
//! framebuffer, a PNG file, or (behind the same trait) an SPI/I2C panel driver.
//!
//! Drawing is pure: the same snapshot gives the same pixels, so tests compare renders.

use std::io::Write;
use std::path::{Path, PathBuf};

use embedded_graphics::mono_font::ascii::{FONT_10X20, FONT_6X10, FONT_7X13, FONT_7X13_BOLD};
use embedded_graphics::mono_font::MonoTextStyle;
use embedded_graphics::pixelcolor::Rgb888;
use embedded_graphics::prelude::*;
use embedded_graphics::primitives::{Circle, PrimitiveStyle, Rectangle};
use embedded_graphics::text::{Baseline, Text};

use crate::telemetry::{Broker, Snapshot};

pub const WIDTH: u32 = 320;
pub const HEIGHT: u32 = 240;
/// The notice staff and shoppers read on the screen.
pub const PRIVACY_NOTICE: &str = "Analytics only: no images stored";
const NOTICE_2: &str = "no audio recorded, nothing identifies you";

const BG: Rgb888 = Rgb888::new(16, 20, 28);
const FG: Rgb888 = Rgb888::new(230, 232, 236);
const DIM: Rgb888 = Rgb888::new(140, 148, 160);
const OK: Rgb888 = Rgb888::new(60, 200, 110);
const BAD: Rgb888 = Rgb888::new(235, 80, 70);
const WARN: Rgb888 = Rgb888::new(240, 180, 50);
const BAR: Rgb888 = Rgb888::new(36, 44, 60);
const NOTICE_BG: Rgb888 = Rgb888::new(20, 90, 140);

/// An in-memory RGB888 image that `embedded-graphics` draws into.
#[derive(Clone, PartialEq, Eq)]
pub struct Canvas {
    pub width: u32,
    pub height: u32,
    /// Row-major RGB triplets.
    pub rgb: Vec<u8>,
}

impl std::fmt::Debug for Canvas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Canvas({}x{})", self.width, self.height)
    }
}

impl Canvas {
    pub fn new(width: u32, height: u32) -> Canvas {
        Canvas {
            width,
            height,
            rgb: vec![0; (width * height * 3) as usize],
        }
    }

    pub fn pixel(&self, x: u32, y: u32) -> [u8; 3] {
        let i = ((y * self.width + x) * 3) as usize;
        [self.rgb[i], self.rgb[i + 1], self.rgb[i + 2]]
    }
}

impl OriginDimensions for Canvas {
    fn size(&self) -> Size {
        Size::new(self.width, self.height)
    }
}

impl DrawTarget for Canvas {
    type Color = Rgb888;
    type Error = std::convert::Infallible;

    fn draw_iter<I>(&mut self, pixels: I) -> Result<(), Self::Error>
    where
        I: IntoIterator<Item = Pixel<Self::Color>>,
    {
        for Pixel(p, c) in pixels {
            if p.x >= 0 && p.y >= 0 && (p.x as u32) < self.width && (p.y as u32) < self.height {
                let i = ((p.y as u32 * self.width + p.x as u32) * 3) as usize;
                self.rgb[i..i + 3].copy_from_slice(&[c.r(), c.g(), c.b()]);
            }
        }
        Ok(())
    }
}

fn text(c: &mut Canvas, s: &str, x: i32, y: i32, style: MonoTextStyle<'_, Rgb888>) {
    let _ = Text::with_baseline(s, Point::new(x, y), style, Baseline::Top).draw(c);
}

fn fill(c: &mut Canvas, x: i32, y: i32, w: u32, h: u32, color: Rgb888) {
    let _ = Rectangle::new(Point::new(x, y), Size::new(w, h))
        .into_styled(PrimitiveStyle::with_fill(color))
        .draw(c);
}

fn dot(c: &mut Canvas, x: i32, y: i32, color: Rgb888) {
    let _ = Circle::new(Point::new(x, y), 9)
        .into_styled(PrimitiveStyle::with_fill(color))
        .draw(c);
}

fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
        t.push('~');
        t
    }
}

fn age(s: u64) -> String {
    match s {
        0..=119 => format!("{s} s"),
        120..=3599 => format!("{} min", s / 60),
        3600..=172_799 => format!("{} h {} min", s / 3600, s % 3600 / 60),
        _ => format!("{} days", s / 86_400),
    }
}

/// Draw the status page for `s` (320x240).
pub fn render(s: &Snapshot) -> Canvas {
    let mut c = Canvas::new(WIDTH, HEIGHT);
    let _ = c.clear(BG);
    let big = MonoTextStyle::new(&FONT_10X20, FG);
    let bold = MonoTextStyle::new(&FONT_7X13_BOLD, FG);
    let label = MonoTextStyle::new(&FONT_7X13, DIM);
    let value = MonoTextStyle::new(&FONT_7X13, FG);
    let small = MonoTextStyle::new(&FONT_6X10, DIM);

    // Title bar: product, device, store.
    fill(&mut c, 0, 0, WIDTH, 28, BAR);
    text(&mut c, "VITRINE", 8, 4, big);
    text(&mut c, &clip(&s.device_id, 22), 90, 2, bold);
    text(
        &mut c,
        &clip(&format!("store {}", s.store_id), 34),
        90,
        15,
        small,
    );

    // Overall state at a glance.
    let all_up = s.failed.is_empty() && s.sources.iter().all(|x| x.up);
    let broker_ok = s.broker != Broker::Disconnected;
    let (state, color) = match (all_up, broker_ok) {
        (true, true) => ("RUNNING", OK),
        (false, _) if s.sources_up() == 0 => ("NO SOURCE", BAD),
        _ => ("DEGRADED", WARN),
    };
    fill(&mut c, 236, 6, 78, 16, color);
    text(
        &mut c,
        state,
        240,
        7,
        MonoTextStyle::new(&FONT_7X13_BOLD, BG),
    );

    // Key figures.
    let mut y = 36;
    let row = |c: &mut Canvas, y: i32, l: &str, v: &str, col: Rgb888| {
        text(c, l, 8, y, label);
        text(c, v, 96, y, MonoTextStyle::new(&FONT_7X13, col));
    };
    let people = match s.occupancy() {
        Some(n) => n.to_string(),
        None if s.sources.iter().any(|x| x.kind == "camera" && x.up) => {
            format!("fewer than {}", s.k_min)
        }
        None => "-".to_string(),
    };
    text(&mut c, "In view now", 8, y, label);
    text(&mut c, &people, 96, y - 3, big);
    y += 22;
    let cams = s.sources.iter().filter(|x| x.kind == "camera").count();
    let mics = s.sources.len() - cams;
    row(
        &mut c,
        y,
        "Sources",
        &format!(
            "{}/{} up ({cams} camera{}, {mics} mic{})",
            s.sources_up(),
            s.sources_total(),
            if cams == 1 { "" } else { "s" },
            if mics == 1 { "" } else { "s" }
        ),
        if all_up { FG } else { WARN },
    );
    y += 16;
    let (b, bc) = match s.broker {
        Broker::None => ("none configured (outbox only)".to_string(), DIM),
        Broker::Connected => (format!("connected, {} acked", s.uplink.acked), OK),
        Broker::Disconnected => ("disconnected, retrying".to_string(), BAD),
    };
    row(&mut c, y, "Broker", &b, bc);
    y += 16;
    let ob = match s.outbox_oldest_s {
        Some(a) if s.outbox_events > 0 => {
            format!("{} waiting, oldest {}", s.outbox_events, age(a))
        }
        _ => format!("{} waiting", s.outbox_events),
    };
    row(
        &mut c,
        y,
        "Outbox",
        &ob,
        if s.outbox_events > 100 { WARN } else { FG },
    );
    y += 16;
    // The arithmetic the detector runs in (`[models] precision`) beside the uptime: a
    // technician checks it once; the source lines below need the room.
    let uptime = match s.models.as_deref().and_then(|m| m.rsplit(' ').next()) {
        Some(arith) => format!("{}, models in {arith}", age(s.uptime_s)),
        None => age(s.uptime_s),
    };
    row(&mut c, y, "Uptime", &clip(&uptime, 31), FG);
    y += 20;

    // One line per source, up to what fits above the notice.
    fill(&mut c, 8, y - 4, WIDTH - 16, 1, BAR);
    let lines: Vec<(String, bool)> = s
        .sources
        .iter()
        .map(|x| {
            let mut detail = if x.dropped > 0 {
                format!("{} analysed, {} dropped", x.analysed, x.dropped)
            } else {
                format!("{} analysed", x.analysed)
            };
            // An IP camera's decoder (its short name): a technician sees a hardware decoder
            // given up without reading the journal.
            if let Some(d) = x.decoder.and_then(|d| d.split(' ').next()) {
                detail.push_str(&format!(", {d}"));
            }
            (
                format!("{:<10} {}", clip(&x.id, 10), clip(&detail, 28)),
                x.up,
            )
        })
        .chain(
            s.failed
                .iter()
                .map(|id| (format!("{:<10} not started", clip(id, 10)), false)),
        )
        .collect();
    let mut bottom = HEIGHT as i32 - 44;
    if let Some(setup) = &s.setup {
        // The technician's setup view is open: its address and one-time token.
        bottom -= 18;
        fill(&mut c, 0, bottom + 2, WIDTH, 18, WARN);
        text(
            &mut c,
            &clip(&format!("SETUP {setup}"), 52),
            6,
            bottom + 4,
            MonoTextStyle::new(&FONT_6X10, BG),
        );
    }
    let room = ((bottom - y) / 14).max(0) as usize;
    for (i, (l, up)) in lines.iter().enumerate().take(room) {
        let last = i + 1 == room && lines.len() > room;
        let yy = y + i as i32 * 14;
        if last {
            text(
                &mut c,
                &format!("... and {} more", lines.len() - i),
                24,
                yy,
                label,
            );
        } else {
            dot(&mut c, 8, yy + 2, if *up { OK } else { BAD });
            text(&mut c, l, 24, yy, value);
        }
    }

    // The privacy notice, always visible at the bottom.
    fill(&mut c, 0, HEIGHT as i32 - 38, WIDTH, 38, NOTICE_BG);
    text(&mut c, PRIVACY_NOTICE, 8, HEIGHT as i32 - 34, bold);
    text(
        &mut c,
        NOTICE_2,
        8,
        HEIGHT as i32 - 17,
        MonoTextStyle::new(&FONT_6X10, FG),
    );
    c
}

/// Where a rendered page goes. An SPI/I2C panel driver implements this too.
pub trait Panel: Send {
    fn show(&mut self, page: &Canvas) -> std::io::Result<()>;
    fn describe(&self) -> String;
}

/// Encode a canvas as PNG.
pub fn png_bytes(page: &Canvas) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, page.width, page.height);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut w = enc.write_header().map_err(std::io::Error::other)?;
        w.write_image_data(&page.rgb)
            .map_err(std::io::Error::other)?;
    }
    Ok(out)
}

/// Decode an 8-bit RGB or RGBA PNG (tests compare renders with it).
pub fn read_png(path: &Path) -> std::io::Result<Canvas> {
    let dec = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path)?));
    let mut r = dec.read_info().map_err(std::io::Error::other)?;
    let mut buf = vec![0; r.output_buffer_size().unwrap_or(0)];
    let info = r.next_frame(&mut buf).map_err(std::io::Error::other)?;
    let px = match info.color_type {
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        other => {
            return Err(std::io::Error::other(format!(
                "{}: {other:?} PNG, expected RGB",
                path.display()
            )))
        }
    };
    let mut c = Canvas::new(info.width, info.height);
    for (i, p) in buf[..info.buffer_size()].chunks(px).enumerate() {
        c.rgb[i * 3..i * 3 + 3].copy_from_slice(&p[..3]);
    }
    Ok(c)
}

/// A PNG file, replaced atomically (write + rename) so a viewer never reads half a file.
pub struct PngPanel {
    pub path: PathBuf,
}

impl Panel for PngPanel {
    fn show(&mut self, page: &Canvas) -> std::io::Result<()> {
        let tmp = self.path.with_extension("png.tmp");
        std::fs::write(&tmp, png_bytes(page)?)?;
        std::fs::rename(&tmp, &self.path)
    }

    fn describe(&self) -> String {
        format!("PNG {}", self.path.display())
    }
}

/// Pixel layouts of Linux framebuffers we draw on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FbFormat {
    /// 16 bpp RGB565 (most SPI TFT panels under fbtft, the Pi's default console).
    Rgb565,
    /// 32 bpp, bytes B, G, R, X (XRGB8888 little-endian: HDMI/DRM emulated fbdev).
    Xrgb8888,
}

/// A Linux framebuffer device (`/dev/fb0`): the page is drawn at the top-left corner.
pub struct Framebuffer {
    path: PathBuf,
    width: u32,
    height: u32,
    stride: u32,
    format: FbFormat,
}

impl Framebuffer {
    /// Open `/dev/fbN`, reading its geometry from `/sys/class/graphics/fbN/`.
    pub fn open(dev: &Path) -> std::io::Result<Framebuffer> {
        let name = dev.file_name().and_then(|n| n.to_str()).unwrap_or("fb0");
        let sys = Path::new("/sys/class/graphics").join(name);
        let read = |f: &str| -> std::io::Result<String> {
            std::fs::read_to_string(sys.join(f))
                .map(|s| s.trim().to_string())
                .map_err(|e| {
                    std::io::Error::new(
                        e.kind(),
                        format!(
                            "{}: {e} (is {} a framebuffer? fix: set status.display to an existing /dev/fbN, or to a .png path)",
                            sys.join(f).display(),
                            dev.display()
                        ),
                    )
                })
        };
        let size = read("virtual_size")?;
        let (w, h) = size
            .split_once(',')
            .and_then(|(w, h)| Some((w.parse().ok()?, h.parse().ok()?)))
            .ok_or_else(|| std::io::Error::other(format!("odd virtual_size {size:?}")))?;
        let bpp: u32 = read("bits_per_pixel")?
            .parse()
            .map_err(std::io::Error::other)?;
        let stride: u32 = read("stride")?.parse().map_err(std::io::Error::other)?;
        Framebuffer::with_geometry(dev, w, h, bpp, stride)
    }

    pub fn with_geometry(
        dev: &Path,
        width: u32,
        height: u32,
        bpp: u32,
        stride: u32,
    ) -> std::io::Result<Framebuffer> {
        let format = match bpp {
            16 => FbFormat::Rgb565,
            32 => FbFormat::Xrgb8888,
            b => {
                return Err(std::io::Error::other(format!(
                    "{}: {b} bits per pixel is not supported (16 or 32)",
                    dev.display()
                )))
            }
        };
        Ok(Framebuffer {
            path: dev.to_path_buf(),
            width,
            height,
            stride,
            format,
        })
    }

    /// The bytes of the framebuffer rows the page covers (row stride as the device's).
    pub fn encode(&self, page: &Canvas) -> Vec<u8> {
        let w = page.width.min(self.width);
        let h = page.height.min(self.height);
        let mut out = vec![0u8; (self.stride * h) as usize];
        for y in 0..h {
            let row = &mut out[(y * self.stride) as usize..];
            for x in 0..w {
                let [r, g, b] = page.pixel(x, y);
                match self.format {
                    FbFormat::Rgb565 => {
                        let v = (u16::from(r >> 3) << 11)
                            | (u16::from(g >> 2) << 5)
                            | u16::from(b >> 3);
                        row[(x * 2) as usize..(x * 2 + 2) as usize]
                            .copy_from_slice(&v.to_le_bytes());
                    }
                    FbFormat::Xrgb8888 => {
                        row[(x * 4) as usize..(x * 4 + 4) as usize].copy_from_slice(&[b, g, r, 0]);
                    }
                }
            }
        }
        out
    }
}

impl Panel for Framebuffer {
    fn show(&mut self, page: &Canvas) -> std::io::Result<()> {
        // Row by row, so pixels right of the page (wider screens) are left as they are.
        let bytes = self.encode(page);
        let per_px = if self.format == FbFormat::Rgb565 {
            2
        } else {
            4
        };
        let row_len = (page.width.min(self.width) * per_px) as usize;
        let mut f = std::fs::OpenOptions::new().write(true).open(&self.path)?;
        for (y, row) in bytes.chunks(self.stride as usize).enumerate() {
            use std::io::Seek;
            f.seek(std::io::SeekFrom::Start(y as u64 * u64::from(self.stride)))?;
            f.write_all(&row[..row_len])?;
        }
        f.flush()
    }

    fn describe(&self) -> String {
        format!(
            "framebuffer {} ({}x{}, {:?})",
            self.path.display(),
            self.width,
            self.height,
            self.format
        )
    }
}

/// The panel named by the configuration.
pub fn open(d: &vitrine_config::Display) -> std::io::Result<Box<dyn Panel>> {
    Ok(match d {
        vitrine_config::Display::Png(p) => Box::new(PngPanel { path: p.clone() }),
        vitrine_config::Display::Framebuffer(p) => Box::new(Framebuffer::open(p)?),
    })
}

/// A fixed snapshot for docs and render tests: a busy store with one camera down.
pub fn sample_snapshot() -> Snapshot {
    use crate::telemetry::SourceStatus;
    use crate::telemetry::UplinkStats;
    let cam = |id: &str, up: bool, analysed: u64, dropped: u64, occ: u64| SourceStatus {
        id: id.into(),
        kind: "camera",
        up,
        analysed,
        dropped,
        decoder: None,
        occupancy: Some(occ),
    };
    Snapshot {
        device_id: "box-entrance-1".into(),
        store_id: "store-0042".into(),
        uptime_s: 3 * 3600 + 25 * 60,
        sources: vec![
            cam("door", true, 61_230, 12, 4),
            SourceStatus {
                decoder: Some("v4l2m2m (hardware, via ffmpeg)"),
                ..cam("aisle-3", true, 60_877, 0, 3)
            },
            SourceStatus {
                id: "mic-front".into(),
                kind: "microphone",
                up: true,
                analysed: 385_002,
                dropped: 0,
                decoder: None,
                occupancy: None,
            },
        ],
        failed: vec!["checkout".into()],
        broker: Broker::Connected,
        uplink: UplinkStats {
            sent: 618,
            acked: 615,
            rejected: 0,
            connections: 2,
            connected: true,
        },
        outbox_answers: true,
        outbox_events: 3,
        outbox_bytes: 3_100,
        outbox_oldest_s: Some(4),
        k_min: 3,
        setup: None,
        models: Some("yolox-nano f16".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_is_deterministic_and_shows_the_notice_band() {
        let a = render(&sample_snapshot());
        let b = render(&sample_snapshot());
        assert_eq!(a, b);
        // The notice band's colour at its left edge, the background above it.
        assert_eq!(a.pixel(2, HEIGHT - 2), [20, 90, 140]);
        assert_eq!(a.pixel(2, 120), [16, 20, 28]);
    }

    #[test]
    fn a_running_setup_shows_its_token_above_the_notice() {
        let plain = render(&sample_snapshot());
        let mut s = sample_snapshot();
        s.setup = Some("token abcd-efgh-jkmn http://127.0.0.1:8088/".into());
        let setup = render(&s);
        // The band's colour at its left edge, just above the privacy notice.
        let y = HEIGHT - 44 - 18 + 4;
        assert_eq!(setup.pixel(2, y), [240, 180, 50]);
        assert_ne!(plain.pixel(2, y), [240, 180, 50]);
        // Text is drawn in it.
        assert!((6..WIDTH - 6).any(|x| setup.pixel(x, y + 4) != [240, 180, 50]));
    }

    #[test]
    fn framebuffer_rgb565_and_xrgb_encode_known_colours() {
        let mut page = Canvas::new(2, 1);
        page.rgb = vec![255, 0, 0, 16, 20, 28];
        let fb = Framebuffer::with_geometry(Path::new("/dev/null"), 4, 2, 16, 8).expect("fb");
        let bytes = fb.encode(&page);
        assert_eq!(bytes.len(), 8);
        assert_eq!(u16::from_le_bytes([bytes[0], bytes[1]]), 0xF800);
        assert_eq!(
            u16::from_le_bytes([bytes[2], bytes[3]]),
            (2 << 11) | (5 << 5) | 3
        );
        let fb = Framebuffer::with_geometry(Path::new("/dev/null"), 2, 1, 32, 8).expect("fb");
        assert_eq!(fb.encode(&page), vec![0, 0, 255, 0, 28, 20, 16, 0]);
        assert!(Framebuffer::with_geometry(Path::new("/dev/null"), 2, 1, 24, 6).is_err());
    }

    #[test]
    fn framebuffer_writes_rows_at_the_device_stride_and_leaves_the_rest() {
        let dir = tempfile::tempdir().expect("tmp");
        let dev = dir.path().join("fb");
        std::fs::write(&dev, vec![0xAAu8; 400 * 4 * 250]).expect("fb file");
        let mut fb = Framebuffer::with_geometry(&dev, 400, 250, 32, 1600).expect("fb");
        let page = render(&sample_snapshot());
        fb.show(&page).expect("show");
        let raw = std::fs::read(&dev).expect("read");
        assert_eq!(raw.len(), 400 * 4 * 250, "the device file did not grow");
        for (x, y) in [(0, 0), (100, 50), (319, 239), (5, 230)] {
            let i = (y * 1600 + x * 4) as usize;
            let [r, g, b] = page.pixel(x, y);
            assert_eq!(&raw[i..i + 4], &[b, g, r, 0], "pixel {x},{y}");
        }
        // Right of the page and below it: untouched.
        assert_eq!(raw[(10 * 1600 + 330 * 4) as usize], 0xAA);
        assert_eq!(raw[(245 * 1600) as usize], 0xAA);
    }

    /// The README and docs/operator.md show `docs/status-display.png`; this keeps it equal to what the agent draws.
    /// After an intended change: `VITRINE_BLESS=1 cargo test -p vitrine --lib display`.
    #[test]
    fn sample_render_matches_the_documented_png() {
        let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/status-display.png");
        let page = render(&sample_snapshot());
        if std::env::var_os("VITRINE_BLESS").is_some() {
            std::fs::write(&golden, png_bytes(&page).expect("png")).expect("bless");
        }
        let want = read_png(&golden).expect("docs/status-display.png");
        let differ = want
            .rgb
            .chunks(3)
            .zip(page.rgb.chunks(3))
            .filter(|(a, b)| a != b)
            .count();
        if differ > 0 {
            let out = std::env::temp_dir().join("status-display.actual.png");
            let _ = std::fs::write(&out, png_bytes(&page).expect("png"));
            panic!(
                "{differ} pixels differ from docs/status-display.png; actual render: {} (VITRINE_BLESS=1 to accept)",
                out.display()
            );
        }
        assert_eq!((want.width, want.height), (WIDTH, HEIGHT));
    }

    #[test]
    fn png_round_trips() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut p = PngPanel {
            path: dir.path().join("s.png"),
        };
        let page = render(&sample_snapshot());
        p.show(&page).expect("png");
        assert_eq!(read_png(&p.path).expect("read"), page);
    }
}
