//! What a run tells the user as it happens. The pipeline never prints: every step sends
//! [`Event`]s to a [`Reporter`], and `output/` decides how they look (status lines on a
//! terminal, nothing at all in a test). Events carry facts, not formatting.

use std::time::Duration;

use crate::config::Mode;

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It passed.
    Ok,
    /// It failed.
    Failed,
    /// It did not run, for a stated reason.
    Skipped,
    /// It passed with something worth attention.
    Warning,
}

/// Something the pipeline wants the user to know, as it happens.
#[derive(Debug)]
pub enum Event<'a> {
    /// The run starts.
    Start {
        /// `migrate`, `status`, ...
        command: &'a str,
        /// The environment name.
        environment: &'a str,
        /// Its mode.
        mode: Mode,
        /// A password-free description of the database.
        target: &'a str,
        /// The migration format.
        tool: &'a str,
        /// A dry run.
        dry_run: bool,
    },
    /// A pipeline step finished.
    Step {
        /// Its name.
        name: &'a str,
        /// How it ended.
        outcome: Outcome,
        /// One line of detail.
        detail: String,
    },
    /// A migration starts.
    MigrationStarted {
        /// Its name.
        name: &'a str,
    },
    /// A migration was applied (or reverted).
    MigrationApplied {
        /// Its name.
        name: &'a str,
        /// How long it took.
        duration: Duration,
        /// Whether it ran in one transaction.
        atomic: bool,
    },
    /// A migration failed.
    MigrationFailed {
        /// Its name.
        name: &'a str,
        /// How long it ran.
        duration: Duration,
    },
    /// One pending migration in a dry run.
    Preview(&'a super::preview::MigrationPreview),
    /// One line an external tool's command wrote, as it writes it.
    ToolOutput(&'a str),
    /// Something that does not stop the run.
    Warning(String),
    /// A plain indented line of context (the approval summary).
    Note(String),
}

/// Receives pipeline events.
pub trait Reporter {
    /// Handles one event.
    fn event(&self, event: Event<'_>);
}

/// A reporter that passes on only what went wrong (failed steps, warnings): for work done a
/// second time, whose passes were reported the first time (the plan made before the lock,
/// then again under it).
pub struct Problems<'a>(pub &'a dyn Reporter);

impl Reporter for Problems<'_> {
    fn event(&self, event: Event<'_>) {
        match event {
            Event::Step {
                outcome: Outcome::Failed | Outcome::Warning,
                ..
            }
            | Event::Warning(_) => self.0.event(event),
            _ => {}
        }
    }
}

/// A duration the way people read it: `12 ms`, `3.4 s`, `2 min 5 s`. Steps put durations in
/// their one-line details, so this lives with the events rather than with a renderer.
#[must_use]
pub fn duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms < 60_000 {
        format!("{:.1} s", d.as_secs_f64())
    } else {
        format!("{} min {} s", d.as_secs() / 60, d.as_secs() % 60)
    }
}
