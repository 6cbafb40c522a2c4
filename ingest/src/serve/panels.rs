//! The dashboard's panels: one query each, over the hourly rollups (`store_hour`,
//! `forecast_hour`) or an indexed slice of `events`, for one store and the last `days` days.
//! Times are Unix seconds (the charts' unit).

use serde::Deserialize;
use serde_json::{json, Value};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Row};

/// What a panel shows: one store, the last `days` days up to now (or `to`, Unix seconds).
#[derive(Debug, Deserialize)]
pub struct Range {
    #[serde(default)]
    pub store: String,
    pub days: Option<u32>,
    pub to: Option<i64>,
}

/// The panels, by name (the page asks for each).
pub const PANELS: &[&str] = &[
    "footfall",
    "occupancy",
    "conversion",
    "queues",
    "dwell",
    "funnel",
    "alerts",
    "audits",
    "fleet",
];

/// The panel `name` for `r` (`None`: no such panel).
pub async fn panel(
    db: &Client,
    name: &str,
    r: &Range,
) -> Result<Option<Value>, tokio_postgres::Error> {
    if name == "stores" {
        let rows = db
            .query("SELECT DISTINCT store_id FROM devices UNION SELECT DISTINCT store_id FROM store_hour ORDER BY 1", &[])
            .await?;
        let ids: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
        return Ok(Some(json!({ "stores": ids })));
    }
    let days = f64::from(r.days.unwrap_or(7).clamp(1, 400));
    let to =
        r.to.map_or_else(|| "now()".to_string(), |t| format!("to_timestamp({t})"));
    // $1 store, $2 days; the end is now() or a literal built from an integer.
    let range = format!("hour > {to} - $2 * interval '1 day' AND hour <= {to}");
    let args: [&(dyn ToSql + Sync); 2] = [&r.store, &days];
    let q = |sql: String| async move { db.query(sql.as_str(), &args).await };
    let v = match name {
        "footfall" => series(
            q(format!(
                "WITH f AS (SELECT hour, sum(crossings) AS crossings FROM forecast_hour \
                 WHERE store_id = $1 AND {range} GROUP BY hour) \
                 SELECT extract(epoch FROM s.hour)::float8, s.crossings::float8, s.visitors_in::float8, \
                 f.crossings FROM store_hour s LEFT JOIN f ON f.hour = s.hour \
                 WHERE s.store_id = $1 AND {in_s} ORDER BY s.hour",
                in_s = range.replace("hour", "s.hour")
            ))
            .await?,
            &["crossings", "visitors_in", "forecast"],
        ),
        "occupancy" => {
            let now = db
                .query_opt(
                    "SELECT people, capacity, boxes, boxes_suppressed, extract(epoch FROM oldest_at)::float8 \
                     FROM store_occupancy WHERE store_id = $1",
                    &[&r.store],
                )
                .await?;
            let mut v = series(
                q(format!(
                    "SELECT extract(epoch FROM hour)::float8, occupancy_max::float8 FROM store_hour \
                     WHERE store_id = $1 AND {range} AND occupancy_max IS NOT NULL ORDER BY hour"
                ))
                .await?,
                &["max"],
            );
            v["now"] = now.map_or(Value::Null, |n| {
                json!({
                    "people": n.get::<_, i64>(0),
                    "capacity": n.get::<_, Option<i32>>(1),
                    "boxes": n.get::<_, i64>(2),
                    "boxes_suppressed": n.get::<_, i64>(3),
                    "at": n.get::<_, Option<f64>>(4),
                })
            });
            v
        }
        "conversion" => series(
            q(format!(
                "SELECT extract(epoch FROM s.hour)::float8, \
                 (SELECT count(*) FROM transactions t WHERE t.store_id = $1 AND t.at >= s.hour \
                  AND t.at < s.hour + interval '1 hour')::float8 AS sales, s.groups_in::float8 \
                 FROM store_hour s WHERE s.store_id = $1 AND {range} ORDER BY s.hour"
            ))
            .await?,
            &["transactions", "groups_in"],
        ),
        "queues" => series(
            q(format!(
                "SELECT extract(epoch FROM hour)::float8, queue_served::float8, \
                 queue_wait_s / nullif(queue_served, 0) FROM store_hour \
                 WHERE store_id = $1 AND {range} ORDER BY hour"
            ))
            .await?,
            &["served", "wait_mean_s"],
        ),
        "dwell" => series(
            q(format!(
                "SELECT extract(epoch FROM hour)::float8, dwell_visits::float8, \
                 dwell_s / nullif(dwell_visits, 0) FROM store_hour \
                 WHERE store_id = $1 AND {range} ORDER BY hour"
            ))
            .await?,
            &["visits", "dwell_mean_s"],
        ),
        "funnel" => {
            let rows = q(format!(
                "SELECT coalesce(sum(funnel_passed), 0)::float8, coalesce(sum(funnel_entered), 0)::float8, \
                 coalesce(sum(funnel_engaged), 0)::float8, coalesce(sum(funnel_checkout), 0)::float8, \
                 coalesce(sum(alerts), 0)::float8 FROM store_hour WHERE store_id = $1 AND {range}"
            ))
            .await?;
            let row = rows.first();
            let at = |i: usize| row.map_or(0.0, |r| r.get::<_, f64>(i));
            json!({ "passed": at(0), "entered": at(1), "engaged": at(2), "checkout": at(3) })
        }
        "alerts" => {
            let range = range.replace("hour", "(payload->>'at')::timestamptz");
            let rows = q(format!(
                "SELECT extract(epoch FROM (payload->>'at')::timestamptz)::float8, source_id, \
                 payload->>'alert', payload->>'state', (payload->>'value')::float8, \
                 (payload->>'threshold')::float8 FROM events \
                 WHERE kind = 'alert' AND store_id = $1 AND {range} \
                 ORDER BY payload->>'at' DESC LIMIT 500"
            ))
            .await?;
            let list: Vec<Value> = rows
                .iter()
                .map(|r| {
                    json!({"at": r.get::<_, f64>(0), "source": r.get::<_, Option<String>>(1),
                        "alert": r.get::<_, Option<String>>(2), "state": r.get::<_, Option<String>>(3),
                        "value": r.get::<_, Option<f64>>(4), "threshold": r.get::<_, Option<f64>>(5)})
                })
                .collect();
            json!({ "alerts": list })
        }
        "audits" => {
            let rows = db
                .query(
                    "SELECT source_id, payload FROM events WHERE kind = 'audit' AND store_id = $1 \
                     ORDER BY seq DESC LIMIT 20",
                    &[&r.store],
                )
                .await?;
            let list: Vec<Value> = rows
                .iter()
                .map(|r| json!({"source": r.get::<_, Option<String>>(0), "audit": r.get::<_, Value>(1)}))
                .collect();
            json!({ "audits": list })
        }
        "fleet" => fleet(db, &r.store).await?,
        _ => return Ok(None),
    };
    Ok(Some(v))
}

