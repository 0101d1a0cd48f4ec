//! dbdeploy's own history store, `_dbdeploy_history` in the target database: one row per run
//! that could change the database, with the schema it left (the drift baseline). Kept apart
//! from the log step so that backups, the schema reader and the commands can name the table
//! and read the store without depending on the pipeline.

use chrono::{DateTime, Utc};

use crate::engine::{ColKind, Database, DbError, Dialect, Stmt, Value};

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
    /// The error, when it failed: its stable code and its message (scrubbed when written).
    pub error: Option<RunError>,
    /// Password-free target description.
    pub target: String,
    /// The schema at the end of the run, when the run may have changed it (the drift baseline).
    pub schema: Option<SchemaRecord<'a>>,
    /// The backup taken by this run.
    pub backup_id: Option<&'a str>,
    /// What the automatic rollback did, when one was considered: `success`, `failed` or
    /// `not-attempted`.
    pub rollback_status: Option<&'a str>,
    /// Why it failed or was not attempted.
    pub rollback_reason: Option<&'a str>,
    /// Lint findings let through by `[lint] allow` or an allow comment, with the reason
    /// (audit log only).
    pub lint_allowed: &'a [String],
    /// The fleet run this run belongs to (a target of `migrate` on a fleet).
    pub fleet_run_id: Option<&'a str>,
}

/// The error a run ended with, as the history and the audit log keep it.
#[derive(Debug, Clone)]
pub struct RunError {
    /// The stable code (`migration-failed`, ...).
    pub code: &'static str,
    /// The message.
    pub message: String,
}

/// A schema fingerprint as recorded with a run.
#[derive(Debug, Clone, Copy)]
pub struct SchemaRecord<'a> {
    /// The fingerprint hash.
    pub hash: &'a str,
    /// The canonical text, when it was read (stored once per hash).
    pub text: Option<&'a str>,
    /// The catalog stamp taken with it.
    pub stamp: Option<&'a str>,
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
    error               TEXT,
    backup_id           VARCHAR(64),
    rollback_status     TEXT,
    schema_hash         VARCHAR(64),
    schema_text         TEXT,
    schema_stamp        VARCHAR(80),
    fleet_run_id        VARCHAR(36)
)",
        d.quote_ident(HISTORY_TABLE)
    )
}

/// Creates the history table, or adds the columns it lacks. Done before the schema is read at
/// the end of a run: creating the table is a schema change (though not one the fingerprint
/// shows), and a catalog stamp taken before it would not match the next run's.
/// Returns a warning instead of failing.
pub async fn prepare_history<D: Database>(db: &mut D) -> Result<(), String> {
    let have = columns(db)
        .await
        .map_err(|e| format!("cannot read the columns of {HISTORY_TABLE}: {e}"))?;
    if have.is_empty() {
        // A new table has every column.
        return db
            .execute(&Stmt::raw(create_table(db.dialect())))
            .await
            .map(drop)
            .map_err(|e| format!("cannot create {HISTORY_TABLE}: {e}"));
    }
    let d = db.dialect();
    for (name, kind) in LATER_COLUMNS {
        if !have.iter().any(|c| c == name) {
            db.execute(&Stmt::raw(format!(
                "ALTER TABLE {} ADD COLUMN {name} {kind}",
                d.quote_ident(HISTORY_TABLE)
            )))
            .await
            .map_err(|e| format!("cannot add column {name} to {HISTORY_TABLE}: {e}"))?;
        }
    }
    Ok(())
}

/// Prepares the history table and writes the history row. Returns a warning instead of
/// failing.
pub async fn write_history<D: Database>(db: &mut D, run: &RunRecord<'_>) -> Result<(), String> {
    prepare_history(db).await?;
    insert_history(db, run).await
}

