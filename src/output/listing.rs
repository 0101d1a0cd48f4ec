//! The human form of the commands that show something rather than change it: the `status`
//! listing, `history`, `backups`, `diff` and what `init` detected. Each takes the command's
//! typed result; colours and layout live only here.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use super::Printer;
use super::human::{BOLD, DIM, GREEN, RED, YELLOW, paint};
use crate::backup::{Manifest, human_bytes};
use crate::history::PastRun;
use crate::migration::{Migration, MigrationSet};
use crate::pipeline::pending::Plan;

/// `status`: applied, pending, and what is wrong, one line per migration, written at once
/// (thousands of lines, one write).
pub fn status(p: &Printer, set: &MigrationSet, plan: &Plan<'_>) {
    let c = p.color();
    let by_name: HashMap<&str, &Migration> = set
        .migrations
        .iter()
        .map(|m| (m.name.as_str(), m))
        .collect();
    // Formats that track versions (sqlx, dbmate, golang-migrate) name migrations by number;
    // the file name says what each one is.
    let label = |name: &str| -> String {
        let file = by_name
            .get(name)
            .filter(|m| !m.path.iter().any(|part| part == name))
            .and_then(|m| m.path.file_name())
            .map(|f| f.to_string_lossy().into_owned());
        match file {
            // `1_users.sql` already shows the version `1`.
            Some(f)
                if f.strip_prefix(name)
                    .is_some_and(|rest| rest.starts_with(|ch: char| !ch.is_ascii_digit())) =>
            {
                f
            }
            Some(f) => format!("{name}  {}", paint(c, DIM, &f)),
            None => name.to_owned(),
        }
    };
    let mut out = String::new();
    let mut line = |text: std::fmt::Arguments<'_>| {
        let _ = out.write_fmt(text);
        out.push('\n');
    };
    let section = |title: &str, n: usize| paint(c, BOLD, &format!("{title} ({n})"));
    line(format_args!("{}", section("Applied", plan.applied.len())));
    let tick = paint(c, GREEN, "✓");
    for (name, at) in &plan.applied {
        line(format_args!(
            "  {tick} {}  {}",
            label(name),
            paint(c, DIM, at.as_deref().unwrap_or(""))
        ));
    }
    line(format_args!("{}", section("Pending", plan.pending.len())));
    let out_of_order: HashSet<&str> = plan.out_of_order.iter().map(String::as_str).collect();
    for m in &plan.pending {
        let ooo = if out_of_order.contains(m.name.as_str()) {
            "  (out of order)"
        } else {
            ""
        };
        line(format_args!("  · {}{ooo}", label(&m.name)));
    }
    let cross = paint(c, RED, "✗");
    for (title, names) in [
        ("Modified since applied", &plan.modified),
        ("Missing from disk", &plan.missing),
        (
            "Never applied, below the current version",
            &plan.unreachable,
        ),
    ] {
        if !names.is_empty() {
            line(format_args!("{}", section(title, names.len())));
            for n in names {
                line(format_args!("  {cross} {}", label(n)));
            }
        }
    }
    if !plan.failed.is_empty() {
        line(format_args!("{}", section("Failed", plan.failed.len())));
        for (name, logs) in &plan.failed {
            line(format_args!("  {cross} {}", label(name)));
            if let Some(logs) = logs.as_deref().filter(|l| !l.is_empty()) {
                for log_line in logs.lines().take(6) {
                    line(format_args!("      {}", paint(c, DIM, log_line)));
                }
            }
        }
    }
    p.lines(&out);
}

/// `status` of an external tool: what its `status_command` reports pending.
pub fn external_pending(p: &Printer, pending: &[String]) {
    p.line(&paint(
        p.color(),
        BOLD,
        &format!("Pending, as status_command reports ({})", pending.len()),
    ));
    for name in pending {
        p.line(&format!("  · {name}"));
    }
}

/// `history`: one line per run, newest first, with its error underneath.
pub fn history(p: &Printer, runs: &[PastRun]) {
    let c = p.color();
    for r in runs {
        let mark = match r.status.as_str() {
            "success" => paint(c, GREEN, "✓"),
            "cancelled" | "interrupted" => paint(c, YELLOW, "!"),
            _ => paint(c, RED, "✗"),
        };
        let what = if r.migrations.is_empty() {
            String::new()
        } else {
            format!(" {}: {}", r.migrations.len(), r.migrations.join(", "))
        };
        let extra = [
            r.backup_id.as_ref().map(|b| format!("backup {b}")),
            r.rollback_status.as_ref().map(|s| format!("rollback {s}")),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(", ");
        p.line(&format!(
            "{mark} {}  {:<18} {:<9} {}ms  {}@{}{what}{}",
            r.started_at,
            r.operation,
            r.status,
            r.duration_ms,
            r.user,
            r.host,
            if extra.is_empty() {
                String::new()
            } else {
                format!("  ({extra})")
            }
        ));
        if let Some(e) = &r.error {
            p.line(&format!("    {}", paint(c, DIM, e)));
        }
    }
}

/// `backups`: a table of the environment's backups, newest first.
pub fn backups(
    p: &Printer,
    environment: &str,
    dir: &std::path::Path,
    newest_first: &[&Manifest],
    now: chrono::DateTime<chrono::Utc>,
) {
    if newest_first.is_empty() {
        p.line(&format!(
            "No backups of {environment} in {} yet; make one with `dbdeploy backup {environment}`.",
            dir.display()
        ));
        return;
    }
    p.line(&format!(
        "{:<28} {:>10} {:>10}  {}",
        "ID", "AGE", "SIZE", "MIGRATIONS"
    ));
    for m in newest_first {
        let age = age(now - m.created_at);
        let size = m.size_bytes.map_or_else(|| "-".to_owned(), human_bytes);
        let last = m.migrations.last().map_or("none", String::as_str);
        p.line(&format!(
            "{:<28} {age:>10} {size:>10}  {} (last: {last})",
            m.id,
            m.migrations.len()
        ));
    }
}

/// A short age: `42s ago`, `5m ago`, `3h ago`, `2d ago`.
fn age(d: chrono::TimeDelta) -> String {
    let s = d.num_seconds().max(0);
    match s {
        0..60 => format!("{s}s ago"),
        60..3600 => format!("{}m ago", s / 60),
        3600..86_400 => format!("{}h ago", s / 3600),
        _ => format!("{}d ago", s / 86_400),
    }
}

/// `diff`: the unified diff, line by line.
pub fn diff(p: &Printer, diff: &str) {
    for line in diff.lines() {
        p.line(line);
    }
}

/// `init`: what was detected and why.
pub fn detected(p: &Printer, tool: &str, dir: &str, reason: &str) {
    p.line(&format!("✓ {tool} migrations in {dir} ({reason})"));
}
