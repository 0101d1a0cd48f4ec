//! `dbdeploy down ENV [--steps N | --to MIGRATION]`: revert the newest applied migrations with
//! their down scripts, as `sqlx migrate revert`, `dbmate rollback` and `migrate down N` do —
//! through the same pipeline as a deploy (lock, approval, backup, log). Formats without down
//! scripts (Prisma) are pointed at restoring a backup instead.

use std::time::Instant;

use super::apply::FailedScript;
use super::approve::{Approved, Summary};
use super::event::duration;
use super::preview::{self, MigrationPreview};
use super::trail::Changed;
use super::{Ctx, Event, Operation, Outcome, Trail};
use crate::config::ConfigError;
use crate::engine::{Database, ScriptError};
use crate::error::Error;
use crate::handler::{Handler, Revert as RevertScript};
use crate::interrupt;
use crate::migration::{Migration, MigrationSet, TxMode};
use crate::source::Source;
use crate::sql::split;

/// A down script failed; what was reverted before it, and what state it left.
#[derive(Debug, thiserror::Error)]
#[error(
    "reverting migration `{}` failed{}: {}",
    .failed.migration,
    position(&.failed.statement, &.failed.line),
    .failed.message
)]
pub struct RevertError {
    /// The migration whose down script failed, and where.
    pub failed: FailedScript,
    /// Migrations reverted in this run before it.
    pub reverted_before: usize,
    /// The down script and its tracking-table writes were rolled back together.
    pub rolled_back: bool,
}

fn position(statement: &Option<usize>, line: &Option<usize>) -> String {
    match (statement, line) {
        (Some(s), Some(l)) => format!(" at statement {s} (line {l} of the down script)"),
        (None, Some(l)) => format!(" at line {l} of the down script"),
        (Some(s), None) => format!(" at statement {s}"),
        (None, None) => String::new(),
    }
}

impl RevertError {
    /// What to do.
    #[must_use]
    pub fn hints(&self) -> Vec<String> {
        let env = &self.failed.environment;
        let name = &self.failed.migration;
        let mut hints = Vec::new();
        if self.rolled_back {
            hints.push(format!(
                "the down script of `{name}` was rolled back: the database is as it was, and `{name}` is still applied; fix the down script and run `dbdeploy down {env}` again"
            ));
        } else {
            hints.push(format!(
                "the down script of `{name}` ran partly (outside a transaction): its statements before the failure took effect"
            ));
            hints.push(format!(
                "see what the tracking table records with `dbdeploy status {env}`, finish or undo the revert by hand, then record the outcome with `dbdeploy resolve {env}`"
            ));
        }
        if self.reverted_before > 0 {
            hints.push(format!(
                "{} migration(s) before it were reverted and stay reverted",
                self.reverted_before
            ));
        }
        hints
    }
}

/// Revert the newest applied migrations: `steps` of them, or every one applied after `to`.
#[derive(Debug)]
pub struct Revert {
    /// How many, newest first (when `to` is not given).
    pub steps: usize,
    /// Revert every migration applied after this one (which stays applied).
    pub to: Option<String>,
}

/// What a revert will undo, newest first.
#[derive(Debug, Default)]
pub struct RevertPlan {
    /// Each migration (its position in the folder) and how to revert it.
    pub reverts: Vec<(usize, RevertScript)>,
    /// Their previews.
    pub previews: Vec<MigrationPreview>,
}

fn files<'c>(cx: &Ctx<'c>) -> (&'static dyn Handler, &'c MigrationSet) {
    match cx.source {
        Source::Files { handler, set } => (*handler, set),
        // Commands resolve a folder before running a revert.
        _ => unreachable!("a revert runs on a migrations folder"),
    }
}

impl Operation for Revert {
    type Plan = RevertPlan;
    type Done = ();

    const COMMAND: &'static str = "down";
    const OPERATION: &'static str = "revert-migrations";

