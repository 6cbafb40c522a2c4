//! Sound categories with YAMNet: the log-mel front end is computed here, in Rust, exactly as
//! YAMNet's `features.py` does (16 kHz, 25 ms periodic-Hann windows every 10 ms, 512-point
//! FFT magnitude, 64 mel bands 125–7500 Hz on the HTK mel scale, `ln(mel + 0.001)`); the ONNX
//! classifier takes 96-frame (0.96 s) patches, one every 48 frames (0.48 s). Its top class of
//! 521 AudioSet classes is reduced to a content-free category (speech, music, crowd, silence,
//! other). No audio and no class score leaves this module.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::Arc;

use realfft::{RealFftPlanner, RealToComplex};
use tract_onnx::prelude::*;
use vitrine_signals::audio::{dbfs, Sound, SILENCE_DBFS};

use crate::detector::{load_plan, Plan};
use crate::manifest::{entry, verified_path};
use crate::ModelError;

pub const WINDOW: usize = 400;
pub const HOP: usize = 160;
const FFT: usize = 512;
pub const MELS: usize = 64;
pub const PATCH: usize = 96;
pub const PATCH_HOP: usize = 48;
/// Seconds of audio each classification stands for (the patch hop).
pub const SECONDS_PER_CLASSIFICATION: f64 = (PATCH_HOP * HOP) as f64 / 16_000.0;
const LOG_OFFSET: f32 = 0.001;

/// AudioSet class index → category. Speech: 0–12 (speech, conversation, narration, babbling,
/// synthesizer, shouting, whispering); crowd: 61–66 (cheering, applause, chatter, crowd,
/// hubbub/babble, children playing); music: 132–276 (music, instruments, genres, moods);
/// silence: 494. Everything else is "other".
pub fn category(class: usize) -> Sound {
    match class {
        0..=12 => Sound::Speech,
        61..=66 => Sound::Crowd,
        132..=276 => Sound::Music,
        494 => Sound::Silence,
        _ => Sound::Other,
    }
}

/// The log-mel front end (streaming: samples in, 64-band frames out).
pub struct LogMel {
    fft: Arc<dyn RealToComplex<f32>>,
    window: Vec<f32>,
    /// 64 × 257 mel weights (row per band).
    weights: Vec<[f32; FFT / 2 + 1]>,
    pending: Vec<f32>,
    scratch_in: Vec<f32>,
    scratch_out: Vec<realfft::num_complex::Complex<f32>>,
}

fn hz_to_mel(hz: f64) -> f64 {
    1127.0 * (1.0 + hz / 700.0).ln()
}

impl Default for LogMel {
    fn default() -> Self {
        Self::new()
    }
}

impl LogMel {
    pub fn new() -> LogMel {
        let fft = RealFftPlanner::<f32>::new().plan_fft_forward(FFT);
        // Periodic Hann (tf.signal.hann_window(periodic=True)).
        let window = (0..WINDOW)
            .map(|i| {
                (0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / WINDOW as f64).cos()) as f32
            })
            .collect();
        // tf.signal.linear_to_mel_weight_matrix: the DC bin gets no weight; triangles in mel.
        let bins = FFT / 2 + 1;
        let (lo, hi) = (hz_to_mel(125.0), hz_to_mel(7500.0));
        let edges: Vec<f64> = (0..MELS + 2)
            .map(|i| lo + (hi - lo) * i as f64 / (MELS + 1) as f64)
            .collect();
        let mut weights = vec![[0.0f32; FFT / 2 + 1]; MELS];
        for (b, row) in weights.iter_mut().enumerate() {
            let (l, c, u) = (edges[b], edges[b + 1], edges[b + 2]);
            for (k, w) in row.iter_mut().enumerate().skip(1) {
                let m = hz_to_mel(8000.0 * k as f64 / (bins - 1) as f64);
                let v = ((m - l) / (c - l)).min((u - m) / (u - c)).max(0.0);
                *w = v as f32;
            }
        }
        let scratch_in = fft.make_input_vec();
        let scratch_out = fft.make_output_vec();
        LogMel {
            fft,
            window,
            weights,
            pending: Vec::with_capacity(WINDOW + 4096),
            scratch_in,
            scratch_out,
        }
    }

    /// Feed samples (16 kHz mono); every complete 10 ms hop yields a frame into `out`.
    pub fn push(&mut self, samples: &[f32], out: &mut Vec<[f32; MELS]>) {
        self.pending.extend_from_slice(samples);
        let mut start = 0;
        while self.pending.len() - start >= WINDOW {
            let frame = &self.pending[start..start + WINDOW];
            self.scratch_in.fill(0.0);
            for (d, (s, w)) in self
                .scratch_in
                .iter_mut()
                .zip(frame.iter().zip(&self.window))
            {
                *d = s * w;
            }
            if self
                .fft
                .process(&mut self.scratch_in, &mut self.scratch_out)
                .is_err()
            {
                // Only a length mismatch errs, and the buffers come from the plan itself.
                break;
            }
            let mut mel = [0.0f32; MELS];
            for (m, row) in mel.iter_mut().zip(&self.weights) {
                let e: f32 = row
                    .iter()
                    .zip(&self.scratch_out)
                    .map(|(w, c)| w * c.norm())
                    .sum();
                *m = (e + LOG_OFFSET).ln();
            }
            out.push(mel);
            start += HOP;
        }
        self.pending.drain(..start);
    }
}

