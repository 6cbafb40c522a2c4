//! Taking part in the chain prior's rounds (`[remote_config] federated = true`; see
//! `signals::federated` for what is shared and what the aggregator can learn). The box's side
//! of the protocol over MQTT:
//! - an X25519 key pair of its own (`federate.key` in the state directory, mode 0600, made on
//!   first use), whose public half it publishes retained on
//!   `{prefix}/{store}/{device}/federate/key` ([`KeyMessage`]);
//! - a round announced on `{prefix}/chain/round` ([`RoundMessage`]: the stage, the boxes taking
//!   part with their public keys, the noise): if listed, the box masks its update
//!   (`signals::federated::round::BoxRound`) with a secret per peer agreed from the two keys
//!   ([`pair_secret`]) and publishes it on `{prefix}/{store}/{device}/federate/update`;
//! - the missing list on `{prefix}/chain/round/missing`: the box reveals its secrets with the
//!   missing boxes (only those, and never when itself is listed) on `.../federate/reveal`.
//!
//! The update is the shape and weight of the box's best-learned footfall series
//! (`ForecastBook::update`); its counts never leave the box, and the aggregator sees only
//! masked values. Messages are handled on the uplink's task: no disk (the key is read or made
//! at start-up), randomness for noise shares from the operating system.

use std::io::Read as _;
use std::path::Path;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use vitrine_signals::federated::round::{Announce, BoxRound, Masked, Missing, Reveal, Stage};
use x25519_dalek::{PublicKey, StaticSecret};

pub const KEY_SCHEMA: &str = "vitrine.federate-key.v1";
pub const ROUND_SCHEMA: &str = "vitrine.federate-round.v1";
/// The key file in the state directory.
pub const FILE: &str = "federate.key";
/// Largest round message read (a round lists every box with its key; the uplink's client
/// reads packets up to 1 MiB with `[remote_config]`).
pub const MAX_MESSAGE_BYTES: usize = 1 << 20;

/// A box's public key, retained on its `federate/key` topic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyMessage {
    pub schema: String,
    pub store_id: String,
    pub device_id: String,
    /// X25519 public key, standard base64.
    pub public_key: String,
}

/// One box of a round.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Peer {
    pub index: u32,
    pub store_id: String,
    pub device_id: String,
    pub public_key: String,
}

/// A round as the aggregator announces it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoundMessage {
    pub schema: String,
    pub round: u64,
    pub stage: Stage,
    pub peers: Vec<Peer>,
    pub sigma: f64,
}

impl RoundMessage {
    pub fn announce(&self) -> Announce {
        Announce {
            round: self.round,
            stage: self.stage.clone(),
            boxes: self.peers.iter().map(|p| p.index).collect(),
            sigma: self.sigma,
        }
    }
}

pub fn decode_key(text: &str) -> Option<[u8; 32]> {
    base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .ok()?
        .try_into()
        .ok()
}

/// The secret two boxes share (each computes it from its own secret key and the other's
/// public key): SHA-256 of the X25519 shared point and the pair's indices.
pub fn pair_secret(mine: &StaticSecret, me: u32, peer: u32, theirs: &[u8; 32]) -> [u8; 32] {
    let shared = mine.diffie_hellman(&PublicKey::from(*theirs));
    let mut h = Sha256::new();
    h.update(b"vitrine-federate-pair-v1");
    h.update(me.min(peer).to_le_bytes());
    h.update(me.max(peer).to_le_bytes());
    h.update(shared.as_bytes());
    h.finalize().into()
}

/// The box's secret key: read from `dir/federate.key`, or made (from the operating system's
/// randomness) and written there, mode 0600.
pub fn load_or_create(dir: &Path) -> anyhow::Result<StaticSecret> {
    let path = dir.join(FILE);
    if path.exists() {
        let text = std::fs::read_to_string(&path)?;
        let bytes = decode_key(&text).ok_or_else(|| {
            anyhow::anyhow!(
                "{} is not a federation key (32 bytes, base64); fix: delete it, the box makes a new one",
                path.display()
            )
        })?;
        return Ok(StaticSecret::from(bytes));
    }
    let mut seed = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut seed)?;
    let text = base64::engine::general_purpose::STANDARD.encode(seed) + "\n";
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)?;
        std::io::Write::write_all(&mut f, text.as_bytes())?;
        f.sync_all()?;
    }
    Ok(StaticSecret::from(seed))
}

