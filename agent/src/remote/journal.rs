//! The files that make a remote apply survive `kill -9` and power loss.
//!
//! Beside the configuration file `F`: `F.previous` (the file before the apply, kept afterwards
//! as the technician's backup) and `F.applying` (the version on trial). In the state
//! directory: `remote-config.json`, the highest version seen (replays are refused across
//! restarts). Order of an apply: backup, marker, new file, each written whole (temporary file,
//! fsync, rename, fsync of the directory). A start that finds the marker rolls back: the new
//! file never proved itself healthy.

use std::io::Write as _;
use std::path::{Path, PathBuf};

fn with_suffix(file: &Path, suffix: &str) -> PathBuf {
    let mut s = file.as_os_str().to_os_string();
    s.push(suffix);
    PathBuf::from(s)
}

/// The backup of the configuration before the last remote apply.
pub fn previous(file: &Path) -> PathBuf {
    with_suffix(file, ".previous")
}

fn marker(file: &Path) -> PathBuf {
    with_suffix(file, ".applying")
}

fn state_file(dir: &Path) -> PathBuf {
    dir.join("remote-config.json")
}

fn sync_dir(path: &Path) -> std::io::Result<()> {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => std::fs::File::open(d)?.sync_all(),
        _ => std::fs::File::open(".")?.sync_all(),
    }
}

/// Replace `path` with `bytes` whole: a crash leaves the old file or the new one, never half.
/// The new file keeps the permissions, and (when allowed: root) the owner and group, of the
/// one it replaces, so the agent's user still reads a file root rewrote; a new file is 0600.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    // Per process: the daemon (remote configuration) and `vitrine setup` may both write here.
    let tmp = with_suffix(path, &format!(".tmp{}", std::process::id()));
    {
        // A new file (a first backup) is private: a configuration can hold credentials.
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        if let Ok(meta) = std::fs::metadata(path) {
            f.set_permissions(meta.permissions())?;
            let _ = std::os::unix::fs::fchown(&f, Some(meta.uid()), Some(meta.gid()));
        }
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    sync_dir(path)
}

/// The highest version this box has seen (0 before the first request).
pub fn last_version(state_dir: &Path) -> u64 {
    #[derive(serde::Deserialize)]
    struct State {
        last_version: u64,
    }
    std::fs::read(state_file(state_dir))
        .ok()
        .and_then(|b| serde_json::from_slice::<State>(&b).ok())
        .map_or(0, |s| s.last_version)
}

pub fn set_last_version(state_dir: &Path, version: u64) -> std::io::Result<()> {
    let body = serde_json::json!({ "last_version": version }).to_string();
    write_atomic(&state_file(state_dir), body.as_bytes())
}

/// The marker's version of a save made on the box (`vitrine setup`): remote versions start
/// at 1.
pub const LOCAL: u64 = 0;

/// Start an apply: back the file up, mark the trial, write the new configuration.
pub fn begin(file: &Path, version: u64, new_text: &str) -> std::io::Result<()> {
    let old = std::fs::read(file)?;
    write_atomic(&previous(file), &old)?;
    write_atomic(&marker(file), version.to_string().as_bytes())?;
    write_atomic(file, new_text.as_bytes())
}

/// The new configuration proved healthy: end the trial (the backup stays).
pub fn commit(file: &Path) -> std::io::Result<()> {
    std::fs::remove_file(marker(file))?;
    sync_dir(file)
}

/// The trial failed: put the backup back and end the trial.
pub fn roll_back(file: &Path) -> std::io::Result<()> {
    let old = std::fs::read(previous(file))?;
    write_atomic(file, &old)?;
    std::fs::remove_file(marker(file))?;
    sync_dir(file)
}

/// At start: a trial that was interrupted (crash, `kill -9`, power loss) is rolled back.
/// Returns the version that was being tried.
pub fn recover(file: &Path) -> std::io::Result<Option<u64>> {
    let Ok(text) = std::fs::read_to_string(marker(file)) else {
        return Ok(None);
    };
    let version = text.trim().parse().unwrap_or(0);
    if previous(file).is_file() {
        roll_back(file)?;
    } else {
        std::fs::remove_file(marker(file))?;
    }
    Ok(Some(version))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_interrupted_apply_is_rolled_back_at_the_next_start() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("agent.toml");
        std::fs::write(&f, "old").unwrap();
        begin(&f, 4, "new").unwrap();
        assert_eq!(std::fs::read_to_string(&f).unwrap(), "new");
        // kill -9 here: the next start finds the marker.
        assert_eq!(recover(&f).unwrap(), Some(4));
        assert_eq!(std::fs::read_to_string(&f).unwrap(), "old");
        assert_eq!(recover(&f).unwrap(), None, "once");
    }

    #[test]
    fn a_committed_apply_keeps_the_new_file_and_a_backup() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("agent.toml");
        std::fs::write(&f, "old").unwrap();
        begin(&f, 1, "new").unwrap();
        commit(&f).unwrap();
        assert_eq!(recover(&f).unwrap(), None);
        assert_eq!(std::fs::read_to_string(&f).unwrap(), "new");
        assert_eq!(std::fs::read_to_string(previous(&f)).unwrap(), "old");
    }

    #[test]
    fn the_last_version_survives_and_starts_at_zero() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(last_version(dir.path()), 0);
        set_last_version(dir.path(), 12).unwrap();
        assert_eq!(last_version(dir.path()), 12);
    }
}
