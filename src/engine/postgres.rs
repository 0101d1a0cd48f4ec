//! PostgreSQL through sqlx: advisory locks, read-only sessions, error positions.

use std::time::{Duration, Instant};

use sqlx::postgres::{PgConnection, PgQueryResult, PgRow};
use sqlx::{AssertSqlSafe, Connection, Row};

use crate::sql::split;

use super::connect::{self, Session};
use super::statement::{self, Codec, Query};
use super::{
    ColKind, ConnectOptions, Database, DbError, Dialect, LockKey, ScriptError, Stmt, Target, Value,
};

/// A PostgreSQL session.
pub struct Postgres {
    conn: PgConnection,
}

impl Codec for sqlx::Postgres {
    fn bind(stmt: &Stmt) -> Query<Self> {
        statement::bind(stmt, |q, t| q.bind(t))
    }

    fn text(row: &PgRow, i: usize) -> Result<Option<String>, sqlx::Error> {
        row.try_get(i)
    }

    fn int(row: &PgRow, i: usize) -> Result<Option<i64>, sqlx::Error> {
        row.try_get::<Option<i64>, _>(i)
            .or_else(|_| row.try_get::<Option<i32>, _>(i).map(|v| v.map(i64::from)))
            .or_else(|_| row.try_get::<Option<i16>, _>(i).map(|v| v.map(i64::from)))
            .or_else(|_| row.try_get::<Option<bool>, _>(i).map(|v| v.map(i64::from)))
    }

    fn bytes(row: &PgRow, i: usize) -> Result<Option<Vec<u8>>, sqlx::Error> {
        row.try_get(i)
    }

    fn rows_affected(result: &PgQueryResult) -> u64 {
        result.rows_affected()
    }
}

/// Whether a connection error is worth retrying: the server is starting, or not listening yet.
fn retryable(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Io(_) => true,
        sqlx::Error::Database(db) => db.code().as_deref() == Some("57P03"),
        _ => false,
    }
}

/// How sessions open.
const SESSION: Session<PgConnection> = Session {
    configure: |o| o.application_name("dbdeploy"),
    retryable,
    read_only: "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY",
};

impl Database for Postgres {
    async fn connect(target: &Target, opts: ConnectOptions) -> Result<Self, DbError> {
        let conn = connect::open(target, opts, &SESSION).await?;
        Ok(Self { conn })
    }

    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    async fn server_version(&mut self) -> Result<String, DbError> {
        let v: String = sqlx::query_scalar("SHOW server_version")
            .fetch_one(&mut self.conn)
            .await
            .map_err(|e| DbError::query("cannot read the server version", &e))?;
        Ok(format!("PostgreSQL {v}"))
    }

    async fn table_exists(&mut self, table: &str) -> Result<bool, DbError> {
        self.table_exists_in(None, table).await
    }

