//! `dbdeploy migrate ENV`: the deploy pipeline, and the response it ends with (end banner and
//! JSON document).

use serde::Serialize;

use super::{Entry, Needs, execute, setup};
use crate::backup::{RollbackOutcome, RollbackStatus};
use crate::cli::MigrateArgs;
use crate::error::{Error, ErrorClass, exit};
use crate::external::ExternalError;
use crate::output::{Line, Printer, Recovery, Response, Status, to_value};
use crate::pipeline::backup::BackupStatus;
use crate::pipeline::deploy::{Deploy, DeployPlan};
use crate::pipeline::event::duration;
use crate::pipeline::external::{ApplyRun, ExternalRun};
use crate::pipeline::health::Check;
use crate::pipeline::preview::MigrationPreview;
use crate::pipeline::{Ended, RunOptions, Trail};
use crate::settings::Settings;
use crate::source::Source;

/// Runs `migrate`.
pub async fn run(settings: &Settings, args: MigrateArgs, printer: &Printer) -> Response {
    let operation = if args.dry_run {
        "preview-migrations"
    } else {
        "deploy-migrations"
    };
    match settings.fleet(&args.environment) {
        Ok(Some(fleet)) => return super::fleet::migrate(settings, &fleet, args, printer).await,
        Ok(None)
            if args.shard.is_some()
                || args.from.is_some()
                || args.events
                || args.run_id.is_some() =>
        {
            let what = if args.shard.is_some() {
                "--shard splits a fleet"
            } else if args.run_id.is_some() {
                "--run-id names a fleet's run"
            } else if args.events {
                "--events streams a fleet's target events"
            } else {
                "--only and --from narrow a fleet's run"
            };
            let e = crate::config::ConfigError::Usage(format!(
                "{what}, and environment `{}` is one database",
                args.environment
            ));
            return Response::failed(operation, &args.environment, e.into());
        }
        Ok(None) => {}
        Err(e) => return Response::failed(operation, &args.environment, e.into()),
    }
    let setup = match setup(
        settings,
        &args.environment,
        Needs::Files {
            to: args.to.as_deref(),
        },
    ) {
        Ok(s) => s,
        Err(e) => return Response::failed(operation, &args.environment, e),
    };
    let to = match (&setup.source, args.to) {
        (Source::External(_), Some(_)) => {
            let e = ExternalError::Unsupported {
                what: "`migrate --to`".into(),
            };
            return Response::failed(operation, &setup.env.name, e.into());
        }
        (source, to) => to.map(|to| source.migration_named(to)),
    };
    let options = RunOptions {
        dry_run: args.dry_run,
        yes: args.yes,
        skip_health_check: args.skip_health_check,
        skip_backup: args.skip_backup,
        allow_drift: args.allow_drift,
        fleet: None,
        fleet_run_id: None,
    };
    if let Err(e) = crate::pipeline::backup::refuse_skip(&setup.env, &options) {
        return Response::failed(operation, &setup.env.name, e);
    }
    // The other environment is resolved now, so that a missing URL stops the run before it
    // starts; its database is read only by the gate.
    let promote_from = match setup
        .env
        .promote_from
        .as_deref()
        .map(|from| settings.environment(from))
    {
        None => None,
        Some(Ok(from)) => Some(from),
        Some(Err(e)) => {
            let e = crate::pipeline::promote::PromotionError::Unreadable {
                from: setup.env.promote_from.clone().unwrap_or_default(),
                cause: Box::new(e.into()),
            };
            return Response::failed(operation, &setup.env.name, Error::Promotion(Box::new(e)));
        }
    };
    let finished = execute(
        &setup,
        &options,
        settings.interactive,
        printer,
        &Deploy {
            to,
            promote_from,
            approved: None,
        },
    )
    .await;
    let external = matches!(setup.source, Source::External(_));
    respond(
        &setup.env.name,
        setup.env.mode,
        operation,
        &options,
        external,
        &finished.trail,
        finished.result,
    )
}

/// The response of a deploy or a dry run.
fn respond(
    env: &str,
    mode: crate::config::Mode,
    operation: &'static str,
    options: &RunOptions,
    external: bool,
    trail: &Trail,
    result: Result<Ended<DeployPlan, ()>, Error>,
) -> Response {
    let (plan, err) = match result {
        Ok(Ended::Previewed(plan) | Ended::NothingToDo(plan)) => (Some(plan), None),
        Ok(Ended::Done(())) => (None, None),
        Err(e) => (None, Some(e)),
    };
    let (status, mut message, code) =
        message(env, options, external, trail, plan.as_ref(), err.as_ref());
    if err.is_none() && !trail.left_after.is_empty() {
        message.push_str(&format!(
            " Still pending after the --to target: {} (run `dbdeploy migrate {env}` to apply them).",
            trail.left_after.join(", ")
        ));
    }
    let result = if options.dry_run {
        preview_result(trail, external, plan.as_ref())
    } else {
        to_value(&deploy_result(trail, external, err.as_ref()))
    };
    Response {
        operation,
        environment: env.to_owned(),
        mode: Some(mode),
        status,
        message,
        line: Line::Marked,
        result,
        recovery: Some(recovery(env, trail)),
        error: err,
        finding: None,
        exit_code: code,
    }
}

