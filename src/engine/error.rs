//! What a failed database operation reports: a one-line message for every output (terminal,
//! JSON, audit log, history table) and, underneath, the driver's chain of causes for the
//! `Caused by:` lines of the terminal. Both are scrubbed of secrets when they are made, because
//! driver errors can echo connection details.

use std::error::Error as StdError;

use super::Target;

/// A failed database operation. Messages are already scrubbed of secrets.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The server could not be reached or refused the login.
    #[error("cannot connect to {target}: {message}")]
    Connect {
        /// A password-free description of the target.
        target: String,
        /// The driver's message.
        message: String,
        /// What the driver reported underneath, when it did (the OS error of a refused
        /// connection, the server's error of a refused login).
        #[source]
        source: Option<Cause>,
    },
    /// A statement failed.
    #[error("{context}: {message}")]
    Query {
        /// What dbdeploy was doing.
        context: String,
        /// The database's own message.
        message: String,
        /// The database's error with its code, when a driver error is the cause.
        #[source]
        source: Option<Cause>,
    },
    /// The database user lacks a privilege dbdeploy needs (reading a tracking table, listing
    /// tables): an answer such as "empty" or "pending" would be wrong.
    #[error("permission denied: {what}")]
    PermissionDenied {
        /// What was refused: the privilege and the object, as far as the server names them.
        what: String,
        /// The privilege (`SELECT`, `INSERT`, ...), when known.
        privilege: Option<String>,
        /// The table, when the refusal is about one.
        table: Option<String>,
        /// The server's error with its code.
        #[source]
        source: Option<Cause>,
    },
    /// Another deploy held the lock for longer than the configured wait.
    #[error("timed out after {seconds} s waiting for the deploy lock{holder}")]
    LockTimeout {
        /// The wait.
        seconds: u64,
        /// Who holds it, when the engine can tell.
        holder: String,
    },
}

impl DbError {
    /// Wraps a driver error with what dbdeploy was doing; a refused privilege becomes
    /// [`DbError::PermissionDenied`].
    pub fn query(context: impl Into<String>, err: &sqlx::Error) -> Self {
        if let Some(denied) = super::privilege::denied(err) {
            return denied.into_error(None, Cause::of(err));
        }
        DbError::Query {
            context: context.into(),
            message: driver_message(err),
            source: Cause::of(err),
        }
    }

    /// The same error, with the privilege `sql` needs when the server refused one without
    /// naming it (PostgreSQL names only the object).
    #[must_use]
    pub fn needing(self, sql: &str) -> Self {
        match self {
            DbError::PermissionDenied {
                privilege: None,
                table,
                what,
                source,
            } => match super::privilege::of_statement(sql) {
                Some(p) => super::privilege::Denied::rephrase(p, table, what, source),
                None => DbError::PermissionDenied {
                    what,
                    privilege: None,
                    table,
                    source,
                },
            },
            other => other,
        }
    }

    /// What to do about a refused privilege; empty for other errors.
    #[must_use]
    pub fn permission_hints(&self) -> Vec<String> {
        let DbError::PermissionDenied {
            privilege, table, ..
        } = self
        else {
            return Vec::new();
        };
        let grant = match (privilege, table) {
            (_, Some(table)) => format!(
                "grant the database user dbdeploy connects as the rights the migration tool needs on it, as the table's owner: `GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO <user>`; or connect as the user that owns the tables"
            ),
            (Some(p), None) => format!(
                "grant the database user dbdeploy connects as the {p} privilege on the database (`GRANT {p} ON <database>.* TO <user>`), or connect as the user that owns it"
            ),
            (None, None) => "grant the database user dbdeploy connects as the rights it needs (`GRANT ...`), or connect as the user that owns the schema".into(),
        };
        vec![grant, "nothing was changed".into()]
    }

    /// A failed connection to `target`, from the driver's error.
    pub fn connect(target: &Target, err: &sqlx::Error) -> Self {
        DbError::Connect {
            target: target.describe(),
            message: driver_message(err),
            source: Cause::of(err),
        }
    }
}

/// The database's own message for an error, scrubbed of secrets.
#[must_use]
pub fn driver_message(err: &sqlx::Error) -> String {
    let text = match err {
        sqlx::Error::Database(db) => db.message().to_owned(),
        other => other.to_string(),
    };
    crate::redact::scrub(&text).into_owned()
}

/// One link of a driver error's chain of causes, kept as scrubbed text: the driver's error
/// types are not `Clone`, may be `!Sync`, and their text may hold connection details.
#[derive(Debug, Clone)]
pub struct Cause {
    text: String,
    next: Option<Box<Cause>>,
}

