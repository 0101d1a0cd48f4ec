//! golang-migrate: `<version>_<name>.up.sql` / `<version>_<name>.down.sql` files and the
//! one-row `schema_migrations(version, dirty)` table.
//!
//! Written from golang-migrate/migrate `source/parse.go`, `migrate.go`, `database/util.go` and
//! `database/{postgres,mysql,sqlite3}/*.go`, so that `migrate version` agrees with dbdeploy
//! after a deploy and dbdeploy understands the version golang-migrate left behind.
//!
//! golang-migrate stores only the current version. Every version up to it counts as applied
//! (the tool itself cannot know better), so [`Handler::interpret_history`] expands the one row
//! into one record per migration on disk. Before a migration runs its version is written with
//! `dirty = true`, and cleared after: a dirty row is a migration that did not finish.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::folder::{Down, Script, attach_downs, list_files, order_by_version, scripts};
use super::resolve::{self, Action, Checked, Rules};
use super::{Handler, HandlerError, Resolution, ResolveResult, Revert};
use crate::checksum::{crc32_ieee, sha256_hex};
use crate::engine::{ColKind, Dialect, LockKey, LockScope, Stmt, Value};
use crate::migration::{AppliedRecord, Migration, MigrationSet, RecordState, Records, Tx, TxMode};

/// The golang-migrate format.
#[derive(Debug, Clone, Copy)]
pub struct GolangMigrate;

const TABLE: &str = "schema_migrations";
/// golang-migrate's `advisoryLockIdSalt` (`database/util.go`).
const LOCK_SALT: u32 = 1_486_364_155;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Up,
    Down,
}

/// Parses a file name as golang-migrate's `^([0-9]+)_(.*)\.(down|up)\.(.*)$` does:
/// (version digits, direction). The greedy middle group takes the last `.up.`/`.down.`.
fn parse_file_name(name: &str) -> Option<(&str, Direction)> {
    let digits = name.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 || name.as_bytes().get(digits) != Some(&b'_') {
        return None;
    }
    let rest = &name[digits + 1..];
    let up = rest.rfind(".up.");
    let down = rest.rfind(".down.");
    let direction = match (up, down) {
        (Some(u), Some(d)) if d > u => Direction::Down,
        (Some(_), _) => Direction::Up,
        (None, Some(_)) => Direction::Down,
        (None, None) => return None,
    };
    Some((&name[..digits], direction))
}

/// golang-migrate keeps no checksum; this one is dbdeploy's own, for its history: SHA-256 of
/// the up file, the hash dbdeploy uses wherever the tool prescribes none.
fn checksum(sql: &str) -> String {
    sha256_hex(sql.as_bytes())
}

fn version(name: &str) -> i64 {
    // Names are built from parsed versions in `load`; `-1` is golang-migrate's "no version".
    name.parse().unwrap_or(-1)
}

/// golang-migrate's `GenerateAdvisoryLockId`: CRC-32 of the names joined by NUL bytes, times
/// a salt, in 32-bit arithmetic.
fn advisory_lock_id(names: &[&str]) -> u32 {
    crc32_ieee(names.join("\0").as_bytes()).wrapping_mul(LOCK_SALT)
}