    /// From the catalogs, which list every table whatever the user's rights on it:
    /// `information_schema.tables` lists only tables the user has some right on, and a table
    /// it cannot read is not an absent one.
    async fn table_exists_in(
        &mut self,
        schema: Option<&str>,
        table: &str,
    ) -> Result<bool, DbError> {
        sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = COALESCE($2::name, current_schema()) AND c.relname = $1::name \
             AND c.relkind IN ('r', 'v', 'f', 'p'))",
        )
        .bind(table)
        .bind(schema)
        .fetch_one(&mut self.conn)
        .await
        .map_err(|e| DbError::query(format!("cannot look up table {table}"), &e))
    }

    /// The base tables of the current schema from the catalogs, by name, whatever the user's
    /// rights on them; the first `limit` of them when given.
    async fn list_tables(&mut self, limit: Option<usize>) -> Result<Vec<String>, DbError> {
        let limit = limit.map_or(-1, |n| i64::try_from(n).unwrap_or(i64::MAX));
        sqlx::query_scalar(
            "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') \
             AND c.relpersistence <> 't' ORDER BY 1 LIMIT NULLIF($1, -1)",
        )
        .bind(limit)
        .fetch_all(&mut self.conn)
        .await
        .map_err(|e| DbError::query("cannot list tables", &e))
    }

    async fn table_columns(&mut self, table: &str) -> Result<Vec<String>, DbError> {
        // What `information_schema.columns` lists, read from the catalogs (planning that view
        // costs a few milliseconds, a good part of a `status` run), for every column: a table
        // the user cannot read must fail when it is read, not look like another tool's.
        let columns: Vec<String> = sqlx::query_scalar(
            "SELECT a.attname::text FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = current_schema() AND c.relname = $1::name \
             AND c.relkind IN ('r', 'v', 'f', 'p') AND a.attnum > 0 AND NOT a.attisdropped \
             ORDER BY a.attnum",
        )
        .bind(table)
        .fetch_all(&mut self.conn)
        .await
        .map_err(|e| DbError::query("query failed", &e))?;
        Ok(columns
            .into_iter()
            .map(|c| c.to_ascii_lowercase())
            .collect())
    }

    async fn table_rows(&mut self) -> Result<Vec<(String, u64)>, DbError> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT c.relname::text, GREATEST(c.reltuples, 0)::bigint FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')",
        )
        .fetch_all(&mut self.conn)
        .await
        .map_err(|e| DbError::query("cannot read table statistics", &e))?;
        Ok(rows
            .into_iter()
            .map(|(t, n)| (t, u64::try_from(n).unwrap_or(0)))
            .collect())
    }

    async fn fetch(&mut self, stmt: &Stmt, cols: &[ColKind]) -> Result<Vec<Vec<Value>>, DbError> {
        statement::fetch(&mut self.conn, stmt, cols, &|c, e| DbError::query(c, e)).await
    }

    async fn execute(&mut self, stmt: &Stmt) -> Result<u64, DbError> {
        statement::execute(&mut self.conn, stmt, &|c, e| DbError::query(c, e)).await
    }

    async fn run_script(&mut self, sql: &str) -> Result<(), ScriptError> {
        self.run_text(sql.to_owned(), 0, sql).await
    }

    async fn begin_with_script(&mut self, script: &str, relaxed: bool) -> Result<(), ScriptError> {
        // One round trip: BEGIN and the script travel in one simple-query message, and the
        // server runs them in order, stopping at the first error with the transaction aborted
        // (rolled back by the caller), exactly as when BEGIN is sent on its own.
        let prefix = if relaxed {
            // See the transaction policy in `pipeline/apply.rs`: a later commit of the run
            // flushes the WAL up to and past this one.
            "BEGIN; SET LOCAL synchronous_commit TO OFF;\n"
        } else {
            "BEGIN;\n"
        };
        let mut text = String::with_capacity(prefix.len() + script.len());
        text.push_str(prefix);
        if !split::is_empty_script(script) {
            text.push_str(script);
        }
        self.run_text(text, prefix.len(), script).await
    }

    async fn flush_commits(&mut self) -> Result<(), DbError> {
        // A transaction with an xid writes a commit record, and a synchronous commit waits for
        // the WAL up to that record, which lies after every earlier commit of the session.
        sqlx::raw_sql("BEGIN; SELECT txid_current(); COMMIT")
            .execute(&mut self.conn)
            .await
            .map(drop)
            .map_err(|e| DbError::query("cannot flush the commits of this run", &e))
    }

    fn transactional_ddl(&self) -> bool {
        true
    }

    async fn lock(&mut self, key: &LockKey, timeout: Duration) -> Result<(), DbError> {
        let deadline = Instant::now() + timeout;
        loop {
            let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
                .bind(key.postgres)
                .fetch_one(&mut self.conn)
                .await
                .map_err(|e| DbError::query("cannot take the deploy lock", &e))?;
            if got {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(DbError::LockTimeout {
                    seconds: timeout.as_secs(),
                    holder: self.lock_holder(key).await,
                });
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    async fn unlock(&mut self, key: &LockKey) -> Result<(), DbError> {
        sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(key.postgres)
            .execute(&mut self.conn)
            .await
            .map(drop)
            .map_err(|e| DbError::query("cannot release the deploy lock", &e))
    }

    async fn reset(&mut self) -> Result<(), DbError> {
        let schema: String = sqlx::query_scalar("SELECT current_schema()::text")
            .fetch_one(&mut self.conn)
            .await
            .map_err(|e| DbError::query("cannot read the current schema", &e))?;
        let q = Dialect::Postgres.quote_ident(&schema);
        sqlx::raw_sql(AssertSqlSafe(format!(
            "DROP SCHEMA {q} CASCADE; CREATE SCHEMA {q}"
        )))
        .execute(&mut self.conn)
        .await
        .map(drop)
        .map_err(|e| DbError::query(format!("cannot reset schema {schema}"), &e))
    }

    async fn close(self) {
        let _ = self.conn.close().await;
    }
}

impl Postgres {
    /// Runs `text` as one simple query; `script` is the migration script, which starts at byte
    /// `offset` of `text` (after a prefix of ASCII statements), for the line of an error.
    async fn run_text(
        &mut self,
        text: String,
        offset: usize,
        script: &str,
    ) -> Result<(), ScriptError> {
        let Err(e) = sqlx::raw_sql(AssertSqlSafe(text))
            .execute(&mut self.conn)
            .await
        else {
            return Ok(());
        };
        let line = match &e {
            sqlx::Error::Database(db) => db
                .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
                .and_then(|pg| match pg.position() {
                    // 1-based, in characters of the whole text; the prefix is ASCII.
                    Some(sqlx::postgres::PgErrorPosition::Original(pos)) if pos > offset => Some(
                        script
                            .chars()
                            .take(pos - offset)
                            .filter(|c| *c == '\n')
                            .count()
                            + 1,
                    ),
                    _ => None,
                }),
            _ => None,
        };
        // A failed script may leave an explicit transaction of its own open (aborted:
        // everything written afterwards would fail). The driver does not track a BEGIN
        // it did not send, so look at the script too.
        let own_transaction = split::split(script, Dialect::Postgres)
            .iter()
            .any(|s| split::is_transaction_control(s.text));
        if own_transaction || self.conn.is_in_transaction() {
            let _ = sqlx::raw_sql("ROLLBACK").execute(&mut self.conn).await;
        }
        Err(ScriptError::driver(&e, line))
    }

    /// Who holds the advisory lock, from `pg_locks` and `pg_stat_activity`.
    async fn lock_holder(&mut self, key: &LockKey) -> String {
        let row: Result<Option<(i32, String, String, String)>, _> = sqlx::query_as(
            "SELECT a.pid, COALESCE(a.application_name, ''), COALESCE(a.usename::text, ''), \
             COALESCE(to_char(a.state_change, 'YYYY-MM-DD HH24:MI:SS TZ'), '') \
             FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
             WHERE l.locktype = 'advisory' AND l.granted \
             AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
             AND l.classid = ($1 >> 32)::oid AND l.objid = ($1 & 4294967295)::oid LIMIT 1",
        )
        .bind(key.postgres)
        .fetch_optional(&mut self.conn)
        .await;
        match row {
            Ok(Some((pid, app, user, since))) => {
                let app = if app.is_empty() { "unnamed" } else { &app };
                format!(" (held by pid {pid}, application {app}, user {user}, since {since})")
            }
            _ => String::new(),
        }
    }
}
