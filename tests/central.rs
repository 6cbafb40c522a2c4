//! The central side against real parts: a real Mosquitto, a real PostgreSQL (Debian's server
//! in a temp directory), the reference ingest (`vitrine-ingest`'s library, two instances
//! sharing one subscription group) and simulated boxes that are the real outbox and uplink.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::Mosquitto;
use vitrine::tools::fleet::{box_ids, Fleet};
use vitrine_ingest::consumer::{self, Options};
use vitrine_ingest::local::LocalPostgres;

fn ingest_options(port: u16, dsn: &str, id: &str) -> Options {
    Options {
        host: "127.0.0.1".into(),
        port,
        client_id: id.into(),
        group: "ingest".into(),
        prefix: "vitrine".into(),
        dsn: dsn.into(),
        batch: 50,
        linger: Duration::from_millis(20),
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
    // Instance a dies half-way without a goodbye (its unacknowledged messages stay at the
    // broker) and comes back under the same client id, as systemd would restart it.
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
