//! The whole pipeline on real media (Debian's vtest.avi, alsa-utils voice prompts, espeak-ng
//! speech, sox noise) through the real models, via `vitrine replay`.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use serde_json::Value;

/// Replays `input` and returns what it said on stderr.
fn replay(cfg: &std::path::Path, input: &std::path::Path, out: &std::path::Path) -> String {
    let o = vitrine()
        .args([
            "replay",
            "--quiet",
            "--start",
            "2026-11-29T10:00:00Z",
            "--config",
        ])
        .arg(cfg)
        .arg("--input")
        .arg(input)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "replay failed: {stderr}");
    stderr
}

/// Detector runs and predicted frames, from a replay's "detector ran on D of N frames (S
/// unchanged, P predicted)".
fn detector_runs(stderr: &str) -> (f64, f64) {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("detector ran on"))
        .unwrap_or_else(|| panic!("no detector summary in {stderr}"));
    let n: Vec<f64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|w| w.parse().ok())
        .collect();
    (n[0], n[3])
}

#[test]
fn people_near_an_eye_level_camera_are_detected_every_second_frame_and_far_ones_every_third() {
    let Some(street) = eval_media("mot15/TUD-Stadtmitte/TUD-Stadtmitte.mp4") else {
        eprintln!("SKIPPED: evaluation media (../shared/media or VITRINE_EVAL_MEDIA) not present");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("events.jsonl");
    let ratio = |camera: &str, input: &std::path::Path| {
        let cfg = write_config(dir.path(), camera);
        let (detected, predicted) = detector_runs(&replay(&cfg, input, &out));
        assert!(detected >= 10.0, "{detected} detections");
        predicted / detected
    };
    // A shopping street at eye level: people a third of the picture tall.
    let street_cam = |extra: &str| {
        format!(
            "[[cameras]]\nid = \"street\"\nfile = \"{}\"\n{extra}\n[[cameras.lines]]\nid = \"x\"\nfrom = [0.5, 0.4]\nto = [0.5, 0.95]\nin = \"left\"\n",
            street.display()
        )
    };
    let near = ratio(&street_cam(""), &street);
    assert!(
        (0.6..=1.4).contains(&near),
        "near: {near} predicted per detection"
    );
    let fixed = ratio(&street_cam("detect_every_near = 3"), &street);
    assert!((1.5..=2.3).contains(&fixed), "one cadence: {fixed}");
    // The walkway seen from above: people a seventh of the picture tall.
    let walkway = format!(
        "[[cameras]]\nid = \"walkway\"\nfile = \"{}\"\nfps = 2\n",
        media("vtest.avi").display()
    );
    let far = ratio(&walkway, &media("vtest.avi"));
    eprintln!("predicted frames per detection: street {near:.2}, street with one cadence {fixed:.2}, walkway {far:.2}");
    assert!(
        (1.5..=2.3).contains(&far),
        "far: {far} predicted per detection"
    );
}

fn sum(events: &[Value], f: impl Fn(&Value) -> Option<u64>) -> u64 {
    events.iter().filter_map(f).sum()
}

#[test]
fn replay_vtest_walkway_counts_people_crossings_and_visits() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        &format!("{}\n[privacy]\nwindow_secs = 10\n", walkway_camera(5)),
    );
    let out = dir.path().join("events.jsonl");
    replay(&cfg, &media("vtest.avi"), &out);
    let events = read_jsonl(&out);
    let schema = schema();
    for e in &events {
        assert_valid(&schema, e);
    }
    // 79.5 s of video in 10 s windows: 8 windows, numbered 1..8, aligned to --start.
    assert_eq!(events.len(), 8);
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e["seq"], (i + 1) as u64);
        assert_eq!(e["kind"], "camera");
        let start_ms = 1_795_946_400_000 + i as u64 * 10_000; // 2026-11-29T10:00:00Z + i windows
        assert_eq!(
            e["window"]["start"],
            vitrine_signals::event::rfc3339(start_ms)
        );
    }
    // Every frame analysed at 5 fps; the last window is 9.5 s long, so it is not complete.
    assert_eq!(
        sum(&events, |e| e["coverage"]["frames_analysed"].as_u64()),
        398
    );
    assert!(events[..7]
        .iter()
        .all(|e| e["coverage"]["status"] == "ok" && e["coverage"]["frames_analysed"] == 50));
    assert!(events[7]["coverage"]["seconds_blind"].as_f64().unwrap() > 0.0);
    // PETS2009 S2L1 shows 4-8 pedestrians at a time.
    for e in &events {
        let max = e["people"]["max"].as_u64().unwrap();
        assert!(
            (3..=12).contains(&max),
            "people max {max} in {}",
            e["window"]["start"]
        );
    }
    // Crossings both ways at the walkway line, visits to the pavement zone and the sign.
    let ins = sum(&events, |e| e["lines"][0]["in"].as_u64());
    let outs = sum(&events, |e| e["lines"][0]["out"].as_u64());
    assert!(
        (6..=25).contains(&ins) && (6..=25).contains(&outs),
        "in {ins} out {outs}"
    );
    let visits = sum(&events, |e| e["zones"][0]["visits"].as_u64());
    assert!((5..=40).contains(&visits), "zone visits {visits}");
    let dwells: Vec<f64> = events
        .iter()
        .filter_map(|e| e["zones"][0]["dwell_seconds"]["p50"].as_f64())
        .collect();
    assert!(!dwells.is_empty() && dwells.iter().all(|d| *d < 60.0));
}

