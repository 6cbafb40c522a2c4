//! Microphones through `cpal` (ALSA; PulseAudio/PipeWire through ALSA's default device).
//!
//! The audio callback runs on cpal's real-time thread and must never allocate or block: it
//! downmixes each frame to mono and enqueues it into a fixed-capacity lock-free SPSC ring
//! (`heapless::spsc`, [`RING`] samples, allocated once per configured microphone). When the
//! ring is full the sample is dropped and counted (`Ring::overflowed`); the analysis side
//! reports the missing time as blind seconds in the window's coverage. The analysis thread
//! drains the ring, resamples to 16 kHz (rubato) and hands out 512-sample blocks.
//!
//! Device loss (unplug, the sound server going away) and a silent stream (no callback for
//! [`STALL`]) end the source with an error; the agent reopens it with backoff, reusing the ring.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use cpal::{FromSample, SampleFormat, SizedSample};
use heapless::spsc::{Consumer, Producer, Queue};
use rubato::{FftFixedIn, Resampler};

use crate::audio_file::{BLOCK, RATE};
use crate::{AudioBlock, AudioSource, SourceError};

/// Ring capacity in mono samples: 0.68 s at 48 kHz, 2 s at 16 kHz.
pub const RING: usize = 32_768;
/// A stream that delivers nothing for this long counts as lost.
pub const STALL: Duration = Duration::from_secs(3);
const READ_FRAMES: usize = 1024;

/// The callback's half of the ring. The `Mutex` is only ever contended while a stream is
/// being replaced; the callback uses `try_lock` and counts a sample as dropped rather than wait.
type Slot = Arc<Mutex<Option<Producer<'static, f32>>>>;

/// One microphone's ring, kept across reopenings (allocated once, for the process lifetime).
pub struct Ring {
    producer: Slot,
    consumer: Consumer<'static, f32>,
    overflowed: Arc<AtomicU64>,
}

