//! Migration formats: how each authoring tool lays out its files and keeps its tracking table.
//!
//! A [`Handler`] is synchronous and does no database I/O. It parses the migrations folder and
//! describes its tracking table as SQL text plus bound values for a [`Dialect`], which the
//! engine runs. Prisma is the first format; the trait is shaped so that sqlx (version rows,
//! byte checksums), dbmate (version only), golang-migrate (one dirty-flag row) and Flyway
//! (ranked rows, CRC checksums) fit it too.
//!
//! What the formats have in common is written once: reading the folder in [`folder`], the
//! checks of `dbdeploy resolve` in [`resolve`], hashing in [`crate::checksum`]. A format's own
//! file holds only what is its own: its name parser, table, rows and checksum algorithm.

pub mod dbmate;
pub mod detect;
pub mod drizzle;
pub mod flyway;
pub mod folder;
pub mod golang_migrate;
pub mod known;
pub mod plain;
pub mod prisma;
pub mod resolve;
pub mod sqlx;
pub mod unfinished;

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use crate::config::MigrationTool;
use crate::engine::{ColKind, Dialect, LockKey, LockScope, Stmt, Value};
use crate::migration::{AppliedRecord, Migration, MigrationSet, Records, TxMode};

/// A problem with the migrations folder or a migration file.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// The folder is missing or not a directory.
    #[error("migrations folder {path} {reason}")]
    Folder {
        /// The folder.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A file in it cannot be used.
    #[error("{path}{}: {reason}", line.map(|l| format!(":{l}")).unwrap_or_default())]
    File {
        /// The file.
        path: PathBuf,
        /// The line, when one is to blame.
        line: Option<usize>,
        /// What is wrong.
        reason: String,
    },
    /// The tracking table exists but is not the one this format writes (another tool's table
    /// of the same name, or a different version of it).
    #[error("the tracking table `{table}` {reason}")]
    Table {
        /// The table.
        table: &'static str,
        /// What is wrong with it and what to do.
        reason: String,
    },
    /// The tracking table holds something this format cannot read.
    #[error("unexpected row in the tracking table `{table}`: {reason}")]
    History {
        /// The table.
        table: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A `resolve` request that does not fit the recorded state.
    #[error("{0}")]
    Resolve(String),
}

impl HandlerError {
    /// A [`HandlerError::File`] that blames the whole file.
    #[must_use]
    pub fn file(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Self::File {
            path: path.into(),
            line: None,
            reason: reason.into(),
        }
    }

    /// A [`HandlerError::File`] that blames one line of it, when one is known.
    #[must_use]
    pub fn file_at(
        path: impl Into<PathBuf>,
        line: impl Into<Option<usize>>,
        reason: impl Into<String>,
    ) -> Self {
        Self::File {
            path: path.into(),
            line: line.into(),
            reason: reason.into(),
        }
    }
}

/// How one applied migration is reverted by `dbdeploy down`.
#[derive(Debug, Clone)]
pub struct Revert {
    /// The down script.
    pub sql: String,
    /// Whether it can run inside dbdeploy's transaction.
    pub transaction: TxMode,
    /// Tracking-table statements before the script (in the same transaction when atomic).
    pub before: Vec<Stmt>,
    /// Tracking-table statements after it.
    pub after: Vec<Stmt>,
}

/// How a failed migration is to be marked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    /// It was finished by hand: record it as applied.
    Applied,
    /// It was undone by hand: record it as rolled back so it runs again.
    RolledBack,
}

