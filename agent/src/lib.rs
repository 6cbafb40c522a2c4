//! The `vitrine` agent. Layers, each importing only from the ones before it (a tidy test
//! checks this; see ARCHITECTURE.md):
//!
//! 1. leaves: [`clock`], [`telemetry`];
//! 2. components: [`outbox`], [`pipeline`], [`remote`], [`federate`], [`uplink`], [`observe`];
//! 3. [`daemon`]: wires the components into the running agent;
//! 4. [`cmd`]: the commands.
//!
//! The laboratory (benchmarks, the accuracy suite, the demo harness) is its own crate,
//! `lab/` (`vitrine-lab`), which links this library; nothing here knows it.

// No unsafe code in the daemon's library; `main` makes one libc call (mallopt) before
// anything else runs.
#![forbid(unsafe_code)]

pub mod clock;
pub mod telemetry;

pub mod federate;
pub mod observe;
pub mod outbox;
pub mod pipeline;
pub mod remote;
pub mod uplink;

pub mod daemon;

pub mod cmd;
