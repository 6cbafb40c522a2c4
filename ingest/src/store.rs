//! PostgreSQL: the tables (`schema.sql`, applied at start), one transaction per batch.

use tokio_postgres::{Client, NoTls};

use crate::message::{EventRow, StatusRow};
use crate::pos::TransactionRow;

pub const SCHEMA: &str = include_str!("../schema.sql");

/// What one batch did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    pub inserted: u64,
    /// Events whose idempotency key (or device seq) was already stored: redeliveries.
    pub duplicates: u64,
    pub statuses: u64,
    pub rejected: u64,
}

/// A message refused by `message::classify`, kept with its reason.
#[derive(Debug, Clone)]
pub struct RejectRow {
    pub topic: String,
    pub reason: String,
    pub bytes: usize,
    pub excerpt: String,
}

#[derive(Debug, Default)]
pub struct Batch {
    pub events: Vec<EventRow>,
    pub statuses: Vec<StatusRow>,
    pub rejected: Vec<RejectRow>,
    pub transactions: Vec<TransactionRow>,
}

impl Batch {
    pub fn len(&self) -> usize {
        self.events.len() + self.statuses.len() + self.rejected.len() + self.transactions.len()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Connect and apply the schema (idempotent; several instances may race to it).
pub async fn connect(dsn: &str) -> anyhow::Result<Client> {
    let (client, conn) = tokio_postgres::connect(dsn, NoTls)
        .await
        .map_err(|e| anyhow::anyhow!("cannot connect to PostgreSQL ({e}); fix: check --db"))?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::error!(error = %e, "PostgreSQL connection ended");
        }
    });
    // Two instances creating the same table at once collide in the catalogue: the schema is
    // applied in one transaction holding an advisory lock until it commits.
    client
        .batch_execute(&format!(
            "BEGIN; SELECT pg_advisory_xact_lock(7261); {SCHEMA}; COMMIT;"
        ))
        .await
        .map_err(|e| anyhow::anyhow!("applying schema.sql: {}", db_error(&e)))?;
    Ok(client)
}

/// PostgreSQL's own message (tokio-postgres's Display says only "db error").
pub fn db_error(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(d) => format!("{}: {}", d.code().code(), d.message()),
        None => e.to_string(),
    }
}

/// Store a batch in one transaction. Events are inserted once per idempotency key; a status
/// replaces the device's last one.
pub async fn write(db: &mut Client, b: &Batch) -> Result<Written, tokio_postgres::Error> {
    let tx = db.transaction().await?;
    let insert = tx
        .prepare(
            "INSERT INTO events (idempotency_key, store_id, device_id, seq, kind, source_id, \
             window_start, window_end, payload) \
             VALUES ($1, $2, $3, $4, $5, $6, $7::text::timestamptz, $8::text::timestamptz, $9) \
             ON CONFLICT DO NOTHING",
        )
        .await?;
    let gap = tx
        .prepare(
            "INSERT INTO gap_ranges (store_id, device_id, from_seq, to_seq, gap_seq) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
        )
        .await?;
    let mut w = Written::default();
    for e in &b.events {
        let (start, end) = match &e.window {
            Some((s, t)) => (Some(s.as_str()), Some(t.as_str())),
            None => (None, None),
        };
        let n = tx
            .execute(
                &insert,
                &[
                    &e.key,
                    &e.store_id,
                    &e.device_id,
                    &e.seq,
                    &e.kind.as_str(),
                    &e.source_id,
                    &start,
                    &end,
                    &e.payload,
                ],
            )
            .await?;
        if n == 1 {
            w.inserted += 1;
            if let Some((from, to)) = e.lost {
                tx.execute(&gap, &[&e.store_id, &e.device_id, &from, &to, &e.seq])
                    .await?;
            }
        } else {
            w.duplicates += 1;
        }
    }
    w = w.plus(insert_transactions(&tx, &b.transactions).await?);
    for s in &b.statuses {
        tx.execute(
            "INSERT INTO devices (store_id, device_id, state, reason, version) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (store_id, device_id) DO UPDATE SET \
             state = EXCLUDED.state, reason = EXCLUDED.reason, version = EXCLUDED.version, \
             changed_at = clock_timestamp()",
            &[&s.store_id, &s.device_id, &s.state, &s.reason, &s.version],
        )
        .await?;
        w.statuses += 1;
    }
    for r in &b.rejected {
        let bytes = i32::try_from(r.bytes).unwrap_or(i32::MAX);
        tx.execute(
            "INSERT INTO rejected (topic, reason, bytes, excerpt) VALUES ($1, $2, $3, $4)",
            &[&r.topic, &r.reason, &bytes, &r.excerpt],
        )
        .await?;
        w.rejected += 1;
    }
    tx.commit().await?;
    Ok(w)
}

