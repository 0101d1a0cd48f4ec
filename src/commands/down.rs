//! `dbdeploy down ENV [--steps N | --to MIGRATION]`: revert the newest applied migrations with
//! their down scripts, as `sqlx migrate revert`, `dbmate rollback` and `migrate down N` do —
//! under the deploy lock, after the same consistency checks as a deploy, with approval on
//! protected environments, and logged like one. Formats without down scripts (Prisma) are
//! pointed at restoring a backup instead.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::{fail_early, prepare_for};
use crate::cli::{DownArgs, GlobalArgs};
use crate::config::ConfigError;
use crate::engine::{
    Database, Dialect, ScriptError, mysql::MySql, postgres::Postgres, sqlite::Sqlite,
};
use crate::error::{Error, exit};
use crate::handler::Revert;
use crate::migration::{Migration, TxMode};
use crate::output::human::{duration, paint};
use crate::output::json::{self, Status};
use crate::output::{Event, Outcome, Printer, Reporter};
use crate::pipeline::apply::{AppliedMigration, run_statements};
use crate::pipeline::preview::{self, MigrationPreview};
use crate::pipeline::{Context, RunOptions, approve, health, log, pending, read_history};
use crate::sql::split;

const OPERATION: &str = "revert-migrations";

/// A down script failed; what was reverted before it, and what state it left.
#[derive(Debug, thiserror::Error)]
#[error("reverting migration `{migration}` failed{}: {message}", position(.statement, .line))]
pub struct RevertError {
    /// The environment, for hints.
    pub environment: String,
    /// The migration whose down script failed.
    pub migration: String,
    /// Its file.
    pub path: PathBuf,
    /// The database's message.
    pub message: String,
    /// 1-based statement number, when run statement by statement.
    pub statement: Option<usize>,
    /// 1-based line in the down script.
    pub line: Option<usize>,
    /// Migrations reverted in this run before it.
    pub reverted_before: usize,
    /// The down script and its tracking-table writes were rolled back together.
    pub rolled_back: bool,
}

fn position(statement: &Option<usize>, line: &Option<usize>) -> String {
    match (statement, line) {
        (Some(s), Some(l)) => format!(" at statement {s} (line {l} of the down script)"),
        (None, Some(l)) => format!(" at line {l} of the down script"),
        (Some(s), None) => format!(" at statement {s}"),
        (None, None) => String::new(),
    }
}

impl RevertError {
    /// What to do.
    #[must_use]
    pub fn hints(&self) -> Vec<String> {
        let env = &self.environment;
        let name = &self.migration;
        let mut hints = Vec::new();
        if self.rolled_back {
            hints.push(format!(
                "the down script of `{name}` was rolled back: the database is as it was, and `{name}` is still applied; fix the down script and run `dbdeploy down {env}` again"
            ));
        } else {
            hints.push(format!(
                "the down script of `{name}` ran partly (outside a transaction): its statements before the failure took effect"
            ));
            hints.push(format!(
                "see what the tracking table records with `dbdeploy status {env}`, finish or undo the revert by hand, then record the outcome with `dbdeploy resolve {env}`"
            ));
        }
        if self.reverted_before > 0 {
            hints.push(format!(
                "{} migration(s) before it were reverted and stay reverted",
                self.reverted_before
            ));
        }
        hints
    }
}

/// What a `down` run did.
struct DownReport {
    run_id: String,
    started_at: DateTime<Utc>,
    reverted: Vec<AppliedMigration>,
    preview: Vec<MigrationPreview>,
    locked: bool,
    backup: Option<crate::pipeline::backup::BackupStatus>,
}

