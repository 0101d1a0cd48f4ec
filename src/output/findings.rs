//! Lint findings as people read them, the same in `dbdeploy lint`, a dry run's preview and
//! the approval summary: the level, the code and the line, what it does, the lock it takes and
//! what that blocks, whether it rewrites the table, the estimate, and the safer alternative.

use std::time::Duration;

use super::Printer;
use super::human::{DIM, GREEN, RED, YELLOW, paint};
use crate::lint::{Finding, Level, Silenced};
use crate::pipeline::event::duration;
use crate::pipeline::preview::{MigrationPreview, allowed_reason};

/// The lines of one finding, indented by `indent`.
#[must_use]
pub fn finding_lines(color: bool, indent: &str, f: &Finding) -> Vec<String> {
    let style = match f.level {
        Level::High => RED,
        Level::Medium => YELLOW,
        Level::Low => DIM,
    };
    let mut lines = vec![format!(
        "{indent}{} {} [{}] line {}: {}",
        paint(color, style, "!"),
        f.level,
        f.code,
        f.line,
        f.message
    )];
    let mut facts = Vec::new();
    if let Some(lock) = &f.lock {
        facts.push(format!("lock {lock} (blocks {})", f.blocks.describe()));
    }
    if f.rewrites {
        facts.push("rewrites the table".to_owned());
    } else if f.scans {
        facts.push("reads every row".to_owned());
    }
    facts.push(match f.estimated_seconds {
        Some(s) => format!("~{}", duration(Duration::from_secs_f64(s))),
        None => "time unknown (table size unknown)".to_owned(),
    });
    if !f.parsed {
        facts.push("not parsed: found by keywords".to_owned());
    }
    lines.push(format!(
        "{indent}    {}",
        paint(color, DIM, &facts.join(" · "))
    ));
    if !f.suggestion.is_empty() {
        lines.push(format!("{indent}    instead: {}", f.suggestion));
    }
    lines
}

/// The line of a finding someone let through, with their reason.
#[must_use]
pub fn allowed_line(color: bool, indent: &str, s: &Silenced) -> String {
    format!(
        "{indent}{} allowed [{}] line {}: {}",
        paint(color, GREEN, "✓"),
        s.finding.code,
        s.finding.line,
        allowed_reason(s)
    )
}

/// `dbdeploy lint`: each migration with findings, then its findings.
pub fn lint(p: &Printer, previews: &[MigrationPreview]) {
    let c = p.color();
    let mut out = String::new();
    for m in previews {
        if m.risks.is_empty() && m.allowed.is_empty() {
            continue;
        }
        out.push_str(&format!("── {} ({})\n", m.name, m.file));
        for f in &m.risks {
            for line in finding_lines(c, "   ", f) {
                out.push_str(&line);
                out.push('\n');
            }
        }
        for s in &m.allowed {
            out.push_str(&allowed_line(c, "   ", s));
            out.push('\n');
        }
    }
    p.lines(&out);
}
