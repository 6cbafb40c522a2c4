use super::*;
use proptest::prelude::*;
use std::collections::HashSet;

fn det(cx: f32, cy: f32) -> Detection {
    Detection {
        bbox: BBox::from_center(cx, cy, 0.05, 0.15),
        score: 0.9,
    }
}

fn scored(cx: f32, cy: f32, score: f32) -> Detection {
    Detection {
        score,
        ..det(cx, cy)
    }
}

#[test]
fn a_walking_person_keeps_one_id() {
    let mut t = Tracker::new(TrackerParams::default());
    let mut ids = HashSet::new();
    for i in 0..50u64 {
        let u = t.update(i * 200, &[det(0.1 + i as f32 * 0.015, 0.5)]);
        ids.extend(u.tracks.iter().map(|v| v.id));
    }
    assert_eq!(ids.len(), 1);
}

#[test]
fn keeps_id_through_a_short_occlusion() {
    let mut t = Tracker::new(TrackerParams::default());
    let mut ids = HashSet::new();
    for i in 0..30u64 {
        let dets = if (10..15).contains(&i) {
            vec![]
        } else {
            vec![det(0.1 + i as f32 * 0.02, 0.5)]
        };
        let u = t.update(i * 200, &dets);
        assert!(
            u.ended.is_empty(),
            "track ended during a 1 s occlusion at frame {i}"
        );
        if (12..15).contains(&i) {
            assert!(
                u.tracks.is_empty(),
                "a person unseen for long is not reported as seen"
            );
        }
        ids.extend(u.tracks.iter().map(|v| v.id));
    }
    assert_eq!(ids.len(), 1);
}

#[test]
fn prediction_between_detections_follows_the_walk_and_keeps_the_id() {
    let mut t = Tracker::new(TrackerParams::default());
    let mut id = None;
    for i in 0..30u64 {
        let x = 0.1 + i as f32 * 0.02;
        let u = if i % 3 == 0 {
            t.update(i * 100, &[det(x, 0.5)])
        } else {
            t.predict(i * 100)
        };
        if let Some(v) = u.tracks.first() {
            if i > 6 {
                assert!(
                    (v.bbox.center().x - x).abs() < 0.01,
                    "frame {i}: {v:?} vs {x}"
                );
            }
            assert_eq!(*id.get_or_insert(v.id), v.id);
        }
    }
    assert!(id.is_some());
}

#[test]
fn a_person_missed_by_one_detection_stays_in_view() {
    let mut t = Tracker::new(TrackerParams::default());
    for i in 0..5u64 {
        t.update(i * 300, &[det(0.3 + 0.01 * i as f32, 0.5)]);
    }
    // One detection pass misses them: still in view, where they were heading.
    let u = t.update(1500, &[]);
    assert_eq!(u.tracks.len(), 1);
    assert!(u.tracks[0].bbox.center().x > 0.34);
    // Two in a row: out of view (but kept for re-identification).
    let u = t.update(1800, &[]);
    assert!(u.tracks.is_empty() && u.ended.is_empty());
    // A track seen only twice does not coast.
    let mut t = Tracker::new(TrackerParams::default());
    t.update(0, &[det(0.5, 0.5)]);
    t.update(100, &[det(0.5, 0.5)]);
    assert!(t.update(200, &[]).tracks.is_empty());
}

#[test]
fn a_long_absence_ends_the_track() {
    let mut t = Tracker::new(TrackerParams::default());
    t.update(0, &[det(0.5, 0.5)]);
    t.update(200, &[det(0.5, 0.5)]);
    let u = t.update(
        300 + t.params().lost_ms.max(t.params().relink.max_gap_ms),
        &[],
    );
    assert_eq!(u.ended.len(), 1);
    assert!(u.tracks.is_empty());
    assert!(t.is_empty());
}

#[test]
fn one_frame_false_positive_never_confirms() {
    let mut t = Tracker::new(TrackerParams::default());
    let u = t.update(0, &[det(0.5, 0.5)]);
    assert!(u.tracks.is_empty());
    let u = t.update(200, &[]);
    assert!(u.tracks.is_empty() && u.ended.is_empty());
    assert!(t.is_empty());
}

#[test]
fn two_people_crossing_paths_keep_their_ids() {
    let mut t = Tracker::new(TrackerParams::default());
    let mut last: Option<(u64, u64)> = None;
    for i in 0..40u64 {
        let x = i as f32 * 0.02;
        let u = t.update(i * 200, &[det(0.1 + x, 0.45), det(0.9 - x, 0.55)]);
        if u.tracks.len() == 2 {
            let mut v = u.tracks.clone();
            v.sort_by(|a, b| a.bbox.y1.total_cmp(&b.bbox.y1));
            let pair = (v[0].id, v[1].id);
            if let Some(l) = last {
                assert_eq!(l, pair, "frame {i}");
            }
            last = Some(pair);
        }
    }
    assert!(last.is_some());
}

