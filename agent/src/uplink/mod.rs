//! The uplink: MQTT v5 (rumqttc) from the durable outbox to the broker. Topic layout (prefix
//! defaults to `vitrine`):
//!
//! | topic | retained | QoS | payload |
//! |---|---|---|---|
//! | `{prefix}/{store}/{device}/status` | yes | 1 | `{"state":"online"|"offline",...}`; the broker publishes the offline last will if the agent vanishes |
//! | `{prefix}/{store}/{device}/window/{source}` | no | config (1) | one window event (`signals/schema/window-event.v1.json`) |
//! | `{prefix}/{store}/{device}/health` | no | 0 | every `mqtt.health_secs`: uptime, outbox depth/age, uplink counters, sources up, frames analysed/dropped, mean inference latency |
//! | `{prefix}/{store}/{device}/alert/{source}` | no | config (1) | an alert raised or cleared, sent as soon as it is stored (`signals/schema/alert.v1.json`) |
//! | `{prefix}/{store}/{device}/audit/{source}` | no | config (1) | a technician's accuracy audit of one of the camera's lines, when they publish it (`signals/schema/audit.v1.json`) |
//! | `{prefix}/{store}/{device}/forecast/{source}` | yes | config (1) | a camera's traffic forecast, hourly (`signals/schema/forecast.v1.json`) |
//! | `{prefix}/{store}/{device}/occupancy/store` | yes | config (1) | the store's occupancy from this box's entrances, per window and live (`signals/schema/occupancy.v1.json`) |
//! | `{prefix}/{store}/{device}/gap` | no | config (1) | a gap record: events the outbox had to drop (`signals/schema/gap.v1.json`) |
//! | `{prefix}/{store}/{device}/config/result` | no | config (1) | what became of a remote configuration request (`signals/schema/config-result.v1.json`) |
//! | `{prefix}/{store}/{device}/config/set` | (sender's choice) | 1 | **subscribed** with `[remote_config]`: a signed configuration (`signals/schema/config-request.v1.json`), handed to the daemon |
//! | `{prefix}/{store}/{device}/federate/key` | yes | 1 | with `[remote_config] federated`: the box's X25519 public key for the chain prior's rounds (`federate`) |
//! | `{prefix}/{store}/{device}/federate/update` / `.../federate/reveal` | no | 1 | the box's masked update in a round / its secrets with the boxes listed missing |
//! | `{prefix}/chain/round` / `{prefix}/chain/round/missing` | no (central side) | 1 | **subscribed** with `[remote_config] federated`: a round announced / who is missing |
//! | `{prefix}/chain/prior` | yes (central side) | 1 | **subscribed** with `[remote_config]`: the chain's prior for the forecast, signed with the same key (`vitrine.chain-prior.v1`, see `remote::prior`), taken when newer than the one held |
//!
//! With `[remote_config]` the session is persistent (clean start off, 7-day expiry), so a
//! request sent while the box is offline is delivered when it reconnects.
//!
//! Delivery is at least once: a record leaves the outbox only when its PUBACK arrives. Each
//! connection uses a fresh client, and after every (re)connection everything unacknowledged
//! is sent again from the outbox (rumqttc's in-memory queue is never trusted). A PUBACK with a
//! failure reason keeps the record and raises an error in the log and the counters.

mod payloads;
pub mod session;
mod topics;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rumqttc::v5::mqttbytes::v5::{LastWill, Packet, PubAckReason};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, ConnectionError, Event, MqttOptions};
use rumqttc::{Outgoing, TlsConfiguration, Transport};
use vitrine_config::{Config, Mqtt};

use crate::outbox::{OutboxIo, SharedOutbox};
use crate::telemetry::SourceList;
use crate::telemetry::UplinkStats;
use crate::telemetry::ALERT_LATENCY;
pub use session::MAX_INFLIGHT;
use session::{Acked, Label, Session};

use topics::topic_of;
pub use topics::{Topics, GAP_SCHEMA};

fn tls(t: &vitrine_config::Tls) -> anyhow::Result<TlsConfiguration> {
    let read = |p: &std::path::Path| {
        std::fs::read(p).map_err(|e| {
            anyhow::anyhow!(
                "cannot read TLS file {}: {e}; fix: check mqtt.tls in the config",
                p.display()
            )
        })
    };
    let ca = read(&t.ca)?;
    let client_auth = match (&t.cert, &t.key) {
        (Some(c), Some(k)) => Some((read(c)?, read(k)?)),
        _ => None,
    };
    Ok(TlsConfiguration::Simple {
        ca,
        alpn: None,
        client_auth,
    })
}

