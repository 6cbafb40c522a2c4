use super::*;
use vitrine_config::Entrance;

fn params() -> StoreOccupancy {
    StoreOccupancy {
        entrances: vec![
            Entrance {
                camera: "door".into(),
                line: "entrance".into(),
            },
            Entrance {
                camera: "side".into(),
                line: "gate".into(),
            },
        ],
        capacity: Some(5),
        opens_minute: 8 * 60,
        closes_minute: Some(20 * 60),
        empty_after_secs: None,
    }
}

fn at(minute: u32) -> LocalTime {
    LocalTime { day: 1, minute }
}

fn tally(ins: u64, outs: u64) -> Vec<EntranceCount> {
    vec![line("entrance", ins, outs)]
}

/// A line's running totals, every crossing its own group.
fn line(id: &str, ins: u64, outs: u64) -> EntranceCount {
    EntranceCount {
        line: id.into(),
        people: Tally { ins, outs },
        groups: Tally { ins, outs },
    }
}

#[test]
fn people_inside_are_the_entrances_ins_minus_outs_across_cameras() {
    let mut o = Occupancy::new(params());
    o.observe(0, at(600), "door", &tally(3, 1), 2, 0);
    o.observe(1000, at(600), "side", &[line("gate", 2, 0)], 1, 0);
    assert_eq!(o.now(), 4);
    // Running totals: only the change counts; a line that is not an entrance is ignored.
    o.observe(2000, at(600), "door", &tally(3, 2), 1, 0);
    o.observe(2000, at(600), "door", &[line("other", 50, 0)], 1, 0);
    assert_eq!(o.now(), 3);
    let w = o.take_window();
    assert_eq!((w.now, w.max, w.ins, w.outs), (3, 4, 5, 2));
    assert_eq!((w.groups_in, w.groups_out), (5, 2));
    assert!(w.adjustments.is_empty());
    // Two people in as one party: one group.
    let party = EntranceCount {
        line: "entrance".into(),
        people: Tally { ins: 5, outs: 2 },
        groups: Tally { ins: 4, outs: 2 },
    };
    o.observe(3000, at(600), "door", &[party], 2, 0);
    let w = o.take_window();
    assert_eq!((w.ins, w.groups_in), (2, 1));
}

#[test]
fn an_exit_with_nobody_inside_is_not_subtracted_but_said() {
    let mut o = Occupancy::new(params());
    o.observe(0, at(600), "door", &tally(1, 3), 0, 0);
    assert_eq!(o.now(), 0);
    let w = o.take_window();
    assert_eq!(w.adjustments.len(), 1);
    assert_eq!(w.adjustments[0].reason, Reason::BelowZero);
    assert_eq!(w.adjustments[0].people, 2);
}

#[test]
fn the_count_starts_again_at_opening_and_is_zero_at_closing_each_published() {
    let mut o = Occupancy::new(params());
    // The night before: opening time passed, someone counted in and never out.
    o.observe(0, at(600), "door", &tally(4, 1), 1, 0);
    o.tick(1000, at(20 * 60 + 1));
    assert_eq!(o.now(), 0);
    let w = o.take_window();
    assert_eq!(w.adjustments[0].reason, Reason::Closing);
    assert_eq!(w.adjustments[0].people, -3);
    // Next morning (new day), before opening: counted; at opening: back to zero.
    let night = LocalTime {
        day: 2,
        minute: 7 * 60,
    };
    o.observe(2000, night, "door", &tally(6, 1), 1, 0);
    assert_eq!(o.now(), 2);
    o.tick(
        3000,
        LocalTime {
            day: 2,
            minute: 8 * 60,
        },
    );
    assert_eq!(o.now(), 0);
    assert_eq!(o.take_window().adjustments[0].reason, Reason::Opening);
    // Only once a day.
    o.observe(
        4000,
        LocalTime {
            day: 2,
            minute: 9 * 60,
        },
        "door",
        &tally(7, 1),
        1,
        0,
    );
    assert_eq!(o.now(), 1);
}

