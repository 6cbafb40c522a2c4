//! New configurations on trial, in the control loop. A verified remote request, or a save of
//! the setup page, is validated, written atomically (with a journal, see `remote::journal`),
//! applied like a reload, and kept only if every source comes up within
//! `[remote_config] apply_timeout_secs` (60 s without that section); a source that fails to
//! start, or the deadline, restores the previous file and reloads it. A remote request's
//! outcome is an event on `config/result`, stored in the outbox like a window (it has a seq
//! and survives outages); a save's is kept for the page to read (`Saves`).

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::Notify;
use vitrine_config::Config;
use vitrine_signals::event::rfc3339;

use crate::clock::{mono_ms, now_ms};
use crate::outbox::{lock_outbox, SharedOutbox};
use crate::remote::{self, journal, Expect, Outcome};

use super::sources::SourceSet;

/// A new configuration is judged healthy no sooner than this after it was applied (its
/// sources must have had the time to register and connect).
const SETTLE_MS: u64 = 2_000;

/// How long a save on the box may take to prove itself without `[remote_config]`.
const LOCAL_TIMEOUT_SECS: u32 = 60;

/// Where a configuration on trial came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    /// A signed request of this version.
    Remote(u64),
    /// The setup page's save of this number.
    Setup(u64),
}

struct Trial {
    origin: Origin,
    applied_ms: u64,
    deadline_ms: u64,
}

/// Where a save of the setup page stands.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "state", content = "reason", rename_all = "snake_case")]
pub enum SaveState {
    Trying,
    Applied,
    RolledBack(String),
}

/// The latest save's number and state, read by the control socket for the page.
#[derive(Debug, Default)]
pub struct Saves(std::sync::Mutex<Option<(u64, SaveState)>>);

impl Saves {
    pub fn state(&self, id: u64) -> Option<SaveState> {
        let last = self.0.lock().unwrap_or_else(|p| p.into_inner());
        last.as_ref()
            .filter(|(n, _)| *n == id)
            .map(|(_, s)| s.clone())
    }

    fn set(&self, id: u64, state: SaveState) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some((id, state));
    }
}

pub struct Remote {
    outbox: SharedOutbox,
    wake: Arc<Notify>,
    state_dir: PathBuf,
    trial: Option<Trial>,
    pub saves: Arc<Saves>,
    next_save: u64,
}

/// What the control loop must do after a request or a tick.
#[derive(Debug, PartialEq, Eq)]
pub enum Action {
    Nothing,
    /// The file changed on disk: reload it.
    Reload,
}

impl Remote {
    pub fn new(cfg: &Config, outbox: SharedOutbox, wake: Arc<Notify>) -> Remote {
        Remote {
            outbox,
            wake,
            state_dir: cfg.outbox.dir.clone(),
            trial: None,
            saves: Arc::default(),
            next_save: 1,
        }
    }

    /// Whether a configuration is on trial (the control loop keeps running for its outcome,
    /// even with no source left).
    pub fn trying(&self) -> bool {
        self.trial.is_some()
    }

    /// A save of the setup page (`text`, the whole new file): put on trial like a remote
    /// request. Returns the save's number (its state is in `saves`); the caller reloads.
    pub fn try_setup_save(&mut self, cfg: &Config, text: &str) -> Result<u64, String> {
        if let Some(t) = &self.trial {
            return Err(format!(
                "busy: {} is still being tried; save again in a moment",
                t.origin.describe()
            ));
        }
        Config::parse(text, &cfg.file).map_err(|e| format!("invalid configuration:\n{e}"))?;
        journal::begin(&cfg.file, journal::LOCAL, text).map_err(|e| {
            format!(
                "cannot write {}: {e}; fix: the agent needs write access to the file and its directory",
                cfg.file.display()
            )
        })?;
        let id = self.next_save;
        self.next_save += 1;
        let secs = cfg
            .remote_config
            .as_ref()
            .map_or(LOCAL_TIMEOUT_SECS, |rc| rc.apply_timeout_secs);
        self.start_trial(Origin::Setup(id), secs);
        self.saves.set(id, SaveState::Trying);
        tracing::info!(save = id, file = %cfg.file.display(), "configuration saved on the box; applying");
        Ok(id)
    }

