//! What a fleet run reports: one entry per target (also those it did not start), the counts,
//! the summary table people read, and reading an earlier run's `--json` report back to narrow
//! a re-run (`--only failed --from report.json`).

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use crate::config::ConfigError;

/// What happened to one target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetStatus {
    /// Its run succeeded (also with nothing to apply).
    Success,
    /// Its plan or its run failed.
    Failed,
    /// Left out by `--only`.
    Skipped,
    /// Not started: the fleet stopped first (a failure with `on_error = "stop"`, a failed
    /// canary, Ctrl-C).
    NotStarted,
    /// Approval was refused, or Ctrl-C stopped its run.
    Cancelled,
}

impl TargetStatus {
    /// The word in reports and in `--only`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            TargetStatus::Success => "success",
            TargetStatus::Failed => "failed",
            TargetStatus::Skipped => "skipped",
            TargetStatus::NotStarted => "not_started",
            TargetStatus::Cancelled => "cancelled",
        }
    }

    /// The status named in `--only` (a report's own words).
    #[must_use]
    pub fn parse(word: &str) -> Option<Self> {
        [
            TargetStatus::Success,
            TargetStatus::Failed,
            TargetStatus::Skipped,
            TargetStatus::NotStarted,
            TargetStatus::Cancelled,
        ]
        .into_iter()
        .find(|s| s.as_str() == word.replace('-', "_"))
    }
}

/// One target in the report.
#[derive(Debug, Clone, Serialize)]
pub struct TargetReport {
    /// Its id.
    pub id: String,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// What happened.
    pub status: TargetStatus,
    /// What its read-only plan found pending (empty when it was not planned).
    pub pending: Vec<String>,
    /// Migrations applied to it by this run.
    pub migrations_applied: usize,
    /// How long its run took.
    #[serde(serialize_with = "crate::pipeline::trail::seconds")]
    pub duration_seconds: Duration,
    /// Why it failed or was cancelled.
    pub error: Option<String>,
    /// The backup its run made.
    pub backup_id: Option<String>,
}

impl TargetReport {
    /// A target with `status` and nothing done.
    #[must_use]
    pub fn untouched(id: &str, labels: &BTreeMap<String, String>, status: TargetStatus) -> Self {
        Self {
            id: id.to_owned(),
            labels: labels.clone(),
            status,
            pending: Vec::new(),
            migrations_applied: 0,
            duration_seconds: Duration::ZERO,
            error: None,
            backup_id: None,
        }
    }
}

/// How many targets ended each way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// All targets of the fleet.
    pub total: usize,
    /// Succeeded.
    pub success: usize,
    /// Failed.
    pub failed: usize,
    /// Left out by `--only`.
    pub skipped: usize,
    /// Not started.
    pub not_started: usize,
    /// Cancelled.
    pub cancelled: usize,
}

impl Counts {
    /// Counts the targets of a report.
    #[must_use]
    pub fn of(targets: &[TargetReport]) -> Self {
        let mut c = Counts {
            total: targets.len(),
            ..Counts::default()
        };
        for t in targets {
            *match t.status {
                TargetStatus::Success => &mut c.success,
                TargetStatus::Failed => &mut c.failed,
                TargetStatus::Skipped => &mut c.skipped,
                TargetStatus::NotStarted => &mut c.not_started,
                TargetStatus::Cancelled => &mut c.cancelled,
            } += 1;
        }
        c
    }

    /// `2 succeeded, 1 failed, 1 not started` (only the kinds that occur).
    #[must_use]
    pub fn sentence(&self) -> String {
        let parts: Vec<String> = [
            (self.success, "succeeded"),
            (self.failed, "failed"),
            (self.cancelled, "cancelled"),
            (self.not_started, "not started"),
            (self.skipped, "skipped"),
        ]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}"))
        .collect();
        if parts.is_empty() {
            "no targets".into()
        } else {
            parts.join(", ")
        }
    }
}

/// The `result` of a `fleet-deploy` (or `fleet-preview`) document.
#[derive(Debug, Serialize)]
pub struct FleetResult<'a> {
    /// The fleet run's id (a deploy, not a dry run): every target's history row and audit
    /// line carries it, and `rollback ENV --run` takes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_id: Option<&'a str>,
    /// The fleet's targets, in the fleet's order.
    pub targets: &'a [TargetReport],
    /// How many ended each way.
    pub counts: Counts,
    /// `stop` or `continue`.
    pub on_error: &'static str,
    /// Targets at once.
    pub max_parallel: usize,
    /// Targets at once on one server (`null`: no limit of its own).
    pub max_parallel_per_server: Option<usize>,
    /// Canary targets.
    pub canary: usize,
    /// `I/N` when this run is one shard of the fleet (`--shard`).
    pub shard: Option<String>,
    /// The targets of the whole fleet (all shards).
    pub fleet_targets: usize,
    /// The fleet and its migrations, the same in every shard of one run (`fleet merge`
    /// combines only reports that share it).
    pub fleet_fingerprint: Option<String>,
}

/// Targets of a fleet failed, were cancelled or did not start: the fleet's error, so that a
/// failed fleet's document carries `error{code, class, hints}` like any failed run.
#[derive(Debug, thiserror::Error)]
#[error("{}", self.summary())]
pub struct FleetFailure {
    /// The environment.
    pub environment: String,
    /// How the targets ended.
    pub counts: Counts,
    /// The ids of the failed targets.
    pub failed: Vec<String>,
    /// Migrations applied across the fleet by this run.
    pub applied: usize,
    /// Ctrl-C stopped the fleet.
    pub interrupted: bool,
    /// The fleet run a `rollback --run` was undoing (its failures are restores, not deploys).
    pub rollback_of: Option<String>,
}

