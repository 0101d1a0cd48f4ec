//! The deploy pipeline around an external tool (`migration_tool = "command"`). The tool applies
//! its own migrations and keeps its own history; dbdeploy runs every other step around it:
//!
//! validate → connect → health (pre) → lock → schema drift → pending (`status_command`) →
//! preview | approve → backup → apply (`apply_command`, streamed) → health (post) → verify
//! (`status_command` again) → log.
//!
//! dbdeploy takes a lock of its own, so that two dbdeploy runs never overlap; the tool still
//! takes its own (Knex, for one, has a lock table). On SQLite that lock is a file next to the
//! database (`<file>.dbdeploy-lock`): SQLite's write lock, which the other formats hold for the
//! whole run, would shut the tool out.

use std::path::Path;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::{Common, RunReport, approve, rollback};
use crate::engine::{Database, DbError, LockKey, Target};
use crate::error::Error;
use crate::external::{self, ExternalError, ExternalTool};
use crate::output::human::duration;
use crate::output::{Event, Outcome};

/// Everything the external pipeline reads.
pub struct ExternalContext<'a> {
    /// What every pipeline reads (its `handler` is `None`).
    pub common: Common<'a>,
    /// The tool's commands.
    pub tool: &'a ExternalTool,
}

/// What the tool's commands did in a run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ExternalRun {
    /// How `apply_command` ended, when it ran.
    pub apply: Option<ApplyRun>,
    /// What `status_command` reported pending after `apply_command` (also after a failure).
    pub pending_after: Option<Vec<String>>,
    /// Reported pending before `apply_command` and no longer after it.
    pub applied: Vec<String>,
}

/// How `apply_command` ended.
#[derive(Debug, Clone, Serialize)]
pub struct ApplyRun {
    /// How long it ran.
    #[serde(rename = "duration_seconds", serialize_with = "seconds")]
    pub duration: Duration,
    /// Its exit code (`None`: it could not start or was killed by a signal).
    pub exit_code: Option<i32>,
}

fn seconds<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64((d.as_secs_f64() * 1000.0).round() / 1000.0)
}

/// Runs `migrate` for an external tool against a database of engine `D`.
pub async fn run<D: Database>(
    ctx: &ExternalContext<'_>,
    operation: &str,
) -> (RunReport, Result<(), Error>) {
    let mut report = RunReport::new();
    report.external = Some(ExternalRun::default());
    ctx.common.step(
        "validate",
        Outcome::Ok,
        "status_command and apply_command configured".into(),
    );
    let mut db: Option<D> = None;
    let result = connected(ctx, &mut db, &mut report).await;
    super::conclude(&ctx.common, operation, db, &mut report, &result).await;
    (report, result)
}

async fn connected<D: Database>(
    ctx: &ExternalContext<'_>,
    slot: &mut Option<D>,
    report: &mut RunReport,
) -> Result<(), Error> {
    let c = &ctx.common;
    let (db, version) = super::health::connect_common::<D>(c, c.options.dry_run).await?;
    report.server_version = Some(version);
    let db = slot.insert(db);
    check_before(c, db, report).await?;
    if c.options.dry_run {
        return pending_and_after(ctx, db, report).await;
    }
    let waited = Instant::now();
    let lock = match DeployLock::take(c, db).await {
        Ok(lock) => lock,
        Err(e) => {
            c.step(
                "lock",
                Outcome::Failed,
                "another deploy holds the lock".into(),
            );
            return Err(e.into());
        }
    };
    report.locked = true;
    c.step(
        "lock",
        Outcome::Ok,
        format!("deploy lock taken in {}", duration(waited.elapsed())),
    );
    let result = pending_and_after(ctx, db, report).await;
    report.warnings.extend(lock.release(db).await);
    result
}

/// The pre-deploy checks that do not need the tool's history: free space and backup tools.
async fn check_before<D: Database>(
    c: &Common<'_>,
    db: &mut D,
    report: &mut RunReport,
) -> Result<(), Error> {
    use super::health::{self, CheckStatus};
    let needed = c.backup_needed();
    if c.options.skip_health_check {
        report.health_before = Some("skipped");
        c.step("health", Outcome::Skipped, "--skip-health-check".into());
        if needed {
            let (check, err) = health::backup_tools(db, c.env, true).await;
            check.report(c.reporter);
            report.checks.push(check);
            if let Some(e) = err {
                return Err(e.into());
            }
        }
        return Ok(());
    }
    let (mut checks, space_err) = health::disk_space(db, c.env, needed).await;
    let (tools, tools_err) = health::backup_tools(db, c.env, needed).await;
    checks.push(tools);
    let failed = checks.iter().any(|ch| ch.status == CheckStatus::Failed);
    for ch in &checks {
        if matches!(ch.status, CheckStatus::Failed | CheckStatus::Warning) {
            ch.report(c.reporter);
        }
    }
    let passed = checks
        .iter()
        .filter(|ch| ch.status == CheckStatus::Passed)
        .count();
    report.checks = checks;
    if !failed {
        report.health_before = Some("passed");
        c.step(
            "health",
            Outcome::Ok,
            format!(
                "{passed} checks passed; the tool's history is its own (status_command reads it)"
            ),
        );
        return Ok(());
    }
    report.health_before = Some("failed");
    match tools_err.or(space_err) {
        Some(e) => Err(e.into()),
        None => Err(Error::Unavailable {
            message: "a pre-deploy health check failed".into(),
            hint: "see the failed check above; nothing was changed".into(),
        }),
    }
}

