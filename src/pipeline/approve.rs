//! Step 7: approval. [`Approved`] can only be built here, so an unapproved plan cannot reach
//! `apply`. Prompts never hang: without a terminal (or under `--json`) approval must come
//! from `--yes`, and Ctrl-C at the prompt cancels.

use crate::migration::Migration;

/// Approval was refused or cannot be asked for.
#[derive(Debug, thiserror::Error)]
pub enum ApprovalError {
    /// No terminal to ask on and no `--yes`.
    #[error(
        "environment `{environment}` is protected and needs approval, but there is no terminal to ask on"
    )]
    NoTerminal {
        /// The environment.
        environment: String,
    },
    /// The user answered something other than `yes`.
    #[error("deployment cancelled: approval was not given")]
    Declined,
    /// Ctrl-C at the prompt.
    #[error("deployment cancelled: interrupted at the approval prompt")]
    Interrupted,
}

impl ApprovalError {
    /// What to do.
    #[must_use]
    pub fn hints(&self) -> Vec<String> {
        match self {
            ApprovalError::NoTerminal { .. } => vec![
                "pass --yes to approve from CI or a script (after reviewing `dbdeploy migrate ENV --dry-run`)".into(),
                "nothing was changed".into(),
            ],
            _ => vec!["nothing was changed".into()],
        }
    }
}

/// Pending migrations a person (or `--yes`) approved.
#[derive(Debug)]
pub struct Approved<'p> {
    migrations: Vec<&'p Migration>,
}

impl<'p> Approved<'p> {
    /// The approved migrations, in order.
    #[must_use]
    pub fn migrations(&self) -> &[&'p Migration] {
        &self.migrations
    }
}

/// How approval is obtained for this run.
#[derive(Debug, Clone, Copy)]
pub struct ApprovalPolicy {
    /// The environment requires approval.
    pub required: bool,
    /// `--yes` was given.
    pub yes: bool,
    /// A person can answer on this terminal.
    pub interactive: bool,
}

/// Approves `migrations`, asking `question` when a person must decide.
///
/// # Errors
/// No terminal without `--yes`, a declined prompt, or Ctrl-C.
pub async fn approve<'p>(
    migrations: Vec<&'p Migration>,
    policy: ApprovalPolicy,
    environment: &str,
) -> Result<Approved<'p>, ApprovalError> {
    if !policy.required || policy.yes {
        return Ok(Approved { migrations });
    }
    if !policy.interactive {
        return Err(ApprovalError::NoTerminal {
            environment: environment.to_owned(),
        });
    }
    if confirm("Proceed? (yes/no)").await? {
        Ok(Approved { migrations })
    } else {
        Err(ApprovalError::Declined)
    }
}

/// Asks a yes/no question on the terminal; only a typed `yes` counts.
///
/// # Errors
/// Ctrl-C, or a terminal that cannot be read.
pub async fn confirm(question: &str) -> Result<bool, ApprovalError> {
    let question = question.to_owned();
    // Ctrl-C at the prompt cancels instead of ending the process.
    let _guard = crate::interrupt::Guard::new();
    // dialoguer blocks on stdin; run it off the async runtime and race it against Ctrl-C.
    let prompt = tokio::task::spawn_blocking(move || {
        dialoguer::Input::<String>::new()
            .with_prompt(question)
            .allow_empty(true)
            .interact_text()
    });
    tokio::select! {
        answer = prompt => match answer {
            Ok(Ok(text)) => Ok(text.trim().eq_ignore_ascii_case("yes")),
            _ => Err(ApprovalError::Interrupted),
        },
        () = crate::interrupt::wait() => Err(ApprovalError::Interrupted),
    }
}
