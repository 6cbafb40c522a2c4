//! The daemon's local control socket (`control.sock` in the outbox directory, mode 0600: only
//! the agent's user and root): what `vitrine setup`, `vitrine audit` and `check-config --live`
//! ask the running agent, which owns the cameras. One request per connection, a JSON line;
//! the answer is a JSON line, followed for a view by that many bytes of PNG.
//!
//! Privacy: a still leaves the process only on this socket, to the asker, encoded in memory;
//! nothing here writes it anywhere. The daemon copies stills only while someone asks for them
//! (see `pipeline::tap`).

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use vitrine_config::Config;
use vitrine_signals::audit::{AgentCount, Audit};
use vitrine_signals::event::EventMeta;
use vitrine_signals::placement::Report;

pub use super::remote::{SaveState, Saves};
use super::{Control, Signal};
use crate::clock::mono_ms;
use crate::outbox::{lock_outbox, SharedOutbox};
use crate::pipeline::tap::Taps;
use crate::telemetry::SetupNotice;

/// Connections served at once; more are refused (a setup page polls about twice a second).
const MAX_CLIENTS: usize = 8;
/// Largest request line.
const MAX_REQUEST: u64 = 64 * 1024;
/// A client that says nothing for this long is dropped.
const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// The control socket of the agent configured by `cfg`.
pub fn socket_path(cfg: &Config) -> PathBuf {
    cfg.outbox.dir.join("control.sock")
}

/// What a client asks.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// The cameras and the configuration file the agent runs.
    Cameras,
    /// A camera's feet and line counts; with `still`, its latest picture too.
    View { camera: String, still: bool },
    /// A camera's running count of a line (audits).
    Count { camera: String, line: String },
    /// The placement checks of every camera.
    Placement,
    /// Read the configuration file again (like SIGHUP).
    Reload,
    /// Put this whole configuration file on trial (the setup page's save): kept once every
    /// source is up, rolled back if one fails to start or at the deadline.
    Save { text: String },
    /// Where save `id` stands.
    SaveState { id: u64 },
    /// Show (or clear) the setup notice on the status screen for `secs`.
    Notice { text: Option<String>, secs: u64 },
    /// Store a finished audit's result as an event (published like windows).
    PublishAudit { audit: Audit },
}

/// What the agent answers (`error` set when it could not).
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Reply {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The error is about something that does not exist (a camera, a line).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub missing: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cameras: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub view: Option<ViewReply>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<AgentCount>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub placement: Vec<(String, Report)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// A save's number (`Save`), and its state (`SaveState`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub save: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub save_state: Option<SaveState>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct ViewReply {
    pub feet: Vec<[f32; 2]>,
    /// (line id, crossings in, crossings out) since the camera started.
    pub lines: Vec<(String, u64, u64)>,
    pub run: u64,
    pub width: u32,
    pub height: u32,
    /// Bytes of PNG that follow the line (0: no picture yet).
    pub png_len: usize,
}

impl Reply {
    fn error(e: impl Into<String>) -> Reply {
        Reply {
            error: Some(e.into()),
            ..Reply::default()
        }
    }
    fn missing(e: impl Into<String>) -> Reply {
        Reply {
            missing: true,
            ..Reply::error(e)
        }
    }
    fn ok() -> Reply {
        Reply {
            ok: true,
            ..Reply::default()
        }
    }
}

/// What the socket's handlers reach.
#[derive(Clone)]
pub struct ControlContext {
    pub taps: Arc<Taps>,
    pub control: Sender<Control>,
    pub current: Arc<RwLock<Config>>,
    pub outbox: SharedOutbox,
    pub wake: Arc<Notify>,
    pub notice: Arc<SetupNotice>,
    pub published: Arc<PublishedAudits>,
    pub saves: Arc<Saves>,
}

/// The audits this agent stored, so that publishing one again (a page's button pressed twice,
/// a retried request) answers the event already stored instead of storing another. Bounded:
/// the last [`PublishedAudits::KEPT`].
#[derive(Debug, Default)]
pub struct PublishedAudits(std::sync::Mutex<std::collections::VecDeque<(AuditId, u64)>>);

/// An audit's identity: camera, line, start.
type AuditId = (String, String, u64);

impl PublishedAudits {
    pub const KEPT: usize = 32;