async fn pending_and_after<D: Database>(
    ctx: &ExternalContext<'_>,
    db: &mut D,
    report: &mut RunReport,
) -> Result<(), Error> {
    let c = &ctx.common;
    super::drift_check(c, db, report).await?;
    // Asked under the lock: another deploy may have applied migrations while we waited.
    let pending = match external::pending(ctx.tool, c.env).await {
        Ok(p) => p,
        Err(e) => {
            c.step("pending", Outcome::Failed, e.to_string());
            return Err(e.into());
        }
    };
    report.pending.clone_from(&pending);
    if pending.is_empty() {
        c.step(
            "pending",
            Outcome::Ok,
            "no pending migrations (status_command printed none)".into(),
        );
        return Ok(());
    }
    c.step(
        "pending",
        Outcome::Ok,
        format!("{} pending (reported by status_command)", pending.len()),
    );
    if c.options.dry_run {
        for name in &pending {
            c.reporter.event(Event::Note(format!("· {name}")));
        }
        c.step(
            "preview",
            Outcome::Ok,
            format!(
                "dry run: apply_command (`{}`) was not run; nothing was changed",
                ctx.tool.apply
            ),
        );
        return Ok(());
    }

    let policy = approve::ApprovalPolicy {
        required: c.env.approval_required,
        yes: c.options.yes,
        interactive: c.interactive,
    };
    if policy.required && !policy.yes && policy.interactive {
        summary(ctx, &pending);
    }
    match approve::approve(Vec::new(), policy, &c.env.name).await {
        Ok(_) => {
            let how = if !policy.required {
                "not required"
            } else if policy.yes {
                "--yes"
            } else {
                "confirmed"
            };
            c.step("approve", Outcome::Ok, how.into());
        }
        Err(e) => {
            c.step("approve", Outcome::Failed, e.to_string());
            return Err(e.into());
        }
    }

    report.backup = Some(super::backup_step(c, db, &report.run_id).await?);

    c.reporter.event(Event::Note(format!(
        "running apply_command: {}",
        ctx.tool.apply
    )));
    let applied = external::apply(ctx.tool, c.env, &pending, |line| {
        c.reporter.event(Event::ToolOutput(line));
    })
    .await;
    match applied {
        Ok(took) => {
            external_run(report).apply = Some(ApplyRun {
                duration: took,
                exit_code: Some(0),
            });
            c.step(
                "apply",
                Outcome::Ok,
                format!("apply_command exited 0 in {}", duration(took)),
            );
        }
        Err(mut failure) => {
            external_run(report).apply = Some(ApplyRun {
                duration: failure.duration,
                exit_code: failure.exit_code,
            });
            c.step(
                "apply",
                Outcome::Failed,
                format!("apply_command {}", failure.reason),
            );
            // What the tool got through before it failed, for the report (and the history).
            if let Ok(after) = external::pending(ctx.tool, c.env).await {
                note_applied(report, &pending, after);
            }
            let outcome = super::auto_rollback(
                c,
                db,
                report,
                c.env.rollback_on_failure,
                "rollback_on_failure",
                false,
            )
            .await;
            let outcome = verify_restore(ctx, outcome, &pending).await;
            failure.rollback = Some(outcome.clone());
            report.rollback = Some(outcome);
            return Err(ExternalError::Apply(failure).into());
        }
    }

    if let Err(e) = super::health_after(c, db, report).await {
        return Err(match e {
            Error::HealthAfter(mut h) => {
                if let Some(outcome) = h.rollback.take() {
                    let outcome = verify_restore(ctx, outcome, &pending).await;
                    report.rollback = Some(outcome.clone());
                    h.rollback = Some(outcome);
                }
                Error::HealthAfter(h)
            }
            other => other,
        });
    }

    let backup_id = report
        .backup
        .as_ref()
        .and_then(super::backup::BackupStatus::id)
        .map(str::to_owned);
    let after = match external::pending(ctx.tool, c.env).await {
        Ok(after) => after,
        Err(e) => {
            let e = match e {
                ExternalError::Status {
                    environment,
                    reason,
                    output,
                    ..
                } => ExternalError::Status {
                    environment,
                    reason,
                    output,
                    after_apply: true,
                    backup_id,
                },
                other => other,
            };
            c.step("verify", Outcome::Failed, e.to_string());
            return Err(e.into());
        }
    };
    let still = after.clone();
    note_applied(report, &pending, after);
    if still.is_empty() {
        let summary = format!(
            "status_command reports nothing pending ({} applied by the tool)",
            pending.len()
        );
        c.step("verify", Outcome::Ok, summary.clone());
        report.verified = Some(summary);
        Ok(())
    } else {
        let e = ExternalError::StillPending {
            environment: c.env.name.clone(),
            pending: still,
            backup_id,
        };
        c.step("verify", Outcome::Failed, e.to_string());
        Err(e.into())
    }
}

