//! A point-in-time view of the agent.

use super::UplinkStats;

/// Where the broker connection stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Broker {
    /// No `[mqtt]`: events stay in the outbox.
    None,
    Connected,
    Disconnected,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SourceStatus {
    pub id: String,
    pub kind: &'static str,
    pub up: bool,
    pub analysed: u64,
    pub dropped: u64,
    /// The decoder a compressed stream goes through (`"ffmpeg (software)"`), when known.
    pub decoder: Option<&'static str>,
    /// People in view now (cameras), `None` when below `privacy.k_min` or not a camera.
    pub occupancy: Option<u64>,
}

/// A point-in-time view of the agent: aggregates and counters only.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub device_id: String,
    pub store_id: String,
    pub uptime_s: u64,
    pub sources: Vec<SourceStatus>,
    /// Configured sources that could not be started.
    pub failed: Vec<String>,
    pub broker: Broker,
    pub uplink: UplinkStats,
    /// False when the outbox could not be read in time (a hung disk): the outbox figures
    /// are the last ones read, and the watchdog is not fed.
    pub outbox_answers: bool,
    pub outbox_events: u64,
    pub outbox_bytes: u64,
    pub outbox_oldest_s: Option<u64>,
    pub k_min: u32,
    /// `vitrine setup` is running: its address and one-time token, for the technician.
    pub setup: Option<String>,
    /// The people detector and its arithmetic (`yolox-nano f16`), once loaded.
    pub models: Option<String>,
}

impl Snapshot {
    pub fn sources_up(&self) -> usize {
        self.sources.iter().filter(|s| s.up).count()
    }

    pub fn sources_total(&self) -> usize {
        self.sources.len() + self.failed.len()
    }

    /// People in view over all cameras, `None` if any camera's count is suppressed or none runs.
    pub fn occupancy(&self) -> Option<u64> {
        let cams: Vec<&SourceStatus> = self
            .sources
            .iter()
            .filter(|s| s.kind == "camera" && s.up)
            .collect();
        if cams.is_empty() {
            return None;
        }
        cams.iter().map(|s| s.occupancy).sum()
    }

    /// One line for systemd's `STATUS=` (what `systemctl status vitrine` shows).
    pub fn line(&self) -> String {
        let broker = match self.broker {
            Broker::None => "no broker configured",
            Broker::Connected => "broker connected",
            Broker::Disconnected => "broker disconnected",
        };
        let outbox = if self.outbox_answers {
            format!("outbox {} events", self.outbox_events)
        } else {
            format!(
                "outbox NOT ANSWERING (disk hung?), {} events when last read",
                self.outbox_events
            )
        };
        format!(
            "{}/{} sources up, {broker}, {outbox}",
            self.sources_up(),
            self.sources_total(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn occupancy_is_suppressed_when_any_camera_is_below_k() {
        let src = |id: &str, occ: Option<u64>| SourceStatus {
            id: id.into(),
            kind: "camera",
            up: true,
            analysed: 1,
            dropped: 0,
            decoder: None,
            occupancy: occ,
        };
        let mut s = Snapshot {
            device_id: "d".into(),
            store_id: "s".into(),
            uptime_s: 0,
            sources: vec![src("a", Some(4)), src("b", Some(7))],
            failed: vec![],
            broker: Broker::None,
            uplink: UplinkStats::default(),
            outbox_answers: true,
            outbox_events: 0,
            outbox_bytes: 0,
            outbox_oldest_s: None,
            k_min: 3,
            setup: None,
            models: None,
        };
        assert_eq!(s.occupancy(), Some(11));
        s.sources[1].occupancy = None;
        assert_eq!(s.occupancy(), None);
        assert_eq!(
            s.line(),
            "2/2 sources up, no broker configured, outbox 0 events"
        );
    }
}
