//! `dbdeploy health ENV`: the named health checks of `migrate`, alone, read-only and without
//! the lock. Exit 0 when every check passed (or was skipped), 5 when one failed, 1 when the
//! database cannot be reached.

use std::time::Duration;

use serde::Serialize;

use super::{Needs, Setup, setup};
use crate::cli::HealthArgs;
use crate::engine::{ConnectOptions, Database};
use crate::error::{Error, exit};
use crate::output::{Line, Printer, Response, Status};
use crate::pipeline::health::{self, Check, CheckStatus};
use crate::settings::Settings;
use crate::source::Source;

const OPERATION: &str = "health-check";

/// The checks and the verdict.
#[derive(Serialize)]
struct HealthResult<'a> {
    healthy: bool,
    checks: &'a [Check],
    exit_code: u8,
}

/// Runs `health`.
pub async fn run(settings: &Settings, args: HealthArgs, printer: &Printer) -> Response {
    let environment = &args.environment;
    let mut setup = match setup(settings, environment, Needs::Files { to: None }) {
        Ok(s) => s,
        Err(e) => return Response::failed(OPERATION, environment, e),
    };
    if let Some(wait) = args.wait {
        setup.env.connect_wait = Duration::from_secs(wait);
    }
    let env = &setup.env;
    crate::pipeline::start(printer, "health", env, &setup.source, false);
    let mut checks = Vec::new();
    let error =
        crate::with_database!(env.target, D => checks_on::<D>(&setup, &mut checks).await).err();
    for c in &checks {
        c.report(printer);
    }
    let failed: Vec<&Check> = checks
        .iter()
        .filter(|c| c.status == CheckStatus::Failed)
        .collect();
    let (code, message) = if let Some(e) = &error {
        (e.exit_code(), format!("{environment} is not healthy: {e}"))
    } else if failed.is_empty() {
        let passed = checks
            .iter()
            .filter(|c| c.status == CheckStatus::Passed)
            .count();
        (
            exit::SUCCESS,
            format!("{environment} is healthy: {passed} check(s) passed"),
        )
    } else {
        (
            exit::INCONSISTENT,
            format!(
                "{environment} is not healthy: {} failed",
                failed.iter().map(|c| c.name).collect::<Vec<_>>().join(", ")
            ),
        )
    };
    let result = HealthResult {
        healthy: code == exit::SUCCESS,
        checks: &checks,
        exit_code: code,
    };
    Response {
        status: if code == exit::SUCCESS {
            Status::Success
        } else {
            Status::Error
        },
        line: Line::Plain,
        error,
        exit_code: code,
        ..Response::success(OPERATION, environment, Some(env.mode), message, &result)
    }
}

async fn checks_on<D: Database>(setup: &Setup, checks: &mut Vec<Check>) -> Result<(), Error> {
    let env = &setup.env;
    let opts = ConnectOptions {
        wait: env.connect_wait,
        lock_wait: env.lock_timeout,
        read_only: true,
    };
    let mut db = match D::connect(&env.target, opts).await {
        Ok(db) => db,
        Err(e) => {
            checks.push(Check::new(
                "connectivity",
                CheckStatus::Failed,
                e.to_string(),
            ));
            return Err(e.into());
        }
    };
    let result = run_checks(setup, &mut db, checks).await;
    db.close().await;
    result
}

async fn run_checks<D: Database>(
    setup: &Setup,
    db: &mut D,
    checks: &mut Vec<Check>,
) -> Result<(), Error> {
    let env = &setup.env;
    let version = db.server_version().await?;
    crate::pipeline::connect::supported(db).await?;
    checks.push(Check::new("connectivity", CheckStatus::Passed, version));
    if let Err(e) = crate::backup::marker::refuse_unfinished(db).await {
        checks.push(Check::new("restore", CheckStatus::Failed, e.to_string()));
        return Err(e);
    }
    let tables = health::foreign_tables(db).await?;
    match &setup.source {
        Source::Files { handler, set } => {
            match crate::pipeline::verify::read_history(db, *handler).await {
                Ok(records) => checks.extend(
                    health::history_checks(&env.name, *handler, set, &tables, records.as_deref()).0,
                ),
                // Another tool's table instead of this tool's: that check fails.
                Err(Error::Drift(drift)) => checks.push(Check::new(
                    "tracking_table",
                    CheckStatus::Failed,
                    drift.to_string(),
                )),
                Err(e) => return Err(e),
            }
        }
        Source::External(tool) => checks.push(match crate::external::pending(tool, env).await {
            Ok(pending) if pending.is_empty() => {
                Check::new("status_command", CheckStatus::Passed, "nothing pending")
            }
            Ok(pending) => Check::new(
                "status_command",
                CheckStatus::Passed,
                format!("{} pending: {}", pending.len(), pending.join(", ")),
            ),
            Err(e) => Check::new("status_command", CheckStatus::Failed, e.to_string()),
        }),
        Source::Tracking(_) => {}
    }
    checks.push(crate::pipeline::drift::schema_drift(db, env).await?.check);
    let backup_needed = env.backup_before_migrate;
    checks.extend(health::disk_space(db, env, backup_needed).await.0);
    checks.push(health::backup_tools(db, env, backup_needed).await.0);
    checks.push(health::app_check(env).await);
    Ok(())
}
