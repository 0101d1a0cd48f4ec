//! Schema drift: the live schema against the one recorded at the end of the last successful
//! run. Checked under the lock before a deploy (a change made by hand since then stops a deploy
//! in `deploy` mode) and by `dbdeploy health`. When the catalog stamp equals the one recorded
//! with the baseline, nothing changed and the schema is not read at all.

use super::health::{Check, CheckStatus};
use super::{Ctx, Trail};
use crate::config::Mode;
use crate::engine::Database;
use crate::error::Error;
use crate::history;
use crate::schema::stamp::{self, Observed};
use crate::settings::EnvSettings;

/// The schema changed outside dbdeploy since the last run that recorded it.
#[derive(Debug, thiserror::Error)]
#[error(
    "the schema of `{environment}` changed since the last deploy (run {run}, {at}): {}",
    changes.iter().take(5).cloned().collect::<Vec<_>>().join("; ")
)]
pub struct SchemaDriftError {
    /// The environment.
    pub environment: String,
    /// The run that recorded the baseline.
    pub run: String,
    /// When.
    pub at: String,
    /// What changed, one line per table object.
    pub changes: Vec<String>,
}

impl SchemaDriftError {
    /// What to do.
    #[must_use]
    pub fn hints(&self) -> Vec<String> {
        let env = &self.environment;
        vec![
            format!("see the whole difference with `dbdeploy diff {env}`"),
            "capture the change in a migration (or undo it by hand), so that the migrations describe the database again".into(),
            format!(
                "or deploy anyway with `dbdeploy migrate {env} --allow-drift`: the schema as it is becomes the new baseline"
            ),
            "nothing was changed".into(),
        ]
    }
}

/// The outcome of the drift check.
#[derive(Debug)]
pub struct DriftCheck {
    /// The check as reported.
    pub check: Check,
    /// The drift, when it is one (not in the repairs after a failed run).
    pub drift: Option<SchemaDriftError>,
    /// The schema as the check saw it, when it was compared with a baseline.
    pub seen: Option<Observed>,
}

impl DriftCheck {
    fn skipped(detail: &str) -> Self {
        Self {
            check: Check::new("schema_drift", CheckStatus::Skipped, detail),
            drift: None,
            seen: None,
        }
    }
}

/// Compares the live schema with the one recorded by the last deploy. When the catalog stamp
/// is the one recorded with the baseline, nothing changed and the schema is not read.
///
/// # Errors
/// Database errors reading the catalogs.
pub async fn schema_drift<D: Database>(db: &mut D, env: &EnvSettings) -> Result<DriftCheck, Error> {
    let Some(base) = history::baseline(db).await? else {
        return Ok(DriftCheck::skipped(
            "no schema recorded yet (recorded after the next successful deploy)",
        ));
    };
    let passed = |base: &history::Baseline| {
        Check::new(
            "schema_drift",
            CheckStatus::Passed,
            format!("schema matches the last deploy ({})", base.at),
        )
    };
    // Before any full read: a change made during it must not hide behind this stamp.
    let stamp = stamp::read_or_none(db).await;
    if stamp.is_some() && stamp == base.stamp {
        tracing::debug!(
            "schema unchanged since run {}: the catalog stamp is the recorded one",
            base.run_id
        );
        return Ok(DriftCheck {
            check: passed(&base),
            drift: None,
            seen: Some(Observed {
                hash: base.hash,
                text: None,
                stamp,
            }),
        });
    }
    let recorded = history::recorded_text(db, &base.hash)
        .await?
        .unwrap_or_default();
    if crate::schema::format_version(&recorded) != Some(crate::schema::FORMAT_VERSION) {
        return Ok(DriftCheck::skipped(
            "the recorded schema is from another dbdeploy version (re-recorded after the next deploy)",
        ));
    }
    let live = crate::schema::snapshot(db).await?;
    let seen = Some(Observed {
        hash: live.hash.clone(),
        text: Some(live.text.clone()),
        stamp,
    });
    if live.hash == base.hash {
        return Ok(DriftCheck {
            check: passed(&base),
            drift: None,
            seen,
        });
    }
    let changes: Vec<String> = crate::schema::changes(&recorded, &live.text)
        .iter()
        .map(ToString::to_string)
        .collect();
    let err = SchemaDriftError {
        environment: env.name.clone(),
        run: base.run_id.get(..8).unwrap_or(&base.run_id).to_owned(),
        at: base.at,
        changes,
    };
    if base.repairing {
        // After a run that failed part-way (or a resolve), the operator is told to repair by
        // hand; those repairs are not someone else's change.
        return Ok(DriftCheck {
            check: Check::new(
                "schema_drift",
                CheckStatus::Warning,
                format!(
                    "{err} — expected after the failed run since (repairs by hand); the next successful deploy records the new baseline"
                ),
            ),
            drift: None,
            seen,
        });
    }
    Ok(DriftCheck {
        check: Check::new("schema_drift", CheckStatus::Failed, err.to_string()),
        drift: Some(err),
        seen,
    })
}

/// The drift step of a deploy: the schema has not changed outside dbdeploy since the last
/// deploy (checked under the lock); in dev mode or with `--allow-drift` a change is a warning.
///
/// # Errors
/// [`SchemaDriftError`] in deploy mode, or a database error.
pub async fn step<D: Database>(cx: &Ctx<'_>, db: &mut D, trail: &mut Trail) -> Result<(), Error> {
    // Only under the lock (or in a dry run, which never takes it): without it, a deploy that
    // is running right now shows as drift until it has recorded its schema.
    if cx.options.skip_health_check || !(trail.locked || cx.options.dry_run) {
        return Ok(());
    }
    let DriftCheck { check, drift, seen } = schema_drift(db, cx.env).await?;
    trail.schema_seen = seen;
    trail.checks_before.push(check.clone());
    if check.status == CheckStatus::Warning {
        check.report(cx.reporter);
        trail.warnings.push(check.detail.clone());
    }
    if let Some(drift) = drift {
        if cx.env.mode == Mode::Dev || cx.options.allow_drift {
            let why = if cx.options.allow_drift {
                "--allow-drift"
            } else {
                "dev mode"
            };
            cx.warn(trail, format!("{drift} (continuing: {why})"));
        } else {
            check.report(cx.reporter);
            return Err(drift.into());
        }
    }
    Ok(())
}
