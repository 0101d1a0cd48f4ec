//! The deploy pipeline. [`run`] is the only place the order of steps lives; each step is a
//! module that takes the context and returns a typed result or error.
//!
//! validate → context → health (pre) → lock → pending → preview | approve → backup → apply →
//! health (post) → verify → log. `--dry-run` is the same pipeline stopped after `pending`,
//! on a read-only session, without the lock. [`external`] runs the same steps around an
//! external tool's commands; the steps both share take a [`Common`].

pub mod apply;
pub mod approve;
pub mod backup;
pub mod external;
pub mod health;
pub mod log;
pub mod pending;
pub mod preview;
pub mod rollback;
pub mod validate;
pub mod verify;

use std::collections::HashMap;
use std::time::Instant;

use chrono::{DateTime, Utc};

use crate::engine::Database;
use crate::error::Error;
use crate::handler::Handler;
use crate::interrupt::{self, Interrupted};
use crate::migration::{AppliedRecord, Migration, MigrationSet};
use crate::output::{Event, Outcome, Reporter};
use crate::schema::stamp::Observed;
use crate::settings::EnvSettings;

/// Flags of `migrate`.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Preview only.
    pub dry_run: bool,
    /// Approve without asking.
    pub yes: bool,
    /// Skip the pre-deploy consistency checks.
    pub skip_health_check: bool,
    /// Deploy without the required backup.
    pub skip_backup: bool,
    /// Stop after this migration.
    pub to: Option<String>,
    /// Deploy even though the schema changed since the last deploy.
    pub allow_drift: bool,
}

/// Everything a step may read.
pub struct Context<'a> {
    /// The environment.
    pub env: &'a EnvSettings,
    /// The migration format.
    pub handler: &'static dyn Handler,
    /// The validated migrations.
    pub set: &'a MigrationSet,
    /// The flags.
    pub options: &'a RunOptions,
    /// A person can answer prompts.
    pub interactive: bool,
    /// Where events go.
    pub reporter: &'a dyn Reporter,
}

impl Context<'_> {
    fn step(&self, name: &str, outcome: Outcome, detail: String) {
        self.reporter.event(Event::Step {
            name,
            outcome,
            detail,
        });
    }

    /// The part of the context the steps shared with the external-tool pipeline read.
    #[must_use]
    pub fn common(&self) -> Common<'_> {
        Common {
            env: self.env,
            options: self.options,
            interactive: self.interactive,
            reporter: self.reporter,
            handler: Some(self.handler),
        }
    }
}

/// What the steps shared by every way of applying migrations read: the pipeline of a migrations
/// folder ([`Context`]) and the one around an external tool ([`external`]).
#[derive(Clone, Copy)]
pub struct Common<'a> {
    /// The environment.
    pub env: &'a EnvSettings,
    /// The flags.
    pub options: &'a RunOptions,
    /// A person can answer prompts.
    pub interactive: bool,
    /// Where events go.
    pub reporter: &'a dyn Reporter,
    /// The format whose tracking table backups record and restores verify; `None` for an
    /// external tool, whose history is its own.
    pub handler: Option<&'static dyn Handler>,
}

impl Common<'_> {
    fn step(&self, name: &str, outcome: Outcome, detail: String) {
        self.reporter.event(Event::Step {
            name,
            outcome,
            detail,
        });
    }

    /// Whether this run will take a backup if something is pending.
    #[must_use]
    pub fn backup_needed(&self) -> bool {
        self.env.backup_before_migrate && !self.options.skip_backup && !self.options.dry_run
    }
}

