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
    /// What the format's own tool calls clearing a failure, for the hints.
    pub failed_hint: Option<&'static str>,
    /// Migrations the tool can never run because the tracking table records only a later
    /// version (golang-migrate), as told by dbdeploy's own history; see
    /// [`Handler::unreachable`].
    pub unreachable: Vec<String>,
}

/// History and files disagree; deploying on top would be guesswork.
#[derive(Debug, thiserror::Error)]
pub enum DriftError {
    /// Failed, modified or missing migrations.
    #[error("{}", describe(.failed, .modified, .missing, .unreachable))]
    Inconsistent {
        /// The environment, for hints.
        environment: String,
        /// Failed migrations.
        failed: Vec<String>,
        /// Edited after being applied.
        modified: Vec<String>,
        /// Applied but gone from disk.
        missing: Vec<String>,
        /// The format's own word on clearing a failure.
        failed_hint: Option<&'static str>,
        /// Never applied, and the tool will never apply them.
        unreachable: Vec<String>,
    },
    /// No tracking table, but another known tool's: the database is that tool's.
    #[error(transparent)]
    OtherTool(Box<super::verify::OtherTool>),
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

fn describe(
    failed: &[String],
    modified: &[String],
    missing: &[String],
    unreachable: &[String],
) -> String {
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
    if !unreachable.is_empty() {
        parts.push(format!(
            "migration {} was never applied and sorts below the current version, so the tool will never run it",
            unreachable.join(", ")
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
                failed_hint,
                unreachable,
            } => {
                let mut hints = Vec::new();
                for name in failed {
                    hints.push(format!(
                        "`{name}` failed earlier: undo its partial changes by hand and run `dbdeploy resolve {environment} --rolled-back {name}` to retry it, or finish it by hand and run `dbdeploy resolve {environment} --applied {name}`"
                    ));
                }
                if let Some(hint) = failed_hint.filter(|_| !failed.is_empty()) {
                    hints.push(hint.to_owned());
                }
                if !modified.is_empty() {
                    hints.push("restore the applied file(s) from version control; to change the schema further, add a new migration".into());
                }
                if !missing.is_empty() {
                    hints.push(
                        "restore the missing migration folder(s) from version control".into(),
                    );
                }
                if !unreachable.is_empty() {
                    hints.push(format!(
                        "the tracking table stores only the highest applied version: give {} a version above it (rename the files), so that it runs next",
                        unreachable.join(", ")
                    ));
                    hints.push(format!(
                        "if its changes are already in the database (applied by the tool itself), record that with `dbdeploy resolve {environment} --applied NAME`"
                    ));
                }
                hints.push("nothing was changed".into());
                hints
            }
            DriftError::OtherTool(other) => other.hints(),
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
    let superseded: HashSet<String> = handler.superseded(set, records).into_iter().collect();
    let records = handler.interpret_history(set, handler.reconcile(set, records.into()));
    let mut plan = Plan {
        failed_hint: handler.failed_hint(),
        ..Plan::default()
    };
    // Sets and maps, not scans: with thousands of migrations the scans were quadratic and a
    // no-op deploy of 10,000 migrations took seconds.
    let local: HashMap<&str, &Migration> = set
        .migrations
        .iter()
        .map(|m| (m.name.as_str(), m))
        .collect();
    let mut applied: HashSet<&str> = HashSet::new();
    let mut failed: HashSet<&str> = HashSet::new();
    for record in records.iter() {
        match record.state {
            RecordState::Applied => {
                if !applied.insert(record.name.as_str()) {
                    continue;
                }
                plan.applied
                    .push((record.name.clone(), record.finished_at.clone()));
                match local.get(record.name.as_str()) {
                    None => plan.missing.push(record.name.clone()),
                    // A changed repeatable migration is not drift: it runs again (below).
                    Some(m) if handler.is_repeatable(m) => {}
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
    // A repeatable migration is up to date when its latest applied run has its checksum.
    let up_to_date = |m: &Migration| {
        records
            .iter()
            .rev()
            .find(|r| r.name == m.name && r.state == RecordState::Applied)
            .and_then(|r| r.checksum.as_deref())
            .is_some_and(|c| handler.checksum_matches(m, c))
    };
    // By position in apply order, not by name: versions such as `2` and `10` do not sort as text.
    let last_applied = set
        .migrations
        .iter()
        .rposition(|m| is_applied(&m.name) && !handler.is_repeatable(m));
    let pending: Vec<(usize, &Migration)> = set
        .migrations
        .iter()
        .enumerate()
        .filter(|(_, m)| !is_failed(&m.name) && !superseded.contains(&m.name))
        .filter(|(_, m)| {
            if handler.is_repeatable(m) {
                !up_to_date(m)
            } else {
                !is_applied(&m.name)
            }
        })
        .collect();
    let newest_applied = set
        .migrations
        .iter()
        .filter(|m| is_applied(&m.name) && !handler.is_repeatable(m))
        .reduce(|a, b| if handler.sorts_before(b, a) { a } else { b });
    plan.out_of_order = pending
        .iter()
        .filter(|(_, m)| !handler.is_repeatable(m))
        .filter(|(i, m)| {
            last_applied.is_some_and(|last| *i < last)
                || newest_applied.is_some_and(|newest| handler.sorts_before(m, newest))
        })
        .map(|(_, m)| m.name.clone())
        .collect();
    let pending: Vec<&Migration> = pending.into_iter().map(|(_, m)| m).collect();
    plan.pending = pending;
    plan
}

impl Plan<'_> {
    /// Whether anything blocks a deploy.
    #[must_use]
    pub fn is_consistent(&self) -> bool {
        self.failed.is_empty()
            && self.modified.is_empty()
            && self.missing.is_empty()
            && self.unreachable.is_empty()
    }

    /// The error describing what blocks a deploy, if anything.
    #[must_use]
    pub fn drift(&self, environment: &str) -> Option<DriftError> {
        (!self.is_consistent()).then(|| DriftError::Inconsistent {
            environment: environment.to_owned(),
            failed: self.failed.iter().map(|(n, _)| n.clone()).collect(),
            modified: self.modified.clone(),
            missing: self.missing.clone(),
            failed_hint: self.failed_hint,
            unreachable: self.unreachable.clone(),
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
                    tx: TxMode::Wrapped.into(),
                    tool_data: None,
                    down: None,
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

    fn flyway_set(files: &[(&str, &str)]) -> MigrationSet {
        use crate::handler::flyway::Flyway;
        let dir = tempfile::tempdir().unwrap();
        for (f, body) in files {
            std::fs::write(dir.path().join(f), body).unwrap();
        }
        let mut set = Flyway
            .load(dir.path(), crate::engine::Dialect::Sqlite)
            .unwrap();
        set.dir = "db/migration".into();
        set
    }

    fn flyway_rec(name: &str, set: &MigrationSet, state: RecordState) -> AppliedRecord {
        let checksum = set
            .migrations
            .iter()
            .find(|m| m.name == name)
            .map(|m| m.checksum.clone());
        AppliedRecord {
            checksum,
            ..rec(name, state)
        }
    }

    #[test]
    fn flyway_versions_order_numerically_and_lower_pending_ones_are_out_of_order() {
        use crate::handler::flyway::Flyway;
        let s = flyway_set(&[
            ("V1.12.10__c.sql", "SELECT 3;"),
            ("V1.12.2__b.sql", "SELECT 2;"),
            ("V1__a.sql", "SELECT 1;"),
        ]);
        let names: Vec<_> = s.migrations.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["1", "1.12.2", "1.12.10"]);
        let p = plan(
            &s,
            &[
                flyway_rec("1", &s, RecordState::Applied),
                flyway_rec("1.12.10", &s, RecordState::Applied),
            ],
            &Flyway,
        );
        assert_eq!(p.out_of_order, ["1.12.2"]);
        assert!(p.is_consistent());
    }

    #[test]
    fn a_changed_repeatable_migration_is_pending_not_modified() {
        use crate::handler::flyway::Flyway;
        let s = flyway_set(&[("V1__a.sql", "SELECT 1;"), ("R__views.sql", "SELECT 2;")]);
        let mut old = flyway_rec("views", &s, RecordState::Applied);
        old.checksum = Some("12345".into());
        let current = flyway_rec("views", &s, RecordState::Applied);
        let a = flyway_rec("1", &s, RecordState::Applied);

        let p = plan(&s, &[a.clone(), old.clone()], &Flyway);
        assert!(p.is_consistent(), "{p:?}");
        let pending: Vec<_> = p.pending.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(pending, ["views"]);
        assert!(p.out_of_order.is_empty());

        // The latest run decides: an older run with another checksum does not matter.
        let p = plan(&s, &[a.clone(), old, current], &Flyway);
        assert!(p.pending.is_empty(), "{p:?}");

        // A versioned migration edited after it ran is drift.
        let mut edited = a;
        edited.checksum = Some("12345".into());
        let p = plan(&s, &[edited], &Flyway);
        assert_eq!(p.modified, ["1"]);
    }

    #[test]
    fn out_of_order_follows_apply_order_not_text_order() {
        // Numeric versions: `10` comes after `2` although "10" < "2" as text.
        let s = set(&["1", "2", "10"]);
        let p = plan(
            &s,
            &[
                rec("1", RecordState::Applied),
                rec("2", RecordState::Applied),
            ],
            &Prisma,
        );
        assert!(p.out_of_order.is_empty(), "{:?}", p.out_of_order);
        let p = plan(
            &s,
            &[
                rec("1", RecordState::Applied),
                rec("10", RecordState::Applied),
            ],
            &Prisma,
        );
        assert_eq!(p.out_of_order, ["2"]);
    }
}
