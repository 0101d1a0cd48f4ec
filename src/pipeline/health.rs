//! Steps 3 and 10: health checks. One implementation of named checks — connectivity, tracking
//! table, failed migrations, checksums, missing files, schema drift, disk space, backup tools,
//! application command — shared by `dbdeploy health` and the pre/post steps of `migrate`.
//! Each check reports passed / failed / warning / skipped with a reason.

use std::time::Duration;

use serde::Serialize;

use super::{Context, RunReport, read_history};
use crate::backup::{BackupError, BackupProvider};
use crate::config::Mode;
use crate::engine::{ConnectOptions, Database, Target};
use crate::error::Error;
use crate::migration::AppliedRecord;
use crate::output::{Event, Outcome};
use crate::pipeline::pending::DriftError;
use crate::schema::stamp::{self, Observed};
use crate::settings::EnvSettings;

/// Tables dbdeploy itself owns, ignored when deciding whether a schema is empty.
pub const OWN_TABLES: &[&str] = &[super::log::HISTORY_TABLE, crate::handler::unfinished::TABLE];

/// How long the application check command may run.
const APP_CHECK_TIMEOUT: Duration = Duration::from_secs(120);

/// The result of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckStatus {
    /// It passed.
    Passed,
    /// It failed.
    Failed,
    /// It passed with something worth attention.
    Warning,
    /// It did not run, for the stated reason.
    Skipped,
}

/// One named check.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// `connectivity`, `tracking_table`, ...
    pub name: &'static str,
    /// What happened.
    pub status: CheckStatus,
    /// Why, in one line.
    pub detail: String,
}

impl Check {
    fn new(name: &'static str, status: CheckStatus, detail: impl Into<String>) -> Self {
        Self {
            name,
            status,
            detail: detail.into(),
        }
    }

    /// The check as a progress line.
    pub fn report(&self, reporter: &dyn crate::output::Reporter) {
        let outcome = match self.status {
            CheckStatus::Passed => Outcome::Ok,
            CheckStatus::Failed => Outcome::Failed,
            CheckStatus::Warning => Outcome::Warning,
            CheckStatus::Skipped => Outcome::Skipped,
        };
        reporter.event(Event::Step {
            name: self.name,
            outcome,
            detail: self.detail.clone(),
        });
    }
}

/// The schema changed outside dbdeploy since the last run that recorded it.
#[derive(Debug, thiserror::Error)]
#[error(
    "the schema of `{environment}` changed since the last deploy (run {run}, {at}): {}",
    changes.iter().take(5).cloned().collect::<Vec<_>>().join("; ")
)]
pub struct SchemaDriftError {
    /// The environment.
    pub environment: String,
    /// The run that recorded the baseline.
    pub run: String,
    /// When.
    pub at: String,
    /// What changed, one line per table object.
    pub changes: Vec<String>,
}

impl SchemaDriftError {
    /// What to do.
    #[must_use]
    pub fn hints(&self) -> Vec<String> {
        let env = &self.environment;
        vec![
            format!("see the whole difference with `dbdeploy diff {env}`"),
            "capture the change in a migration (or undo it by hand), so that the migrations describe the database again".into(),
            format!(
                "or deploy anyway with `dbdeploy migrate {env} --allow-drift`: the schema as it is becomes the new baseline"
            ),
            "nothing was changed".into(),
        ]
    }
}

/// The health check after the deploy failed.
#[derive(Debug, thiserror::Error)]
#[error("the health check after the deploy failed: {check}: {detail}")]
pub struct HealthAfterError {
    /// The environment.
    pub environment: String,
    /// The failed check.
    pub check: String,
    /// Why.
    pub detail: String,
    /// What the automatic restore did.
    pub rollback: Option<super::rollback::RollbackOutcome>,
}

