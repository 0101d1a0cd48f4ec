//! Step 11: re-read the tracking table and check it says what the run did.

use super::{Context, read_history};
use crate::engine::Database;
use crate::error::Error;

/// The tracking table does not reflect the run.
#[derive(Debug, thiserror::Error)]
#[error("verification failed: {0}")]
pub struct VerifyError(pub String);

/// Checks every expected migration is recorded applied, none failed, checksums consistent.
///
/// # Errors
/// [`VerifyError`] naming what is off, or a database error.
pub async fn run<D: Database>(
    ctx: &Context<'_>,
    db: &mut D,
    expected: &[String],
) -> Result<String, Error> {
    let records = read_history(db, ctx.handler).await?.unwrap_or_default();
    let plan = super::pending::plan(ctx.set, &records, ctx.handler);
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
    if let Some(drift) = plan.drift(&ctx.env.name) {
        return Err(VerifyError(drift.to_string()).into());
    }
    Ok(format!(
        "{} applied in total, none failed, checksums match",
        plan.applied.len()
    ))
}