/// Exponential backoff with jitter: 1 s doubling to 30 s, ±20 %.
fn backoff(attempt: u32) -> Duration {
    let base = 1000u64.saturating_mul(1 << attempt.min(5)).min(30_000);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let jitter = (u64::from(nanos) % 400) as i64 - 200; // ±20 % of 1000
    Duration::from_millis((base as i64 + base as i64 * jitter / 1000).max(100) as u64)
}

struct Conn {
    client: AsyncClient,
    /// Events of this connection. `EventLoop::poll` is not cancel-safe (a poll dropped
    /// mid-connect drops the connection), so it runs in its own task and nothing cancels it.
    events: tokio::sync::mpsc::Receiver<Result<Event, ConnectionError>>,
    poller: tokio::task::JoinHandle<()>,
    session: Session,
}

/// Where a received `config/set` request goes (payload, whether the broker retained it).
pub type RequestSink = Arc<dyn Fn(Vec<u8>, bool) + Send + Sync>;

/// Where a received chain prior goes (payload).
pub type PriorSink = Arc<dyn Fn(&[u8]) + Send + Sync>;

/// What answers one of the chain prior's round messages (the reply is published).
pub type Answer = Arc<dyn Fn(&[u8]) -> Option<Vec<u8>> + Send + Sync>;

/// A box taking part in the chain prior's rounds (the `federate` module): its public key, published
/// retained at every connection, and what answers a round (a masked update) and a missing
/// list (a reveal).
#[derive(Clone)]
pub struct Federation {
    pub key: Vec<u8>,
    pub on_round: Answer,
    pub on_missing: Answer,
}

/// How long the broker keeps a remotely configurable box's session (and the requests queued
/// for it) while the box is away.
const SESSION_EXPIRY_SECS: u32 = 7 * 24 * 3600;

pub struct Uplink {
    cfg: Config,
    requests: Option<RequestSink>,
    priors: Option<PriorSink>,
    federation: Option<Federation>,
    sources: Arc<SourceList>,
    started: std::time::Instant,
    mqtt: Mqtt,
    topics: Topics,
    qos: QoS,
    /// Every outbox operation goes through the outbox's IO thread: the runtime never waits
    /// on the disk.
    outbox: OutboxIo,
    pub stats: Arc<Mutex<UplinkStats>>,
}

impl Uplink {
    pub fn new(
        cfg: &Config,
        mqtt: &Mqtt,
        outbox: SharedOutbox,
        sources: Arc<SourceList>,
    ) -> anyhow::Result<Uplink> {
        if let Some(t) = &mqtt.tls {
            let _ = rustls::crypto::ring::default_provider().install_default();
            tls(t)?; // fail early on unreadable files
        }
        Ok(Uplink {
            cfg: cfg.clone(),
            requests: None,
            priors: None,
            federation: None,
            sources,
            started: std::time::Instant::now(),
            mqtt: mqtt.clone(),
            topics: Topics::new(mqtt, &cfg.device.store_id, &cfg.device.id),
            qos: if mqtt.qos == 0 {
                QoS::AtMostOnce
            } else {
                QoS::AtLeastOnce
            },
            outbox: OutboxIo::start(outbox)?,
            stats: Arc::new(Mutex::new(UplinkStats::default())),
        })
    }

    /// Subscribe to this box's `config/set` and hand each request to `sink` (only with
    /// `[remote_config]` in the configuration).
    pub fn with_requests(mut self, sink: RequestSink) -> Uplink {
        if self.cfg.remote_config.is_some() {
            self.requests = Some(sink);
        }
        self
    }

    /// Subscribe to the chain's prior and hand each message to `sink` (only with
    /// `[remote_config]`: its key is what the prior is verified with).
    pub fn with_priors(mut self, sink: PriorSink) -> Uplink {
        if self.cfg.remote_config.is_some() {
            self.priors = Some(sink);
        }
        self
    }

    /// Take part in the chain prior's rounds (only with `[remote_config] federated`).
    pub fn with_federation(mut self, f: Option<Federation>) -> Uplink {
        if self.cfg.remote_config.as_ref().is_some_and(|r| r.federated) {
            self.federation = f;
        }
        self
    }