#[test]
fn k_anonymity_suppresses_small_counts_on_real_video() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        &format!(
            "{}\n[privacy]\nwindow_secs = 10\nk_min = 3\n",
            walkway_camera(2)
        ),
    );
    let out = dir.path().join("events.jsonl");
    replay(&cfg, &media("vtest.avi"), &out);
    let events = read_jsonl(&out);
    let schema = schema();
    let mut suppressed = 0;
    for e in &events {
        assert_valid(&schema, e);
        assert_eq!(e["k_min"], 3);
        for l in e["lines"].as_array().unwrap() {
            for dir in ["in", "out"] {
                match l[dir].as_u64() {
                    Some(n) => assert!(n == 0 || n >= 3, "{dir} = {n} should be suppressed"),
                    None => {
                        suppressed += 1;
                        assert_eq!(l["suppressed"], true);
                    }
                }
            }
        }
    }
    assert!(
        suppressed > 0,
        "some 1-2 crossing counts exist in vtest windows and must be null"
    );
}

fn mic_window(file: &str) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        "[[microphones]]\nid = \"floor\"\ndevice = \"default\"\n",
    );
    let out = dir.path().join("events.jsonl");
    replay(&cfg, &media(file), &out);
    let events = read_jsonl(&out);
    assert_eq!(events.len(), 1, "one 60 s window");
    assert_valid(&schema(), &events[0]);
    events[0].clone()
}

/// Share of a sound category, when the optional YAMNet model is installed (it has no public
/// upstream; a checkout without the mirror runs without categories, and then they must be absent).
fn sound_share(e: &Value, category: &str) -> Option<f64> {
    if !models().join("yamnet_core.onnx").is_file() {
        assert!(
            e.get("sounds").is_none(),
            "sounds without a classifier: {e}"
        );
        eprintln!("yamnet not installed: sound categories not checked");
        return None;
    }
    Some(e["sounds"][category].as_f64().unwrap())
}

