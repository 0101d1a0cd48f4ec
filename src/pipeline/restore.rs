//! Restoring a backup, and proving it worked: the file's sha256 is checked before anything is
//! touched, and afterwards the live schema fingerprint and the tracking table must equal the
//! manifest's. [`Restore`] is `dbdeploy rollback`; [`recover`] is the automatic rollback of a
//! failed deploy. Both restore through `restore`, and only with an approved plan.

use std::time::Instant;

use super::approve::{self, Approved, Summary};
use super::backup::{BackupStatus, provider};
use super::event::duration;
use super::{Ctx, Operation, Outcome, Trail};
use crate::backup::{
    BackupError, BackupProvider, BackupStore, Manifest, Marker, RestoreFailure, RestoreInput,
    RestoreState, RollbackOutcome, identity, store,
};
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

/// The command that restores `id` into `environment` again.
#[must_use]
pub fn retry_command(environment: &str, id: &str, other_database: bool) -> String {
    let other = if other_database {
        " --from-other-database"
    } else {
        ""
    };
    format!("dbdeploy rollback {environment} --to {id}{other}")
}

/// Refuses a backup that cannot be restored into this environment's database: another
/// engine, another database (unless `other_database`), or a manifest whose schema text does
/// not match its own fingerprint (verification would compare against garbage).
///
/// # Errors
/// [`BackupError::Mismatch`], [`BackupError::OtherDatabase`], [`BackupError::Untrusted`].
async fn admissible<D: Database>(
    db: &mut D,
    env: &EnvSettings,
    store: &BackupStore,
    manifest: &Manifest,
    other_database: bool,
) -> Result<(), BackupError> {
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
    let here = identity::read(db, &env.target).await?;
    if !other_database && !store.is_mine(manifest, &here) {
        return Err(store.other_database(manifest, &here));
    }
    if crate::schema::Snapshot::from_text(manifest.schema.clone()).hash
        != manifest.schema_fingerprint
    {
        return Err(BackupError::Untrusted {
            path: store.dir.join(format!("{}.json", manifest.id)),
            reason: "its schema text does not match its schema fingerprint".into(),
        });
    }
    Ok(())
}