impl HealthAfterError {
    /// What to do.
    #[must_use]
    pub fn hints(&self) -> Vec<String> {
        let env = &self.environment;
        let id = self.rollback.as_ref().and_then(|r| r.backup_id.clone());
        match (&self.rollback, id) {
            (Some(r), Some(id)) if r.succeeded() => vec![
                format!("the database was restored from backup {id} and verified: it is as it was before this deploy"),
                format!("find out why `{}` failed, then run `dbdeploy migrate {env}` again", self.check),
            ],
            (Some(r), Some(id)) if r.initiated => vec![
                format!("the automatic restore from backup {id} did not complete ({}); inspect the database", r.status),
                format!("retry with `dbdeploy rollback {env} --to {id}`"),
            ],
            (_, Some(id)) => vec![
                "the migrations are applied".into(),
                format!("to return to the state before this deploy: `dbdeploy rollback {env} --to {id}`"),
            ],
            (_, None) => vec![
                "the migrations are applied and there is no backup from this run; fix forward with a new migration, or restore your own backup".into(),
            ],
        }
    }
}

/// Connects and reads the server version.
///
/// # Errors
/// When the server cannot be reached within the configured wait.
pub async fn connect<D: Database>(
    ctx: &Context<'_>,
    read_only: bool,
) -> Result<(D, String), Error> {
    connect_common(&ctx.common(), read_only).await
}

/// [`connect`] for any pipeline.
///
/// # Errors
/// When the server cannot be reached within the configured wait.
pub async fn connect_common<D: Database>(
    ctx: &super::Common<'_>,
    read_only: bool,
) -> Result<(D, String), Error> {
    let opts = ConnectOptions {
        wait: ctx.env.connect_wait,
        lock_wait: ctx.env.lock_timeout,
        read_only,
    };
    let mut db = match D::connect(&ctx.env.target, opts).await {
        Ok(db) => db,
        Err(e) => {
            ctx.step(
                "connect",
                Outcome::Failed,
                "cannot reach the database".into(),
            );
            return Err(e.into());
        }
    };
    let version = db.server_version().await?;
    let ro = if read_only { ", read-only session" } else { "" };
    ctx.step("connect", Outcome::Ok, format!("{version}{ro}"));
    Ok((db, version))
}

/// How many tables a "not empty" message names.
const TABLES_SHOWN: usize = 5;

/// Some tables of the schema that are not dbdeploy's own: none when it is empty, else the
/// first few by name for the message, without listing thousands of tables on every run.
///
/// # Errors
/// A database error listing them.
pub async fn foreign_tables<D: Database>(
    db: &mut D,
) -> Result<Vec<String>, crate::engine::DbError> {
    // Enough rows that, with dbdeploy's own tables among them, a few others remain.
    let tables = db.some_user_tables(TABLES_SHOWN + OWN_TABLES.len()).await?;
    Ok(tables
        .into_iter()
        .filter(|t| !OWN_TABLES.contains(&t.as_str()))
        .take(TABLES_SHOWN)
        .collect())
}

/// The checks on the tracking table against the files: present, none failed, unchanged, none
/// missing. Returns the checks and the drift they amount to, if any.
pub fn history_checks(
    ctx: &Context<'_>,
    tables: &[String],
    records: Option<&[AppliedRecord]>,
) -> (Vec<Check>, Option<DriftError>) {
    let table = ctx.handler.table();
    let Some(records) = records else {
        let skipped = |name| Check::new(name, CheckStatus::Skipped, format!("no `{table}` table"));
        if tables.is_empty() {
            return (
                vec![
                    Check::new(
                        "tracking_table",
                        CheckStatus::Passed,
                        format!("no `{table}` yet: empty database (first deploy)"),
                    ),
                    skipped("failed_migrations"),
                    skipped("checksums"),
                    skipped("missing_files"),
                ],
                None,
            );
        }
        let drift = DriftError::NotEmpty {
            environment: ctx.env.name.clone(),
            table,
            tables: tables.iter().take(TABLES_SHOWN).cloned().collect(),
        };
        return (
            vec![
                Check::new("tracking_table", CheckStatus::Failed, drift.to_string()),
                skipped("failed_migrations"),
                skipped("checksums"),
                skipped("missing_files"),
            ],
            Some(drift),
        );
    };
    let plan = super::pending::plan(ctx.set, records, ctx.handler);
    let mut checks = vec![Check::new(
        "tracking_table",
        CheckStatus::Passed,
        format!("`{table}`: {} applied", plan.applied.len()),
    )];
    let names = |v: &[String]| v.join(", ");
    let failed: Vec<String> = plan.failed.iter().map(|(n, _)| n.clone()).collect();
    checks.push(if failed.is_empty() {
        Check::new("failed_migrations", CheckStatus::Passed, "none failed")
    } else {
        Check::new(
            "failed_migrations",
            CheckStatus::Failed,
            format!(
                "not finished (failed, or being applied right now): {}",
                names(&failed)
            ),
        )
    });
    checks.push(if plan.modified.is_empty() {
        Check::new(
            "checksums",
            CheckStatus::Passed,
            "applied migrations unchanged on disk",
        )
    } else {
        Check::new(
            "checksums",
            CheckStatus::Failed,
            format!("edited after being applied: {}", names(&plan.modified)),
        )
    });
    checks.push(if plan.missing.is_empty() {
        Check::new(
            "missing_files",
            CheckStatus::Passed,
            "every applied migration is on disk",
        )
    } else {
        Check::new(
            "missing_files",
            CheckStatus::Failed,
            format!("applied but missing on disk: {}", names(&plan.missing)),
        )
    });
    (checks, plan.drift(&ctx.env.name))
}

