//! Running a [`Stmt`] over sqlx, written once for every engine: binding its [`Value`]s,
//! decoding rows by [`ColKind`], fetching and executing. What differs between the drivers (how
//! a timestamp is stored, which types a column may come back as) is each engine's [`Codec`].

use futures_util::TryStreamExt;
use sqlx::encode::Encode;
use sqlx::types::Type;
use sqlx::{AssertSqlSafe, Executor, IntoArguments};

use super::{ColKind, DbError, Stmt, Value};

/// A statement with its arguments bound, owning its SQL.
pub(super) type Query<DB> = sqlx::query::Query<'static, DB, <DB as sqlx::Database>::Arguments>;

/// What an engine's driver does its own way when values go in and out. (Every driver's
/// arguments can be sent with a query; saying so here spares the bound at each use.)
pub(super) trait Codec: sqlx::Database<Arguments: IntoArguments<Self>> {
    /// The statement with its values bound: [`bind`] with the engine's way of storing a
    /// timestamp (the one the authoring tools read back).
    fn bind(stmt: &Stmt) -> Query<Self>;
    /// Reads column `i` as text, from whichever types the engine returns text as.
    fn text(row: &Self::Row, i: usize) -> Result<Option<String>, sqlx::Error>;
    /// Reads column `i` as an integer, from whichever integer (or boolean) types the engine
    /// returns for it.
    fn int(row: &Self::Row, i: usize) -> Result<Option<i64>, sqlx::Error>;
    /// Reads column `i` as bytes.
    fn bytes(row: &Self::Row, i: usize) -> Result<Option<Vec<u8>>, sqlx::Error>;
    /// The affected row count of an executed statement.
    fn rows_affected(result: &Self::QueryResult) -> u64;
}

/// Maps a driver error to a [`DbError`] with what was being done; engines differ in which
/// driver errors are lock contention rather than failed queries.
pub(super) type OnError<'a> = &'a dyn Fn(&'static str, &sqlx::Error) -> DbError;

/// Runs `stmt` on `conn` and decodes every row by `cols`.
///
/// # Errors
/// The query's or the decoding's error, through `on_error`.
pub(super) async fn fetch<C>(
    conn: &mut C,
    stmt: &Stmt,
    cols: &[ColKind],
    on_error: OnError<'_>,
) -> Result<Vec<Vec<Value>>, DbError>
where
    C: sqlx::Connection<Database: Codec>,
    for<'c> &'c mut C: Executor<'c, Database = C::Database>,
{
    // Each row is decoded as it arrives: the driver's copy of a row lives only until then,
    // not the whole result (10,000 history rows are megabytes).
    let mut rows = <C::Database as Codec>::bind(stmt).fetch(&mut *conn);
    let mut out = Vec::new();
    while let Some(row) = rows
        .try_next()
        .await
        .map_err(|e| on_error("query failed", &e).needing(&stmt.sql))?
    {
        out.push(
            decode::<C::Database>(&row, cols).map_err(|e| on_error("cannot decode a row", &e))?,
        );
    }
    Ok(out)
}

/// Runs `stmt` on `conn`; returns the affected row count.
///
/// # Errors
/// The statement's error, through `on_error`.
pub(super) async fn execute<C>(
    conn: &mut C,
    stmt: &Stmt,
    on_error: OnError<'_>,
) -> Result<u64, DbError>
where
    C: sqlx::Connection<Database: Codec>,
    for<'c> &'c mut C: Executor<'c, Database = C::Database>,
{
    <C::Database as Codec>::bind(stmt)
        .execute(&mut *conn)
        .await
        .map(|r| <C::Database as Codec>::rows_affected(&r))
        .map_err(|e| on_error("statement failed", &e).needing(&stmt.sql))
}

/// The statement with its values bound, timestamps by `timestamp`; NULL goes as a text NULL,
/// which every engine accepts for a column of any type.
pub(super) fn bind<DB: sqlx::Database>(
    stmt: &Stmt,
    timestamp: impl Fn(Query<DB>, chrono::DateTime<chrono::Utc>) -> Query<DB>,
) -> Query<DB>
where
    String: Encode<'static, DB> + Type<DB>,
    Option<String>: Encode<'static, DB> + Type<DB>,
    i64: Encode<'static, DB> + Type<DB>,
    bool: Encode<'static, DB> + Type<DB>,
    Vec<u8>: Encode<'static, DB> + Type<DB>,
{
    let mut q = sqlx::query::<DB>(AssertSqlSafe(stmt.sql.clone()));
    for v in &stmt.args {
        q = match v {
            Value::Null => q.bind(None::<String>),
            Value::Text(s) => q.bind(s.clone()),
            Value::Int(i) => q.bind(*i),
            Value::Bool(b) => q.bind(*b),
            Value::Bytes(b) => q.bind(b.clone()),
            Value::Timestamp(t) => timestamp(q, *t),
        };
    }
    q
}

fn decode<DB: Codec>(row: &DB::Row, cols: &[ColKind]) -> Result<Vec<Value>, sqlx::Error> {
    cols.iter()
        .enumerate()
        .map(|(i, kind)| {
            Ok(match kind {
                ColKind::Text => DB::text(row, i)?.map_or(Value::Null, Value::Text),
                ColKind::Int => DB::int(row, i)?.map_or(Value::Null, Value::Int),
                ColKind::Bytes => DB::bytes(row, i)?.map_or(Value::Null, Value::Bytes),
            })
        })
        .collect()
}
