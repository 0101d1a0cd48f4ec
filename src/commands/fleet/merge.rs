//! `dbdeploy fleet merge r1.json … rN.json`: the reports of a sharded fleet deploy, combined.
//! The shards must be of one run of one fleet (the same fingerprint: environment, targets,
//! migrations), each shard once and all of them there, and every target in exactly one
//! report; then the merged report reads like one fleet run's, summary and exit code included.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use crate::cli::{MergeArgs, Shard, parse_shard};
use crate::config::ConfigError;
use crate::error::{Error, exit};
use crate::fleet::report::{self, Counts, TargetReport, TargetStatus};
use crate::output::{Line, Printer, Response, Status, to_value};

const MERGE: &str = "fleet-merge";

/// One shard's report, as read.
struct ShardReport {
    path: String,
    environment: String,
    fingerprint: String,
    shard: Shard,
    fleet_targets: usize,
    targets: Vec<TargetReport>,
    /// `result.run_id`: none for a shard with no targets (or a dry run).
    run_id: Option<String>,
}

/// The `result` of a `fleet-merge` document.
#[derive(Serialize)]
struct MergeResult<'a> {
    /// The fleet run id the shards share (`--run-id`); `None` when they ran under several.
    run_id: Option<&'a str>,
    fleet_fingerprint: &'a str,
    shards: Vec<String>,
    fleet_targets: usize,
    targets: &'a [TargetReport],
    counts: Counts,
    exit_code: u8,
}

/// Runs `fleet merge`.
pub fn run(args: &MergeArgs, printer: &Printer) -> Response {
    match merge(args, printer) {
        Ok(r) => r,
        Err(e) => Response::failed(MERGE, "", e),
    }
}

fn merge(args: &MergeArgs, printer: &Printer) -> Result<Response, Error> {
    let reports: Vec<ShardReport> = args
        .reports
        .iter()
        .map(|p| read(p))
        .collect::<Result<_, _>>()?;
    let first = &reports[0];
    let usage = |m: String| -> Error { ConfigError::Usage(m).into() };
    for r in &reports[1..] {
        if r.environment != first.environment || r.fingerprint != first.fingerprint {
            return Err(usage(format!(
                "{} and {} are not shards of one run of one fleet (environment `{}` vs `{}`, fingerprint {} vs {}: the targets or the migrations differ); merge the reports of one run",
                first.path,
                r.path,
                first.environment,
                r.environment,
                first.fingerprint,
                r.fingerprint
            )));
        }
        if r.shard.count != first.shard.count {
            return Err(usage(format!(
                "{} is shard {} and {} is shard {}: the shards of one run share their count",
                first.path, first.shard, r.path, r.shard
            )));
        }
    }
    let count = first.shard.count;
    let mut by_shard: BTreeMap<u32, &str> = BTreeMap::new();
    for r in &reports {
        if let Some(other) = by_shard.insert(r.shard.index, &r.path) {
            return Err(usage(format!(
                "shard {} is given twice ({other} and {}): pass each shard's report once",
                r.shard, r.path
            )));
        }
    }
    let missing: Vec<String> = (1..=count)
        .filter(|i| !by_shard.contains_key(i))
        .map(|i| format!("{i}/{count}"))
        .collect();
    if !missing.is_empty() {
        return Err(usage(format!(
            "shard(s) {} of fleet `{}` are missing: without their reports, their targets' outcome is unknown; pass every shard's report",
            missing.join(", "),
            first.environment
        )));
    }
    let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
    for r in &reports {
        for t in &r.targets {
            if let Some(other) = seen.insert(&t.id, &r.path) {
                return Err(usage(format!(
                    "target `{}` appears in {other} and in {}: each target belongs to one shard",
                    t.id, r.path
                )));
            }
        }
    }
    if seen.len() != first.fleet_targets {
        return Err(usage(format!(
            "the shards report {} target(s), and fleet `{}` has {}: a shard's report is incomplete",
            seen.len(),
            first.environment,
            first.fleet_targets
        )));
    }
    let environment = first.environment.clone();
    let fingerprint = first.fingerprint.clone();
    let run_ids: BTreeSet<String> = reports.iter().filter_map(|r| r.run_id.clone()).collect();
    let run_id = match run_ids.len() {
        1 => run_ids.first().cloned(),
        0 => None,
        n => {
            // Not an error: every target's outcome is known. Only an undo needs one id.
            printer.line(&format!(
                "warning: the shards ran under {n} fleet run ids: `rollback {environment} --run` undoes one shard's run at a time; give every job the same `--run-id` next time"
            ));
            None
        }
    };
    let mut targets: Vec<TargetReport> = reports.into_iter().flat_map(|r| r.targets).collect();
    targets.sort_by(|a, b| a.id.cmp(&b.id));
    let counts = Counts::of(&targets);
    printer.lines(&report::table(&targets));
    let code = if counts.failed > 0 || counts.cancelled > 0 || counts.not_started > 0 {
        exit::FAILURE
    } else {
        exit::SUCCESS
    };
    let applied: usize = targets.iter().map(|t| t.migrations_applied).sum();
    let message = format!(
        "fleet `{environment}`, {count} shard(s): {} ({applied} migration(s) applied)",
        counts.sentence()
    );
    let result = to_value(&MergeResult {
        run_id: run_id.as_deref(),
        fleet_fingerprint: &fingerprint,
        shards: (1..=count).map(|i| format!("{i}/{count}")).collect(),
        fleet_targets: targets.len(),
        targets: &targets,
        counts,
        exit_code: code,
    });
    let mut r = Response {
        line: Line::Plain,
        result,
        ..Response::success(MERGE, &environment, None, message, &())
    };
    if code != exit::SUCCESS {
        r.status = Status::Error;
        r.line = Line::Plain;
        r.error = Some(Error::Fleet(Box::new(report::FleetFailure {
            environment: environment.clone(),
            counts,
            failed: targets
                .iter()
                .filter(|t| t.status == TargetStatus::Failed)
                .map(|t| t.id.clone())
                .collect(),
            applied,
            interrupted: false,
            rollback_of: None,
        })));
    }
    r.exit_code = code;
    Ok(r)
}

