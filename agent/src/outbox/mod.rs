//! The durable outbox: every event is appended here before it is published and removed only
//! after the broker acknowledged it. A plain state machine over [`Storage`]; time comes in as
//! an argument.
//!
//! Layout: append-only segments `seg-<first seq>.log` of records
//! `[body len u32 LE (top bit: gap record)][crc32 u32 LE over seq+body][seq u64 LE][body]`,
//! where a gap record's body starts with its range (from, to, count: 3 × u64 LE) before the
//! payload, so a gap record that is itself dropped later folds into the next one. Plus `acked`
//! (the highest seq below which everything is acknowledged or accounted for by a gap record;
//! written atomically). The outbox also owns the device's sequence numbers: they continue
//! across restarts and are never reused, because only synced records are handed out for
//! publishing.
//!
//! - **Group commit**: appends are fsync'd at most every `sync_interval_ms` (the uplink only
//!   sends synced records, so a crash never takes back a published seq).
//! - **Torn tails** (a crash mid-append) are cut at the first bad length/crc on open.
//! - **Whole-segment deletion** once every record in it is acknowledged.
//! - **Hard cap** (`max_bytes` of segments) plus **reserved free space**: when full, the oldest
//!   segment is dropped and a *gap record* (which seqs, how many) is appended in its place, so
//!   loss is always counted and published, never silent. If nothing can be written at all, the
//!   lost seqs are remembered and reported in a gap record as soon as writing works again.

pub mod io;
pub mod storage;

use std::collections::BTreeMap;

pub use io::OutboxIo;
pub use storage::{DirStorage, SimStorage, Storage};

/// The daemon's outbox, shared by the event writer, the uplink and the observers.
pub type SharedOutbox = std::sync::Arc<std::sync::Mutex<Outbox<DirStorage>>>;

pub fn lock_outbox(o: &SharedOutbox) -> std::sync::MutexGuard<'_, Outbox<DirStorage>> {
    o.lock().unwrap_or_else(|p| p.into_inner())
}

const HEADER: usize = 16;
const GAP_FLAG: u32 = 1 << 31;
const GAP_INFO: usize = 24;
/// Longest time between two writes of the ack watermark file (SD-card wear vs re-sends).
pub const WATERMARK_EVERY_MS: u64 = 5_000;
const ACKED: &str = "acked";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gap {
    pub from_seq: u64,
    pub to_seq: u64,
    pub count: u64,
}

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Cap on the bytes of all segments.
    pub max_bytes: u64,
    /// Free space to leave on the filesystem.
    pub reserve_bytes: u64,
    /// A segment is closed once it reaches this size.
    pub segment_bytes: u64,
    /// Longest time an appended record waits for its fsync.
    pub sync_interval_ms: u64,
}

