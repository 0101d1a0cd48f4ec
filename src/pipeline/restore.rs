//! Restoring a backup, and proving it worked: the file's sha256 is checked before anything is
//! touched, and afterwards the live schema fingerprint and the tracking table must equal the
//! manifest's. [`Restore`] is `dbdeploy rollback`; [`recover`] is the automatic rollback of a
//! failed deploy. Both restore through [`restore`], and only with an approved plan.

use std::time::Instant;

use super::approve::{self, Approved, Summary};
use super::backup::{BackupStatus, provider};
use super::event::duration;
use super::{Ctx, Operation, Outcome, Trail};
use crate::backup::{BackupError, BackupProvider, BackupStore, Manifest, RollbackOutcome, store};
use crate::engine::Database;
use crate::error::Error;
use crate::handler::Handler;
use crate::migration::RecordState;
use crate::settings::EnvSettings;

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
async fn restore<D: Database>(
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
    let records = super::verify::read_records(db, Some(handler))
        .await
        .map_err(|e| unverified(format!("cannot read the tracking table: {e}")))?;
    if store::tracking_digest(&records) != manifest.tracking_digest {
        let applied: Vec<&str> = records
            .iter()
            .filter(|r| r.state == RecordState::Applied)
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

/// After a failure: restores this run's backup when the environment enables it with `setting`
/// (`rollback_on_failure`, `rollback_on_health_check_failure`), and reports what happened.
/// `unchanged`: the failure left the database as before the run, so there is nothing to undo.
pub async fn recover<D: Database>(
    cx: &Ctx<'_>,
    db: &mut D,
    trail: &Trail,
    enabled: bool,
    setting: &str,
    unchanged: bool,
) -> RollbackOutcome {
    let backup_id = trail.backup_id();
    if unchanged {
        let reason = "not needed: the failed migration was rolled back and none before it was applied, so the database is unchanged";
        cx.step("rollback", Outcome::Skipped, reason.into());
        return RollbackOutcome::not_attempted(reason, backup_id);
    }
    let manifest = match should_roll_back(enabled, setting, trail.backup.as_ref()) {
        Ok(m) => m.clone(),
        Err(reason) => {
            cx.step("rollback", Outcome::Skipped, reason.clone());
            return RollbackOutcome::not_attempted(&reason, backup_id);
        }
    };
    let Some(approved) = approve::by_setting(enabled, manifest) else {
        unreachable!("should_roll_back refuses a disabled setting");
    };
    let manifest = approved.into_plan();
    let started = Instant::now();
    match restore(db, cx.env, cx.handler(), &manifest, false).await {
        Ok(restored) => {
            cx.step(
                "rollback",
                Outcome::Ok,
                format!(
                    "restored {} in {}; verified: {}",
                    manifest.id,
                    duration(started.elapsed()),
                    restored.verified.join("; ")
                ),
            );
            RollbackOutcome {
                initiated: true,
                status: "succeeded".into(),
                backup_id: Some(manifest.id),
                verified: restored.verified,
            }
        }
        Err(e) => {
            cx.step("rollback", Outcome::Failed, e.to_string());
            RollbackOutcome {
                initiated: true,
                status: format!("failed: {e}"),
                backup_id: Some(manifest.id),
                verified: Vec::new(),
            }
        }
    }
}

/// `dbdeploy rollback ENV [--to ID]`: restores a backup (checked against its manifest before
/// anything is touched), then verifies it. Needs no migrations folder.
pub struct Restore {
    /// The backup's manifest.
    pub manifest: Manifest,
    /// Where it is kept.
    pub store: BackupStore,
}

/// What approval of a restore covers.
#[derive(Debug)]
pub struct RestorePlan {
    /// Migrations applied now (for the summary).
    pub applied_now: usize,
}

impl Operation for Restore {
    type Plan = RestorePlan;
    type Done = Vec<String>;

    const COMMAND: &'static str = "rollback";
    const OPERATION: &'static str = "rollback";

    async fn plan<D: Database>(
        &self,
        cx: &Ctx<'_>,
        db: &mut D,
        trail: &mut Trail,
    ) -> Result<RestorePlan, Error> {
        let m = &self.manifest;
        trail.recorded = Some(m.migrations.clone());
        self.store.verify_file(m).await?;
        cx.step(
            "backup",
            Outcome::Ok,
            format!(
                "{} ({}, taken {}): sha256 matches its manifest",
                m.id,
                m.size_bytes
                    .map_or_else(|| "size unknown".to_owned(), crate::backup::human_bytes),
                m.created_at.format("%Y-%m-%d %H:%M:%S UTC")
            ),
        );
        let applied_now = super::verify::read_records(db, cx.handler())
            .await?
            .iter()
            .filter(|r| r.state == RecordState::Applied)
            .count();
        Ok(RestorePlan { applied_now })
    }

    fn summary(&self, cx: &Ctx<'_>, plan: &RestorePlan) -> Summary {
        let m = &self.manifest;
        let mut notes = Vec::new();
        // An external tool's history is its own: there is nothing to count.
        if cx.handler().is_some() {
            notes.push(format!(
                "now: {} migration(s) applied; after: {} (last: {})",
                plan.applied_now,
                m.migrations.len(),
                m.migrations.last().map_or("none", String::as_str)
            ));
        }
        notes.push("every change made since the backup (schema and data) will be lost".into());
        // Always asked: a restore discards whatever was written since the backup.
        Summary::Always {
            headline: format!(
                "the database of environment `{}` will be replaced by backup {}",
                cx.env.name, m.id
            ),
            notes,
        }
    }

    async fn apply<D: Database>(
        &self,
        cx: &Ctx<'_>,
        db: &mut D,
        _approved: Approved<RestorePlan>,
        trail: &mut Trail,
    ) -> Result<Vec<String>, Error> {
        let m = &self.manifest;
        trail.touched = true;
        let started = Instant::now();
        let restored = restore(db, cx.env, cx.handler(), m, true).await;
        let outcome = |status: String, verified: Vec<String>| RollbackOutcome {
            initiated: true,
            status,
            backup_id: Some(m.id.clone()),
            verified,
        };
        let restored = match restored {
            Ok(r) => r,
            Err(e) => {
                trail.rollback = Some(outcome(format!("failed: {e}"), Vec::new()));
                return Err(e.into());
            }
        };
        cx.step(
            "restore",
            Outcome::Ok,
            format!("{} restored in {}", m.id, duration(started.elapsed())),
        );
        for v in &restored.verified {
            cx.step("verify", Outcome::Ok, v.clone());
        }
        trail.rollback = Some(outcome("succeeded".into(), restored.verified.clone()));
        Ok(restored.verified)
    }
}
