//! What a rehearsal measured, kept in `.dbdeploy/rehearsals/<environment>.json` (folder 0700,
//! file 0600) so that a following `migrate --dry-run` and approval summary show measured
//! durations instead of guesses — only while they still describe the deploy: the same
//! database (its identity, never its URL), the same migration files (checksums), and recent.
//!
//! The file is read as untrusted input: a link, a file of another user, an oversized or
//! malformed document, or values out of range are ignored with a warning, and the guesses stay.

use std::io::Read;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::backup::DatabaseIdentity;
use crate::backup::folder;
use crate::migration::Migration;

/// A record older than this is not used: data grows, and so do the durations.
pub const RECENT_DAYS: i64 = 7;
/// The format of the file.
const VERSION: u32 = 1;
/// More than this is not a rehearsal record.
const MAX_BYTES: u64 = 4 * 1024 * 1024;
/// A measured duration above this (a week) is not believed.
const MAX_SECONDS: f64 = 7.0 * 24.0 * 3600.0;

/// One migration's measured duration on the copy.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Measured {
    /// The migration.
    pub name: String,
    /// Its file's checksum when it was rehearsed.
    pub checksum: String,
    /// How long it took on the copy.
    pub duration_seconds: f64,
}

/// The file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// The format.
    pub version: u32,
    /// The environment.
    pub environment: String,
    /// The database that was copied.
    pub database: DatabaseIdentity,
    /// When.
    pub rehearsed_at: DateTime<Utc>,
    /// What was applied on the copy, in order.
    pub migrations: Vec<Measured>,
}

impl Record {
    /// A new record.
    #[must_use]
    pub fn new(environment: &str, database: DatabaseIdentity, migrations: Vec<Measured>) -> Self {
        Self {
            version: VERSION,
            environment: environment.to_owned(),
            database,
            rehearsed_at: Utc::now(),
            migrations,
        }
    }

    /// The measured duration of `m`, when this record rehearsed that very file.
    #[must_use]
    pub fn duration_of(&self, m: &Migration) -> Option<f64> {
        self.migrations
            .iter()
            .find(|r| r.name == m.name && r.checksum.eq_ignore_ascii_case(&m.checksum))
            .map(|r| r.duration_seconds)
    }

    /// Why it does not describe a deploy of `database` now, if it does not.
    #[must_use]
    pub fn stale(&self, database: &DatabaseIdentity, now: DateTime<Utc>) -> Option<String> {
        if &self.database != database {
            return Some("it was made on another database".into());
        }
        if now - self.rehearsed_at > Duration::days(RECENT_DAYS) {
            return Some(format!("it is older than {RECENT_DAYS} days"));
        }
        None
    }

    fn check(&self, environment: &str) -> Result<(), String> {
        if self.version != VERSION {
            return Err(format!("unknown version {}", self.version));
        }
        if self.environment != environment {
            return Err(format!(
                "it is the record of environment `{}`",
                self.environment
            ));
        }
        if self.rehearsed_at > Utc::now() + Duration::minutes(5) {
            return Err("its time is in the future".into());
        }
        for m in &self.migrations {
            let d = m.duration_seconds;
            if !d.is_finite() || !(0.0..=MAX_SECONDS).contains(&d) {
                return Err(format!("duration {d} of `{}` is out of range", m.name));
            }
            if m.name.is_empty() || m.name.len() > 1024 || m.checksum.len() > 256 {
                return Err("a migration name or checksum is malformed".into());
            }
        }
        Ok(())
    }
}

/// The record's path for `environment` in the project at `working_dir`.
#[must_use]
pub fn path(working_dir: &Path, environment: &str) -> PathBuf {
    working_dir
        .join(".dbdeploy/rehearsals")
        .join(format!("{environment}.json"))
}

/// Writes the record (replacing an older one): a new 0600 file renamed into place.
///
/// # Errors
/// The folder or the file cannot be written, or the folder is not trusted.
pub fn save(working_dir: &Path, record: &Record) -> Result<PathBuf, crate::backup::BackupError> {
    let target = path(working_dir, &record.environment);
    let dir = target.parent().expect("a record has a folder");
    if let Some(parent) = dir.parent() {
        folder::shared_parent(parent, true)?;
    }
    folder::private_dir(dir, true)?;
    let io = |e: std::io::Error| crate::backup::BackupError::Io {
        path: target.clone(),
        what: "writing the rehearsal record".into(),
        source: Some(e),
    };
    let partial = dir.join(format!(
        ".{}.{}.partial",
        record.environment,
        uuid::Uuid::new_v4().simple()
    ));
    let text = serde_json::to_vec_pretty(record).expect("a record serialises");
    let written = folder::create_new(&partial).and_then(|mut f| {
        std::io::Write::write_all(&mut f, &text)?;
        f.sync_all()
    });
    if let Err(e) = written.and_then(|()| std::fs::rename(&partial, &target)) {
        let _ = std::fs::remove_file(&partial);
        return Err(io(e));
    }
    Ok(target)
}

