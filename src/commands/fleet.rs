//! `migrate ENV` and `status ENV` when ENV is a fleet. `migrate` resolves the targets, plans
//! every one read-only, asks for one approval covering all of them, then runs each target
//! through the one pipeline (its own lock, backup, apply, verify, log) with that approval,
//! as `fleet::schedule` orders them; a target whose plan under its lock is not the approved
//! one fails with nothing applied. Each target's step lines are kept, not printed: one line
//! per target when it finishes, then a summary table.
//!
//! The JSON document is a `fleet-deploy` (`fleet-preview` for a dry run, `fleet-status`),
//! not a `deploy-migrations`: its `result` lists targets, not migrations, and a consumer
//! that reads `operation` must not mistake one shape for the other.

use std::collections::HashSet;
use std::time::Instant;

use super::{Needs, source_for};
use crate::cli::{MigrateArgs, Shard};
use crate::config::ConfigError;
use crate::error::{Error, exit};
use crate::external::ExternalError;
use crate::fleet::Capture;
use crate::fleet::config::{FleetSettings, OnError};
use crate::fleet::events::Events;
use crate::fleet::report::{self, Counts, FleetResult, TargetReport, TargetStatus};
use crate::fleet::schedule::{self, Claim, Policy};
use crate::fleet::targets::{self, FleetTarget};
use crate::fleet::{domains, servers, waves};
use crate::output::human::{DIM, paint, status_mark};
use crate::output::{Line, Printer, Response, Status};
use crate::pipeline::approve::{self, Summary};
use crate::pipeline::deploy::Deploy;
use crate::pipeline::event::duration;
use crate::pipeline::{Ctx, Ended, RunOptions};
use crate::settings::Settings;
use crate::source::Source;

pub mod merge;
mod rollback;
mod status;

pub use rollback::rollback;
pub use status::status;

const DEPLOY: &str = "fleet-deploy";
const PREVIEW: &str = "fleet-preview";

/// Runs `migrate` on a fleet.
pub async fn migrate(
    settings: &Settings,
    fleet: &FleetSettings,
    args: MigrateArgs,
    printer: &Printer,
) -> Response {
    let operation = if args.dry_run { PREVIEW } else { DEPLOY };
    match deploy(settings, fleet, args, printer, operation).await {
        Ok(r) => r,
        Err(e) => Response::failed(operation, &fleet.environment, e),
    }
}

/// The targets and the source they share, checked before anything is read.
struct Prepared {
    targets: Vec<FleetTarget>,
    source: Source,
    /// Per target, why its database could not be identified (it cannot run).
    unreachable: Vec<Option<String>>,
    /// Per target, what it holds while it runs (its server, its lock domain).
    claims: Vec<Claim>,
    /// The whole fleet's fingerprint (all shards), and its number of targets.
    fingerprint: String,
    fleet_size: usize,
}