#[test]
fn speech_is_detected_as_speech() {
    let e = mic_window("speech.wav");
    if let Some(s) = sound_share(&e, "speech") {
        assert!(s > 0.8, "speech share {s}: {e}");
    }
    let ratio = e["speech_ratio"].as_f64().unwrap();
    assert!(ratio > 0.7, "espeak-ng speech ratio {ratio}");
    // 14.5 s of audio in a 60 s window: the rest is reported blind, not silent.
    let cov = &e["coverage"];
    assert!(
        (cov["seconds_analysed"].as_f64().unwrap() - 14.5).abs() < 0.2,
        "{cov}"
    );
    assert_eq!(cov["status"], "partial");
}

#[test]
fn real_recorded_voice_is_detected() {
    // alsa-utils voice prompts: 48 kHz recordings with silence between words.
    let e = mic_window("prompts.wav");
    let ratio = e["speech_ratio"].as_f64().unwrap();
    assert!(
        (0.4..0.95).contains(&ratio),
        "voice prompt speech ratio {ratio}"
    );
    if let Some(s) = sound_share(&e, "speech") {
        assert!(s > 0.5, "speech share {s}: {e}");
    }
}

#[test]
fn music_is_music_and_not_speech() {
    let e = mic_window("melody.wav");
    assert!(e["speech_ratio"].as_f64().unwrap() < 0.2, "{e}");
    if let Some(m) = sound_share(&e, "music") {
        assert!(m > 0.8, "music share {m}: {e}");
    }
}

#[test]
fn quiet_room_between_voices_is_silence() {
    // The demo microphone: speech and prompts separated by 8 s stretches at -45 dBFS.
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        "[[microphones]]\nid = \"floor\"\ndevice = \"default\"\n\n[privacy]\nwindow_secs = 120\n",
    );
    let out = dir.path().join("events.jsonl");
    replay(&cfg, &media("demo-mic.wav"), &out);
    let e = read_jsonl(&out).remove(0);
    assert_valid(&schema(), &e);
    if let (Some(sp), Some(si)) = (sound_share(&e, "speech"), sound_share(&e, "silence")) {
        assert!(sp > 0.3 && si > 0.3, "speech {sp}, silence {si}: {e}");
    }
}

#[test]
fn noise_is_not_speech_and_its_level_is_measured() {
    let e = mic_window("noise.wav");
    assert!(e["speech_ratio"].as_f64().unwrap() < 0.05, "{e}");
    // scripts/fetch-media.sh makes this noise at exactly -30 dBFS RMS.
    let mean = e["level_dbfs"]["mean"].as_f64().unwrap();
    assert!((mean + 30.0).abs() < 0.5, "level {mean} dBFS");
    if let Some(o) = sound_share(&e, "other") {
        assert!(
            o > 0.8,
            "noise is neither speech, music, crowd nor silence: {o}: {e}"
        );
    }
}

#[test]
fn h264_mp4_replays_like_the_original() {
    // An H.264 MP4 made from the first 10 s of vtest.avi (Debian's ffmpeg has libx264).
    let dir = tempfile::tempdir().unwrap();
    let mp4 = dir.path().join("walkway.mp4");
    let st = std::process::Command::new("ffmpeg")
        .args(["-nostdin", "-loglevel", "error", "-y", "-t", "10", "-i"])
        .arg(media("vtest.avi"))
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
        ])
        .arg(&mp4)
        .status()
        .unwrap();
    assert!(st.success());
    let cfg = write_config(
        dir.path(),
        &format!("{}\n[privacy]\nwindow_secs = 10\n", walkway_camera(5)),
    );
    let out = dir.path().join("events.jsonl");
    replay(&cfg, &mp4, &out);
    let events = read_jsonl(&out);
    assert_eq!(events.len(), 1);
    assert_valid(&schema(), &events[0]);
    assert_eq!(events[0]["coverage"]["frames_analysed"], 50);
    let max = events[0]["people"]["max"].as_u64().unwrap();
    assert!(
        (5..=9).contains(&max),
        "people max {max} (the AVI gives 7 in this window)"
    );
}

