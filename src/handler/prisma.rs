//! Prisma ORM: `prisma/migrations/<name>/migration.sql` and the `_prisma_migrations` table.
//!
//! Written from prisma-engines' `sql_migration_persistence.rs`, the per-flavour table DDL and
//! `checksum.rs`, so that `prisma migrate status` agrees with dbdeploy after a deploy and
//! dbdeploy understands history written by `prisma migrate deploy`.

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use super::folder::{check_folder, folders, load_in_parallel, read_regular, script_text};
use super::resolve::{Action, Checked};
use super::{Handler, HandlerError, ResolveResult, timestamp_text};
use crate::checksum::{hex, sha256_hex};
use crate::engine::{ColKind, Dialect, LockKey, LockScope, Stmt, Value};
use crate::migration::{AppliedRecord, Migration, MigrationSet, RecordState, Tx};

/// The Prisma format.
#[derive(Debug, Clone, Copy)]
pub struct Prisma;

const TABLE: &str = "_prisma_migrations";
const SCRIPT: &str = "migration.sql";
const LOCK_FILE: &str = "migration_lock.toml";

/// Prisma's advisory lock id on PostgreSQL (`schema-engine` postgres flavour).
const PG_LOCK_ID: i64 = 72_707_369;

impl Handler for Prisma {
    fn name(&self) -> &'static str {
        "prisma"
    }

    fn default_dir(&self) -> &'static str {
        "prisma/migrations"
    }

    fn load(&self, dir: &Path, dialect: Dialect) -> Result<MigrationSet, HandlerError> {
        check_folder(dir)?;
        let mut warnings = Vec::new();
        check_provider(dir, dialect, &mut warnings)?;
        // Prisma orders migrations by folder name, byte for byte; a linked folder is still a
        // migration.
        let migrations = load_in_parallel(folders(dir)?, |name| {
            let path = dir.join(&name).join(SCRIPT);
            let bytes = match read_regular(&path) {
                Ok(Some(bytes)) => bytes,
                Ok(None) => return Err(missing_script(dir, &name, path)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(missing_script(dir, &name, path));
                }
                Err(e) => return Err(HandlerError::file(path, format!("cannot be read: {e}"))),
            };
            let sql = script_text(&path, bytes)?;
            let transaction = Tx::from_script(dialect, None);
            Ok(Migration::new(name, path, checksum(&sql), transaction, sql))
        })?;
        Ok(MigrationSet::new(dir, migrations, warnings))
    }

    fn table(&self) -> &'static str {
        TABLE
    }

    fn lock_keys(&self, _scope: &LockScope) -> Vec<LockKey> {
        vec![LockKey {
            postgres: PG_LOCK_ID,
            mysql: "prisma_migrate".into(),
        }]
    }

    fn create_table(&self, dialect: Dialect) -> Vec<Stmt> {
        let sql = match dialect {
            Dialect::Postgres => {
                r#"CREATE TABLE "_prisma_migrations" (
    "id"                    VARCHAR(36) PRIMARY KEY NOT NULL,
    "checksum"              VARCHAR(64) NOT NULL,
    "finished_at"           TIMESTAMPTZ,
    "migration_name"        VARCHAR(255) NOT NULL,
    "logs"                  TEXT,
    "rolled_back_at"        TIMESTAMPTZ,
    "started_at"            TIMESTAMPTZ NOT NULL DEFAULT now(),
    "applied_steps_count"   INTEGER NOT NULL DEFAULT 0
)"#
            }
            Dialect::MySql => {
                r"CREATE TABLE _prisma_migrations (
    id                      VARCHAR(36) PRIMARY KEY NOT NULL,
    checksum                VARCHAR(64) NOT NULL,
    finished_at             DATETIME(3),
    migration_name          VARCHAR(255) NOT NULL,
    logs                    TEXT,
    rolled_back_at          DATETIME(3),
    started_at              DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    applied_steps_count     INTEGER UNSIGNED NOT NULL DEFAULT 0
) DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
            }
            Dialect::Sqlite => {
                r#"CREATE TABLE "_prisma_migrations" (
    "id"                    TEXT PRIMARY KEY NOT NULL,
    "checksum"              TEXT NOT NULL,
    "finished_at"           DATETIME,
    "migration_name"        TEXT NOT NULL,
    "logs"                  TEXT,
    "rolled_back_at"        DATETIME,
    "started_at"            DATETIME NOT NULL DEFAULT current_timestamp,
    "applied_steps_count"   INTEGER UNSIGNED NOT NULL DEFAULT 0
)"#
            }
        };
        vec![Stmt::raw(sql)]
    }

    fn select_history(&self, dialect: Dialect) -> (Stmt, Vec<ColKind>) {
        let t = dialect.quote_ident(TABLE);
        let sql = format!(
            "SELECT id, checksum, migration_name, logs, {}, {}, {}, applied_steps_count \
             FROM {t} ORDER BY started_at ASC, id ASC",
            timestamp_text(dialect, "started_at"),
            timestamp_text(dialect, "finished_at"),
            timestamp_text(dialect, "rolled_back_at"),
        );
        let cols = vec![
            ColKind::Text,
            ColKind::Text,
            ColKind::Text,
            ColKind::Text,
            ColKind::Text,
            ColKind::Text,
            ColKind::Text,
            ColKind::Int,
        ];
        (Stmt::raw(sql), cols)
    }

    fn parse_history(&self, rows: Vec<Vec<Value>>) -> Result<Vec<AppliedRecord>, HandlerError> {
        rows.into_iter()
            .map(|row| {
                let text = |i: usize| row.get(i).and_then(Value::as_text).map(str::to_owned);
                let name = text(2).ok_or_else(|| HandlerError::History {
                    table: TABLE,
                    reason: "a row has no migration_name".into(),
                })?;
                let finished_at = text(5);
                let rolled_back_at = text(6);
                let state = match (&finished_at, &rolled_back_at) {
                    (_, Some(_)) => RecordState::RolledBack,
                    (Some(_), None) => RecordState::Applied,
                    (None, None) => RecordState::Failed,
                };
                Ok(AppliedRecord {
                    name,
                    checksum: text(1),
                    state,
                    started_at: text(4),
                    finished_at,
                    logs: text(3),
                })
            })
            .collect()
    }

    fn checksum_matches(&self, migration: &Migration, recorded: &str) -> bool {
        // The hash of the file as-is, taken at load time, is what nearly every row holds.
        if recorded.eq_ignore_ascii_case(&migration.checksum) {
            return true;
        }
        let lf = migration.sql.replace("\r\n", "\n");
        let crlf = lf.replace('\n', "\r\n");
        [migration.sql.as_str(), lf.as_str(), crlf.as_str()]
            .iter()
            .any(|variant| {
                let digest = Sha256::digest(variant.as_bytes());
                if recorded.len() == 64 {
                    recorded.eq_ignore_ascii_case(&hex(&digest))
                } else {
                    recorded.eq_ignore_ascii_case(&unpadded_hex(&digest))
                }
            })
    }

    fn record_started(
        &self,
        dialect: Dialect,
        migration: &Migration,
        now: DateTime<Utc>,
    ) -> (String, Vec<Stmt>) {
        let id = uuid::Uuid::new_v4().to_string();
        let p = |n| dialect.placeholder(n);
        let sql = format!(
            "INSERT INTO {} (id, checksum, started_at, migration_name) VALUES ({}, {}, {}, {})",
            dialect.quote_ident(TABLE),
            p(1),
            p(2),
            p(3),
            p(4)
        );
        let stmt = Stmt::new(
            sql,
            vec![
                Value::Text(id.clone()),
                Value::Text(migration.checksum.clone()),
                Value::Timestamp(now),
                Value::Text(migration.name.clone()),
            ],
        );
        (id, vec![stmt])
    }

    fn record_finished(
        &self,
        dialect: Dialect,
        row_id: &str,
        now: DateTime<Utc>,
        _elapsed: Duration,
    ) -> Vec<Stmt> {
        let sql = format!(
            "UPDATE {} SET applied_steps_count = applied_steps_count + 1, finished_at = {} WHERE id = {}",
            dialect.quote_ident(TABLE),
            dialect.placeholder(1),
            dialect.placeholder(2)
        );
        vec![Stmt::new(
            sql,
            vec![Value::Timestamp(now), Value::Text(row_id.to_owned())],
        )]
    }

    fn record_applied(
        &self,
        dialect: Dialect,
        migration: &Migration,
        started_at: DateTime<Utc>,
        finished_at: DateTime<Utc>,
        _elapsed: Duration,
    ) -> Vec<Stmt> {
        // The row Prisma commits after its INSERT and UPDATE: logs and rolled_back_at NULL.
        let p = |n| dialect.placeholder(n);
        let sql = format!(
            "INSERT INTO {} (id, checksum, started_at, finished_at, migration_name, applied_steps_count) \
             VALUES ({}, {}, {}, {}, {}, 1)",
            dialect.quote_ident(TABLE),
            p(1),
            p(2),
            p(3),
            p(4),
            p(5)
        );
        vec![Stmt::new(
            sql,
            vec![
                Value::Text(uuid::Uuid::new_v4().to_string()),
                Value::Text(migration.checksum.clone()),
                Value::Timestamp(started_at),
                Value::Timestamp(finished_at),
                Value::Text(migration.name.clone()),
            ],
        )]
    }

    fn record_failed(&self, dialect: Dialect, row_id: &str, logs: &str) -> Vec<Stmt> {
        let sql = format!(
            "UPDATE {} SET logs = {} WHERE id = {}",
            dialect.quote_ident(TABLE),
            dialect.placeholder(1),
            dialect.placeholder(2)
        );
        vec![Stmt::new(
            sql,
            vec![Value::Text(logs.to_owned()), Value::Text(row_id.to_owned())],
        )]
    }

    fn resolve_rows(&self, dialect: Dialect, to: &Checked<'_>) -> ResolveResult {
        let t = dialect.quote_ident(TABLE);
        let p = |n| dialect.placeholder(n);
        let name = || Value::Text(to.name.to_owned());
        let mut stmts = Vec::new();
        if to.recorded.failed {
            stmts.push(Stmt::new(
                format!(
                    "UPDATE {t} SET rolled_back_at = {} WHERE migration_name = {} \
                     AND finished_at IS NULL AND rolled_back_at IS NULL",
                    p(1),
                    p(2)
                ),
                vec![Value::Timestamp(to.now), name()],
            ));
        }
        if let Action::Apply(local) = to.action {
            stmts.push(Stmt::new(
                format!(
                    "INSERT INTO {t} (id, checksum, logs, started_at, finished_at, migration_name) \
                     VALUES ({}, {}, {}, {}, {}, {})",
                    p(1),
                    p(2),
                    p(3),
                    p(4),
                    p(5),
                    p(6)
                ),
                vec![
                    Value::Text(uuid::Uuid::new_v4().to_string()),
                    Value::Text(local.checksum.clone()),
                    Value::Text(String::new()),
                    Value::Timestamp(to.now),
                    Value::Timestamp(to.now),
                    name(),
                ],
            ));
        }
        Ok(stmts)
    }
}

