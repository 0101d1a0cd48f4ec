//! Plain SQL: a folder of `.sql` files applied in name order, tracked in dbdeploy's own
//! `_dbdeploy_migrations` table (`migration_tool = "sql"`).
//!
//! There is no other tool to agree with, so the table is designed for dbdeploy: one row per
//! file name, its SHA-256, when and how long it ran, and whether it succeeded. A row with
//! `success = false` is a migration that failed outside a transaction; it blocks further
//! deploys until `resolve`.

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::folder::{Script, check_folder, entries, scripts};
use super::resolve::{Action, Checked, Rules};
use super::{Handler, HandlerError, ResolveResult};
use crate::checksum::sha256_hex;
use crate::engine::{ColKind, Dialect, LockKey, LockScope, Stmt, Value};
use crate::migration::{AppliedRecord, Migration, MigrationSet, RecordState, Tx};

/// The plain SQL format.
#[derive(Debug, Clone, Copy)]
pub struct PlainSql;

/// The tracking table.
pub const TABLE: &str = "_dbdeploy_migrations";

/// The checksum dbdeploy records for a plain SQL file: SHA-256 of the file as it is, in
/// lowercase hex. There is no tool to agree with, so it is the hash dbdeploy uses wherever no
/// tool prescribes one; [`Handler::checksum_matches`] also accepts the file's other line
/// endings, so that a checkout with `core.autocrlf` is not drift.
fn checksum(sql: &str) -> String {
    sha256_hex(sql.as_bytes())
}

impl PlainSql {
    /// Records `m` as applied: over its row when it has one (a failed run), or as a new row.
    fn upsert_applied(d: Dialect, m: &Migration, has_row: bool) -> Stmt {
        let t = d.quote_ident(TABLE);
        let p = |n| d.placeholder(n);
        let sql = if has_row {
            format!(
                "UPDATE {t} SET checksum = {}, success = TRUE, execution_ms = 0, \
                 applied_at = CURRENT_TIMESTAMP, error = NULL WHERE name = {}",
                p(1),
                p(2)
            )
        } else {
            format!(
                "INSERT INTO {t} (checksum, name, success, execution_ms) VALUES ({}, {}, TRUE, 0)",
                p(1),
                p(2)
            )
        };
        Stmt::new(
            sql,
            vec![Value::Text(m.checksum.clone()), Value::Text(m.name.clone())],
        )
    }
}

