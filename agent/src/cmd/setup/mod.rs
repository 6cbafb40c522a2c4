//! `vitrine setup`: the technician's page on the box. A small local web server (axum, on the
//! loopback by default; `--listen` names another interface) shows a camera's live view from
//! the running agent — which owns the cameras — with its lines, zones and displays drawn over
//! it and the people's feet as dots. The technician drags, adds and removes geometry and
//! saves: the file is edited with toml_edit (comments and other keys stay) and validated like
//! `check-config`; the agent puts it on trial like a remote request (the previous file kept as
//! `agent.toml.previous`, rolled back if a source fails to start) and the page shows the
//! outcome. The same page runs
//! accuracy audits (`signals::audit`) and shows the placement checks.
//!
//! Access: a one-time token (console and status screen) buys one session cookie (`access`).
//! Privacy: stills travel from the agent's memory over its control socket to this process and
//! on to the page's open connection (`Cache-Control: no-store`); nothing here writes one.

mod access;
mod edit;
mod http;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use vitrine_config::Config;
use vitrine_signals::audit::{Audit, Direction};

use crate::clock::now_ms;
use crate::daemon::control::{ask, ask_reply, socket_path, Reply, Request, SaveState};
use access::{Access, Denied};

pub use edit::{apply as apply_geometry, Geometry};

const PAGE: &str = include_str!("page.html");
const SCRIPT: &str = include_str!("page.js");
const COOKIE: &str = "vitrine_setup";
/// Header every state-changing request carries (a cross-site form cannot set it).
const CSRF_HEADER: &str = "x-vitrine-setup";
/// How long a save waits for the agent's verdict before the page is told it is still trying.
const SAVE_PATIENCE: Duration = Duration::from_secs(90);
/// How often the status screen's notice is renewed, and how long each renewal holds.
const NOTICE_EVERY: Duration = Duration::from_secs(20);
const NOTICE_SECS: u64 = 60;

pub struct SetupArgs {
    pub config: PathBuf,
    pub listen: SocketAddr,
    pub token_ttl: Duration,
    pub session_ttl: Duration,
}

struct App {
    config: PathBuf,
    socket: PathBuf,
    access: Mutex<Access>,
    audit: Mutex<Option<Audit>>,
    address: String,
    /// One save at a time.
    saving: tokio::sync::Mutex<()>,
    /// The names this box answers to (besides its addresses), for the token exchange.
    names: Vec<String>,
}

/// Serve the page until Ctrl-C / SIGTERM.
pub fn setup(args: SetupArgs) -> anyhow::Result<ExitCode> {
    let cfg = match super::load_config(&args.config) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    let socket = socket_path(&cfg);
    let (running, _) = ask(&socket, &Request::Cameras).map_err(anyhow::Error::msg)?;
    check_same_file(&args.config, running.config.as_deref())?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(serve(args, cfg, socket, running))
}

/// The page edits the file the agent runs, not a copy elsewhere.
fn check_same_file(ours: &Path, theirs: Option<&Path>) -> anyhow::Result<()> {
    let canon = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    match theirs {
        Some(t) if canon(t) != canon(ours) => anyhow::bail!(
            "the running agent uses {}, not {}; fix: pass --config {}",
            t.display(),
            ours.display(),
            t.display()
        ),
        _ => Ok(()),
    }
}

async fn serve(
    args: SetupArgs,
    cfg: Config,
    socket: PathBuf,
    running: Reply,
) -> anyhow::Result<ExitCode> {
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot listen on {}: {e}; fix: choose another --listen address or port",
                args.listen
            )
        })?;
    let addr = listener.local_addr()?;
    let token = access::new_token()?;
    let now = Instant::now();
    let app = Arc::new(App {
        config: args.config.clone(),
        socket,
        access: Mutex::new(Access::new(
            token.clone(),
            now,
            args.token_ttl,
            args.session_ttl,
        )),
        audit: Mutex::new(None),
        address: format!("http://{addr}/"),
        saving: tokio::sync::Mutex::new(()),
        names: access::own_names(),
    });
    println!(
        "Vitrine setup for {} (store {}), cameras: {}",
        cfg.device.id,
        cfg.device.store_id,
        running.cameras.join(", ")
    );
    println!("Open {}?token={token}", app.address);
    if addr.ip().is_unspecified() {
        println!(
            "(listening on every interface: use the box's address in place of {})",
            addr.ip()
        );
    }
    println!(
        "The token works once, within {}; it is also on the box's status screen.",
        humantime::format_duration(args.token_ttl)
    );
    println!(
        "No picture is stored or sent anywhere but to the open page. Ctrl-C ends the session."
    );
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let notice = tokio::spawn(renew_notice(app.clone()));
    let router = router(app.clone());
    http::serve(listener, router, http::LIMITS, shutdown()).await;
    notice.abort();
    let socket = app.socket.clone();
    let _ = tokio::task::spawn_blocking(move || {
        ask(
            &socket,
            &Request::Notice {
                text: None,
                secs: 0,
            },
        )
    })
    .await;
    println!("setup session ended");
    Ok(ExitCode::SUCCESS)
}

