//! Local event file for a device without a broker: `<outbox dir>/events.jsonl`, one event per
//! line, fsync'd per event, bounded by `outbox.max_mb`. When full, events are refused and every
//! refusal is logged and counted: nothing is dropped silently.
//!
//! This is the seam where the durable, acknowledged outbox (segments, checksums, gap records,
//! removal on PUBACK) goes in the delivery issue.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use vitrine_signals::WindowEvent;

pub struct JsonlOutbox {
    path: PathBuf,
    file: File,
    len: u64,
    max_bytes: u64,
    /// Events refused because the cap was reached.
    pub refused: u64,
}

impl JsonlOutbox {
    pub fn open(dir: &Path, max_bytes: u64) -> anyhow::Result<JsonlOutbox> {
        std::fs::create_dir_all(dir).map_err(|e| {
            anyhow::anyhow!("cannot create outbox directory {}: {e}", dir.display())
        })?;
        let path = dir.join("events.jsonl");
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", path.display()))?;
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(JsonlOutbox {
            path,
            file,
            len,
            max_bytes,
            refused: 0,
        })
    }

    /// Append one event durably; `Ok(false)` if the cap refused it (logged, counted).
    pub fn append(&mut self, ev: &WindowEvent) -> anyhow::Result<bool> {
        let mut line = serde_json::to_vec(ev)?;
        line.push(b'\n');
        if self.len + line.len() as u64 > self.max_bytes {
            self.refused += 1;
            tracing::error!(path = %self.path.display(), seq = ev.seq, refused = self.refused, max_bytes = self.max_bytes, "outbox full: event not stored; raise outbox.max_mb or connect a broker");
            return Ok(false);
        }
        self.file
            .write_all(&line)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", self.path.display()))?;
        self.file
            .sync_data()
            .map_err(|e| anyhow::anyhow!("cannot sync {}: {e}", self.path.display()))?;
        self.len += line.len() as u64;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vitrine_signals::event::{AudioBody, Body, Coverage, EventMeta};

    fn ev(seq: u64) -> WindowEvent {
        let meta = EventMeta {
            device_id: "d",
            store_id: "s",
            source_id: "m",
            k_min: 0,
        };
        let body = Body::Microphone(AudioBody {
            coverage: Coverage::audio(60.0, 60.0, 0.0),
            speech_ratio: Some(0.5),
            speech_seconds: 30.0,
            level_dbfs: None,
        });
        WindowEvent::new(&meta, seq, 0, 60_000, body)
    }

    #[test]
    fn the_cap_holds_and_refusals_are_counted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let one = serde_json::to_vec(&ev(1)).expect("json").len() as u64 + 1;
        let mut o = JsonlOutbox::open(dir.path(), one * 3 + 10).expect("open");
        let stored: Vec<bool> = (1..=5).map(|s| o.append(&ev(s)).expect("append")).collect();
        assert_eq!(stored, [true, true, true, false, false]);
        assert_eq!(o.refused, 2);
        let len = std::fs::metadata(dir.path().join("events.jsonl"))
            .expect("file")
            .len();
        assert!(len <= one * 3 + 10);
        // Reopening sees the existing size: the cap survives restarts.
        let mut o = JsonlOutbox::open(dir.path(), one * 3 + 10).expect("reopen");
        assert!(!o.append(&ev(6)).expect("append"));
    }
}
