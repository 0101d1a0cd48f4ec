//! Everything dbdeploy prints. The pipeline never prints: it sends [`Event`]s to a
//! [`Reporter`]; the [`Printer`] renders them for people, and commands hand it one JSON
//! document at the end. Every byte passes through `redact::scrub` on its way out.

pub mod human;
pub mod json;

use std::time::Duration;

use crate::config::Mode;
use crate::settings::OutputSettings;

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
    /// A migration was applied.
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
    Preview(&'a crate::pipeline::preview::MigrationPreview),
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

/// Owns stdout and stderr and the user's output preferences.
#[derive(Debug, Clone, Copy)]
pub struct Printer {
    settings: OutputSettings,
    /// The human stream is a terminal (for in-place progress lines).
    human_tty: bool,
}

impl Printer {
    /// A printer for these settings.
    #[must_use]
    pub fn new(settings: OutputSettings) -> Self {
        use std::io::IsTerminal;
        let human_tty = if settings.json {
            std::io::stderr().is_terminal()
        } else {
            std::io::stdout().is_terminal()
        };
        Self {
            settings,
            human_tty,
        }
    }

    /// Whether `--json` was given.
    #[must_use]
    pub fn json_mode(&self) -> bool {
        self.settings.json
    }

    /// Whether colours are on.
    #[must_use]
    pub fn color(&self) -> bool {
        self.settings.color
    }

    /// Writes a human line (stdout, or stderr under `--json`) unless quiet.
    pub fn line(&self, text: &str) {
        if self.settings.verbosity >= 0 {
            self.emit(text);
        }
    }

    /// Writes several human lines at once (each ending in a newline) unless quiet: one write
    /// for a long listing instead of one per line.
    pub fn lines(&self, text: &str) {
        if self.settings.verbosity >= 0 && !text.is_empty() {
            self.write_human(text);
        }
    }

    /// Writes a human line that is shown even under `-q`: the final result.
    pub fn result(&self, text: &str) {
        self.emit(text);
    }

    fn emit(&self, text: &str) {
        self.write_human(&format!("{text}\n"));
    }

    /// Human text goes to stdout, or to stderr when stdout carries the JSON document.
    fn write_human(&self, text: &str) {
        let text = crate::redact::scrub(text);
        if self.settings.json {
            write(std::io::stderr().lock(), &text);
        } else {
            write(std::io::stdout().lock(), &text);
        }
    }

    /// Writes a partial human line (no newline), only on a terminal: in-place progress.
    fn progress(&self, text: &str) {
        if !self.human_tty || self.settings.verbosity < 0 {
            return;
        }
        self.write_human(text);
    }

    /// Clears an in-place progress line before the line that replaces it.
    fn clear_progress(&self) -> &'static str {
        if self.human_tty && self.settings.verbosity >= 0 {
            "\r\x1b[2K"
        } else {
            ""
        }
    }

    /// Renders an error with its cause chain and hints on stderr.
    pub fn error(&self, err: &crate::error::Error) {
        let text = human::render_error(err, self.settings.color);
        write(
            std::io::stderr().lock(),
            &format!("{}\n", crate::redact::scrub(&text)),
        );
    }

    /// Writes the one JSON document to stdout.
    pub fn json(&self, doc: &serde_json::Value) {
        let text = serde_json::to_string_pretty(doc).unwrap_or_else(|_| "{}".into());
        write(
            std::io::stdout().lock(),
            &format!("{}\n", crate::redact::scrub(&text)),
        );
    }
}

/// Writes and flushes; a closed pipe (`dbdeploy status prod | head -1`) is not worth a
/// panic, and the exit code still tells what happened.
fn write(mut stream: impl std::io::Write, text: &str) {
    let _ = stream
        .write_all(text.as_bytes())
        .and_then(|()| stream.flush());
}

impl Reporter for Printer {
    fn event(&self, event: Event<'_>) {
        human::render_event(self, event);
    }
}