/// Writes the history row into a table [`prepare_history`] has prepared in this session.
/// Returns a warning instead of failing.
pub async fn insert_history<D: Database>(db: &mut D, run: &RunRecord<'_>) -> Result<(), String> {
    let d = db.dialect();
    let (user, host) = crate::operator::operator();
    // Each schema text is stored once: a run that found the schema of the baseline records
    // only its hash, and readers find the text by hash.
    let text = match run.schema {
        Some(s) if s.text.is_some() => {
            let known = baseline(db)
                .await
                .ok()
                .flatten()
                .is_some_and(|b| b.hash == s.hash);
            if known { None } else { s.text }
        }
        _ => None,
    };
    let placeholders: Vec<String> = (1..=19).map(|n| d.placeholder(n)).collect();
    let sql = format!(
        "INSERT INTO {} (run_id, environment, operation, status, migrations_applied, migrations, \
         started_at, finished_at, duration_ms, tool_version, username, hostname, error, \
         backup_id, rollback_status, schema_hash, schema_text, schema_stamp, fleet_run_id) VALUES ({})",
        d.quote_ident(HISTORY_TABLE),
        placeholders.join(", ")
    );
    let duration_ms = (run.finished_at - run.started_at).num_milliseconds();
    let error = run.error.as_ref().map_or(Value::Null, |e| {
        Value::Text(crate::redact::scrub(&e.message).into_owned())
    });
    let values = vec![
        Value::Text(run.run_id.to_owned()),
        Value::Text(run.environment.to_owned()),
        Value::Text(run.operation.to_owned()),
        Value::Text(run.status.to_owned()),
        Value::Int(i64::try_from(run.migrations.len()).unwrap_or(i64::MAX)),
        // Scrubbed before serialisation, where an escape cannot hide a secret.
        Value::Text(
            serde_json::to_string(
                &run.migrations
                    .iter()
                    .map(|m| crate::redact::scrub(m))
                    .collect::<Vec<_>>(),
            )
            .unwrap_or_default(),
        ),
        Value::Timestamp(run.started_at),
        Value::Timestamp(run.finished_at),
        Value::Int(duration_ms),
        Value::Text(env!("CARGO_PKG_VERSION").to_owned()),
        Value::Text(user),
        Value::Text(host),
        error,
        text_or_null(run.backup_id),
        // The history is read by people (`dbdeploy history`): the word and its reason.
        match (run.rollback_status, run.rollback_reason) {
            (Some(status), Some(reason)) => Value::Text(format!("{status}: {reason}")),
            (status, _) => text_or_null(status),
        },
        text_or_null(run.schema.map(|s| s.hash)),
        text_or_null(text),
        text_or_null(run.schema.and_then(|s| s.stamp)),
        text_or_null(run.fleet_run_id),
    ];
    // Every text column is scrubbed: a tool's output (migration names from a status command,
    // error messages) may carry a URL.
    let values = values
        .into_iter()
        .map(|v| match v {
            Value::Text(t) => Value::Text(crate::redact::scrub(&t).into_owned()),
            other => other,
        })
        .collect();
    let stmt = Stmt::new(sql, values);
    db.execute(&stmt)
        .await
        .map(drop)
        .map_err(|e| format!("cannot write to {HISTORY_TABLE}: {e}"))
}

fn text_or_null(v: Option<&str>) -> Value {
    v.map_or(Value::Null, |s| Value::Text(s.to_owned()))
}

/// Columns added after the first version; tables created by it get them on the next write.
const LATER_COLUMNS: &[(&str, &str)] = &[
    ("backup_id", "VARCHAR(64)"),
    ("rollback_status", "TEXT"),
    ("schema_hash", "VARCHAR(64)"),
    ("schema_text", "TEXT"),
    ("schema_stamp", "VARCHAR(80)"),
    ("fleet_run_id", "VARCHAR(36)"),
];

async fn columns<D: Database>(db: &mut D) -> Result<Vec<String>, DbError> {
    Ok(db
        .table_columns(HISTORY_TABLE)
        .await?
        .into_iter()
        .map(|c| c.to_ascii_lowercase())
        .collect())
}

/// One past run, as `dbdeploy history` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PastRun {
    /// Run id.
    pub run_id: String,
    /// Environment name.
    pub environment: String,
    /// Operation.
    pub operation: String,
    /// Status.
    pub status: String,
    /// Migrations applied.
    pub migrations: Vec<String>,
    /// Start, as stored.
    pub started_at: String,
    /// Duration.
    pub duration_ms: i64,
    /// Who ran it.
    pub user: String,
    /// From where.
    pub host: String,
    /// dbdeploy version.
    pub tool_version: String,
    /// The error, if any.
    pub error: Option<String>,
    /// The backup it took.
    pub backup_id: Option<String>,
    /// What its rollback did.
    pub rollback_status: Option<String>,
    /// The schema fingerprint it recorded.
    pub schema_hash: Option<String>,
    /// The fleet run it was part of (`rollback ENV --run` takes it).
    pub fleet_run_id: Option<String>,
}