/// Windows of the walkway's first 20 s at 2 fps, the models in `precision`.
fn walkway_in(precision: &str, dir: &std::path::Path) -> Vec<Value> {
    let dir = dir.join(precision);
    std::fs::create_dir_all(&dir).unwrap();
    let clip = dir.join("clip.avi");
    let st = std::process::Command::new("ffmpeg")
        .args(["-nostdin", "-loglevel", "error", "-y", "-t", "20", "-i"])
        .arg(media("vtest.avi"))
        .args(["-c", "copy"])
        .arg(&clip)
        .status()
        .unwrap();
    assert!(st.success());
    let body = walkway_camera(2).replace(
        &media("vtest.avi").display().to_string(),
        &clip.display().to_string(),
    );
    let cfg = write_config(&dir, &format!("{body}\n[privacy]\nwindow_secs = 10\n"));
    let text = std::fs::read_to_string(&cfg).unwrap();
    let text = text.replace(
        "[models]\n",
        &format!("[models]\nprecision = \"{precision}\"\n"),
    );
    std::fs::write(&cfg, text).unwrap();
    let out = dir.join("events.jsonl");
    replay(&cfg, &clip, &out);
    read_jsonl(&out)
}

#[test]
fn f16_models_count_like_f32_on_real_video() {
    // tract's f32_to_f16 transform at load (what `auto` takes on a Pi 5 / RK3588): on x86 its
    // f16 is emulated (slow, ~25x), so a short clip; the acceptance rule of the f16 variant.
    let dir = tempfile::tempdir().unwrap();
    let (f32w, f16w) = (walkway_in("f32", dir.path()), walkway_in("f16", dir.path()));
    assert_eq!(f32w.len(), 2);
    assert_eq!(f32w.len(), f16w.len());
    for (a, b) in f32w.iter().zip(&f16w) {
        assert_eq!(
            a["coverage"]["frames_analysed"],
            b["coverage"]["frames_analysed"]
        );
        let max = |e: &Value| e["people"]["max"].as_i64().unwrap();
        let crossings = |e: &Value| {
            e["lines"][0]["in"].as_i64().unwrap_or(0) + e["lines"][0]["out"].as_i64().unwrap_or(0)
        };
        assert!(
            (max(a) - max(b)).abs() <= 1,
            "people max f32 {} f16 {}",
            max(a),
            max(b)
        );
        assert!(
            (crossings(a) - crossings(b)).abs() <= 1,
            "crossings f32 {} f16 {}",
            crossings(a),
            crossings(b)
        );
    }
}

#[test]
fn flac_audio_gives_the_same_signals_as_wav() {
    let dir = tempfile::tempdir().unwrap();
    let flac = dir.path().join("speech.flac");
    let st = std::process::Command::new("sox")
        .arg(media("speech.wav"))
        .arg(&flac)
        .status()
        .unwrap();
    assert!(st.success());
    let cfg = write_config(
        dir.path(),
        "[[microphones]]\nid = \"floor\"\ndevice = \"default\"\n",
    );
    let out = dir.path().join("events.jsonl");
    replay(&cfg, &flac, &out);
    let from_flac = &read_jsonl(&out)[0];
    let from_wav = mic_window("speech.wav");
    assert_eq!(
        from_flac["speech_ratio"], from_wav["speech_ratio"],
        "lossless: identical samples, identical signals"
    );
    assert_eq!(from_flac["level_dbfs"], from_wav["level_dbfs"]);
}

#[test]
fn run_without_a_broker_keeps_events_in_the_outbox() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        &format!(
            "[[microphones]]\nid = \"floor\"\nfile = \"{}\"\n[privacy]\nwindow_secs = 5\n",
            media("noise.wav").display()
        ),
    );
    for _ in 0..2 {
        let o = vitrine()
            .args(["run", "--config"])
            .arg(&cfg)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let events = outbox_events(&dir.path().join("state"));
    let schema = schema();
    events.iter().for_each(|e| assert_valid(&schema, e));
    let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert!(seqs.len() >= 6);
    assert_eq!(
        seqs,
        (1..=seqs.len() as u64).collect::<Vec<_>>(),
        "appended across runs, seq contiguous"
    );
}