/// Streaming sound classification: samples in, one category per 0.48 s out.
pub struct AudioEvents {
    plan: Plan,
    mel: LogMel,
    frames: VecDeque<[f32; MELS]>,
    new_frames: usize,
    /// Energy of the samples since the last classification (for the silence floor).
    energy: f64,
    energy_n: usize,
    scratch: Vec<[f32; MELS]>,
}

impl AudioEvents {
    pub fn load(name: &str, dir: &Path) -> Result<AudioEvents, ModelError> {
        let e = entry(name)?;
        let plan = load_plan(&verified_path(dir, &e)?, &[(0, vec![PATCH, MELS])])?;
        Ok(AudioEvents {
            plan,
            mel: LogMel::new(),
            frames: VecDeque::with_capacity(PATCH + PATCH_HOP),
            new_frames: 0,
            energy: 0.0,
            energy_n: 0,
            scratch: Vec::new(),
        })
    }

    /// Feed 16 kHz mono samples; returns the categories of the patches completed (each
    /// standing for `SECONDS_PER_CLASSIFICATION` of audio).
    pub fn push(&mut self, samples: &[f32]) -> Result<Vec<Sound>, ModelError> {
        self.energy += samples.iter().map(|s| f64::from(*s).powi(2)).sum::<f64>();
        self.energy_n += samples.len();
        let mut frames = std::mem::take(&mut self.scratch);
        frames.clear();
        self.mel.push(samples, &mut frames);
        let mut out = Vec::new();
        for f in frames.drain(..) {
            if self.frames.len() == PATCH {
                self.frames.pop_front();
            }
            self.frames.push_back(f);
            self.new_frames += 1;
            if self.frames.len() == PATCH && self.new_frames >= PATCH_HOP {
                self.new_frames = 0;
                let level = dbfs((self.energy / self.energy_n.max(1) as f64).sqrt());
                self.energy = 0.0;
                self.energy_n = 0;
                out.push(if level < SILENCE_DBFS {
                    Sound::Silence
                } else {
                    category(self.top_class()?)
                });
            }
        }
        self.scratch = frames;
        Ok(out)
    }

    /// YAMNet's top class on the current 96-frame patch.
    pub fn top_class(&mut self) -> Result<usize, ModelError> {
        let err = |e: TractError| ModelError::Run {
            model: "yamnet".into(),
            message: format!("{e:#}"),
        };
        let flat: Vec<f32> = self.frames.iter().flatten().copied().collect();
        let t = Tensor::from_shape(&[PATCH, MELS], &flat).map_err(err)?;
        let out = self.plan.run(tvec!(t.into())).map_err(err)?;
        let scores = out[0].to_plain_array_view::<f32>().map_err(err)?;
        Ok(scores
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(i, _)| i)
            .unwrap_or(usize::MAX))
    }

    pub fn reset(&mut self) {
        self.mel.pending.clear();
        self.frames.clear();
        self.new_frames = 0;
        self.energy = 0.0;
        self.energy_n = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pure_tone_lands_in_the_mel_band_of_its_frequency() {
        let mut m = LogMel::new();
        let tone: Vec<f32> = (0..16_000)
            .map(|i| (2.0 * std::f32::consts::PI * 1000.0 * i as f32 / 16_000.0).sin() * 0.5)
            .collect();
        let mut frames = Vec::new();
        m.push(&tone, &mut frames);
        assert_eq!(frames.len(), (16_000 - WINDOW) / HOP + 1);
        let f = frames[10];
        let peak = (0..MELS).max_by(|a, b| f[*a].total_cmp(&f[*b])).unwrap();
        // 1 kHz on the HTK mel scale between 125 and 7500 Hz: band ≈ 64·(mel(1000)−mel(125))/(mel(7500)−mel(125)).
        let expect = 65.0 * (hz_to_mel(1000.0) - hz_to_mel(125.0))
            / (hz_to_mel(7500.0) - hz_to_mel(125.0))
            - 1.0;
        assert!(
            (peak as f64 - expect).abs() <= 1.0,
            "peak band {peak}, expected ≈ {expect:.1}"
        );
    }

    #[test]
    fn frames_do_not_depend_on_how_samples_are_chunked() {
        let noise: Vec<f32> = (0..8000)
            .map(|i| ((i * 7919 % 1000) as f32 / 1000.0) - 0.5)
            .collect();
        let (mut a, mut b) = (LogMel::new(), LogMel::new());
        let (mut fa, mut fb) = (Vec::new(), Vec::new());
        a.push(&noise, &mut fa);
        for c in noise.chunks(512) {
            b.push(c, &mut fb);
        }
        assert_eq!(fa, fb);
    }

    #[test]
    fn categories_follow_the_audioset_ontology() {
        assert_eq!(category(0), Sound::Speech);
        assert_eq!(category(65), Sound::Crowd);
        assert_eq!(category(132), Sound::Music);
        assert_eq!(category(494), Sound::Silence);
        assert_eq!(category(300), Sound::Other);
    }
}