    /// The seq of `audit`'s event: the one stored before, or the one `store` stores now.
    fn once(
        &self,
        audit: &Audit,
        store: impl FnOnce() -> Result<u64, String>,
    ) -> Result<(u64, bool), String> {
        let id = (audit.camera.clone(), audit.line.clone(), audit.started_ms);
        let mut done = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, seq)) = done.iter().find(|(d, _)| *d == id) {
            return Ok((*seq, true));
        }
        let seq = store()?;
        if done.len() == Self::KEPT {
            done.pop_front();
        }
        done.push_back((id, seq));
        Ok((seq, false))
    }
}

/// A listening socket at `path` that only its owner can ever reach: bound inside a fresh
/// directory only the owner may enter, made 0600 there, then renamed into place (binding at
/// `path` directly and chmodding after would leave it open to everyone the umask allows, for
/// a moment).
fn bind_private(path: &Path) -> std::io::Result<UnixListener> {
    use std::os::unix::fs::DirBuilderExt;
    let parent = path.parent().unwrap_or(Path::new("."));
    let private = parent.join(format!(".control-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&private);
    std::fs::DirBuilder::new().mode(0o700).create(&private)?;
    let bound = (|| {
        let inner = private.join("control.sock");
        let listener = UnixListener::bind(&inner)?;
        std::fs::set_permissions(&inner, std::fs::Permissions::from_mode(0o600))?;
        std::fs::rename(&inner, path)?;
        Ok(listener)
    })();
    let _ = std::fs::remove_dir_all(&private);
    bound
}

/// Bind the socket (replacing a stale one: the outbox's lock already guarantees one agent
/// per directory) and serve it on a thread of its own.
pub fn serve(path: &Path, ctx: ControlContext) -> std::io::Result<()> {
    let listener = bind_private(path)?;
    let busy = Arc::new(AtomicUsize::new(0));
    std::thread::Builder::new()
        .name("control".into())
        .spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                if busy.fetch_add(1, Ordering::AcqRel) >= MAX_CLIENTS {
                    busy.fetch_sub(1, Ordering::AcqRel);
                    let _ = answer(&conn, &Reply::error("busy: too many clients"), None);
                    continue;
                }
                let (ctx, busy) = (ctx.clone(), busy.clone());
                let spawned = std::thread::Builder::new()
                    .name("control-client".into())
                    .spawn(move || {
                        if let Err(e) = client(conn, &ctx) {
                            tracing::debug!(error = %e, "control client");
                        }
                        busy.fetch_sub(1, Ordering::AcqRel);
                    });
                if spawned.is_err() {
                    tracing::warn!("control socket: no thread for a client");
                }
            }
        })?;
    Ok(())
}

fn client(conn: UnixStream, ctx: &ControlContext) -> std::io::Result<()> {
    conn.set_read_timeout(Some(IO_TIMEOUT))?;
    conn.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut line = String::new();
    BufReader::new((&conn).take(MAX_REQUEST)).read_line(&mut line)?;
    let (reply, png) = match serde_json::from_str::<Request>(&line) {
        Ok(req) => handle(req, ctx),
        Err(e) => (Reply::error(format!("malformed request: {e}")), None),
    };
    answer(&conn, &reply, png.as_deref())
}

fn answer(mut conn: &UnixStream, reply: &Reply, png: Option<&[u8]>) -> std::io::Result<()> {
    let mut out = serde_json::to_vec(reply).map_err(std::io::Error::other)?;
    out.push(b'\n');
    conn.write_all(&out)?;
    if let Some(png) = png {
        conn.write_all(png)?;
    }
    conn.flush()
}

