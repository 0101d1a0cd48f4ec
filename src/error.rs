//! The top-level error: every boundary's error, with an exit code, a stable code for JSON,
//! a class (before, during or after the change) and hints that say what to do next.

use crate::backup::BackupError;
use crate::config::ConfigError;
use crate::engine::DbError;
use crate::external::ExternalError;
use crate::handler::HandlerError;
use crate::interrupt::Interrupted;
use crate::pipeline::apply::ApplyError;
use crate::pipeline::approve::ApprovalError;
use crate::pipeline::drift::SchemaDriftError;
use crate::pipeline::health::HealthAfterError;
use crate::pipeline::pending::DriftError;
use crate::pipeline::revert::RevertError;
use crate::pipeline::verify::VerifyError;

/// The process exit codes, as documented in `--help` and the README.
pub mod exit {
    /// Success.
    pub const SUCCESS: u8 = 0;
    /// Deployment or runtime failure.
    pub const FAILURE: u8 = 1;
    /// Usage or configuration error.
    pub const USAGE: u8 = 2;
    /// Cancelled or approval refused.
    pub const CANCELLED: u8 = 3;
    /// `status`: migrations are pending.
    pub const PENDING: u8 = 4;
    /// `status`: failed, modified or missing migrations.
    pub const INCONSISTENT: u8 = 5;
    /// Interrupted by Ctrl-C (128 + SIGINT); the deploy stopped at a safe point.
    pub const INTERRUPTED: u8 = crate::interrupt::EXIT_CODE;
}

/// When in the deploy an error happened; decides what the user is told about the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorClass {
    /// Nothing was changed; safe to retry after fixing.
    PreDeployment,
    /// A migration failed.
    MidDeployment,
    /// Migrations applied, but validation afterwards failed.
    PostDeployment,
}

