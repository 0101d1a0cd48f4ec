//! What the lint needs to know of the live database (see `lint::Facts`): the server and its
//! version, and for each table of the current schema its size, columns and indexes. Read on
//! the run's session, read-only.
//!
//! Sizes come from the catalog's statistics, which can be missing: PostgreSQL keeps
//! `reltuples = -1` for a table never analysed (0 before version 14), and InnoDB's
//! `table_rows` may still be 0 for a table filled since its statistics were taken. Such a
//! table is counted exactly when it is small enough to count quickly, and otherwise sized in
//! bytes, so that it is never called empty because `ANALYZE` has not run.

use std::collections::BTreeMap;

use crate::engine::{ColKind, Database, Dialect, Stmt, Value};
use crate::error::Error;
use crate::lint::{ColumnFacts, Facts, Rows, Server, TableFacts};

/// Tables up to this size on disk are counted with `COUNT(*)` when their statistics are
/// missing (a few hundred milliseconds at most, from the server's cache).
pub const COUNT_UP_TO_BYTES: u64 = 32 * 1024 * 1024;

/// Bytes of tables counted in one read, all tables together: past it, the rest are sized in
/// bytes only.
const COUNT_BUDGET_BYTES: u64 = 128 * 1024 * 1024;

/// The facts for a preview: when the catalog cannot be read, a warning, and sizes unknown
/// (never "empty").
pub async fn read_or_warn<D: Database>(
    cx: &super::Ctx<'_>,
    db: &mut D,
    trail: &mut super::Trail,
) -> Facts {
    match read(db).await {
        Ok(facts) => facts,
        Err(e) => {
            cx.warn(
                trail,
                format!("table sizes could not be read, so estimates leave them out: {e}"),
            );
            Facts::default()
        }
    }
}

/// PostgreSQL: the other sessions holding a lock now on one of `tables` (names as the lint
/// reports them), which a schema change of that table would wait for; one line each. Other
/// engines, and a catalog that cannot be read: none.
pub async fn blockers<D: Database>(db: &mut D, tables: &[String]) -> Vec<String> {
    if db.dialect() != Dialect::Postgres || tables.is_empty() {
        return Vec::new();
    }
    let wanted: Vec<String> = tables
        .iter()
        .map(|t| t.rsplit('.').next().unwrap_or(t).to_lowercase())
        .collect();
    let sql = "SELECT a.pid, c.relname::text, string_agg(DISTINCT l.mode, ', '), \
               COALESCE(a.application_name, ''), COALESCE(a.usename::text, ''), \
               COALESCE(a.state, ''), \
               COALESCE(EXTRACT(EPOCH FROM now() - a.xact_start)::bigint, 0) \
               FROM pg_locks l JOIN pg_class c ON c.oid = l.relation \
               JOIN pg_namespace n ON n.oid = c.relnamespace \
               JOIN pg_stat_activity a ON a.pid = l.pid \
               WHERE l.granted AND l.pid <> pg_backend_pid() AND n.nspname = current_schema() \
               AND c.relkind IN ('r', 'p') \
               GROUP BY a.pid, c.relname, a.application_name, a.usename, a.state, a.xact_start \
               ORDER BY a.xact_start, a.pid";
    let cols = [
        ColKind::Int,
        ColKind::Text,
        ColKind::Text,
        ColKind::Text,
        ColKind::Text,
        ColKind::Text,
        ColKind::Int,
    ];
    let Ok(rows) = db.fetch(&Stmt::raw(sql), &cols).await else {
        return Vec::new();
    };
    let or = |s: String, unknown: &str| if s.is_empty() { unknown.to_owned() } else { s };
    rows.iter()
        .filter(|r| wanted.contains(&text(r, 1).to_lowercase()))
        .map(|r| {
            format!(
                "pid {} (application {}, user {}, {}, transaction open {} s) holds {} on {}: DDL on it waits until that transaction ends",
                int(r, 0).unwrap_or_default(),
                or(text(r, 3), "unnamed"),
                or(text(r, 4), "?"),
                or(text(r, 5), "state not visible to this user"),
                int(r, 6).unwrap_or_default(),
                text(r, 2),
                text(r, 1),
            )
        })
        .collect()
}

/// Reads the facts of the database `db` is connected to.
///
/// # Errors
/// A database error reading the catalog.
pub async fn read<D: Database>(db: &mut D) -> Result<Facts, Error> {
    let dialect = db.dialect();
    let version = db.server_version().await?;
    let server = Server::parse(dialect, &version);
    let mut tables = sizes(db, dialect).await?;
    for (table, column, data_type, not_null) in columns(db, dialect).await? {
        if let Some(t) = tables.get_mut(&table) {
            t.columns.insert(
                column,
                ColumnFacts {
                    data_type,
                    not_null,
                },
            );
        }
    }
    for (table, index) in indexes(db, dialect).await? {
        if let Some(t) = tables.get_mut(&table) {
            t.indexes.push(index);
        }
    }
    count_unknown(db, dialect, &mut tables).await?;
    Ok(Facts {
        server,
        tables: Some(tables),
    })
}

fn text(row: &[Value], i: usize) -> String {
    row.get(i)
        .and_then(Value::as_text)
        .unwrap_or_default()
        .to_owned()
}

fn int(row: &[Value], i: usize) -> Option<i64> {
    row.get(i).and_then(Value::as_int)
}

