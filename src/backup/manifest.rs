//! A backup's manifest: everything known about one backup, read back as untrusted input
//! (its id and data file name are checked before anything uses them), and the backup ids.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::identity::DatabaseIdentity;
use crate::migration::{AppliedRecord, RecordState};

/// Everything known about one backup. Never holds a URL, host or password.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    /// `backup-YYYYMMDD-HHMMSS[-N]`.
    pub id: String,
    /// The environment it was taken from.
    pub environment: String,
    /// `postgresql`, `mysql` or `sqlite`.
    pub engine: String,
    /// The database it was taken from; `None` in manifests of dbdeploy versions that did not
    /// record it (such a backup is restored only with `--from-other-database`).
    #[serde(default)]
    pub database: Option<DatabaseIdentity>,
    /// The server's version at the time.
    pub server_version: String,
    /// `pg_dump`, `mysqldump`, `sqlite` or `command`, with the tool's version.
    pub provider: String,
    /// The data file's name in the backup folder; `None` when a command keeps it elsewhere.
    pub file: Option<String>,
    /// Its size.
    pub size_bytes: Option<u64>,
    /// Its sha256 (hex), checked before every restore.
    pub sha256: Option<String>,
    /// The migration format.
    pub migration_tool: String,
    /// The migrations applied when it was taken, in order.
    pub migrations: Vec<String>,
    /// A digest of the tracking table's rows (names, checksums, states), compared after a restore.
    pub tracking_digest: String,
    /// The schema fingerprint (sha256 of `schema`).
    pub schema_fingerprint: String,
    /// The canonical schema text the fingerprint was taken from.
    pub schema: String,
    /// Why it was made: `manual`, or the deploy run it protects.
    pub reason: String,
    /// The dbdeploy version that made it.
    pub dbdeploy_version: String,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// How long it took.
    pub duration_ms: u64,
}

impl Manifest {
    /// The data file's path, when there is one.
    #[must_use]
    pub fn file_path(&self, dir: &Path) -> Option<PathBuf> {
        self.file.as_ref().map(|f| dir.join(f))
    }
}

/// A digest of the tracking table that ignores row order and timestamps' formatting quirks.
#[must_use]
pub fn tracking_digest(records: &[AppliedRecord]) -> String {
    let mut lines: Vec<String> = records
        .iter()
        .map(|r| {
            let state = match r.state {
                RecordState::Applied => "applied",
                RecordState::Failed => "failed",
                RecordState::RolledBack => "rolled-back",
            };
            format!(
                "{}\t{}\t{state}",
                r.name,
                r.checksum.as_deref().unwrap_or("")
            )
        })
        .collect();
    lines.sort();
    crate::checksum::sha256_hex(lines.join("\n").as_bytes())
}

/// `backup-YYYYMMDD-HHMMSS` with an optional `-N` (1 to 3 digits).
#[must_use]
pub fn valid_id(id: &str) -> bool {
    let Some(rest) = id.strip_prefix("backup-") else {
        return false;
    };
    let parts: Vec<&str> = rest.split('-').collect();
    let digits = |s: &str, n: std::ops::RangeInclusive<usize>| {
        n.contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())
    };
    match parts.as_slice() {
        [d, t] => digits(d, 8..=8) && digits(t, 6..=6),
        [d, t, n] => digits(d, 8..=8) && digits(t, 6..=6) && digits(n, 1..=3),
        _ => false,
    }
}

/// A manifest is untrusted input: its id must be the one its file name says, and its data
/// file a plain file name of this folder belonging to that id (never a path: retention
/// deletes it and a restore reads it).
pub(super) fn check_manifest(m: &Manifest, stem: &str) -> Result<(), String> {
    if !valid_id(&m.id) || m.id != stem {
        return Err(format!(
            "its id `{}` is not the backup id its file name `{stem}.json` gives",
            m.id
        ));
    }
    if let Some(file) = &m.file {
        let plain = !file.contains('/')
            && !file.contains('\0')
            && file.strip_prefix(&format!("{}.", m.id)).is_some_and(|ext| {
                !ext.is_empty()
                    && ext != "json"
                    && !ext.ends_with(".partial")
                    && !ext.ends_with(".tmp")
                    && !ext.contains("..")
            });
        if !plain {
            return Err(format!(
                "its `file` ({file:?}) is not a plain file name `{}.<extension>` in the backup folder",
                m.id
            ));
        }
    }
    Ok(())
}

/// `backup-X` before `backup-X-2` before `backup-X-10`.
pub(super) fn id_order(a: &str, b: &str) -> std::cmp::Ordering {
    let key = |s: &str| {
        let (base, n) = match s.rsplit_once('-') {
            Some((base, n)) if n.len() < 4 && n.chars().all(|c| c.is_ascii_digit()) => {
                (base.to_owned(), n.parse::<u32>().unwrap_or(1))
            }
            _ => (s.to_owned(), 1),
        };
        (base, n)
    };
    key(a).cmp(&key(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_sort_numerically_within_a_second() {
        let mut ids = vec!["backup-1-10", "backup-1-2", "backup-1"];
        ids.sort_by(|a, b| id_order(a, b));
        assert_eq!(ids, vec!["backup-1", "backup-1-2", "backup-1-10"]);
        assert!(valid_id("backup-20260101-101500-12"));
        assert!(!valid_id("backup-2026-x"));
        assert!(!valid_id("../backup-20260101-101500"));
    }
}
