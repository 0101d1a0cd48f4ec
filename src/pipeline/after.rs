//! Step 10: the health check after a deploy — the database still answers and the
//! application's `health_command` passes. A failure restores this run's backup when the
//! environment sets `rollback_on_health_check_failure`.

use super::health::{self, Check, CheckStatus, HealthAfterError};
use super::{Ctx, Outcome, Trail};
use crate::engine::Database;
use crate::error::Error;

/// Runs the checks after a deploy and reports the step.
///
/// # Errors
/// [`HealthAfterError`], with what the automatic restore did.
pub async fn run<D: Database>(cx: &Ctx<'_>, db: &mut D, trail: &mut Trail) -> Result<(), Error> {
    let mut after = vec![match db.server_version().await {
        Ok(v) => Check::new(
            "connectivity",
            CheckStatus::Passed,
            format!("{v} answers after the deploy"),
        ),
        Err(e) => Check::new(
            "connectivity",
            CheckStatus::Failed,
            format!("the database stopped answering: {e}"),
        ),
    }];
    if after[0].status == CheckStatus::Passed {
        after.push(health::app_check(cx.env).await);
    }
    let failed = after
        .iter()
        .find(|c| c.status == CheckStatus::Failed)
        .cloned();
    trail.checks_after = after;
    if let Some(check) = failed {
        trail.health_after = Some("failed");
        cx.step(
            "health",
            Outcome::Failed,
            format!("{}: {}", check.name, check.detail),
        );
        let outcome = super::restore::recover(
            cx,
            db,
            trail,
            cx.env.rollback_on_health_check_failure,
            "rollback_on_health_check_failure",
            false,
        )
        .await;
        trail.rollback = Some(outcome.clone());
        return Err(Box::new(HealthAfterError {
            environment: cx.env.name.clone(),
            check: check.name.to_owned(),
            detail: check.detail,
            rollback: Some(outcome),
        })
        .into());
    }
    trail.health_after = Some("passed");
    let passed: Vec<&str> = trail
        .checks_after
        .iter()
        .filter(|c| c.status == CheckStatus::Passed)
        .map(|c| c.name)
        .collect();
    cx.step(
        "health",
        Outcome::Ok,
        format!("{} passed after the deploy", passed.join(", ")),
    );
    Ok(())
}
