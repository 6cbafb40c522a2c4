//! The accuracy suite: sequences of public video with MOT ground truth, each with counting
//! lines across and along the walking direction and zones (`eval/suite.toml`). Per sequence,
//! Vitrine's camera step runs on the video as the daemon would (same decoder, same
//! [`CameraAnalyser`]) and, in the same run on the same frames, the onnxruntime + ByteTrack
//! anchor (`tools/ort_bytetrack.py`); both are scored against the annotations.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;
use vitrine_config::{Camera, Config};
use vitrine_models::PeopleDetector;
use vitrine_sensors::video_file::{probe, VideoFile};
use vitrine_sensors::{FrameSource, Pacing};
use vitrine_signals::event::CameraBody;
use vitrine_signals::geom::BBox;
use vitrine_signals::scene::Crossing;
use vitrine_signals::track::{TrackUpdate, TrackView};
use vitrine_signals::CameraSignals;

use super::crossings::{CrossingScore, GroupScore, TruthCrossing};
use super::gt::{GroundTruth, VideoFacts};
use super::hota::{Hota, HotaScore};
use super::mot::{Detections, Mot, VISIBLE};
use vitrine::pipeline::analyser::{CameraAnalyser, LOW_SCORE};

/// `eval/suite.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SuiteFile {
    sequence: Vec<SequenceFile>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SequenceFile {
    pub name: String,
    /// The video and its MOT ground truth: relative to the suite file, else to the
    /// evaluation data directories (`--media`, `VITRINE_EVAL_MEDIA`), else found there by
    /// file name.
    pub video: PathBuf,
    pub gt: PathBuf,
    /// The ground truth's pixels are of this original size (the video is a scaled copy).
    #[serde(default)]
    pub gt_size: Option<[u32; 2]>,
    /// What the scene is (printed with the results).
    #[serde(default)]
    pub scene: String,
    /// The defaults were chosen on this sequence (the others check them).
    #[serde(default)]
    pub tuned: bool,
    /// A Vitrine config whose first camera holds the geometry (lines, zones) and settings.
    pub config: PathBuf,
    /// The line across the walking direction whose count is the sequence's headline.
    pub main_line: String,
    /// Lines along the walking direction: every count beyond the truth is a false crossing.
    #[serde(default)]
    pub along: Vec<String>,
    /// Licence and origin, printed with the results.
    pub source: String,
}

/// Settings applied to every sequence's config (what `vitrine-lab eval suite` is asked to try).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub fps: Option<f32>,
    pub detect_every: Option<u32>,
    pub detect_every_near: Option<u32>,
    /// Frames early the detection cadence starts (see `CadenceParams::phase`).
    pub phase: u32,
    pub input_size: Option<u32>,
    pub threshold: Option<f32>,
    pub detector: Option<String>,
    pub motion_gating: Option<bool>,
    pub nms_iou: Option<f32>,
    pub precision: Option<vitrine_config::ModelPrecision>,
    /// Run each sequence on an H.264 copy at this size (a camera's substream), scored
    /// against the original's ground truth.
    pub twin: Option<(u32, u32)>,
    /// Draw a post into each sequence's picture (x, width: fractions of the width).
    pub post: Option<(f32, f32)>,
    pub decode: vitrine_sensors::video_file::Decode,
}

/// A resolved sequence, ready to run.
#[derive(Debug, Clone)]
pub struct Sequence {
    pub name: String,
    pub video: PathBuf,
    pub gt: PathBuf,
    pub gt_size: Option<(u32, u32)>,
    pub scene: String,
    pub tuned: bool,
    pub cfg: Config,
    pub camera: Camera,
    pub main_line: String,
    pub along: Vec<String>,
    pub source: String,
    /// How its video is decoded (`--decode`).
    pub decode: vitrine_sensors::video_file::Decode,
    /// Frames early the detection cadence starts (`--phase`).
    pub phase: u32,
}

/// A sequence of the suite whose data is not here: what is missing and where it comes from.
#[derive(Debug, Clone)]
pub struct Missing {
    pub name: String,
    pub what: String,
    pub source: String,
}

