//! SQLite through sqlx: an exclusive file lock for the whole run, and Prisma's table
//! redefinitions made safe.
//!
//! Prisma's SQLite scripts switch `PRAGMA foreign_keys` off around a table redefinition, but
//! that pragma is a no-op inside a transaction, so run naively inside one the `DROP TABLE`
//! would cascade-delete rows of referencing tables. Following SQLite's documented procedure,
//! enforcement is switched off *before* the transaction and `PRAGMA foreign_key_check` must
//! pass before it commits.

use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteQueryResult, SqliteRow};
use sqlx::{AssertSqlSafe, Connection, Row};

use super::script;
use super::statement::{self, Codec, Query};
use super::{
    ColKind, ConnectOptions, Database, DbError, Dialect, LockKey, LockWait, ScriptError, Stmt,
    Target, Value,
};
use crate::sql::split;

/// A SQLite connection.
pub struct Sqlite {
    conn: SqliteConnection,
    /// How long a statement waits for another connection's file lock.
    busy: Duration,
    /// Foreign-key enforcement was switched off for the current migration.
    fk_suspended: bool,
    /// The file to open at the deploy lock, when it did not exist at connect. Until a run
    /// takes the lock (after its approval) an empty in-memory database answers for it, so a
    /// run refused or cancelled before any change creates nothing; one that another process
    /// creates meanwhile is opened as it is, and the plan made again under the lock sees it.
    deferred: Option<Target>,
    /// The values of [`PRAGMAS`] migrations return to, once prepared for them.
    pragmas: Option<Vec<i64>>,
}

/// The connection's pragmas a migration may set that outlast it (name, result column),
/// saved when migrations start and set back after each migration that changed them.
/// `case_sensitive_like` cannot be read back, and `journal_mode` belongs to the file.
const PRAGMAS: &[(&str, &str)] = &[
    ("foreign_keys", "foreign_keys"),
    ("recursive_triggers", "recursive_triggers"),
    ("ignore_check_constraints", "ignore_check_constraints"),
    ("legacy_alter_table", "legacy_alter_table"),
    ("query_only", "query_only"),
    ("defer_foreign_keys", "defer_foreign_keys"),
    ("reverse_unordered_selects", "reverse_unordered_selects"),
    ("trusted_schema", "trusted_schema"),
    ("automatic_index", "automatic_index"),
    ("cell_size_check", "cell_size_check"),
    ("writable_schema", "writable_schema"),
    ("secure_delete", "secure_delete"),
    ("synchronous", "synchronous"),
    ("temp_store", "temp_store"),
    ("cache_size", "cache_size"),
    ("busy_timeout", "timeout"),
];

impl Codec for sqlx::Sqlite {
    fn bind(stmt: &Stmt) -> Query<Self> {
        // Prisma stores SQLite timestamps as epoch milliseconds.
        statement::bind(stmt, |q, t| q.bind(t.timestamp_millis()))
    }

    fn text(row: &SqliteRow, i: usize) -> Result<Option<String>, sqlx::Error> {
        row.try_get::<Option<String>, _>(i).or_else(|_| {
            row.try_get::<Option<i64>, _>(i)
                .map(|v| v.map(|v| v.to_string()))
        })
    }

    fn int(row: &SqliteRow, i: usize) -> Result<Option<i64>, sqlx::Error> {
        row.try_get(i)
    }

    fn bytes(row: &SqliteRow, i: usize) -> Result<Option<Vec<u8>>, sqlx::Error> {
        row.try_get(i)
    }

    fn rows_affected(result: &SqliteQueryResult) -> u64 {
        result.rows_affected()
    }
}

/// The file is locked by another connection (another deploy, or an application writing to
/// it): the statement waited the busy timeout. That is lock contention, with its own hints,
/// not a broken query.
fn locked_or_query(busy: Duration, context: impl Into<String>, err: &sqlx::Error) -> DbError {
    match err {
        sqlx::Error::Database(db) if db.message().contains("database is locked") => {
            DbError::LockTimeout {
                seconds: busy.as_secs(),
                holder: LOCK_HOLDER.into(),
            }
        }
        _ => DbError::query(context, err),
    }
}

/// Who holds a SQLite lock, as far as SQLite can tell.
const LOCK_HOLDER: &str = " (another process has the SQLite file open for writing)";

