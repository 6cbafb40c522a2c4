//! Recorded audio: WAV (hound) or FLAC (claxon), downmixed to mono and resampled to 16 kHz
//! (rubato), delivered in 512-sample blocks.

use std::collections::VecDeque;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use rubato::{FftFixedIn, Resampler};

use crate::{AudioBlock, AudioSource, Pacer, Pacing, SourceError};

pub const RATE: u32 = 16_000;
pub const BLOCK: usize = 512;
const READ_FRAMES: usize = 1024;

enum Decoder {
    Wav(hound::WavReader<BufReader<File>>),
    Flac {
        reader: claxon::FlacReader<File>,
        block: claxon::Block,
        /// Next inter-channel sample of `block`.
        pos: usize,
    },
}

pub struct AudioFile {
    path: PathBuf,
    decoder: Decoder,
    channels: usize,
    scale: f32,
    resampler: Option<FftFixedIn<f32>>,
    pending_in: Vec<f32>,
    out: VecDeque<f32>,
    eof: bool,
    emitted: u64,
    duration_ms: Option<u64>,
    pacer: Pacer,
}

impl AudioFile {
    pub fn open(path: &Path, pacing: Pacing) -> Result<AudioFile, SourceError> {
        let what = format!("audio file {}", path.display());
        let bad = |m: String| SourceError::Open {
            what: what.clone(),
            message: m,
            fix: "give a readable WAV or FLAC file (sox converts others)".into(),
        };
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("")
            .to_ascii_lowercase();
        let (decoder, rate, channels, bits, frames) = if ext == "flac" {
            let r = claxon::FlacReader::open(path).map_err(|e| bad(e.to_string()))?;
            let i = r.streaminfo();
            (
                Decoder::Flac {
                    reader: r,
                    block: claxon::Block::empty(),
                    pos: 0,
                },
                i.sample_rate,
                i.channels as usize,
                i.bits_per_sample,
                i.samples,
            )
        } else {
            let r = hound::WavReader::open(path).map_err(|e| bad(e.to_string()))?;
            let s = r.spec();
            let frames = u64::from(r.duration());
            let bits = if s.sample_format == hound::SampleFormat::Float {
                0
            } else {
                u32::from(s.bits_per_sample)
            };
            (
                Decoder::Wav(r),
                s.sample_rate,
                s.channels as usize,
                bits,
                Some(frames),
            )
        };
        if channels == 0 || rate == 0 {
            return Err(bad("no audio channels".into()));
        }
        let resampler = if rate == RATE {
            None
        } else {
            Some(
                FftFixedIn::<f32>::new(rate as usize, RATE as usize, READ_FRAMES, 2, 1)
                    .map_err(|e| bad(format!("cannot resample from {rate} Hz: {e}")))?,
            )
        };
        Ok(AudioFile {
            path: path.to_path_buf(),
            decoder,
            channels,
            scale: if bits == 0 {
                1.0
            } else {
                1.0 / (1u64 << (bits - 1)) as f32
            },
            resampler,
            pending_in: Vec::with_capacity(READ_FRAMES),
            out: VecDeque::with_capacity(4 * BLOCK),
            eof: false,
            emitted: 0,
            duration_ms: frames.map(|f| f * 1000 / u64::from(rate)),
            pacer: Pacer::new(pacing),
        })
    }

    /// Read up to READ_FRAMES mono frames; false at end of file.
    fn read_mono(&mut self, into: &mut Vec<f32>) -> Result<bool, SourceError> {
        let want = READ_FRAMES - into.len();
        let (ch, scale) = (self.channels, self.scale);
        let mut acc = 0.0f32;
        let mut n = 0usize;
        let mut push = |s: f32, into: &mut Vec<f32>| {
            acc += s;
            n += 1;
            if n == ch {
                into.push(acc / ch as f32);
                acc = 0.0;
                n = 0;
            }
        };
        let path = &self.path;
        let err = |m: String| SourceError::Read {
            what: path.display().to_string(),
            message: m,
        };
        // A file cut short (a power loss while recording) ends where its data ends: what is
        // there is analysed, with a warning, instead of failing the whole replay.
        let cut_short = |m: &dyn std::fmt::Display| {
            tracing::warn!(file = %path.display(), error = %m, "audio file cut short: analysing the part that is there");
            Ok(false)
        };
        match &mut self.decoder {
            Decoder::Wav(r) => {
                let float = r.spec().sample_format == hound::SampleFormat::Float;
                for _ in 0..want * ch {
                    let s = if float {
                        r.samples::<f32>().next()
                    } else {
                        r.samples::<i32>()
                            .next()
                            .map(|s| s.map(|v| v as f32 * scale))
                    };
                    match s {
                        Some(Ok(s)) => push(s, into),
                        None => return Ok(false),
                        // Past a valid header, a failed read is the data ending early (hound
                        // reports a short read as an I/O error of kind Other or
                        // UnexpectedEof).
                        Some(Err(hound::Error::IoError(e))) => return cut_short(&e),
                        Some(Err(e)) => return Err(err(e.to_string())),
                    }
                }
            }
            Decoder::Flac { reader, block, pos } => {
                // Whole blocks are decoded and kept between calls: a claxon sample iterator
                // dropped mid-block would lose the rest of that block.
                for _ in 0..want {
                    if *pos >= block.duration() as usize {
                        let spare = std::mem::replace(block, claxon::Block::empty()).into_buffer();
                        match reader.blocks().read_next_or_eof(spare) {
                            Ok(Some(b)) => {
                                *block = b;
                                *pos = 0;
                            }
                            Ok(None) => return Ok(false),
                            Err(claxon::Error::IoError(e))
                                if e.kind() == std::io::ErrorKind::UnexpectedEof =>
                            {
                                return cut_short(&e)
                            }
                            Err(e) => return Err(err(e.to_string())),
                        }
                        if block.duration() == 0 {
                            return Ok(false);
                        }
                    }
                    for c in 0..ch as u32 {
                        push(block.sample(c, *pos as u32) as f32 * scale, into);
                    }
                    *pos += 1;
                }
            }
        }
        Ok(true)
    }