/// What a run did, also when it failed part-way.
#[derive(Debug)]
pub struct RunReport {
    /// Unique id of the run.
    pub run_id: String,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it ended.
    pub finished_at: DateTime<Utc>,
    /// The server version, once connected.
    pub server_version: Option<String>,
    /// `passed`, `failed`, `skipped`, `reset`.
    pub health_before: Option<&'static str>,
    /// `passed`, `failed`.
    pub health_after: Option<&'static str>,
    /// Names of pending migrations selected for this run.
    pub pending: Vec<String>,
    /// Dry-run previews.
    pub preview: Vec<preview::MigrationPreview>,
    /// Migrations applied.
    pub applied: Vec<apply::AppliedMigration>,
    /// What the backup step did.
    pub backup: Option<backup::BackupStatus>,
    /// The deploy lock was taken (the database may have been written).
    pub locked: bool,
    /// Verification summary.
    pub verified: Option<String>,
    /// Warnings raised along the way.
    pub warnings: Vec<String>,
    /// The pre-deploy checks.
    pub checks: Vec<health::Check>,
    /// The post-deploy checks.
    pub checks_after: Vec<health::Check>,
    /// What the automatic rollback did, when a failure made it a question.
    pub rollback: Option<rollback::RollbackOutcome>,
    /// What an external tool's commands did (`migration_tool = "command"`).
    pub external: Option<external::ExternalRun>,
    /// The schema as the drift check saw it under the lock.
    pub schema_seen: Option<Observed>,
}

impl RunReport {
    fn new() -> Self {
        let now = Utc::now();
        Self {
            run_id: uuid::Uuid::new_v4().to_string(),
            started_at: now,
            finished_at: now,
            server_version: None,
            health_before: None,
            health_after: None,
            pending: Vec::new(),
            preview: Vec::new(),
            applied: Vec::new(),
            backup: None,
            locked: false,
            verified: None,
            warnings: Vec::new(),
            checks: Vec::new(),
            checks_after: Vec::new(),
            rollback: None,
            external: None,
            schema_seen: None,
        }
    }

    /// The migrations this run applied: the ones dbdeploy applied, or those an external tool
    /// no longer reports pending.
    #[must_use]
    pub fn applied_names(&self) -> Vec<String> {
        match &self.external {
            Some(x) => x.applied.clone(),
            None => self.applied.iter().map(|a| a.name.clone()).collect(),
        }
    }

    /// Seconds from start to end.
    #[must_use]
    pub fn duration_seconds(&self) -> f64 {
        #[allow(clippy::cast_precision_loss)]
        let ms = (self.finished_at - self.started_at).num_milliseconds() as f64;
        ms / 1000.0
    }
}

/// Reads the tracking table of a format, or nothing for an external tool (`None`), whose
/// history is its own.
///
/// # Errors
/// Database errors and rows the format cannot read.
pub async fn read_records<D: Database>(
    db: &mut D,
    handler: Option<&dyn Handler>,
) -> Result<Vec<AppliedRecord>, Error> {
    match handler {
        Some(h) => Ok(read_history(db, h).await?.unwrap_or_default()),
        None => Ok(Vec::new()),
    }
}

/// Reads the tracking table; `None` when it does not exist yet.
///
/// # Errors
/// Database errors and rows the format cannot read.
pub async fn read_history<D: Database>(
    db: &mut D,
    handler: &dyn Handler,
) -> Result<Option<Vec<AppliedRecord>>, Error> {
    if !tracking_table_exists(db, handler).await? {
        return Ok(None);
    }
    // Another tool's table of the same name must be reported, not misread.
    let columns = db.table_columns(handler.table()).await?;
    handler.check_table(&columns)?;
    let (stmt, cols) = handler.select_history(db.dialect());
    let mut rows = db.fetch(&stmt, &cols).await?;
    if let Some((table, stmt)) = handler.companion(db.dialect())
        && db.table_exists(table).await?
    {
        rows.extend(db.fetch(&stmt, &cols).await?);
    }
    Ok(Some(handler.parse_history(rows)?))
}

/// Whether the format's tracking table exists, in its own schema when it has one.
///
/// # Errors
/// Database errors.
pub async fn tracking_table_exists<D: Database>(
    db: &mut D,
    handler: &dyn Handler,
) -> Result<bool, Error> {
    let schema = handler.table_schema(db.dialect());
    Ok(db.table_exists_in(schema, handler.table()).await?)
}

