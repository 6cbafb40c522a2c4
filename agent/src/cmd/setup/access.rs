//! Who may use the setup page: whoever holds the one-time token `vitrine setup` printed on
//! its console and the status screen. The token is exchanged, once, for a session cookie
//! (HttpOnly, SameSite=Strict) within its time to live; after that it opens nothing. Too many
//! wrong tokens burn it (start `vitrine setup` again). Pure: the caller gives the time.

use std::time::{Duration, Instant};

/// Wrong tokens tried before the token is burned.
pub const MAX_FAILURES: u32 = 10;
/// Token alphabet: no 0/o, 1/l/i (read off a small screen, typed by hand).
const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";

/// Why a request is refused, each with the message the technician sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    NoToken,
    Wrong,
    Expired,
    Used,
    Burned,
    NoSession,
    /// The token came from another page (a picture, a frame, a script, a link elsewhere):
    /// refused without counting it as a guess.
    NotDirect,
    /// The request names a host that is not this box (a DNS-rebinding page).
    ForeignHost,
}

impl Denied {
    pub fn message(self) -> &'static str {
        match self {
            Denied::NoToken => "This page needs the one-time token: open the address `vitrine setup` printed (it ends in ?token=...), or read the token off the box's status screen.",
            Denied::Wrong => "Wrong token. Check the token printed by `vitrine setup` (also on the box's status screen).",
            Denied::Expired => "This token has expired. Start `vitrine setup` again for a new one.",
            Denied::Used => "This token was already used (it opens one session only). Start `vitrine setup` again for a new one.",
            Denied::Burned => "Too many wrong tokens: this setup session is locked. Start `vitrine setup` again.",
            Denied::NoSession => "Your setup session has ended (or this is another browser). Start `vitrine setup` again for a new token.",
            Denied::NotDirect => "The token works only in an address opened directly: paste the address `vitrine setup` printed into the browser's address bar, or type the token below. Nothing was counted.",
            Denied::ForeignHost => "This page answers only at the box's own address (an IP address, localhost or the box's name): open the address `vitrine setup` printed.",
        }
    }
}

#[derive(Debug)]
pub struct Access {
    token: String,
    token_until: Instant,
    used: bool,
    failures: u32,
    session: Option<(String, Instant)>,
    session_ttl: Duration,
}

impl Access {
    pub fn new(token: String, now: Instant, token_ttl: Duration, session_ttl: Duration) -> Access {
        Access {
            token,
            token_until: later(now, token_ttl),
            used: false,
            failures: 0,
            session: None,
            session_ttl,
        }
    }

    pub fn token(&self) -> &str {
        &self.token
    }

    pub fn used(&self) -> bool {
        self.used
    }

    /// Exchange the token for a session id (`session` is the new cookie's value).
    pub fn redeem(&mut self, given: &str, session: String, now: Instant) -> Result<String, Denied> {
        if self.failures >= MAX_FAILURES {
            return Err(Denied::Burned);
        }
        if !same(given.trim(), &self.token) {
            self.failures += 1;
            return Err(if self.failures >= MAX_FAILURES {
                Denied::Burned
            } else {
                Denied::Wrong
            });
        }
        if self.used {
            return Err(Denied::Used);
        }
        if now >= self.token_until {
            return Err(Denied::Expired);
        }
        self.used = true;
        self.session = Some((session.clone(), later(now, self.session_ttl)));
        Ok(session)
    }

    /// Whether the cookie's session is the live one.
    pub fn check(&self, cookie: Option<&str>, now: Instant) -> Result<(), Denied> {
        match (&self.session, cookie) {
            (Some((id, until)), Some(c)) if same(c, id) && now < *until => Ok(()),
            _ => Err(Denied::NoSession),
        }
    }
}

/// Whether a token exchange may be tried at all, from what the browser says of the request:
/// `Sec-Fetch-Site` and `Sec-Fetch-Dest` (sent by current browsers: a picture or a frame on
/// another page, or a link followed from one, is not the technician opening the address) and
/// `Host` (an IP address, localhost or one of the box's `names`; anything else is a
/// rebinding page's name). Refusals here do not count as wrong guesses.
pub fn token_request(
    site: Option<&str>,
    dest: Option<&str>,
    host: Option<&str>,
    names: &[String],
) -> Result<(), Denied> {
    let direct = site.is_none_or(|s| s == "none" || s == "same-origin");
    if !direct || dest.is_some_and(|d| d != "document") {
        return Err(Denied::NotDirect);
    }
    let Some(host) = host else { return Ok(()) };
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    };
    let ours = name.parse::<std::net::IpAddr>().is_ok()
        || name.eq_ignore_ascii_case("localhost")
        || names.iter().any(|n| n.eq_ignore_ascii_case(name));
    if ours {
        Ok(())
    } else {
        Err(Denied::ForeignHost)
    }
}

/// The names this box answers to besides its addresses: its host name, and that name under
/// `.local` (mDNS).
pub fn own_names() -> Vec<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let name = name.trim();
    if name.is_empty() {
        return Vec::new();
    }
    vec![name.to_string(), format!("{name}.local")]
}

/// `now + ttl`, or as late as the clock goes (a time to live beyond it never ends).
fn later(now: Instant, ttl: Duration) -> Instant {
    let mut ttl = ttl;
    loop {
        if let Some(t) = now.checked_add(ttl) {
            return t;
        }
        ttl /= 2;
    }
}

