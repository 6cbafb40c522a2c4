//! Remote configuration: what a `config/set` request is, whether to trust it, and the result
//! the box reports on `config/result`. Pure (no IO, no clock) but for [`journal`], the files
//! that make an apply survive a crash.
//!
//! A request (`signals/schema/config-request.v1.json`) carries the whole configuration file,
//! a version and an Ed25519 signature by the central service's key, which the box's own
//! configuration pins (`[remote_config] public_key`). The signature covers
//! [`signed_bytes`]: the schema name, the store, the device, the version and the file, so a
//! request signed for one box or one version is worthless for another. The daemon applies a
//! verified request like a reload and reports `applied`, `rejected` or `rolled_back`.

pub mod journal;
pub mod prior;

use base64::Engine as _;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};

pub const REQUEST_SCHEMA: &str = "vitrine.config-request.v1";
pub const RESULT_SCHEMA: &str = "vitrine.config-result.v1";

/// Largest request accepted (the configuration file itself is a few KiB). Larger ones are
/// refused unread; the MQTT client refuses packets beyond 1 MiB at the connection.
pub const MAX_REQUEST_BYTES: usize = 256 * 1024;

/// Longest reason published (a configuration's error list can be long).
const MAX_REASON: usize = 4000;

/// A request whose signature and version were checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Verified {
    pub version: u64,
    pub config: String,
}

/// Why a request was refused; `version` when it could be read.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    pub version: Option<u64>,
    pub reason: String,
}

/// What the box checks a request against.
#[derive(Debug, Clone, Copy)]
pub struct Expect<'a> {
    pub store_id: &'a str,
    pub device_id: &'a str,
    pub key: &'a [u8; 32],
    /// The highest version this box has seen (applied or refused); `0` before the first.
    pub last_version: u64,
}

#[derive(serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
struct Wire {
    schema: String,
    store_id: String,
    device_id: String,
    version: u64,
    config: String,
    signature: String,
}

/// The bytes the central service signs.
pub fn signed_bytes(store_id: &str, device_id: &str, version: u64, config: &str) -> Vec<u8> {
    format!("{REQUEST_SCHEMA}\n{store_id}\n{device_id}\n{version}\n{config}").into_bytes()
}

fn reject(version: Option<u64>, reason: impl Into<String>) -> Rejection {
    Rejection {
        version,
        reason: reason.into(),
    }
}

/// Check a request: size, form, addressee, signature, then version (a replay of an older or
/// the same version is refused after its signature proved it genuine).
pub fn verify(payload: &[u8], e: &Expect) -> Result<Verified, Rejection> {
    if payload.len() > MAX_REQUEST_BYTES {
        return Err(reject(
            None,
            format!(
                "oversized: {} bytes, at most {MAX_REQUEST_BYTES}",
                payload.len()
            ),
        ));
    }
    let w: Wire = serde_json::from_slice(payload)
        .map_err(|err| reject(None, format!("malformed request: {err}")))?;
    let v = Some(w.version);
    if w.schema != REQUEST_SCHEMA {
        return Err(reject(v, format!("schema is not {REQUEST_SCHEMA}")));
    }
    if w.store_id != e.store_id || w.device_id != e.device_id {
        return Err(reject(
            v,
            format!(
                "addressed to {}/{}, this box is {}/{}",
                w.store_id, w.device_id, e.store_id, e.device_id
            ),
        ));
    }
    check_signature(
        e.key,
        &signed_bytes(&w.store_id, &w.device_id, w.version, &w.config),
        &w.signature,
    )
    .map_err(|r| reject(v, r))?;
    if w.version <= e.last_version {
        return Err(reject(
            v,
            format!(
                "replayed: version {} is not above the last version seen ({})",
                w.version, e.last_version
            ),
        ));
    }
    Ok(Verified {
        version: w.version,
        config: w.config,
    })
}

/// Check an Ed25519 signature (base64) of `bytes` by the pinned `key`; the reason otherwise.
pub fn check_signature(key: &[u8; 32], bytes: &[u8], signature: &str) -> Result<(), &'static str> {
    let sig = base64::engine::general_purpose::STANDARD
        .decode(signature.trim())
        .ok()
        .and_then(|b| <[u8; 64]>::try_from(b).ok())
        .map(|b| Signature::from_bytes(&b))
        .ok_or("unsigned: no Ed25519 signature (64 bytes, base64)")?;
    let key = VerifyingKey::from_bytes(key)
        .map_err(|_| "the pinned public key is not a valid Ed25519 key")?;
    key.verify_strict(bytes, &sig)
        .map_err(|_| "bad signature: not signed by the key pinned in [remote_config]")
}

