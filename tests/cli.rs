//! `vitrine check-config` and argument handling, through the real binary.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;

fn check(path: &std::path::Path) -> (i32, String, String) {
    let out = vitrine().arg("check-config").arg(path).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn documented_example_configs_are_valid() {
    for name in ["store-entrance.toml", "minimal.toml"] {
        let (code, out, err) = check(&repo().join("firmware-config/examples").join(name));
        assert_eq!(code, 0, "{name}: {out}{err}");
        assert!(out.contains(": ok"), "{out}");
    }
    // The example's forecast calendar is read and summed up for the technician.
    let (_, out, _) = check(&repo().join("firmware-config/examples/store-entrance.toml"));
    assert!(
        out.contains("forecast calendar: 2 named day(s) from 2026-12-25 to 2026-12-31"),
        "{out}"
    );
}

#[test]
fn demo_config_is_valid_beside_its_media() {
    // The demo reads examples/demo.toml from the media directory (its paths are relative).
    let dir = media("vtest.avi").parent().unwrap().to_path_buf();
    let p = dir.join("demo-check.toml");
    std::fs::copy(repo().join("firmware-config/examples/demo.toml"), &p).unwrap();
    let (code, out, err) = check(&p);
    assert_eq!(code, 0, "{out}{err}");
}

#[test]
fn bad_config_reports_every_problem_at_once_with_lines_and_exits_64() {
    let fixture = repo().join("tests/fixtures/bad-many-mistakes.toml");
    let (code, out, err) = check(&fixture);
    assert_eq!(code, 64, "stdout: {out}\nstderr: {err}");
    assert!(!err.contains("panicked"), "{err}");
    // (field, line) of every mistake in the fixture.
    let expected = [
        ("device.id", 4),
        ("cameras[0].rtsp", 9),
        ("cameras[0].fps", 10),
        ("cameras[0].width", 11),
        ("cameras[0].lines[0].to", 17),
        ("cameras[0].lines[0].in", 18),
        ("cameras[0].zones[0].polygon", 22),
        ("cameras[1].id", 25),
        ("cameras[2].fsp", 31),
        ("microphones[0].file", 35),
        ("models.detector", 38),
        ("models.detector_threshold", 39),
        ("models.precision", 40),
        ("mqtt.url", 42),
        ("mqtt.tls", 41),
        ("mqtt.qos", 43),
        ("mqtt.topic_prefix", 44),
        ("privacy.window_secs", 47),
        ("privacy.k_min", 48),
        ("outbox.max_mb", 51),
        ("telemetry", 53),
    ];
    for (field, line) in expected {
        let needle = format!("bad-many-mistakes.toml:{line}: {field}: ");
        assert!(err.contains(&needle), "missing {needle:?} in:\n{err}");
    }
    assert!(err.contains("21 problems found"), "{err}");
    assert!(
        err.contains("did you mean `fps`?"),
        "unknown keys get a suggestion:\n{err}"
    );
    assert_eq!(
        err.matches("\n      fix: ").count(),
        21,
        "every problem has a fix:\n{err}"
    );
}

#[test]
fn a_zero_length_counting_line_is_refused_by_check_config() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("line.toml");
    std::fs::write(
        &p,
        "[device]\nid = \"a\"\nstore_id = \"b\"\n[[cameras]]\nid = \"door\"\nfile = \"x.mp4\"\n\
         [[cameras.lines]]\nid = \"entry\"\nfrom = [0.4, 0.5]\nto = [0.4, 0.5]\nin = \"left\"\n",
    )
    .unwrap();
    let (code, _, err) = check(&p);
    assert_eq!(code, 64, "{err}");
    assert!(
        err.contains("line.toml:10: cameras[0].lines[0].to: "),
        "{err}"
    );
    assert!(err.contains("same point"), "{err}");
}

#[test]
fn check_config_warns_of_a_1080p_analysis_size_and_names_the_substream() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("big.toml");
    let cams =
        "[[cameras]]\nid = \"door\"\nrtsp = \"rtsp://cam/main\"\nwidth = 1920\nheight = 1080\n\
                [[cameras]]\nid = \"till\"\nrtsp = \"rtsp://cam/sub\"\nwidth = 640\nheight = 360\n";
    std::fs::write(
        &p,
        format!("[device]\nid = \"a\"\nstore_id = \"b\"\n{cams}"),
    )
    .unwrap();
    let (code, out, err) = check(&p);
    assert_eq!(code, 0, "a warning, not an error: {out}{err}");
    assert!(
        out.contains(
            "warning: camera door, camera: width x height 1920x1080: every frame is decoded"
        ),
        "{out}"
    );
    assert!(out.contains("substream URL"), "{out}");
    assert!(
        !out.contains("camera till"),
        "640x360 is what analysis needs: {out}"
    );
}