impl Handler for GolangMigrate {
    fn name(&self) -> &'static str {
        "golang-migrate"
    }

    fn default_dir(&self) -> &'static str {
        "migrations"
    }

    fn load(&self, dir: &Path, dialect: Dialect) -> Result<MigrationSet, HandlerError> {
        // golang-migrate refuses a second file of a version in either direction before it
        // reads anything; so does the name parser, which remembers the first one.
        let mut seen: Vec<(u64, Direction, PathBuf)> = Vec::new();
        let parse = |name: &str, path: &Path| {
            // Files that do not match golang-migrate's pattern are ignored, as it does.
            let Some((digits, direction)) = parse_file_name(name) else {
                return Ok(None);
            };
            let version = digits
                .parse::<u64>()
                .ok()
                .filter(|v| i64::try_from(*v).is_ok())
                .ok_or_else(|| format!(
                    "has version {digits}, larger than the `bigint` column golang-migrate stores it in; use a smaller version"
                ))?;
            if let Some((_, _, first)) = seen
                .iter()
                .find(|(v, d, _)| (*v, *d) == (version, direction))
            {
                return Err(format!(
                    "has version {version} like {}: golang-migrate refuses duplicate migration files (give one of them a new version)",
                    first.display()
                ));
            }
            seen.push((version, direction, path.to_owned()));
            Ok(Some((version.to_string(), direction)))
        };
        let mut migrations = Vec::new();
        let mut downs = Vec::new();
        for script in scripts(list_files(dir)?, parse) {
            let Script {
                key: (name, direction),
                path,
                text: sql,
            } = script?;
            match direction {
                Direction::Up => {
                    let transaction = Tx::from_script(dialect, None);
                    migrations.push(Migration::new(name, path, checksum(&sql), transaction, sql));
                }
                Direction::Down => downs.push(Down { name, path, sql }),
            }
        }
        let mut warnings = Vec::new();
        for orphan in attach_downs(&mut migrations, downs) {
            warnings.push(format!(
                "{} has no matching up file; golang-migrate applies version {} as an empty migration, and so does dbdeploy",
                orphan.path.display(),
                orphan.name
            ));
            migrations.push(
                Migration::new(
                    orphan.name,
                    orphan.path,
                    checksum(""),
                    TxMode::Wrapped,
                    String::new(),
                )
                .with_down(Some(orphan.sql)),
            );
        }
        order_by_version(&mut migrations)?;
        Ok(MigrationSet::new(dir, migrations, warnings))
    }

    fn table(&self) -> &'static str {
        TABLE
    }

    fn lock_keys(&self, scope: &LockScope) -> Vec<LockKey> {
        let db = scope.database.as_str();
        let schema = scope.schema.as_deref().unwrap_or("public");
        // MySQL: GenerateAdvisoryLockId("<database>:<table>"), as a decimal string.
        let mysql = advisory_lock_id(&[&format!("{db}:{TABLE}")]).to_string();
        // PostgreSQL: the migrate CLI (and `migrate.New`) takes the database name from the URL
        // path, leading slash included; `WithInstance` asks `CURRENT_DATABASE()`. Both ids are
        // taken so that either kind of golang-migrate run is kept out.
        [format!("/{db}"), db.to_owned()]
            .iter()
            .map(|name| LockKey {
                postgres: i64::from(advisory_lock_id(&[name, schema, TABLE])),
                mysql: mysql.clone(),
            })
            .collect()
    }

    fn check_table(&self, columns: &[String]) -> Result<(), HandlerError> {
        let has = |c: &str| columns.iter().any(|x| x == c);
        if has("version") && has("dirty") {
            return Ok(());
        }
        let whose = if has("version") {
            "it has dbmate's shape (`version` without `dirty`): this database is tracked by dbmate; \
             set `migration_tool = \"dbmate\"` in dbdeploy.toml, or point the environment at another database"
                .to_owned()
        } else {
            format!(
                "it is not golang-migrate's table (columns found: {}); point the environment at another database",
                columns.join(", ")
            )
        };
        Err(HandlerError::Table {
            table: TABLE,
            reason: format!("has no `version`, `dirty` columns: {whose}"),
        })
    }

    fn create_table(&self, dialect: Dialect) -> Vec<Stmt> {
        // The DDL of golang-migrate's `ensureVersionTable`, per driver.
        match dialect {
            Dialect::Postgres => vec![Stmt::raw(
                "CREATE TABLE IF NOT EXISTS \"schema_migrations\" (version bigint not null primary key, dirty boolean not null)",
            )],
            Dialect::MySql => vec![Stmt::raw(
                "CREATE TABLE `schema_migrations` (version bigint not null primary key, dirty boolean not null)",
            )],
            Dialect::Sqlite => vec![
                Stmt::raw(
                    "CREATE TABLE IF NOT EXISTS schema_migrations (version uint64,dirty bool)",
                ),
                Stmt::raw(
                    "CREATE UNIQUE INDEX IF NOT EXISTS version_unique ON schema_migrations (version)",
                ),
            ],
        }
    }

    fn select_history(&self, dialect: Dialect) -> (Stmt, Vec<ColKind>) {
        let sql = format!("SELECT version, dirty FROM {}", dialect.quote_ident(TABLE));
        (Stmt::raw(sql), vec![ColKind::Int, ColKind::Int])
    }

    fn parse_history(&self, rows: Vec<Vec<Value>>) -> Result<Vec<AppliedRecord>, HandlerError> {
        if rows.len() > 1 {
            return Err(HandlerError::History {
                table: TABLE,
                reason: format!(
                    "it holds {} rows, but golang-migrate keeps exactly one (the current version); \
                     delete all but the right one, or run `migrate force VERSION`",
                    rows.len()
                ),
            });
        }
        let mut records = Vec::new();
        for row in rows {
            let v = row
                .first()
                .and_then(Value::as_int)
                .ok_or_else(|| HandlerError::History {
                    table: TABLE,
                    reason: "the row has no version".into(),
                })?;
            let dirty = row.get(1).and_then(Value::as_int).unwrap_or(0) != 0;
            if v < 0 && !dirty {
                // golang-migrate's "no version" (-1) written after the last down migration.
                continue;
            }
            records.push(AppliedRecord {
                name: v.to_string(),
                checksum: None,
                state: if dirty {
                    RecordState::Failed
                } else {
                    RecordState::Applied
                },
                started_at: None,
                finished_at: None,
                logs: dirty.then(|| {
                    format!("{TABLE} says version {v} is dirty: it started and did not finish")
                }),
            });
        }
        Ok(records)
    }

    fn interpret_history<'r>(&self, set: &MigrationSet, records: Records<'r>) -> Records<'r> {
        // No row (or golang-migrate's "no version"): nothing is applied.
        let current = records
            .iter()
            .map(|r| version(&r.name))
            .max()
            .unwrap_or(i64::MIN);
        // Everything below the current version counts as applied, as golang-migrate sees it.
        // Versions above it are listed as not applied (`RolledBack`: as if they never ran), so
        // that `resolve` can see which versions a forced version would skip.
        let mut expanded: Vec<AppliedRecord> = Vec::new();
        let record = |m: &Migration, state| AppliedRecord {
            name: m.name.clone(),
            checksum: None,
            state,
            started_at: None,
            finished_at: None,
            logs: None,
        };
        for m in set.migrations.iter().filter(|m| version(&m.name) < current) {
            expanded.push(record(m, RecordState::Applied));
        }
        expanded.extend(records.into_owned());
        for m in set.migrations.iter().filter(|m| version(&m.name) > current) {
            expanded.push(record(m, RecordState::RolledBack));
        }
        expanded.into()
    }

    fn uses_deployed(&self) -> bool {
        true
    }

    fn unreachable(
        &self,
        set: &MigrationSet,
        records: &[AppliedRecord],
        deployed: &[String],
    ) -> Vec<String> {
        let Some(current) = records.iter().map(|r| version(&r.name)).max() else {
            return Vec::new();
        };
        let deployed: Vec<i64> = deployed.iter().filter_map(|n| n.parse().ok()).collect();
        // Only below a version dbdeploy itself deployed is a gap meaningful: earlier versions
        // may have been applied by golang-migrate before dbdeploy took over.
        let Some(first_deployed) = deployed.iter().copied().min() else {
            return Vec::new();
        };
        set.migrations
            .iter()
            .map(|m| version(&m.name))
            .filter(|v| *v > first_deployed && *v < current && !deployed.contains(v))
            .map(|v| v.to_string())
            .collect()
    }

    fn checksum_matches(&self, _migration: &Migration, _recorded: &str) -> bool {
        // golang-migrate keeps no checksum, so nothing recorded can disagree.
        true
    }

    fn record_started(
        &self,
        dialect: Dialect,
        migration: &Migration,
        _now: DateTime<Utc>,
    ) -> (String, Vec<Stmt>) {
        (
            migration.name.clone(),
            set_version(dialect, version(&migration.name), true),
        )
    }

    fn record_finished(
        &self,
        dialect: Dialect,
        row_id: &str,
        _now: DateTime<Utc>,
        _elapsed: Duration,
    ) -> Vec<Stmt> {
        set_version(dialect, version(row_id), false)
    }

    fn record_failed(&self, _dialect: Dialect, _row_id: &str, _logs: &str) -> Vec<Stmt> {
        // The version stays dirty: that is golang-migrate's failure record.
        Vec::new()
    }

    fn revert(
        &self,
        dialect: Dialect,
        migration: &Migration,
        previous: Option<&Migration>,
    ) -> Option<Revert> {
        let sql = migration.down.clone()?;
        // golang-migrate's down step targets the previous version (-1: none left): that
        // version is written dirty before the script and clean after it.
        let target = previous.map_or(-1, |p| version(&p.name));
        Some(Revert {
            transaction: TxMode::analyze(&sql, dialect, None),
            sql,
            before: set_version(dialect, target, true),
            after: if target < 0 {
                vec![delete_all(dialect)]
            } else {
                set_version(dialect, target, false)
            },
        })
    }

    fn resolve_rules(&self) -> Rules {
        Rules {
            failed_state: "a failed (dirty) state",
            naming: "check the version",
            // golang-migrate counts a version as applied by where the one row points, which
            // `resolve_rows` weighs; a version is never refused for a row of its own.
            already_applied: |_, _| false,
            first: |request, _| {
                resolve::version(request.name, "golang-migrate", "the digits before `_`")?;
                // The one row holds one dirty version: that one is resolved first.
                match dirty(request.records) {
                    Some(d)
                        if request.resolution == Resolution::Applied && d.name != request.name =>
                    {
                        Err(HandlerError::Resolve(format!(
                            "version {} is the failed (dirty) migration; resolve it first",
                            d.name
                        )))
                    }
                    _ => Ok(()),
                }
            },
            ..Rules::DEFAULT
        }
    }

    fn resolve_rows(&self, dialect: Dialect, to: &Checked<'_>) -> ResolveResult {
        let n = version(to.name);
        if let Action::RollBack = to.action {
            // Back to the version before it, as `migrate force <previous>` would.
            let previous = to
                .records
                .iter()
                .filter(|r| r.state == RecordState::Applied)
                .map(|r| version(&r.name))
                .filter(|v| *v < n)
                .max();
            return Ok(match previous {
                Some(p) => set_version(dialect, p, false),
                None => vec![delete_all(dialect)],
            });
        }
        if dirty(to.records).is_some() {
            // `migrate force N` on the dirty version.
            return Ok(set_version(dialect, n, false));
        }
        let current = to
            .records
            .iter()
            .filter(|r| r.state != RecordState::RolledBack)
            .map(|r| version(&r.name))
            .max();
        if current.is_some_and(|c| c >= n) {
            // golang-migrate already counts it as applied; the run dbdeploy logs for this
            // resolve tells its own history so, which is all that is left to do.
            return Ok(Vec::new());
        }
        // The table keeps one version: recording N also records every version below it.
        let skipped: Vec<&str> = to
            .records
            .iter()
            .filter(|r| r.state == RecordState::RolledBack && version(&r.name) < n)
            .map(|r| r.name.as_str())
            .collect();
        if !skipped.is_empty() {
            return Err(HandlerError::Resolve(format!(
                "golang-migrate stores only the current version, so marking `{}` applied would also mark {} applied, and they would never run; deploy or resolve them first, in order",
                to.name,
                skipped.join(", ")
            )));
        }
        Ok(set_version(dialect, n, false))
    }
}