    /// Publish a message that is not an outbox record (nothing to acknowledge).
    fn publish_other(
        c: &mut Conn,
        topic: String,
        retain: bool,
        body: Vec<u8>,
    ) -> anyhow::Result<()> {
        c.client
            .try_publish(topic, QoS::AtLeastOnce, retain, body)
            .map_err(|e| anyhow::anyhow!("MQTT client: {e}"))?;
        c.session.handed_over(Label::Status);
        Ok(())
    }

    fn connect(&self) -> anyhow::Result<Conn> {
        let mut opts = MqttOptions::new(
            self.mqtt.client_id.clone(),
            self.mqtt.host.clone(),
            self.mqtt.port,
        );
        opts.set_keep_alive(Duration::from_secs(u64::from(self.mqtt.keep_alive_secs)));
        // rumqttc sizes its in-flight tables by this bound (default 65,535 entries: ~13 MiB
        // resident per client); the session never has more than MAX_INFLIGHT out.
        opts.set_outgoing_inflight_upper_limit(MAX_INFLIGHT as u16);
        opts.set_last_will(LastWill::new(
            self.topics.status.clone(),
            payloads::status("offline", "connection lost", &self.cfg),
            QoS::AtLeastOnce,
            true,
            None,
        ));
        if let Some(t) = &self.mqtt.tls {
            opts.set_transport(Transport::Tls(tls(t)?));
        }
        if self.requests.is_some() {
            opts.set_clean_start(false);
            opts.set_session_expiry_interval(Some(SESSION_EXPIRY_SECS));
            // Requests up to 1 MiB are read (and refused with a reason above the request
            // limit); the broker drops larger ones for this client.
            opts.set_max_packet_size(Some(1 << 20));
        }
        let (client, mut eventloop) = AsyncClient::new(opts, MAX_INFLIGHT + 8);
        let (tx, events) = tokio::sync::mpsc::channel(64);
        let poller = tokio::spawn(async move {
            loop {
                let ev = eventloop.poll().await;
                let failed = ev.is_err();
                if tx.send(ev).await.is_err() || failed {
                    return;
                }
            }
        });
        Ok(Conn {
            client,
            events,
            poller,
            session: Session::default(),
        })
    }

    fn stat(&self) -> std::sync::MutexGuard<'_, UplinkStats> {
        self.stats.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The health message: what a remote operator needs to see that the box works.
    async fn health(&self) -> anyhow::Result<Vec<u8>> {
        let now = crate::clock::mono_ms();
        let outbox = self
            .outbox
            .call(move |o| {
                let (unacked, bytes) = o.depth();
                payloads::OutboxHealth {
                    unacked,
                    bytes,
                    oldest_age_ms: o.oldest_age_ms(now),
                    stats: o.stats,
                }
            })
            .await?;
        let uplink = *self.stat();
        Ok(payloads::health(
            &self.cfg,
            self.started.elapsed(),
            &outbox,
            &uplink,
            &self.sources.get().running,
        ))
    }

    /// Send synced, unacknowledged records until the in-flight window is full.
    async fn fill(&self, c: &mut Conn) -> anyhow::Result<()> {
        while c.session.can_send() {
            let cursor = c.session.cursor();
            let next = self.outbox.call(move |o| o.next_unacked(cursor)).await??;
            let Some((seq, payload)) = next else { break };
            let (topic, retain) = topic_of(&self.topics, &payload);
            c.client
                .try_publish(topic, self.qos, retain, payload)
                .map_err(|e| anyhow::anyhow!("MQTT client: {e}"))?;
            c.session.handed_over(Label::Record(seq));
            self.stat().sent += 1;
        }
        Ok(())
    }

