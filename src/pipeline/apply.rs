//! Step 9: apply approved migrations in order, each with its tracking-table write, stopping
//! at the first failure.
//!
//! Transaction policy (FORMATS.md): on engines with transactional DDL a migration and its
//! tracking row commit or roll back together. Scripts that cannot run in a transaction, or
//! carry their own `BEGIN`/`COMMIT`, and every migration on MySQL run outside one: the start
//! is recorded first and a failure is recorded the tool's way, which blocks until resolved.
//!
//! Each migration's statements wait for another session's lock at most the environment's
//! `ddl_lock_timeout_seconds`; a migration that gave up waiting, with nothing of it applied,
//! is tried again after a pause, `ddl_lock_retries` times. What a migration sets in the
//! session is reset before the next one.

use std::time::{Duration, Instant};

use chrono::Utc;

use super::approve::Approved;
use super::deploy::DeployPlan;
use super::trail::Changed;
use super::{Ctx, Event, Trail};
use crate::engine::{Database, Dialect, Leftover, ScriptError, Unfinished};
use crate::error::Error;
use crate::handler::Handler;
use crate::interrupt::{self, Interrupted, Partial};
use crate::migration::{Migration, MigrationSet, TxMode};
use crate::settings::DdlLock;
use crate::sql::split;

use super::failure::attempts;
pub use super::failure::{ApplyError, FailedScript, position};

/// Applies the approved migrations of `set`; `trail.changed` collects each success as it
/// happens.
///
/// # Errors
/// The first failing migration, or a database error writing the tracking table.
pub async fn run<D: Database>(
    cx: &Ctx<'_>,
    db: &mut D,
    handler: &dyn Handler,
    set: &MigrationSet,
    approved: &Approved<DeployPlan>,
    trail: &mut Trail,
) -> Result<(), Error> {
    let dialect = db.dialect();
    // A first deploy creates the tracking table in the first migration's transaction when it
    // has one, so that a first migration that fails leaves nothing behind; otherwise before
    // it, where the tool records the start of a migration.
    let mut create = if super::verify::tracking_table_exists(db, handler).await? {
        Vec::new()
    } else {
        handler.create_table(dialect)
    };
    db.prepare_migrations(cx.env.ddl_lock.timeout).await?;
    let migrations: Vec<&Migration> = approved
        .plan()
        .selected
        .iter()
        .map(|&i| &set.migrations[i])
        .collect();
    let applied = &mut trail.changed;
    let total = migrations.len();
    // Whether a commit of this run has not been waited for (see `relaxed` below).
    let mut unflushed = false;
    for (i, m) in migrations.iter().enumerate() {
        // Ctrl-C: the migration before this one finished; nothing after it starts.
        if interrupt::requested() {
            flush(db, unflushed).await;
            return Err(stopped(cx, applied.len(), total - applied.len(), None));
        }
        cx.reporter.event(Event::MigrationStarted { name: &m.name });
        let progress = crate::output::progress::activity(
            "apply",
            format!("{} still running", m.name),
            crate::engine::waiting_for,
        );
        let started = Instant::now();
        let atomic = db.transactional_ddl() && *m.transaction() == TxMode::Wrapped;
        // Every atomic migration but the run's last commits without waiting for its WAL flush
        // (PostgreSQL's `synchronous_commit = off`, for this transaction only). The last one
        // commits with the server's setting, and its flush covers every earlier commit: the
        // WAL is sequential. So a successful run leaves everything durable. If the server
        // crashes mid-run, the last few migrations reported as applied may be undone by its
        // recovery, each together with its tracking row, never one without the other, and the
        // next deploy applies them again. A run that stops early flushes explicitly.
        let relaxed = atomic && i + 1 < total;
        if !atomic {
            for stmt in std::mem::take(&mut create) {
                db.execute(&stmt).await?;
            }
        }
        let mut retry = Retry::new(cx, &m.name, cx.env.ddl_lock);
        let outcome = if atomic {
            loop {
                match apply_atomic(handler, db, m, relaxed, &create).await {
                    Err(f) if retry.again(&f.error, true).await => {}
                    done => break done,
                }
            }
        } else {
            apply_non_atomic(handler, db, m, &mut retry).await
        };
        if outcome.is_ok() {
            create.clear();
        }
        drop(progress);
        let duration = started.elapsed();
        match outcome {
            Ok(()) => {
                // A commit waited for (also the autocommits of a non-atomic migration) covers
                // every commit before it.
                unflushed = relaxed;
                cx.reporter.event(Event::MigrationApplied {
                    name: &m.name,
                    duration,
                    atomic,
                });
                applied.push(Changed {
                    name: m.name.clone(),
                    duration,
                    atomic,
                });
            }
            Err(mut failure) => {
                cx.reporter.event(Event::MigrationFailed {
                    name: &m.name,
                    duration,
                });
                // A dead connection is not the script's fault; tell which it was.
                let connection_lost = db.server_version().await.is_err();
                if !connection_lost {
                    flush(db, unflushed).await;
                }
                let commit_unknown = connection_lost && failure.at_commit;
                // Ctrl-C while a migration that gave up waiting for a lock paused before
                // trying again: nothing of it is applied.
                if failure.rolled_back
                    && failure.error.lock_wait.is_some()
                    && interrupt::requested()
                {
                    return Err(stopped(cx, applied.len(), total - applied.len(), None));
                }
                if let Some((ran, of)) = failure.interrupted {
                    let partial = Partial {
                        migration: m.name.clone(),
                        ran,
                        of,
                    };
                    let not_started = total - applied.len() - 1;
                    return Err(stopped(cx, applied.len(), not_started, Some(partial)));
                }
                let lock_attempts = failure.error.lock_wait.is_some().then_some(retry.attempts);
                retry.explain(&mut failure.error);
                // What stays of a file with its own transaction, or of one whose first
                // statement failed (nothing); otherwise its statements before the failure.
                let leftover = match (failure.rolled_back, failure.error.ran) {
                    (false, Some(ran)) if *m.transaction() == TxMode::OwnTransaction => {
                        Some((dialect, crate::engine::leftover(&m.sql, dialect, ran)))
                    }
                    // A failed CREATE INDEX CONCURRENTLY may leave an invalid index behind.
                    (false, Some(0))
                        if split::split(&m.sql, dialect).first().is_none_or(|s| {
                            split::non_transactional_reason(s.text, dialect).is_none()
                        }) =>
                    {
                        Some((dialect, Leftover::default()))
                    }
                    _ => None,
                };
                return Err(Box::new(ApplyError {
                    failed: FailedScript {
                        environment: cx.env.name.clone(),
                        migration: m.name.clone(),
                        path: m.path.clone(),
                        message: failure.error.message,
                        statement: failure.error.statement,
                        line: failure.error.line,
                    },
                    applied_before: applied.len(),
                    rolled_back: failure.rolled_back && !commit_unknown,
                    connection_lost,
                    commit_unknown,
                    rollback: None,
                    failure_recorded: handler.records_failures(),
                    leftover,
                    lock_attempts,
                })
                .into());
            }
        }
    }
    Ok(())
}