/// Runs `migrate` against a database of engine `D`.
pub async fn run<D: Database>(
    ctx: &Context<'_>,
    operation: &str,
) -> (RunReport, Result<(), Error>) {
    let mut report = RunReport::new();
    // From here on Ctrl-C stops the run at its next safe point, and the run is still logged.
    let _guard = (!ctx.options.dry_run).then(interrupt::Guard::new);
    for w in &ctx.set.warnings {
        ctx.reporter.event(Event::Warning(w.clone()));
        report.warnings.push(w.clone());
    }
    ctx.step(
        "validate",
        Outcome::Ok,
        format!(
            "{} migrations in {}",
            ctx.set.migrations.len(),
            ctx.set.dir.display()
        ),
    );
    let mut db: Option<D> = None;
    let result = connected(ctx, &mut db, &mut report).await;
    conclude(&ctx.common(), operation, db, &mut report, &result).await;
    (report, result)
}

/// The end of every run, whatever happened: the schema baseline, the history row in the
/// database and the line in the audit file (not for a dry run), then the connection closes.
async fn conclude<D: Database>(
    c: &Common<'_>,
    operation: &str,
    mut db: Option<D>,
    report: &mut RunReport,
    result: &Result<(), Error>,
) {
    report.finished_at = Utc::now();
    let cancelled = matches!(result, Err(Error::Approval(_)));
    // The schema at the end of a run that may have changed it becomes the drift baseline; a
    // run refused before any change must not record one, or it would bless the drift it found.
    let may_have_changed = match result {
        Ok(()) => true,
        Err(e) => e.class() != crate::error::ErrorClass::PreDeployment,
    };
    // Only runs that could change the database leave a row in it; a refused or cancelled run
    // changes nothing there, and is in the audit file.
    let history = !c.options.dry_run && report.locked && !cancelled;
    if history && let Some(db) = db.as_mut() {
        // A failure here is the history write's failure too, which reports it.
        let _ = log::prepare_history(db).await;
    }
    let mut schema = None;
    if !c.options.dry_run
        && report.locked
        && may_have_changed
        && let Some(db) = db.as_mut()
    {
        match schema_after(db, report, result).await {
            Ok(s) => schema = Some(s),
            Err(e) => report
                .warnings
                .push(format!("the schema fingerprint was not recorded: {e}")),
        }
    }
    if !c.options.dry_run {
        let status = match (result, cancelled) {
            (Ok(()), _) => "success",
            (Err(Error::Interrupted(_)), _) => "interrupted",
            (Err(_), true) => "cancelled",
            (Err(_), false) => "error",
        };
        let record = log::RunRecord {
            run_id: &report.run_id,
            environment: &c.env.name,
            operation,
            status,
            migrations: report.applied_names(),
            started_at: report.started_at,
            finished_at: report.finished_at,
            error: result.as_ref().err(),
            target: c.env.target.describe(),
            schema: schema.as_ref(),
            backup_id: report.backup.as_ref().and_then(backup::BackupStatus::id),
            rollback_status: report.rollback.as_ref().map(|r| r.status.as_str()),
        };
        let mut logged = Vec::new();
        if let Some(db) = db.as_mut()
            && history
        {
            match log::insert_history(db, &record).await {
                Ok(()) => logged.push(log::HISTORY_TABLE.to_owned()),
                Err(w) => report.warnings.push(w),
            }
        }
        match log::write_audit(&c.env.audit_file, &record) {
            Ok(()) => logged.push(c.env.audit_file.display().to_string()),
            Err(w) => report.warnings.push(w),
        }
        if logged.is_empty() {
            c.step("log", Outcome::Warning, "run not recorded".into());
        } else {
            c.step(
                "log",
                Outcome::Ok,
                format!(
                    "run {} recorded in {}",
                    short(&report.run_id),
                    logged.join(" and ")
                ),
            );
        }
    }
    if let Some(db) = db {
        db.close().await;
    }
}

