//! Flyway's baselines, as `MigrationInfoServiceImpl` and `BaselineResolvedMigration` treat
//! them. A baseline row — `BASELINE` written by `flyway baseline`, or `SQL_BASELINE` written
//! when a baseline migration (`B<version>__x.sql`) ran — stands for every version at or below
//! it, which the database already has. On an empty database the latest baseline migration
//! runs instead of the versioned migrations up to its version; once the database has history,
//! baseline migrations are ignored.

use std::cmp::Ordering;
use std::collections::HashSet;

use super::BASELINE_MARK;
use super::name::{Name, baseline_version, compare_versions, is_version, name_of};
use crate::migration::{AppliedRecord, MigrationSet, RecordState};

/// Expands baseline markers into one applied record per local versioned migration at or below
/// the baseline's version, and drops the checksums of records at or below the newest
/// baseline: Flyway validates only the versions above it.
pub(super) fn reconcile(set: &MigrationSet, records: Vec<AppliedRecord>) -> Vec<AppliedRecord> {
    let newest = records
        .iter()
        .filter_map(|r| r.name.strip_prefix(BASELINE_MARK))
        .max_by(|a, b| compare_versions(a, b))
        .map(str::to_owned);
    let at_or_below =
        |version: &str, baseline: &str| compare_versions(version, baseline) != Ordering::Greater;
    let mut out: Vec<AppliedRecord> = Vec::with_capacity(records.len());
    for mut r in records {
        let Some(baseline) = r.name.strip_prefix(BASELINE_MARK) else {
            if let Some(newest) = &newest
                && is_version(&r.name)
                && at_or_below(&r.name, newest)
            {
                r.checksum = None;
            }
            out.push(r);
            continue;
        };
        // Below the baseline counts as applied: the database already had those changes.
        for m in &set.migrations {
            let below = matches!(name_of(m), Name::Versioned { ref version, .. }
                if at_or_below(version, baseline));
            if below {
                out.push(AppliedRecord {
                    name: m.name.clone(),
                    checksum: None,
                    ..r.clone()
                });
            }
        }
    }
    out
}

