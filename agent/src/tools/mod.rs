//! Developer tooling: benchmarks, the accuracy suite, the demo harness. Nothing in the
//! daemon's code paths imports from here.

pub mod bench;
pub mod bench_alerts;
pub mod bench_capacity;
pub mod bench_fleet;
pub mod bench_models;
pub mod cputime;
pub mod demo;
pub mod eval;
pub mod fleet;
