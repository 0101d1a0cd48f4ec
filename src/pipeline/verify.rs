//! Step 11, and reading the tracking table: after a run, the tool's own table must say what
//! the run did. The readers here are the one way every step reads that table, so another
//! tool's table of the same name is always reported instead of misread.

use super::Ctx;
use crate::engine::Database;
use crate::error::Error;
use crate::handler::Handler;
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

/// Reads the tracking table; `None` when it does not exist yet.
///
/// # Errors
/// Database errors and rows the format cannot read.
pub async fn read_history<D: Database>(
    db: &mut D,
    handler: &dyn Handler,
) -> Result<Option<Vec<AppliedRecord>>, Error> {
    if !tracking_table_exists(db, handler).await? {
        return Ok(None);
    }
    // Another tool's table of the same name must be reported, not misread.
    let columns = db.table_columns(handler.table()).await?;
    handler.check_table(&columns)?;
    let (stmt, cols) = handler.select_history(db.dialect());
    let mut rows = db.fetch(&stmt, &cols).await?;
    if let Some((table, stmt)) = handler.companion(db.dialect())
        && db.table_exists(table).await?
    {
        rows.extend(db.fetch(&stmt, &cols).await?);
    }
    Ok(Some(handler.parse_history(rows)?))
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
