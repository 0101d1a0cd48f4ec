//! What a run leaves behind whatever its operation, also when it fails part-way: the facts the
//! log step records and the response reports (ids, times, checks, the backup, the automatic
//! rollback, the migrations changed so far). Steps hand each other typed values; only what
//! must survive a failure lands here.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::Ctx;
use super::backup::BackupStatus;
use super::external::ExternalRun;
use super::health::Check;
use crate::backup::RollbackOutcome;
use crate::error::Error;
use crate::interrupt::Interrupted;
use crate::schema::stamp::Observed;

/// A migration this run applied (or reverted).
#[derive(Debug, Clone, Serialize)]
pub struct Changed {
    /// Its name.
    pub name: String,
    /// How long it took.
    #[serde(rename = "duration_seconds", serialize_with = "seconds")]
    pub duration: Duration,
    /// Whether it ran in one transaction.
    pub atomic: bool,
}

/// Durations in JSON: seconds, to the millisecond.
///
/// # Errors
/// The serializer's.
pub fn seconds<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(round_seconds(*d))
}

/// Seconds, to the millisecond.
#[must_use]
pub fn round_seconds(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0).round() / 1000.0
}

/// What a run did, as far as it got.
#[derive(Debug)]
pub struct Trail {
    /// Unique id of the run.
    pub run_id: String,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it ended.
    pub finished_at: DateTime<Utc>,
    /// The server version, once connected.
    pub server_version: Option<String>,
    /// The deploy lock was taken (the database may have been written).
    pub locked: bool,
    /// `passed`, `failed`, `skipped`, `reset`.
    pub health_before: Option<&'static str>,
    /// The checks before the change.
    pub checks_before: Vec<Check>,
    /// `passed`, `failed`.
    pub health_after: Option<&'static str>,
    /// The checks after the change.
    pub checks_after: Vec<Check>,
    /// Warnings raised along the way.
    pub warnings: Vec<String>,
    /// Lint findings let through by `[lint] allow` or an allow comment, with the reason.
    pub lint_allowed: Vec<String>,
    /// How many migrations the plan selected.
    pub planned: usize,
    /// The pending migrations the plan selected, by name.
    pub pending: Vec<String>,
    /// Pending migrations after the `--to` target, left pending by this run.
    pub left_after: Vec<String>,
    /// What verification found, once it passed.
    pub verified: Option<String>,
    /// What an external tool's commands did.
    pub external: Option<ExternalRun>,
    /// Migrations applied (or reverted) so far, in order.
    pub changed: Vec<Changed>,
    /// The migrations the history row lists when they are not [`Trail::changed`] (an external
    /// tool's applied names, the migrations a restored backup holds, a resolved one).
    pub recorded: Option<Vec<String>>,
    /// What the backup step did.
    pub backup: Option<BackupStatus>,
    /// What the automatic (or requested) restore did.
    pub rollback: Option<RollbackOutcome>,
    /// The schema as the drift check saw it under the lock.
    pub schema_seen: Option<Observed>,
    /// A dev-mode reset a person approved, carried out under the lock.
    pub reset: Option<super::approve::Approved<super::precheck::Reset>>,
    /// The operation started changing the database (its `apply` began).
    pub touched: bool,
    /// The operation may change the schema (false for a resolve or a backup): the log step
    /// then records the schema it left as the drift baseline.
    pub changes_schema: bool,
    /// The tracking table as the health checks read it before the lock, for the plan made
    /// before the lock on the same session; the plan made under the lock reads it again
    /// unless its stamp says nothing changed.
    pub history_unlocked: Option<super::verify::History>,
}

impl Trail {
    /// A run that starts now.
    #[must_use]
    pub fn new() -> Self {
        let now = Utc::now();
        Self {
            run_id: uuid::Uuid::new_v4().to_string(),
            started_at: now,
            finished_at: now,
            server_version: None,
            locked: false,
            health_before: None,
            checks_before: Vec::new(),
            health_after: None,
            checks_after: Vec::new(),
            warnings: Vec::new(),
            lint_allowed: Vec::new(),
            planned: 0,
            pending: Vec::new(),
            left_after: Vec::new(),
            verified: None,
            external: None,
            changed: Vec::new(),
            recorded: None,
            backup: None,
            rollback: None,
            schema_seen: None,
            reset: None,
            touched: false,
            changes_schema: true,
            history_unlocked: None,
        }
    }

    /// The migrations the history row lists.
    #[must_use]
    pub fn migrations(&self) -> Vec<String> {
        match &self.recorded {
            Some(names) => names.clone(),
            None => self.changed.iter().map(|c| c.name.clone()).collect(),
        }
    }

    /// The id of the backup this run made.
    #[must_use]
    pub fn backup_id(&self) -> Option<&str> {
        self.backup.as_ref().and_then(BackupStatus::id)
    }

    /// Seconds from start to end.
    #[must_use]
    pub fn duration_seconds(&self) -> f64 {
        #[allow(clippy::cast_precision_loss)]
        let ms = (self.finished_at - self.started_at).num_milliseconds() as f64;
        ms / 1000.0
    }

    /// Ctrl-C stopped the run between two steps, with `not_started` migrations not started.
    #[must_use]
    pub fn interrupted(&self, cx: &Ctx<'_>, not_started: usize) -> Error {
        Box::new(Interrupted {
            environment: cx.env.name.clone(),
            applied: self.changed.len(),
            not_started,
            partial: None,
            backup_id: self.backup_id().map(str::to_owned),
        })
        .into()
    }
}

impl Default for Trail {
    fn default() -> Self {
        Self::new()
    }
}
