//! Step 8: the backup seam. Backups and automatic rollback arrive in a later version; until
//! then an environment that requires a backup refuses to deploy rather than pretend.

use crate::error::Error;

/// What the backup step did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackupStatus {
    /// The environment does not ask for backups.
    NotConfigured,
    /// `--skip-backup` was given.
    Skipped,
}

/// Runs the backup step.
///
/// # Errors
/// When the environment requires a backup: this version cannot take one, and deploying
/// without the backup the operator asked for must be an explicit decision.
pub fn run(required: bool, skip: bool, environment: &str) -> Result<BackupStatus, Error> {
    match (required, skip) {
        (_, true) => Ok(BackupStatus::Skipped),
        (false, false) => Ok(BackupStatus::NotConfigured),
        (true, false) => Err(Error::Unavailable {
            message: format!(
                "environment `{environment}` sets backup_before_migrate, but this version of dbdeploy cannot take backups yet"
            ),
            hint: format!(
                "take a backup with your usual tool, then run `dbdeploy migrate {environment} --skip-backup`; nothing was changed"
            ),
        }),
    }
}