    async fn plan<D: Database>(
        &self,
        cx: &Ctx<'_>,
        db: &mut D,
        trail: &mut Trail,
    ) -> Result<RevertPlan, Error> {
        let (handler, set) = files(cx);
        let env = &cx.env.name;
        let dialect = db.dialect();
        let records = super::verify::read_history(db, handler)
            .await?
            .unwrap_or_default();
        let mut plan = super::pending::plan(set, &records, handler);
        plan.unreachable = handler.unreachable(
            set,
            &records,
            &crate::history::deployed_for(db, handler).await?,
        );
        if let Some(drift) = plan.drift(env) {
            cx.step("health", Outcome::Failed, drift.to_string());
            return Err(drift.into());
        }
        cx.step(
            "health",
            Outcome::Ok,
            format!("{} applied, none failed", plan.applied.len()),
        );
        // Newest last, in apply order.
        let applied: Vec<(usize, &Migration)> = set
            .migrations
            .iter()
            .enumerate()
            .filter(|(_, m)| plan.applied.iter().any(|(n, _)| n == &m.name))
            .collect();
        let first = match &self.to {
            Some(to) => applied
                .iter()
                .position(|(_, m)| &m.name == to)
                .ok_or_else(|| {
                    ConfigError::Usage(format!(
                        "--to {to}: not an applied migration of {env}; see `dbdeploy status {env}`"
                    ))
                })?
                + 1,
            None => {
                if self.steps > applied.len() {
                    return Err(ConfigError::Usage(format!(
                        "--steps {}: only {} migration(s) are applied in {env}",
                        self.steps,
                        applied.len()
                    ))
                    .into());
                }
                applied.len() - self.steps
            }
        };
        let mut reverts = Vec::new();
        for i in (first..applied.len()).rev() {
            let (index, m) = applied[i];
            let previous = i.checked_sub(1).map(|p| applied[p].1);
            let Some(revert) = handler.revert(dialect, m, previous) else {
                return Err(no_down(cx, handler, set, m));
            };
            reverts.push((index, revert));
        }
        trail.planned = reverts.len();
        if reverts.is_empty() {
            cx.step("plan", Outcome::Ok, "nothing to revert".into());
            return Ok(RevertPlan::default());
        }
        cx.step(
            "plan",
            Outcome::Ok,
            format!(
                "{} to revert, newest first: {}",
                reverts.len(),
                reverts
                    .iter()
                    .map(|(i, _)| set.migrations[*i].name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
        let facts = super::facts::read_or_warn(cx, db, trail).await;
        let previews = reverts
            .iter()
            .map(|(i, r)| {
                let m = &set.migrations[*i];
                let down = Migration {
                    sql: r.sql.clone(),
                    checksum: String::new(),
                    tx: r.transaction.clone().into(),
                    down: None,
                    ..m.clone()
                };
                preview::preview(&down, dialect, db.transactional_ddl(), &facts, &cx.env.lint)
            })
            .collect();
        Ok(RevertPlan { reverts, previews })
    }

    fn is_empty(&self, plan: &RevertPlan) -> bool {
        plan.reverts.is_empty()
    }

    fn preview(&self, cx: &Ctx<'_>, plan: &RevertPlan) {
        for p in &plan.previews {
            cx.reporter.event(Event::Preview(p));
        }
        cx.step(
            "preview",
            Outcome::Ok,
            "dry run: nothing was changed".into(),
        );
    }

    fn summary(&self, cx: &Ctx<'_>, plan: &RevertPlan) -> Summary {
        let notes = plan
            .previews
            .iter()
            .flat_map(|p| p.summary_lines(false))
            .collect();
        Summary::Ask {
            headline: format!(
                "environment `{}` is protected: {} migration(s) will be reverted with their down scripts",
                cx.env.name,
                plan.previews.len()
            ),
            notes,
        }
    }

    fn changes(&self, approved: Option<&RevertPlan>, now: &RevertPlan) -> Vec<String> {
        let names = |p: &RevertPlan| {
            p.previews
                .iter()
                .map(|m| m.name.clone())
                .collect::<Vec<_>>()
        };
        super::deploy::names_changed(approved.map(names).as_deref(), &names(now), "reverted")
    }

    fn backs_up(&self) -> bool {
        true
    }

    async fn apply<D: Database>(
        &self,
        cx: &Ctx<'_>,
        db: &mut D,
        approved: Approved<RevertPlan>,
        trail: &mut Trail,
    ) -> Result<(), Error> {
        let (_, set) = files(cx);
        trail.touched = true;
        let started = Instant::now();
        let reverts = &approved.plan().reverts;
        for (done, (i, revert)) in reverts.iter().enumerate() {
            // Ctrl-C: the revert before this one finished; nothing after it starts.
            if interrupt::requested() {
                return Err(trail.interrupted(cx, reverts.len() - done));
            }
            let m = &set.migrations[*i];
            cx.reporter.event(Event::MigrationStarted { name: &m.name });
            let t = Instant::now();
            let atomic = db.transactional_ddl() && revert.transaction == TxMode::Wrapped;
            let outcome = if atomic {
                revert_atomic(db, revert).await
            } else {
                revert_in_steps(db, revert).await
            };
            let took = t.elapsed();
            match outcome {
                Ok(()) => {
                    cx.reporter.event(Event::MigrationApplied {
                        name: &m.name,
                        duration: took,
                        atomic,
                    });
                    trail.changed.push(Changed {
                        name: m.name.clone(),
                        duration: took,
                        atomic,
                    });
                }
                Err((error, rolled_back)) => {
                    cx.reporter.event(Event::MigrationFailed {
                        name: &m.name,
                        duration: took,
                    });
                    cx.step(
                        "revert",
                        Outcome::Failed,
                        format!("{} reverted before the failure", trail.changed.len()),
                    );
                    return Err(Box::new(RevertError {
                        failed: FailedScript {
                            environment: cx.env.name.clone(),
                            migration: m.name.clone(),
                            path: m.path.clone(),
                            message: error.message,
                            statement: error.statement,
                            line: error.line,
                        },
                        reverted_before: trail.changed.len(),
                        rolled_back,
                    })
                    .into());
                }
            }
        }
        cx.step(
            "revert",
            Outcome::Ok,
            format!(
                "{} reverted in {}",
                trail.changed.len(),
                duration(started.elapsed())
            ),
        );
        Ok(())
    }

    async fn verify<D: Database>(
        &self,
        cx: &Ctx<'_>,
        db: &mut D,
        _done: &(),
        trail: &mut Trail,
    ) -> Result<(), Error> {
        let (handler, set) = files(cx);
        let reverted: Vec<String> = trail.changed.iter().map(|c| c.name.clone()).collect();
        match super::verify::reverted(db, handler, set, &reverted).await {
            Ok(summary) => {
                cx.step("verify", Outcome::Ok, summary);
                Ok(())
            }
            Err(e) => {
                cx.step("verify", Outcome::Failed, e.to_string());
                Err(e)
            }
        }
    }
}

/// The error for a migration without a down script.
fn no_down(cx: &Ctx<'_>, handler: &dyn Handler, set: &MigrationSet, m: &Migration) -> Error {
    let env = &cx.env.name;
    let rollback =
        format!("to undo a deploy, restore the backup taken before it: `dbdeploy rollback {env}`");
    if set.migrations.iter().all(|m| m.down.is_none()) {
        return Error::Unavailable {
            message: format!(
                "{} migrations have no down scripts, so `dbdeploy down` cannot revert them",
                handler.name()
            ),
            hint: rollback,
        };
    }
    Error::Unavailable {
        message: format!(
            "migration `{}` has no down script ({}), so it cannot be reverted",
            m.name,
            m.path.display()
        ),
        hint: format!("add its down script, or {rollback}"),
    }
}

type RevertFailure = (ScriptError, bool);

fn failure(message: String, rolled_back: bool) -> RevertFailure {
    (ScriptError::whole(message), rolled_back)
}

/// The down script and its tracking-table writes in one transaction.
async fn revert_atomic<D: Database>(db: &mut D, r: &RevertScript) -> Result<(), RevertFailure> {
    db.begin_migration(&r.sql)
        .await
        .map_err(|e| failure(e.to_string(), true))?;
    let result = async {
        for stmt in &r.before {
            db.execute(stmt)
                .await
                .map_err(|e| failure(e.to_string(), true))?;
        }
        if !split::is_empty_script(&r.sql) {
            db.run_script(&r.sql).await.map_err(|e| (e, true))?;
        }
        for stmt in &r.after {
            db.execute(stmt)
                .await
                .map_err(|e| failure(e.to_string(), true))?;
        }
        db.commit_migration()
            .await
            .map_err(|e| failure(e.to_string(), true))
    }
    .await;
    if result.is_err() {
        let _ = db.rollback_migration().await;
    }
    result
}

/// Outside a transaction: the `before` writes mark the migration in progress the tool's way
/// (sqlx `success = FALSE`, golang-migrate dirty), so a failure is visible and blocks.
async fn revert_in_steps<D: Database>(db: &mut D, r: &RevertScript) -> Result<(), RevertFailure> {
    for stmt in &r.before {
        db.execute(stmt)
            .await
            .map_err(|e| failure(e.to_string(), true))?;
    }
    let outcome = if r.transaction == TxMode::OwnTransaction {
        db.run_script(&r.sql).await
    } else {
        super::apply::run_statements(db, &r.sql).await
    };
    outcome.map_err(|e| (e, false))?;
    for stmt in &r.after {
        db.execute(stmt).await.map_err(|e| {
            failure(
                format!("the down script ran, but recording it failed: {e}"),
                false,
            )
        })?;
    }
    Ok(())
}
