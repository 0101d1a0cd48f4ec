//! Reading a migrations folder: listing it, reading each script as UTF-8 SQL text, and the
//! steps version-keyed formats share once their own name parser has said which files are
//! migrations (numeric order, duplicate versions, pairing up and down files).
//!
//! The errors name the file and say what to do, since the folder is the user's own work.

use std::path::{Path, PathBuf};

use super::HandlerError;
use crate::migration::Migration;

/// Checks that the migrations folder exists and is a directory.
///
/// # Errors
/// When it is missing, unreadable or a file.
pub fn check_folder(dir: &Path) -> Result<(), HandlerError> {
    let folder_error = |reason: String| HandlerError::Folder {
        path: dir.to_owned(),
        reason,
    };
    let meta = std::fs::metadata(dir).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => {
            folder_error("does not exist; set `migrations_dir` in dbdeploy.toml".into())
        }
        _ => folder_error(format!("cannot be read: {e}")),
    })?;
    if meta.is_dir() {
        Ok(())
    } else {
        Err(folder_error("is not a directory".into()))
    }
}

/// The files directly in `dir` (symlinks followed), as (file name, path), sorted by name.
///
/// # Errors
/// When the folder or an entry cannot be read, or a name is not UTF-8.
pub fn list_files(dir: &Path) -> Result<Vec<(String, PathBuf)>, HandlerError> {
    check_folder(dir)?;
    let mut out = Vec::new();
    for (name, path, is_dir) in entries(dir)? {
        if !is_dir {
            out.push((name, path));
        }
    }
    Ok(out)
}

/// The entries of `dir` as (name, path, is a directory), sorted by name.
///
/// # Errors
/// When the folder or an entry cannot be read, or a name is not UTF-8.
pub fn entries(dir: &Path) -> Result<Vec<(String, PathBuf, bool)>, HandlerError> {
    listing(dir, |_| Some("the name is not valid UTF-8; rename it"))
}

/// The names of the folders in `dir` (symlinks followed), sorted: Prisma's layout, where each
/// migration is a folder. Files are left out, whatever their names.
///
/// # Errors
/// When the folder or an entry cannot be read, or a folder's name is not UTF-8.
pub fn folders(dir: &Path) -> Result<Vec<String>, HandlerError> {
    let all = listing(dir, |is_dir| {
        is_dir.then_some("the folder name is not valid UTF-8; rename it")
    })?;
    Ok(all
        .into_iter()
        .filter_map(|(name, _, is_dir)| is_dir.then_some(name))
        .collect())
}

