//! Step 3: the health checks before a deploy, on the run's session and before the lock: the
//! tracking table against the files (present, none failed, unchanged, none missing), free space
//! and the backup tools a backup will need. In dev mode an inconsistent database can be reset
//! (every table dropped) after a typed `yes`. Schema drift is checked later, under the lock.

use super::approve::{self, Approved};
use super::health::{self, Check, CheckStatus};
use super::{Ctx, Event, Outcome, Trail};
use crate::config::Mode;
use crate::engine::Database;
use crate::error::Error;
use crate::handler::Handler;
use crate::source::Source;

/// What approval of a dev-mode reset covers: every table of the schema.
#[derive(Debug)]
pub struct Reset;

/// Runs the checks and reports the step.
///
/// # Errors
/// [`crate::pipeline::pending::DriftError`] when history and files disagree (unless reset in
/// dev mode); a backup that will be needed but cannot be made.
pub async fn run<D: Database>(cx: &Ctx<'_>, db: &mut D, trail: &mut Trail) -> Result<(), Error> {
    let needed = cx.backup_needed();
    if cx.options.skip_health_check {
        trail.health_before = Some("skipped");
        cx.step("health", Outcome::Skipped, "--skip-health-check".into());
        if needed {
            let (check, err) = health::backup_tools(db, cx.env, true).await;
            check.report(cx.reporter);
            trail.checks_before.push(check);
            if let Some(e) = err {
                return Err(e.into());
            }
        }
        return Ok(());
    }
    let (mut checks, drift, summary) = match cx.source {
        Source::Files { handler, set } => {
            let mut history = super::verify::read_history_stamped(db, *handler).await?;
            // The other tables matter only without a tracking table. A deploy creates its
            // tracking table before any other, so when one running right now created tables
            // after the read, the table is there on a second read.
            let mut tables = Vec::new();
            if history.records.is_none() {
                tables = health::foreign_tables(db).await?;
                if !tables.is_empty() {
                    history = super::verify::read_history_stamped(db, *handler).await?;
                }
            }
            let records = history.records.clone();
            let (mut checks, drift) = health::history_checks(
                &cx.env.name,
                *handler,
                set,
                &tables,
                records.as_deref().map(Vec::as_slice),
            );
            // An unfinished row is also what a deploy running right now looks like (MySQL,
            // non-atomic migrations); it is judged again under the lock.
            for c in &mut checks {
                if c.name == "failed_migrations" && c.status == CheckStatus::Failed {
                    c.status = CheckStatus::Warning;
                    c.detail.push_str("; checked again under the lock");
                }
            }
            let summary = records.is_none().then(|| {
                format!(
                    "empty database, no `{}` yet (first deploy)",
                    handler.table()
                )
            });
            trail.history_unlocked = Some(history);
            (checks, drift, summary)
        }
        Source::Tracking(_) | Source::External(_) => (Vec::new(), None, None),
    };
    let (space, space_err) = health::disk_space(db, cx.env, needed).await;
    checks.extend(space);
    let (tools, tools_err) = health::backup_tools(db, cx.env, needed).await;
    checks.push(tools);
    let failed: Vec<&Check> = checks
        .iter()
        .filter(|c| c.status == CheckStatus::Failed)
        .collect();
    if failed.is_empty() {
        trail.health_before = Some("passed");
        for c in checks.iter().filter(|c| c.status == CheckStatus::Warning) {
            c.report(cx.reporter);
        }
        let passed = checks
            .iter()
            .filter(|c| c.status == CheckStatus::Passed)
            .count();
        let summary = summary.unwrap_or_else(|| match cx.source {
            Source::External(_) => format!(
                "{passed} checks passed; the tool's history is its own (status_command reads it)"
            ),
            _ => format!("{passed} checks passed"),
        });
        cx.step("health", Outcome::Ok, summary);
        trail.checks_before.extend(checks);
        return Ok(());
    }
    trail.health_before = Some("failed");
    for c in &failed {
        c.report(cx.reporter);
    }
    let history_failed = failed
        .iter()
        .any(|c| matches!(c.name, "tracking_table" | "checksums" | "missing_files"));
    trail.checks_before.extend(checks);
    let problem = match (history_failed, drift, tools_err, space_err) {
        (true, Some(drift), _, _) => drift,
        (_, _, Some(e), _) | (_, _, None, Some(e)) => return Err(e.into()),
        (_, Some(drift), None, None) => drift,
        (_, None, None, None) => {
            return Err(Error::Unavailable {
                message: "a pre-deploy health check failed".into(),
                hint: "see the failed check above; nothing was changed".into(),
            });
        }
    };
    if cx.handler().is_some() && cx.env.mode == Mode::Dev && cx.interactive && !cx.options.dry_run {
        cx.reporter.event(Event::Warning(
            "in dev mode the database can be reset: every table is dropped and all migrations are applied again".into(),
        ));
        if let Some(approved) = approve::confirm_reset(Reset).await? {
            // Carried out under the lock, after the backup the environment asks for.
            trail.reset = Some(approved);
            trail.health_before = Some("reset");
            cx.step(
                "health",
                Outcome::Warning,
                "the database will be reset under the deploy lock; every migration will be applied"
                    .into(),
            );
            return Ok(());
        }
    }
    Err(problem.into())
}

/// Carries out an approved dev-mode reset under the lock: the backup the environment asks for
/// first, then every table dropped, and the report names them.
///
/// # Errors
/// A failed backup (nothing dropped then) or a database error.
pub async fn reset_if_approved<D: Database>(
    cx: &Ctx<'_>,
    db: &mut D,
    trail: &mut Trail,
) -> Result<(), Error> {
    let Some(approved) = trail.reset.take() else {
        return Ok(());
    };
    let Some(handler) = cx.handler() else {
        return Ok(());
    };
    trail.backup = Some(super::backup::step(cx, db, &trail.run_id).await?);
    trail.touched = true;
    // What the health checks read is gone with the tables.
    trail.history_unlocked = None;
    let tables = db.user_tables().await?;
    reset(db, handler, approved).await?;
    cx.step(
        "reset",
        Outcome::Ok,
        if tables.is_empty() {
            "database emptied (it had no tables); every migration will be applied".into()
        } else {
            format!(
                "dropped {} table(s): {}; every migration will be applied",
                tables.len(),
                tables.join(", ")
            )
        },
    );
    Ok(())
}

/// Drops every table of the schema, and the tracking table where the reset does not reach it.
async fn reset<D: Database>(
    db: &mut D,
    handler: &dyn Handler,
    _approved: Approved<Reset>,
) -> Result<(), Error> {
    db.reset().await?;
    for stmt in handler.drop_tracking(db.dialect()) {
        db.execute(&stmt).await?;
    }
    Ok(())
}