#[test]
fn syntax_error_names_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("broken.toml");
    std::fs::write(&p, "[device]\nid = \"a\"\nstore_id = \"b\n").unwrap();
    let (code, _, err) = check(&p);
    assert_eq!(code, 64);
    assert!(err.contains("broken.toml:3: (syntax)"), "{err}");
}

#[test]
fn missing_config_file_is_a_config_error() {
    let (code, _, err) = check(std::path::Path::new("/nonexistent/agent.toml"));
    assert_eq!(code, 64);
    assert!(
        err.contains("/nonexistent/agent.toml") && err.contains("cannot read"),
        "{err}"
    );
}

#[test]
fn run_with_bad_config_exits_64_without_starting() {
    let out = vitrine()
        .args(["run", "--config"])
        .arg(repo().join("tests/fixtures/bad-many-mistakes.toml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
}

#[test]
fn corrupt_model_file_is_named_with_a_fix() {
    let dir = tempfile::tempdir().unwrap();
    let models = dir.path().join("models");
    std::fs::create_dir_all(&models).unwrap();
    // A truncated copy of the real model.
    let real = std::fs::read(common::models().join("yolox_nano.onnx")).unwrap();
    std::fs::write(models.join("yolox_nano.onnx"), &real[..real.len() / 2]).unwrap();
    let cfg = dir.path().join("agent.toml");
    std::fs::write(
        &cfg,
        format!(
            "[device]\nid = \"b\"\nstore_id = \"s\"\n[[cameras]]\nid = \"c\"\nfile = \"{}\"\n[models]\ndir = \"{}\"\n",
            media("vtest.avi").display(),
            models.display()
        ),
    )
    .unwrap();
    let out = vitrine()
        .args(["replay", "--quiet", "--config"])
        .arg(&cfg)
        .arg("--input")
        .arg(media("vtest.avi"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("yolox_nano.onnx")
            && err.contains("sha256")
            && err.contains("vitrine models fetch"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn replay_of_an_unknown_camera_lists_the_known_ones() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &walkway_camera(5));
    let out = vitrine()
        .args(["replay", "--quiet", "--camera", "nope", "--config"])
        .arg(&cfg)
        .arg("--input")
        .arg(media("vtest.avi"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        err.contains("no camera nope") && err.contains("walkway"),
        "{err}"
    );
}

#[test]
fn status_section_mistakes_are_named_with_a_fix() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        &format!(
            "{}\n[status]\nmetrics = \"localhost\"\ndisplay = \"/tmp/screen.bmp\"\ndisplay_secs = 0\n",
            walkway_camera(5)
        ),
    );
    let (code, out, err) = check(&cfg);
    assert_eq!(code, 64, "{out}{err}");
    for field in ["status.metrics", "status.display", "status.display_secs"] {
        assert!(
            err.contains(&format!(": {field}: ")),
            "{field} missing:\n{err}"
        );
    }
    assert!(err.contains("127.0.0.1:9464"), "{err}");
}

#[test]
fn capture_format_and_transport_mistakes_are_named_with_a_fix() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        "[[cameras]]\nid = \"usb\"\ndevice = \"/dev/video0\"\nformat = \"h264\"\ntransport = \"udp\"\n\n[[cameras]]\nid = \"ip\"\nrtsp = \"rtsp://cam/s\"\ntransport = \"quic\"\nformat = \"mjpeg\"\n",
    );
    let (code, out, err) = check(&cfg);
    assert_eq!(code, 64, "{out}{err}");
    for (field, says) in [
        ("cameras[0].format", "is not a capture format"),
        ("cameras[0].transport", "RTSP cameras"),
        ("cameras[1].transport", "is not an RTSP transport"),
        ("cameras[1].format", "USB cameras"),
    ] {
        assert!(
            err.contains(&format!(": {field}: ")) && err.contains(says),
            "{field} / {says} missing:\n{err}"
        );
    }
    assert!(err.contains("mjpeg, yuyv, nv12"), "{err}");
}

#[test]
fn analysis_cadence_and_attention_mistakes_are_named_with_a_fix() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        "[[cameras]]\nid = \"ip\"\nrtsp = \"rtsp://cam/s\"\ndetect_every = 0\n\n[[cameras.displays]]\nid = \"shelf\"\npolygon = [[0.1, 0.1], [0.9, 0.1], [0.9, 0.9]]\ngaze_tolerance = 200\ngaze_yaw = -95\nexpressions = true\nexpressions_min_face_px = 24\n",
    );
    let (code, out, err) = check(&cfg);
    assert_eq!(code, 64, "{out}{err}");
    for (field, says) in [
        ("cameras[0].detect_every", "between 1 and 30"),
        (
            "cameras[0].displays[0].expressions_min_face_px",
            "cannot read faces under 32 px",
        ),
        ("cameras[0].displays[0].gaze_tolerance", "22.5 is the usual"),
        ("cameras[0].displays[0].gaze_yaw", "-90..90"),
    ] {
        assert!(
            err.contains(&format!(": {field}: ")) && err.contains(says),
            "{field} / {says} missing:\n{err}"
        );
    }
}