/// The schema at the end of a run. A run that found nothing to apply changed nothing since the
/// drift check: what that check saw is the schema now. A run that applied migrations reads the
/// schema again; any other run (an external tool's, which ran its status command) reads it
/// again unless the catalog stamp shows it unchanged since the drift check (or, when no drift
/// check ran, since the baseline).
async fn schema_after<D: Database>(
    db: &mut D,
    report: &RunReport,
    result: &Result<(), Error>,
) -> Result<Observed, crate::engine::DbError> {
    if let Some(seen) = &report.schema_seen
        && result.is_ok()
        && report.external.is_none()
        && report.pending.is_empty()
    {
        return Ok(seen.clone());
    }
    if !report.applied_names().is_empty() {
        return crate::schema::stamp::observe(db, None).await;
    }
    let earlier = match &report.schema_seen {
        Some(seen) => Some(seen.clone()),
        None => log::baseline(db).await.ok().flatten().map(|b| Observed {
            hash: b.hash,
            text: None,
            stamp: b.stamp,
        }),
    };
    crate::schema::stamp::observe(db, earlier.as_ref()).await
}

fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

async fn connected<D: Database>(
    ctx: &Context<'_>,
    slot: &mut Option<D>,
    report: &mut RunReport,
) -> Result<(), Error> {
    let stopped = || Error::from(Box::new(Interrupted::before_any_change(&ctx.env.name, 0)));
    let (db, version) =
        interrupt::unless_interrupted(health::connect::<D>(ctx, ctx.options.dry_run))
            .await
            .ok_or_else(stopped)??;
    report.server_version = Some(version);
    let db = slot.insert(db);
    interrupt::unless_interrupted(health::check_before(ctx, db, report))
        .await
        .ok_or_else(stopped)??;
    if ctx.options.dry_run {
        return pending_and_after(ctx, db, report).await;
    }
    let waited = Instant::now();
    let keys = ctx.handler.lock_keys(&db.lock_scope().await?);
    let Some(locked) =
        interrupt::unless_interrupted(crate::engine::lock_all(db, &keys, ctx.env.lock_timeout))
            .await
    else {
        ctx.step(
            "lock",
            Outcome::Failed,
            "interrupted while waiting for the deploy lock".into(),
        );
        return Err(stopped());
    };
    let keys = match locked {
        Ok(keys) => keys,
        Err(e) => {
            ctx.step(
                "lock",
                Outcome::Failed,
                "another deploy holds the lock".into(),
            );
            return Err(e.into());
        }
    };
    report.locked = true;
    ctx.step(
        "lock",
        Outcome::Ok,
        format!(
            "deploy lock taken in {}",
            crate::output::human::duration(waited.elapsed())
        ),
    );
    let result = pending_and_after(ctx, db, report).await;
    report
        .warnings
        .extend(crate::engine::unlock_all(db, &keys).await);
    result
}