async fn shutdown() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}

/// The status screen shows the address and token while the token is unused, then that the
/// page is in use.
async fn renew_notice(app: Arc<App>) {
    loop {
        let text = {
            let a = lock(&app.access);
            if a.used() {
                format!("page in use: {}", app.address)
            } else {
                format!("token {} {}", a.token(), app.address)
            }
        };
        let socket = app.socket.clone();
        let _ = tokio::task::spawn_blocking(move || {
            ask(
                &socket,
                &Request::Notice {
                    text: Some(text),
                    secs: NOTICE_SECS,
                },
            )
        })
        .await;
        tokio::time::sleep(NOTICE_EVERY).await;
    }
}

fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/setup.js", get(script))
        .route("/api/state", get(state))
        .route("/api/view/{camera}", get(view))
        .route("/api/live/{camera}", get(live))
        .route("/api/placement", get(placement))
        .route("/api/save", post(save))
        .route("/api/audit", get(audit_state))
        .route("/api/audit/start", post(audit_start))
        .route("/api/audit/tap", post(audit_tap))
        .route("/api/audit/stop", post(audit_stop))
        .route("/api/audit/publish", post(audit_publish))
        .with_state(app)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
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

fn refused(status: StatusCode, d: Denied) -> Response {
    // Where a token could still open the page, a field to type the one on the status screen.
    let field = match d {
        Denied::NoToken | Denied::Wrong | Denied::NoSession | Denied::NotDirect => {
            "<form method=get action=/><label>Token <input name=token id=token autocomplete=off autocapitalize=none spellcheck=false placeholder=abcd-efgh-jkmn size=16 required></label> <button>Open</button></form>"
        }
        _ => "",
    };
    let body = format!(
        "<!doctype html><meta charset=utf-8><meta name=viewport content=\"width=device-width, initial-scale=1\"><title>Vitrine setup</title><body style=\"font-family:sans-serif;max-width:40em;margin:3em auto;padding:0 1em\"><h1>Vitrine setup</h1><p id=refused>{}</p>{field}<p>Nothing was changed.</p>",
        d.message()
    );
    (status, [(header::CACHE_CONTROL, "no-store")], Html(body)).into_response()
}

fn json_error(status: StatusCode, message: impl Into<String>) -> Response {
    (
        status,
        [(header::CACHE_CONTROL, "no-store")],
        Json(json!({ "ok": false, "error": message.into() })),
    )
        .into_response()
}

/// The session cookie must be the live one; state-changing requests also carry the CSRF header.
fn authorize(app: &App, headers: &HeaderMap, changes: bool) -> Result<(), Box<Response>> {
    if let Err(d) = lock(&app.access).check(cookie(headers).as_deref(), Instant::now()) {
        return Err(Box::new(json_error(StatusCode::FORBIDDEN, d.message())));
    }
    if changes && headers.get(CSRF_HEADER).is_none() {
        return Err(Box::new(json_error(
            StatusCode::FORBIDDEN,
            "refused: the X-Vitrine-Setup header is missing (requests come from the setup page only); nothing was changed",
        )));
    }
    Ok(())
}

/// A state-changing request's body: the session and the CSRF header are checked before a byte
/// of it is read, and it is read within the server's limits.
async fn authorized_body(
    app: &App,
    headers: &HeaderMap,
    body: Body,
) -> Result<Bytes, Box<Response>> {
    authorize(app, headers, true)?;
    http::read_body(body, &http::LIMITS)
        .await
        .map_err(|(status, message)| Box::new(json_error(status, message)))
}

