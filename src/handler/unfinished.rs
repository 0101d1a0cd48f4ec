//! `_dbdeploy_unfinished`: where dbdeploy notes a migration that runs outside a transaction,
//! for tools whose own table has no way to say "started but not finished" (drizzle keeps only
//! finished rows, and any row there means "applied" to it).
//!
//! A row is written before the script starts and deleted together with the tool's own row
//! once it finished; a row left behind is a failed migration that blocks further deploys
//! until `resolve`. The tool never reads this table, so it can never misread it.

use crate::engine::{Dialect, Stmt, Value};

/// The table.
pub const TABLE: &str = "_dbdeploy_unfinished";

/// `CREATE TABLE IF NOT EXISTS`, safe to run before every migration.
#[must_use]
pub fn create(d: Dialect) -> Stmt {
    let ts = match d {
        Dialect::Postgres => "TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP",
        Dialect::MySql => "DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3)",
        Dialect::Sqlite => "DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP",
    };
    Stmt::raw(format!(
        "CREATE TABLE IF NOT EXISTS {} (
    tool        VARCHAR(32) NOT NULL,
    name        VARCHAR(255) NOT NULL,
    checksum    VARCHAR(64) NOT NULL,
    started_at  {ts},
    logs        TEXT,
    PRIMARY KEY (tool, name)
)",
        d.quote_ident(TABLE)
    ))
}

/// Notes that `name` starts (replacing any stale note of it).
#[must_use]
pub fn started(d: Dialect, tool: &str, name: &str, checksum: &str) -> Vec<Stmt> {
    let mut stmts = vec![create(d), finished(d, tool, name)];
    stmts.push(Stmt::new(
        format!(
            "INSERT INTO {} (tool, name, checksum) VALUES ({}, {}, {})",
            d.quote_ident(TABLE),
            d.placeholder(1),
            d.placeholder(2),
            d.placeholder(3)
        ),
        vec![
            Value::Text(tool.to_owned()),
            Value::Text(name.to_owned()),
            Value::Text(checksum.to_owned()),
        ],
    ));
    stmts
}

/// Removes the note of `name`: it finished, or was resolved.
#[must_use]
pub fn finished(d: Dialect, tool: &str, name: &str) -> Stmt {
    Stmt::new(
        format!(
            "DELETE FROM {} WHERE tool = {} AND name = {}",
            d.quote_ident(TABLE),
            d.placeholder(1),
            d.placeholder(2)
        ),
        vec![Value::Text(tool.to_owned()), Value::Text(name.to_owned())],
    )
}

/// Records the error text of a failed run.
#[must_use]
pub fn failed(d: Dialect, tool: &str, name: &str, logs: &str) -> Stmt {
    Stmt::new(
        format!(
            "UPDATE {} SET logs = {} WHERE tool = {} AND name = {}",
            d.quote_ident(TABLE),
            d.placeholder(1),
            d.placeholder(2),
            d.placeholder(3)
        ),
        vec![
            Value::Text(logs.to_owned()),
            Value::Text(tool.to_owned()),
            Value::Text(name.to_owned()),
        ],
    )
}

/// A query over the notes of `tool` shaped as `(kind, checksum, name, logs, started_at)`, all
/// text, with `kind` = `'unfinished'`, to append to a format's own history rows.
#[must_use]
pub fn select(d: Dialect, tool: &str) -> Stmt {
    let (text, started) = match d {
        Dialect::Postgres => ("text", "to_char(started_at, 'YYYY-MM-DD HH24:MI:SS')"),
        Dialect::MySql => ("char", "DATE_FORMAT(started_at, '%Y-%m-%d %H:%i:%s')"),
        Dialect::Sqlite => ("text", "CAST(started_at AS TEXT)"),
    };
    Stmt::new(
        format!(
            "SELECT CAST('unfinished' AS {text}), checksum, name, logs, {started} FROM {} \
             WHERE tool = {} ORDER BY started_at",
            d.quote_ident(TABLE),
            d.placeholder(1)
        ),
        vec![Value::Text(tool.to_owned())],
    )
}
