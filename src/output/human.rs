//! Human-readable rendering: status lines, migration lines, errors with causes and hints.

use std::time::Duration;

use super::{Printer, Status};
use crate::error::Error;
use crate::pipeline::event::{Event, Outcome, duration};

/// Green: passed, applied.
pub const GREEN: &str = "\x1b[32m";
/// Red: failed.
pub const RED: &str = "\x1b[31m";
/// Yellow: warnings, cancellations.
pub const YELLOW: &str = "\x1b[33m";
/// Dim: details.
pub const DIM: &str = "\x1b[2m";
/// Bold: headings.
pub const BOLD: &str = "\x1b[1m";
const RESET: &str = "\x1b[0m";

/// Paints `text` when colours are on.
#[must_use]
pub fn paint(color: bool, style: &str, text: &str) -> String {
    if color {
        format!("{style}{text}{RESET}")
    } else {
        text.to_owned()
    }
}

fn mark(color: bool, outcome: Outcome) -> String {
    match outcome {
        Outcome::Ok => paint(color, GREEN, "✓"),
        Outcome::Failed => paint(color, RED, "✗"),
        Outcome::Skipped => paint(color, DIM, "-"),
        Outcome::Warning => paint(color, YELLOW, "!"),
    }
}

/// The mark before a command's last line.
#[must_use]
pub fn status_mark(color: bool, status: Status) -> String {
    match status {
        Status::Success => paint(color, GREEN, "✓"),
        Status::Cancelled => paint(color, YELLOW, "!"),
        Status::Error => paint(color, RED, "✗"),
    }
}

pub(super) fn render_event(p: &Printer, event: Event<'_>) {
    let c = p.color();
    match event {
        Event::Start {
            command,
            environment,
            mode,
            target,
            tool,
            dry_run,
        } => {
            let dry = if dry_run { " (dry run)" } else { "" };
            p.line(&paint(
                c,
                BOLD,
                &format!(
                    "dbdeploy {command}{dry} · environment {environment} · mode {}",
                    mode.as_str()
                ),
            ));
            p.line(&paint(c, DIM, &format!("  {target} · {tool} migrations")));
        }
        Event::Step {
            name,
            outcome,
            detail,
        } => {
            p.line(&format!("{} {name:<13} {detail}", mark(c, outcome)));
        }
        Event::MigrationStarted { name } => {
            p.progress(&format!("    … {name}"));
        }
        Event::MigrationApplied {
            name,
            duration: d,
            atomic,
        } => {
            let note = if atomic { "" } else { " (not atomic)" };
            p.line(&format!(
                "{}    {} {name}  {}{note}",
                p.clear_progress(),
                mark(c, Outcome::Ok),
                paint(c, DIM, &duration(d))
            ));
        }
        Event::MigrationFailed { name, duration: d } => {
            p.line(&format!(
                "{}    {} {name}  {}",
                p.clear_progress(),
                mark(c, Outcome::Failed),
                paint(c, DIM, &duration(d))
            ));
        }
        Event::Preview(m) => {
            let atomic = if m.atomic {
                "one transaction".to_owned()
            } else {
                format!("NOT atomic: {}", m.transaction_note)
            };
            p.line(&format!(
                "\n{} {}  {}",
                paint(c, BOLD, "──"),
                paint(c, BOLD, &m.name),
                paint(
                    c,
                    DIM,
                    &format!(
                        "{}{} · {atomic}",
                        if m.estimate_is_lower_bound {
                            "more than "
                        } else {
                            "~"
                        },
                        duration(Duration::from_secs_f64(m.estimated_duration_seconds))
                    )
                )
            ));
            for f in &m.risks {
                for line in super::findings::finding_lines(c, "   ", f) {
                    p.line(&line);
                }
            }
            for a in &m.allowed {
                p.line(&super::findings::allowed_line(c, "   ", a));
            }
            // A long script is folded in a GitHub Actions log.
            super::github::group(&format!("SQL of {}", m.name));
            for line in m.sql.lines() {
                p.line(&format!("   {}{line}", paint(c, DIM, "│ ")));
            }
            super::github::end_group();
        }
        Event::ToolOutput(line) => p.line(&format!("    {}{line}", paint(c, DIM, "│ "))),
        Event::Note(text) => p.line(&format!("    {text}")),
        Event::Warning(text) => {
            p.line(&format!("{} {}", paint(c, YELLOW, "warning:"), text));
        }
    }
}

/// `error: ...`, an indented `Caused by:` chain, then `hint:` lines.
#[must_use]
pub fn render_error(err: &Error, color: bool) -> String {
    let mut out = format!("{} {err}", paint(color, RED, "error:"));
    let causes = err.causes();
    if !causes.is_empty() {
        out.push_str("\n\nCaused by:");
        for cause in causes {
            out.push_str(&format!("\n    {cause}"));
        }
    }
    for hint in err.hints() {
        out.push_str(&format!("\n{} {hint}", paint(color, YELLOW, "hint:")));
    }
    out
}
