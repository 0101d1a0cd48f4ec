//! `rollback ENV --run RUN_ID` on a fleet: restore only the targets that fleet run changed,
//! each from the backup its own run took (backups are bound to their database, so a target
//! can only get its own). Every target's `_dbdeploy_history` says what the run did there
//! (rows tagged with the fleet run id, which no restore touches); one plan lists which target
//! restores from which backup and which the run left untouched, one approval covers it, and
//! each restore is the one pipeline's `Restore` (its lock, checksum, marker, verification,
//! log) with that approval.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::{Prepared, Scheduling, banner, prepare, refused};
use crate::backup::BackupStore;
use crate::cli::RollbackArgs;
use crate::config::ConfigError;
use crate::engine::{ConnectOptions, Database};
use crate::error::{Error, exit};
use crate::fleet::Capture;
use crate::fleet::config::{FleetSettings, OnError};
use crate::fleet::report::{Counts, FleetFailure};
use crate::fleet::schedule::{self, Policy};
use crate::fleet::targets::FleetTarget;
use crate::history::{self, FleetRunRow};
use crate::output::human::status_mark;
use crate::output::{Printer, Response, Status};
use crate::pipeline::approve::{self, Summary};
use crate::pipeline::restore::Restore;
use crate::pipeline::{Ctx, Ended, RunOptions};
use crate::settings::Settings;
use crate::source::Source;

const ROLLBACK: &str = "fleet-rollback";

/// What the rollback does, or did, to one target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
enum Outcome {
    /// Planned: restore from its backup (not carried out: refused approval, a dry stop).
    Planned,
    /// Restored from its backup and verified.
    Restored,
    /// The run did not change it: nothing to restore.
    Untouched,
    /// Its history could not be read, it has no backup of the run, or its restore failed.
    Failed,
    /// Not started: Ctrl-C stopped the rollback first.
    NotStarted,
    /// Approval was refused, or Ctrl-C stopped its restore.
    Cancelled,
}

/// One target in the report.
#[derive(Debug, Clone, Serialize)]
struct TargetRollback {
    id: String,
    labels: BTreeMap<String, String>,
    status: Outcome,
    /// What the run did there (`deploy-migrations: success, 3 applied`), when it ran there.
    run: Option<String>,
    /// The backup it is (or was to be) restored from.
    backup_id: Option<String>,
    /// Runs recorded after the fleet run, whose changes the restore discards.
    later_runs: i64,
    #[serde(serialize_with = "crate::pipeline::trail::seconds")]
    duration_seconds: Duration,
    error: Option<String>,
}

/// How many targets ended each way.
#[derive(Debug, Default, Serialize)]
struct RollbackCounts {
    total: usize,
    restored: usize,
    untouched: usize,
    failed: usize,
    not_started: usize,
    cancelled: usize,
}

impl RollbackCounts {
    fn of(targets: &[TargetRollback]) -> Self {
        let mut c = Self {
            total: targets.len(),
            ..Self::default()
        };
        for t in targets {
            match t.status {
                Outcome::Restored => c.restored += 1,
                Outcome::Untouched => c.untouched += 1,
                Outcome::Failed => c.failed += 1,
                Outcome::NotStarted | Outcome::Planned => c.not_started += 1,
                Outcome::Cancelled => c.cancelled += 1,
            }
        }
        c
    }

    /// As the fleet's counts, for the error a failed rollback ends with.
    fn as_fleet(&self) -> Counts {
        Counts {
            total: self.total,
            success: self.restored + self.untouched,
            failed: self.failed,
            skipped: 0,
            not_started: self.not_started,
            cancelled: self.cancelled,
        }
    }
}

#[derive(Serialize)]
struct RollbackResult<'a> {
    run_id: &'a str,
    targets: &'a [TargetRollback],
    counts: RollbackCounts,
}

/// Runs `rollback ENV --run RUN_ID` on a fleet.
pub async fn rollback(
    settings: &Settings,
    fleet: &FleetSettings,
    args: RollbackArgs,
    printer: &Printer,
) -> Response {
    let name = &fleet.environment;
    match run(settings, fleet, args, printer).await {
        Ok(r) => r,
        Err(e) => Response::failed(ROLLBACK, name, e),
    }
}

