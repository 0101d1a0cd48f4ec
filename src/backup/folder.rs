//! The backup folder is untrusted input: another local user who can write to it could swap a
//! file being written for a symbolic link (and make dbdeploy overwrite what it points to),
//! plant a manifest that makes retention delete any file, or plant a backup for `rollback`.
//! So a folder is used only when it is a real directory owned by the user running dbdeploy
//! and nobody else can write to it; one of ours that is too open is tightened to 0700. Files
//! in it are created exclusively without following symbolic links, and written and read
//! through the handle that was checked.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use super::BackupError;

/// The user running dbdeploy.
fn me() -> u32 {
    rustix::process::getuid().as_raw()
}

/// Refuses what another user owns.
fn ours(path: &Path, meta: &fs::Metadata) -> Result<(), BackupError> {
    if meta.uid() == me() {
        return Ok(());
    }
    Err(untrusted(
        path,
        format!(
            "it is owned by uid {}, not by the user running dbdeploy (uid {})",
            meta.uid(),
            me()
        ),
    ))
}

fn untrusted(path: &Path, reason: String) -> BackupError {
    BackupError::Untrusted {
        path: path.to_owned(),
        reason,
    }
}

/// Checks (and creates, when `create`) a folder dbdeploy keeps backups in: not a symbolic
/// link, a directory, owned by the current user; one that group or others may read or write
/// is tightened to 0700. Returns whether it exists.
///
/// # Errors
/// [`BackupError::Untrusted`] naming the folder and the rule; I/O errors.
pub fn private_dir(path: &Path, create: bool) -> Result<bool, BackupError> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
            // Missing parents are created 0700 too; existing ones are the caller's to check.
            match DirBuilder::new().recursive(true).mode(0o700).create(path) {
                Ok(()) => {}
                // Another run created it meanwhile: checked below like any other.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => {
                    return Err(BackupError::Io {
                        path: path.to_owned(),
                        what: "cannot create the backup folder".into(),
                        source: Some(e),
                    });
                }
            }
            return private_dir(path, false);
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => {
            return Err(BackupError::Io {
                path: path.to_owned(),
                what: "cannot read the backup folder".into(),
                source: Some(e),
            });
        }
    };
    if meta.file_type().is_symlink() {
        return Err(untrusted(
            path,
            "it is a symbolic link; point `[backup] dir` at the real folder".into(),
        ));
    }
    if !meta.is_dir() {
        return Err(untrusted(path, "it is not a directory".into()));
    }
    ours(path, &meta)?;
    if meta.mode() & 0o077 != 0 {
        fs::set_permissions(path, fs::Permissions::from_mode(0o700)).map_err(|e| {
            untrusted(
                path,
                format!(
                    "group or others may use it (mode {:o}) and it cannot be made private: {e}",
                    meta.mode() & 0o777
                ),
            )
        })?;
    }
    Ok(true)
}

/// `[backup] dir`, which holds every environment's folder: created 0700 when missing. When
/// others may write to it they could replace an environment's folder, so it must then be ours
/// (group and others lose write access) or sticky, as `/tmp` is (only an entry's owner may
/// rename or remove it).
///
/// # Errors
/// [`BackupError::Untrusted`] naming the folder and the rule; I/O errors.
pub fn shared_parent(path: &Path, create: bool) -> Result<(), BackupError> {
    let meta = match fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if create {
                DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(path)
                    .map_err(|e| BackupError::Io {
                        path: path.to_owned(),
                        what: "cannot create the backup folder".into(),
                        source: Some(e),
                    })?;
            }
            return Ok(());
        }
        Err(e) => {
            return Err(BackupError::Io {
                path: path.to_owned(),
                what: "cannot read the backup folder".into(),
                source: Some(e),
            });
        }
    };
    if !meta.is_dir() {
        return Err(untrusted(path, "it is not a directory".into()));
    }
    let mode = meta.mode();
    if mode & 0o022 == 0 || mode & 0o1000 != 0 {
        return Ok(());
    }
    if meta.uid() != me() {
        return Err(untrusted(
            path,
            format!(
                "others may write to it (mode {:o}) and it is owned by uid {}, not by the user running dbdeploy (uid {})",
                mode & 0o7777,
                meta.uid(),
                me()
            ),
        ));
    }
    fs::set_permissions(path, fs::Permissions::from_mode(mode & 0o7755)).map_err(|e| {
        untrusted(
            path,
            format!(
                "others may write to it (mode {:o}) and it cannot be changed: {e}",
                mode & 0o7777
            ),
        )
    })
}

