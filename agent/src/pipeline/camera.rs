//! A camera's two threads: the reader (a recording, or a live camera reopened after loss)
//! and the analysis (the frame step, windows closed on time).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context;
use vitrine_config::{Camera, Config, VideoSource};
use vitrine_models::FaceAnalyser;
use vitrine_sensors::video_file::VideoFile;
use vitrine_sensors::{FrameSource, Pacing, SourceError};
use vitrine_signals::{Body, CameraSignals, Windower};

use super::analyser::{self, CameraAnalyser};
use super::live::{live_camera, live_reader, Opener};
use super::queue::{BoundedQueue, Overflow, Popped};
use super::*;
use crate::telemetry::SourceProgress;

/// How a camera's frames arrive.
enum Input {
    /// A recording, opened now (a missing file is an error at start).
    File(VideoFile),
    /// A live camera, opened (and reopened) by the reader thread.
    Live(Opener),
}

/// Start a camera: the detector is loaded (and a recording opened) before the thread starts,
/// so a missing model or file is reported at once, by name. A live camera is opened by its
/// reader thread and retried until it answers.
pub fn start_camera(
    cfg: &Config,
    cam: &Camera,
    input: Option<&Path>,
    opts: &Options,
    models: &SharedModels,
    tx: SyncSender<WindowOut>,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<Running> {
    let path: Option<PathBuf> = match (input, &cam.source) {
        (Some(p), _) => Some(p.to_path_buf()),
        (None, VideoSource::File(p)) => Some(p.clone()),
        (None, _) => None,
    };
    let m = &cfg.models;
    let detector = models
        .detector(cfg)
        .with_context(|| format!("camera {:?}", cam.id))?;
    // Attention needs faces only where displays are configured.
    let faces = if cam.displays.is_empty() {
        None
    } else {
        let (f, why) =
            FaceAnalyser::load_variant(&m.faces, &m.head_pose, &m.dir, analyser::variant(m))
                .with_context(|| format!("camera {:?}: attention to its displays", cam.id))?;
        tracing::info!(camera = %cam.id, model = %m.faces, "face detector variant: {why}");
        Some(f)
    };
    let source = match &path {
        Some(path) => {
            let open = || {
                let size = analyser::decode_size(cam, &detector, path)?;
                VideoFile::open(path, cam.fps, size, opts.pacing)
            };
            Input::File(open().with_context(|| format!("camera {:?}", cam.id))?)
        }
        None => Input::Live(live_camera(cam, opts)?),
    };
    let live = matches!(source, Input::Live(_));
    let (fw, fh) = match &source {
        Input::File(f) => (f.info().width, f.info().height),
        Input::Live(_) => cam.size.unwrap_or((640, 480)),
    };
    let session = detector
        .session(fw as usize, fh as usize)
        .with_context(|| format!("camera {:?}", cam.id))?;
    let progress = Arc::new(SourceProgress::new("camera"));
    if let Input::File(f) = &source {
        progress
            .duration_ms
            .store(f.info().duration_ms.unwrap_or(0), Ordering::Relaxed);
    }
    let policy = if opts.pacing == Pacing::Realtime || live {
        Overflow::DropOldest
    } else {
        Overflow::Block
    };
    let queue = Arc::new(BoundedQueue::new(FRAME_QUEUE, policy));
    let (q, st, rp) = (queue.clone(), stop.clone(), progress.clone());
    let id = cam.id.clone();
    let rid = id.clone();
    let reader = std::thread::Builder::new()
        .name(format!("read-{id}"))
        .spawn(move || -> Result<(), SourceError> {
            let mut source = match source {
                Input::File(f) => f,
                Input::Live(open) => {
                    live_reader(&rid, open, &q, &st, &rp);
                    return Ok(());
                }
            };
            let result = loop {
                if st.load(Ordering::Relaxed) {
                    break Ok(());
                }
                match source.next_frame() {
                    Ok(Some(f)) => {
                        if !q.push(f) {
                            break Ok(());
                        }
                    }
                    Ok(None) => break Ok(()),
                    Err(e) => break Err(e),
                }
            };
            q.close();
            result
        })?;
    let mut analyser = CameraAnalyser::new(cam, m, session, faces);
    let (opts, p) = (opts.clone(), progress.clone());
    let handle = std::thread::Builder::new()
        .name(format!("cam-{id}"))
        .spawn(move || -> anyhow::Result<()> {
            let mut windower = Windower::new(opts.window_secs);
            let send = |w: WindowOut| {
                tx.send(w)
                    .map_err(|_| anyhow::anyhow!("event consumer stopped"))
            };
            let close =
                |signals: &mut CameraSignals, windows: Vec<(u64, u64)>| -> anyhow::Result<()> {
                    for (s, e) in windows {
                        let body = Body::Camera(signals.take_window(s, e, opts.k_min));
                        p.windows.fetch_add(1, Ordering::Relaxed);
                        send(WindowOut {
                            source_id: id.clone(),
                            start_ms: s,
                            end_ms: e,
                            body,
                        })?;
                    }
                    Ok(())
                };
            loop {
                let (frame, dropped) = match queue.pop_timeout(TICK) {
                    Popped::Item(f, d) => (f, d),
                    Popped::Closed => break,
                    Popped::Timeout => {
                        if live {
                            // No frame (camera lost, or slower than the tick): windows still
                            // close on time, the analysis thread is alive.
                            close(analyser.signals_mut(), windower.advance(opts.now_ms()))?;
                            p.beat();
                        }
                        if stop.load(Ordering::Relaxed) {
                            queue.close();
                        }
                        continue;
                    }
                };
                for t in dropped {
                    let t = opts.base_ms + t;
                    close(analyser.signals_mut(), windower.advance(t))?;
                    analyser.signals_mut().frame_dropped(t);
                    p.dropped.fetch_add(1, Ordering::Relaxed);
                }
                let t = opts.base_ms + frame.t_ms;
                close(analyser.signals_mut(), windower.advance(t))?;
                let stepped = analyser.step(t, &frame)?;
                drop(frame);
                match stepped.inference {
                    Some(took) => p.inferred(took),
                    None => p.skipped(stepped.step),
                }
                p.occupancy
                    .store(analyser.signals().people_now() as u64, Ordering::Relaxed);
                p.media_ms.store(t - opts.base_ms, Ordering::Relaxed);
                if stop.load(Ordering::Relaxed) {
                    queue.close();
                }
            }
            let signals = analyser.signals_mut();
            signals.finish();
            if live {
                // The live timeline ends now, not at the last frame.
                close(signals, windower.advance(opts.now_ms()))?;
            }
            // The window in progress is published too (its coverage shows the part not seen).
            close(signals, windower.current().into_iter().collect())?;
            p.done.store(true, Ordering::Relaxed);
            join_reader(reader, live)
        })?;
    Ok(Running {
        source_id: cam.id.clone(),
        progress,
        handle,
    })
}

/// Join a reader thread. A live reader may sit in a driver call that has no timeout (a V4L2
/// camera that stopped sending): after 2 s it is left to end with the process.
fn join_reader(reader: JoinHandle<Result<(), SourceError>>, live: bool) -> anyhow::Result<()> {
    if live {
        let until = Instant::now() + Duration::from_secs(2);
        while !reader.is_finished() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(20));
        }
        if !reader.is_finished() {
            tracing::warn!(
                "a camera reader did not stop within 2 s (blocked in its driver); leaving it"
            );
            return Ok(());
        }
    }
    match reader.join() {
        Ok(r) => r.map_err(anyhow::Error::from),
        Err(_) => anyhow::bail!("reader thread panicked"),
    }
}
