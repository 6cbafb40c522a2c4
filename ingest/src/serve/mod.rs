//! `vitrine-ingest serve`: a read-only dashboard over the ingest's PostgreSQL for a store
//! manager and head office. Login by a password whose Argon2 hash is in a file (`hash-password`
//! makes it); the session is a random cookie held in memory. Plain HTTP on the address given
//! (loopback by default): TLS is a reverse proxy's job (docs/data-team.md, "Dashboard").
//!
//! Every panel is one query over the hourly rollups (`store_hour`, `forecast_hour`, kept by a
//! trigger in `schema.sql`) or an indexed slice of `events`; `panels.rs` holds them.

mod auth;
pub mod bench;
pub mod panels;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use serde::Deserialize;
use tokio::sync::Mutex;

pub use auth::{hash_password, Sessions};

const PAGE: &str = include_str!("page.html");
const SCRIPT: &str = include_str!("page.js");
const UPLOT_JS: &str = include_str!("vendor/uPlot.iife.min.js");
const UPLOT_CSS: &str = include_str!("vendor/uPlot.min.css");
const LOGIN: &str = include_str!("login.html");

pub struct Options {
    pub dsn: String,
    pub listen: SocketAddr,
    /// The Argon2 PHC string of the dashboard's password.
    pub password_hash: String,
    /// Mark the session cookie `Secure` (behind a TLS proxy).
    pub secure_cookie: bool,
}

struct App {
    db: Mutex<tokio_postgres::Client>,
    sessions: Sessions,
    hash: String,
    secure: bool,
}

type Shared = Arc<App>;

/// Serve until the task is dropped.
pub async fn run(o: Options) -> anyhow::Result<()> {
    auth::check_hash(&o.password_hash)?;
    let db = crate::store::connect(&o.dsn).await?;
    let app = Arc::new(App {
        db: Mutex::new(db),
        sessions: Sessions::default(),
        hash: o.password_hash,
        secure: o.secure_cookie,
    });
    let listener = tokio::net::TcpListener::bind(o.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {} ({e}); fix: --listen", o.listen))?;
    tracing::info!(address = %o.listen, "dashboard listening");
    axum::serve(listener, router(app)).await?;
    Ok(())
}

fn router(app: Shared) -> Router {
    Router::new()
        .route("/", get(page))
        .route(
            "/page.js",
            get(|| async { asset("text/javascript", SCRIPT) }),
        )
        .route(
            "/uPlot.js",
            get(|| async { asset("text/javascript", UPLOT_JS) }),
        )
        .route("/uPlot.css", get(|| async { asset("text/css", UPLOT_CSS) }))
        .route("/login", get(|| async { html(LOGIN) }).post(login))
        .route("/favicon.ico", get(|| async { StatusCode::NO_CONTENT }))
        .route("/logout", post(logout))
        .route("/api/{panel}", get(panel))
        .with_state(app)
}

fn asset(kind: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, kind)], body).into_response()
}

fn html(body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
            ),
        ],
        body,
    )
        .into_response()
}

async fn page(State(app): State<Shared>, headers: HeaderMap) -> Response {
    if app.sessions.valid(&headers).await {
        html(PAGE)
    } else {
        Redirect::to("/login").into_response()
    }
}

#[derive(Deserialize)]
struct LoginForm {
    password: String,
}

async fn login(State(app): State<Shared>, Form(f): Form<LoginForm>) -> Response {
    if !auth::verify(&app.hash, &f.password) {
        // A guess costs a second (and the Argon2 hash) whatever the answer.
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        return (StatusCode::UNAUTHORIZED, html(LOGIN)).into_response();
    }
    match app.sessions.open().await {
        Ok(cookie) => {
            let secure = if app.secure { "; Secure" } else { "" };
            (
                [(
                    header::SET_COOKIE,
                    format!(
                        "{}={cookie}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{secure}",
                        auth::COOKIE,
                        auth::SESSION_SECS
                    ),
                )],
                Redirect::to("/"),
            )
                .into_response()
        }
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response(),
    }
}

async fn logout(State(app): State<Shared>, headers: HeaderMap) -> Response {
    app.sessions.close(&headers).await;
    Redirect::to("/login").into_response()
}

async fn panel(
    State(app): State<Shared>,
    headers: HeaderMap,
    Path(name): Path<String>,
    Query(q): Query<panels::Range>,
) -> Response {
    if !app.sessions.valid(&headers).await {
        return (StatusCode::UNAUTHORIZED, "log in first").into_response();
    }
    let db = app.db.lock().await;
    match panels::panel(&db, &name, &q).await {
        Ok(Some(v)) => Json(v).into_response(),
        Ok(None) => (StatusCode::NOT_FOUND, "no such panel").into_response(),
        Err(e) => {
            tracing::error!(panel = %name, error = %e, "dashboard query failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "query failed").into_response()
        }
    }
}
