//! Migration formats: how each authoring tool lays out its files and keeps its tracking table.
//!
//! A [`Handler`] is synchronous and does no database I/O. It parses the migrations folder and
//! describes its tracking table as SQL text plus bound values for a [`Dialect`], which the
//! engine runs. Prisma is the first format; the trait is shaped so that sqlx (version rows,
//! byte checksums), dbmate (version only), golang-migrate (one dirty-flag row) and Flyway
//! (ranked rows, CRC checksums) fit it too.

pub mod dbmate;
pub mod detect;
pub mod drizzle;
pub mod flyway;
pub mod golang_migrate;
pub mod plain;
pub mod prisma;
pub mod sqlx;
pub mod unfinished;

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use crate::config::MigrationTool;
use crate::engine::{ColKind, Dialect, LockKey, LockScope, Stmt, Value};
use crate::migration::{AppliedRecord, Migration, MigrationSet, TxMode};

pub use crate::checksum::{crc32_ieee, hex, sha256_hex};

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
    fn reconcile(&self, set: &MigrationSet, records: Vec<AppliedRecord>) -> Vec<AppliedRecord> {
        let _ = set;
        records
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
    /// The deploy lock, shared with the tool itself.
    fn lock_key(&self) -> LockKey;
    /// The deploy locks for one database, in the order they are taken. Tools whose lock id is
    /// derived from the database name (sqlx, golang-migrate) override this; the default is
    /// [`Handler::lock_key`].
    fn lock_keys(&self, scope: &LockScope) -> Vec<LockKey> {
        let _ = scope;
        vec![self.lock_key()]
    }
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
    fn interpret_history(
        &self,
        set: &MigrationSet,
        records: Vec<AppliedRecord>,
    ) -> Vec<AppliedRecord> {
        let _ = set;
        records
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
    /// Statements that resolve a failed migration.
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
    ) -> Result<Vec<Stmt>, HandlerError>;
}

/// The handler for a configured tool; `None` for `migration_tool = "command"`, whose tool keeps
/// its own history (see [`crate::external`]).
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

/// The name shown for a configured tool, as written in `migration_tool`.
#[must_use]
pub fn tool_name(tool: MigrationTool) -> &'static str {
    for_tool(tool).map_or(crate::external::NAME, |h| h.name())
}

/// Takes every deploy lock of `tool` for this database (the tool's own, derived from the
/// database name where the tool does so), waiting up to `timeout`; returns the keys to release.
///
/// # Errors
/// A lock held elsewhere for longer than `timeout`, or a database error.
pub async fn take_deploy_locks<D: crate::engine::Database>(
    db: &mut D,
    tool: MigrationTool,
    timeout: std::time::Duration,
) -> Result<Vec<LockKey>, crate::engine::DbError> {
    let keys = match for_tool(tool) {
        Some(h) => h.lock_keys(&db.lock_scope().await?),
        None => vec![dbdeploy_lock()],
    };
    crate::engine::lock_all(db, &keys, timeout).await
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

/// Checks that the migrations folder exists and is a directory.
///
/// # Errors
/// When it is missing, unreadable or a file.
pub fn check_folder(dir: &Path) -> Result<(), HandlerError> {
    let folder_error = |reason: String| HandlerError::Folder {
        path: dir.to_owned(),
        reason,
    };
    let meta = std::fs::metadata(dir).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => {
            folder_error("does not exist; set `migrations_dir` in dbdeploy.toml".into())
        }
        _ => folder_error(format!("cannot be read: {e}")),
    })?;
    if meta.is_dir() {
        Ok(())
    } else {
        Err(folder_error("is not a directory".into()))
    }
}

/// The files directly in `dir` (symlinks followed), as (file name, path), sorted by name.
///
/// # Errors
/// When the folder or an entry cannot be read, or a name is not UTF-8.
pub fn list_files(dir: &Path) -> Result<Vec<(String, PathBuf)>, HandlerError> {
    check_folder(dir)?;
    let mut out = Vec::new();
    for (name, path, is_dir) in entries(dir)? {
        if !is_dir {
            out.push((name, path));
        }
    }
    Ok(out)
}

