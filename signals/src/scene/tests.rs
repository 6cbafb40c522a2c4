use super::*;
use crate::geom::{BBox, Point};
use vitrine_config::{Area, Line, Side, VideoSource};

fn p(x: f32, y: f32) -> Point {
    Point { x, y }
}

/// A camera whose lower half is a shelf display (reading expressions of faces from 48 px, or
/// not), with attention on.
fn at_a_shelf(expressions: bool) -> CameraSignals {
    let mut cam = camera();
    cam.displays = vec![DisplayArea {
        area: Area {
            id: "shelf".into(),
            polygon: vec![p(0.0, 0.5), p(1.0, 0.5), p(1.0, 1.0), p(0.0, 1.0)],
        },
        gaze_yaw: 0.0,
        gaze_pitch: 0.0,
        gaze_tolerance: 22.5,
        expressions,
        expressions_min_face_px: 48,
    }];
    let mut s = CameraSignals::new(&cam);
    s.enable_attention();
    s
}

/// A person standing at `x` (feet in the shelf's area).
fn shopper(x: f32) -> Detection {
    Detection {
        bbox: BBox::new(x, 0.3, x + 0.1, 0.8),
        score: 0.9,
    }
}

/// The face of the person at `x`, turned `yaw` degrees.
fn face(x: f32, yaw: f32) -> Face {
    Face {
        bbox: BBox::from_center(x + 0.05, 0.36, 0.04, 0.05),
        pose: attention::HeadPose { yaw, pitch: 5.0 },
    }
}

#[test]
fn a_person_facing_the_display_is_a_looker_and_one_turned_away_only_passes() {
    let mut s = at_a_shelf(false);
    for i in 0..20u64 {
        s.observe(i * 200, &[shopper(0.2), shopper(0.6)]);
        if i >= 2 {
            assert!(s.wants_faces());
        }
        let wanted = s.observe_faces(i * 200, &[face(0.2, 10.0), face(0.6, 60.0)]);
        assert!(
            wanted.is_empty(),
            "expressions are off unless the display asks"
        );
    }
    let body = s.take_window(0, 4000, 1);
    let a = body.displays[0]
        .attention
        .clone()
        .expect("attention figures");
    assert_eq!((a.passers, a.lookers), (Some(2), Some(1)));
    let look = a.looking_seconds.expect("looking time");
    // Confirmed from the second frame (200 ms) to the last (3800 ms).
    assert!((look.max - 3.6).abs() < 1e-9, "{look:?}");
    // No face, no attention: the figures stay absent from zones.
    assert!(body.zones[0].attention.is_none());
    assert!(a.expressions.is_none(), "no expressions unless opted in");
}

#[test]
fn expressions_are_read_only_on_lookers_faces_and_published_as_counts() {
    let mut s = at_a_shelf(true);
    // Three people: two look (faces 0 and 2), one is turned away (face 1).
    let people = [shopper(0.1), shopper(0.4), shopper(0.7)];
    let faces = [face(0.1, 5.0), face(0.4, 70.0), face(0.7, -10.0)];
    for i in 0..10u64 {
        s.observe(i * 200, &people);
        let wanted = s.observe_faces(i * 200, &faces);
        let asked: Vec<usize> = wanted.iter().map(|w| w.0).collect();
        if i >= 2 {
            assert_eq!(asked, vec![0, 2], "only lookers' faces are read");
            assert!(wanted.iter().all(|w| w.2 == 48));
        }
        let readings: Vec<_> = wanted
            .iter()
            .map(|&(f, id, _)| {
                let expression = Some(if f == 0 {
                    attention::Expression::Happy
                } else {
                    attention::Expression::Neutral
                });
                (
                    id,
                    attention::Reading {
                        face_px: 60,
                        expression,
                    },
                )
            })
            .collect();
        s.observe_expressions(&readings);
    }
    let body = s.take_window(0, 2000, 1);
    let a = body.displays[0].attention.clone().expect("attention");
    assert_eq!(a.lookers, Some(2));
    let e = a.expressions.expect("expressions opted in");
    assert_eq!(
        (e.happy, e.neutral, e.sad, e.unread),
        (Some(1), Some(1), Some(0), Some(0))
    );
    // The same window with k = 3: every non-zero count is suppressed.
    let mut s2 = s;
    for i in 10..15u64 {
        s2.observe(i * 200, &people);
        let wanted = s2.observe_faces(i * 200, &faces);
        let readings: Vec<_> = wanted
            .iter()
            .map(|&(_, id, _)| {
                (
                    id,
                    attention::Reading {
                        face_px: 30,
                        expression: None,
                    },
                )
            })
            .collect();
        s2.observe_expressions(&readings);
    }
    let e = s2.take_window(2000, 3000, 3).displays[0]
        .attention
        .clone()
        .and_then(|a| a.expressions)
        .expect("expressions");
    assert_eq!((e.unread, e.happy, e.suppressed), (None, Some(0), true));
}

