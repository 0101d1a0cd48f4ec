//! Creating a missing database on a server, as `prisma migrate dev` and `dbmate up` do: only
//! for `dev` environments and those with `create_database = true`, and only when the server
//! says the database does not exist (PostgreSQL `3D000`, MySQL/MariaDB error 1049).

use sqlx::Connection;

use super::{DbError, Target};

/// PostgreSQL's "invalid catalog name": the database does not exist.
const PG_NO_DATABASE: &str = "3D000";
/// MySQL's and MariaDB's `ER_BAD_DB_ERROR`.
const MYSQL_NO_DATABASE: u16 = 1049;

/// Creates the database of `target` when the server says it does not exist; returns its name
/// when it did. Any other connection failure is left to the connect step, which retries and
/// reports it.
///
/// # Errors
/// When the database is missing and cannot be created (no privilege, say).
pub async fn create_if_missing(target: &Target) -> Result<Option<String>, DbError> {
    match target {
        Target::Sqlite { .. } => Ok(None),
        Target::Postgres { url } => {
            let missing = |e: &sqlx::Error| code(e).as_deref() == Some(PG_NO_DATABASE);
            if !is_missing::<sqlx::PgConnection>(url, missing).await {
                return Ok(None);
            }
            let (admin, name) = admin_url(url, "/postgres")?;
            let sql = format!("CREATE DATABASE \"{}\"", name.replace('"', "\"\""));
            create::<sqlx::PgConnection>(target, &admin, &name, sql).await
        }
        Target::MySql { url } => {
            let missing = |e: &sqlx::Error| {
                e.as_database_error()
                    .and_then(|d| d.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>())
                    .is_some_and(|m| m.number() == MYSQL_NO_DATABASE)
            };
            if !is_missing::<sqlx::MySqlConnection>(url, missing).await {
                return Ok(None);
            }
            let (admin, name) = admin_url(url, "")?;
            let sql = format!("CREATE DATABASE `{}`", name.replace('`', "``"));
            create::<sqlx::MySqlConnection>(target, &admin, &name, sql).await
        }
    }
}

/// Whether the server says the database of `url` does not exist (`missing` tells its
/// error); false when it exists or the server does not answer in time.
async fn is_missing<C: Connection>(url: &str, missing: impl Fn(&sqlx::Error) -> bool) -> bool {
    match probe(C::connect(url)).await {
        None => false,
        Some(Ok(conn)) => {
            let _ = conn.close().await;
            false
        }
        Some(Err(e)) => missing(&e),
    }
}

/// Runs `sql`, the `CREATE DATABASE` of `name`, on the server's maintenance database.
async fn create<C>(
    target: &Target,
    admin: &str,
    name: &str,
    sql: String,
) -> Result<Option<String>, DbError>
where
    C: Connection,
    for<'c> &'c mut C: sqlx::Executor<'c, Database = C::Database>,
{
    let mut conn = C::connect(admin)
        .await
        .map_err(|e| DbError::connect(target, &e))?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(&mut conn)
        .await
        .map_err(|e| refused(name, &e))?;
    let _ = conn.close().await;
    Ok(Some(name.to_owned()))
}

/// The name is quoted as an identifier; nothing else goes into the statement.
fn refused(name: &str, e: &sqlx::Error) -> DbError {
    DbError::query(format!("cannot create database `{name}`"), e)
}

/// One attempt to connect, bounded: a server that does not answer is left to the connect
/// step, which waits for it as configured and reports it.
async fn probe<T>(attempt: impl Future<Output = T>) -> Option<T> {
    tokio::time::timeout(PROBE_TIMEOUT, attempt).await.ok()
}

/// How long the probe for a missing database waits for the server.
const PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

fn code(e: &sqlx::Error) -> Option<String> {
    e.as_database_error()
        .and_then(|d| d.code().map(std::borrow::Cow::into_owned))
}

/// The URL of the server's maintenance database (`path`), and the database name of `url`.
fn admin_url(url: &str, path: &str) -> Result<(String, String), DbError> {
    let mut u = url::Url::parse(url).map_err(|_| DbError::Connect {
        target: "the database".into(),
        message: "the URL cannot be parsed".into(),
        source: None,
    })?;
    let name = percent_encoding::percent_decode_str(u.path().trim_start_matches('/'))
        .decode_utf8_lossy()
        .into_owned();
    u.set_path(path);
    Ok((u.to_string(), name))
}
