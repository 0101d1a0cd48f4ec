//! Where a script failed and what it left behind, from the server's own replies.
//!
//! A script goes to the server as one multi-statement text, and each engine answers every
//! statement that completed before the failing one (PostgreSQL's `CommandComplete`, MySQL's
//! OK packets, SQLite's finished steps): counting them names the failing statement, and the
//! splitter gives its line. PostgreSQL also gives the character position of most errors
//! (and of every syntax error, which rejects the whole text before anything runs).
//!
//! A file that manages its own transaction leaves what each engine's transaction rules leave,
//! worked out here by [`leftover`] so the hint after a failure can say it.

use futures_util::StreamExt;
use sqlx::{AssertSqlSafe, Executor};

use super::Dialect;
use crate::sql::split::{self, Statement};

/// Runs `sql` as one multi-statement text on `conn`; returns how many of its statements
/// completed, and on failure how many completed first, with the error.
pub(super) async fn run_counting<C>(
    conn: &mut C,
    sql: String,
) -> Result<usize, (usize, sqlx::Error)>
where
    C: sqlx::Connection,
    for<'c> &'c mut C: Executor<'c, Database = C::Database>,
{
    let mut replies = sqlx::raw_sql(AssertSqlSafe(sql)).execute_many(&mut *conn);
    let mut completed = 0;
    while let Some(reply) = replies.next().await {
        match reply {
            Ok(_) => completed += 1,
            Err(e) => return Err((completed, e)),
        }
    }
    Ok(completed)
}

/// Rolls back what a failed script that manages its own transaction left open (aborted on
/// PostgreSQL: everything written afterwards would fail; on every engine, lost when the
/// connection closes, with the failure record and the history row written after it). The
/// driver does not track a `BEGIN` it did not send, so the script is looked at, unless the
/// caller knows a transaction is `open`; with none open this is a harmless no-op.
pub(super) async fn roll_back_own<C>(conn: &mut C, script: &str, dialect: Dialect, open: bool)
where
    C: sqlx::Connection,
    for<'c> &'c mut C: Executor<'c, Database = C::Database>,
{
    let own = || {
        split::split(script, dialect)
            .iter()
            .any(|s| split::is_transaction_control(s.text))
    };
    if open || own() {
        let _ = sqlx::raw_sql("ROLLBACK").execute(&mut *conn).await;
    }
}

/// Runs dbdeploy's own statements in `sql`, when there are any.
pub(super) async fn run_own<C>(conn: &mut C, sql: String) -> Result<(), sqlx::Error>
where
    C: sqlx::Connection,
    for<'c> &'c mut C: Executor<'c, Database = C::Database>,
{
    if sql.is_empty() {
        return Ok(());
    }
    sqlx::raw_sql(AssertSqlSafe(sql))
        .execute(&mut *conn)
        .await
        .map(drop)
}

/// The failing statement (1-based) and its line in `script`: from `position`, the server's
/// 1-based character position of the error in the script, when it gave one; else the
/// statement after the `ran` that completed.
pub(super) fn locate(
    script: &str,
    dialect: Dialect,
    ran: usize,
    position: Option<usize>,
) -> (Option<usize>, Option<usize>) {
    let statements = split::split(script, dialect);
    if let Some(pos) = position.filter(|p| *p > 0) {
        let byte = script
            .char_indices()
            .nth(pos - 1)
            .map_or(script.len(), |(b, _)| b);
        let line = script[..byte].matches('\n').count() + 1;
        let statement = statements
            .iter()
            .rposition(|s| offset(script, s) <= byte)
            .map(|i| i + 1);
        return (statement, Some(line));
    }
    match statements.get(ran) {
        Some(s) => (Some(ran + 1), Some(s.line)),
        None => (None, None),
    }
}

/// Byte offset of a statement in the script it was split from.
fn offset(script: &str, s: &Statement<'_>) -> usize {
    s.text.as_ptr() as usize - script.as_ptr() as usize
}

/// What a failed script that manages its own transaction left: its statements (1-based,
/// transaction control left out) that stay applied, and those that ran and were undone with
/// the transaction the failure ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Leftover {
    /// Statements whose changes stay.
    pub applied: Vec<usize>,
    /// Statements that ran and were rolled back.
    pub rolled_back: Vec<usize>,
}

/// How a statement moves transaction boundaries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Boundary {
    Begin,
    Commit,
    Rollback,
    /// Commits what is open and itself (MySQL's DDL and a few others).
    ImplicitCommit,
    None,
}

fn boundary(s: &str, dialect: Dialect) -> Boundary {
    let text = split::normalized(s).to_ascii_uppercase();
    let mut words = text.split([' ', '(', ';']).filter(|w| !w.is_empty());
    let first = words.next().unwrap_or("");
    let second = words.next().unwrap_or("");
    if split::is_transaction_control(s) {
        return match first {
            "BEGIN" | "START" => Boundary::Begin,
            "ROLLBACK" | "ABORT" => Boundary::Rollback,
            _ => Boundary::Commit,
        };
    }
    // MySQL commits before and after these (not for temporary tables).
    let implicit = matches!(
        first,
        "ALTER"
            | "CREATE"
            | "DROP"
            | "RENAME"
            | "TRUNCATE"
            | "GRANT"
            | "REVOKE"
            | "LOCK"
            | "UNLOCK"
            | "ANALYZE"
            | "OPTIMIZE"
            | "REPAIR"
            | "FLUSH"
    ) && second != "TEMPORARY";
    if dialect == Dialect::MySql && implicit {
        Boundary::ImplicitCommit
    } else {
        Boundary::None
    }
}

