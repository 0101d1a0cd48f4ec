//! Naming the sessions that kept a migration's statement waiting for a lock, so that the
//! error after the bounded wait says whom to look at.
//!
//! PostgreSQL's `pg_blocking_pids` answers only while the statement waits, so a second
//! session watches a statement that is still running after a moment. MySQL and MariaDB have
//! no such function everywhere; after the wait, the sessions holding metadata locks on this
//! database (`performance_schema`, MySQL 8) or else those with an open InnoDB transaction are
//! the ones that can block a schema change.

use std::time::Duration;

use sqlx::Row;
use sqlx::mysql::MySqlConnection;
use sqlx::postgres::PgConnection;

use super::connect::{self, Session};
use super::{ConnectOptions, Target};

/// A statement still running after this long is watched.
const WATCH_AFTER: Duration = Duration::from_millis(300);

/// How often the watching session looks.
const POLL_EVERY: Duration = Duration::from_millis(200);

/// The sessions the watched statement waits for now, for the progress line of a long
/// migration (the watch runs in the deploy's task, the progress line in its own thread).
static WAITING_FOR: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// The sessions a running migration statement waits for now (PostgreSQL; empty elsewhere).
#[must_use]
pub fn waiting_for() -> Vec<String> {
    WAITING_FOR.lock().map(|w| w.clone()).unwrap_or_default()
}

fn publish(now: &[String]) {
    if let Ok(mut w) = WAITING_FOR.lock() {
        now.clone_into(&mut w);
    }
}

/// A second PostgreSQL session that looks at what blocks the migration session.
pub(super) struct PgWatch {
    target: Target,
    session: &'static Session<PgConnection>,
    /// The migration session's backend pid.
    pid: i32,
    /// Opened the first time a statement is watched; `None` after a failed attempt too.
    side: Option<PgConnection>,
    tried: bool,
}

impl PgWatch {
    /// A watch over the session with backend `pid`, opening sessions like `session` does.
    pub(super) fn new(target: Target, session: &'static Session<PgConnection>, pid: i32) -> Self {
        Self {
            target,
            session,
            pid,
            side: None,
            tried: false,
        }
    }

    /// Runs `work`; while it runs past [`WATCH_AFTER`], notes which sessions block the watched
    /// one. Returns its output and the last blockers seen.
    pub(super) async fn during<T>(&mut self, work: impl Future<Output = T>) -> (T, Vec<String>) {
        tokio::pin!(work);
        tokio::select! {
            out = &mut work => return (out, Vec::new()),
            () = tokio::time::sleep(WATCH_AFTER) => {}
        }
        let mut seen = Vec::new();
        loop {
            let now = self.blockers().await;
            publish(&now);
            if !now.is_empty() {
                seen = now;
            }
            tokio::select! {
                out = &mut work => {
                    publish(&[]);
                    return (out, seen);
                }
                () = tokio::time::sleep(POLL_EVERY) => {}
            }
        }
    }

    async fn blockers(&mut self) -> Vec<String> {
        if !std::mem::replace(&mut self.tried, true) {
            let opts = ConnectOptions {
                wait: Duration::ZERO,
                read_only: true,
                lock_wait: Duration::ZERO,
            };
            self.side = connect::open(&self.target, opts, self.session).await.ok();
        }
        let Some(side) = self.side.as_mut() else {
            return Vec::new();
        };
        let rows = sqlx::query(
            "SELECT a.pid, COALESCE(a.application_name, ''), COALESCE(a.usename::text, ''), \
             COALESCE(a.state, ''), \
             COALESCE(to_char(a.query_start, 'YYYY-MM-DD HH24:MI:SS TZ'), '') \
             FROM pg_stat_activity a WHERE a.pid = ANY (pg_blocking_pids($1)) ORDER BY a.pid",
        )
        .bind(self.pid)
        .fetch_all(&mut *side)
        .await
        .unwrap_or_default();
        rows.iter()
            .map(|r| {
                let text = |i: usize| r.try_get::<String, _>(i).unwrap_or_default();
                let or =
                    |s: String, unknown: &str| if s.is_empty() { unknown.to_owned() } else { s };
                format!(
                    "pid {} (application {}, user {}, state {}, query started {})",
                    r.try_get::<i32, _>(0).unwrap_or_default(),
                    or(text(1), "unnamed"),
                    or(text(2), "?"),
                    or(text(3), "not visible to this user"),
                    or(text(4), "?"),
                )
            })
            .collect()
    }

    /// Closes the watching session.
    pub(super) async fn close(self) {
        if let Some(side) = self.side {
            let _ = sqlx::Connection::close(side).await;
        }
    }
}

/// The sessions that can block a schema change on this MySQL/MariaDB database: those holding
/// metadata locks on its tables, or else those with an open InnoDB transaction (reading
/// either needs the PROCESS privilege or `performance_schema`; without them, nobody).
pub(super) async fn mysql(conn: &mut MySqlConnection) -> Vec<String> {
    const HOLDERS: &str = "SELECT DISTINCT CAST(t.PROCESSLIST_ID AS SIGNED), \
        CAST(COALESCE(t.PROCESSLIST_USER, '') AS CHAR), CAST(COALESCE(t.PROCESSLIST_HOST, '') AS CHAR), \
        CAST(COALESCE(t.PROCESSLIST_COMMAND, '') AS CHAR), CAST(COALESCE(t.PROCESSLIST_TIME, 0) AS SIGNED), \
        CAST('' AS CHAR) \
        FROM performance_schema.metadata_locks m \
        JOIN performance_schema.threads t ON t.THREAD_ID = m.OWNER_THREAD_ID \
        WHERE m.OBJECT_TYPE = 'TABLE' AND m.OBJECT_SCHEMA = DATABASE() AND m.LOCK_STATUS = 'GRANTED' \
        AND t.PROCESSLIST_ID <> CONNECTION_ID() LIMIT 5";
    const TRANSACTIONS: &str = "SELECT CAST(p.ID AS SIGNED), CAST(p.USER AS CHAR), \
        CAST(p.HOST AS CHAR), CAST(p.COMMAND AS CHAR), CAST(p.TIME AS SIGNED), \
        CAST(t.trx_started AS CHAR) \
        FROM information_schema.INNODB_TRX t \
        JOIN information_schema.PROCESSLIST p ON p.ID = t.trx_mysql_thread_id \
        WHERE p.ID <> CONNECTION_ID() ORDER BY t.trx_started LIMIT 5";
    for sql in [HOLDERS, TRANSACTIONS] {
        let Ok(rows) = sqlx::query(sql).fetch_all(&mut *conn).await else {
            continue;
        };
        if rows.is_empty() {
            continue;
        }
        return rows
            .iter()
            .map(|r| {
                let text = |i: usize| r.try_get::<String, _>(i).unwrap_or_default();
                let since = text(5);
                let open = if since.is_empty() {
                    String::new()
                } else {
                    format!(", transaction open since {since}")
                };
                format!(
                    "connection {} (user {}@{}, {} for {} s{open})",
                    r.try_get::<i64, _>(0).unwrap_or_default(),
                    text(1),
                    text(2),
                    text(3),
                    r.try_get::<i64, _>(4).unwrap_or_default(),
                )
            })
            .collect();
    }
    Vec::new()
}
