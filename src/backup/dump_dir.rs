//! Directory-format dumps (`pg_dump -Fd`): a table of contents and one file per table, written
//! by parallel workers into a fresh private directory that dbdeploy creates (never one that
//! already existed). The manifest's sha256 is a digest of the sorted list of the directory's
//! files with their sizes and sha256s, so that a file added, removed, renamed or changed after
//! the backup is caught before a restore, as for a one-file backup.

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use sha2::{Digest, Sha256};

use super::{BackupError, Written, folder};
use crate::checksum::hex;

/// The digest and total size of a directory dump. With `tighten`, each file is made 0600
/// first (the tool creates them under the process umask; the directory is 0700 anyway).
///
/// # Errors
/// A directory that is not ours and private, an entry that is not a regular file of ours,
/// or a file that cannot be read.
pub async fn digest(dir: &Path, tighten: bool) -> Result<Written, BackupError> {
    folder::open_own_dir(dir)?;
    let io = |path: &Path, e: std::io::Error| BackupError::Io {
        path: path.to_owned(),
        what: "cannot read the backup".into(),
        source: Some(e),
    };
    let mut tasks = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| io(dir, e))? {
        let entry = entry.map_err(|e| io(dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        let file = folder::open_own(&path)?;
        if tighten {
            file.set_permissions(std::fs::Permissions::from_mode(0o600))
                .map_err(|e| io(&path, e))?;
        }
        tasks.push(tokio::task::spawn_blocking(move || {
            hash(file)
                .map(|(size, sha)| (name, size, sha))
                .map_err(|e| (path, e))
        }));
    }
    let mut files = Vec::with_capacity(tasks.len());
    for task in tasks {
        let done = task.await.map_err(|e| BackupError::Failed {
            what: "hashing the backup".into(),
            message: e.to_string(),
        })?;
        files.push(done.map_err(|(path, e)| io(&path, e))?);
    }
    files.sort();
    Ok(combine(&files))
}

fn hash(mut file: std::fs::File) -> std::io::Result<(u64, String)> {
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok((size, hex(&hasher.finalize())))
}

/// One line per file (`name`, size, sha256), sorted by name, hashed together.
fn combine(files: &[(String, u64, String)]) -> Written {
    let mut listing = String::new();
    let mut total = 0u64;
    for (name, size, sha) in files {
        listing.push_str(&format!("{name}\t{size}\t{sha}\n"));
        total += size;
    }
    Written {
        size: Some(total),
        sha256: Some(hex(&Sha256::digest(listing.as_bytes()))),
    }
}

/// The bytes written so far under `dir` (for progress while a tool writes a dump).
#[must_use]
pub fn bytes_in(path: &Path) -> u64 {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::read_dir(path).map_or(0, |entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|e| e.metadata().ok())
                .filter(std::fs::Metadata::is_file)
                .map(|m| m.len())
                .sum()
        }),
        Ok(m) => m.len(),
        Err(_) => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn any_change_to_the_directory_changes_its_digest() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("dump");
        folder::create_private_dir(&d).unwrap();
        std::fs::write(d.join("toc.dat"), "toc").unwrap();
        std::fs::write(d.join("3001.dat.gz"), "rows").unwrap();
        let first = digest(&d, true).await.unwrap();
        assert_eq!(first.size, Some(7));
        let mode = std::fs::metadata(d.join("toc.dat"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(digest(&d, false).await.unwrap().sha256, first.sha256);
        std::fs::rename(d.join("3001.dat.gz"), d.join("3002.dat.gz")).unwrap();
        assert_ne!(digest(&d, false).await.unwrap().sha256, first.sha256);
        std::fs::write(d.join("extra"), "").unwrap();
        let renamed_and_extra = digest(&d, false).await.unwrap().sha256;
        std::fs::remove_file(d.join("extra")).unwrap();
        assert_ne!(digest(&d, false).await.unwrap().sha256, renamed_and_extra);
        std::os::unix::fs::symlink("/etc/passwd", d.join("link")).unwrap();
        assert!(matches!(
            digest(&d, false).await,
            Err(BackupError::Untrusted { .. })
        ));
    }
}
