//! Migration formats: how each authoring tool lays out its files and keeps its tracking table.
//!
//! A [`Handler`] is synchronous and does no database I/O. It parses the migrations folder and
//! describes its tracking table as SQL text plus bound values for a [`Dialect`], which the
//! engine runs. Prisma is the first format; the trait is shaped so that sqlx (version rows,
//! byte checksums), dbmate (version only), golang-migrate (one dirty-flag row) and Flyway
//! (ranked rows, CRC checksums) fit it too.

pub mod prisma;

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use crate::config::MigrationTool;
use crate::engine::{ColKind, Dialect, LockKey, Stmt, Value};
use crate::migration::{AppliedRecord, Migration, MigrationSet};

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
    /// The deploy lock, shared with the tool itself.
    fn lock_key(&self) -> LockKey;
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

/// The handler for a configured tool.
#[must_use]
pub fn for_tool(tool: MigrationTool) -> &'static dyn Handler {
    match tool {
        MigrationTool::Prisma => &prisma::Prisma,
    }
}

/// Reads a migration file as UTF-8, with an error that names the file.
///
/// # Errors
/// When the file cannot be read or is not UTF-8.
pub fn read_script(path: &Path) -> Result<String, HandlerError> {
    let bytes = std::fs::read(path).map_err(|e| HandlerError::File {
        path: path.to_owned(),
        line: None,
        reason: format!("cannot be read: {e}"),
    })?;
    let text = String::from_utf8(bytes).map_err(|e| {
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
    Ok(text)
}