/// The entries of `dir` as (name, path, is a directory), sorted by name.
///
/// # Errors
/// When the folder or an entry cannot be read, or a name is not UTF-8.
pub fn entries(dir: &Path) -> Result<Vec<(String, PathBuf, bool)>, HandlerError> {
    let unreadable = |e: std::io::Error| HandlerError::Folder {
        path: dir.to_owned(),
        reason: format!("cannot be read: {e}"),
    };
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(unreadable)? {
        let entry = entry.map_err(unreadable)?;
        let path = entry.path();
        let is_dir = is_dir(&entry, &path)?;
        let name = entry
            .file_name()
            .into_string()
            .map_err(|_| HandlerError::File {
                path: path.clone(),
                line: None,
                reason: "the name is not valid UTF-8; rename it".into(),
            })?;
        out.push((name, path, is_dir));
    }
    out.sort();
    Ok(out)
}

/// Whether a folder entry is a directory, following symlinks. The type comes with the listing
/// (no system call per entry); only a symlink needs a look at what it points to.
///
/// # Errors
/// When the entry, or a symlink's target, cannot be read.
pub fn is_dir(entry: &std::fs::DirEntry, path: &Path) -> Result<bool, HandlerError> {
    let cannot_read = |e: std::io::Error| HandlerError::File {
        path: path.to_owned(),
        line: None,
        reason: format!("cannot be read: {e}"),
    };
    let kind = entry.file_type().map_err(cannot_read)?;
    if kind.is_symlink() {
        Ok(std::fs::metadata(path).map_err(cannot_read)?.is_dir())
    } else {
        Ok(kind.is_dir())
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

/// Finds two migrations that share an identity, which every version-keyed tool refuses.
///
/// # Errors
/// [`HandlerError::File`] naming both files.
pub fn check_unique(migrations: &[Migration]) -> Result<(), HandlerError> {
    for (i, m) in migrations.iter().enumerate() {
        if let Some(first) = migrations[..i].iter().find(|o| o.name == m.name) {
            return Err(HandlerError::File {
                path: m.path.clone(),
                line: None,
                reason: format!(
                    "has version {} like {}: versions must be unique (give one of them a new version)",
                    m.name,
                    first.path.display()
                ),
            });
        }
    }
    Ok(())
}

/// Reads a migration file as UTF-8, with an error that names the file.
///
/// # Errors
/// When the file cannot be read, is not a regular file, or is not UTF-8.
pub fn read_script(path: &Path) -> Result<String, HandlerError> {
    let cannot_read = |reason: String| HandlerError::File {
        path: path.to_owned(),
        line: None,
        reason: format!("cannot be read: {reason}"),
    };
    match read_regular(path) {
        Ok(Some(bytes)) => script_text(path, bytes),
        Ok(None) => Err(cannot_read("it is not a regular file".into())),
        Err(e) => Err(cannot_read(e.to_string())),
    }
}

/// The bytes of the regular file at `path`; `None` when it is something else (a folder, a
/// FIFO, ...). One open, one fstat, one read and one close for a file that does not change
/// while it is read: thousands of migrations are read on every run.
///
/// # Errors
/// When it cannot be opened or read (missing: [`std::io::ErrorKind::NotFound`]).
pub fn read_regular(path: &Path) -> std::io::Result<Option<Vec<u8>>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    // Non-blocking, so that opening a FIFO does not wait for a writer; no effect on files.
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Ok(None);
    }
    let size = usize::try_from(meta.len()).unwrap_or(0);
    // One byte more than the file holds: a read that does not fill the buffer is at the end
    // of a regular file, so no second read is needed to see end-of-file.
    let mut buf = vec![0; size + 1];
    let mut len = 0;
    loop {
        if len == buf.len() {
            // The file grew since the fstat.
            buf.resize(buf.len() * 2, 0);
        }
        match file.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => {
                len += n;
                if len >= size && len < buf.len() {
                    break;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(len);
    Ok(Some(buf))
}

/// A migration file's bytes as SQL text, kept for the whole run (so without spare capacity).
///
/// # Errors
/// When they are not UTF-8 or hold a NUL byte.
pub fn script_text(path: &Path, bytes: Vec<u8>) -> Result<String, HandlerError> {
    let mut text = String::from_utf8(bytes).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line = valid.iter().filter(|b| **b == b'\n').count() + 1;
        HandlerError::File {
            path: path.to_owned(),
            line: Some(line),
            reason: "is not valid UTF-8 text; save it as UTF-8".into(),
        }
    })?;
    // No SQL text holds a NUL byte, and drivers mishandle one (sqlx's SQLite driver loops
    // forever on it): refuse the file before anything runs.
    if let Some(at) = text.find('\0') {
        let line = text[..at].matches('\n').count() + 1;
        return Err(HandlerError::File {
            path: path.to_owned(),
            line: Some(line),
            reason: "contains a NUL byte, so it is not SQL text (a binary or UTF-16 file?); save it as UTF-8 text".into(),
        });
    }
    text.shrink_to_fit();
    Ok(text)
}

/// Loads migrations from their names on a few threads: with thousands of files, opening,
/// reading and hashing them is most of a no-op run. The result is in the order of `names`,
/// and the error is the one of the first name that failed, as a sequential loop would give.
///
/// # Errors
/// The first error of `load`, in the order of `names`.
pub fn load_in_parallel<F>(names: Vec<String>, load: F) -> Result<Vec<Migration>, HandlerError>
where
    F: Fn(String) -> Result<Migration, HandlerError> + Sync,
{
    // Below this, starting threads costs more than it saves.
    const PARALLEL_FROM: usize = 512;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
    if names.len() < PARALLEL_FROM || threads < 2 {
        return names.into_iter().map(load).collect();
    }
    let per_thread = names.len().div_ceil(threads);
    let mut chunks: Vec<Vec<String>> = Vec::with_capacity(threads);
    let mut names = names.into_iter();
    loop {
        let chunk: Vec<String> = names.by_ref().take(per_thread).collect();
        if chunk.is_empty() {
            break;
        }
        chunks.push(chunk);
    }
    let load = &load;
    let results: Vec<Result<Vec<Migration>, HandlerError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|chunk| scope.spawn(move || chunk.into_iter().map(load).collect()))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    });
    let mut migrations = Vec::new();
    for chunk in results {
        migrations.extend(chunk?);
    }
    Ok(migrations)
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

    #[test]
    fn regular_files_are_read_whole_and_other_entries_are_not_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.sql");
        for text in ["", "x", "CREATE TABLE t (id INT);\n"] {
            std::fs::write(&path, text).unwrap();
            assert_eq!(read_regular(&path).unwrap().unwrap(), text.as_bytes());
        }
        let big = "SELECT 1;\n".repeat(100_000);
        std::fs::write(&path, &big).unwrap();
        assert_eq!(read_script(&path).unwrap(), big);
        assert!(read_regular(dir.path()).unwrap().is_none());
        let missing = read_regular(&dir.path().join("nope.sql")).unwrap_err();
        assert_eq!(missing.kind(), std::io::ErrorKind::NotFound);
        let err = read_script(dir.path()).unwrap_err().to_string();
        assert!(err.contains("not a regular file"), "{err}");
    }

    #[test]
    fn a_fifo_is_refused_without_waiting_for_a_writer() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("m.sql");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if !made.is_ok_and(|s| s.success()) {
            return;
        }
        assert!(read_regular(&fifo).unwrap().is_none());
    }

    #[test]
    fn entries_follow_symlinks_to_tell_folders() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("b_dir")).unwrap();
        std::fs::write(dir.path().join("c_file.sql"), "").unwrap();
        std::os::unix::fs::symlink("b_dir", dir.path().join("a_link")).unwrap();
        let found: Vec<(String, bool)> = entries(dir.path())
            .unwrap()
            .into_iter()
            .map(|(name, _, is_dir)| (name, is_dir))
            .collect();
        assert_eq!(
            found,
            [
                ("a_link".to_owned(), true),
                ("b_dir".to_owned(), true),
                ("c_file.sql".to_owned(), false)
            ]
        );
        std::os::unix::fs::symlink("gone", dir.path().join("d_dangling")).unwrap();
        let err = entries(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("d_dangling") && err.contains("cannot be read"),
            "{err}"
        );
    }
}
