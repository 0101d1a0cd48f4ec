//! Backups and restores, behind a [`BackupProvider`] boundary that is separate from the engine:
//! an engine runs SQL on one connection, a provider moves a whole database into a file and back
//! (often with the server's own client tools).
//!
//! Providers: SQLite (`VACUUM INTO`, restored in one transaction on the live file), PostgreSQL
//! (`pg_dump -Fd -j N`, or `-Fc` for backups of earlier versions / `pg_restore` through
//! `psql --single-transaction`), MySQL/MariaDB
//! (`mysqldump --single-transaction` / `mysql`), and a configured command for snapshots
//! dbdeploy cannot take itself. dbdeploy's own history table is never backed up nor restored:
//! the record of what happened, including the rollback itself, must survive the rollback.

pub mod command;
pub mod dump_dir;
pub mod failure;
pub mod folder;
pub mod identity;
pub mod manifest;
pub mod marker;
pub mod mysql;
mod mysql_in_place;
mod mysql_swap;
pub mod pg_options;
pub mod postgres;
pub mod process;
pub mod sqlite;
pub mod store;

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::engine::{Database, Target};
use crate::settings::BackupSettings;

pub use failure::{RestoreFailure, RestoreState, Stopped};
pub use identity::DatabaseIdentity;
pub use marker::{Marker, Unfinished};
pub use store::{BackupStore, Manifest};

/// Why a backup or a restore could not be made.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// A client tool the provider needs is not installed.
    #[error("`{tool}` was not found on PATH; {needed}")]
    ToolMissing {
        /// The program.
        tool: String,
        /// What to install.
        needed: String,
    },
    /// A client tool is too old for the server.
    #[error("`{tool}` is version {found}, older than the server ({server}); {needed}")]
    ToolTooOld {
        /// The program.
        tool: String,
        /// Its version.
        found: String,
        /// The server's version.
        server: String,
        /// What to install.
        needed: String,
    },
    /// A tool or statement failed.
    #[error("{what} failed: {message}")]
    Failed {
        /// What was being done.
        what: String,
        /// The tool's or database's message (scrubbed of secrets).
        message: String,
    },
    /// A file or folder could not be used.
    #[error("{}: {what}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// What dbdeploy was doing with it.
        what: String,
        /// The system's error, when there is one.
        #[source]
        source: Option<std::io::Error>,
    },
    /// No backup with that id.
    #[error("backup `{id}` not found in {}", dir.display())]
    NotFound {
        /// The requested id.
        id: String,
        /// Where it was looked for.
        dir: PathBuf,
    },
    /// The environment's database has no backups yet.
    #[error(
        "environment `{environment}` has no backups of its database in {}{}",
        dir.display(),
        if *others > 0 { format!(" ({others} backup(s) of other databases or environments are there)") } else { String::new() }
    )]
    NoBackups {
        /// The environment.
        environment: String,
        /// Where they were looked for.
        dir: PathBuf,
        /// Backups of other databases in the folder.
        others: usize,
    },
    /// The backup was taken from another database (or environment) than the one it would
    /// replace.
    #[error("backup `{id}` was taken from {from}, not from {into}: it is not restored there")]
    OtherDatabase {
        /// The backup.
        id: String,
        /// The database it was taken from.
        from: String,
        /// The environment's database now.
        into: String,
    },
    /// The backup folder or a file in it cannot be trusted.
    #[error("refusing to use {}: {reason}", path.display())]
    Untrusted {
        /// The folder or file.
        path: PathBuf,
        /// Which rule it breaks.
        reason: String,
    },
    /// A restore failed or was stopped; says what it left.
    #[error(transparent)]
    Restore(Box<RestoreFailure>),
    /// A restore started earlier did not finish: the database may be partly restored.
    #[error(transparent)]
    Unfinished(Box<Unfinished>),
    /// The file's hash differs from the manifest's.
    #[error(
        "backup file {} does not match its manifest (sha256 {actual}, manifest {expected}): it was changed or damaged after it was written",
        path.display()
    )]
    Tampered {
        /// The file.
        path: PathBuf,
        /// The manifest's hash.
        expected: String,
        /// The file's hash.
        actual: String,
    },
    /// Not enough room for the backup.
    #[error(
        "not enough free space for a backup in {}: {} free, about {} needed",
        dir.display(),
        human_bytes(*free),
        human_bytes(*needed)
    )]
    NoSpace {
        /// The backup folder.
        dir: PathBuf,
        /// Bytes free.
        free: u64,
        /// Bytes expected.
        needed: u64,
    },
    /// After a restore, the schema or the tracking table differs from the manifest.
    #[error("the restore of `{id}` could not be verified: {detail}")]
    Unverified {
        /// The backup.
        id: String,
        /// What differs.
        detail: String,
    },
    /// `--skip-backup` on an environment with `require_backup = true`.
    #[error(
        "environment `{environment}` requires a backup before every change (`require_backup = true`): --skip-backup is refused"
    )]
    SkipRefused {
        /// The environment.
        environment: String,
    },
    /// The backup an environment with `require_backup = true` needs could not be made: the
    /// cause's message, without the ways around it.
    #[error("{cause}")]
    Required {
        /// The environment.
        environment: String,
        /// Why the backup could not be made.
        cause: Box<BackupError>,
    },
    /// The backup belongs to another engine or environment.
    #[error("backup `{id}` cannot be restored here: {reason}")]
    Mismatch {
        /// The backup.
        id: String,
        /// Why.
        reason: String,
    },
}

