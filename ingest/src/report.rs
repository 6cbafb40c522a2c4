//! `vitrine-ingest report`: what the data team checks first — rows per kind, sequence numbers
//! that never arrived (and no gap record explains), boxes offline, rejected messages.

use std::fmt::Write as _;

use tokio_postgres::Client;

pub async fn report(db: &Client) -> anyhow::Result<String> {
    let mut out = String::new();
    for row in db
        .query(
            "SELECT kind, count(*) FROM events GROUP BY kind ORDER BY kind",
            &[],
        )
        .await?
    {
        let (kind, n): (String, i64) = (row.get(0), row.get(1));
        writeln!(out, "events {kind}: {n}")?;
    }
    let missing = db
        .query(
            "SELECT store_id, device_id, count(*), min(seq), max(seq) FROM missing_seqs \
             GROUP BY store_id, device_id ORDER BY store_id, device_id",
            &[],
        )
        .await?;
    writeln!(
        out,
        "devices with unexplained missing seqs: {}",
        missing.len()
    )?;
    for r in missing {
        let (s, d, n, lo, hi): (String, String, i64, i64, i64) =
            (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4));
        writeln!(out, "  {s}/{d}: {n} missing between {lo} and {hi}")?;
    }
    let offline = db
        .query(
            "SELECT store_id, device_id, reason, changed_at::text FROM devices \
             WHERE state = 'offline' ORDER BY changed_at",
            &[],
        )
        .await?;
    writeln!(out, "devices offline: {}", offline.len())?;
    for r in offline {
        let (s, d, why, at): (String, String, String, String) =
            (r.get(0), r.get(1), r.get(2), r.get(3));
        writeln!(out, "  {s}/{d}: {why} since {at}")?;
    }
    let rejected: i64 = db
        .query_one("SELECT count(*) FROM rejected", &[])
        .await?
        .get(0);
    writeln!(out, "rejected messages: {rejected}")?;
    Ok(out)
}
