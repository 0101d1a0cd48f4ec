//! The `[backup]` table, checked and resolved for one environment.

use std::path::PathBuf;

use super::{Settings, absolute};
use crate::config::ConfigError;

/// The `[backup]` table, resolved for one environment.
#[derive(Debug, Clone)]
pub struct BackupSettings {
    /// This environment's backup folder (absolute): `[backup] dir` / environment name.
    pub dir: PathBuf,
    /// How many backups to keep.
    pub keep: usize,
    /// A configured backup command and its restore command.
    pub command: Option<(String, String)>,
    /// `pg_dump`'s compression.
    pub compression: crate::backup::pg_options::Compression,
    /// `pg_dump`'s parallel jobs.
    pub jobs: u32,
}

/// Backups kept per environment when `[backup] keep` is not set.
pub const DEFAULT_KEEP: usize = 10;

impl Settings {
    pub(super) fn backup_settings(&self, env: &str) -> Result<BackupSettings, ConfigError> {
        let b = &self.config.backup;
        let invalid = |message: &str| ConfigError::Parse {
            path: self.config_path.clone(),
            message: message.to_owned(),
        };
        let keep = b.keep.unwrap_or(DEFAULT_KEEP);
        if keep == 0 {
            return Err(invalid(
                "`[backup] keep` must be at least 1 (the backup of the current run is always kept)",
            ));
        }
        let command = match (&b.command, &b.restore_command) {
            (None, None) => None,
            (Some(c), Some(r)) if !c.trim().is_empty() && !r.trim().is_empty() => {
                Some((c.clone(), r.clone()))
            }
            _ => {
                return Err(invalid(
                    "`[backup] command` and `[backup] restore_command` must be set together: a backup that cannot be restored is not a backup",
                ));
            }
        };
        let compression = match &b.compression {
            Some(c) => c.parse().map_err(|m: String| invalid(&m))?,
            None => crate::backup::pg_options::Compression::Auto,
        };
        let jobs = match b.jobs {
            None => crate::backup::pg_options::default_jobs(),
            Some(n) => u32::try_from(n)
                .ok()
                .filter(|n| (1..=crate::backup::pg_options::MAX_JOBS).contains(&i64::from(*n)))
                .ok_or_else(|| {
                    invalid(&format!(
                        "`[backup] jobs = {n}` must be between 1 and {} (each job is a connection to the server)",
                        crate::backup::pg_options::MAX_JOBS
                    ))
                })?,
        };
        let dir = b
            .dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(".dbdeploy/backups"));
        Ok(BackupSettings {
            dir: absolute(&self.working_dir, &dir).join(env),
            keep,
            command,
            compression,
            jobs,
        })
    }
}
