//! Vitrine's laboratory: the demo harness, benchmarks, the accuracy suite and the fleet
//! simulator, beside the daemon rather than in it. It links the agent's library (`vitrine`)
//! and runs its real pipeline, outbox and uplink; the agent never imports from here (its
//! package and its Debian package leave the lab out). The `vitrine-lab` binary's commands are
//! in `main.rs`/`cli.rs`.

// Unsafe is denied everywhere but `cputime` (getrusage).
#![deny(unsafe_code)]

pub mod bench;
pub mod bench_alerts;
pub mod bench_capacity;
pub mod bench_fleet;
pub mod bench_models;
pub mod cputime;
pub mod demo;
pub mod eval;
pub mod fleet;

/// A binary of the workspace beside this one (`vitrine`, `vitrine-ingest`): the benchmarks run
/// the real daemon and ingest as processes, built with the same profile.
pub fn sibling_bin(name: &str) -> anyhow::Result<std::path::PathBuf> {
    let me = std::env::current_exe()?;
    let p = me.with_file_name(name);
    anyhow::ensure!(
        p.is_file(),
        "{} is missing; fix: cargo build -p {name} (same profile as vitrine-lab)",
        p.display()
    );
    Ok(p)
}
