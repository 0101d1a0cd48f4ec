//! The record of a restore in progress. Before a restore changes anything it writes a row
//! with status `restoring` to `_dbdeploy_history` (which no restore touches), and only a
//! finished restore removes it — in the restore's own transaction where there is one
//! (PostgreSQL, SQLite), so that the row is still there exactly when the transaction did not
//! commit. A run killed part-way (even by `kill -9`) leaves the row behind, and
//! [`refuse_unfinished`] makes `status`, `health` and `migrate` report it and refuse, instead
//! of calling a half-restored database "up to date".

use chrono::Utc;
use serde::{Deserialize, Serialize};

use super::BackupError;
use crate::engine::{ColKind, Database, DbError, Dialect, Stmt, Value};
use crate::history::{self, HISTORY_TABLE, RunRecord};

/// The status of the row while a restore runs.
pub const RESTORING: &str = "restoring";

/// What the row says, in its `rollback_status` column.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Note {
    /// The state the database is in if the restore stops now.
    state: String,
    /// The command that restores the backup again.
    retry: String,
}

/// A restore in progress, recorded in the database.
#[derive(Debug)]
pub struct Marker {
    /// The row's id.
    pub row_id: String,
    note: Note,
}

impl Marker {
    /// Records that backup `backup_id` is being restored into the database, with what the
    /// database holds if the restore stops now (`state`) and how to restore it again.
    ///
    /// # Errors
    /// When the row cannot be written: then the restore must not start.
    pub async fn begin<D: Database>(
        db: &mut D,
        environment: &str,
        target: String,
        backup_id: &str,
        migrations: Vec<String>,
        state: &str,
        retry: &str,
    ) -> Result<Self, BackupError> {
        let failed = |message: String| BackupError::Failed {
            what: "recording the restore before it starts".into(),
            message,
        };
        history::prepare_history(db).await.map_err(failed)?;
        let marker = Self {
            row_id: uuid::Uuid::new_v4().to_string(),
            note: Note {
                state: state.to_owned(),
                retry: retry.to_owned(),
            },
        };
        let now = Utc::now();
        let note = serde_json::to_string(&marker.note).expect("note serialises");
        let record = RunRecord {
            run_id: &marker.row_id,
            environment,
            operation: "rollback",
            status: RESTORING,
            migrations,
            started_at: now,
            finished_at: now,
            error: None,
            target,
            schema: None,
            backup_id: Some(backup_id),
            rollback_status: Some(&note),
            rollback_reason: None,
            lint_allowed: &[],
            fleet_run_id: None,
        };
        history::insert_history(db, &record).await.map_err(failed)?;
        Ok(marker)
    }

    /// Says what the database holds from now on if the restore stops.
    ///
    /// # Errors
    /// When the row cannot be updated.
    pub async fn update<D: Database>(&mut self, db: &mut D, state: &str) -> Result<(), DbError> {
        self.note.state = state.to_owned();
        let d = db.dialect();
        let note = serde_json::to_string(&self.note).expect("note serialises");
        db.execute(&Stmt::new(
            format!(
                "UPDATE {} SET rollback_status = {} WHERE run_id = {}",
                d.quote_ident(HISTORY_TABLE),
                d.placeholder(1),
                d.placeholder(2)
            ),
            vec![Value::Text(note), Value::Text(self.row_id.clone())],
        ))
        .await
        .map(drop)
    }

    /// The statement that removes the row, for a restore's own transaction (the id is a UUID
    /// dbdeploy made, so it is safe inline).
    #[must_use]
    pub fn clear_sql(&self, d: Dialect) -> String {
        format!(
            "DELETE FROM {} WHERE run_id = '{}'",
            d.quote_ident(HISTORY_TABLE),
            self.row_id
        )
    }

    /// Removes the row: the restore finished (or stopped without changing anything).
    ///
    /// # Errors
    /// When the row cannot be removed.
    pub async fn clear<D: Database>(&self, db: &mut D) -> Result<(), DbError> {
        let sql = self.clear_sql(db.dialect());
        db.execute(&Stmt::raw(sql)).await.map(drop)
    }