/// The outcome of the drift check.
#[derive(Debug)]
pub struct DriftCheck {
    /// The check as reported.
    pub check: Check,
    /// The drift, when it is one (not in the repairs after a failed run).
    pub drift: Option<SchemaDriftError>,
    /// The schema as the check saw it, when it was compared with a baseline.
    pub seen: Option<Observed>,
}

impl DriftCheck {
    fn skipped(detail: &str) -> Self {
        Self {
            check: Check::new("schema_drift", CheckStatus::Skipped, detail),
            drift: None,
            seen: None,
        }
    }
}

/// Compares the live schema with the one recorded by the last deploy. When the catalog stamp
/// is the one recorded with the baseline, nothing changed and the schema is not read.
///
/// # Errors
/// Database errors reading the catalogs.
pub async fn schema_drift<D: Database>(db: &mut D, env: &EnvSettings) -> Result<DriftCheck, Error> {
    let Some(base) = super::log::baseline(db).await? else {
        return Ok(DriftCheck::skipped(
            "no schema recorded yet (recorded after the next successful deploy)",
        ));
    };
    let passed = |base: &super::log::Baseline| {
        Check::new(
            "schema_drift",
            CheckStatus::Passed,
            format!("schema matches the last deploy ({})", base.at),
        )
    };
    // Before any full read: a change made during it must not hide behind this stamp.
    let stamp = stamp::read_or_none(db).await;
    if stamp.is_some() && stamp == base.stamp {
        tracing::debug!(
            "schema unchanged since run {}: the catalog stamp is the recorded one",
            base.run_id
        );
        return Ok(DriftCheck {
            check: passed(&base),
            drift: None,
            seen: Some(Observed {
                hash: base.hash,
                text: None,
                stamp,
            }),
        });
    }
    let recorded = super::log::recorded_text(db, &base.hash)
        .await?
        .unwrap_or_default();
    if crate::schema::format_version(&recorded) != Some(crate::schema::FORMAT_VERSION) {
        return Ok(DriftCheck::skipped(
            "the recorded schema is from another dbdeploy version (re-recorded after the next deploy)",
        ));
    }
    let live = crate::schema::snapshot(db).await?;
    let seen = Some(Observed {
        hash: live.hash.clone(),
        text: Some(live.text.clone()),
        stamp,
    });
    if live.hash == base.hash {
        return Ok(DriftCheck {
            check: passed(&base),
            drift: None,
            seen,
        });
    }
    let changes: Vec<String> = crate::schema::changes(&recorded, &live.text)
        .iter()
        .map(ToString::to_string)
        .collect();
    let err = SchemaDriftError {
        environment: env.name.clone(),
        run: base.run_id.get(..8).unwrap_or(&base.run_id).to_owned(),
        at: base.at,
        changes,
    };
    if base.repairing {
        // After a run that failed part-way (or a resolve), the operator is told to repair by
        // hand; those repairs are not someone else's change.
        return Ok(DriftCheck {
            check: Check::new(
                "schema_drift",
                CheckStatus::Warning,
                format!(
                    "{err} — expected after the failed run since (repairs by hand); the next successful deploy records the new baseline"
                ),
            ),
            drift: None,
            seen,
        });
    }
    Ok(DriftCheck {
        check: Check::new("schema_drift", CheckStatus::Failed, err.to_string()),
        drift: Some(err),
        seen,
    })
}

