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

pub fn start_microphone(
    cfg: &Config,
    mic: &Microphone,
    input: Option<&Path>,
    opts: &Options,
    tx: SyncSender<WindowOut>,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<Running> {
    let m = &cfg.models;
    let mut vad = Vad::load(&m.vad, &m.dir).with_context(|| format!("microphone {:?}", mic.id))?;
    let file_audio = |p: &Path| -> anyhow::Result<AudioInput> {
        Ok(AudioInput::File(Box::new(
            AudioFile::open(p, opts.pacing).with_context(|| format!("microphone {:?}", mic.id))?,
        )))
    };
    let source = match (input, &mic.source) {
        (Some(p), _) => file_audio(p)?,
        (None, AudioCfg::File(p)) => file_audio(p)?,
        #[cfg(feature = "alsa")]
        (None, AudioCfg::Device(d)) => AudioInput::Live(d.clone()),
        #[cfg(not(feature = "alsa"))]
        (None, AudioCfg::Device(d)) => anyhow::bail!(
            "microphone {:?}: live capture ({d}) is not in this build (built without the `alsa` feature)",
            mic.id
        ),
    };
    let progress = Arc::new(SourceProgress::new("microphone"));
    #[allow(irrefutable_let_patterns)] // without the `alsa` feature there are only files
    if let AudioInput::File(f) = &source {
        progress
            .duration_ms
            .store(f.duration_ms().unwrap_or(0), Ordering::Relaxed);
    }
    let mut signals = AudioSignals::new(m.vad_threshold);
    let mut sounds = match &m.audio_events {
        None => None,
        Some(name) => match AudioEvents::load(name, &m.dir) {
            Ok(a) => Some(a),
            // Optional model (no public upstream): without it the microphone still reports
            // speech and level; the windows simply carry no `sounds`.
            Err(e @ ModelError::Missing { .. }) => {
                tracing::warn!(microphone = %mic.id, "sound categories OFF: {e}; set `audio_events = \"none\"` in [models] to silence this");
                None
            }
            Err(e) => return Err(anyhow::Error::new(e).context(format!("microphone {:?}", mic.id))),
        },
    };
    if sounds.is_some() {
        signals.enable_sounds();
    }
    let (opts, p, id) = (opts.clone(), progress.clone(), mic.id.clone());
    let handle = std::thread::Builder::new()
        .name(format!("mic-{id}"))
        .spawn(move || -> anyhow::Result<()> {
            let mut windower = Windower::new(opts.window_secs);
            let window_s = f64::from(opts.window_secs);
            let mut close =
                |signals: &mut AudioSignals, windows: Vec<(u64, u64)>| -> anyhow::Result<()> {
                    for (s, e) in windows {
                        let body = Body::Microphone(signals.take_window(window_s));
                        p.windows.fetch_add(1, Ordering::Relaxed);
                        tx.send(WindowOut {
                            source_id: id.clone(),
                            start_ms: s,
                            end_ms: e,
                            body,
                        })
                        .map_err(|_| anyhow::anyhow!("event consumer stopped"))?;
                    }
                    Ok(())
                };
            type Close<'a> =
                dyn FnMut(&mut AudioSignals, Vec<(u64, u64)>) -> anyhow::Result<()> + 'a;
            let mut analyse = |signals: &mut AudioSignals,
                               windower: &mut Windower,
                               close: &mut Close<'_>,
                               block: vitrine_sensors::AudioBlock|
             -> anyhow::Result<()> {
                let t = opts.base_ms + block.t_ms;
                close(signals, windower.advance(t))?;
                let started = std::time::Instant::now();
                let prob = vad.process(&block.samples)?;
                p.inferred(started.elapsed());
                let seconds =
                    block.samples.len() as f64 / f64::from(vitrine_models::vad::SAMPLE_RATE);
                signals.observe(seconds, prob, rms(&block.samples));
                if let Some(a) = sounds.as_mut() {
                    for sound in a.push(&block.samples)? {
                        signals.observe_sound(
                            vitrine_models::audio_events::SECONDS_PER_CLASSIFICATION,
                            sound,
                        );
                    }
                }
                p.media_ms.store(block.t_ms, Ordering::Relaxed);
                Ok(())
            };
            match source {
                AudioInput::File(mut source) => {
                    while !stop.load(Ordering::Relaxed) {
                        let Some(block) = source.next_block()? else {
                            break;
                        };
                        analyse(&mut signals, &mut windower, &mut close, block)?;
                    }
                }
                #[cfg(feature = "alsa")]
                AudioInput::Live(device) => {
                    live_microphone(&id, &device, &opts, &stop, &p, &mut |block| match block {
                        Some(b) => analyse(&mut signals, &mut windower, &mut close, b),
                        None => close(&mut signals, windower.advance(opts.now_ms())),
                    })?;
                    close(&mut signals, windower.advance(opts.now_ms()))?;
                }
            }
            close(&mut signals, windower.current().into_iter().collect())?;
            p.done.store(true, Ordering::Relaxed);
            Ok(())
        })?;
    Ok(Running {
        source_id: mic.id.clone(),
        progress,
        handle,
    })
}