#[test]
fn low_score_detections_keep_a_half_hidden_person_tracked() {
    let mut t = Tracker::new(TrackerParams::default());
    let mut ids = HashSet::new();
    for i in 0..30u64 {
        // Half hidden from frame 10 on: the detector is unsure (0.3).
        let s = if i >= 10 { 0.3 } else { 0.9 };
        let u = t.update(i * 100, &[scored(0.2 + i as f32 * 0.01, 0.5, s)]);
        if i >= 2 {
            assert_eq!(u.tracks.len(), 1, "frame {i}");
        }
        ids.extend(u.tracks.iter().map(|v| v.id));
    }
    assert_eq!(ids.len(), 1);
}

#[test]
fn an_unsure_detection_never_starts_a_track() {
    let mut t = Tracker::new(TrackerParams::default());
    for i in 0..10u64 {
        let u = t.update(i * 100, &[scored(0.5, 0.5, 0.4)]);
        assert!(u.tracks.is_empty());
    }
    assert!(t.is_empty());
}

#[test]
fn a_small_fast_person_at_a_low_frame_rate_is_confirmed() {
    // Box 0.02 wide moving 0.025 per frame (more than its width): predicted and detected
    // boxes of the first frames do not overlap; proximity recovers them.
    let mut t = Tracker::new(TrackerParams::default());
    let mut ids = HashSet::new();
    for i in 0..20u64 {
        let d = Detection {
            bbox: BBox::from_center(0.1 + 0.025 * i as f32, 0.5, 0.02, 0.06),
            score: 0.8,
        };
        let u = t.update(i * 200, &[d]);
        if i >= 1 {
            assert_eq!(u.tracks.len(), 1, "frame {i}");
        }
        ids.extend(u.tracks.iter().map(|v| v.id));
    }
    assert_eq!(ids.len(), 1);
}

#[test]
fn after_an_occlusion_the_velocity_follows_the_observations_not_the_drift() {
    // Walks right at 0.1/s, hidden for 1 s while drifting down, seen again below where the
    // filter predicted: the re-run filter has the velocity of the straight path between the
    // two sightings (0.082, 0.027), not the old one plus a single correction.
    let mut t = Tracker::new(TrackerParams::default());
    for i in 0..10u64 {
        t.update(i * 100, &[det(0.2 + 0.01 * i as f32, 0.3)]);
    }
    for i in 10..20u64 {
        t.update(i * 100, &[]);
    }
    let u = t.update(2000, &[det(0.38, 0.33)]);
    assert_eq!(u.tracks.len(), 1, "found again");
    assert_eq!(t.len(), 1);
    let (vx, vy) = t.tracks[0].filter.velocity();
    assert!(
        (vx - 0.082).abs() < 0.01 && (vy - 0.027).abs() < 0.01,
        "velocity ({vx}, {vy})"
    );
}

#[test]
fn only_confirmed_tracks_end_visibly() {
    let mut t = Tracker::new(TrackerParams::default());
    t.update(0, &[det(0.5, 0.5)]);
    let u = t.update(5000, &[]);
    assert!(
        u.ended.is_empty(),
        "a tentative track was never reported, so it never ends"
    );
}

fn arb_frame() -> impl Strategy<Value = Vec<(f32, f32, f32)>> {
    proptest::collection::vec((0.05f32..0.95, 0.1f32..0.9, 0.0f32..1.0), 0..12)
}

proptest! {
    /// Whatever the detections: reported ids are unique per frame, never more tracks than
    /// detections (plus those coasting from the frame before) are reported, an id once ended never comes back, and the tracker's memory
    /// stays bounded.
    #[test]
    fn ids_are_unique_and_memory_is_bounded(frames in proptest::collection::vec(arb_frame(), 1..60)) {
        let mut t = Tracker::new(TrackerParams::default());
        let mut ended = HashSet::new();
        let mut reported = 0;
        for (i, f) in frames.iter().enumerate() {
            let dets: Vec<Detection> = f.iter().map(|&(x, y, s)| scored(x, y, s)).collect();
            let u = t.update(i as u64 * 100, &dets);
            let ids: HashSet<u64> = u.tracks.iter().map(|v| v.id).collect();
            prop_assert_eq!(ids.len(), u.tracks.len());
            // Reported: matched to a detection, or coasting (reported the frame before).
            prop_assert!(u.tracks.len() <= dets.iter().filter(|d| d.score >= 0.1).count() + reported);
            reported = u.tracks.len();
            prop_assert!(ids.is_disjoint(&ended));
            ended.extend(u.ended.iter().copied());
            // Each update adds at most one track per detection; lost ones end after 1.5 s.
            prop_assert!(t.len() <= 12 * 17);
        }
    }
}

/// A walker seen every 200 ms along y = 0.5 at `speed` per second from x = 0.1, except while
/// `hidden(t)`; returns the ids reported.
fn walk_behind(
    t: &mut Tracker,
    speed: f32,
    hidden: impl Fn(u64) -> bool,
    until: u64,
    describe: &mut Describe,
) -> HashSet<u64> {
    let mut ids = HashSet::new();
    for k in 0..=until / 200 {
        let now = k * 200;
        let x = 0.1 + speed * now as f32 / 1000.0;
        let dets = if hidden(now) {
            vec![]
        } else {
            vec![det(x, 0.5)]
        };
        ids.extend(
            t.update_with(now, &dets, describe)
                .tracks
                .iter()
                .map(|v| v.id),
        );
    }
    ids
}