async fn pending_and_after<D: Database>(
    ctx: &Context<'_>,
    db: &mut D,
    report: &mut RunReport,
) -> Result<(), Error> {
    // Read again under the lock: another deploy may have applied migrations while we waited.
    let records = read_history(db, ctx.handler).await?.unwrap_or_default();
    let mut plan = pending::plan(ctx.set, &records, ctx.handler);
    plan.unreachable =
        ctx.handler
            .unreachable(ctx.set, &records, &log::deployed_migrations(db).await?);
    if !plan.failed.is_empty() || (!ctx.options.skip_health_check && !plan.is_consistent()) {
        let drift = plan
            .drift(&ctx.env.name)
            .expect("inconsistent plan has drift");
        ctx.step("pending", Outcome::Failed, drift.to_string());
        return Err(drift.into());
    }
    drift_check(&ctx.common(), db, report).await?;
    for name in plan.modified.iter().chain(&plan.missing) {
        let w = format!("`{name}` is modified or missing on disk (ignored: --skip-health-check)");
        ctx.reporter.event(Event::Warning(w.clone()));
        report.warnings.push(w);
    }
    for name in &plan.unreachable {
        let w = format!(
            "`{name}` was never applied and the tool will never run it (ignored: --skip-health-check)"
        );
        ctx.reporter.event(Event::Warning(w.clone()));
        report.warnings.push(w);
    }
    for name in &plan.out_of_order {
        let w = format!(
            "`{name}` is older than the last applied migration; it will be applied now (out of order)"
        );
        ctx.reporter.event(Event::Warning(w.clone()));
        report.warnings.push(w);
    }
    let selected: Vec<&Migration> = match &ctx.options.to {
        Some(to) => match plan.pending.iter().position(|m| &m.name == to) {
            Some(i) => plan.pending[..=i].to_vec(),
            None => Vec::new(),
        },
        None => plan.pending.clone(),
    };
    report.pending = selected.iter().map(|m| m.name.clone()).collect();
    if selected.is_empty() {
        ctx.step(
            "pending",
            Outcome::Ok,
            format!("no pending migrations ({} applied)", plan.applied.len()),
        );
        return Ok(());
    }
    ctx.step(
        "pending",
        Outcome::Ok,
        format!("{} pending, {} applied", selected.len(), plan.applied.len()),
    );

    let rows: HashMap<String, u64> = db
        .table_rows()
        .await
        .map(|rows| {
            rows.into_iter()
                .map(|(t, n)| (t.to_ascii_lowercase(), n))
                .collect()
        })
        .unwrap_or_default();
    let previews: Vec<preview::MigrationPreview> = selected
        .iter()
        .map(|m| preview::preview(m, db.dialect(), db.transactional_ddl(), &rows))
        .collect();
    if ctx.options.dry_run {
        for p in &previews {
            ctx.reporter.event(Event::Preview(p));
        }
        report.preview = previews;
        ctx.step(
            "preview",
            Outcome::Ok,
            "dry run: nothing was changed".into(),
        );
        return Ok(());
    }

    let interrupted = |report: &RunReport, not_started: usize| -> Error {
        Box::new(Interrupted {
            environment: ctx.env.name.clone(),
            applied: report.applied.len(),
            not_started,
            partial: None,
            backup_id: report
                .backup
                .as_ref()
                .and_then(backup::BackupStatus::id)
                .map(str::to_owned),
        })
        .into()
    };
    if interrupt::requested() {
        return Err(interrupted(report, selected.len()));
    }
    let policy = approve::ApprovalPolicy {
        required: ctx.env.approval_required,
        yes: ctx.options.yes,
        interactive: ctx.interactive,
    };
    if policy.required && !policy.yes && policy.interactive {
        summary(ctx, &previews);
    }
    let selected_count = selected.len();
    let approved = match approve::approve(selected, policy, &ctx.env.name).await {
        Ok(a) => {
            let how = if !policy.required {
                "not required"
            } else if policy.yes {
                "--yes"
            } else {
                "confirmed"
            };
            ctx.step("approve", Outcome::Ok, how.into());
            a
        }
        Err(e) => {
            ctx.step("approve", Outcome::Failed, e.to_string());
            return Err(e.into());
        }
    };

    match backup_step(&ctx.common(), db, &report.run_id).await {
        Ok(status) => report.backup = Some(status),
        // Ctrl-C also reaches the dump tool run from a terminal; its failure is the interrupt.
        Err(_) if interrupt::requested() => return Err(interrupted(report, selected_count)),
        Err(e) => return Err(e),
    }
    if interrupt::requested() {
        return Err(interrupted(report, selected_count));
    }

    let started = Instant::now();
    let applied = apply::run(ctx, db, approved, &mut report.applied).await;
    match &applied {
        Ok(()) => ctx.step(
            "apply",
            Outcome::Ok,
            format!(
                "{} applied in {}",
                report.applied.len(),
                crate::output::human::duration(started.elapsed())
            ),
        ),
        Err(Error::Interrupted(_)) => ctx.step(
            "apply",
            Outcome::Failed,
            format!(
                "interrupted (Ctrl-C): {} applied, nothing started after that",
                report.applied.len()
            ),
        ),
        Err(_) => ctx.step(
            "apply",
            Outcome::Failed,
            format!("{} applied before the failure", report.applied.len()),
        ),
    }
    if let Err(Error::Interrupted(mut e)) = applied {
        // The operator asked to stop: no automatic restore, but say how to get back.
        e.backup_id = report
            .backup
            .as_ref()
            .and_then(backup::BackupStatus::id)
            .map(str::to_owned);
        return Err(Error::Interrupted(e));
    }
    if let Err(Error::Apply(mut e)) = applied {
        // Restoring and logging need a session, and restoring needs the lock again.
        let relocked = !e.connection_lost || reconnect(ctx, db).await;
        let unchanged = report.applied.is_empty() && e.rolled_back;
        let outcome = if relocked {
            auto_rollback(
                &ctx.common(),
                db,
                report,
                ctx.env.rollback_on_failure,
                "rollback_on_failure",
                unchanged,
            )
            .await
        } else {
            let reason = "not attempted: the connection was lost and the deploy lock could not be taken again";
            ctx.step("rollback", Outcome::Skipped, reason.into());
            rollback::RollbackOutcome::not_attempted(
                reason,
                report.backup.as_ref().and_then(backup::BackupStatus::id),
            )
        };
        e.rollback = Some(outcome.clone());
        report.rollback = Some(outcome);
        return Err(Error::Apply(e));
    }
    applied?;
    if interrupt::requested() {
        return Err(interrupted(report, 0));
    }

    health_after(&ctx.common(), db, report).await?;
    let expected: Vec<String> = report.applied.iter().map(|a| a.name.clone()).collect();
    match verify::run(ctx, db, &expected).await {
        Ok(summary) => {
            ctx.step("verify", Outcome::Ok, summary.clone());
            report.verified = Some(summary);
            Ok(())
        }
        Err(e) => {
            ctx.step("verify", Outcome::Failed, e.to_string());
            Err(e)
        }
    }
}

