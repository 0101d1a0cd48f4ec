//! `dbdeploy status ENV`: where every migration stands. Read-only, no lock.
//! Exit 0 up to date, 4 pending, 5 failed/modified/missing.

use serde::Serialize;

use super::{Needs, Setup, setup};
use crate::error::{Error, exit};
use crate::handler::Handler;
use crate::migration::MigrationSet;
use crate::output::{Line, Printer, Response, listing, to_value};
use crate::pipeline::{Ctx, Trail};
use crate::settings::EnvSettings;
use crate::settings::ExternalTool;
use crate::source::Source;

const OPERATION: &str = "migration-status";

/// One applied migration.
#[derive(Serialize)]
struct Applied<'a> {
    name: &'a str,
    finished_at: Option<&'a str>,
}

/// One failed migration and what the tool recorded.
#[derive(Serialize)]
struct Failed<'a> {
    name: &'a str,
    logs: Option<&'a str>,
}

/// Where every migration stands.
#[derive(Serialize)]
struct StatusResult<'a> {
    tracking_table_exists: bool,
    applied: Vec<Applied<'a>>,
    pending: Vec<&'a str>,
    failed: Vec<Failed<'a>>,
    modified: &'a [String],
    missing: &'a [String],
    unreachable: &'a [String],
    out_of_order: &'a [String],
    exit_code: u8,
}

/// What an external tool's `status_command` reports.
#[derive(Serialize)]
struct ExternalStatus<'a> {
    source: &'static str,
    pending: &'a [String],
    exit_code: u8,
}

/// Runs `status`.
pub async fn run(
    settings: &crate::settings::Settings,
    args: &crate::cli::StatusArgs,
    printer: &Printer,
) -> Response {
    let environment = args.environment.as_str();
    match settings.fleet(environment) {
        Ok(Some(fleet)) => {
            return super::fleet::status(settings, &fleet, args.shard, printer).await;
        }
        Ok(None) if args.shard.is_some() => {
            return Response::failed(
                OPERATION,
                environment,
                crate::config::ConfigError::Usage(format!(
                    "--shard splits a fleet, and environment `{environment}` is one database"
                ))
                .into(),
            );
        }
        Ok(None) => {}
        Err(e) => return Response::failed(OPERATION, environment, e.into()),
    }
    let setup = match setup(settings, environment, Needs::Files { to: None }) {
        Ok(s) => s,
        Err(e) => return Response::failed(OPERATION, environment, e),
    };
    let Setup { env, source } = &setup;
    crate::pipeline::start(printer, "status", env, source, false);
    match source {
        Source::Files { handler, set } => {
            match crate::with_database!(env.target, D => files::<D>(env, source, *handler, set, printer).await)
            {
                Ok(r) => r,
                Err(e) => Response::failed(OPERATION, environment, e),
            }
        }
        Source::External(tool) => external(env, tool, printer).await,
        Source::Tracking(_) => unreachable!("status reads the migrations folder"),
    }
}

async fn files<D: crate::engine::Database>(
    env: &EnvSettings,
    source: &Source,
    handler: &dyn Handler,
    set: &MigrationSet,
    printer: &Printer,
) -> Result<Response, Error> {
    let records = match read::<D>(env, source, handler, printer).await {
        // Another tool's table instead of this tool's is an inconsistent state, as drift is.
        Err(e @ Error::Drift(_)) => {
            return Ok(Response {
                exit_code: exit::INCONSISTENT,
                ..Response::failed(OPERATION, &env.name, e)
            });
        }
        records => records?,
    };
    let (table_exists, plan) = standing(set, handler, records);
    listing::status(printer, set, &plan);
    let name = &env.name;
    let (code, message, finding) = if let Some(drift) = plan.drift(name) {
        let err = Error::from(drift);
        (exit::INCONSISTENT, err.to_string(), Some(err))
    } else if !plan.pending.is_empty() {
        (
            exit::PENDING,
            format!(
                "{} pending migration(s); run `dbdeploy migrate {name}`",
                plan.pending.len()
            ),
            None,
        )
    } else {
        (exit::SUCCESS, format!("{name} is up to date"), None)
    };
    let result = StatusResult {
        tracking_table_exists: table_exists,
        applied: plan
            .applied
            .iter()
            .map(|(n, at)| Applied {
                name: n,
                finished_at: at.as_deref(),
            })
            .collect(),
        pending: plan.pending.iter().map(|m| m.name.as_str()).collect(),
        failed: plan
            .failed
            .iter()
            .map(|(n, logs)| Failed {
                name: n,
                logs: logs.as_deref(),
            })
            .collect(),
        modified: &plan.modified,
        missing: &plan.missing,
        unreachable: &plan.unreachable,
        out_of_order: &plan.out_of_order,
        exit_code: code,
    };
    let result = if printer.reads_result() {
        crate::output::to_value(&result)
    } else {
        serde_json::Value::Null
    };
    Ok(Response {
        line: Line::Plain,
        finding,
        exit_code: code,
        result,
        ..Response::success(OPERATION, name, Some(env.mode), message, &())
    })
}

