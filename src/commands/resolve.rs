//! `dbdeploy resolve ENV --applied NAME | --rolled-back NAME`: Prisma's `migrate resolve`,
//! through the pipeline (lock, approval on protected environments, log).

use serde::Serialize;

use super::{Needs, execute, setup};
use crate::cli::ResolveArgs;
use crate::handler::Resolution;
use crate::output::{Printer, Response};
use crate::pipeline::RunOptions;
use crate::pipeline::resolve::Resolve;
use crate::settings::Settings;

const OPERATION: &str = "resolve-migration";

/// What was recorded.
#[derive(Serialize)]
struct Resolved<'a> {
    migration: &'a str,
    resolution: &'a str,
}

/// Runs `resolve`.
pub async fn run(settings: &Settings, args: ResolveArgs, printer: &Printer) -> Response {
    let (name, resolution) = match (args.applied, args.rolled_back) {
        (Some(n), None) => (n, Resolution::Applied),
        (None, Some(n)) => (n, Resolution::RolledBack),
        _ => unreachable!("clap requires exactly one of --applied and --rolled-back"),
    };
    let setup = match setup(
        settings,
        &args.environment,
        Needs::FilesOnly {
            command: "`dbdeploy resolve`",
        },
    ) {
        Ok(s) => s,
        Err(e) => return Response::failed(OPERATION, &args.environment, e),
    };
    let name = setup.source.migration_named(name);
    let options = RunOptions {
        yes: args.yes,
        ..RunOptions::default()
    };
    let op = Resolve { name, resolution };
    let finished = execute(&setup, &options, settings.interactive, printer, &op).await;
    let env = &setup.env.name;
    match finished.result {
        Ok(_) => {
            let what = match resolution {
                Resolution::Applied => "applied",
                Resolution::RolledBack => "rolled back",
            };
            let message = format!("Migration `{}` marked as {what} in {env}.", op.name);
            let result = Resolved {
                migration: &op.name,
                resolution: what,
            };
            Response::success(OPERATION, env, Some(setup.env.mode), message, &result)
        }
        Err(e) => Response::failed(OPERATION, env, e),
    }
}
