//! The running sources: started from the configuration, each with its own stop flag so that a
//! reload can restart one without touching the others; a watcher thread per source reports
//! its end on the daemon's control channel (no polling).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Sender, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;

use vitrine_config::Config;

use super::Control;
use crate::clock::StoreClock;
use crate::pipeline::{self, Options, Record, Running, SharedForecast, SharedModels};
use crate::telemetry::{Listing, SourceList, SourceProgress};

struct Source {
    /// Unique for the process's lifetime: a restarted source keeps its id but not its key, so
    /// the late `Ended` of its previous run is not taken for the new one's.
    key: u64,
    id: String,
    progress: Arc<SourceProgress>,
    stop: Arc<AtomicBool>,
    /// Joins the source's thread, then sends `Control::Ended`.
    watcher: JoinHandle<anyhow::Result<()>>,
}

pub struct SourceSet {
    running: Vec<Source>,
    /// Sources whose thread ended on its own (a file played to its end): still listed, as
    /// not up, until a reload removes them.
    finished: Vec<(String, Arc<SourceProgress>)>,
    failed: Vec<String>,
    /// Why each failed source did not start.
    why: std::collections::HashMap<String, String>,
    models: SharedModels,
    tx: SyncSender<Record>,
    control: Sender<Control>,
    /// What observers and the uplink see; updated on every change.
    pub list: Arc<SourceList>,
    /// The first error of a source that ended badly.
    first_error: Option<anyhow::Error>,
    next_key: u64,
    /// The forecast the cameras' alerts read (given to every source started).
    pub forecast: Option<(SharedForecast, StoreClock)>,
    /// What the setup view reads of each camera (given to every camera started).
    pub taps: Arc<pipeline::tap::Taps>,
}

impl SourceSet {
    pub fn new(tx: SyncSender<Record>, control: Sender<Control>) -> SourceSet {
        SourceSet {
            running: Vec::new(),
            finished: Vec::new(),
            failed: Vec::new(),
            why: Default::default(),
            models: SharedModels::default(),
            tx,
            control,
            list: Arc::default(),
            first_error: None,
            next_key: 0,
            forecast: None,
            taps: Arc::default(),
        }
    }

    pub fn ids(&self) -> Vec<String> {
        self.running.iter().map(|s| s.id.clone()).collect()
    }

    pub fn is_empty(&self) -> bool {
        self.running.is_empty()
    }

    pub fn failed(&self) -> &[String] {
        &self.failed
    }

    /// Why a failed source did not start.
    pub fn why(&self, id: &str) -> Option<&str> {
        self.why.get(id).map(String::as_str)
    }

    /// Start the sources of `cfg` named in `ids` (all when `None`). One failing source never
    /// stops the others: it is reported and listed as failed.
    pub fn start(&mut self, cfg: &Config, opts: &Options, ids: Option<&[String]>) {
        let wanted = |id: &str| ids.is_none_or(|ids| ids.iter().any(|x| x == id));
        let mut opts = opts.clone();
        opts.forecast = self.forecast.clone();
        opts.taps = Some(self.taps.clone());
        let configured: Vec<&str> = cfg.cameras.iter().map(|c| c.id.as_str()).collect();
        self.taps.retain(&configured);
        let opts = &opts;
        for cam in cfg.cameras.iter().filter(|c| wanted(&c.id)) {
            let stop = Arc::new(AtomicBool::new(false));
            let r = pipeline::start_camera(
                cfg,
                cam,
                None,
                opts,
                &self.models,
                self.tx.clone(),
                stop.clone(),
            );
            self.add(&cam.id, "camera", r, stop);
        }
        for mic in cfg.microphones.iter().filter(|m| wanted(&m.id)) {
            let stop = Arc::new(AtomicBool::new(false));
            let r = pipeline::start_microphone(cfg, mic, None, opts, self.tx.clone(), stop.clone());
            self.add(&mic.id, "microphone", r, stop);
        }
        self.publish();
    }

    fn add(
        &mut self,
        id: &str,
        kind: &str,
        started: anyhow::Result<Running>,
        stop: Arc<AtomicBool>,
    ) {
        self.failed.retain(|f| f != id);
        self.why.remove(id);
        self.finished.retain(|(f, _)| f != id);
        match started {
            Ok(r) => {
                let key = self.next_key;
                self.next_key += 1;
                let control = self.control.clone();
                let progress = r.progress.clone();
                let watcher = std::thread::spawn(move || {
                    let result = match r.handle.join() {
                        Ok(res) => res,
                        Err(_) => Err(anyhow::anyhow!("source {} panicked", r.source_id)),
                    };
                    let _ = control.send(Control::Ended(key));
                    result
                });
                self.running.push(Source {
                    key,
                    id: id.to_string(),
                    progress,
                    stop,
                    watcher,
                });
            }
            Err(e) => {
                let why = format!("{e:#}");
                tracing::error!(source = %id, error = %why, "{kind} not started");
                self.failed.push(id.to_string());
                self.why.insert(id.to_string(), why);
            }
        }
    }

    /// Ask every source to stop (each closes its current window); `Ended` follows per source.
    pub fn stop_all(&self) {
        for s in &self.running {
            s.stop.store(true, Ordering::Relaxed);
        }
    }

    /// Stop the sources named in `ids` and wait until they ended (their last windows are in
    /// the event channel by then).
    pub fn stop_and_join(&mut self, ids: &[String]) {
        for s in self.running.iter().filter(|s| ids.contains(&s.id)) {
            s.stop.store(true, Ordering::Relaxed);
        }
        let (going, staying): (Vec<Source>, Vec<Source>) =
            self.running.drain(..).partition(|s| ids.contains(&s.id));
        self.running = staying;
        self.finished.retain(|(f, _)| !ids.contains(f));
        self.failed.retain(|f| !ids.contains(f));
        for s in going {
            self.finish(s);
        }
        self.publish();
    }

    /// A source's thread ended on its own (end of a file, a fatal error) or after a stop
    /// (then `stop_and_join` has already collected it and this does nothing).
    pub fn ended(&mut self, key: u64) {
        if let Some(i) = self.running.iter().position(|s| s.key == key) {
            let s = self.running.remove(i);
            self.finished.push((s.id.clone(), s.progress.clone()));
            self.finish(s);
            self.publish();
        }
    }

    fn finish(&mut self, s: Source) {
        match s.watcher.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::error!(source = %s.id, error = %format!("{e:#}"), "source failed");
                self.first_error.get_or_insert(e);
            }
            Err(_) => {
                self.first_error
                    .get_or_insert(anyhow::anyhow!("source {} watcher panicked", s.id));
            }
        }
        // Finished sources stay visible as done (a replayed file), not as vanished.
        s.progress.done.store(true, Ordering::Relaxed);
    }

    fn publish(&self) {
        self.list.set(Listing {
            running: self
                .running
                .iter()
                .map(|s| (s.id.clone(), s.progress.clone()))
                .chain(self.finished.iter().cloned())
                .collect(),
            failed: self.failed.clone(),
            models: self.models.label(),
        });
    }

    /// The first error of a source that ended badly, once all have ended.
    pub fn result(self) -> anyhow::Result<()> {
        self.first_error.map_or(Ok(()), Err)
    }
}