impl Limits {
    pub fn for_cap(max_bytes: u64) -> Limits {
        Limits {
            max_bytes,
            reserve_bytes: 16 * 1024 * 1024,
            segment_bytes: (max_bytes / 8).clamp(4 * 1024, 1024 * 1024),
            sync_interval_ms: 50,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error("outbox storage: {0}")]
    Io(#[from] std::io::Error),
    #[error("outbox full: event seq {seq} could not be stored ({reason}); it is counted in the next gap record")]
    Full { seq: u64, reason: String },
    #[error("event not stored: it could not be encoded ({0}); nothing was written and no sequence number used")]
    Encode(String),
}

#[derive(Debug, Clone)]
struct Segment {
    name: String,
    bytes: u64,
    /// Unacknowledged records in this segment: seq → (offset of payload, payload length).
    unacked: BTreeMap<u64, (u64, u32)>,
    last_seq: u64,
}

/// What opening the outbox found.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct OpenReport {
    pub segments: usize,
    pub unacked: usize,
    /// Bytes cut from torn or corrupt tails.
    pub truncated_bytes: u64,
    /// Records lost to corruption in the middle of the log (reported as a gap).
    pub corrupt_gap: Option<Gap>,
}

/// Builds the payload of a gap record (it needs the device's ids; the outbox does not).
pub type GapPayload = Box<dyn Fn(u64, &Gap) -> Vec<u8> + Send>;

pub struct Outbox<S: Storage> {
    storage: S,
    limits: Limits,
    segments: Vec<Segment>,
    /// Everything at or below is acknowledged or accounted for.
    watermark: u64,
    persisted_watermark: u64,
    /// When the watermark was last written (it is rewritten at most every `WATERMARK_EVERY_MS`:
    /// a stale one only means a few duplicate re-sends after a restart).
    persisted_at_ms: u64,
    next_seq: u64,
    synced_through: u64,
    dirty_since_ms: Option<u64>,
    /// Seqs that could not be stored, waiting to be reported in a gap record.
    lost: Option<Gap>,
    /// Unacknowledged gap records: their seq → the range they report.
    gaps: BTreeMap<u64, Gap>,
    /// When each unacknowledged record was appended (recovered ones: when the outbox opened).
    appended_ms: BTreeMap<u64, u64>,
    gap_payload: GapPayload,
    /// Totals since start (for health and the benchmark).
    pub stats: Stats,
}

#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Stats {
    pub appended: u64,
    pub acked: u64,
    pub dropped: u64,
    pub gap_records: u64,
    pub bytes_written: u64,
    pub syncs: u64,
}

/// Wall clock for `open` (recovered records' age); everything else takes time as an argument.
/// The outbox's times are intervals (group commit, watermark writes) and ages: monotonic
/// milliseconds, so a step of the wall clock neither stalls the fsync nor ages records.
fn storage_now() -> u64 {
    crate::clock::mono_ms()
}

fn seg_name(first_seq: u64) -> String {
    format!("seg-{first_seq:020}.log")
}

fn encode(seq: u64, payload: &[u8], gap: Option<&Gap>) -> Vec<u8> {
    let mut body = Vec::with_capacity(GAP_INFO + payload.len());
    if let Some(g) = gap {
        for v in [g.from_seq, g.to_seq, g.count] {
            body.extend_from_slice(&v.to_le_bytes());
        }
    }
    body.extend_from_slice(payload);
    let mut crc = crc32fast::Hasher::new();
    crc.update(&seq.to_le_bytes());
    crc.update(&body);
    let flag = if gap.is_some() { GAP_FLAG } else { 0 };
    let mut rec = Vec::with_capacity(HEADER + body.len());
    rec.extend_from_slice(&(body.len() as u32 | flag).to_le_bytes());
    rec.extend_from_slice(&crc.finalize().to_le_bytes());
    rec.extend_from_slice(&seq.to_le_bytes());
    rec.extend_from_slice(&body);
    rec
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(x)
}

/// One record found by `scan`.
struct Scanned {
    seq: u64,
    /// Offset and length of the payload (what is published).
    offset: u64,
    len: u32,
    gap: Option<Gap>,
}

/// Parse one record at `pos`; `None` if no valid record starts there.
fn parse_at(bytes: &[u8], pos: usize) -> Option<(Scanned, usize)> {
    if pos + HEADER > bytes.len() {
        return None;
    }
    let raw = u32::from_le_bytes([bytes[pos], bytes[pos + 1], bytes[pos + 2], bytes[pos + 3]]);
    let (is_gap, len) = (raw & GAP_FLAG != 0, (raw & !GAP_FLAG) as usize);
    let crc = u32::from_le_bytes([
        bytes[pos + 4],
        bytes[pos + 5],
        bytes[pos + 6],
        bytes[pos + 7],
    ]);
    let end = pos + HEADER + len;
    if end > bytes.len() || (is_gap && len < GAP_INFO) {
        return None;
    }
    let mut h = crc32fast::Hasher::new();
    h.update(&bytes[pos + 8..end]);
    if h.finalize() != crc {
        return None;
    }
    let body = pos + HEADER;
    let gap = is_gap.then(|| Gap {
        from_seq: u64_at(bytes, body),
        to_seq: u64_at(bytes, body + 8),
        count: u64_at(bytes, body + 16),
    });
    let skip = if is_gap { GAP_INFO } else { 0 };
    Some((
        Scanned {
            seq: u64_at(bytes, pos + 8),
            offset: (body + skip) as u64,
            len: (len - skip) as u32,
            gap,
        },
        end,
    ))
}

