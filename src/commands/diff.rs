//! `dbdeploy diff ENV`: the live schema against the fingerprint recorded by the last deploy,
//! as a unified diff. Exit 0 when they match, 5 when they differ.

use serde::Serialize;

use crate::engine::Database;
use crate::error::{Error, exit};
use crate::history::{self, Baseline};
use crate::output::{Line, Printer, Response, listing};
use crate::schema::Snapshot;
use crate::settings::{EnvSettings, Settings};

const OPERATION: &str = "schema-diff";

/// No schema was recorded yet.
#[derive(Serialize)]
struct NotRecorded {
    recorded: bool,
    drift: bool,
}

/// The comparison.
#[derive(Serialize)]
struct Compared<'a> {
    recorded: bool,
    drift: bool,
    recorded_by_run: &'a str,
    recorded_at: &'a str,
    recorded_fingerprint: &'a str,
    live_fingerprint: &'a str,
    changes: &'a [String],
    diff: &'a str,
    exit_code: u8,
}

/// Runs `diff`.
pub async fn run(settings: &Settings, environment: &str, printer: &Printer) -> Response {
    let env = match settings.environment(environment) {
        Ok(env) => env,
        Err(e) => return Response::failed(OPERATION, environment, e.into()),
    };
    let read = crate::with_database!(env.target, D => read::<D>(&env).await);
    let (recorded, live) = match read {
        Ok(x) => x,
        Err(e) => return Response::failed(OPERATION, environment, e),
    };
    let mode = Some(env.mode);
    let Some((
        Baseline {
            run_id: run, at, ..
        },
        recorded,
    )) = recorded
    else {
        let message = format!(
            "No schema recorded for {environment} yet: it is recorded by `dbdeploy migrate {environment}`."
        );
        let result = NotRecorded {
            recorded: false,
            drift: false,
        };
        return Response {
            line: Line::Plain,
            ..Response::success(OPERATION, environment, mode, message, &result)
        };
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
    listing::diff(printer, &diff);
    let result = Compared {
        recorded: true,
        drift: code != exit::SUCCESS,
        recorded_by_run: &run,
        recorded_at: &at,
        recorded_fingerprint: &recorded.hash,
        live_fingerprint: &live.hash,
        changes: &changes,
        diff: &diff,
        exit_code: code,
    };
    Response {
        line: Line::Plain,
        exit_code: code,
        ..Response::success(OPERATION, environment, mode, message, &result)
    }
}

type Recorded = Option<(Baseline, Snapshot)>;

async fn read<D: Database>(env: &EnvSettings) -> Result<(Recorded, Snapshot), Error> {
    let mut db = D::connect(&env.target, super::history::read_only(env)).await?;
    let result = async {
        let recorded = history::last_schema(&mut db)
            .await?
            .map(|(base, text)| (base, Snapshot::from_text(text)));
        let live = crate::schema::snapshot(&mut db).await?;
        Ok::<_, Error>((recorded, live))
    }
    .await;
    db.close().await;
    result
}