/// The entries of `dir` as (name, path, is a directory), sorted by name. An entry whose name is
/// not UTF-8 is refused with the reason `bad_name` gives for it (told whether it is a
/// directory), or left out where that gives none.
fn listing(
    dir: &Path,
    bad_name: impl Fn(bool) -> Option<&'static str>,
) -> Result<Vec<(String, PathBuf, bool)>, HandlerError> {
    let unreadable = |e: std::io::Error| HandlerError::Folder {
        path: dir.to_owned(),
        reason: format!("cannot be read: {e}"),
    };
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(unreadable)? {
        let entry = entry.map_err(unreadable)?;
        let path = entry.path();
        let is_dir = is_dir(&entry, &path)?;
        match entry.file_name().into_string() {
            Ok(name) => out.push((name, path, is_dir)),
            Err(_) => {
                if let Some(reason) = bad_name(is_dir) {
                    return Err(HandlerError::file(path, reason));
                }
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Whether a folder entry is a directory, following symlinks. The type comes with the listing
/// (no system call per entry); only a symlink needs a look at what it points to.
///
/// # Errors
/// When the entry, or a symlink's target, cannot be read.
pub fn is_dir(entry: &std::fs::DirEntry, path: &Path) -> Result<bool, HandlerError> {
    let cannot_read = |e: std::io::Error| HandlerError::file(path, format!("cannot be read: {e}"));
    let kind = entry.file_type().map_err(cannot_read)?;
    if kind.is_symlink() {
        Ok(std::fs::metadata(path).map_err(cannot_read)?.is_dir())
    } else {
        Ok(kind.is_dir())
    }
}

/// Finds two migrations that share an identity, which every version-keyed tool refuses.
///
/// # Errors
/// [`HandlerError::File`] naming both files.
pub fn check_unique(migrations: &[Migration]) -> Result<(), HandlerError> {
    for (i, m) in migrations.iter().enumerate() {
        if let Some(first) = migrations[..i].iter().find(|o| o.name == m.name) {
            return Err(HandlerError::file(
                &m.path,
                format!(
                    "has version {} like {}: versions must be unique (give one of them a new version)",
                    m.name,
                    first.path.display()
                ),
            ));
        }
    }
    Ok(())
}

/// Reads a migration file as UTF-8, with an error that names the file.
///
/// # Errors
/// When the file cannot be read, is not a regular file, or is not UTF-8.
pub fn read_script(path: &Path) -> Result<String, HandlerError> {
    let cannot_read =
        |reason: String| HandlerError::file(path, format!("cannot be read: {reason}"));
    match read_regular(path) {
        Ok(Some(bytes)) => script_text(path, bytes),
        Ok(None) => Err(cannot_read("it is not a regular file".into())),
        Err(e) => Err(cannot_read(e.to_string())),
    }
}

/// The bytes of the regular file at `path`; `None` when it is something else (a folder, a
/// FIFO, ...). One open, one fstat, one read and one close for a file that does not change
/// while it is read: thousands of migrations are read on every run.
///
/// # Errors
/// When it cannot be opened or read (missing: [`std::io::ErrorKind::NotFound`]).
pub fn read_regular(path: &Path) -> std::io::Result<Option<Vec<u8>>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    // Non-blocking, so that opening a FIFO does not wait for a writer; no effect on files.
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Ok(None);
    }
    let size = usize::try_from(meta.len()).unwrap_or(0);
    // One byte more than the file holds: a read that does not fill the buffer is at the end
    // of a regular file, so no second read is needed to see end-of-file.
    let mut buf = vec![0; size + 1];
    let mut len = 0;
    loop {
        if len == buf.len() {
            // The file grew since the fstat.
            buf.resize(buf.len() * 2, 0);
        }
        match file.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => {
                len += n;
                if len >= size && len < buf.len() {
                    break;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(len);
    Ok(Some(buf))
}

/// A migration file's bytes as SQL text, kept for the whole run (so without spare capacity).
///
/// # Errors
/// When they are not UTF-8 or hold a NUL byte.
pub fn script_text(path: &Path, bytes: Vec<u8>) -> Result<String, HandlerError> {
    let mut text = String::from_utf8(bytes).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line = valid.iter().filter(|b| **b == b'\n').count() + 1;
        HandlerError::file_at(path, line, "is not valid UTF-8 text; save it as UTF-8")
    })?;
    // No SQL text holds a NUL byte, and drivers mishandle one (sqlx's SQLite driver loops
    // forever on it): refuse the file before anything runs.
    if let Some(at) = text.find('\0') {
        let line = text[..at].matches('\n').count() + 1;
        return Err(HandlerError::file_at(
            path,
            line,
            "contains a NUL byte, so it is not SQL text (a binary or UTF-16 file?); save it as UTF-8 text",
        ));
    }
    text.shrink_to_fit();
    Ok(text)
}

/// Loads migrations from their names on a few threads: with thousands of files, opening,
/// reading and hashing them is most of a no-op run. The result is in the order of `names`,
/// and the error is the one of the first name that failed, as a sequential loop would give.
///
/// # Errors
/// The first error of `load`, in the order of `names`.
pub fn load_in_parallel<F>(names: Vec<String>, load: F) -> Result<Vec<Migration>, HandlerError>
where
    F: Fn(String) -> Result<Migration, HandlerError> + Sync,
{
    // Below this, starting threads costs more than it saves.
    const PARALLEL_FROM: usize = 512;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
    if names.len() < PARALLEL_FROM || threads < 2 {
        return names.into_iter().map(load).collect();
    }
    let per_thread = names.len().div_ceil(threads);
    let mut chunks: Vec<Vec<String>> = Vec::with_capacity(threads);
    let mut names = names.into_iter();
    loop {
        let chunk: Vec<String> = names.by_ref().take(per_thread).collect();
        if chunk.is_empty() {
            break;
        }
        chunks.push(chunk);
    }
    let load = &load;
    let results: Vec<Result<Vec<Migration>, HandlerError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|chunk| scope.spawn(move || chunk.into_iter().map(load).collect()))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    });
    let mut migrations = Vec::new();
    for chunk in results {
        migrations.extend(chunk?);
    }
    Ok(migrations)
}

/// A migration file that a format's name parser took, read as SQL text.
#[derive(Debug)]
pub struct Script<K> {
    /// What the parser made of the file name.
    pub key: K,
    /// The file.
    pub path: PathBuf,
    /// Its text, exactly as on disk.
    pub text: String,
}

/// Reads the files a format takes from `files` (as [`list_files`] gives them: by name), in
/// that order. `parse` sees each file's name and path and answers `Ok(None)` for a file the
/// tool ignores (it is not read), or why the name is wrong (an error naming the file).
///
/// Lazy, one file at a time: a format's own checks between files then report the first
/// problem in file order, as the sequential loops of the tools do.
pub fn scripts<K>(
    files: Vec<(String, PathBuf)>,
    mut parse: impl FnMut(&str, &Path) -> Result<Option<K>, String>,
) -> impl Iterator<Item = Result<Script<K>, HandlerError>> {
    files
        .into_iter()
        .filter_map(move |(name, path)| match parse(&name, &path) {
            Ok(None) => None,
            Ok(Some(key)) => Some(read_script(&path).map(|text| Script { key, path, text })),
            Err(reason) => Some(Err(HandlerError::file(path, reason))),
        })
}