/// Standard normal values from the operating system's randomness (noise shares).
fn os_normal() -> impl FnMut() -> f64 {
    let mut urandom = std::fs::File::open("/dev/urandom").ok();
    move || {
        let mut uniform = || {
            let mut b = [0u8; 8];
            if let Some(f) = urandom.as_mut() {
                let _ = f.read_exact(&mut b);
            }
            ((u64::from_le_bytes(b) >> 11) as f64 + 1.0) / (1u64 << 53) as f64
        };
        vitrine_signals::federated::dp::normal_from(&mut uniform)
    }
}

/// The box's side of the rounds.
pub struct Federate {
    secret: StaticSecret,
    store_id: String,
    device_id: String,
    /// The round this box sent an update in, and its peers' keys.
    current: Option<(BoxRound, Vec<Peer>)>,
}

impl Federate {
    pub fn new(secret: StaticSecret, store_id: &str, device_id: &str) -> Federate {
        Federate {
            secret,
            store_id: store_id.into(),
            device_id: device_id.into(),
            current: None,
        }
    }

    /// The retained message with this box's public key.
    pub fn key_message(&self) -> Vec<u8> {
        let public = PublicKey::from(&self.secret);
        serde_json::to_vec(&KeyMessage {
            schema: KEY_SCHEMA.into(),
            store_id: self.store_id.clone(),
            device_id: self.device_id.clone(),
            public_key: base64::engine::general_purpose::STANDARD.encode(public.as_bytes()),
        })
        .unwrap_or_default()
    }

    fn secrets(&self, me: u32, peers: &[Peer]) -> impl Fn(u32) -> [u8; 32] + '_ {
        let keys: Vec<(u32, Option<[u8; 32]>)> = peers
            .iter()
            .map(|p| (p.index, decode_key(&p.public_key)))
            .collect();
        move |peer: u32| {
            let theirs = keys
                .iter()
                .find(|(i, _)| *i == peer)
                .and_then(|(_, k)| *k)
                .unwrap_or([0; 32]);
            pair_secret(&self.secret, me, peer, &theirs)
        }
    }

    /// A round was announced: this box's masked update if it is listed (`update`: its shape
    /// and weight), `None` if it is not; an error names what was wrong with the message.
    pub fn on_round(
        &mut self,
        payload: &[u8],
        update: Option<(Vec<f64>, f64)>,
    ) -> Result<Option<Vec<u8>>, String> {
        if payload.len() > MAX_MESSAGE_BYTES {
            return Err(format!("oversized round: {} bytes", payload.len()));
        }
        let r: RoundMessage =
            serde_json::from_slice(payload).map_err(|e| format!("malformed round: {e}"))?;
        if r.schema != ROUND_SCHEMA {
            return Err(format!("schema is not {ROUND_SCHEMA}"));
        }
        let Some(me) = r
            .peers
            .iter()
            .find(|p| p.store_id == self.store_id && p.device_id == self.device_id)
            .map(|p| p.index)
        else {
            return Ok(None);
        };
        if r.peers.iter().any(|p| decode_key(&p.public_key).is_none()) {
            return Err("a peer's public key is not 32 bytes of base64".into());
        }
        let Some((shape, weight)) = update else {
            return Err("listed, but no footfall series has a week's profile yet".into());
        };
        let (state, masked) = {
            let secrets = self.secrets(me, &r.peers);
            BoxRound::mask(
                &r.announce(),
                me,
                (&shape, weight),
                &secrets,
                &mut os_normal(),
            )
            .map_err(|e| e.to_string())?
        };
        self.current = Some((state, r.peers));
        serde_json::to_vec(&masked)
            .map(Some)
            .map_err(|e| e.to_string())
    }

    /// The aggregator listed who is missing: this box's reveal (its secrets with them). Once per
    /// round: an aggregator that sent a second list (naming a box that did send, after the
    /// first) could unmask that box's update with its peers' secrets.
    pub fn on_missing(&mut self, payload: &[u8]) -> Result<Option<Vec<u8>>, String> {
        let m: Missing =
            serde_json::from_slice(payload).map_err(|e| format!("malformed missing list: {e}"))?;
        let Some((state, peers)) = self.current.take_if(|(s, _)| s.round() == m.round) else {
            return Ok(None);
        };
        let secrets = self.secrets(state.me(), &peers);
        let reveal: Reveal = state.reveal(&m, &secrets).map_err(|e| e.to_string())?;
        serde_json::to_vec(&reveal)
            .map(Some)
            .map_err(|e| e.to_string())
    }
}