    async fn on_event(&self, c: &mut Conn, ev: Event) -> anyhow::Result<()> {
        match ev {
            Event::Incoming(Packet::ConnAck(_)) => {
                c.session.connected();
                {
                    let mut s = self.stat();
                    s.connected = true;
                    s.connections += 1;
                }
                let (n, _) = self.outbox.call(|o| o.depth()).await?;
                tracing::info!(broker = %format!("{}:{}", self.mqtt.host, self.mqtt.port), unacked = n, "connected to MQTT broker; sending what the outbox holds");
                // Every connection replaces the retained last will with "online".
                c.client
                    .try_publish(
                        self.topics.status.clone(),
                        QoS::AtLeastOnce,
                        true,
                        payloads::status("online", "connected", &self.cfg),
                    )
                    .map_err(|e| anyhow::anyhow!("MQTT client: {e}"))?;
                c.session.handed_over(Label::Status);
                if self.requests.is_some() {
                    c.client
                        .try_subscribe(self.topics.config_set(), QoS::AtLeastOnce)
                        .map_err(|e| anyhow::anyhow!("MQTT client: {e}"))?;
                }
                if self.priors.is_some() {
                    c.client
                        .try_subscribe(self.topics.chain_prior.clone(), QoS::AtLeastOnce)
                        .map_err(|e| anyhow::anyhow!("MQTT client: {e}"))?;
                }
                if let Some(f) = &self.federation {
                    Self::publish_other(c, self.topics.federate("key"), true, f.key.clone())?;
                    for t in [&self.topics.chain_round, &self.topics.chain_missing] {
                        c.client
                            .try_subscribe(t.clone(), QoS::AtLeastOnce)
                            .map_err(|e| anyhow::anyhow!("MQTT client: {e}"))?;
                    }
                }
                self.fill(c).await?;
            }
            Event::Incoming(Packet::Publish(p)) => match &self.requests {
                Some(sink) if p.topic.as_ref() == self.topics.config_set().as_bytes() => {
                    tracing::info!(
                        bytes = p.payload.len(),
                        retained = p.retain,
                        "configuration request received"
                    );
                    sink(p.payload.to_vec(), p.retain);
                }
                _ if p.topic.as_ref() == self.topics.chain_prior.as_bytes() => {
                    if let Some(sink) = &self.priors {
                        sink(&p.payload);
                    }
                }
                _ if self.federation.is_some()
                    && (p.topic.as_ref() == self.topics.chain_round.as_bytes()
                        || p.topic.as_ref() == self.topics.chain_missing.as_bytes()) =>
                {
                    if let Some(f) = &self.federation {
                        let round = p.topic.as_ref() == self.topics.chain_round.as_bytes();
                        let (answer, topic) = if round {
                            (&f.on_round, self.topics.federate("update"))
                        } else {
                            (&f.on_missing, self.topics.federate("reveal"))
                        };
                        if let Some(reply) = answer(&p.payload) {
                            Self::publish_other(c, topic, false, reply)?;
                        }
                    }
                }
                _ => {
                    tracing::warn!(topic = %String::from_utf8_lossy(&p.topic), "unexpected message ignored")
                }
            },
            Event::Outgoing(Outgoing::Publish(pkid)) => {
                if let Some(seq) = c.session.went_out(pkid) {
                    ALERT_LATENCY.acked(seq, crate::clock::mono_ms());
                    self.outbox.call(move |o| o.ack(seq)).await??;
                }
            }
            Event::Incoming(Packet::PubAck(ack)) => {
                let success = matches!(
                    ack.reason,
                    PubAckReason::Success | PubAckReason::NoMatchingSubscribers
                );
                match c.session.puback(ack.pkid, success) {
                    Acked::Record(seq) => {
                        ALERT_LATENCY.acked(seq, crate::clock::mono_ms());
                        self.outbox.call(move |o| o.ack(seq)).await??;
                        self.stat().acked += 1;
                    }
                    Acked::Refused(seq) => {
                        self.stat().rejected += 1;
                        tracing::error!(reason = ?ack.reason, seq, "broker refused an event: kept in the outbox, retried on the next connection; check the broker's ACL for this device");
                    }
                    Acked::Other if !success => {
                        tracing::error!(reason = ?ack.reason, "broker refused the status message")
                    }
                    Acked::Other => {}
                }
                self.fill(c).await?;
            }
            Event::Incoming(Packet::Disconnect(d)) => {
                tracing::warn!(reason = ?d.reason_code, "broker closed the connection")
            }
            _ => {}
        }
        Ok(())
    }

