//! The central side against real parts: a real Mosquitto, a real PostgreSQL (Debian's server
//! in a temp directory), the reference ingest (`vitrine-ingest`'s library, two instances
//! sharing one subscription group) and simulated boxes that are the real outbox and uplink.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::Mosquitto;
use vitrine_ingest::consumer::{self, Options};
use vitrine_ingest::local::LocalPostgres;
use vitrine_lab::fleet::{box_ids, Fleet};

fn ingest_options(port: u16, dsn: &str, id: &str) -> Options {
    Options {
        host: "127.0.0.1".into(),
        port,
        client_id: id.into(),
        group: "ingest".into(),
        prefix: "vitrine".into(),
        dsn: dsn.into(),
        // Larger than rumqttc's default request channel (64): the backlog an instance gets after a
        // restart once deadlocked its acknowledgements (regression).
        batch: 200,
        linger: Duration::from_millis(20),
        session_expiry_secs: 3600,
    }
}

fn publish(port: u16, topic: &str, payload: &str) {
    let ok = Command::new("mosquitto_pub")
        .args([
            "-V",
            "mqttv5",
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-q",
            "1",
        ])
        .args(["-t", topic, "-m", payload])
        .status()
        .expect("mosquitto_pub (mosquitto-clients)")
        .success();
    assert!(ok, "publish to {topic}");
}

struct Db {
    rt: tokio::runtime::Runtime,
    client: vitrine_ingest::tokio_postgres::Client,
}

