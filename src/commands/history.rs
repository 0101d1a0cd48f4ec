//! `dbdeploy history ENV`: past runs from the database's `_dbdeploy_history`, newest first.

use serde::Serialize;

use crate::cli::HistoryArgs;
use crate::engine::{ConnectOptions, Database};
use crate::error::Error;
use crate::history::{self, PastRun};
use crate::output::{Line, Printer, Response, listing};
use crate::settings::{EnvSettings, Settings};

const OPERATION: &str = "deploy-history";

/// The runs.
#[derive(Serialize)]
struct Runs<'a> {
    runs: &'a [PastRun],
}

/// Runs `history`.
pub async fn run(settings: &Settings, args: HistoryArgs, printer: &Printer) -> Response {
    let environment = &args.environment;
    let env = match settings.environment(environment) {
        Ok(env) => env,
        Err(e) => return Response::failed(OPERATION, environment, e.into()),
    };
    let runs = crate::with_database!(env.target, D => read::<D>(&env, args.limit).await);
    let runs = match runs {
        Ok(r) => r,
        Err(e) => return Response::failed(OPERATION, environment, e),
    };
    listing::history(printer, &runs);
    let message = if runs.is_empty() {
        format!("No runs recorded in {environment} yet.")
    } else {
        format!("{} run(s) of {environment}, newest first", runs.len())
    };
    Response {
        line: Line::Plain,
        ..Response::success(
            OPERATION,
            environment,
            Some(env.mode),
            message,
            &Runs { runs: &runs },
        )
    }
}

async fn read<D: Database>(env: &EnvSettings, limit: usize) -> Result<Vec<PastRun>, Error> {
    let mut db = D::connect(&env.target, read_only(env)).await?;
    let runs = history::read_runs(&mut db, limit).await;
    db.close().await;
    Ok(runs?)
}

/// A read-only session for a command that only reads.
#[must_use]
pub fn read_only(env: &EnvSettings) -> ConnectOptions {
    ConnectOptions {
        wait: env.connect_wait,
        lock_wait: env.lock_timeout,
        read_only: true,
    }
}