fn camera() -> Camera {
    Camera {
        id: "cam".into(),
        source: VideoSource::File("x.mp4".into()),
        format: None,
        rtsp_transport: Default::default(),
        decoder: Default::default(),
        fps: 5.0,
        size: None,
        detect_every: 1,
        detect_every_near: 1,
        input_size: None,
        motion_gating: true,
        zones: vec![Area {
            id: "right-half".into(),
            polygon: vec![p(0.5, 0.0), p(1.0, 0.0), p(1.0, 1.0), p(0.5, 1.0)],
        }],
        lines: vec![Line {
            id: "door".into(),
            from: p(0.5, 0.0),
            to: p(0.5, 1.0),
            in_side: Side::Left,
        }],
        displays: vec![],
        queues: vec![],
        heatmap: None,
        funnel: None,
        alerts: vec![],
        staff: None,
    }
}

/// A person whose feet are at (x, y).
fn person(x: f32, y: f32) -> Detection {
    Detection {
        bbox: BBox::new(x - 0.03, y - 0.2, x + 0.03, y),
        score: 0.9,
    }
}

#[test]
fn walking_left_to_right_counts_one_in_and_a_visit() {
    // Line from top to bottom with "in" on the left: walking down the screen, left is +x?
    // No: walking from (0.5,0) to (0.5,1) is walking down; the left hand, as seen on the
    // screen, is towards +x. So crossing to the right half of the image is "in".
    let mut s = CameraSignals::new(&camera());
    for i in 0..30u64 {
        s.observe(i * 200, &[person(0.2 + i as f32 * 0.02, 0.6)]);
    }
    s.finish();
    let w = s.take_window(0, 60_000, 0);
    assert_eq!((w.lines[0].r#in, w.lines[0].out), (Some(1), Some(0)));
    assert_eq!(w.zones[0].visits, Some(1));
    let dwell = w.zones[0]
        .dwell_seconds
        .as_ref()
        .expect("one finished visit");
    assert_eq!(dwell.count, 1);
    // Feet cross x=0.5 at frame 15 and are last seen at frame 29: 14 frames × 200 ms.
    assert!((dwell.max - 2.8).abs() < 0.21, "dwell {}", dwell.max);
}

#[test]
fn two_people_walking_in_side_by_side_are_one_group_and_a_later_one_another() {
    let mut s = CameraSignals::new(&camera());
    s.set_aspect(4.0 / 3.0);
    // A couple 0.1 of the height apart (boxes 0.2 high), then someone alone 10 s later.
    for i in 0..30u64 {
        let x = 0.2 + i as f32 * 0.02;
        s.observe(i * 200, &[person(x, 0.55), person(x, 0.65)]);
    }
    for i in 0..30u64 {
        s.observe(10_000 + i * 200, &[person(0.2 + i as f32 * 0.02, 0.6)]);
    }
    s.finish();
    let w = s.take_window(0, 60_000, 0);
    let door = &w.lines[0];
    assert_eq!((door.r#in, door.out), (Some(3), Some(0)));
    assert_eq!((door.groups_in, door.groups_out), (Some(2), Some(0)));
}

#[test]
fn jitter_on_the_line_counts_nothing() {
    let mut s = CameraSignals::new(&camera());
    for i in 0..100u64 {
        let x = 0.5 + if i % 2 == 0 { 0.015 } else { -0.015 };
        s.observe(i * 200, &[person(x, 0.6)]);
    }
    let w = s.take_window(0, 60_000, 0);
    assert_eq!((w.lines[0].r#in, w.lines[0].out), (Some(0), Some(0)));
}

#[test]
fn coverage_tells_blind_from_empty() {
    let mut s = CameraSignals::new(&camera());
    // Frames for the first 30 s of a 60 s window, nobody in view.
    for i in 0..150u64 {
        s.observe(i * 200, &[]);
    }
    let w = s.take_window(0, 60_000, 0);
    assert_eq!(w.coverage.frames_expected, Some(300));
    assert_eq!(w.coverage.frames_analysed, Some(150));
    assert!(
        (w.coverage.seconds_blind - 30.0).abs() < 0.3,
        "{}",
        w.coverage.seconds_blind
    );
    assert_eq!(w.people.max, Some(0));
    // A window with no frame at all is blind, with no people figure at all.
    let w = s.take_window(60_000, 120_000, 0);
    assert_eq!(w.coverage.frames_analysed, Some(0));
    assert!((w.coverage.seconds_blind - 60.0).abs() < 0.3);
    assert_eq!(w.people.mean, None);
    assert_eq!(w.coverage.status, crate::event::CoverageStatus::Blind);
}

/// A time-lapse camera (a frame every 15 minutes) sees its windows whole: the coverage follows
/// the configured rate, not a floor of a frame per 100 s (which left 89 % of every window
/// "blind" and kept the forecast from ever learning an hour).
#[test]
fn a_time_lapse_camera_covers_its_windows() {
    let mut c = camera();
    c.fps = 1.0 / 900.0;
    let mut s = CameraSignals::new(&c);
    for i in 0..8u64 {
        s.observe(i * 900_000, &[]);
    }
    let w = s.take_window(3_600_000, 7_200_000, 0);
    assert_eq!(w.coverage.frames_expected, Some(4));
    assert!(
        w.coverage.seconds_blind < 1.0,
        "{}",
        w.coverage.seconds_blind
    );
    assert_eq!(w.coverage.status, crate::event::CoverageStatus::Ok);
}

#[test]
fn small_counts_are_suppressed_with_k() {
    let mut s = CameraSignals::new(&camera());
    for i in 0..30u64 {
        s.observe(i * 200, &[person(0.2 + i as f32 * 0.02, 0.6)]);
    }
    s.finish();
    let w = s.take_window(0, 60_000, 3);
    assert_eq!(w.lines[0].r#in, None);
    assert_eq!(w.lines[0].out, Some(0), "zero is not a small count");
    assert_eq!(w.zones[0].visits, None);
    assert!(w.zones[0].dwell_seconds.is_none());
    assert!(w.zones[0].suppressed);
}

/// A person walking right at 0.02 per 200 ms, hidden (no detection) in frames `hidden`.
fn walk_with_gap(s: &mut CameraSignals, hidden: std::ops::Range<u64>) {
    for i in 0..40u64 {
        let dets = if hidden.contains(&i) {
            vec![]
        } else {
            vec![person(0.1 + i as f32 * 0.02, 0.6)]
        };
        s.observe(i * 200, &dets);
    }
    s.finish();
}

#[test]
fn a_track_broken_by_an_occlusion_is_never_counted_twice() {
    // Hidden after the line for 1.6 s (longer than the tracker keeps a lost track), the
    // walker comes back as a new track: one crossing, one visit.
    let mut s = CameraSignals::new(&camera());
    walk_with_gap(&mut s, 24..32);
    let w = s.take_window(0, 60_000, 0);
    assert_eq!((w.lines[0].r#in, w.lines[0].out), (Some(1), Some(0)));
    assert_eq!(w.zones[0].visits, Some(1));
}

#[test]
fn a_zone_visit_survives_an_identity_switch_within_the_grace() {
    let mut s = CameraSignals::new(&camera());
    // Inside the right half from frame 20 (x = 0.5); hidden 1.6 s inside it.
    walk_with_gap(&mut s, 26..34);
    let w = s.take_window(0, 60_000, 0);
    assert_eq!(w.zones[0].visits, Some(1));
    let dwell = w.zones[0].dwell_seconds.as_ref().expect("the visit ended");
    assert_eq!(dwell.count, 1);
    assert!(
        dwell.max > 3.5,
        "one visit from entry to the last frame: {}",
        dwell.max
    );
}

#[test]
fn a_door_line_at_the_image_edge_counts_people_coming_in_from_the_edge() {
    // A ceiling camera over a door: the door line lies near the bottom of the image and people
    // come in from the bottom edge, their boxes cut by the border at first.
    let mut cam = camera();
    cam.lines = vec![Line {
        id: "door".into(),
        from: p(0.1, 0.9),
        to: p(0.9, 0.9),
        in_side: Side::Left,
    }];
    let mut s = CameraSignals::new(&cam);
    for i in 0..25u64 {
        let top = 1.0 - 0.02 * i as f32;
        let b = BBox::new(0.45, top.min(0.95), 0.55, (top + 0.2).min(1.0));
        s.observe(
            i * 100,
            &[Detection {
                bbox: b,
                score: 0.9,
            }],
        );
    }
    s.finish();
    let w = s.take_window(0, 60_000, 0);
    // Walking up the screen across a left-to-right line: "up" is the left hand, "in".
    assert_eq!((w.lines[0].r#in, w.lines[0].out), (Some(1), Some(0)));
}

#[test]
fn people_in_view_count_only_confirmed_tracks() {
    let mut s = CameraSignals::new(&camera());
    // One real walker, plus one-frame false positives every other frame elsewhere.
    for i in 0..20u64 {
        let mut dets = vec![person(0.1 + i as f32 * 0.01, 0.6)];
        if i % 2 == 0 {
            dets.push(person(0.9 - i as f32 * 0.03, 0.2));
        }
        s.observe(i * 200, &dets);
    }
    let w = s.take_window(0, 4000, 0);
    assert_eq!(w.people.max, Some(1));
}

#[test]
fn frames_between_detections_are_placed_on_the_path_between_them() {
    // Detections every third frame of a straight walk; the frames between wait, then land on
    // the straight path between the two detections that enclose them.
    let mut s = CameraSignals::new(&camera());
    s.record();
    for i in 0..12u64 {
        let t = i * 100;
        if i % 3 == 0 {
            s.observe(t, &[person(0.1 + 0.01 * i as f32, 0.6)]);
        } else {
            s.observe_predicted(t);
        }
    }
    let placed = s.take_recorded();
    assert_eq!(
        placed.len(),
        10,
        "frames 0..=9 placed, 10 and 11 still wait"
    );
    for (t, people) in &placed[4..] {
        let want = 0.1 + 0.01 * (*t / 100) as f32;
        let got = people[0].bbox.foot().x;
        assert!((got - want).abs() < 0.004, "t {t}: {got} vs {want}");
    }
    // A window closing places the waiting frames in it (by prediction).
    let w = s.take_window(0, 1200, 0);
    assert_eq!(w.coverage.frames_analysed, Some(12));
    assert_eq!(s.take_recorded().len(), 2);
}

#[test]
fn a_track_confirmed_by_the_next_detection_is_placed_in_the_frames_between() {
    let mut s = CameraSignals::new(&camera());
    s.record();
    // Seen first at frame 0 (tentative), confirmed at frame 3: frames 1 and 2 hold them too.
    s.observe(0, &[person(0.3, 0.6)]);
    s.observe_predicted(100);
    s.observe_predicted(200);
    s.observe(300, &[person(0.33, 0.6)]);
    let placed = s.take_recorded();
    let counts: Vec<usize> = placed.iter().map(|(_, p)| p.len()).collect();
    assert_eq!(counts, vec![0, 1, 1, 1]);
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever the detections: people in view never exceed the detections of the frame
        /// plus those coasting, and a line's in and out counts never exceed the people seen.
        #[test]
        fn counts_are_bounded_by_what_was_seen(frames in proptest::collection::vec(
            proptest::collection::vec((0.05f32..0.95, 0.3f32..0.95), 0..6), 1..80)) {
            let mut s = CameraSignals::new(&camera());
            let mut most = 0usize;
            let mut before = 0usize;
            for (i, f) in frames.iter().enumerate() {
                let dets: Vec<Detection> = f.iter().map(|&(x, y)| person(x, y)).collect();
                s.observe(i as u64 * 200, &dets);
                // In view: seen now, or coasting after being in view the frame before.
                prop_assert!(s.people_now() <= dets.len() + before);
                before = s.people_now();
                most += dets.len();
            }
            s.finish();
            let w = s.take_window(0, 80 * 200, 0);
            let l = &w.lines[0];
            prop_assert!((l.r#in.unwrap_or(0) + l.out.unwrap_or(0)) as usize <= most);
            prop_assert!(w.people.max.unwrap_or(0) as usize <= 2 * frames.iter().map(Vec::len).max().unwrap_or(0));
        }
    }
}

/// People walking right to left across the door line, one every `gap_ms`, each over 2 s.
fn walkers(s: &mut CameraSignals, n: u64, gap_ms: u64) -> u64 {
    let mut t = 0;
    for i in 0..n {
        for step in 0..=10u64 {
            t = i * gap_ms + step * 200;
            let x = 0.9 - 0.08 * step as f32;
            s.observe(t, &[person(x, 0.6)]);
        }
    }
    t
}

#[test]
fn a_surge_across_a_line_raises_an_alert_at_once_and_the_window_carries_the_new_signals() {
    use vitrine_config::{AlertOn, AlertRule, Heatmap};
    let mut cam = camera();
    cam.heatmap = Some(Heatmap { cols: 4, rows: 3 });
    cam.alerts = vec![AlertRule {
        id: "door_rush".into(),
        on: AlertOn::LineRate("door".into()),
        above: Some(3.0),
        forecast_factor: None,
        clear_below: None,
        hold_secs: 0.0,
        min_interval_secs: 300.0,
    }];
    let mut s = CameraSignals::new(&cam);
    s.set_alert_bands(vec![None], 2);
    let end = walkers(&mut s, 6, 2_400);
    let alerts = s.take_alerts();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert!(alerts[0].raised && alerts[0].value.unwrap() > 3.0);
    // Raised while people were still crossing, not at the window's close.
    assert!(alerts[0].at_ms < end);
    let body = s.take_window(0, 60_000, 2);
    let heat = body.heatmap.unwrap();
    assert_eq!(heat.person_seconds.len(), 12);
    let total: f64 = heat.person_seconds.iter().flatten().sum();
    assert!(total > 10.0, "six people for about 2 s each: {total}");
    assert_eq!(s.window_totals().lines, vec![("door".to_string(), 6)]);
}
