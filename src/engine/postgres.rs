//! PostgreSQL through sqlx: advisory locks, read-only sessions, error positions.

use std::time::{Duration, Instant};

use sqlx::postgres::{PgConnection, PgQueryResult, PgRow};
use sqlx::{AssertSqlSafe, Connection, Row};

use crate::sql::split;

use super::blockers::PgWatch;
use super::connect::{self, Session};
use super::script;
use super::statement::{self, Codec, Query};
use super::{
    ColKind, ConnectOptions, Database, DbError, Dialect, LockKey, LockWait, ScriptError, Stmt,
    Target, Unfinished, Value,
};

/// A PostgreSQL session.
pub struct Postgres {
    conn: PgConnection,
    target: Target,
    /// Set once the session is prepared for migrations.
    migrations: Option<Migrations>,
}

/// What a session applying migrations keeps.
struct Migrations {
    /// dbdeploy's own settings, made again after every reset.
    own: String,
    /// Who blocks a statement that waits for a lock.
    watch: PgWatch,
}

/// The text sent before a migration's script in the same message, for the position and the
/// number of the failing statement.
#[derive(Clone, Copy)]
struct Prefix {
    /// Its length (ASCII).
    bytes: usize,
    /// Its statements.
    statements: usize,
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
    configure: |url, o| {
        let o = o.application_name("dbdeploy");
        match prisma_schema(url) {
            Some(schema) => o.options([("search_path", schema)]),
            None => o,
        }
    },
    retryable,
    read_only: "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY",
};