/// The run id as given, checked: a fleet run id is a UUID (`result.run_id`).
fn run_id(args: &RollbackArgs, environment: &str) -> Result<String, ConfigError> {
    let Some(given) = &args.run else {
        return Err(ConfigError::Usage(format!(
            "environment `{environment}` is a fleet: say which fleet run to undo with --run RUN_ID (`result.run_id` of its `dbdeploy migrate {environment} --json`, or `fleet run` in its last line)"
        )));
    };
    if args.to.is_some() || args.from_other_database {
        return Err(ConfigError::Usage(
            "--run restores each target from the backup its own run took: drop --to and --from-other-database".into(),
        ));
    }
    match uuid::Uuid::parse_str(given.trim()) {
        Ok(id) => Ok(id.hyphenated().to_string()),
        Err(_) => Err(ConfigError::Usage(format!(
            "--run `{}` is not a fleet run id: it is a UUID, `result.run_id` of a fleet's `dbdeploy migrate {environment} --json` (or `fleet run` in its last line)",
            crate::redact::scrub(given)
        ))),
    }
}

async fn run(
    settings: &Settings,
    fleet: &FleetSettings,
    args: RollbackArgs,
    printer: &Printer,
) -> Result<Response, Error> {
    let name = &fleet.environment;
    let run_id = run_id(&args, name)?;
    let Prepared {
        targets,
        source,
        unreachable,
        claims,
        ..
    } = match prepare(
        settings,
        fleet,
        ROLLBACK,
        super::Needs::Tracking,
        true,
        None,
    )
    .await?
    {
        Ok(p) => p,
        Err(empty) => return Ok(empty),
    };
    let first = &targets[0].env;
    banner(
        printer,
        "rollback",
        fleet,
        targets.len(),
        &source,
        first.mode,
        Scheduling::Rollback,
    );
    // Ctrl-C from here stops the rollback at its next safe point instead of the process.
    let _guard = crate::interrupt::Guard::new();
    let width = targets.iter().map(|t| t.id.len()).max().unwrap_or(0);
    let indexed: Vec<usize> = (0..targets.len()).collect();
    let found = schedule::all(
        &indexed,
        &claims,
        fleet.max_parallel,
        fleet.max_parallel_per_server,
        |&i| {
            let t = &targets[i];
            let unreachable = unreachable[i].clone();
            let run_id = run_id.as_str();
            async move {
                match unreachable {
                    Some(e) => Err(e),
                    None => read_run(t, run_id).await.map_err(|e| e.to_string()),
                }
            }
        },
    )
    .await;
    if found
        .iter()
        .all(|f| matches!(f, Ok(rows) if rows.is_empty()))
    {
        return Err(ConfigError::Usage(format!(
            "no target of fleet `{name}` has a run of fleet run {run_id} in its history: nothing was changed; `dbdeploy history` on a target lists its runs, and `result.run_id` of a fleet deploy's --json is the id to give"
        ))
        .into());
    }
    let mut reports: Vec<TargetRollback> = Vec::with_capacity(targets.len());
    let mut to_restore: Vec<(usize, String)> = Vec::new();
    for (i, (t, f)) in targets.iter().zip(found).enumerate() {
        let mut r = TargetRollback {
            id: t.id.clone(),
            labels: t.labels.clone(),
            status: Outcome::Untouched,
            run: None,
            backup_id: None,
            later_runs: 0,
            duration_seconds: Duration::ZERO,
            error: None,
        };
        let line = match f {
            Err(e) => {
                r.status = Outcome::Failed;
                r.error = Some(format!("cannot read its history: {e}"));
                format!("cannot read its history: {e}")
            }
            Ok(rows) => match changed(&rows) {
                None => "untouched by the run: nothing to restore".to_owned(),
                Some(row) => {
                    r.run = Some(format!(
                        "{}: {}, {} applied",
                        row.operation, row.status, row.migrations_applied
                    ));
                    r.later_runs = row.later;
                    match &row.backup_id {
                        Some(b) => {
                            r.status = Outcome::Planned;
                            r.backup_id = Some(b.clone());
                            to_restore.push((i, b.clone()));
                            let later = if row.later > 0 {
                                format!(" (discards {} later run(s) recorded after it)", row.later)
                            } else {
                                String::new()
                            };
                            format!("restore from {b}{later}")
                        }
                        None => {
                            let e = "the run changed it and took no backup (`backup_before_migrate` was off or skipped): it cannot be restored from one".to_owned();
                            r.status = Outcome::Failed;
                            r.error = Some(e.clone());
                            e
                        }
                    }
                }
            },
        };
        printer.line(&format!("  plan  {:<width$}  {line}", t.id));
        reports.push(r);
    }
    let finish = |reports: Vec<TargetRollback>, message: String, code: u8| {
        respond(fleet, first.mode, &run_id, reports, message, code)
    };
    if crate::interrupt::requested() {
        return Ok(finish(
            reports,
            "interrupted (Ctrl-C) while planning: nothing was changed".into(),
            exit::INTERRUPTED,
        ));
    }
    if to_restore.is_empty() {
        let code = if reports.iter().any(|r| r.status == Outcome::Failed) {
            exit::FAILURE
        } else {
            exit::SUCCESS
        };
        return Ok(finish(
            reports,
            format!("fleet run {run_id}: no target to restore; nothing was changed"),
            code,
        ));
    }
    let options = RunOptions {
        yes: args.yes,
        ..RunOptions::default()
    };
    let cx = Ctx {
        env: first,
        source: &source,
        options: &options,
        interactive: settings.interactive,
        reporter: printer,
    };
    let mut notes: Vec<String> = to_restore
        .iter()
        .map(|(i, b)| format!("{}: restore from {b}", targets[*i].id))
        .collect();
    let untouched = reports
        .iter()
        .filter(|r| r.status == Outcome::Untouched)
        .count();
    if untouched > 0 {
        notes.push(format!(
            "{untouched} target(s) the run did not change stay as they are"
        ));
    }
    let later: i64 = to_restore.iter().map(|(i, _)| reports[*i].later_runs).sum();
    if later > 0 {
        notes.push(format!(
            "{later} run(s) recorded after the fleet run on these targets will be undone too"
        ));
    }
    notes.push("every change made to these targets since their backup (schema and data) will be lost; each restore runs under its target's deploy lock and is verified".into());
    // Always asked, as a single database's restore is.
    let summary = Summary::Always {
        headline: format!(
            "{} target(s) of environment `{name}` will be replaced by their backups from fleet run {run_id}",
            to_restore.len()
        ),
        notes,
    };
    let approved = match approve::approve(&cx, summary, ()).await {
        Ok(a) => a,
        Err(e) => {
            for (i, _) in &to_restore {
                reports[*i].status = Outcome::Cancelled;
            }
            let message = e.to_string();
            return Ok(refused(finish(reports, message, exit::CANCELLED), e));
        }
    };
    let run_options = RunOptions {
        fleet: Some(approved.delegate()),
        ..options
    };
    // A failed restore does not stop the others: each target is restored or left as the run
    // left it, and the report says which.
    let policy = Policy {
        max_parallel: fleet.max_parallel,
        per_server: fleet.max_parallel_per_server,
        on_error: OnError::Continue,
    };
    let restore_claims = super::claims_of(&claims, to_restore.iter().map(|(i, _)| *i));
    let phases = [schedule::Phase {
        items: (0..to_restore.len()).collect(),
        canary: false,
    }];
    let results = schedule::run(
        &to_restore,
        &restore_claims,
        &phases,
        policy,
        |(i, backup)| restore_one(&targets[*i], &source, &run_options, backup.clone()),
        |r: &(Outcome, Duration, Option<String>)| r.0 != Outcome::Restored,
        |(i, _), r| {
            let c = printer.color();
            let (mark, what) = match r.0 {
                Outcome::Restored => (
                    status_mark(c, Status::Success),
                    format!(
                        "restored and verified in {}",
                        crate::pipeline::event::duration(r.1)
                    ),
                ),
                Outcome::Cancelled => (
                    status_mark(c, Status::Cancelled),
                    format!("cancelled: {}", r.2.as_deref().unwrap_or("")),
                ),
                _ => (
                    status_mark(c, Status::Error),
                    format!("failed: {}", r.2.as_deref().unwrap_or("")),
                ),
            };
            printer.line(&format!("{mark} {:<width$}  {what}", targets[*i].id));
        },
    )
    .await;
    for ((i, _), result) in to_restore.iter().zip(results) {
        let r = &mut reports[*i];
        match result {
            Some((status, took, error)) => {
                r.status = status;
                r.duration_seconds = took;
                r.error = error;
            }
            None => r.status = Outcome::NotStarted,
        }
    }
    let counts = RollbackCounts::of(&reports);
    let (message, code) = if crate::interrupt::requested() {
        (
            format!(
                "rollback of fleet run {run_id} interrupted (Ctrl-C): {} restored, {} not started",
                counts.restored, counts.not_started
            ),
            exit::INTERRUPTED,
        )
    } else {
        let code = if counts.failed + counts.cancelled > 0 {
            exit::FAILURE
        } else {
            exit::SUCCESS
        };
        (
            format!(
                "fleet `{name}`: rolled back fleet run {run_id}: {} restored, {} untouched, {} failed",
                counts.restored, counts.untouched, counts.failed
            ),
            code,
        )
    };
    Ok(finish(reports, message, code))
}

