//! `dbdeploy migrate ENV`: the deploy pipeline, and its end banner and JSON document.

use serde_json::{Value, json};

use super::{Prepared, PreparedExternal, Project, fail_early, load};
use crate::cli::{GlobalArgs, MigrateArgs};
use crate::engine::{Dialect, mysql::MySql, postgres::Postgres, sqlite::Sqlite};
use crate::error::{Error, ErrorClass, exit};
use crate::external::ExternalError;
use crate::output::human::{duration, paint};
use crate::output::json::{self, Status};
use crate::output::{Event, Printer, Reporter};
use crate::pipeline::external::ExternalContext;
use crate::pipeline::{self, Common, Context, RunOptions, RunReport};

/// Runs `migrate`.
pub async fn run(global: &GlobalArgs, args: MigrateArgs, printer: &Printer) -> u8 {
    let operation = if args.dry_run {
        "preview-migrations"
    } else {
        "deploy-migrations"
    };
    match load(global, &args.environment, args.to.as_deref()) {
        Ok(Project::Files(p)) => files(*p, args, operation, printer).await,
        Ok(Project::External(p)) => external(*p, args, operation, printer).await,
        Err(e) => fail_early(printer, operation, &args.environment, &e),
    }
}

/// The pipeline of a migrations folder.
async fn files(prepared: Prepared, args: MigrateArgs, operation: &str, printer: &Printer) -> u8 {
    let Prepared {
        settings,
        env,
        handler,
        set,
    } = prepared;
    let options = options(&args);
    let options = RunOptions {
        to: args
            .to
            .map(|to| set.find(&to).map_or(to, |m| m.name.clone())),
        ..options
    };
    let ctx = Context {
        env: &env,
        handler,
        set: &set,
        options: &options,
        interactive: settings.interactive,
        reporter: printer,
    };
    let target = env.target.describe();
    printer.event(Event::Start {
        command: "migrate",
        environment: &env.name,
        mode: env.mode,
        target: &target,
        tool: handler.name(),
        dry_run: options.dry_run,
    });
    let (report, result) = match env.target.dialect() {
        Dialect::Postgres => pipeline::run::<Postgres>(&ctx, operation).await,
        Dialect::MySql => pipeline::run::<MySql>(&ctx, operation).await,
        Dialect::Sqlite => pipeline::run::<Sqlite>(&ctx, operation).await,
    };
    finish(
        &ctx.common(),
        operation,
        &report,
        result.as_ref().err(),
        printer,
    )
}

/// The pipeline around an external tool's commands.
async fn external(
    prepared: PreparedExternal,
    args: MigrateArgs,
    operation: &str,
    printer: &Printer,
) -> u8 {
    let PreparedExternal {
        settings,
        env,
        tool,
    } = prepared;
    if args.to.is_some() {
        let e = ExternalError::Unsupported {
            what: "`migrate --to`".into(),
        };
        return fail_early(printer, operation, &env.name, &e.into());
    }
    let options = options(&args);
    let ctx = ExternalContext {
        common: Common {
            env: &env,
            options: &options,
            interactive: settings.interactive,
            reporter: printer,
            handler: None,
        },
        tool: &tool,
    };
    let target = env.target.describe();
    printer.event(Event::Start {
        command: "migrate",
        environment: &env.name,
        mode: env.mode,
        target: &target,
        tool: crate::external::NAME,
        dry_run: options.dry_run,
    });
    let (report, result) = match env.target.dialect() {
        Dialect::Postgres => pipeline::external::run::<Postgres>(&ctx, operation).await,
        Dialect::MySql => pipeline::external::run::<MySql>(&ctx, operation).await,
        Dialect::Sqlite => pipeline::external::run::<Sqlite>(&ctx, operation).await,
    };
    finish(
        &ctx.common,
        operation,
        &report,
        result.as_ref().err(),
        printer,
    )
}

fn options(args: &MigrateArgs) -> RunOptions {
    RunOptions {
        dry_run: args.dry_run,
        yes: args.yes,
        skip_health_check: args.skip_health_check,
        skip_backup: args.skip_backup,
        to: None,
        allow_drift: args.allow_drift,
    }
}

