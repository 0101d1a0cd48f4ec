//! Step 12: leave a trace of every run — a row in `_dbdeploy_history` in the target database
//! and a JSON line in the audit log file. Logging never fails a deploy: problems are warnings.

use std::io::Write;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::json;

use crate::engine::{ColKind, Database, Dialect, Stmt, Value};
use crate::error::Error;

/// dbdeploy's own history table.
pub const HISTORY_TABLE: &str = "_dbdeploy_history";

/// One finished run, as logged.
#[derive(Debug)]
pub struct RunRecord<'a> {
    /// Unique id of the run.
    pub run_id: &'a str,
    /// Environment name.
    pub environment: &'a str,
    /// `deploy-migrations`, `resolve-migration`, ...
    pub operation: &'a str,
    /// `success`, `error`, `cancelled`.
    pub status: &'a str,
    /// Names of migrations applied.
    pub migrations: Vec<String>,
    /// Start.
    pub started_at: DateTime<Utc>,
    /// End.
    pub finished_at: DateTime<Utc>,
    /// The error, when it failed.
    pub error: Option<&'a Error>,
    /// Password-free target description.
    pub target: String,
}

fn create_table(d: Dialect) -> String {
    let ts = match d {
        Dialect::Postgres => "TIMESTAMPTZ",
        Dialect::MySql => "DATETIME(3)",
        Dialect::Sqlite => "DATETIME",
    };
    format!(
        "CREATE TABLE IF NOT EXISTS {} (
    run_id              VARCHAR(36) PRIMARY KEY NOT NULL,
    environment         VARCHAR(255) NOT NULL,
    operation           VARCHAR(64) NOT NULL,
    status              VARCHAR(32) NOT NULL,
    migrations_applied  INTEGER NOT NULL,
    migrations          TEXT NOT NULL,
    started_at          {ts} NOT NULL,
    finished_at         {ts} NOT NULL,
    duration_ms         BIGINT NOT NULL,
    tool_version        VARCHAR(64) NOT NULL,
    username            VARCHAR(255) NOT NULL,
    hostname            VARCHAR(255) NOT NULL,
    error               TEXT
)",
        d.quote_ident(HISTORY_TABLE)
    )
}

/// Writes the history row. Returns a warning instead of failing.
pub async fn write_history<D: Database>(db: &mut D, run: &RunRecord<'_>) -> Result<(), String> {
    let d = db.dialect();
    let (user, host) = crate::settings::operator();
    db.execute(&Stmt::raw(create_table(d)))
        .await
        .map_err(|e| format!("cannot create {HISTORY_TABLE}: {e}"))?;
    let p: Vec<String> = (1..=12).map(|n| d.placeholder(n)).collect();
    let sql = format!(
        "INSERT INTO {} (run_id, environment, operation, status, migrations_applied, migrations, \
         started_at, finished_at, duration_ms, tool_version, username, hostname, error) \
         VALUES ({}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {})",
        d.quote_ident(HISTORY_TABLE),
        p[0],
        p[1],
        p[2],
        p[3],
        p[4],
        p[5],
        p[6],
        p[7],
        p[8],
        p[9],
        p[10],
        p[11],
        d.placeholder(13)
    );
    let duration_ms = (run.finished_at - run.started_at).num_milliseconds();
    let error = run.error.map_or(Value::Null, |e| {
        Value::Text(crate::redact::scrub(&e.to_string()).into_owned())
    });
    let stmt = Stmt::new(
        sql,
        vec![
            Value::Text(run.run_id.to_owned()),
            Value::Text(run.environment.to_owned()),
            Value::Text(run.operation.to_owned()),
            Value::Text(run.status.to_owned()),
            Value::Int(i64::try_from(run.migrations.len()).unwrap_or(i64::MAX)),
            Value::Text(serde_json::to_string(&run.migrations).unwrap_or_default()),
            Value::Timestamp(run.started_at),
            Value::Timestamp(run.finished_at),
            Value::Int(duration_ms),
            Value::Text(env!("CARGO_PKG_VERSION").to_owned()),
            Value::Text(user),
            Value::Text(host),
            error,
        ],
    );
    db.execute(&stmt)
        .await
        .map(drop)
        .map_err(|e| format!("cannot write to {HISTORY_TABLE}: {e}"))
}

/// The migrations dbdeploy applied (or resolved as applied) in this database, from the
/// `migrations` of its deploy and resolve runs; empty when it has no history here.
///
/// # Errors
/// A database error reading the history.
pub async fn deployed_migrations<D: Database>(db: &mut D) -> Result<Vec<String>, Error> {
    if !db.table_exists(HISTORY_TABLE).await? {
        return Ok(Vec::new());
    }
    let d = db.dialect();
    let sql = format!(
        "SELECT migrations FROM {} WHERE operation = 'deploy-migrations' \
         OR (operation = 'resolve-migration' AND status = 'success')",
        d.quote_ident(HISTORY_TABLE)
    );
    let rows = db.fetch(&Stmt::raw(sql), &[ColKind::Text]).await?;
    let mut names: Vec<String> = rows
        .iter()
        .filter_map(|r| r.first().and_then(Value::as_text))
        .filter_map(|json| serde_json::from_str::<Vec<String>>(json).ok())
        .flatten()
        .collect();
    names.sort();
    names.dedup();
    Ok(names)
}

/// Appends the audit line. Returns a warning instead of failing.
pub fn write_audit(path: &std::path::Path, run: &RunRecord<'_>) -> Result<(), String> {
    let (user, host) = crate::settings::operator();
    let line = json!({
        "run_id": run.run_id,
        "time": run.finished_at.to_rfc3339_opts(SecondsFormat::Millis, true),
        "started_at": run.started_at.to_rfc3339_opts(SecondsFormat::Millis, true),
        "environment": run.environment,
        "operation": run.operation,
        "status": run.status,
        "migrations_applied": run.migrations.len(),
        "migrations": run.migrations,
        "duration_ms": (run.finished_at - run.started_at).num_milliseconds(),
        "database": run.target,
        "user": user,
        "host": host,
        "tool_version": env!("CARGO_PKG_VERSION"),
        "error": run.error.map(|e| json!({"code": e.code(), "message": e.to_string()})),
    });
    let text = crate::redact::scrub(&line.to_string()).into_owned();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| format!("cannot open audit log {}: {e}", path.display()))?;
    writeln!(file, "{text}").map_err(|e| format!("cannot write audit log {}: {e}", path.display()))
}