/// Reads the record of `environment`: `Ok(None)` when there is none, `Err` (a reason to
/// warn about) when there is one that cannot be trusted.
///
/// # Errors
/// Why the file is ignored.
pub fn load(working_dir: &Path, environment: &str) -> Result<Option<Record>, String> {
    let path = path(working_dir, environment);
    match std::fs::symlink_metadata(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.to_string()),
        Ok(_) => {}
    }
    let file = folder::open_own(&path).map_err(|e| e.to_string())?;
    let mut text = Vec::new();
    file.take(MAX_BYTES + 1)
        .read_to_end(&mut text)
        .map_err(|e| e.to_string())?;
    if u64::try_from(text.len()).unwrap_or(u64::MAX) > MAX_BYTES {
        return Err(format!("it is larger than {MAX_BYTES} bytes"));
    }
    let record: Record =
        serde_json::from_slice(&text).map_err(|e| format!("it is not a rehearsal record: {e}"))?;
    record.check(environment)?;
    Ok(Some(record))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity() -> DatabaseIdentity {
        DatabaseIdentity {
            engine: "sqlite".into(),
            server: None,
            database: "/x/app.db".into(),
        }
    }

    fn migration(name: &str, checksum: &str) -> Migration {
        Migration::new(
            name,
            format!("m/{name}.sql"),
            checksum.to_owned(),
            crate::migration::TxMode::Wrapped,
            String::new(),
        )
    }

    #[test]
    fn a_record_round_trips_and_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let record = Record::new(
            "production",
            identity(),
            vec![Measured {
                name: "1_init".into(),
                checksum: "abc".into(),
                duration_seconds: 1.5,
            }],
        );
        let path = save(dir.path(), &record).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let read = load(dir.path(), "production").unwrap().unwrap();
        assert_eq!(read.migrations, record.migrations);
        assert_eq!(read.stale(&identity(), Utc::now()), None);
        assert!(
            read.stale(&identity(), Utc::now() + Duration::days(8))
                .is_some()
        );
        let other = DatabaseIdentity {
            database: "/y/app.db".into(),
            ..identity()
        };
        assert!(read.stale(&other, Utc::now()).is_some());
        // Only the file that was rehearsed gets its duration.
        assert_eq!(read.duration_of(&migration("1_init", "abc")), Some(1.5));
        assert_eq!(read.duration_of(&migration("1_init", "abd")), None);
        assert_eq!(load(dir.path(), "staging"), Ok(None));
    }

    #[test]
    fn untrusted_records_are_refused_with_a_reason() {
        let dir = tempfile::tempdir().unwrap();
        let file = path(dir.path(), "production");
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        let good = Record::new("production", identity(), Vec::new());
        let mut cases: Vec<(String, &str)> = Vec::new();
        let mut bad = serde_json::to_value(&good).unwrap();
        bad["migrations"] =
            serde_json::json!([{"name": "a", "checksum": "c", "duration_seconds": -1.0}]);
        cases.push((bad.to_string(), "out of range"));
        let mut other = serde_json::to_value(&good).unwrap();
        other["environment"] = "staging".into();
        cases.push((other.to_string(), "environment `staging`"));
        let mut extra = serde_json::to_value(&good).unwrap();
        extra["shell"] = "rm -rf /".into();
        cases.push((extra.to_string(), "not a rehearsal record"));
        cases.push(("{".into(), "not a rehearsal record"));
        cases.push((
            " ".repeat(usize::try_from(MAX_BYTES).unwrap() + 2),
            "larger",
        ));
        for (text, reason) in cases {
            std::fs::write(&file, text).unwrap();
            let err = load(dir.path(), "production").unwrap_err();
            assert!(err.contains(reason), "{err}");
        }
        std::fs::remove_file(&file).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", &file).unwrap();
        assert!(load(dir.path(), "production").is_err());
    }
}