fn finish(
    ctx: &Common<'_>,
    operation: &str,
    report: &RunReport,
    err: Option<&Error>,
    printer: &Printer,
) -> u8 {
    let env = &ctx.env.name;
    let c = printer.color();
    let took = duration(std::time::Duration::from_secs_f64(
        report.duration_seconds().max(0.0),
    ));
    let (status, message, code) = match err {
        None if ctx.options.dry_run => {
            let total: f64 = report
                .preview
                .iter()
                .map(|p| p.estimated_duration_seconds)
                .sum();
            let msg = if report.pending.is_empty() {
                format!("No pending migrations: {env} is up to date. Nothing was changed.")
            } else if report.external.is_some() {
                format!(
                    "Dry run: {} migration(s) pending, as status_command reports. apply_command was not run and nothing was changed; run `dbdeploy migrate {env}` to apply.",
                    report.pending.len()
                )
            } else {
                format!(
                    "Dry run: {} migration(s) would be applied (estimated {total:.1} s). Nothing was changed; run `dbdeploy migrate {env}` to apply.",
                    report.pending.len()
                )
            };
            (Status::Success, msg, exit::SUCCESS)
        }
        None if report.applied_names().is_empty() => (
            Status::Success,
            format!("No pending migrations: {env} is up to date."),
            exit::SUCCESS,
        ),
        None => (
            Status::Success,
            format!(
                "Deployed {} migration(s) to {env} in {took}.{} Next: `dbdeploy status {env}`.",
                report.applied_names().len(),
                report
                    .backup
                    .as_ref()
                    .and_then(pipeline::backup::BackupStatus::id)
                    .map(|id| format!(
                        " Backup: {id} (undo with `dbdeploy rollback {env} --to {id}`)."
                    ))
                    .unwrap_or_default()
            ),
            exit::SUCCESS,
        ),
        Some(e @ Error::Approval(_)) => (
            Status::Cancelled,
            format!("Deployment to {env} cancelled. Nothing was changed."),
            e.exit_code(),
        ),
        Some(e @ Error::Interrupted(i)) => {
            let what = match (&i.partial, i.applied) {
                (Some(p), _) => format!(
                    "during {} (after statement {} of {}; recorded as failed)",
                    p.migration, p.ran, p.of
                ),
                (None, 0) => "before any change".to_owned(),
                (None, n) => format!("after {n} migration(s) were applied"),
            };
            (
                Status::Error,
                format!("Deployment to {env} interrupted {what}."),
                e.exit_code(),
            )
        }
        Some(e) => {
            let what = match e.class() {
                ErrorClass::PreDeployment => "before any change".to_owned(),
                ErrorClass::MidDeployment => {
                    format!(
                        "after {} migration(s) were applied",
                        report.applied_names().len()
                    )
                }
                ErrorClass::PostDeployment => "after the migrations were applied".to_owned(),
            };
            let rollback = match &report.rollback {
                Some(r) if r.succeeded() => format!(
                    " Rolled back: restored {} and verified; the database is as before the deploy.",
                    r.backup_id.as_deref().unwrap_or("the backup")
                ),
                Some(r) if r.initiated => format!(" Automatic rollback FAILED: {}.", r.status),
                _ => String::new(),
            };
            (
                Status::Error,
                format!("Deployment to {env} failed {what}.{rollback}"),
                e.exit_code(),
            )
        }
    };
    if let Some(e) = err {
        printer.error(e);
    }
    for w in &report.warnings {
        tracing::debug!("warning: {w}");
    }
    let mark = match status {
        Status::Success => paint(c, "\x1b[32m", "✓"),
        Status::Cancelled => paint(c, "\x1b[33m", "!"),
        Status::Error => paint(c, "\x1b[31m", "✗"),
    };
    printer.result(&format!("{mark} {message}"));
    if printer.json_mode() {
        let result = if ctx.options.dry_run {
            preview_result(report)
        } else {
            deploy_result(report, err)
        };
        printer.json(
            &json::Document {
                status,
                operation,
                environment: env,
                mode: Some(ctx.env.mode.as_str()),
                result,
                message: &message,
                error: err,
                recovery: Some(recovery(env, report)),
            }
            .render(),
        );
    }
    code
}

fn recovery(env: &str, report: &RunReport) -> Value {
    let backup_id = report
        .backup
        .as_ref()
        .and_then(pipeline::backup::BackupStatus::id);
    let rolled_back = report.rollback.as_ref().is_some_and(|r| r.succeeded());
    json!({
        "backup_id": backup_id,
        "rollback_command": backup_id
            .filter(|_| !rolled_back)
            .map(|id| format!("dbdeploy rollback {env} --to {id}")),
        "rollback_initiated": report.rollback.as_ref().is_some_and(|r| r.initiated),
        "rollback_status": rollback_status(report),
    })
}

fn rollback_status(report: &RunReport) -> String {
    match &report.rollback {
        Some(r) => r.status.clone(),
        None if report
            .backup
            .as_ref()
            .and_then(pipeline::backup::BackupStatus::id)
            .is_some() =>
        {
            // A backup was made, so the failure came after it: verification, say, which
            // does not restore automatically.
            "not-attempted: this failure does not restore the backup automatically".into()
        }
        None => "not-attempted: no backup from this run".into(),
    }
}