/// A migration format.
pub trait Handler: Send + Sync {
    /// The format's name as written in `migration_tool`.
    fn name(&self) -> &'static str;
    /// The folder the tool uses by default.
    fn default_dir(&self) -> &'static str;
    /// Reads, validates and orders the migrations for an engine of `dialect`.
    ///
    /// # Errors
    /// Unreadable, non-UTF-8 or misnamed files, duplicates, or a provider that does not match.
    fn load(&self, dir: &Path, dialect: Dialect) -> Result<MigrationSet, HandlerError>;
    /// The tracking table's name.
    fn table(&self) -> &'static str;
    /// The schema the tracking table lives in when it is not the connection's own (drizzle's
    /// `drizzle` schema on PostgreSQL).
    fn table_schema(&self, dialect: Dialect) -> Option<&'static str> {
        let _ = dialect;
        None
    }
    /// A table of dbdeploy's own that records what the tool's table cannot, and the query that
    /// reads it with the same columns as [`Handler::select_history`]; read only when it exists,
    /// its rows follow the tool's into [`Handler::parse_history`].
    fn companion(&self, dialect: Dialect) -> Option<(&'static str, Stmt)> {
        let _ = dialect;
        None
    }
    /// Renames history records to the local migrations they record, when the tool tracks
    /// migrations by something other than their name (drizzle: `created_at`), and expands
    /// markers that stand for several migrations (a Flyway baseline).
    fn reconcile<'r>(&self, set: &MigrationSet, records: Records<'r>) -> Records<'r> {
        let _ = set;
        records
    }
    /// Migrations of the folder that the tool skips on this history without running them, so
    /// that they are neither pending nor applied: Flyway's baseline migrations once the
    /// database has history, and on an empty database the migrations its latest baseline
    /// migration stands for. `records` are as read, before [`Handler::reconcile`].
    fn superseded(&self, set: &MigrationSet, records: &[AppliedRecord]) -> Vec<String> {
        let _ = (set, records);
        Vec::new()
    }
    /// Whether the migration runs again whenever its checksum changes (Flyway `R__`).
    fn is_repeatable(&self, migration: &Migration) -> bool {
        let _ = migration;
        false
    }
    /// Whether `a` comes before `b` in the tool's own notion of time, when that differs from
    /// the apply order of the folder (drizzle: the journal's `when`). A pending migration that
    /// comes before the newest applied one, in apply order or by this, is out of order.
    fn sorts_before(&self, a: &Migration, b: &Migration) -> bool {
        let _ = (a, b);
        false
    }
    /// How the tool itself clears a recorded failure, added to the hints when one blocks.
    fn failed_hint(&self) -> Option<&'static str> {
        None
    }
    /// Statements that remove the tracking table after a dev-mode reset, when the reset of the
    /// connection's schema does not reach it.
    fn drop_tracking(&self, dialect: Dialect) -> Vec<Stmt> {
        let _ = dialect;
        Vec::new()
    }
    /// The deploy lock when the database cannot be asked for its name: the first of
    /// [`Handler::lock_keys`] for an unnamed database.
    fn lock_key(&self) -> LockKey {
        self.lock_keys(&LockScope::default())
            .into_iter()
            .next()
            .unwrap_or_else(dbdeploy_lock)
    }
    /// The deploy locks for one database, shared with the tool itself, in the order they are
    /// taken. Tools that derive their lock id from the database name (sqlx, golang-migrate)
    /// read `scope`; the others have one fixed lock.
    fn lock_keys(&self, scope: &LockScope) -> Vec<LockKey>;
    /// Checks the columns of an existing tracking table (lowercase names) before it is read, so
    /// that another tool's table of the same name is reported instead of misread.
    ///
    /// # Errors
    /// [`HandlerError::Table`] saying whose table it looks like and what to do.
    fn check_table(&self, columns: &[String]) -> Result<(), HandlerError> {
        let _ = columns;
        Ok(())
    }
    /// Turns the records read from the table into one record per migration where the table
    /// does not keep one row per migration (golang-migrate stores only the current version).
    fn interpret_history<'r>(&self, set: &MigrationSet, records: Records<'r>) -> Records<'r> {
        let _ = set;
        records
    }
    /// Whether [`Handler::unreachable`] reads `deployed`: only then is dbdeploy's own history
    /// of deployed migrations read (at thousands of migrations, a query and a parse per plan).
    fn uses_deployed(&self) -> bool {
        false
    }
    /// Migrations on disk that were never applied and never will be, because the tracking
    /// table only keeps the highest version (golang-migrate). `deployed` lists the migrations
    /// dbdeploy's own history says it applied (or resolved) in this database: a file missing
    /// from it that sorts between versions dbdeploy deployed was added after a later one ran.
    fn unreachable(
        &self,
        set: &MigrationSet,
        records: &[AppliedRecord],
        deployed: &[String],
    ) -> Vec<String> {
        let _ = (set, records, deployed);
        Vec::new()
    }
    /// How to revert `migration`, the last applied one, as the tool's own down command does;
    /// `previous` is the migration applied before it. `None` when there is no down script
    /// (the default: formats without downs, such as Prisma's).
    fn revert(
        &self,
        dialect: Dialect,
        migration: &Migration,
        previous: Option<&Migration>,
    ) -> Option<Revert> {
        let _ = (dialect, migration, previous);
        None
    }
    /// Whether the tool records a migration that failed part-way (false for dbmate, whose table
    /// only lists applied versions: a failed migration stays pending and runs again).
    fn records_failures(&self) -> bool {
        true
    }
    /// DDL that creates the tracking table exactly as the tool does.
    fn create_table(&self, dialect: Dialect) -> Vec<Stmt>;
    /// The query that reads the tracking table, and how to decode its columns.
    fn select_history(&self, dialect: Dialect) -> (Stmt, Vec<ColKind>);
    /// Turns the rows of [`Handler::select_history`] into records.
    ///
    /// # Errors
    /// When a row cannot be understood.
    fn parse_history(&self, rows: Vec<Vec<Value>>) -> Result<Vec<AppliedRecord>, HandlerError>;
    /// Whether a recorded checksum matches the file (tools tolerate some variants).
    fn checksum_matches(&self, migration: &Migration, recorded: &str) -> bool;
    /// Statements run before the script; returns the id later statements refer to.
    fn record_started(
        &self,
        dialect: Dialect,
        migration: &Migration,
        now: DateTime<Utc>,
    ) -> (String, Vec<Stmt>);
    /// Statements run after the script succeeded.
    fn record_finished(
        &self,
        dialect: Dialect,
        row_id: &str,
        now: DateTime<Utc>,
        elapsed: std::time::Duration,
    ) -> Vec<Stmt>;
    /// Statements that record a migration as applied in one go, run after its script in the
    /// transaction that holds both (atomic runs). They must commit the rows that
    /// [`Handler::record_started`] followed by [`Handler::record_finished`] leave, which is
    /// the default; formats override it to write those rows with fewer statements.
    fn record_applied(
        &self,
        dialect: Dialect,
        migration: &Migration,
        started_at: DateTime<Utc>,
        finished_at: DateTime<Utc>,
        elapsed: std::time::Duration,
    ) -> Vec<Stmt> {
        let (row_id, mut stmts) = self.record_started(dialect, migration, started_at);
        stmts.extend(self.record_finished(dialect, &row_id, finished_at, elapsed));
        stmts
    }
    /// Statements that record a failure the tool's way (only for non-atomic runs).
    fn record_failed(&self, dialect: Dialect, row_id: &str, logs: &str) -> Vec<Stmt>;
    /// How [`Handler::resolve`] words the checks every format makes, and the checks this
    /// format adds; the default is the wording of most formats.
    fn resolve_rules(&self) -> resolve::Rules {
        resolve::Rules::DEFAULT
    }
    /// The statements that resolve a migration that passed the checks.
    ///
    /// # Errors
    /// When the recorded state does not allow the resolution after all (golang-migrate: a
    /// version that would also mark pending ones applied).
    fn resolve_rows(&self, dialect: Dialect, to: &resolve::Checked<'_>) -> ResolveResult;
    /// Statements that resolve a failed migration: the checks of [`resolve::check`] with
    /// [`Handler::resolve_rules`], then the rows of [`Handler::resolve_rows`].
    ///
    /// # Errors
    /// When the recorded state does not allow the resolution.
    fn resolve(
        &self,
        dialect: Dialect,
        records: &[AppliedRecord],
        local: Option<&Migration>,
        name: &str,
        resolution: Resolution,
        now: DateTime<Utc>,
    ) -> ResolveResult {
        let request = resolve::Request {
            records,
            local,
            name,
            resolution,
            now,
        };
        self.resolve_rows(dialect, &resolve::check(&self.resolve_rules(), request)?)
    }
}

