//! `dbdeploy rehearse ENV`: the pending migrations applied to a throw-away copy of ENV's
//! database (see `src/rehearse/`), and the response it ends with. Exit 0 when every pending
//! migration applied on the copy, 1 when one failed (named, with its error), 130 when
//! interrupted; the copy is dropped in every case.

use serde::Serialize;

use super::{Needs, setup};
use crate::error::{Error, exit};
use crate::output::{Line, Printer, Response, Status, to_value};
use crate::rehearse::{Applied, CopyInfo, Failed, Rehearsal};
use crate::settings::Settings;
use crate::source::Source;

const OPERATION: &str = "rehearse-migrations";

/// The JSON result.
#[derive(Serialize)]
struct RehearseResult<'a> {
    pending_migrations: &'a [String],
    migrations: &'a [Applied],
    total_duration_seconds: f64,
    failed_migration: Option<&'a Failed>,
    not_tried: Vec<&'a str>,
    copy: Option<&'a CopyInfo>,
    recorded_in: Option<String>,
}

/// Runs `rehearse`.
pub async fn run(settings: &Settings, environment: &str, printer: &Printer) -> Response {
    let setup = match setup(
        settings,
        environment,
        Needs::FilesOnly {
            command: "`dbdeploy rehearse`",
        },
    ) {
        Ok(s) => s,
        Err(e) => return Response::failed(OPERATION, environment, e),
    };
    let Source::Files { handler, set } = &setup.source else {
        unreachable!("FilesOnly gives a migrations folder");
    };
    let env = &setup.env;
    let rehearsal = crate::with_database!(env.target, D => {
        crate::rehearse::run::<D>(env, *handler, set, &setup.source, printer).await
    });
    respond(env, rehearsal)
}

fn respond(env: &crate::settings::EnvSettings, r: Rehearsal) -> Response {
    let name = &env.name;
    let total: f64 = r.applied.iter().map(|a| a.duration.as_secs_f64()).sum();
    let tried: Vec<&str> = r
        .applied
        .iter()
        .map(|a| a.name.as_str())
        .chain(r.failed.as_ref().map(|f| f.migration.as_str()))
        .collect();
    let not_tried: Vec<&str> = r
        .pending
        .iter()
        .map(String::as_str)
        .filter(|n| !tried.contains(n))
        .collect();
    let unchanged = match &r.copy {
        Some(c) if c.dropped => format!(" The copy was dropped; {name} was not changed."),
        Some(_) => format!(" The copy could NOT be dropped (see above); {name} was not changed."),
        None => format!(" {name} was not changed."),
    };
    let (status, message, code) = match (&r.failed, &r.error) {
        (_, Some(e)) => (Status::Error, String::new(), e.exit_code()),
        (Some(f), None) => (
            Status::Error,
            format!(
                "Rehearsal failed: `{}` failed on a copy of {name}'s database after {} migration(s) applied: {}{}.{unchanged}",
                f.migration,
                r.applied.len(),
                f.error,
                crate::pipeline::apply::position(&f.statement, &f.line),
            ),
            exit::FAILURE,
        ),
        (None, None) if r.pending.is_empty() => (
            Status::Success,
            format!("No pending migrations: {name} is up to date, nothing to rehearse."),
            exit::SUCCESS,
        ),
        (None, None) => (
            Status::Success,
            format!(
                "Rehearsed {} migration(s) on a copy of {name}'s database in {}.{unchanged} Next: `dbdeploy migrate {name} --dry-run` shows these durations.",
                r.applied.len(),
                crate::pipeline::event::duration(std::time::Duration::from_secs_f64(total)),
            ),
            exit::SUCCESS,
        ),
    };
    let result = to_value(&RehearseResult {
        pending_migrations: &r.pending,
        migrations: &r.applied,
        total_duration_seconds: crate::pipeline::trail::round_seconds(
            std::time::Duration::from_secs_f64(total),
        ),
        failed_migration: r.failed.as_ref(),
        not_tried,
        copy: r.copy.as_ref(),
        recorded_in: r.recorded.as_ref().map(|p| {
            p.strip_prefix(&env.working_dir)
                .unwrap_or(p)
                .display()
                .to_string()
        }),
    });
    match r.error {
        Some(Error::Interrupted(_)) => Response {
            operation: OPERATION,
            environment: name.clone(),
            mode: Some(env.mode),
            status: Status::Error,
            message: format!("Rehearsal interrupted.{unchanged}"),
            line: Line::Marked,
            result,
            error: None,
            recovery: None,
            finding: None,
            exit_code: exit::INTERRUPTED,
        },
        Some(e) => Response {
            result,
            mode: Some(env.mode),
            exit_code: code,
            ..Response::failed(OPERATION, name, e)
        },
        None => Response {
            operation: OPERATION,
            environment: name.clone(),
            mode: Some(env.mode),
            status,
            message,
            line: Line::Marked,
            result,
            error: None,
            recovery: None,
            finding: None,
            exit_code: code,
        },
    }
}