impl Cause {
    /// The causes of a driver error that its one-line message ([`driver_message`]) leaves out:
    /// for an error from the server, the server's error with its code; otherwise what the
    /// driver's error wraps (down to the OS error of a refused connection). The driver's own
    /// wrapper is skipped: its text is the message already.
    #[must_use]
    pub fn of(err: &sqlx::Error) -> Option<Self> {
        match err {
            sqlx::Error::Database(db) => Some(Self::new(server_error(db.as_ref()), None)),
            other => Self::chain(other.source()),
        }
    }

    fn chain(err: Option<&(dyn StdError + 'static)>) -> Option<Self> {
        let err = err?;
        Some(Self::new(err.to_string(), Self::chain(err.source())))
    }

    fn new(text: String, next: Option<Self>) -> Self {
        Self {
            text: crate::redact::scrub(&text).into_owned(),
            next: next.map(Box::new),
        }
    }
}

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl StdError for Cause {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.next.as_deref().map(|c| c as &(dyn StdError + 'static))
    }
}

/// A server's error with its code. MySQL's and SQLite's drivers already print the code; the
/// PostgreSQL driver prints the line of the *server's* source file instead, which would read as
/// a line of the migration, so its text is made here, in the shape MySQL's driver uses.
fn server_error(db: &dyn sqlx::error::DatabaseError) -> String {
    match db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
        Some(pg) => format!("{}: {}", pg.code(), pg.message()),
        None => db.to_string(),
    }
}

/// A script that failed part-way, with where it failed when that is known.
#[derive(Debug, Clone)]
pub struct ScriptError {
    /// The database's message.
    pub message: String,
    /// 1-based statement number within the script.
    pub statement: Option<usize>,
    /// 1-based line of that statement (or of the error's position in it) in the file.
    pub line: Option<usize>,
    /// How many statements of the script completed before the failure, when the server's
    /// replies tell (none, when it rejected the whole script).
    pub ran: Option<usize>,
    /// The statement gave up waiting for a lock another session holds.
    pub lock_wait: Option<LockWait>,
}

/// Why an atomic migration that ran did not commit.
#[derive(Debug)]
pub enum Unfinished {
    /// Writing its tracking rows failed.
    Record(DbError),
    /// The commit failed: the server rolled the transaction back (or the connection was lost,
    /// and whether it committed is unknown).
    Commit(DbError),
}

/// A statement that waited longer than allowed for a lock another session holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LockWait {
    /// The sessions that held it, described for people (pid or connection id, application,
    /// state, since when), as far as the server shows them.
    pub blockers: Vec<String>,
}

impl ScriptError {
    /// A failure that no statement or line of the script is to blame for.
    #[must_use]
    pub fn whole(message: String) -> Self {
        Self {
            message,
            statement: None,
            line: None,
            ran: None,
            lock_wait: None,
        }
    }

    /// A script that failed at `statement` (and `line`) after `ran` of its statements
    /// completed; `lock_wait` when it gave up waiting for a lock.
    pub(super) fn at(
        err: &sqlx::Error,
        (statement, line): (Option<usize>, Option<usize>),
        ran: usize,
        lock_wait: Option<LockWait>,
    ) -> Self {
        Self {
            statement,
            line,
            ran: Some(ran),
            lock_wait,
            ..Self::whole(driver_message(err))
        }
    }

    /// A script the driver reports failed, at `line` of the script when known.
    #[must_use]
    pub fn driver(err: &sqlx::Error, line: Option<usize>) -> Self {
        Self {
            line,
            ..Self::whole(driver_message(err))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(err: &(dyn StdError + 'static)) -> Vec<String> {
        std::iter::successors(err.source(), |e| (*e).source())
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn a_refused_connection_ends_with_the_os_error() {
        let io = std::io::Error::from_raw_os_error(libc::ECONNREFUSED);
        let os = io.to_string();
        let target = Target::Sqlite {
            path: "/tmp/x.db".into(),
        };
        let err = DbError::connect(&target, &sqlx::Error::Io(io));
        assert_eq!(chain(&err), [os.as_str()]);
        assert!(err.to_string().ends_with(&os), "{err}");
    }

    #[test]
    fn causes_are_scrubbed() {
        let inner = std::io::Error::other("refused by postgres://u:hunter22@db/app");
        let err = DbError::query("query failed", &sqlx::Error::Io(inner));
        assert_eq!(chain(&err), ["refused by postgres://u:***@db/app"]);
    }

    #[test]
    fn errors_made_without_a_driver_error_have_no_cause() {
        let err = DbError::LockTimeout {
            seconds: 1,
            holder: String::new(),
        };
        assert!(err.source().is_none());
    }
}