#[test]
fn an_unsupported_detector_input_size_is_named_with_the_sizes_that_work() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("agent.toml");
    std::fs::write(
        &cfg,
        "[device]\nid = \"b\"\nstore_id = \"s\"\n\n[[cameras]]\nid = \"c\"\nrtsp = \"rtsp://cam/s\"\n\n[models]\ninput_size = 300\n",
    )
    .unwrap();
    let (code, out, err) = check(&cfg);
    assert_eq!(code, 64, "{out}{err}");
    assert!(
        err.contains(": models.input_size: ") && err.contains("256, 320, 384, 416, 512, 640"),
        "{err}"
    );
}

/// Under systemd the TLS key comes from `LoadCredential=`: the config names it through
/// `$CREDENTIALS_DIRECTORY`, which exists only for the service's processes.
#[test]
fn tls_key_from_the_systemd_credentials_directory() {
    let dir = tempfile::tempdir().unwrap();
    let creds = dir.path().join("creds");
    std::fs::create_dir(&creds).unwrap();
    for f in ["ca.pem", "client.pem"] {
        std::fs::write(dir.path().join(f), "-----BEGIN CERTIFICATE-----\n").unwrap();
    }
    let key = creds.join("mqtt-client.key");
    std::fs::write(&key, "-----BEGIN PRIVATE KEY-----\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o400)).unwrap();
    let cfg = write_config(
        dir.path(),
        &format!(
            "{}\n[mqtt]\nurl = \"mqtts://broker.example:8883\"\n[mqtt.tls]\nca = \"ca.pem\"\ncert = \"client.pem\"\nkey = \"$CREDENTIALS_DIRECTORY/mqtt-client.key\"\n",
            walkway_camera(5)
        ),
    );
    ok(vitrine()
        .arg("check-config")
        .arg(&cfg)
        .env("CREDENTIALS_DIRECTORY", &creds));
    let bad = vitrine()
        .arg("check-config")
        .arg(&cfg)
        .env_remove("CREDENTIALS_DIRECTORY")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(bad.status.code(), Some(64), "{err}");
    assert!(
        err.contains("mqtt.tls.key") && err.contains("LoadCredential="),
        "{err}"
    );
}

#[test]
fn bad_store_operations_settings_are_all_reported_at_once_and_exit_64() {
    let (code, out, err) = check(&repo().join("tests/fixtures/bad-operations.toml"));
    assert_eq!(code, 64, "stdout: {out}\nstderr: {err}");
    for (field, line) in [
        ("device.timezone", 5),
        ("cameras[0].queues[0].service.polygon", 24),
        ("cameras[0].queues[0].abandon_secs", 25),
        ("cameras[0].heatmap.rowz", 29),
        ("cameras[0].funnel.entered", 32),
        ("cameras[0].funnel.engaged[1]", 33),
        ("cameras[0].alerts[0]", 36),
        ("cameras[0].alerts[1].above", 45),
        ("cameras[0].alerts[1].clear_below", 46),
        ("cameras[0].alerts[2]", 48),
        ("cameras[0].staff.areas[0].id", 53),
        ("cameras[0].staff.dwell_minutes", 54),
        ("occupancy.entrances[0]", 57),
        ("occupancy.entrances[1]", 57),
        ("occupancy.capacity", 58),
        ("occupancy.opens", 59),
    ] {
        assert!(
            err.contains(&format!(":{line}: {field}:")),
            "{field} (line {line}) missing:\n{err}"
        );
    }
    assert!(
        err.contains("did you mean `entrance`") || err.contains("this camera has: entrance"),
        "{err}"
    );
    assert!(err.contains("k-anonymity"), "{err}");
}

#[test]
fn huge_setup_times_to_live_are_refused_with_the_range_not_a_panic() {
    for (flag, value) in [
        ("--token-ttl", "1000000000years"),
        ("--session-ttl", "584942417355y"),
        ("--token-ttl", "0s"),
    ] {
        let out = vitrine()
            .args(["setup", "--config", "/nonexistent/agent.toml", flag, value])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flag} {value}: {err}");
        assert!(
            err.contains(flag) && err.contains("fix:") && !err.contains("panicked"),
            "{flag} {value}: {err}"
        );
    }
}
