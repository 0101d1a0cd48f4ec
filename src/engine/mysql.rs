//! MySQL and MariaDB through sqlx: `GET_LOCK`, and DDL that commits implicitly, so
//! migrations are never atomic here and progress is recorded statement by statement.

use std::time::Duration;

use sqlx::mysql::{MySqlConnection, MySqlQueryResult, MySqlRow};
use sqlx::{AssertSqlSafe, Connection, Row};

use super::blockers;
use super::connect::{self, Session};
use super::script;
use super::statement::{self, Codec, Query};
use super::{
    ColKind, ConnectOptions, Database, DbError, Dialect, LockKey, LockWait, ScriptError, Stmt,
    Target, Value,
};

/// A MySQL or MariaDB session.
pub struct MySql {
    conn: MySqlConnection,
    /// The session state migrations return to, once prepared for them.
    snapshot: Option<Snapshot>,
}

/// Session variables a migration may set, with dbdeploy's own `lock_wait_timeout` among them.
/// `RESET CONNECTION` (the protocol's `COM_RESET_CONNECTION`, on MySQL 5.7+ and MariaDB
/// 10.2+) would reset them all, but it also releases the deploy lock (`GET_LOCK`) and the
/// driver's prepared statements; so these are saved in user variables when migrations start
/// and set back after each migration that changed them. Those the server lacks are skipped.
const SESSION_VARIABLES: &[&str] = &[
    "autocommit",
    "sql_mode",
    "foreign_key_checks",
    "unique_checks",
    "time_zone",
    "character_set_client",
    "character_set_connection",
    "character_set_results",
    "collation_connection",
    "sql_safe_updates",
    "sql_select_limit",
    "max_execution_time",
    "max_statement_time",
    "lock_wait_timeout",
    "innodb_lock_wait_timeout",
    "tx_isolation",
    "transaction_isolation",
    "tx_read_only",
    "transaction_read_only",
    "group_concat_max_len",
    "div_precision_increment",
    "auto_increment_increment",
    "auto_increment_offset",
    "default_storage_engine",
    "default_tmp_storage_engine",
    "sql_auto_is_null",
    "sql_big_selects",
    "sql_notes",
    "sql_warnings",
    "sql_quote_show_create",
    "check_constraint_checks",
    "innodb_strict_mode",
    "lc_time_names",
];

/// The saved session state.
struct Snapshot {
    /// The variables of [`SESSION_VARIABLES`] this server has, saved as `@dbdeploy_<name>`.
    variables: Vec<String>,
    /// The current database (a migration may `USE` another).
    database: Option<String>,
}

impl Codec for sqlx::MySql {
    fn bind(stmt: &Stmt) -> Query<Self> {
        // DATETIME has no time zone: store UTC wall-clock time, as Prisma does.
        statement::bind(stmt, |q, t| q.bind(t.naive_utc()))
    }

    fn text(row: &MySqlRow, i: usize) -> Result<Option<String>, sqlx::Error> {
        row.try_get::<Option<String>, _>(i).or_else(|_| {
            row.try_get::<Option<Vec<u8>>, _>(i)
                .map(|b| b.map(|b| String::from_utf8_lossy(&b).into_owned()))
        })
    }

    fn int(row: &MySqlRow, i: usize) -> Result<Option<i64>, sqlx::Error> {
        row.try_get::<Option<i64>, _>(i)
            .or_else(|_| {
                row.try_get::<Option<u64>, _>(i)
                    .map(|v| v.map(|v| i64::try_from(v).unwrap_or(i64::MAX)))
            })
            .or_else(|_| row.try_get::<Option<u32>, _>(i).map(|v| v.map(i64::from)))
            .or_else(|_| row.try_get::<Option<i32>, _>(i).map(|v| v.map(i64::from)))
            .or_else(|_| row.try_get::<Option<i8>, _>(i).map(|v| v.map(i64::from)))
            .or_else(|_| row.try_get::<Option<bool>, _>(i).map(|v| v.map(i64::from)))
    }

    fn bytes(row: &MySqlRow, i: usize) -> Result<Option<Vec<u8>>, sqlx::Error> {
        row.try_get(i)
    }

