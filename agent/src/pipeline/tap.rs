//! What the technician's setup view (`vitrine setup`, `vitrine audit`, `check-config --live`)
//! reads from a running camera, through the daemon's control socket: the latest still, the
//! people's feet, each line's running count and the placement checks.
//!
//! Privacy: a still is copied out of the frame only while someone watches (a view request in
//! the last [`WATCH_MS`]), at most every [`STILL_EVERY_MS`], into one slot per camera that the
//! next copy replaces; it lives in memory only and is dropped when nobody watches. Feet are
//! points of the last frame, never a track history; counts are totals.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use vitrine_config::Camera;
use vitrine_sensors::Frame;
use vitrine_signals::audit::{AgentCount, Tally};
use vitrine_signals::placement::{Placement, Report};
use vitrine_signals::track::TrackUpdate;
use vitrine_signals::CameraSignals;

use crate::clock::mono_ms;

/// A view request keeps stills coming for this long.
pub const WATCH_MS: u64 = 5_000;
/// At most one still per camera this often.
pub const STILL_EVERY_MS: u64 = 500;

/// No still copied yet.
const NEVER: u64 = u64::MAX;

/// The latest picture of a camera, in memory only.
#[derive(Clone)]
pub struct Still {
    pub width: u32,
    pub height: u32,
    pub rgb: Vec<u8>,
}

impl std::fmt::Debug for Still {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Still({}x{})", self.width, self.height)
    }
}

/// What the view shows of a camera now.
#[derive(Debug, Clone, Default)]
pub struct View {
    pub still: Option<Still>,
    /// Feet of the people in the last frame (normalized).
    pub feet: Vec<[f32; 2]>,
    pub lines: Vec<(String, Tally)>,
    pub run: u64,
}

/// Every camera's tap, by camera id. A camera started again (a reload) gets a new tap with a
/// new run number, so an audit knows its counts started over.
#[derive(Default)]
pub struct Taps {
    cameras: Mutex<HashMap<String, Arc<CameraTap>>>,
    runs: AtomicU64,
}

impl std::fmt::Debug for Taps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Taps({:?})", self.ids())
    }
}

impl Taps {
    pub fn camera(&self, id: &str) -> Option<Arc<CameraTap>> {
        self.lock().get(id).cloned()
    }

    /// Camera ids with a tap, sorted.
    pub fn ids(&self) -> Vec<String> {
        let mut v: Vec<String> = self.lock().keys().cloned().collect();
        v.sort();
        v
    }

    /// A fresh tap for `cam` (started now), replacing the previous run's.
    pub fn attach(&self, cam: &Camera, detector_px: (f32, f32), input_size: u32) -> Arc<CameraTap> {
        let run = self.runs.fetch_add(1, Ordering::Relaxed) + 1;
        let tap = Arc::new(CameraTap {
            run,
            watched_until: AtomicU64::new(0),
            last_still: AtomicU64::new(NEVER),
            state: Mutex::new(TapState {
                camera: cam.clone(),
                still: None,
                feet: Vec::new(),
                lines: cam
                    .lines
                    .iter()
                    .map(|l| (l.id.clone(), Tally::default()))
                    .collect(),
                placement: Placement::new(cam, detector_px, input_size),
            }),
        });
        self.lock().insert(cam.id.clone(), tap.clone());
        tap
    }

