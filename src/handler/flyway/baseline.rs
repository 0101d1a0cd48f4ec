//! Flyway's baselines: a `BASELINE` row written by `flyway baseline` stands for every version
//! at or below it, which the database already had.

use std::cmp::Ordering;

use super::BASELINE_MARK;
use super::name::{Name, compare_versions, name_of};
use crate::migration::{AppliedRecord, MigrationSet};

/// Expands baseline markers into one applied record per local versioned migration at or below
/// the baseline's version.
pub(super) fn reconcile(set: &MigrationSet, records: Vec<AppliedRecord>) -> Vec<AppliedRecord> {
    let mut out: Vec<AppliedRecord> = Vec::with_capacity(records.len());
    for r in records {
        let Some(baseline) = r.name.strip_prefix(BASELINE_MARK) else {
            out.push(r);
            continue;
        };
        // Below the baseline counts as applied: the database already had those changes.
        for m in &set.migrations {
            let below = matches!(name_of(m), Name::Versioned { ref version, .. }
                if compare_versions(version, baseline) != Ordering::Greater);
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