/// An Ed25519 signature (base64) of `bytes` by the signing key `seed`.
pub fn signature(seed: &[u8; 32], bytes: &[u8]) -> String {
    let sig = SigningKey::from_bytes(seed).sign(bytes);
    base64::engine::general_purpose::STANDARD.encode(sig.to_bytes())
}

/// Build a signed request (the central side's half; `vitrine config-request`).
pub fn sign(
    seed: &[u8; 32],
    store_id: &str,
    device_id: &str,
    version: u64,
    config: &str,
) -> Vec<u8> {
    let w = Wire {
        schema: REQUEST_SCHEMA.into(),
        store_id: store_id.into(),
        device_id: device_id.into(),
        version,
        config: config.into(),
        signature: signature(seed, &signed_bytes(store_id, device_id, version, config)),
    };
    serde_json::to_vec(&w).unwrap_or_default()
}

/// The public key of a signing seed, base64 (what `[remote_config] public_key` pins).
pub fn public_key(seed: &[u8; 32]) -> String {
    base64::engine::general_purpose::STANDARD
        .encode(SigningKey::from_bytes(seed).verifying_key().to_bytes())
}

/// What became of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Applied,
    Rejected,
    RolledBack,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Applied => "applied",
            Outcome::Rejected => "rejected",
            Outcome::RolledBack => "rolled_back",
        }
    }
}

/// The `config/result` event (stored in the outbox like every event: it has a seq).
pub fn result_payload(
    store_id: &str,
    device_id: &str,
    seq: u64,
    version: Option<u64>,
    outcome: Outcome,
    reason: &str,
    at: &str,
) -> Vec<u8> {
    let mut reason = reason.to_string();
    if reason.len() > MAX_REASON {
        let mut cut = MAX_REASON;
        while !reason.is_char_boundary(cut) {
            cut -= 1;
        }
        reason.truncate(cut);
        reason.push('…');
    }
    serde_json::json!({
        "schema": RESULT_SCHEMA,
        "store_id": store_id,
        "device_id": device_id,
        "seq": seq,
        "idempotency_key": format!("{store_id}/{device_id}/config/{seq}"),
        "version": version,
        "status": outcome.as_str(),
        "reason": reason,
        "at": at,
    })
    .to_string()
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: [u8; 32] = [7; 32];

    fn expect(key: &[u8; 32], last: u64) -> Expect<'_> {
        Expect {
            store_id: "s1",
            device_id: "d1",
            key,
            last_version: last,
        }
    }

    fn pinned() -> [u8; 32] {
        SigningKey::from_bytes(&SEED).verifying_key().to_bytes()
    }

    #[test]
    fn a_request_signed_by_the_pinned_key_with_a_new_version_is_accepted() {
        let req = sign(&SEED, "s1", "d1", 3, "[device]\n");
        let v = verify(&req, &expect(&pinned(), 2)).expect("accepted");
        assert_eq!((v.version, v.config.as_str()), (3, "[device]\n"));
    }

    #[test]
    fn replayed_tampered_misaddressed_unsigned_and_oversized_requests_are_refused_with_a_reason() {
        let key = pinned();
        let req = sign(&SEED, "s1", "d1", 3, "[device]\n");
        let why = |p: &[u8], last| verify(p, &expect(&key, last)).unwrap_err().reason;
        assert!(why(&req, 3).starts_with("replayed"));
        assert!(why(&req, 9).starts_with("replayed"));
        let other = sign(&[9; 32], "s1", "d1", 4, "[device]\n");
        assert!(why(&other, 0).starts_with("bad signature"));
        let mut v: serde_json::Value = serde_json::from_slice(&req).unwrap();
        v["config"] = "[device]\nid = \"evil\"\n".into();
        assert!(why(v.to_string().as_bytes(), 0).starts_with("bad signature"));
        v["signature"] = "".into();
        assert!(why(v.to_string().as_bytes(), 0).starts_with("unsigned"));
        let elsewhere = sign(&SEED, "s1", "d2", 4, "[device]\n");
        assert!(why(&elsewhere, 0).starts_with("addressed to s1/d2"));
        assert!(why(&vec![b' '; MAX_REQUEST_BYTES + 1], 0).starts_with("oversized"));
        assert!(why(b"{\"version\": 1}", 0).starts_with("malformed"));
    }

    #[test]
    fn results_are_bounded_and_keyed_by_seq() {
        let p = result_payload(
            "s",
            "d",
            9,
            Some(2),
            Outcome::Rejected,
            &"x".repeat(10_000),
            "2026-12-02T10:00:00Z",
        );
        let v: serde_json::Value = serde_json::from_slice(&p).unwrap();
        assert_eq!(v["idempotency_key"], "s/d/config/9");
        assert!(v["reason"].as_str().unwrap().len() <= MAX_REASON + 4);
    }
}
