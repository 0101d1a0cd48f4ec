//! `dbdeploy diff ENV`: the live schema against the fingerprint recorded by the last deploy,
//! as a unified diff. Exit 0 when they match, 5 when they differ.

use serde_json::json;

use super::fail_early;
use crate::cli::GlobalArgs;
use crate::engine::{
    ConnectOptions, Database, Dialect, mysql::MySql, postgres::Postgres, sqlite::Sqlite,
};
use crate::error::{Error, exit};
use crate::output::Printer;
use crate::output::json::{self, Status};
use crate::pipeline::log;
use crate::schema::Snapshot;
use crate::settings::{EnvSettings, Settings};

const OPERATION: &str = "schema-diff";

/// Runs `diff`.
pub async fn run(global: &GlobalArgs, environment: &str, printer: &Printer) -> u8 {
    let env = match Settings::load(global).and_then(|s| s.environment(environment)) {
        Ok(env) => env,
        Err(e) => return fail_early(printer, OPERATION, environment, &e.into()),
    };
    let read = match env.target.dialect() {
        Dialect::Postgres => read::<Postgres>(&env).await,
        Dialect::MySql => read::<MySql>(&env).await,
        Dialect::Sqlite => read::<Sqlite>(&env).await,
    };
    let (recorded, live) = match read {
        Ok(x) => x,
        Err(e) => return fail_early(printer, OPERATION, environment, &e),
    };
    let Some((
        log::Baseline {
            run_id: run, at, ..
        },
        recorded,
    )) = recorded
    else {
        let message = format!(
            "No schema recorded for {environment} yet: it is recorded by `dbdeploy migrate {environment}`."
        );
        printer.result(&message);
        if printer.json_mode() {
            printer.json(&doc(
                &env,
                &message,
                json!({ "recorded": false, "drift": false }),
            ));
        }
        return exit::SUCCESS;
    };
    let short = run.get(..8).unwrap_or(&run);
    let (code, message, diff, changes) = if recorded.hash == live.hash {
        (
            exit::SUCCESS,
            format!(
                "No drift: the schema of {environment} matches the one recorded by run {short} ({at})."
            ),
            String::new(),
            Vec::new(),
        )
    } else {
        let diff = crate::schema::diff(
            &recorded.text,
            &live.text,
            &format!("recorded by run {short} ({at})"),
            &format!("live {environment}"),
        );
        let changes = crate::schema::changes(&recorded.text, &live.text)
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>();
        (
            exit::INCONSISTENT,
            format!(
                "Drift: the schema of {environment} changed since run {short} ({at}): {}",
                changes
                    .iter()
                    .take(5)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
            diff,
            changes,
        )
    };
    for line in diff.lines() {
        printer.line(line);
    }
    printer.result(&message);
    if printer.json_mode() {
        printer.json(&doc(
            &env,
            &message,
            json!({
                "recorded": true,
                "drift": code != exit::SUCCESS,
                "recorded_by_run": run,
                "recorded_at": at,
                "recorded_fingerprint": recorded.hash,
                "live_fingerprint": live.hash,
                "changes": changes,
                "diff": diff,
                "exit_code": code,
            }),
        ));
    }
    code
}

fn doc(env: &EnvSettings, message: &str, result: serde_json::Value) -> serde_json::Value {
    json::Document {
        status: Status::Success,
        operation: OPERATION,
        environment: &env.name,
        mode: Some(env.mode.as_str()),
        result,
        message,
        error: None,
        recovery: None,
    }
    .render()
}

type Recorded = Option<(log::Baseline, Snapshot)>;

async fn read<D: Database>(env: &EnvSettings) -> Result<(Recorded, Snapshot), Error> {
    let opts = ConnectOptions {
        wait: env.connect_wait,
        lock_wait: env.lock_timeout,
        read_only: true,
    };
    let mut db = D::connect(&env.target, opts).await?;
    let result = async {
        let recorded = log::last_schema(&mut db).await?;
        let live = crate::schema::snapshot(&mut db).await?;
        Ok::<_, Error>((recorded, live))
    }
    .await;
    db.close().await;
    result
}