async fn index(
    State(app): State<Arc<App>>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let c = cookie(&headers);
    let signed_in = lock(&app.access)
        .check(c.as_deref(), Instant::now())
        .is_ok();
    if let Some(given) = q.get("token").filter(|_| !signed_in) {
        let said = |h: &str| headers.get(h).and_then(|v| v.to_str().ok());
        if let Err(d) = access::token_request(
            said("sec-fetch-site"),
            said("sec-fetch-dest"),
            said("host"),
            &app.names,
        ) {
            return refused(StatusCode::FORBIDDEN, d);
        }
        let session = match access::new_session() {
            Ok(s) => s,
            Err(e) => return json_error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        };
        let redeemed = lock(&app.access).redeem(given, session, Instant::now());
        return match redeemed {
            Ok(s) => (
                StatusCode::SEE_OTHER,
                [
                    (header::LOCATION, "/".to_string()),
                    (
                        header::SET_COOKIE,
                        format!("{COOKIE}={s}; HttpOnly; SameSite=Strict; Path=/"),
                    ),
                    (header::CACHE_CONTROL, "no-store".to_string()),
                ],
            )
                .into_response(),
            Err(d) => refused(StatusCode::FORBIDDEN, d),
        };
    }
    match lock(&app.access).check(c.as_deref(), Instant::now()) {
        Ok(()) => (
            [
                (header::CACHE_CONTROL, "no-store"),
                (
                    header::CONTENT_SECURITY_POLICY,
                    "default-src 'self'; img-src 'self' blob:; style-src 'self' 'unsafe-inline'; script-src 'self'; frame-ancestors 'none'",
                ),
            ],
            Html(PAGE),
        )
            .into_response(),
        Err(_) if c.is_none() => refused(StatusCode::FORBIDDEN, Denied::NoToken),
        Err(d) => refused(StatusCode::FORBIDDEN, d),
    }
}

async fn script(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    if let Err(r) = authorize(&app, &headers, false) {
        return *r;
    }
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        SCRIPT,
    )
        .into_response()
}

/// Why the agent did not answer a request, and the page's status for it.
struct AgentError {
    status: StatusCode,
    message: String,
}

impl AgentError {
    fn respond(self) -> Response {
        json_error(self.status, self.message)
    }
}

/// Ask the agent (blocking socket IO off the runtime's workers): unreachable is a 502, a
/// camera or line it does not have a 404, another refusal a 409.
async fn agent(app: &App, req: Request) -> Result<(Reply, Vec<u8>), AgentError> {
    let socket = app.socket.clone();
    let gateway = |message: String| AgentError {
        status: StatusCode::BAD_GATEWAY,
        message,
    };
    let (reply, png) = tokio::task::spawn_blocking(move || ask_reply(&socket, &req))
        .await
        .map_err(|e| gateway(e.to_string()))?
        .map_err(gateway)?;
    match (reply.ok, reply.error.clone()) {
        (false, error) => Err(AgentError {
            status: if reply.missing {
                StatusCode::NOT_FOUND
            } else {
                StatusCode::CONFLICT
            },
            message: error.unwrap_or_else(|| "the agent refused the request".into()),
        }),
        (true, _) => Ok((reply, png)),
    }
}

/// The configuration as the page edits it: each camera's geometry, from the file on disk.
async fn state(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    if let Err(r) = authorize(&app, &headers, false) {
        return *r;
    }
    let cfg = match Config::load(&app.config) {
        Ok(c) => c,
        Err(e) => return json_error(StatusCode::CONFLICT, e.to_string()),
    };
    let running = agent(&app, Request::Cameras)
        .await
        .map(|(r, _)| r.cameras)
        .map_err(|e| e.message);
    let r3 = |v: f32| (f64::from(v) * 1000.0).round() / 1000.0;
    let pt = |p: &vitrine_config::Point| [r3(p.x), r3(p.y)];
    let cameras: Vec<_> = cfg
        .cameras
        .iter()
        .map(|c| {
            json!({
                "id": c.id,
                "running": running.as_ref().is_ok_and(|r| r.contains(&c.id)),
                "lines": c.lines.iter().map(|l| json!({
                    "id": l.id, "from": pt(&l.from), "to": pt(&l.to),
                    "in": match l.in_side { vitrine_config::Side::Left => "left", vitrine_config::Side::Right => "right" },
                })).collect::<Vec<_>>(),
                "zones": c.zones.iter().map(|z| json!({"id": z.id, "polygon": z.polygon.iter().map(pt).collect::<Vec<_>>()})).collect::<Vec<_>>(),
                "displays": c.displays.iter().map(|d| json!({"id": d.area.id, "polygon": d.area.polygon.iter().map(pt).collect::<Vec<_>>()})).collect::<Vec<_>>(),
                // Opt-in expression reading is shown on the page (set in agent.toml only).
                "expressions": c.displays.iter().filter(|d| d.expressions).map(|d| d.area.id.clone()).collect::<Vec<_>>(),
            })
        })
        .collect();
    Json(json!({
        "ok": true,
        "file": cfg.file,
        "device": cfg.device.id,
        "store": cfg.device.store_id,
        "k_min": cfg.privacy.k_min,
        "agent": running.as_ref().err(),
        "cameras": cameras,
    }))
    .into_response()
}

