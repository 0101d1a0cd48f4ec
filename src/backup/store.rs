//! Where backups live: one folder per environment (mode 0700) holding, per backup, the data
//! file and a JSON manifest (both mode 0600). Ids are `backup-YYYYMMDD-HHMMSS`, with `-2`,
//! `-3`, ... when two are made in the same second; an id is reserved by creating its manifest
//! exclusively, so two processes can never pick the same one.

use std::fs::{self, DirBuilder, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::BackupError;
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

/// One environment's backup folder.
#[derive(Debug, Clone)]
pub struct BackupStore {
    /// The folder.
    pub dir: PathBuf,
    /// The environment.
    pub environment: String,
}

/// A reserved id: the empty manifest that holds it, and the partial data file.
#[derive(Debug)]
pub struct Reservation {
    /// The id.
    pub id: String,
    /// The data file while it is written.
    pub partial: PathBuf,
    /// The data file once complete.
    pub file: PathBuf,
    /// The manifest.
    pub manifest: PathBuf,
}

impl BackupStore {
    /// The store of an environment.
    #[must_use]
    pub fn new(dir: PathBuf, environment: &str) -> Self {
        Self {
            dir,
            environment: environment.to_owned(),
        }
    }

    fn io(&self, path: &Path, what: &str, e: std::io::Error) -> BackupError {
        let _ = self;
        BackupError::Io {
            path: path.to_owned(),
            what: what.to_owned(),
            source: Some(e),
        }
    }

    /// Creates the folder (0700) when missing.
    ///
    /// # Errors
    /// When it cannot be created.
    pub fn ensure_dir(&self) -> Result<(), BackupError> {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .map_err(|e| self.io(&self.dir, "cannot create the backup folder", e))
    }

    /// Reserves a fresh id for a backup made at `now`, and creates its empty data file (0600).
    ///
    /// # Errors
    /// When the folder is not writable.
    pub fn reserve(&self, now: DateTime<Utc>, extension: &str) -> Result<Reservation, BackupError> {
        self.ensure_dir()?;
        let base = format!("backup-{}", now.format("%Y%m%d-%H%M%S"));
        for n in 1..1000 {
            let id = if n == 1 {
                base.clone()
            } else {
                format!("{base}-{n}")
            };
            let manifest = self.dir.join(format!("{id}.json"));
            let file = self.dir.join(format!("{id}.{extension}"));
            if file.exists() {
                continue;
            }
            match create_private(&manifest) {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(self.io(&manifest, "cannot create the manifest", e)),
            }
            let partial = self.dir.join(format!("{id}.{extension}.partial"));
            let _ = fs::remove_file(&partial);
            if let Err(e) = create_private(&partial) {
                let _ = fs::remove_file(&manifest);
                return Err(self.io(&partial, "cannot create the backup file", e));
            }
            return Ok(Reservation {
                id,
                partial,
                file,
                manifest,
            });
        }
        Err(BackupError::Io {
            path: self.dir.clone(),
            what: "too many backups in the same second".into(),
            source: None,
        })
    }

    /// Removes what a failed backup left behind.
    pub fn abandon(&self, r: &Reservation) {
        let _ = fs::remove_file(&r.partial);
        let _ = fs::remove_file(&r.file);
        let _ = fs::remove_file(&r.manifest);
    }

    /// Completes a backup: the data file gets its final name, then the manifest is written
    /// (through a temporary file, so a reader never sees half a manifest).
    ///
    /// # Errors
    /// When the files cannot be renamed or written.
    pub fn commit(
        &self,
        r: &Reservation,
        manifest: &Manifest,
        has_file: bool,
    ) -> Result<(), BackupError> {
        if has_file {
            fs::rename(&r.partial, &r.file)
                .map_err(|e| self.io(&r.partial, "cannot rename the backup file", e))?;
        } else {
            let _ = fs::remove_file(&r.partial);
        }
        let text = serde_json::to_string_pretty(manifest).expect("manifest serialises");
        let tmp = self.dir.join(format!("{}.json.tmp", r.id));
        let _ = fs::remove_file(&tmp);
        let written = create_private(&tmp)
            .and_then(|mut f| f.write_all(text.as_bytes()).and_then(|()| f.sync_all()))
            .map_err(|e| self.io(&tmp, "cannot write the manifest", e))
            .and_then(|()| {
                fs::rename(&tmp, &r.manifest)
                    .map_err(|e| self.io(&r.manifest, "cannot write the manifest", e))
            });
        if written.is_err() {
            // A full disk fails here too; leave no half-written manifest behind.
            let _ = fs::remove_file(&tmp);
        }
        written
    }

    /// Every complete backup, oldest first. Unreadable manifests are skipped.
    ///
    /// # Errors
    /// When the folder exists but cannot be listed.
    pub fn list(&self) -> Result<Vec<Manifest>, BackupError> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(self.io(&self.dir, "cannot list backups", e)),
        };
        let mut out: Vec<Manifest> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .filter_map(|p| fs::read(&p).ok())
            .filter_map(|bytes| serde_json::from_slice::<Manifest>(&bytes).ok())
            .collect();
        out.sort_by(|a, b| {
            a.created_at
                .cmp(&b.created_at)
                .then_with(|| id_order(&a.id, &b.id))
        });
        Ok(out)
    }

    /// The named backup, or the newest one.
    ///
    /// # Errors
    /// When there is none, or the id is unknown.
    pub fn find(&self, id: Option<&str>) -> Result<Manifest, BackupError> {
        let all = self.list()?;
        match id {
            Some(id) => all
                .into_iter()
                .find(|m| m.id == id)
                .ok_or_else(|| BackupError::NotFound {
                    id: id.to_owned(),
                    dir: self.dir.clone(),
                }),
            None => all
                .into_iter()
                .next_back()
                .ok_or_else(|| BackupError::NoBackups {
                    environment: self.environment.clone(),
                    dir: self.dir.clone(),
                }),
        }
    }

    /// Deletes the oldest backups beyond `keep`, never `current`. Returns the deleted ids.
    ///
    /// # Errors
    /// When the folder cannot be listed.
    pub fn prune(&self, keep: usize, current: &str) -> Result<Vec<String>, BackupError> {
        let all = self.list()?;
        let mut excess = all.len().saturating_sub(keep);
        let mut deleted = Vec::new();
        for m in &all {
            if excess == 0 {
                break;
            }
            if m.id == current {
                continue;
            }
            if let Some(f) = m.file_path(&self.dir) {
                let _ = fs::remove_file(f);
            }
            let _ = fs::remove_file(self.dir.join(format!("{}.json", m.id)));
            deleted.push(m.id.clone());
            excess -= 1;
        }
        Ok(deleted)
    }

    /// Checks a backup's file against its manifest's sha256.
    ///
    /// # Errors
    /// [`BackupError::Tampered`] on a mismatch; I/O errors when the file is gone.
    pub async fn verify_file(&self, m: &Manifest) -> Result<(), BackupError> {
        let (Some(path), Some(expected)) = (m.file_path(&self.dir), &m.sha256) else {
            return Ok(());
        };
        let actual = super::process::hash_file(&path)
            .await?
            .sha256
            .unwrap_or_default();
        if &actual == expected {
            Ok(())
        } else {
            Err(BackupError::Tampered {
                path,
                expected: expected.clone(),
                actual,
            })
        }
    }
}

