//! `dbdeploy migrate`: apply what is pending. With a migrations folder, dbdeploy applies each
//! migration and writes the tool's tracking row; with an external tool, its `apply_command`
//! does (see `pipeline/external.rs`). Either way the steps around it are the pipeline's:
//! checks before, drift under the lock, approval, backup, health after, verification.

use std::collections::HashMap;
use std::time::Instant;

use super::approve::{Approved, Summary};
use super::event::duration;
use super::preview::MigrationPreview;
use super::{Ctx, Event, Operation, Outcome, Trail};
use crate::engine::Database;
use crate::error::Error;
use crate::handler::Handler;
use crate::migration::MigrationSet;
use crate::source::Source;

/// Apply the pending migrations, up to `to` when given (a migration name).
#[derive(Debug, Default)]
pub struct Deploy {
    /// Stop after this migration (inclusive).
    pub to: Option<String>,
    /// The environment that must have applied each migration first (`promote_from`).
    pub promote_from: Option<crate::settings::EnvSettings>,
    /// A fleet's target: the pending migrations the fleet's one approval covered. Any other
    /// plan, before the lock or under it, fails the target with nothing applied.
    pub approved: Option<Vec<String>>,
}

/// What a deploy will apply.
#[derive(Debug, Default)]
pub struct DeployPlan {
    /// The pending migrations selected, in apply order.
    pub pending: Vec<String>,
    /// Their positions in the migrations folder (a folder's deploy).
    pub selected: Vec<usize>,
    /// Their previews (a folder's deploy).
    pub previews: Vec<MigrationPreview>,
    /// Pending migrations after the `--to` target, which this run leaves pending.
    pub left_after: Vec<String>,
    /// PostgreSQL: sessions holding locks now on the tables the migrations change.
    pub blockers: Vec<String>,
    /// Says which estimates a rehearsal measured, when one did.
    pub rehearsed: Option<String>,
}

impl Operation for Deploy {
    type Plan = DeployPlan;
    type Done = ();

    const COMMAND: &'static str = "migrate";
    const OPERATION: &'static str = "deploy-migrations";

