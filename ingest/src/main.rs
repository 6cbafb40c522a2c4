//! `vitrine-ingest`: the reference consumer of Vitrine's MQTT contract.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use vitrine_ingest::{consumer, report, store};

#[derive(Parser)]
#[command(
    name = "vitrine-ingest",
    version,
    about = "Vitrine events from MQTT into PostgreSQL, exactly once per idempotency key"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Subscribe (shared) and store until stopped.
    Run {
        /// Broker as host:port.
        #[arg(long, default_value = "localhost:1883")]
        broker: String,
        /// PostgreSQL connection string, e.g. "host=/run/postgresql dbname=vitrine".
        #[arg(long, env = "VITRINE_INGEST_DB")]
        db: String,
        /// This instance's MQTT client id (keep it stable: its persistent session holds
        /// what it has not acknowledged yet).
        #[arg(long)]
        client_id: String,
        /// Shared subscription group; instances in one group split the load.
        #[arg(long, default_value = "vitrine-ingest")]
        group: String,
        #[arg(long, default_value = "vitrine")]
        prefix: String,
        /// Most messages per transaction (also the broker's in-flight window for this client).
        #[arg(long, default_value_t = 200)]
        batch: u16,
        /// Longest wait for a batch to fill, in milliseconds.
        #[arg(long, default_value_t = 20)]
        linger_ms: u64,
        /// How long the broker keeps this instance's session while it is away. 0 (default): a
        /// clean session, so the other instances take a dead one's share at once (with
        /// Mosquitto 2.0.11 a persistent member's share was not delivered again after it was
        /// killed; see the fleet measurements in docs/data-team.md).
        #[arg(long, default_value_t = 0)]
        session_expiry_secs: u32,
    },
    /// Import a point-of-sale export (CSV with a header: transaction_id, at, and any of total,
    /// currency, items, register) for one store; a transaction already stored (sent over MQTT,
    /// or imported before) is not stored twice.
    ImportPos {
        #[arg(long, env = "VITRINE_INGEST_DB")]
        db: String,
        /// The store the export is from (its id in the boxes' [device] store_id).
        #[arg(long)]
        store: String,
        /// The store's IANA time zone, for times written without an offset.
        #[arg(long)]
        timezone: Option<String>,
        file: std::path::PathBuf,
    },
    /// The read-only dashboard for store managers and head office (login required; put a TLS
    /// proxy in front when it is reached over a network).
    Serve {
        #[arg(long, env = "VITRINE_INGEST_DB")]
        db: String,
        #[arg(long, default_value = "127.0.0.1:8090")]
        listen: std::net::SocketAddr,
        /// A file holding the password's Argon2 hash (from `hash-password`).
        #[arg(long)]
        password_file: std::path::PathBuf,
        /// Mark the session cookie Secure (the dashboard is reached through HTTPS).
        #[arg(long)]
        secure_cookie: bool,
    },
    /// Read a password on stdin and print its Argon2 hash for `serve --password-file`.
    HashPassword,
    /// Time every dashboard panel on a year of a chain, in a throwaway PostgreSQL.
    BenchPanels {
        #[arg(long, default_value_t = 100)]
        stores: u32,
        /// Then serve the dashboard on the data at this address (needs --password-file).
        #[arg(long)]
        serve: Option<std::net::SocketAddr>,
        #[arg(long)]
        password_file: Option<std::path::PathBuf>,
    },
    /// Print rows per kind, unexplained missing seqs, offline boxes, rejected messages.
    Report {
        #[arg(long, env = "VITRINE_INGEST_DB")]
        db: String,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("VITRINE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vitrine-ingest: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    match cli.cmd {
        Cmd::Run {
            broker,
            db,
            client_id,
            group,
            prefix,
            batch,
            linger_ms,
            session_expiry_secs,
        } => {
            let (host, port) = broker.rsplit_once(':').ok_or_else(|| {
                anyhow::anyhow!("--broker {broker:?}: expected host:port, e.g. localhost:1883")
            })?;
            let port = port
                .parse()
                .map_err(|_| anyhow::anyhow!("--broker {broker:?}: the port is not a number"))?;
            let o = consumer::Options {
                host: host.to_string(),
                port,
                client_id,
                group,
                prefix,
                dsn: db,
                batch,
                linger: Duration::from_millis(linger_ms),
                session_expiry_secs,
            };
            rt.block_on(async {
                tokio::select! {
                    r = consumer::run(o) => r,
                    _ = tokio::signal::ctrl_c() => Ok(()),
                }
            })
        }
        Cmd::ImportPos {
            db,
            store,
            timezone,
            file,
        } => {
            let rows = vitrine_ingest::pos::read_csv(&file, &store, timezone.as_deref())?;
            let w = rt.block_on(async {
                let mut c = store::connect(&db).await?;
                let tx = c.transaction().await?;
                let w = store::insert_transactions(&tx, &rows)
                    .await
                    .map_err(|e| anyhow::anyhow!("{}: {}", file.display(), store::db_error(&e)))?;
                tx.commit().await?;
                anyhow::Ok(w)
            })?;
            println!(
                "{}: {} transaction(s) imported, {} already stored",
                file.display(),
                w.inserted,
                w.duplicates
            );
            Ok(())
        }
        Cmd::Serve {
            db,
            listen,
            password_file,
            secure_cookie,
        } => {
            let o = vitrine_ingest::serve::Options {
                dsn: db,
                listen,
                password_hash: read_hash(&password_file)?,
                secure_cookie,
            };
            rt.block_on(async {
                tokio::select! {
                    r = vitrine_ingest::serve::run(o) => r,
                    _ = tokio::signal::ctrl_c() => Ok(()),
                }
            })
        }
        Cmd::BenchPanels {
            stores,
            serve,
            password_file,
        } => {
            let serve = match (serve, password_file) {
                (Some(listen), Some(f)) => Some(vitrine_ingest::serve::Options {
                    dsn: String::new(),
                    listen,
                    password_hash: read_hash(&f)?,
                    secure_cookie: false,
                }),
                (None, _) => None,
                (Some(_), None) => anyhow::bail!("--serve needs --password-file"),
            };
            rt.block_on(async {
                tokio::select! {
                    r = vitrine_ingest::serve::bench::run(stores, serve) => r,
                    _ = tokio::signal::ctrl_c() => Ok(()),
                }
            })
        }
        Cmd::HashPassword => {
            let mut password = String::new();
            std::io::stdin().read_line(&mut password)?;
            let password = password.trim_end_matches(['\n', '\r']);
            anyhow::ensure!(
                password.len() >= 12,
                "a dashboard password needs at least 12 characters"
            );
            println!("{}", vitrine_ingest::serve::hash_password(password)?);
            Ok(())
        }
        Cmd::Report { db } => rt.block_on(async {
            let c = store::connect(&db).await?;
            print!("{}", report::report(&c).await?);
            Ok(())
        }),
    }
}

/// The dashboard's password hash from its file.
fn read_hash(path: &std::path::Path) -> anyhow::Result<String> {
    let hash = std::fs::read_to_string(path).map_err(|e| {
        anyhow::anyhow!(
            "{}: {e}; fix: make it with `vitrine-ingest hash-password > {}`",
            path.display(),
            path.display()
        )
    })?;
    Ok(hash.trim().to_string())
}