fn preview_result(report: &RunReport) -> Value {
    if report.external.is_some() {
        return json!({
            "pending_migrations": report.pending.len(),
            "migrations": report.pending.iter().map(|name| json!({"name": name})).collect::<Vec<_>>(),
            "apply_command_run": false,
            "health_check_before": report.health_before,
            "server_version": report.server_version,
            "warnings": report.warnings,
        });
    }
    let total: f64 = report
        .preview
        .iter()
        .map(|p| p.estimated_duration_seconds)
        .sum();
    json!({
        "pending_migrations": report.pending.len(),
        "migrations": report.preview,
        "total_estimated_duration_seconds": (total * 1000.0).round() / 1000.0,
        "health_check_before": report.health_before,
        "server_version": report.server_version,
        "warnings": report.warnings,
    })
}

fn deploy_result(report: &RunReport, err: Option<&Error>) -> Value {
    let mut migrations: Vec<Value> = report
        .applied
        .iter()
        .map(|a| {
            json!({
                "name": a.name,
                "status": "applied",
                "duration_seconds": (a.duration.as_secs_f64() * 1000.0).round() / 1000.0,
                "atomic": a.atomic,
            })
        })
        .collect();
    let mut result = json!({
        "run_id": report.run_id,
        "migrations_applied": report.applied.len(),
        "total_duration_seconds": report.duration_seconds(),
        "backup_id": report.backup.as_ref().and_then(pipeline::backup::BackupStatus::id),
        "backup_status": match &report.backup {
            Some(pipeline::backup::BackupStatus::Skipped) => "skipped",
            Some(pipeline::backup::BackupStatus::NotConfigured) => "not-configured",
            Some(pipeline::backup::BackupStatus::Created(_)) => "created",
            None => "not-reached",
        },
        "health_checks_before": report.checks,
        "health_checks_after": report.checks_after,
        "health_check_before": report.health_before,
        "health_check_after": report.health_after,
        "verified": report.verified.is_some(),
        "server_version": report.server_version,
        "warnings": report.warnings,
    });
    if let Some(x) = &report.external {
        external_result(&mut result, report, x, err);
    } else {
        if let Some(Error::Apply(e)) = err {
            migrations.push(json!({
                "name": e.migration,
                "status": "failed",
                "error": e.message,
                "statement": e.statement,
                "line": e.line,
                "rolled_back": e.rolled_back,
            }));
            result["failed_migration"] = json!(e.migration);
            result["migrations_applied_before_failure"] = json!(e.applied_before);
            result["failed_migration_rolled_back"] = json!(e.rolled_back);
        }
        if let Some(Error::Interrupted(e)) = err
            && let Some(p) = &e.partial
        {
            migrations.push(json!({
                "name": p.migration,
                "status": "interrupted",
                "statement": p.ran,
                "rolled_back": false,
            }));
            result["failed_migration"] = json!(p.migration);
            result["migrations_applied_before_failure"] = json!(e.applied);
            result["failed_migration_rolled_back"] = json!(false);
        }
        result["migrations"] = Value::Array(migrations);
    }
    if err.is_some() {
        result["rollback_status"] = json!(rollback_status(report));
        result["rollback_initiated"] = json!(report.rollback.as_ref().is_some_and(|r| r.initiated));
        if let Some(r) = &report.rollback {
            result["rollback_verified"] = json!(r.verified);
        }
    }
    result
}

/// The parts of the deploy result that differ for an external tool: the migrations are the
/// names `status_command` reported, and there is what `apply_command` did.
fn external_result(
    result: &mut Value,
    report: &RunReport,
    x: &pipeline::external::ExternalRun,
    err: Option<&Error>,
) {
    let migrations: Vec<Value> = report
        .pending
        .iter()
        .map(|name| {
            let status = if x.applied.contains(name) {
                "applied"
            } else {
                "pending"
            };
            json!({"name": name, "status": status})
        })
        .collect();
    result["migrations_applied"] = json!(x.applied.len());
    result["migrations"] = Value::Array(migrations);
    result["pending_before"] = json!(report.pending);
    result["pending_after"] = json!(x.pending_after);
    result["apply_command"] = json!(x.apply);
    if let Some(Error::External(e)) = err
        && let ExternalError::Apply(f) = e.as_ref()
    {
        result["apply_command"]["last_output"] = json!(f.output);
        // The tool knows which migration failed; dbdeploy only knows what it still reports.
        result["failed_migration"] = Value::Null;
        result["migrations_applied_before_failure"] = json!(x.applied.len());
    }
}