    fn operation(&self, dry_run: bool) -> &'static str {
        if dry_run {
            "preview-migrations"
        } else {
            "deploy-migrations"
        }
    }

    async fn check<D: Database>(
        &self,
        cx: &Ctx<'_>,
        db: &mut D,
        trail: &mut Trail,
    ) -> Result<(), Error> {
        super::precheck::run(cx, db, trail).await
    }

    async fn plan<D: Database>(
        &self,
        cx: &Ctx<'_>,
        db: &mut D,
        trail: &mut Trail,
    ) -> Result<DeployPlan, Error> {
        let plan = match cx.source {
            Source::Files { handler, set } => {
                let promote = self.promote_from.as_ref();
                plan_files(cx, db, *handler, set, self.to.as_deref(), promote, trail).await?
            }
            Source::External(_) if self.promote_from.is_some() => {
                let from = self.promote_from.as_ref().expect("checked");
                return Err(super::promote::unsupported(from));
            }
            Source::External(tool) => super::external::plan(cx, db, tool, trail).await?,
            Source::Tracking(_) => DeployPlan::default(),
        };
        if let Some(approved) = &self.approved {
            let changes = names_changed(Some(approved), &plan.pending, "applied");
            if !changes.is_empty() {
                let e = super::approve::ApprovalError::PlanChanged {
                    environment: cx.env.name.clone(),
                    changes,
                };
                cx.step("approve", Outcome::Failed, e.to_string());
                return Err(e.into());
            }
        }
        trail.planned = plan.pending.len();
        trail.pending.clone_from(&plan.pending);
        trail.left_after.clone_from(&plan.left_after);
        Ok(plan)
    }

    fn is_empty(&self, plan: &DeployPlan) -> bool {
        plan.pending.is_empty()
    }

    fn preview(&self, cx: &Ctx<'_>, plan: &DeployPlan) {
        match cx.source {
            Source::External(tool) => super::external::preview(cx, tool, plan),
            _ => {
                for p in &plan.previews {
                    cx.reporter.event(Event::Preview(p));
                }
                if let Some(note) = &plan.rehearsed {
                    cx.reporter.event(Event::Note(note.clone()));
                }
                for b in &plan.blockers {
                    cx.reporter.event(Event::Warning(format!("waits now: {b}")));
                }
                if let Some(blocked) = blocked(cx, plan) {
                    cx.reporter.event(Event::Warning(format!(
                        "a deploy would be refused: {blocked}"
                    )));
                }
                cx.reporter
                    .event(Event::Note(super::preview::ddl_lock_line(cx.env)));
                cx.step(
                    "preview",
                    Outcome::Ok,
                    "dry run: nothing was changed".into(),
                );
            }
        }
    }

    fn summary(&self, cx: &Ctx<'_>, plan: &DeployPlan) -> Summary {
        if let Source::External(tool) = cx.source {
            return super::external::summary(cx, tool, plan);
        }
        let mut notes: Vec<String> = plan
            .previews
            .iter()
            .flat_map(|p| p.summary_lines(true))
            .collect();
        notes.extend(plan.blockers.iter().map(|b| format!("waits now: {b}")));
        notes.extend(plan.rehearsed.clone());
        let backup = super::backup::safeguard(cx.env, cx.options);
        notes.push(super::preview::ddl_lock_line(cx.env));
        notes.push(format!(
            "safeguards: deploy lock held · checksums verified · {backup} · stops at the first failure"
        ));
        Summary::Ask {
            headline: format!(
                "environment `{}` is protected: {} migration(s) will be applied",
                cx.env.name,
                plan.previews.len()
            ),
            notes,
        }
    }

    fn changes(&self, approved: Option<&DeployPlan>, now: &DeployPlan) -> Vec<String> {
        names_changed(approved.map(|a| &a.pending[..]), &now.pending, "applied")
    }

    fn backs_up(&self) -> bool {
        true
    }

    async fn apply<D: Database>(
        &self,
        cx: &Ctx<'_>,
        db: &mut D,
        approved: Approved<DeployPlan>,
        trail: &mut Trail,
    ) -> Result<(), Error> {
        trail.touched = true;
        match cx.source {
            Source::Files { handler, set } => {
                apply_files(cx, db, *handler, set, &approved, trail).await
            }
            Source::External(tool) => super::external::apply(cx, db, tool, &approved, trail).await,
            Source::Tracking(_) => Ok(()),
        }
    }

    async fn verify<D: Database>(
        &self,
        cx: &Ctx<'_>,
        db: &mut D,
        _done: &(),
        trail: &mut Trail,
    ) -> Result<(), Error> {
        match cx.source {
            Source::External(tool) => super::external::after(cx, db, tool, trail).await,
            Source::Files { handler, set } => {
                super::after::run(cx, db, trail).await?;
                let expected: Vec<String> = trail.changed.iter().map(|a| a.name.clone()).collect();
                match super::verify::deployed(cx, db, *handler, set, &expected).await {
                    Ok(summary) => {
                        cx.step("verify", Outcome::Ok, summary.clone());
                        trail.verified = Some(summary);
                        Ok(())
                    }
                    Err(e) => {
                        cx.step("verify", Outcome::Failed, e.to_string());
                        Err(e)
                    }
                }
            }
            Source::Tracking(_) => Ok(()),
        }
    }
}

