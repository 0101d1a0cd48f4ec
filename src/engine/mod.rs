//! The engine layer: one implementation of [`Database`] per server family, over sqlx.
//!
//! Everything that does database I/O lives behind this trait; formats (`handler/`) only
//! describe their tracking table as SQL text plus bound [`Value`]s. Engine quirks stay here:
//! advisory-lock flavours, read-only sessions, SQLite's foreign-key pragma dance. What every
//! engine does alike is written once: running a [`Stmt`] (`statement`), opening a server
//! session (`connect`), errors that keep the driver's cause ([`DbError`]), a refused privilege
//! told from other errors (`privilege`), where a script failed and what it left (`script`),
//! and who held a lock a migration gave up waiting for (`blockers`).

mod blockers;
mod connect;
pub mod create;
pub mod distributed;
mod error;
mod literal;
pub mod mysql;
pub mod postgres;
mod privilege;
mod script;
pub mod sqlite;
mod statement;
mod target;

use std::time::Duration;

pub use crate::sql::dialect::Dialect;
pub use blockers::waiting_for;
pub use error::{Cause, DbError, LockWait, ScriptError, Unfinished, driver_message};
pub use script::{Leftover, leftover};
pub use target::Target;

/// A value bound to a statement, or read back from a row.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// Text.
    Text(String),
    /// A 64-bit integer.
    Int(i64),
    /// A boolean.
    Bool(bool),
    /// Raw bytes.
    Bytes(Vec<u8>),
    /// A point in time, stored the engine's native way (SQLite: epoch milliseconds, as Prisma does).
    Timestamp(chrono::DateTime<chrono::Utc>),
}

impl Value {
    /// The text, when this is text.
    #[must_use]
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Value::Text(s) => Some(s),
            _ => None,
        }
    }

    /// The integer, when this is one.
    #[must_use]
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            Value::Bool(b) => Some(i64::from(*b)),
            _ => None,
        }
    }
}

/// How to decode one column of a result row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColKind {
    /// Nullable text.
    Text,
    /// Nullable integer (booleans and `SMALLINT`/`INT` widen to it).
    Int,
    /// Nullable bytes.
    Bytes,
}

/// One SQL statement with its bound values.
#[derive(Debug, Clone, PartialEq)]
pub struct Stmt {
    /// The SQL text, with the dialect's placeholders.
    pub sql: String,
    /// Values for the placeholders, in order.
    pub args: Vec<Value>,
}

impl Stmt {
    /// A statement without parameters.
    #[must_use]
    pub fn raw(sql: impl Into<String>) -> Self {
        Self {
            sql: sql.into(),
            args: Vec::new(),
        }
    }

    /// A statement with parameters.
    #[must_use]
    pub fn new(sql: impl Into<String>, args: Vec<Value>) -> Self {
        Self {
            sql: sql.into(),
            args,
        }
    }
}

/// The lock that keeps two deploys of the same database apart; ids are the authoring tool's own
/// so that dbdeploy and the tool exclude each other too.
#[derive(Debug, Clone)]
pub struct LockKey {
    /// PostgreSQL advisory lock id.
    pub postgres: i64,
    /// MySQL `GET_LOCK` name.
    pub mysql: String,
}

/// What identifies the database a deploy runs against, for tools whose lock id is derived from
/// it (sqlx hashes the database name; golang-migrate the database, schema and table names).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LockScope {
    /// The database name (`current_database()`, `DATABASE()`; `main` on SQLite).
    pub database: String,
    /// The current schema, where the engine has schemas (PostgreSQL).
    pub schema: Option<String>,
}

/// Takes every lock in `keys`, in order, sharing one `timeout`; on failure, releases the ones
/// already taken. Keys that are the same lock on this engine are taken once.
///
/// # Errors
/// A lock timeout or a database error, after releasing what was taken.
pub async fn lock_all<D: Database>(
    db: &mut D,
    keys: &[LockKey],
    timeout: Duration,
) -> Result<Vec<LockKey>, DbError> {
    let dialect = db.dialect();
    let mut distinct: Vec<LockKey> = Vec::new();
    for key in keys {
        let same = |k: &LockKey| match dialect {
            Dialect::Postgres => k.postgres == key.postgres,
            Dialect::MySql => k.mysql == key.mysql,
            Dialect::Sqlite => true,
        };
        if !distinct.iter().any(same) {
            distinct.push(key.clone());
        }
    }
    let deadline = std::time::Instant::now() + timeout;
    let mut taken = Vec::new();
    for key in distinct {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if let Err(e) = db.lock(&key, left).await {
            unlock_all(db, &taken).await;
            // The wait the user configured, not what was left of it for this key.
            return Err(match e {
                DbError::LockTimeout { holder, .. } => DbError::LockTimeout {
                    seconds: timeout.as_secs(),
                    holder,
                },
                other => other,
            });
        }
        taken.push(key);
    }
    Ok(taken)
}