fn missing_script(dir: &Path, name: &str, path: std::path::PathBuf) -> HandlerError {
    HandlerError::file(
        path,
        format!(
            "is missing: every folder in {} must hold a {SCRIPT} (remove the folder `{name}` if it is not a migration)",
            dir.display()
        ),
    )
}

fn check_provider(
    dir: &Path,
    dialect: Dialect,
    warnings: &mut Vec<String>,
) -> Result<(), HandlerError> {
    #[derive(serde::Deserialize)]
    struct LockFile {
        provider: String,
    }
    let path = dir.join(LOCK_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            warnings.push(format!(
                "{} has no {LOCK_FILE}; the provider cannot be checked",
                dir.display()
            ));
            return Ok(());
        }
        Err(e) => return Err(HandlerError::file(path, format!("cannot be read: {e}"))),
    };
    let lock: LockFile = toml::from_str(&text).map_err(|e| {
        let line = e.span().map(|s| text[..s.start].matches('\n').count() + 1);
        HandlerError::file_at(
            &path,
            line,
            format!("is not a valid Prisma lock file: {}", e.message()),
        )
    })?;
    let matches = match lock.provider.as_str() {
        "postgresql" | "postgres" => dialect == Dialect::Postgres,
        "mysql" => dialect == Dialect::MySql,
        "sqlite" => dialect == Dialect::Sqlite,
        _ => false,
    };
    if matches {
        Ok(())
    } else {
        Err(HandlerError::file(
            path,
            format!(
                "says provider = \"{}\" but the target database is {}; these migrations were generated for another database (point the environment at a {} database, or regenerate the migrations)",
                lock.provider,
                dialect.name(),
                lock.provider
            ),
        ))
    }
}