impl Handler for PlainSql {
    fn name(&self) -> &'static str {
        "sql"
    }

    fn default_dir(&self) -> &'static str {
        "migrations"
    }

    fn load(&self, dir: &Path, dialect: Dialect) -> Result<MigrationSet, HandlerError> {
        check_folder(dir)?;
        let mut warnings = Vec::new();
        let mut files = Vec::new();
        for (name, path, is_dir) in entries(dir)? {
            if is_dir {
                warnings.push(format!(
                    "{name}/ is ignored: plain SQL migrations are the .sql files directly in {}",
                    dir.display()
                ));
            } else {
                files.push((name, path));
            }
        }
        let parse = |name: &str, _: &Path| {
            if name.ends_with(".down.sql") {
                return Err("is a down script, which plain SQL migrations do not have: it would be applied like any other file; move it out of the folder, or set migration_tool to the tool that wrote it (sqlx, golang-migrate)".to_owned());
            }
            Ok(name.ends_with(".sql").then(|| name.to_owned()))
        };
        let mut migrations = Vec::new();
        for script in scripts(files, parse) {
            let Script { key, path, text } = script?;
            let transaction = Tx::from_script(dialect, super::dbdeploy_opt_out(&text));
            migrations.push(Migration::new(
                key,
                path,
                checksum(&text),
                transaction,
                text,
            ));
        }
        Ok(MigrationSet::new(dir, migrations, warnings))
    }

    fn table(&self) -> &'static str {
        TABLE
    }

    fn lock_keys(&self, _scope: &LockScope) -> Vec<LockKey> {
        vec![super::dbdeploy_lock()]
    }

    fn create_table(&self, dialect: Dialect) -> Vec<Stmt> {
        let (ts, tail) = match dialect {
            Dialect::Postgres => ("TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP", ""),
            Dialect::MySql => (
                "DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3)",
                " DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin",
            ),
            Dialect::Sqlite => ("DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP", ""),
        };
        vec![Stmt::raw(format!(
            "CREATE TABLE {} (
    name          VARCHAR(255) NOT NULL PRIMARY KEY,
    checksum      VARCHAR(64) NOT NULL,
    applied_at    {ts},
    execution_ms  BIGINT NOT NULL DEFAULT 0,
    success       BOOLEAN NOT NULL,
    error         TEXT
){tail}",
            dialect.quote_ident(TABLE)
        ))]
    }

    fn select_history(&self, dialect: Dialect) -> (Stmt, Vec<ColKind>) {
        let at = match dialect {
            Dialect::Postgres => "to_char(applied_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')",
            Dialect::MySql => "DATE_FORMAT(applied_at, '%Y-%m-%d %H:%i:%s')",
            Dialect::Sqlite => "CAST(applied_at AS TEXT)",
        };
        let sql = format!(
            "SELECT name, checksum, {at}, success, error FROM {} ORDER BY applied_at, name",
            dialect.quote_ident(TABLE)
        );
        let cols = vec![
            ColKind::Text,
            ColKind::Text,
            ColKind::Text,
            ColKind::Int,
            ColKind::Text,
        ];
        (Stmt::raw(sql), cols)
    }

    fn parse_history(&self, rows: Vec<Vec<Value>>) -> Result<Vec<AppliedRecord>, HandlerError> {
        rows.into_iter()
            .map(|row| {
                let text = |i: usize| row.get(i).and_then(Value::as_text).map(str::to_owned);
                let name = text(0).ok_or_else(|| HandlerError::History {
                    table: TABLE,
                    reason: "a row has no name".into(),
                })?;
                let success = row.get(3).and_then(Value::as_int).unwrap_or(0) != 0;
                Ok(AppliedRecord {
                    name,
                    checksum: text(1),
                    state: if success {
                        RecordState::Applied
                    } else {
                        RecordState::Failed
                    },
                    started_at: text(2),
                    finished_at: success.then(|| text(2)).flatten(),
                    logs: text(4),
                })
            })
            .collect()
    }

    fn checksum_matches(&self, migration: &Migration, recorded: &str) -> bool {
        // A checkout with other line endings is the same migration.
        let lf = migration.sql.replace("\r\n", "\n");
        let crlf = lf.replace('\n', "\r\n");
        [migration.sql.as_str(), lf.as_str(), crlf.as_str()]
            .iter()
            .any(|v| recorded.eq_ignore_ascii_case(&checksum(v)))
    }

    fn record_started(
        &self,
        dialect: Dialect,
        migration: &Migration,
        _now: DateTime<Utc>,
    ) -> (String, Vec<Stmt>) {
        let stmt = Stmt::new(
            format!(
                "INSERT INTO {} (name, checksum, success) VALUES ({}, {}, FALSE)",
                dialect.quote_ident(TABLE),
                dialect.placeholder(1),
                dialect.placeholder(2)
            ),
            vec![
                Value::Text(migration.name.clone()),
                Value::Text(migration.checksum.clone()),
            ],
        );
        (migration.name.clone(), vec![stmt])
    }

    fn record_finished(
        &self,
        dialect: Dialect,
        row_id: &str,
        _now: DateTime<Utc>,
        elapsed: Duration,
    ) -> Vec<Stmt> {
        let ms = i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX);
        vec![Stmt::new(
            format!(
                "UPDATE {} SET success = TRUE, execution_ms = {}, applied_at = CURRENT_TIMESTAMP \
                 WHERE name = {}",
                dialect.quote_ident(TABLE),
                dialect.placeholder(1),
                dialect.placeholder(2)
            ),
            vec![Value::Int(ms), Value::Text(row_id.to_owned())],
        )]
    }

    fn record_failed(&self, dialect: Dialect, row_id: &str, logs: &str) -> Vec<Stmt> {
        vec![Stmt::new(
            format!(
                "UPDATE {} SET error = {} WHERE name = {}",
                dialect.quote_ident(TABLE),
                dialect.placeholder(1),
                dialect.placeholder(2)
            ),
            vec![Value::Text(logs.to_owned()), Value::Text(row_id.to_owned())],
        )]
    }

    fn resolve_rules(&self) -> Rules {
        Rules {
            naming: "check the name (the file name, with .sql)",
            ..Rules::DEFAULT
        }
    }

    fn resolve_rows(&self, dialect: Dialect, to: &Checked<'_>) -> ResolveResult {
        Ok(vec![match to.action {
            Action::RollBack => Stmt::new(
                format!(
                    "DELETE FROM {} WHERE name = {} AND success = FALSE",
                    dialect.quote_ident(TABLE),
                    dialect.placeholder(1)
                ),
                vec![Value::Text(to.name.to_owned())],
            ),
            Action::Apply(local) => Self::upsert_applied(dialect, local, to.recorded.exists),
        }])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::migration::TxMode;

    #[test]
    fn files_apply_in_name_order_and_down_scripts_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        for (f, body) in [
            ("002_b.sql", "SELECT 2;"),
            ("001 first one.sql", "SELECT 1;"),
            ("README.md", "notes"),
            ("010_c.sql", "-- dbdeploy:no-transaction\nSELECT 3;"),
        ] {
            std::fs::write(dir.path().join(f), body).unwrap();
        }
        let set = PlainSql.load(dir.path(), Dialect::Postgres).unwrap();
        let names: Vec<_> = set.migrations.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["001 first one.sql", "002_b.sql", "010_c.sql"]);
        assert_eq!(*set.migrations[1].transaction(), TxMode::Wrapped);
        assert!(matches!(
            *set.migrations[2].transaction(),
            TxMode::NoTransaction { .. }
        ));
        // sha256 of "SELECT 2;" (sha256sum).
        assert_eq!(
            set.migrations[1].checksum,
            "8e7003d62f9d8cbd28da2f243bb0d215bfd4622c716be09be89a8764d9f4c7cb"
        );

        std::fs::write(dir.path().join("002_b.down.sql"), "DROP TABLE b;").unwrap();
        let err = PlainSql.load(dir.path(), Dialect::Postgres).unwrap_err();
        assert!(err.to_string().contains("002_b.down.sql"), "{err}");
        assert!(err.to_string().contains("down script"), "{err}");
    }

    #[test]
    fn line_ending_variants_match() {
        let sql = "SELECT 1;\r\nSELECT 2;\r\n".to_owned();
        let m = Migration::new("a.sql", "a.sql", String::new(), TxMode::Wrapped, sql);
        assert!(PlainSql.checksum_matches(&m, &sha256_hex(b"SELECT 1;\nSELECT 2;\n")));
        assert!(!PlainSql.checksum_matches(&m, &sha256_hex(b"SELECT 3;\n")));
    }
}
