//! Shopper signals as pure state machines.
//!
//! Invariants (see ARCHITECTURE.md): this crate does no IO and reads no clock: every function
//! takes the time it needs as an argument. What leaves it (`event`) is aggregate only: no track
//! id, box, face, pixel or sample, and no timestamp finer than the window — except an alert,
//! stamped to the second, which carries one aggregate of at least `k_min` (see `alert`).

pub mod alert;
pub mod assign;
pub mod attention;
pub mod audio;
pub mod audit;
pub mod cadence;
pub mod event;
pub mod federated;
pub mod forecast;
pub mod geom;
pub mod occupancy;
pub mod placement;
pub mod scene;
pub mod track;
pub mod window;

pub use audio::AudioSignals;
pub use event::{Body, WindowEvent};
pub use scene::CameraSignals;
pub use track::{Detection, Tracker};
pub use window::Windower;
