//! MQTT v5 publishing (rumqttc). Topic layout (prefix defaults to `vitrine`):
//!
//! | topic | retained | QoS | payload |
//! |---|---|---|---|
//! | `{prefix}/{store}/{device}/status` | yes | 1 | `{"state":"online"|"offline",...}`; the broker publishes the offline last will if the agent vanishes |
//! | `{prefix}/{store}/{device}/window/{source}` | no | config (1) | one window event (`signals/schema/window-event.v1.json`) |
//!
//! Acknowledgements are tracked per packet id: `publish` returning means only "queued", the
//! PUBACK means delivered. Durability across outages (the outbox) is the next layer; this
//! module is its seam: it reports what was acknowledged and what was not.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rumqttc::v5::mqttbytes::v5::{LastWill, Packet, PubAckReason};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, Event, MqttOptions};
use rumqttc::{Outgoing, TlsConfiguration, Transport};
use serde_json::json;
use vitrine_config::{Config, Mqtt};
use vitrine_signals::WindowEvent;

#[derive(Debug, Clone)]
pub struct Topics {
    pub status: String,
    base: String,
}

impl Topics {
    pub fn new(mqtt: &Mqtt, store: &str, device: &str) -> Topics {
        let base = format!("{}/{}/{}", mqtt.topic_prefix, store, device);
        Topics {
            status: format!("{base}/status"),
            base,
        }
    }
    pub fn window(&self, source: &str) -> String {
        format!("{}/window/{source}", self.base)
    }
}

/// Delivery counters, shared with the event loop task.
#[derive(Debug, Default)]
pub struct AckState {
    /// Labels of publishes handed to the client, waiting for their packet id.
    queued: VecDeque<String>,
    /// Packet id → label, waiting for PUBACK.
    inflight: HashMap<u16, String>,
    pub published: u64,
    pub acked: u64,
    pub rejected: u64,
    pub connected: bool,
    pub connections: u64,
    /// We are disconnecting on purpose: the connection ending is not news.
    closing: bool,
}

impl AckState {
    pub fn pending(&self) -> usize {
        self.queued.len() + self.inflight.len()
    }
}

pub struct Publisher {
    client: AsyncClient,
    topics: Topics,
    qos: QoS,
    pub state: Arc<Mutex<AckState>>,
    task: tokio::task::JoinHandle<()>,
}

fn lock(s: &Mutex<AckState>) -> std::sync::MutexGuard<'_, AckState> {
    s.lock().unwrap_or_else(|p| p.into_inner())
}

fn status_payload(state: &str, reason: &str, cfg: &Config) -> Vec<u8> {
    json!({
        "schema": "vitrine.status.v1",
        "state": state,
        "reason": reason,
        "device_id": cfg.device.id,
        "store_id": cfg.device.store_id,
        "version": env!("CARGO_PKG_VERSION"),
        "sources": cfg.source_ids().collect::<Vec<_>>(),
    })
    .to_string()
    .into_bytes()
}

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

