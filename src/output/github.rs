//! Inside a GitHub Actions step (`GITHUB_ACTIONS=true`): failures and lint findings as
//! workflow-command annotations (`::error file=PATH,line=N::message`), so that they show on the
//! pull request's diff; long output folded in `::group::`; a Markdown summary of the run
//! appended to `$GITHUB_STEP_SUMMARY`. Everything is scrubbed of secrets before it is escaped
//! (<https://docs.github.com/actions/reference/workflow-commands-for-github-actions>).

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;
use std::sync::OnceLock;

use serde_json::Value;

use super::Response;
use crate::settings::GithubSettings;

/// What a step provides, and whether stdout carries the JSON document (then workflow
/// commands go to stderr, which the runner reads for them too).
#[derive(Debug)]
struct State {
    github: GithubSettings,
    json: bool,
}

static STATE: OnceLock<Option<State>> = OnceLock::new();

/// Called once by the printer.
pub(super) fn init(json: bool) {
    let _ = STATE.get_or_init(|| crate::settings::github().map(|github| State { github, json }));
}

fn state() -> Option<&'static State> {
    STATE.get().and_then(Option::as_ref)
}

/// Whether this process runs as a GitHub Actions step.
#[must_use]
pub fn enabled() -> bool {
    state().is_some()
}

/// The annotation levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// `::error`
    Error,
    /// `::warning`
    Warning,
    /// `::notice`
    Notice,
}

impl Level {
    fn as_str(self) -> &'static str {
        match self {
            Level::Error => "error",
            Level::Warning => "warning",
            Level::Notice => "notice",
        }
    }
}

/// Escapes a command's message: `%`, `\r` and `\n`.
#[must_use]
pub fn escape_data(text: &str) -> String {
    crate::redact::scrub(text)
        .replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escapes a property value: as a message, and `:` and `,` too.
#[must_use]
pub fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

/// The workflow command of an annotation; `file` is shown relative to the checkout.
#[must_use]
pub fn annotation(
    level: Level,
    file: Option<&Path>,
    line: Option<usize>,
    workspace: Option<&Path>,
    message: &str,
) -> String {
    let mut props = Vec::new();
    if let Some(file) = file {
        let rel = workspace
            .and_then(|w| file.strip_prefix(w).ok())
            .unwrap_or(file);
        props.push(format!(
            "file={}",
            escape_property(&rel.to_string_lossy().replace('\\', "/"))
        ));
        if let Some(line) = line {
            props.push(format!("line={line}"));
        }
    }
    let props = if props.is_empty() {
        String::new()
    } else {
        format!(" {}", props.join(","))
    };
    format!("::{}{props}::{}", level.as_str(), escape_data(message))
}

/// Writes an annotation for a finding in `file` at `line` when running in GitHub Actions
/// (nothing otherwise): for lint findings and migration failures.
pub fn annotate(level: Level, file: Option<&Path>, line: Option<usize>, message: &str) {
    if let Some(s) = state() {
        let text = annotation(level, file, line, s.github.workspace.as_deref(), message);
        command(s, &text);
    }
}

/// Starts a folded group of output lines (ended by [`end_group`]).
pub fn group(title: &str) {
    if let Some(s) = state() {
        command(s, &format!("::group::{}", escape_data(title)));
    }
}

/// Ends the group [`group`] started.
pub fn end_group() {
    if let Some(s) = state() {
        command(s, "::endgroup::");
    }
}

fn command(s: &State, text: &str) {
    let line = format!("{text}\n");
    let _ = if s.json {
        std::io::stderr().lock().write_all(line.as_bytes())
    } else {
        std::io::stdout().lock().write_all(line.as_bytes())
    };
}

/// At the end of a command: its error as an annotation (on the migration's file and line when
/// a migration failed) and its summary appended to `$GITHUB_STEP_SUMMARY`.
pub(super) fn finish(response: &Response) {
    let Some(s) = state() else { return };
    if let Some(err) = &response.error {
        let (file, line) = match err {
            crate::error::Error::Apply(e) => (Some(e.failed.path.as_path()), e.failed.line),
            _ => (None, None),
        };
        annotate(Level::Error, file, line, &err.to_string());
    }
    if let Some(path) = &s.github.step_summary {
        let text = crate::redact::scrub(&summary(response)).into_owned();
        let written = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(path)
            .and_then(|mut f| f.write_all(text.as_bytes()));
        if let Err(e) = written {
            tracing::warn!("cannot append to GITHUB_STEP_SUMMARY: {e}");
        }
    }
}

/// A Markdown table cell: one line, pipes escaped.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace(['\r', '\n'], " ")
}

