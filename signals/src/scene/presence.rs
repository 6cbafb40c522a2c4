//! Who is in view, and when someone is gone for good. A person (a confirmed track) who is not
//! seen for [`GRACE_MS`] is forgotten: their area visits end, a crossing they were last seen
//! completing is counted, attention forgets them. Until then a short occlusion changes
//! nothing: an area visit goes on, and a visit left behind by a broken track is taken over by
//! the track that continues it inside the same area (see `area`).
//!
//! Keys are the tracker's ephemeral ids (or, for annotations, the annotated ids) and never
//! leave the process.

use std::collections::HashMap;

/// How long someone may go unseen and still be the same person: the same visit or crossing.
/// It is the longest gap the tracker bridges (a lost track is re-linked up to this long after,
/// see `track::relink`), so a person it finds again never finds their visit closed.
pub const GRACE_MS: u64 = crate::track::relink::MAX_GAP_MS;

/// Last sighting of each person seen within the grace.
#[derive(Debug, Default)]
pub struct Presence {
    last_ms: HashMap<u64, u64>,
}

impl Presence {
    /// This frame's people; returns those unseen longer than the grace (now forgotten).
    pub fn observe(&mut self, now_ms: u64, keys: impl Iterator<Item = u64>) -> Vec<u64> {
        for k in keys {
            self.last_ms.insert(k, now_ms);
        }
        let mut gone: Vec<u64> = self
            .last_ms
            .iter()
            .filter(|(_, t)| now_ms.saturating_sub(**t) > GRACE_MS)
            .map(|(k, _)| *k)
            .collect();
        gone.sort_unstable();
        for k in &gone {
            self.last_ms.remove(k);
        }
        gone
    }

    /// Everyone leaves (the source ended).
    pub fn finish(&mut self) -> Vec<u64> {
        let mut keys: Vec<u64> = self.last_ms.drain().map(|(k, _)| k).collect();
        keys.sort_unstable();
        keys
    }

    /// People remembered (bounded by the tracks alive plus those unseen within the grace).
    pub fn len(&self) -> usize {
        self.last_ms.len()
    }

    pub fn is_empty(&self) -> bool {
        self.last_ms.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_person_unseen_longer_than_the_grace_is_forgotten_once() {
        let mut p = Presence::default();
        assert!(p.observe(0, [1, 2].into_iter()).is_empty());
        assert!(p.observe(GRACE_MS - 500, [2].into_iter()).is_empty());
        assert_eq!(p.observe(GRACE_MS + 100, [2].into_iter()), vec![1]);
        assert!(p.observe(GRACE_MS + 200, [2].into_iter()).is_empty());
        assert_eq!(p.len(), 1);
        assert_eq!(p.finish(), vec![2]);
        assert!(p.is_empty());
    }
}
