//! Everything dbdeploy prints. The pipeline sends [`Event`]s as it runs and each command ends
//! with one [`Response`] (a typed, serialisable result); the [`Printer`] renders both, for
//! people (`human.rs`) or as one JSON document (`json.rs`). Nothing else in the crate writes
//! to stdout or stderr, and every byte passes through `redact::scrub` on its way out.

pub mod findings;
pub mod github;
pub mod human;
pub mod json;
pub mod listing;
pub mod progress;

use crate::config::Mode;
use crate::error::Error;
use crate::pipeline::event::{Event, Reporter};
use crate::settings::OutputSettings;

pub use json::Status;

/// How the last human line of a command looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Line {
    /// `✓`, `!` or `✗` (by status), then the message.
    Marked,
    /// The message alone.
    Plain,
    /// No line: the error says it all.
    None,
}

/// Backup and rollback facts of a failed (or rolled back) run, for `recovery` in JSON.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Recovery {
    /// The backup this run made or restored.
    pub backup_id: Option<String>,
    /// The command that restores it, when that is still the way back.
    pub rollback_command: Option<String>,
    /// A restore was started.
    pub rollback_initiated: bool,
    /// What it did: `success`, `failed` or `not-attempted`.
    pub rollback_status: Option<&'static str>,
    /// Why it failed or was not attempted.
    pub rollback_reason: Option<String>,
}

/// How a command ended: what it tells people and what its JSON document holds.
#[derive(Debug)]
pub struct Response {
    /// `deploy-migrations`, `migration-status`, ...
    pub operation: &'static str,
    /// The environment name (empty for `init`).
    pub environment: String,
    /// `dev` or `deploy`, once known.
    pub mode: Option<Mode>,
    /// `success`, `error` or `cancelled`.
    pub status: Status,
    /// One sentence for people.
    pub message: String,
    /// How the message is shown.
    pub line: Line,
    /// The command's typed result, serialised.
    pub result: serde_json::Value,
    /// The error, on failure.
    pub error: Option<Error>,
    /// Backup and rollback facts, when the command knows them.
    pub recovery: Option<Recovery>,
    /// What the command found wrong (drift, for `status`): shown like an error, with its
    /// hints, while the command itself succeeded and its exit code tells.
    pub finding: Option<Error>,
    /// The process exit code.
    pub exit_code: u8,
}

impl Response {
    /// A response for an error that happened before the command could do anything else.
    #[must_use]
    pub fn failed(operation: &'static str, environment: &str, error: Error) -> Self {
        let status = if matches!(error, Error::Approval(_)) {
            Status::Cancelled
        } else {
            Status::Error
        };
        Self {
            operation,
            environment: environment.to_owned(),
            mode: None,
            status,
            message: error.to_string(),
            line: Line::None,
            result: serde_json::Value::Object(serde_json::Map::new()),
            exit_code: error.exit_code(),
            error: Some(error),
            recovery: None,
            finding: None,
        }
    }

    /// A successful response.
    #[must_use]
    pub fn success(
        operation: &'static str,
        environment: &str,
        mode: Option<Mode>,
        message: String,
        result: &impl serde::Serialize,
    ) -> Self {
        Self {
            operation,
            environment: environment.to_owned(),
            mode,
            status: Status::Success,
            message,
            line: Line::Marked,
            result: to_value(result),
            error: None,
            recovery: None,
            finding: None,
            exit_code: crate::error::exit::SUCCESS,
        }
    }
}

/// A typed result as the JSON value of a document.
#[must_use]
pub fn to_value(result: &impl serde::Serialize) -> serde_json::Value {
    serde_json::to_value(result)
        .unwrap_or_else(|_| serde_json::Value::Object(serde_json::Map::new()))
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
        github::init(settings.json);
        let printer = Self {
            settings,
            human_tty,
        };
        progress::install(printer);
        printer
    }

    /// Whether `--json` was given.
    #[must_use]
    pub fn json_mode(&self) -> bool {
        self.settings.json
    }

    /// Whether a response's `result` is read: for the `--json` document or the GitHub job
    /// summary. A terminal shows only the lines already printed, so a long result (10,000
    /// migrations of `status`) need not be built as a JSON value at all.
    #[must_use]
    pub fn reads_result(&self) -> bool {
        self.settings.json || github::enabled()
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
    pub fn error(&self, err: &Error) {
        let text = human::render_error(err, self.settings.color_stderr);
        self.stderr(&format!("{text}\n"));
    }

    /// Writes straight to stderr, whatever the mode: messages about the process itself
    /// (an interrupt) that must be seen at once.
    pub fn stderr(&self, text: &str) {
        write(std::io::stderr().lock(), &crate::redact::scrub(text));
    }

    /// Writes generated text (a completion script, a manual page) to stdout as it is; returns
    /// the exit code.
    pub fn raw(&self, text: &str) -> u8 {
        write(std::io::stdout().lock(), &crate::redact::scrub(text));
        crate::error::exit::SUCCESS
    }

    /// Writes the one JSON document to stdout.
    fn json(&self, doc: &serde_json::Value) {
        // Every string was scrubbed before serialisation (`json::document`); scrubbing the
        // text again catches what a serialiser escape could still hide.
        let text = serde_json::to_string_pretty(doc).unwrap_or_else(|_| "{}".into());
        write(
            std::io::stdout().lock(),
            &format!("{}\n", crate::redact::scrub(&text)),
        );
    }

    /// Ends a command: its error (with causes and hints), its last line, and under `--json`
    /// its document. Returns the exit code.
    pub fn finish(&self, response: Response) -> u8 {
        if let Some(e) = response.error.as_ref().or(response.finding.as_ref()) {
            self.error(e);
        }
        github::finish(&response);
        match response.line {
            Line::Marked => {
                let mark = human::status_mark(self.color(), response.status);
                self.result(&format!("{mark} {}", response.message));
            }
            Line::Plain => self.result(&response.message),
            Line::None => {}
        }
        if self.json_mode() {
            self.json(&json::document(&response));
        }
        response.exit_code
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