impl BackupError {
    /// A stable identifier for JSON consumers.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            BackupError::ToolMissing { .. } | BackupError::ToolTooOld { .. } => {
                "backup-tool-missing"
            }
            BackupError::Failed { .. } | BackupError::Io { .. } => "backup-failed",
            BackupError::NotFound { .. } | BackupError::NoBackups { .. } => "backup-not-found",
            BackupError::Tampered { .. } => "backup-tampered",
            BackupError::NoSpace { .. } => "insufficient-disk-space",
            BackupError::Unverified { .. } => "restore-unverified",
            BackupError::Mismatch { .. } => "backup-mismatch",
            BackupError::OtherDatabase { .. } => "backup-of-another-database",
            BackupError::Untrusted { .. } => "backup-folder-untrusted",
            BackupError::Restore(f) => f.code(),
            BackupError::Unfinished(_) => "restore-unfinished",
            BackupError::SkipRefused { .. } => "backup-required",
            BackupError::Required { cause, .. } => cause.code(),
        }
    }

    /// Whether a signal stopped it (logged as interrupted, exit 130).
    #[must_use]
    pub fn interrupted(&self) -> bool {
        match self {
            BackupError::Restore(f) => f.interrupted,
            BackupError::Required { cause, .. } => cause.interrupted(),
            _ => false,
        }
    }

    /// Whether the database may have been changed.
    #[must_use]
    pub fn changed(&self) -> bool {
        match self {
            BackupError::Restore(f) => f.state != RestoreState::Unchanged,
            BackupError::Unverified { .. } => true,
            BackupError::Required { cause, .. } => cause.changed(),
            _ => false,
        }
    }

    /// What to do next, one line each.
    #[must_use]
    pub fn hints(&self) -> Vec<String> {
        match self {
            BackupError::ToolMissing { needed, .. } | BackupError::ToolTooOld { needed, .. } => vec![
                needed.clone(),
                "nothing was changed".into(),
                "to deploy without a backup anyway: --skip-backup (NOT recommended: no way back if the deploy fails)".into(),
            ],
            BackupError::Failed { .. } | BackupError::Io { .. } | BackupError::NoSpace { .. } => vec![
                "nothing was changed: the deploy stops before any change when its backup cannot be made".into(),
                "fix the cause above and retry; check `[backup] dir` is writable and has room".into(),
                "to deploy without a backup anyway: --skip-backup (NOT recommended: no way back if the deploy fails)".into(),
            ],
            BackupError::NotFound { .. } | BackupError::NoBackups { .. } => {
                vec!["list the backups with `dbdeploy backups ENV`; make one with `dbdeploy backup ENV`".into()]
            }
            BackupError::Tampered { .. } => vec![
                "the file was not restored and nothing was changed".into(),
                "use another backup (`dbdeploy backups ENV`, then `dbdeploy rollback ENV --to ID`)".into(),
            ],
            BackupError::Unverified { .. } => vec![
                "the backup was restored, but the database does not match it; inspect it (`dbdeploy diff ENV`, `dbdeploy status ENV`) before deploying".into(),
            ],
            BackupError::Mismatch { .. } => vec!["choose a backup of this environment's engine".into()],
            BackupError::OtherDatabase { .. } => vec![
                "nothing was changed".into(),
                "list this database's backups with `dbdeploy backups ENV`".into(),
                "to replace this database with another database's backup on purpose: add --from-other-database (with approval)".into(),
            ],
            BackupError::Untrusted { .. } => vec![
                "nothing was changed".into(),
                "the backup folder must be a directory owned by the user running dbdeploy that nobody else can write to (`chown USER DIR && chmod 700 DIR`), and manifests must name a plain file in it; or set `[backup] dir` to such a folder".into(),
            ],
            BackupError::Restore(f) => f.hints(),
            BackupError::Unfinished(u) => u.hints(),
            BackupError::SkipRefused { .. } => vec![
                "nothing was changed".into(),
                "run it again without --skip-backup: this environment is never changed without a backup".into(),
            ],
            BackupError::Required { environment, cause } => {
                let mut hints: Vec<String> = cause
                    .hints()
                    .into_iter()
                    .filter(|h| !h.contains("--skip-backup"))
                    .collect();
                hints.push(format!(
                    "environment `{environment}` has `require_backup = true`: it is never changed without a backup, so the backup cannot be skipped"
                ));
                hints
            }
        }
    }

    /// Whether the user named something that does not exist (exit code 2).
    #[must_use]
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            BackupError::NotFound { .. }
                | BackupError::NoBackups { .. }
                | BackupError::Mismatch { .. }
                | BackupError::SkipRefused { .. }
        )
    }
}

