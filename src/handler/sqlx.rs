//! sqlx: `migrations/<version>_<description>.sql` (or reversible `.up.sql`/`.down.sql` pairs)
//! and the `_sqlx_migrations` table.
//!
//! Written from launchbadge/sqlx `sqlx-core/src/migrate/{source,migration,migration_type}.rs`
//! and `sqlx-{postgres,mysql,sqlite}/src/migrate.rs`, so that `sqlx migrate info` agrees with
//! dbdeploy after a deploy and dbdeploy reads rows written by `sqlx migrate run`.
//!
//! The checksum is pinned to what sqlx stores: the 48 raw bytes of SHA-384 over the file's
//! exact bytes (no line-ending normalisation: sqlx rejects a file whose line endings changed).
//! dbdeploy handles it as lowercase hex and binds the raw bytes.

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha384};

use super::folder::{Down, Script, attach_downs, list_files, order_by_version, scripts};
use super::resolve::{self, Action, Checked, Rules};
use super::{Handler, HandlerError, ResolveResult, Revert, timestamp_text};
use crate::checksum::{crc32_ieee, hex};
use crate::engine::{ColKind, Dialect, LockKey, LockScope, Stmt, Value};
use crate::migration::{AppliedRecord, Migration, MigrationSet, RecordState, Tx, TxMode};

/// The sqlx format.
#[derive(Debug, Clone, Copy)]
pub struct Sqlx;

const TABLE: &str = "_sqlx_migrations";
/// A script starting with these bytes runs outside a transaction (sqlx `no_tx`).
const NO_TX: &str = "-- no-transaction";
/// sqlx's lock id is this factor times the CRC-32 of the database name ("chosen by fair dice
/// roll" in sqlx's `generate_lock_id`).
const LOCK_FACTOR: i64 = 0x3d32_ad9e;

/// What a file name says, as sqlx parses it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FileName {
    version: i64,
    kind: Kind,
    description: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Simple,
    Up,
    Down,
}

/// Parses `<version>_<description>.sql`; `Ok(None)` for files sqlx ignores (not `.sql`, or no
/// `_`), an error for a `.sql` file whose version is not an integer (sqlx refuses those too).
fn parse_file_name(name: &str) -> Result<Option<FileName>, String> {
    let Some((prefix, rest)) = name.split_once('_') else {
        return Ok(None);
    };
    if !rest.ends_with(".sql") {
        return Ok(None);
    }
    let version: i64 = prefix.parse().map_err(|_| {
        "does not start with an integer version: sqlx names migrations `<VERSION>_<DESCRIPTION>.sql` \
         (e.g. `20240101120000_create_users.sql`); rename it, or move it out of the migrations folder"
            .to_owned()
    })?;
    let (kind, suffix) = if rest.ends_with(".up.sql") {
        (Kind::Up, ".up.sql")
    } else if rest.ends_with(".down.sql") {
        (Kind::Down, ".down.sql")
    } else {
        (Kind::Simple, ".sql")
    };
    // `trim_end_matches`, as sqlx does, so descriptions are byte-identical to sqlx's.
    let description = rest.trim_end_matches(suffix).replace('_', " ");
    Ok(Some(FileName {
        version,
        kind,
        description,
    }))
}

/// The description sqlx records for a migration file.
fn description(m: &Migration) -> String {
    m.path
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| parse_file_name(n).ok().flatten())
        .map(|f| f.description)
        .unwrap_or_default()
}

fn version(name: &str) -> i64 {
    // Names are built from parsed versions in `load`.
    name.parse().unwrap_or_default()
}

/// The checksum sqlx stores: the 48 raw bytes of SHA-384 over the file's exact bytes. SHA-384
/// because sqlx's `Migration::new` hashes with it and `sqlx migrate run` compares the stored
/// bytes to it; the exact bytes because sqlx normalises nothing (a file whose line endings
/// changed is a changed migration to sqlx, so it is to dbdeploy too).
fn checksum_bytes(sql: &str) -> Vec<u8> {
    Sha384::digest(sql.as_bytes()).to_vec()
}

/// [`checksum_bytes`] as lowercase hex, the form [`Migration::checksum`] carries it in.
fn checksum(sql: &str) -> String {
    hex(&checksum_bytes(sql))
}