/// Creates a new file (0600) in a checked folder: exclusively, never through a symbolic link.
///
/// # Errors
/// `AlreadyExists` when the name is taken (a link included), other I/O errors.
pub fn create_new(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .write(true)
        .read(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW)
        .mode(0o600)
        .open(path)
}

/// Opens a file of a checked folder for reading: not through a symbolic link, and only a
/// regular file owned by the current user.
///
/// # Errors
/// [`BackupError::Untrusted`] for anything else; I/O errors.
pub fn open_own(path: &Path) -> Result<File, BackupError> {
    let (file, meta) = open_no_link(path, libc::O_NONBLOCK)?;
    if !meta.is_file() {
        return Err(untrusted(path, "it is not a regular file".into()));
    }
    ours(path, &meta)?;
    Ok(file)
}

/// Whether a directory entry is a regular file of ours (not a link): the only kind dbdeploy
/// ever removes.
#[must_use]
pub fn is_own_file(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok_and(|m| m.is_file() && m.uid() == me())
}

/// Whether a directory entry is a directory of ours (not a link): a directory-format dump.
#[must_use]
pub fn is_own_dir(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok_and(|m| m.is_dir() && m.uid() == me())
}

/// Removes a backup's data: a regular file of ours, or a directory of ours with what is in
/// it (`remove_dir_all` never follows a link inside). Anything else is left alone.
pub fn remove_own(path: &Path) {
    if is_own_file(path) {
        let _ = fs::remove_file(path);
    } else if is_own_dir(path) {
        let _ = fs::remove_dir_all(path);
    }
}

/// Creates a fresh directory (mode 0700) that did not exist: `mkdir` fails on anything
/// already there, a link included, so what a tool writes into it cannot land elsewhere.
/// Returns it opened.
///
/// # Errors
/// When anything exists at `path` or it cannot be created.
pub fn create_private_dir(path: &Path) -> std::io::Result<File> {
    DirBuilder::new().mode(0o700).create(path)?;
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_DIRECTORY)
        .open(path)
}

/// Opens a directory of ours that nobody else may use (never through a link).
///
/// # Errors
/// [`BackupError::Untrusted`] for a link, another owner or open permissions.
pub fn open_own_dir(path: &Path) -> Result<File, BackupError> {
    let (dir, meta) = open_no_link(path, libc::O_DIRECTORY)?;
    ours(path, &meta)?;
    if meta.mode() & 0o077 != 0 {
        return Err(untrusted(
            path,
            format!(
                "group or others may use it (mode {:o})",
                meta.mode() & 0o777
            ),
        ));
    }
    Ok(dir)
}

/// Opens `path` for reading, never through a symbolic link (`flags` are added to
/// `O_NOFOLLOW`), with its metadata for the caller's checks.
fn open_no_link(path: &Path, flags: i32) -> Result<(File, fs::Metadata), BackupError> {
    let cannot_read = |e| BackupError::Io {
        path: path.to_owned(),
        what: "cannot read it".into(),
        source: Some(e),
    };
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | flags)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                untrusted(path, "it is a symbolic link".into())
            } else {
                cannot_read(e)
            }
        })?;
    let meta = file.metadata().map_err(cannot_read)?;
    Ok((file, meta))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_open_folder_of_ours_is_tightened_and_a_link_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let open = dir.path().join("open");
        fs::create_dir(&open).unwrap();
        fs::set_permissions(&open, fs::Permissions::from_mode(0o777)).unwrap();
        assert!(private_dir(&open, false).unwrap());
        let mode = fs::metadata(&open).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);

        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&open, &link).unwrap();
        let err = private_dir(&link, true).unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");

        let nested = dir.path().join("a/b");
        assert!(private_dir(&nested, true).unwrap());
        let mode = fs::metadata(&nested).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        assert!(!private_dir(&dir.path().join("missing"), false).unwrap());
    }

    #[test]
    fn files_are_never_created_or_read_through_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("victim");
        fs::write(&target, "keep").unwrap();
        let link = dir.path().join("x.partial");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(create_new(&link).is_err());
        assert!(open_own(&link).is_err());
        assert_eq!(fs::read_to_string(&target).unwrap(), "keep");
        assert!(!is_own_file(&link));
    }
}