/// How a rollback ended, in the words of the documented response contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RollbackStatus {
    /// Restored and verified.
    Success,
    /// A restore was started and did not complete, or did not verify.
    Failed,
    /// No restore was started.
    NotAttempted,
}

impl RollbackStatus {
    /// The word: `success`, `failed`, `not-attempted`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            RollbackStatus::Success => "success",
            RollbackStatus::Failed => "failed",
            RollbackStatus::NotAttempted => "not-attempted",
        }
    }
}

/// What a restore from a backup did (or why none happened), for the report, the JSON and the
/// history: after an automatic rollback, and for `dbdeploy rollback`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RollbackOutcome {
    /// A restore was started.
    pub initiated: bool,
    /// How it ended.
    pub status: RollbackStatus,
    /// Why it failed or was not attempted.
    pub reason: Option<String>,
    /// The backup involved.
    pub backup_id: Option<String>,
    /// What was verified after the restore.
    pub verified: Vec<String>,
}

impl RollbackOutcome {
    /// A rollback that was not attempted, and why.
    #[must_use]
    pub fn not_attempted(reason: &str, backup_id: Option<&str>) -> Self {
        Self {
            initiated: false,
            status: RollbackStatus::NotAttempted,
            reason: Some(reason.to_owned()),
            backup_id: backup_id.map(str::to_owned),
            verified: Vec::new(),
        }
    }

    /// A restore of `backup_id` that completed and verified.
    #[must_use]
    pub fn restored(backup_id: &str, verified: Vec<String>) -> Self {
        Self {
            initiated: true,
            status: RollbackStatus::Success,
            reason: None,
            backup_id: Some(backup_id.to_owned()),
            verified,
        }
    }

    /// A restore of `backup_id` that was started and failed, and why.
    #[must_use]
    pub fn failed(backup_id: &str, reason: String) -> Self {
        Self {
            initiated: true,
            status: RollbackStatus::Failed,
            reason: Some(reason),
            backup_id: Some(backup_id.to_owned()),
            verified: Vec::new(),
        }
    }

    /// Whether the database was restored and verified.
    #[must_use]
    pub fn succeeded(&self) -> bool {
        self.initiated && self.status == RollbackStatus::Success
    }

    /// The status with its reason, for people and the history table (`failed: ...`).
    #[must_use]
    pub fn describe(&self) -> String {
        match &self.reason {
            Some(reason) => format!("{}: {reason}", self.status.as_str()),
            None => self.status.as_str().to_owned(),
        }
    }

