//! The `vitrine` commands. Each returns the process exit code.

pub mod audit;
pub mod federate;
pub mod heatmap;
pub mod models;
pub mod probe;
pub mod remote;
mod replay;
mod seq;
pub mod setup;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use vitrine_config::{Config, ConfigErrors};

pub use replay::{replay, ReplayArgs};

/// sysexits.h EX_CONFIG-ish: the configuration is wrong, restarting will not help.
pub const EXIT_CONFIG: u8 = 64;

/// Load a configuration or print every problem and return exit code 64.
pub fn load_config(path: &Path) -> Result<Config, ExitCode> {
    Config::load(path).map_err(|e: ConfigErrors| {
        eprint!("{e}");
        ExitCode::from(EXIT_CONFIG)
    })
}

pub fn check_config(path: &Path, live: bool) -> ExitCode {
    let c = match load_config(path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    println!(
        "{}: ok (device {}, store {}, {} camera(s), {} microphone(s), {} s windows, k_min {}, broker {})",
        path.display(),
        c.device.id,
        c.device.store_id,
        c.cameras.len(),
        c.microphones.len(),
        c.privacy.window_secs,
        c.privacy.k_min,
        c.mqtt.as_ref().map(|m| format!("{}:{}", m.host, m.port)).unwrap_or_else(|| "none (outbox only)".into())
    );
    if let (Some(first), Some(last)) = (c.calendar.first(), c.calendar.last()) {
        let mut names: Vec<&str> = c.calendar.iter().map(|d| d.name.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        println!(
            "forecast calendar: {} named day(s) from {} to {}, {} name(s)",
            c.calendar.len(),
            first.date,
            last.date,
            names.len()
        );
    }
    if !live {
        // The geometry alone tells whether an area is in the picture.
        for cam in &c.cameras {
            print_warnings(&cam.id, &vitrine_signals::placement::area_warnings(cam));
            print_warnings(&cam.id, &capture_warnings(cam));
        }
        return ExitCode::SUCCESS;
    }
    let socket = crate::daemon::control::socket_path(&c);
    match crate::daemon::control::ask(&socket, &crate::daemon::control::Request::Placement) {
        Ok((reply, _)) => {
            for (camera, report) in &reply.placement {
                println!(
                    "camera {camera}: {} people over {} min of tracks",
                    report.people,
                    report.observed_secs / 60
                );
                print_warnings(camera, &report.warnings);
                for w in &report.waiting {
                    println!("  (waiting) {w}");
                }
                if report.warnings.is_empty() {
                    println!("  no placement problem found");
                }
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("check-config --live: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A configured analysis size far above what the detector uses: every frame is captured or
/// decoded, converted and scaled at that size for nothing (`vitrine_sensors::stream`).
fn capture_warnings(cam: &vitrine_config::Camera) -> Vec<vitrine_signals::placement::Warning> {
    use vitrine_sensors::stream::{MAX_ANALYSIS_PIXELS, SUBSTREAM};
    let Some((w, h)) = cam.size else {
        return Vec::new();
    };
    if u64::from(w) * u64::from(h) <= MAX_ANALYSIS_PIXELS {
        return Vec::new();
    }
    let source = match cam.source {
        vitrine_config::VideoSource::Rtsp(_) => "decoded",
        vitrine_config::VideoSource::Device(_) => "captured",
        vitrine_config::VideoSource::File(_) => "read",
    };
    vec![vitrine_signals::placement::Warning {
        subject: "camera".into(),
        kind: "capture_too_large".into(),
        message: format!(
            "width x height {w}x{h}: every frame is {source}, converted and scaled at that size \
             while the detector looks at 640 px at most"
        ),
        fix: format!(
            "set width = {} and height = {} (or 640x480), and for an IP camera use its \
             substream URL (`vitrine probe --rtsp URL` measures and advises)",
            SUBSTREAM.0, SUBSTREAM.1
        ),
    }]
}

fn print_warnings(camera: &str, warnings: &[vitrine_signals::placement::Warning]) {
    for w in warnings {
        println!(
            "  warning: camera {camera}, {}: {}\n      fix: {}",
            w.subject, w.message, w.fix
        );
    }
}

pub struct RunArgs {
    pub config: PathBuf,
    pub realtime: bool,
    /// Print a summary line per window on stdout (the demo).
    pub print: bool,
    /// Wall-clock ms of media time 0 (default: now).
    pub base_ms: Option<u64>,
}

/// The daemon: every configured source through the pipeline, events numbered (persistent
/// seq), published to the broker, or appended to the outbox directory when none is configured.
pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    // A remote configuration whose trial a crash interrupted never proved itself: the file
    // from before it is restored before anything reads the configuration.
    let interrupted = match crate::remote::journal::recover(&args.config) {
        Ok(v) => v,
        Err(e) => {
            tracing::error!(file = %args.config.display(), error = %e, "could not roll back an interrupted remote configuration");
            None
        }
    };
    if let Some(version) = interrupted {
        tracing::warn!(version, file = %args.config.display(), "a remote configuration was being applied when the agent stopped; the previous file was restored");
    }
    let cfg = match load_config(&args.config) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    crate::daemon::run(&cfg, args.realtime, args.print, args.base_ms, interrupted)
}
