//! One item of the file (a camera, a zone, a calendar day, ...) deserialized on its own, its
//! mistakes recorded as located, hinted problems; and the one rule for ids. A leaf: every
//! section's validation uses it.

use serde::de::DeserializeOwned;

use crate::error::{closest, Collector};

/// Deserialize one item; on failure record a located, hinted problem and return None.
pub(crate) fn item<T: DeserializeOwned>(
    c: &mut Collector,
    at: &str,
    value: toml::Value,
    keys: &[&str],
) -> Option<T> {
    match serde_path_to_error::deserialize::<_, T>(value) {
        Ok(v) => Some(v),
        Err(e) => {
            let inner = e.inner().to_string();
            let sub = e.path().to_string();
            let mut field = if sub == "." || sub.is_empty() {
                at.to_string()
            } else {
                format!("{at}.{sub}")
            };
            let (message, hint) = if let Some(name) = between(&inner, "unknown field `", "`") {
                field = format!("{at}.{name}");
                let hint = match closest(name, keys.iter().copied()) {
                    Some(k) => format!(
                        "did you mean `{k}`? accepted keys here: {}",
                        keys.join(", ")
                    ),
                    None => format!("remove it; accepted keys here: {}", keys.join(", ")),
                };
                (format!("unknown key `{name}`"), Some(hint))
            } else if let Some(name) = between(&inner, "missing field `", "`") {
                field = format!("{at}.{name}");
                (
                    format!("required key `{name}` is missing"),
                    Some(format!("add `{name} = ...` to this table")),
                )
            } else if inner.starts_with("invalid type") {
                (
                    inner.clone(),
                    Some(
                        "check the value's type (quotes make a string; numbers are unquoted)"
                            .into(),
                    ),
                )
            } else {
                (inner.clone(), None)
            };
            c.push(field, message, hint);
            None
        }
    }
}

fn between<'a>(s: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let i = s.find(start)? + start.len();
    let j = s[i..].find(end)? + i;
    Some(&s[i..j])
}

/// Ids end up in MQTT topics and payloads: keep them to a safe alphabet.
pub(crate) fn check_id(c: &mut Collector, field: &str, id: &str) {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '-' | '_' | '.'));
    if !ok {
        c.push(
            field,
            format!("invalid id {id:?}"),
            Some(
                "use 1-64 characters from A-Z a-z 0-9 - _ . (ids appear in MQTT topics)"
                    .to_string(),
            ),
        );
    }
}
