//! Opening a server connection: attempts bounded in time, and retries while the server is not
//! up yet, so that a deploy started together with its database waits for it instead of failing.

use std::time::{Duration, Instant};

use sqlx::Executor;

use super::{ConnectOptions, DbError, Target};

/// The least time one connection attempt gets, so that `connect_timeout_seconds = 0` (no
/// retries) still leaves room for a handshake.
const MIN_CONNECT_ATTEMPT: Duration = Duration::from_secs(2);

/// The pause between two attempts.
const RETRY_PAUSE: Duration = Duration::from_millis(500);

/// How a server engine opens its session.
pub(super) struct Session<C: sqlx::Connection> {
    /// The engine's own settings on top of the URL's (the URL is given for parameters the
    /// driver does not read itself).
    pub configure: fn(&str, C::Options) -> C::Options,
    /// Whether a failed attempt may succeed later (the server is starting up).
    pub retryable: fn(&sqlx::Error) -> bool,
    /// The statement that makes the session read-only.
    pub read_only: &'static str,
}

/// Opens a session on the server of `target` the way `session` says, read-only when `opts`
/// asks for it.
///
/// # Errors
/// [`DbError::Connect`] when the URL is refused or the server cannot be reached in time;
/// [`DbError::Query`] when the session cannot be made read-only.
pub(super) async fn open<C>(
    target: &Target,
    opts: ConnectOptions,
    session: &Session<C>,
) -> Result<C, DbError>
where
    C: sqlx::Connection,
    for<'c> &'c mut C: Executor<'c, Database = C::Database>,
{
    let (Target::Postgres { url } | Target::MySql { url }) = target else {
        unreachable!("only server targets open sessions");
    };
    let options = url
        .parse::<C::Options>()
        .map_err(|e| DbError::connect(target, &e))?;
    let options = (session.configure)(url, options);
    let mut conn = connect_with_retry::<C>(target, &options, opts.wait, session.retryable).await?;
    if opts.read_only {
        sqlx::raw_sql(session.read_only)
            .execute(&mut conn)
            .await
            .map_err(|e| DbError::query("cannot make the session read-only", &e))?;
    }
    Ok(conn)
}

/// Connects with `options`, retrying the errors `retryable` accepts until `wait` has passed.
///
/// # Errors
/// [`DbError::Connect`] with the driver's error as its cause, or on a handshake timeout.
async fn connect_with_retry<C: sqlx::Connection>(
    target: &Target,
    options: &C::Options,
    wait: Duration,
    retryable: fn(&sqlx::Error) -> bool,
) -> Result<C, DbError> {
    let deadline = Instant::now() + wait;
    loop {
        match connect_attempt(target, deadline, C::connect_with(options)).await? {
            Ok(conn) => return Ok(conn),
            Err(e) if retryable(&e) && Instant::now() < deadline => {
                tracing::debug!(
                    "connection refused, retrying: {}",
                    super::driver_message(&e)
                );
                tokio::time::sleep(RETRY_PAUSE).await;
            }
            Err(e) => return Err(DbError::connect(target, &e)),
        }
    }
}

/// Runs one connection attempt, giving up when the server has not completed the handshake by
/// `deadline` (or within [`MIN_CONNECT_ATTEMPT`]). A server that accepts TCP connections but
/// never answers (a wrong port, a hung server, a firewall that swallows packets) would
/// otherwise keep the deploy waiting forever: the drivers have no handshake timeout.
///
/// # Errors
/// The driver's error, or [`DbError::Connect`] on the timeout.
async fn connect_attempt<C>(
    target: &Target,
    deadline: Instant,
    attempt: impl Future<Output = Result<C, sqlx::Error>>,
) -> Result<Result<C, sqlx::Error>, DbError> {
    let limit = deadline
        .saturating_duration_since(Instant::now())
        .max(MIN_CONNECT_ATTEMPT);
    tokio::time::timeout(limit, attempt)
        .await
        .map_err(|_| DbError::Connect {
            target: target.describe(),
            message: format!(
                "the server accepted the connection but did not answer within {} s; check that the host and port are those of a {} server, or raise `connect_timeout_seconds`",
                limit.as_secs(),
                target.dialect().server_name()
            ),
            source: None,
        })
}