/// The statements that resolve a migration, or why it cannot be resolved so.
pub type ResolveResult = Result<Vec<Stmt>, HandlerError>;

/// The handler for a configured tool; `None` for `migration_tool = "command"`, whose tool keeps
/// its own history.
#[must_use]
pub fn for_tool(tool: MigrationTool) -> Option<&'static dyn Handler> {
    Some(match tool {
        MigrationTool::Prisma => &prisma::Prisma,
        MigrationTool::Flyway => &flyway::Flyway,
        MigrationTool::Drizzle => &drizzle::Drizzle,
        MigrationTool::Sql => &plain::PlainSql,
        MigrationTool::Sqlx => &sqlx::Sqlx,
        MigrationTool::Dbmate => &dbmate::Dbmate,
        MigrationTool::GolangMigrate => &golang_migrate::GolangMigrate,
        MigrationTool::Command => return None,
    })
}

/// dbdeploy's own deploy lock, for formats whose tool takes none (drizzle, plain SQL).
#[must_use]
pub fn dbdeploy_lock() -> LockKey {
    LockKey {
        // The bytes of "dbdepl".
        postgres: 0x6462_6465_706c,
        mysql: "dbdeploy".into(),
    }
}

/// The reason given when a script opts out of the transaction with `-- dbdeploy:no-transaction`
/// on a line of its leading comments (before the first statement).
#[must_use]
pub fn dbdeploy_opt_out(sql: &str) -> Option<String> {
    const DIRECTIVE: &str = "dbdeploy:no-transaction";
    for line in sql.trim_start_matches('\u{feff}').lines() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let comment = line.strip_prefix("--")?;
        if comment.trim() == DIRECTIVE {
            return Some(format!("the script opts out with `-- {DIRECTIVE}`"));
        }
    }
    None
}