/// Each table with its statistics: `Rows::Unknown` where they are missing.
async fn sizes<D: Database>(
    db: &mut D,
    dialect: Dialect,
) -> Result<BTreeMap<String, TableFacts>, Error> {
    let sql = match dialect {
        // reltuples < 0: never analysed (PostgreSQL 14+); 0 with pages on disk: analysed
        // before it was filled, or never (older versions).
        Dialect::Postgres => {
            "SELECT c.relname::text, \
             CASE WHEN c.reltuples < 0 OR (c.reltuples = 0 AND pg_relation_size(c.oid) > 0) \
             THEN NULL ELSE c.reltuples::bigint END, pg_relation_size(c.oid)::bigint \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')"
        }
        // InnoDB's estimate is refreshed lazily; 0 is read as "not known yet".
        Dialect::MySql => {
            "SELECT CAST(table_name AS CHAR), CAST(NULLIF(table_rows, 0) AS SIGNED), \
             CAST(COALESCE(data_length, 0) + COALESCE(index_length, 0) AS SIGNED) \
             FROM information_schema.tables \
             WHERE table_schema = DATABASE() AND table_type = 'BASE TABLE'"
        }
        // No statistics: every table is counted.
        Dialect::Sqlite => {
            "SELECT name, NULL, NULL FROM sqlite_master \
             WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'"
        }
    };
    let rows = db
        .fetch(
            &Stmt::raw(sql),
            &[ColKind::Text, ColKind::Int, ColKind::Int],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| {
            let rows = match int(r, 1).and_then(|n| u64::try_from(n).ok()) {
                Some(n) => Rows::Estimated(n),
                None => Rows::Unknown,
            };
            let bytes = int(r, 2).and_then(|n| u64::try_from(n).ok());
            (
                text(r, 0),
                TableFacts {
                    rows,
                    bytes,
                    ..TableFacts::default()
                },
            )
        })
        .collect())
}

/// (table, column, type as the catalog prints it, NOT NULL).
async fn columns<D: Database>(
    db: &mut D,
    dialect: Dialect,
) -> Result<Vec<(String, String, String, bool)>, Error> {
    let sql = match dialect {
        Dialect::Postgres => {
            "SELECT c.relname::text, a.attname::text, format_type(a.atttypid, a.atttypmod), \
             CASE WHEN a.attnotnull THEN 1 ELSE 0 END \
             FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') \
             AND a.attnum > 0 AND NOT a.attisdropped"
        }
        Dialect::MySql => {
            "SELECT CAST(table_name AS CHAR), CAST(column_name AS CHAR), CAST(column_type AS CHAR), \
             CASE WHEN is_nullable = 'NO' THEN 1 ELSE 0 END \
             FROM information_schema.columns WHERE table_schema = DATABASE()"
        }
        Dialect::Sqlite => {
            "SELECT m.name, p.name, p.type, p.\"notnull\" FROM sqlite_master m \
             JOIN pragma_table_info(m.name) p \
             WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite\\_%' ESCAPE '\\'"
        }
    };
    let rows = db
        .fetch(
            &Stmt::raw(sql),
            &[ColKind::Text, ColKind::Text, ColKind::Text, ColKind::Int],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| (text(r, 0), text(r, 1), text(r, 2), int(r, 3) == Some(1)))
        .collect())
}

/// (table, index).
async fn indexes<D: Database>(
    db: &mut D,
    dialect: Dialect,
) -> Result<Vec<(String, String)>, Error> {
    let sql = match dialect {
        Dialect::Postgres => {
            "SELECT t.relname::text, i.relname::text FROM pg_index x \
             JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid \
             JOIN pg_namespace n ON n.oid = t.relnamespace WHERE n.nspname = current_schema()"
        }
        Dialect::MySql => {
            "SELECT DISTINCT CAST(table_name AS CHAR), CAST(index_name AS CHAR) \
             FROM information_schema.statistics WHERE table_schema = DATABASE()"
        }
        Dialect::Sqlite => "SELECT tbl_name, name FROM sqlite_master WHERE type = 'index'",
    };
    let rows = db
        .fetch(&Stmt::raw(sql), &[ColKind::Text, ColKind::Text])
        .await?;
    Ok(rows.iter().map(|r| (text(r, 0), text(r, 1))).collect())
}

/// Counts the tables whose statistics are missing, smallest first, while they are small.
async fn count_unknown<D: Database>(
    db: &mut D,
    dialect: Dialect,
    tables: &mut BTreeMap<String, TableFacts>,
) -> Result<(), Error> {
    let mut unknown: Vec<(String, u64)> = tables
        .iter()
        .filter(|(_, t)| t.rows == Rows::Unknown)
        .map(|(name, t)| (name.clone(), t.bytes.unwrap_or(0)))
        .filter(|(_, bytes)| *bytes <= COUNT_UP_TO_BYTES)
        .collect();
    unknown.sort_by_key(|(_, bytes)| *bytes);
    let mut budget = COUNT_BUDGET_BYTES;
    for (name, bytes) in unknown {
        if bytes > budget {
            break;
        }
        budget -= bytes;
        let sql = format!("SELECT COUNT(*) FROM {}", dialect.quote_ident(&name));
        let rows = db.fetch(&Stmt::raw(sql), &[ColKind::Int]).await?;
        let n = rows.first().and_then(|r| int(r, 0));
        if let (Some(n), Some(t)) = (n.and_then(|n| u64::try_from(n).ok()), tables.get_mut(&name)) {
            t.rows = Rows::Exact(n);
        }
    }
    Ok(())
}