    /// Forget the taps of cameras no longer configured.
    pub fn retain(&self, ids: &[&str]) {
        self.lock().retain(|k, _| ids.contains(&k.as_str()));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<CameraTap>>> {
        self.cameras.lock().unwrap_or_else(|p| p.into_inner())
    }
}

pub struct CameraTap {
    pub run: u64,
    watched_until: AtomicU64,
    last_still: AtomicU64,
    state: Mutex<TapState>,
}

struct TapState {
    camera: Camera,
    still: Option<Still>,
    feet: Vec<[f32; 2]>,
    lines: Vec<(String, Tally)>,
    placement: Placement,
}

impl CameraTap {
    /// The analysis thread, after a frame's step.
    pub fn frame(&self, frame: &Frame, update: &TrackUpdate, signals: &CameraSignals, t_ms: u64) {
        let now = mono_ms();
        let last = self.last_still.load(Ordering::Relaxed);
        let copy = now < self.watched_until.load(Ordering::Relaxed)
            && (last == NEVER || now.saturating_sub(last) >= STILL_EVERY_MS);
        let mut s = self.lock();
        if copy {
            self.last_still.store(now, Ordering::Relaxed);
            let mut rgb = s.still.take().map(|st| st.rgb).unwrap_or_default();
            rgb.clear();
            rgb.extend_from_slice(&frame.rgb);
            s.still = Some(Still {
                width: frame.width,
                height: frame.height,
                rgb,
            });
        } else if s.still.is_some() && now >= self.watched_until.load(Ordering::Relaxed) {
            s.still = None;
        }
        // Every frame: kept in place, no allocation once the vectors have grown.
        let s = &mut *s;
        s.feet.clear();
        s.feet.extend(signals.people().iter().map(|p| {
            let f = p.bbox.foot();
            [f.x, f.y]
        }));
        for ((_, slot), total) in s.lines.iter_mut().zip(signals.line_totals()) {
            *slot = total;
        }
        s.placement.observe(t_ms, &update.tracks);
        for id in &update.ended {
            s.placement.forget(*id);
        }
    }

    /// What the view shows now; `watch` asks for stills for the next [`WATCH_MS`].
    pub fn view(&self, watch: bool) -> View {
        if watch {
            self.watched_until
                .store(mono_ms() + WATCH_MS, Ordering::Relaxed);
        }
        let s = self.lock();
        View {
            still: if watch { s.still.clone() } else { None },
            feet: s.feet.clone(),
            lines: s.lines.clone(),
            run: self.run,
        }
    }

    /// The agent's running count of `line` (audits).
    pub fn count(&self, line: &str) -> Option<AgentCount> {
        let s = self.lock();
        let (_, totals) = s.lines.iter().find(|(id, _)| id == line)?;
        Some(AgentCount {
            run: self.run,
            totals: *totals,
        })
    }

    pub fn placement(&self) -> Report {
        let s = self.lock();
        s.placement.report(&s.camera)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, TapState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn camera() -> Camera {
        let text = "[device]\nid='b'\nstore_id='s'\n[[cameras]]\nid='door'\ndevice='/dev/video0'\n[[cameras.lines]]\nid='entry'\nfrom=[0.5,0]\nto=[0.5,1]\nin='left'\n";
        vitrine_config::Config::parse(text, std::path::Path::new("/tmp/agent.toml"))
            .unwrap()
            .cameras
            .remove(0)
    }

    fn frame() -> Frame {
        Frame {
            width: 4,
            height: 2,
            rgb: vec![7; 24],
            t_ms: 0,
            arrived: std::time::Instant::now(),
        }
    }

    #[test]
    fn a_still_is_copied_only_while_someone_watches() {
        let cam = camera();
        let taps = Taps::default();
        let tap = taps.attach(&cam, (416.0, 234.0), 416);
        let signals = CameraSignals::new(&cam);
        tap.frame(&frame(), &TrackUpdate::default(), &signals, 0);
        assert!(tap.view(false).still.is_none());
        assert!(tap.view(true).still.is_none(), "no frame since the request");
        tap.frame(&frame(), &TrackUpdate::default(), &signals, 100);
        let v = tap.view(true);
        assert_eq!(v.still.map(|s| s.rgb.len()), Some(24));
        assert_eq!(v.lines, vec![("entry".to_string(), Tally::default())]);
    }

    #[test]
    fn a_restarted_camera_gets_a_new_run() {
        let cam = camera();
        let taps = Taps::default();
        let a = taps.attach(&cam, (416.0, 234.0), 416).run;
        let b = taps.attach(&cam, (416.0, 234.0), 416).run;
        assert_ne!(a, b);
        assert_eq!(taps.camera("door").map(|t| t.run), Some(b));
        assert_eq!(
            taps.camera("door")
                .and_then(|t| t.count("entry"))
                .map(|c| c.run),
            Some(b)
        );
        taps.retain(&[]);
        assert!(taps.ids().is_empty());
    }
}