/// The row that says the run changed this target: the newest of the run's rows there that
/// applied something or took a backup (a run that only found nothing to do changed nothing).
fn changed(rows: &[FleetRunRow]) -> Option<&FleetRunRow> {
    rows.iter()
        .rev()
        .find(|r| r.migrations_applied > 0 || r.backup_id.is_some())
}

/// The target's history rows of fleet run `run_id`, on a read-only session.
async fn read_run(
    t: &FleetTarget,
    run_id: &str,
) -> Result<Vec<FleetRunRow>, crate::engine::DbError> {
    crate::with_database!(t.env.target, D => {
        let options = ConnectOptions {
            wait: t.env.connect_wait,
            lock_wait: t.env.lock_timeout,
            read_only: true,
        };
        let mut db = D::connect(&t.env.target, options).await?;
        let rows = history::fleet_run(&mut db, run_id).await;
        db.close().await;
        rows
    })
}

/// Restores one target from `backup` through the pipeline, with the fleet's approval.
async fn restore_one(
    t: &FleetTarget,
    source: &Source,
    options: &RunOptions,
    backup: String,
) -> (Outcome, Duration, Option<String>) {
    let capture = Capture::default();
    let cx = Ctx {
        env: &t.env,
        source,
        options,
        interactive: false,
        reporter: &capture,
    };
    let op = Restore {
        store: BackupStore::new(t.env.backup.dir.clone(), &t.env.name),
        to: Some(backup),
        from_other_database: false,
        chosen: std::sync::OnceLock::new(),
    };
    let started = Instant::now();
    let finished = crate::with_database!(t.env.target, D => crate::pipeline::run::<D, Restore>(&cx, &op).await);
    let took = started.elapsed();
    match finished.result {
        Ok(Ended::Done(_)) => (Outcome::Restored, took, None),
        Ok(_) => (
            Outcome::Failed,
            took,
            Some("the restore had nothing to do".into()),
        ),
        Err(e) if e.interrupted() || crate::interrupt::requested() => {
            (Outcome::Cancelled, took, Some(e.to_string()))
        }
        Err(e) => (Outcome::Failed, took, Some(e.to_string())),
    }
}

/// The rollback's response: the summary table and the counts.
fn respond(
    fleet: &FleetSettings,
    mode: crate::config::Mode,
    run_id: &str,
    reports: Vec<TargetRollback>,
    message: String,
    code: u8,
) -> Response {
    let counts = RollbackCounts::of(&reports);
    let fleet_counts = counts.as_fleet();
    let failed: Vec<String> = reports
        .iter()
        .filter(|t| t.status == Outcome::Failed)
        .map(|t| t.id.clone())
        .collect();
    let result = RollbackResult {
        run_id,
        targets: &reports,
        counts,
    };
    let mut r = Response::success(ROLLBACK, &fleet.environment, Some(mode), message, &result);
    if code != exit::SUCCESS && code != exit::CANCELLED {
        r.status = Status::Error;
        r.error = Some(Error::Fleet(Box::new(FleetFailure {
            environment: fleet.environment.clone(),
            counts: fleet_counts,
            failed,
            applied: 0,
            interrupted: code == exit::INTERRUPTED,
            rollback_of: Some(run_id.to_owned()),
        })));
    }
    r.exit_code = code;
    r
}
