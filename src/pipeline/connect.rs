//! Step 2: the run's one session. Connecting retries refused connections for the configured
//! wait; a dry run gets a read-only session. After a connection lost mid-run, [`reconnect`]
//! gets a new session and the deploy lock back, so that a failure can still be restored and
//! logged.

use super::{Ctx, Outcome, Trail};
use crate::engine::{ConnectOptions, Database};
use crate::error::Error;

/// Connects and reads the server version; with `create`, creates a missing database first
/// when the environment allows it.
///
/// # Errors
/// When the server cannot be reached within the configured wait.
pub async fn connect<D: Database>(
    cx: &Ctx<'_>,
    read_only: bool,
    create: bool,
    trail: &mut Trail,
) -> Result<D, Error> {
    if create && !read_only && cx.env.create_database {
        create_if_missing(cx).await?;
    }
    let progress = crate::output::progress::activity(
        "connect",
        "waiting for the database to accept connections".into(),
        Vec::new,
    );
    let connected = D::connect(&cx.env.target, options(cx, read_only)).await;
    drop(progress);
    let mut db = match connected {
        Ok(db) => db,
        Err(e) => {
            cx.step(
                "connect",
                Outcome::Failed,
                "cannot reach the database".into(),
            );
            return Err(e.into());
        }
    };
    let version = db.server_version().await?;
    if let Err(e) = supported(&mut db).await {
        cx.step("connect", Outcome::Failed, e.to_string());
        return Err(e);
    }
    let ro = if read_only { ", read-only session" } else { "" };
    cx.step("connect", Outcome::Ok, format!("{version}{ro}"));
    trail.server_version = Some(version);
    Ok(db)
}

/// A `dev` environment (or one with `create_database = true`) gets its database created when
/// the server says it does not exist, by `migrate` only (`create`): other commands report it
/// missing.
async fn create_if_missing(cx: &Ctx<'_>) -> Result<(), Error> {
    match crate::engine::create::create_if_missing(&cx.env.target).await {
        Ok(Some(name)) => {
            cx.step(
                "create",
                Outcome::Ok,
                format!("created database {name} (it did not exist)"),
            );
            Ok(())
        }
        Ok(None) => Ok(()),
        Err(e) => {
            cx.step(
                "create",
                Outcome::Failed,
                "cannot create the database".into(),
            );
            Err(e.into())
        }
    }
}

/// Refuses a distributed SQL server that speaks PostgreSQL's protocol but whose locks and
/// transactions are not PostgreSQL's (see `engine/distributed.rs`).
///
/// # Errors
/// [`Error::UnsupportedServer`], or a database error reading the version.
pub async fn supported<D: Database>(db: &mut D) -> Result<(), Error> {
    use crate::engine::{ColKind, Dialect, Stmt};
    if db.dialect() != Dialect::Postgres {
        return Ok(());
    }
    let rows = db
        .fetch(&Stmt::raw("SELECT version()"), &[ColKind::Text])
        .await?;
    let text = rows
        .first()
        .and_then(|r| r.first())
        .and_then(crate::engine::Value::as_text)
        .unwrap_or_default();
    match crate::engine::distributed::recognise(text) {
        Some(d) => Err(Error::UnsupportedServer {
            server: d.server,
            reason: d.reason.to_owned(),
        }),
        None => Ok(()),
    }
}

/// The connection options of the environment.
#[must_use]
pub fn options(cx: &Ctx<'_>, read_only: bool) -> ConnectOptions {
    ConnectOptions {
        wait: cx.env.connect_wait,
        lock_wait: cx.env.lock_timeout,
        read_only,
    }
}

/// After the connection was lost mid-run: a new session, and the deploy lock again. Returns
/// whether the lock is held again.
pub async fn reconnect<D: Database>(cx: &Ctx<'_>, db: &mut D) -> bool {
    match D::connect(&cx.env.target, options(cx, false)).await {
        // The old session is gone; dropping it only frees the socket.
        Ok(new) => *db = new,
        Err(e) => {
            cx.step("reconnect", Outcome::Failed, e.to_string());
            return false;
        }
    }
    match super::lock::acquire(cx, db).await {
        // Released with the first lock's keys at the end of the run (the same keys).
        Ok(_) => {
            cx.step(
                "reconnect",
                Outcome::Ok,
                "connected again and took the deploy lock again".into(),
            );
            true
        }
        Err(e) => {
            cx.step(
                "reconnect",
                Outcome::Warning,
                format!("connected again, but not locked: {e}"),
            );
            false
        }
    }
}
