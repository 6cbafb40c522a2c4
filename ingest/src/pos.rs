//! Point-of-sale transactions: the numerator of conversion (transactions ÷ groups that came
//! in). They arrive over MQTT from the store's POS system (`{prefix}/{store}/pos/transaction`,
//! `signals/schema/pos-transaction.v1.json`) or from a POS export (`vitrine-ingest import-pos`,
//! CSV), and are stored once per (store, transaction id) whichever way and however often they
//! come. Only what conversion needs: no customer, card or basket line is accepted.

use std::path::Path;

use serde::Deserialize;

/// The payload's schema name.
pub const POS_SCHEMA: &str = "vitrine.pos-transaction.v1";

/// One sale, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct TransactionRow {
    pub store_id: String,
    pub transaction_id: String,
    /// RFC 3339 with an offset, or a local time read in `timezone`.
    pub at: String,
    pub timezone: Option<String>,
    pub total: Option<f64>,
    pub currency: Option<String>,
    pub items: Option<i32>,
    pub register: Option<String>,
    /// `mqtt` or `csv`.
    pub source: &'static str,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Message {
    schema: String,
    store_id: String,
    transaction_id: String,
    at: String,
    total: Option<f64>,
    currency: Option<String>,
    items: Option<i32>,
    register: Option<String>,
}

/// A transaction published on `store`'s POS topic, or why it is refused.
pub fn from_message(store: &str, payload: &[u8]) -> Result<TransactionRow, String> {
    let m: Message =
        serde_json::from_slice(payload).map_err(|e| format!("POS transaction payload: {e}"))?;
    if m.schema != POS_SCHEMA {
        return Err(format!(
            "schema is not {POS_SCHEMA} on a pos/transaction topic"
        ));
    }
    if m.store_id != store {
        return Err("store_id disagrees with the topic".into());
    }
    let row = TransactionRow {
        store_id: m.store_id,
        transaction_id: m.transaction_id,
        at: m.at,
        timezone: None,
        total: m.total,
        currency: m.currency,
        items: m.items,
        register: m.register,
        source: "mqtt",
    };
    check(&row)?;
    if !has_offset(&row.at) {
        return Err(
            "at has no UTC offset: write it as RFC 3339, e.g. 2026-12-05T10:15:00+01:00".into(),
        );
    }
    Ok(row)
}

/// The fields' own rules (what the schema says, for rows from either way in).
fn check(r: &TransactionRow) -> Result<(), String> {
    let id_ok = |s: &str, max: usize| {
        !s.is_empty()
            && s.len() <= max
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._:-/".contains(&b))
    };
    if !id_ok(&r.transaction_id, 128) {
        return Err(format!(
            "transaction_id {:?}: 1-128 of A-Z a-z 0-9 . _ : - /",
            r.transaction_id
        ));
    }
    if r.register.as_deref().is_some_and(|g| !id_ok(g, 64)) {
        return Err("register: 1-64 of A-Z a-z 0-9 . _ : - /".into());
    }
    if r.currency
        .as_deref()
        .is_some_and(|c| c.len() != 3 || !c.bytes().all(|b| b.is_ascii_uppercase()))
    {
        return Err("currency: an ISO 4217 code such as EUR".into());
    }
    if r.items.is_some_and(|n| n < 0) {
        return Err("items: a count, 0 or more".into());
    }
    if r.total.is_some_and(|t| !t.is_finite()) {
        return Err("total: a number".into());
    }
    if r.at.len() < 19 || r.at.len() > 40 {
        return Err(format!("at {:?}: a date and time", r.at));
    }
    Ok(())
}

