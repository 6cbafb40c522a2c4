//! Per-device sequence numbers. Contiguous and strictly increasing across restarts, so the
//! central service can spot a missing event from a gap in `seq`.
//!
//! Persisted in `<state dir>/seq` (write to a temporary file, fsync, rename) once per event:
//! events are a few per minute, so this costs a few small writes a minute.

use std::io::Write;
use std::path::{Path, PathBuf};

use vitrine_signals::event::{EventMeta, WindowEvent};

use crate::pipeline::WindowOut;

pub struct Sequencer {
    next: u64,
    file: Option<PathBuf>,
}

impl Sequencer {
    /// Numbers from 1, not persisted (replays: their output must be reproducible).
    pub fn in_memory() -> Sequencer {
        Sequencer {
            next: 1,
            file: None,
        }
    }

    /// Resume after the last number recorded in `dir/seq`.
    pub fn persistent(dir: &Path) -> anyhow::Result<Sequencer> {
        std::fs::create_dir_all(dir).map_err(|e| {
            anyhow::anyhow!(
                "cannot create state directory {}: {e}; fix: check outbox.dir and its permissions",
                dir.display()
            )
        })?;
        let file = dir.join("seq");
        let next = match std::fs::read_to_string(&file) {
            Ok(s) => s.trim().parse::<u64>().map_err(|_| anyhow::anyhow!("{} is corrupt ({:?}); fix: set it to the last seq the central service saw, or delete it to restart from 1", file.display(), s.trim()))? + 1,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 1,
            Err(e) => anyhow::bail!("cannot read {}: {e}", file.display()),
        };
        Ok(Sequencer {
            next,
            file: Some(file),
        })
    }

    fn record(&self, seq: u64) -> std::io::Result<()> {
        let Some(file) = &self.file else {
            return Ok(());
        };
        let tmp = file.with_extension("tmp");
        let mut f = std::fs::File::create(&tmp)?;
        writeln!(f, "{seq}")?;
        f.sync_all()?;
        std::fs::rename(&tmp, file)
    }

    /// Number a closed window of a device configured by `cfg`.
    pub fn number(
        &mut self,
        cfg: &vitrine_config::Config,
        w: WindowOut,
    ) -> anyhow::Result<WindowEvent> {
        let source = w.source_id.clone();
        let meta = EventMeta {
            device_id: &cfg.device.id,
            store_id: &cfg.device.store_id,
            source_id: &source,
            k_min: cfg.privacy.k_min,
        };
        self.event(&meta, w)
    }

    /// Number a closed window, producing the event to publish.
    pub fn event(&mut self, meta: &EventMeta<'_>, w: WindowOut) -> anyhow::Result<WindowEvent> {
        let seq = self.next;
        self.record(seq)
            .map_err(|e| anyhow::anyhow!("cannot persist the sequence number: {e}"))?;
        self.next += 1;
        Ok(WindowEvent::new(meta, seq, w.start_ms, w.end_ms, w.body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vitrine_signals::event::{AudioBody, Body, Coverage};

    fn window() -> WindowOut {
        WindowOut {
            source_id: "mic".into(),
            start_ms: 0,
            end_ms: 60_000,
            body: Body::Microphone(AudioBody {
                coverage: Coverage::audio(60.0, 0.0, 60.0),
                speech_ratio: None,
                speech_seconds: 0.0,
                level_dbfs: None,
            }),
        }
    }

    #[test]
    fn sequence_survives_a_restart_without_gaps() {
        let dir = tempfile::tempdir().unwrap();
        let meta = EventMeta {
            device_id: "d",
            store_id: "s",
            source_id: "mic",
            k_min: 0,
        };
        let mut s = Sequencer::persistent(dir.path()).unwrap();
        assert_eq!(s.event(&meta, window()).unwrap().seq, 1);
        assert_eq!(s.event(&meta, window()).unwrap().seq, 2);
        drop(s);
        let mut s = Sequencer::persistent(dir.path()).unwrap();
        assert_eq!(s.event(&meta, window()).unwrap().seq, 3);
    }

    #[test]
    fn a_corrupt_seq_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("seq"), "garbage").unwrap();
        let e = Sequencer::persistent(dir.path()).err().unwrap().to_string();
        assert!(e.contains("seq") && e.contains("corrupt"), "{e}");
    }
}