/// One camera mounted on a display, the whole image its viewing area; window events of `clip`.
fn attention_windows(clip: &std::path::Path) -> Vec<Value> {
    attention_windows_with(clip, "")
}

/// `display` is added to the display's table (e.g. `expressions = true`).
fn attention_windows_with(clip: &std::path::Path, display: &str) -> Vec<Value> {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        &format!(
            "[[cameras]]\nid = \"shelf-cam\"\nfile = \"{}\"\nfps = 10\n\n[[cameras.displays]]\nid = \"shelf\"\npolygon = [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]\n{display}\n\n[privacy]\nwindow_secs = 10\nk_min = 1\n",
            clip.display()
        ),
    );
    let out = dir.path().join("events.jsonl");
    replay(&cfg, clip, &out);
    let events = read_jsonl(&out);
    for e in &events {
        assert_valid(&schema(), e);
    }
    events
}

fn attention_sum(events: &[Value], key: &str) -> u64 {
    sum(events, |e| e["displays"][0]["attention"][key].as_u64())
}

#[test]
fn attention_counts_shoppers_facing_the_display_and_not_those_turned_away() {
    // Intel's sample clips (CC BY 4.0): faces have no Debian/PyPI source, so this runs where the
    // evaluation media are (CI, development checkouts) and says so elsewhere.
    let (Some(facing), Some(turned)) = (
        eval_media("video/intel-previews/face-demographics-walking-and-pause.gif"),
        eval_media("video/intel-previews/head-pose-face-detection-female-and-male.gif"),
    ) else {
        eprintln!("SKIPPED: evaluation media (../shared/media or VITRINE_EVAL_MEDIA) not present");
        return;
    };
    // Three people walking toward the camera, looking into it.
    let events = attention_windows(&facing);
    let (passers, lookers) = (
        attention_sum(&events, "passers"),
        attention_sum(&events, "lookers"),
    );
    assert!(
        passers >= 2 && lookers >= 2,
        "passers {passers}, lookers {lookers}: {events:?}"
    );
    let looking = &events[0]["displays"][0]["attention"]["looking_seconds"];
    assert!(looking["max"].as_f64().unwrap() >= 1.0, "{looking}");
    assert!(
        events
            .iter()
            .all(|e| e["displays"][0]["attention"].get("expressions").is_none()),
        "expressions are off unless the display opts in"
    );
    // Two people facing each other (heads turned ~28° from the camera): they pass, nobody looks.
    let events = attention_windows(&turned);
    let (passers, lookers) = (
        attention_sum(&events, "passers"),
        attention_sum(&events, "lookers"),
    );
    assert!(passers >= 2, "passers {passers}: {events:?}");
    let turned_look = events[0]["displays"][0]["attention"]["looking_seconds"]["max"]
        .as_f64()
        .unwrap_or(0.0);
    eprintln!(
        "facing: looking max {}; turned: lookers {lookers}, looking max {turned_look}",
        looking["max"]
    );
    assert!(
        lookers <= 1 && turned_look < 0.5 * looking["max"].as_f64().unwrap(),
        "turned heads look far less: {events:?}"
    );
}