/// Resolves the targets, refuses duplicates and loads the migrations once; `None` for an
/// empty fleet (the response is then ready).
async fn prepare(
    settings: &Settings,
    fleet: &FleetSettings,
    operation: &'static str,
    needs: Needs<'_>,
    duplicates: bool,
    shard: Option<Shard>,
) -> Result<Result<Prepared, Response>, Error> {
    let name = &fleet.environment;
    let mut targets = targets::resolve(settings, fleet).await?;
    let Some(first) = targets.first() else {
        if fleet.require_targets {
            return Err(ConfigError::Usage(format!(
                "the fleet of environment `{name}` has no targets, and `require_targets = true`"
            ))
            .into());
        }
        let result = FleetResult {
            run_id: None,
            targets: &[],
            counts: Counts::default(),
            on_error: on_error(fleet),
            max_parallel: fleet.max_parallel,
            max_parallel_per_server: fleet.max_parallel_per_server,
            canary: fleet.canary,
            shard: shard.map(|s| s.to_string()),
            fleet_targets: 0,
            fleet_fingerprint: None,
        };
        let message = format!("the fleet of environment `{name}` has no targets: nothing to do");
        return Ok(Err(Response::success(
            operation, name, None, message, &result,
        )));
    };
    if let Some(missing) = fleet
        .canary_ids
        .iter()
        .flatten()
        .find(|id| !targets.iter().any(|t| &t.id == *id))
    {
        return Err(ConfigError::Usage(format!(
            "`[environments.{name}.fleet] canary` names `{missing}`, which is not a target of the fleet; nothing was changed"
        ))
        .into());
    }
    let dialect = first.env.target.dialect();
    if let Some(other) = targets.iter().find(|t| t.env.target.dialect() != dialect) {
        // The migrations are loaded once, for one engine's dialect.
        return Err(ConfigError::Usage(format!(
            "the targets of environment `{name}` must all be on one engine: `{}` is {} and `{}` is {}",
            first.id,
            dialect.name(),
            other.id,
            other.env.target.dialect().name()
        ))
        .into());
    }
    if first.env.promote_from.is_some() {
        return Err(ConfigError::Usage(format!(
            "`promote_from` is not supported on a fleet yet (environment `{name}`)"
        ))
        .into());
    }
    let source = source_for(&first.env, needs)?;
    let locks: Vec<Vec<String>> = targets
        .iter()
        .map(|t| domains::lock_names(&t.env.target, source.handler()))
        .collect();
    let mut claims: Vec<Claim> = targets
        .iter()
        .zip(domains::domains(&locks))
        .map(|(t, domain)| Claim {
            server: servers::server_of(&t.env.target),
            domain,
        })
        .collect();
    let migrations: Vec<(&str, &str)> = match &source {
        Source::Files { set, .. } => set
            .migrations
            .iter()
            .map(|m| (m.name.as_str(), m.checksum.as_str()))
            .collect(),
        other => vec![(other.tool_name(), "")],
    };
    let fingerprint =
        crate::fleet::shard::fingerprint(name, targets.iter().map(|t| t.id.as_str()), migrations);
    let fleet_size = targets.len();
    if let Some(shard) = shard {
        // A lock domain stays in one shard: its targets would wait for each other's lock.
        let mine: Vec<bool> = targets
            .iter()
            .zip(&claims)
            .map(|(t, c)| {
                crate::fleet::shard::of(c.domain.as_deref().unwrap_or(&t.id), shard.count)
                    == shard.index
            })
            .collect();
        let mut keep = mine.iter();
        targets.retain(|_| *keep.next().unwrap_or(&false));
        let mut keep = mine.iter();
        claims.retain(|_| *keep.next().unwrap_or(&false));
    }
    let unreachable = if duplicates {
        servers::check(&targets, fleet.max_parallel, fleet.max_parallel_per_server).await?;
        targets::refuse_duplicates(&targets, &claims, fleet).await?
    } else {
        vec![None; targets.len()]
    };
    Ok(Ok(Prepared {
        targets,
        source,
        unreachable,
        claims,
        fingerprint,
        fleet_size,
    }))
}

/// A fleet command's answer when its one approval was refused: the targets it would have
/// touched are marked cancelled by the caller, nothing ran.
fn refused(mut r: Response, e: crate::pipeline::approve::ApprovalError) -> Response {
    r.status = Status::Cancelled;
    r.line = Line::None;
    r.error = Some(e.into());
    r
}

/// The claims of the targets at `indexes`, in that order.
fn claims_of(claims: &[Claim], indexes: impl Iterator<Item = usize>) -> Vec<Claim> {
    indexes.map(|i| claims[i].clone()).collect()
}

fn on_error(fleet: &FleetSettings) -> &'static str {
    match fleet.on_error {
        OnError::Stop => "stop",
        OnError::Continue => "continue",
    }
}