/// Free space: the SQLite file's file system, and the backup folder against the expected size.
pub async fn disk_space<D: Database>(
    db: &mut D,
    env: &EnvSettings,
    backup_needed: bool,
) -> (Vec<Check>, Option<BackupError>) {
    let mut checks = Vec::new();
    let sqlite = matches!(env.target, Target::Sqlite { .. });
    // Only the SQLite file check and the backup check use the size, and on PostgreSQL it
    // costs a walk over every file of the database.
    let size = if sqlite || backup_needed {
        super::backup::expected_size(db, env).await
    } else {
        None
    };
    if let Target::Sqlite { path } = &env.target {
        checks.push(match (available(path), size) {
            (Some(free), Some(size)) if free < size => Check::new(
                "disk_space",
                CheckStatus::Warning,
                format!(
                    "{} free next to the database file ({}): a migration that rewrites a table may not fit",
                    crate::backup::human_bytes(free),
                    crate::backup::human_bytes(size)
                ),
            ),
            (Some(free), _) => Check::new(
                "disk_space",
                CheckStatus::Passed,
                format!(
                    "{} free next to the database file",
                    crate::backup::human_bytes(free)
                ),
            ),
            (None, _) => Check::new(
                "disk_space",
                CheckStatus::Skipped,
                "free space next to the database file cannot be read",
            ),
        });
    }
    if !backup_needed {
        checks.push(Check::new(
            "backup_space",
            CheckStatus::Skipped,
            "no backup required",
        ));
        return (checks, None);
    }
    let mut err = None;
    checks.push(match (available(&env.backup.dir), size) {
        (Some(free), Some(size)) if free < size => {
            let e = BackupError::NoSpace {
                dir: env.backup.dir.clone(),
                free,
                needed: size,
            };
            let c = Check::new("backup_space", CheckStatus::Failed, e.to_string());
            err = Some(e);
            c
        }
        (Some(free), Some(size)) => Check::new(
            "backup_space",
            CheckStatus::Passed,
            format!(
                "{} free for a backup of about {}",
                crate::backup::human_bytes(free),
                crate::backup::human_bytes(size)
            ),
        ),
        _ => Check::new(
            "backup_space",
            CheckStatus::Skipped,
            "the database size or the free space cannot be read",
        ),
    });
    (checks, err)
}

/// Free bytes on the file system that holds `path` (or its nearest existing parent).
fn available(path: &std::path::Path) -> Option<u64> {
    let mut p = path;
    loop {
        if p.exists() {
            return fs4::available_space(p).ok();
        }
        p = p.parent()?;
    }
}

/// The backup provider's tools, when a backup will be needed.
pub async fn backup_tools<D: Database>(
    db: &mut D,
    env: &EnvSettings,
    backup_needed: bool,
) -> (Check, Option<BackupError>) {
    if !backup_needed {
        return (
            Check::new("backup_tools", CheckStatus::Skipped, "no backup required"),
            None,
        );
    }
    let result = match super::backup::provider(env) {
        Ok((provider, _)) => provider.preflight(db).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(tool) => (Check::new("backup_tools", CheckStatus::Passed, tool), None),
        Err(e) => (
            Check::new("backup_tools", CheckStatus::Failed, e.to_string()),
            Some(e),
        ),
    }
}

/// Runs the environment's `health_command`.
pub async fn app_check(env: &EnvSettings) -> Check {
    let Some(command) = &env.health_command else {
        return Check::new(
            "health_command",
            CheckStatus::Skipped,
            "no health_command configured",
        );
    };
    let mut cmd = tokio::process::Command::new("sh");
    cmd.arg("-c")
        .arg(command)
        .current_dir(&env.working_dir)
        .env("DATABASE_URL", env.target.url_for_tools())
        .env("DBDEPLOY_ENVIRONMENT", &env.name);
    let run = crate::backup::process::run(cmd, "health_command", std::process::Stdio::null());
    match tokio::time::timeout(APP_CHECK_TIMEOUT, run).await {
        Ok(Ok(_)) => Check::new("health_command", CheckStatus::Passed, "exited 0"),
        Ok(Err(e)) => Check::new("health_command", CheckStatus::Failed, e.to_string()),
        Err(_) => Check::new(
            "health_command",
            CheckStatus::Failed,
            format!("did not finish within {} s", APP_CHECK_TIMEOUT.as_secs()),
        ),
    }
}