/// Runs `down`.
pub async fn run(global: &GlobalArgs, args: DownArgs, printer: &Printer) -> u8 {
    let p = match prepare_for("`dbdeploy down`", global, &args.environment, None) {
        Ok(p) => p,
        Err(e) => return fail_early(printer, OPERATION, &args.environment, &e),
    };
    if args.steps == Some(0) {
        let e = ConfigError::Usage("--steps 0: give the number of migrations to revert".into());
        return fail_early(printer, OPERATION, &p.env.name, &e.into());
    }
    let to = args
        .to
        .map(|to| p.set.find(&to).map_or(to, |m| m.name.clone()));
    let options = RunOptions {
        dry_run: args.dry_run,
        yes: args.yes,
        skip_backup: args.skip_backup,
        to,
        ..RunOptions::default()
    };
    let ctx = Context {
        env: &p.env,
        handler: p.handler,
        set: &p.set,
        options: &options,
        interactive: p.settings.interactive,
        reporter: printer,
    };
    let target = p.env.target.describe();
    printer.event(Event::Start {
        command: "down",
        environment: &p.env.name,
        mode: p.env.mode,
        target: &target,
        tool: p.handler.name(),
        dry_run: args.dry_run,
    });
    for w in &p.set.warnings {
        printer.event(Event::Warning(w.clone()));
    }
    let mut report = DownReport {
        run_id: uuid::Uuid::new_v4().to_string(),
        started_at: Utc::now(),
        reverted: Vec::new(),
        preview: Vec::new(),
        locked: false,
        backup: None,
    };
    let steps = args.steps.unwrap_or(1);
    let result = match p.env.target.dialect() {
        Dialect::Postgres => down::<Postgres>(&ctx, steps, &mut report).await,
        Dialect::MySql => down::<MySql>(&ctx, steps, &mut report).await,
        Dialect::Sqlite => down::<Sqlite>(&ctx, steps, &mut report).await,
    };
    finish(&ctx, &report, result.as_ref().err(), printer)
}

async fn down<D: Database>(
    ctx: &Context<'_>,
    steps: usize,
    report: &mut DownReport,
) -> Result<(), Error> {
    let (mut db, _) = health::connect::<D>(ctx, ctx.options.dry_run).await?;
    let result = locked(ctx, &mut db, steps, report).await;
    // Reverting changes the schema: it becomes the drift baseline like a deploy's.
    let may_have_changed = match &result {
        Ok(()) => true,
        Err(e) => e.class() != crate::error::ErrorClass::PreDeployment,
    };
    let history =
        !ctx.options.dry_run && report.locked && !matches!(result, Err(Error::Approval(_)));
    if history {
        // Before the schema is read (see `prepare_history`); a failure is reported below.
        let _ = log::prepare_history(&mut db).await;
    }
    let schema = if !ctx.options.dry_run && report.locked && may_have_changed {
        crate::schema::stamp::observe(&mut db, None).await.ok()
    } else {
        None
    };
    if !ctx.options.dry_run {
        let record = log::RunRecord {
            schema: schema.as_ref(),
            backup_id: report
                .backup
                .as_ref()
                .and_then(crate::pipeline::backup::BackupStatus::id),
            rollback_status: None,
            run_id: &report.run_id,
            environment: &ctx.env.name,
            operation: OPERATION,
            status: match &result {
                Ok(()) => "success",
                Err(Error::Approval(_)) => "cancelled",
                Err(_) => "error",
            },
            migrations: report.reverted.iter().map(|r| r.name.clone()).collect(),
            started_at: report.started_at,
            finished_at: Utc::now(),
            error: result.as_ref().err(),
            target: ctx.env.target.describe(),
        };
        if history && let Err(w) = log::insert_history(&mut db, &record).await {
            ctx.reporter.event(Event::Warning(w));
        }
        if let Err(w) = log::write_audit(&ctx.env.audit_file, &record) {
            ctx.reporter.event(Event::Warning(w));
        }
    }
    db.close().await;
    result
}

async fn locked<D: Database>(
    ctx: &Context<'_>,
    db: &mut D,
    steps: usize,
    report: &mut DownReport,
) -> Result<(), Error> {
    if ctx.options.dry_run {
        return planned(ctx, db, steps, report).await;
    }
    let waited = Instant::now();
    let keys = ctx.handler.lock_keys(&db.lock_scope().await?);
    let keys = match crate::engine::lock_all(db, &keys, ctx.env.lock_timeout).await {
        Ok(keys) => keys,
        Err(e) => {
            step(
                ctx,
                "lock",
                Outcome::Failed,
                "another deploy holds the lock".into(),
            );
            return Err(e.into());
        }
    };
    report.locked = true;
    step(
        ctx,
        "lock",
        Outcome::Ok,
        format!("deploy lock taken in {}", duration(waited.elapsed())),
    );
    let result = planned(ctx, db, steps, report).await;
    for w in crate::engine::unlock_all(db, &keys).await {
        ctx.reporter.event(Event::Warning(w));
    }
    result
}