/// Whether a script asks for foreign keys to be off (Prisma's table redefinitions).
fn disables_foreign_keys(script: &str) -> bool {
    split::split(script, Dialect::Sqlite).iter().any(|s| {
        let n = split::normalized(s.text)
            .to_ascii_lowercase()
            .replace(' ', "");
        matches!(
            n.as_str(),
            "pragmaforeign_keys=off" | "pragmaforeign_keys=0" | "pragmaforeign_keys=false"
        )
    })
}

/// Scripts longer than this run in pieces of about this size.
const CHUNK: usize = 64 * 1024;

/// Cuts a long script at statement starts into pieces of about [`CHUNK`] bytes. SQLite copies
/// the whole rest of a script each time it prepares one statement of it, which made a 50 MB
/// migration take many minutes (quadratic); pieces keep that copy small. Short scripts, nearly
/// every migration, go to SQLite as they are.
fn chunks(sql: &str) -> Vec<&str> {
    if sql.len() <= CHUNK {
        return vec![sql];
    }
    let base = sql.as_ptr() as usize;
    let mut cuts = vec![0];
    for stmt in split::split(sql, Dialect::Sqlite) {
        let start = stmt.text.as_ptr() as usize - base;
        if start - cuts.last().copied().unwrap_or(0) >= CHUNK {
            cuts.push(start);
        }
    }
    cuts.push(sql.len());
    cuts.windows(2).map(|w| &sql[w[0]..w[1]]).collect()
}

impl Database for Sqlite {
    async fn connect(target: &Target, opts: ConnectOptions) -> Result<Self, DbError> {
        let Target::Sqlite { path } = target else {
            unreachable!("the engine is chosen from the target");
        };
        let busy = opts.lock_wait.max(Duration::from_secs(5));
        let missing = !path.exists();
        let conn = if missing {
            // An empty in-memory database answers the same questions (no tracking table,
            // everything pending) without creating the file: a dry run never does, and a
            // deploy only once it takes the lock.
            SqliteConnection::connect_with(&SqliteConnectOptions::new().in_memory(true))
                .await
                .map_err(|e| DbError::connect(target, &e))?
        } else {
            open_file(target, path, opts.read_only, busy).await?
        };
        Ok(Self {
            conn,
            busy,
            fk_suspended: false,
            deferred: (missing && !opts.read_only).then(|| target.clone()),
            pragmas: None,
        })
    }

    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    async fn server_version(&mut self) -> Result<String, DbError> {
        let v: String = sqlx::query_scalar("SELECT sqlite_version()")
            .fetch_one(&mut self.conn)
            .await
            .map_err(|e| locked_or_query(self.busy, "cannot read the SQLite version", &e))?;
        Ok(format!("SQLite {v}"))
    }

