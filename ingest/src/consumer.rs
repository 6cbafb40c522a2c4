//! The MQTT v5 side: shared subscriptions, one batch at a time, acknowledged only once it is
//! committed in PostgreSQL.
//!
//! Delivery from the broker is at least once; the database makes it exactly once (the
//! idempotency key is the primary key). A message is PUBACKed only after the transaction that
//! stored it committed; a redelivery is not a second row. Several instances share the load
//! through `$share/{group}/...`. With a clean session (the default) a killed instance's
//! share goes to the others at once, and what it held unacknowledged is redelivered only if
//! the broker does so for shared subscriptions (the MQTT 5 "SHOULD"; Mosquitto 2.0.11 does
//! not: those few seqs show in `missing_seqs`). With a persistent session
//! (`session_expiry_secs`) the broker keeps them for the instance's return.

use std::time::Duration;

use rumqttc::v5::mqttbytes::v5::{Packet, Publish};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, Event, MqttOptions};

use crate::message::{self, Incoming};
use crate::store::{self, Batch, RejectRow, Written};

#[derive(Debug, Clone)]
pub struct Options {
    pub host: String,
    pub port: u16,
    pub client_id: String,
    /// The shared subscription group: instances in one group split the messages.
    pub group: String,
    pub prefix: String,
    pub dsn: String,
    /// Most messages in one transaction (and unacknowledged at the broker: receive maximum).
    pub batch: u16,
    /// Longest wait for a batch to fill.
    pub linger: Duration,
    /// How long the broker keeps this instance's session (and what it has not acknowledged)
    /// after a disconnection; 0: a clean session each time.
    pub session_expiry_secs: u32,
}

/// The topic filters: events through the shared group (QoS 1); statuses on every instance
/// (retained messages are not delivered to shared subscriptions, and a status is an
/// idempotent upsert) at QoS 0: a status is state the broker retains and sends again on every
/// subscription, and a flood of a fleet's retained statuses at QoS 1 on subscription was seen
/// to leave Mosquitto 2.0.11 sending nothing more to the instance (its in-flight quota).
pub fn filters(o: &Options) -> Vec<(String, QoS)> {
    let p = &o.prefix;
    let shared = |f: &str| (format!("$share/{}/{p}/+/+/{f}", o.group), QoS::AtLeastOnce);
    vec![
        shared("window/+"),
        shared("alert/+"),
        shared("audit/+"),
        shared("forecast/+"),
        shared("occupancy/+"),
        // The store's point of sale: {prefix}/{store}/pos/transaction.
        shared("transaction"),
        shared("gap"),
        shared("config/result"),
        (format!("{p}/+/+/status"), QoS::AtMostOnce),
    ]
}

/// Turn received messages into a batch to store.
pub fn batch_of(prefix: &str, msgs: &[Publish]) -> Batch {
    let mut b = Batch::default();
    for m in msgs {
        let topic = String::from_utf8_lossy(&m.topic).into_owned();
        match message::classify(prefix, &topic, &m.payload) {
            Ok(Incoming::Event(e)) => b.events.push(e),
            Ok(Incoming::Status(s)) => b.statuses.push(s),
            Ok(Incoming::Transaction(t)) => b.transactions.push(t),
            Ok(Incoming::Ignored) => {}
            Err(r) => {
                tracing::warn!(topic, reason = %r, "message rejected");
                b.rejected.push(RejectRow {
                    topic,
                    reason: r.reason,
                    bytes: m.payload.len(),
                    excerpt: message::excerpt(&m.payload),
                })
            }
        }
    }
    b
}

/// Run until the task is dropped; reconnects to both sides forever.
pub async fn run(o: Options) -> anyhow::Result<()> {
    let mut db = store::connect(&o.dsn).await?;
    let mut total = Written::default();
    loop {
        match session(&o, &mut db, &mut total).await {
            Ok(()) => return Ok(()),
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "ingest session ended; reconnecting in 1 s");
                tokio::time::sleep(Duration::from_secs(1)).await;
                if db.is_closed() {
                    match store::connect(&o.dsn).await {
                        Ok(c) => db = c,
                        Err(e) => tracing::error!(error = %e, "PostgreSQL not reachable"),
                    }
                }
            }
        }
    }
}

/// One MQTT connection: receive, store, acknowledge.
async fn session(
    o: &Options,
    db: &mut tokio_postgres::Client,
    total: &mut Written,
) -> anyhow::Result<()> {
    let mut opts = MqttOptions::new(o.client_id.clone(), o.host.clone(), o.port);
    opts.set_manual_acks(true);
    // A persistent session outlives a crash: what was not acknowledged is delivered again
    // when the instance comes back under the same client id.
    opts.set_clean_start(o.session_expiry_secs == 0);
    opts.set_session_expiry_interval(Some(o.session_expiry_secs));
    opts.set_receive_maximum(Some(o.batch.max(1)));
    opts.set_max_packet_size(Some(1 << 20));
    opts.set_keep_alive(Duration::from_secs(15));
    // Only subscriptions go out; rumqttc's in-flight tables default to 65,535 entries (~13 MiB).
    opts.set_outgoing_inflight_upper_limit(16);
    // Room for every acknowledgement of a full batch (at most `batch` are unacknowledged, the
    // receive maximum) plus the subscriptions: acking never waits on the event loop, which
    // may itself be waiting for this loop to read its events.
    let (client, mut eventloop) = AsyncClient::new(opts, usize::from(o.batch.max(1)) + 64);
    // `EventLoop::poll` is not cancel-safe (a poll dropped mid-read loses what it read), so
    // it runs in its own task; the loop below waits on a channel, which is.
    let (tx, mut events) = tokio::sync::mpsc::channel(256);
    let poller = tokio::spawn(async move {
        loop {
            let ev = eventloop.poll().await;
            let failed = ev.is_err();
            if tx.send(ev).await.is_err() || failed {
                return;
            }
        }
    });
    let _abort = AbortOnDrop(poller);
    let mut pending: Vec<Publish> = Vec::new();
    let mut deadline: Option<tokio::time::Instant> = None;
    loop {
        let ev = match deadline {
            Some(d) => tokio::time::timeout_at(d, events.recv()).await.ok(),
            None => Some(events.recv().await),
        };
        let ev = match ev {
            Some(None) => anyhow::bail!("MQTT event loop ended"),
            Some(Some(ev)) => Some(ev),
            None => None,
        };
        match ev {
            Some(Ok(Event::Incoming(Packet::ConnAck(_)))) => {
                for (filter, qos) in filters(o) {
                    client.subscribe(filter, qos).await?;
                }
                tracing::info!(client = %o.client_id, group = %o.group, "ingest connected and subscribed");
            }
            Some(Ok(Event::Incoming(Packet::Publish(p)))) => {
                deadline.get_or_insert_with(|| tokio::time::Instant::now() + o.linger);
                pending.push(p);
            }
            Some(Ok(other)) => tracing::trace!(event = ?other, "mqtt"),
            Some(Err(e)) => return Err(e.into()),
            None => {}
        }
        let full = pending.len() >= usize::from(o.batch.max(1));
        let due = deadline.is_some_and(|d| tokio::time::Instant::now() >= d);
        if !pending.is_empty() && (full || due) {
            let w = store::write_or_split(db, batch_of(&o.prefix, &pending)).await?;
            // Committed: now (and only now) the broker may forget them, in the order received.
            for p in pending.drain(..) {
                client.ack(&p).await?;
            }
            *total = total.plus(w);
            tracing::debug!(?w, "batch stored");
            deadline = None;
        }
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