async fn deploy(
    settings: &Settings,
    fleet: &FleetSettings,
    args: MigrateArgs,
    printer: &Printer,
    operation: &'static str,
) -> Result<Response, Error> {
    let name = &fleet.environment;
    let only: Option<HashSet<String>> = match &args.from {
        // Relative to the working directory, as `-c` is.
        Some(path) => Some(report::narrowed(
            &crate::settings::absolute(&settings.working_dir, path),
            &args.only,
            name,
        )?),
        None => None,
    };
    let Prepared {
        targets,
        source,
        unreachable,
        claims,
        fingerprint,
        fleet_size,
    } = match prepare(
        settings,
        fleet,
        operation,
        Needs::Files {
            to: args.to.as_deref(),
        },
        true,
        args.shard,
    )
    .await?
    {
        Ok(p) => p,
        Err(empty) => return Ok(empty),
    };
    if targets.is_empty() {
        // This shard of the fleet has no targets: nothing to do, and a report to merge.
        let whole = Whole {
            shard: args.shard,
            fingerprint: &fingerprint,
            size: fleet_size,
        };
        let message = format!(
            "shard {} of fleet `{name}` has none of its {fleet_size} target(s): nothing to do",
            args.shard.map(|s| s.to_string()).unwrap_or_default()
        );
        return Ok(respond(
            fleet,
            Doc {
                mode: crate::config::Mode::Deploy,
                operation,
                run_id: None,
            },
            printer,
            Vec::new(),
            message,
            exit::SUCCESS,
            &whole,
        ));
    }
    let to = match (&source, args.to) {
        (Source::External(_), Some(_)) => {
            return Err(ExternalError::Unsupported {
                what: "`migrate --to`".into(),
            }
            .into());
        }
        (source, to) => to.map(|to| source.migration_named(to)),
    };
    let first = &targets[0].env;
    let options = RunOptions {
        dry_run: false,
        yes: args.yes,
        skip_health_check: args.skip_health_check,
        skip_backup: args.skip_backup,
        allow_drift: args.allow_drift,
        fleet: None,
        fleet_run_id: None,
    };
    // One id for the whole fleet run, time-ordered (UUIDv7) so that runs sort by when they
    // started; a dry run changes nothing and has none.
    let run_id = (!args.dry_run).then(|| {
        args.run_id
            .clone()
            .unwrap_or_else(|| uuid::Uuid::now_v7().to_string())
    });
    let events = if args.events {
        Events::on(name, printer.json_mode(), run_id.as_deref())
    } else {
        Events::off(name)
    };
    events.fleet_started(targets.len(), args.dry_run);
    crate::pipeline::backup::refuse_skip(first, &options)?;
    banner(
        printer,
        "migrate",
        fleet,
        targets.len(),
        &source,
        first.mode,
        Scheduling::Deploy {
            dry_run: args.dry_run,
        },
    );
    // Ctrl-C from here stops the fleet at its next safe point instead of the process.
    let _guard = crate::interrupt::Guard::new();
    let mut reports: Vec<TargetReport> = targets
        .iter()
        .map(|t| TargetReport::untouched(&t.id, &t.labels, TargetStatus::NotStarted))
        .collect();
    let mut selected: Vec<usize> = (0..targets.len())
        .filter(|i| {
            only.as_ref()
                .is_none_or(|ids| ids.contains(&targets[*i].id))
        })
        .collect();
    for (i, r) in reports.iter_mut().enumerate() {
        if !selected.contains(&i) {
            r.status = TargetStatus::Skipped;
        }
    }
    let width = targets.iter().map(|t| t.id.len()).max().unwrap_or(0);
    let mut unplanned = 0;
    let considered = selected.len();
    // A target whose database could not be identified cannot be planned either.
    selected.retain(|&i| match &unreachable[i] {
        None => true,
        Some(e) => {
            printer.line(&format!(
                "  plan  {:<width$}  cannot plan: {e}",
                targets[i].id
            ));
            reports[i].status = TargetStatus::Failed;
            reports[i].error = Some(e.clone());
            events.planned(&targets[i].id, &[], Some(e));
            unplanned += 1;
            false
        }
    });
    // Every target planned read-only first: one approval covers what each will apply.
    let plan_options = RunOptions {
        dry_run: true,
        ..options.clone()
    };
    let plans = schedule::all(
        &selected,
        &claims_of(&claims, selected.iter().copied()),
        fleet.max_parallel,
        fleet.max_parallel_per_server,
        |&i| plan_one(&targets[i], &source, &plan_options, to.clone()),
    )
    .await;
    let mut to_run: Vec<(usize, Vec<String>)> = Vec::new();
    for (&i, plan) in selected.iter().zip(plans) {
        let r = &mut reports[i];
        match plan {
            Ok(pending) => {
                let what = if pending.is_empty() {
                    "up to date".to_owned()
                } else {
                    format!("{} pending", pending.len())
                };
                printer.line(&format!("  plan  {:<width$}  {what}", r.id));
                events.planned(&r.id, &pending, None);
                if pending.is_empty() {
                    r.status = TargetStatus::Success;
                } else {
                    to_run.push((i, pending.clone()));
                }
                r.pending = pending;
            }
            Err(e) => {
                unplanned += 1;
                printer.line(&format!("  plan  {:<width$}  cannot plan: {e}", r.id));
                events.planned(&r.id, &[], Some(&e));
                r.status = TargetStatus::Failed;
                r.error = Some(e);
            }
        }
    }
    let whole = Whole {
        shard: args.shard,
        fingerprint: &fingerprint,
        size: fleet_size,
    };
    let finish = |reports: Vec<TargetReport>, message: String, code: u8| {
        events.fleet_finished(Counts::of(&reports), code);
        respond(
            fleet,
            Doc {
                mode: first.mode,
                operation,
                run_id: run_id.as_deref(),
            },
            printer,
            reports,
            message,
            code,
            &whole,
        )
    };
    if crate::interrupt::requested() {
        return Ok(finish(
            reports,
            "interrupted (Ctrl-C) while planning: nothing was changed".into(),
            exit::INTERRUPTED,
        ));
    }
    let total: usize = to_run.iter().map(|(_, p)| p.len()).sum();
    if args.dry_run {
        let code = if unplanned > 0 {
            exit::FAILURE
        } else {
            exit::SUCCESS
        };
        let message = format!(
            "dry run: {total} migration(s) pending on {} of {} target(s); nothing was changed",
            to_run.len(),
            considered
        );
        for (i, _) in &to_run {
            reports[*i].status = TargetStatus::Success;
        }
        return Ok(finish(reports, message, code));
    }
    if unplanned > 0 && fleet.on_error == OnError::Stop {
        let message = format!(
            "{unplanned} target(s) could not be planned; nothing was changed (`on_error = \"stop\"`)"
        );
        return Ok(finish(reports, message, exit::FAILURE));
    }
    if to_run.is_empty() {
        let code = if unplanned > 0 {
            exit::FAILURE
        } else {
            exit::SUCCESS
        };
        let message = format!("no pending migrations on {} target(s)", selected.len());
        return Ok(finish(reports, message, code));
    }
    let cx = Ctx {
        env: first,
        source: &source,
        options: &options,
        interactive: settings.interactive,
        reporter: printer,
    };
    let summary = summary(fleet, &targets, &to_run, total, considered);
    let approved = match approve::approve(&cx, summary, ()).await {
        Ok(a) => a,
        Err(e) => {
            for (i, _) in &to_run {
                reports[*i].status = TargetStatus::Cancelled;
            }
            let message = e.to_string();
            return Ok(refused(finish(reports, message, exit::CANCELLED), e));
        }
    };
    let run_options = RunOptions {
        fleet: Some(approved.delegate()),
        fleet_run_id: run_id.clone(),
        ..options
    };
    let policy = Policy {
        max_parallel: fleet.max_parallel,
        per_server: fleet.max_parallel_per_server,
        on_error: fleet.on_error,
    };
    let run_claims = claims_of(&claims, to_run.iter().map(|(i, _)| *i));
    let items: Vec<waves::Item<'_>> = to_run
        .iter()
        .map(|(i, _)| waves::Item {
            id: &targets[*i].id,
            labels: &targets[*i].labels,
        })
        .collect();
    let phases = waves::phases(
        &items,
        fleet.canary,
        fleet.canary_ids.as_deref(),
        &fleet.waves,
    );
    let results = schedule::run(
        &to_run,
        &run_claims,
        &phases,
        policy,
        |(i, pending)| {
            events.started(&targets[*i].id);
            deploy_one(
                &targets[*i],
                &source,
                &run_options,
                pending.clone(),
                to.clone(),
            )
        },
        |r: &TargetReport| r.status != TargetStatus::Success,
        |_, r| {
            events.finished(r);
            printer.line(&finished_line(printer, r, width));
        },
    )
    .await;
    for ((i, _), result) in to_run.iter().zip(results) {
        if let Some(r) = result {
            reports[*i] = r;
        }
    }
    let counts = Counts::of(&reports);
    let applied: usize = reports.iter().map(|r| r.migrations_applied).sum();
    let interrupted = crate::interrupt::requested();
    let (message, code) = if interrupted {
        (
            format!("interrupted (Ctrl-C): {}", counts.sentence()),
            exit::INTERRUPTED,
        )
    } else if counts.failed > 0 || counts.cancelled > 0 {
        (
            format!(
                "fleet `{name}`: {} ({applied} migration(s) applied)",
                counts.sentence()
            ),
            exit::FAILURE,
        )
    } else {
        (
            format!(
                "fleet `{name}`: {} ({applied} migration(s) applied)",
                counts.sentence()
            ),
            exit::SUCCESS,
        )
    };
    // The id `rollback ENV --run` takes, shown where the fleet's outcome is.
    let message = match &run_id {
        Some(id) => format!("{message} · fleet run {id}"),
        None => message,
    };
    Ok(finish(reports, message, code))
}