/// Parse a segment's bytes: every valid record and the end of the last one. A damaged record
/// is skipped by resynchronising on the next valid one (the seqs it held are then missing and
/// reported as a gap by `open`); damage at the very end is a torn tail.
fn scan(bytes: &[u8]) -> (Vec<Scanned>, usize) {
    let mut out = Vec::new();
    let (mut pos, mut valid_end) = (0, 0);
    while pos + HEADER <= bytes.len() {
        match parse_at(bytes, pos) {
            Some((rec, end)) => {
                out.push(rec);
                pos = end;
                valid_end = end;
            }
            None => match (pos + 1..bytes.len().saturating_sub(HEADER - 1)).find(|q| {
                parse_at(bytes, *q)
                    .is_some_and(|(r, _)| out.last().is_none_or(|l: &Scanned| r.seq > l.seq))
            }) {
                Some(q) => pos = q,
                None => break,
            },
        }
    }
    (out, valid_end)
}

/// Parts of `from..=to` not inside any of `covered` (inclusive ranges).
fn uncovered(from: u64, to: u64, covered: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    let mut start = from;
    let mut sorted = covered.to_vec();
    sorted.sort_unstable();
    for (a, b) in sorted {
        if b < start || a > to {
            continue;
        }
        if a > start {
            out.push((start, a - 1));
        }
        start = start.max(b.saturating_add(1));
        if start > to {
            return out;
        }
    }
    if start <= to {
        out.push((start, to));
    }
    out
}

/// Read-only view of an outbox directory (safe while an agent is using it): the records above
/// the persisted watermark, in order. The watermark is written lazily, so a running agent's
/// outbox may still list records acknowledged in the last few seconds.
pub fn inspect(dir: &std::path::Path) -> std::io::Result<Vec<(u64, Vec<u8>)>> {
    let watermark = match std::fs::read_to_string(dir.join(ACKED)) {
        Ok(t) => t
            .lines()
            .next()
            .and_then(|l| l.trim().parse::<u64>().ok())
            .unwrap_or(0),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
        Err(e) => return Err(e),
    };
    let mut names: Vec<String> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("seg-") && n.ends_with(".log"))
        .collect();
    names.sort();
    let mut out = Vec::new();
    for name in names {
        let bytes = match std::fs::read(dir.join(&name)) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue, // deleted meanwhile
            Err(e) => return Err(e),
        };
        for r in scan(&bytes).0.into_iter().filter(|r| r.seq > watermark) {
            out.push((
                r.seq,
                bytes[r.offset as usize..r.offset as usize + r.len as usize].to_vec(),
            ));
        }
    }
    Ok(out)
}

impl<S: Storage> Outbox<S> {
    /// Open (or create) the outbox: recover segments, cut torn tails, resume numbering.
    pub fn open(
        storage: S,
        limits: Limits,
        gap_payload: GapPayload,
    ) -> Result<(Outbox<S>, OpenReport), OutboxError> {
        Self::open_at(storage_now(), storage, limits, gap_payload)
    }

