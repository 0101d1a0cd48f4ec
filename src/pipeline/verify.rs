//! Step 11, and reading the tracking table: after a run, the tool's own table must say what
//! the run did. The readers here are the one way every step reads that table, so another
//! tool's table of the same name is always reported instead of misread, and so is a database
//! that holds another tool's table but not the configured tool's.

use super::Ctx;
use super::pending::DriftError;
use crate::engine::Database;
use crate::error::Error;
use crate::handler::{Handler, known};
use crate::migration::{AppliedRecord, MigrationSet};

/// The tracking table does not reflect the run.
#[derive(Debug, thiserror::Error)]
#[error("verification failed: {0}")]
pub struct VerifyError(pub String);

/// Reads the tracking table of a format, or nothing for an external tool (`None`), whose
/// history is its own.
///
/// # Errors
/// Database errors and rows the format cannot read.
pub async fn read_records<D: Database>(
    db: &mut D,
    handler: Option<&dyn Handler>,
) -> Result<Vec<AppliedRecord>, Error> {
    match handler {
        Some(h) => Ok(read_history(db, h).await?.unwrap_or_default()),
        None => Ok(Vec::new()),
    }
}

/// The configured tool's tracking table is missing, but another known tool's is there.
#[derive(Debug, thiserror::Error)]
#[error("{}", self.describe())]
pub struct OtherTool {
    /// The configured tool.
    pub tool: &'static str,
    /// Its tracking table.
    pub table: &'static str,
    /// The tool whose table is there.
    pub other: &'static str,
    /// That table, schema-qualified when it has its own schema.
    pub other_table: String,
    /// How many rows it holds, when they could be counted.
    pub rows: Option<i64>,
}

/// A tool's name in a sentence (`sql` is dbdeploy's own plain-SQL format).
fn tool_label(name: &str) -> &str {
    if name == "sql" { "plain SQL" } else { name }
}

impl OtherTool {
    fn describe(&self) -> String {
        let (tool, other) = (tool_label(self.tool), tool_label(self.other));
        let held = match self.rows {
            Some(0) => format!("with no rows; this database is not {tool}'s"),
            Some(n) => format!("with {n} row(s): this database is kept by {other}, not {tool}"),
            None => format!("this database is kept by {other}, not {tool}"),
        };
        format!(
            "no `{}` table ({tool}'s tracking table), but {other}'s tracking table `{}` is here, {held}",
            self.table, self.other_table
        )
    }

    /// What to do.
    #[must_use]
    pub fn hints(&self) -> Vec<String> {
        let other = self.other;
        let mut hints = Vec::new();
        if self.rows == Some(0) {
            hints.push(format!(
                "`{table}` has no rows: a first deploy with `migration_tool = \"{other}\"` that failed leaves it so; if that is what happened, drop it (`DROP TABLE {table}`) and deploy again",
                table = self.other_table
            ));
        }
        hints.push(format!(
            "if {} keeps this database, set `migration_tool = \"{other}\"` (and its `migrations_dir`) in dbdeploy.toml; if the environment's URL names the wrong database, correct it",
            tool_label(other)
        ));
        hints.push("nothing was changed".into());
        hints
    }
}

/// Reads the tracking table; `None` when it does not exist yet.
///
/// # Errors
/// Database errors, rows the format cannot read, and [`OtherTool`] when the table is missing
/// but another known tool's is there.
pub async fn read_history<D: Database>(
    db: &mut D,
    handler: &dyn Handler,
) -> Result<Option<Vec<AppliedRecord>>, Error> {
    let history = read(db, handler, false).await?;
    Ok(history.records.map(std::sync::Arc::unwrap_or_clone))
}

/// The tracking table as read, with the engine's stamp of it taken just before the read (see
/// [`Database::history_stamp`]); no stamp for formats with a second table.
#[derive(Debug, Clone, Default)]
pub struct History {
    /// The stamp; `None` when there is none to compare.
    pub stamp: Option<String>,
    /// The records; `None` when the table does not exist.
    pub records: Option<std::sync::Arc<Vec<AppliedRecord>>>,
}

impl History {
    /// The same records when the table is unchanged since this read, compared by stamp;
    /// `None` when it may have changed (or cannot be compared), and the rows must be read.
    pub async fn if_unchanged<D: Database>(
        &self,
        db: &mut D,
        handler: &dyn Handler,
    ) -> Option<std::sync::Arc<Vec<AppliedRecord>>> {
        let (Some(stamp), Some(records)) = (&self.stamp, &self.records) else {
            return None;
        };
        // An error (the table gone, say) is a change: the read that follows reports it.
        match db.history_stamp(handler.table()).await {
            Ok(Some(now)) if &now == stamp => Some(records.clone()),
            _ => None,
        }
    }
}

/// [`read_history`], with the stamp a later read under the lock can be saved by.
///
/// # Errors
/// As [`read_history`].
pub async fn read_history_stamped<D: Database>(
    db: &mut D,
    handler: &dyn Handler,
) -> Result<History, Error> {
    read(db, handler, true).await
}

