//! Step 5: compare the migrations on disk with the tracking table. Pure: no I/O, so every
//! case (failed, modified, missing, out of order) is tested without a database.

use std::collections::{HashMap, HashSet};

use crate::handler::Handler;
use crate::migration::{AppliedRecord, Migration, MigrationSet, RecordState};

/// Where every migration stands.
#[derive(Debug, Default)]
pub struct Plan<'a> {
    /// Applied migrations, in applied order: (name, finished at).
    pub applied: Vec<(String, Option<String>)>,
    /// Migrations on disk not yet applied, in apply order.
    pub pending: Vec<&'a Migration>,
    /// Failed migrations: (name, recorded error text).
    pub failed: Vec<(String, Option<String>)>,
    /// Applied migrations whose file changed since.
    pub modified: Vec<String>,
    /// Applied migrations whose file is gone.
    pub missing: Vec<String>,
    /// Pending migrations that sort before the last applied one (from merged branches).
    pub out_of_order: Vec<String>,
}

/// History and files disagree; deploying on top would be guesswork.
#[derive(Debug, thiserror::Error)]
pub enum DriftError {
    /// Failed, modified or missing migrations.
    #[error("{}", describe(.failed, .modified, .missing))]
    Inconsistent {
        /// The environment, for hints.
        environment: String,
        /// Failed migrations.
        failed: Vec<String>,
        /// Edited after being applied.
        modified: Vec<String>,
        /// Applied but gone from disk.
        missing: Vec<String>,
    },
    /// No tracking table, yet the schema has tables: the database was not created by these migrations.
    #[error("the database schema is not empty but has no `{table}` table: {}", .tables.join(", "))]
    NotEmpty {
        /// The environment, for hints.
        environment: String,
        /// The tracking table.
        table: &'static str,
        /// Some of the tables found.
        tables: Vec<String>,
    },
}

fn describe(failed: &[String], modified: &[String], missing: &[String]) -> String {
    let mut parts = Vec::new();
    if !failed.is_empty() {
        parts.push(format!(
            "failed migration {} must be resolved",
            failed.join(", ")
        ));
    }
    if !modified.is_empty() {
        parts.push(format!(
            "applied migration {} was edited after it was applied",
            modified.join(", ")
        ));
    }
    if !missing.is_empty() {
        parts.push(format!(
            "applied migration {} is missing from the migrations folder",
            missing.join(", ")
        ));
    }
    parts.join("; ")
}

impl DriftError {
    /// What to do.
    #[must_use]
    pub fn hints(&self) -> Vec<String> {
        match self {
            DriftError::Inconsistent {
                environment,
                failed,
                modified,
                missing,
            } => {
                let mut hints = Vec::new();
                for name in failed {
                    hints.push(format!(
                        "`{name}` failed earlier: undo its partial changes by hand and run `dbdeploy resolve {environment} --rolled-back {name}` to retry it, or finish it by hand and run `dbdeploy resolve {environment} --applied {name}`"
                    ));
                }
                if !modified.is_empty() {
                    hints.push("restore the applied file(s) from version control; to change the schema further, add a new migration".into());
                }
                if !missing.is_empty() {
                    hints.push(
                        "restore the missing migration folder(s) from version control".into(),
                    );
                }
                hints.push("nothing was changed".into());
                hints
            }
            DriftError::NotEmpty { environment, .. } => vec![
                format!(
                    "baseline it: for each migration whose changes the database already has, run `dbdeploy resolve {environment} --applied NAME`"
                ),
                "or point the environment at an empty database; nothing was changed".into(),
            ],
        }
    }
}

/// Computes the plan.
#[must_use]
pub fn plan<'a>(
    set: &'a MigrationSet,
    records: &[AppliedRecord],
    handler: &dyn Handler,
) -> Plan<'a> {
    let mut plan = Plan::default();
    // Sets and maps, not scans: with thousands of migrations the scans were quadratic and a
    // no-op deploy of 10,000 migrations took seconds.
    let local: HashMap<&str, &Migration> = set
        .migrations
        .iter()
        .map(|m| (m.name.as_str(), m))
        .collect();
    let mut applied: HashSet<&str> = HashSet::new();
    let mut failed: HashSet<&str> = HashSet::new();
    for record in records {
        match record.state {
            RecordState::Applied => {
                if !applied.insert(record.name.as_str()) {
                    continue;
                }
                plan.applied
                    .push((record.name.clone(), record.finished_at.clone()));
                match local.get(record.name.as_str()) {
                    None => plan.missing.push(record.name.clone()),
                    Some(m) => {
                        if let Some(recorded) = &record.checksum
                            && !handler.checksum_matches(m, recorded)
                        {
                            plan.modified.push(record.name.clone());
                        }
                    }
                }
            }
            RecordState::Failed => {
                if failed.insert(record.name.as_str()) {
                    plan.failed.push((record.name.clone(), record.logs.clone()));
                }
            }
            RecordState::RolledBack => {}
        }
    }
    let is_applied = |name: &str| applied.contains(name);
    let is_failed = |name: &str| failed.contains(name);
    let last_applied = set
        .migrations
        .iter()
        .filter(|m| is_applied(&m.name))
        .map(|m| m.name.as_str())
        .max();
    let pending: Vec<&Migration> = set
        .migrations
        .iter()
        .filter(|m| !is_applied(&m.name) && !is_failed(&m.name))
        .collect();
    plan.out_of_order = pending
        .iter()
        .filter(|m| last_applied.is_some_and(|last| m.name.as_str() < last))
        .map(|m| m.name.clone())
        .collect();
    plan.pending = pending;
    plan
}