/// Ctrl-C stopped the run after `applied` migrations, `partial` part-way through the next.
fn stopped(cx: &Ctx<'_>, applied: usize, not_started: usize, partial: Option<Partial>) -> Error {
    Box::new(Interrupted {
        environment: cx.env.name.clone(),
        applied,
        not_started,
        partial,
        backup_id: None,
    })
    .into()
}

/// Waits until the commits of this run are durable, when one of them was not waited for.
async fn flush<D: Database>(db: &mut D, unflushed: bool) {
    if unflushed && let Err(e) = db.flush_commits().await {
        tracing::warn!("{e}");
    }
}

struct Failure {
    error: ScriptError,
    rolled_back: bool,
    /// Ctrl-C stopped a non-atomic migration after this many of its statements.
    interrupted: Option<(usize, usize)>,
    /// It failed at the commit (after which the server may have committed it).
    at_commit: bool,
}

impl Failure {
    fn rolled_back(message: String) -> Self {
        Self {
            error: ScriptError::whole(message),
            rolled_back: true,
            interrupted: None,
            at_commit: false,
        }
    }
}

/// Runs `m` and its tracking row in one transaction, creating the tracking table in it first
/// when `create` holds its statements.
async fn apply_atomic<D: Database>(
    handler: &dyn Handler,
    db: &mut D,
    m: &Migration,
    relaxed: bool,
    create: &[crate::engine::Stmt],
) -> Result<(), Failure> {
    let dialect = db.dialect();
    let started = Instant::now();
    let started_at = Utc::now();
    let result = async {
        // The tracking row is written after the script: inside the transaction nobody sees
        // the difference, and the committed rows are those the tool writes.
        db.begin_with_script(&m.sql, relaxed)
            .await
            .map_err(|error| Failure {
                error,
                rolled_back: true,
                interrupted: None,
                at_commit: false,
            })?;
        for stmt in create {
            db.execute(stmt)
                .await
                .map_err(|e| Failure::rolled_back(e.to_string()))?;
        }
        let rows = handler.record_applied(dialect, m, started_at, Utc::now(), started.elapsed());
        db.finish_migration(&rows).await.map_err(|e| match e {
            Unfinished::Record(e) => Failure::rolled_back(e.to_string()),
            Unfinished::Commit(e) => Failure {
                at_commit: true,
                ..Failure::rolled_back(e.to_string())
            },
        })
    }
    .await;
    if result.is_err() {
        // The original failure is what the user needs; a rollback error would only hide it.
        let _ = db.rollback_migration().await;
        reset(db).await;
    }
    result
}