fn message(
    env: &str,
    options: &RunOptions,
    external: bool,
    trail: &Trail,
    plan: Option<&DeployPlan>,
    err: Option<&Error>,
) -> (Status, String, u8) {
    let took = duration(std::time::Duration::from_secs_f64(
        trail.duration_seconds().max(0.0),
    ));
    let applied = trail.migrations().len();
    match err {
        None if options.dry_run => {
            let pending = plan.map_or(0, |p| p.pending.len());
            let total: f64 = plan
                .map(|p| {
                    p.previews
                        .iter()
                        .map(|p| p.estimated_duration_seconds)
                        .sum()
                })
                .unwrap_or(0.0);
            let msg = if pending == 0 {
                format!("No pending migrations: {env} is up to date. Nothing was changed.")
            } else if external {
                format!(
                    "Dry run: {pending} migration(s) pending, as status_command reports. apply_command was not run and nothing was changed; run `dbdeploy migrate {env}` to apply."
                )
            } else {
                format!(
                    "Dry run: {pending} migration(s) would be applied (estimated {total:.1} s). Nothing was changed; run `dbdeploy migrate {env}` to apply."
                )
            };
            (Status::Success, msg, exit::SUCCESS)
        }
        None if applied == 0 && !trail.left_after.is_empty() => (
            Status::Success,
            "Nothing to apply up to the --to target: it is already applied.".to_owned(),
            exit::SUCCESS,
        ),
        None if applied == 0 => (
            Status::Success,
            format!("No pending migrations: {env} is up to date."),
            exit::SUCCESS,
        ),
        None => (
            Status::Success,
            format!(
                "Deployed {applied} migration(s) to {env} in {took}.{} Next: `dbdeploy status {env}`.",
                trail
                    .backup_id()
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
                ErrorClass::MidDeployment => format!("after {applied} migration(s) were applied"),
                ErrorClass::PostDeployment => "after the migrations were applied".to_owned(),
            };
            let rollback = match &trail.rollback {
                Some(r) if r.succeeded() => format!(
                    " Rolled back: restored {} and verified; the database is as before the deploy.",
                    r.backup_id.as_deref().unwrap_or("the backup")
                ),
                Some(r) if r.initiated => format!(" Automatic rollback FAILED: {}.", r.describe()),
                _ => String::new(),
            };
            (
                Status::Error,
                format!("Deployment to {env} failed {what}.{rollback}"),
                e.exit_code(),
            )
        }
    }
}

fn recovery(env: &str, trail: &Trail) -> Recovery {
    let backup_id = trail.backup_id();
    let rolled_back = trail
        .rollback
        .as_ref()
        .is_some_and(RollbackOutcome::succeeded);
    let (status, reason) = rollback_status(trail);
    Recovery {
        backup_id: backup_id.map(str::to_owned),
        rollback_command: backup_id
            .filter(|_| !rolled_back)
            .map(|id| format!("dbdeploy rollback {env} --to {id}")),
        rollback_initiated: trail.rollback.as_ref().is_some_and(|r| r.initiated),
        rollback_status: Some(status.as_str()),
        rollback_reason: reason,
    }
}

/// What the rollback did, in the contract's words, and why.
fn rollback_status(trail: &Trail) -> (RollbackStatus, Option<String>) {
    match &trail.rollback {
        Some(r) => (r.status, r.reason.clone()),
        // A backup was made, so the failure came after it: verification, say, which does not
        // restore automatically.
        None if trail.backup_id().is_some() => (
            RollbackStatus::NotAttempted,
            Some("this failure does not restore the backup automatically".into()),
        ),
        None => (
            RollbackStatus::NotAttempted,
            Some("no backup from this run".into()),
        ),
    }
}

/// The result of a dry run.
#[derive(Serialize)]
struct PreviewResult<'a> {
    pending_migrations: usize,
    migrations: PreviewMigrations<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    total_estimated_duration_seconds: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    estimates_from_rehearsal: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    apply_command_run: Option<bool>,
    health_check_before: Option<&'static str>,
    server_version: Option<&'a str>,
    warnings: &'a [String],
}

#[derive(Serialize)]
#[serde(untagged)]
enum PreviewMigrations<'a> {
    Files(&'a [MigrationPreview]),
    External(Vec<Named<'a>>),
}

#[derive(Serialize)]
struct Named<'a> {
    name: &'a str,
}