#[test]
fn expressions_count_each_looker_once_and_only_where_the_display_opts_in() {
    let Some(facing) = eval_media("video/intel-previews/face-demographics-walking-and-pause.gif")
    else {
        eprintln!("SKIPPED: evaluation media (../shared/media or VITRINE_EVAL_MEDIA) not present");
        return;
    };
    let events =
        attention_windows_with(&facing, "expressions = true\nexpressions_min_face_px = 48");
    let mut read = 0;
    for e in &events {
        let a = &e["displays"][0]["attention"];
        let x = &a["expressions"];
        let classes = [
            "neutral", "happy", "surprise", "sad", "angry", "fear", "disgust", "unread",
        ];
        let total: u64 = classes.iter().map(|c| x[c].as_u64().unwrap()).sum();
        // k_min = 1: nothing suppressed; every looker has one dominant expression or is unread.
        assert_eq!(total, a["lookers"].as_u64().unwrap(), "{a}");
        read += total - x["unread"].as_u64().unwrap();
        eprintln!("expressions: {x}");
    }
    assert!(
        read >= 2,
        "the walkers' faces are large enough to read: {events:?}"
    );
}

/// The line, zone and display totals of a replay of the walkway with `extra` camera settings,
/// and the staff section's people and line crossings (in + out).
fn walkway_with_staff(extra: &str) -> ([u64; 4], Option<(u64, u64)>) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        &format!(
            "{}{extra}\n[privacy]\nwindow_secs = 10\nk_min = 1\n",
            walkway_camera(5)
        ),
    );
    let out = dir.path().join("events.jsonl");
    replay(&cfg, &media("vtest.avi"), &out);
    let events = read_jsonl(&out);
    let schema = schema();
    for e in &events {
        assert_valid(&schema, e);
    }
    let totals = [
        sum(&events, |e| e["lines"][0]["in"].as_u64())
            + sum(&events, |e| e["lines"][0]["out"].as_u64()),
        sum(&events, |e| e["zones"][0]["visits"].as_u64()),
        sum(&events, |e| e["displays"][0]["visits"].as_u64()),
        sum(&events, |e| e["people"]["max"].as_u64()),
    ];
    let staff = events[0].get("staff").map(|_| {
        (
            sum(&events, |e| e["staff"]["people"].as_u64()),
            sum(&events, |e| e["staff"]["lines"][0]["in"].as_u64())
                + sum(&events, |e| e["staff"]["lines"][0]["out"].as_u64()),
        )
    });
    (totals, staff)
}

/// Staff are left out of every customer count from the frame they become staff, and their
/// movements are counted apart. With the whole picture a staff area everyone is staff from
/// their first frame: every customer count is 0, and the staff crossings are exactly the
/// crossings counted without the rule (the same tracker on the same frames). With a staff area
/// on the far west of the pavement, the people who walk there leave the customer counts.
#[test]
fn staff_are_left_out_of_every_customer_count_and_counted_apart() {
    let (everyone, none) = walkway_with_staff("");
    assert!(none.is_none(), "no staff section without a staff rule");
    assert!(everyone.iter().all(|n| *n > 0), "{everyone:?}");
    let whole = "\n[cameras.staff]\nareas = [{ id = \"all\", polygon = [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]] }]\n";
    let (customers, staff) = walkway_with_staff(whole);
    assert_eq!(customers, [0; 4], "customer counts with everyone staff");
    let (people, crossings) = staff.expect("a staff section");
    assert!(people >= 8, "staff people {people}");
    assert_eq!(
        crossings, everyone[0],
        "staff crossings against the crossings without the rule"
    );
    let west = "\n[cameras.staff]\nareas = [{ id = \"west-end\", polygon = [[0.0, 0.25], [0.12, 0.25], [0.12, 0.6], [0.0, 0.6]] }]\n";
    let (customers, staff) = walkway_with_staff(west);
    let (people, crossings) = staff.expect("a staff section");
    assert!(
        people > 0 && crossings > 0,
        "staff {people} people, {crossings} crossings"
    );
    assert!(
        customers[0] < everyone[0] && customers[1] < everyone[1],
        "{customers:?} of {everyone:?}"
    );
    // A crossing made before someone became staff stays a customer's: together they are at
    // least what was counted without the rule, and at most a few more.
    let together = customers[0] + crossings;
    eprintln!("without a rule {everyone:?}; west-end staff area: customers {customers:?}, staff {people} people {crossings} crossings");
    assert!(
        (everyone[0]..=everyone[0] + 4).contains(&together),
        "customers {} + staff {crossings} against {}",
        customers[0],
        everyone[0]
    );
}