impl Plan<'_> {
    /// Whether anything blocks a deploy.
    #[must_use]
    pub fn is_consistent(&self) -> bool {
        self.failed.is_empty() && self.modified.is_empty() && self.missing.is_empty()
    }

    /// The error describing what blocks a deploy, if anything.
    #[must_use]
    pub fn drift(&self, environment: &str) -> Option<DriftError> {
        (!self.is_consistent()).then(|| DriftError::Inconsistent {
            environment: environment.to_owned(),
            failed: self.failed.iter().map(|(n, _)| n.clone()).collect(),
            modified: self.modified.clone(),
            missing: self.missing.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handler::prisma::Prisma;
    use crate::migration::TxMode;

    fn set(names: &[&str]) -> MigrationSet {
        MigrationSet {
            dir: "m".into(),
            migrations: names
                .iter()
                .map(|n| Migration {
                    name: (*n).into(),
                    path: n.into(),
                    sql: format!("-- {n}\n"),
                    checksum: sha(&format!("-- {n}\n")),
                    transaction: TxMode::Wrapped,
                })
                .collect(),
            warnings: Vec::new(),
        }
    }

    fn sha(s: &str) -> String {
        use sha2::Digest;
        sha2::Sha256::digest(s.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    fn rec(name: &str, state: RecordState) -> AppliedRecord {
        AppliedRecord {
            name: name.into(),
            checksum: Some(sha(&format!("-- {name}\n"))),
            state,
            started_at: None,
            finished_at: (state == RecordState::Applied).then(|| "t".into()),
            logs: None,
        }
    }

    #[test]
    fn fresh_database_has_everything_pending_in_order() {
        let s = set(&["1_a", "2_b"]);
        let p = plan(&s, &[], &Prisma);
        let names: Vec<_> = p.pending.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["1_a", "2_b"]);
        assert!(p.is_consistent());
    }

    #[test]
    fn applied_are_not_pending_and_rolled_back_are() {
        let s = set(&["1_a", "2_b", "3_c"]);
        let p = plan(
            &s,
            &[
                rec("1_a", RecordState::Applied),
                rec("2_b", RecordState::RolledBack),
            ],
            &Prisma,
        );
        let names: Vec<_> = p.pending.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["2_b", "3_c"]);
    }

    #[test]
    fn failed_blocks_and_is_not_pending() {
        let s = set(&["1_a", "2_b"]);
        let p = plan(&s, &[rec("1_a", RecordState::Failed)], &Prisma);
        assert_eq!(p.failed.len(), 1);
        assert!(!p.is_consistent());
        let msg = p.drift("prod").unwrap().to_string();
        assert!(msg.contains("1_a"), "{msg}");
    }

    #[test]
    fn edited_applied_migration_is_modified() {
        let s = set(&["1_a"]);
        let mut r = rec("1_a", RecordState::Applied);
        r.checksum = Some(sha("something else"));
        let p = plan(&s, &[r], &Prisma);
        assert_eq!(p.modified, ["1_a"]);
    }

    #[test]
    fn applied_but_gone_is_missing() {
        let s = set(&["2_b"]);
        let p = plan(&s, &[rec("1_a", RecordState::Applied)], &Prisma);
        assert_eq!(p.missing, ["1_a"]);
    }

    #[test]
    fn pending_before_the_last_applied_is_out_of_order() {
        let s = set(&["1_a", "2_b", "3_c"]);
        let p = plan(
            &s,
            &[
                rec("1_a", RecordState::Applied),
                rec("3_c", RecordState::Applied),
            ],
            &Prisma,
        );
        assert_eq!(p.out_of_order, ["2_b"]);
        assert_eq!(p.pending.len(), 1);
    }
}
