//! A restore that did not finish must say what it left: "nothing was changed" is the backup
//! step's promise, and after a restore that dropped tables it would be a lie. A provider
//! reports how it stopped ([`Stopped`]); the restore step adds which backup and the exact
//! command that finishes the job ([`RestoreFailure`]).

use super::BackupError;

/// The state a restore that did not finish left the database in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestoreState {
    /// As it was before the restore: it stopped before its destructive phase, or ran in one
    /// transaction that was rolled back.
    Unchanged,
    /// Partly restored: what was done and what is missing.
    Partial(String),
    /// Not known: a configured restore command failed.
    Unknown,
}

impl RestoreState {
    fn sentence(&self) -> String {
        match self {
            RestoreState::Unchanged => "the database was not changed".into(),
            RestoreState::Partial(detail) => {
                format!("the database is PARTLY restored: {detail}")
            }
            RestoreState::Unknown => {
                "the restore command failed, and what it changed is not known".into()
            }
        }
    }
}

/// How a provider's restore stopped.
#[derive(Debug)]
pub struct Stopped {
    /// What it left.
    pub state: RestoreState,
    /// Why.
    pub cause: BackupError,
    /// A signal stopped it.
    pub interrupted: bool,
    /// Where the data the restore was replacing is kept, when it is.
    pub kept: Option<String>,
}

impl Stopped {
    /// Stopped before anything was changed.
    #[must_use]
    pub fn unchanged(cause: BackupError) -> Self {
        Self {
            state: RestoreState::Unchanged,
            cause,
            interrupted: false,
            kept: None,
        }
    }

    /// Stopped part-way: `detail` says what is done and what is missing.
    #[must_use]
    pub fn partial(detail: String, cause: BackupError) -> Self {
        Self {
            state: RestoreState::Partial(detail),
            cause,
            interrupted: false,
            kept: None,
        }
    }

    /// Marks it as stopped by a signal when `interrupted`.
    #[must_use]
    pub fn interrupted(mut self, interrupted: bool) -> Self {
        self.interrupted |= interrupted;
        self
    }
}

/// A restore that failed or was stopped, with what it left and how to finish it.
#[derive(Debug, thiserror::Error)]
#[error(
    "the restore of `{id}` {}: {}",
    if *interrupted { "was interrupted" } else { "failed" },
    state.sentence()
)]
pub struct RestoreFailure {
    /// The backup.
    pub id: String,
    /// The environment.
    pub environment: String,
    /// What it left.
    pub state: RestoreState,
    /// A signal stopped it.
    pub interrupted: bool,
    /// Why.
    #[source]
    pub cause: BackupError,
    /// The command that restores the backup again.
    pub retry: String,
    /// Where the data the restore was replacing is kept, when it is.
    pub kept: Option<String>,
}

impl RestoreFailure {
    /// A provider's stop, for backup `id` of `environment`; `retry` restores it again.
    #[must_use]
    pub fn new(stopped: Stopped, id: &str, environment: &str, retry: String) -> Self {
        Self {
            id: id.to_owned(),
            environment: environment.to_owned(),
            state: stopped.state,
            interrupted: stopped.interrupted,
            cause: stopped.cause,
            retry,
            kept: stopped.kept,
        }
    }

    /// The stable code for JSON.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match (&self.state, self.interrupted) {
            (_, true) => "restore-interrupted",
            (RestoreState::Partial(_), false) => "restore-partial",
            _ => "restore-failed",
        }
    }

    /// What to do, stating the state the database is in.
    #[must_use]
    pub fn hints(&self) -> Vec<String> {
        let env = &self.environment;
        let mut hints = match &self.state {
            RestoreState::Unchanged => vec![
                "the database is as it was before the restore".to_owned(),
                format!("fix the cause above, then restore again: `{}`", self.retry),
            ],
            RestoreState::Partial(_) => vec![
                "the database is partly restored and must not be used as it is".to_owned(),
                format!("finish the restore: `{}`", self.retry),
                format!(
                    "until then `dbdeploy status {env}`, `health` and `migrate` report the unfinished restore and refuse to run"
                ),
            ],
            RestoreState::Unknown => vec![
                format!(
                    "check the database (`dbdeploy diff {env}`, `dbdeploy status {env}`), then restore again: `{}`",
                    self.retry
                ),
                format!(
                    "until then `dbdeploy status {env}`, `health` and `migrate` report the unfinished restore and refuse to run"
                ),
            ],
        };
        if let Some(kept) = &self.kept {
            hints.push(format!(
                "the data the restore was replacing is kept in {kept}"
            ));
        }
        hints
    }
}