/// The store's occupancy from the walkway line as the entrance (PETS2009 from above; the
/// line's `in` side stands for the store): every window's count is the last one plus the
/// window's crossings in, minus out, plus its published corrections — nothing changes the
/// count unsaid —, the crossings are the line's own, live values are paced, every payload is
/// valid, and the capacity alert is raised when the count goes above the capacity.
#[test]
fn store_occupancy_follows_the_entrances_with_every_correction_published() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        &format!(
            "{}\n[occupancy]\nentrances = [\"walkway/walkway-x045\"]\ncapacity = 2\n\n[privacy]\nwindow_secs = 10\nk_min = 1\n",
            walkway_camera(5)
        ),
    );
    let out = dir.path().join("events.jsonl");
    replay(&cfg, &media("vtest.avi"), &out);
    let events = read_jsonl(&out);
    let occupancy = schema_named("occupancy.v1.json");
    let alert = schema_named("alert.v1.json");
    let of =
        |schema: &str| -> Vec<&Value> { events.iter().filter(|e| e["schema"] == schema).collect() };
    let windows = of("vitrine.window.v1");
    let occ = of("vitrine.occupancy.v1");
    for e in &occ {
        assert_valid(&occupancy, e);
    }
    let occ_windows: Vec<&&Value> = occ.iter().filter(|e| e["kind"] == "window").collect();
    assert_eq!(occ_windows.len(), windows.len(), "one occupancy per window");
    let line = |key: &str| sum(&events, |e| e.get("lines").and_then(|l| l[0][key].as_u64()));
    let occ_sum = |key: &str| {
        occ_windows
            .iter()
            .filter_map(|e| e[key].as_u64())
            .sum::<u64>()
    };
    assert_eq!(occ_sum("in"), line("in"));
    assert_eq!(occ_sum("out"), line("out"));
    assert_eq!(occ_sum("groups_in"), line("groups_in"));
    assert!(occ_sum("groups_in") <= occ_sum("in"));
    let mut before = 0i64;
    for e in &occ_windows {
        let corrections: i64 = e["adjustments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["people"].as_i64().unwrap())
            .sum();
        let now = e["people"].as_i64().unwrap();
        assert_eq!(
            now,
            before + e["in"].as_i64().unwrap() - e["out"].as_i64().unwrap() + corrections,
            "{e}"
        );
        before = now;
    }
    // Seconds of the day of an RFC 3339 time (the replay stays within one day).
    let second = |t: &str| -> u64 {
        t[11..19]
            .split(':')
            .fold(0, |acc, p| acc * 60 + p.parse::<u64>().unwrap())
    };
    let live: Vec<u64> = occ
        .iter()
        .filter(|e| e["kind"] == "live")
        .map(|e| second(e["at"].as_str().unwrap()))
        .collect();
    assert!(!live.is_empty());
    assert!(live.windows(2).all(|w| w[1] >= w[0] + 4), "{live:?}");
    let max = occ_windows
        .iter()
        .filter_map(|e| e["max"].as_u64())
        .max()
        .unwrap();
    let raised: Vec<&Value> = of("vitrine.alert.v1")
        .into_iter()
        .filter(|a| a["source_id"] == "store" && a["alert"] == "capacity")
        .filter(|a| a["state"] == "raised")
        .collect();
    for a in &raised {
        assert_valid(&alert, a);
    }
    assert_eq!(max > 2, !raised.is_empty(), "max {max}, alerts {raised:?}");
    eprintln!(
        "occupancy: {} windows, in {} out {}, max {max}, {} live values, {} capacity alerts",
        occ_windows.len(),
        occ_sum("in"),
        occ_sum("out"),
        live.len(),
        raised.len()
    );
}