/// Resets the session after a migration's script, so that what it set reaches neither the
/// next migration nor the tracking-table writes outside its transaction. A failure (a lost
/// connection) shows in what comes next.
async fn reset<D: Database>(db: &mut D) {
    if let Err(e) = db.reset_session().await {
        tracing::warn!("{e}");
    }
}

async fn apply_non_atomic<D: Database>(
    handler: &dyn Handler,
    db: &mut D,
    m: &Migration,
    retry: &mut Retry<'_>,
) -> Result<(), Failure> {
    let dialect = db.dialect();
    let started = Instant::now();
    let (row_id, start) = handler.record_started(dialect, m, Utc::now());
    for stmt in &start {
        // Nothing of the script has run yet, so nothing needs undoing.
        db.execute(stmt)
            .await
            .map_err(|e| Failure::rolled_back(e.to_string()))?;
    }
    let outcome = if *m.transaction() == TxMode::OwnTransaction {
        loop {
            match db.run_script(&m.sql).await {
                // Again only when nothing of the file stays applied: it runs from the start.
                Err(e) if retry.again(&e, nothing_stays(&m.sql, dialect, &e)).await => {
                    reset(db).await;
                }
                done => break done.map_err(Stop::Failed),
            }
        }
    } else {
        statements_until_stop(db, &m.sql, retry).await
    };
    reset(db).await;
    if let Err(stop) = outcome {
        let (error, interrupted) = match stop {
            Stop::Failed(error) => (error, None),
            Stop::Interrupted { ran, of } => (
                ScriptError {
                    statement: Some(ran),
                    ..ScriptError::whole(format!(
                        "interrupted by the operator (Ctrl-C) after statement {ran} of {of}"
                    ))
                },
                Some((ran, of)),
            ),
        };
        let logs = match interrupted {
            None => format!(
                "Migration name: {}\n\nDatabase error:\n{}{}\n",
                m.name,
                error.message,
                position(&error.statement, &error.line)
            ),
            Some((ran, of)) => format!(
                "Migration name: {}\n\nInterrupted by the operator (Ctrl-C) after statement {ran} of {of}: statements 1 to {ran} are applied, the rest are not.\n",
                m.name
            ),
        };
        for stmt in handler.record_failed(dialect, &row_id, &logs) {
            if let Err(e) = db.execute(&stmt).await {
                tracing::warn!("cannot record the failure in the tracking table: {e}");
            }
        }
        return Err(Failure {
            error,
            rolled_back: false,
            interrupted,
            at_commit: false,
        });
    }
    for stmt in handler.record_finished(dialect, &row_id, Utc::now(), started.elapsed()) {
        db.execute(&stmt).await.map_err(|e| Failure {
            error: ScriptError::whole(format!("the migration ran, but recording it failed: {e}")),
            rolled_back: false,
            interrupted: None,
            at_commit: false,
        })?;
    }
    Ok(())
}

/// Why a statement-by-statement run stopped.
enum Stop {
    /// A statement failed.
    Failed(ScriptError),
    /// Ctrl-C, between two statements.
    Interrupted { ran: usize, of: usize },
}