async fn read<D: Database>(
    db: &mut D,
    handler: &dyn Handler,
    stamped: bool,
) -> Result<History, Error> {
    if !tracking_table_exists(db, handler).await? {
        if let Some(other) = other_tool(db, handler).await? {
            return Err(DriftError::OtherTool(Box::new(other)).into());
        }
        return Ok(History::default());
    }
    // Another tool's table of the same name must be reported, not misread.
    let columns = db.table_columns(handler.table()).await?;
    handler.check_table(&columns)?;
    let stamp = if stamped && handler.companion(db.dialect()).is_none() {
        db.history_stamp(handler.table()).await?
    } else {
        None
    };
    let (stmt, cols) = handler.select_history(db.dialect());
    let mut rows = db.fetch(&stmt, &cols).await?;
    if let Some((table, stmt)) = handler.companion(db.dialect())
        && db.table_exists(table).await?
    {
        rows.extend(db.fetch(&stmt, &cols).await?);
    }
    Ok(History {
        stamp,
        records: Some(std::sync::Arc::new(handler.parse_history(rows)?)),
    })
}

/// Another known tool's tracking table, when the database holds one: one catalog query for
/// all of them; columns and rows are read only for a table found.
async fn other_tool<D: Database>(
    db: &mut D,
    handler: &dyn Handler,
) -> Result<Option<OtherTool>, Error> {
    let dialect = db.dialect();
    let (stmt, cols) = known::others_query(handler, dialect);
    let rows = db.fetch(&stmt, &cols).await?;
    for found in known::found(handler, dialect, &rows) {
        let owner = match found.candidates.as_slice() {
            [only] => Some(*only),
            candidates => {
                let columns = db.table_columns(&found.shown).await?;
                known::owner(candidates, &columns)
            }
        };
        let Some(owner) = owner else {
            continue;
        };
        // Only to word the report: a table it cannot count is still reported.
        let (stmt, cols) = known::count_rows(&found);
        let rows = db.fetch(&stmt, &cols).await.ok().and_then(|r| {
            r.first()
                .and_then(|r| r.first())
                .and_then(crate::engine::Value::as_int)
        });
        return Ok(Some(OtherTool {
            tool: handler.name(),
            table: handler.table(),
            other: owner.name(),
            other_table: found.shown,
            rows,
        }));
    }
    Ok(None)
}

/// Whether the format's tracking table exists, in its own schema when it has one.
///
/// # Errors
/// Database errors.
pub async fn tracking_table_exists<D: Database>(
    db: &mut D,
    handler: &dyn Handler,
) -> Result<bool, Error> {
    let schema = handler.table_schema(db.dialect());
    Ok(db.table_exists_in(schema, handler.table()).await?)
}

/// Where every migration stands now, read again from the tracking table.
///
/// # Errors
/// Database errors and rows the format cannot read.
pub async fn replan<'s, D: Database>(
    db: &mut D,
    handler: &dyn Handler,
    set: &'s MigrationSet,
) -> Result<super::pending::Plan<'s>, Error> {
    let records = read_history(db, handler).await?.unwrap_or_default();
    Ok(super::pending::plan(set, &records, handler))
}

/// Checks every expected migration is recorded applied, none failed, checksums consistent.
///
/// # Errors
/// [`VerifyError`] naming what is off, or a database error.
pub async fn deployed<D: Database>(
    cx: &Ctx<'_>,
    db: &mut D,
    handler: &dyn Handler,
    set: &MigrationSet,
    expected: &[String],
) -> Result<String, Error> {
    let plan = replan(db, handler, set).await?;
    let applied: std::collections::HashSet<&str> =
        plan.applied.iter().map(|(n, _)| n.as_str()).collect();
    let not_recorded: Vec<&str> = expected
        .iter()
        .filter(|name| !applied.contains(name.as_str()))
        .map(String::as_str)
        .collect();
    if !not_recorded.is_empty() {
        return Err(VerifyError(format!(
            "not recorded as applied: {}",
            not_recorded.join(", ")
        ))
        .into());
    }
    if let Some(drift) = plan.drift(&cx.env.name) {
        return Err(VerifyError(drift.to_string()).into());
    }
    Ok(format!(
        "{} applied in total, none failed, checksums match",
        plan.applied.len()
    ))
}

/// Checks the reverted migrations are no longer recorded applied.
///
/// # Errors
/// [`VerifyError`] naming what is still recorded, or a database error.
pub async fn reverted<D: Database>(
    db: &mut D,
    handler: &dyn Handler,
    set: &MigrationSet,
    reverted: &[String],
) -> Result<String, Error> {
    let plan = replan(db, handler, set).await?;
    let still: Vec<&str> = reverted
        .iter()
        .map(String::as_str)
        .filter(|n| plan.applied.iter().any(|(a, _)| a == n))
        .collect();
    if !still.is_empty() {
        return Err(VerifyError(format!("still recorded as applied: {}", still.join(", "))).into());
    }
    Ok(format!(
        "{} applied, {} pending",
        plan.applied.len(),
        plan.pending.len()
    ))
}
