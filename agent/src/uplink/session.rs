//! The uplink's session: what has been handed to the MQTT client, what waits for its PUBACK,
//! where sending resumes. A plain state machine (no rumqttc, no IO): the driver feeds it the
//! connection's events and does what it answers.
//!
//! One client per connection and one request channel, so packet ids come back in the order
//! publishes were handed over (`queued` is FIFO). A new connection starts from scratch: the
//! client's own memory is never trusted, everything unacknowledged is read again from the
//! outbox (`cursor` back to `None`).

use std::collections::{HashMap, VecDeque};

/// Records in flight at once (handed over, PUBACK pending).
pub const MAX_INFLIGHT: usize = 32;

/// What a publish carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Label {
    /// An outbox record: acknowledged in the outbox on its PUBACK.
    Record(u64),
    /// The status or health message: nothing to acknowledge.
    Status,
}

/// What a PUBACK means for the outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acked {
    /// The broker took the record: acknowledge `seq` in the outbox.
    Record(u64),
    /// The broker refused the record (e.g. ACL): it stays in the outbox, sent again on the
    /// next connection.
    Refused(u64),
    /// A status message was acknowledged or refused, or an unknown packet id.
    Other,
}

#[derive(Debug, Default)]
pub struct Session {
    queued: VecDeque<Label>,
    inflight: HashMap<u16, Label>,
    cursor: Option<u64>,
    connected: bool,
}

impl Session {
    /// The broker accepted the connection: send everything unacknowledged again.
    pub fn connected(&mut self) {
        *self = Session {
            connected: true,
            ..Session::default()
        };
    }

    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// Handed over, not yet acknowledged.
    pub fn pending(&self) -> usize {
        self.queued.len() + self.inflight.len()
    }

    /// Whether another record may be sent now.
    pub fn can_send(&self) -> bool {
        self.connected && self.pending() < MAX_INFLIGHT
    }

    /// The last record sent on this connection (the outbox is read after it).
    pub fn cursor(&self) -> Option<u64> {
        self.cursor
    }

    /// A publish was handed to the client.
    pub fn handed_over(&mut self, label: Label) {
        if let Label::Record(seq) = label {
            self.cursor = Some(seq);
        }
        self.queued.push_back(label);
    }

    /// The client sent the oldest queued publish with packet id `pkid`. QoS 0 publishes
    /// (`pkid` 0) get no acknowledgement: sent is all there is, so a record is done now.
    pub fn went_out(&mut self, pkid: u16) -> Option<u64> {
        let label = self.queued.pop_front()?;
        if pkid == 0 {
            return match label {
                Label::Record(seq) => Some(seq),
                Label::Status => None,
            };
        }
        self.inflight.insert(pkid, label);
        None
    }

    /// A PUBACK for `pkid`; `success` unless the broker gave a failure reason.
    pub fn puback(&mut self, pkid: u16, success: bool) -> Acked {
        match (self.inflight.remove(&pkid), success) {
            (Some(Label::Record(seq)), true) => Acked::Record(seq),
            (Some(Label::Record(seq)), false) => Acked::Refused(seq),
            _ => Acked::Other,
        }
    }

    /// The connection is gone; what was in flight is still in the outbox.
    pub fn disconnected(&mut self) {
        self.connected = false;
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn records_are_done_on_their_puback_in_any_order() {
        let mut s = Session::default();
        assert!(
            !s.can_send(),
            "nothing is sent before the broker accepts the connection"
        );
        s.connected();
        s.handed_over(Label::Status);
        s.handed_over(Label::Record(7));
        s.handed_over(Label::Record(8));
        assert_eq!(s.cursor(), Some(8));
        assert_eq!(
            (s.went_out(1), s.went_out(2), s.went_out(3)),
            (None, None, None)
        );
        assert_eq!(s.puback(3, true), Acked::Record(8));
        assert_eq!(s.puback(1, true), Acked::Other, "the status message");
        assert_eq!(s.pending(), 1);
        assert_eq!(s.puback(2, false), Acked::Refused(7));
        assert_eq!(
            s.puback(2, true),
            Acked::Other,
            "a duplicate PUBACK acknowledges nothing"
        );
        assert_eq!(s.pending(), 0);
    }

    #[test]
    fn qos0_records_are_done_when_sent() {
        let mut s = Session::default();
        s.connected();
        s.handed_over(Label::Record(3));
        assert_eq!(s.went_out(0), Some(3));
        assert_eq!(s.pending(), 0);
    }

    #[test]
    fn a_new_connection_resends_everything_unacknowledged() {
        let mut s = Session::default();
        s.connected();
        s.handed_over(Label::Record(1));
        s.went_out(5);
        s.disconnected();
        assert!(!s.can_send());
        s.connected();
        assert_eq!(
            (s.cursor(), s.pending()),
            (None, 0),
            "read again from the outbox"
        );
        assert_eq!(
            s.puback(5, true),
            Acked::Other,
            "a PUBACK of the old connection"
        );
    }

    #[test]
    fn the_window_of_records_in_flight_is_bounded() {
        let mut s = Session::default();
        s.connected();
        for seq in 0..MAX_INFLIGHT as u64 {
            assert!(s.can_send());
            s.handed_over(Label::Record(seq));
        }
        assert!(!s.can_send());
        s.went_out(1);
        assert_eq!(s.puback(1, true), Acked::Record(0));
        assert!(s.can_send());
    }

    proptest! {
        /// Whatever the order of PUBACKs, each record handed over is acknowledged or refused
        /// exactly once, and nothing else is.
        #[test]
        fn every_record_is_answered_once(n in 1usize..40, order in proptest::collection::vec(any::<u16>(), 0..80)) {
            let mut s = Session::default();
            s.connected();
            for seq in 0..n as u64 {
                s.handed_over(Label::Record(seq));
                prop_assert_eq!(s.went_out(seq as u16 + 1), None);
            }
            let mut answered = std::collections::BTreeSet::new();
            let pkids = order.iter().map(|p| p % (n as u16 + 3)).chain(1..=n as u16);
            for pkid in pkids {
                match s.puback(pkid, pkid % 5 != 0) {
                    Acked::Record(seq) | Acked::Refused(seq) => prop_assert!(answered.insert(seq)),
                    Acked::Other => {}
                }
            }
            prop_assert_eq!(answered.len(), n);
            prop_assert_eq!(s.pending(), 0);
        }
    }
}
