//! Step 8: the backup. Taken after approval and only when something is to be changed, on the
//! run's own connection while it holds the deploy lock, so the copy, its manifest (migrations
//! applied, schema fingerprint) and the database agree. `dbdeploy backup` is the
//! [`BackupNow`] operation: the same pipeline with this step as its whole work.

use std::time::Instant;

use chrono::Utc;

use super::approve::{Approved, Summary};
use super::event::duration;
use super::{Ctx, Event, Operation, Outcome, RunOptions, Trail};
use crate::backup::{BackupError, BackupProvider, BackupStore, Manifest, Provider, store};
use crate::engine::Database;
use crate::error::Error;
use crate::handler::Handler;
use crate::settings::EnvSettings;

/// What the backup step did.
#[derive(Debug, Clone)]
pub enum BackupStatus {
    /// The environment does not ask for backups.
    NotConfigured,
    /// `--skip-backup` was given.
    Skipped,
    /// A backup was made.
    Created(Box<Created>),
}

/// A backup that was made, and what retention deleted.
#[derive(Debug, Clone)]
pub struct Created {
    /// Its manifest.
    pub manifest: Manifest,
    /// Its folder.
    pub dir: std::path::PathBuf,
    /// Older backups deleted by `keep`.
    pub pruned: Vec<String>,
}

impl BackupStatus {
    /// The id of the backup made, if any.
    #[must_use]
    pub fn id(&self) -> Option<&str> {
        match self {
            BackupStatus::Created(c) => Some(&c.manifest.id),
            _ => None,
        }
    }
}

/// The provider and store of an environment.
///
/// # Errors
/// When the URL cannot be turned into tool settings.
pub fn provider(env: &EnvSettings) -> Result<(Provider, BackupStore), BackupError> {
    let provider = Provider::for_target(&env.target, &env.backup, &env.name, &env.working_dir)?;
    Ok((
        provider,
        BackupStore::new(env.backup.dir.clone(), &env.name),
    ))
}

/// Makes a backup now: reads the tracking table and the schema for the manifest, writes the
/// copy (partial files are removed on failure), then applies retention. `handler` is `None`
/// for an external tool, whose history the manifest cannot list.
///
/// # Errors
/// Missing tools, a failed dump, a full disk; nothing is left behind.
pub async fn create<D: Database>(
    db: &mut D,
    env: &EnvSettings,
    handler: Option<&dyn Handler>,
    reason: &str,
) -> Result<Created, BackupError> {
    let (provider, store) = provider(env)?;
    let tool = provider.preflight(db).await?;
    let failed = |what: &str, e: &dyn std::fmt::Display| BackupError::Failed {
        what: what.to_owned(),
        message: e.to_string(),
    };
    let records = super::verify::read_records(db, handler)
        .await
        .map_err(|e| failed("reading the tracking table", &e))?;
    let schema = crate::schema::snapshot(db)
        .await
        .map_err(|e| failed("reading the schema", &e))?;
    let server_version = db
        .server_version()
        .await
        .map_err(|e| failed("reading the server version", &e))?;
    let database = crate::backup::identity::read(db, &env.target).await?;
    let started = Instant::now();
    let created_at = Utc::now();
    let reservation =
        store.reserve(created_at, provider.extension(), provider.names().directory)?;
    let partial = reservation.partial.clone();
    let progress = crate::output::progress::start("backup", provider.name(), move || {
        crate::backup::dump_dir::bytes_in(&partial)
    });
    let created = provider
        .create(db, &reservation.id, &reservation.partial, &reservation.data)
        .await;
    drop(progress);
    let written = match created {
        Ok(w) => w,
        Err(e) => {
            store.abandon(reservation);
            return Err(e);
        }
    };
    let has_file = written.size.is_some();
    let manifest = Manifest {
        id: reservation.id.clone(),
        environment: env.name.clone(),
        engine: env.target.dialect().name().to_owned(),
        database: Some(database.clone()),
        server_version,
        provider: format!("{} ({tool})", provider.name()),
        file: has_file.then(|| {
            reservation
                .file
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default()
        }),
        size_bytes: written.size,
        sha256: written.sha256,
        migration_tool: env.tool.as_str().to_owned(),
        migrations: records
            .iter()
            .filter(|r| r.state == crate::migration::RecordState::Applied)
            .map(|r| r.name.clone())
            .collect(),
        tracking_digest: store::tracking_digest(&records),
        schema_fingerprint: schema.hash,
        schema: schema.text,
        reason: reason.to_owned(),
        dbdeploy_version: env!("CARGO_PKG_VERSION").to_owned(),
        created_at,
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    };
    if let Err(e) = store.commit(&reservation, &manifest, has_file) {
        store.abandon(reservation);
        return Err(e);
    }
    drop(reservation);
    let pruned = store.prune(env.backup.keep, &manifest.id, &database)?;
    Ok(Created {
        manifest,
        dir: store.dir,
        pruned,
    })
}