    fn start_trial(&mut self, origin: Origin, secs: u32) {
        let now = mono_ms();
        self.trial = Some(Trial {
            origin,
            applied_ms: now,
            deadline_ms: now + u64::from(secs) * 1000,
        });
    }

    /// The outcome of a trial: an event for a remote request, the page's state for a save.
    fn conclude(&self, cfg: &Config, origin: Origin, outcome: Outcome, reason: &str) {
        match origin {
            Origin::Remote(version) => self.report(cfg, Some(version), outcome, reason),
            Origin::Setup(id) => {
                tracing::info!(
                    save = id,
                    outcome = outcome.as_str(),
                    reason,
                    "configuration save"
                );
                let state = match outcome {
                    Outcome::Applied => SaveState::Applied,
                    _ => SaveState::RolledBack(reason.to_string()),
                };
                self.saves.set(id, state);
            }
        }
    }

    /// How long the control loop may wait for a message before calling [`Remote::tick`].
    pub fn patience(&self) -> Duration {
        match self.trial {
            Some(_) => Duration::from_millis(250),
            None => Duration::from_secs(3600),
        }
    }

    /// Store a `config/result` event and wake the uplink.
    pub fn report(&self, cfg: &Config, version: Option<u64>, outcome: Outcome, reason: &str) {
        let (store, device) = (&cfg.device.store_id, &cfg.device.id);
        let at = rfc3339(now_ms());
        let stored = lock_outbox(&self.outbox).try_append(mono_ms(), |seq| {
            Ok::<_, std::convert::Infallible>(remote::result_payload(
                store, device, seq, version, outcome, reason, &at,
            ))
        });
        match stored {
            Ok(seq) => tracing::info!(
                seq,
                ?version,
                outcome = outcome.as_str(),
                reason,
                "configuration request answered"
            ),
            Err(e) => {
                tracing::error!(error = %e, ?version, outcome = outcome.as_str(), reason, "configuration result could not be stored")
            }
        }
        self.wake.notify_one();
    }

    /// A request from the uplink. Returns whether the file on disk changed (then reload).
    pub fn request(&mut self, cfg: &Config, payload: &[u8], retained: bool) -> Action {
        let Some(rc) = &cfg.remote_config else {
            return Action::Nothing;
        };
        let last = journal::last_version(&self.state_dir);
        let expect = Expect {
            store_id: &cfg.device.store_id,
            device_id: &cfg.device.id,
            key: &rc.public_key,
            last_version: last,
        };
        let verified = match remote::verify(payload, &expect) {
            Ok(v) => v,
            // The broker delivers a retained request again on every connection: the one
            // already answered is not answered twice.
            Err(r) if retained && r.version == Some(last) && r.reason.starts_with("replayed") => {
                tracing::debug!(
                    version = last,
                    "retained configuration request already answered"
                );
                return Action::Nothing;
            }
            Err(r) => {
                tracing::warn!(reason = %r.reason, "configuration request refused");
                self.report(cfg, r.version, Outcome::Rejected, &r.reason);
                return Action::Nothing;
            }
        };
        let version = verified.version;
        // Seen: never again, whatever happens next.
        if let Err(e) = journal::set_last_version(&self.state_dir, version) {
            let reason = format!(
                "cannot record the version in {}: {e}",
                self.state_dir.display()
            );
            self.report(cfg, Some(version), Outcome::Rejected, &reason);
            return Action::Nothing;
        }
        if let Some(t) = &self.trial {
            let reason = format!("busy: {} is still being tried", t.origin.describe());
            self.report(cfg, Some(version), Outcome::Rejected, &reason);
            return Action::Nothing;
        }
        if let Err(reason) = acceptable(cfg, &verified.config) {
            self.report(cfg, Some(version), Outcome::Rejected, &reason);
            return Action::Nothing;
        }
        if let Err(e) = journal::begin(&cfg.file, version, &verified.config) {
            let reason = format!("cannot write {}: {e}; fix: the agent needs write access to the file and its directory", cfg.file.display());
            self.report(cfg, Some(version), Outcome::Rejected, &reason);
            return Action::Nothing;
        }
        self.start_trial(Origin::Remote(version), rc.apply_timeout_secs);
        tracing::info!(version, file = %cfg.file.display(), "remote configuration written; applying");
        Action::Reload
    }