impl Publisher {
    /// Connect (in the background: the event loop retries with backoff until the broker
    /// answers) with a retained offline last will.
    pub fn start(cfg: &Config, mqtt: &Mqtt) -> anyhow::Result<Publisher> {
        let topics = Topics::new(mqtt, &cfg.device.store_id, &cfg.device.id);
        let mut opts = MqttOptions::new(mqtt.client_id.clone(), mqtt.host.clone(), mqtt.port);
        opts.set_keep_alive(Duration::from_secs(u64::from(mqtt.keep_alive_secs)));
        opts.set_last_will(LastWill::new(
            topics.status.clone(),
            status_payload("offline", "connection lost", cfg),
            QoS::AtLeastOnce,
            true,
            None,
        ));
        if let Some(t) = &mqtt.tls {
            let _ = rustls::crypto::ring::default_provider().install_default();
            opts.set_transport(Transport::Tls(tls(t)?));
        }
        let (client, mut eventloop) = AsyncClient::new(opts, 64);
        let state = Arc::new(Mutex::new(AckState::default()));
        let online = status_payload("online", "started", cfg);
        let (st, c2, status_topic) = (state.clone(), client.clone(), topics.status.clone());
        let (host, port) = (mqtt.host.clone(), mqtt.port);
        let task = tokio::spawn(async move {
            let mut backoff = Duration::from_millis(500);
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        backoff = Duration::from_millis(500);
                        {
                            let mut s = lock(&st);
                            s.connected = true;
                            s.connections += 1;
                            s.queued.push_back("status".into());
                        }
                        tracing::info!(broker = %format!("{host}:{port}"), "connected to MQTT broker");
                        // Every (re)connection replaces the retained last will with "online".
                        let c = c2.clone();
                        let (t, p) = (status_topic.clone(), online.clone());
                        tokio::spawn(async move {
                            let _ = c.publish(t, QoS::AtLeastOnce, true, p).await;
                        });
                    }
                    Ok(Event::Outgoing(Outgoing::Publish(pkid))) => {
                        let mut s = lock(&st);
                        if let Some(label) = s.queued.pop_front() {
                            if pkid == 0 {
                                s.acked += 1; // QoS 0: nothing more will come.
                            } else {
                                s.inflight.insert(pkid, label);
                            }
                        }
                    }
                    Ok(Event::Incoming(Packet::PubAck(ack))) => {
                        let mut s = lock(&st);
                        let label = s.inflight.remove(&ack.pkid).unwrap_or_default();
                        match ack.reason {
                            PubAckReason::Success | PubAckReason::NoMatchingSubscribers => {
                                s.acked += 1
                            }
                            reason => {
                                s.rejected += 1;
                                tracing::error!(?reason, what = %label, "broker refused a publish");
                            }
                        }
                    }
                    Ok(Event::Incoming(Packet::Disconnect(d))) => {
                        lock(&st).connected = false;
                        tracing::warn!(reason = ?d.reason_code, "broker closed the connection");
                    }
                    Ok(_) => {}
                    Err(e) => {
                        let (was, closing) = {
                            let mut s = lock(&st);
                            (std::mem::replace(&mut s.connected, false), s.closing)
                        };
                        if closing {
                            return;
                        }
                        if was {
                            tracing::warn!(error = %e, "MQTT connection lost; retrying");
                        } else {
                            tracing::debug!(error = %e, retry_in = ?backoff, "MQTT broker not reachable");
                        }
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(30));
                    }
                }
            }
        });
        Ok(Publisher {
            client,
            topics,
            qos: if mqtt.qos == 0 {
                QoS::AtMostOnce
            } else {
                QoS::AtLeastOnce
            },
            state,
            task,
        })
    }

    pub fn topics(&self) -> &Topics {
        &self.topics
    }

    pub async fn publish(&self, ev: &WindowEvent) -> anyhow::Result<()> {
        let payload = serde_json::to_vec(ev)?;
        lock(&self.state)
            .queued
            .push_back(ev.idempotency_key.clone());
        lock(&self.state).published += 1;
        self.client
            .publish(self.topics.window(&ev.source_id), self.qos, false, payload)
            .await
            .map_err(|e| anyhow::anyhow!("MQTT client stopped: {e}"))
    }

    /// Wait (up to `timeout`) for every publish to be acknowledged, mark the device offline
    /// (retained), disconnect. Returns how many events were left unacknowledged.
    pub async fn shutdown(self, cfg: &Config, timeout: Duration) -> usize {
        let deadline = tokio::time::Instant::now() + timeout;
        while lock(&self.state).pending() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let left = lock(&self.state).pending();
        if lock(&self.state).connected {
            lock(&self.state).queued.push_back("status".into());
            let _ = self
                .client
                .publish(
                    self.topics.status.clone(),
                    QoS::AtLeastOnce,
                    true,
                    status_payload("offline", "shutdown", cfg),
                )
                .await;
            let until = tokio::time::Instant::now() + Duration::from_secs(2);
            while lock(&self.state).pending() > 0 && tokio::time::Instant::now() < until {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            lock(&self.state).closing = true;
            let _ = self.client.disconnect().await;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.task.abort();
        left
    }
}
