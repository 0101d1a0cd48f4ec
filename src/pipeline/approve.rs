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
    #[error("{what} needs approval, but there is no terminal to ask on")]
    NoTerminal {
        /// The environment.
        environment: String,
        /// What needs it (`environment `production` is protected and`...).
        what: String,
    },
    /// The user answered something other than `yes`.
    #[error("deployment cancelled: approval was not given")]
    Declined,
    /// Ctrl-C at the prompt.
    #[error("deployment cancelled: interrupted at the approval prompt")]
    Interrupted,
    /// Nobody answered the prompt in time.
    #[error("deployment cancelled: no answer at the approval prompt within {seconds} s")]
    TimedOut {
        /// The wait (`approval_timeout_seconds`).
        seconds: u64,
    },
    /// What is to be done changed between the approval and the lock (another deploy ran).
    #[error("deployment cancelled: the plan changed after it was approved: {}", .changes.join("; "))]
    PlanChanged {
        /// The environment.
        environment: String,
        /// What changed.
        changes: Vec<String>,
    },
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
            ApprovalError::PlanChanged { environment, .. } => vec![
                "nothing was changed: what you approved is no longer what would run".into(),
                format!("review `dbdeploy migrate {environment} --dry-run` and run the deploy again"),
            ],
            _ => vec!["nothing was changed".into()],
        }
    }
}

/// Who approved a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    /// A person typed `yes` after reading the summary: only that plan is approved.
    Person,
    /// `--yes`: whatever is pending when the lock is taken.
    Flag,
    /// No approval is required (or the configuration grants it).
    Policy,
}

/// A plan that a person, `--yes` or a policy approved.
#[derive(Debug)]
pub struct Approved<P> {
    plan: P,
    by: Grant,
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

    /// Who approved it.
    #[must_use]
    pub fn by(&self) -> Grant {
        self.by
    }
}

impl<P> Approved<P> {
    /// The approval of a whole fleet handed to each of its targets' runs (see
    /// [`RunOptions::fleet`](super::RunOptions)): given once, by whoever approved the fleet.
    #[must_use]
    pub fn delegate(&self) -> Delegated {
        Delegated { by: self.by }
    }
}

/// A fleet's one approval, carried into each target's run: [`approve`] grants it without
/// asking again. Only [`Approved::delegate`] makes one, so no run can claim an approval that
/// nobody gave; the plan each target may carry out is checked by the operation (a target
/// whose pending migrations differ from the approved plan fails).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delegated {
    by: Grant,
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
    /// Approval always, protected environment or not (a restore discards whatever was written
    /// since the backup).
    Always {
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
    if let Some(fleet) = cx.options.fleet {
        let how = match fleet.by {
            Grant::Person => "confirmed for the fleet",
            Grant::Flag => "--yes (the fleet)",
            Grant::Policy => "not required",
        };
        cx.step("approve", Outcome::Ok, how.into());
        return Ok(Approved { plan, by: fleet.by });
    }
    let (headline, notes, required) = match summary {
        Summary::NotNeeded => {
            return Ok(Approved {
                plan,
                by: Grant::Policy,
            });
        }
        Summary::Ask { headline, notes } => (headline, notes, cx.env.approval_required),
        Summary::Always { headline, notes } => (headline, notes, true),
    };
    let yes = cx.options.yes;
    let result = if !required || yes {
        Ok(())
    } else if !cx.interactive {
        Err(ApprovalError::NoTerminal {
            environment: cx.env.name.clone(),
            what: if cx.env.approval_required {
                format!("environment `{}` is protected and", cx.env.name)
            } else {
                format!("a restore of environment `{}` always", cx.env.name)
            },
        })
    } else {
        cx.reporter.event(Event::Warning(headline));
        for note in notes {
            cx.reporter.event(Event::Note(note));
        }
        let timeout = cx.env.approval_timeout;
        match tokio::time::timeout(timeout, confirm("Proceed? (yes/no)")).await {
            Ok(Ok(true)) => Ok(()),
            Ok(Ok(false)) => Err(ApprovalError::Declined),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(ApprovalError::TimedOut {
                seconds: timeout.as_secs(),
            }),
        }
    };
    match result {
        Ok(()) => {
            let (how, by) = if !required {
                ("not required", Grant::Policy)
            } else if yes {
                ("--yes", Grant::Flag)
            } else {
                ("confirmed", Grant::Person)
            };
            cx.step("approve", Outcome::Ok, how.into());
            Ok(Approved { plan, by })
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
    enabled.then_some(Approved {
        plan,
        by: Grant::Policy,
    })
}

/// What the plan made under the lock means for an approval given before it: the same plan
/// keeps its approval; a different one is approved again only when no person approved the
/// first (`--yes` and policy approve whatever is pending); an empty one needs nothing.
/// `changes` says what differs between the approved plan and the new one (nothing: same).
///
/// Returns the plan back when it is empty.
///
/// # Errors
/// [`ApprovalError::PlanChanged`] when a person approved another plan, or when a plan now
/// needs a person's approval (which is never asked while the lock is held).
pub fn recheck<P>(
    cx: &Ctx<'_>,
    approved: Option<Approved<P>>,
    now: P,
    empty: bool,
    changes: impl FnOnce(Option<&P>, &P) -> Vec<String>,
) -> Result<Result<Approved<P>, P>, ApprovalError> {
    let diff = changes(approved.as_ref().map(Approved::plan), &now);
    let person = approved.as_ref().is_some_and(|a| a.by == Grant::Person);
    if empty && (diff.is_empty() || !person) {
        return Ok(Err(now));
    }
    let by = match &approved {
        Some(a) if diff.is_empty() => a.by,
        Some(a) if a.by != Grant::Person => a.by,
        None if !cx.env.approval_required => Grant::Policy,
        None if cx.options.yes => Grant::Flag,
        _ => {
            let e = ApprovalError::PlanChanged {
                environment: cx.env.name.clone(),
                changes: diff,
            };
            cx.step("approve", Outcome::Failed, e.to_string());
            return Err(e);
        }
    };
    if !diff.is_empty() {
        cx.reporter.event(Event::Note(format!(
            "the plan changed while waiting for the lock ({}); approved again by {}",
            diff.join("; "),
            if by == Grant::Flag { "--yes" } else { "policy" }
        )));
    }
    Ok(Ok(Approved { plan: now, by }))
}

/// Approval of a dev-mode reset, which drops every table: only a typed `yes` counts.
///
/// # Errors
/// Ctrl-C, or a terminal that cannot be read.
pub async fn confirm_reset<P>(plan: P) -> Result<Option<Approved<P>>, ApprovalError> {
    Ok(
        confirm("Reset the database? All data will be lost. (yes/no)")
            .await?
            .then_some(Approved {
                plan,
                by: Grant::Person,
            }),
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