#[test]
fn a_walker_behind_a_post_for_two_seconds_keeps_their_id() {
    // 0.05 a second (a third of a height), hidden from 2 s to 4.2 s: the filter's prediction
    // no longer overlaps when they come out; the re-link finds them on their way.
    let mut t = Tracker::new(TrackerParams::default());
    let ids = walk_behind(
        &mut t,
        0.05,
        |now| (2000..4200).contains(&now),
        8000,
        &mut |_| None,
    );
    assert_eq!(ids.len(), 1, "{ids:?}");
}

#[test]
fn a_gap_longer_than_the_re_link_is_a_new_person() {
    let mut t = Tracker::new(TrackerParams::default());
    let gap = t.params().relink.max_gap_ms;
    let ids = walk_behind(
        &mut t,
        0.02,
        |now| (2000..2400 + gap).contains(&now),
        9000,
        &mut |_| None,
    );
    assert_eq!(ids.len(), 2, "{ids:?}");
}

#[test]
fn a_child_appearing_where_an_adult_vanished_is_someone_else() {
    let mut t = Tracker::new(TrackerParams::default());
    let adult = |x: f32| Detection {
        bbox: BBox::new(x - 0.03, 0.35, x + 0.03, 0.65),
        score: 0.9,
    };
    let child = Detection {
        bbox: BBox::new(0.47, 0.5, 0.51, 0.65),
        score: 0.9,
    };
    let mut ids = HashSet::new();
    for k in 0..10u64 {
        ids.extend(
            t.update(k * 200, &[adult(0.3 + 0.01 * k as f32)])
                .tracks
                .iter()
                .map(|v| v.id),
        );
    }
    for k in 10..15u64 {
        t.update(k * 200, &[]);
    }
    for k in 15..20u64 {
        ids.extend(t.update(k * 200, &[child]).tracks.iter().map(|v| v.id));
    }
    assert_eq!(ids.len(), 2, "{ids:?}");
}

#[test]
fn someone_in_other_colours_is_not_taken_for_the_lost_person() {
    use crate::track::appearance::Appearance;
    // Two frames' worth of colours: the walker's red coat, and a newcomer's green one.
    let coat = |rgb: [u8; 3]| {
        let mut f = vec![128u8; 400 * 400 * 3];
        for px in f.chunks_mut(3) {
            px.copy_from_slice(&rgb);
        }
        f
    };
    let (red, green) = (coat([200, 30, 30]), coat([30, 180, 30]));
    let look = |f: &[u8], b: &BBox| Appearance::from_rgb(f, 400, 400, b);
    let hidden = |now: u64| (2000..4200).contains(&now);
    // Same colours before and after: one person.
    let mut t = Tracker::new(TrackerParams::default());
    let ids = walk_behind(&mut t, 0.05, hidden, 8000, &mut |b| look(&red, b));
    assert_eq!(ids.len(), 1);
    // Red before, green after: the newcomer is someone else.
    let mut t = Tracker::new(TrackerParams::default());
    let mut now = 0;
    let mut ids = HashSet::new();
    while now <= 8000 {
        let x = 0.1 + 0.05 * now as f32 / 1000.0;
        let dets = if hidden(now) {
            vec![]
        } else {
            vec![det(x, 0.5)]
        };
        let frame = if now < 3000 { &red } else { &green };
        ids.extend(
            t.update_with(now, &dets, &mut |b| look(frame, b))
                .tracks
                .iter()
                .map(|v| v.id),
        );
        now += 200;
    }
    assert_eq!(ids.len(), 2, "{ids:?}");
}

#[test]
fn appearances_live_only_as_long_as_their_tracks() {
    use crate::track::appearance::Appearance;
    let frame = vec![90u8; 400 * 400 * 3];
    let mut t = Tracker::new(TrackerParams::default());
    let mut describe = |b: &BBox| Appearance::from_rgb(&frame, 400, 400, b);
    for k in 0..10u64 {
        t.update_with(
            k * 200,
            &[det(0.2 + 0.01 * k as f32, 0.5), det(0.7, 0.5)],
            &mut describe,
        );
        assert!(t.appearances() <= t.len());
    }
    assert_eq!(t.appearances(), 2, "each tracked person has one");
    // Unseen longer than any buffer: the tracks end, their descriptors with them.
    let later = 2000 + t.params().lost_ms.max(t.params().relink.max_gap_ms) + 1000;
    let u = t.update_with(later, &[], &mut describe);
    assert_eq!(u.ended.len(), 2);
    assert_eq!(t.appearances(), 0);
    // And the tracker's debug output never shows one.
    t.update_with(later + 100, &[det(0.5, 0.5)], &mut describe);
    assert!(!format!("{t:?}").contains("parts"));
}