/// Comparison that takes as long whatever the first difference.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// `n` random bytes from the kernel.
pub fn random(n: usize) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut buf = vec![0; n];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut buf)?;
    Ok(buf)
}

/// A token like `k7qm-x3tr-9wfa` (12 characters of 31: 59 bits).
pub fn new_token() -> std::io::Result<String> {
    let bytes = random(24)?;
    let chars: Vec<char> = bytes
        .chunks(2)
        .map(|c| {
            let v = u16::from_le_bytes([c[0], c[1]]) as usize % ALPHABET.len();
            ALPHABET[v] as char
        })
        .collect();
    Ok(chars
        .chunks(4)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("-"))
}

/// A session id: 128 random bits, hex.
pub fn new_session() -> std::io::Result<String> {
    Ok(random(16)?.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access(now: Instant) -> Access {
        Access::new(
            "abcd-efgh-jkmn".into(),
            now,
            Duration::from_secs(600),
            Duration::from_secs(7200),
        )
    }

    #[test]
    fn only_the_address_opened_directly_at_the_box_may_try_a_token() {
        let names = vec!["shopbox".to_string(), "shopbox.local".to_string()];
        let ok = |site, dest, host| token_request(site, dest, host, &names);
        // Typed or pasted, followed from the refused page's form, an old browser.
        assert_eq!(
            ok(Some("none"), Some("document"), Some("127.0.0.1:8088")),
            Ok(())
        );
        assert_eq!(
            ok(Some("same-origin"), Some("document"), Some("10.0.0.7:8088")),
            Ok(())
        );
        assert_eq!(ok(None, None, None), Ok(()));
        assert_eq!(
            ok(Some("none"), Some("document"), Some("[::1]:8088")),
            Ok(())
        );
        assert_eq!(
            ok(Some("none"), Some("document"), Some("ShopBox.local:8088")),
            Ok(())
        );
        assert_eq!(
            ok(Some("none"), Some("document"), Some("localhost")),
            Ok(())
        );
        // <img src=...?token=...> on another site, a frame, a link on another site.
        assert_eq!(
            ok(Some("cross-site"), Some("image"), Some("127.0.0.1:8088")),
            Err(Denied::NotDirect)
        );
        assert_eq!(
            ok(Some("same-site"), Some("iframe"), Some("127.0.0.1:8088")),
            Err(Denied::NotDirect)
        );
        assert_eq!(
            ok(Some("cross-site"), Some("document"), Some("127.0.0.1:8088")),
            Err(Denied::NotDirect)
        );
        assert_eq!(
            ok(Some("same-origin"), Some("empty"), Some("127.0.0.1:8088")),
            Err(Denied::NotDirect)
        );
        // A rebinding page's own name.
        assert_eq!(
            ok(Some("none"), Some("document"), Some("evil.example:8088")),
            Err(Denied::ForeignHost)
        );
    }

    #[test]
    fn huge_times_to_live_neither_panic_nor_burn_the_token() {
        let t0 = Instant::now();
        let mut a = Access::new("abcd-efgh-jkmn".into(), t0, Duration::MAX, Duration::MAX);
        let s = a.redeem("abcd-efgh-jkmn", "s1".into(), t0).unwrap();
        assert_eq!(
            a.check(Some(&s), t0 + Duration::from_secs(86400 * 365)),
            Ok(())
        );
    }

    #[test]
    fn the_token_opens_one_session_once() {
        let t0 = Instant::now();
        let mut a = access(t0);
        assert_eq!(a.check(None, t0), Err(Denied::NoSession));
        let s = a.redeem("abcd-efgh-jkmn", "s1".into(), t0).unwrap();
        assert_eq!(a.check(Some(&s), t0), Ok(()));
        assert_eq!(a.check(Some("s2"), t0), Err(Denied::NoSession));
        assert_eq!(
            a.redeem("abcd-efgh-jkmn", "s3".into(), t0),
            Err(Denied::Used)
        );
        assert_eq!(
            a.check(Some(&s), t0 + Duration::from_secs(7201)),
            Err(Denied::NoSession)
        );
    }

    #[test]
    fn wrong_and_expired_tokens_are_refused_and_guessing_burns_it() {
        let t0 = Instant::now();
        let mut a = access(t0);
        assert_eq!(
            a.redeem("abcd-efgh-jkmm", "s".into(), t0),
            Err(Denied::Wrong)
        );
        assert_eq!(
            a.redeem("abcd-efgh-jkmn", "s".into(), t0 + Duration::from_secs(601)),
            Err(Denied::Expired)
        );
        for _ in 0..MAX_FAILURES {
            let _ = a.redeem("nope", "s".into(), t0);
        }
        assert_eq!(
            a.redeem("abcd-efgh-jkmn", "s".into(), t0),
            Err(Denied::Burned)
        );
    }

    #[test]
    fn tokens_are_random_and_readable() {
        let (a, b) = (new_token().unwrap(), new_token().unwrap());
        assert_ne!(a, b);
        assert_eq!(a.len(), 14);
        assert!(a.chars().all(|c| c == '-' || ALPHABET.contains(&(c as u8))));
        assert_eq!(new_session().unwrap().len(), 32);
    }
}
