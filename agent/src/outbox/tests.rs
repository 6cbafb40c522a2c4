use std::collections::BTreeSet;

use proptest::prelude::*;

use super::*;

fn gap_payload() -> GapPayload {
    Box::new(|seq, g: &Gap| {
        format!("GAP {seq} {} {} {}", g.from_seq, g.to_seq, g.count).into_bytes()
    })
}

fn limits(max: u64) -> Limits {
    Limits {
        max_bytes: max,
        reserve_bytes: 0,
        segment_bytes: 256,
        sync_interval_ms: 0,
    }
}

fn open(s: SimStorage, max: u64) -> (Outbox<SimStorage>, OpenReport) {
    Outbox::open(s, limits(max), gap_payload()).expect("open")
}

fn ev(seq: u64) -> Vec<u8> {
    format!("event {seq:04} {}", "x".repeat(40)).into_bytes()
}

fn unacked(o: &mut Outbox<SimStorage>) -> Vec<(u64, Vec<u8>)> {
    let mut out = Vec::new();
    let mut after = None;
    while let Some((seq, p)) = o.next_unacked(after).expect("read") {
        out.push((seq, p));
        after = Some(seq);
    }
    out
}

#[test]
fn append_publish_ack_and_segments_go_away() {
    let (mut o, _) = open(SimStorage::default(), 1 << 20);
    for _ in 0..20 {
        o.append(0, ev).expect("append");
    }
    let u = unacked(&mut o);
    assert_eq!(u.len(), 20);
    assert_eq!(u[3], (4, ev(4)));
    let segs_before = o.storage().list().expect("list").len();
    assert!(segs_before > 3, "small segments roll");
    for seq in 1..=20 {
        o.ack(seq).expect("ack");
    }
    assert_eq!(o.depth().0, 0);
    let left: Vec<String> = o
        .storage()
        .list()
        .expect("list")
        .into_iter()
        .filter(|n| n.starts_with("seg-"))
        .collect();
    assert_eq!(left.len(), 1, "only the active segment remains: {left:?}");
}

#[test]
fn numbering_continues_after_everything_was_acknowledged() {
    let (mut o, _) = open(SimStorage::default(), 1 << 20);
    for _ in 0..10 {
        o.append(0, ev).expect("append");
    }
    (1..=10).for_each(|s| o.ack(s).expect("ack"));
    o.checkpoint(1).expect("checkpoint");
    let (mut o, _) = open(o.into_storage(), 1 << 20);
    assert_eq!(o.next_seq(), 11);
    assert!(
        unacked(&mut o).is_empty(),
        "acknowledged events are not re-sent"
    );
}