/// Orders migrations named by an integer version numerically, as sqlx and golang-migrate
/// do (`2_` before `10_`), then refuses two with the same version.
///
/// # Errors
/// [`check_unique`]'s.
pub fn order_by_version(migrations: &mut [Migration]) -> Result<(), HandlerError> {
    // Names are printed from parsed integers, so they always parse back.
    migrations.sort_by_key(|m| m.name.parse::<i64>().unwrap_or(i64::MIN));
    check_unique(migrations)
}

/// A down script in its own file (sqlx and golang-migrate `.down.sql`), by the name of the
/// migration it reverts.
#[derive(Debug, Clone)]
pub struct Down {
    /// The name of the up migration (its version).
    pub name: String,
    /// The file.
    pub path: PathBuf,
    /// Its text.
    pub sql: String,
}

/// Gives every migration the down script of the same name; returns, in their order, the
/// down scripts that no migration has (each format says what becomes of those).
#[must_use]
pub fn attach_downs(migrations: &mut [Migration], downs: Vec<Down>) -> Vec<Down> {
    let mut orphans = Vec::new();
    for down in downs {
        match migrations.iter_mut().find(|m| m.name == down.name) {
            Some(m) => m.down = Some(down.sql),
            None => orphans.push(down),
        }
    }
    orphans
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regular_files_are_read_whole_and_other_entries_are_not_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.sql");
        for text in ["", "x", "CREATE TABLE t (id INT);\n"] {
            std::fs::write(&path, text).unwrap();
            assert_eq!(read_regular(&path).unwrap().unwrap(), text.as_bytes());
        }
        let big = "SELECT 1;\n".repeat(100_000);
        std::fs::write(&path, &big).unwrap();
        assert_eq!(read_script(&path).unwrap(), big);
        assert!(read_regular(dir.path()).unwrap().is_none());
        let missing = read_regular(&dir.path().join("nope.sql")).unwrap_err();
        assert_eq!(missing.kind(), std::io::ErrorKind::NotFound);
        let err = read_script(dir.path()).unwrap_err().to_string();
        assert!(err.contains("not a regular file"), "{err}");
    }

    #[test]
    fn a_fifo_is_refused_without_waiting_for_a_writer() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("m.sql");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if !made.is_ok_and(|s| s.success()) {
            return;
        }
        assert!(read_regular(&fifo).unwrap().is_none());
    }

    #[test]
    fn entries_follow_symlinks_to_tell_folders() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("b_dir")).unwrap();
        std::fs::write(dir.path().join("c_file.sql"), "").unwrap();
        std::os::unix::fs::symlink("b_dir", dir.path().join("a_link")).unwrap();
        let found: Vec<(String, bool)> = entries(dir.path())
            .unwrap()
            .into_iter()
            .map(|(name, _, is_dir)| (name, is_dir))
            .collect();
        assert_eq!(
            found,
            [
                ("a_link".to_owned(), true),
                ("b_dir".to_owned(), true),
                ("c_file.sql".to_owned(), false)
            ]
        );
        std::os::unix::fs::symlink("gone", dir.path().join("d_dangling")).unwrap();
        let err = entries(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("d_dangling") && err.contains("cannot be read"),
            "{err}"
        );
    }

    #[test]
    fn scripts_are_read_in_order_and_ignored_files_are_not_read() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("1_a.sql"), "SELECT 1;").unwrap();
        std::fs::write(dir.path().join("2_b.sql"), [0xff, 0xfe]).unwrap();
        std::fs::write(dir.path().join("notes.bin"), [0xff]).unwrap();
        let parse = |name: &str, _: &Path| match name.split_once('_') {
            Some((v, _)) => v.parse::<i64>().map(Some).map_err(|e| e.to_string()),
            None => Ok(None),
        };
        let mut found = scripts(list_files(dir.path()).unwrap(), parse);
        let first = found.next().unwrap().unwrap();
        assert_eq!((first.key, first.text.as_str()), (1, "SELECT 1;"));
        let err = found.next().unwrap().unwrap_err().to_string();
        assert!(err.contains("2_b.sql") && err.contains("UTF-8"), "{err}");
        assert!(found.next().is_none());
    }

    #[test]
    fn down_scripts_attach_by_name_and_the_rest_come_back_in_order() {
        let m = |name: &str| {
            let tx = crate::migration::TxMode::Wrapped;
            Migration::new(
                name,
                format!("{name}.up.sql"),
                String::new(),
                tx,
                String::new(),
            )
        };
        let down = |name: &str| Down {
            name: name.into(),
            path: format!("{name}.down.sql").into(),
            sql: format!("-- down {name}"),
        };
        let mut ms = vec![m("10"), m("2")];
        let orphans = attach_downs(&mut ms, vec![down("3"), down("2"), down("1")]);
        assert_eq!(ms[1].down.as_deref(), Some("-- down 2"));
        assert!(ms[0].down.is_none());
        let names: Vec<_> = orphans.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["3", "1"]);
        order_by_version(&mut ms).unwrap();
        let names: Vec<_> = ms.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["2", "10"]);
    }
}