/// One table row: a migration's name, status, duration (or estimate) and risks.
fn row(key: &str, m: &Value) -> String {
    let name = m.as_str().or_else(|| m["name"].as_str()).unwrap_or("?");
    let status = m["status"].as_str().unwrap_or(match key {
        "migrations" => "pending",
        other => other,
    });
    let duration = m["duration_seconds"]
        .as_f64()
        .map(|d| format!("{d:.2} s"))
        .or_else(|| {
            m["estimated_duration_seconds"]
                .as_f64()
                .map(|d| format!("~{d:.1} s"))
        })
        .unwrap_or_default();
    let risks = m["risks"]
        .as_array()
        .map(|rs| {
            rs.iter()
                .filter_map(|r| Some(format!("{} {}", r["level"].as_str()?, r["code"].as_str()?)))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default();
    format!(
        "| {} | {} | {duration} | {} |",
        cell(name),
        cell(status),
        cell(&risks)
    )
}

/// The Markdown summary of a command: what it did, its migrations (applied, failed or pending,
/// with durations and risks), the backup and the command that restores it.
#[must_use]
pub fn summary(r: &Response) -> String {
    let mark = match r.status {
        super::Status::Success => "✅",
        super::Status::Cancelled => "⚠️",
        super::Status::Error => "❌",
    };
    let env = if r.environment.is_empty() {
        String::new()
    } else {
        format!(" · `{}`", r.environment)
    };
    let mut out = format!(
        "### {mark} dbdeploy {}{env}\n\n{}\n",
        r.operation, r.message
    );
    // `migrations` of a deploy or a dry run; `applied` and `pending` of `status`.
    let rows: Vec<(&str, &Value)> = ["migrations", "applied", "pending"]
        .iter()
        .filter_map(|k| r.result.get(*k).and_then(Value::as_array).map(|a| (*k, a)))
        .flat_map(|(k, a)| a.iter().map(move |m| (k, m)))
        .collect();
    if !rows.is_empty() {
        out.push_str("\n| Migration | Status | Duration | Risks |\n|---|---|---|---|\n");
        for (key, m) in rows {
            let _ = writeln!(out, "{}", row(key, m));
        }
    }
    let backup = r
        .recovery
        .as_ref()
        .and_then(|rc| rc.backup_id.clone())
        .or_else(|| r.result["backup_id"].as_str().map(str::to_owned));
    if let Some(id) = backup {
        let _ = writeln!(out, "\n**Backup:** `{id}`");
    }
    if let Some(cmd) = r
        .recovery
        .as_ref()
        .and_then(|rc| rc.rollback_command.as_ref())
    {
        let _ = writeln!(out, "\n**Rollback:** `{cmd}`");
    }
    if let Some(err) = &r.error {
        let _ = writeln!(out, "\n**Error:** {}", cell(&err.to_string()));
        for hint in err.hints() {
            let _ = writeln!(out, "- {}", cell(&hint));
        }
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_and_properties_are_escaped() {
        let a = annotation(
            Level::Error,
            Some(Path::new("/ws/db/mig,1:x.sql")),
            Some(7),
            Some(Path::new("/ws")),
            "100% broken\r\nnext",
        );
        assert_eq!(
            a,
            "::error file=db/mig%2C1%3Ax.sql,line=7::100%25 broken%0D%0Anext"
        );
        assert_eq!(
            annotation(Level::Warning, None, Some(3), None, "w"),
            "::warning::w"
        );
    }

    #[test]
    fn secrets_are_scrubbed_before_escaping() {
        crate::redact::register_url("postgres://u:gh-secret-pw@h/db");
        let a = annotation(Level::Error, None, None, None, "failed: gh-secret-pw");
        assert!(!a.contains("gh-secret-pw"), "{a}");
    }
}