/// How a fleet command schedules its targets, as its banner tells it.
#[derive(Clone, Copy)]
enum Scheduling {
    /// Canary, waves and `on_error` as configured.
    Deploy { dry_run: bool },
    /// Every target on its own: a failed restore stops nothing else, whatever `on_error` says.
    Rollback,
    /// Reads only.
    Read,
}

/// The start banner: the fleet instead of one database.
fn banner(
    printer: &Printer,
    command: &str,
    fleet: &FleetSettings,
    n: usize,
    source: &Source,
    mode: crate::config::Mode,
    scheduling: Scheduling,
) {
    let dry = match scheduling {
        Scheduling::Deploy { dry_run: true } => " (dry run)",
        _ => "",
    };
    printer.line(&paint(
        printer.color(),
        crate::output::human::BOLD,
        &format!(
            "dbdeploy {command}{dry} · environment {} · fleet of {n} target(s) · mode {}",
            fleet.environment,
            mode.as_str()
        ),
    ));
    let per_server = fleet
        .max_parallel_per_server
        .map(|n| format!(" · max_parallel_per_server {n}"))
        .unwrap_or_default();
    let policy = match scheduling {
        Scheduling::Deploy { .. } => {
            let canary = match &fleet.canary_ids {
                Some(ids) => ids.join(", "),
                None => fleet.canary.to_string(),
            };
            let waves = if fleet.waves.is_empty() {
                String::new()
            } else {
                let w: Vec<String> = fleet
                    .waves
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                format!(" · waves {}", w.join(", "))
            };
            format!(" · canary {canary}{waves} · on_error {}", on_error(fleet))
        }
        Scheduling::Rollback => {
            " · each target restored on its own: a failed restore stops no other".to_owned()
        }
        Scheduling::Read => String::new(),
    };
    printer.line(&paint(
        printer.color(),
        DIM,
        &format!(
            "  {} migrations · max_parallel {}{per_server}{policy}",
            source.tool_name(),
            fleet.max_parallel,
        ),
    ));
}

