//! Vitrine's reference ingest: the consumer side of the MQTT contract
//! (`signals/schema/asyncapi.yaml`). Shared subscriptions split the load between instances,
//! PostgreSQL stores each event once per idempotency key, gap records and the device's seq
//! numbers account for what never arrived, the last will marks a box offline.
//!
//! `message` is pure (topic + payload → row or rejection), `store` is the database,
//! `consumer` the MQTT loop around them.

pub mod consumer;
pub mod local;
pub mod message;
pub mod pos;
pub mod report;
pub mod serve;
pub mod store;
pub use tokio_postgres;