    fn rows_affected(result: &MySqlQueryResult) -> u64 {
        result.rows_affected()
    }
}

/// Whether a connection error is worth retrying: the server is not listening yet.
fn retryable(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Io(_))
}

/// How sessions open.
const SESSION: Session<MySqlConnection> = Session {
    configure: |_, o| o,
    retryable,
    read_only: "SET SESSION TRANSACTION READ ONLY",
};

impl Database for MySql {
    async fn connect(target: &Target, opts: ConnectOptions) -> Result<Self, DbError> {
        let conn = connect::open(target, opts, &SESSION).await?;
        Ok(Self {
            conn,
            snapshot: None,
        })
    }

    fn dialect(&self) -> Dialect {
        Dialect::MySql
    }

    async fn server_version(&mut self) -> Result<String, DbError> {
        let v: String = sqlx::query_scalar("SELECT VERSION()")
            .fetch_one(&mut self.conn)
            .await
            .map_err(|e| DbError::query("cannot read the server version", &e))?;
        Ok(match v.split_once("-MariaDB") {
            Some((num, _)) => format!("MariaDB {num}"),
            None => format!("MySQL {v}"),
        })
    }

    async fn table_exists(&mut self, table: &str) -> Result<bool, DbError> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM information_schema.tables \
             WHERE table_schema = DATABASE() AND table_name = ?",
        )
        .bind(table)
        .fetch_one(&mut self.conn)
        .await
        .map_err(|e| DbError::query(format!("cannot look up table {table}"), &e))?;
        if n > 0 {
            return Ok(true);
        }
        // `information_schema` lists only tables the user has some right on: reading the
        // table tells an absent one (1146) from one the user may not read (1142).
        self.readable(table).await
    }

    /// The base tables of the current database by name; the first `limit` when given.
    async fn list_tables(&mut self, limit: Option<usize>) -> Result<Vec<String>, DbError> {
        let cap = limit.map(|n| format!(" LIMIT {n}")).unwrap_or_default();
        let stmt = Stmt::raw(format!(
            "SELECT CAST(table_name AS CHAR) FROM information_schema.tables \
             WHERE table_schema = DATABASE() AND table_type = 'BASE TABLE' ORDER BY 1{cap}"
        ));
        let rows = self.fetch(&stmt, &[ColKind::Text]).await?;
        let tables: Vec<String> = rows
            .into_iter()
            .filter_map(|r| {
                r.into_iter()
                    .next()
                    .and_then(|v| v.as_text().map(str::to_owned))
            })
            .collect();
        // The listing leaves out tables the user has no right on. With a right on the whole
        // database it sees them all; without one, an empty (or partial) list proves nothing.
        if tables.is_empty() || limit.is_none() {
            self.readable(UNLIKELY_TABLE).await.map_err(|e| match e {
                DbError::PermissionDenied { source, .. } => DbError::PermissionDenied {
                    what: "no SELECT privilege on the database, and MySQL/MariaDB list only the tables a user has rights on: whether the database is empty cannot be known".into(),
                    privilege: Some("SELECT".into()),
                    table: None,
                    source,
                },
                other => other,
            })?;
        }
        Ok(tables)
    }

    async fn fetch(&mut self, stmt: &Stmt, cols: &[ColKind]) -> Result<Vec<Vec<Value>>, DbError> {
        statement::fetch(&mut self.conn, stmt, cols, &|c, e| DbError::query(c, e)).await
    }

    async fn execute(&mut self, stmt: &Stmt) -> Result<u64, DbError> {
        statement::execute(&mut self.conn, stmt, &|c, e| DbError::query(c, e)).await
    }

    async fn run_script(&mut self, sql: &str) -> Result<(), ScriptError> {
        let Err((ran, e)) = script::run_counting(&mut self.conn, sql.to_owned()).await else {
            return Ok(());
        };
        let place = script::locate(sql, Dialect::MySql, ran, None);
        // MDL waits (`lock_wait_timeout`) and row-lock waits end in the same error.
        let lock_wait = match &e {
            sqlx::Error::Database(db)
                if db
                    .try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>()
                    .is_some_and(|e| e.number() == 1205) =>
            {
                Some(LockWait {
                    blockers: blockers::mysql(&mut self.conn).await,
                })
            }
            _ => None,
        };
        script::roll_back_own(&mut self.conn, sql, Dialect::MySql, false).await;
        Err(ScriptError::at(&e, place, ran, lock_wait))
    }

    async fn prepare_migrations(&mut self, lock_wait: Option<Duration>) -> Result<(), DbError> {
        // Whole seconds, at least 1; "no limit" is the server's own default, a year.
        let secs = lock_wait.map_or(31_536_000, |d| d.as_secs().max(1));
        let failed = |e: &sqlx::Error| DbError::query("cannot prepare the session", e);
        sqlx::raw_sql(AssertSqlSafe(format!(
            "SET SESSION lock_wait_timeout = {secs}"
        )))
        .execute(&mut self.conn)
        .await
        .map_err(|e| failed(&e))?;
        let listed: Vec<String> = SESSION_VARIABLES.iter().map(|v| format!("'{v}'")).collect();
        let rows = sqlx::raw_sql(AssertSqlSafe(format!(
            "SHOW SESSION VARIABLES WHERE Variable_name IN ({})",
            listed.join(", ")
        )))
        .fetch_all(&mut self.conn)
        .await
        .map_err(|e| failed(&e))?;
        let mut variables = Vec::new();
        for row in &rows {
            let name = <sqlx::MySql as Codec>::text(row, 0)
                .map_err(|e| failed(&e))?
                .unwrap_or_default()
                .to_ascii_lowercase();
            // Only known names go into SQL text.
            if let Some(known) = SESSION_VARIABLES.iter().find(|v| **v == name) {
                variables.push((*known).to_owned());
            }
        }
        let save = |names: &[String]| {
            let saves: Vec<String> = names
                .iter()
                .map(|v| format!("@dbdeploy_{v} = @@SESSION.{v}"))
                .collect();
            format!("SET {}", saves.join(", "))
        };
        if !variables.is_empty()
            && script::run_own(&mut self.conn, save(&variables))
                .await
                .is_err()
        {
            // A server where one of them has no session value: keep those that have one.
            let mut kept = Vec::new();
            for v in variables {
                let one = std::slice::from_ref(&v);
                if script::run_own(&mut self.conn, save(one)).await.is_ok() {
                    kept.push(v);
                }
            }
            variables = kept;
        }
        let database: Option<String> = sqlx::query_scalar("SELECT CAST(DATABASE() AS CHAR)")
            .fetch_one(&mut self.conn)
            .await
            .map_err(|e| failed(&e))?;
        self.snapshot = Some(Snapshot {
            variables,
            database,
        });
        Ok(())
    }

    async fn reset_session(&mut self) -> Result<(), DbError> {
        let Some(snap) = &self.snapshot else {
            return Ok(());
        };
        let failed = |e: &sqlx::Error| DbError::query("cannot reset the session", e);
        let checks: Vec<String> = snap
            .variables
            .iter()
            .map(|v| format!("IF(@@SESSION.{v} <=> @dbdeploy_{v}, NULL, '{v}')"))
            .collect();
        let sql = format!(
            "SELECT CAST(CONCAT_WS(',', {}) AS CHAR), CAST(DATABASE() AS CHAR)",
            if checks.is_empty() {
                "NULL".to_owned()
            } else {
                checks.join(", ")
            }
        );
        let (changed, database): (Option<String>, Option<String>) =
            sqlx::query_as(AssertSqlSafe(sql))
                .fetch_one(&mut self.conn)
                .await
                .map_err(|e| failed(&e))?;
        let sets: Vec<String> = changed
            .unwrap_or_default()
            .split(',')
            .filter_map(|name| snap.variables.iter().find(|v| *v == name))
            .map(|v| format!("SESSION {v} = @dbdeploy_{v}"))
            .collect();
        let mut script = String::new();
        if !sets.is_empty() {
            script.push_str(&format!("SET {};", sets.join(", ")));
        }
        if database != snap.database
            && let Some(db) = &snap.database
        {
            script.push_str(&format!("USE {};", Dialect::MySql.quote_ident(db)));
        }
        script::run_own(&mut self.conn, script)
            .await
            .map_err(|e| failed(&e))
    }

    fn transactional_ddl(&self) -> bool {
        false
    }

    async fn lock(&mut self, key: &LockKey, timeout: Duration) -> Result<(), DbError> {
        // Whole seconds, rounded up: 0.99 s left of the wait must not become "do not wait".
        let secs = timeout.as_secs() + u64::from(timeout.subsec_nanos() > 0);
        let secs = i64::try_from(secs).unwrap_or(i64::MAX);
        let got: Option<i64> = sqlx::query_scalar("SELECT GET_LOCK(?, ?)")
            .bind(&key.mysql)
            .bind(secs)
            .fetch_one(&mut self.conn)
            .await
            .map_err(|e| DbError::query("cannot take the deploy lock", &e))?;
        if got == Some(1) {
            return Ok(());
        }
        Err(DbError::LockTimeout {
            seconds: timeout.as_secs(),
            holder: self.lock_holder(key).await,
        })
    }

    async fn unlock(&mut self, key: &LockKey) -> Result<(), DbError> {
        sqlx::query("SELECT RELEASE_LOCK(?)")
            .bind(&key.mysql)
            .execute(&mut self.conn)
            .await
            .map(drop)
            .map_err(|e| DbError::query("cannot release the deploy lock", &e))
    }

    async fn reset(&mut self) -> Result<(), DbError> {
        let tables = self.user_tables().await?;
        let mut script = String::from("SET FOREIGN_KEY_CHECKS = 0;");
        for t in &tables {
            script.push_str(&format!(
                "DROP TABLE IF EXISTS {};",
                Dialect::MySql.quote_ident(t)
            ));
        }
        script.push_str("SET FOREIGN_KEY_CHECKS = 1;");
        sqlx::raw_sql(AssertSqlSafe(script))
            .execute(&mut self.conn)
            .await
            .map(drop)
            .map_err(|e| DbError::query("cannot reset the database", &e))
    }

    async fn close(self) {
        let _ = self.conn.close().await;
    }
}