/// sqlx's advisory-lock id for a database (`generate_lock_id` in sqlx-postgres and sqlx-mysql).
fn lock_id(database: &str) -> i64 {
    LOCK_FACTOR * i64::from(crc32_ieee(database.as_bytes()))
}

impl Handler for Sqlx {
    fn name(&self) -> &'static str {
        "sqlx"
    }

    fn default_dir(&self) -> &'static str {
        "migrations"
    }

    fn load(&self, dir: &Path, dialect: Dialect) -> Result<MigrationSet, HandlerError> {
        let mut ups = Vec::new();
        let mut downs: Vec<Down> = Vec::new();
        for script in scripts(list_files(dir)?, |name, _| parse_file_name(name)) {
            let Script {
                key: parsed,
                path,
                text: sql,
            } = script?;
            let name = parsed.version.to_string();
            if parsed.kind == Kind::Down {
                if let Some(first) = downs.iter().find(|d| d.name == name) {
                    return Err(HandlerError::file(
                        path,
                        format!(
                            "is a second down migration for version {name} (the first is {}); keep one",
                            first.path.display()
                        ),
                    ));
                }
                downs.push(Down { name, path, sql });
                continue;
            }
            let opt_out = sql
                .starts_with(NO_TX)
                .then(|| format!("it starts with `{NO_TX}` (sqlx runs it outside a transaction)"));
            let transaction = Tx::from_script(dialect, opt_out);
            ups.push(Migration::new(name, path, checksum(&sql), transaction, sql));
        }
        order_by_version(&mut ups)?;
        let warnings = attach_downs(&mut ups, downs)
            .into_iter()
            .map(|d| {
                format!(
                    "{} has no up migration with version {}; sqlx ignores it",
                    d.path.display(),
                    d.name
                )
            })
            .collect();
        Ok(MigrationSet::new(dir, ups, warnings))
    }

    fn table(&self) -> &'static str {
        TABLE
    }

    fn lock_keys(&self, scope: &LockScope) -> Vec<LockKey> {
        let id = lock_id(&scope.database);
        vec![LockKey {
            postgres: id,
            // sqlx-mysql formats the same number as lowercase hex for `GET_LOCK`.
            mysql: format!("{id:x}"),
        }]
    }

    fn check_table(&self, columns: &[String]) -> Result<(), HandlerError> {
        let missing: Vec<&str> = ["version", "description", "success", "checksum"]
            .into_iter()
            .filter(|c| !columns.iter().any(|x| x == c))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        Err(HandlerError::Table {
            table: TABLE,
            reason: format!(
                "has no {} column: it is not the table sqlx creates (columns found: {}); check `migration_tool` in dbdeploy.toml",
                missing.join(", "),
                columns.join(", ")
            ),
        })
    }

    fn create_table(&self, dialect: Dialect) -> Vec<Stmt> {
        // The DDL of sqlx's `ensure_migrations_table`, per engine.
        let sql = match dialect {
            Dialect::Postgres => {
                "CREATE TABLE IF NOT EXISTS _sqlx_migrations (
    version BIGINT PRIMARY KEY,
    description TEXT NOT NULL,
    installed_on TIMESTAMPTZ NOT NULL DEFAULT now(),
    success BOOLEAN NOT NULL,
    checksum BYTEA NOT NULL,
    execution_time BIGINT NOT NULL
)"
            }
            Dialect::MySql | Dialect::Sqlite => {
                "CREATE TABLE IF NOT EXISTS _sqlx_migrations (
    version BIGINT PRIMARY KEY,
    description TEXT NOT NULL,
    installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    success BOOLEAN NOT NULL,
    checksum BLOB NOT NULL,
    execution_time BIGINT NOT NULL
)"
            }
        };
        vec![Stmt::raw(sql)]
    }

    fn select_history(&self, dialect: Dialect) -> (Stmt, Vec<ColKind>) {
        let sql = format!(
            "SELECT version, description, success, checksum, {}, execution_time FROM {} ORDER BY version",
            timestamp_text(dialect, "installed_on"),
            dialect.quote_ident(TABLE)
        );
        let cols = vec![
            ColKind::Int,
            ColKind::Text,
            ColKind::Int,
            ColKind::Bytes,
            ColKind::Text,
            ColKind::Int,
        ];
        (Stmt::raw(sql), cols)
    }

    fn parse_history(&self, rows: Vec<Vec<Value>>) -> Result<Vec<AppliedRecord>, HandlerError> {
        rows.into_iter()
            .map(|row| {
                let version = row
                    .first()
                    .and_then(Value::as_int)
                    .ok_or_else(|| HandlerError::History {
                        table: TABLE,
                        reason: "a row has no version".into(),
                    })?;
                let success = row.get(2).and_then(Value::as_int).unwrap_or(0) != 0;
                let checksum = match row.get(3) {
                    Some(Value::Bytes(b)) => Some(hex(b)),
                    _ => None,
                };
                let installed_on = row.get(4).and_then(Value::as_text).map(str::to_owned);
                Ok(AppliedRecord {
                    name: version.to_string(),
                    checksum,
                    state: if success {
                        RecordState::Applied
                    } else {
                        RecordState::Failed
                    },
                    started_at: installed_on.clone(),
                    finished_at: if success { installed_on } else { None },
                    logs: (!success).then(|| {
                        format!(
                            "recorded in {TABLE} with success = false: it started and did not finish (sqlx calls the database dirty)"
                        )
                    }),
                })
            })
            .collect()
    }

    fn checksum_matches(&self, migration: &Migration, recorded: &str) -> bool {
        recorded.eq_ignore_ascii_case(&migration.checksum)
    }

    fn record_started(
        &self,
        dialect: Dialect,
        migration: &Migration,
        _now: DateTime<Utc>,
    ) -> (String, Vec<Stmt>) {
        // success = FALSE first, as sqlx does on MySQL: a run that dies part-way outside a
        // transaction leaves a row sqlx itself reports as dirty. Inside a transaction the
        // row is updated before commit, so the committed row is the one sqlx writes.
        let p = |n| dialect.placeholder(n);
        let sql = format!(
            "INSERT INTO {} (version, description, success, checksum, execution_time) VALUES ({}, {}, FALSE, {}, -1)",
            dialect.quote_ident(TABLE),
            p(1),
            p(2),
            p(3)
        );
        let stmt = Stmt::new(
            sql,
            vec![
                Value::Int(version(&migration.name)),
                Value::Text(description(migration)),
                Value::Bytes(checksum_bytes(&migration.sql)),
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
        let sql = format!(
            "UPDATE {} SET success = TRUE, execution_time = {} WHERE version = {}",
            dialect.quote_ident(TABLE),
            dialect.placeholder(1),
            dialect.placeholder(2)
        );
        // Nanoseconds, as sqlx records them.
        let nanos = i64::try_from(elapsed.as_nanos()).unwrap_or(i64::MAX);
        vec![Stmt::new(
            sql,
            vec![Value::Int(nanos), Value::Int(version(row_id))],
        )]
    }

    fn record_failed(&self, _dialect: Dialect, _row_id: &str, _logs: &str) -> Vec<Stmt> {
        // The row written by `record_started` keeps success = false: that is sqlx's failure.
        Vec::new()
    }

    fn revert(
        &self,
        dialect: Dialect,
        migration: &Migration,
        _previous: Option<&Migration>,
    ) -> Option<Revert> {
        let sql = migration.down.clone()?;
        let t = dialect.quote_ident(TABLE);
        let v = || vec![Value::Int(version(&migration.name))];
        let p = dialect.placeholder(1);
        let opt_out = sql
            .starts_with(NO_TX)
            .then(|| format!("its first line is `{NO_TX}`, sqlx's opt-out"));
        Some(Revert {
            transaction: TxMode::analyze(&sql, dialect, opt_out),
            sql,
            // As sqlx reverts on MySQL: dirty while the down script runs, then deleted.
            before: vec![Stmt::new(
                format!("UPDATE {t} SET success = FALSE WHERE version = {p}"),
                v(),
            )],
            after: vec![Stmt::new(
                format!("DELETE FROM {t} WHERE version = {p}"),
                v(),
            )],
        })
    }

    fn resolve_rules(&self) -> Rules {
        Rules {
            failed_state: "a failed state (success = false)",
            naming: "check the version",
            first: |request, _| {
                resolve::version(request.name, "sqlx", "e.g. 20240101120000").map(drop)
            },
            ..Rules::DEFAULT
        }
    }

    fn resolve_rows(&self, dialect: Dialect, to: &Checked<'_>) -> ResolveResult {
        let t = dialect.quote_ident(TABLE);
        let p = |n| dialect.placeholder(n);
        let v = Value::Int(version(to.name));
        Ok(vec![match to.action {
            // sqlx's own advice for a dirty version: delete its row, and it runs again.
            Action::RollBack => Stmt::new(
                format!(
                    "DELETE FROM {t} WHERE version = {} AND success = FALSE",
                    p(1)
                ),
                vec![v],
            ),
            Action::Apply(local) if to.recorded.exists => Stmt::new(
                format!(
                    "UPDATE {t} SET success = TRUE, checksum = {}, description = {} WHERE version = {}",
                    p(1),
                    p(2),
                    p(3)
                ),
                vec![
                    Value::Bytes(checksum_bytes(&local.sql)),
                    Value::Text(description(local)),
                    v,
                ],
            ),
            Action::Apply(local) => Stmt::new(
                format!(
                    "INSERT INTO {t} (version, description, success, checksum, execution_time) \
                     VALUES ({}, {}, TRUE, {}, 0)",
                    p(1),
                    p(2),
                    p(3)
                ),
                vec![
                    v,
                    Value::Text(description(local)),
                    Value::Bytes(checksum_bytes(&local.sql)),
                ],
            ),
        }])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handler::Resolution;

    fn fixture(name: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("migrations-fixtures/sqlx")
            .join(name)
    }

    fn names(set: &MigrationSet) -> Vec<&str> {
        set.migrations.iter().map(|m| m.name.as_str()).collect()
    }

    #[test]
    fn file_names_parse_as_sqlx_parses_them() {
        let p = |n| parse_file_name(n).unwrap();
        assert_eq!(
            p("20240101120000_create_users.sql"),
            Some(FileName {
                version: 20_240_101_120_000,
                kind: Kind::Simple,
                description: "create users".into()
            })
        );
        assert_eq!(
            p("2_add_posts.up.sql").map(|f| (f.kind, f.description)),
            Some((Kind::Up, "add posts".into()))
        );
        assert_eq!(
            p("2_add_posts.down.sql").map(|f| (f.kind, f.description)),
            Some((Kind::Down, "add posts".into()))
        );
        assert_eq!(p("0003_x.sql").map(|f| f.version), Some(3));
        // Spaces stay spaces; only underscores become spaces.
        assert_eq!(
            p("4_with space_and_more.sql").map(|f| f.description),
            Some("with space and more".into())
        );
        assert_eq!(p("README.md"), None);
        assert_eq!(p("init.sql"), None);
        assert_eq!(p("1_notes.txt"), None);
        assert!(parse_file_name("v1_init.sql").is_err());
    }

    #[test]
    fn checksum_is_sha384_of_the_exact_bytes() {
        // Computed independently: printf 'abc' | sha384sum
        assert_eq!(
            hex(&checksum_bytes("abc")),
            "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7"
        );
        // CRLF is part of the bytes: no normalisation.
        assert_ne!(checksum_bytes("a;\r\n"), checksum_bytes("a;\n"));
        assert_eq!(checksum_bytes("").len(), 48);
    }

    #[test]
    fn fixture_checksum_matches_sha384sum() {
        let set = Sqlx.load(&fixture("crlf"), Dialect::Sqlite).unwrap();
        let m = &set.migrations[0];
        assert!(
            m.sql.contains("\r\n"),
            "the fixture must keep its CRLF line endings"
        );
        // sha384sum migrations-fixtures/sqlx/crlf/20240101000000_init.sql
        assert_eq!(
            m.checksum,
            "648d1bcbfc667176904d029dae819bd704e38ddb582a3990048374580b2a2f4ccf56587e9913c7670d49913f68ad0b8f"
        );
    }

    #[test]
    fn versions_sort_numerically_and_down_files_attach_to_their_up() {
        let set = Sqlx.load(&fixture("basic"), Dialect::Sqlite).unwrap();
        assert_eq!(names(&set), ["1", "2", "3", "4", "5", "6", "10"]);
        let up = &set.migrations[1];
        assert!(up.path.ends_with("2_posts.up.sql"), "{}", up.path.display());
        assert!(up.down.as_deref().unwrap().contains("DROP TABLE posts"));
        assert!(set.migrations[0].down.is_none());
        assert!(set.warnings.is_empty(), "{:?}", set.warnings);
        assert_eq!(description(&set.migrations[4]), "add email index");
        assert_eq!(*set.migrations[5].transaction(), TxMode::OwnTransaction);
    }

    #[test]
    fn no_transaction_opt_out_is_the_first_line_only() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("1_opted_out.sql"),
            "-- no-transaction\nUPDATE a SET b = 1;\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("2_not_first.sql"),
            "\n-- no-transaction\nUPDATE a SET b = 1;\n",
        )
        .unwrap();
        let set = Sqlx.load(dir.path(), Dialect::Postgres).unwrap();
        assert!(
            matches!(set.migrations[0].transaction(), TxMode::NoTransaction { reason } if reason.contains("no-transaction")),
            "{:?}",
            *set.migrations[0].transaction()
        );
        assert_eq!(*set.migrations[1].transaction(), TxMode::Wrapped);

        let set = Sqlx
            .load(&fixture("postgresql-concurrently"), Dialect::Postgres)
            .unwrap();
        assert_eq!(*set.migrations[0].transaction(), TxMode::Wrapped);
        assert!(matches!(
            *set.migrations[1].transaction(),
            TxMode::NoTransaction { .. }
        ));
    }

    #[test]
    fn a_non_integer_version_is_refused() {
        let err = Sqlx
            .load(&fixture("bad-name"), Dialect::Sqlite)
            .unwrap_err()
            .to_string();
        assert!(err.contains("v2_bad.sql"), "{err}");
        assert!(err.contains("integer version"), "{err}");
    }

    #[test]
    fn duplicate_versions_are_refused_naming_both_files() {
        let err = Sqlx
            .load(&fixture("duplicate-version"), Dialect::Sqlite)
            .unwrap_err()
            .to_string();
        assert!(err.contains("20240101000000_a.sql"), "{err}");
        assert!(err.contains("20240101000000_b.sql"), "{err}");
        assert!(err.contains("unique"), "{err}");
    }

    #[test]
    fn lock_ids_are_sqlx_ones() {
        // 0x3d32ad9e * crc32("dbdeploy"), crc32 = 240367037 (python3 zlib.crc32).
        let key = &Sqlx.lock_keys(&LockScope {
            database: "dbdeploy".into(),
            schema: Some("public".into()),
        })[0];
        assert_eq!(key.postgres, 246_792_389_700_936_614);
        assert_eq!(key.mysql, "36cc85ef164e3a6");
    }

    #[test]
    fn failed_rows_are_success_false() {
        let row = |v: i64, ok: i64| {
            vec![
                Value::Int(v),
                Value::Text("d".into()),
                Value::Int(ok),
                Value::Bytes(vec![0xab, 0x01]),
                Value::Text("2024-01-01 00:00:00".into()),
                Value::Int(5),
            ]
        };
        let records = Sqlx.parse_history(vec![row(1, 1), row(2, 0)]).unwrap();
        assert_eq!(records[0].state, RecordState::Applied);
        assert_eq!(records[0].checksum.as_deref(), Some("ab01"));
        assert_eq!(records[1].state, RecordState::Failed);
        assert_eq!(records[1].name, "2");
    }

    #[test]
    fn resolve_rolled_back_deletes_the_dirty_row_only() {
        let records = Sqlx
            .parse_history(vec![vec![
                Value::Int(7),
                Value::Text("d".into()),
                Value::Int(0),
                Value::Bytes(vec![1]),
                Value::Null,
                Value::Int(-1),
            ]])
            .unwrap();
        let stmts = Sqlx
            .resolve(
                Dialect::Postgres,
                &records,
                None,
                "7",
                Resolution::RolledBack,
                Utc::now(),
            )
            .unwrap();
        assert_eq!(stmts.len(), 1);
        assert!(stmts[0].sql.starts_with("DELETE FROM"), "{}", stmts[0].sql);
        assert!(
            Sqlx.resolve(
                Dialect::Postgres,
                &[],
                None,
                "7",
                Resolution::RolledBack,
                Utc::now()
            )
            .is_err()
        );
    }
}