    async fn table_exists(&mut self, table: &str) -> Result<bool, DbError> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?",
        )
        .bind(table)
        .fetch_one(&mut self.conn)
        .await
        .map_err(|e| locked_or_query(self.busy, format!("cannot look up table {table}"), &e))?;
        Ok(n > 0)
    }

    async fn history_stamp(&mut self, _table: &str) -> Result<Option<String>, DbError> {
        // `data_version` changes when another connection commits to the file, but not with this
        // connection's own writes: those show in its count of changed rows and, for DDL such as
        // a reset's drops, in the schema cookie.
        let (data, schema, own): (i64, i64, i64) = sqlx::query_as(
            "SELECT (SELECT data_version FROM pragma_data_version), \
                    (SELECT schema_version FROM pragma_schema_version), total_changes()",
        )
        .fetch_one(&mut self.conn)
        .await
        .map_err(|e| locked_or_query(self.busy, "cannot read the data version", &e))?;
        Ok(Some(format!("{data}:{schema}:{own}")))
    }

    async fn list_tables(&mut self, limit: Option<usize>) -> Result<Vec<String>, DbError> {
        let limit = limit.map_or(-1, |n| i64::try_from(n).unwrap_or(i64::MAX));
        sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY 1 LIMIT ?",
        )
        .bind(limit)
        .fetch_all(&mut self.conn)
        .await
        .map_err(|e| locked_or_query(self.busy, "cannot list tables", &e))
    }

    async fn fetch(&mut self, stmt: &Stmt, cols: &[ColKind]) -> Result<Vec<Vec<Value>>, DbError> {
        let busy = self.busy;
        statement::fetch(&mut self.conn, stmt, cols, &|c, e| {
            locked_or_query(busy, c, e)
        })
        .await
    }

    async fn execute(&mut self, stmt: &Stmt) -> Result<u64, DbError> {
        let busy = self.busy;
        statement::execute(&mut self.conn, stmt, &|c, e| locked_or_query(busy, c, e)).await
    }

    async fn run_script(&mut self, sql: &str) -> Result<(), ScriptError> {
        let mut ran = 0;
        for chunk in chunks(sql) {
            match script::run_counting(&mut self.conn, chunk.to_owned()).await {
                Ok(n) => ran += n,
                Err((n, e)) => {
                    ran += n;
                    script::roll_back_own(&mut self.conn, sql, Dialect::Sqlite, false).await;
                    let place = script::locate(sql, Dialect::Sqlite, ran, None);
                    let busy = matches!(&e, sqlx::Error::Database(db) if db.message().contains("database is locked"));
                    return Err(ScriptError::at(
                        &e,
                        place,
                        ran,
                        busy.then(LockWait::default),
                    ));
                }
            }
        }
        Ok(())
    }

    async fn prepare_migrations(&mut self, _lock_wait: Option<Duration>) -> Result<(), DbError> {
        self.pragmas = Some(self.read_pragmas().await?);
        Ok(())
    }

    async fn reset_session(&mut self) -> Result<(), DbError> {
        let Some(saved) = self.pragmas.clone() else {
            return Ok(());
        };
        let now = self.read_pragmas().await?;
        let mut script = String::new();
        for (((name, _), was), is) in PRAGMAS.iter().zip(&saved).zip(&now) {
            if was != is {
                script.push_str(&format!("PRAGMA {name} = {was};"));
            }
        }
        script::run_own(&mut self.conn, script)
            .await
            .map_err(|e| locked_or_query(self.busy, "cannot reset the connection's pragmas", &e))
    }

    fn transactional_ddl(&self) -> bool {
        true
    }

    async fn begin_migration(&mut self, script: &str) -> Result<(), DbError> {
        if disables_foreign_keys(script) {
            self.execute(&Stmt::raw("PRAGMA foreign_keys = OFF"))
                .await?;
            self.fk_suspended = true;
        }
        self.execute(&Stmt::raw("BEGIN")).await.map(drop)
    }

    async fn commit_migration(&mut self) -> Result<(), DbError> {
        if self.fk_suspended {
            let violations: Vec<(String, Option<i64>, String)> = sqlx::query_as(
                "SELECT \"table\", rowid, parent FROM pragma_foreign_key_check LIMIT 5",
            )
            .fetch_all(&mut self.conn)
            .await
            .map_err(|e| locked_or_query(self.busy, "cannot check foreign keys", &e))?;
            if !violations.is_empty() {
                let list: Vec<String> = violations
                    .iter()
                    .map(|(t, rowid, parent)| {
                        format!(
                            "{t} row {} references a missing {parent} row",
                            rowid.unwrap_or(-1)
                        )
                    })
                    .collect();
                return Err(DbError::Query {
                    context: "the migration breaks foreign keys".into(),
                    message: list.join("; "),
                    source: None,
                });
            }
        }
        self.execute(&Stmt::raw("COMMIT")).await?;
        self.restore_foreign_keys().await
    }

    async fn rollback_migration(&mut self) -> Result<(), DbError> {
        let result = self.execute(&Stmt::raw("ROLLBACK")).await.map(drop);
        self.restore_foreign_keys().await?;
        result
    }

    async fn open_for_changes(&mut self) -> Result<(), DbError> {
        let Some(target) = self.deferred.take() else {
            return Ok(());
        };
        let Target::Sqlite { path } = &target else {
            unreachable!("a SQLite session stands in for a SQLite file");
        };
        let file = open_file(&target, path, false, self.busy).await?;
        let memory = std::mem::replace(&mut self.conn, file);
        let _ = memory.close().await;
        Ok(())
    }

    async fn lock(&mut self, _key: &LockKey, timeout: Duration) -> Result<(), DbError> {
        self.open_for_changes().await?;
        // In exclusive locking mode SQLite never releases a file lock once taken, so an
        // exclusive transaction holds the write lock until this connection closes. A failed
        // attempt keeps its shared lock in that mode, which would starve the deploy that got
        // further; so each failed attempt returns to normal mode, drops its locks and waits.
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let attempt = sqlx::raw_sql(
                "PRAGMA busy_timeout = 250; PRAGMA locking_mode = EXCLUSIVE; BEGIN EXCLUSIVE; COMMIT;",
            )
            .execute(&mut self.conn)
            .await;
            match attempt {
                Ok(_) => return Ok(()),
                Err(sqlx::Error::Database(db)) if db.message().contains("locked") => {
                    // No transaction may be open (then ROLLBACK fails); either way, drop locks.
                    let _ = sqlx::raw_sql("ROLLBACK").execute(&mut self.conn).await;
                    let _ = sqlx::raw_sql(
                        "PRAGMA locking_mode = NORMAL; SELECT 1 FROM sqlite_master LIMIT 1;",
                    )
                    .execute(&mut self.conn)
                    .await;
                    if std::time::Instant::now() >= deadline {
                        return Err(DbError::LockTimeout {
                            seconds: timeout.as_secs(),
                            holder: LOCK_HOLDER.into(),
                        });
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => {
                    return Err(locked_or_query(
                        self.busy,
                        "cannot take the deploy lock",
                        &e,
                    ));
                }
            }
        }
    }

    async fn unlock(&mut self, _key: &LockKey) -> Result<(), DbError> {
        // Back to normal mode; the lock is dropped at the next access, or when the file closes.
        sqlx::raw_sql("PRAGMA locking_mode = NORMAL; SELECT 1 FROM sqlite_master LIMIT 1;")
            .execute(&mut self.conn)
            .await
            .map(drop)
            .map_err(|e| locked_or_query(self.busy, "cannot release the deploy lock", &e))
    }

    async fn reset(&mut self) -> Result<(), DbError> {
        let objects: Vec<(String, String)> = sqlx::query_as(
            "SELECT type, name FROM sqlite_master \
             WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite_%'",
        )
        .fetch_all(&mut self.conn)
        .await
        .map_err(|e| locked_or_query(self.busy, "cannot list schema objects", &e))?;
        let mut script = String::from("PRAGMA foreign_keys = OFF;");
        for (kind, name) in &objects {
            let kind = if kind == "view" { "VIEW" } else { "TABLE" };
            script.push_str(&format!(
                "DROP {kind} IF EXISTS {};",
                Dialect::Sqlite.quote_ident(name)
            ));
        }
        script.push_str("PRAGMA foreign_keys = ON;");
        sqlx::raw_sql(AssertSqlSafe(script))
            .execute(&mut self.conn)
            .await
            .map(drop)
            .map_err(|e| locked_or_query(self.busy, "cannot reset the database", &e))
    }

    async fn close(self) {
        let _ = self.conn.close().await;
    }
}