/// Any error a command can end with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Configuration or flags.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The migrations folder.
    #[error(transparent)]
    Handler(#[from] HandlerError),
    /// The database.
    #[error(transparent)]
    Db(#[from] DbError),
    /// History and files disagree.
    #[error(transparent)]
    Drift(Box<DriftError>),
    /// A migration failed.
    #[error(transparent)]
    Apply(#[from] Box<ApplyError>),
    /// Approval was refused or impossible.
    #[error(transparent)]
    Approval(#[from] ApprovalError),
    /// Verification after the deploy failed.
    #[error(transparent)]
    Verify(#[from] VerifyError),
    /// A backup or a restore failed.
    #[error(transparent)]
    Backup(#[from] BackupError),
    /// The schema changed outside dbdeploy.
    #[error(transparent)]
    SchemaDrift(#[from] SchemaDriftError),
    /// The health check after the deploy failed.
    #[error(transparent)]
    HealthAfter(#[from] Box<HealthAfterError>),
    /// A down script failed (`dbdeploy down`).
    #[error(transparent)]
    Revert(#[from] Box<RevertError>),
    /// An external tool's command failed (`migration_tool = "command"`).
    #[error(transparent)]
    External(#[from] Box<ExternalError>),
    /// Ctrl-C stopped the deploy at a safe point.
    #[error(transparent)]
    Interrupted(#[from] Box<Interrupted>),
    /// The promotion gate refused the deploy (`promote_from`).
    #[error(transparent)]
    Promotion(#[from] Box<crate::pipeline::promote::PromotionError>),
    /// A server dbdeploy refuses to deploy to (a distributed SQL server).
    #[error("{server} is not supported: {reason}")]
    UnsupportedServer {
        /// The product and version.
        server: String,
        /// What breaks there.
        reason: String,
    },
    /// A deploy-mode environment refused findings at or above `[lint] block_on`.
    #[error("the lint blocks this deploy of `{environment}`: {} finding(s) at or above `[lint] block_on = \"{level}\"`: {}", findings.len(), findings.join("; "))]
    LintBlocked {
        /// The environment.
        environment: String,
        /// `[lint] block_on`.
        level: crate::lint::Level,
        /// Each finding: migration, line, code and message.
        findings: Vec<String>,
    },
    /// An error that came after this run had already changed the database: the inner error
    /// must not claim that nothing was changed.
    #[error(transparent)]
    AfterChanges(Box<AfterChanges>),
    /// Targets of a fleet failed, were cancelled or were not started.
    #[error(transparent)]
    Fleet(#[from] Box<crate::fleet::report::FleetFailure>),
    /// A required step is not available in this version.
    #[error("{message}")]
    Unavailable {
        /// What is missing.
        message: String,
        /// What to do.
        hint: String,
    },
}

/// An error after changes (see [`Error::after_changes`]).
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct AfterChanges {
    /// The error as the step reported it.
    #[source]
    pub error: Error,
    /// The migrations this run had applied (or reverted) before it.
    pub changed: Vec<String>,
}

impl From<ExternalError> for Error {
    fn from(e: ExternalError) -> Self {
        Error::External(Box::new(e))
    }
}

impl From<DriftError> for Error {
    fn from(e: DriftError) -> Self {
        Error::Drift(Box::new(e))
    }
}

impl Error {
    /// The process exit code.
    #[must_use]
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::AfterChanges(e) => e.error.exit_code(),
            Error::Config(_) | Error::Handler(_) | Error::UnsupportedServer { .. } => exit::USAGE,
            Error::Backup(e) if e.interrupted() => exit::INTERRUPTED,
            Error::Backup(e) if e.is_usage() => exit::USAGE,
            Error::External(e) => e.exit_code(),
            Error::Approval(_) => exit::CANCELLED,
            Error::Interrupted(_) => exit::INTERRUPTED,
            Error::Fleet(e) if e.interrupted => exit::INTERRUPTED,
            Error::Db(_)
            | Error::Fleet(_)
            | Error::Drift(_)
            | Error::Apply(_)
            | Error::Revert(_)
            | Error::Verify(_)
            | Error::Backup(_)
            | Error::SchemaDrift(_)
            | Error::HealthAfter(_)
            | Error::LintBlocked { .. }
            | Error::Promotion(_)
            | Error::Unavailable { .. } => exit::FAILURE,
        }
    }

    /// Whether a signal stopped the run (it is logged as interrupted).
    #[must_use]
    pub fn interrupted(&self) -> bool {
        match self {
            Error::Interrupted(_) => true,
            Error::Fleet(e) => e.interrupted,
            Error::Backup(e) => e.interrupted(),
            Error::AfterChanges(e) => e.error.interrupted(),
            _ => false,
        }
    }

    /// A stable identifier for JSON consumers.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Error::Config(ConfigError::UnknownEnvironment { .. }) => "unknown-environment",
            Error::Config(ConfigError::MissingVariable { .. }) => "missing-environment-variable",
            Error::Config(ConfigError::BadUrl { .. }) => "invalid-database-url",
            Error::Config(_) => "invalid-configuration",
            Error::Handler(HandlerError::Table { .. }) => "unexpected-tracking-table",
            Error::Handler(_) => "invalid-migrations",
            Error::Db(DbError::Connect { .. }) => "connection-failed",
            Error::Db(DbError::LockTimeout { .. }) => "lock-timeout",
            Error::Db(DbError::Query { .. }) => "database-error",
            Error::Db(DbError::PermissionDenied { .. }) => "permission-denied",
            Error::Drift(_) => "inconsistent-history",
            Error::Apply(_) => "migration-failed",
            Error::Revert(_) => "revert-failed",
            Error::Approval(ApprovalError::NoTerminal { .. }) => "approval-required",
            Error::Approval(_) => "cancelled",
            Error::Verify(_) => "verification-failed",
            Error::Backup(e) => e.code(),
            Error::External(e) => e.code(),
            Error::SchemaDrift(_) => "schema-drift",
            Error::HealthAfter(_) => "health-check-failed",
            Error::Interrupted(_) => "interrupted",
            Error::LintBlocked { .. } => "lint-blocked",
            Error::AfterChanges(e) => e.error.code(),
            Error::Fleet(_) => "fleet-targets-failed",
            Error::Unavailable { .. } => "unavailable",
            Error::Promotion(e) => match **e {
                crate::pipeline::promote::PromotionError::NotPromoted { .. } => "not-promoted",
                crate::pipeline::promote::PromotionError::Unreadable { .. } => {
                    "promotion-unchecked"
                }
                crate::pipeline::promote::PromotionError::Unsupported { .. } => {
                    "promotion-unsupported"
                }
            },
            Error::UnsupportedServer { .. } => "unsupported-server",
        }
    }

    /// Before, during or after the change.
    #[must_use]
    pub fn class(&self) -> ErrorClass {
        match self {
            Error::Apply(_) | Error::Revert(_) | Error::AfterChanges(_) => {
                ErrorClass::MidDeployment
            }
            Error::Interrupted(e) if e.changed() => ErrorClass::MidDeployment,
            Error::Backup(e) if e.changed() => ErrorClass::MidDeployment,
            Error::Verify(_) | Error::HealthAfter(_) => ErrorClass::PostDeployment,
            Error::External(e) => e.class(),
            Error::Fleet(e) if e.applied > 0 => ErrorClass::MidDeployment,
            _ => ErrorClass::PreDeployment,
        }
    }

    /// The error of a step that failed after the run had changed the database (`changed`): a
    /// database error (writing the tracking table after migrations ran, say), whose hints
    /// would say that nothing was changed, says what was changed instead.
    #[must_use]
    pub fn after_changes(self, changed: &[String]) -> Error {
        // Only database errors: the others either know what was changed (apply, revert,
        // interrupt, backup) or cannot come after a change, and callers match on them.
        if changed.is_empty() || !matches!(self, Error::Db(_)) {
            return self;
        }
        Error::AfterChanges(Box::new(AfterChanges {
            error: self,
            changed: changed.to_vec(),
        }))
    }

    /// The chain of causes under the message, outermost first, each scrubbed of secrets.
    /// thiserror's transparent variants repeat the same message one level down; those are
    /// left out.
    #[must_use]
    pub fn causes(&self) -> Vec<String> {
        let top = self.to_string();
        let mut causes: Vec<String> = Vec::new();
        let mut source = std::error::Error::source(self);
        while let Some(cause) = source {
            let text = crate::redact::scrub(&cause.to_string()).into_owned();
            if text != top && causes.last() != Some(&text) {
                causes.push(text);
            }
            source = cause.source();
        }
        causes
    }

    /// The message with its causes, on one line: for the history row and the audit log.
    #[must_use]
    pub fn full_message(&self) -> String {
        std::iter::once(self.to_string())
            .chain(self.causes())
            .collect::<Vec<_>>()
            .join(": ")
    }

    /// What to do next, one line each.
    #[must_use]
    pub fn hints(&self) -> Vec<String> {
        match self {
            Error::Config(e) => config_hints(e),
            Error::Handler(HandlerError::Table { .. }) => {
                vec!["nothing was changed".into()]
            }
            Error::Handler(_) => vec!["fix the file or folder named above; nothing was changed".into()],
            Error::Db(DbError::Connect { .. }) => vec![
                "check that the server is running and reachable, and that the URL's host, port, user, password and database are right".into(),
                "nothing was changed".into(),
            ],
            Error::Db(DbError::LockTimeout { .. }) => vec![
                "another deploy (dbdeploy or the migration tool itself) is running against this database; wait for it to finish and retry".into(),
                "raise `lock_timeout_seconds` in the environment to wait longer".into(),
            ],
            Error::Db(DbError::Query { .. }) => vec!["nothing was changed; fix the cause and retry".into()],
            Error::Db(e @ DbError::PermissionDenied { .. }) => e.permission_hints(),
            Error::Drift(e) => e.hints(),
            Error::Apply(e) => e.hints(),
            Error::Revert(e) => e.hints(),
            Error::Approval(e) => e.hints(),
            Error::Verify(_) => vec![
                "the migrations ran, but the tracking table does not say what was expected; inspect it before deploying again (dbdeploy status)".into(),
            ],
            Error::Backup(e) => e.hints(),
            Error::SchemaDrift(e) => e.hints(),
            Error::HealthAfter(e) => e.hints(),
            Error::External(e) => e.hints(),
            Error::Interrupted(e) => e.hints(),
            Error::LintBlocked { .. } => vec![
                "change the migration as each finding suggests (`dbdeploy lint` shows them with the safer alternative)".into(),
                "or let a finding through with a `-- dbdeploy:allow CODE reason` comment at its statement, or its code in `[lint] allow`".into(),
                "nothing was changed".into(),
            ],
            Error::Unavailable { hint, .. } => vec![hint.clone()],
            Error::AfterChanges(e) => e.hints(),
            Error::Fleet(e) => e.hints(),
            Error::Promotion(e) => e.hints(),
            Error::UnsupportedServer { .. } => vec![
                "dbdeploy deploys to PostgreSQL, MySQL/MariaDB and SQLite; docs/distributed-sql.md says what CockroachDB and YugabyteDB support would take".into(),
                "nothing was changed".into(),
            ],
        }
    }
}

fn config_hints(e: &ConfigError) -> Vec<String> {
    match e {
        ConfigError::Missing { .. } => vec![
            "run dbdeploy from the project folder, point at it with -C DIR, or name the file with -c FILE".into(),
        ],
        ConfigError::NoConfig { .. } => vec![
            "run `dbdeploy init` to write dbdeploy.toml (or `dbdeploy init --tool NAME`), or run from the project folder (-C DIR)".into(),
        ],
        ConfigError::UnknownEnvironment { known, .. } if known.is_empty() => {
            vec!["add an [environments.NAME] table to the configuration".into()]
        }
        ConfigError::UnknownEnvironment { known, name, .. } => {
            let mut hints: Vec<String> = closest(name, known)
                .map(|k| format!("did you mean `{k}`?"))
                .into_iter()
                .collect();
            hints.push(format!("environments defined: {}", known.join(", ")));
            hints
        }
        ConfigError::MissingVariable { var, .. } => {
            vec![format!("export {var}=<database URL> before running dbdeploy")]
        }
        ConfigError::BadUrl { .. } => vec![
            "expected postgres://USER:PASSWORD@HOST:PORT/DB, mysql://USER:PASSWORD@HOST:PORT/DB or sqlite://PATH; percent-encode special characters in the password".into(),
        ],
        ConfigError::UrlSource { .. } => {
            vec!["set `url_env = \"VARIABLE\"` (or `url` for a local SQLite file)".into()]
        }
        ConfigError::Parse { .. } => {
            vec!["see the configuration reference in the README".into()]
        }
        _ => Vec::new(),
    }
}

/// The known name most like `name`, when one is close enough to be a typo (`prod` for
/// `production`, `stagign` for `staging`).
fn closest<'a>(name: &str, known: &'a [String]) -> Option<&'a String> {
    known
        .iter()
        .map(|k| (k, strsim::jaro_winkler(name, k)))
        .filter(|(k, score)| *score >= 0.8 || strsim::damerau_levenshtein(name, k) <= 2)
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(k, _)| k)
}

impl AfterChanges {
    /// The inner error's hints without its "nothing was changed", and what was changed.
    fn hints(&self) -> Vec<String> {
        let mut hints = vec![format!(
            "this run had already changed the database: {} ({}); check its state with `dbdeploy status` before retrying",
            self.changed.join(", "),
            if self.changed.len() == 1 {
                "1 migration".to_owned()
            } else {
                format!("{} migrations", self.changed.len())
            }
        )];
        hints.extend(
            self.error
                .hints()
                .into_iter()
                .filter_map(|h| without_nothing_changed(&h)),
        );
        hints
    }
}

/// `hint` without its claim that nothing was changed; `None` when nothing else is left.
fn without_nothing_changed(hint: &str) -> Option<String> {
    const CLAIM: &str = "nothing was changed";
    let Some(at) = hint.find(CLAIM) else {
        return Some(hint.to_owned());
    };
    let before = hint[..at].trim_end().trim_end_matches([';', ',', ':']);
    let after = hint[at + CLAIM.len()..]
        .split_once([':', ';'])
        .map_or("", |(_, rest)| rest)
        .trim();
    let rest = match (before.trim().is_empty(), after.is_empty()) {
        (true, true) => return None,
        (true, false) => after.to_owned(),
        (false, true) => before.trim().to_owned(),
        (false, false) => format!("{}; {after}", before.trim()),
    };
    Some(rest)
}

#[cfg(test)]
mod after_changes_tests {
    use super::*;

    fn query_error() -> Error {
        Error::Db(DbError::Query {
            context: "writing the tracking row".into(),
            message: "permission denied".into(),
            source: None,
        })
    }

    #[test]
    fn a_database_error_after_changes_does_not_say_nothing_was_changed() {
        let e = query_error().after_changes(&["20240101000000_init".into()]);
        assert_eq!(e.code(), "database-error");
        assert_eq!(e.exit_code(), exit::FAILURE);
        assert_eq!(e.class(), ErrorClass::MidDeployment);
        assert_eq!(e.to_string(), query_error().to_string());
        assert_eq!(
            e.hints(),
            [
                "this run had already changed the database: 20240101000000_init (1 migration); check its state with `dbdeploy status` before retrying",
                "fix the cause and retry",
            ]
        );
    }

    #[test]
    fn errors_before_changes_and_errors_that_know_are_left_alone() {
        let e = query_error().after_changes(&[]);
        assert!(matches!(e, Error::Db(_)));
        assert_eq!(e.hints(), ["nothing was changed; fix the cause and retry"]);
    }

    #[test]
    fn the_claim_is_cut_out_of_any_hint() {
        assert_eq!(without_nothing_changed("nothing was changed"), None);
        assert_eq!(
            without_nothing_changed("fix the file or folder named above; nothing was changed")
                .as_deref(),
            Some("fix the file or folder named above")
        );
        assert_eq!(
            without_nothing_changed(
                "nothing was changed: the deploy stops before any change when its backup cannot be made"
            )
            .as_deref(),
            Some("the deploy stops before any change when its backup cannot be made")
        );
        assert_eq!(
            without_nothing_changed("check the URL").as_deref(),
            Some("check the URL")
        );
    }
}