/// The schema has not changed outside dbdeploy since the last deploy (checked under the lock);
/// in dev mode or with `--allow-drift` a change is a warning.
async fn drift_check<D: Database>(
    ctx: &Common<'_>,
    db: &mut D,
    report: &mut RunReport,
) -> Result<(), Error> {
    if ctx.options.skip_health_check {
        return Ok(());
    }
    let health::DriftCheck { check, drift, seen } = health::schema_drift(db, ctx.env).await?;
    report.schema_seen = seen;
    report.checks.push(check.clone());
    if check.status == health::CheckStatus::Warning {
        check.report(ctx.reporter);
        report.warnings.push(check.detail.clone());
    }
    if let Some(drift) = drift {
        if ctx.env.mode == crate::config::Mode::Dev || ctx.options.allow_drift {
            let why = if ctx.options.allow_drift {
                "--allow-drift"
            } else {
                "dev mode"
            };
            let w = format!("{drift} (continuing: {why})");
            ctx.reporter.event(Event::Warning(w.clone()));
            report.warnings.push(w);
        } else {
            check.report(ctx.reporter);
            return Err(drift.into());
        }
    }
    Ok(())
}

/// Step 10: the database still answers and the application check passes; a failure restores
/// this run's backup when `rollback_on_health_check_failure` is set.
async fn health_after<D: Database>(
    ctx: &Common<'_>,
    db: &mut D,
    report: &mut RunReport,
) -> Result<(), Error> {
    let mut after = vec![match db.server_version().await {
        Ok(v) => health::Check {
            name: "connectivity",
            status: health::CheckStatus::Passed,
            detail: format!("{v} answers after the deploy"),
        },
        Err(e) => health::Check {
            name: "connectivity",
            status: health::CheckStatus::Failed,
            detail: format!("the database stopped answering: {e}"),
        },
    }];
    if after[0].status == health::CheckStatus::Passed {
        after.push(health::app_check(ctx.env).await);
    }
    let failed = after
        .iter()
        .find(|c| c.status == health::CheckStatus::Failed)
        .cloned();
    report.checks_after = after;
    if let Some(check) = failed {
        report.health_after = Some("failed");
        ctx.step(
            "health",
            Outcome::Failed,
            format!("{}: {}", check.name, check.detail),
        );
        let outcome = auto_rollback(
            ctx,
            db,
            report,
            ctx.env.rollback_on_health_check_failure,
            "rollback_on_health_check_failure",
            false,
        )
        .await;
        report.rollback = Some(outcome.clone());
        return Err(Box::new(health::HealthAfterError {
            environment: ctx.env.name.clone(),
            check: check.name.to_owned(),
            detail: check.detail,
            rollback: Some(outcome),
        })
        .into());
    }
    report.health_after = Some("passed");
    let passed: Vec<&str> = report
        .checks_after
        .iter()
        .filter(|c| c.status == health::CheckStatus::Passed)
        .map(|c| c.name)
        .collect();
    ctx.step(
        "health",
        Outcome::Ok,
        format!("{} passed after the deploy", passed.join(", ")),
    );
    Ok(())
}

