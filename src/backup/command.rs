//! A configured backup command, for snapshots dbdeploy cannot take itself (cloud volume or
//! managed-database snapshots). Both commands run through `sh -c` in the working directory
//! with these variables:
//!
//! - `DBDEPLOY_BACKUP_ID`: the backup id;
//! - `DBDEPLOY_BACKUP_PATH`: a file the command may write (its sha256 is then recorded and
//!   checked before a restore); a command that keeps its snapshot elsewhere leaves it empty;
//! - `DBDEPLOY_ENVIRONMENT`: the environment name;
//! - `DATABASE_URL`: the database URL (in the environment, never on a command line).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::process::Command;

use super::{
    BackupError, BackupProvider, Marker, Names, RestoreInput, RestoreState, Stopped, Written,
    process,
};
use crate::engine::{Database, Target};

/// The command provider.
#[derive(Clone)]
pub struct CommandBackup {
    /// The backup command.
    pub create: String,
    /// The restore command.
    pub restore: String,
    /// The environment name.
    pub environment: String,
    /// The database.
    pub target: Target,
    /// Where the commands run.
    pub working_dir: PathBuf,
}

impl std::fmt::Debug for CommandBackup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CommandBackup")
    }
}

impl CommandBackup {
    fn command(&self, script: &str, id: &str, path: &Path) -> Command {
        let mut cmd = Command::new("sh");
        crate::settings::hide_other_urls(&mut cmd);
        cmd.arg("-c")
            .arg(script)
            .current_dir(&self.working_dir)
            .env("DBDEPLOY_BACKUP_ID", id)
            .env("DBDEPLOY_BACKUP_PATH", path)
            .env("DBDEPLOY_ENVIRONMENT", &self.environment)
            .env("DATABASE_URL", self.target.url_for_tools());
        cmd
    }
}

impl BackupProvider for CommandBackup {
    fn names(&self) -> Names {
        Names {
            name: "command",
            extension: "backup",
            directory: false,
        }
    }

    async fn preflight<D: Database>(&self, _db: &mut D) -> Result<String, BackupError> {
        let works = Command::new("sh")
            .arg("-c")
            .arg("true")
            .stdin(Stdio::null())
            .status()
            .await
            .is_ok_and(|s| s.success());
        if !works {
            return Err(BackupError::ToolMissing {
                tool: "sh".into(),
                needed: "the backup command runs through sh -c".into(),
            });
        }
        Ok("[backup] command".into())
    }

    async fn create<D: Database>(
        &self,
        _db: &mut D,
        id: &str,
        out: &Path,
        _file: &File,
    ) -> Result<Written, BackupError> {
        let cmd = self.command(&self.create, id, out);
        process::run(cmd, "the backup command", Stdio::null()).await?;
        let size = std::fs::symlink_metadata(out).map(|m| m.len()).unwrap_or(0);
        if size == 0 {
            // The snapshot lives elsewhere; nothing here to hash.
            return Ok(Written::default());
        }
        process::hash_file(out).await
    }

    async fn restore<D: Database>(
        &self,
        _db: &mut D,
        input: &RestoreInput<'_>,
        _marker: &mut Marker,
    ) -> Result<(), Stopped> {
        let cmd = self.command(&self.restore, input.id, &input.path);
        process::run(cmd, "the restore command", Stdio::null())
            .await
            .map(drop)
            .map_err(|e| Stopped {
                state: RestoreState::Unknown,
                ..Stopped::unchanged(e).interrupted(crate::interrupt::requested())
            })
    }

    fn atomic_restore(&self) -> bool {
        false
    }
}
