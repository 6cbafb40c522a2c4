//! The dashboard's login: a password checked against its Argon2id hash (PHC string, the
//! `hash-password` command makes one), then a session: 128 random bits in an HttpOnly,
//! SameSite=Strict cookie, kept in memory (a restart logs everyone out), at most
//! [`MAX_SESSIONS`], each for [`SESSION_SECS`].

use std::collections::HashMap;
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use axum::http::{header, HeaderMap};
use tokio::sync::Mutex;

pub const COOKIE: &str = "vitrine_dashboard";
pub const SESSION_SECS: u64 = 12 * 3600;
pub const MAX_SESSIONS: usize = 1000;

/// The Argon2id PHC string of `password` (a random salt each time).
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::encode_b64(&random(16)?).map_err(|e| anyhow::anyhow!("salt: {e}"))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("hashing the password: {e}"))
}

/// Whether a hash file's text is a PHC string Argon2 can check.
pub fn check_hash(hash: &str) -> anyhow::Result<()> {
    PasswordHash::new(hash).map(|_| ()).map_err(|e| {
        anyhow::anyhow!("the password file does not hold an Argon2 hash ({e}); fix: make one with `vitrine-ingest hash-password`")
    })
}

pub fn verify(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

fn random(n: usize) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut buf = vec![0u8; n];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut buf)?;
    Ok(buf)
}

#[derive(Default)]
pub struct Sessions {
    open: Mutex<HashMap<String, Instant>>,
}

impl Sessions {
    /// A new session's cookie value.
    pub async fn open(&self) -> std::io::Result<String> {
        let id: String = random(16)?.iter().map(|b| format!("{b:02x}")).collect();
        let mut open = self.open.lock().await;
        let now = Instant::now();
        open.retain(|_, until| *until > now);
        if open.len() >= MAX_SESSIONS {
            // The oldest gives way.
            if let Some(k) = open.iter().min_by_key(|(_, u)| **u).map(|(k, _)| k.clone()) {
                open.remove(&k);
            }
        }
        open.insert(id.clone(), now + Duration::from_secs(SESSION_SECS));
        Ok(id)
    }

    pub async fn valid(&self, headers: &HeaderMap) -> bool {
        let Some(id) = cookie(headers) else {
            return false;
        };
        let open = self.open.lock().await;
        open.get(&id).is_some_and(|until| *until > Instant::now())
    }

    pub async fn close(&self, headers: &HeaderMap) {
        if let Some(id) = cookie(headers) {
            self.open.lock().await.remove(&id);
        }
    }
}

fn cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_string())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn the_password_is_checked_against_its_hash() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify(&h, "correct horse"));
        assert!(!verify(&h, "wrong horse"));
        assert!(check_hash(&h).is_ok());
        assert!(check_hash("plain text").is_err());
        assert_ne!(h, hash_password("correct horse").unwrap(), "salted");
    }

    #[tokio::test]
    async fn a_session_is_its_cookie_until_closed() {
        let s = Sessions::default();
        let id = s.open().await.unwrap();
        let mut h = HeaderMap::new();
        assert!(!s.valid(&h).await);
        h.insert(
            header::COOKIE,
            format!("other=1; {COOKIE}={id}").parse().unwrap(),
        );
        assert!(s.valid(&h).await);
        s.close(&h).await;
        assert!(!s.valid(&h).await);
        let mut forged = HeaderMap::new();
        forged.insert(header::COOKIE, format!("{COOKIE}=00").parse().unwrap());
        assert!(!s.valid(&forged).await);
    }
}
