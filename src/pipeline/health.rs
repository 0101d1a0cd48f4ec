//! Steps 3 and 10: connect with a bounded wait and check the tracking table is in a state a
//! deploy can build on (no failed migrations, applied files unchanged and present, no foreign
//! schema without history). In dev mode, on a terminal, an inconsistent database can be reset.

use super::{Context, RunReport, read_history};
use crate::config::Mode;
use crate::engine::{ConnectOptions, Database};
use crate::error::Error;
use crate::output::{Event, Outcome};
use crate::pipeline::pending::DriftError;

/// Tables dbdeploy itself owns, ignored when deciding whether a schema is empty.
pub const OWN_TABLES: &[&str] = &[super::log::HISTORY_TABLE, crate::handler::unfinished::TABLE];

/// Connects and reads the server version.
///
/// # Errors
/// When the server cannot be reached within the configured wait.
pub async fn connect<D: Database>(
    ctx: &Context<'_>,
    read_only: bool,
) -> Result<(D, String), Error> {
    let opts = ConnectOptions {
        wait: ctx.env.connect_wait,
        lock_wait: ctx.env.lock_timeout,
        read_only,
    };
    let mut db = match D::connect(&ctx.env.target, opts).await {
        Ok(db) => db,
        Err(e) => {
            ctx.step(
                "connect",
                Outcome::Failed,
                "cannot reach the database".into(),
            );
            return Err(e.into());
        }
    };
    let version = db.server_version().await?;
    let ro = if read_only { ", read-only session" } else { "" };
    ctx.step("connect", Outcome::Ok, format!("{version}{ro}"));
    Ok((db, version))
}

/// The pre-deploy checks. Returns a one-line summary.
///
/// # Errors
/// [`DriftError`] when history and files disagree (unless reset in dev mode).
pub async fn check_before<D: Database>(
    ctx: &Context<'_>,
    db: &mut D,
    report: &mut RunReport,
) -> Result<(), Error> {
    if ctx.options.skip_health_check {
        report.health_before = Some("skipped");
        ctx.step("health", Outcome::Skipped, "--skip-health-check".into());
        return Ok(());
    }
    // Tables are listed before the history is read: a deploy creates its tracking table
    // before any other, so one running right now cannot make this database look foreign.
    let tables: Vec<String> = db
        .user_tables()
        .await?
        .into_iter()
        .filter(|t| !OWN_TABLES.contains(&t.as_str()))
        .collect();
    let problem = match read_history(db, ctx.handler).await? {
        None => {
            if tables.is_empty() {
                report.health_before = Some("passed");
                ctx.step(
                    "health",
                    Outcome::Ok,
                    format!(
                        "empty database, no `{}` yet (first deploy)",
                        ctx.handler.table()
                    ),
                );
                return Ok(());
            }
            DriftError::NotEmpty {
                environment: ctx.env.name.clone(),
                table: ctx.handler.table(),
                tables: tables.into_iter().take(5).collect(),
            }
        }
        Some(records) => {
            let plan = super::pending::plan(ctx.set, &records, ctx.handler);
            if plan.modified.is_empty() && plan.missing.is_empty() {
                report.health_before = Some("passed");
                if plan.failed.is_empty() {
                    ctx.step(
                        "health",
                        Outcome::Ok,
                        format!(
                            "{} applied, none failed, checksums match",
                            plan.applied.len()
                        ),
                    );
                } else {
                    // An unfinished row is also what a deploy running right now looks like
                    // (MySQL, non-atomic migrations); it is judged again under the lock.
                    let names: Vec<&str> = plan.failed.iter().map(|(n, _)| n.as_str()).collect();
                    ctx.step(
                        "health",
                        Outcome::Warning,
                        format!(
                            "{} not finished (failed, or being applied by another deploy); checked again under the lock",
                            names.join(", ")
                        ),
                    );
                }
                return Ok(());
            }
            plan.drift(&ctx.env.name)
                .expect("modified or missing is drift")
        }
    };
    report.health_before = Some("failed");
    ctx.step("health", Outcome::Failed, problem.to_string());
    if ctx.env.mode == Mode::Dev && ctx.interactive && !ctx.options.dry_run {
        ctx.reporter.event(Event::Warning(
            "in dev mode the database can be reset: every table is dropped and all migrations are applied again".into(),
        ));
        if super::approve::confirm("Reset the database? All data will be lost. (yes/no)").await? {
            db.reset().await?;
            for stmt in ctx.handler.drop_tracking(db.dialect()) {
                db.execute(&stmt).await?;
            }
            report.health_before = Some("reset");
            ctx.step(
                "reset",
                Outcome::Ok,
                "database emptied; every migration will be applied".into(),
            );
            return Ok(());
        }
    }
    Err(problem.into())
}
