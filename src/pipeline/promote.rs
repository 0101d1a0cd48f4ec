//! The promotion gate (`promote_from = "staging"`): a migration reaches this environment only
//! after the environment it is promoted from applied it, successfully and with the same
//! checksum. The other environment's tracking table is read through the format's handler on a
//! read-only session, so the gate works for every format and never writes there.
//!
//! An environment that cannot be read (unreachable, no URL variable) is an error, never a
//! pass: the gate exists to stop what was not tried, and "could not look" is not "tried".
//! Formats that record no checksum (dbmate, golang-migrate) are compared by name only.

use super::{Ctx, Outcome, Trail};
use crate::engine::Database;
use crate::error::Error;
use crate::handler::Handler;
use crate::migration::{Migration, MigrationSet};
use crate::settings::EnvSettings;

/// Why a pending migration may not be promoted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Missing {
    /// The other environment has not applied it.
    NotApplied,
    /// It failed there (and was not resolved).
    Failed,
    /// It was applied there from a file with other contents.
    OtherChecksum,
}

impl Missing {
    fn words(self) -> &'static str {
        match self {
            Missing::NotApplied => "not applied",
            Missing::Failed => "failed there",
            Missing::OtherChecksum => "applied with another checksum",
        }
    }
}

/// The promotion gate refused the deploy, or could not look.
#[derive(Debug, thiserror::Error)]
pub enum PromotionError {
    /// Pending migrations the other environment has not applied as they are.
    #[error(
        "{} pending migration(s) of `{environment}` are not applied on `{from}` as they are now: {}",
        migrations.len(),
        migrations.iter().map(|(n, why)| format!("{n} ({})", why.words())).collect::<Vec<_>>().join(", ")
    )]
    NotPromoted {
        /// The environment being deployed.
        environment: String,
        /// The environment it is promoted from.
        from: String,
        /// Each migration refused, and why.
        migrations: Vec<(String, Missing)>,
    },
    /// The other environment's database could not be read.
    #[error("cannot check promotion from `{from}`: its database could not be read")]
    Unreadable {
        /// The environment it is promoted from.
        from: String,
        /// Why.
        #[source]
        cause: Box<Error>,
    },
    /// An external tool's history is its own.
    #[error(
        "`promote_from` needs a migrations folder: with `migration_tool = \"command\"` dbdeploy cannot read `{from}`'s history"
    )]
    Unsupported {
        /// The environment it is promoted from.
        from: String,
    },
}

impl PromotionError {
    /// What to do next.
    #[must_use]
    pub fn hints(&self) -> Vec<String> {
        match self {
            PromotionError::NotPromoted { from, .. } => vec![
                "nothing was changed".into(),
                format!(
                    "deploy them to `{from}` first (`dbdeploy migrate {from}`), check the result there, then deploy here again"
                ),
                format!(
                    "a migration edited after it reached `{from}` must reach `{from}` again in its new form"
                ),
            ],
            PromotionError::Unreadable { from, .. } => vec![
                "nothing was changed: a deploy that cannot check the promotion does not run".into(),
                format!(
                    "check `{from}`'s database is reachable with the URL this machine has for it (`dbdeploy status {from}`)"
                ),
            ],
            PromotionError::Unsupported { .. } => vec![
                "nothing was changed".into(),
                "remove `promote_from` from the environment, or deploy with a migrations folder"
                    .into(),
            ],
        }
    }
}

/// A reporter that drops everything: the other environment's connect line is not this run's.
struct Silent;

impl super::Reporter for Silent {
    fn event(&self, _event: super::Event<'_>) {}
}

/// Checks that `from` applied every migration of `pending` with the same checksum; reports a
/// `promotion` step either way.
///
/// # Errors
/// [`PromotionError`] when one is missing or `from` cannot be read.
pub async fn gate(
    cx: &Ctx<'_>,
    from: &EnvSettings,
    handler: &'static dyn Handler,
    set: &MigrationSet,
    pending: &[&Migration],
) -> Result<(), Error> {
    let result = check(cx, from, handler, set, pending).await;
    match &result {
        Ok(()) => cx.step(
            "promotion",
            Outcome::Ok,
            format!(
                "{} pending migration(s) applied on `{}` with the same checksum",
                pending.len(),
                from.name
            ),
        ),
        Err(e) => cx.step("promotion", Outcome::Failed, e.to_string()),
    }
    result.map_err(|e| Error::Promotion(Box::new(e)))
}

async fn check(
    cx: &Ctx<'_>,
    from: &EnvSettings,
    handler: &'static dyn Handler,
    set: &MigrationSet,
    pending: &[&Migration],
) -> Result<(), PromotionError> {
    let unreadable = |cause: Error| PromotionError::Unreadable {
        from: from.name.clone(),
        cause: Box::new(cause),
    };
    let source = crate::source::Source::Tracking(handler);
    let other = Ctx::read_only(from, &source, &Silent);
    let records = crate::with_database!(from.target, D => read::<D>(&other, handler).await)
        .map_err(unreadable)?;
    let there = super::pending::plan(set, &records, handler);
    let not_applied: std::collections::HashSet<&str> =
        there.pending.iter().map(|m| m.name.as_str()).collect();
    let failed: std::collections::HashSet<&str> =
        there.failed.iter().map(|(n, _)| n.as_str()).collect();
    let missing: Vec<(String, Missing)> = pending
        .iter()
        .filter_map(|m| {
            let name = m.name.as_str();
            let why = if there.modified.iter().any(|n| n == name) {
                Missing::OtherChecksum
            } else if failed.contains(name) {
                Missing::Failed
            } else if not_applied.contains(name) || !applied_there(&there, name) {
                // A repeatable migration whose new checksum is not applied there is pending
                // there too; anything else that is not applied is not applied.
                let changed = handler.is_repeatable(m)
                    && there.applied.iter().any(|(n, _)| n == name)
                    && not_applied.contains(name);
                if changed {
                    Missing::OtherChecksum
                } else {
                    Missing::NotApplied
                }
            } else {
                return None;
            };
            Some((m.name.clone(), why))
        })
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(PromotionError::NotPromoted {
            environment: cx.env.name.clone(),
            from: from.name.clone(),
            migrations: missing,
        })
    }
}

fn applied_there(plan: &super::pending::Plan<'_>, name: &str) -> bool {
    plan.applied.iter().any(|(n, _)| n == name)
}

/// The other environment's tracking table, on a read-only session closed right after.
async fn read<D: Database>(
    cx: &Ctx<'_>,
    handler: &'static dyn Handler,
) -> Result<Vec<crate::migration::AppliedRecord>, Error> {
    let mut db: D = super::connect::connect(cx, true, false, &mut Trail::new()).await?;
    let records = super::verify::read_history(&mut db, handler).await;
    db.close().await;
    Ok(records?.unwrap_or_default())
}

/// The refusal for an external tool, which keeps its own history.
#[must_use]
pub fn unsupported(from: &EnvSettings) -> Error {
    Error::Promotion(Box::new(PromotionError::Unsupported {
        from: from.name.clone(),
    }))
}
