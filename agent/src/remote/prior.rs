//! The chain prior a box takes from the central side (see `signals::federated`): the shapes
//! of the chain's weekly footfall — the chain's average first, then its clusters — published
//! retained on `{prefix}/chain/prior` and signed with the key the boxes pin for remote
//! configuration (`[remote_config] public_key`), so that nobody else can bend every box's
//! forecast. The message (`vitrine.chain-prior.v1`): a version, the priors (168 values each,
//! Monday 00:00 first) and an Ed25519 signature of [`signed_bytes`]. A box takes a verified
//! prior newer than the one it holds; anything else is refused with the reason, logged.

use serde::{Deserialize, Serialize};
use vitrine_signals::forecast::{ChainPriors, Prior};

use super::{check_signature, signature};

pub const PRIOR_SCHEMA: &str = "vitrine.chain-prior.v1";
/// Largest message accepted (16 priors of 168 values in JSON stay far below).
pub const MAX_PRIOR_BYTES: usize = 128 * 1024;
/// Most priors in one message (the chain's average and its clusters).
pub const MAX_PRIORS: usize = 16;

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct Wire {
    schema: String,
    version: u64,
    priors: Vec<Vec<f64>>,
    signature: String,
}

/// The bytes the central service signs: the schema, the version and the priors as JSON.
pub fn signed_bytes(version: u64, priors: &[Vec<f64>]) -> Vec<u8> {
    let json = serde_json::to_string(priors).unwrap_or_default();
    format!("{PRIOR_SCHEMA}\n{version}\n{json}").into_bytes()
}

/// Check a message against the pinned key and the version held (`None`: none yet); an older
/// version is refused, the same one passes (the caller's book keeps what it holds).
pub fn verify(payload: &[u8], key: &[u8; 32], held: Option<u64>) -> Result<ChainPriors, String> {
    if payload.len() > MAX_PRIOR_BYTES {
        return Err(format!(
            "oversized: {} bytes, at most {MAX_PRIOR_BYTES}",
            payload.len()
        ));
    }
    let w: Wire =
        serde_json::from_slice(payload).map_err(|e| format!("malformed chain prior: {e}"))?;
    if w.schema != PRIOR_SCHEMA {
        return Err(format!("schema is not {PRIOR_SCHEMA}"));
    }
    check_signature(key, &signed_bytes(w.version, &w.priors), &w.signature)?;
    // The same version again is what the broker retains: the caller keeps the one it holds.
    if held.is_some_and(|h| w.version < h) {
        return Err(format!(
            "version {} is older than the one held ({})",
            w.version,
            held.unwrap_or_default()
        ));
    }
    if w.priors.is_empty() || w.priors.len() > MAX_PRIORS {
        return Err(format!(
            "{} priors: between 1 and {MAX_PRIORS} expected",
            w.priors.len()
        ));
    }
    let priors = w
        .priors
        .into_iter()
        .enumerate()
        .map(|(i, shape)| {
            Prior::new(shape).ok_or_else(|| {
                format!("prior {i} is not 168 finite, non-negative values with a positive mean")
            })
        })
        .collect::<Result<Vec<Prior>, String>>()?;
    Ok(ChainPriors {
        version: w.version,
        priors,
    })
}

/// A signed message (the central side's half; `vitrine chain-prior`).
pub fn sign(seed: &[u8; 32], version: u64, priors: &[Vec<f64>]) -> Vec<u8> {
    let w = Wire {
        schema: PRIOR_SCHEMA.into(),
        version,
        priors: priors.to_vec(),
        signature: signature(seed, &signed_bytes(version, priors)),
    };
    serde_json::to_vec(&w).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    fn key(seed: &[u8; 32]) -> [u8; 32] {
        let b = base64::engine::general_purpose::STANDARD
            .decode(super::super::public_key(seed))
            .unwrap();
        b.try_into().unwrap()
    }

    fn week() -> Vec<f64> {
        (0..168).map(|s| 1.0 + (s % 24) as f64 / 10.0).collect()
    }

    #[test]
    fn a_signed_prior_is_taken_and_every_other_is_refused_with_its_reason() {
        let (seed, other) = ([7u8; 32], [8u8; 32]);
        let pinned = key(&seed);
        let good = sign(&seed, 5, &[week(), week()]);
        let c = verify(&good, &pinned, Some(4)).expect("genuine and newer");
        assert_eq!((c.version, c.priors.len()), (5, 2));
        let mean = c.priors[0].shape.iter().sum::<f64>() / 168.0;
        assert!((mean - 1.0).abs() < 1e-9);
        let refuse = |payload: &[u8], held: Option<u64>, why: &str| {
            let e = verify(payload, &pinned, held).expect_err(why);
            assert!(e.contains(why), "{e:?} does not say {why:?}");
        };
        refuse(&good, Some(6), "older than the one held (6)");
        assert!(
            verify(&good, &pinned, Some(5)).is_ok(),
            "the retained one again"
        );
        refuse(&sign(&other, 6, &[week()]), None, "bad signature");
        // Changing one value after signing breaks the signature.
        let text = String::from_utf8(good.clone())
            .unwrap()
            .replacen("1.1", "9.1", 1);
        refuse(text.as_bytes(), None, "bad signature");
        refuse(b"{\"schema\":1}", None, "malformed chain prior");
        refuse(
            &sign(&seed, 6, &[vec![1.0; 100]]),
            None,
            "prior 0 is not 168",
        );
        refuse(&sign(&seed, 6, &[]), None, "between 1 and 16");
        refuse(&vec![b' '; MAX_PRIOR_BYTES + 1], None, "oversized");
    }
}