    /// What to do after a failure that an automatic restore may have undone: once restored,
    /// `then` (what to fix before deploying again); when the restore failed, inspect and retry
    /// it; when none was made, `otherwise` with this run's backup id, if any.
    #[must_use]
    pub fn hints(
        rollback: Option<&Self>,
        environment: &str,
        then: String,
        otherwise: impl FnOnce(Option<&str>) -> Vec<String>,
    ) -> Vec<String> {
        let id = rollback.and_then(|r| r.backup_id.as_deref());
        match (rollback, id) {
            (Some(r), Some(id)) if r.succeeded() => vec![
                format!(
                    "the database was restored from backup {id} and verified: it is as it was before this deploy"
                ),
                then,
            ],
            (Some(r), Some(id)) if r.initiated => vec![
                format!(
                    "the automatic restore from backup {id} did not complete ({}); inspect the database",
                    r.describe()
                ),
                format!("retry with `dbdeploy rollback {environment} --to {id}`"),
            ],
            _ => otherwise(id),
        }
    }
}

/// What a provider wrote.
#[derive(Debug, Clone, Default)]
pub struct Written {
    /// Bytes in the file, when there is a file.
    pub size: Option<u64>,
    /// Its sha256, hex.
    pub sha256: Option<String>,
}

/// What a provider is called, and its files.
#[derive(Debug, Clone, Copy)]
pub struct Names {
    /// A short name for output and manifests.
    pub name: &'static str,
    /// The backup file's extension.
    pub extension: &'static str,
    /// Whether the backup is a directory (a directory-format dump) rather than one file.
    pub directory: bool,
}

/// The first column of the first row of a query, as text (numbers too), if any.
///
/// # Errors
/// The database's.
pub async fn scalar_text<D: Database>(
    db: &mut D,
    stmt: &crate::engine::Stmt,
) -> Result<Option<String>, crate::engine::DbError> {
    let rows = db.fetch(stmt, &[crate::engine::ColKind::Text]).await?;
    Ok(
        match rows.into_iter().next().and_then(|r| r.into_iter().next()) {
            Some(crate::engine::Value::Text(s)) => Some(s),
            Some(crate::engine::Value::Int(i)) => Some(i.to_string()),
            _ => None,
        },
    )
}

/// The first column of the first row of a query, as an integer, if any.
///
/// # Errors
/// The database's.
pub async fn scalar_int<D: Database>(
    db: &mut D,
    stmt: &crate::engine::Stmt,
) -> Result<Option<i64>, crate::engine::DbError> {
    let rows = db.fetch(stmt, &[crate::engine::ColKind::Int]).await?;
    Ok(rows
        .first()
        .and_then(|r| r.first())
        .and_then(crate::engine::Value::as_int))
}

/// The backup a provider restores.
#[derive(Debug)]
pub struct RestoreInput<'a> {
    /// Its id.
    pub id: &'a str,
    /// Its data file (for tools that take a path; the folder was checked).
    pub path: PathBuf,
    /// The data file, opened and checked against its manifest: what tools read.
    pub file: Option<&'a File>,
}

/// A way to copy a whole database into a file and back.
#[allow(async_fn_in_trait)]
pub trait BackupProvider {
    /// Its name and file extension.
    fn names(&self) -> Names;
    /// A short name for output and manifests (`pg_dump`, `mysqldump`, `sqlite`, `command`).
    fn name(&self) -> &'static str {
        self.names().name
    }
    /// The backup file's extension.
    fn extension(&self) -> &'static str {
        self.names().extension
    }
    /// Checks, before anything is changed, that a backup and a restore can be made: tools
    /// present and recent enough. Returns what will be used, for the report.
    ///
    /// # Errors
    /// A missing or outdated tool.
    async fn preflight<D: Database>(&self, db: &mut D) -> Result<String, BackupError>;
    /// Writes a consistent copy of the database to `out`, an empty file created 0600 and
    /// open as `file` (streaming providers write through the handle, never the path).
    ///
    /// # Errors
    /// When the copy cannot be made; the caller removes the partial file.
    async fn create<D: Database>(
        &self,
        db: &mut D,
        id: &str,
        out: &Path,
        file: &File,
    ) -> Result<Written, BackupError>;
    /// Replaces the database's contents with the backup. `marker` records the restore as
    /// unfinished until the provider clears it, in the same transaction as the restore where
    /// there is one.
    ///
    /// # Errors
    /// What failed, and the state it left the database in.
    async fn restore<D: Database>(
        &self,
        db: &mut D,
        input: &RestoreInput<'_>,
        marker: &mut Marker,
    ) -> Result<(), Stopped>;
    /// Whether a failed restore leaves the database as it was (one transaction).
    fn atomic_restore(&self) -> bool;
}

