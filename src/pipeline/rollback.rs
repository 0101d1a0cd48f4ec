//! Restoring a backup, and proving it worked: the file's sha256 is checked before anything is
//! touched, and afterwards the live schema fingerprint and the tracking table must equal the
//! manifest's. Used by `dbdeploy rollback` and by the automatic rollback of `migrate`.

use serde::Serialize;

use super::backup::{BackupStatus, provider};
use crate::backup::{BackupError, BackupProvider, Manifest, store};
use crate::engine::Database;
use crate::handler::Handler;
use crate::settings::EnvSettings;

/// What an automatic rollback did (or why it did not happen), for the report and the JSON.
#[derive(Debug, Clone, Serialize)]
pub struct RollbackOutcome {
    /// A restore was started.
    pub initiated: bool,
    /// `succeeded`, `failed: ...` or `not-attempted: ...`.
    pub status: String,
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
            status: format!("not-attempted: {reason}"),
            backup_id: backup_id.map(str::to_owned),
            verified: Vec::new(),
        }
    }

    /// Whether the database was restored and verified.
    #[must_use]
    pub fn succeeded(&self) -> bool {
        self.initiated && self.status == "succeeded"
    }
}

/// A verified restore.
#[derive(Debug, Clone)]
pub struct Restored {
    /// What was verified, one sentence each.
    pub verified: Vec<String>,
}

/// Restores `manifest`'s backup into the environment's database and verifies it. `handler` is
/// `None` for an external tool: only the schema is compared then, and the caller checks the
/// tool's history with its `status_command`.
///
/// # Errors
/// A tampered file, a missing tool, a failed restore, or a restore that does not verify.
pub async fn restore<D: Database>(
    db: &mut D,
    env: &EnvSettings,
    handler: Option<&dyn Handler>,
    manifest: &Manifest,
    file_checked: bool,
) -> Result<Restored, BackupError> {
    let engine = env.target.dialect().name();
    if manifest.engine != engine {
        return Err(BackupError::Mismatch {
            id: manifest.id.clone(),
            reason: format!(
                "it is a {} backup and environment `{}` is {engine}",
                manifest.engine, env.name
            ),
        });
    }
    let (provider, store) = provider(env)?;
    provider.preflight(db).await?;
    let file = manifest.file_path(&store.dir).unwrap_or_else(|| {
        store
            .dir
            .join(format!("{}.{}", manifest.id, provider.extension()))
    });
    let mut verified = Vec::new();
    if manifest.sha256.is_some() {
        if !file_checked {
            store.verify_file(manifest).await?;
        }
        verified.push("backup file sha256 matches its manifest".to_owned());
    }
    provider.restore(db, &manifest.id, &file).await?;
    verified.extend(verify(db, handler, manifest).await?);
    Ok(Restored { verified })
}

/// Compares the live schema and tracking table with the manifest.
///
/// # Errors
/// [`BackupError::Unverified`] naming what differs.
pub async fn verify<D: Database>(
    db: &mut D,
    handler: Option<&dyn Handler>,
    manifest: &Manifest,
) -> Result<Vec<String>, BackupError> {
    let unverified = |detail: String| BackupError::Unverified {
        id: manifest.id.clone(),
        detail,
    };
    let schema = crate::schema::snapshot(db)
        .await
        .map_err(|e| unverified(format!("cannot read the schema: {e}")))?;
    if schema.hash != manifest.schema_fingerprint {
        let changes = crate::schema::changes(&manifest.schema, &schema.text)
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>();
        return Err(unverified(format!(
            "the schema differs from the backup's: {}",
            changes.into_iter().take(5).collect::<Vec<_>>().join("; ")
        )));
    }
    let fingerprint = format!(
        "schema fingerprint {} matches the backup's",
        &schema.hash[..12.min(schema.hash.len())]
    );
    let Some(handler) = handler else {
        return Ok(vec![fingerprint]);
    };
    let records = super::read_records(db, Some(handler))
        .await
        .map_err(|e| unverified(format!("cannot read the tracking table: {e}")))?;
    if store::tracking_digest(&records) != manifest.tracking_digest {
        let applied: Vec<&str> = records
            .iter()
            .filter(|r| r.state == crate::migration::RecordState::Applied)
            .map(|r| r.name.as_str())
            .collect();
        return Err(unverified(format!(
            "the tracking table `{}` differs from the backup's ({} applied now, {} in the backup)",
            handler.table(),
            applied.len(),
            manifest.migrations.len()
        )));
    }
    Ok(vec![
        fingerprint,
        format!(
            "tracking table `{}` matches the backup ({} migration(s) applied)",
            handler.table(),
            manifest.migrations.len()
        ),
    ])
}

/// Whether `migrate` should restore automatically, or why not.
///
/// # Errors
/// The reason it must not, for the report.
pub fn should_roll_back<'b>(
    enabled: bool,
    setting: &str,
    backup: Option<&'b BackupStatus>,
) -> Result<&'b Manifest, String> {
    if !enabled {
        return Err(format!("{setting} is not enabled for this environment"));
    }
    match backup {
        Some(BackupStatus::Created(c)) => Ok(&c.manifest),
        Some(BackupStatus::Skipped) => Err("no backup from this run (--skip-backup)".into()),
        _ => Err("no backup from this run (backup_before_migrate is not enabled)".into()),
    }
}