/// Sales, once per (store, transaction id): a repeat (the POS sending again, an export
/// imported twice) is a duplicate. A time without an offset is read in its row's zone.
pub async fn insert_transactions(
    tx: &tokio_postgres::Transaction<'_>,
    rows: &[TransactionRow],
) -> Result<Written, tokio_postgres::Error> {
    let mut w = Written::default();
    if rows.is_empty() {
        return Ok(w);
    }
    let insert = tx
        .prepare(
            "INSERT INTO transactions (store_id, transaction_id, at, total, currency, items, \
             register, source) VALUES ($1, $2, CASE WHEN $3::text IS NULL THEN $4::text::timestamptz \
             ELSE $4::text::timestamp AT TIME ZONE $3::text END, $5::float8::numeric, $6, $7, $8, $9) \
             ON CONFLICT DO NOTHING",
        )
        .await?;
    for r in rows {
        let n = tx
            .execute(
                &insert,
                &[
                    &r.store_id,
                    &r.transaction_id,
                    &r.timezone,
                    &r.at,
                    &r.total,
                    &r.currency,
                    &r.items,
                    &r.register,
                    &r.source,
                ],
            )
            .await?;
        if n == 1 {
            w.inserted += 1;
        } else {
            w.duplicates += 1;
        }
    }
    Ok(w)
}

/// Store a batch; when PostgreSQL refuses the batch's data (not the connection), each message
/// is tried alone and the ones it refuses are kept as rejected with its reason: one poisoned
/// message never blocks the others.
pub async fn write_or_split(db: &mut Client, b: Batch) -> Result<Written, tokio_postgres::Error> {
    match write(db, &b).await {
        Ok(w) => return Ok(w),
        Err(e) if db.is_closed() => return Err(e),
        Err(e) => {
            tracing::warn!(error = %db_error(&e), "batch refused by PostgreSQL; storing its messages one by one")
        }
    }
    let mut total = Written::default();
    let one = |events: Vec<EventRow>, statuses: Vec<StatusRow>, rejected: Vec<RejectRow>| Batch {
        events,
        statuses,
        rejected,
        transactions: Vec::new(),
    };
    let mut singles: Vec<(String, Batch)> = Vec::new();
    for e in b.events {
        singles.push((format!("event {}", e.key), one(vec![e], vec![], vec![])));
    }
    for s in b.statuses {
        singles.push((
            format!("status of {}/{}", s.store_id, s.device_id),
            one(vec![], vec![s], vec![]),
        ));
    }
    for t in b.transactions {
        singles.push((
            format!("POS transaction {}/{}", t.store_id, t.transaction_id),
            Batch {
                transactions: vec![t],
                ..one(vec![], vec![], vec![])
            },
        ));
    }
    for r in b.rejected {
        singles.push((
            format!("rejected message on {}", r.topic),
            one(vec![], vec![], vec![r]),
        ));
    }
    for (what, single) in singles {
        match write(db, &single).await {
            Ok(w) => total = total.plus(w),
            Err(e) if db.is_closed() => return Err(e),
            Err(e) => {
                let e = db_error(&e);
                tracing::error!(error = %e, what, "PostgreSQL refused a message; kept in `rejected`");
                let r = RejectRow {
                    topic: what,
                    reason: format!("PostgreSQL refused it: {e}"),
                    bytes: 0,
                    excerpt: String::new(),
                };
                total = total.plus(write(db, &one(vec![], vec![], vec![r])).await?);
            }
        }
    }
    Ok(total)
}

impl Written {
    pub fn plus(self, o: Written) -> Written {
        Written {
            inserted: self.inserted + o.inserted,
            duplicates: self.duplicates + o.duplicates,
            statuses: self.statuses + o.statuses,
            rejected: self.rejected + o.rejected,
        }
    }
}