impl Database for Postgres {
    async fn connect(target: &Target, opts: ConnectOptions) -> Result<Self, DbError> {
        let mut conn = connect::open(target, opts, &SESSION).await?;
        if let Target::Postgres { url } = target
            && prisma_schema(url).is_some()
        {
            // A search_path naming no schema leaves the session without one: every table the
            // migrations create would fail, and the history would read as absent.
            let current: Option<String> = sqlx::query_scalar("SELECT current_schema()::text")
                .fetch_one(&mut conn)
                .await
                .map_err(|e| DbError::query("cannot read the current schema", &e))?;
            if current.is_none() {
                return Err(DbError::Connect {
                    target: target.describe(),
                    message: "the schema named by the URL's `schema=` parameter does not exist in this database; create it (`CREATE SCHEMA \"name\"`) or fix the URL".into(),
                    source: None,
                });
            }
        }
        Ok(Self {
            conn,
            target: target.clone(),
            migrations: None,
        })
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

    async fn history_stamp(&mut self, table: &str) -> Result<Option<String>, DbError> {
        // Every row version written after this read has a transaction id that no row visible
        // now has (the writer's), so the set of (xmin, ctid) pairs changes with any insert,
        // update or delete; hashed on the server, it costs a scan of the table, not its rows
        // on the wire and their decoding.
        let sql = format!(
            "SELECT count(*)::text || ':' || coalesce(md5(string_agg(xmin::text || ',' || ctid::text, ';' ORDER BY ctid)), '') FROM {}",
            Dialect::Postgres.quote_ident(table)
        );
        sqlx::query_scalar(AssertSqlSafe(sql.clone()))
            .fetch_one(&mut self.conn)
            .await
            .map(Some)
            .map_err(|e| DbError::query("cannot read the tracking table", &e).needing(&sql))
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

    async fn fetch(&mut self, stmt: &Stmt, cols: &[ColKind]) -> Result<Vec<Vec<Value>>, DbError> {
        statement::fetch(&mut self.conn, stmt, cols, &|c, e| DbError::query(c, e)).await
    }

    async fn execute(&mut self, stmt: &Stmt) -> Result<u64, DbError> {
        statement::execute(&mut self.conn, stmt, &|c, e| DbError::query(c, e)).await
    }

    async fn run_script(&mut self, sql: &str) -> Result<(), ScriptError> {
        let none = Prefix {
            bytes: 0,
            statements: 0,
        };
        // `... CONCURRENTLY` waits for other transactions to end without blocking anybody's
        // reads or writes meanwhile; a lock timeout would only make it fail half-done (an
        // invalid index left behind, which a retry trips over). It runs on its own (never in
        // a transaction), so the session's wait is lifted around it.
        let own = self
            .migrations
            .as_ref()
            .filter(|_| {
                split::non_transactional_reason(sql, Dialect::Postgres)
                    .is_some_and(|r| r.contains("CONCURRENTLY"))
            })
            .map(|m| m.own.clone());
        let Some(own) = own else {
            return self.run_text(sql.to_owned(), none, sql).await;
        };
        self.set("SET lock_timeout = 0".into()).await?;
        let result = self.run_text(sql.to_owned(), none, sql).await;
        self.set(own).await?;
        result
    }

    async fn prepare_migrations(&mut self, lock_wait: Option<Duration>) -> Result<(), DbError> {
        // `lock_timeout` of the session: a migration that sets its own keeps it for its
        // script; the reset after it makes this one again. 0 is PostgreSQL's "no limit".
        let ms = lock_wait.map_or(0, |d| d.as_millis());
        let own = format!("SET lock_timeout = '{ms}ms'");
        sqlx::raw_sql(AssertSqlSafe(own.clone()))
            .execute(&mut self.conn)
            .await
            .map_err(|e| DbError::query("cannot set lock_timeout", &e))?;
        let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(&mut self.conn)
            .await
            .map_err(|e| DbError::query("cannot read the backend pid", &e))?;
        let watch = PgWatch::new(self.target.clone(), &SESSION, pid);
        self.migrations = Some(Migrations { own, watch });
        Ok(())
    }

    async fn reset_session(&mut self) -> Result<(), DbError> {
        sqlx::raw_sql(AssertSqlSafe(self.reset_text()))
            .execute(&mut self.conn)
            .await
            .map(drop)
            .map_err(|e| DbError::query("cannot reset the session", &e))
    }

    async fn finish_migration(&mut self, rows: &[Stmt]) -> Result<(), Unfinished> {
        // One round trip: the tracking rows (values written in), COMMIT and the reset in one
        // simple-query message. The server stops at the first error, with the transaction
        // still open and aborted when it is a row's, so which statement failed is told by how
        // many completed. A statement that cannot be written out goes the usual way.
        let mut text = String::new();
        for stmt in rows {
            let Some(sql) = super::literal::postgres(stmt) else {
                return super::finish_each(self, rows).await;
            };
            text.push_str(&sql);
            text.push_str(";\n");
        }
        text.push_str("COMMIT;\n");
        text.push_str(&self.reset_text());
        match script::run_counting(&mut self.conn, text).await {
            Ok(_) => Ok(()),
            Err((done, e)) if done < rows.len() => Err(Unfinished::Record(DbError::query(
                "cannot write the tracking row",
                &e,
            ))),
            Err((done, e)) if done == rows.len() => Err(Unfinished::Commit(DbError::query(
                "cannot commit the migration",
                &e,
            ))),
            Err((_, e)) => {
                tracing::warn!("{}", DbError::query("cannot reset the session", &e));
                Ok(())
            }
        }
    }

    async fn begin_with_script(&mut self, script: &str, relaxed: bool) -> Result<(), ScriptError> {
        // One round trip: BEGIN and the script travel in one simple-query message, and the
        // server runs them in order, stopping at the first error with the transaction aborted
        // (rolled back by the caller), exactly as when BEGIN is sent on its own.
        let (prefix, statements) = if relaxed {
            // See the transaction policy in `pipeline/apply.rs`: a later commit of the run
            // flushes the WAL up to and past this one.
            ("BEGIN; SET LOCAL synchronous_commit TO OFF;\n", 2)
        } else {
            ("BEGIN;\n", 1)
        };
        let mut text = String::with_capacity(prefix.len() + script.len());
        text.push_str(prefix);
        if !split::is_empty_script(script) {
            text.push_str(script);
        }
        let prefix = Prefix {
            bytes: prefix.len(),
            statements,
        };
        self.run_text(text, prefix, script).await
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
        if let Some(m) = self.migrations {
            m.watch.close().await;
        }
        let _ = self.conn.close().await;
    }
}

impl Postgres {
    /// What returns the session to the state the run prepared: `RESET ALL` returns every
    /// setting to the session's default (the server's, the role's and database's, and those
    /// the connection was opened with); the role and the session user are not settings it
    /// resets. `DISCARD ALL` would also release the deploy lock and the driver's prepared
    /// statements, so its other parts are left out.
    fn reset_text(&self) -> String {
        let own = self.migrations.as_ref().map_or("", |m| m.own.as_str());
        format!(
            "RESET SESSION AUTHORIZATION; RESET ROLE; RESET ALL; DISCARD TEMP; UNLISTEN *; {own}"
        )
    }

    /// Runs one of dbdeploy's own session settings.
    async fn set(&mut self, sql: String) -> Result<(), ScriptError> {
        sqlx::raw_sql(AssertSqlSafe(sql))
            .execute(&mut self.conn)
            .await
            .map(drop)
            .map_err(|e| ScriptError::driver(&e, None))
    }

    /// Runs `text` as one simple query: `prefix`, then the migration `script`. A failure
    /// names the script's failing statement and line, from the statements the server completed
    /// before it or from the error's position; a lock wait that timed out names the sessions
    /// that held the lock.
    async fn run_text(
        &mut self,
        text: String,
        prefix: Prefix,
        script: &str,
    ) -> Result<(), ScriptError> {
        let run = script::run_counting(&mut self.conn, text);
        let (result, blockers) = match self.migrations.as_mut() {
            Some(m) => m.watch.during(run).await,
            None => (run.await, Vec::new()),
        };
        let Err((completed, e)) = result else {
            return Ok(());
        };
        let pg = match &e {
            sqlx::Error::Database(db) => db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>(),
            _ => None,
        };
        // 1-based, in characters of the whole text; the prefix is ASCII.
        let position = pg.and_then(|pg| match pg.position() {
            Some(sqlx::postgres::PgErrorPosition::Original(pos)) if pos > prefix.bytes => {
                Some(pos - prefix.bytes)
            }
            _ => None,
        });
        let ran = completed.saturating_sub(prefix.statements);
        let place = if completed < prefix.statements && position.is_none() {
            (None, None)
        } else {
            script::locate(script, Dialect::Postgres, ran, position)
        };
        let lock_wait = pg
            .is_some_and(|pg| pg.code() == "55P03")
            .then_some(LockWait { blockers });
        let open = self.conn.is_in_transaction();
        script::roll_back_own(&mut self.conn, script, Dialect::Postgres, open).await;
        Err(ScriptError::at(&e, place, ran, lock_wait))
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

/// The `search_path` for Prisma's `?schema=NAME` URL parameter, which sqlx ignores: Prisma
/// deploys to (and keeps `_prisma_migrations` in) that schema alone, so a session without it
/// would apply the migrations to the user's default schema and read another history. A URL
/// whose `options` sets `search_path` itself keeps its own.
fn prisma_schema(url: &str) -> Option<String> {
    let url = url::Url::parse(url).ok()?;
    let mut schema = None;
    for (k, v) in url.query_pairs() {
        match k.as_ref() {
            "schema" if !v.is_empty() => schema = Some(v.into_owned()),
            "options" if v.contains("search_path") => return None,
            _ => {}
        }
    }
    // Quoted: the name is taken exactly as written, as Prisma does.
    schema.map(|s| format!("\"{}\"", s.replace('"', "\"\"")))
}

#[cfg(test)]
mod prisma_schema_tests {
    use super::prisma_schema;

    #[test]
    fn the_schema_parameter_becomes_a_quoted_search_path() {
        assert_eq!(
            prisma_schema("postgres://u@h/db?schema=Tenant_A").as_deref(),
            Some("\"Tenant_A\"")
        );
        assert_eq!(prisma_schema("postgres://u@h/db?sslmode=require"), None);
        assert_eq!(prisma_schema("postgres://u@h/db?schema="), None);
        assert_eq!(
            prisma_schema("postgres://u@h/db?schema=a&options=-c%20search_path%3Db"),
            None
        );
    }
}