/// The checksum Prisma records: SHA-256 of `migration.sql` as it is, as 64 lowercase hex
/// digits. That is what prisma-engines' `checksum.rs` computes when `migrate deploy` writes a
/// row, so `prisma migrate status` finds dbdeploy's rows unchanged and the reverse.
fn checksum(sql: &str) -> String {
    sha256_hex(sql.as_bytes())
}

/// Hex without zero padding (`0a` written `a`): how old Prisma versions formatted the checksum
/// bytes, still found in tables they wrote.
fn unpadded_hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:x}");
        s
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handler::Resolution;
    use crate::migration::TxMode;

    fn migration(sql: &str) -> Migration {
        let name = "20240101000000_init";
        Migration::new(name, "x", checksum(sql), TxMode::Wrapped, sql.into())
    }

    #[test]
    fn a_large_folder_loads_in_name_order_and_reports_its_first_missing_script() {
        // Enough folders to be read on several threads.
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(LOCK_FILE), "provider = \"sqlite\"\n").unwrap();
        for i in 0..1500 {
            let folder = dir.path().join(format!("2024{i:010}_m"));
            std::fs::create_dir(&folder).unwrap();
            if i != 1100 && i != 700 {
                std::fs::write(
                    folder.join(SCRIPT),
                    format!("CREATE TABLE t{i} (id INT);\n"),
                )
                .unwrap();
            }
        }
        let err = Prisma
            .load(dir.path(), Dialect::Sqlite)
            .unwrap_err()
            .to_string();
        assert!(err.contains("20240000000700_m"), "{err}");
        for i in [700, 1100] {
            let folder = dir.path().join(format!("2024{i:010}_m"));
            std::fs::write(
                folder.join(SCRIPT),
                format!("CREATE TABLE t{i} (id INT);\n"),
            )
            .unwrap();
        }
        let set = Prisma.load(dir.path(), Dialect::Sqlite).unwrap();
        assert_eq!(set.migrations.len(), 1500);
        for (i, m) in set.migrations.iter().enumerate() {
            assert_eq!(m.name, format!("2024{i:010}_m"));
            assert_eq!(m.sql, format!("CREATE TABLE t{i} (id INT);\n"));
        }
    }

    #[test]
    fn every_folder_needs_a_migration_script_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(LOCK_FILE), "provider = \"sqlite\"\n").unwrap();
        let first = dir.path().join("20240101000000_a");
        std::fs::create_dir(&first).unwrap();
        std::fs::write(first.join(SCRIPT), "CREATE TABLE a (id INT);\n").unwrap();
        std::os::unix::fs::symlink(&first, dir.path().join("20240102000000_linked")).unwrap();
        let set = Prisma.load(dir.path(), Dialect::Sqlite).unwrap();
        let names: Vec<&str> = set.migrations.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["20240101000000_a", "20240102000000_linked"]);
        assert_eq!(set.migrations[1].sql, "CREATE TABLE a (id INT);\n");
        assert_eq!(
            set.migrations[1].checksum,
            sha256_hex(b"CREATE TABLE a (id INT);\n")
        );

        let empty = dir.path().join("20240103000000_empty");
        std::fs::create_dir(&empty).unwrap();
        let err = Prisma
            .load(dir.path(), Dialect::Sqlite)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("20240103000000_empty") && err.contains("is missing"),
            "{err}"
        );
        // A folder named like the script is not one.
        std::fs::create_dir(empty.join(SCRIPT)).unwrap();
        let err = Prisma
            .load(dir.path(), Dialect::Sqlite)
            .unwrap_err()
            .to_string();
        assert!(err.contains("is missing"), "{err}");
    }

    #[test]
    fn checksum_is_lowercase_sha256_hex_of_the_file_as_is() {
        assert_eq!(
            checksum("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            checksum(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn crlf_and_lf_variants_both_match() {
        let lf = migration("CREATE TABLE a (id INT);\nSELECT 1;\n");
        let crlf_recorded = sha256_hex(b"CREATE TABLE a (id INT);\r\nSELECT 1;\r\n");
        assert!(Prisma.checksum_matches(&lf, &crlf_recorded));
        let crlf = migration("CREATE TABLE a (id INT);\r\nSELECT 1;\r\n");
        assert!(
            Prisma.checksum_matches(&crlf, &sha256_hex(b"CREATE TABLE a (id INT);\nSELECT 1;\n"))
        );
        assert!(!Prisma.checksum_matches(&lf, &sha256_hex(b"CREATE TABLE b (id INT);\n")));
    }

    #[test]
    fn legacy_unpadded_checksums_match() {
        let m = migration("abc");
        let unpadded = unpadded_hex(&Sha256::digest(b"abc"));
        assert!(unpadded.len() < 64);
        assert!(Prisma.checksum_matches(&m, &unpadded));
    }

    #[test]
    fn failed_rows_are_those_neither_finished_nor_rolled_back() {
        let row = |finished: Option<&str>, rolled: Option<&str>| {
            vec![
                Value::Text("id".into()),
                Value::Text("c".into()),
                Value::Text("m".into()),
                Value::Null,
                Value::Text("2024-01-01".into()),
                finished.map_or(Value::Null, |s| Value::Text(s.into())),
                rolled.map_or(Value::Null, |s| Value::Text(s.into())),
                Value::Int(0),
            ]
        };
        let records = Prisma
            .parse_history(vec![
                row(Some("t"), None),
                row(None, None),
                row(None, Some("t")),
            ])
            .unwrap();
        let states: Vec<_> = records.iter().map(|r| r.state).collect();
        assert_eq!(
            states,
            [
                RecordState::Applied,
                RecordState::Failed,
                RecordState::RolledBack
            ]
        );
    }

    #[test]
    fn resolve_rolled_back_requires_a_failed_row() {
        let err = Prisma
            .resolve(
                Dialect::Sqlite,
                &[],
                None,
                "x",
                Resolution::RolledBack,
                Utc::now(),
            )
            .unwrap_err();
        assert!(err.to_string().contains("not in a failed state"));
    }
}