    /// Whether the row is still there (a restore that clears it in its own transaction did
    /// not commit).
    ///
    /// # Errors
    /// When it cannot be read.
    pub async fn present<D: Database>(&self, db: &mut D) -> Result<bool, DbError> {
        let d = db.dialect();
        let stmt = Stmt::new(
            format!(
                "SELECT COUNT(*) FROM {} WHERE run_id = {}",
                d.quote_ident(HISTORY_TABLE),
                d.placeholder(1)
            ),
            vec![Value::Text(self.row_id.clone())],
        );
        Ok(super::scalar_int(db, &stmt).await?.is_some_and(|n| n > 0))
    }
}

/// After a restore that finished: every restore recorded as unfinished is resolved too (the
/// database now holds exactly the restored backup, whatever an earlier one left).
///
/// # Errors
/// When the rows cannot be removed.
pub async fn resolve_all<D: Database>(db: &mut D) -> Result<(), DbError> {
    let d = db.dialect();
    db.execute(&Stmt::new(
        format!(
            "DELETE FROM {} WHERE status = {}",
            d.quote_ident(HISTORY_TABLE),
            d.placeholder(1)
        ),
        vec![Value::Text(RESTORING.into())],
    ))
    .await
    .map(drop)
}

/// A restore recorded as started that never finished.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "a restore of backup `{backup_id}` into this database (environment `{environment}`) did not finish, or is running now: {state}"
)]
pub struct Unfinished {
    /// The row's id.
    pub row_id: String,
    /// The environment that started it.
    pub environment: String,
    /// The backup.
    pub backup_id: String,
    /// What the database holds.
    pub state: String,
    /// The command that restores the backup again.
    pub retry: String,
}

impl Unfinished {
    /// What to do.
    #[must_use]
    pub fn hints(&self) -> Vec<String> {
        vec![
            format!("finish the restore: `{}`", self.retry),
            "until then `status`, `health` and `migrate` refuse to run: the database may not be what its tracking table says".into(),
            format!(
                "if the database was repaired by other means, remove the record: DELETE FROM {HISTORY_TABLE} WHERE run_id = '{}'",
                self.row_id
            ),
        ]
    }
}

/// The restores recorded as started and not finished, oldest first.
///
/// # Errors
/// When the history table exists but cannot be read.
pub async fn unfinished<D: Database>(db: &mut D) -> Result<Vec<Unfinished>, DbError> {
    // A table written by a dbdeploy older than these records (without `rollback_status`)
    // cannot hold one.
    if !db.table_exists(HISTORY_TABLE).await?
        || !db
            .table_columns(HISTORY_TABLE)
            .await?
            .iter()
            .any(|c| c.eq_ignore_ascii_case("rollback_status"))
    {
        return Ok(Vec::new());
    }
    let d = db.dialect();
    let rows = db
        .fetch(
            &Stmt::new(
                format!(
                    "SELECT run_id, environment, backup_id, rollback_status FROM {} WHERE status = {} ORDER BY started_at",
                    d.quote_ident(HISTORY_TABLE),
                    d.placeholder(1)
                ),
                vec![Value::Text(RESTORING.into())],
            ),
            &[ColKind::Text, ColKind::Text, ColKind::Text, ColKind::Text],
        )
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let text = |i: usize| {
                r.get(i)
                    .and_then(Value::as_text)
                    .unwrap_or_default()
                    .to_owned()
            };
            let note: Option<Note> = serde_json::from_str(&text(3)).ok();
            let (state, retry) = match note {
                Some(n) => (n.state, n.retry),
                None => (
                    "the database may be partly restored".into(),
                    format!("dbdeploy rollback {} --to {}", text(1), text(2)),
                ),
            };
            Unfinished {
                row_id: text(0),
                environment: text(1),
                backup_id: text(2),
                state,
                retry,
            }
        })
        .collect())
}

/// The hook for every command that reads or changes a database as if it were whole
/// (`status`, `health`, `migrate`, `down`, `resolve`): refuses while a restore is unfinished.
///
/// # Errors
/// [`BackupError::Unfinished`] naming the restore, what it left and how to finish it; a
/// history table that cannot be read.
pub async fn refuse_unfinished<D: Database>(db: &mut D) -> Result<(), crate::error::Error> {
    match unfinished(db).await?.into_iter().next() {
        Some(u) => Err(BackupError::Unfinished(Box::new(u)).into()),
        None => Ok(()),
    }
}