/// The plan of a folder's deploy, under the lock: the history read again (another deploy may
/// have applied migrations while this one waited), consistency, drift, what is pending.
async fn plan_files<D: Database>(
    cx: &Ctx<'_>,
    db: &mut D,
    handler: &'static dyn Handler,
    set: &MigrationSet,
    to: Option<&str>,
    promote_from: Option<&crate::settings::EnvSettings>,
    trail: &mut Trail,
) -> Result<DeployPlan, Error> {
    // Before the lock, the health checks have just read the history on this session. Under
    // the lock it is read again, unless its stamp shows that nobody wrote to it since.
    let cached = match trail.history_unlocked.clone() {
        // Before an approved reset, the history is as good as gone: everything is pending.
        _ if trail.reset.is_some() => Some(std::sync::Arc::default()),
        Some(history) if !trail.locked => Some(history.records.unwrap_or_default()),
        Some(history) => history.if_unchanged(db, handler).await,
        None => None,
    };
    let records = if let Some(records) = cached {
        records
    } else {
        std::sync::Arc::new(
            super::verify::read_history(db, handler)
                .await?
                .unwrap_or_default(),
        )
    };
    let mut plan = super::pending::plan(set, &records, handler);
    plan.unreachable = handler.unreachable(
        set,
        &records,
        &crate::history::deployed_for(db, handler).await?,
    );
    // Before the lock, an unfinished row may be a deploy running right now: it is judged under
    // the lock.
    let judged = trail.locked || cx.options.dry_run;
    let failed = judged && !plan.failed.is_empty();
    let inconsistent = !plan.modified.is_empty()
        || !plan.missing.is_empty()
        || !plan.unreachable.is_empty()
        || (judged && !plan.is_consistent());
    if failed || (!cx.options.skip_health_check && inconsistent) {
        let drift = plan
            .drift(&cx.env.name)
            .expect("inconsistent plan has drift");
        cx.step("pending", Outcome::Failed, drift.to_string());
        return Err(drift.into());
    }
    super::drift::step(cx, db, trail).await?;
    for name in plan.modified.iter().chain(&plan.missing) {
        cx.warn(
            trail,
            format!("`{name}` is modified or missing on disk (ignored: --skip-health-check)"),
        );
    }
    for name in &plan.unreachable {
        cx.warn(
            trail,
            format!(
                "`{name}` was never applied and the tool will never run it (ignored: --skip-health-check)"
            ),
        );
    }
    for name in &plan.out_of_order {
        cx.warn(
            trail,
            format!(
                "`{name}` is older than the last applied migration; it will be applied now (out of order)"
            ),
        );
    }
    // With `--to`, what stays pending after the target is said, never hidden behind "up to
    // date".
    let (pending, after) = match to {
        Some(to) => match plan.pending.iter().position(|m| m.name == to) {
            Some(i) => plan.pending.split_at(i + 1),
            None => (&[][..], &plan.pending[..]),
        },
        None => (&plan.pending[..], &[][..]),
    };
    let left_after: Vec<String> = after.iter().map(|m| m.name.clone()).collect();
    let beyond = match (to, left_after.len()) {
        (Some(to), n) if n > 0 => format!("; {n} more pending after `{to}`, not selected"),
        _ => String::new(),
    };
    if pending.is_empty() {
        cx.step(
            "pending",
            Outcome::Ok,
            format!(
                "no pending migrations{} ({} applied){beyond}",
                if to.is_some() {
                    " up to the target"
                } else {
                    ""
                },
                plan.applied.len()
            ),
        );
        return Ok(DeployPlan {
            left_after,
            ..DeployPlan::default()
        });
    }
    cx.step(
        "pending",
        Outcome::Ok,
        format!(
            "{} pending, {} applied{beyond}",
            pending.len(),
            plan.applied.len()
        ),
    );
    // Before anything is changed, and again under the lock: what is pending may have changed.
    if let Some(from) = promote_from {
        super::promote::gate(cx, from, handler, set, pending).await?;
    }
    let facts = super::facts::read_or_warn(cx, db, trail).await;
    let position: HashMap<&str, usize> = set
        .migrations
        .iter()
        .enumerate()
        .map(|(i, m)| (m.name.as_str(), i))
        .collect();
    let mut previews: Vec<MigrationPreview> = pending
        .iter()
        .map(|m| {
            super::preview::preview(
                m,
                db.dialect(),
                db.transactional_ddl(),
                &facts,
                &cx.env.lint,
            )
        })
        .collect();
    let mut touched: Vec<String> = previews
        .iter()
        .flat_map(|p| {
            p.risks
                .iter()
                .chain(p.allowed.iter().map(|a| &a.finding))
                .filter(|f| f.lock.is_some())
                .filter_map(|f| f.table.clone())
        })
        .collect();
    touched.sort();
    touched.dedup();
    let rehearsed =
        crate::rehearse::estimates::measured(cx, db, pending, &mut previews, trail).await;
    let plan = DeployPlan {
        left_after,
        pending: pending.iter().map(|m| m.name.clone()).collect(),
        selected: pending.iter().map(|m| position[m.name.as_str()]).collect(),
        blockers: super::facts::blockers(db, &touched).await,
        previews,
        rehearsed,
    };
    for p in &plan.previews {
        for a in &p.allowed {
            trail.lint_allowed.push(format!(
                "{} line {}: [{}] {}",
                p.name,
                a.finding.line,
                a.finding.code,
                super::preview::allowed_reason(a)
            ));
        }
    }
    if !cx.options.dry_run
        && let Some(findings) = blocked_findings(cx, &plan)
    {
        let level = cx.env.lint.block_on.unwrap_or(crate::lint::Level::High);
        let e = Error::LintBlocked {
            environment: cx.env.name.clone(),
            level,
            findings,
        };
        cx.step("lint", Outcome::Failed, e.to_string());
        return Err(e);
    }
    Ok(plan)
}