/// Step 8: a backup when the environment requires one, unless `--skip-backup`.
///
/// # Errors
/// A backup that cannot be made stops the run before any change.
pub async fn step<D: Database>(
    cx: &Ctx<'_>,
    db: &mut D,
    run_id: &str,
) -> Result<BackupStatus, Error> {
    if !cx.env.backup_before_migrate {
        cx.step(
            "backup",
            Outcome::Skipped,
            "not required for this environment".into(),
        );
        return Ok(BackupStatus::NotConfigured);
    }
    refuse_skip(cx.env, cx.options)?;
    if cx.options.skip_backup {
        cx.step(
            "backup",
            Outcome::Warning,
            "skipped (--skip-backup): there is no way back if this deploy fails".into(),
        );
        return Ok(BackupStatus::Skipped);
    }
    let started = Instant::now();
    match create(
        db,
        cx.env,
        cx.handler(),
        &format!("before deploy run {run_id}"),
    )
    .await
    {
        Ok(created) => {
            let m = &created.manifest;
            let size = m.size_bytes.map_or_else(
                || "kept by the backup command".to_owned(),
                crate::backup::human_bytes,
            );
            cx.step(
                "backup",
                Outcome::Ok,
                format!(
                    "{} ({size}) in {} ({})",
                    m.id,
                    created.dir.display(),
                    duration(started.elapsed())
                ),
            );
            if !created.pruned.is_empty() {
                cx.reporter.event(Event::Note(format!(
                    "retention (keep {}): deleted {}",
                    cx.env.backup.keep,
                    created.pruned.join(", ")
                )));
            }
            Ok(BackupStatus::Created(Box::new(created)))
        }
        Err(e) => {
            cx.step("backup", Outcome::Failed, e.to_string());
            if cx.env.require_backup {
                return Err(BackupError::Required {
                    environment: cx.env.name.clone(),
                    cause: Box::new(e),
                }
                .into());
            }
            Err(e.into())
        }
    }
}

/// `--skip-backup` where `require_backup = true`: refused before anything runs (and again by
/// the backup step, so that no path reaches a change without the backup).
///
/// # Errors
/// [`BackupError::SkipRefused`] (exit 2).
pub fn refuse_skip(env: &EnvSettings, options: &RunOptions) -> Result<(), Error> {
    if env.require_backup && options.skip_backup {
        return Err(BackupError::SkipRefused {
            environment: env.name.clone(),
        }
        .into());
    }
    Ok(())
}

/// The backup line of an approval summary.
#[must_use]
pub fn safeguard(env: &EnvSettings, options: &RunOptions) -> String {
    if options.skip_backup {
        "NO backup (--skip-backup)".to_owned()
    } else if env.backup_before_migrate {
        format!(
            "backup before apply{} (kept: {}) · automatic rollback on failure {}",
            if env.require_backup { ", required" } else { "" },
            env.backup.keep,
            if env.rollback_on_failure { "on" } else { "off" }
        )
    } else {
        "no backup (not required)".to_owned()
    }
}

/// `dbdeploy backup ENV`: a backup now, under the deploy lock so the copy and its manifest
/// agree with the tracking table. Works without the migrations folder.
pub struct BackupNow;

impl Operation for BackupNow {
    type Plan = ();
    type Done = Created;

    const COMMAND: &'static str = "backup";
    const OPERATION: &'static str = "create-backup";

    async fn plan<D: Database>(
        &self,
        _cx: &Ctx<'_>,
        _db: &mut D,
        trail: &mut Trail,
    ) -> Result<(), Error> {
        trail.changes_schema = false;
        Ok(())
    }

    fn summary(&self, _cx: &Ctx<'_>, _plan: &()) -> Summary {
        // A backup reads the database and writes a file: nothing to approve.
        Summary::NotNeeded
    }

    async fn apply<D: Database>(
        &self,
        cx: &Ctx<'_>,
        db: &mut D,
        _approved: Approved<()>,
        trail: &mut Trail,
    ) -> Result<Created, Error> {
        match create(db, cx.env, cx.handler(), "manual").await {
            Ok(created) => {
                cx.step(
                    "backup",
                    Outcome::Ok,
                    format!("{} in {}", created.manifest.id, created.dir.display()),
                );
                trail.backup = Some(BackupStatus::Created(Box::new(created.clone())));
                Ok(created)
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// Free space needed for a backup: the database's size, a safe upper bound for every provider.
pub async fn expected_size<D: Database>(db: &mut D, env: &EnvSettings) -> Option<u64> {
    use crate::engine::{ColKind, Dialect, Stmt};
    let sql = match db.dialect() {
        Dialect::Postgres => "SELECT pg_database_size(current_database())::bigint",
        Dialect::MySql => {
            "SELECT CAST(COALESCE(SUM(data_length + index_length), 0) AS SIGNED) FROM information_schema.tables WHERE table_schema = DATABASE()"
        }
        Dialect::Sqlite => {
            return match &env.target {
                crate::engine::Target::Sqlite { path } => match std::fs::metadata(path) {
                    Ok(m) => Some(m.len()),
                    // Created empty when the run takes the deploy lock.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some(0),
                    Err(_) => None,
                },
                _ => None,
            };
        }
    };
    let rows = db.fetch(&Stmt::raw(sql), &[ColKind::Int]).await.ok()?;
    rows.first()?
        .first()?
        .as_int()
        .and_then(|n| u64::try_from(n).ok())
}
