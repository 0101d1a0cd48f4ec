//! Step 4: the deploy lock, one policy for every operation. A format's runs take the tool's
//! own lock ids (so dbdeploy and the tool exclude each other, and ids derived from the database
//! name are derived the tool's way); an external tool's runs take dbdeploy's own lock. On
//! SQLite that one is a file next to the database (`<file>.dbdeploy-lock`): SQLite's write
//! lock, which the formats hold for the whole run, would shut the external tool out.

use std::path::Path;
use std::time::{Duration, Instant};

use super::event::duration;
use super::{Ctx, Outcome};
use crate::engine::{Database, DbError, LockKey, Target};
use crate::error::Error;
use crate::interrupt;

/// A deploy lock held by this run.
#[must_use = "a held lock must be released"]
pub enum Held {
    /// Advisory locks on the server (and SQLite's write lock).
    Server(Vec<LockKey>),
    /// An exclusive lock on a file next to the SQLite database.
    File(std::fs::File),
}

/// How often a held lock file is tried again.
const LOCK_POLL: Duration = Duration::from_millis(100);

/// Takes the deploy lock, waiting up to the environment's `lock_timeout_seconds` (Ctrl-C
/// stops the wait), and reports the step.
///
/// # Errors
/// The lock is held elsewhere for longer than the wait, a database error, or Ctrl-C.
pub async fn take<D: Database>(cx: &Ctx<'_>, db: &mut D) -> Result<Held, Error> {
    let waited = Instant::now();
    let progress = crate::output::progress::activity(
        "lock",
        "waiting for the deploy lock (another deploy holds it)".into(),
        Vec::new,
    );
    let taken = interrupt::unless_interrupted(acquire(cx, db)).await;
    drop(progress);
    let Some(taken) = taken else {
        cx.step(
            "lock",
            Outcome::Failed,
            "interrupted while waiting for the deploy lock".into(),
        );
        return Err(super::stopped(cx));
    };
    match taken {
        Ok(held) => {
            cx.step(
                "lock",
                Outcome::Ok,
                format!("deploy lock taken in {}", duration(waited.elapsed())),
            );
            Ok(held)
        }
        Err(e) => {
            cx.step(
                "lock",
                Outcome::Failed,
                "another deploy holds the lock".into(),
            );
            Err(e.into())
        }
    }
}

/// Takes the deploy lock without reporting (also after a reconnect).
///
/// # Errors
/// A lock timeout or a database error.
pub async fn acquire<D: Database>(cx: &Ctx<'_>, db: &mut D) -> Result<Held, DbError> {
    let timeout = cx.env.lock_timeout;
    match (cx.handler(), &cx.env.target) {
        // A rehearsal's private copy: MySQL's named locks are server-wide, and would shut a
        // deploy of the real database out for as long as the rehearsal runs.
        (Some(_), Target::MySql { .. }) if cx.env.scratch => Ok(Held::Server(Vec::new())),
        (Some(handler), _) => {
            let keys = handler.lock_keys(&db.lock_scope().await?);
            crate::engine::lock_all(db, &keys, timeout)
                .await
                .map(Held::Server)
        }
        (None, Target::Sqlite { path }) => {
            let held = lock_file(path, timeout).await.map(Held::File)?;
            db.open_for_changes().await?;
            Ok(held)
        }
        (None, _) => crate::engine::lock_all(db, &[crate::handler::dbdeploy_lock()], timeout)
            .await
            .map(Held::Server),
    }
}

impl Held {
    /// Releases the lock; returns what went wrong, as warnings of the run.
    pub async fn release<D: Database>(self, db: &mut D) -> Vec<String> {
        match self {
            Held::Server(keys) => crate::engine::unlock_all(db, &keys).await,
            // The file stays: removing it would let a run that opened it before the removal
            // lock a file nobody else sees.
            Held::File(file) => match file.unlock() {
                Ok(()) => Vec::new(),
                Err(e) => vec![format!("cannot release the deploy lock file: {e}")],
            },
        }
    }
}

async fn lock_file(db_file: &Path, timeout: Duration) -> Result<std::fs::File, DbError> {
    let mut name = db_file.file_name().unwrap_or_default().to_owned();
    name.push(".dbdeploy-lock");
    let path = db_file.with_file_name(name);
    let failed = |e: &dyn std::fmt::Display| DbError::Query {
        context: format!("cannot take the deploy lock {}", path.display()),
        message: e.to_string(),
        source: None,
    };
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| failed(&e))?;
    let deadline = Instant::now() + timeout;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(std::fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                tokio::time::sleep(LOCK_POLL).await;
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(DbError::LockTimeout {
                    seconds: timeout.as_secs(),
                    holder: format!(" (another dbdeploy run holds {})", path.display()),
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(failed(&e)),
        }
    }
}