fn external_run(report: &mut RunReport) -> &mut ExternalRun {
    report.external.get_or_insert_with(ExternalRun::default)
}

/// Records what `status_command` reports after `apply_command`, and so what it applied.
fn note_applied(report: &mut RunReport, before: &[String], after: Vec<String>) {
    let x = external_run(report);
    x.applied = before
        .iter()
        .filter(|name| !after.contains(name))
        .cloned()
        .collect();
    x.pending_after = Some(after);
}

/// After a restore, the tool must report pending exactly what it reported before the deploy:
/// the schema fingerprint cannot see the rows of its history table.
async fn verify_restore(
    ctx: &ExternalContext<'_>,
    mut outcome: rollback::RollbackOutcome,
    before: &[String],
) -> rollback::RollbackOutcome {
    if !outcome.succeeded() {
        return outcome;
    }
    let c = &ctx.common;
    let problem = match external::pending(ctx.tool, c.env).await {
        Ok(now) if now == before => {
            let detail = format!(
                "status_command reports the same {} pending migration(s) as before the deploy",
                before.len()
            );
            c.step("rollback", Outcome::Ok, detail.clone());
            outcome.verified.push(detail);
            return outcome;
        }
        Ok(now) => format!(
            "status_command reports {} pending migration(s) after the restore ({}) and {} before the deploy",
            now.len(),
            now.join(", "),
            before.len()
        ),
        Err(e) => format!("status_command cannot check the restore: {e}"),
    };
    c.step("rollback", Outcome::Failed, problem.clone());
    outcome.status = format!("failed: the restore did not verify: {problem}");
    outcome
}

/// What a person sees before `Proceed?`.
fn summary(ctx: &ExternalContext<'_>, pending: &[String]) {
    let c = &ctx.common;
    let r = c.reporter;
    r.event(Event::Warning(format!(
        "environment `{}` is protected: apply_command will apply {} migration(s)",
        c.env.name,
        pending.len()
    )));
    for name in pending {
        r.event(Event::Note(format!("· {name}")));
    }
    r.event(Event::Note(format!("command: {}", ctx.tool.apply)));
    let backup = super::backup_safeguard(c.env, c.options);
    r.event(Event::Note(format!(
        "safeguards: deploy lock held · {backup} · status_command re-run to verify"
    )));
}

/// dbdeploy's own deploy lock for an external tool.
enum DeployLock {
    /// Advisory locks on the server (PostgreSQL, MySQL).
    Server(Vec<LockKey>),
    /// An exclusive lock on a file next to the SQLite database.
    File(std::fs::File),
}

/// How often a held lock file is tried again.
const LOCK_POLL: Duration = Duration::from_millis(100);

impl DeployLock {
    async fn take<D: Database>(c: &Common<'_>, db: &mut D) -> Result<Self, DbError> {
        match &c.env.target {
            Target::Sqlite { path } => lock_file(path, c.env.lock_timeout)
                .await
                .map(DeployLock::File),
            _ => {
                crate::engine::lock_all(db, &[crate::handler::dbdeploy_lock()], c.env.lock_timeout)
                    .await
                    .map(DeployLock::Server)
            }
        }
    }

    async fn release<D: Database>(self, db: &mut D) -> Vec<String> {
        match self {
            DeployLock::Server(keys) => crate::engine::unlock_all(db, &keys).await,
            // The file stays: removing it would let a run that opened it before the removal
            // lock a file nobody else sees.
            DeployLock::File(file) => match file.unlock() {
                Ok(()) => Vec::new(),
                Err(e) => vec![format!("cannot release the deploy lock file: {e}")],
            },
        }
    }
}

async fn lock_file(db_file: &Path, timeout: Duration) -> Result<std::fs::File, DbError> {
    let mut name = db_file.file_name().unwrap_or_default().to_owned();
    name.push(".dbdeploy-lock");
    let path = db_file.with_file_name(name);
    let failed = |e: &dyn std::fmt::Display| DbError::Query {
        context: format!("cannot take the deploy lock {}", path.display()),
        message: e.to_string(),
        source: None,
    };
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| failed(&e))?;
    let deadline = Instant::now() + timeout;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(std::fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                tokio::time::sleep(LOCK_POLL).await;
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(DbError::LockTimeout {
                    seconds: timeout.as_secs(),
                    holder: format!(" (another dbdeploy run holds {})", path.display()),
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(failed(&e)),
        }
    }
}