/// The one summary a person approves: what every target will apply.
fn summary(
    fleet: &FleetSettings,
    targets: &[FleetTarget],
    to_run: &[(usize, Vec<String>)],
    total: usize,
    selected: usize,
) -> Summary {
    let mut notes: Vec<String> = to_run
        .iter()
        .map(|(i, p)| format!("{}: {}", targets[*i].id, p.join(", ")))
        .collect();
    notes.push(format!(
        "each target: its own deploy lock, backup if configured, checksums verified, stops at its first failure; a target whose pending migrations change before its lock fails untouched; on_error = \"{}\"",
        on_error(fleet)
    ));
    Summary::Ask {
        headline: format!(
            "environment `{}` is protected: {total} migration(s) will be applied to {} of {selected} target(s)",
            fleet.environment,
            to_run.len()
        ),
        notes,
    }
}

/// Plans one target read-only (a dry run of the pipeline): its pending migrations.
async fn plan_one(
    t: &FleetTarget,
    source: &Source,
    options: &RunOptions,
    to: Option<String>,
) -> Result<Vec<String>, String> {
    let capture = Capture::default();
    let cx = Ctx {
        env: &t.env,
        source,
        options,
        interactive: false,
        reporter: &capture,
    };
    let op = Deploy {
        to,
        ..Deploy::default()
    };
    let finished =
        crate::with_database!(t.env.target, D => crate::pipeline::run::<D, Deploy>(&cx, &op).await);
    match finished.result {
        Ok(Ended::Previewed(plan) | Ended::NothingToDo(plan)) => Ok(plan.pending),
        Ok(Ended::Done(())) => Ok(Vec::new()),
        Err(e) => Err(e.to_string()),
    }
}