fn preview_result(trail: &Trail, external: bool, plan: Option<&DeployPlan>) -> serde_json::Value {
    let empty = DeployPlan::default();
    let plan = plan.unwrap_or(&empty);
    let total: f64 = plan
        .previews
        .iter()
        .map(|p| p.estimated_duration_seconds)
        .sum();
    to_value(&PreviewResult {
        pending_migrations: plan.pending.len(),
        migrations: if external {
            PreviewMigrations::External(plan.pending.iter().map(|n| Named { name: n }).collect())
        } else {
            PreviewMigrations::Files(&plan.previews)
        },
        total_estimated_duration_seconds: (!external).then(|| (total * 1000.0).round() / 1000.0),
        estimates_from_rehearsal: plan.rehearsed.as_deref(),
        apply_command_run: external.then_some(false),
        health_check_before: trail.health_before,
        server_version: trail.server_version.as_deref(),
        warnings: &trail.warnings,
    })
}

/// The result of a deploy, also when it failed part-way.
#[derive(Serialize)]
struct DeployResult<'a> {
    run_id: &'a str,
    migrations_applied: usize,
    total_duration_seconds: f64,
    backup_id: Option<&'a str>,
    backup_status: &'static str,
    health_checks_before: &'a [Check],
    health_checks_after: &'a [Check],
    health_check_before: Option<&'static str>,
    health_check_after: Option<&'static str>,
    verified: bool,
    server_version: Option<&'a str>,
    warnings: &'a [String],
    migrations: Vec<Entry<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    failed_migration: Option<Option<&'a str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    migrations_applied_before_failure: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    failed_migration_rolled_back: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rollback_status: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rollback_reason: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rollback_initiated: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rollback_verified: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pending_before: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pending_after: Option<Option<&'a [String]>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    apply_command: Option<Option<&'a ApplyRun>>,
}

fn deploy_result<'a>(trail: &'a Trail, external: bool, err: Option<&'a Error>) -> DeployResult<'a> {
    let mut r = DeployResult {
        run_id: &trail.run_id,
        migrations_applied: trail.changed.len(),
        total_duration_seconds: trail.duration_seconds(),
        backup_id: trail.backup_id(),
        backup_status: match &trail.backup {
            Some(BackupStatus::Skipped) => "skipped",
            Some(BackupStatus::NotConfigured) => "not-configured",
            Some(BackupStatus::Created(_)) => "created",
            None => "not-reached",
        },
        health_checks_before: &trail.checks_before,
        health_checks_after: &trail.checks_after,
        health_check_before: trail.health_before,
        health_check_after: trail.health_after,
        verified: trail.verified.is_some(),
        server_version: trail.server_version.as_deref(),
        warnings: &trail.warnings,
        migrations: trail
            .changed
            .iter()
            .map(|a| Entry::done(a, "applied"))
            .collect(),
        failed_migration: None,
        migrations_applied_before_failure: None,
        failed_migration_rolled_back: None,
        rollback_status: None,
        rollback_reason: None,
        rollback_initiated: None,
        rollback_verified: None,
        pending_before: None,
        pending_after: None,
        apply_command: None,
    };
    if external {
        external_result(&mut r, trail, err);
    } else {
        if let Some(Error::Apply(e)) = err {
            r.migrations.push(Entry::failed(&e.failed, e.rolled_back));
            r.failed_migration = Some(Some(&e.failed.migration));
            r.migrations_applied_before_failure = Some(e.applied_before);
            r.failed_migration_rolled_back = Some(e.rolled_back);
        }
        if let Some(Error::Interrupted(e)) = err
            && let Some(p) = &e.partial
        {
            r.migrations.push(Entry::Interrupted {
                name: &p.migration,
                status: "interrupted",
                statement: p.ran,
                rolled_back: false,
            });
            r.failed_migration = Some(Some(&p.migration));
            r.migrations_applied_before_failure = Some(e.applied);
            r.failed_migration_rolled_back = Some(false);
        }
    }
    if err.is_some() {
        let (status, reason) = rollback_status(trail);
        r.rollback_status = Some(status.as_str());
        r.rollback_reason = Some(reason);
        r.rollback_initiated = Some(trail.rollback.as_ref().is_some_and(|x| x.initiated));
        r.rollback_verified = trail.rollback.as_ref().map(|x| x.verified.as_slice());
    }
    r
}

/// The parts of the deploy result that differ for an external tool: the migrations are the
/// names `status_command` reported, and there is what `apply_command` did.
fn external_result<'a>(r: &mut DeployResult<'a>, trail: &'a Trail, err: Option<&Error>) {
    static NONE: ExternalRun = ExternalRun {
        apply: None,
        pending_after: None,
        applied: Vec::new(),
    };
    let x = trail.external.as_ref().unwrap_or(&NONE);
    r.migrations = trail
        .pending
        .iter()
        .map(|name| Entry::External {
            name,
            status: if x.applied.contains(name) {
                "applied"
            } else {
                "pending"
            },
        })
        .collect();
    r.migrations_applied = x.applied.len();
    r.pending_before = Some(&trail.pending);
    r.pending_after = Some(x.pending_after.as_deref());
    r.apply_command = Some(x.apply.as_ref());
    if let Some(Error::External(e)) = err
        && let ExternalError::Apply(_) = e.as_ref()
    {
        // The tool knows which migration failed; dbdeploy only knows what it still reports.
        r.failed_migration = Some(None);
        r.migrations_applied_before_failure = Some(x.applied.len());
    }
}