impl Db {
    fn connect(dsn: &str) -> Db {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let client = rt.block_on(vitrine_ingest::store::connect(dsn)).unwrap();
        Db { rt, client }
    }
    fn count(&self, sql: &str) -> i64 {
        self.rt
            .block_on(self.client.query_one(sql, &[]))
            .unwrap_or_else(|e| panic!("{sql}: {e:?}"))
            .get(0)
    }
    fn rows(&self, sql: &str) -> Vec<vitrine_ingest::tokio_postgres::Row> {
        self.rt
            .block_on(self.client.query(sql, &[]))
            .unwrap_or_else(|e| panic!("{sql}: {e:?}"))
    }
    fn wait_for(&self, sql: &str, want: i64, limit: Duration) -> i64 {
        let until = Instant::now() + limit;
        loop {
            let n = self.count(sql);
            if n >= want || Instant::now() > until {
                return n;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn gap_record(store: &str, device: &str, seq: u64, from: u64, to: u64) -> String {
    serde_json::json!({
        "schema": "vitrine.gap.v1", "store_id": store, "device_id": device, "seq": seq,
        "idempotency_key": format!("{store}/{device}/gap/{seq}"),
        "lost": {"from_seq": from, "to_seq": to, "count": to - from + 1},
        "reason": "the outbox was full or could not be written; these events were dropped on the device",
    })
    .to_string()
}

/// Exactly once per idempotency key through redeliveries, an ingest instance killed and
/// started again mid-run, seq gaps reported unless a gap record explains them, a box marked
/// offline by its last will, malformed messages kept with their reason.
#[test]
fn ingest_stores_every_event_once_accounts_for_gaps_and_marks_vanished_boxes_offline() {
    let tmp = tempfile::tempdir().unwrap();
    let pg = LocalPostgres::start(&tmp.path().join("pg"), common::free_port(), false).unwrap();
    let broker = Mosquitto::start();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let a = rt.spawn(consumer::run(ingest_options(
        broker.port,
        &pg.dsn(),
        "ingest-a",
    )));
    let _b = rt.spawn(consumer::run(ingest_options(
        broker.port,
        &pg.dsn(),
        "ingest-b",
    )));
    let db = Db::connect(&pg.dsn());
    std::thread::sleep(Duration::from_secs(1));

    let mut fleet = Fleet::start(8, &tmp.path().join("boxes"), broker.port).unwrap();
    std::thread::sleep(Duration::from_secs(1));
    // Instance a dies half-way without a goodbye and comes back under the same client id, as
    // systemd would restart it. These instances keep persistent sessions (`session_expiry_secs`),
    // so what a held unacknowledged is redelivered to it, and the redelivery adds no row. (With
    // the default clean sessions the survivor takes the share at once; `vitrine-lab bench fleet
    // --kill-one` measures both at scale.)
    let mut killed = Some(a);
    let emitted = fleet
        .emit_for(Duration::from_secs(6), 5.0, || {
            killed.take().unwrap().abort();
        })
        .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    let _a2 = rt.spawn(consumer::run(ingest_options(
        broker.port,
        &pg.dsn(),
        "ingest-a",
    )));
    assert_eq!(fleet.drain(Duration::from_secs(30)), 0, "boxes drained");
    let rows = db.wait_for(
        "SELECT count(*) FROM events",
        emitted as i64,
        Duration::from_secs(30),
    );
    assert_eq!(rows, emitted as i64, "one row per event, none lost");

    // A redelivery (the same event again, e.g. after a box lost its PUBACK) is not a second row.
    let (store, device) = box_ids(3);
    let row = &db.rows(&format!(
        "SELECT payload::text FROM events WHERE device_id = '{device}' AND seq = 2"
    ))[0];
    let payload: String = row.get(0);
    publish(
        broker.port,
        &format!("vitrine/{store}/{device}/window/entrance"),
        &payload,
    );
    publish(
        broker.port,
        &format!("vitrine/{store}/{device}/window/entrance"),
        &payload,
    );

    // A box whose seqs 3..=4 were dropped (gap record) and 6 never arrived.
    let (s, d) = ("store-x", "box-x");
    for seq in [1u64, 2, 5, 7] {
        let mut ev: serde_json::Value = serde_json::from_str(&payload).unwrap();
        ev["store_id"] = s.into();
        ev["device_id"] = d.into();
        ev["seq"] = seq.into();
        ev["idempotency_key"] = format!("{s}/{d}/entrance/0/{seq}").into();
        publish(
            broker.port,
            &format!("vitrine/{s}/{d}/window/entrance"),
            &ev.to_string(),
        );
    }
    publish(
        broker.port,
        &format!("vitrine/{s}/{d}/gap"),
        &gap_record(s, d, 8, 3, 4),
    );
    // Malformed and lying messages are kept with their reason, and block nothing.
    publish(
        broker.port,
        &format!("vitrine/{s}/{d}/window/entrance"),
        "{not json",
    );
    publish(
        broker.port,
        "vitrine/store-y/box-y/window/entrance",
        &payload,
    );
    let nul = serde_json::json!({"schema": "vitrine.gap.v1", "store_id": "store-z", "device_id": "box-z", "seq": 1,
        "idempotency_key": "store-z/box-z/gap/1", "lost": {"from_seq": 1, "to_seq": 1}, "reason": "a\u{0}b"});
    publish(broker.port, "vitrine/store-z/box-z/gap", &nul.to_string());

    // A box that vanishes: the broker publishes its last will.
    fleet.vanish(5);
    let (_, gone) = box_ids(5);
    let offline = format!(
        "SELECT count(*) FROM devices WHERE device_id = '{gone}' AND state = 'offline' AND reason = 'connection lost'"
    );
    assert_eq!(
        db.wait_for(&offline, 1, Duration::from_secs(40)),
        1,
        "offline from the last will"
    );
    assert_eq!(
        db.wait_for("SELECT count(*) FROM rejected", 3, Duration::from_secs(10)),
        3
    );
    let expected = emitted as i64 + 5;
    assert_eq!(
        db.wait_for(
            "SELECT count(*) FROM events",
            expected,
            Duration::from_secs(10)
        ),
        expected
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        db.count("SELECT count(*) FROM events"),
        expected,
        "the redelivery added no row"
    );

    let missing: Vec<(String, i64)> = db
        .rows("SELECT device_id, seq FROM missing_seqs ORDER BY device_id, seq")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        missing,
        vec![("box-x".to_string(), 6)],
        "only the unexplained seq"
    );
    // The dashboard's fleet panel (from the per-box seq rollup) says the same.
    let panel = db
        .rt
        .block_on(vitrine_ingest::serve::panels::panel(
            &db.client,
            "fleet",
            &vitrine_ingest::serve::panels::Range {
                store: "store-x".into(),
                days: None,
                to: None,
            },
        ))
        .unwrap()
        .unwrap();
    assert_eq!(panel["boxes"][0]["device"], "box-x", "{panel}");
    assert_eq!(panel["boxes"][0]["missing_seqs"], 1, "{panel}");
    // And the page in a browser, over the fleet's database.
    let page = dashboard(&rt, &pg.dsn(), "store-x");
    assert_eq!(page["panels"]["fleet"]["missing"], "1", "{page}");
    let reasons: Vec<String> = db
        .rows("SELECT reason FROM rejected ORDER BY id")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(reasons.iter().any(|r| r.contains("JSON")), "{reasons:?}");
    assert!(
        reasons.iter().any(|r| r.contains("disagree")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.contains("PostgreSQL refused")),
        "{reasons:?}"
    );
    let online = db.count("SELECT count(*) FROM devices WHERE state = 'online'");
    assert_eq!(online, 7, "the other boxes are online");

    // The SQL docs/data-team.md gives the data team runs on these tables and finds the fleet's data.
    let readme = std::fs::read_to_string(common::repo().join("docs/data-team.md")).unwrap();
    let sql = readme
        .split("The SQL a data team runs")
        .nth(1)
        .and_then(|r| r.split("```sql").nth(1))
        .and_then(|r| r.split("```").next())
        .expect("the SQL block of docs/data-team.md");
    let statements: Vec<&str> = sql
        .split(';')
        .map(str::trim)
        .filter(|q| {
            !q.lines()
                .all(|l| l.trim().is_empty() || l.trim_start().starts_with("--"))
        })
        .collect();
    assert_eq!(statements.len(), 4, "{statements:?}");
    let results: Vec<usize> = statements.iter().map(|q| db.rows(q).len()).collect();
    assert!(
        results[0] > 0 && results[1] > 0,
        "footfall and dwell found nothing: {results:?}"
    );
    assert_eq!(results[2], 1, "one box offline");
    assert_eq!(results[3], 1, "one box with a missing seq");

    // The report a data team reads first says the same.
    let report = db
        .rt
        .block_on(vitrine_ingest::report::report(&db.client))
        .unwrap();
    assert!(
        report.contains("box-x: 1 missing between 6 and 6"),
        "{report}"
    );
    assert!(
        report.contains(&format!("{gone}: connection lost")),
        "{report}"
    );
    fleet.stop().unwrap();
}

/// The AsyncAPI contract (`signals/schema/asyncapi.yaml`), parsed by the official parser
/// (`@asyncapi/parser`, `tests/support/asyncapi`), as JSON: channels with their addresses and
/// resolved payload schemas.
fn contract(path: &std::path::Path) -> Result<serde_json::Value, String> {
    let script = common::repo().join("tests/support/asyncapi/check.mjs");
    assert!(
        common::repo().join("tests/support/asyncapi/node_modules/@asyncapi/parser").is_dir(),
        "the AsyncAPI parser is not installed: scripts/setup.sh runs `npm ci` in tests/support/asyncapi"
    );
    let out = Command::new("node")
        .arg(&script)
        .arg(path)
        .output()
        .expect("node (scripts/setup.sh installs nodejs)");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(serde_json::from_slice(&out.stdout).unwrap())
}

/// The channel whose address template matches `topic`, and its message's payload schema.
fn channel_of<'a>(
    doc: &'a serde_json::Value,
    topic: &str,
) -> Option<(&'a str, &'a serde_json::Value)> {
    doc["channels"].as_array()?.iter().find_map(|ch| {
        let address = ch["address"].as_str()?;
        let parts: Vec<&str> = address.split('/').collect();
        let got: Vec<&str> = topic.split('/').collect();
        let same = parts.len() == got.len()
            && parts
                .iter()
                .zip(&got)
                .all(|(p, g)| (p.starts_with('{') && !g.is_empty()) || p == g);
        same.then(|| {
            (
                ch["id"].as_str().unwrap(),
                &ch["messages"][0]["payload"]["schema"],
            )
        })
    })
}

/// A week of history for the walkway camera, so the agent has a forecast to publish at once.
fn seed_forecast(state: &std::path::Path) {
    use vitrine_signals::forecast::{ForecastBook, LocalHour, Measure, WEEK};
    let now_h = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / 3600) as i64;
    let mut book = ForecastBook::default();
    for i in 0..=(WEEK as i64) {
        let h = LocalHour::from_index(now_h - 1 - WEEK as i64 + i);
        book.add(
            "walkway",
            "walkway-x045",
            Measure::Crossings,
            h,
            4.0,
            3_600_000,
        );
    }
    std::fs::create_dir_all(state).unwrap();
    std::fs::write(
        state.join("forecast.json"),
        serde_json::to_vec(&book).unwrap(),
    )
    .unwrap();
}

/// Every topic the agent published in a real run (camera with alerts and forecast, microphone,
/// health, status and will, a configuration result) and the request it read are described by
/// the contract, and every payload matches the contract's schema for its channel. The parser
/// also refuses a broken copy of the document (the check can fail).
#[test]
fn the_asyncapi_contract_is_valid_and_describes_every_real_payload() {
    let doc = contract(&common::repo().join("signals/schema/asyncapi.yaml"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(doc["version"], "3.0.0");
    let tmp = tempfile::tempdir().unwrap();
    let broken = std::fs::read_to_string(common::repo().join("signals/schema/asyncapi.yaml"))
        .unwrap()
        .replace(
            "channel: { $ref: '#/channels/gap' }",
            "channel: { $ref: '#/channels/nowhere' }",
        );
    let broken_path = common::repo().join("signals/schema/broken-for-test.asyncapi.yaml");
    std::fs::write(&broken_path, broken).unwrap();
    let refused = contract(&broken_path);
    std::fs::remove_file(&broken_path).unwrap();
    assert!(refused.is_err(), "a broken document passed");

    // A real run: 20 s of walkway video and of speech, in real time.
    let clip = |src: &str, name: &str| {
        let out = tmp.path().join(name);
        let ok = Command::new("ffmpeg")
            .args(["-v", "error", "-y", "-t", "20", "-i"])
            .arg(common::media(src))
            .args(["-c", "copy"])
            .arg(&out)
            .status()
            .unwrap()
            .success();
        assert!(ok, "ffmpeg");
        out
    };
    let (video, audio) = (
        clip("vtest.avi", "walk.avi"),
        clip("demo-mic.wav", "mic.wav"),
    );
    let broker = Mosquitto::start();
    let sub = common::Subscriber::start(broker.port, "vitrine/#");
    // The reference ingest stores the same real run.
    let pg = LocalPostgres::start(&tmp.path().join("pg"), common::free_port(), false).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let _ingest = rt.spawn(consumer::run(ingest_options(
        broker.port,
        &pg.dsn(),
        "ingest-real",
    )));
    let seed = [5u8; 32];
    let camera = common::walkway_camera(5).replace(
        &common::media("vtest.avi").display().to_string(),
        &video.display().to_string(),
    );
    let body = format!(
        "{camera}\n[[cameras.alerts]]\nid = \"rush\"\nline = \"walkway-x045\"\nabove = 2\nhold_secs = 0\nmin_interval_secs = 5\n\n\
         [[cameras.zones]]\nid = \"view\"\npolygon = [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]\n\n\
         [[cameras.alerts]]\nid = \"crowd\"\nzone = \"view\"\nabove = 2\nhold_secs = 0\nmin_interval_secs = 5\n\n\
         [[microphones]]\nid = \"till\"\nfile = \"{}\"\n\n[privacy]\nwindow_secs = 5\nk_min = 2\n\n\
         [occupancy]\nentrances = [\"walkway/walkway-x045\"]\ncapacity = 2\n\n\
         [mqtt]\nurl = \"mqtt://127.0.0.1:{}\"\nhealth_secs = 5\n\n[remote_config]\npublic_key = \"{}\"\n",
        audio.display(),
        broker.port,
        vitrine::remote::public_key(&seed)
    );
    let cfg = common::write_config(tmp.path(), &body);
    let text = std::fs::read_to_string(&cfg).unwrap().replacen(
        "store_id = \"test-store\"\n",
        "store_id = \"test-store\"\ntimezone = \"UTC\"\n",
        1,
    );
    std::fs::write(&cfg, text).unwrap();
    seed_forecast(&tmp.path().join("state"));
    let child = common::spawn_realtime(&cfg);
    // A technician audits the line meanwhile (`vitrine audit`, taps on stdin, published).
    let socket = tmp.path().join("state/control.sock");
    while !socket.exists() {
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut audit = common::vitrine()
        .args([
            "audit",
            "--line",
            "walkway-x045",
            "--minutes",
            "0.29",
            "--publish",
            "--config",
        ])
        .arg(&cfg)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut taps = audit.stdin.take().unwrap();
    std::io::Write::write_all(&mut taps, b"i\no\ni\n").unwrap();
    std::thread::sleep(Duration::from_secs(4));
    // A request that is refused (signed by another key) yields a config result.
    let forged = vitrine::remote::sign(&[6u8; 32], "test-store", "test-box", 1, "[device]\n");
    publish(
        broker.port,
        "vitrine/test-store/test-box/config/set",
        std::str::from_utf8(&forged).unwrap(),
    );
    // The store's point of sale sends three sales, one of them twice.
    let now_ms = vitrine::clock::now_ms();
    let sale = |id: &str| {
        format!(
            "{{\"schema\":\"vitrine.pos-transaction.v1\",\"store_id\":\"test-store\",\"transaction_id\":\"{id}\",\"at\":\"{}\",\"total\":12.5,\"currency\":\"EUR\",\"items\":2,\"register\":\"R1\"}}",
            vitrine_signals::event::rfc3339(now_ms)
        )
    };
    for id in ["R1-1", "R1-2", "R1-2", "R1-3"] {
        publish(broker.port, "vitrine/test-store/pos/transaction", &sale(id));
    }
    // The first health message goes out one period (5 s) after start; the audit ends at 18 s
    // (four crossings of the line in the truth by then; privacy.k_min is 2).
    let audited = audit.wait_with_output().unwrap();
    drop(taps);
    let printed = String::from_utf8_lossy(&audited.stdout);
    assert!(audited.status.success(), "{printed}");
    assert!(printed.contains("published"), "{printed}");
    let out = common::sigterm_and_wait(child);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let msgs = sub.drain(Duration::from_secs(2));
    let mut covered = std::collections::BTreeSet::new();
    for (topic, payload, _) in &msgs {
        let (id, schema) =
            channel_of(&doc, topic).unwrap_or_else(|| panic!("{topic} is not in the contract"));
        let v: serde_json::Value = serde_json::from_slice(payload).unwrap();
        let validator = jsonschema::validator_for(schema).expect("the contract's schema compiles");
        common::assert_valid(&validator, &v);
        covered.insert(id.to_string());
    }
    let want = [
        "alert",
        "audit",
        "configResult",
        "configSet",
        "forecast",
        "health",
        "occupancy",
        "posTransaction",
        "status",
        "window",
    ];
    for w in want {
        assert!(
            covered.contains(w),
            "no {w} message in the run: {covered:?}"
        );
    }
    // Every event of the run is one row; nothing was rejected.
    let keys: std::collections::BTreeSet<String> = msgs
        .iter()
        .filter(|(t, _, _)| {
            [
                "window",
                "alert",
                "forecast",
                "config/result",
                "audit",
                "occupancy",
            ]
            .iter()
            .any(|k| t.contains(&format!("/{k}")))
        })
        .map(|(_, p, _)| {
            serde_json::from_slice::<serde_json::Value>(p).unwrap()["idempotency_key"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let db = Db::connect(&pg.dsn());
    let n = keys.len() as i64;
    assert_eq!(
        db.wait_for("SELECT count(*) FROM events", n, Duration::from_secs(20)),
        n
    );
    let rejected: Vec<String> = db
        .rows("SELECT topic || ': ' || reason FROM rejected")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(rejected.is_empty(), "{rejected:?}");
    assert_eq!(db.count("SELECT count(*) FROM missing_seqs"), 0);
    // Sales: once per transaction id over MQTT, and an export imported twice adds only what
    // is new; conversion per hour is transactions ÷ the occupancy windows' groups in.
    assert_eq!(
        db.wait_for(
            "SELECT count(*) FROM transactions",
            3,
            Duration::from_secs(10)
        ),
        3
    );
    let csv = tmp.path().join("pos-export.csv");
    let local = vitrine_signals::event::rfc3339(now_ms)
        .replace('T', " ")
        .replace('Z', "");
    std::fs::write(
        &csv,
        format!("transaction_id,at,total,currency\nR1-3,{local},9.90,EUR\nR2-1,{local},4.00,EUR\nR2-2,{local},,\n"),
    )
    .unwrap();
    let imported = |db: &Db| {
        let rows = vitrine_ingest::pos::read_csv(&csv, "test-store", Some("UTC")).unwrap();
        db.rt.block_on(async {
            let mut c = vitrine_ingest::store::connect(&pg.dsn()).await.unwrap();
            let tx = c.transaction().await.unwrap();
            let w = vitrine_ingest::store::insert_transactions(&tx, &rows)
                .await
                .unwrap();
            tx.commit().await.unwrap();
            (w.inserted, w.duplicates)
        })
    };
    assert_eq!(imported(&db), (2, 1));
    assert_eq!(imported(&db), (0, 3));
    assert_eq!(db.count("SELECT count(*) FROM transactions"), 5);
    let view: Vec<(i64, Option<i64>)> = db
        .rows("SELECT transactions, groups_in FROM conversion WHERE store_id = 'test-store' ORDER BY hour")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let by_sql: Vec<(i64, Option<i64>)> = db
        .rows(
            "SELECT (SELECT count(*) FROM transactions t WHERE t.store_id = 'test-store' \
               AND date_trunc('hour', t.at) = h.hour), \
             (SELECT sum((payload->>'groups_in')::bigint)::bigint FROM events e WHERE e.kind = 'occupancy' \
               AND e.store_id = 'test-store' AND payload->>'kind' = 'window' \
               AND date_trunc('hour', (payload->'window'->>'start')::timestamptz) = h.hour) \
             FROM (SELECT DISTINCT date_trunc('hour', at) AS hour FROM transactions \
                   UNION SELECT DISTINCT date_trunc('hour', window_start) FROM events \
                   WHERE kind = 'occupancy' AND window_start IS NOT NULL) h ORDER BY h.hour",
        )
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(view, by_sql);
    assert_eq!(view.iter().map(|v| v.0).sum::<i64>(), 5);
    // The query docs/data-team.md gives for conversion runs on it (a 20 s run covers too little
    // of its hour to be trustworthy: no row).
    let docs = std::fs::read_to_string(common::repo().join("docs/data-team.md")).unwrap();
    let query = docs
        .split("## Conversion")
        .nth(1)
        .and_then(|r| r.split("```sql").nth(1))
        .and_then(|r| r.split("```").next())
        .expect("the conversion SQL of docs/data-team.md");
    assert!(db.rows(query.trim().trim_end_matches(';')).is_empty());
    // The store's occupancy: the box's last count, as the view sums it.
    let last = msgs
        .iter()
        .filter(|(t, _, _)| t.ends_with("/occupancy/store"))
        .map(|(_, p, _)| serde_json::from_slice::<serde_json::Value>(p).unwrap())
        .max_by_key(|v| v["seq"].as_u64())
        .expect("occupancy published");
    let people = last["people"].as_i64().unwrap_or(0);
    assert_eq!(
        db.count("SELECT people FROM store_occupancy WHERE store_id = 'test-store'"),
        people
    );
    assert_eq!(
        db.count("SELECT count(*) FROM devices WHERE state = 'offline' AND reason = 'shutdown'"),
        1
    );
    dashboard_shows_what_sql_says(&rt, &db, &pg.dsn());
    // Gap records need a full disk (tests/mqtt.rs): the payload function's output is checked here.
    let (_, gap_schema) = channel_of(&doc, "vitrine/s/d/gap").unwrap();
    let c = vitrine_config::Config::load(&cfg).unwrap();
    let gap = vitrine::daemon::gap_payload(&c)(
        9,
        &vitrine::outbox::Gap {
            from_seq: 3,
            to_seq: 8,
            count: 6,
        },
    );
    common::assert_valid(
        &jsonschema::validator_for(gap_schema).unwrap(),
        &serde_json::from_slice(&gap).unwrap(),
    );
}

/// `vitrine-ingest serve` over the database a real run filled, in headless Chromium: the login
/// is required, every panel loads, and its figures are those SQL gives on the same database
/// (the hourly rollups against the events they were made from, too).
fn dashboard_shows_what_sql_says(rt: &tokio::runtime::Runtime, db: &Db, dsn: &str) {
    let r = dashboard(rt, dsn, "test-store");
    let p = &r["panels"];
    let shown = |panel: &str, key: &str| -> i64 {
        p[panel][key]
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("{panel}.{key} not shown: {}", p[panel]))
    };
    let store = "store_id = 'test-store'";
    let from_events = db.count(&format!(
        "SELECT coalesce(sum(coalesce((l->>'in')::bigint, 0) + coalesce((l->>'out')::bigint, 0)), 0)::bigint \
         FROM events e, jsonb_array_elements(e.payload->'lines') l WHERE e.kind = 'window' AND e.{store}"
    ));
    assert_eq!(
        db.count(&format!(
            "SELECT coalesce(sum(crossings), 0)::bigint FROM store_hour WHERE {store}"
        )),
        from_events,
        "the rollup against the events"
    );
    assert_eq!(shown("footfall", "crossings"), from_events);
    let dwell = db.count(&format!(
        "SELECT coalesce(sum((z->'dwell_seconds'->>'count')::bigint), 0)::bigint \
         FROM events e, jsonb_array_elements(e.payload->'zones') z WHERE e.kind = 'window' AND e.{store}"
    ));
    assert!(dwell > 0, "visits ended in the run");
    assert_eq!(shown("dwell", "visits"), dwell);
    assert_eq!(
        shown("footfall", "visitorsIn"),
        db.count(&format!(
            "SELECT coalesce(sum((payload->>'in')::bigint), 0)::bigint FROM events \
             WHERE kind = 'occupancy' AND window_start IS NOT NULL AND {store}"
        ))
    );
    assert_eq!(
        shown("conversion", "transactions"),
        db.count(&format!("SELECT count(*) FROM transactions WHERE {store}"))
    );
    assert_eq!(
        shown("conversion", "groupsIn"),
        db.count(&format!(
            "SELECT coalesce(sum((payload->>'groups_in')::bigint), 0)::bigint FROM events \
             WHERE kind = 'occupancy' AND window_start IS NOT NULL AND {store}"
        ))
    );
    assert_eq!(
        shown("occupancy", "people"),
        db.count(&format!("SELECT people FROM store_occupancy WHERE {store}"))
    );
    assert_eq!(
        shown("alerts", "count"),
        db.count(&format!(
            "SELECT count(*) FROM events WHERE kind = 'alert' AND {store}"
        ))
    );
    assert_eq!(
        shown("audits", "count"),
        db.count(&format!(
            "SELECT count(*) FROM events WHERE kind = 'audit' AND {store}"
        ))
    );
    assert_eq!(
        shown("fleet", "offline"),
        db.count(&format!(
            "SELECT count(*) FROM devices WHERE state <> 'online' AND {store}"
        ))
    );
    assert!(
        p["footfall"]["charts"].as_u64().unwrap_or(0) > 0,
        "{}",
        p["footfall"]
    );
    eprintln!("dashboard: every panel in {} ms: {}", r["loaded_ms"], p);
}

/// The dashboard over `dsn`, opened on `store` in headless Chromium: its login checked, its
/// panels as the page shows them.
fn dashboard(rt: &tokio::runtime::Runtime, dsn: &str, store: &str) -> serde_json::Value {
    let password = "correct horse battery";
    let port = common::free_port();
    let _dash = rt.spawn(vitrine_ingest::serve::run(vitrine_ingest::serve::Options {
        dsn: dsn.to_string(),
        listen: format!("127.0.0.1:{port}").parse().unwrap(),
        password_hash: vitrine_ingest::serve::hash_password(password).unwrap(),
        secure_cookie: false,
    }));
    let until = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < until, "the dashboard never listened");
        std::thread::sleep(Duration::from_millis(50));
    }
    let dir = common::repo().join("tests/support/browser");
    let plan = serde_json::json!({
        "url": format!("http://127.0.0.1:{port}"), "password": password, "store": store,
    });
    let out = Command::new("node")
        .arg(dir.join("dashboard.mjs"))
        .arg(plan.to_string())
        .current_dir(&dir)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let r: serde_json::Value = serde_json::from_str(text.trim())
        .unwrap_or_else(|e| panic!("{e}: {text}\n{}", String::from_utf8_lossy(&out.stderr)));
    assert!(out.status.success() && r.get("error").is_none(), "{r}");
    assert_eq!(r["unauthenticated_lands_on"], "/login", "{r}");
    assert_eq!(r["api_without_login"], 401);
    assert_eq!(r["wrong_password"], 401);
    assert_eq!(r["errors"], serde_json::json!([]), "{r}");
    r
}
