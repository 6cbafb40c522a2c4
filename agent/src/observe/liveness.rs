//! [`Liveness`]: the pure decision whether the watchdog may be fed (it takes `now`, reads no
//! clock).

use std::time::Duration;

/// One source's heartbeat, as the liveness check sees it.
#[derive(Debug, Clone)]
pub struct Beat<'a> {
    pub id: &'a str,
    /// `mono_ms()` of the source's last step (a frame or block analysed, or a reconnect try).
    pub last_ms: u64,
    /// A source that finished (end of a file) is not stalled.
    pub done: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Alive,
    /// Why the watchdog is not fed (logged once per episode, and shown in `STATUS=`).
    Stalled(String),
}

/// The watchdog policy: feed only while every running source makes progress and the outbox
/// answers. A source stuck longer than `stall_ms` (a hung decoder, a blocked analysis thread)
/// or an outbox that cannot be taken (a hung disk) stops the feeding; systemd then restarts us.
#[derive(Debug, Clone, Copy)]
pub struct Liveness {
    pub stall_ms: u64,
}

impl Liveness {
    /// From systemd's watchdog period: stalled after half of it, so a stall is noticed and
    /// the feeding stopped well before systemd's deadline would be reached anyway.
    pub fn for_watchdog(period: Duration) -> Liveness {
        Liveness {
            stall_ms: (period.as_millis() as u64 / 2).max(1000),
        }
    }

    pub fn check(&self, now_ms: u64, beats: &[Beat<'_>], outbox_answers: bool) -> Verdict {
        let mut stuck: Vec<String> = beats
            .iter()
            .filter(|b| !b.done && now_ms.saturating_sub(b.last_ms) > self.stall_ms)
            .map(|b| {
                format!(
                    "source {} made no progress for {} s",
                    b.id,
                    now_ms.saturating_sub(b.last_ms) / 1000
                )
            })
            .collect();
        if !outbox_answers {
            stuck.push("the outbox did not answer (disk hung?)".to_string());
        }
        if stuck.is_empty() {
            Verdict::Alive
        } else {
            Verdict::Stalled(stuck.join("; "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn beat(id: &str, last_ms: u64, done: bool) -> Beat<'_> {
        Beat { id, last_ms, done }
    }

    #[test]
    fn alive_while_every_source_beats() {
        let l = Liveness { stall_ms: 5000 };
        let beats = [beat("door", 9_000, false), beat("mic", 12_000, false)];
        assert_eq!(l.check(13_000, &beats, true), Verdict::Alive);
    }

    #[test]
    fn a_stuck_source_stops_the_watchdog() {
        let l = Liveness { stall_ms: 5000 };
        let beats = [beat("door", 1_000, false), beat("mic", 12_000, false)];
        match l.check(13_000, &beats, true) {
            Verdict::Stalled(why) => assert!(why.contains("door") && !why.contains("mic"), "{why}"),
            v => panic!("{v:?}"),
        }
    }

    #[test]
    fn a_finished_source_is_not_stalled() {
        let l = Liveness { stall_ms: 5000 };
        assert_eq!(
            l.check(60_000, &[beat("file", 1_000, true)], true),
            Verdict::Alive
        );
    }

    #[test]
    fn a_hung_outbox_stops_the_watchdog() {
        let l = Liveness { stall_ms: 5000 };
        assert!(matches!(
            l.check(1_000, &[beat("door", 1_000, false)], false),
            Verdict::Stalled(w) if w.contains("outbox")
        ));
    }

    #[test]
    fn stall_threshold_is_half_the_watchdog_period() {
        assert_eq!(
            Liveness::for_watchdog(Duration::from_secs(30)).stall_ms,
            15_000
        );
        assert_eq!(
            Liveness::for_watchdog(Duration::from_millis(10)).stall_ms,
            1000
        );
    }
}
