//! Where backups live: one folder per environment (mode 0700) holding, per backup, the data
//! file and a JSON manifest (both mode 0600). Ids are `backup-YYYYMMDD-HHMMSS`, with `-2`,
//! `-3`, ... when two are made in the same second; an id is reserved by creating its manifest
//! exclusively, so two processes can never pick the same one.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use super::identity::DatabaseIdentity;
pub use super::manifest::{Manifest, tracking_digest, valid_id};
use super::manifest::{check_manifest, id_order};
use super::{BackupError, folder};

/// One environment's backup folder, as seen by one database: other environments' and other
/// databases' backups in the same folder are never listed, chosen or pruned.
#[derive(Debug, Clone)]
pub struct BackupStore {
    /// The folder.
    pub dir: PathBuf,
    /// The environment.
    pub environment: String,
}

/// A reserved id: the empty manifest that holds it (locked while the backup is made), and the
/// data file, created exclusively and written through [`Reservation::data`].
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
    /// The data file's handle: what streaming providers write to (never the path again).
    pub data: File,
    /// The reservation's manifest, locked until the backup is committed or abandoned: how the
    /// next run tells a backup in progress from what a killed one left.
    hold: File,
}

/// What a folder holds for one environment's database.
#[derive(Debug, Default)]
pub struct Scan {
    /// Manifests that passed the checks, oldest first (every environment and database).
    pub manifests: Vec<Manifest>,
    /// Manifests refused as untrusted or unreadable: file name and why.
    pub refused: Vec<(String, String)>,
}

/// The backups of one database in its environment's folder.
#[derive(Debug, Default)]
pub struct Listing {
    /// This database's backups, oldest first.
    pub mine: Vec<Manifest>,
    /// Backups of other databases or environments (or without a recorded database) in the
    /// folder, not shown and never pruned.
    pub others: usize,
    /// Manifests refused as untrusted or unreadable.
    pub refused: Vec<(String, String)>,
}