/// The migrations of `set` that Flyway skips on the history `records` without running them:
/// every baseline migration not recorded once the database has history; on an empty database,
/// the versioned migrations at or below the latest baseline migration and the older baseline
/// migrations (`BELOW_BASELINE`, `BASELINE_IGNORED`).
pub(super) fn superseded(set: &MigrationSet, records: &[AppliedRecord]) -> Vec<String> {
    // As `lastApplied` and `appliedBaseline`: a versioned row, failed or not, or a baseline.
    let history = records.iter().any(|r| {
        r.state != RecordState::RolledBack
            && (r.name.starts_with(BASELINE_MARK)
                || is_version(&r.name)
                || baseline_version(&r.name).is_some())
    });
    let baselines = set.migrations.iter().filter_map(|m| match name_of(m) {
        Name::Baseline { version, .. } => Some((m, version)),
        _ => None,
    });
    if history {
        let recorded: HashSet<&str> = records.iter().map(|r| r.name.as_str()).collect();
        return baselines
            .filter(|(m, _)| !recorded.contains(m.name.as_str()))
            .map(|(m, _)| m.name.clone())
            .collect();
    }
    let Some(latest) = baselines
        .map(|(_, v)| v)
        .max_by(|a, b| compare_versions(a, b))
    else {
        return Vec::new();
    };
    set.migrations
        .iter()
        .filter(|m| match name_of(m) {
            Name::Versioned { version, .. } => {
                compare_versions(&version, &latest) != Ordering::Greater
            }
            Name::Baseline { version, .. } => compare_versions(&version, &latest) == Ordering::Less,
            Name::Repeatable { .. } | Name::Ignored(_) => false,
        })
        .map(|m| m.name.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Dialect, Value};
    use crate::handler::Handler;
    use crate::handler::flyway::Flyway;

    fn set(files: &[&str]) -> MigrationSet {
        let dir = tempfile::tempdir().unwrap();
        for f in files {
            std::fs::write(dir.path().join(f), format!("-- {f}\n")).unwrap();
        }
        Flyway.load(dir.path(), Dialect::Sqlite).unwrap()
    }

    fn row(version: &str, kind: &str, script: &str, success: bool) -> Vec<Value> {
        vec![
            Value::Int(1),
            Value::Text(version.into()),
            Value::Text("baseline".into()),
            Value::Text(kind.into()),
            Value::Text(script.into()),
            Value::Int(42),
            Value::Text("2024-01-01 00:00:00".into()),
            Value::Int(i64::from(success)),
        ]
    }

    const FILES: [&str; 6] = [
        "V1__a.sql",
        "V2__b.sql",
        "B1__old.sql",
        "B2__base.sql",
        "V3__c.sql",
        "R__views.sql",
    ];

    #[test]
    fn on_an_empty_database_the_latest_baseline_migration_stands_for_the_versions_below() {
        let s = set(&FILES);
        let names: Vec<_> = s.migrations.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["1", "B1", "2", "B2", "3", "views"]);
        assert_eq!(superseded(&s, &[]), ["1", "B1", "2"]);
        // No baseline migration: nothing is skipped.
        assert!(superseded(&set(&["V1__a.sql", "V2__b.sql"]), &[]).is_empty());
    }

    #[test]
    fn once_the_database_has_history_baseline_migrations_are_ignored() {
        let s = set(&FILES);
        let records = Flyway
            .parse_history(vec![row("1", "SQL", "V1__a.sql", true)])
            .unwrap();
        assert_eq!(superseded(&s, &records), ["B1", "B2"]);
        // A repeatable migration alone is no history (Flyway's `lastApplied` stays empty).
        let records = Flyway
            .parse_history(vec![vec![
                Value::Int(1),
                Value::Null,
                Value::Text("views".into()),
                Value::Text("SQL".into()),
                Value::Text("R__views.sql".into()),
                Value::Int(1),
                Value::Text("2024-01-01 00:00:00".into()),
                Value::Int(1),
            ]])
            .unwrap();
        assert_eq!(superseded(&s, &records), ["1", "B1", "2"]);
    }

    #[test]
    fn an_sql_baseline_row_is_the_baseline_and_the_versions_below_it() {
        let s = set(&FILES);
        let raw = Flyway
            .parse_history(vec![row("2", "SQL_BASELINE", "B2__base.sql", true)])
            .unwrap();
        assert_eq!(superseded(&s, &raw), ["B1"]);
        let records = Flyway.reconcile(&s, raw.into());
        assert_eq!(
            super::super::states(&records),
            [
                ("1", RecordState::Applied, None),
                ("2", RecordState::Applied, None),
                ("B2", RecordState::Applied, None),
            ]
        );
        // A failed one stands for nothing and blocks, as in Flyway.
        let raw = Flyway
            .parse_history(vec![row("2", "SQL_BASELINE", "B2__base.sql", false)])
            .unwrap();
        let seen: Vec<_> = Flyway
            .reconcile(&s, raw.into())
            .iter()
            .map(|r| (r.name.clone(), r.state))
            .collect();
        assert_eq!(seen, [("B2".to_owned(), RecordState::Failed)]);
    }

    #[test]
    fn checksums_at_or_below_the_baseline_are_not_validated() {
        let s = set(&FILES);
        let raw = Flyway
            .parse_history(vec![
                row("2", "BASELINE", "<< Flyway Baseline >>", true),
                row("2", "SQL", "V2__b.sql", true),
                row("3", "SQL", "V3__c.sql", true),
            ])
            .unwrap();
        let seen: Vec<_> = Flyway
            .reconcile(&s, raw.into())
            .iter()
            .map(|r| (r.name.clone(), r.checksum.clone()))
            .collect();
        assert_eq!(
            seen,
            [
                ("1".to_owned(), None),
                ("2".to_owned(), None),
                ("2".to_owned(), None),
                ("3".to_owned(), Some("42".to_owned())),
            ]
        );
    }
}