/// What stays of a script that manages its own transaction after `ran` of its statements
/// completed and the next one failed (and dbdeploy rolled back what was still open):
///
/// - PostgreSQL runs the script as one message, in one implicit transaction: statements before
///   a `BEGIN` join its transaction, and only what a `COMMIT` before the failure committed stays.
/// - SQLite commits each statement outside `BEGIN`…`COMMIT` on its own: those stay, and the
///   open transaction's statements are rolled back.
/// - MySQL/MariaDB as SQLite, but every statement that changes the schema commits at once,
///   ending any open transaction: it and everything before it stay.
#[must_use]
pub fn leftover(script: &str, dialect: Dialect, ran: usize) -> Leftover {
    let statements = split::split(script, dialect);
    let kinds: Vec<Boundary> = statements
        .iter()
        .take(ran)
        .map(|s| boundary(s.text, dialect))
        .collect();
    let mut out = Leftover::default();
    // Statements since the start of the transaction still open, if one is.
    let mut open: Vec<usize> = Vec::new();
    // PostgreSQL: everything is in a transaction until a COMMIT ends it.
    let mut in_transaction = dialect == Dialect::Postgres;
    for (i, kind) in kinds.iter().enumerate() {
        let n = i + 1;
        match kind {
            Boundary::Begin => {
                if dialect == Dialect::MySql {
                    // BEGIN commits what is open.
                    out.applied.append(&mut open);
                }
                in_transaction = true;
            }
            Boundary::Commit => {
                out.applied.append(&mut open);
                in_transaction = dialect == Dialect::Postgres;
            }
            Boundary::Rollback => {
                // Undone by the script itself: neither kept nor undone by the failure.
                open.clear();
                in_transaction = dialect == Dialect::Postgres;
            }
            Boundary::ImplicitCommit => {
                out.applied.append(&mut open);
                out.applied.push(n);
                in_transaction = false;
            }
            Boundary::None if in_transaction => open.push(n),
            Boundary::None => out.applied.push(n),
        }
    }
    out.rolled_back = open;
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const OWN: &str = "CREATE TABLE before_tx (n INTEGER);\nBEGIN;\nCREATE TABLE inside (n INTEGER);\nINSERT INTO kept VALUES (1);\nINSERT INTO missing VALUES (1);\nCOMMIT;\n";

    fn left(dialect: Dialect, ran: usize) -> (Vec<usize>, Vec<usize>) {
        let l = leftover(OWN, dialect, ran);
        (l.applied, l.rolled_back)
    }

    #[test]
    fn each_engine_keeps_what_its_transaction_rules_keep() {
        assert_eq!(left(Dialect::Postgres, 4), (vec![], vec![1, 3, 4]));
        assert_eq!(left(Dialect::Sqlite, 4), (vec![1], vec![3, 4]));
        assert_eq!(left(Dialect::MySql, 4), (vec![1, 3, 4], vec![]));
        // Nothing ran: nothing stays, nothing was undone.
        assert_eq!(left(Dialect::Postgres, 0), (vec![], vec![]));
    }

    #[test]
    fn a_commit_before_the_failure_keeps_what_it_committed() {
        let script = "BEGIN; INSERT INTO a VALUES (1); COMMIT; BEGIN; INSERT INTO a VALUES (2); INSERT INTO x VALUES (1); COMMIT;";
        for d in [Dialect::Postgres, Dialect::Sqlite, Dialect::MySql] {
            let l = leftover(script, d, 5);
            assert_eq!((l.applied, l.rolled_back), (vec![2], vec![5]), "{d:?}");
        }
        // A ROLLBACK in the script undid its own statements.
        let l = leftover(
            "BEGIN; INSERT INTO a VALUES (1); ROLLBACK; SELECT x",
            Dialect::Sqlite,
            3,
        );
        assert_eq!((l.applied, l.rolled_back), (vec![], vec![]));
    }

    #[test]
    fn the_failing_statement_is_the_one_after_those_that_completed() {
        let script = "-- c\nCREATE TABLE a (n INT);\n\nINSERT INTO a\n  VALUES (1);\n";
        assert_eq!(
            locate(script, Dialect::Postgres, 1, None),
            (Some(2), Some(4))
        );
        assert_eq!(locate(script, Dialect::Postgres, 2, None), (None, None));
        // A position: its own line, in the statement that holds it.
        let pos = script.find("VALUES").unwrap() + 1;
        assert_eq!(
            locate(script, Dialect::Postgres, 0, Some(pos)),
            (Some(2), Some(5))
        );
        // Characters, not bytes.
        let script = "SELECT 'é';\nSELEC 1;";
        let pos = script[..script.find("SELEC ").unwrap()].chars().count() + 1;
        assert_eq!(
            locate(script, Dialect::Postgres, 0, Some(pos)),
            (Some(2), Some(2))
        );
    }
}