async fn view(
    State(app): State<Arc<App>>,
    UrlPath(camera): UrlPath<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = authorize(&app, &headers, false) {
        return *r;
    }
    match agent(
        &app,
        Request::View {
            camera,
            still: true,
        },
    )
    .await
    {
        Ok((_, png)) if !png.is_empty() => (
            [
                (header::CONTENT_TYPE, "image/png"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            png,
        )
            .into_response(),
        Ok(_) => json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "no picture yet: the camera has not delivered a frame since the page asked",
        ),
        Err(e) => e.respond(),
    }
}

async fn live(
    State(app): State<Arc<App>>,
    UrlPath(camera): UrlPath<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = authorize(&app, &headers, false) {
        return *r;
    }
    match agent(
        &app,
        Request::View {
            camera,
            still: false,
        },
    )
    .await
    {
        Ok((r, _)) => Json(json!({ "ok": true, "view": r.view })).into_response(),
        Err(e) => e.respond(),
    }
}

async fn placement(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    if let Err(r) = authorize(&app, &headers, false) {
        return *r;
    }
    match agent(&app, Request::Placement).await {
        Ok((r, _)) => Json(json!({ "ok": true, "placement": r.placement })).into_response(),
        Err(e) => e.respond(),
    }
}

/// Save one camera's geometry: edit, validate like `check-config`, hand it to the agent to try,
/// answer its verdict.
async fn save(State(app): State<Arc<App>>, headers: HeaderMap, body: Body) -> Response {
    let body = match authorized_body(&app, &headers, body).await {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let g: Geometry = match serde_json::from_slice(&body) {
        Ok(g) => g,
        Err(e) => {
            return json_error(
                StatusCode::BAD_REQUEST,
                format!("malformed save request: {e}; nothing was changed"),
            )
        }
    };
    let _one = app.saving.lock().await;
    let path = app.config.clone();
    let prepared = tokio::task::spawn_blocking(move || prepare(&path, &g)).await;
    let text = match prepared {
        Ok(Ok(Some(text))) => text,
        Ok(Ok(None)) => return Json(json!({"ok": true, "unchanged": true})).into_response(),
        Ok(Err(r)) => return *r,
        Err(e) => return json_error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    // The agent puts it on trial (backup, new file, reload) and keeps it only if every
    // source comes up; the page waits for the outcome.
    match agent(&app, Request::Save { text }).await {
        Ok((Reply { save: Some(id), .. }, _)) => verdict(&app, id).await,
        Ok(_) => json_error(StatusCode::BAD_GATEWAY, "the agent gave no save number"),
        Err(e) => e.respond(),
    }
}

/// The agent's verdict on save `id`, once it has one (or, after `SAVE_PATIENCE`, that it is
/// still trying).
async fn verdict(app: &App, id: u64) -> Response {
    let backup = crate::remote::journal::previous(&app.config);
    let answer = |ok: bool, outcome: &str, reason: Option<&str>| {
        Json(json!({
            "ok": ok,
            "outcome": outcome,
            "reason": reason,
            "error": reason,
            "file": app.config,
            "backup": backup,
        }))
        .into_response()
    };
    let until = Instant::now() + SAVE_PATIENCE;
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        match agent(app, Request::SaveState { id }).await {
            Ok((r, _)) => match r.save_state {
                Some(SaveState::Applied) => return answer(true, "applied", None),
                Some(SaveState::RolledBack(why)) => {
                    return answer(false, "rolled_back", Some(&why))
                }
                _ if Instant::now() > until => {
                    return answer(true, "trying", Some("the agent is still trying the new configuration; it keeps it once every source is up"))
                }
                _ => {}
            },
            Err(e) => return e.respond(),
        }
    }
}

/// The file with the new geometry (`None`: the same as now), or the response that refuses
/// it (nothing written).
fn prepare(path: &Path, g: &Geometry) -> Result<Option<String>, Box<Response>> {
    let err = |s: StatusCode, m: String| Box::new(json_error(s, m));
    let old = std::fs::read_to_string(path).map_err(|e| {
        err(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot read {}: {e}", path.display()),
        )
    })?;
    let (new, index) = apply_geometry(&old, g).map_err(|e| {
        err(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("{e}; nothing was changed"),
        )
    })?;
    if new == old {
        return Ok(None);
    }
    if let Err(e) = Config::parse(&new, path) {
        let problems: Vec<_> = e
            .problems
            .iter()
            .map(
                |p| json!({"field": p.field, "line": p.line, "message": p.message, "hint": p.hint}),
            )
            .collect();
        let body = json!({
            "ok": false,
            "error": format!("the configuration would not be valid ({} problem(s)); nothing was changed", problems.len()),
            "camera_index": index,
            "problems": problems,
        });
        return Err(Box::new(
            (StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response(),
        ));
    }
    tracing::info!(file = %path.display(), camera = %g.camera, "geometry saved by the setup page; the agent tries it");
    Ok(Some(new))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditStart {
    camera: String,
    line: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditTap {
    dir: Direction,
}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8], what: &str) -> Result<T, Box<Response>> {
    serde_json::from_slice(body).map_err(|e| {
        Box::new(json_error(
            StatusCode::BAD_REQUEST,
            format!("malformed {what} request: {e}"),
        ))
    })
}

async fn count(
    app: &App,
    camera: &str,
    line: &str,
) -> Result<vitrine_signals::audit::AgentCount, Response> {
    let req = Request::Count {
        camera: camera.into(),
        line: line.into(),
    };
    match agent(app, req).await {
        Ok((Reply { count: Some(c), .. }, _)) => Ok(c),
        Ok(_) => Err(json_error(
            StatusCode::BAD_GATEWAY,
            "the agent gave no count",
        )),
        Err(e) => Err(e.respond()),
    }
}

fn audit_json(a: &Audit) -> Response {
    Json(json!({"ok": true, "running": a.running(), "result": a.result(now_ms())})).into_response()
}

async fn audit_start(State(app): State<Arc<App>>, headers: HeaderMap, body: Body) -> Response {
    let body = match authorized_body(&app, &headers, body).await {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let s: AuditStart = match parse(&body, "audit start") {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let c = match count(&app, &s.camera, &s.line).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let a = Audit::start(&s.camera, &s.line, now_ms(), c);
    let r = audit_json(&a);
    *lock(&app.audit) = Some(a);
    r
}

async fn audit_tap(State(app): State<Arc<App>>, headers: HeaderMap, body: Body) -> Response {
    let body = match authorized_body(&app, &headers, body).await {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let t: AuditTap = match parse(&body, "tap") {
        Ok(t) => t,
        Err(r) => return *r,
    };
    let mut g = lock(&app.audit);
    match g.as_mut() {
        Some(a) if a.running() => {
            a.tap(t.dir);
            audit_json(a)
        }
        _ => json_error(StatusCode::CONFLICT, "no audit is running: start one first"),
    }
}

/// The audit with the agent's latest count (`stop`: and ended).
async fn audit_update(app: &App, stop: bool) -> Response {
    let Some((camera, line)) = lock(&app.audit)
        .as_ref()
        .map(|a| (a.camera.clone(), a.line.clone()))
    else {
        return json_error(StatusCode::CONFLICT, "no audit yet: start one first");
    };
    let c = match count(app, &camera, &line).await {
        Ok(c) => Some(c),
        Err(r) if stop => return r,
        Err(_) => None,
    };
    let mut g = lock(&app.audit);
    let Some(a) = g.as_mut() else {
        return json_error(StatusCode::CONFLICT, "no audit yet: start one first");
    };
    match (c, stop) {
        (Some(c), true) => a.stop(now_ms(), c),
        (Some(c), false) => a.agent(c),
        (None, _) => {}
    }
    audit_json(a)
}

async fn audit_state(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    if let Err(r) = authorize(&app, &headers, false) {
        return *r;
    }
    audit_update(&app, false).await
}

async fn audit_stop(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    if let Err(r) = authorize(&app, &headers, true) {
        return *r;
    }
    audit_update(&app, true).await
}

async fn audit_publish(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    if let Err(r) = authorize(&app, &headers, true) {
        return *r;
    }
    let Some(audit) = lock(&app.audit).clone() else {
        return json_error(StatusCode::CONFLICT, "no audit to publish");
    };
    match agent(&app, Request::PublishAudit { audit }).await {
        Ok((r, _)) => Json(json!({"ok": true, "seq": r.seq})).into_response(),
        Err(e) => json_error(StatusCode::CONFLICT, e.message),
    }
}