/// Releases locks taken by [`lock_all`], last first; returns the errors as warnings.
pub async fn unlock_all<D: Database>(db: &mut D, keys: &[LockKey]) -> Vec<String> {
    let mut warnings = Vec::new();
    for key in keys.iter().rev() {
        if let Err(e) = db.unlock(key).await {
            warnings.push(e.to_string());
        }
    }
    warnings
}

/// Options that shape a connection.
#[derive(Debug, Clone, Copy)]
pub struct ConnectOptions {
    /// Keep retrying refused connections this long.
    pub wait: Duration,
    /// Open the session read-only (dry runs) and never create anything.
    pub read_only: bool,
    /// How long a statement may wait for another deploy's lock (SQLite's busy timeout: its
    /// file lock also blocks the reads of the pre-lock health check).
    pub lock_wait: Duration,
}

/// The operations dbdeploy needs from a database server. One connection, held for the whole run,
/// so that session-level locks and settings stay in force.
#[allow(async_fn_in_trait)]
pub trait Database: Sized {
    /// Opens the connection, retrying refused connections for `opts.wait`.
    async fn connect(target: &Target, opts: ConnectOptions) -> Result<Self, DbError>;
    /// The dialect for SQL generation.
    fn dialect(&self) -> Dialect;
    /// The server's version string.
    async fn server_version(&mut self) -> Result<String, DbError>;
    /// Whether a table exists in the connection's current schema.
    async fn table_exists(&mut self, table: &str) -> Result<bool, DbError>;
    /// A value that changes whenever a row of `table` (of the current schema) is written by
    /// another session, read before the rows so that a read under the deploy lock can be
    /// skipped when nothing changed since; `None` where the engine has no cheap, sound one
    /// (the rows are then read again).
    async fn history_stamp(&mut self, table: &str) -> Result<Option<String>, DbError> {
        let _ = table;
        Ok(None)
    }
    /// Whether `table` exists in `schema`, or in the connection's current schema when `None`.
    /// Only PostgreSQL has schemas apart from databases here; the default reads
    /// `information_schema`, which SQLite lacks, so SQLite never gets a schema.
    async fn table_exists_in(
        &mut self,
        schema: Option<&str>,
        table: &str,
    ) -> Result<bool, DbError> {
        let Some(schema) = schema else {
            return self.table_exists(table).await;
        };
        let d = self.dialect();
        let stmt = Stmt::new(
            format!(
                "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = {} AND table_name = {}",
                d.placeholder(1),
                d.placeholder(2)
            ),
            vec![
                Value::Text(schema.to_owned()),
                Value::Text(table.to_owned()),
            ],
        );
        let rows = self.fetch(&stmt, &[ColKind::Int]).await?;
        Ok(rows
            .first()
            .and_then(|r| r.first())
            .and_then(Value::as_int)
            .is_some_and(|n| n > 0))
    }
    /// The user tables of the current schema, all of them by name, or the first `limit` (in no
    /// particular order where ordering would cost the server more than listing).
    async fn list_tables(&mut self, limit: Option<usize>) -> Result<Vec<String>, DbError>;
    /// The user tables of the current schema (for the "schema not empty" check and resets).
    async fn user_tables(&mut self) -> Result<Vec<String>, DbError> {
        self.list_tables(None).await
    }
    /// The first `limit` user tables of the current schema by name, as [`Database::user_tables`]
    /// lists them: for checks that only need to know whether there are any and name a few.
    async fn some_user_tables(&mut self, limit: usize) -> Result<Vec<String>, DbError> {
        self.list_tables(Some(limit)).await
    }
    /// Runs a query and decodes every row by `cols`.
    async fn fetch(&mut self, stmt: &Stmt, cols: &[ColKind]) -> Result<Vec<Vec<Value>>, DbError>;
    /// Runs a statement; returns the affected row count.
    async fn execute(&mut self, stmt: &Stmt) -> Result<u64, DbError>;
    /// Runs a script of one or more statements as the server's own multi-statement text; a
    /// failure says which statement failed, and how many completed before it.
    async fn run_script(&mut self, sql: &str) -> Result<(), ScriptError>;
    /// Prepares the session for applying migrations: each statement waits at most `lock_wait`
    /// for a lock another session holds (`None`: no limit), and the session's state as it is
    /// now is what [`Database::reset_session`] returns to. SQLite has nothing to set: the
    /// deploy lock is the whole file's, and its busy timeout is bounded already.
    async fn prepare_migrations(&mut self, lock_wait: Option<Duration>) -> Result<(), DbError>;
    /// Undoes what a migration changed in the session — settings, the current schema or
    /// database, temporary tables where the engine can drop them — so that it cannot reach
    /// the next migration or dbdeploy's own statements; dbdeploy's own settings stay.
    async fn reset_session(&mut self) -> Result<(), DbError>;
    /// Whether DDL is transactional (false on MySQL, where DDL commits implicitly).
    fn transactional_ddl(&self) -> bool;
    /// Starts the transaction that wraps one migration and its tracking-table write.
    async fn begin_migration(&mut self, script: &str) -> Result<(), DbError> {
        let _ = script;
        self.execute(&Stmt::raw("BEGIN")).await.map(drop)
    }
    /// Starts that transaction and runs `script` in it (nothing for a script of comments only).
    /// `relaxed`: the commit need not wait until it is on disk, because a later commit of this
    /// run will (see the transaction policy in `pipeline/apply.rs`); engines without such a
    /// setting ignore it. A failure to begin is reported like a failed script, without a line.
    async fn begin_with_script(&mut self, script: &str, relaxed: bool) -> Result<(), ScriptError> {
        let _ = relaxed;
        self.begin_migration(script)
            .await
            .map_err(|e| ScriptError::whole(e.to_string()))?;
        if crate::sql::split::is_empty_script(script) {
            return Ok(());
        }
        self.run_script(script).await
    }
    /// Makes every commit of this session durable, after commits made with `relaxed` when a
    /// run stops before the commit that would have done so.
    async fn flush_commits(&mut self) -> Result<(), DbError> {
        Ok(())
    }
    /// Commits that transaction after the engine's own consistency checks.
    async fn commit_migration(&mut self) -> Result<(), DbError> {
        self.execute(&Stmt::raw("COMMIT")).await.map(drop)
    }
    /// Rolls that transaction back (also after a failed commit).
    async fn rollback_migration(&mut self) -> Result<(), DbError> {
        self.execute(&Stmt::raw("ROLLBACK")).await.map(drop)
    }
    /// Ends an atomic migration that ran: writes its tracking `rows` in its transaction,
    /// commits, and resets the session (see [`Database::reset_session`]; a failed reset after
    /// the commit is only logged, and shows in what comes next). After an error the
    /// transaction is still to be rolled back by the caller.
    async fn finish_migration(&mut self, rows: &[Stmt]) -> Result<(), Unfinished> {
        finish_each(self, rows).await
    }
    /// The column names of a table of the current schema, lowercase, in table order.
    async fn table_columns(&mut self, table: &str) -> Result<Vec<String>, DbError> {
        let sql = match self.dialect() {
            Dialect::Postgres => {
                "SELECT column_name::text FROM information_schema.columns \
                 WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position"
            }
            Dialect::MySql => {
                "SELECT CAST(column_name AS CHAR) FROM information_schema.columns \
                 WHERE table_schema = DATABASE() AND table_name = ? ORDER BY ordinal_position"
            }
            Dialect::Sqlite => "SELECT name FROM pragma_table_info(?) ORDER BY cid",
        };
        let rows = self
            .fetch(
                &Stmt::new(sql, vec![Value::Text(table.to_owned())]),
                &[ColKind::Text],
            )
            .await?;
        Ok(rows
            .into_iter()
            .filter_map(|r| r.into_iter().next()?.as_text().map(str::to_ascii_lowercase))
            .collect())
    }
    /// The names lock ids may be derived from.
    async fn lock_scope(&mut self) -> Result<LockScope, DbError> {
        let (sql, cols) = match self.dialect() {
            Dialect::Postgres => (
                "SELECT current_database()::text, current_schema()::text",
                &[ColKind::Text, ColKind::Text][..],
            ),
            Dialect::MySql => ("SELECT CAST(DATABASE() AS CHAR)", &[ColKind::Text][..]),
            Dialect::Sqlite => {
                return Ok(LockScope {
                    database: "main".into(),
                    schema: None,
                });
            }
        };
        let row = self
            .fetch(&Stmt::raw(sql), cols)
            .await?
            .into_iter()
            .next()
            .unwrap_or_default();
        let text = |i: usize| row.get(i).and_then(Value::as_text).map(str::to_owned);
        Ok(LockScope {
            database: text(0).unwrap_or_default(),
            schema: text(1),
        })
    }
    /// The run is about to change the database, under its deploy lock: a session that stood
    /// in for a database not created yet (a SQLite file missing at connect) opens it now,
    /// creating it. Taking the deploy lock does this too.
    async fn open_for_changes(&mut self) -> Result<(), DbError> {
        Ok(())
    }
    /// Takes the deploy lock, waiting up to `timeout`; held until `unlock` or disconnect.
    async fn lock(&mut self, key: &LockKey, timeout: Duration) -> Result<(), DbError>;
    /// Releases the deploy lock.
    async fn unlock(&mut self, key: &LockKey) -> Result<(), DbError>;
    /// Drops every object of the current schema (dev-mode reset, after confirmation).
    async fn reset(&mut self) -> Result<(), DbError>;
    /// Closes the connection cleanly.
    async fn close(self);
}

/// [`Database::finish_migration`] one statement at a time.
async fn finish_each<D: Database>(db: &mut D, rows: &[Stmt]) -> Result<(), Unfinished> {
    for stmt in rows {
        db.execute(stmt).await.map_err(Unfinished::Record)?;
    }
    db.commit_migration().await.map_err(Unfinished::Commit)?;
    if let Err(e) = db.reset_session().await {
        tracing::warn!("{e}");
    }
    Ok(())
}