impl Ring {
    pub fn new() -> Ring {
        let q: &'static mut Queue<f32, RING> = Box::leak(Box::new(Queue::new()));
        let (p, c) = q.split();
        Ring {
            producer: Arc::new(Mutex::new(Some(p))),
            consumer: c,
            overflowed: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Samples dropped because the analysis side fell behind (since the ring was made).
    pub fn overflowed(&self) -> u64 {
        self.overflowed.load(Ordering::Relaxed)
    }
}

impl Default for Ring {
    fn default() -> Ring {
        Ring::new()
    }
}

/// Downmix interleaved frames to mono and enqueue them. Runs in the audio callback: no
/// allocation, no blocking (`try_lock`, fixed-capacity ring).
fn push_frames<T>(data: &[T], channels: usize, slot: &Slot, overflowed: &AtomicU64)
where
    T: SizedSample,
    f32: FromSample<T>,
{
    let frames = data.len() / channels.max(1);
    let Ok(mut guard) = slot.try_lock() else {
        overflowed.fetch_add(frames as u64, Ordering::Relaxed);
        return;
    };
    let Some(p) = guard.as_mut() else {
        return;
    };
    let scale = 1.0 / channels.max(1) as f32;
    let mut dropped = 0u64;
    for frame in data.chunks_exact(channels.max(1)) {
        let mut sum = 0.0f32;
        for &s in frame {
            sum += s.to_sample::<f32>();
        }
        if p.enqueue(sum * scale).is_err() {
            dropped += 1;
        }
    }
    if dropped > 0 {
        overflowed.fetch_add(dropped, Ordering::Relaxed);
    }
}

fn find_device(host: &cpal::Host, name: &str) -> Option<cpal::Device> {
    if name == "default" {
        return host.default_input_device();
    }
    let id = if name.contains(':') && !name.starts_with("hw:") && !name.starts_with("plughw:") {
        name.to_string()
    } else {
        format!("alsa:{name}")
    };
    if let Ok(id) = id.parse::<cpal::DeviceId>() {
        if let Some(d) = host.device_by_id(&id) {
            return Some(d);
        }
    }
    host.input_devices().ok()?.find(|d| {
        d.id()
            .map(|i| i.id() == name || i.to_string() == name)
            .unwrap_or(false)
            || d.description().map(|x| x.name() == name).unwrap_or(false)
    })
}

pub struct Microphone {
    /// `Some` until closed (see `close`).
    stream: Option<cpal::Stream>,
    active: Arc<AtomicBool>,
    ring: Option<Ring>,
    what: String,
    lost: Arc<AtomicBool>,
    epoch: Instant,
    rate: u32,
    resampler: Option<FftFixedIn<f32>>,
    pending: Vec<f32>,
    out: VecDeque<f32>,
    last_data: Instant,
}

impl Microphone {
    /// Open `device` ("default", an ALSA name such as "hw:CARD=Mic,DEV=0", or a cpal id such
    /// as "alsa:default") and start capturing into `ring`. On failure the ring is handed back.
    #[allow(clippy::result_large_err)]
    pub fn open(
        device: &str,
        ring: Ring,
        epoch: Instant,
    ) -> Result<Microphone, (SourceError, Ring)> {
        let what = format!("microphone {device:?}");
        let fail = |message: String, fix: &str, ring: Ring| {
            (
                SourceError::Open {
                    what: what.clone(),
                    message,
                    fix: fix.to_string(),
                },
                ring,
            )
        };
        let host = cpal::default_host();
        let Some(dev) = find_device(&host, device) else {
            return Err(fail(
                "no such capture device".into(),
                "plug the microphone in, or set `device` to one `vitrine probe` lists",
                ring,
            ));
        };
        let cfg = match choose_config(&dev) {
            Ok(c) => c,
            Err(m) => {
                return Err(fail(
                    m,
                    "see `vitrine probe` for the device's configurations",
                    ring,
                ))
            }
        };
        let channels = usize::from(cfg.channels());
        let rate = cfg.sample_rate();
        let format = cfg.sample_format();
        let lost = Arc::new(AtomicBool::new(false));
        // Stale samples from before an outage are not this stream's.
        let mut ring = ring;
        while ring.consumer.dequeue().is_some() {}
        let (slot, over, l2) = (ring.producer.clone(), ring.overflowed.clone(), lost.clone());
        // Cleared when this stream is closed: a stream stuck in its driver that wakes up later
        // must not feed the ring of its successor.
        let active = Arc::new(AtomicBool::new(true));
        let live = active.clone();
        let err_cb = move |e: cpal::Error| {
            tracing::warn!("microphone stream error: {e}");
            l2.store(true, Ordering::Relaxed);
        };
        macro_rules! build {
            ($t:ty) => {
                dev.build_input_stream::<$t, _, _>(
                    cfg.config(),
                    move |data: &[$t], _| {
                        if live.load(Ordering::Relaxed) {
                            push_frames(data, channels, &slot, &over)
                        }
                    },
                    err_cb,
                    Some(Duration::from_secs(5)),
                )
            };
        }
        let stream = match format {
            SampleFormat::F32 => build!(f32),
            SampleFormat::I16 => build!(i16),
            SampleFormat::I32 => build!(i32),
            SampleFormat::U16 => build!(u16),
            SampleFormat::U8 => build!(u8),
            SampleFormat::I8 => build!(i8),
            SampleFormat::F64 => build!(f64),
            other => {
                return Err(fail(
                    format!("sample format {other} is not supported"),
                    "choose another device configuration (see `vitrine probe`)",
                    ring,
                ))
            }
        };
        let stream = match stream {
            Ok(s) => s,
            Err(e) => return Err(fail(e.to_string(), fix_for(&e.to_string()), ring)),
        };
        if let Err(e) = stream.play() {
            return Err(fail(e.to_string(), fix_for(&e.to_string()), ring));
        }
        let resampler = if rate == RATE {
            None
        } else {
            match FftFixedIn::<f32>::new(rate as usize, RATE as usize, READ_FRAMES, 2, 1) {
                Ok(r) => Some(r),
                Err(e) => {
                    return Err(fail(
                        format!("cannot resample from {rate} Hz: {e}"),
                        "choose a 16, 44.1 or 48 kHz configuration",
                        ring,
                    ))
                }
            }
        };
        tracing::info!(microphone = device, rate, channels, format = %format, "microphone capturing");
        Ok(Microphone {
            stream: Some(stream),
            active,
            ring: Some(ring),
            what,
            lost,
            epoch,
            rate,
            resampler,
            pending: Vec::with_capacity(READ_FRAMES),
            out: VecDeque::with_capacity(4 * BLOCK),
            last_data: Instant::now(),
        })
    }

    /// Stop capturing and take the ring back (to reopen later).
    pub fn close(mut self) -> Ring {
        self.shut();
        self.ring.take().unwrap_or_default()
    }

    /// Detach the stream. Dropping a cpal stream joins its capture thread, which can sit in
    /// the driver forever when the device vanished (seen with ALSA's PulseAudio plugin when the
    /// sound server dies): it is dropped on a thread of its own so this source never hangs.
    fn shut(&mut self) {
        self.active.store(false, Ordering::Relaxed);
        if let Some(stream) = self.stream.take() {
            let spawned = std::thread::Builder::new()
                .name("mic-close".into())
                .spawn(move || drop(stream));
            if let Err(e) = spawned {
                tracing::warn!("microphone stream left open: no thread to close it: {e}");
            }
        }
    }

    /// Samples dropped because analysis fell behind.
    pub fn overflowed(&self) -> u64 {
        self.ring.as_ref().map_or(0, Ring::overflowed)
    }

    pub fn device_rate(&self) -> u32 {
        self.rate
    }

    fn read_err(&self, message: &str) -> SourceError {
        SourceError::Read {
            what: self.what.clone(),
            message: message.to_string(),
        }
    }
}

fn fix_for(message: &str) -> &'static str {
    if message.contains("busy") || message.contains("Busy") {
        "another program holds the device: use a shared device (\"default\" through PulseAudio/PipeWire, or dsnoop)"
    } else if message.contains("ermission") {
        "give the agent access: add its user to group `audio` (the packaged service has DeviceAllow=char-alsa)"
    } else {
        "check the microphone with `vitrine probe`"
    }
}

/// 16 kHz mono if the device can, else its default configuration (resampled and downmixed).
fn choose_config(dev: &cpal::Device) -> Result<cpal::SupportedStreamConfig, String> {
    if let Ok(ranges) = dev.supported_input_configs() {
        let mut direct: Vec<_> = ranges
            .filter(|r| r.min_sample_rate() <= RATE && RATE <= r.max_sample_rate())
            .filter(|r| matches!(r.sample_format(), SampleFormat::F32 | SampleFormat::I16))
            .collect();
        direct.sort_by_key(|r| r.channels());
        if let Some(r) = direct.into_iter().next() {
            return Ok(r.with_sample_rate(RATE));
        }
    }
    dev.default_input_config()
        .map_err(|e| format!("no usable capture configuration: {e}"))
}

impl Drop for Microphone {
    fn drop(&mut self) {
        self.shut();
    }
}

impl AudioSource for Microphone {
    fn next_block(&mut self) -> Result<Option<AudioBlock>, SourceError> {
        loop {
            if self.out.len() >= BLOCK {
                let samples: Vec<f32> = self.out.drain(..BLOCK).collect();
                let t_ms = self.epoch.elapsed().as_millis() as u64;
                return Ok(Some(AudioBlock { t_ms, samples }));
            }
            let mut got = 0usize;
            let Some(ring) = self.ring.as_mut() else {
                return Err(self.read_err("the microphone is closed"));
            };
            while let Some(s) = ring.consumer.dequeue() {
                got += 1;
                match self.resampler {
                    None => self.out.push_back(s),
                    Some(_) => {
                        self.pending.push(s);
                        if self.pending.len() == READ_FRAMES {
                            break;
                        }
                    }
                }
            }
            if let Some(r) = &mut self.resampler {
                if self.pending.len() == READ_FRAMES {
                    let o =
                        r.process(&[&self.pending[..]], None)
                            .map_err(|e| SourceError::Read {
                                what: self.what.clone(),
                                message: e.to_string(),
                            })?;
                    self.out.extend(o[0].iter());
                    self.pending.clear();
                }
            }
            if got > 0 {
                self.last_data = Instant::now();
                continue;
            }
            if self.lost.load(Ordering::Relaxed) {
                return Err(self.read_err("the device went away"));
            }
            if self.last_data.elapsed() > STALL {
                return Err(self.read_err(&format!(
                    "no audio for {} s (device stalled or unplugged)",
                    STALL.as_secs()
                )));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn duration_ms(&self) -> Option<u64> {
        None
    }
}

/// One capture device as `vitrine probe` shows it.
#[derive(Debug, Clone)]
pub struct MicReport {
    /// What to write in `device = ...`.
    pub id: String,
    pub name: String,
    pub is_default: bool,
    /// Its configurations ("1-2 ch, 8000-48000 Hz, i16"), or why they could not be read.
    pub configs: Result<Vec<String>, String>,
}

/// List this machine's capture devices and their configurations.
pub fn probe() -> Result<Vec<MicReport>, SourceError> {
    let host = cpal::default_host();
    let default_id = host.default_input_device().and_then(|d| d.id().ok());
    let devices = host.input_devices().map_err(|e| SourceError::Open {
        what: "microphones".into(),
        message: e.to_string(),
        fix: "check that ALSA is installed and /dev/snd is readable".into(),
    })?;
    let mut out = Vec::new();
    for d in devices {
        let id = d.id().ok();
        let configs = d
            .supported_input_configs()
            .map(|cs| {
                cs.map(|c| {
                    format!(
                        "{} ch, {}-{} Hz, {}",
                        c.channels(),
                        c.min_sample_rate(),
                        c.max_sample_rate(),
                        c.sample_format()
                    )
                })
                .collect::<Vec<_>>()
            })
            .map_err(|e| e.to_string());
        out.push(MicReport {
            is_default: id.is_some() && id == default_id,
            id: id.map(|i| i.id().to_string()).unwrap_or_default(),
            name: d
                .description()
                .map(|x| x.name().to_string())
                .unwrap_or_default(),
            configs,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_callback_downmixes_and_counts_overflow_instead_of_blocking() {
        let ring = Ring::new();
        // Stereo i16: L=+half, R=-half -> mono 0; then L=R=half -> 0.5.
        let frames: Vec<i16> = [16384i16, -16384, 16384, 16384].repeat(RING);
        push_frames(&frames, 2, &ring.producer, &ring.overflowed);
        let mut c = ring.consumer;
        let first = c.dequeue().unwrap();
        let second = c.dequeue().unwrap();
        assert!(
            first.abs() < 1e-6 && (second - 0.5).abs() < 1e-3,
            "{first} {second}"
        );
        // 2*RING frames were offered to a RING ring: the rest were counted, not waited for.
        let overflow = ring.overflowed.load(Ordering::Relaxed);
        assert!(overflow >= RING as u64 - 1, "overflow {overflow}");
    }

    #[test]
    fn a_held_slot_drops_and_counts_instead_of_waiting() {
        let ring = Ring::new();
        let _held = ring.producer.lock().unwrap();
        push_frames(&[0.1f32; 8], 1, &ring.producer, &ring.overflowed);
        assert_eq!(ring.overflowed.load(Ordering::Relaxed), 8);
    }

    #[test]
    fn a_missing_device_is_a_clear_open_error_and_the_ring_comes_back() {
        let (e, ring) =
            Microphone::open("hw:CARD=VitrineMissing,DEV=0", Ring::new(), Instant::now())
                .err()
                .expect("no such device");
        let s = e.to_string();
        assert!(
            s.contains("VitrineMissing") && s.contains("vitrine probe"),
            "{s}"
        );
        assert_eq!(ring.overflowed(), 0);
    }
}