/// Reads one shard's `fleet-deploy` report.
fn read(path: &Path) -> Result<ShardReport, Error> {
    let shown = path.display().to_string();
    let bad = |why: &str| -> Error {
        ConfigError::Usage(format!(
            "{shown}: {why}; pass the `--json` output of `dbdeploy migrate ENV --shard I/N`"
        ))
        .into()
    };
    let text = std::fs::read_to_string(path).map_err(|e| bad(&format!("cannot read it ({e})")))?;
    let doc: Value = serde_json::from_str(&text).map_err(|_| bad("it is not a JSON document"))?;
    if doc["operation"] != "fleet-deploy" {
        return Err(bad("it is not the report of a fleet deploy"));
    }
    let result = &doc["result"];
    let fingerprint = result["fleet_fingerprint"]
        .as_str()
        .ok_or_else(|| bad("it has no `result.fleet_fingerprint`"))?
        .to_owned();
    let shard = match result["shard"].as_str() {
        Some(s) => parse_shard(s).map_err(|e| bad(&e))?,
        None => Shard { index: 1, count: 1 },
    };
    let fleet_targets = result["fleet_targets"]
        .as_u64()
        .ok_or_else(|| bad("it has no `result.fleet_targets`"))? as usize;
    let list = result["targets"]
        .as_array()
        .ok_or_else(|| bad("it lists no targets"))?;
    let mut targets = Vec::with_capacity(list.len());
    let mut ids = BTreeSet::new();
    for (i, t) in list.iter().enumerate() {
        let at = |what: &str| bad(&format!("`result.targets[{i}]` {what}"));
        let id = t["id"].as_str().ok_or_else(|| at("has no id"))?;
        if !ids.insert(id.to_owned()) {
            return Err(at(&format!("repeats target `{id}`")));
        }
        let status = t["status"]
            .as_str()
            .and_then(TargetStatus::parse)
            .ok_or_else(|| at("has no known status"))?;
        let mut r = TargetReport::untouched(id, &BTreeMap::new(), status);
        if let Some(labels) = t["labels"].as_object() {
            r.labels = labels
                .iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned())))
                .collect();
        }
        r.pending = t["pending"]
            .as_array()
            .map(|p| {
                p.iter()
                    .filter_map(|x| x.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        r.migrations_applied = t["migrations_applied"].as_u64().unwrap_or(0) as usize;
        r.duration_seconds =
            Duration::from_secs_f64(t["duration_seconds"].as_f64().unwrap_or(0.0).max(0.0));
        r.error = t["error"].as_str().map(str::to_owned);
        r.backup_id = t["backup_id"].as_str().map(str::to_owned);
        targets.push(r);
    }
    Ok(ShardReport {
        run_id: result["run_id"].as_str().map(str::to_owned),
        path: shown,
        environment: doc["environment"].as_str().unwrap_or("").to_owned(),
        fingerprint,
        shard,
        fleet_targets,
        targets,
    })
}