/// Whether this run will take a backup if something is pending.
#[must_use]
pub fn backup_needed(ctx: &Context<'_>) -> bool {
    ctx.common().backup_needed()
}

/// The pre-deploy checks of `migrate` (before the lock; schema drift is checked under it).
///
/// # Errors
/// [`DriftError`] when history and files disagree (unless reset in dev mode); a backup that
/// will be needed but cannot be made.
pub async fn check_before<D: Database>(
    ctx: &Context<'_>,
    db: &mut D,
    report: &mut RunReport,
) -> Result<(), Error> {
    if ctx.options.skip_health_check {
        report.health_before = Some("skipped");
        ctx.step("health", Outcome::Skipped, "--skip-health-check".into());
        if backup_needed(ctx) {
            let (check, err) = backup_tools(db, ctx.env, true).await;
            check.report(ctx.reporter);
            report.checks.push(check);
            if let Some(e) = err {
                return Err(e.into());
            }
        }
        return Ok(());
    }
    // Tables are listed before the history is read: a deploy creates its tracking table
    // before any other, so one running right now cannot make this database look foreign.
    let tables = foreign_tables(db).await?;
    let records = read_history(db, ctx.handler).await?;
    let (mut checks, drift) = history_checks(ctx, &tables, records.as_deref());
    // An unfinished row is also what a deploy running right now looks like (MySQL,
    // non-atomic migrations); it is judged again under the lock.
    for c in &mut checks {
        if c.name == "failed_migrations" && c.status == CheckStatus::Failed {
            c.status = CheckStatus::Warning;
            c.detail.push_str("; checked again under the lock");
        }
    }
    let needed = backup_needed(ctx);
    let (space, space_err) = disk_space(db, ctx.env, needed).await;
    checks.extend(space);
    let (tools, tools_err) = backup_tools(db, ctx.env, needed).await;
    checks.push(tools);
    let failed: Vec<&Check> = checks
        .iter()
        .filter(|c| c.status == CheckStatus::Failed)
        .collect();
    let warned: Vec<&Check> = checks
        .iter()
        .filter(|c| c.status == CheckStatus::Warning)
        .collect();
    if failed.is_empty() {
        report.health_before = Some("passed");
        for c in &warned {
            c.report(ctx.reporter);
        }
        let passed: Vec<&str> = checks
            .iter()
            .filter(|c| c.status == CheckStatus::Passed)
            .map(|c| c.name)
            .collect();
        let summary = match &records {
            None => format!(
                "empty database, no `{}` yet (first deploy)",
                ctx.handler.table()
            ),
            Some(_) => format!("{} checks passed", passed.len()),
        };
        ctx.step("health", Outcome::Ok, summary);
        report.checks = checks;
        return Ok(());
    }
    report.health_before = Some("failed");
    for c in &failed {
        c.report(ctx.reporter);
    }
    let history_failed = failed
        .iter()
        .any(|c| matches!(c.name, "tracking_table" | "checksums" | "missing_files"));
    report.checks = checks;
    let problem = match (history_failed, drift, tools_err, space_err) {
        (true, Some(drift), _, _) => drift,
        (_, _, Some(e), _) | (_, _, None, Some(e)) => return Err(e.into()),
        (_, Some(drift), None, None) => drift,
        (_, None, None, None) => {
            return Err(Error::Unavailable {
                message: "a pre-deploy health check failed".into(),
                hint: "see the failed check above; nothing was changed".into(),
            });
        }
    };
    if ctx.env.mode == Mode::Dev && ctx.interactive && !ctx.options.dry_run {
        ctx.reporter.event(Event::Warning(
            "in dev mode the database can be reset: every table is dropped and all migrations are applied again".into(),
        ));
        if super::approve::confirm("Reset the database? All data will be lost. (yes/no)").await? {
            db.reset().await?;
            for stmt in ctx.handler.drop_tracking(db.dialect()) {
                db.execute(&stmt).await?;
            }
            report.health_before = Some("reset");
            ctx.step(
                "reset",
                Outcome::Ok,
                "database emptied; every migration will be applied".into(),
            );
            return Ok(());
        }
    }
    Err(problem.into())
}