/// The provider for an environment: the configured command, or the engine's own.
#[derive(Debug)]
pub enum Provider {
    /// SQLite `VACUUM INTO`.
    Sqlite(sqlite::SqliteBackup),
    /// `pg_dump` / `pg_restore`.
    Postgres(postgres::PgBackup),
    /// `mysqldump` / `mysql`.
    MySql(mysql::MySqlBackup),
    /// `[backup] command`.
    Command(command::CommandBackup),
}

impl Provider {
    /// Chooses the provider for a target.
    ///
    /// # Errors
    /// When the URL cannot be turned into client-tool settings.
    pub fn for_target(
        target: &Target,
        settings: &BackupSettings,
        environment: &str,
        working_dir: &Path,
    ) -> Result<Self, BackupError> {
        if let Some((create, restore)) = &settings.command {
            return Ok(Provider::Command(command::CommandBackup {
                create: create.clone(),
                restore: restore.clone(),
                environment: environment.to_owned(),
                target: target.clone(),
                working_dir: working_dir.to_owned(),
            }));
        }
        Ok(match target {
            Target::Sqlite { .. } => Provider::Sqlite(sqlite::SqliteBackup),
            Target::Postgres { url } => Provider::Postgres(
                postgres::PgBackup::from_url(url)?
                    .with_options(settings.compression, settings.jobs),
            ),
            Target::MySql { url } => Provider::MySql(mysql::MySqlBackup::from_url(url)?),
        })
    }
}

macro_rules! each {
    ($self:ident, $p:ident => $e:expr) => {
        match $self {
            Provider::Sqlite($p) => $e,
            Provider::Postgres($p) => $e,
            Provider::MySql($p) => $e,
            Provider::Command($p) => $e,
        }
    };
}

impl BackupProvider for Provider {
    fn names(&self) -> Names {
        each!(self, p => p.names())
    }
    async fn preflight<D: Database>(&self, db: &mut D) -> Result<String, BackupError> {
        each!(self, p => p.preflight(db).await)
    }
    async fn create<D: Database>(
        &self,
        db: &mut D,
        id: &str,
        out: &Path,
        file: &File,
    ) -> Result<Written, BackupError> {
        each!(self, p => p.create(db, id, out, file).await)
    }
    async fn restore<D: Database>(
        &self,
        db: &mut D,
        input: &RestoreInput<'_>,
        marker: &mut Marker,
    ) -> Result<(), Stopped> {
        each!(self, p => p.restore(db, input, marker).await)
    }
    fn atomic_restore(&self) -> bool {
        each!(self, p => p.atomic_restore())
    }
}

/// Parses a server URL for the client tools.
///
/// # Errors
/// When it is not a URL (it was validated earlier, so this is unexpected).
fn parse_url(raw: &str) -> Result<url::Url, BackupError> {
    url::Url::parse(raw).map_err(|e| BackupError::Failed {
        what: "reading the database URL".into(),
        message: e.to_string(),
    })
}

/// Percent-decodes a URL part (user, password, database); `+` stays a plus.
fn decode(part: &str) -> String {
    percent_encoding::percent_decode_str(part)
        .decode_utf8_lossy()
        .into_owned()
}

/// Bytes as a short human figure (`1.2 GB`).
#[must_use]
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    #[allow(clippy::cast_precision_loss)]
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1000.0 && unit < UNITS.len() - 1 {
        v /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_parts_decode_percent_escapes_and_keep_plus_signs() {
        assert_eq!(decode("p%40ss%3Aw%2Fo%23rd+1"), "p@ss:w/o#rd+1");
    }

    #[test]
    fn human_bytes_reads_well() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1_500), "1.5 KB");
        assert_eq!(human_bytes(2_300_000_000), "2.3 GB");
    }
}
