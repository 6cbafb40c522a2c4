//! `vitrine federate`: the chain prior's aggregator, central side. One run makes one chain
//! prior from the boxes taking part (`[remote_config] federated`) over MQTT and publishes it,
//! signed, retained on `{prefix}/chain/prior` — run it from a timer (weekly, say):
//! 1. the boxes' public keys are read from their retained `federate/key` topics (`--wait-secs`);
//!    the boxes are numbered in (store, device) order;
//! 2. for each round of `signals::federated::round::Chain` (the average, the first clustering,
//!    `--kmeans` k-means rounds): the round is announced on `{prefix}/chain/round`, masked
//!    updates are collected until `--deadline-secs` (or all have come), who is missing is
//!    published on `{prefix}/chain/round/missing`, the survivors' reveals are collected, and the
//!    sum is unmasked — the aggregator never sees one box's update;
//! 3. the priors are signed with the key the boxes pin and published.
//!
//! A round with fewer than 3 survivors, or a survivor that does not reveal, fails the run
//! (nothing is published; the boxes keep the prior they have).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use rumqttc::{Client, Event, MqttOptions, Packet, QoS};
use vitrine_signals::federated::round::{Aggregator, Chain, Masked, Reveal, Stage};
use vitrine_signals::federated::{dp, sums, MIN_STORES};
use vitrine_signals::forecast::PRIOR_CAP;

use crate::federate::{decode_key, KeyMessage, Peer, RoundMessage, KEY_SCHEMA, ROUND_SCHEMA};
use crate::remote;

pub struct Args<'a> {
    /// host:port
    pub broker: &'a str,
    pub prefix: &'a str,
    pub key: &'a Path,
    pub version: u64,
    pub wait_secs: u64,
    pub deadline_secs: u64,
    pub kmeans: usize,
    pub epsilon: Option<f64>,
}

/// What the connection's thread forwards: a message (topic, payload) or an acknowledgement.
enum In {
    Message(String, Vec<u8>),
    Acked,
}

/// The connection: publishes counted against their acknowledgements.
struct Link {
    client: Client,
    rx: Receiver<In>,
    published: usize,
    acked: usize,
}

impl Link {
    fn publish(&mut self, topic: String, retain: bool, body: Vec<u8>) -> anyhow::Result<()> {
        self.client.publish(topic, QoS::AtLeastOnce, retain, body)?;
        self.published += 1;
        Ok(())
    }

    /// The next message before `until` (`None` when it passed).
    fn next(&mut self, until: Instant) -> anyhow::Result<Option<(String, Vec<u8>)>> {
        loop {
            match self
                .rx
                .recv_timeout(until.saturating_duration_since(Instant::now()))
            {
                Ok(In::Message(t, p)) => return Ok(Some((t, p))),
                Ok(In::Acked) => self.acked += 1,
                Err(RecvTimeoutError::Timeout) => return Ok(None),
                Err(RecvTimeoutError::Disconnected) => {
                    anyhow::bail!("the broker connection ended")
                }
            }
        }
    }

    /// Wait until the broker acknowledged everything published (at most `secs`).
    fn drain(&mut self, secs: u64) -> anyhow::Result<()> {
        let until = Instant::now() + Duration::from_secs(secs);
        while self.acked < self.published && Instant::now() < until {
            self.next(Instant::now() + Duration::from_millis(100))?;
        }
        anyhow::ensure!(
            self.acked >= self.published,
            "the broker did not acknowledge the chain prior within {secs} s"
        );
        Ok(())
    }
}

fn connect(broker: &str) -> anyhow::Result<Link> {
    let (host, port) = broker
        .rsplit_once(':')
        .and_then(|(h, p)| Some((h.to_string(), p.parse::<u16>().ok()?)))
        .ok_or_else(|| anyhow::anyhow!("--broker {broker:?} is not HOST:PORT"))?;
    let mut opts = MqttOptions::new(
        format!("vitrine-federate-{}", std::process::id()),
        host,
        port,
    );
    opts.set_keep_alive(Duration::from_secs(30));
    opts.set_max_packet_size(8 * 1024 * 1024, 8 * 1024 * 1024);
    let (client, mut conn) = Client::new(opts, 256);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for ev in conn.iter() {
            let sent = match ev {
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    tx.send(In::Message(p.topic.clone(), p.payload.to_vec()))
                }
                Ok(Event::Incoming(Packet::PubAck(_))) => tx.send(In::Acked),
                Ok(_) => Ok(()),
                Err(e) => {
                    tracing::warn!(error = %e, "broker connection");
                    std::thread::sleep(Duration::from_millis(500));
                    Ok(())
                }
            };
            if sent.is_err() {
                break;
            }
        }
    });
    Ok(Link {
        client,
        rx,
        published: 0,
        acked: 0,
    })
}

/// `{prefix}/{store}/{device}/federate/{what}` → (store, device, what).
fn parse_topic<'t>(prefix: &str, topic: &'t str) -> Option<(&'t str, &'t str, &'t str)> {
    let rest = topic.strip_prefix(prefix)?.strip_prefix('/')?;
    let parts: Vec<&str> = rest.split('/').collect();
    match parts.as_slice() {
        [store, device, "federate", what] => Some((store, device, what)),
        _ => None,
    }
}

/// Messages until `until`, each handed to `take` (which says whether all that was awaited came).
fn collect(
    link: &mut Link,
    until: Instant,
    take: &mut dyn FnMut(&str, &[u8]) -> bool,
) -> anyhow::Result<()> {
    while let Some((t, p)) = link.next(until)? {
        if take(&t, &p) {
            break;
        }
    }
    Ok(())
}

