//! A deploy through an external tool (`migration_tool = "command"`). The tool applies its own
//! migrations and keeps its own history; the deploy's plan is what its `status_command` reports
//! pending, its apply step is `apply_command` (streamed), and verification asks
//! `status_command` again. Everything else — checks, lock, drift, approval, backup, health
//! after, restore, log — is the pipeline's, as for any deploy.

use std::time::Duration;

use serde::Serialize;

use super::approve::{Approved, Summary};
use super::deploy::DeployPlan;
use super::event::duration;
use super::health::HealthAfterError;
use super::trail::seconds;
use super::{Ctx, Event, Outcome, Trail};
use crate::backup::RollbackOutcome;
use crate::engine::Database;
use crate::error::Error;
use crate::external::{self, ExternalError, ExternalTool};

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
    /// Its last lines of output, when it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_output: Option<Vec<String>>,
}

/// The plan: what `status_command` reports pending, asked under the lock after the drift
/// check (another deploy may have applied migrations while this one waited).
///
/// # Errors
/// Drift, or `status_command` failing.
pub async fn plan<D: Database>(
    cx: &Ctx<'_>,
    db: &mut D,
    tool: &ExternalTool,
    trail: &mut Trail,
) -> Result<DeployPlan, Error> {
    trail.external.get_or_insert_with(ExternalRun::default);
    super::drift::step(cx, db, trail).await?;
    let pending = match external::pending(tool, cx.env).await {
        Ok(p) => p,
        Err(e) => {
            cx.step("pending", Outcome::Failed, e.to_string());
            return Err(e.into());
        }
    };
    if pending.is_empty() {
        cx.step(
            "pending",
            Outcome::Ok,
            "no pending migrations (status_command printed none)".into(),
        );
    } else {
        cx.step(
            "pending",
            Outcome::Ok,
            format!("{} pending (reported by status_command)", pending.len()),
        );
    }
    Ok(DeployPlan {
        pending,
        ..DeployPlan::default()
    })
}

/// A dry run: the names, and the command that was not run.
pub fn preview(cx: &Ctx<'_>, tool: &ExternalTool, plan: &DeployPlan) {
    for name in &plan.pending {
        cx.reporter.event(Event::Note(format!("· {name}")));
    }
    cx.step(
        "preview",
        Outcome::Ok,
        format!(
            "dry run: apply_command (`{}`) was not run; nothing was changed",
            tool.apply
        ),
    );
}

/// What a person sees before `Proceed?`.
#[must_use]
pub fn summary(cx: &Ctx<'_>, tool: &ExternalTool, plan: &DeployPlan) -> Summary {
    let mut notes: Vec<String> = plan.pending.iter().map(|n| format!("· {n}")).collect();
    notes.push(format!("command: {}", tool.apply));
    let backup = super::backup::safeguard(cx.env, cx.options);
    notes.push(format!(
        "safeguards: deploy lock held · {backup} · status_command re-run to verify"
    ));
    Summary::Ask {
        headline: format!(
            "environment `{}` is protected: apply_command will apply {} migration(s)",
            cx.env.name,
            plan.pending.len()
        ),
        notes,
    }
}

/// Runs `apply_command`; after a failure, restores this run's backup when the environment asks
/// for it, and checks the restore with `status_command`.
///
/// # Errors
/// [`ExternalError::Apply`], with what the restore did.
pub async fn apply<D: Database>(
    cx: &Ctx<'_>,
    db: &mut D,
    tool: &ExternalTool,
    approved: &Approved<DeployPlan>,
    trail: &mut Trail,
) -> Result<(), Error> {
    let pending = &approved.plan().pending;
    cx.reporter.event(Event::Note(format!(
        "running apply_command: {}",
        tool.apply
    )));
    let applied = external::apply(tool, cx.env, pending, |line| {
        cx.reporter.event(Event::ToolOutput(line));
    })
    .await;
    match applied {
        Ok(took) => {
            run(trail).apply = Some(ApplyRun {
                duration: took,
                exit_code: Some(0),
                last_output: None,
            });
            cx.step(
                "apply",
                Outcome::Ok,
                format!("apply_command exited 0 in {}", duration(took)),
            );
            Ok(())
        }
        Err(mut failure) => {
            run(trail).apply = Some(ApplyRun {
                duration: failure.duration,
                exit_code: failure.exit_code,
                last_output: Some(failure.output.clone()),
            });
            cx.step(
                "apply",
                Outcome::Failed,
                format!("apply_command {}", failure.reason),
            );
            // What the tool got through before it failed, for the report (and the history).
            if let Ok(after) = external::pending(tool, cx.env).await {
                note_applied(trail, pending, after);
            }
            let outcome = super::restore::recover(
                cx,
                db,
                trail,
                cx.env.rollback_on_failure,
                "rollback_on_failure",
                false,
            )
            .await;
            let outcome = verify_restore(cx, tool, outcome, pending).await;
            failure.rollback = Some(outcome.clone());
            trail.rollback = Some(outcome);
            Err(ExternalError::Apply(failure).into())
        }
    }
}