/// The version golang-migrate says is dirty: a migration that started and did not finish.
fn dirty(records: &[AppliedRecord]) -> Option<&AppliedRecord> {
    records.iter().find(|r| r.state == RecordState::Failed)
}

/// Replaces the one row, as golang-migrate's `SetVersion` does (it truncates, then inserts).
fn set_version(dialect: Dialect, version: i64, dirty: bool) -> Vec<Stmt> {
    let t = dialect.quote_ident(TABLE);
    vec![
        delete_all(dialect),
        Stmt::new(
            format!(
                "INSERT INTO {t} (version, dirty) VALUES ({}, {})",
                dialect.placeholder(1),
                dialect.placeholder(2)
            ),
            vec![Value::Int(version), Value::Bool(dirty)],
        ),
    ]
}

/// DELETE rather than golang-migrate's TRUNCATE: same result, but TRUNCATE commits implicitly
/// on MySQL and would end dbdeploy's transaction.
fn delete_all(dialect: Dialect) -> Stmt {
    Stmt::raw(format!("DELETE FROM {}", dialect.quote_ident(TABLE)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("migrations-fixtures/golang-migrate")
            .join(name)
    }

    #[test]
    fn file_names_parse_as_golang_migrate_parses_them() {
        assert_eq!(parse_file_name("1_init.up.sql"), Some(("1", Direction::Up)));
        assert_eq!(
            parse_file_name("0010_init.down.sql"),
            Some(("0010", Direction::Down))
        );
        assert_eq!(
            parse_file_name("3_a.up.b.down.sql"),
            Some(("3", Direction::Down))
        );
        assert_eq!(parse_file_name("1_init.sql"), None);
        assert_eq!(parse_file_name("init.up.sql"), None);
        assert_eq!(parse_file_name("1init.up.sql"), None);
        assert_eq!(parse_file_name("README.md"), None);
    }

    #[test]
    fn versions_sort_numerically_with_downs_attached() {
        let set = GolangMigrate
            .load(&fixture("basic"), Dialect::Sqlite)
            .unwrap();
        let names: Vec<_> = set.migrations.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["1", "2", "3", "4", "5", "10"]);
        assert!(set.migrations.iter().all(|m| m.down.is_some()));
        assert!(set.migrations[5].path.ends_with("10_post_views.up.sql"));
    }

    #[test]
    fn duplicate_versions_are_refused() {
        let err = GolangMigrate
            .load(&fixture("duplicate-version"), Dialect::Sqlite)
            .unwrap_err()
            .to_string();
        assert!(err.contains("1_a.up.sql"), "{err}");
        assert!(err.contains("1_b.up.sql"), "{err}");
    }

    #[test]
    fn lock_ids_are_golang_migrate_ones() {
        // Computed with python3: (zlib.crc32(name) * 1486364155) % 2**32.
        let keys = GolangMigrate.lock_keys(&LockScope {
            database: "dbdeploy".into(),
            schema: Some("public".into()),
        });
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[0].postgres, 4_118_802_652);
        assert_eq!(keys[1].postgres, 3_950_194_850);
        assert_eq!(keys[0].mysql, "3423940889");
    }

    fn set_of(versions: &[&str]) -> MigrationSet {
        MigrationSet {
            dir: "m".into(),
            migrations: versions
                .iter()
                .map(|v| {
                    let path = format!("{v}_x.up.sql");
                    Migration::new(*v, path, String::new(), TxMode::Wrapped, String::new())
                })
                .collect(),
            warnings: Vec::new(),
        }
    }

    #[test]
    fn the_one_row_means_everything_up_to_it_is_applied() {
        let set = set_of(&["1", "2", "10", "11"]);
        let rows = vec![vec![Value::Int(10), Value::Int(0)]];
        let records = GolangMigrate
            .interpret_history(&set, GolangMigrate.parse_history(rows).unwrap().into());
        let applied: Vec<_> = records.iter().map(|r| (r.name.as_str(), r.state)).collect();
        assert_eq!(
            applied,
            [
                ("1", RecordState::Applied),
                ("2", RecordState::Applied),
                ("10", RecordState::Applied),
                ("11", RecordState::RolledBack)
            ]
        );
    }

    #[test]
    fn a_dirty_row_is_a_failed_migration_and_rolls_back_to_the_previous_version() {
        let set = set_of(&["1", "2", "10"]);
        let rows = vec![vec![Value::Int(10), Value::Bool(true)]];
        let records = GolangMigrate
            .interpret_history(&set, GolangMigrate.parse_history(rows).unwrap().into());
        assert_eq!(records.last().unwrap().state, RecordState::Failed);
        let stmts = GolangMigrate
            .resolve(
                Dialect::Postgres,
                &records,
                None,
                "10",
                Resolution::RolledBack,
                Utc::now(),
            )
            .unwrap();
        assert_eq!(stmts.len(), 2);
        assert_eq!(stmts[1].args, [Value::Int(2), Value::Bool(false)]);
    }

    #[test]
    fn versions_added_below_the_current_one_are_unreachable() {
        let set = set_of(&["1", "2", "3", "4", "5", "6"]);
        let records = GolangMigrate
            .parse_history(vec![vec![Value::Int(6), Value::Int(0)]])
            .unwrap();
        let deployed = |names: &[&str]| names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>();
        // dbdeploy deployed 2, 3 and 6: 4 and 5 were added later and never ran; 1 predates it.
        assert_eq!(
            GolangMigrate.unreachable(&set, &records, &deployed(&["2", "3", "6"])),
            ["4", "5"]
        );
        // No dbdeploy history: golang-migrate may have applied everything; nothing to report.
        assert!(GolangMigrate.unreachable(&set, &records, &[]).is_empty());
        assert!(
            GolangMigrate
                .unreachable(&set, &[], &deployed(&["2"]))
                .is_empty()
        );
    }

    #[test]
    fn more_than_one_row_is_refused() {
        let rows = vec![
            vec![Value::Int(1), Value::Int(0)],
            vec![Value::Int(2), Value::Int(0)],
        ];
        assert!(GolangMigrate.parse_history(rows).is_err());
    }

    #[test]
    fn marking_applied_may_not_skip_pending_versions() {
        let set = set_of(&["1", "2", "3"]);
        let records = GolangMigrate.interpret_history(
            &set,
            GolangMigrate
                .parse_history(vec![vec![Value::Int(1), Value::Int(0)]])
                .unwrap()
                .into(),
        );
        let local = &set.migrations[2];
        let err = GolangMigrate
            .resolve(
                Dialect::Sqlite,
                &records,
                Some(local),
                "3",
                Resolution::Applied,
                Utc::now(),
            )
            .unwrap_err()
            .to_string();
        assert!(err.contains("would also mark 2 applied"), "{err}");
        let next = GolangMigrate
            .resolve(
                Dialect::Sqlite,
                &records,
                Some(&set.migrations[1]),
                "2",
                Resolution::Applied,
                Utc::now(),
            )
            .unwrap();
        assert_eq!(next[1].args, [Value::Int(2), Value::Bool(false)]);
    }
}
