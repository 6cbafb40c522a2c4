//! A microphone's thread: blocks from a recording or a live device, voice activity, sound
//! level and categories, windows closed on time.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::Arc;

use anyhow::Context;
use vitrine_config::{AudioSource as AudioCfg, Config, Microphone};
use vitrine_models::{AudioEvents, ModelError, Vad};
use vitrine_sensors::audio_file::AudioFile;
use vitrine_sensors::AudioSource;
use vitrine_signals::audio::rms;
use vitrine_signals::{AudioSignals, Body, Windower};

#[cfg(feature = "alsa")]
use super::live::live_microphone;
use super::*;
use crate::telemetry::SourceProgress;

/// A microphone's input: a recording, or a live device (reopened after loss).
enum AudioInput {
    File(Box<AudioFile>),
    #[cfg(feature = "alsa")]
    Live(String),
}

/// Start a microphone: the models are loaded (and a recording opened) before the thread
/// starts, so a missing model or file is reported at once, by name.
pub fn start_microphone(
    cfg: &Config,
    mic: &Microphone,
    input: Option<&Path>,
    opts: &Options,
    tx: SyncSender<Record>,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<Running> {
    let m = &cfg.models;
    let vad = Vad::load(&m.vad, &m.dir).with_context(|| format!("microphone {:?}", mic.id))?;
    let source = open_input(mic, input, opts)?;
    let progress = Arc::new(SourceProgress::new("microphone"));
    #[allow(irrefutable_let_patterns)] // without the `alsa` feature there are only files
    if let AudioInput::File(f) = &source {
        progress
            .duration_ms
            .store(f.duration_ms().unwrap_or(0), Ordering::Relaxed);
    }
    let mut signals = AudioSignals::new(m.vad_threshold);
    let sounds = load_sounds(cfg, mic)?;
    if sounds.is_some() {
        signals.enable_sounds();
    }
    let mut analysis = Analysis {
        id: mic.id.clone(),
        vad,
        sounds,
        signals,
        windower: Windower::new(opts.window_secs),
        opts: opts.clone(),
        p: progress.clone(),
        tx,
    };
    let handle = std::thread::Builder::new()
        .name(format!("mic-{}", mic.id))
        .spawn(move || analysis.run(source, &stop))?;
    Ok(Running {
        source_id: mic.id.clone(),
        progress,
        handle,
    })
}

fn open_input(
    mic: &Microphone,
    input: Option<&Path>,
    opts: &Options,
) -> anyhow::Result<AudioInput> {
    let file_audio = |p: &Path| -> anyhow::Result<AudioInput> {
        Ok(AudioInput::File(Box::new(
            AudioFile::open(p, opts.pacing).with_context(|| format!("microphone {:?}", mic.id))?,
        )))
    };
    Ok(match (input, &mic.source) {
        (Some(p), _) => file_audio(p)?,
        (None, AudioCfg::File(p)) => file_audio(p)?,
        #[cfg(feature = "alsa")]
        (None, AudioCfg::Device(d)) => AudioInput::Live(d.clone()),
        #[cfg(not(feature = "alsa"))]
        (None, AudioCfg::Device(d)) => anyhow::bail!(
            "microphone {:?}: live capture ({d}) is not in this build (built without the `alsa` feature)",
            mic.id
        ),
    })
}

/// The sound classifier, if configured. It is optional (no public upstream): without it the
/// microphone still reports speech and level; the windows simply carry no `sounds`.
fn load_sounds(cfg: &Config, mic: &Microphone) -> anyhow::Result<Option<AudioEvents>> {
    let m = &cfg.models;
    let Some(name) = &m.audio_events else {
        return Ok(None);
    };
    match AudioEvents::load(name, &m.dir) {
        Ok(a) => Ok(Some(a)),
        Err(e @ ModelError::Missing { .. }) => {
            tracing::warn!(microphone = %mic.id, "sound categories OFF: {e}; set `audio_events = \"none\"` in [models] to silence this");
            Ok(None)
        }
        Err(e) => Err(anyhow::Error::new(e).context(format!("microphone {:?}", mic.id))),
    }
}

/// The analysis thread of a microphone: every block through voice activity, level and sound
/// categories; windows closed on the blocks' time (and on the clock while a device is down).
struct Analysis {
    id: String,
    vad: Vad,
    sounds: Option<AudioEvents>,
    signals: AudioSignals,
    windower: Windower,
    opts: Options,
    p: Arc<SourceProgress>,
    tx: SyncSender<Record>,
}

impl Analysis {
    fn run(&mut self, source: AudioInput, stop: &AtomicBool) -> anyhow::Result<()> {
        match source {
            AudioInput::File(mut source) => {
                while !stop.load(Ordering::Relaxed) {
                    let Some(block) = source.next_block()? else {
                        break;
                    };
                    self.block(block)?;
                }
            }
            #[cfg(feature = "alsa")]
            AudioInput::Live(device) => {
                let (id, opts, p) = (self.id.clone(), self.opts.clone(), self.p.clone());
                live_microphone(&id, &device, &opts, stop, &p, &mut |block| match block {
                    Some(b) => self.block(b),
                    None => self.close_until(self.opts.now_ms()),
                })?;
                self.close_until(self.opts.now_ms())?;
            }
        }
        let current = self.windower.current().into_iter().collect();
        self.close(current)?;
        self.p.done.store(true, Ordering::Relaxed);
        Ok(())
    }

    fn block(&mut self, block: vitrine_sensors::AudioBlock) -> anyhow::Result<()> {
        let t = self.opts.base_ms + block.t_ms;
        self.close_until(t)?;
        let started = std::time::Instant::now();
        let prob = self.vad.process(&block.samples)?;
        self.p.inferred(started.elapsed());
        let seconds = block.samples.len() as f64 / f64::from(vitrine_models::vad::SAMPLE_RATE);
        self.signals.observe(seconds, prob, rms(&block.samples));
        if let Some(a) = self.sounds.as_mut() {
            for sound in a.push(&block.samples)? {
                self.signals.observe_sound(
                    vitrine_models::audio_events::SECONDS_PER_CLASSIFICATION,
                    sound,
                );
            }
        }
        self.p.media_ms.store(block.t_ms, Ordering::Relaxed);
        Ok(())
    }

    fn close_until(&mut self, t_ms: u64) -> anyhow::Result<()> {
        let windows = self.windower.advance(t_ms);
        self.close(windows)
    }

    fn close(&mut self, windows: Vec<(u64, u64)>) -> anyhow::Result<()> {
        let window_s = f64::from(self.opts.window_secs);
        for (s, e) in windows {
            let body = Body::Microphone(self.signals.take_window(window_s));
            hand_off(&self.tx, &self.p, &self.id, (s, e), (body, None))?;
        }
        Ok(())
    }
}
