//! Step 12: leave a trace of every run — a row in `_dbdeploy_history` in the target database
//! (through [`crate::history`]) and a JSON line in the audit log file. Logging never fails a
//! run: problems are warnings.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;

use chrono::{SecondsFormat, Utc};
use serde::Serialize;

use super::lock::Held;
use super::{Ctx, Event, Outcome, Trail};
use crate::engine::Database;
use crate::error::Error;
use crate::history::{self, HISTORY_TABLE, RunError, RunRecord, SchemaRecord};
use crate::schema::stamp::{self, Observed};

/// The end of every run, whatever happened: the schema baseline, the history row in the
/// database and the line in the audit file (not for a dry run), then the connection closes.
pub async fn conclude<D: Database>(
    cx: &Ctx<'_>,
    operation: &str,
    mut db: Option<D>,
    held: Option<Held>,
    trail: &mut Trail,
    error: Option<&Error>,
) {
    trail.finished_at = Utc::now();
    if cx.options.dry_run {
        if let Some(db) = db {
            db.close().await;
        }
        return;
    }
    let cancelled = matches!(error, Some(Error::Approval(_)));
    // Only runs that could change the database leave a row in it; a refused or cancelled run
    // changes nothing there, and is in the audit file.
    let history = trail.locked && !cancelled;
    if history && let Some(db) = db.as_mut() {
        // Before the schema is read: creating the table is a schema change (though not one
        // the fingerprint shows). A failure here is the history write's failure too.
        let _ = history::prepare_history(db).await;
    }
    // The schema at the end of a run that may have changed it becomes the drift baseline; a
    // run refused before any change must not record one, or it would bless the drift it found.
    let mut schema = None;
    if trail.locked
        && trail.changes_schema
        && (error.is_none() || trail.touched)
        && let Some(db) = db.as_mut()
    {
        match schema_after(cx, db, trail).await {
            Ok(s) => schema = Some(s),
            Err(e) => trail
                .warnings
                .push(format!("the schema fingerprint was not recorded: {e}")),
        }
    }
    let status = match error {
        None => "success",
        Some(e) if e.interrupted() => "interrupted",
        Some(_) if cancelled => "cancelled",
        Some(_) => "error",
    };
    let record = RunRecord {
        run_id: &trail.run_id,
        environment: &cx.env.name,
        operation,
        status,
        migrations: trail.migrations(),
        started_at: trail.started_at,
        finished_at: trail.finished_at,
        error: error.map(|e| RunError {
            code: e.code(),
            message: e.full_message(),
        }),
        target: cx.env.target.describe(),
        schema: schema.as_ref().map(|s| SchemaRecord {
            hash: &s.hash,
            text: s.text.as_deref(),
            stamp: s.stamp.as_deref(),
        }),
        backup_id: trail
            .backup_id()
            .or_else(|| trail.rollback.as_ref().and_then(|r| r.backup_id.as_deref())),
        rollback_status: trail.rollback.as_ref().map(|r| r.status.as_str()),
        rollback_reason: trail.rollback.as_ref().and_then(|r| r.reason.as_deref()),
        lint_allowed: &trail.lint_allowed,
        fleet_run_id: cx.options.fleet_run_id.as_deref(),
    };
    let mut logged = Vec::new();
    let mut warnings = Vec::new();
    if let Some(db) = db.as_mut()
        && history
    {
        match history::insert_history(db, &record).await {
            Ok(()) => logged.push(HISTORY_TABLE.to_owned()),
            Err(w) => warnings.push(w),
        }
    }
    if let (Some(held), Some(db)) = (held, db.as_mut()) {
        warnings.extend(held.release(db).await);
    }
    match write_audit(&cx.env.audit_file, &record) {
        Ok(()) => logged.push(cx.env.audit_file.display().to_string()),
        Err(w) => warnings.push(w),
    }
    for w in warnings {
        cx.reporter.event(Event::Warning(w.clone()));
        trail.warnings.push(w);
    }
    if logged.is_empty() {
        cx.step("log", Outcome::Warning, "run not recorded".into());
    } else {
        cx.step(
            "log",
            Outcome::Ok,
            format!(
                "run {} recorded in {}",
                short(&trail.run_id),
                logged.join(" and ")
            ),
        );
    }
    if let Some(db) = db {
        db.close().await;
    }
}