    /// Run until `stop` resolves, then drain: wait (up to `drain`) until the outbox holds
    /// nothing sendable, say goodbye (retained offline), disconnect.
    pub async fn run(
        self,
        wake: Arc<tokio::sync::Notify>,
        mut stop: tokio::sync::watch::Receiver<bool>,
        drain: Duration,
    ) -> anyhow::Result<UplinkStats> {
        let mut attempt = 0u32;
        let mut tick = tokio::time::interval(Duration::from_millis(50));
        // The first health message one period after start (an interval's first tick is at
        // once: whether the connection was up by then was a race).
        let period = Duration::from_secs(u64::from(self.mqtt.health_secs));
        let mut health = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        let mut stopping_since: Option<tokio::time::Instant> = None;
        loop {
            let mut c = self.connect()?;
            let result: anyhow::Result<bool> = loop {
                if *stop.borrow() && stopping_since.is_none() {
                    stopping_since = Some(tokio::time::Instant::now());
                }
                if let Some(since) = stopping_since {
                    let nothing_left = self
                        .outbox
                        .call(|o| o.next_unacked(None).map(|n| n.is_none()).unwrap_or(true))
                        .await
                        .unwrap_or(true);
                    if (c.session.is_connected() && c.session.pending() == 0 && nothing_left)
                        || since.elapsed() >= drain
                    {
                        break Ok(true);
                    }
                }
                tokio::select! {
                    ev = c.events.recv() => match ev.unwrap_or(Err(ConnectionError::RequestsDone)) {
                        Ok(ev) => {
                            if let Err(e) = self.on_event(&mut c, ev).await {
                                break Err(e);
                            }
                            if c.session.is_connected() {
                                attempt = 0;
                            }
                        }
                        Err(e) => {
                            let was = c.session.is_connected();
                            c.session.disconnected();
                            self.stat().connected = false;
                            if was {
                                tracing::warn!(error = %e, "MQTT connection lost; unacknowledged events stay in the outbox");
                            } else {
                                tracing::debug!(error = %e, "MQTT broker not reachable");
                            }
                            break Ok(false);
                        }
                    },
                    _ = wake.notified() => {
                        if let Err(e) = self.fill(&mut c).await { break Err(e); }
                    }
                    _ = tick.tick() => {
                        let t = crate::clock::mono_ms();
                        match self.outbox.call(move |o| o.tick(t)).await {
                            Ok(Err(e)) => tracing::error!(error = %e, "outbox"),
                            Err(e) => break Err(e.into()),
                            Ok(Ok(_)) => {}
                        }
                        if let Err(e) = self.fill(&mut c).await { break Err(e); }
                    }
                    _ = health.tick() => {
                        if c.session.is_connected() {
                            // QoS 0: the latest state matters, not every sample; no packet id.
                            let health = match self.health().await { Ok(h) => h, Err(e) => break Err(e) };
                            if c.client.try_publish(self.topics.health(), QoS::AtMostOnce, false, health).is_ok() {
                                c.session.handed_over(Label::Status);
                            }
                        }
                    }
                    _ = stop.changed() => {}
                }
            };
            match result {
                Ok(true) => {
                    if c.session.is_connected() {
                        let _ = c.client.try_publish(
                            self.topics.status.clone(),
                            QoS::AtLeastOnce,
                            true,
                            payloads::status("offline", "shutdown", &self.cfg),
                        );
                        let until = tokio::time::Instant::now() + Duration::from_secs(2);
                        // Drive the connection until the goodbye is acknowledged.
                        c.session.handed_over(Label::Status);
                        while c.session.pending() > 0 && tokio::time::Instant::now() < until {
                            match tokio::time::timeout(Duration::from_millis(200), c.events.recv())
                                .await
                            {
                                Ok(Some(Ok(ev))) => {
                                    let _ = self.on_event(&mut c, ev).await;
                                }
                                Ok(_) => break,
                                Err(_) => {}
                            }
                        }
                        let _ = c.client.try_disconnect();
                        let _ =
                            tokio::time::timeout(Duration::from_millis(200), c.events.recv()).await;
                    }
                    c.poller.abort();
                    let s = *self.stat();
                    return Ok(s);
                }
                Ok(false) | Err(_) => {
                    if let Err(e) = result {
                        // Never give up delivering while the agent runs: say so, back off, retry.
                        tracing::error!(error = %format!("{e:#}"), "uplink failed; reconnecting");
                    }
                    c.poller.abort();
                    let wait = backoff(attempt);
                    attempt += 1;
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = stop.changed() => {}
                    }
                    if *stop.borrow() && stopping_since.is_some_and(|s| s.elapsed() >= drain) {
                        return Ok(*self.stat());
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_caps_and_jitters() {
        for a in 0..10 {
            let d = backoff(a).as_millis() as u64;
            let base = (1000u64 << a.min(5)).min(30_000);
            assert!(
                d >= base * 8 / 10 && d <= base * 12 / 10,
                "attempt {a}: {d} ms"
            );
        }
    }
}