/// The boxes' public keys, from their retained key topics.
fn peers(a: &Args, link: &mut Link) -> anyhow::Result<Vec<Peer>> {
    let mut keys: BTreeMap<(String, String), String> = BTreeMap::new();
    let until = Instant::now() + Duration::from_secs(a.wait_secs);
    collect(link, until, &mut |topic, payload| {
        if let Some((store, device, "key")) = parse_topic(a.prefix, topic) {
            match serde_json::from_slice::<KeyMessage>(payload) {
                Ok(k)
                    if k.schema == KEY_SCHEMA
                        && k.store_id == store
                        && k.device_id == device
                        && decode_key(&k.public_key).is_some() =>
                {
                    keys.insert((k.store_id, k.device_id), k.public_key);
                }
                _ => tracing::warn!(%topic, "a federation key that is not one: ignored"),
            }
        }
        false
    })?;
    let peers: Vec<Peer> = keys
        .into_iter()
        .enumerate()
        .map(|(i, ((store_id, device_id), public_key))| Peer {
            index: i as u32,
            store_id,
            device_id,
            public_key,
        })
        .collect();
    anyhow::ensure!(
        peers.len() >= MIN_STORES as usize,
        "{} boxes published a federation key within {} s; a chain prior needs at least {MIN_STORES}; fix: set `federated = true` in [remote_config] on more boxes, or wait longer (--wait-secs)",
        peers.len(),
        a.wait_secs
    );
    Ok(peers)
}

/// One round: announce, updates, the missing list, reveals; the survivors' sum.
fn round(a: &Args, link: &mut Link, msg: &RoundMessage) -> anyhow::Result<Vec<f64>> {
    let index = |store: &str, device: &str| {
        msg.peers
            .iter()
            .find(|p| p.store_id == store && p.device_id == device)
            .map(|p| p.index)
    };
    let mut agg = Aggregator::new(msg.announce());
    let topic = |t: &str| format!("{}/chain/{t}", a.prefix);
    link.publish(topic("round"), false, serde_json::to_vec(msg)?)?;
    let n = msg.peers.len();
    let mut sent = 0;
    let until = Instant::now() + Duration::from_secs(a.deadline_secs);
    collect(link, until, &mut |t, payload| {
        let Some((store, device, "update")) = parse_topic(a.prefix, t) else {
            return false;
        };
        match serde_json::from_slice::<Masked>(payload) {
            Ok(m) if Some(m.from) == index(store, device) => match agg.receive(&m) {
                Ok(()) => sent += 1,
                Err(e) => tracing::warn!(%t, error = %e, "update refused"),
            },
            _ => tracing::warn!(%t, "not this box's masked update: ignored"),
        }
        sent == n
    })?;
    let missing = agg.close();
    link.publish(topic("round/missing"), false, serde_json::to_vec(&missing)?)?;
    if !missing.missing.is_empty() {
        let mut revealed = 0;
        let until = Instant::now() + Duration::from_secs(a.deadline_secs);
        collect(link, until, &mut |t, payload| {
            let Some((store, device, "reveal")) = parse_topic(a.prefix, t) else {
                return false;
            };
            match serde_json::from_slice::<Reveal>(payload) {
                Ok(r) if Some(r.from) == index(store, device) => match agg.reveal(&r) {
                    Ok(()) => revealed += 1,
                    Err(e) => tracing::warn!(%t, error = %e, "reveal refused"),
                },
                _ => tracing::warn!(%t, "not this box's reveal: ignored"),
            }
            revealed == sent
        })?;
    }
    println!(
        "round {}: {} of {n} boxes sent{}",
        msg.round,
        sent,
        if missing.missing.is_empty() {
            String::new()
        } else {
            format!(
                ", missing {:?} (their masks removed from the survivors' reveals)",
                missing.missing
            )
        }
    );
    agg.finish()
        .map_err(|e| anyhow::anyhow!("round {}: {e}", msg.round))
}

/// One chain prior over MQTT, published signed (see the module's documentation).
pub fn run(a: &Args) -> anyhow::Result<()> {
    let seed = super::remote::read_seed(a.key)?;
    let mut link = connect(a.broker)?;
    link.client
        .subscribe(format!("{}/+/+/federate/#", a.prefix), QoS::AtLeastOnce)?;
    let peers = peers(a, &mut link)?;
    println!("{} boxes take part", peers.len());
    let sigma = a.epsilon.map_or(0.0, |epsilon| {
        dp::Budget {
            epsilon,
            delta: 1e-5,
        }
        .sigma(sums(a.kmeans), PRIOR_CAP)
    });
    let mut chain = Chain::new(a.kmeans);
    let mut stage = Some(Stage::Average);
    let mut n = 0;
    while let Some(st) = stage {
        n += 1;
        let msg = RoundMessage {
            schema: ROUND_SCHEMA.into(),
            round: a.version * 100 + n,
            stage: st.clone(),
            peers: peers.clone(),
            sigma,
        };
        let sum = round(a, &mut link, &msg)?;
        stage = chain.next(&st, &sum);
    }
    let shapes: Vec<Vec<f64>> = chain.priors().into_iter().map(|p| p.shape).collect();
    anyhow::ensure!(!shapes.is_empty(), "the rounds made no prior");
    let body = remote::prior::sign(&seed, a.version, &shapes);
    link.publish(format!("{}/chain/prior", a.prefix), true, body)?;
    link.drain(10)?;
    println!(
        "chain prior version {} published: {} priors (the chain's average and {} clusters){}",
        a.version,
        shapes.len(),
        shapes.len() - 1,
        a.epsilon
            .map(|e| format!(", ({e}, 1e-5)-differentially private"))
            .unwrap_or_default()
    );
    let _ = link.client.disconnect();
    Ok(())
}
