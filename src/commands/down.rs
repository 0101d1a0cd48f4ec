//! `dbdeploy down ENV [--steps N | --to MIGRATION]`: revert the newest applied migrations with
//! their down scripts, through the pipeline's revert operation; this module only builds the
//! request and the response.

use serde::Serialize;

use super::{Entry, Needs, execute, setup};
use crate::cli::DownArgs;
use crate::config::ConfigError;
use crate::error::{Error, exit};
use crate::output::{Line, Printer, Response, Status, to_value};
use crate::pipeline::preview::MigrationPreview;
use crate::pipeline::revert::{Revert, RevertPlan};
use crate::pipeline::{Ended, RunOptions, Trail};
use crate::settings::Settings;

const OPERATION: &str = "revert-migrations";

/// A dry run's result.
#[derive(Serialize)]
struct Preview<'a> {
    migrations_to_revert: usize,
    migrations: &'a [MigrationPreview],
}

/// A revert's result.
#[derive(Serialize)]
struct Reverted<'a> {
    run_id: &'a str,
    migrations_reverted: usize,
    migrations: Vec<Entry<'a>>,
    backup_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    failed_migration: Option<&'a str>,
}

/// Runs `down`.
pub async fn run(settings: &Settings, args: DownArgs, printer: &Printer) -> Response {
    let setup = match setup(
        settings,
        &args.environment,
        Needs::FilesOnly {
            command: "`dbdeploy down`",
        },
    ) {
        Ok(s) => s,
        Err(e) => return Response::failed(OPERATION, &args.environment, e),
    };
    if args.steps == Some(0) {
        let e = ConfigError::Usage("--steps 0: give the number of migrations to revert".into());
        return Response::failed(OPERATION, &setup.env.name, e.into());
    }
    let to = args.to.map(|to| setup.source.migration_named(to));
    let options = RunOptions {
        dry_run: args.dry_run,
        yes: args.yes,
        skip_backup: args.skip_backup,
        ..RunOptions::default()
    };
    if let Err(e) = crate::pipeline::backup::refuse_skip(&setup.env, &options) {
        return Response::failed(OPERATION, &setup.env.name, e);
    }
    let op = Revert {
        steps: args.steps.unwrap_or(1),
        to,
    };
    let finished = execute(&setup, &options, settings.interactive, printer, &op).await;
    respond(
        &setup.env.name,
        setup.env.mode,
        &options,
        &finished.trail,
        finished.result,
    )
}

fn respond(
    env: &str,
    mode: crate::config::Mode,
    options: &RunOptions,
    trail: &Trail,
    result: Result<Ended<RevertPlan, ()>, Error>,
) -> Response {
    let undo = trail
        .backup_id()
        .map(|id| format!(" Backup taken before: {id} (`dbdeploy rollback {env} --to {id}`)."))
        .unwrap_or_default();
    let reverted = trail.changed.len();
    let (plan, err) = match result {
        Ok(Ended::Previewed(p) | Ended::NothingToDo(p)) => (Some(p), None),
        Ok(Ended::Done(())) => (None, None),
        Err(e) => (None, Some(e)),
    };
    let (status, message, code) = match &err {
        None if options.dry_run => {
            let n = plan.as_ref().map_or(0, |p| p.previews.len());
            (
                Status::Success,
                if n == 0 {
                    format!("Nothing to revert in {env}. Nothing was changed.")
                } else {
                    format!(
                        "Dry run: {n} migration(s) would be reverted. Nothing was changed; run `dbdeploy down {env}` to revert."
                    )
                },
                exit::SUCCESS,
            )
        }
        None if reverted == 0 => (
            Status::Success,
            format!("Nothing to revert in {env}."),
            exit::SUCCESS,
        ),
        None => (
            Status::Success,
            format!(
                "Reverted {reverted} migration(s) in {env}.{undo} Next: `dbdeploy status {env}`."
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
            format!("Revert in {env} failed after {reverted} migration(s) were reverted.{undo}"),
            e.exit_code(),
        ),
    };
    let result = if options.dry_run {
        let previews = plan.as_ref().map_or(&[][..], |p| &p.previews[..]);
        to_value(&Preview {
            migrations_to_revert: previews.len(),
            migrations: previews,
        })
    } else {
        let mut migrations: Vec<Entry<'_>> = trail
            .changed
            .iter()
            .map(|r| Entry::done(r, "reverted"))
            .collect();
        let mut failed_migration = None;
        if let Some(Error::Revert(e)) = &err {
            migrations.push(Entry::failed(&e.failed, e.rolled_back));
            failed_migration = Some(e.failed.migration.as_str());
        }
        to_value(&Reverted {
            run_id: &trail.run_id,
            migrations_reverted: reverted,
            migrations,
            backup_id: trail.backup_id(),
            failed_migration,
        })
    };
    Response {
        operation: OPERATION,
        environment: env.to_owned(),
        mode: Some(mode),
        status,
        message,
        line: Line::Marked,
        result,
        error: err,
        recovery: None,
        finding: None,
        exit_code: code,
    }
}
