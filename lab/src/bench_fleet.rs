//! `vitrine-lab bench fleet`: N simulated boxes (real outbox + uplink each) against one local
//! Mosquitto, with 1–4 `vitrine-ingest` processes writing into a local PostgreSQL. Per
//! instance count: events/s end to end, publish-to-row latency, rows lost or duplicated,
//! broker / ingest / database CPU and memory; optionally one ingest killed (SIGKILL) mid-run
//! and started again 10 s later, as systemd would.
//!
//! The ingest processes log to `$TMPDIR/vitrine-fleet-{pid}-{client}.log`;
//! `VITRINE_INGEST_LOG` sets their log filter (default `info`) and `VITRINE_INGEST_ARGS` adds
//! arguments (e.g. `--session-expiry-secs 3600`, how the persistent-session rows of docs/data-team.md
//! were measured).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use vitrine_ingest::local::LocalPostgres;

use super::fleet::Fleet;

/// What `bench fleet` runs.
#[derive(Debug, Clone)]
pub struct FleetBench {
    pub boxes: usize,
    pub per_box_per_s: f64,
    pub secs: u64,
    pub ingests: Vec<usize>,
    pub kill_one: bool,
    /// The boxes' state directories (tmpfs by default: the simulated boxes' disks are not
    /// what is measured).
    pub dir: PathBuf,
}

/// CPU seconds (user + system) and peak resident memory (MiB) of a process, from /proc.
pub fn proc_usage(pid: u32) -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // Fields 14 and 15 of stat(5) (utime, stime), counted from the state field (3).
    let cpu = (ticks(11) + ticks(12)) / 100.0;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let hwm = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .unwrap_or(0.0);
    Some((cpu, hwm / 1024.0))
}

/// CPU seconds and summed peak memory of a process and its living children (PostgreSQL's
/// backends), children that ended included through the parent's cutime/cstime.
fn tree_usage(root: u32) -> (f64, f64) {
    let (mut cpu, mut mem) = proc_usage(root).unwrap_or((0.0, 0.0));
    if let Ok(stat) = std::fs::read_to_string(format!("/proc/{root}/stat")) {
        if let Some((_, after)) = stat.rsplit_once(')') {
            let f: Vec<&str> = after.split_whitespace().collect();
            let t = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
            cpu += (t(13) + t(14)) / 100.0;
        }
    }
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let parent = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| {
                s.rsplit_once(')')
                    .and_then(|(_, a)| a.split_whitespace().nth(1).map(str::to_string))
            });
        if parent.as_deref() == Some(root.to_string().as_str()) {
            if let Some((c, m)) = proc_usage(pid) {
                cpu += c;
                mem += m;
            }
        }
    }
    (cpu, mem)
}

struct Ingest {
    child: Child,
    id: String,
}

fn start_ingest(bin: &Path, port: u16, dsn: &str, id: &str) -> anyhow::Result<Ingest> {
    let child = Command::new(bin)
        .args(["run", "--broker", &format!("127.0.0.1:{port}"), "--db", dsn])
        .args(["--client-id", id])
        .args(
            std::env::var("VITRINE_INGEST_ARGS")
                .unwrap_or_default()
                .split_whitespace(),
        )
        .env(
            "VITRINE_LOG",
            std::env::var("VITRINE_INGEST_LOG").unwrap_or_else(|_| "info".into()),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::from(
            std::fs::OpenOptions::new().create(true).append(true).open(
                std::env::temp_dir().join(format!("vitrine-fleet-{}-{id}.log", std::process::id())),
            )?,
        ))
        .spawn()?;
    Ok(Ingest {
        child,
        id: id.to_string(),
    })
}

/// One row of the table.
struct Row {
    ingests: usize,
    events: u64,
    rows: u64,
    lost: u64,
    extra: u64,
    rate: f64,
    p50_ms: f64,
    p99_ms: f64,
    broker: (f64, f64),
    ingest: (f64, f64),
    db: (f64, f64),
    secs: f64,
}

pub fn fleet(b: &FleetBench) -> anyhow::Result<()> {
    let bin = crate::sibling_bin("vitrine-ingest")?;
    println!(
        "fleet benchmark: {} boxes × {} window/s for {} s (real outbox + uplink each, QoS 1) → one Mosquitto → vitrine-ingest (shared subscription) → PostgreSQL{}",
        b.boxes,
        b.per_box_per_s,
        b.secs,
        if b.kill_one { "; one ingest SIGKILLed half-way, restarted 10 s later" } else { "" }
    );
    let mut rows = Vec::new();
    for &n in &b.ingests {
        rows.push(one_run(b, &bin, n)?);
    }
    println!(
        "{:>7} {:>8} {:>8} {:>5} {:>5} {:>9} {:>8} {:>8} {:>14} {:>14} {:>14}",
        "ingests",
        "events",
        "rows",
        "lost",
        "dup",
        "events/s",
        "p50 ms",
        "p99 ms",
        "broker cpu/MiB",
        "ingest cpu/MiB",
        "pg cpu/MiB"
    );
    for r in rows {
        let pct = |cpu: f64| 100.0 * cpu / r.secs;
        println!(
            "{:>7} {:>8} {:>8} {:>5} {:>5} {:>9.0} {:>8.0} {:>8.0} {:>7.0}% {:>5.0} {:>7.0}% {:>5.0} {:>7.0}% {:>5.0}",
            r.ingests, r.events, r.rows, r.lost, r.extra, r.rate, r.p50_ms, r.p99_ms,
            pct(r.broker.0), r.broker.1, pct(r.ingest.0), r.ingest.1, pct(r.db.0), r.db.1
        );
    }
    println!("CPU as % of one core over the emitting period plus the drain; memory is peak resident (ingest: summed over instances, PostgreSQL: its processes at the end).");
    Ok(())
}