/// Runs a script statement by statement; a statement that gave up waiting for a lock had no
/// effect (each runs on its own) and is run again, as `retry` allows.
async fn statements_until_stop<D: Database>(
    db: &mut D,
    sql: &str,
    retry: &mut Retry<'_>,
) -> Result<(), Stop> {
    let statements = split::split(sql, db.dialect());
    let of = statements.len();
    for (i, stmt) in statements.iter().enumerate() {
        // A started migration runs at least one statement, then stops at the next boundary.
        if i > 0 && interrupt::requested() {
            return Err(Stop::Interrupted { ran: i, of });
        }
        loop {
            match db.run_script(stmt.text).await {
                Ok(()) => break,
                Err(e) if retry.again(&e, true).await => {}
                Err(e) => return Err(Stop::Failed(in_script(e, i, stmt))),
            }
        }
    }
    Ok(())
}

/// The error of statement `i` of a script, run on its own, as a failure of the script.
fn in_script(e: ScriptError, i: usize, stmt: &split::Statement<'_>) -> ScriptError {
    ScriptError {
        statement: Some(i + 1),
        line: Some(stmt.line + e.line.map_or(0, |l| l - 1)),
        ran: Some(i),
        ..e
    }
}

/// Whether nothing of a failed script that manages its own transaction stays applied.
fn nothing_stays(sql: &str, dialect: Dialect, e: &ScriptError) -> bool {
    e.ran.is_some_and(|ran| {
        crate::engine::leftover(sql, dialect, ran)
            .applied
            .is_empty()
    })
}

/// The first pause before a migration that gave up waiting for a lock is tried again; each
/// later pause doubles, up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_secs(1);

/// The longest pause between two attempts.
const MAX_PAUSE: Duration = Duration::from_secs(8);

/// The bounded attempts of one migration whose statements give up waiting for a lock.
struct Retry<'a> {
    cx: &'a Ctx<'a>,
    name: &'a str,
    policy: DdlLock,
    /// Attempts made so far.
    attempts: u32,
}

impl<'a> Retry<'a> {
    fn new(cx: &'a Ctx<'a>, name: &'a str, policy: DdlLock) -> Self {
        Self {
            cx,
            name,
            policy,
            attempts: 1,
        }
    }

    /// Whether to try again after `error`: it gave up waiting for a lock, trying again is
    /// `safe` (nothing of the attempt stays applied), attempts are left and nobody pressed
    /// Ctrl-C. Pauses first, saying so.
    async fn again(&mut self, error: &ScriptError, safe: bool) -> bool {
        if error.lock_wait.is_none()
            || !safe
            || self.attempts > self.policy.retries
            || interrupt::requested()
        {
            return false;
        }
        let pause = FIRST_PAUSE
            .saturating_mul(1 << (self.attempts - 1).min(16))
            .min(MAX_PAUSE);
        self.cx.reporter.event(Event::Warning(format!(
            "`{}` gave up waiting for a lock{}; trying again in {} s (attempt {} of {})",
            self.name,
            blocked_by(error),
            pause.as_secs(),
            self.attempts + 1,
            self.policy.retries + 1
        )));
        let until = Instant::now() + pause;
        while Instant::now() < until {
            if interrupt::requested() {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(100).min(until - Instant::now())).await;
        }
        self.attempts += 1;
        true
    }

    /// Says in the error of the last attempt how often and how long the migration waited,
    /// and for whom.
    fn explain(&self, error: &mut ScriptError) {
        if error.lock_wait.is_none() {
            return;
        }
        let each = match self.policy.timeout {
            Some(t) => format!("each waiting up to {} s", t.as_secs()),
            None => "with the migration's own lock timeout".into(),
        };
        let by = blocked_by(error);
        let by = if by.is_empty() {
            "; the session holding the lock could not be identified".into()
        } else {
            format!(";{by}")
        };
        error.message = format!(
            "{} ({}, {each}{by})",
            error.message,
            attempts(self.attempts)
        );
    }
}

/// ` held by pid 12 (...), pid 14 (...)`, or nothing when nobody was seen.
fn blocked_by(error: &ScriptError) -> String {
    match error.lock_wait.as_ref().map(|w| w.blockers.as_slice()) {
        Some(b) if !b.is_empty() => format!(" held by {}", b.join(", ")),
        _ => String::new(),
    }
}

/// Runs a script statement by statement, with the failing statement's number and line
/// (`down` scripts; Ctrl-C is not awaited between their statements).
///
/// # Errors
/// The first failing statement.
pub async fn run_statements<D: Database>(db: &mut D, sql: &str) -> Result<(), ScriptError> {
    for (i, stmt) in split::split(sql, db.dialect()).iter().enumerate() {
        db.run_script(stmt.text)
            .await
            .map_err(|e| in_script(e, i, stmt))?;
    }
    Ok(())
}
