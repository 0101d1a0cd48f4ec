//! Step 7: approval. [`Approved`] can only be built here, so a plan nobody approved cannot
//! reach an operation's `apply`: every write path takes one. It is granted by a typed `yes`,
//! by `--yes`, or by policy where no prompt is due (an environment that does not require
//! approval, a backup that changes nothing in the database, an automatic restore the
//! environment enables). Prompts never hang: without a terminal (or under `--json`) approval
//! must come from `--yes`, and Ctrl-C at the prompt cancels.

use super::{Ctx, Event, Outcome};

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

/// A plan that a person, `--yes` or a policy approved.
#[derive(Debug)]
pub struct Approved<P> {
    plan: P,
}

impl<P> Approved<P> {
    /// The approved plan.
    #[must_use]
    pub fn plan(&self) -> &P {
        &self.plan
    }

    /// Takes the approved plan out, to carry it out.
    #[must_use]
    pub fn into_plan(self) -> P {
        self.plan
    }
}

/// What a person reads before `Proceed?`, or why nobody is asked.
#[derive(Debug)]
pub enum Summary {
    /// Approval as the environment requires it: shown on a terminal when a person decides.
    Ask {
        /// The first line: what will happen to which environment.
        headline: String,
        /// The lines under it.
        notes: Vec<String>,
    },
    /// Nothing a person must approve (a backup, which writes nothing to the database); no
    /// step line either.
    NotNeeded,
}

/// Approves `plan` as the environment requires: asks on a terminal, takes `--yes`, or refuses
/// when nobody can answer. Reports the step.
///
/// # Errors
/// No terminal without `--yes`, a declined prompt, or Ctrl-C.
pub async fn approve<P>(
    cx: &Ctx<'_>,
    summary: Summary,
    plan: P,
) -> Result<Approved<P>, ApprovalError> {
    let (headline, notes) = match summary {
        Summary::NotNeeded => return Ok(Approved { plan }),
        Summary::Ask { headline, notes } => (headline, notes),
    };
    let required = cx.env.approval_required;
    let yes = cx.options.yes;
    let result = if !required || yes {
        Ok(())
    } else if !cx.interactive {
        Err(ApprovalError::NoTerminal {
            environment: cx.env.name.clone(),
        })
    } else {
        cx.reporter.event(Event::Warning(headline));
        for note in notes {
            cx.reporter.event(Event::Note(note));
        }
        match confirm("Proceed? (yes/no)").await {
            Ok(true) => Ok(()),
            Ok(false) => Err(ApprovalError::Declined),
            Err(e) => Err(e),
        }
    };
    match result {
        Ok(()) => {
            let how = if !required {
                "not required"
            } else if yes {
                "--yes"
            } else {
                "confirmed"
            };
            cx.step("approve", Outcome::Ok, how.into());
            Ok(Approved { plan })
        }
        Err(e) => {
            cx.step("approve", Outcome::Failed, e.to_string());
            Err(e)
        }
    }
}

/// Approval by configuration: an automatic restore after a failure, which the environment
/// enables with `setting` (`rollback_on_failure`, ...). Nobody is asked.
#[must_use]
pub fn by_setting<P>(enabled: bool, plan: P) -> Option<Approved<P>> {
    enabled.then_some(Approved { plan })
}

/// Approval of a dev-mode reset, which drops every table: only a typed `yes` counts.
///
/// # Errors
/// Ctrl-C, or a terminal that cannot be read.
pub async fn confirm_reset<P>(plan: P) -> Result<Option<Approved<P>>, ApprovalError> {
    Ok(
        confirm("Reset the database? All data will be lost. (yes/no)")
            .await?
            .then_some(Approved { plan }),
    )
}

/// Asks a yes/no question on the terminal; only a typed `yes` counts.
///
/// # Errors
/// Ctrl-C, or a terminal that cannot be read.
async fn confirm(question: &str) -> Result<bool, ApprovalError> {
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