fn step(ctx: &Context<'_>, name: &str, outcome: Outcome, detail: String) {
    ctx.reporter.event(Event::Step {
        name,
        outcome,
        detail,
    });
}

async fn planned<D: Database>(
    ctx: &Context<'_>,
    db: &mut D,
    steps: usize,
    report: &mut DownReport,
) -> Result<(), Error> {
    let env = &ctx.env.name;
    let dialect = db.dialect();
    let records = read_history(db, ctx.handler).await?.unwrap_or_default();
    let mut plan = pending::plan(ctx.set, &records, ctx.handler);
    plan.unreachable =
        ctx.handler
            .unreachable(ctx.set, &records, &log::deployed_migrations(db).await?);
    if let Some(drift) = plan.drift(env) {
        step(ctx, "health", Outcome::Failed, drift.to_string());
        return Err(drift.into());
    }
    step(
        ctx,
        "health",
        Outcome::Ok,
        format!("{} applied, none failed", plan.applied.len()),
    );

    // Newest last, in apply order.
    let applied: Vec<&Migration> = ctx
        .set
        .migrations
        .iter()
        .filter(|m| plan.applied.iter().any(|(n, _)| n == &m.name))
        .collect();
    let first = match &ctx.options.to {
        Some(to) => {
            applied.iter().position(|m| &m.name == to).ok_or_else(|| {
                ConfigError::Usage(format!(
                    "--to {to}: not an applied migration of {env}; see `dbdeploy status {env}`"
                ))
            })? + 1
        }
        None => {
            if steps > applied.len() {
                return Err(ConfigError::Usage(format!(
                    "--steps {steps}: only {} migration(s) are applied in {env}",
                    applied.len()
                ))
                .into());
            }
            applied.len() - steps
        }
    };
    let mut reverts: Vec<(&Migration, Revert)> = Vec::new();
    for i in (first..applied.len()).rev() {
        let m = applied[i];
        let previous = i.checked_sub(1).map(|p| applied[p]);
        let Some(revert) = ctx.handler.revert(dialect, m, previous) else {
            return Err(no_down(ctx, m));
        };
        reverts.push((m, revert));
    }
    if reverts.is_empty() {
        step(ctx, "plan", Outcome::Ok, "nothing to revert".into());
        return Ok(());
    }
    step(
        ctx,
        "plan",
        Outcome::Ok,
        format!(
            "{} to revert, newest first: {}",
            reverts.len(),
            reverts
                .iter()
                .map(|(m, _)| m.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
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
    let previews: Vec<MigrationPreview> = reverts
        .iter()
        .map(|(m, r)| {
            let down = Migration {
                tool_data: None,
                name: m.name.clone(),
                path: m.path.clone(),
                sql: r.sql.clone(),
                checksum: String::new(),
                transaction: r.transaction.clone(),
                down: None,
            };
            preview::preview(&down, dialect, db.transactional_ddl(), &rows)
        })
        .collect();
    if ctx.options.dry_run {
        for p in &previews {
            ctx.reporter.event(Event::Preview(p));
        }
        report.preview = previews;
        step(
            ctx,
            "preview",
            Outcome::Ok,
            "dry run: nothing was changed".into(),
        );
        return Ok(());
    }

    let policy = approve::ApprovalPolicy {
        required: ctx.env.approval_required,
        yes: ctx.options.yes,
        interactive: ctx.interactive,
    };
    if policy.required && !policy.yes && policy.interactive {
        ctx.reporter.event(Event::Warning(format!(
            "environment `{env}` is protected: {} migration(s) will be reverted with their down scripts",
            previews.len()
        )));
        for p in &previews {
            let atomic = if p.atomic { "atomic" } else { "NOT atomic" };
            let risks: Vec<&str> = p.risks.iter().map(|r| r.code).collect();
            ctx.reporter.event(Event::Note(format!(
                "{} ({atomic}{})",
                p.name,
                if risks.is_empty() {
                    String::new()
                } else {
                    format!(", risks: {}", risks.join(", "))
                }
            )));
        }
    }
    let targets: Vec<&Migration> = reverts.iter().map(|(m, _)| *m).collect();
    if let Err(e) = approve::approve(targets, policy, env).await {
        step(ctx, "approve", Outcome::Failed, e.to_string());
        return Err(e.into());
    }
    step(
        ctx,
        "approve",
        Outcome::Ok,
        if !policy.required {
            "not required"
        } else if policy.yes {
            "--yes"
        } else {
            "confirmed"
        }
        .into(),
    );

    report.backup = Some(crate::pipeline::backup_step(&ctx.common(), db, &report.run_id).await?);

    let started = Instant::now();
    for (m, revert) in &reverts {
        ctx.reporter
            .event(Event::MigrationStarted { name: &m.name });
        let t = Instant::now();
        let atomic = db.transactional_ddl() && revert.transaction == TxMode::Wrapped;
        let outcome = if atomic {
            revert_atomic(db, revert).await
        } else {
            revert_in_steps(db, revert).await
        };
        let took = t.elapsed();
        match outcome {
            Ok(()) => {
                ctx.reporter.event(Event::MigrationApplied {
                    name: &m.name,
                    duration: took,
                    atomic,
                });
                report.reverted.push(AppliedMigration {
                    name: m.name.clone(),
                    duration: took,
                    atomic,
                });
            }
            Err((error, rolled_back)) => {
                ctx.reporter.event(Event::MigrationFailed {
                    name: &m.name,
                    duration: took,
                });
                step(
                    ctx,
                    "revert",
                    Outcome::Failed,
                    format!("{} reverted before the failure", report.reverted.len()),
                );
                return Err(Box::new(RevertError {
                    environment: env.clone(),
                    migration: m.name.clone(),
                    path: m.path.clone(),
                    message: error.message,
                    statement: error.statement,
                    line: error.line,
                    reverted_before: report.reverted.len(),
                    rolled_back,
                })
                .into());
            }
        }
    }
    step(
        ctx,
        "revert",
        Outcome::Ok,
        format!(
            "{} reverted in {}",
            report.reverted.len(),
            duration(started.elapsed())
        ),
    );

    // The tracking table must now say they are not applied.
    let records = read_history(db, ctx.handler).await?.unwrap_or_default();
    let plan = pending::plan(ctx.set, &records, ctx.handler);
    let still: Vec<&str> = report
        .reverted
        .iter()
        .map(|r| r.name.as_str())
        .filter(|n| plan.applied.iter().any(|(a, _)| a == n))
        .collect();
    if !still.is_empty() {
        let e = crate::pipeline::verify::VerifyError(format!(
            "still recorded as applied: {}",
            still.join(", ")
        ));
        step(ctx, "verify", Outcome::Failed, e.to_string());
        return Err(e.into());
    }
    step(
        ctx,
        "verify",
        Outcome::Ok,
        format!(
            "{} applied, {} pending",
            plan.applied.len(),
            plan.pending.len()
        ),
    );
    Ok(())
}

/// The error for a migration without a down script.
fn no_down(ctx: &Context<'_>, m: &Migration) -> Error {
    let env = &ctx.env.name;
    let rollback =
        format!("to undo a deploy, restore the backup taken before it: `dbdeploy rollback {env}`");
    if ctx.set.migrations.iter().all(|m| m.down.is_none()) {
        return Error::Unavailable {
            message: format!(
                "{} migrations have no down scripts, so `dbdeploy down` cannot revert them",
                ctx.handler.name()
            ),
            hint: rollback,
        };
    }
    Error::Unavailable {
        message: format!(
            "migration `{}` has no down script ({}), so it cannot be reverted",
            m.name,
            m.path.display()
        ),
        hint: format!("add its down script, or {rollback}"),
    }
}

type RevertFailure = (ScriptError, bool);

fn failure(message: String, rolled_back: bool) -> RevertFailure {
    (
        ScriptError {
            message,
            statement: None,
            line: None,
        },
        rolled_back,
    )
}

/// The down script and its tracking-table writes in one transaction.
async fn revert_atomic<D: Database>(db: &mut D, r: &Revert) -> Result<(), RevertFailure> {
    db.begin_migration(&r.sql)
        .await
        .map_err(|e| failure(e.to_string(), true))?;
    let result = async {
        for stmt in &r.before {
            db.execute(stmt)
                .await
                .map_err(|e| failure(e.to_string(), true))?;
        }
        if !split::is_empty_script(&r.sql) {
            db.run_script(&r.sql).await.map_err(|e| (e, true))?;
        }
        for stmt in &r.after {
            db.execute(stmt)
                .await
                .map_err(|e| failure(e.to_string(), true))?;
        }
        db.commit_migration()
            .await
            .map_err(|e| failure(e.to_string(), true))
    }
    .await;
    if result.is_err() {
        let _ = db.rollback_migration().await;
    }
    result
}

/// Outside a transaction: the `before` writes mark the migration in progress the tool's way
/// (sqlx `success = FALSE`, golang-migrate dirty), so a failure is visible and blocks.
async fn revert_in_steps<D: Database>(db: &mut D, r: &Revert) -> Result<(), RevertFailure> {
    for stmt in &r.before {
        db.execute(stmt)
            .await
            .map_err(|e| failure(e.to_string(), true))?;
    }
    let outcome = if r.transaction == TxMode::OwnTransaction {
        db.run_script(&r.sql).await
    } else {
        run_statements(db, &r.sql).await
    };
    outcome.map_err(|e| (e, false))?;
    for stmt in &r.after {
        db.execute(stmt).await.map_err(|e| {
            failure(
                format!("the down script ran, but recording it failed: {e}"),
                false,
            )
        })?;
    }
    Ok(())
}

fn finish(ctx: &Context<'_>, report: &DownReport, err: Option<&Error>, printer: &Printer) -> u8 {
    let env = &ctx.env.name;
    let c = printer.color();
    let backup_id = report
        .backup
        .as_ref()
        .and_then(crate::pipeline::backup::BackupStatus::id);
    let undo = backup_id
        .map(|id| format!(" Backup taken before: {id} (`dbdeploy rollback {env} --to {id}`)."))
        .unwrap_or_default();
    let (status, message, code) = match err {
        None if ctx.options.dry_run => (
            Status::Success,
            if report.preview.is_empty() {
                format!("Nothing to revert in {env}. Nothing was changed.")
            } else {
                format!(
                    "Dry run: {} migration(s) would be reverted. Nothing was changed; run `dbdeploy down {env}` to revert.",
                    report.preview.len()
                )
            },
            exit::SUCCESS,
        ),
        None if report.reverted.is_empty() => (
            Status::Success,
            format!("Nothing to revert in {env}."),
            exit::SUCCESS,
        ),
        None => (
            Status::Success,
            format!(
                "Reverted {} migration(s) in {env}.{undo} Next: `dbdeploy status {env}`.",
                report.reverted.len()
            ),
            exit::SUCCESS,
        ),
        Some(e @ Error::Approval(_)) => (
            Status::Cancelled,
            format!("Revert in {env} cancelled. Nothing was changed."),
            e.exit_code(),
        ),
        Some(e) => (
            Status::Error,
            format!(
                "Revert in {env} failed after {} migration(s) were reverted.{undo}",
                report.reverted.len()
            ),
            e.exit_code(),
        ),
    };
    if let Some(e) = err {
        printer.error(e);
    }
    let mark = match status {
        Status::Success => paint(c, "\x1b[32m", "✓"),
        Status::Cancelled => paint(c, "\x1b[33m", "!"),
        Status::Error => paint(c, "\x1b[31m", "✗"),
    };
    printer.result(&format!("{mark} {message}"));
    if printer.json_mode() {
        let mut migrations: Vec<Value> = report
            .reverted
            .iter()
            .map(|r| {
                json!({
                    "name": r.name,
                    "status": "reverted",
                    "duration_seconds": seconds(r.duration),
                    "atomic": r.atomic,
                })
            })
            .collect();
        let mut result = if ctx.options.dry_run {
            json!({ "migrations_to_revert": report.preview.len(), "migrations": report.preview })
        } else {
            json!({ "run_id": report.run_id, "migrations_reverted": report.reverted.len() })
        };
        if let Some(Error::Revert(e)) = err {
            migrations.push(json!({
                "name": e.migration,
                "status": "failed",
                "error": e.message,
                "statement": e.statement,
                "line": e.line,
                "rolled_back": e.rolled_back,
            }));
            result["failed_migration"] = json!(e.migration);
        }
        if !ctx.options.dry_run {
            result["migrations"] = Value::Array(migrations);
            result["backup_id"] = json!(backup_id);
        }
        printer.json(
            &json::Document {
                status,
                operation: OPERATION,
                environment: env,
                mode: Some(ctx.env.mode.as_str()),
                result,
                message: &message,
                error: err,
                recovery: None,
            }
            .render(),
        );
    }
    code
}

fn seconds(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0).round() / 1000.0
}
