//! What the sensor tests share: the real media they read and ffmpeg, the reference they
//! encode and convert with.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// A file of the test media (scripts/fetch-media.sh), or a panic that says how to get it.
pub fn media(name: &str) -> PathBuf {
    let dir = std::env::var_os("VITRINE_MEDIA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.cache/media"));
    let p = dir.join(name);
    assert!(
        p.is_file(),
        "test media {} is missing: run scripts/fetch-media.sh first (scripts/test.sh does)",
        p.display()
    );
    p
}

/// What ffmpeg writes to its standard output when run with `args`.
pub fn ffmpeg(args: &[&str]) -> Vec<u8> {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-nostdin"])
        .args(args)
        .args(["pipe:1"])
        .output()
        .expect("ffmpeg runs (scripts/setup.sh installs it)");
    assert!(
        out.status.success(),
        "ffmpeg {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}