/// Step 8, shared with `down`: a backup when the environment requires one.
///
/// # Errors
/// A backup that cannot be made stops the run before any change.
pub async fn backup_step<D: Database>(
    ctx: &Common<'_>,
    db: &mut D,
    run_id: &str,
) -> Result<backup::BackupStatus, Error> {
    if !ctx.env.backup_before_migrate {
        ctx.step(
            "backup",
            Outcome::Skipped,
            "not required for this environment".into(),
        );
        return Ok(backup::BackupStatus::NotConfigured);
    }
    if ctx.options.skip_backup {
        ctx.step(
            "backup",
            Outcome::Warning,
            "skipped (--skip-backup): there is no way back if this deploy fails".into(),
        );
        return Ok(backup::BackupStatus::Skipped);
    }
    let started = Instant::now();
    match backup::create(
        db,
        ctx.env,
        ctx.handler,
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
            ctx.step(
                "backup",
                Outcome::Ok,
                format!(
                    "{} ({size}) in {} ({})",
                    m.id,
                    created.dir.display(),
                    crate::output::human::duration(started.elapsed())
                ),
            );
            if !created.pruned.is_empty() {
                ctx.reporter.event(Event::Note(format!(
                    "retention (keep {}): deleted {}",
                    ctx.env.backup.keep,
                    created.pruned.join(", ")
                )));
            }
            Ok(backup::BackupStatus::Created(Box::new(created)))
        }
        Err(e) => {
            ctx.step("backup", Outcome::Failed, e.to_string());
            Err(e.into())
        }
    }
}

/// After the connection was lost mid-deploy: a new session, and the deploy lock again, so
/// that the failure can be restored from this run's backup and logged. Returns whether the
/// lock is held again.
async fn reconnect<D: Database>(ctx: &Context<'_>, db: &mut D) -> bool {
    let opts = crate::engine::ConnectOptions {
        wait: ctx.env.connect_wait,
        lock_wait: ctx.env.lock_timeout,
        read_only: false,
    };
    match D::connect(&ctx.env.target, opts).await {
        // The old session is gone; dropping it only frees the socket.
        Ok(new) => *db = new,
        Err(e) => {
            ctx.step("reconnect", Outcome::Failed, e.to_string());
            return false;
        }
    }
    let keys = match db.lock_scope().await {
        Ok(scope) => ctx.handler.lock_keys(&scope),
        Err(_) => vec![ctx.handler.lock_key()],
    };
    match crate::engine::lock_all(db, &keys, ctx.env.lock_timeout).await {
        Ok(_) => {
            ctx.step(
                "reconnect",
                Outcome::Ok,
                "connected again and took the deploy lock again".into(),
            );
            true
        }
        Err(e) => {
            ctx.step(
                "reconnect",
                Outcome::Warning,
                format!("connected again, but not locked: {e}"),
            );
            false
        }
    }
}

