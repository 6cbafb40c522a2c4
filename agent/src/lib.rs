//! The `vitrine` agent: commands, the threaded pipeline around the pure signal state
//! machines, sequencing and MQTT publishing. See ARCHITECTURE.md.

pub mod analyser;
pub mod bench;
pub mod bench_capacity;
pub mod bench_models;
pub mod commands;
pub mod cputime;
pub mod demo;
pub mod display;
pub mod eval;
pub mod metrics;
pub mod outbox;
pub mod pipeline;
pub mod probe;
pub mod publish;
pub mod queue;
pub mod seq;
pub mod status;
pub mod supervise;