/// Columns for the charts: `t` (Unix seconds) and one array per named column.
fn series(rows: Vec<Row>, names: &[&str]) -> Value {
    let mut v = json!({ "t": rows.iter().map(|r| r.get::<_, f64>(0)).collect::<Vec<_>>() });
    for (i, n) in names.iter().enumerate() {
        let col: Vec<Option<f64>> = rows.iter().map(|r| r.get(i + 1)).collect();
        v[*n] = json!(col);
    }
    v
}

/// The store's boxes: last status, unexplained missing seqs; rejected messages of the last day.
async fn fleet(db: &Client, store: &str) -> Result<Value, tokio_postgres::Error> {
    let boxes = db
        .query(
            "SELECT device_id, d.state, d.reason, extract(epoch FROM d.changed_at)::float8, \
             greatest(0, coalesce(s.max_seq - s.min_seq + 1 - s.stored, 0) - coalesce((SELECT sum(g.to_seq - g.from_seq + 1) \
               FROM gap_ranges g WHERE g.store_id = $1 AND g.device_id = device_id), 0))::bigint \
             FROM (SELECT * FROM devices WHERE store_id = $1) d \
             FULL JOIN (SELECT * FROM device_seqs WHERE store_id = $1) s USING (store_id, device_id) \
             ORDER BY device_id",
            &[&store],
        )
        .await?;
    let rejected: i64 = db
        .query_one(
            "SELECT count(*) FROM rejected WHERE received_at > now() - interval '1 day'",
            &[],
        )
        .await?
        .get(0);
    let list: Vec<Value> = boxes
        .iter()
        .map(|r| {
            json!({"device": r.get::<_, String>(0),
                "state": r.get::<_, Option<String>>(1).unwrap_or_else(|| "never reported".into()),
                "reason": r.get::<_, Option<String>>(2), "since": r.get::<_, Option<f64>>(3),
                "missing_seqs": r.get::<_, i64>(4)})
        })
        .collect();
    Ok(json!({ "boxes": list, "rejected_last_day": rejected }))
}