/// How long a file a killed run left must be untouched before it is removed: a live
/// reservation locks its manifest an instant after creating it.
const STALE_AFTER: std::time::Duration = std::time::Duration::from_secs(2);

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

    /// Checks the folders (creating them 0700 when `create`): `[backup] dir` must not let
    /// others replace what is in it, and the environment's folder must be ours and private.
    /// Then removes what killed runs left. Returns whether the folder exists.
    ///
    /// # Errors
    /// An untrusted folder; one that cannot be created.
    pub fn check(&self, create: bool) -> Result<bool, BackupError> {
        if let Some(base) = self.dir.parent() {
            folder::shared_parent(base, create)?;
        }
        let exists = folder::private_dir(&self.dir, create)?;
        if exists {
            self.clean_stale();
        }
        Ok(exists)
    }

    /// Reserves a fresh id for a backup made at `now`, and creates its empty data file (0600),
    /// or with `directory` its fresh private data directory (0700, for directory-format dumps).
    ///
    /// # Errors
    /// When the folder is untrusted or not writable.
    pub fn reserve(
        &self,
        now: DateTime<Utc>,
        extension: &str,
        directory: bool,
    ) -> Result<Reservation, BackupError> {
        self.check(true)?;
        let base = format!("backup-{}", now.format("%Y%m%d-%H%M%S"));
        for n in 1..1000 {
            let id = if n == 1 {
                base.clone()
            } else {
                format!("{base}-{n}")
            };
            let manifest = self.dir.join(format!("{id}.json"));
            let file = self.dir.join(format!("{id}.{extension}"));
            if fs::symlink_metadata(&file).is_ok() {
                continue;
            }
            let hold = match folder::create_new(&manifest) {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(self.io(&manifest, "cannot create the manifest", e)),
            };
            // Ours alone: nobody else opened it yet, so this cannot block.
            let _ = hold.try_lock();
            let partial = self.dir.join(format!("{id}.{extension}.partial"));
            let created = if directory {
                folder::create_private_dir(&partial)
            } else {
                folder::create_new(&partial)
            };
            let data = match created {
                Ok(f) => f,
                Err(e) => {
                    let _ = fs::remove_file(&manifest);
                    return Err(self.io(&partial, "cannot create the backup file", e));
                }
            };
            return Ok(Reservation {
                id,
                partial,
                file,
                manifest,
                data,
                hold,
            });
        }
        Err(BackupError::Io {
            path: self.dir.clone(),
            what: "too many backups in the same second".into(),
            source: None,
        })
    }

    /// Removes what a failed backup left behind.
    pub fn abandon(&self, r: Reservation) {
        for path in [&r.partial, &r.file, &r.manifest] {
            folder::remove_own(path);
        }
        drop(r.hold);
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
            folder::remove_own(&r.partial);
        }
        let text = serde_json::to_string_pretty(manifest).expect("manifest serialises");
        let tmp = self.dir.join(format!("{}.json.tmp", r.id));
        if folder::is_own_file(&tmp) {
            let _ = fs::remove_file(&tmp);
        }
        let written = folder::create_new(&tmp)
            .and_then(|mut f| f.write_all(text.as_bytes()).and_then(|()| f.sync_all()))
            .map_err(|e| self.io(&tmp, "cannot write the manifest", e))
            .and_then(|()| {
                fs::rename(&tmp, &r.manifest)
                    .map_err(|e| self.io(&r.manifest, "cannot write the manifest", e))
            });
        if written.is_err() && folder::is_own_file(&tmp) {
            // A full disk fails here too; leave no half-written manifest behind.
            let _ = fs::remove_file(&tmp);
        }
        written
    }

    /// Every manifest in the folder that passes the checks (any environment or database),
    /// oldest first, and the ones refused.
    ///
    /// # Errors
    /// When the folder is untrusted, or exists but cannot be listed.
    pub fn scan(&self) -> Result<Scan, BackupError> {
        if !self.check(false)? {
            return Ok(Scan::default());
        }
        let entries =
            fs::read_dir(&self.dir).map_err(|e| self.io(&self.dir, "cannot list backups", e))?;
        let mut scan = Scan::default();
        for entry in entries.filter_map(Result::ok) {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(stem) = name.strip_suffix(".json") else {
                continue;
            };
            match self.read_manifest(stem) {
                Ok(Some(m)) => scan.manifests.push(m),
                Ok(None) => {}
                Err(reason) => scan.refused.push((name, reason)),
            }
        }
        scan.manifests.sort_by(|a, b| {
            a.created_at
                .cmp(&b.created_at)
                .then_with(|| id_order(&a.id, &b.id))
        });
        Ok(scan)
    }

    /// Reads and checks `<stem>.json`; `None` for a reservation still being written.
    fn read_manifest(&self, stem: &str) -> Result<Option<Manifest>, String> {
        let path = self.dir.join(format!("{stem}.json"));
        let mut file = folder::open_own(&path).map_err(|e| e.to_string())?;
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut file, &mut bytes).map_err(|e| e.to_string())?;
        if bytes.is_empty() {
            return Ok(None);
        }
        let m: Manifest =
            serde_json::from_slice(&bytes).map_err(|e| format!("not a dbdeploy manifest: {e}"))?;
        check_manifest(&m, stem)?;
        Ok(Some(m))
    }

    /// Whether a manifest is one of this environment's database's backups.
    #[must_use]
    pub fn is_mine(&self, m: &Manifest, db: &DatabaseIdentity) -> bool {
        m.environment == self.environment && m.database.as_ref() == Some(db)
    }

    /// This database's backups, oldest first, and what else the folder holds.
    ///
    /// # Errors
    /// When the folder is untrusted or cannot be listed.
    pub fn list(&self, db: &DatabaseIdentity) -> Result<Listing, BackupError> {
        let scan = self.scan()?;
        let (mine, others): (Vec<Manifest>, Vec<Manifest>) = scan
            .manifests
            .into_iter()
            .partition(|m| self.is_mine(m, db));
        Ok(Listing {
            mine,
            others: others.len(),
            refused: scan.refused,
        })
    }

    /// The named backup, or the newest of this database's. A named backup of another
    /// environment or database is refused unless `other_database` allows it.
    ///
    /// # Errors
    /// None there, an unknown or refused id, or another database's backup.
    pub fn find(
        &self,
        id: Option<&str>,
        db: &DatabaseIdentity,
        other_database: bool,
    ) -> Result<Manifest, BackupError> {
        let scan = self.scan()?;
        let Some(id) = id else {
            let others = scan
                .manifests
                .iter()
                .filter(|m| !self.is_mine(m, db))
                .count();
            return scan
                .manifests
                .into_iter()
                .rev()
                .find(|m| self.is_mine(m, db))
                .ok_or_else(|| BackupError::NoBackups {
                    environment: self.environment.clone(),
                    dir: self.dir.clone(),
                    others,
                });
        };
        if let Some((name, reason)) = scan
            .refused
            .iter()
            .find(|(n, _)| n == &format!("{id}.json"))
        {
            return Err(BackupError::Untrusted {
                path: self.dir.join(name),
                reason: reason.clone(),
            });
        }
        let m = scan
            .manifests
            .into_iter()
            .find(|m| m.id == id)
            .ok_or_else(|| BackupError::NotFound {
                id: id.to_owned(),
                dir: self.dir.clone(),
            })?;
        if !other_database && !self.is_mine(&m, db) {
            return Err(self.other_database(&m, db));
        }
        Ok(m)
    }

    /// The refusal of a backup that is not this environment's database's.
    #[must_use]
    pub fn other_database(&self, m: &Manifest, db: &DatabaseIdentity) -> BackupError {
        let from = match &m.database {
            Some(d) => format!("{d} (environment `{}`)", m.environment),
            None => format!(
                "a database dbdeploy did not record (environment `{}`, made by dbdeploy {})",
                m.environment, m.dbdeploy_version
            ),
        };
        BackupError::OtherDatabase {
            id: m.id.clone(),
            from,
            into: format!("{db} (environment `{}`)", self.environment),
        }
    }

    /// Deletes this database's oldest backups beyond `keep`, never `current`. Returns the
    /// deleted ids. Other databases' backups are not counted and never touched.
    ///
    /// # Errors
    /// When the folder cannot be listed.
    pub fn prune(
        &self,
        keep: usize,
        current: &str,
        db: &DatabaseIdentity,
    ) -> Result<Vec<String>, BackupError> {
        let all = self.list(db)?.mine;
        let mut excess = all.len().saturating_sub(keep);
        let mut deleted = Vec::new();
        for m in &all {
            if excess == 0 {
                break;
            }
            if m.id == current {
                continue;
            }
            // The manifest passed `check_manifest`: its file is a plain name in this folder.
            for path in m
                .file_path(&self.dir)
                .into_iter()
                .chain([self.dir.join(format!("{}.json", m.id))])
            {
                folder::remove_own(&path);
            }
            deleted.push(m.id.clone());
            excess -= 1;
        }
        Ok(deleted)
    }

    /// Opens a backup's data file (a regular file of ours, never through a link) and checks
    /// it against its manifest's sha256. Returns the handle, rewound: the restore reads the
    /// bytes that were checked, whatever happens to the path meanwhile.
    ///
    /// # Errors
    /// [`BackupError::Tampered`] on a mismatch; untrusted or missing files.
    pub async fn open_verified(&self, m: &Manifest) -> Result<Option<File>, BackupError> {
        let Some(path) = m.file_path(&self.dir) else {
            return Ok(None);
        };
        if folder::is_own_dir(&path) {
            // A directory-format dump: its files are read by path (pg_restore takes a
            // directory), in a private directory of ours inside the checked folder.
            let dir = folder::open_own_dir(&path)?;
            let actual = super::dump_dir::digest(&path, false)
                .await?
                .sha256
                .unwrap_or_default();
            return match &m.sha256 {
                Some(expected) if expected != &actual => Err(BackupError::Tampered {
                    path,
                    expected: expected.clone(),
                    actual,
                }),
                _ => Ok(Some(dir)),
            };
        }
        let file = folder::open_own(&path)?;
        let Some(expected) = &m.sha256 else {
            return Ok(Some(file));
        };
        let (file, written) = super::process::hash_handle(file, &path).await?;
        let actual = written.sha256.unwrap_or_default();
        if &actual == expected {
            Ok(Some(file))
        } else {
            Err(BackupError::Tampered {
                path,
                expected: expected.clone(),
                actual,
            })
        }
    }

    /// Removes what killed runs left: `<id>.<ext>.partial`, `<id>.json.tmp` and the empty
    /// reservation `<id>.json`. Only files named as dbdeploy names them, regular files owned
    /// by the current user, whose reservation no live run holds (its lock is free) and that
    /// nobody touched for `STALE_AFTER`. Returns what was removed.
    pub fn clean_stale(&self) -> Vec<String> {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut removed = Vec::new();
        for entry in entries.filter_map(Result::ok) {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some((id, rest)) = name.split_once('.') else {
                continue;
            };
            let path = entry.path();
            let leftover = rest.ends_with(".partial")
                || rest == "json.tmp"
                || (rest == "json" && fs::symlink_metadata(&path).is_ok_and(|m| m.len() == 0));
            let own = folder::is_own_file(&path)
                || (rest.ends_with(".partial") && folder::is_own_dir(&path));
            if !leftover || !valid_id(id) || !own {
                continue;
            }
            let old = fs::symlink_metadata(&path)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age >= STALE_AFTER);
            if !old || self.held(id) {
                continue;
            }
            folder::remove_own(&path);
            if fs::symlink_metadata(&path).is_err() {
                removed.push(name);
            }
        }
        removed
    }

    /// Whether a live run holds the reservation of `id`.
    fn held(&self, id: &str) -> bool {
        let Ok(file) = folder::open_own(&self.dir.join(format!("{id}.json"))) else {
            return false;
        };
        matches!(file.try_lock(), Err(std::fs::TryLockError::WouldBlock))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db(name: &str) -> DatabaseIdentity {
        DatabaseIdentity {
            engine: "sqlite".into(),
            server: None,
            database: name.into(),
        }
    }

    fn manifest(id: &str, at: DateTime<Utc>, database: &str) -> Manifest {
        Manifest {
            id: id.into(),
            environment: "prod".into(),
            engine: "sqlite".into(),
            database: Some(db(database)),
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

    fn ids(listing: &Listing) -> Vec<String> {
        listing.mine.iter().map(|m| m.id.clone()).collect()
    }

    #[test]
    fn ids_are_unique_within_a_second_and_files_private() {
        let dir = tempfile::tempdir().unwrap();
        let store = BackupStore::new(dir.path().join("prod"), "prod");
        let now = DateTime::parse_from_rfc3339("2026-11-21T10:15:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let a = store.reserve(now, "sqlite", false).unwrap();
        let b = store.reserve(now, "sqlite", false).unwrap();
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
    fn prune_keeps_n_and_never_the_current_one_nor_another_databases() {
        let dir = tempfile::tempdir().unwrap();
        let store = BackupStore::new(dir.path().join("prod"), "prod");
        let t0 = Utc::now();
        for i in 0..4 {
            let at = t0 + chrono::Duration::seconds(i);
            let r = store.reserve(at, "sqlite", false).unwrap();
            let database = if i == 0 { "other.db" } else { "mine.db" };
            store
                .commit(&r, &manifest(&r.id, at, database), true)
                .unwrap();
        }
        let mine = db("mine.db");
        let listed = store.list(&mine).unwrap();
        assert_eq!(listed.others, 1);
        let ids = ids(&listed);
        assert_eq!(ids.len(), 3);
        // The oldest is the current run's backup (say, a clock that went backwards): kept.
        let deleted = store.prune(1, &ids[0], &mine).unwrap();
        assert_eq!(deleted, vec![ids[1].clone(), ids[2].clone()]);
        let left = store.list(&mine).unwrap();
        assert_eq!(super::tests::ids(&left), vec![ids[0].clone()]);
        assert_eq!(left.others, 1, "the other database's backup is untouched");
        assert!(!store.dir.join(format!("{}.sqlite", ids[1])).exists());
    }

    #[test]
    fn a_manifest_naming_a_path_is_refused_and_never_deleted_through() {
        let dir = tempfile::tempdir().unwrap();
        let store = BackupStore::new(dir.path().join("prod"), "prod");
        store.check(true).unwrap();
        let victim = dir.path().join("victim");
        fs::write(&victim, "keep").unwrap();
        for (n, file) in [
            (1, victim.display().to_string()),
            (2, "../victim".to_owned()),
            (3, "backup-20260101-000003.sqlite/../../victim".to_owned()),
        ] {
            let id = format!("backup-20260101-00000{n}");
            let mut m = manifest(&id, Utc::now(), "mine.db");
            m.file = Some(file);
            fs::write(
                store.dir.join(format!("{id}.json")),
                serde_json::to_string(&m).unwrap(),
            )
            .unwrap();
        }
        let mine = db("mine.db");
        let listed = store.list(&mine).unwrap();
        assert!(listed.mine.is_empty());
        assert_eq!(listed.refused.len(), 3, "{:?}", listed.refused);
        store.prune(1, "none", &mine).unwrap();
        let err = store
            .find(Some("backup-20260101-000001"), &mine, true)
            .unwrap_err();
        assert!(err.to_string().contains("plain file name"), "{err}");
        assert_eq!(fs::read_to_string(&victim).unwrap(), "keep");
    }

    #[test]
    fn what_a_killed_backup_left_is_removed_and_a_live_one_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = BackupStore::new(dir.path().join("prod"), "prod");
        let live = store.reserve(Utc::now(), "dump", false).unwrap();
        // A killed run's leftovers: an empty reservation and its partial file.
        let dead = store.dir.join("backup-20200101-000000.json");
        let partial = store.dir.join("backup-20200101-000000.dump.partial");
        fs::write(&dead, "").unwrap();
        fs::write(&partial, "half").unwrap();
        let foreign = store.dir.join("notes.partial");
        fs::write(&foreign, "not ours").unwrap();
        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(60);
        for p in [&dead, &partial, &live.partial, &live.manifest] {
            fs::File::options()
                .write(true)
                .open(p)
                .unwrap()
                .set_modified(old)
                .unwrap();
        }
        let removed = store.clean_stale();
        assert_eq!(removed.len(), 2, "{removed:?}");
        assert!(!dead.exists() && !partial.exists());
        assert!(
            live.partial.exists() && live.manifest.exists(),
            "in progress"
        );
        assert!(foreign.exists(), "not named as dbdeploy names its files");
    }
}
