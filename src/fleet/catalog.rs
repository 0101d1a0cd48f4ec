//! `targets_query`: a fleet's targets read from a catalog database (a `tenants` table), on a
//! read-only session, with any engine dbdeploy supports. The query's columns are `id`, `url`
//! or `url_env` (or both, one set per row), and optionally `labels`, a JSON object as text.
//! The drivers do not name a result's columns through the engine layer, so the query is
//! wrapped and asked for each shape in turn, the richest first. A row is never quoted back
//! in an error: it may hold a URL.

use std::collections::BTreeMap;
use std::time::Duration;

use super::config::TargetEntry;
use crate::config::ConfigError;
use crate::engine::{ColKind, ConnectOptions, Database, Dialect, Stmt, Target, Value};
use crate::error::Error;
use crate::settings::Settings;

/// The columns a shape of the query's result has, besides `id`.
const SHAPES: [(bool, bool, bool); 6] = [
    (true, true, true),
    (true, true, false),
    (true, false, true),
    (true, false, false),
    (false, true, true),
    (false, true, false),
];

/// Runs the fleet's `targets_query` on the catalog database `catalog_url_env` names.
///
/// # Errors
/// A configuration error (exit 2): the variable is not set, the catalog cannot be read, the
/// query has no usable columns, or a row is not a target (named by its number).
pub async fn read(
    settings: &Settings,
    environment: &str,
    sql: &str,
    catalog_url_env: &str,
) -> Result<Vec<TargetEntry>, Error> {
    let what = format!("`[environments.{environment}.fleet] targets_query`");
    let raw = settings.catalog_url(environment, catalog_url_env)?;
    let target = Target::parse(&raw, &settings.working_dir).map_err(|reason| {
        ConfigError::Usage(format!(
            "{what}: the catalog URL in `{catalog_url_env}` is not usable: {reason}"
        ))
    })?;
    let rows = crate::with_database!(target, D => query::<D>(&target, sql).await)
        .map_err(|e| ConfigError::Usage(format!("{what} failed: {e}; nothing was changed")))?;
    let entries = entries(&rows).map_err(|e| ConfigError::Usage(format!("{what}: {e}")))?;
    Ok(entries)
}

/// One row: `id`, `url`, `url_env`, `labels`, as text or NULL.
type Row = [Option<String>; 4];

async fn query<D: Database>(target: &Target, sql: &str) -> Result<Vec<Row>, String> {
    let opts = ConnectOptions {
        wait: Duration::from_secs(10),
        read_only: true,
        lock_wait: Duration::from_secs(10),
    };
    let mut db = D::connect(target, opts).await.map_err(|e| e.to_string())?;
    let dialect = db.dialect();
    let inner = sql.trim().trim_end_matches(';');
    let mut last = String::new();
    let mut found = None;
    for (url, url_env, labels) in SHAPES {
        let col = |on: bool, name: &str| {
            if on {
                text(dialect, &format!("q.{name}"))
            } else {
                "NULL".to_owned()
            }
        };
        let wrapped = format!(
            "SELECT {}, {}, {}, {} FROM ({inner}) q",
            text(dialect, "q.id"),
            col(url, "url"),
            col(url_env, "url_env"),
            col(labels, "labels"),
        );
        let kinds = [ColKind::Text; 4];
        match db.fetch(&Stmt::raw(&wrapped), &kinds).await {
            Ok(rows) => {
                found = Some(rows);
                break;
            }
            Err(e) => last = e.to_string(),
        }
    }
    db.close().await;
    let rows = found.ok_or_else(|| {
        format!(
            "its result needs the columns `id` and `url` or `url_env` (and may have `labels`): {last}"
        )
    })?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let mut out: Row = Default::default();
            for (slot, v) in out.iter_mut().zip(r) {
                *slot = match v {
                    Value::Text(s) => Some(s),
                    Value::Int(i) => Some(i.to_string()),
                    _ => None,
                };
            }
            out
        })
        .collect())
}

/// `expr` as text, the engine's way.
fn text(dialect: Dialect, expr: &str) -> String {
    match dialect {
        Dialect::MySql => format!("CAST({expr} AS CHAR)"),
        _ => format!("CAST({expr} AS TEXT)"),
    }
}

/// The targets of the rows; a row is named by its number (and id), never quoted.
fn entries(rows: &[Row]) -> Result<Vec<TargetEntry>, String> {
    let mut out = Vec::with_capacity(rows.len());
    for (i, [id, url, url_env, labels]) in rows.iter().enumerate() {
        let n = i + 1;
        let id = id
            .clone()
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| format!("row {n}: column `id` is empty"))?;
        if let Some(u) = url {
            crate::redact::register_url(u);
        }
        let labels: BTreeMap<String, String> = match labels.as_deref().map(str::trim) {
            None | Some("") => BTreeMap::new(),
            Some(text) => serde_json::from_str(text).map_err(|_| {
                format!(
                    "row {n} (id `{id}`): column `labels` is not a JSON object of strings, e.g. {{\"tier\": \"free\"}}"
                )
            })?,
        };
        let entry = TargetEntry {
            id,
            url: url.clone().filter(|s| !s.trim().is_empty()),
            url_env: url_env.clone().filter(|s| !s.trim().is_empty()),
            labels,
        };
        super::config::check_entry(&entry)
            .map_err(|e| format!("row {n}: {e} (columns `url` and `url_env`)"))?;
        out.push(entry);
    }
    super::config::check_unique(out.iter().map(|t| t.id.as_str()))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: Option<&str>, url: Option<&str>, env: Option<&str>, labels: Option<&str>) -> Row {
        [id, url, env, labels].map(|c| c.map(str::to_owned))
    }

    #[test]
    fn rows_become_targets_and_bad_rows_are_named_without_their_url() {
        let ok = entries(&[
            row(
                Some("a"),
                Some("sqlite://a.db"),
                None,
                Some("{\"tier\": \"free\"}"),
            ),
            row(Some("b"), None, Some("B_URL"), None),
        ])
        .unwrap();
        assert_eq!(ok[0].labels["tier"], "free");
        assert_eq!(ok[1].url_env.as_deref(), Some("B_URL"));
        let e = entries(&[
            row(Some("a"), Some("sqlite://a.db"), None, None),
            row(
                Some("b"),
                Some("postgres://u:sekret@h/b"),
                None,
                Some("[1]"),
            ),
        ])
        .unwrap_err();
        assert!(e.starts_with("row 2 (id `b`): column `labels`"), "{e}");
        assert!(!e.contains("sekret"));
        let e = entries(&[row(None, Some("sqlite://a.db"), None, None)]).unwrap_err();
        assert_eq!(e, "row 1: column `id` is empty");
        let e = entries(&[row(Some("a"), None, None, None)]).unwrap_err();
        assert!(
            e.starts_with("row 1: target `a` must set exactly one of"),
            "{e}"
        );
    }
}