fn handle(req: Request, ctx: &ControlContext) -> (Reply, Option<Vec<u8>>) {
    // The configuration in effect, read only by the requests that need it (a page polls views
    // twice a second: no copy of the whole configuration for each).
    let cfg = || {
        ctx.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    };
    let no_camera = |id: &str| {
        Reply::missing(format!(
            "no running camera {id:?} (running: {})",
            ctx.taps.ids().join(", ")
        ))
    };
    match req {
        Request::Cameras => (
            Reply {
                ok: true,
                config: Some(cfg().file),
                cameras: ctx.taps.ids(),
                ..Reply::default()
            },
            None,
        ),
        Request::View { camera, still } => match ctx.taps.camera(&camera) {
            Some(tap) => view(&tap.view(still)),
            None => (no_camera(&camera), None),
        },
        Request::Count { camera, line } => {
            let Some(tap) = ctx.taps.camera(&camera) else {
                return (no_camera(&camera), None);
            };
            match tap.count(&line) {
                Some(c) => (
                    Reply {
                        ok: true,
                        count: Some(c),
                        ..Reply::default()
                    },
                    None,
                ),
                None => (
                    Reply::missing(format!("camera {camera:?} has no line {line:?}")),
                    None,
                ),
            }
        }
        Request::Placement => {
            let placement = ctx
                .taps
                .ids()
                .into_iter()
                .filter_map(|id| ctx.taps.camera(&id).map(|t| (id, t.placement())))
                .collect();
            (
                Reply {
                    ok: true,
                    placement,
                    ..Reply::default()
                },
                None,
            )
        }
        Request::Save { text } => (save(text, ctx), None),
        Request::SaveState { id } => match ctx.saves.state(id) {
            Some(state) => (
                Reply {
                    ok: true,
                    save_state: Some(state),
                    ..Reply::default()
                },
                None,
            ),
            None => (
                Reply::missing(format!("no save {id} (the agent restarted?)")),
                None,
            ),
        },
        Request::Reload => {
            let _ = ctx.control.send(Control::Signal(Signal::Reload));
            (Reply::ok(), None)
        }
        Request::Notice { text, secs } => {
            ctx.notice.set(text, mono_ms() + secs.min(3600) * 1000);
            (Reply::ok(), None)
        }
        Request::PublishAudit { audit } => (publish_audit(&cfg(), &audit, ctx), None),
    }
}

fn view(v: &crate::pipeline::tap::View) -> (Reply, Option<Vec<u8>>) {
    let png = v
        .still
        .as_ref()
        .and_then(|s| encode_png(s.width, s.height, &s.rgb).ok());
    let (width, height) = v.still.as_ref().map_or((0, 0), |s| (s.width, s.height));
    let reply = Reply {
        ok: true,
        view: Some(ViewReply {
            feet: v.feet.clone(),
            lines: v
                .lines
                .iter()
                .map(|(id, t)| (id.clone(), t.ins, t.outs))
                .collect(),
            run: v.run,
            width,
            height,
            png_len: png.as_ref().map_or(0, Vec::len),
        }),
        ..Reply::default()
    };
    (reply, png)
}

/// A picture for the setup page, encoded in memory (never written anywhere).
fn encode_png(width: u32, height: u32, rgb: &[u8]) -> Result<Vec<u8>, png::EncodingError> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, width, height);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        enc.set_compression(png::Compression::Fast);
        let mut w = enc.write_header()?;
        w.write_image_data(rgb)?;
    }
    Ok(out)
}

/// The audit's result as an event in the outbox (refused, with the reason, when it is still
/// running, was interrupted or counted too few people to publish).
fn publish_audit(cfg: &Config, audit: &Audit, ctx: &ControlContext) -> Reply {
    if !cfg.cameras.iter().any(|c| c.id == audit.camera) {
        return Reply::error(format!("no camera {:?} in the configuration", audit.camera));
    }
    let meta = EventMeta::of(cfg, &audit.camera);
    if let Err(e) = audit.event(&meta, 1) {
        return Reply::error(e.to_string());
    }
    let res = ctx.published.once(audit, || {
        lock_outbox(&ctx.outbox)
            .try_append(mono_ms(), |seq| {
                audit
                    .event(&meta, seq)
                    .map_err(|e| e.to_string())
                    .and_then(|ev| serde_json::to_vec(&ev).map_err(|e| e.to_string()))
            })
            .map_err(|e| e.to_string())
    });
    match res {
        Ok((seq, again)) => {
            if !again {
                ctx.wake.notify_one();
                tracing::info!(camera = %audit.camera, line = %audit.line, seq, "audit result stored");
            }
            Reply {
                ok: true,
                seq: Some(seq),
                ..Reply::default()
            }
        }
        Err(e) => Reply::error(format!("the audit result could not be stored: {e}")),
    }
}

