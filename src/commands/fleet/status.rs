//! `status ENV` on a fleet: every target read-only, at most `max_parallel` at once; exit 4
//! when any target has pending migrations, 5 when any is inconsistent, 1 when one cannot be
//! read.

use serde::Serialize;

use super::{Prepared, Scheduling, banner, prepare};
use crate::error::{Error, exit};
use crate::fleet::Capture;
use crate::fleet::config::FleetSettings;
use crate::fleet::schedule;
use crate::fleet::targets::FleetTarget;
use crate::output::human::status_mark;
use crate::output::{Line, Printer, Response, Status, to_value};
use crate::settings::Settings;
use crate::source::Source;

const STATUS: &str = "fleet-status";

/// One target in `status`.
#[derive(Debug, Serialize)]
struct TargetStanding {
    id: String,
    labels: std::collections::BTreeMap<String, String>,
    /// `up_to_date`, `pending`, `inconsistent` or `failed` (not readable).
    status: &'static str,
    applied: usize,
    pending: Vec<String>,
    failed: Vec<String>,
    error: Option<String>,
}

/// The `result` of a `fleet-status` document.
#[derive(Serialize)]
struct StatusResult<'a> {
    targets: &'a [TargetStanding],
    counts: &'a StatusCounts,
    exit_code: u8,
}

/// How many targets stand each way.
#[derive(Debug, Default, Serialize)]
struct StatusCounts {
    total: usize,
    up_to_date: usize,
    pending: usize,
    inconsistent: usize,
    failed: usize,
}

/// Runs `status` on a fleet: every target read-only, at most `max_parallel` at once.
pub async fn status(
    settings: &Settings,
    fleet: &FleetSettings,
    shard: Option<crate::cli::Shard>,
    printer: &Printer,
) -> Response {
    let name = &fleet.environment;
    let Prepared {
        targets,
        source,
        claims,
        ..
    } = match prepare(
        settings,
        fleet,
        STATUS,
        super::Needs::Files { to: None },
        false,
        shard,
    )
    .await
    {
        Ok(Ok(p)) if p.targets.is_empty() => {
            let message = format!("fleet `{name}`: this shard has none of its targets");
            return Response::success(
                STATUS,
                name,
                None,
                message,
                &StatusResult {
                    targets: &[],
                    counts: &StatusCounts::default(),
                    exit_code: exit::SUCCESS,
                },
            );
        }
        Ok(Ok(p)) => p,
        Ok(Err(empty)) => return empty,
        Err(e) => return Response::failed(STATUS, name, e),
    };
    let mode = targets[0].env.mode;
    banner(
        printer,
        "status",
        fleet,
        targets.len(),
        &source,
        mode,
        Scheduling::Read,
    );
    let standings = schedule::all(
        &targets,
        &claims,
        fleet.max_parallel,
        fleet.max_parallel_per_server,
        |t| standing(t, &source),
    )
    .await;
    let width = targets.iter().map(|t| t.id.len()).max().unwrap_or(0);
    let mut counts = StatusCounts {
        total: standings.len(),
        ..StatusCounts::default()
    };
    let c = printer.color();
    for s in &standings {
        let (mark, what) = match s.status {
            "up_to_date" => {
                counts.up_to_date += 1;
                (
                    status_mark(c, Status::Success),
                    format!("{} applied · up to date", s.applied),
                )
            }
            "pending" => {
                counts.pending += 1;
                (
                    status_mark(c, Status::Cancelled),
                    format!("{} applied · {} pending", s.applied, s.pending.len()),
                )
            }
            "inconsistent" => {
                counts.inconsistent += 1;
                (
                    status_mark(c, Status::Error),
                    format!("inconsistent: {}", s.error.as_deref().unwrap_or("")),
                )
            }
            _ => {
                counts.failed += 1;
                (
                    status_mark(c, Status::Error),
                    format!("cannot read: {}", s.error.as_deref().unwrap_or("")),
                )
            }
        };
        printer.line(&format!("{mark} {:<width$}  {what}", s.id));
    }
    let code = if counts.failed > 0 {
        exit::FAILURE
    } else if counts.inconsistent > 0 {
        exit::INCONSISTENT
    } else if counts.pending > 0 {
        exit::PENDING
    } else {
        exit::SUCCESS
    };
    let message = format!(
        "fleet `{name}`: {} target(s): {} up to date, {} with pending migrations, {} inconsistent, {} not readable",
        counts.total, counts.up_to_date, counts.pending, counts.inconsistent, counts.failed
    );
    let result = to_value(&StatusResult {
        targets: &standings,
        counts: &counts,
        exit_code: code,
    });
    Response {
        line: Line::Plain,
        exit_code: code,
        result,
        ..Response::success(STATUS, name, Some(mode), message, &())
    }
}

/// Where one target stands, read-only.
async fn standing(t: &FleetTarget, source: &Source) -> TargetStanding {
    let mut s = TargetStanding {
        id: t.id.clone(),
        labels: t.labels.clone(),
        status: "up_to_date",
        applied: 0,
        pending: Vec::new(),
        failed: Vec::new(),
        error: None,
    };
    match source {
        Source::Files { handler, set } => {
            let capture = Capture::default();
            let read = crate::with_database!(t.env.target, D => crate::commands::status::read::<D>(&t.env, source, *handler, &capture).await);
            match read {
                Err(e @ Error::Drift(_)) => {
                    s.status = "inconsistent";
                    s.error = Some(e.to_string());
                }
                Err(e) => {
                    s.status = "failed";
                    s.error = Some(e.to_string());
                }
                Ok(history) => {
                    let (_, plan) = crate::commands::status::standing(set, *handler, history);
                    s.applied = plan.applied.len();
                    s.pending = plan.pending.iter().map(|m| m.name.clone()).collect();
                    s.failed = plan.failed.iter().map(|(n, _)| n.clone()).collect();
                    if let Some(drift) = plan.drift(&t.env.name) {
                        s.status = "inconsistent";
                        s.error = Some(drift.to_string());
                    } else if !s.pending.is_empty() {
                        s.status = "pending";
                    }
                }
            }
        }
        Source::External(tool) => match crate::external::pending(tool, &t.env).await {
            Ok(pending) => {
                if !pending.is_empty() {
                    s.status = "pending";
                }
                s.pending = pending;
            }
            Err(e) => {
                s.status = "failed";
                s.error = Some(e.to_string());
            }
        },
        Source::Tracking(_) => {}
    }
    s
}
