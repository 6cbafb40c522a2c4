//! A thread that reads the wall and monotonic clocks once a second and tells the control loop
//! when the wall clock was stepped (the decision is `clock::ClockWatch`, pure). Polling is the
//! point here: a clock step announces itself nowhere else without unsafe code.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use super::Control;
use crate::clock::{mono_ms, now_ms, ClockWatch};

const EVERY: Duration = Duration::from_secs(1);

pub struct Watch {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

pub fn start(control: Sender<Control>) -> std::io::Result<Watch> {
    let stop = Arc::new(AtomicBool::new(false));
    let st = stop.clone();
    let mut watch = ClockWatch::new(now_ms(), mono_ms());
    if !watch.plausible() {
        tracing::warn!(wall_ms = now_ms(), "the wall clock is not set (no RTC, NTP not answered yet): windows are held until it is");
    }
    let thread = std::thread::Builder::new()
        .name("clock-watch".into())
        .spawn(move || {
            while !st.load(Ordering::Relaxed) {
                std::thread::park_timeout(EVERY);
                if let Some(step) = watch.observe(now_ms(), mono_ms()) {
                    if control.send(Control::Clock(step)).is_err() {
                        return;
                    }
                }
            }
        })?;
    Ok(Watch { stop, thread })
}

impl Watch {
    pub fn finish(self) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.thread().unpark();
        let _ = self.thread.join();
    }
}
