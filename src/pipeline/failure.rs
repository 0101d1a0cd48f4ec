//! How a failed migration is reported: which script failed and where, what of it stays
//! applied, and the hints that tell the operator what to do next.

use std::path::PathBuf;

use crate::backup::RollbackOutcome;
use crate::engine::{Dialect, Leftover};

/// A migration's script (up or down) that failed: which, where, and the database's message.
#[derive(Debug)]
pub struct FailedScript {
    /// The environment, for hints.
    pub environment: String,
    /// The migration.
    pub migration: String,
    /// Its file.
    pub path: PathBuf,
    /// The database's message.
    pub message: String,
    /// 1-based statement number, when run statement by statement.
    pub statement: Option<usize>,
    /// 1-based line in the file.
    pub line: Option<usize>,
}

/// A migration failed; what ran, what was undone, and where.
#[derive(Debug, thiserror::Error)]
#[error(
    "migration `{}` failed{}: {}",
    .failed.migration,
    position(&.failed.statement, &.failed.line),
    .failed.message
)]
pub struct ApplyError {
    /// The failed migration and where it failed.
    pub failed: FailedScript,
    /// Migrations applied in this run before it.
    pub applied_before: usize,
    /// Its changes and its tracking row were rolled back: the database is as before it.
    pub rolled_back: bool,
    /// The connection to the server was lost (the failure is not the script's fault).
    pub connection_lost: bool,
    /// The connection was lost during the commit: whether it committed is unknown.
    pub commit_unknown: bool,
    /// What the automatic restore from this run's backup did.
    pub rollback: Option<RollbackOutcome>,
    /// The format recorded the failure (a dirty or unfinished row); false for dbmate, where a
    /// migration that failed part-way stays pending.
    pub failure_recorded: bool,
    /// Ran outside dbdeploy's transaction: what of it stays applied, and on which engine,
    /// when that is known (a file that manages its own transaction, or a first statement
    /// that failed).
    pub leftover: Option<(Dialect, Leftover)>,
    /// It gave up waiting for a lock another session holds, after this many attempts.
    pub lock_attempts: Option<u32>,
}

/// Where in a script a failure happened, for messages: ` at statement 2 (line 7)`.
#[must_use]
pub fn position(statement: &Option<usize>, line: &Option<usize>) -> String {
    match (statement, line) {
        (Some(s), Some(l)) => format!(" at statement {s} (line {l})"),
        (None, Some(l)) => format!(" at line {l}"),
        (Some(s), None) => format!(" at statement {s}"),
        (None, None) => String::new(),
    }
}

impl ApplyError {
    /// What to do.
    #[must_use]
    pub fn hints(&self) -> Vec<String> {
        let env = &self.failed.environment;
        let name = &self.failed.migration;
        let mut hints = Vec::new();
        if let Some(r) = self.rollback.as_ref().filter(|r| r.initiated) {
            let id = r.backup_id.as_deref().unwrap_or("?");
            if r.succeeded() {
                hints.push(format!(
                    "the database was restored from backup {id} and verified: it is as it was before this deploy (no migration of this run is applied)"
                ));
                hints.push(format!(
                    "fix {} and run `dbdeploy migrate {env}` again",
                    self.failed.path.display()
                ));
            } else {
                hints.push(format!(
                    "the automatic restore from backup {id} did not complete ({}); inspect the database before anything else",
                    r.describe()
                ));
                hints.push(format!(
                    "retry the restore with `dbdeploy rollback {env} --to {id}`, or restore by hand (see the README)"
                ));
            }
            return hints;
        }
        if let Some(attempts) = self.lock_attempts {
            hints.push(format!(
                "`{name}` waited for a lock another session holds (named above) and gave up after {}; end or wait for that session, then run `dbdeploy migrate {env}` again (`ddl_lock_timeout_seconds` and `ddl_lock_retries` set the wait)",
                self::attempts(attempts)
            ));
        }
        if self.connection_lost {
            hints.push(format!(
                "the connection to the database was lost while `{name}` ran (the server ended the session or restarted, or the network failed); the migration file is not at fault"
            ));
        }
        if self.commit_unknown {
            hints.push(format!(
                "the connection was lost while `{name}` was being committed, so whether it was applied is unknown: `dbdeploy status {env}` lists it as applied if it was, as pending if it was not"
            ));
            hints.push(format!(
                "then run `dbdeploy migrate {env}` again; a migration is never applied twice"
            ));
        } else if self.rolled_back && self.connection_lost {
            hints.push(format!(
                "`{name}` was rolled back with its transaction: the database is as it was before it; run `dbdeploy migrate {env}` again once the server is reachable"
            ));
        } else if self.rolled_back && self.lock_attempts.is_some() {
            hints.push(format!(
                "`{name}` was rolled back: the database is as it was before it; the migration file is not at fault"
            ));
        } else if self.rolled_back {
            hints.push(format!(
                "`{name}` was rolled back: the database is as it was before it; fix {} and run `dbdeploy migrate {env}` again",
                self.failed.path.display()
            ));
        } else if let Some((dialect, left)) = &self.leftover {
            hints.extend(self.leftover_hints(*dialect, left));
        } else {
            hints.push(format!(
                "`{name}` ran partly and could not be rolled back (it runs outside a transaction); its statements before the failure are applied"
            ));
            if self.failure_recorded {
                hints.push(format!(
                    "undo them by hand and run `dbdeploy resolve {env} --rolled-back {name}` to retry, or finish it by hand and run `dbdeploy resolve {env} --applied {name}`"
                ));
            } else {
                hints.push(format!(
                    "this format keeps no record of failed migrations, so `{name}` is still pending and runs again from its first statement at the next deploy: undo its partial changes by hand first, or finish it by hand and run `dbdeploy resolve {env} --applied {name}`"
                ));
            }
        }
        if self.applied_before > 0 {
            hints.push(format!(
                "{} migration(s) before it were applied and stay applied",
                self.applied_before
            ));
        }
        hints.push("later migrations were not attempted".into());
        if let Some(id) = self.rollback.as_ref().and_then(|r| r.backup_id.as_deref()) {
            hints.push(format!(
                "to return to the state before this deploy: `dbdeploy rollback {env} --to {id}`"
            ));
        }
        hints
    }
}