/// Opens the database file of `target`, read-only or creating it (and its folder) when missing.
async fn open_file(
    target: &Target,
    path: &std::path::Path,
    read_only: bool,
    busy: Duration,
) -> Result<SqliteConnection, DbError> {
    if !read_only && let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| DbError::Connect {
            target: target.describe(),
            message: format!("cannot create directory {}: {e}", parent.display()),
            source: None,
        })?;
    }
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(!read_only)
        .read_only(read_only)
        .busy_timeout(busy);
    SqliteConnection::connect_with(&options)
        .await
        .map_err(|e| DbError::connect(target, &e))
}

impl Sqlite {
    /// The values of [`PRAGMAS`], in order.
    async fn read_pragmas(&mut self) -> Result<Vec<i64>, DbError> {
        let columns: Vec<String> = PRAGMAS
            .iter()
            .map(|(name, column)| format!("(SELECT {column} FROM pragma_{name})"))
            .collect();
        let row = sqlx::raw_sql(AssertSqlSafe(format!("SELECT {}", columns.join(", "))))
            .fetch_one(&mut self.conn)
            .await
            .map_err(|e| locked_or_query(self.busy, "cannot read the connection's pragmas", &e))?;
        (0..PRAGMAS.len())
            .map(|i| row.try_get::<i64, _>(i))
            .collect::<Result<_, _>>()
            .map_err(|e| DbError::query("cannot read the connection's pragmas", &e))
    }

    async fn restore_foreign_keys(&mut self) -> Result<(), DbError> {
        if std::mem::take(&mut self.fk_suspended) {
            self.execute(&Stmt::raw("PRAGMA foreign_keys = ON")).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_scripts_are_cut_at_statement_starts_and_keep_every_byte() {
        let stmt = format!("INSERT INTO t VALUES ('{}; x');\n-- c;\n", "a".repeat(1000));
        let script = stmt.repeat(200);
        let pieces = chunks(&script);
        assert!(pieces.len() > 2, "{}", pieces.len());
        assert_eq!(pieces.concat(), script);
        for p in &pieces {
            assert!(p.starts_with("INSERT"), "{}", &p[..20]);
            assert!(p.len() < CHUNK + 2 * stmt.len());
        }
        assert_eq!(chunks("SELECT 1; SELECT 2"), ["SELECT 1; SELECT 2"]);
    }
}