fn one_run(b: &FleetBench, bin: &Path, n: usize) -> anyhow::Result<Row> {
    let dir = b.dir.join(format!("fleet-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let pg_dir = std::env::temp_dir().join(format!("vitrine-fleet-pg-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&pg_dir);
    let pg_port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let pg = LocalPostgres::start(&pg_dir, pg_port, true)?;
    // Unbounded queues for the ingest sessions while one is down (see the sizing note in docs/data-team.md).
    let (broker, port) = super::demo::start_mosquitto_with(
        &dir,
        "max_queued_messages 0\nmax_inflight_messages 0\nmax_connections -1\n",
    )?
    .ok_or_else(|| anyhow::anyhow!("mosquitto is not installed"))?;
    let mut ingests: Vec<Ingest> = (0..n)
        .map(|i| start_ingest(bin, port, &pg.dsn(), &format!("ingest-{i}")))
        .collect::<anyhow::Result<_>>()?;
    std::thread::sleep(Duration::from_secs(2));
    let mut fleet = Fleet::start(b.boxes, &dir, port)?;
    // Let every box connect before the clock starts.
    std::thread::sleep(Duration::from_secs(3));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let before = (
        proc_usage(broker.pid()).unwrap_or_default().0,
        tree_usage(pg.pid()).0,
    );
    let start = Instant::now();
    let mut killed_at: Option<Instant> = None;
    let kill_one = b.kill_one;
    let mut dead: Option<(f64, f64)> = None;
    let events = fleet.emit_for(Duration::from_secs(b.secs), b.per_box_per_s, || {
        if kill_one {
            if let Some(i) = ingests.first_mut() {
                dead = proc_usage(i.child.id());
                let _ = i.child.kill();
                let _ = i.child.wait();
                killed_at = Some(Instant::now());
            }
        }
    })?;
    if let Some(t) = killed_at {
        if let Some(w) = Duration::from_secs(10).checked_sub(t.elapsed()) {
            std::thread::sleep(w);
        }
        let id = ingests[0].id.clone();
        ingests[0] = start_ingest(bin, port, &pg.dsn(), &id)?;
    }
    let left = fleet.drain(Duration::from_secs(120));
    // Wait for the rows (the ingest commits in batches).
    let client = rt.block_on(async { vitrine_ingest::store::connect(&pg.dsn()).await })?;
    let count = || -> anyhow::Result<i64> {
        Ok(rt
            .block_on(client.query_one("SELECT count(*) FROM events", &[]))?
            .get(0))
    };
    let until = Instant::now() + Duration::from_secs(120);
    while (count()? as u64) < events && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(200));
    }
    let secs = start.elapsed().as_secs_f64();
    let broker_use = proc_usage(broker.pid()).unwrap_or_default();
    let mut ingest_use = dead.unwrap_or_default();
    for i in &ingests {
        let (c, m) = proc_usage(i.child.id()).unwrap_or_default();
        ingest_use = (ingest_use.0 + c, ingest_use.1 + m);
    }
    let db_use = tree_usage(pg.pid());
    let got = rt.block_on(client.query(
        "SELECT idempotency_key, (extract(epoch FROM received_at) * 1000)::float8 FROM events",
        &[],
    ))?;
    let mut lat = Vec::with_capacity(got.len());
    let mut extra = 0u64;
    let mut matched = 0u64;
    let mut last_row_ms = 0f64;
    for r in &got {
        let (key, at): (String, f64) = (r.get(0), r.get(1));
        last_row_ms = last_row_ms.max(at);
        match fleet.emitted.get(&key) {
            Some(&t) => {
                matched += 1;
                lat.push(at - t as f64);
            }
            None => extra += 1,
        }
    }
    let first_ms = fleet.emitted.values().min().copied().unwrap_or(0) as f64;
    lat.sort_by(f64::total_cmp);
    let q = |p: f64| {
        lat.get(((lat.len() as f64 - 1.0) * p).round() as usize)
            .copied()
            .unwrap_or(f64::NAN)
    };
    let row = Row {
        ingests: n,
        events,
        rows: got.len() as u64,
        lost: events.saturating_sub(matched),
        extra,
        rate: matched as f64 / ((last_row_ms - first_ms) / 1000.0).max(1e-3),
        p50_ms: q(0.5),
        p99_ms: q(0.99),
        broker: (broker_use.0 - before.0, broker_use.1),
        ingest: ingest_use,
        db: (db_use.0 - before.1, db_use.1),
        secs,
    };
    if left > 0 {
        println!(
            "  ({n} ingest(s): {left} events still unacknowledged in the boxes after the drain)"
        );
    }
    fleet.stop()?;
    for mut i in ingests {
        let _ = i.child.kill();
        let _ = i.child.wait();
    }
    drop(broker);
    drop(pg);
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&pg_dir);
    Ok(row)
}
