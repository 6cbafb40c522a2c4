//! What a reload changes: a pure comparison of the running configuration with the new file.
//!
//! Sources (cameras, microphones) are restarted when their own section changed, and all of
//! them when `[privacy]` or `[models]` changed (both shape every source's analysis). Sections
//! that the running connection and state are built on (`[device]`, `[mqtt]`, `[outbox]`,
//! `[status]`) are kept as they are until a restart, and the reload says so.

use vitrine_config::Config;

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Running sources whose configuration is unchanged.
    pub keep: Vec<String>,
    /// Running sources to stop (their open windows are closed and stored) and start again.
    pub restart: Vec<String>,
    /// Sources new in the file.
    pub start: Vec<String>,
    /// Running sources no longer in the file.
    pub stop: Vec<String>,
    /// Changed sections that only take effect on a restart of the agent.
    pub need_restart: Vec<&'static str>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.restart.is_empty()
            && self.start.is_empty()
            && self.stop.is_empty()
            && self.need_restart.is_empty()
    }
}

/// Compare the running configuration `old` (with `running` the ids of its running sources)
/// with `new`.
pub fn plan(old: &Config, new: &Config, running: &[String]) -> Plan {
    let mut p = Plan::default();
    let everything = old.privacy != new.privacy || old.models != new.models;
    let same = |id: &str| -> Option<bool> {
        let cam = |c: &Config| c.cameras.iter().find(|x| x.id == id).cloned();
        let mic = |c: &Config| c.microphones.iter().find(|x| x.id == id).cloned();
        match (cam(new), mic(new)) {
            (Some(n), _) => Some(cam(old).is_some_and(|o| o == n)),
            (_, Some(n)) => Some(mic(old).is_some_and(|o| o == n)),
            (None, None) => None,
        }
    };
    for id in running {
        match same(id) {
            None => p.stop.push(id.clone()),
            Some(true) if !everything => p.keep.push(id.clone()),
            Some(_) => p.restart.push(id.clone()),
        }
    }
    for id in new.source_ids() {
        if !running.iter().any(|r| r == id) {
            p.start.push(id.to_string());
        }
    }
    for (name, changed) in [
        ("device", old.device != new.device),
        ("mqtt", old.mqtt != new.mqtt),
        ("outbox", old.outbox != new.outbox),
        ("status", old.status != new.status),
        // The uplink subscribes to config/set when it starts; a new key or timeout applies
        // at once, turning remote configuration on or off needs a restart.
        (
            "remote_config",
            old.remote_config.is_some() != new.remote_config.is_some(),
        ),
    ] {
        if changed {
            p.need_restart.push(name);
        }
    }
    p
}

/// The configuration in effect after applying `new`: its sources, privacy and models; the
/// running device, broker, outbox and status sections (see [`plan`]).
pub fn effective(old: &Config, new: &Config) -> Config {
    Config {
        device: old.device.clone(),
        mqtt: old.mqtt.clone(),
        outbox: old.outbox.clone(),
        status: old.status.clone(),
        ..new.clone()
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    const BASE: &str = "[device]\nid = \"box\"\nstore_id = \"s\"\n\
        [[cameras]]\nid = \"door\"\nrtsp = \"rtsp://10.0.0.5/door\"\n\
        [[cameras]]\nid = \"aisle\"\nrtsp = \"rtsp://10.0.0.6/aisle\"\n\
        [[microphones]]\nid = \"mic\"\ndevice = \"default\"\n";

    fn cfg(text: &str) -> Config {
        Config::parse(text, Path::new("agent.toml")).expect("config")
    }

    fn running() -> Vec<String> {
        ["door", "aisle", "mic"].map(String::from).to_vec()
    }

    #[test]
    fn turning_remote_configuration_on_takes_a_restart() {
        let on = format!(
            "{BASE}[mqtt]\nurl = \"mqtt://localhost\"\n[remote_config]\npublic_key = \"{}\"\n",
            "A".repeat(43) + "="
        );
        let off = format!("{BASE}[mqtt]\nurl = \"mqtt://localhost\"\n");
        let p = plan(&cfg(&off), &cfg(&on), &running());
        assert_eq!(p.need_restart, ["remote_config"]);
        assert!(plan(&cfg(&on), &cfg(&on), &running()).is_empty());
    }

    #[test]
    fn only_the_changed_source_restarts() {
        let new = BASE.replace("10.0.0.6/aisle", "10.0.0.7/aisle");
        let p = plan(&cfg(BASE), &cfg(&new), &running());
        assert_eq!(p.keep, ["door", "mic"]);
        assert_eq!(p.restart, ["aisle"]);
        assert!(p.start.is_empty() && p.stop.is_empty() && p.need_restart.is_empty());
    }

    #[test]
    fn added_and_removed_sources_start_and_stop() {
        let new = BASE.replace("id = \"aisle\"", "id = \"till\"");
        let p = plan(&cfg(BASE), &cfg(&new), &running());
        assert_eq!(p.stop, ["aisle"]);
        assert_eq!(p.start, ["till"]);
    }

    #[test]
    fn privacy_restarts_every_source_and_the_broker_waits_for_a_restart() {
        let new =
            format!("{BASE}[privacy]\nwindow_secs = 30\n[mqtt]\nurl = \"mqtt://localhost\"\n");
        let p = plan(&cfg(BASE), &cfg(&new), &running());
        assert_eq!(p.restart, running());
        assert_eq!(p.need_restart, ["mqtt"]);
        let e = effective(&cfg(BASE), &cfg(&new));
        assert_eq!(e.privacy.window_secs, 30);
        assert!(e.mqtt.is_none(), "the running broker settings stay");
    }

    #[test]
    fn the_same_file_changes_nothing() {
        let p = plan(&cfg(BASE), &cfg(BASE), &running());
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(p.keep, running());
    }
}
