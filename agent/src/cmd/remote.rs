//! The central service's half of remote configuration, for operators and tests:
//! `vitrine config-keygen` (a signing key; prints the public key a box pins) and
//! `vitrine config-request` (a signed `config/set` request for one box) and
//! `vitrine chain-prior` (a signed chain prior for every box).

use std::io::Read as _;
use std::path::Path;

use base64::Engine as _;

use crate::remote::{self, journal};

/// Write a new Ed25519 signing key (base64 seed, mode 0600) and print its public key.
pub fn keygen(out: &Path) -> anyhow::Result<()> {
    anyhow::ensure!(
        !out.exists(),
        "{} exists; fix: choose another path (a signing key is never overwritten)",
        out.display()
    );
    let mut seed = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut seed)?;
    let text = base64::engine::general_purpose::STANDARD.encode(seed) + "\n";
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(out)?;
        std::io::Write::write_all(&mut f, text.as_bytes())?;
        f.sync_all()?;
    }
    println!("{}", remote::public_key(&seed));
    eprintln!(
        "signing key written to {} (keep it on the central service only); pin the public key above in each box's config:\n[remote_config]\npublic_key = \"{}\"",
        out.display(),
        remote::public_key(&seed)
    );
    Ok(())
}

pub(crate) fn read_seed(key: &Path) -> anyhow::Result<[u8; 32]> {
    let text = std::fs::read_to_string(key)
        .map_err(|e| anyhow::anyhow!("cannot read the signing key {}: {e}", key.display()))?;
    base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .ok_or_else(|| {
            anyhow::anyhow!(
                "{} is not a signing key (32 bytes, base64); fix: make one with `vitrine config-keygen`",
                key.display()
            )
        })
}

pub struct RequestArgs<'a> {
    pub key: &'a Path,
    pub store: &'a str,
    pub device: &'a str,
    pub version: u64,
    pub config: &'a Path,
    pub out: Option<&'a Path>,
}

/// A signed request carrying the file `config` for one box (JSON on stdout or `out`).
pub fn request(a: &RequestArgs) -> anyhow::Result<()> {
    let seed = read_seed(a.key)?;
    let text = std::fs::read_to_string(a.config)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", a.config.display()))?;
    let body = remote::sign(&seed, a.store, a.device, a.version, &text);
    match a.out {
        Some(p) => journal::write_atomic(p, &body)?,
        None => println!("{}", String::from_utf8_lossy(&body)),
    }
    Ok(())
}

/// A signed chain prior from a JSON file of shapes (JSON on stdout or `out`); the shapes are
/// checked as a box checks them, so a malformed file fails here and not on every box.
pub fn chain_prior(
    key: &Path,
    version: u64,
    priors: &Path,
    out: Option<&Path>,
) -> anyhow::Result<()> {
    let seed = read_seed(key)?;
    let text = std::fs::read_to_string(priors)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", priors.display()))?;
    let shapes: Vec<Vec<f64>> = serde_json::from_str(&text).map_err(|e| {
        anyhow::anyhow!(
            "{}: {e}; fix: a JSON array of shapes, each an array of 168 numbers",
            priors.display()
        )
    })?;
    let body = remote::prior::sign(&seed, version, &shapes);
    let public = remote::public_key(&seed);
    let pinned: [u8; 32] = base64::engine::general_purpose::STANDARD
        .decode(public)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| anyhow::anyhow!("the signing key has no public key"))?;
    remote::prior::verify(&body, &pinned, None)
        .map_err(|e| anyhow::anyhow!("{}: {e}", priors.display()))?;
    match out {
        Some(p) => journal::write_atomic(p, &body)?,
        None => println!("{}", String::from_utf8_lossy(&body)),
    }
    Ok(())
}