    /// `open`, with the time that recovered records count as appended at.
    pub fn open_at(
        now_ms: u64,
        mut storage: S,
        limits: Limits,
        gap_payload: GapPayload,
    ) -> Result<(Outbox<S>, OpenReport), OutboxError> {
        // Meta: the watermark, and a loss not yet reported in a gap record (if any).
        let (watermark, saved_lost) = match storage.read(ACKED) {
            Ok(b) => {
                let text = String::from_utf8_lossy(&b).to_string();
                let mut lines = text.lines();
                let w = lines
                    .next()
                    .and_then(|l| l.trim().parse::<u64>().ok())
                    .unwrap_or(0);
                let lost = lines.next().and_then(|l| {
                    let v: Vec<u64> = l
                        .split_whitespace()
                        .skip(1)
                        .filter_map(|x| x.parse().ok())
                        .collect();
                    (v.len() == 3).then(|| Gap {
                        from_seq: v[0],
                        to_seq: v[1],
                        count: v[2],
                    })
                });
                (w, lost)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (0, None),
            Err(e) => return Err(e.into()),
        };
        let mut report = OpenReport::default();
        let names: Vec<String> = storage
            .list()?
            .into_iter()
            .filter(|n| n.starts_with("seg-") && n.ends_with(".log"))
            .collect();
        let mut segments = Vec::new();
        let mut gaps = BTreeMap::new();
        let mut max_seq = watermark;
        // Seqs present (above the watermark), and ranges that gap records already account for.
        let mut present: Vec<u64> = Vec::new();
        let mut covered: Vec<(u64, u64)> =
            saved_lost.iter().map(|g| (g.from_seq, g.to_seq)).collect();
        for name in names {
            let bytes = storage.read(&name)?;
            let (records, valid) = scan(&bytes);
            if valid < bytes.len() {
                report.truncated_bytes += (bytes.len() - valid) as u64;
                storage.truncate(&name, valid as u64)?;
            }
            let Some(first) = records.first().map(|r| r.seq) else {
                storage.remove(&name)?;
                continue;
            };
            let last = records.last().map(|r| r.seq).unwrap_or(first);
            max_seq = max_seq.max(last);
            present.extend(records.iter().map(|r| r.seq).filter(|s| *s > watermark));
            covered.extend(
                records
                    .iter()
                    .filter_map(|r| r.gap.map(|g| (g.from_seq, g.to_seq))),
            );
            let live = records.iter().filter(|r| r.seq > watermark);
            let unacked: BTreeMap<u64, (u64, u32)> =
                live.clone().map(|r| (r.seq, (r.offset, r.len))).collect();
            gaps.extend(live.filter_map(|r| r.gap.map(|g| (r.seq, g))));
            segments.push(Segment {
                name,
                bytes: valid as u64,
                unacked,
                last_seq: last,
            });
        }
        // Seqs missing between the watermark and the last record, and not accounted for by a
        // gap record, were lost to corruption (a damaged record, a lost segment): report them.
        let mut prev = watermark;
        for seq in present {
            if seq > prev + 1 {
                for (a, b) in uncovered(prev + 1, seq - 1, &covered) {
                    let g = report.corrupt_gap.get_or_insert(Gap {
                        from_seq: a,
                        to_seq: b,
                        count: 0,
                    });
                    g.from_seq = g.from_seq.min(a);
                    g.to_seq = g.to_seq.max(b);
                    g.count += b - a + 1;
                }
            }
            prev = prev.max(seq);
        }
        report.segments = segments.len();
        report.unacked = segments.iter().map(|s| s.unacked.len()).sum();
        let mut ob = Outbox {
            storage,
            limits,
            segments,
            watermark,
            persisted_watermark: watermark,
            persisted_at_ms: now_ms,
            next_seq: max_seq + 1,
            synced_through: max_seq,
            dirty_since_ms: None,
            lost: None,
            gaps,
            appended_ms: BTreeMap::new(),
            gap_payload,
            stats: Stats::default(),
        };
        let recovered: Vec<u64> = ob
            .segments
            .iter()
            .flat_map(|s| s.unacked.keys().copied())
            .collect();
        ob.appended_ms
            .extend(recovered.into_iter().map(|seq| (seq, now_ms)));
        for g in [saved_lost, report.corrupt_gap].into_iter().flatten() {
            ob.merge_lost(g);
        }
        ob.collect_garbage()?;
        Ok((ob, report))
    }

    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Unacknowledged records and their bytes.
    pub fn depth(&self) -> (usize, u64) {
        (
            self.segments.iter().map(|s| s.unacked.len()).sum(),
            self.segments.iter().map(|s| s.bytes).sum(),
        )
    }

    /// The oldest unacknowledged seq.
    pub fn oldest_unacked(&self) -> Option<u64> {
        self.segments
            .iter()
            .find_map(|s| s.unacked.keys().next().copied())
    }

    /// How long the oldest unacknowledged record has waited.
    pub fn oldest_age_ms(&self, now_ms: u64) -> Option<u64> {
        self.appended_ms
            .values()
            .min()
            .map(|t| now_ms.saturating_sub(*t))
    }

    fn total_bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.bytes).sum()
    }

    /// Append one event; `payload` receives its seq. Returns the seq. On `Full`, the seq is
    /// consumed and will be reported in a gap record.
    pub fn append(
        &mut self,
        now_ms: u64,
        payload: impl FnOnce(u64) -> Vec<u8>,
    ) -> Result<u64, OutboxError> {
        self.try_append(now_ms, |seq| {
            Ok::<_, std::convert::Infallible>(payload(seq))
        })
    }

    /// [`append`](Self::append) for a payload whose encoding can fail: an encoding error or
    /// an empty payload stores nothing and leaves the sequence number unused (an empty record
    /// would otherwise be published as if it were a gap record).
    pub fn try_append<E: std::fmt::Display>(
        &mut self,
        now_ms: u64,
        payload: impl FnOnce(u64) -> Result<Vec<u8>, E>,
    ) -> Result<u64, OutboxError> {
        if let Some(gap) = self.lost.take() {
            // Report earlier losses first, as soon as anything can be written. Making room for
            // the gap record may drop more: that fresh loss lands in `self.lost` for next time.
            let seq = self.next_seq;
            let rec = (self.gap_payload)(seq, &gap);
            match self.write(now_ms, seq, &rec, Some(gap)) {
                Ok(()) => {
                    self.stats.gap_records += 1;
                    self.recompute_watermark();
                    let _ = self.persist_watermark();
                }
                Err(_) => self.merge_lost(gap),
            }
        }
        let seq = self.next_seq;
        let bytes = match payload(seq) {
            Ok(b) if b.is_empty() => return Err(OutboxError::Encode("empty payload".into())),
            Ok(b) => b,
            Err(e) => return Err(OutboxError::Encode(e.to_string())),
        };
        match self.write(now_ms, seq, &bytes, None) {
            Ok(()) => {
                self.stats.appended += 1;
                Ok(seq)
            }
            Err(e) => {
                self.next_seq = self.next_seq.max(seq + 1);
                self.remember_lost(seq, seq, 1);
                Err(OutboxError::Full {
                    seq,
                    reason: e.to_string(),
                })
            }
        }
    }

    fn remember_lost(&mut self, from: u64, to: u64, count: u64) {
        self.stats.dropped += count;
        self.merge_lost(Gap {
            from_seq: from,
            to_seq: to,
            count,
        });
    }

    fn merge_lost(&mut self, g: Gap) {
        self.lost = Some(match self.lost {
            Some(l) => Gap {
                from_seq: l.from_seq.min(g.from_seq),
                to_seq: l.to_seq.max(g.to_seq),
                count: l.count + g.count,
            },
            None => g,
        });
    }

    /// Write one record with `seq` (== next_seq), making room first.
    fn write(
        &mut self,
        now_ms: u64,
        seq: u64,
        payload: &[u8],
        gap: Option<Gap>,
    ) -> Result<(), OutboxError> {
        let rec = encode(seq, payload, gap.as_ref());
        let need = rec.len() as u64;
        if need > self.limits.max_bytes {
            return Err(OutboxError::Full {
                seq,
                reason: "record larger than the outbox cap".into(),
            });
        }
        // Make room: drop the oldest segments (their unacked records become a gap).
        loop {
            let over_cap = self.total_bytes() + need > self.limits.max_bytes;
            let low_disk = self
                .storage
                .free_bytes()
                .is_some_and(|f| f < self.limits.reserve_bytes + need);
            if !(over_cap || low_disk) {
                break;
            }
            if !self.drop_oldest()? {
                return Err(OutboxError::Full {
                    seq,
                    reason: if over_cap {
                        "outbox cap reached".into()
                    } else {
                        "filesystem free space below the reserve".into()
                    },
                });
            }
        }
        let roll = self
            .segments
            .last()
            .is_none_or(|s| s.bytes + need > self.limits.segment_bytes && s.bytes > 0);
        if roll {
            // The closed segment is synced before a new one starts.
            self.flush(now_ms)?;
            self.segments.push(Segment {
                name: seg_name(seq),
                bytes: 0,
                unacked: BTreeMap::new(),
                last_seq: seq,
            });
        }
        let seg = self
            .segments
            .last_mut()
            .ok_or_else(|| std::io::Error::other("no segment"))?;
        if let Err(e) = self.storage.append(&seg.name, &rec) {
            // A partial write (disk full) is cut back so the segment stays parseable.
            let _ = self.storage.truncate(&seg.name, seg.bytes);
            if seg.bytes == 0 {
                let _ = self.storage.remove(&seg.name);
                self.segments.pop();
            }
            return Err(e.into());
        }
        let skip = if gap.is_some() { GAP_INFO } else { 0 };
        seg.unacked.insert(
            seq,
            (seg.bytes + (HEADER + skip) as u64, payload.len() as u32),
        );
        if let Some(g) = gap {
            self.gaps.insert(seq, g);
        }
        self.appended_ms.insert(seq, now_ms);
        seg.bytes += need;
        seg.last_seq = seq;
        self.stats.bytes_written += need;
        self.next_seq = seq + 1;
        let since = *self.dirty_since_ms.get_or_insert(now_ms);
        if now_ms.saturating_sub(since) >= self.limits.sync_interval_ms {
            self.flush(now_ms)?;
        }
        Ok(())
    }

    /// Drop the oldest closed segment (never the one being written while others exist).
    fn drop_oldest(&mut self) -> Result<bool, OutboxError> {
        if self.segments.len() < 2 {
            // Only the active segment left: drop it too if it holds anything.
            match self.segments.first() {
                Some(s) if s.bytes > 0 => {}
                _ => return Ok(false),
            }
        }
        let seg = self.segments.remove(0);
        if let (Some(&from), Some(&to)) =
            (seg.unacked.keys().next(), seg.unacked.keys().next_back())
        {
            // Dropped gap records fold into the new gap: their ranges and counts carry over.
            let mut gap = Gap {
                from_seq: from,
                to_seq: to,
                count: 0,
            };
            let mut events = 0;
            for seq in seg.unacked.keys() {
                self.appended_ms.remove(seq);
                match self.gaps.remove(seq) {
                    Some(g) => {
                        gap.from_seq = gap.from_seq.min(g.from_seq);
                        gap.count += g.count;
                    }
                    None => events += 1,
                }
            }
            self.stats.dropped += events;
            gap.count += events;
            self.merge_lost(gap);
            // Remember the loss durably before the data goes (best effort on a full disk).
            let _ = self.persist_watermark();
        }
        self.storage.remove(&seg.name)?;
        Ok(true)
    }

    /// fsync what was appended since the last sync.
    pub fn flush(&mut self, _now_ms: u64) -> Result<(), OutboxError> {
        if self.dirty_since_ms.take().is_some() {
            if let Some(seg) = self.segments.last() {
                self.storage.sync(&seg.name)?;
                self.stats.syncs += 1;
            }
        }
        self.synced_through = self.next_seq - 1;
        Ok(())
    }

    /// Timer: group-commit deadline, and persisting the ack watermark.
    pub fn tick(&mut self, now_ms: u64) -> Result<(), OutboxError> {
        if self
            .dirty_since_ms
            .is_some_and(|d| now_ms.saturating_sub(d) >= self.limits.sync_interval_ms)
        {
            self.flush(now_ms)?;
        }
        if self.watermark != self.persisted_watermark
            && now_ms.saturating_sub(self.persisted_at_ms) >= WATERMARK_EVERY_MS
        {
            self.persist_watermark()?;
            self.persisted_at_ms = now_ms;
        }
        Ok(())
    }

    /// Sync everything and record the watermark now (clean shutdown).
    pub fn checkpoint(&mut self, now_ms: u64) -> Result<(), OutboxError> {
        self.flush(now_ms)?;
        if self.watermark != self.persisted_watermark {
            self.persist_watermark()?;
            self.persisted_at_ms = now_ms;
        }
        Ok(())
    }

    fn persist_watermark(&mut self) -> Result<(), OutboxError> {
        let mut meta = format!("{}\n", self.watermark);
        if let Some(g) = self.lost {
            meta += &format!("lost {} {} {}\n", g.from_seq, g.to_seq, g.count);
        }
        self.storage.write_atomic(ACKED, meta.as_bytes())?;
        self.persisted_watermark = self.watermark;
        Ok(())
    }

    /// The next synced, unacknowledged record after `after` (`None`: from the oldest).
    pub fn next_unacked(
        &mut self,
        after: Option<u64>,
    ) -> Result<Option<(u64, Vec<u8>)>, OutboxError> {
        let from = after.map_or(0, |a| a + 1);
        let found = self.segments.iter().find_map(|s| {
            s.unacked
                .range(from..)
                .next()
                .map(|(seq, loc)| (s.name.clone(), *seq, *loc))
        });
        match found {
            Some((_, seq, _)) if seq > self.synced_through => Ok(None),
            Some((name, seq, (off, len))) => {
                Ok(Some((seq, self.storage.read_at(&name, off, len as usize)?)))
            }
            None => Ok(None),
        }
    }

    /// Every seq below `next_seq` is unacknowledged in a segment, waiting in `lost` for its
    /// gap record, or done: the watermark is just below the oldest of the first two.
    fn recompute_watermark(&mut self) {
        let outstanding = [self.oldest_unacked(), self.lost.map(|g| g.from_seq)]
            .into_iter()
            .flatten()
            .min();
        let w = outstanding.unwrap_or(self.next_seq).saturating_sub(1);
        self.watermark = self.watermark.max(w);
    }

    /// The broker acknowledged `seq`: forget it; delete segments that are fully acknowledged.
    pub fn ack(&mut self, seq: u64) -> Result<(), OutboxError> {
        let mut found = false;
        for s in &mut self.segments {
            if s.unacked.remove(&seq).is_some() {
                found = true;
                break;
            }
        }
        if !found {
            return Ok(()); // a duplicate ack, or already accounted for
        }
        self.gaps.remove(&seq);
        self.appended_ms.remove(&seq);
        self.stats.acked += 1;
        self.recompute_watermark();
        self.collect_garbage()
    }

    /// Delete closed segments without unacknowledged records (the watermark first, so the
    /// numbering survives the deletion).
    fn collect_garbage(&mut self) -> Result<(), OutboxError> {
        let n = self.segments.len();
        let done: Vec<usize> = (0..n.saturating_sub(1))
            .filter(|i| self.segments[*i].unacked.is_empty())
            .collect();
        if done.is_empty() {
            return Ok(());
        }
        if self.watermark != self.persisted_watermark {
            self.persist_watermark()?;
        }
        for i in done.into_iter().rev() {
            let s = self.segments.remove(i);
            self.storage.remove(&s.name)?;
        }
        Ok(())
    }

    pub fn storage(&self) -> &S {
        &self.storage
    }

    pub fn into_storage(self) -> S {
        self.storage
    }
}

#[cfg(test)]
mod tests;