/// Health after the deploy, then verification: `status_command` must report nothing pending.
///
/// # Errors
/// A failed health check (with what the restore did), `status_command` failing, or migrations
/// still pending.
pub async fn after<D: Database>(
    cx: &Ctx<'_>,
    db: &mut D,
    tool: &ExternalTool,
    trail: &mut Trail,
) -> Result<(), Error> {
    let pending = trail.pending.clone();
    if let Err(e) = super::after::run(cx, db, trail).await {
        return Err(match e {
            Error::HealthAfter(mut h) => {
                restore_checked(cx, tool, &mut h, &pending, trail).await;
                Error::HealthAfter(h)
            }
            other => other,
        });
    }
    let backup_id = trail.backup_id().map(str::to_owned);
    let after = match external::pending(tool, cx.env).await {
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
            cx.step("verify", Outcome::Failed, e.to_string());
            return Err(e.into());
        }
    };
    let still = after.clone();
    note_applied(trail, &pending, after);
    if still.is_empty() {
        let summary = format!(
            "status_command reports nothing pending ({} applied by the tool)",
            pending.len()
        );
        cx.step("verify", Outcome::Ok, summary.clone());
        trail.verified = Some(summary);
        Ok(())
    } else {
        let e = ExternalError::StillPending {
            environment: cx.env.name.clone(),
            pending: still,
            backup_id,
        };
        cx.step("verify", Outcome::Failed, e.to_string());
        Err(e.into())
    }
}

/// A restore after a failed health check is checked with `status_command` too.
async fn restore_checked(
    cx: &Ctx<'_>,
    tool: &ExternalTool,
    h: &mut HealthAfterError,
    pending: &[String],
    trail: &mut Trail,
) {
    if let Some(outcome) = h.rollback.take() {
        let outcome = verify_restore(cx, tool, outcome, pending).await;
        trail.rollback = Some(outcome.clone());
        h.rollback = Some(outcome);
    }
}

fn run(trail: &mut Trail) -> &mut ExternalRun {
    trail.external.get_or_insert_with(ExternalRun::default)
}

/// Records what `status_command` reports after `apply_command`, and so what it applied.
fn note_applied(trail: &mut Trail, before: &[String], after: Vec<String>) {
    let applied: Vec<String> = before
        .iter()
        .filter(|name| !after.contains(name))
        .cloned()
        .collect();
    trail.recorded = Some(applied.clone());
    let x = run(trail);
    x.applied = applied;
    x.pending_after = Some(after);
}

/// After a restore, the tool must report pending exactly what it reported before the deploy:
/// the schema fingerprint cannot see the rows of its history table.
async fn verify_restore(
    cx: &Ctx<'_>,
    tool: &ExternalTool,
    mut outcome: RollbackOutcome,
    before: &[String],
) -> RollbackOutcome {
    if !outcome.succeeded() {
        return outcome;
    }
    let problem = match external::pending(tool, cx.env).await {
        Ok(now) if now == before => {
            let detail = format!(
                "status_command reports the same {} pending migration(s) as before the deploy",
                before.len()
            );
            cx.step("rollback", Outcome::Ok, detail.clone());
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
    cx.step("rollback", Outcome::Failed, problem.clone());
    outcome.status = crate::backup::RollbackStatus::Failed;
    outcome.reason = Some(format!("the restore did not verify: {problem}"));
    outcome
}