/// A table name no schema has, to ask the server whether the user may read any table of the
/// database (the answer to a missing table is "no such table" only for a user who may).
const UNLIKELY_TABLE: &str = "_dbdeploy_no_such_table_";

impl MySql {
    /// Whether `table` exists, by reading none of its rows: `false` when the server says it
    /// does not exist, an error when the user may not read it.
    async fn readable(&mut self, table: &str) -> Result<bool, DbError> {
        let sql = format!(
            "SELECT 1 FROM {} LIMIT 0",
            Dialect::MySql.quote_ident(table)
        );
        match sqlx::raw_sql(AssertSqlSafe(sql))
            .execute(&mut self.conn)
            .await
        {
            Ok(_) => Ok(true),
            Err(sqlx::Error::Database(db))
                if db
                    .try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>()
                    .is_some_and(|e| e.number() == 1146) =>
            {
                Ok(false)
            }
            Err(e) => Err(DbError::query(format!("cannot look up table {table}"), &e)),
        }
    }

    /// Who holds the named lock, from `IS_USED_LOCK` and the process list.
    async fn lock_holder(&mut self, key: &LockKey) -> String {
        let stmt = Stmt::new(
            "SELECT CAST(p.ID AS SIGNED), CAST(p.USER AS CHAR), CAST(p.HOST AS CHAR), CAST(p.TIME AS SIGNED) \
             FROM information_schema.processlist p WHERE p.ID = IS_USED_LOCK(?)",
            vec![Value::Text(key.mysql.clone())],
        );
        let cols = [ColKind::Int, ColKind::Text, ColKind::Text, ColKind::Int];
        match self
            .fetch(&stmt, &cols)
            .await
            .ok()
            .and_then(|r| r.into_iter().next())
        {
            Some(row) => format!(
                " (held by connection {}, user {}, from {}, for {} s)",
                row[0].as_int().unwrap_or_default(),
                row[1].as_text().unwrap_or("?"),
                row[2].as_text().unwrap_or("?"),
                row[3].as_int().unwrap_or_default()
            ),
            None => String::new(),
        }
    }
}