/// The tracking table (`None`: no table yet) and dbdeploy's own list of deployed migrations,
/// read on a read-only session: what [`standing`] compares with the folder. `reporter` gets
/// the connect step.
///
/// # Errors
/// The database cannot be reached or read; [`Error::Drift`] when another tool's table is
/// where this tool's should be.
pub async fn read<D: crate::engine::Database>(
    env: &EnvSettings,
    source: &Source,
    handler: &dyn Handler,
    reporter: &dyn crate::pipeline::Reporter,
) -> Result<History, Error> {
    let cx = Ctx::read_only(env, source, reporter);
    let mut db: D = crate::pipeline::connect::connect(&cx, true, false, &mut Trail::new()).await?;
    if let Err(e) = crate::backup::marker::refuse_unfinished(&mut db).await {
        db.close().await;
        return Err(e);
    }
    let records = crate::pipeline::verify::read_history(&mut db, handler).await;
    let deployed = crate::history::deployed_for(&mut db, handler).await;
    db.close().await;
    Ok(History {
        records: records?,
        deployed: deployed?,
    })
}

/// What [`read`] found in the database.
pub struct History {
    /// The tool's tracking table; `None` when there is none yet.
    pub records: Option<Vec<crate::migration::AppliedRecord>>,
    /// What dbdeploy's own history says was deployed (for unreachable migrations).
    pub deployed: Vec<String>,
}

/// Where every migration of `set` stands, from what [`read`] found; and whether the tracking
/// table exists.
#[must_use]
pub fn standing<'a>(
    set: &'a MigrationSet,
    handler: &dyn Handler,
    history: History,
) -> (bool, crate::pipeline::pending::Plan<'a>) {
    let exists = history.records.is_some();
    let records = history.records.unwrap_or_default();
    let mut plan = crate::pipeline::pending::plan(set, &records, handler);
    plan.unreachable = handler.unreachable(set, &records, &history.deployed);
    (exists, plan)
}

/// `status` for an external tool: what its `status_command` reports pending. Applied migrations
/// are in the tool's own history, which its own status command shows.
async fn external(env: &EnvSettings, tool: &ExternalTool, printer: &Printer) -> Response {
    let name = &env.name;
    let pending = match crate::external::pending(tool, env).await {
        Ok(pending) => pending,
        Err(e) => return Response::failed(OPERATION, name, e.into()),
    };
    listing::external_pending(printer, &pending);
    let (code, message) = if pending.is_empty() {
        (exit::SUCCESS, format!("{name} is up to date"))
    } else {
        (
            exit::PENDING,
            format!(
                "{} pending migration(s); run `dbdeploy migrate {name}`",
                pending.len()
            ),
        )
    };
    let result = to_value(&ExternalStatus {
        source: "status_command",
        pending: &pending,
        exit_code: code,
    });
    Response {
        line: Line::Plain,
        exit_code: code,
        result,
        ..Response::success(OPERATION, name, Some(env.mode), message, &())
    }
}
