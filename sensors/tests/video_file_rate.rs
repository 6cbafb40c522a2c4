//! A recording is delivered at the rate it is configured for, however slow: a time-lapse with
//! a frame every 15 minutes (the power-cut rig's and a store's overnight camera) gives one
//! frame per 15 minutes of media time, not the old floor's frame every 100 s.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

use vitrine_sensors::video_file::VideoFile;
use vitrine_sensors::{FrameSource, Pacing};

mod common;
use common::media;

#[test]
fn slow_time_lapse_is_delivered_at_its_own_rate_not_a_floor() {
    let dir = tempfile::tempdir().unwrap();
    let lapse = dir.path().join("lapse.mkv");
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-nostdin", "-y", "-i"])
        .arg(media("vtest.avi"))
        .args(["-vf", "setpts=N*900/TB,scale=192:144", "-r", "1/900"])
        .args(["-frames:v", "6", "-c:v", "mpeg4", "-q:v", "5"])
        .arg(&lapse)
        .output()
        .expect("ffmpeg runs (scripts/setup.sh installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let mut v = VideoFile::open(&lapse, 1.0 / 900.0, None, Pacing::AsFastAsPossible).unwrap();
    let mut times = Vec::new();
    while let Some(f) = v.next_frame().unwrap() {
        times.push(f.t_ms);
    }
    assert!(
        (5..=6).contains(&times.len()),
        "one frame per 15 minutes of a 6-frame time-lapse, got {} ({times:?})",
        times.len()
    );
    for pair in times.windows(2) {
        let step = pair[1] - pair[0];
        assert!((899_000..=901_000).contains(&step), "frames {times:?}");
    }
}