impl ApplyError {
    /// What a failed migration that ran outside dbdeploy's transaction left — a file that
    /// manages its own, as its engine's transaction rules leave it (see
    /// [`crate::engine::leftover`]), or one whose first statement failed — and what to do.
    fn leftover_hints(&self, dialect: Dialect, left: &Leftover) -> Vec<String> {
        let env = &self.failed.environment;
        let name = &self.failed.migration;
        let mut hints = Vec::new();
        let undone = if left.rolled_back.is_empty() {
            String::new()
        } else {
            let (what, verb) = statements(&left.rolled_back);
            let joined = if dialect == Dialect::Postgres {
                " (PostgreSQL runs the file as one transaction: statements before its BEGIN belong to it)"
            } else {
                ""
            };
            format!("{what} {verb} rolled back with its transaction{joined}")
        };
        if left.applied.is_empty() {
            hints.push(if undone.is_empty() {
                format!("nothing of `{name}` ran before the failing statement: the database is as it was before it")
            } else {
                format!(
                    "`{name}` manages its own transaction: {undone}; nothing of `{name}` stays applied"
                )
            });
            // A lock wait is not the file's fault.
            let fix = if self.lock_attempts.is_some() {
                String::new()
            } else {
                format!("fix {}, then ", self.failed.path.display())
            };
            hints.push(if self.failure_recorded {
                format!(
                    "it is recorded as failed: {fix}run `dbdeploy resolve {env} --rolled-back {name}` and `dbdeploy migrate {env}`"
                )
            } else {
                format!("`{name}` is still pending: {fix}run `dbdeploy migrate {env}` again")
            });
            return hints;
        }
        let (what, _) = statements(&left.applied);
        let verb = if left.applied.len() == 1 {
            "stays"
        } else {
            "stay"
        };
        let why = match dialect {
            Dialect::MySql => {
                "committed before the failure: on MySQL/MariaDB a statement that changes the schema commits at once, ending any open transaction"
            }
            _ => "committed before the failure",
        };
        let undone = if undone.is_empty() {
            String::new()
        } else {
            format!("; {undone}")
        };
        hints.push(format!(
            "`{name}` manages its own transaction: {what} {verb} applied ({why}){undone}"
        ));
        hints.push(if self.failure_recorded {
            format!(
                "undo them by hand and run `dbdeploy resolve {env} --rolled-back {name}` to retry, or finish it by hand and run `dbdeploy resolve {env} --applied {name}`"
            )
        } else {
            format!(
                "this format keeps no record of failed migrations, so `{name}` is still pending and runs again from its first statement at the next deploy: undo them by hand first, or finish it by hand and run `dbdeploy resolve {env} --applied {name}`"
            )
        });
        hints
    }
}

/// `statement 1` / `statements 1, 3 and 4`, with the verb that goes with it.
fn statements(numbers: &[usize]) -> (String, &'static str) {
    let n: Vec<String> = numbers.iter().map(ToString::to_string).collect();
    match n.as_slice() {
        [one] => (format!("statement {one}"), "was"),
        [init @ .., last] => (format!("statements {} and {last}", init.join(", ")), "were"),
        [] => (String::new(), "were"),
    }
}

/// `1 attempt`, `3 attempts`.
pub(super) fn attempts(n: u32) -> String {
    if n == 1 {
        "1 attempt".into()
    } else {
        format!("{n} attempts")
    }
}