    fn fill(&mut self) -> Result<(), SourceError> {
        while self.out.len() < BLOCK && !self.eof {
            let mut buf = std::mem::take(&mut self.pending_in);
            let more = self.read_mono(&mut buf)?;
            if !more {
                self.eof = true;
            }
            match &mut self.resampler {
                None => {
                    self.out.extend(buf.drain(..));
                }
                Some(r) => {
                    let err = |e: String| SourceError::Read {
                        what: self.path.display().to_string(),
                        message: e,
                    };
                    if buf.len() == READ_FRAMES {
                        let o = r
                            .process(&[&buf[..]], None)
                            .map_err(|e| err(e.to_string()))?;
                        self.out.extend(o[0].iter());
                        buf.clear();
                    } else if self.eof {
                        if !buf.is_empty() {
                            let o = r
                                .process_partial(Some(&[&buf[..]]), None)
                                .map_err(|e| err(e.to_string()))?;
                            self.out.extend(o[0].iter());
                        }
                        buf.clear();
                    }
                }
            }
            self.pending_in = buf;
        }
        Ok(())
    }
}

impl AudioSource for AudioFile {
    fn next_block(&mut self) -> Result<Option<AudioBlock>, SourceError> {
        self.fill()?;
        if self.out.is_empty() || (self.eof && self.out.len() < BLOCK / 2) {
            return Ok(None);
        }
        let mut samples: Vec<f32> = self.out.drain(..self.out.len().min(BLOCK)).collect();
        samples.resize(BLOCK, 0.0);
        let t_ms = self.emitted * 1000 / u64::from(RATE);
        self.emitted += BLOCK as u64;
        self.pacer.wait(t_ms);
        Ok(Some(AudioBlock { t_ms, samples }))
    }

    fn duration_ms(&self) -> Option<u64> {
        self.duration_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_wav(path: &Path, rate: u32, channels: u16, secs: f32, freq: f32) {
        let spec = hound::WavSpec {
            channels,
            sample_rate: rate,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(path, spec).unwrap();
        for i in 0..(rate as f32 * secs) as usize {
            let v = (2.0 * std::f32::consts::PI * freq * i as f32 / rate as f32).sin() * 0.5;
            for _ in 0..channels {
                w.write_sample((v * 32767.0) as i16).unwrap();
            }
        }
        w.finalize().unwrap();
    }

    #[test]
    fn stereo_48k_becomes_16k_mono_blocks_with_the_same_duration_and_level() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("tone.wav");
        write_wav(&p, 48_000, 2, 2.0, 440.0);
        let mut a = AudioFile::open(&p, Pacing::AsFastAsPossible).unwrap();
        assert_eq!(a.duration_ms(), Some(2000));
        let mut n = 0;
        let mut energy = 0.0f64;
        let mut count = 0usize;
        while let Some(b) = a.next_block().unwrap() {
            assert_eq!(b.samples.len(), BLOCK);
            n += 1;
            if n > 4 && n < 55 {
                energy += b.samples.iter().map(|s| f64::from(*s).powi(2)).sum::<f64>();
                count += b.samples.len();
            }
        }
        // 2 s at 16 kHz = 62.5 blocks.
        assert!((61..=64).contains(&n), "{n} blocks");
        let rms = (energy / count as f64).sqrt();
        assert!((rms - 0.5 / 2f64.sqrt()).abs() < 0.01, "rms {rms}");
    }

    #[test]
    fn a_wav_cut_short_by_a_power_loss_is_analysed_up_to_the_cut() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("cut.wav");
        write_wav(&p, 16_000, 1, 2.0, 440.0);
        // The header still promises 2 s; only about 1.2 s of samples made it to disk.
        let bytes = std::fs::read(&p).expect("read");
        std::fs::write(&p, &bytes[..44 + 16_000 * 2 * 12 / 10 + 1]).expect("cut");
        let mut f = AudioFile::open(&p, Pacing::AsFastAsPossible).expect("open");
        let mut blocks = 0;
        while f
            .next_block()
            .expect("a cut file is not an error")
            .is_some()
        {
            blocks += 1;
        }
        let secs = blocks as f64 * BLOCK as f64 / f64::from(RATE);
        assert!((1.1..1.3).contains(&secs), "{secs} s analysed");
    }

    #[test]
    fn a_missing_file_names_itself() {
        let e = AudioFile::open(Path::new("/nonexistent/mic.wav"), Pacing::AsFastAsPossible)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("/nonexistent/mic.wav"), "{e}");
    }
}