    /// During a trial: commit once every source is up; roll back as soon as a source failed
    /// to start, or at the deadline.
    pub fn tick(&mut self, cfg: &Config, sources: &SourceSet) -> Action {
        let Some(t) = &self.trial else {
            return Action::Nothing;
        };
        let now = mono_ms();
        let down = not_up(cfg, sources);
        let origin = t.origin;
        if down.is_empty() && now >= t.applied_ms + SETTLE_MS {
            self.trial = None;
            if let Err(e) = journal::commit(&cfg.file) {
                tracing::error!(error = %e, "could not end the configuration trial on disk");
            }
            self.conclude(cfg, origin, Outcome::Applied, "every source is up");
            return Action::Nothing;
        }
        let failed: Vec<String> = down
            .iter()
            .filter(|id| sources.failed().contains(id))
            .map(|id| {
                format!(
                    "{id} did not start: {}",
                    sources.why(id).unwrap_or("see the log")
                )
            })
            .collect();
        let reason = if !failed.is_empty() {
            format!(
                "{}; the previous configuration was restored",
                failed.join("; ")
            )
        } else if now >= t.deadline_ms {
            format!(
                "not healthy within {} s (not up: {}); the previous configuration was restored",
                (t.deadline_ms - t.applied_ms) / 1000,
                down.join(", ")
            )
        } else {
            return Action::Nothing;
        };
        self.trial = None;
        match journal::roll_back(&cfg.file) {
            Ok(()) => {
                self.conclude(cfg, origin, Outcome::RolledBack, &reason);
                Action::Reload
            }
            Err(e) => {
                let reason = format!("{reason} — but restoring failed: {e}");
                tracing::error!(reason, "configuration trial");
                self.conclude(cfg, origin, Outcome::RolledBack, &reason);
                Action::Nothing
            }
        }
    }
}

/// The configured sources that are not running and up.
fn not_up(cfg: &Config, sources: &SourceSet) -> Vec<String> {
    let listing = sources.list.get();
    cfg.source_ids()
        .filter(|id| !listing.running.iter().any(|(r, p)| r == id && p.is_up()))
        .map(str::to_string)
        .collect()
}

/// A verified configuration is applied only if it validates, keeps the box's identity and
/// keeps remote configuration on (else the central service could lock itself out).
fn acceptable(cfg: &Config, text: &str) -> Result<(), String> {
    let new = Config::parse(text, &cfg.file).map_err(|e| format!("invalid configuration:\n{e}"))?;
    if new.device.id != cfg.device.id || new.device.store_id != cfg.device.store_id {
        return Err("refused: the configuration changes [device] id or store_id (the box's identity changes on site only)".into());
    }
    if new.remote_config.is_none() {
        return Err("refused: the configuration removes [remote_config] (remote configuration is turned off on site only)".into());
    }
    Ok(())
}

impl Origin {
    fn describe(&self) -> String {
        match self {
            Origin::Remote(v) => format!("version {v}"),
            Origin::Setup(n) => format!("the setup page's save {n}"),
        }
    }
}

/// At start: a trial interrupted by a crash was rolled back by `journal::recover`; say so
/// (to the central service for its request; in the log for a save on the box).
pub fn report_interrupted(remote: &Remote, cfg: &Config, version: u64) {
    if version == journal::LOCAL {
        tracing::warn!("the agent stopped while applying a save of the setup page (crash or kill); the previous configuration was restored");
        return;
    }
    remote.report(
        cfg,
        Some(version),
        Outcome::RolledBack,
        "the agent stopped while applying this version (crash or kill); the previous configuration was restored",
    );
}

/// The configuration in effect.
pub fn current(c: &RwLock<Config>) -> Config {
    c.read().unwrap_or_else(|p| p.into_inner()).clone()
}