/// Runs one target through the pipeline with the fleet's approval, bound to `pending`.
async fn deploy_one(
    t: &FleetTarget,
    source: &Source,
    options: &RunOptions,
    pending: Vec<String>,
    to: Option<String>,
) -> TargetReport {
    let capture = Capture::default();
    let cx = Ctx {
        env: &t.env,
        source,
        options,
        interactive: false,
        reporter: &capture,
    };
    let op = Deploy {
        to,
        promote_from: None,
        approved: Some(pending.clone()),
    };
    let started = Instant::now();
    let finished =
        crate::with_database!(t.env.target, D => crate::pipeline::run::<D, Deploy>(&cx, &op).await);
    let trail = &finished.trail;
    let mut r = TargetReport::untouched(&t.id, &t.labels, TargetStatus::Success);
    r.pending = pending;
    r.duration_seconds = started.elapsed();
    r.migrations_applied = trail
        .external
        .as_ref()
        .map_or(trail.changed.len(), |x| x.applied.len());
    r.backup_id = trail.backup_id().map(str::to_owned);
    if let Err(e) = finished.result {
        // A step stopped by Ctrl-C (a health command, a dump) fails as itself: after a stop
        // was asked for, the target's run was cancelled either way.
        r.status = if e.interrupted() || crate::interrupt::requested() {
            TargetStatus::Cancelled
        } else {
            TargetStatus::Failed
        };
        r.error = Some(e.to_string());
    }
    r
}

/// `✓ acme  2 applied in 1.2 s`, `✗ beta  failed: …`: a target's line when it finishes.
fn finished_line(printer: &Printer, r: &TargetReport, width: usize) -> String {
    let c = printer.color();
    let took = duration(r.duration_seconds);
    match r.status {
        TargetStatus::Success => format!(
            "{} {:<width$}  {} applied in {took}",
            status_mark(c, Status::Success),
            r.id,
            r.migrations_applied
        ),
        TargetStatus::Cancelled => format!(
            "{} {:<width$}  cancelled after {} applied: {}",
            status_mark(c, Status::Cancelled),
            r.id,
            r.migrations_applied,
            r.error.as_deref().unwrap_or("")
        ),
        _ => format!(
            "{} {:<width$}  failed after {} applied: {}",
            status_mark(c, Status::Error),
            r.id,
            r.migrations_applied,
            r.error.as_deref().unwrap_or("")
        ),
    }
}

/// The whole fleet a (sharded) run is part of.
struct Whole<'a> {
    shard: Option<Shard>,
    fingerprint: &'a str,
    size: usize,
}

/// Which document a fleet run answers with.
#[derive(Clone, Copy)]
struct Doc<'a> {
    mode: crate::config::Mode,
    operation: &'static str,
    run_id: Option<&'a str>,
}

/// The fleet's response: the summary table, the counts, and a re-run hint after failures.
#[allow(clippy::too_many_arguments)]
fn respond(
    fleet: &FleetSettings,
    doc: Doc<'_>,
    printer: &Printer,
    reports: Vec<TargetReport>,
    message: String,
    code: u8,
    whole: &Whole<'_>,
) -> Response {
    let Doc {
        mode,
        operation,
        run_id,
    } = doc;
    let counts = Counts::of(&reports);
    // A dry run's plan lines are its summary.
    if operation == DEPLOY {
        printer.lines(&report::table(&reports));
    }
    let result = FleetResult {
        run_id,
        targets: &reports,
        counts,
        on_error: on_error(fleet),
        max_parallel: fleet.max_parallel,
        max_parallel_per_server: fleet.max_parallel_per_server,
        canary: fleet.canary,
        shard: whole.shard.map(|s| s.to_string()),
        fleet_targets: whole.size,
        fleet_fingerprint: Some(whole.fingerprint.to_owned()),
    };
    let mut r = Response::success(operation, &fleet.environment, Some(mode), message, &result);
    if code != exit::SUCCESS {
        r.status = Status::Error;
        r.error = Some(Error::Fleet(Box::new(report::FleetFailure {
            environment: fleet.environment.clone(),
            counts,
            failed: reports
                .iter()
                .filter(|t| t.status == TargetStatus::Failed)
                .map(|t| t.id.clone())
                .collect(),
            applied: reports.iter().map(|t| t.migrations_applied).sum(),
            interrupted: code == exit::INTERRUPTED,
            rollback_of: None,
        })));
    }
    r.exit_code = code;
    r
}
