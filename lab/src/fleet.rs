//! A fleet of simulated boxes on one machine: each box is the real outbox (its own state
//! directory) and the real uplink (its own MQTT client id and last will), fed synthetic camera
//! windows at a set rate. Used by `vitrine-lab bench fleet` (1,000 boxes against one Mosquitto and
//! 1–4 `vitrine-ingest` processes) and by the central-side tests (a few boxes).
//!
//! Bounded: the number of boxes, the rate and the run time are given; everything runs on
//! loopback; the boxes' uplinks share one tokio runtime, each outbox has its IO thread.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{watch, Notify};
use vitrine_config::Config;
use vitrine_signals::event::{EventMeta, WindowEvent};

use vitrine::clock::{mono_ms, now_ms};
use vitrine::daemon::open_outbox;
use vitrine::outbox::{lock_outbox, SharedOutbox};
use vitrine::telemetry::UplinkStats;
use vitrine::uplink::Uplink;

/// Most boxes one fleet runs (threads: one outbox IO thread per box).
pub const MAX_BOXES: usize = 2_000;

struct SimBox {
    cfg: Config,
    outbox: SharedOutbox,
    wake: Arc<Notify>,
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<UplinkStats>>>,
    next_window: u64,
}

pub struct Fleet {
    rt: tokio::runtime::Runtime,
    boxes: Vec<SimBox>,
    /// Idempotency key → wall-clock ms when the event was stored in its box's outbox.
    pub emitted: HashMap<String, u64>,
}

/// The store and device ids of box `i` (ten boxes per store).
pub fn box_ids(i: usize) -> (String, String) {
    (format!("store-{:04}", i / 10), format!("box-{i:05}"))
}

impl Fleet {
    /// Open `n` boxes under `dir` (one state directory each) publishing to `127.0.0.1:port`.
    pub fn start(n: usize, dir: &Path, port: u16) -> anyhow::Result<Fleet> {
        anyhow::ensure!(n <= MAX_BOXES, "at most {MAX_BOXES} boxes");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let mut boxes = Vec::with_capacity(n);
        for i in 0..n {
            let (store, device) = box_ids(i);
            let state: PathBuf = dir.join(&device);
            let text = format!(
                "[device]\nid = \"{device}\"\nstore_id = \"{store}\"\n[[microphones]]\nid = \"m\"\ndevice = \"default\"\n\
                 [mqtt]\nurl = \"mqtt://127.0.0.1:{port}\"\nclient_id = \"fleet-{device}\"\nhealth_secs = 60\n\
                 [outbox]\ndir = \"{}\"\nmax_mb = 16\n",
                state.display()
            );
            let cfg = Config::parse(&text, Path::new("fleet.toml"))
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let mqtt = cfg
                .mqtt
                .clone()
                .ok_or_else(|| anyhow::anyhow!("no broker"))?;
            let outbox: SharedOutbox = Arc::new(Mutex::new(open_outbox(&cfg)?));
            let wake = Arc::new(Notify::new());
            let (stop, stop_rx) = watch::channel(false);
            let uplink = Uplink::new(&cfg, &mqtt, outbox.clone(), Default::default())?;
            let task = rt.spawn(uplink.run(wake.clone(), stop_rx, Duration::from_secs(30)));
            boxes.push(SimBox {
                cfg,
                outbox,
                wake,
                stop,
                task: Some(task),
                next_window: 0,
            });
        }
        Ok(Fleet {
            rt,
            boxes,
            emitted: HashMap::new(),
        })
    }

    pub fn len(&self) -> usize {
        self.boxes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.boxes.is_empty()
    }

    /// Store one synthetic window in box `i`'s outbox and wake its uplink.
    pub fn emit(&mut self, i: usize) -> anyhow::Result<()> {
        let b = &mut self.boxes[i];
        let (store, device) = (b.cfg.device.store_id.clone(), b.cfg.device.id.clone());
        let meta = EventMeta {
            device_id: &device,
            store_id: &store,
            source_id: "entrance",
            k_min: 5,
        };
        // Synthetic minute windows, one after the other from a fixed day.
        let start = 1_798_761_600_000 + b.next_window * 60_000;
        b.next_window += 1;
        let mut key = String::new();
        lock_outbox(&b.outbox).try_append(mono_ms(), |seq| {
            let ev = WindowEvent::new(&meta, seq, start, start + 60_000, super::bench::body());
            key = ev.idempotency_key.clone();
            serde_json::to_vec(&ev)
        })?;
        self.emitted.insert(key, now_ms());
        b.wake.notify_one();
        Ok(())
    }

    /// Emit `per_box_per_s` windows per box per second for `run`, spread evenly; `at_half`
    /// runs once half-way (e.g. to kill an ingest instance). Returns events emitted.
    pub fn emit_for(
        &mut self,
        run: Duration,
        per_box_per_s: f64,
        mut at_half: impl FnMut(),
    ) -> anyhow::Result<u64> {
        let n = self.boxes.len();
        let total = (run.as_secs_f64() * per_box_per_s * n as f64).round() as u64;
        let start = Instant::now();
        let mut half_done = false;
        for k in 0..total {
            let due = start + run.mul_f64(k as f64 / total.max(1) as f64);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            if !half_done && start.elapsed() >= run / 2 {
                half_done = true;
                at_half();
            }
            self.emit((k as usize) % n)?;
        }
        Ok(total)
    }

    /// Events not yet acknowledged by the broker, over all boxes.
    pub fn unacked(&self) -> usize {
        self.boxes
            .iter()
            .map(|b| lock_outbox(&b.outbox).depth().0)
            .sum()
    }

    /// Wait until every box's outbox is empty (or `limit` passes); returns what is left.
    pub fn drain(&self, limit: Duration) -> usize {
        let until = Instant::now() + limit;
        loop {
            let left = self.unacked();
            if left == 0 || Instant::now() >= until {
                return left;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Drop box `i`'s connection without a goodbye (the broker publishes its last will).
    pub fn vanish(&mut self, i: usize) {
        if let Some(t) = self.boxes[i].task.take() {
            t.abort();
        }
    }

    /// Stop every uplink (each says goodbye: retained offline status).
    pub fn stop(mut self) -> anyhow::Result<()> {
        for b in &self.boxes {
            let _ = b.stop.send(true);
            b.wake.notify_one();
        }
        for b in &mut self.boxes {
            if let Some(t) = b.task.take() {
                let _ = self.rt.block_on(t);
            }
        }
        Ok(())
    }
}
