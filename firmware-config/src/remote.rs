//! Validation of `[remote_config]`: the pinned Ed25519 key of the central service and how long
//! a remotely set configuration has to come up healthy.

use base64::Engine as _;

use crate::error::Collector;
use crate::raw::RawRemoteConfig;
use crate::RemoteConfig;

pub(crate) const KEYS: &[&str] = &["public_key", "apply_timeout_secs", "federated"];

pub(crate) fn validate(
    c: &mut Collector,
    raw: RawRemoteConfig,
    has_mqtt: bool,
) -> Option<RemoteConfig> {
    if !has_mqtt {
        c.push(
            "remote_config",
            "remote configuration needs a broker".to_string(),
            Some("add an [mqtt] section, or remove [remote_config]".to_string()),
        );
    }
    let key = base64::engine::general_purpose::STANDARD
        .decode(raw.public_key.trim())
        .ok()
        .and_then(|k| <[u8; 32]>::try_from(k).ok());
    if key.is_none() {
        c.push(
            "remote_config.public_key",
            "not an Ed25519 public key (32 bytes, base64)".to_string(),
            Some(
                "paste the public key `vitrine config-keygen` printed (44 characters ending in =)"
                    .to_string(),
            ),
        );
    }
    let secs = raw.apply_timeout_secs.unwrap_or(60);
    if !(5..=3600).contains(&secs) {
        c.push(
            "remote_config.apply_timeout_secs",
            format!("{secs} s is out of range"),
            Some(
                "give a new configuration 5 to 3600 seconds to come up (60 is the default)"
                    .to_string(),
            ),
        );
    }
    Some(RemoteConfig {
        public_key: key?,
        apply_timeout_secs: secs.clamp(5, 3600) as u32,
        federated: raw.federated.unwrap_or(false),
    })
}