/// Hand a save to the control loop and wait (briefly) for it to be put on trial.
fn save(text: String, ctx: &ControlContext) -> Reply {
    let (tx, rx) = std::sync::mpsc::channel();
    if ctx.control.send(Control::Save(text, tx)).is_err() {
        return Reply::error("the agent is stopping; nothing was changed");
    }
    match rx.recv_timeout(IO_TIMEOUT) {
        Ok(Ok(id)) => Reply {
            ok: true,
            save: Some(id),
            ..Reply::default()
        },
        Ok(Err(e)) => Reply::error(e),
        Err(_) => Reply::error("the agent did not take the save in time (busy restarting sources?); nothing was changed"),
    }
}

/// The client side (the setup commands): one request, its answer and any PNG bytes.
pub fn ask(path: &Path, req: &Request) -> Result<(Reply, Vec<u8>), String> {
    let (reply, png) = ask_reply(path, req)?;
    match (&reply.error, reply.ok) {
        (Some(e), false) => Err(e.clone()),
        _ => Ok((reply, png)),
    }
}

/// The agent's answer to `req`, a refusal included (`ok` false); errors are the socket's.
pub fn ask_reply(path: &Path, req: &Request) -> Result<(Reply, Vec<u8>), String> {
    let conn = UnixStream::connect(path).map_err(|e| {
        format!(
            "cannot reach the running agent at {}: {e}; fix: start it (systemctl start vitrine) and run this as root or the agent's user",
            path.display()
        )
    })?;
    let io = |e: std::io::Error| format!("control socket {}: {e}", path.display());
    conn.set_read_timeout(Some(IO_TIMEOUT)).map_err(io)?;
    let mut line = serde_json::to_vec(req).map_err(|e| e.to_string())?;
    line.push(b'\n');
    (&conn).write_all(&line).map_err(io)?;
    let mut reader = BufReader::new(&conn);
    let mut head = String::new();
    reader.read_line(&mut head).map_err(io)?;
    let reply: Reply = serde_json::from_str(&head)
        .map_err(|e| format!("unexpected answer from the agent: {e}"))?;
    let mut png = vec![0; reply.view.as_ref().map_or(0, |v| v.png_len)];
    reader.read_exact(&mut png).map_err(io)?;
    Ok((reply, png))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_audit_published_again_is_stored_once() {
        let published = PublishedAudits::default();
        let a = Audit::start("door", "entry", 1000, AgentCount::default());
        let mut stored = 0;
        let mut store = || {
            stored += 1;
            Ok(stored)
        };
        assert_eq!(published.once(&a, &mut store), Ok((1, false)));
        assert_eq!(published.once(&a, &mut store), Ok((1, true)));
        let b = Audit::start("door", "entry", 61_000, AgentCount::default());
        assert_eq!(published.once(&b, &mut store), Ok((2, false)));
        assert_eq!(
            published.once(&b, || Err("full".into())),
            Ok((2, true)),
            "a repeat stores nothing"
        );
        for i in 0..PublishedAudits::KEPT as u64 {
            let c = Audit::start("door", "entry", 100_000 + i, AgentCount::default());
            published.once(&c, || Ok(10 + i)).unwrap();
        }
        assert_eq!(published.0.lock().unwrap().len(), PublishedAudits::KEPT);
    }

    #[test]
    fn the_socket_is_the_owners_only_and_replaces_a_stale_one() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("control.sock");
        std::fs::write(&path, b"stale").unwrap();
        let _listener = bind_private(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
        assert!(UnixStream::connect(&path).is_ok());
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().collect();
        assert_eq!(left.len(), 1, "the private directory stays: {left:?}");
    }

    #[test]
    fn requests_are_tagged_json_lines_and_unknown_fields_are_refused() {
        let r: Request =
            serde_json::from_str(r#"{"op":"view","camera":"door","still":true}"#).unwrap();
        assert!(matches!(r, Request::View { still: true, .. }));
        assert!(serde_json::from_str::<Request>(
            r#"{"op":"view","camera":"d","still":true,"x":1}"#
        )
        .is_err());
        assert!(serde_json::from_str::<Request>(r#"{"op":"format_disk"}"#).is_err());
    }

    #[test]
    fn a_still_is_encoded_as_png_in_memory() {
        let png = encode_png(2, 1, &[255, 0, 0, 0, 255, 0]).unwrap();
        assert_eq!(&png[1..4], b"PNG");
    }
}