#[test]
fn a_long_empty_scene_on_every_camera_empties_the_store() {
    let mut p = params();
    p.empty_after_secs = Some(600);
    let mut o = Occupancy::new(p);
    o.observe(0, at(600), "door", &tally(3, 0), 0, 0);
    o.observe(0, at(600), "side", &[], 1, 0);
    o.tick(700_000, at(612));
    assert_eq!(o.now(), 3, "the side camera still sees someone");
    o.observe(700_000, at(612), "side", &[], 0, 0);
    o.tick(1_299_000, at(621));
    assert_eq!(o.now(), 3);
    o.tick(1_300_000, at(621));
    assert_eq!(o.now(), 0);
    let w = o.take_window();
    assert_eq!(w.adjustments[0].reason, Reason::Empty);
    // Corrected once per empty spell.
    o.observe(1_400_000, at(623), "door", &tally(4, 0), 0, 0);
    o.tick(2_000_000, at(633));
    assert_eq!(o.now(), 1);
}

#[test]
fn a_restarted_camera_counts_from_zero_again() {
    let mut o = Occupancy::new(params());
    o.observe(0, at(600), "door", &tally(10, 4), 1, 0);
    o.observe(1000, at(600), "door", &tally(1, 0), 1, 0);
    assert_eq!(o.now(), 7);
}

#[test]
fn the_capacity_alert_rises_above_capacity_and_clears_below() {
    let mut o = Occupancy::new(params());
    assert!(o.observe(0, at(600), "door", &tally(5, 0), 5, 0).is_none());
    let up = o
        .observe(1000, at(600), "door", &tally(6, 0), 6, 0)
        .expect("raised");
    assert!(up.raised);
    assert_eq!(up.value, Some(6.0));
    let down = o
        .observe(2000, at(600), "door", &tally(6, 3), 3, 0)
        .expect("cleared");
    assert!(!down.raised);
}

#[test]
fn published_counts_are_suppressed_below_k() {
    let meta = EventMeta {
        device_id: "box",
        store_id: "s",
        source_id: SOURCE,
        k_min: 3,
    };
    let w = OccupancyWindow {
        now: 2,
        max: 7,
        ins: 9,
        outs: 7,
        groups_in: 6,
        groups_out: 2,
        adjustments: vec![
            Adjustment {
                reason: Reason::Closing,
                at_ms: 5000,
                people: -2,
            },
            Adjustment {
                reason: Reason::Opening,
                at_ms: 6000,
                people: -4,
            },
        ],
    };
    let e = OccupancyEvent::window(&meta, 9, (0, 60_000), &w, Some(40));
    let v = serde_json::to_value(&e).unwrap_or_default();
    assert_eq!(v["people"], serde_json::Value::Null);
    assert_eq!(v["max"], 7);
    assert_eq!(v["adjustments"][0]["people"], serde_json::Value::Null);
    assert_eq!(v["adjustments"][1]["people"], -4);
    assert_eq!(v["kind"], "window");
    let live =
        serde_json::to_value(OccupancyEvent::live(&meta, 10, 61_500, 5, None)).unwrap_or_default();
    assert_eq!(live["people"], 5);
    assert_eq!(live["at"], "1970-01-01T00:01:01Z");
    assert!(live.get("max").is_none() && live.get("window").is_none());
}

#[test]
fn occupancy_events_match_the_published_schema() {
    let text = include_str!("../../schema/occupancy.v1.json");
    let schema: serde_json::Value = serde_json::from_str(text).unwrap_or_default();
    let Ok(v) = jsonschema::validator_for(&schema) else {
        panic!("the schema compiles");
    };
    let meta = EventMeta {
        device_id: "box-1",
        store_id: "store.42",
        source_id: SOURCE,
        k_min: 5,
    };
    let w = OccupancyWindow {
        now: 12,
        max: 15,
        ins: 20,
        outs: 3,
        groups_in: 14,
        groups_out: 3,
        adjustments: vec![Adjustment {
            reason: Reason::BelowZero,
            at_ms: 1_795_946_401_234,
            people: 1,
        }],
    };
    let events = [
        OccupancyEvent::window(
            &meta,
            9,
            (1_795_946_400_000, 1_795_946_460_000),
            &w,
            Some(40),
        ),
        OccupancyEvent::window(&meta, 10, (0, 60_000), &OccupancyWindow::default(), None),
        OccupancyEvent::live(&meta, 11, 1_795_946_401_234, 3, Some(40)),
    ];
    for e in events {
        let ev = serde_json::to_value(&e).unwrap_or_default();
        let errors: Vec<String> = v.iter_errors(&ev).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{errors:?}\n{ev}");
    }
}
