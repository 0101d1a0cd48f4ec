//! `dbdeploy health ENV`: the named health checks of `migrate`, alone, read-only and without
//! the lock. Exit 0 when every check passed (or was skipped), 5 when one failed, 1 when the
//! database cannot be reached.

use std::time::Duration;

use serde_json::json;

use super::{Prepared, Project, fail_early, load};
use crate::cli::{GlobalArgs, HealthArgs};
use crate::engine::{
    ConnectOptions, Database, Dialect, mysql::MySql, postgres::Postgres, sqlite::Sqlite,
};
use crate::error::{Error, exit};
use crate::external::ExternalTool;
use crate::handler::Handler;
use crate::migration::MigrationSet;
use crate::output::json::{self, Status};
use crate::output::{Event, Printer, Reporter};
use crate::pipeline::health::{self, Check, CheckStatus};
use crate::pipeline::{Context, RunOptions, read_history};
use crate::settings::EnvSettings;

const OPERATION: &str = "health-check";

/// Runs `health`.
pub async fn run(global: &GlobalArgs, args: HealthArgs, printer: &Printer) -> u8 {
    let environment = &args.environment;
    let (mut env, source) = match load(global, environment, None) {
        Ok(Project::Files(p)) => {
            let Prepared {
                env, handler, set, ..
            } = *p;
            (env, Source::Files(handler, set))
        }
        Ok(Project::External(p)) => (p.env, Source::External(p.tool)),
        Err(e) => return fail_early(printer, OPERATION, environment, &e),
    };
    if let Some(wait) = args.wait {
        env.connect_wait = Duration::from_secs(wait);
    }
    let target = env.target.describe();
    printer.event(Event::Start {
        command: "health",
        environment,
        mode: env.mode,
        target: &target,
        tool: crate::handler::tool_name(env.tool),
        dry_run: false,
    });
    let checks = match env.target.dialect() {
        Dialect::Postgres => checks::<Postgres>(&env, &source, printer).await,
        Dialect::MySql => checks::<MySql>(&env, &source, printer).await,
        Dialect::Sqlite => checks::<Sqlite>(&env, &source, printer).await,
    };
    let (checks, error) = match checks {
        Ok(c) => (c, None),
        Err((c, e)) => (c, Some(e)),
    };
    for c in &checks {
        c.report(printer);
    }
    let failed: Vec<&Check> = checks
        .iter()
        .filter(|c| c.status == CheckStatus::Failed)
        .collect();
    let (code, message) = if let Some(e) = &error {
        printer.error(e);
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
    printer.result(&message);
    if printer.json_mode() {
        printer.json(
            &json::Document {
                status: if code == exit::SUCCESS {
                    Status::Success
                } else {
                    Status::Error
                },
                operation: OPERATION,
                environment,
                mode: Some(env.mode.as_str()),
                result: json!({
                    "healthy": code == exit::SUCCESS,
                    "checks": checks,
                    "exit_code": code,
                }),
                message: &message,
                error: error.as_ref(),
                recovery: None,
            }
            .render(),
        );
    }
    code
}

/// Where the history comes from: a format's tracking table, or an external tool's status.
enum Source {
    /// A migrations folder and its format.
    Files(&'static dyn Handler, MigrationSet),
    /// An external tool.
    External(ExternalTool),
}

async fn checks<D: Database>(
    env: &EnvSettings,
    source: &Source,
    printer: &Printer,
) -> Result<Vec<Check>, (Vec<Check>, Error)> {
    let opts = ConnectOptions {
        wait: env.connect_wait,
        lock_wait: env.lock_timeout,
        read_only: true,
    };
    let mut checks = Vec::new();
    let mut db = match D::connect(&env.target, opts).await {
        Ok(db) => db,
        Err(e) => {
            checks.push(Check {
                name: "connectivity",
                status: CheckStatus::Failed,
                detail: e.to_string(),
            });
            return Err((checks, e.into()));
        }
    };
    let result = run_checks(env, source, printer, &mut db, &mut checks).await;
    db.close().await;
    match result {
        Ok(()) => Ok(checks),
        Err(e) => Err((checks, e)),
    }
}

async fn run_checks<D: Database>(
    env: &EnvSettings,
    source: &Source,
    printer: &Printer,
    db: &mut D,
    checks: &mut Vec<Check>,
) -> Result<(), Error> {
    let version = db.server_version().await?;
    checks.push(Check {
        name: "connectivity",
        status: CheckStatus::Passed,
        detail: version,
    });
    let tables = health::foreign_tables(db).await?;
    match source {
        Source::Files(handler, set) => {
            let options = RunOptions {
                dry_run: true,
                ..RunOptions::default()
            };
            let ctx = Context {
                env,
                handler: *handler,
                set,
                options: &options,
                interactive: false,
                reporter: printer,
            };
            let records = read_history(db, *handler).await?;
            checks.extend(health::history_checks(&ctx, &tables, records.as_deref()).0);
        }
        Source::External(tool) => checks.push(match crate::external::pending(tool, env).await {
            Ok(pending) if pending.is_empty() => Check {
                name: "status_command",
                status: CheckStatus::Passed,
                detail: "nothing pending".into(),
            },
            Ok(pending) => Check {
                name: "status_command",
                status: CheckStatus::Passed,
                detail: format!("{} pending: {}", pending.len(), pending.join(", ")),
            },
            Err(e) => Check {
                name: "status_command",
                status: CheckStatus::Failed,
                detail: e.to_string(),
            },
        }),
    }
    checks.push(health::schema_drift(db, env).await?.check);
    let backup_needed = env.backup_before_migrate;
    checks.extend(health::disk_space(db, env, backup_needed).await.0);
    checks.push(health::backup_tools(db, env, backup_needed).await.0);
    checks.push(health::app_check(env).await);
    Ok(())
}