/// Restores `manifest`'s backup (its data file already opened and checked as `file`) into
/// the environment's database, then verifies the result against `manifest`. The restore is
/// recorded as unfinished in the database before it changes anything. `handler` is `None`
/// for an external tool: only the schema is compared then.
///
/// # Errors
/// A missing tool, a failed or interrupted restore (saying what it left), or a restore that
/// does not verify.
async fn restore<D: Database>(
    db: &mut D,
    env: &EnvSettings,
    handler: Option<&dyn Handler>,
    manifest: &Manifest,
    file: Option<&std::fs::File>,
    retry: &str,
) -> Result<Restored, BackupError> {
    let (provider, store) = provider(env)?;
    provider.preflight(db).await?;
    let mut verified = Vec::new();
    if manifest.sha256.is_some() {
        verified.push("backup file sha256 matches its manifest".to_owned());
    }
    let state = if provider.atomic_restore() {
        "the restore runs in one transaction: unless it committed, the database is as it was before it"
    } else {
        "the restore had started: the database may be partly restored"
    };
    let mut marker = Marker::begin(
        db,
        &env.name,
        env.target.describe(),
        &manifest.id,
        manifest.migrations.clone(),
        state,
        retry,
    )
    .await?;
    let input = RestoreInput {
        id: &manifest.id,
        path: manifest.file_path(&store.dir).unwrap_or_else(|| {
            store
                .dir
                .join(format!("{}.{}", manifest.id, provider.extension()))
        }),
        file,
    };
    let progress = crate::output::progress::start(
        "restore",
        provider.name(),
        crate::backup::postgres::restored_bytes,
    );
    let restored = provider.restore(db, &input, &mut marker).await;
    drop(progress);
    match restored {
        Ok(()) => {
            crate::backup::marker::resolve_all(db)
                .await
                .map_err(|e| BackupError::Failed {
                    what: "removing the record of the restore in progress".into(),
                    message: e.to_string(),
                })?;
        }
        Err(stopped) => {
            if stopped.state == RestoreState::Unchanged {
                let _ = marker.clear(db).await;
            }
            return Err(BackupError::Restore(Box::new(RestoreFailure::new(
                stopped,
                &manifest.id,
                &env.name,
                retry.to_owned(),
            ))));
        }
    }
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
    let retry = retry_command(&cx.env.name, &manifest.id, false);
    // The manifest is the one this run wrote before the deploy, held in memory: the restore
    // is verified against the state taken before the deploy, not against the folder.
    let restored = match provider(cx.env) {
        Ok((_, store)) => match admissible(db, cx.env, &store, &manifest, false).await {
            Ok(()) => match store.open_verified(&manifest).await {
                Ok(file) => {
                    restore(db, cx.env, cx.handler(), &manifest, file.as_ref(), &retry).await
                }
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    };
    match restored {
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
            RollbackOutcome::restored(&manifest.id, restored.verified)
        }
        Err(e) => {
            cx.step("rollback", Outcome::Failed, e.to_string());
            RollbackOutcome::failed(&manifest.id, e.to_string())
        }
    }
}

/// `dbdeploy rollback ENV [--to ID]`: restores a backup of this environment's database (the
/// newest by default; another database's only with `--from-other-database`), checked against
/// its manifest before anything is touched, then verifies it. Needs no migrations folder.
pub struct Restore {
    /// Where backups are kept.
    pub store: BackupStore,
    /// The backup asked for; the newest of this database's when `None`.
    pub to: Option<String>,
    /// `--from-other-database`: another database's (or environment's) backup may be restored.
    pub from_other_database: bool,
    /// The backup chosen under the lock, for the report.
    pub chosen: std::sync::OnceLock<Manifest>,
}

/// What approval of a restore covers.
#[derive(Debug)]
pub struct RestorePlan {
    /// The backup.
    pub manifest: Manifest,
    /// Its data file, opened and checked against the manifest: what the restore reads.
    pub file: Option<std::fs::File>,
    /// Migrations applied now (for the summary).
    pub applied_now: usize,
    /// Whether it was taken from another database or environment.
    pub foreign: bool,
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
        let here = identity::read(db, &cx.env.target).await?;
        let m = self
            .store
            .find(self.to.as_deref(), &here, self.from_other_database)?;
        let _ = self.chosen.set(m.clone());
        trail.recorded = Some(m.migrations.clone());
        admissible(db, cx.env, &self.store, &m, self.from_other_database).await?;
        let foreign = !self.store.is_mine(&m, &here);
        let file = self.store.open_verified(&m).await?;
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
        if foreign {
            cx.reporter.event(super::Event::Warning(format!(
                "--from-other-database: {}",
                self.store.other_database(&m, &here)
            )));
        }
        let applied_now = super::verify::read_records(db, cx.handler())
            .await?
            .iter()
            .filter(|r| r.state == RecordState::Applied)
            .count();
        Ok(RestorePlan {
            manifest: m,
            file,
            applied_now,
            foreign,
        })
    }

    fn summary(&self, cx: &Ctx<'_>, plan: &RestorePlan) -> Summary {
        let m = &plan.manifest;
        let mut notes = Vec::new();
        if plan.foreign {
            notes.push(format!(
                "this backup was taken from another database or environment ({})",
                m.database
                    .as_ref()
                    .map_or_else(|| "not recorded".to_owned(), ToString::to_string)
            ));
        }
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
        approved: Approved<RestorePlan>,
        trail: &mut Trail,
    ) -> Result<Vec<String>, Error> {
        let plan = approved.into_plan();
        let m = &plan.manifest;
        trail.touched = true;
        let started = Instant::now();
        let retry = retry_command(&cx.env.name, &m.id, plan.foreign);
        let restored = restore(db, cx.env, cx.handler(), m, plan.file.as_ref(), &retry).await;
        let restored = match restored {
            Ok(r) => r,
            Err(e) => {
                trail.rollback = Some(RollbackOutcome::failed(&m.id, e.to_string()));
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
        trail.rollback = Some(RollbackOutcome::restored(&m.id, restored.verified.clone()));
        Ok(restored.verified)
    }
}