/// Read the suite; `media` are the evaluation data directories (videos and ground truth not
/// beside the suite). Sequences whose files are in none of them are returned as missing; with
/// `only`, just the sequences whose name contains it.
pub fn load(
    suite: &Path,
    media: &[PathBuf],
    over: &Overrides,
    models: Option<&Path>,
    only: Option<&str>,
) -> anyhow::Result<(Vec<Sequence>, Vec<Missing>)> {
    let text = std::fs::read_to_string(suite)
        .with_context(|| format!("reading the suite {}", suite.display()))?;
    let file: SuiteFile =
        toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", suite.display()))?;
    let dir = suite.parent().unwrap_or(Path::new("."));
    let (mut ready, mut missing) = (Vec::new(), Vec::new());
    // Only the sequences asked for are resolved (a twin is an encode: none for the others).
    let wanted = |s: &SequenceFile| only.is_none_or(|o| s.name.contains(o));
    for s in file.sequence.into_iter().filter(wanted) {
        let absent: Vec<String> = [&s.video, &s.gt]
            .into_iter()
            .filter(|p| locate(dir, p, media).is_none())
            .map(|p| p.display().to_string())
            .collect();
        if absent.is_empty() {
            ready.push(resolve(dir, s, media, over, models)?);
        } else {
            missing.push(Missing {
                what: format!(
                    "{} in none of {}",
                    absent.join(" and "),
                    std::iter::once(dir)
                        .chain(media.iter().map(PathBuf::as_path))
                        .map(|d| d.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                name: s.name,
                source: s.source,
            });
        }
    }
    Ok((ready, missing))
}

/// An H.264 copy of `video` at `w`x`h` and the same frame rate, made once into
/// the temporary directory (what a camera's substream gives the analysis).
fn twin(video: &Path, name: &str, (w, h): (u32, u32)) -> anyhow::Result<PathBuf> {
    derived(video, name, &format!("{w}x{h}"), &format!("scale={w}:{h}"))
}

/// A copy of `video` with a grey post drawn over the picture's full height at `x`, `width`
/// wide (fractions of the picture's width): people walking there pass behind it. The ground
/// truth still has them, so a line beside the post is scored on the crossings made behind it.
fn with_post(video: &Path, name: &str, (x, width): (f32, f32)) -> anyhow::Result<PathBuf> {
    derived(
        video,
        name,
        &format!("post-{x}-{width}"),
        &format!("drawbox=x=iw*{x}:y=0:w=iw*{width}:h=ih:color=0x606060:t=fill"),
    )
}

/// `video` through the ffmpeg filter `filter`, as H.264 at the same frame rate, made once into
/// the temporary directory under `tag`.
fn derived(video: &Path, name: &str, tag: &str, filter: &str) -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join("vitrine-twins");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    // Named by the source's size too: a replaced source gets a new copy.
    let len = std::fs::metadata(video).map(|m| m.len()).unwrap_or(0);
    let out = dir.join(format!("{name}-{len}-{tag}.mp4"));
    if out.is_file() {
        return Ok(out);
    }
    let tmp = dir.join(format!("{name}-{len}-{tag}.{}.tmp.mp4", std::process::id()));
    let st = std::process::Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y", "-i"])
        .arg(video)
        .args(["-vf", filter, "-c:v", "libx264", "-preset", "fast"])
        .args(["-crf", "23", "-pix_fmt", "yuv420p", "-an"])
        .arg(&tmp)
        .status()
        .context("running ffmpeg")?;
    anyhow::ensure!(
        st.success(),
        "ffmpeg could not make the {tag} copy of {}",
        video.display()
    );
    std::fs::rename(&tmp, &out)?;
    Ok(out)
}

/// `rel` beside the suite, else under one of the data directories, else by file name there.
fn locate(dir: &Path, rel: &Path, media: &[PathBuf]) -> Option<PathBuf> {
    let name = rel.file_name().unwrap_or_default();
    std::iter::once(dir.join(rel))
        .chain(media.iter().map(|m| m.join(rel)))
        .chain(media.iter().map(|m| m.join(name)))
        .find(|p| p.is_file())
}

pub fn resolve(
    dir: &Path,
    s: SequenceFile,
    media: &[PathBuf],
    over: &Overrides,
    models: Option<&Path>,
) -> anyhow::Result<Sequence> {
    let find = |p: &Path| {
        locate(dir, p, media).with_context(|| {
            format!(
                "sequence {}: {} is neither beside the suite nor in {}; fix: set VITRINE_EVAL_MEDIA (or --media) to the evaluation data directory (../shared/media in a development checkout; scripts/fetch-media.sh fetches vtest.avi from Debian)",
                s.name,
                p.display(),
                media.iter().map(|m| m.display().to_string()).collect::<Vec<_>>().join(", ")
            )
        })
    };
    let video = find(&s.video)?;
    let gt = find(&s.gt)?;
    let cfg_path = dir.join(&s.config);
    let mut cfg = Config::load(&cfg_path).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut camera = cfg.cameras.first().cloned().with_context(|| {
        format!(
            "{}: no [[cameras]] section; fix: add the camera's geometry",
            cfg_path.display()
        )
    })?;
    for id in std::iter::once(&s.main_line).chain(&s.along) {
        if !camera.lines.iter().any(|l| &l.id == id) {
            anyhow::bail!(
                "sequence {}: line {id:?} is not in {}; fix: use one of: {}",
                s.name,
                cfg_path.display(),
                camera
                    .lines
                    .iter()
                    .map(|l| l.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    apply(&mut cfg, &mut camera, over, models);
    let mut gt_size = s.gt_size.map(|[w, h]| (w, h));
    let video = match over.twin {
        Some(size) => {
            let (w, h, _, _) = probe(&video)?;
            gt_size = gt_size.or(Some((w, h)));
            twin(&video, &s.name, size)?
        }
        None => video,
    };
    // The post keeps the picture's size: the ground truth applies as it is.
    let video = match over.post {
        Some(post) => with_post(&video, &s.name, post)?,
        None => video,
    };
    Ok(Sequence {
        name: s.name,
        video,
        gt,
        gt_size,
        scene: s.scene,
        tuned: s.tuned,
        cfg,
        camera,
        main_line: s.main_line,
        along: s.along,
        source: s.source,
        decode: over.decode,
        phase: over.phase,
    })
}

pub fn apply(cfg: &mut Config, camera: &mut Camera, over: &Overrides, models: Option<&Path>) {
    if let Some(f) = over.fps {
        camera.fps = f;
    }
    if let Some(n) = over.detect_every {
        camera.detect_every = n.max(1);
        camera.detect_every_near = camera.detect_every;
    }
    if let Some(n) = over.detect_every_near {
        camera.detect_every_near = n.clamp(1, camera.detect_every);
    }
    if let Some(g) = over.motion_gating {
        camera.motion_gating = g;
    }
    if let Some(s) = over.input_size {
        cfg.models.input_size = Some(s);
        camera.input_size = None;
    }
    if let Some(t) = over.threshold {
        cfg.models.detector_threshold = t;
    }
    if let Some(v) = over.nms_iou {
        cfg.models.nms_iou = v;
    }
    if let Some(d) = &over.detector {
        cfg.models.detector = d.clone();
    }
    if let Some(p) = over.precision {
        cfg.models.precision = p;
    }
    if let Some(m) = models {
        cfg.models.dir = m.to_path_buf();
    }
}

impl Sequence {
    /// The sequence with the dense grid of lines over where its annotated people walk
    /// ([`super::grid`]) added to its chosen lines.
    pub fn with_grid(&self, gt: &GroundTruth) -> Sequence {
        let mut s = self.clone();
        s.camera.lines.extend(super::grid::lines(gt.region()));
        s
    }
}

/// One analysed frame, as a pipeline saw it: the video's frame number and its people.
pub struct FrameOut {
    pub frame: u64,
    pub people: Vec<(u64, BBox)>,
    /// The detector's boxes when it ran on this frame.
    pub detections: Option<Vec<BBox>>,
}

/// What one pipeline produced on one sequence.
pub struct Run {
    pub frames: Vec<FrameOut>,
    pub cpu_s: f64,
    /// Seconds of video the run covered (Vitrine's runs; NaN where unknown): `cpu_s` over
    /// it is the cost per camera-second, decoding of every frame included.
    pub video_s: f64,
    /// Time inside the detector's model run (Vitrine only): the rest of `cpu_s` is decoding,
    /// preprocessing, tracking and counting.
    pub model_s: Option<f64>,
    pub detector_frames: u64,
    pub lines: Vec<LineCount>,
    pub zones: Vec<ZoneCount>,
    /// Each line's crossings with their times (video time, ms), by line id.
    pub crossings: BTreeMap<String, Vec<Crossing>>,
}

/// A line's crossings in a run.
#[derive(Debug, Clone, PartialEq)]
pub struct LineCount {
    pub id: String,
    pub ins: u64,
    pub outs: u64,
}

/// A zone's visits and mean occupancy in a run.
#[derive(Debug, Clone, PartialEq)]
pub struct ZoneCount {
    pub id: String,
    pub visits: u64,
    pub occupancy: f64,
}

/// The video's own frame number (1-based) of the `k`-th frame ffmpeg's `fps` filter keeps at
/// `fps` from a `native`-rate file: the last frame whose time, rounded to the output's frame
/// grid (half up), is at most k — i.e. the last one before the middle of the k-th interval.
pub fn native_frame(k: u64, fps: f32, native: f32) -> u64 {
    let fps = fps.min(native).max(vitrine_sensors::video_file::MIN_FPS);
    let r = f64::from(native) / f64::from(fps);
    ((k as f64 + 0.5) * r).ceil() as u64
}

/// The analysed frames as the camera's signals place them. Frames between detections are
/// placed when the next detection comes (interpolation), so their people arrive late and are
/// matched to their frame by time.
#[derive(Default)]
struct Placed {
    /// Frame time → the video's frame number, for frames not placed yet.
    frame_of: std::collections::HashMap<u64, u64>,
    /// Frame time → the detector's sure boxes, for detector frames not placed yet.
    detections: std::collections::HashMap<u64, Vec<BBox>>,
    frames: Vec<FrameOut>,
}

impl Placed {
    fn collect(
        &mut self,
        signals: &mut CameraSignals,
        lines: &[String],
        crossings: &mut Crossings,
    ) {
        crossings.add(lines, signals.take_crossings());
        for (t, people) in signals.take_recorded() {
            self.frames.push(FrameOut {
                frame: self.frame_of.remove(&t).unwrap_or(0),
                people: people.iter().map(|p| (p.id, p.bbox)).collect(),
                detections: self.detections.remove(&t),
            });
        }
    }
}

/// Crossings by line id, as a run collects them.
#[derive(Default)]
pub struct Crossings(pub BTreeMap<String, Vec<Crossing>>);

impl Crossings {
    /// Crossings per line in the camera's line order.
    fn add(&mut self, lines: &[String], per_line: Vec<Vec<Crossing>>) {
        for (id, c) in lines.iter().zip(per_line) {
            if !c.is_empty() {
                self.0.entry(id.clone()).or_default().extend(c);
            }
        }
    }
}

fn line_ids(camera: &Camera) -> Vec<String> {
    camera.lines.iter().map(|l| l.id.clone()).collect()
}

/// Run Vitrine's camera step over the sequence.
pub fn run_vitrine(seq: &Sequence) -> anyhow::Result<Run> {
    let m = &seq.cfg.models;
    let (detector, _) = PeopleDetector::load(
        &m.detector,
        &m.dir,
        m.input_size.map(|s| s as usize),
        LOW_SCORE,
        m.nms_iou,
        vitrine::pipeline::analyser::precision(m),
    )?;
    let (_, _, native, _) = probe(&seq.video)?;
    let size = vitrine::pipeline::analyser::decode_size(&seq.camera, &detector, &seq.video)?;
    let pacing = Pacing::AsFastAsPossible;
    let mut video = VideoFile::open_with(&seq.video, seq.camera.fps, size, pacing, seq.decode)?;
    let info = video.info().clone();
    let size = detector.size_for(seq.camera.input_size);
    let session = detector.session_sized(size, info.width as usize, info.height as usize)?;
    let mut analyser = CameraAnalyser::new(&seq.camera, m, session, None).with_phase(seq.phase);
    analyser.signals_mut().record();
    let mut placed = Placed::default();
    let ids = line_ids(&seq.camera);
    let mut crossings = Crossings::default();
    let mut detector_frames = 0;
    let mut model_s = 0.0;
    let high = m.detector_threshold;
    let cpu0 = crate::cputime::process_and_children_s();
    let mut k = 0u64;
    while let Some(f) = video.next_frame()? {
        placed
            .frame_of
            .insert(f.t_ms, native_frame(k, info.fps, native));
        let stepped = analyser.step(f.t_ms, &f)?;
        model_s += stepped.model.map_or(0.0, |m| m.as_secs_f64());
        if stepped.inference.is_some() {
            detector_frames += 1;
            let dets = analyser.last_detections().iter();
            let sure = dets.filter(|d| d.score >= high).map(|d| d.bbox).collect();
            placed.detections.insert(f.t_ms, sure);
        }
        placed.collect(analyser.signals_mut(), &ids, &mut crossings);
        k += 1;
    }
    drop(video);
    let cpu_s = crate::cputime::process_and_children_s() - cpu0;
    let end = (k as f64 * 1000.0 / f64::from(info.fps)) as u64 + 1;
    analyser.signals_mut().finish();
    placed.collect(analyser.signals_mut(), &ids, &mut crossings);
    let body = analyser.signals_mut().take_window(0, end, 0);
    Ok(Run {
        frames: placed.frames,
        cpu_s,
        video_s: end as f64 / 1000.0,
        model_s: Some(model_s),
        detector_frames,
        lines: line_counts(&body),
        zones: zone_counts(&body),
        crossings: crossings.0,
    })
}

fn line_counts(body: &CameraBody) -> Vec<LineCount> {
    let n = |x: Option<u32>| u64::from(x.unwrap_or(0));
    body.lines
        .iter()
        .map(|l| LineCount {
            id: l.id.clone(),
            ins: n(l.r#in),
            outs: n(l.out),
        })
        .collect()
}

fn zone_counts(body: &CameraBody) -> Vec<ZoneCount> {
    body.zones
        .iter()
        .map(|z| ZoneCount {
            id: z.id.clone(),
            visits: u64::from(z.visits.unwrap_or(0)),
            occupancy: z.occupancy_mean.unwrap_or(0.0),
        })
        .collect()
}

/// The truth: every annotated frame at the video's own rate through the same line and zone
/// logic (annotated identities are trusted: no track takes a lost one's place).
pub fn truth_counts(seq: &Sequence, gt: &GroundTruth, native: f32, frames: u64) -> Run {
    let mut s = CameraSignals::for_ground_truth(&seq.camera);
    s.record();
    let ids = line_ids(&seq.camera);
    let mut crossings = Crossings::default();
    for n in 1..=frames {
        let t = ((n - 1) as f64 * 1000.0 / f64::from(native)) as u64;
        let tracks = gt
            .frame(n)
            .iter()
            .filter(|g| g.walker)
            .map(|g| TrackView {
                id: g.id,
                bbox: g.bbox,
            })
            .collect();
        s.observe_tracks(
            t,
            TrackUpdate {
                tracks,
                ..TrackUpdate::default()
            },
        );
        crossings.add(&ids, s.take_crossings());
        s.take_recorded();
    }
    s.finish();
    crossings.add(&ids, s.take_crossings());
    let end = (frames as f64 * 1000.0 / f64::from(native)) as u64 + 1;
    let body = s.take_window(0, end, 0);
    Run {
        frames: Vec::new(),
        cpu_s: 0.0,
        video_s: f64::NAN,
        model_s: None,
        detector_frames: 0,
        lines: line_counts(&body),
        zones: zone_counts(&body),
        crossings: crossings.0,
    }
}

/// The figures of one pipeline on one sequence.
#[derive(Debug, Clone)]
pub struct Score {
    pub pipeline: String,
    pub frames: u64,
    pub detector_frames: u64,
    pub mot: Mot,
    pub hota: HotaScore,
    pub det: Option<Detections>,
    /// Mean people in view (annotated region): this pipeline, and the annotation.
    pub people: (f64, f64),
    /// Per line: the truth's counts and this pipeline's.
    pub lines: Vec<(LineCount, LineCount)>,
    /// Per zone: the truth's and this pipeline's (the anchor counts no zones).
    pub zones: Vec<(ZoneCount, Option<ZoneCount>)>,
    /// Crossing by crossing on the grid lines (hidden ones among them).
    pub grid_crossings: CrossingScore,
    /// Parties crossing together, on every line (named and grid); `None` for a pipeline
    /// that does not group.
    pub groups: Option<GroupScore>,
    /// The store's occupancy with the main line as its entrance, against the truth's.
    pub occupancy: super::crossings::OccupancyScore,
    pub cpu_s: f64,
    pub video_s: f64,
    pub model_s: Option<f64>,
}

/// What the truth is scored against: the annotation, its counts at the video's own rate,
/// its crossings (with whether each was made out of sight) and the video's height in pixels.
pub struct Truth<'a> {
    pub gt: &'a GroundTruth,
    pub run: &'a Run,
    pub crossings: &'a BTreeMap<String, Vec<TruthCrossing>>,
    pub height_px: f32,
    /// The sequence's main line (the store's entrance for the occupancy score) and its length.
    pub main_line: &'a str,
    pub video_ms: u64,
}

pub fn score(name: &str, run: &Run, truth: &Truth) -> Score {
    let gt = truth.gt;
    let mut mot = Mot::default();
    mot.set_height_px(truth.height_px);
    let mut hota = Hota::default();
    let mut det = Detections::default();
    let mut any_det = false;
    let (mut ours, mut annotated) = (0usize, 0usize);
    for f in &run.frames {
        let g = gt.frame(f.frame);
        mot.frame(gt, g, &f.people);
        hota.frame(gt, g, &f.people);
        if let Some(d) = &f.detections {
            det.frame(gt, g, d, truth.height_px);
            any_det = true;
        }
        ours += f.people.iter().filter(|p| gt.annotated(p.1.foot())).count();
        annotated += g
            .iter()
            .filter(|b| in_view(b) && gt.annotated(b.bbox.foot()))
            .count();
    }
    let n = run.frames.len().max(1) as f64;
    let counted = |t: &LineCount| {
        let found = run.lines.iter().find(|l| l.id == t.id);
        found.cloned().unwrap_or(LineCount {
            id: t.id.clone(),
            ins: 0,
            outs: 0,
        })
    };
    let mut grid_crossings = CrossingScore::default();
    let mut groups = Some(GroupScore::default());
    for (id, t) in truth.crossings {
        let o = run.crossings.get(id).map(Vec::as_slice).unwrap_or(&[]);
        if id.starts_with(super::grid::PREFIX) {
            grid_crossings += super::crossings::score(t, o);
        }
        groups = match (groups, super::crossings::grouping(t, o)) {
            (Some(mut sum), Some(line)) => {
                sum += line;
                Some(sum)
            }
            _ => None,
        };
    }
    let occupancy = super::crossings::occupancy(
        truth
            .crossings
            .get(truth.main_line)
            .map(Vec::as_slice)
            .unwrap_or(&[]),
        run.crossings
            .get(truth.main_line)
            .map(Vec::as_slice)
            .unwrap_or(&[]),
        truth.video_ms,
    );
    Score {
        occupancy,
        pipeline: name.to_string(),
        frames: run.frames.len() as u64,
        detector_frames: run.detector_frames,
        mot,
        hota: hota.score(),
        det: any_det.then_some(det),
        people: (ours as f64 / n, annotated as f64 / n),
        lines: truth
            .run
            .lines
            .iter()
            .map(|t| (t.clone(), counted(t)))
            .collect(),
        zones: truth
            .run
            .zones
            .iter()
            .map(|t| (t.clone(), run.zones.iter().find(|z| z.id == t.id).cloned()))
            .collect(),
        grid_crossings,
        groups,
        cpu_s: run.cpu_s,
        video_s: run.video_s,
        model_s: run.model_s,
    }
}

/// What the technician's placement check (`vitrine check-config --live`, the setup page)
/// says of the sequence's camera, from Vitrine's tracks: people too small for the detector
/// (with the input size that would do), lines along the walking direction.
pub fn placement(
    seq: &Sequence,
    run: &Run,
    facts: VideoFacts,
    native: f32,
) -> vitrine_signals::placement::Report {
    let size = seq
        .camera
        .input_size
        .or(seq.cfg.models.input_size)
        .unwrap_or(416);
    let (cw, ch) = vitrine_models::detector::content_size(
        size as usize,
        facts.width as usize,
        facts.height as usize,
    );
    let mut p =
        vitrine_signals::placement::Placement::new(&seq.camera, (cw as f32, ch as f32), size);
    for f in &run.frames {
        let t = ((f.frame.saturating_sub(1)) as f64 * 1000.0 / f64::from(native)) as u64;
        let people: Vec<TrackView> = f
            .people
            .iter()
            .map(|(id, bbox)| TrackView {
                id: *id,
                bbox: *bbox,
            })
            .collect();
        p.observe(t, &people);
    }
    p.report(&seq.camera)
}

/// An annotated person who counts as in view: a real person, not mostly hidden where the
/// annotation says how much is visible.
fn in_view(b: &super::gt::GtBox) -> bool {
    b.person && b.visibility.is_none_or(|v| v >= VISIBLE)
}

/// The truth's crossings, each marked hidden when the person was out of sight making it:
/// the annotation's visibility under [`VISIBLE`] where it has one, else no sure detection of
/// the person (IoU ≥ 0.5) on the detector frame of `seen` nearest the crossing (within half a
/// second).
pub fn truth_crossings(
    truth: &Run,
    gt: &GroundTruth,
    native: f32,
    seen: &Run,
) -> BTreeMap<String, Vec<TruthCrossing>> {
    let frame_of = |t_ms: u64| (t_ms as f64 * f64::from(native) / 1000.0).round() as u64 + 1;
    let half_s = (f64::from(native) / 2.0).round() as u64;
    let detected: Vec<(u64, &Vec<BBox>)> = seen
        .frames
        .iter()
        .filter_map(|f| f.detections.as_ref().map(|d| (f.frame, d)))
        .collect();
    let with_visibility = gt.has_visibility();
    let hidden = |c: &Crossing| {
        let n = frame_of(c.t_ms);
        if with_visibility {
            return gt
                .frame(n)
                .iter()
                .find(|g| g.id == c.key)
                .and_then(|g| g.visibility)
                .is_some_and(|v| v < VISIBLE);
        }
        // The detector frame nearest the crossing, within half a second.
        let Some((f, dets)) = detected
            .iter()
            .filter(|(f, _)| f.abs_diff(n) <= half_s)
            .min_by_key(|(f, _)| f.abs_diff(n))
        else {
            return false;
        };
        let Some(g) = gt.frame(*f).iter().find(|g| g.id == c.key) else {
            return true;
        };
        dets.iter().all(|d| d.iou(&g.bbox) < super::mot::MIN_IOU)
    };
    truth
        .crossings
        .iter()
        .map(|(id, cs)| {
            let marked = cs
                .iter()
                .map(|c| TruthCrossing {
                    crossing: *c,
                    hidden: hidden(c),
                })
                .collect();
            (id.clone(), marked)
        })
        .collect()
}

/// |Δin| + |Δout| of `ours` against `truth`, and the truth's crossings.
fn error(truth: &LineCount, ours: &LineCount) -> (u64, u64) {
    let e = truth.ins.abs_diff(ours.ins) + truth.outs.abs_diff(ours.outs);
    (e, truth.ins + truth.outs)
}

/// Whether an error of `e` on a line the truth crosses `n` times is within max(`floor`
/// crossings, `share` of them).
pub fn within(e: u64, n: u64, floor: u64, share: f64) -> bool {
    e as f64 <= (floor as f64).max(share * n as f64)
}

/// The grid's figures for one pipeline on one sequence.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GridScore {
    pub lines: u64,
    /// Lines within max(1, 5 %) and within max(2, 10 %).
    pub within_5: u64,
    pub within_10: u64,
    /// Summed error and summed truth.
    pub error: u64,
    pub truth: u64,
    /// The line furthest beyond max(1, 5 %): id, error, truth.
    pub worst: Option<(String, u64, u64)>,
}

impl Score {
    /// Count error on a line: |Δin| + |Δout|, and the truth's crossings.
    pub fn line_error(&self, id: &str) -> (u64, u64) {
        self.lines
            .iter()
            .find(|l| l.0.id == id)
            .map(|(t, o)| error(t, o))
            .unwrap_or((0, 0))
    }

    /// Over the grid lines: how many are within tolerance, the summed error, the worst line.
    pub fn grid(&self) -> GridScore {
        let mut g = GridScore::default();
        let mut worst = f64::NEG_INFINITY;
        for (t, o) in self
            .lines
            .iter()
            .filter(|l| l.0.id.starts_with(super::grid::PREFIX))
        {
            let (e, n) = error(t, o);
            g.lines += 1;
            g.within_5 += u64::from(within(e, n, 1, 0.05));
            g.within_10 += u64::from(within(e, n, 2, 0.10));
            g.error += e;
            g.truth += n;
            let beyond = e as f64 - (0.05 * n as f64).max(1.0);
            if beyond > worst {
                worst = beyond;
                g.worst = Some((t.id.clone(), e, n));
            }
        }
        g
    }

    /// Counts beyond the truth on lines along the walking direction.
    pub fn false_crossings(&self, along: &[String]) -> u64 {
        self.lines
            .iter()
            .filter(|l| along.contains(&l.0.id))
            .map(|(t, o)| o.ins.saturating_sub(t.ins) + o.outs.saturating_sub(t.outs))
            .sum()
    }

    pub fn people_error(&self) -> f64 {
        (self.people.0 - self.people.1) / self.people.1.max(1e-9)
    }

    pub fn fps_per_cpu(&self) -> f64 {
        self.frames as f64 / self.cpu_s.max(1e-9)
    }
}

/// Facts of the sequence's video, for the ground-truth checks.
pub fn video_facts(path: &Path) -> anyhow::Result<(VideoFacts, f32)> {
    let (w, h, native, duration) = probe(path)?;
    let frames = duration
        .map(|d| (d as f64 / 1000.0 * f64::from(native)).round() as u64)
        .unwrap_or(u64::MAX);
    Ok((
        VideoFacts {
            width: w,
            height: h,
            frames,
        },
        native,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_numbers_follow_ffmpegs_fps_filter() {
        // What ffmpeg 5.1 kept from a 25 fps file with numbered frames (0-based).
        let got: Vec<u64> = (0..5).map(|k| native_frame(k, 10.0, 25.0) - 1).collect();
        assert_eq!(got, vec![1, 3, 6, 8, 11]);
        let got: Vec<u64> = (0..4).map(|k| native_frame(k, 5.0, 25.0) - 1).collect();
        assert_eq!(got, vec![2, 7, 12, 17]);
        let got: Vec<u64> = (0..5).map(|k| native_frame(k, 7.0, 25.0) - 1).collect();
        assert_eq!(got, vec![1, 5, 8, 12, 16]);
        // A whole ratio: the interval's first frame (a tie rounds up, past the middle).
        let got: Vec<u64> = (0..3).map(|k| native_frame(k, 5.0, 10.0) - 1).collect();
        assert_eq!(got, vec![0, 2, 4]);
        // At the native rate, every frame in order; above it, clamped to it.
        assert_eq!(
            (0..3)
                .map(|k| native_frame(k, 10.0, 10.0))
                .collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
        assert_eq!(native_frame(4, 30.0, 10.0), 5);
    }
}
