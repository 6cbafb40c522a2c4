//! Access units no picture refers to, on a real encoded stream: 60 frames of the PETS2009
//! pedestrian video encoded by x264 with B-frames that are not references (as a camera's
//! temporal layers or a recording's B-frames are). `h264::disposable` must name exactly the
//! B-frames, and decoding the stream without them must give exactly the other pictures, byte
//! for byte: skipping them when they are not due changes nothing analysis sees.

#![cfg(feature = "rtsp")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use vitrine_sensors::h264::{disposable, nal_units, H264Decoder};

mod common;
use common::{ffmpeg, media};

/// The stream's access units: each picture's slice with the parameter sets and SEI before it.
fn access_units(stream: &[u8]) -> Vec<Vec<u8>> {
    let mut units = Vec::new();
    let mut unit = Vec::new();
    for nal in nal_units(stream) {
        unit.extend_from_slice(nal);
        let header = nal.iter().skip_while(|&&b| b == 0).nth(1).copied();
        if matches!(header.map(|h| h & 0x1f), Some(1 | 5)) {
            units.push(std::mem::take(&mut unit));
        }
    }
    units
}

fn decode(units: &[&Vec<u8>]) -> Vec<Vec<u8>> {
    let mut d = H264Decoder::new().unwrap();
    let mut pictures = Vec::new();
    for u in units {
        let mut rgb = Vec::new();
        if d.decode(u, true, &mut rgb).unwrap().is_some() {
            pictures.push(rgb);
        }
    }
    pictures
}

#[test]
fn non_reference_frames_are_found_and_decoding_without_them_changes_no_other_picture() {
    let v = media("vtest.avi");
    let stream = ffmpeg(&[
        "-i",
        v.to_str().unwrap(),
        "-frames:v",
        "60",
        "-vf",
        "scale=320:240",
        "-c:v",
        "libx264",
        "-bf",
        "2",
        "-x264-params",
        "b-pyramid=0:scenecut=0:keyint=30",
        "-f",
        "h264",
    ]);
    let units = access_units(&stream);
    assert_eq!(units.len(), 60, "one access unit per frame");
    let skip: Vec<bool> = units.iter().map(|u| disposable(u)).collect();
    let skipped = skip.iter().filter(|&&s| s).count();
    // x264 with two B-frames between references: about two in three frames are B-frames
    // (fewer at the two keyframes and where it chose otherwise), never an IDR picture.
    assert!((20..=40).contains(&skipped), "{skipped} of 60 disposable");
    assert!(!skip[0] && !skip[30], "keyframes are never disposable");

    let all = decode(&units.iter().collect::<Vec<_>>());
    let kept = decode(
        &units
            .iter()
            .zip(&skip)
            .filter(|(_, &s)| !s)
            .map(|(u, _)| u)
            .collect::<Vec<_>>(),
    );
    assert!(
        kept.len() + 3 >= 60 - skipped,
        "{} of {} pictures",
        kept.len(),
        60 - skipped
    );
    // Every picture decoded without the B-frames is, byte for byte, the same picture decoded
    // with them, in the same order.
    let mut at = all.iter();
    for (i, p) in kept.iter().enumerate() {
        assert!(
            at.any(|q| q == p),
            "picture {i} decoded without the B-frames differs from every later picture decoded with them"
        );
    }
}