/// The schema at the end of a run. A run that changed nothing since the drift check: what
/// that check saw is the schema now. A run that changed the database reads the schema again;
/// any other (an external tool's, which ran its status command) reads it again unless the
/// catalog stamp shows it unchanged since the drift check (or, when no drift check ran, since
/// the baseline).
async fn schema_after<D: Database>(
    cx: &Ctx<'_>,
    db: &mut D,
    trail: &Trail,
) -> Result<Observed, crate::engine::DbError> {
    if let Some(seen) = &trail.schema_seen
        && !trail.touched
        && cx.handler().is_some()
    {
        return Ok(seen.clone());
    }
    if trail.touched {
        return stamp::observe(db, None).await;
    }
    let earlier = match &trail.schema_seen {
        Some(seen) => Some(seen.clone()),
        None => history::baseline(db)
            .await
            .ok()
            .flatten()
            .map(|b| Observed {
                hash: b.hash,
                text: None,
                stamp: b.stamp,
            }),
    };
    stamp::observe(db, earlier.as_ref()).await
}

/// The short form of a run id shown in output.
#[must_use]
pub fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

/// One line of the audit log.
#[derive(Serialize)]
struct AuditLine<'a> {
    run_id: &'a str,
    time: String,
    started_at: String,
    environment: &'a str,
    operation: &'a str,
    status: &'a str,
    migrations_applied: usize,
    migrations: &'a [String],
    duration_ms: i64,
    database: &'a str,
    user: String,
    host: String,
    tool_version: &'static str,
    error: Option<AuditError<'a>>,
    backup_id: Option<&'a str>,
    rollback_status: Option<&'a str>,
    rollback_reason: Option<&'a str>,
    schema_fingerprint: Option<&'a str>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    lint_allowed: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    fleet_run_id: Option<&'a str>,
}

/// The error of a run, in the audit log.
#[derive(Serialize)]
struct AuditError<'a> {
    code: &'static str,
    message: &'a str,
}

/// Appends the audit line. Returns a warning instead of failing.
pub fn write_audit(path: &std::path::Path, run: &RunRecord<'_>) -> Result<(), String> {
    let (user, host) = crate::operator::operator();
    let line = AuditLine {
        run_id: run.run_id,
        time: run.finished_at.to_rfc3339_opts(SecondsFormat::Millis, true),
        started_at: run.started_at.to_rfc3339_opts(SecondsFormat::Millis, true),
        environment: run.environment,
        operation: run.operation,
        status: run.status,
        migrations_applied: run.migrations.len(),
        migrations: &run.migrations,
        duration_ms: (run.finished_at - run.started_at).num_milliseconds(),
        database: &run.target,
        user,
        host,
        tool_version: env!("CARGO_PKG_VERSION"),
        error: run.error.as_ref().map(|e| AuditError {
            code: e.code,
            message: &e.message,
        }),
        backup_id: run.backup_id,
        rollback_status: run.rollback_status,
        rollback_reason: run.rollback_reason,
        schema_fingerprint: run.schema.map(|s| s.hash),
        lint_allowed: run.lint_allowed,
        fleet_run_id: run.fleet_run_id,
    };
    // Through a JSON value: its keys come out sorted, as they always have, and every string is
    // scrubbed before serialisation (an escaped `"` or `\` in a password would hide it after).
    let mut line = serde_json::to_value(&line).unwrap_or_default();
    crate::redact::scrub_json(&mut line);
    let text = crate::redact::scrub(&line.to_string()).into_owned();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    // 0600 when created: the log names users, hosts, databases and errors.
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("cannot open audit log {}: {e}", path.display()))?;
    // One write of the whole line: concurrent deploys append to the same file, and O_APPEND
    // keeps single writes whole, where `writeln!` may split the line from its newline.
    file.write_all(format!("{text}\n").as_bytes())
        .map_err(|e| format!("cannot write audit log {}: {e}", path.display()))
}