/// Past runs, newest first; empty when the table does not exist.
///
/// # Errors
/// Database errors.
pub async fn read_runs<D: Database>(db: &mut D, limit: usize) -> Result<Vec<PastRun>, DbError> {
    // No visible columns: no history table (one query instead of two).
    let have = columns(db).await?;
    if have.is_empty() {
        return Ok(Vec::new());
    }
    let opt = |c: &str| {
        if have.iter().any(|h| h == c) {
            c.to_owned()
        } else {
            "NULL".to_owned()
        }
    };
    let started = match db.dialect() {
        Dialect::Postgres => "to_char(started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')".to_owned(),
        Dialect::MySql => "DATE_FORMAT(started_at, '%Y-%m-%dT%H:%i:%s.%fZ')".to_owned(),
        Dialect::Sqlite => "CASE typeof(started_at) WHEN 'integer' THEN strftime('%Y-%m-%dT%H:%M:%fZ', started_at / 1000.0, 'unixepoch') ELSE CAST(started_at AS TEXT) END".to_owned(),
    };
    let sql = format!(
        "SELECT run_id, environment, operation, status, migrations, {started}, duration_ms, username, hostname, \
         tool_version, error, {}, {}, {}, {} FROM {} ORDER BY started_at DESC LIMIT {limit}",
        opt("backup_id"),
        opt("rollback_status"),
        opt("schema_hash"),
        opt("fleet_run_id"),
        db.dialect().quote_ident(HISTORY_TABLE)
    );
    use ColKind::{Int, Text};
    let rows = db
        .fetch(
            &Stmt::raw(sql),
            &[
                Text, Text, Text, Text, Text, Text, Int, Text, Text, Text, Text, Text, Text, Text,
                Text,
            ],
        )
        .await?;
    let text = |v: &Value| v.as_text().map(str::to_owned);
    Ok(rows
        .into_iter()
        .map(|r| PastRun {
            run_id: text(&r[0]).unwrap_or_default(),
            environment: text(&r[1]).unwrap_or_default(),
            operation: text(&r[2]).unwrap_or_default(),
            status: text(&r[3]).unwrap_or_default(),
            migrations: text(&r[4])
                .and_then(|m| serde_json::from_str(&m).ok())
                .unwrap_or_default(),
            started_at: text(&r[5]).unwrap_or_default(),
            duration_ms: r[6].as_int().unwrap_or(0),
            user: text(&r[7]).unwrap_or_default(),
            host: text(&r[8]).unwrap_or_default(),
            tool_version: text(&r[9]).unwrap_or_default(),
            error: text(&r[10]),
            backup_id: text(&r[11]),
            rollback_status: text(&r[12]),
            schema_hash: text(&r[13]),
            fleet_run_id: text(&r[14]),
        })
        .collect())
}

/// The drift baseline: the schema recorded by the newest successful (or interrupted: it stopped
/// at a safe point, so its schema is what its migrations made) run that recorded one whose text
/// is stored.
#[derive(Debug)]
pub struct Baseline {
    /// The fingerprint hash; the text is read by [`recorded_text`] when needed.
    pub hash: String,
    /// The catalog stamp taken with it, when the run recorded one.
    pub stamp: Option<String>,
    /// The run that recorded it.
    pub run_id: String,
    /// When it finished.
    pub at: String,
    /// A later run failed part-way or was resolved by hand: repairs by hand are expected until
    /// the next successful deploy, so a difference is not someone else's change.
    pub repairing: bool,
}

/// Reads the drift baseline, without its text.
///
/// # Errors
/// Database errors.
pub async fn baseline<D: Database>(db: &mut D) -> Result<Option<Baseline>, DbError> {
    // A missing table has no columns either (one query instead of two).
    let have = columns(db).await?;
    if !have.iter().any(|c| c == "schema_text") {
        return Ok(None);
    }
    let stamp = if have.iter().any(|c| c == "schema_stamp") {
        "h.schema_stamp"
    } else {
        "NULL"
    };
    let finished = match db.dialect() {
        Dialect::Postgres => "to_char(h.finished_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')",
        Dialect::MySql => "DATE_FORMAT(h.finished_at, '%Y-%m-%d %H:%i:%s')",
        Dialect::Sqlite => {
            "CASE typeof(h.finished_at) WHEN 'integer' THEN strftime('%Y-%m-%d %H:%M:%S', h.finished_at / 1000.0, 'unixepoch') ELSE CAST(h.finished_at AS TEXT) END"
        }
    };
    let table = db.dialect().quote_ident(HISTORY_TABLE);
    // A run recorded the text of its schema only when it differed from the baseline's, so a
    // hash whose text is stored nowhere (rows deleted by hand) cannot be a baseline.
    let sql = format!(
        "SELECT h.schema_hash, {stamp}, h.run_id, {finished}, \
         (SELECT COUNT(*) FROM {table} later WHERE later.finished_at > h.finished_at \
            AND ((later.status = 'error' AND later.schema_hash IS NOT NULL) OR (later.operation = 'resolve-migration' AND later.status = 'success'))) \
         FROM {table} h WHERE h.status IN ('success', 'interrupted') \
         AND h.schema_hash IN (SELECT k.schema_hash FROM {table} k WHERE k.schema_text IS NOT NULL) \
         ORDER BY h.finished_at DESC LIMIT 1"
    );
    use ColKind::{Int, Text};
    let rows = db
        .fetch(&Stmt::raw(sql), &[Text, Text, Text, Text, Int])
        .await?;
    let text = |v: &Value| v.as_text().map(str::to_owned);
    Ok(rows.into_iter().next().map(|r| Baseline {
        hash: text(&r[0]).unwrap_or_default(),
        stamp: text(&r[1]),
        run_id: text(&r[2]).unwrap_or_default(),
        at: text(&r[3]).unwrap_or_default(),
        repairing: r[4].as_int().unwrap_or(0) > 0,
    }))
}

