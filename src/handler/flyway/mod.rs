//! Flyway-style files: `V<version>__<description>.sql`, `B<version>__<description>.sql`
//! (baseline migrations), `R__<description>.sql`, and the `flyway_schema_history` table.
//!
//! Written from flyway's `ResourceNameParser.java` (names), `MigrationVersion.java` (version
//! order), `ChecksumCalculator.java` (CRC-32 per line), `JdbcTableSchemaHistory.java` (rows,
//! ranks, repair) and the per-database `getRawCreateScript` (DDL), so that `flyway info`
//! agrees with dbdeploy after a deploy and dbdeploy understands history Flyway wrote.
//!
//! Migrations are named as Flyway names them in its own messages: versioned ones by version
//! (`1.2`), repeatable ones by description (`refresh views`); baseline migrations by `B` and
//! their version (`B2`), since they share versions with versioned ones.

mod baseline;
mod load;
mod name;
mod table;

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::resolve::{Action, Checked, Rules};
use super::{Handler, HandlerError, ResolveResult};
use crate::engine::{ColKind, Dialect, LockKey, LockScope, Stmt, Value};
use crate::migration::{AppliedRecord, Migration, MigrationSet, Records};
pub use load::checksum;
use name::{Name, compare_versions, file_name, name_of};

/// The Flyway format.
#[derive(Debug, Clone, Copy)]
pub struct Flyway;

const TABLE: &str = "flyway_schema_history";

/// Flyway's advisory-lock base, the bytes of "Flyway" (`PostgreSQLAdvisoryLockTemplate`).
const LOCK_MAGIC: i64 = 0x466C_7977_6179;

/// Flyway adds `table.toString().hashCode()` to its lock base; the table is schema-qualified,
/// so this matches Flyway when the history table is in `public`, the default schema.
const PG_LOCK_ID: i64 = LOCK_MAGIC + java_hash("\"public\".\"flyway_schema_history\"") as i64;

/// Marks a `BASELINE` row until [`Handler::reconcile`] expands it; no file name yields it.
const BASELINE_MARK: &str = "<< Flyway Baseline >> ";

/// `String.hashCode()` of an ASCII string.
const fn java_hash(s: &str) -> i32 {
    let b = s.as_bytes();
    let mut h: i32 = 0;
    let mut i = 0;
    while i < b.len() {
        h = h.wrapping_mul(31).wrapping_add(b[i] as i32);
        i += 1;
    }
    h
}

impl Handler for Flyway {
    fn name(&self) -> &'static str {
        "flyway"
    }

    fn default_dir(&self) -> &'static str {
        "db/migration"
    }

    fn load(&self, dir: &Path, dialect: Dialect) -> Result<MigrationSet, HandlerError> {
        load::load(dir, dialect)
    }

    fn table(&self) -> &'static str {
        TABLE
    }

    fn lock_keys(&self, _scope: &LockScope) -> Vec<LockKey> {
        vec![LockKey {
            postgres: PG_LOCK_ID,
            // Flyway's MySQL lock name hashes the database name, which a handler cannot know.
            mysql: "dbdeploy_flyway".into(),
        }]
    }

    fn create_table(&self, dialect: Dialect) -> Vec<Stmt> {
        table::create_table(dialect)
    }

    fn select_history(&self, dialect: Dialect) -> (Stmt, Vec<ColKind>) {
        table::select_history(dialect)
    }

    fn parse_history(&self, rows: Vec<Vec<Value>>) -> Result<Vec<AppliedRecord>, HandlerError> {
        table::parse_history(rows)
    }

    fn reconcile<'r>(&self, set: &MigrationSet, records: Records<'r>) -> Records<'r> {
        baseline::reconcile(set, records.into_owned()).into()
    }

    fn superseded(&self, set: &MigrationSet, records: &[AppliedRecord]) -> Vec<String> {
        baseline::superseded(set, records)
    }

    fn checksum_matches(&self, migration: &Migration, recorded: &str) -> bool {
        match (
            migration.checksum.parse::<i64>(),
            recorded.trim().parse::<i64>(),
        ) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        }
    }

    fn failed_hint(&self) -> Option<&'static str> {
        Some(
            "the row has success = false in flyway_schema_history, Flyway's failed state: `dbdeploy resolve --rolled-back` deletes it as `flyway repair` does",
        )
    }

    fn is_repeatable(&self, migration: &Migration) -> bool {
        matches!(name_of(migration), Name::Repeatable { .. })
    }

    fn sorts_before(&self, a: &Migration, b: &Migration) -> bool {
        let (x, y) = (name_of(a), name_of(b));
        match (x.version(), y.version()) {
            // A baseline migration comes after the versioned migration of its version.
            (Some(vx), Some(vy)) => compare_versions(vx, vy)
                .then_with(|| {
                    matches!(x, Name::Baseline { .. }).cmp(&matches!(y, Name::Baseline { .. }))
                })
                .is_lt(),
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => a.name < b.name,
        }
    }

    fn record_started(
        &self,
        dialect: Dialect,
        migration: &Migration,
        _now: DateTime<Utc>,
    ) -> (String, Vec<Stmt>) {
        // The row starts as failed and becomes successful in `record_finished`: in a
        // transaction nobody sees the difference, outside one a failure stays recorded
        // exactly as Flyway records one on databases without transactional DDL.
        let script = migration
            .tool_data
            .clone()
            .unwrap_or_else(|| file_name(migration));
        (
            table::truncate(&script, 1000),
            vec![table::insert_row(dialect, migration, false)],
        )
    }

    fn record_finished(
        &self,
        dialect: Dialect,
        row_id: &str,
        _now: DateTime<Utc>,
        elapsed: Duration,
    ) -> Vec<Stmt> {
        table::record_finished(dialect, row_id, elapsed)
    }

    fn record_failed(&self, _dialect: Dialect, _row_id: &str, _logs: &str) -> Vec<Stmt> {
        // The row written before the script already says `success = false`; Flyway's table
        // has no column for the error text.
        Vec::new()
    }

    fn resolve_rules(&self) -> Rules {
        Rules {
            naming: "check the name (versioned migrations are named by version, e.g. `1.2`, baseline migrations by `B` and version, e.g. `B2`, repeatable ones by description)",
            // A repeatable migration is applied again whenever it changed since its last run.
            already_applied: |local, recorded| {
                if Flyway.is_repeatable(local) {
                    recorded
                        .applied
                        .and_then(|r| r.checksum.as_deref())
                        .is_some_and(|c| Flyway.checksum_matches(local, c))
                } else {
                    recorded.applied.is_some()
                }
            },
            ..Rules::DEFAULT
        }
    }

    fn resolve_rows(&self, dialect: Dialect, to: &Checked<'_>) -> ResolveResult {
        let mut stmts = Vec::new();
        if to.recorded.failed {
            stmts.push(table::delete_failed(dialect, to.name));
        }
        if let Action::Apply(local) = to.action {
            stmts.push(table::insert_row(dialect, local, true));
        }
        Ok(stmts)
    }
}

/// Each record's name, state and checksum, for the tests' assertions.
#[cfg(test)]
fn states(records: &[AppliedRecord]) -> Vec<(&str, crate::migration::RecordState, Option<&str>)> {
    records
        .iter()
        .map(|r| (r.name.as_str(), r.state, r.checksum.as_deref()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_id_is_flyways_for_the_public_schema() {
        // 77431708279161 + "\"public\".\"flyway_schema_history\"".hashCode() (Java), by Python.
        assert_eq!(PG_LOCK_ID, 77_433_833_903_597);
    }
}