/// `backup-X` before `backup-X-2` before `backup-X-10`.
fn id_order(a: &str, b: &str) -> std::cmp::Ordering {
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

fn create_private(path: &Path) -> std::io::Result<fs::File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(id: &str, at: DateTime<Utc>) -> Manifest {
        Manifest {
            id: id.into(),
            environment: "prod".into(),
            engine: "sqlite".into(),
            server_version: "3".into(),
            provider: "sqlite".into(),
            file: Some(format!("{id}.sqlite")),
            size_bytes: Some(1),
            sha256: None,
            migration_tool: "prisma".into(),
            migrations: vec![],
            tracking_digest: String::new(),
            schema_fingerprint: String::new(),
            schema: String::new(),
            reason: "manual".into(),
            dbdeploy_version: "0".into(),
            created_at: at,
            duration_ms: 0,
        }
    }

    #[test]
    fn ids_are_unique_within_a_second_and_files_private() {
        let dir = tempfile::tempdir().unwrap();
        let store = BackupStore::new(dir.path().join("prod"), "prod");
        let now = DateTime::parse_from_rfc3339("2026-11-21T10:15:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let a = store.reserve(now, "sqlite").unwrap();
        let b = store.reserve(now, "sqlite").unwrap();
        assert_eq!(a.id, "backup-20261121-101500");
        assert_eq!(b.id, "backup-20261121-101500-2");
        let mode = fs::metadata(&a.partial).unwrap().permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
            0o600
        );
        let dmode = fs::metadata(&store.dir).unwrap().permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&dmode) & 0o777,
            0o700
        );
    }

    #[test]
    fn prune_keeps_n_and_never_the_current_one() {
        let dir = tempfile::tempdir().unwrap();
        let store = BackupStore::new(dir.path().to_owned(), "prod");
        let t0 = Utc::now();
        for i in 0..4 {
            let at = t0 + chrono::Duration::seconds(i);
            let r = store.reserve(at, "sqlite").unwrap();
            store.commit(&r, &manifest(&r.id, at), true).unwrap();
        }
        let ids: Vec<String> = store.list().unwrap().into_iter().map(|m| m.id).collect();
        // The oldest is the current run's backup (say, a clock that went backwards): kept.
        let deleted = store.prune(2, &ids[0]).unwrap();
        assert_eq!(deleted, vec![ids[1].clone(), ids[2].clone()]);
        let left: Vec<String> = store.list().unwrap().into_iter().map(|m| m.id).collect();
        assert_eq!(left, vec![ids[0].clone(), ids[3].clone()]);
        assert!(!store.dir.join(format!("{}.sqlite", ids[1])).exists());
    }

    #[test]
    fn ids_sort_numerically_within_a_second() {
        let mut ids = vec!["backup-1-10", "backup-1-2", "backup-1"];
        ids.sort_by(|a, b| id_order(a, b));
        assert_eq!(ids, vec!["backup-1", "backup-1-2", "backup-1-10"]);
    }
}