/// Restores this run's backup after a failure, when the environment asks for it.
async fn auto_rollback<D: Database>(
    ctx: &Common<'_>,
    db: &mut D,
    report: &RunReport,
    enabled: bool,
    setting: &str,
    unchanged: bool,
) -> rollback::RollbackOutcome {
    let backup_id = report.backup.as_ref().and_then(backup::BackupStatus::id);
    if unchanged {
        let reason = "not needed: the failed migration was rolled back and none before it was applied, so the database is unchanged";
        ctx.step("rollback", Outcome::Skipped, reason.into());
        return rollback::RollbackOutcome::not_attempted(reason, backup_id);
    }
    let manifest = match rollback::should_roll_back(enabled, setting, report.backup.as_ref()) {
        Ok(m) => m.clone(),
        Err(reason) => {
            ctx.step("rollback", Outcome::Skipped, reason.clone());
            return rollback::RollbackOutcome::not_attempted(&reason, backup_id);
        }
    };
    let started = Instant::now();
    match rollback::restore(db, ctx.env, ctx.handler, &manifest, false).await {
        Ok(restored) => {
            ctx.step(
                "rollback",
                Outcome::Ok,
                format!(
                    "restored {} in {}; verified: {}",
                    manifest.id,
                    crate::output::human::duration(started.elapsed()),
                    restored.verified.join("; ")
                ),
            );
            rollback::RollbackOutcome {
                initiated: true,
                status: "succeeded".into(),
                backup_id: Some(manifest.id),
                verified: restored.verified,
            }
        }
        Err(e) => {
            ctx.step("rollback", Outcome::Failed, e.to_string());
            rollback::RollbackOutcome {
                initiated: true,
                status: format!("failed: {e}"),
                backup_id: Some(manifest.id),
                verified: Vec::new(),
            }
        }
    }
}

/// The backup line of the approval summary, shared with external tools.
#[must_use]
pub fn backup_safeguard(env: &EnvSettings, options: &RunOptions) -> String {
    if options.skip_backup {
        "NO backup (--skip-backup)".to_owned()
    } else if env.backup_before_migrate {
        format!(
            "backup before apply (kept: {}) · automatic rollback on failure {}",
            env.backup.keep,
            if env.rollback_on_failure { "on" } else { "off" }
        )
    } else {
        "no backup (not required)".to_owned()
    }
}

/// What a person sees before `Proceed?`.
fn summary(ctx: &Context<'_>, previews: &[preview::MigrationPreview]) {
    let r = ctx.reporter;
    r.event(Event::Warning(format!(
        "environment `{}` is protected: {} migration(s) will be applied",
        ctx.env.name,
        previews.len()
    )));
    for p in previews {
        let atomic = if p.atomic { "atomic" } else { "NOT atomic" };
        let risks = if p.risks.is_empty() {
            String::new()
        } else {
            format!(
                ", risks: {}",
                p.risks
                    .iter()
                    .map(|x| x.code)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        r.event(Event::Note(format!(
            "{} (~{:.1} s, {atomic}{risks})",
            p.name, p.estimated_duration_seconds
        )));
    }
    let backup = backup_safeguard(ctx.env, ctx.options);
    r.event(Event::Note(format!(
        "safeguards: deploy lock held · checksums verified · {backup} · stops at the first failure"
    )));
}
