//! Watching the running agent from outside the data path: the watchdog and systemd
//! notifications (`supervise`, deciding with `liveness`), the Prometheus endpoint (`metrics`)
//! and the status display (`display`). All of them read a [`Shared`] snapshot.

pub mod display;
pub mod liveness;
pub mod metrics;
mod shared;
pub mod supervise;

pub use liveness::{Beat, Liveness, Verdict};
pub use shared::{OutboxFigures, Shared, OUTBOX_PATIENCE};