/// The findings `[lint] block_on` refuses in a deploy-mode environment, one line each.
fn blocked_findings(cx: &Ctx<'_>, plan: &DeployPlan) -> Option<Vec<String>> {
    let level = cx.env.lint.block_on?;
    if cx.env.mode != crate::config::Mode::Deploy {
        return None;
    }
    let found: Vec<String> = plan
        .previews
        .iter()
        .flat_map(|p| {
            p.risks
                .iter()
                .filter(move |f| f.level >= level)
                .map(move |f| format!("{} line {}: {} [{}]", p.name, f.line, f.level, f.code))
        })
        .collect();
    (!found.is_empty()).then_some(found)
}

/// What a dry run says of `[lint] block_on`: the deploy it previews would be refused.
fn blocked(cx: &Ctx<'_>, plan: &DeployPlan) -> Option<String> {
    let found = blocked_findings(cx, plan)?;
    let level = cx.env.lint.block_on?;
    Some(format!(
        "{} finding(s) at or above `[lint] block_on = \"{level}\"` ({})",
        found.len(),
        found.join("; ")
    ))
}

/// Applies the approved migrations; after a failed one, restores this run's backup when the
/// environment asks for it (on a new session if the connection was lost).
async fn apply_files<D: Database>(
    cx: &Ctx<'_>,
    db: &mut D,
    handler: &dyn Handler,
    set: &MigrationSet,
    approved: &Approved<DeployPlan>,
    trail: &mut Trail,
) -> Result<(), Error> {
    let started = Instant::now();
    let applied = super::apply::run(cx, db, handler, set, approved, trail).await;
    let n = trail.changed.len();
    match &applied {
        Ok(()) => cx.step(
            "apply",
            Outcome::Ok,
            format!("{n} applied in {}", duration(started.elapsed())),
        ),
        Err(Error::Interrupted(_)) => cx.step(
            "apply",
            Outcome::Failed,
            format!("interrupted (Ctrl-C): {n} applied, nothing started after that"),
        ),
        Err(_) => cx.step(
            "apply",
            Outcome::Failed,
            format!("{n} applied before the failure"),
        ),
    }
    match applied {
        Err(Error::Interrupted(mut e)) => {
            // The operator asked to stop: no automatic restore, but say how to get back.
            e.backup_id = trail.backup_id().map(str::to_owned);
            Err(Error::Interrupted(e))
        }
        Err(Error::Apply(mut e)) => {
            // Restoring and logging need a session, and restoring needs the lock again.
            let relocked = !e.connection_lost || super::connect::reconnect(cx, db).await;
            let unchanged = trail.changed.is_empty() && e.rolled_back;
            let outcome = if relocked {
                super::restore::recover(
                    cx,
                    db,
                    trail,
                    cx.env.rollback_on_failure,
                    "rollback_on_failure",
                    unchanged,
                )
                .await
            } else {
                let reason = "not attempted: the connection was lost and the deploy lock could not be taken again";
                cx.step("rollback", Outcome::Skipped, reason.into());
                crate::backup::RollbackOutcome::not_attempted(reason, trail.backup_id())
            };
            e.rollback = Some(outcome.clone());
            trail.rollback = Some(outcome);
            Err(Error::Apply(e))
        }
        other => other,
    }
}

/// What differs between the migrations approved and those planned under the lock, as
/// sentences; nothing when they are the same.
#[must_use]
pub fn names_changed(approved: Option<&[String]>, now: &[String], verb: &str) -> Vec<String> {
    let approved = approved.unwrap_or_default();
    if approved == now {
        return Vec::new();
    }
    let gone: Vec<&str> = approved
        .iter()
        .filter(|n| !now.contains(n))
        .map(String::as_str)
        .collect();
    let new: Vec<&str> = now
        .iter()
        .filter(|n| !approved.contains(n))
        .map(String::as_str)
        .collect();
    let mut changes = Vec::new();
    if !gone.is_empty() {
        changes.push(format!(
            "no longer to be {verb} (another deploy did it meanwhile?): {}",
            gone.join(", ")
        ));
    }
    if !new.is_empty() {
        changes.push(format!("now also to be {verb}: {}", new.join(", ")));
    }
    if changes.is_empty() {
        changes.push(format!("the order in which they are {verb} changed"));
    }
    changes
}