/// Whether an RFC 3339 time names its offset (`Z`, `+01:00`, `-05:00`).
pub fn has_offset(at: &str) -> bool {
    let t = at.trim();
    if t.ends_with('Z') || t.ends_with('z') {
        return true;
    }
    let b = t.as_bytes();
    b.len() >= 6 && (b[b.len() - 6] == b'+' || b[b.len() - 6] == b'-') && b[b.len() - 3] == b':'
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CsvRow {
    transaction_id: String,
    at: String,
    total: Option<f64>,
    currency: Option<String>,
    items: Option<i32>,
    register: Option<String>,
}

/// A POS export: a header row naming `transaction_id`, `at` and any of `total`, `currency`,
/// `items`, `register`. Times without an offset are read in `timezone` (the store's; refused
/// without one). Every bad row is reported with its line; nothing is imported from a file
/// with one.
pub fn read_csv(
    path: &Path,
    store: &str,
    timezone: Option<&str>,
) -> anyhow::Result<Vec<TransactionRow>> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_path(path)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let mut rows = Vec::new();
    let mut problems = Vec::new();
    for (i, r) in reader.deserialize::<CsvRow>().enumerate() {
        let line = i + 2;
        let r = match r {
            Ok(r) => r,
            Err(e) => {
                problems.push(format!("{}:{line}: {e}", path.display()));
                continue;
            }
        };
        let tz = (!has_offset(&r.at)).then(|| timezone.map(str::to_string));
        let row = TransactionRow {
            store_id: store.to_string(),
            transaction_id: r.transaction_id,
            at: r.at,
            timezone: tz.clone().flatten(),
            total: r.total,
            currency: r.currency.filter(|c| !c.is_empty()),
            items: r.items,
            register: r.register.filter(|g| !g.is_empty()),
            source: "csv",
        };
        if let Err(e) = check(&row) {
            problems.push(format!("{}:{line}: {e}", path.display()));
        } else if tz == Some(None) {
            problems.push(format!(
                "{}:{line}: at {:?} has no UTC offset; fix: pass --timezone with the store's zone (e.g. Europe/Berlin) or export times with their offset",
                path.display(),
                row.at
            ));
        } else {
            rows.push(row);
        }
    }
    if !problems.is_empty() {
        anyhow::bail!(
            "nothing imported; {} bad row(s):\n  {}\n(columns: transaction_id, at, and any of total, currency, items, register)",
            problems.len(),
            problems.join("\n  ")
        );
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn msg(v: serde_json::Value) -> Vec<u8> {
        v.to_string().into_bytes()
    }

    #[test]
    fn a_transaction_message_is_a_row_and_nothing_personal_gets_in() {
        let ok = msg(serde_json::json!({"schema": POS_SCHEMA, "store_id": "s1",
            "transaction_id": "R2-000123", "at": "2026-12-05T10:15:00+01:00", "total": 23.5,
            "currency": "EUR", "items": 3, "register": "R2"}));
        let r = from_message("s1", &ok).unwrap();
        assert_eq!((r.transaction_id.as_str(), r.source), ("R2-000123", "mqtt"));
        let card = msg(serde_json::json!({"schema": POS_SCHEMA, "store_id": "s1",
            "transaction_id": "T1", "at": "2026-12-05T10:15:00Z", "card": "4111"}));
        assert!(from_message("s1", &card)
            .unwrap_err()
            .to_string()
            .contains("card"));
        let elsewhere = msg(serde_json::json!({"schema": POS_SCHEMA, "store_id": "s2",
            "transaction_id": "T1", "at": "2026-12-05T10:15:00Z"}));
        assert!(from_message("s1", &elsewhere).is_err());
        let local = msg(serde_json::json!({"schema": POS_SCHEMA, "store_id": "s1",
            "transaction_id": "T1", "at": "2026-12-05T10:15:00"}));
        assert!(from_message("s1", &local)
            .unwrap_err()
            .to_string()
            .contains("offset"));
    }

    #[test]
    fn a_pos_export_is_read_whole_or_refused_with_every_bad_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("export.csv");
        std::fs::write(
            &p,
            "transaction_id,at,total,currency\nA1,2026-12-05 10:15:00,12.00,EUR\nA2,2026-12-05T11:00:00Z,,\n",
        )
        .unwrap();
        let rows = read_csv(&p, "s1", Some("Europe/Berlin")).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].timezone.as_deref(), Some("Europe/Berlin"));
        assert_eq!(rows[1].timezone, None);
        assert_eq!(rows[1].currency, None);
        let e = read_csv(&p, "s1", None).unwrap_err().to_string();
        assert!(
            e.contains("export.csv:2") && e.contains("--timezone"),
            "{e}"
        );
        std::fs::write(
            &p,
            "transaction_id,at,total\nA 1,2026-12-05T10:15:00Z,1\nA2,2026-12-05T10:15:00Z,lots\n",
        )
        .unwrap();
        let e = read_csv(&p, "s1", None).unwrap_err().to_string();
        assert!(
            e.contains(":2:") && e.contains(":3:") && e.contains("2 bad row"),
            "{e}"
        );
    }
}