#[test]
fn a_torn_tail_is_cut_and_earlier_records_survive() {
    let (mut o, _) = open(SimStorage::default(), 1 << 20);
    for _ in 0..3 {
        o.append(0, ev).expect("append");
    }
    let mut s = o.into_storage();
    // Half a record at the end of the active segment, as a power cut mid-write leaves it.
    let last = s
        .list()
        .expect("list")
        .into_iter()
        .rfind(|n| n.starts_with("seg-"))
        .expect("segment");
    s.append(&last, &encode(4, &ev(4), None)[..30])
        .expect("append");
    let (mut o, report) = open(s, 1 << 20);
    assert_eq!(report.truncated_bytes, 30);
    assert_eq!(
        unacked(&mut o).iter().map(|r| r.0).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert_eq!(o.next_seq(), 4);
}

#[test]
fn a_corrupt_older_segment_is_cut_and_its_loss_reported() {
    let (mut o, _) = open(SimStorage::default(), 1 << 20);
    for _ in 0..12 {
        o.append(0, ev).expect("append");
    }
    let mut s = o.into_storage();
    let first = s
        .list()
        .expect("list")
        .into_iter()
        .find(|n| n.starts_with("seg-"))
        .expect("segment");
    let mut bytes = s.read(&first).expect("read");
    let n = bytes.len();
    bytes[n - 5] ^= 0xff; // flip a byte in the segment's last record
    s.remove(&first).expect("rm");
    s.append(&first, &bytes).expect("write");
    let (mut o, report) = open(s, 1 << 20);
    let gap = report.corrupt_gap.expect("a gap");
    assert_eq!(gap.count, 1);
    // The next append reports it first, as a gap record.
    let seq = o.append(0, ev).expect("append");
    let u = unacked(&mut o);
    let gap_rec = u
        .iter()
        .find(|(_, p)| p.starts_with(b"GAP"))
        .expect("gap record");
    assert_eq!(
        String::from_utf8_lossy(&gap_rec.1),
        format!("GAP {} {} {} 1", seq - 1, gap.from_seq, gap.to_seq)
    );
}

#[test]
fn a_damaged_record_in_the_active_segment_is_skipped_and_reported() {
    // One segment holding all six records.
    let limits = Limits {
        segment_bytes: 1 << 20,
        ..limits(1 << 20)
    };
    let mut o = Outbox::open(SimStorage::default(), limits, gap_payload())
        .expect("open")
        .0;
    for _ in 0..6 {
        o.append(0, ev).expect("append");
    }
    let mut s = o.into_storage();
    let seg = s
        .list()
        .expect("list")
        .into_iter()
        .find(|n| n.starts_with("seg-"))
        .expect("segment");
    let mut bytes = s.read(&seg).expect("read");
    let rec = bytes.len() / 6;
    bytes[2 * rec + 20] ^= 0xff; // damage the payload of the third record
    s.remove(&seg).expect("rm");
    s.append(&seg, &bytes).expect("write");
    let (mut o, report) = Outbox::open(s, limits, gap_payload()).expect("reopen");
    assert_eq!(
        report.corrupt_gap,
        Some(Gap {
            from_seq: 3,
            to_seq: 3,
            count: 1
        })
    );
    // Records after the damage survive, and numbering continues after them (no reuse).
    assert_eq!(
        unacked(&mut o).iter().map(|r| r.0).collect::<Vec<_>>(),
        vec![1, 2, 4, 5, 6]
    );
    assert_eq!(o.next_seq(), 7);
    o.append(0, ev).expect("append");
    let u = unacked(&mut o);
    assert!(
        u.iter().any(|(_, p)| p == b"GAP 7 3 3 1"),
        "{:?}",
        u.iter()
            .map(|r| String::from_utf8_lossy(&r.1).to_string())
            .collect::<Vec<_>>()
    );
}

#[test]
fn uncovered_ranges() {
    assert_eq!(uncovered(1, 10, &[]), vec![(1, 10)]);
    assert_eq!(uncovered(1, 10, &[(3, 4), (8, 20)]), vec![(1, 2), (5, 7)]);
    assert_eq!(uncovered(5, 6, &[(1, 10)]), vec![]);
}

#[test]
fn when_full_the_oldest_go_and_a_gap_record_says_which() {
    let (mut o, _) = open(SimStorage::default(), 1200);
    for _ in 0..60 {
        o.append(0, ev).expect("append");
        let total: u64 = o.depth().1;
        assert!(total <= 1200, "cap holds: {total}");
    }
    let u = unacked(&mut o);
    let gaps: Vec<String> = u
        .iter()
        .filter(|(_, p)| p.starts_with(b"GAP"))
        .map(|(_, p)| String::from_utf8_lossy(p).to_string())
        .collect();
    assert!(!gaps.is_empty());
    // Every seq ever assigned is either still here or inside a reported gap's range...
    let mut covered: BTreeSet<u64> = u.iter().map(|r| r.0).collect();
    let mut counted = 0;
    for g in &gaps {
        let v: Vec<u64> = g
            .split_whitespace()
            .skip(1)
            .map(|x| x.parse().expect("num"))
            .collect();
        covered.extend(v[1]..=v[2]);
        counted += v[3];
    }
    assert!(
        (1..o.next_seq()).all(|s| covered.contains(&s)),
        "unaccounted seqs"
    );
    // ...and the gap records' counts add up exactly to the events dropped (gap records that
    // were dropped themselves folded their counts into newer ones).
    assert_eq!(counted + o.lost.map_or(0, |g| g.count), o.stats.dropped);
    assert!(o.stats.dropped > 0);
}

#[test]
fn the_same_process_reports_refused_events_in_a_gap_record() {
    let mut s = SimStorage::default();
    let (mut o, _) = open(s.clone(), 1 << 20);
    o.append(0, ev).expect("append");
    s = o.into_storage();
    let (mut o, _) = open(s, 1 << 20);
    // Fill the disk through the storage handle held by the outbox.
    o.storage.full = true;
    assert!(o.append(0, ev).is_err());
    assert!(o.append(0, ev).is_err());
    o.storage.full = false;
    let seq = o.append(0, ev).expect("append");
    assert_eq!(
        seq, 5,
        "seqs 2-3 were consumed by the refused events, 4 by the gap record"
    );
    let u = unacked(&mut o);
    assert_eq!(String::from_utf8_lossy(&u[1].1), "GAP 4 2 3 2");
    assert_eq!(o.stats.dropped, 2);
}

#[derive(Debug, Clone)]
enum Op {
    Append,
    Flush,
    Ack(usize),
    Crash(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![4 => Just(Op::Append), 2 => Just(Op::Flush), 3 => (0usize..8).prop_map(Op::Ack), 1 => any::<u8>().prop_map(Op::Crash)]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    /// Against a disk that drops unsynced data and tears the last write on a crash: no synced,
    /// unacknowledged event is ever lost unless a gap record accounts for it; the cap holds;
    /// a seq handed out for publishing is never reused.
    #[test]
    fn synced_unacknowledged_events_survive_crashes(ops in proptest::collection::vec(op(), 1..120), cap in 600u64..4000) {
        let mut o = open(SimStorage::default(), cap).0;
        let mut must_survive: BTreeSet<u64> = BTreeSet::new();
        let mut appended_unsynced: BTreeSet<u64> = BTreeSet::new();
        let mut max_published = 0u64;
        for op in ops {
            match op {
                Op::Append => {
                    if let Ok(seq) = o.append(0, ev) {
                        prop_assert!(seq > max_published, "seq {seq} reused (published up to {max_published})");
                        appended_unsynced.insert(seq);
                    }
                }
                Op::Flush => {
                    o.flush(0).expect("flush");
                    must_survive.append(&mut appended_unsynced);
                }
                Op::Ack(i) => {
                    let u = unacked(&mut o);
                    if let Some((seq, _)) = u.get(i % u.len().max(1)) {
                        max_published = max_published.max(*seq);
                        o.ack(*seq).expect("ack");
                        must_survive.remove(seq);
                        appended_unsynced.remove(seq);
                    }
                }
                Op::Crash(k) => {
                    let mut s = o.into_storage();
                    s.crash(|n| n * usize::from(k) / 255);
                    appended_unsynced.clear();
                    o = open(s, cap).0;
                }
            }
            prop_assert!(o.depth().1 <= cap, "cap {cap} exceeded: {}", o.depth().1);
            // Everything that must survive is present, or accounted for by a gap record (still
            // unacknowledged, or pending in `lost`).
            let u = unacked(&mut o);
            let mut present: BTreeSet<u64> = u.iter().map(|r| r.0).collect();
            for (_, p) in &u {
                if p.starts_with(b"GAP") {
                    let v: Vec<u64> = String::from_utf8_lossy(p).split_whitespace().skip(1).map(|x| x.parse().expect("num")).collect();
                    present.extend(v[1]..=v[2]);
                }
            }
            if let Some(g) = o.lost {
                present.extend(g.from_seq..=g.to_seq);
            }
            // Unsynced records are not handed out yet, but they are not lost either.
            present.extend(appended_unsynced.iter().copied());
            // Gap records can be acked themselves (published): what they covered is then done.
            let missing: Vec<u64> = must_survive.iter().filter(|s| !present.contains(s) && **s > o.watermark).copied().collect();
            prop_assert!(missing.is_empty(), "lost without a gap record: {missing:?}");
            max_published = max_published.max(u.iter().map(|r| r.0).max().unwrap_or(0));
        }
    }
}

#[test]
fn a_serialization_failure_stores_nothing_and_keeps_the_seq() {
    let (mut o, _) = open(SimStorage::default(), 1 << 20);
    o.append(0, ev).expect("append");
    let failed = o.try_append(0, |_| Err::<Vec<u8>, _>("a float map key"));
    assert!(matches!(failed, Err(OutboxError::Encode(_))), "{failed:?}");
    let empty = o.try_append(0, |_| Ok::<_, String>(Vec::new()));
    assert!(matches!(empty, Err(OutboxError::Encode(_))), "{empty:?}");
    // Nothing stored (an empty record would be published on the gap topic), no seq used.
    assert_eq!(o.append(0, ev).expect("append"), 2);
    assert_eq!(unacked(&mut o), vec![(1, ev(1)), (2, ev(2))]);
    assert_eq!(o.stats.dropped, 0);
}