/// The stored text of the schema with fingerprint `hash`: the newest run that stored it.
///
/// # Errors
/// Database errors.
pub async fn recorded_text<D: Database>(db: &mut D, hash: &str) -> Result<Option<String>, DbError> {
    let d = db.dialect();
    let sql = format!(
        "SELECT schema_text FROM {} WHERE schema_hash = {} AND schema_text IS NOT NULL \
         ORDER BY finished_at DESC LIMIT 1",
        d.quote_ident(HISTORY_TABLE),
        d.placeholder(1)
    );
    let rows = db
        .fetch(
            &Stmt::new(sql, vec![Value::Text(hash.to_owned())]),
            &[ColKind::Text],
        )
        .await?;
    Ok(rows
        .into_iter()
        .next()
        .and_then(|r| r.into_iter().next())
        .and_then(|v| v.as_text().map(str::to_owned)))
}

/// The drift baseline with its schema.
///
/// # Errors
/// Database errors.
pub async fn last_schema<D: Database>(db: &mut D) -> Result<Option<(Baseline, String)>, DbError> {
    let Some(base) = baseline(db).await? else {
        return Ok(None);
    };
    Ok(recorded_text(db, &base.hash)
        .await?
        .map(|text| (base, text)))
}

/// [`deployed_migrations`] when `handler` uses them, else nothing (without a query).
///
/// # Errors
/// A database error reading the history.
pub async fn deployed_for<D: Database>(
    db: &mut D,
    handler: &dyn crate::handler::Handler,
) -> Result<Vec<String>, DbError> {
    if handler.uses_deployed() {
        deployed_migrations(db).await
    } else {
        Ok(Vec::new())
    }
}

/// The migrations dbdeploy applied (or resolved as applied) in this database, from the
/// `migrations` of its deploy and resolve runs; empty when it has no history here.
///
/// # Errors
/// A database error reading the history.
pub async fn deployed_migrations<D: Database>(db: &mut D) -> Result<Vec<String>, DbError> {
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

/// What one fleet run did to this database: its history rows tagged with the run id.
#[derive(Debug, Clone)]
pub struct FleetRunRow {
    /// The row's own run id.
    pub run_id: String,
    /// `deploy-migrations`, ...
    pub operation: String,
    /// `success`, `error`, `interrupted`, ...
    pub status: String,
    /// Migrations the run applied here.
    pub migrations_applied: i64,
    /// The backup it took before changing anything.
    pub backup_id: Option<String>,
    /// Runs recorded here after it (a later deploy, a restore): a rollback discards them.
    pub later: i64,
}

/// The rows of fleet run `fleet_run_id` in this database, oldest first; empty when the table
/// or its `fleet_run_id` column does not exist (no fleet run ever reached it).
///
/// # Errors
/// Database errors.
pub async fn fleet_run<D: Database>(
    db: &mut D,
    fleet_run_id: &str,
) -> Result<Vec<FleetRunRow>, DbError> {
    let have = columns(db).await?;
    if !have.iter().any(|c| c == "fleet_run_id") {
        return Ok(Vec::new());
    }
    let d = db.dialect();
    let table = d.quote_ident(HISTORY_TABLE);
    let sql = format!(
        "SELECT h.run_id, h.operation, h.status, h.migrations_applied, {}, \
         (SELECT COUNT(*) FROM {table} l WHERE l.started_at > h.finished_at) \
         FROM {table} h WHERE h.fleet_run_id = {} ORDER BY h.started_at",
        if have.iter().any(|c| c == "backup_id") {
            "h.backup_id"
        } else {
            "NULL"
        },
        d.placeholder(1)
    );
    use ColKind::{Int, Text};
    let rows = db
        .fetch(
            &Stmt::new(sql, vec![Value::Text(fleet_run_id.to_owned())]),
            &[Text, Text, Text, Int, Text, Int],
        )
        .await?;
    let text = |v: &Value| v.as_text().map(str::to_owned);
    Ok(rows
        .into_iter()
        .map(|r| FleetRunRow {
            run_id: text(&r[0]).unwrap_or_default(),
            operation: text(&r[1]).unwrap_or_default(),
            status: text(&r[2]).unwrap_or_default(),
            migrations_applied: r[3].as_int().unwrap_or(0),
            backup_id: text(&r[4]),
            later: r[5].as_int().unwrap_or(0),
        })
        .collect())
}
