//! `vitrine-ingest bench-panels`: how fast each dashboard panel answers on a year of a chain,
//! in a throwaway PostgreSQL: `stores` stores × 365 days of hourly rollups and forecasts, 100
//! sales a day each, 5 alerts a day each, and for the store measured a year of its box's
//! occupancy windows at one a minute (525,600 events). Each panel is run the way the server
//! runs it ([`super::panels::panel`]), for the last 7 days and the last year; the median of 5.

use std::time::Instant;

use super::panels::{panel, Range, PANELS};

const FILL: &str = "
ALTER TABLE events DISABLE TRIGGER events_rollup;
INSERT INTO devices (store_id, device_id, state, reason)
  SELECT format('store-%s', lpad(s::text, 3, '0')), 'box-1', 'online', 'connected'
  FROM generate_series(1, $STORES) s;
INSERT INTO store_hour (store_id, hour, crossings, visitors_in, groups_in, occupancy_max,
    queue_served, queue_wait_s, dwell_visits, dwell_s, funnel_passed, funnel_entered,
    funnel_engaged, funnel_checkout, alerts)
  SELECT format('store-%s', lpad(s::text, 3, '0')), h, (400 * d)::int, (150 * d)::int,
    (100 * d)::int, (80 * d)::int, (30 * d)::int, 3000 * d, (200 * d)::int, 20000 * d,
    (400 * d)::int, (150 * d)::int, (60 * d)::int, (30 * d)::int, (random() * 1.2 * d)::int
  FROM generate_series(1, $STORES) s,
       generate_series(date_trunc('hour', now()) - interval '365 days', date_trunc('hour', now()), interval '1 hour') h,
       -- A shop's day: closed at night, busiest mid-afternoon, give or take 30 %.
       LATERAL (SELECT greatest(0, sin(pi() * (extract(hour FROM h) - 8) / 13)) * (0.7 + random() * 0.6) AS d) x;
INSERT INTO forecast_hour (store_id, source_id, hour, crossings)
  SELECT store_id, 'door', hour, 400 * greatest(0, sin(pi() * (extract(hour FROM hour) - 8) / 13)) FROM store_hour;
INSERT INTO transactions (store_id, transaction_id, at, total, source)
  SELECT format('store-%s', lpad(s::text, 3, '0')), format('t-%s', n),
    now() - random() * interval '365 days', round((random() * 80)::numeric, 2), 'csv'
  FROM generate_series(1, $STORES) s, generate_series(1, 36500) n;
INSERT INTO events (idempotency_key, store_id, device_id, seq, kind, source_id, payload)
  SELECT format('a-%s-%s', s, n), format('store-%s', lpad(s::text, 3, '0')), 'box-1', n, 'alert', 'door',
    jsonb_build_object('alert', 'rush', 'state', 'raised', 'value', 12, 'threshold', 10,
      'at', to_char((now() - random() * interval '365 days') AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'))
  FROM generate_series(1, $STORES) s, generate_series(1, 1825) n;
INSERT INTO events (idempotency_key, store_id, device_id, seq, kind, source_id, window_start, window_end, payload)
  SELECT format('o-%s', n), 'store-001', 'box-1', 1825 + n, 'occupancy', 'store', t, t + interval '1 minute',
    jsonb_build_object('kind', 'window', 'people', (random() * 60)::int, 'max', 60, 'in', 3, 'out', 3,
      'groups_in', 2, 'capacity', 120, 'at', to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'))
  FROM generate_series(1, 525600) n, LATERAL (SELECT now() - interval '365 days' + n * interval '1 minute' AS t) x;
INSERT INTO device_seqs (store_id, device_id, min_seq, max_seq, stored)
  SELECT store_id, device_id, min(seq), max(seq), count(*) FROM events GROUP BY 1, 2;
ALTER TABLE events ENABLE TRIGGER events_rollup;
ANALYZE;
";

/// Fill a throwaway server and time every panel; the table goes to stdout. With `serve`, the
/// dashboard then runs on the filled server until stopped (to look at it, or to picture it).
pub async fn run(stores: u32, serve: Option<super::Options>) -> anyhow::Result<()> {
    let dir = tempfile_dir()?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let pg = crate::local::LocalPostgres::start(&dir.join("pg"), port, false)?;
    let db = crate::store::connect(&pg.dsn()).await?;
    let started = Instant::now();
    db.batch_execute(&FILL.replace("$STORES", &stores.to_string()))
        .await
        .map_err(|e| anyhow::anyhow!("filling: {}", crate::store::db_error(&e)))?;
    let rows: i64 = db
        .query_one(
            "SELECT (SELECT count(*) FROM store_hour) + (SELECT count(*) FROM transactions) \
             + (SELECT count(*) FROM events)",
            &[],
        )
        .await?
        .get(0);
    println!(
        "{stores} stores, a year: {rows} rows filled in {:.0} s (store-001 measured)\n",
        started.elapsed().as_secs_f64()
    );
    println!("| panel | last 7 days (ms) | last year (ms) |\n|---|---|---|");
    for name in PANELS {
        let mut cells = Vec::new();
        for days in [7, 365] {
            let r = Range {
                store: "store-001".into(),
                days: Some(days),
                to: None,
            };
            let mut times = Vec::new();
            for _ in 0..5 {
                let t = Instant::now();
                panel(&db, name, &r).await?;
                times.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            times.sort_by(f64::total_cmp);
            cells.push(format!("{:.1}", times[2]));
        }
        println!("| {name} | {} | {} |", cells[0], cells[1]);
    }
    let served = match serve {
        Some(o) => {
            println!(
                "\nthe dashboard on this data: http://{}/?store=store-001 (Ctrl-C ends)",
                o.listen
            );
            super::run(super::Options { dsn: pg.dsn(), ..o }).await
        }
        None => Ok(()),
    };
    drop(pg);
    let _ = std::fs::remove_dir_all(&dir);
    served
}

fn tempfile_dir() -> std::io::Result<std::path::PathBuf> {
    let d = std::env::temp_dir().join(format!("vitrine-bench-panels-{}", std::process::id()));
    std::fs::create_dir_all(&d)?;
    // The server runs as `postgres` when we are root: it must be able to enter the directory.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755))?;
    Ok(d)
}