/// What the aggregator reads from a box's update or reveal topic.
pub fn read_masked(payload: &[u8]) -> Option<Masked> {
    serde_json::from_slice(payload).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_boxes_of_a_pair_agree_on_its_secret_and_the_key_file_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let a = load_or_create(dir.path()).unwrap();
        let again = load_or_create(dir.path()).unwrap();
        assert_eq!(a.to_bytes(), again.to_bytes());
        let mode = std::fs::metadata(dir.path().join(FILE))
            .unwrap()
            .permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
            0o600
        );
        let b = StaticSecret::from([9u8; 32]);
        let (pa, pb) = (PublicKey::from(&a), PublicKey::from(&b));
        assert_eq!(
            pair_secret(&a, 1, 4, pb.as_bytes()),
            pair_secret(&b, 4, 1, pa.as_bytes())
        );
        assert_ne!(
            pair_secret(&a, 1, 4, pb.as_bytes()),
            pair_secret(&a, 1, 5, pb.as_bytes())
        );
        std::fs::write(dir.path().join(FILE), "nonsense").unwrap();
        let e = load_or_create(dir.path()).err().unwrap().to_string();
        assert!(e.contains("fix: delete it"), "{e}");
    }

    #[test]
    fn a_box_reveals_once_per_round_and_never_when_listed_itself() {
        let keys: Vec<StaticSecret> = (1..=3u8).map(|i| StaticSecret::from([i; 32])).collect();
        let peers: Vec<Peer> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| Peer {
                index: i as u32,
                store_id: format!("s{i}"),
                device_id: "d".into(),
                public_key: base64::engine::general_purpose::STANDARD
                    .encode(PublicKey::from(k).as_bytes()),
            })
            .collect();
        let round = RoundMessage {
            schema: ROUND_SCHEMA.into(),
            round: 7,
            stage: Stage::Average,
            peers,
            sigma: 0.0,
        };
        let payload = serde_json::to_vec(&round).unwrap();
        let update = Some((vec![1.0; 168], 2.0));
        let mut boxes: Vec<Federate> = keys
            .into_iter()
            .enumerate()
            .map(|(i, k)| Federate::new(k, &format!("s{i}"), "d"))
            .collect();
        for b in &mut boxes {
            assert!(b.on_round(&payload, update.clone()).unwrap().is_some());
        }
        // A box not listed in a round sends nothing.
        let mut stranger = Federate::new(StaticSecret::from([9; 32]), "elsewhere", "d");
        assert_eq!(stranger.on_round(&payload, update.clone()), Ok(None));
        let missing = |m: &[u32]| {
            serde_json::to_vec(&Missing {
                round: 7,
                missing: m.iter().copied().collect(),
            })
            .unwrap()
        };
        let r = boxes[0]
            .on_missing(&missing(&[2]))
            .unwrap()
            .expect("a reveal");
        let r: Reveal = serde_json::from_slice(&r).unwrap();
        assert_eq!(r.secrets.len(), 1);
        assert_eq!(r.secrets[0].0, 2);
        // A second list for the same round (now naming box 1, which sent) gets nothing.
        assert_eq!(boxes[0].on_missing(&missing(&[1])), Ok(None));
        // Box 2 sent and sees itself listed: the round is void for it.
        let e = boxes[2].on_missing(&missing(&[2])).unwrap_err();
        assert!(e.contains("void"), "{e}");
    }
}