impl FleetFailure {
    fn summary(&self) -> String {
        let c = &self.counts;
        let failed = if self.failed.is_empty() {
            String::new()
        } else {
            format!(" ({})", self.failed.join(", "))
        };
        let what = if self.interrupted {
            "interrupted (Ctrl-C)".to_owned()
        } else {
            format!("{} of {} target(s) failed{failed}", c.failed, c.total)
        };
        format!("fleet `{}`: {what}: {}", self.environment, c.sentence())
    }

    /// What to do next.
    #[must_use]
    pub fn hints(&self) -> Vec<String> {
        let env = &self.environment;
        if let Some(run) = &self.rollback_of {
            return vec![
                format!(
                    "each target's error is in its line above (and in `result.targets` under --json); the targets restored stay restored"
                ),
                format!(
                    "after fixing, run `dbdeploy rollback {env} --run {run}` again: it restores each changed target from the same backup"
                ),
            ];
        }
        let mut hints = Vec::new();
        if self.applied > 0 {
            hints.push(format!(
                "the {} migration(s) applied to the targets that succeeded stay applied",
                self.applied
            ));
        }
        hints.push(format!(
            "each target's error is in its line above (and in `result.targets` under --json); `dbdeploy status {env}` shows where every target stands"
        ));
        hints.push(format!(
            "after fixing, re-run what is left: `dbdeploy migrate {env} --only failed,not_started,cancelled --from REPORT` (REPORT: this run's --json output), or run `dbdeploy migrate {env}` again: it applies only what is pending"
        ));
        hints
    }
}

/// The summary table: one row per target.
#[must_use]
pub fn table(targets: &[TargetReport]) -> String {
    let width = targets.iter().map(|t| t.id.len()).max().unwrap_or(2).max(6);
    let mut out = format!(
        "  {:<width$}  {:<11}  {:>7}  time\n",
        "target", "status", "applied"
    );
    for t in targets {
        // Targets that did not run (up to date, failed to plan, not started) took no time.
        let time = if t.duration_seconds.is_zero() {
            "-".into()
        } else {
            crate::pipeline::event::duration(t.duration_seconds)
        };
        out.push_str(&format!(
            "  {:<width$}  {:<11}  {:>7}  {time}\n",
            t.id,
            t.status.as_str(),
            t.migrations_applied
        ));
    }
    out
}

/// The ids of `--only STATUS... --from REPORT`: the targets the earlier run of `environment`
/// reported with one of those statuses.
///
/// # Errors
/// A configuration error (exit 2): an unknown status, a file that is not a fleet report of
/// this environment.
pub fn narrowed(
    path: &Path,
    only: &[String],
    environment: &str,
) -> Result<HashSet<String>, ConfigError> {
    let mut wanted = Vec::new();
    for word in only {
        let s = TargetStatus::parse(word.trim()).ok_or_else(|| {
            ConfigError::Usage(format!(
                "--only {word}: not a target status (use failed, not_started, cancelled, skipped or success)"
            ))
        })?;
        wanted.push(s.as_str());
    }
    let bad = |why: &str| {
        ConfigError::Usage(format!(
            "--from {}: {why}; pass the `--json` output of an earlier `dbdeploy migrate {environment}`",
            path.display()
        ))
    };
    let text = std::fs::read_to_string(path).map_err(|e| bad(&format!("cannot read it ({e})")))?;
    let doc: serde_json::Value =
        serde_json::from_str(&text).map_err(|_| bad("it is not a JSON document"))?;
    if doc["operation"] != "fleet-deploy" {
        return Err(bad("it is not the report of a fleet deploy"));
    }
    if doc["environment"] != environment {
        return Err(bad(&format!(
            "it reports environment `{}`, not `{environment}`",
            doc["environment"].as_str().unwrap_or("?")
        )));
    }
    let targets = doc["result"]["targets"]
        .as_array()
        .ok_or_else(|| bad("it lists no targets"))?;
    Ok(targets
        .iter()
        .filter(|t| t["status"].as_str().is_some_and(|s| wanted.contains(&s)))
        .filter_map(|t| t["id"].as_str().map(str::to_owned))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_read_as_written() {
        assert_eq!(
            TargetStatus::parse("not_started"),
            Some(TargetStatus::NotStarted)
        );
        assert_eq!(
            TargetStatus::parse("not-started"),
            Some(TargetStatus::NotStarted)
        );
        assert_eq!(TargetStatus::parse("bogus"), None);
    }

    #[test]
    fn counts_and_sentence() {
        let none = BTreeMap::new();
        let r = [
            TargetReport::untouched("a", &none, TargetStatus::Success),
            TargetReport::untouched("b", &none, TargetStatus::Failed),
            TargetReport::untouched("c", &none, TargetStatus::NotStarted),
        ];
        let c = Counts::of(&r);
        assert_eq!((c.total, c.success, c.failed, c.not_started), (3, 1, 1, 1));
        assert_eq!(c.sentence(), "1 succeeded, 1 failed, 1 not started");
    }

    #[test]
    fn narrowing_reads_an_earlier_report() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.json");
        std::fs::write(
            &path,
            r#"{"operation":"fleet-deploy","environment":"t","result":{"targets":[
                {"id":"a","status":"success"},{"id":"b","status":"failed"},{"id":"c","status":"not_started"}]}}"#,
        )
        .unwrap();
        let ids = narrowed(&path, &["failed".into()], "t").unwrap();
        assert_eq!(ids, HashSet::from(["b".to_owned()]));
        let ids = narrowed(&path, &["failed".into(), "not_started".into()], "t").unwrap();
        assert_eq!(ids.len(), 2);
        assert!(narrowed(&path, &["failed".into()], "other").is_err());
        assert!(narrowed(&path, &["broken".into()], "t").is_err());
    }
}
