//! The `vitrine` agent. Layers, each importing only from the ones before it (a tidy test
//! checks this; see ARCHITECTURE.md):
//!
//! 1. leaves: [`clock`], [`telemetry`];
//! 2. components: [`outbox`], [`pipeline`], [`remote`], [`uplink`], [`observe`];
//! 3. [`daemon`]: wires the components into the running agent;
//! 4. [`cmd`]: the commands;
//! 5. [`tools`]: developer tooling (benchmarks, the accuracy suite, the demo harness), kept
//!    out of the daemon's code paths.

// No unsafe code in the daemon: a build without the `tools` feature forbids it crate-wide.
// With the tooling, unsafe is denied everywhere but `tools::cputime` (getrusage); `main`
// makes one libc call (mallopt) before anything else runs. CI lints both builds.
#![cfg_attr(not(feature = "tools"), forbid(unsafe_code))]
#![cfg_attr(feature = "tools", deny(unsafe_code))]

pub mod clock;
pub mod telemetry;

pub mod observe;
pub mod outbox;
pub mod pipeline;
pub mod remote;
pub mod uplink;

pub mod daemon;

pub mod cmd;

#[cfg(feature = "tools")]
pub mod tools;