/// An expression that renders a timestamp column as text, whatever the engine stores
/// (SQLite rows written by Prisma hold epoch milliseconds; column defaults write text).
#[must_use]
pub fn timestamp_text(dialect: Dialect, col: &str) -> String {
    match dialect {
        Dialect::Postgres => {
            format!("to_char({col} AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.MS')")
        }
        Dialect::MySql => format!("DATE_FORMAT({col}, '%Y-%m-%d %H:%i:%s.%f')"),
        Dialect::Sqlite => format!(
            "CASE typeof({col}) WHEN 'integer' THEN strftime('%Y-%m-%d %H:%M:%f', {col} / 1000.0, 'unixepoch') \
             WHEN 'real' THEN strftime('%Y-%m-%d %H:%M:%f', {col} / 1000.0, 'unixepoch') ELSE {col} END"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_opt_out_comment_counts_only_among_leading_comments() {
        assert!(dbdeploy_opt_out("-- dbdeploy:no-transaction\nCREATE TABLE t (id INT);").is_some());
        assert!(
            dbdeploy_opt_out(
                "\u{feff}-- a migration\n\n--   dbdeploy:no-transaction  \r\nSELECT 1;"
            )
            .is_some()
        );
        assert!(dbdeploy_opt_out("SELECT 1;\n-- dbdeploy:no-transaction\n").is_none());
        assert!(dbdeploy_opt_out("-- dbdeploy:no-transactions\nSELECT 1;").is_none());
        assert!(dbdeploy_opt_out("").is_none());
    }
}
