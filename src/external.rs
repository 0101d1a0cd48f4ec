//! External migration tools (`migration_tool = "command"`): tools whose migrations are code
//! (Knex, Alembic, TypeORM, Sequelize) keep applying them themselves, and dbdeploy runs the
//! deploy pipeline around two of their commands. It never reads or writes their history.
//!
//! The contract, documented in the README:
//! - both commands run through `sh -c` in the working directory with stdin closed (a prompt
//!   fails instead of hanging), and with `DATABASE_URL` (in the environment, never on a command
//!   line, where `ps` shows it to everyone) and `DBDEPLOY_ENVIRONMENT`;
//! - `status_command` prints the pending migrations on stdout, one per line, in the order they
//!   will be applied; blank lines and terminal colours are ignored; no line at all means up to
//!   date; a non-zero exit is an error, whatever it printed;
//! - `apply_command` applies every pending migration; its stdout and stderr are streamed as it
//!   writes them; exit 0 is success, anything else a failed deploy.

use std::collections::VecDeque;
use std::io::BufRead;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::Command;

use crate::backup::RollbackOutcome;
use crate::settings::EnvSettings;

/// The value of `migration_tool` for an external tool.
pub const NAME: &str = "command";

/// How many of the last output lines an error keeps.
const TAIL_LINES: usize = 20;

/// How long the output of a finished `apply_command` is still read: a background process it
/// started may hold the pipe open for much longer.
const DRAIN_AFTER_EXIT: Duration = Duration::from_millis(500);

pub use crate::settings::ExternalTool;

/// An external tool's command failed, or said something dbdeploy cannot accept.
#[derive(Debug, thiserror::Error)]
pub enum ExternalError {
    /// `status_command` could not run or exited non-zero.
    #[error("status_command {reason}{}", said(.output))]
    Status {
        /// The environment, for hints.
        environment: String,
        /// `exited with 2`, `cannot start: ...`.
        reason: String,
        /// Its last lines of output (stderr, then stdout), scrubbed of secrets.
        output: Vec<String>,
        /// It ran to verify a deploy, after `apply_command` succeeded.
        after_apply: bool,
        /// The backup of this run, when there is one.
        backup_id: Option<String>,
    },
    /// `apply_command` could not run or exited non-zero.
    #[error("apply_command {}{}", .0.reason, said(&.0.output))]
    Apply(Box<ApplyFailure>),
    /// `apply_command` succeeded, but `status_command` still reports pending migrations.
    #[error(
        "verification failed: apply_command exited 0, but status_command still reports {} pending migration(s): {}",
        .pending.len(),
        .pending.join(", ")
    )]
    StillPending {
        /// The environment, for hints.
        environment: String,
        /// What is still pending.
        pending: Vec<String>,
        /// The backup of this run, when there is one.
        backup_id: Option<String>,
    },
    /// A command that needs dbdeploy to read or write the tool's history.
    #[error(
        "{what} is not available with `migration_tool = \"command\"`: the external tool keeps its own history, which dbdeploy does not read or write"
    )]
    Unsupported {
        /// The command or flag, as shown (`` `dbdeploy down` ``).
        what: String,
    },
}

/// `apply_command` failed: how, what it said last, and what the automatic restore did.
#[derive(Debug)]
pub struct ApplyFailure {
    /// The environment, for hints.
    pub environment: String,
    /// `exited with 3`, `was killed by signal 9`, `cannot start: ...`.
    pub reason: String,
    /// Its exit code, when it exited on its own.
    pub exit_code: Option<i32>,
    /// Its last lines of output, scrubbed of secrets.
    pub output: Vec<String>,
    /// How long it ran.
    pub duration: Duration,
    /// What `status_command` reported pending before it ran.
    pub pending: Vec<String>,
    /// What the automatic restore from this run's backup did.
    pub rollback: Option<RollbackOutcome>,
}

fn said(output: &[String]) -> String {
    if output.is_empty() {
        String::new()
    } else {
        format!("; its last output:\n    {}", output.join("\n    "))
    }
}

impl ExternalError {
    /// The process exit code: 2 for a command that is not available, 1 otherwise.
    #[must_use]
    pub fn exit_code(&self) -> u8 {
        match self {
            ExternalError::Unsupported { .. } => crate::error::exit::USAGE,
            _ => crate::error::exit::FAILURE,
        }
    }

    /// A stable identifier for JSON consumers.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            ExternalError::Status { .. } => "status-command-failed",
            ExternalError::Apply(_) => "migration-failed",
            ExternalError::StillPending { .. } => "verification-failed",
            ExternalError::Unsupported { .. } => "unsupported-for-external-tool",
        }
    }

    /// Before, during or after the change.
    #[must_use]
    pub fn class(&self) -> crate::error::ErrorClass {
        use crate::error::ErrorClass;
        match self {
            ExternalError::Status {
                after_apply: true, ..
            }
            | ExternalError::StillPending { .. } => ErrorClass::PostDeployment,
            ExternalError::Apply(_) => ErrorClass::MidDeployment,
            ExternalError::Status { .. } | ExternalError::Unsupported { .. } => {
                ErrorClass::PreDeployment
            }
        }
    }

    /// What to do next.
    #[must_use]
    pub fn hints(&self) -> Vec<String> {
        match self {
            ExternalError::Status {
                after_apply: false,
                ..
            } => vec![
                "run status_command by hand, in the project folder and with DATABASE_URL set, to see what it says".into(),
                "it must exit 0 and print the pending migrations one per line (nothing when up to date); see \"External tools\" in the README".into(),
                "nothing was changed".into(),
            ],
            ExternalError::Status {
                environment,
                backup_id,
                ..
            } => {
                let mut hints = vec![
                    "apply_command exited 0, but the result could not be verified: check the database with the tool's own status command".into(),
                ];
                hints.extend(undo_hint(environment, backup_id.as_deref()));
                hints
            }
            ExternalError::Apply(f) => f.hints(),
            ExternalError::StillPending {
                environment,
                backup_id,
                ..
            } => {
                let mut hints = vec![
                    "check that apply_command applies every pending migration and that both commands use the database in DATABASE_URL".into(),
                ];
                hints.extend(undo_hint(environment, backup_id.as_deref()));
                hints
            }
            ExternalError::Unsupported { .. } => vec![
                "use the tool's own command for this (e.g. `knex migrate:rollback`, `alembic downgrade -1`, `typeorm migration:revert`, `sequelize-cli db:migrate:undo`)".into(),
                "or restore a backup taken before a deploy with `dbdeploy rollback ENV`".into(),
            ],
        }
    }
}

fn undo_hint(environment: &str, backup_id: Option<&str>) -> Vec<String> {
    match backup_id {
        Some(id) => vec![format!(
            "to return to the state before this deploy: `dbdeploy rollback {environment} --to {id}`"
        )],
        None => Vec::new(),
    }
}

impl ApplyFailure {
    /// What to do next, depending on what the automatic restore did.
    #[must_use]
    pub fn hints(&self) -> Vec<String> {
        let env = &self.environment;
        RollbackOutcome::hints(
            self.rollback.as_ref(),
            env,
            format!(
                "fix the failure shown in the tool's output, then run `dbdeploy migrate {env}` again"
            ),
            |id| {
                let mut hints = vec![format!(
                    "the tool may have applied some migrations before it failed: `dbdeploy status {env}` shows what it still reports pending"
                )];
                hints.push(match id {
                    Some(id) => format!(
                        "to return to the state before this deploy: `dbdeploy rollback {env} --to {id}`"
                    ),
                    None => "there is no backup from this run; fix forward, or restore your own backup".into(),
                });
                hints
            },
        )
    }
}

/// A command of the tool, ready to spawn: `sh -c`, the working directory, the variables, no stdin.
fn command(script: &str, env: &EnvSettings) -> Command {
    let mut cmd = Command::new("sh");
    crate::settings::hide_other_urls(&mut cmd);
    cmd.arg("-c")
        .arg(script)
        .current_dir(&env.working_dir)
        .env("DATABASE_URL", env.target.url_for_tools())
        .env("DBDEPLOY_ENVIRONMENT", &env.name)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    cmd
}

/// Runs `status_command` and returns the pending migrations it printed, in its order.
///
/// # Errors
/// [`ExternalError::Status`] when it cannot start or exits non-zero.
pub async fn pending(tool: &ExternalTool, env: &EnvSettings) -> Result<Vec<String>, ExternalError> {
    let failed = |reason: String, output: Vec<String>| ExternalError::Status {
        environment: env.name.clone(),
        reason,
        output,
        after_apply: false,
        backup_id: None,
    };
    let out = command(&tool.status, env)
        .output()
        .await
        .map_err(|e| failed(format!("cannot start: {e}"), Vec::new()))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        let mut text = String::from_utf8_lossy(&out.stderr).into_owned();
        text.push_str(&stdout);
        let lines: Vec<String> = text.lines().map(clean).collect();
        return Err(failed(exit_reason(out.status), tail(&lines, 6)));
    }
    Ok(parse_pending(&stdout))
}

/// The pending migrations in `status_command`'s output: one per non-blank line, trimmed,
/// without terminal colours.
#[must_use]
pub fn parse_pending(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .map(|l| strip_ansi(l).trim().to_owned())
        .filter(|l| !l.is_empty())
        .collect()
}

/// Runs `apply_command`, handing each line of its output (stdout and stderr through one pipe,
/// so in the order it wrote them) to `on_line` as soon as it is written. Returns how long it
/// ran.
///
/// # Errors
/// [`ApplyFailure`] when it cannot start or exits non-zero, with its last lines of output.
pub async fn apply(
    tool: &ExternalTool,
    env: &EnvSettings,
    pending: &[String],
    mut on_line: impl FnMut(&str),
) -> Result<Duration, Box<ApplyFailure>> {
    let started = Instant::now();
    let failure = |reason: String, exit_code: Option<i32>, output: Vec<String>| {
        Box::new(ApplyFailure {
            environment: env.name.clone(),
            reason,
            exit_code,
            output,
            duration: started.elapsed(),
            pending: pending.to_vec(),
            rollback: None,
        })
    };
    let cannot_start = |e: std::io::Error| failure(format!("cannot start: {e}"), None, Vec::new());
    let (reader, writer) = std::io::pipe().map_err(cannot_start)?;
    let mut cmd = command(&tool.apply, env);
    cmd.stdout(writer.try_clone().map_err(cannot_start)?)
        .stderr(writer);
    let mut child = cmd.spawn().map_err(cannot_start)?;
    // The command holds the parent's copies of the write end; the reader only sees the end of
    // the output once they are closed.
    drop(cmd);
    let mut lines = read_lines(reader);
    let mut kept: VecDeque<String> = VecDeque::with_capacity(TAIL_LINES);
    let mut emit = |line: String| {
        let line = clean(&line);
        on_line(&line);
        if kept.len() == TAIL_LINES {
            kept.pop_front();
        }
        kept.push_back(crate::redact::scrub(&line).into_owned());
    };
    let status = loop {
        tokio::select! {
            biased;
            line = lines.recv() => match line {
                Some(line) => emit(line),
                None => break child.wait().await,
            },
            status = child.wait() => {
                while let Ok(Some(line)) = tokio::time::timeout(DRAIN_AFTER_EXIT, lines.recv()).await {
                    emit(line);
                }
                break status;
            }
        }
    };
    let output: Vec<String> = kept.into_iter().collect();
    match status {
        Ok(s) if s.success() => Ok(started.elapsed()),
        Ok(s) => Err(failure(exit_reason(s), s.code(), tail(&output, TAIL_LINES))),
        Err(e) => Err(failure(format!("could not be awaited: {e}"), None, output)),
    }
}

/// Reads lines from the pipe on a thread of its own (the pipe end is a blocking file) and
/// sends them on as they come.
fn read_lines(reader: std::io::PipeReader) -> tokio::sync::mpsc::UnboundedReceiver<String> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        let mut reader = std::io::BufReader::new(reader);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let line = String::from_utf8_lossy(&buf).into_owned();
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            }
        }
    });
    rx
}

/// A line of output as shown: no line ending, no terminal colours, no trailing blanks.
fn clean(line: &str) -> String {
    strip_ansi(line.trim_end_matches(['\n', '\r']))
        .trim_end()
        .to_owned()
}

/// The last `n` non-blank lines, scrubbed of secrets.
fn tail(lines: &[String], n: usize) -> Vec<String> {
    let said: Vec<&String> = lines.iter().filter(|l| !l.trim().is_empty()).collect();
    said[said.len().saturating_sub(n)..]
        .iter()
        .map(|l| crate::redact::scrub(l).into_owned())
        .collect()
}

fn exit_reason(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with {code}"),
        (None, Some(signal)) => format!("was killed by signal {signal}"),
        (None, None) => "ended abnormally".into(),
    }
}

/// Removes terminal escape sequences (colours, cursor moves, titles): tools colour their
/// output even when told not to, and a colour code is not part of a migration's name.
#[must_use]
pub fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\u{1b}' {
            out.push(c);
            continue;
        }
        match chars.next() {
            // CSI: parameters, then one final byte in @..~.
            Some('[') => {
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            // OSC: up to BEL or ESC \.
            Some(']') => {
                while let Some(c) = chars.next() {
                    if c == '\u{7}' {
                        break;
                    }
                    if c == '\u{1b}' && chars.peek() == Some(&'\\') {
                        chars.next();
                        break;
                    }
                }
            }
            // A two-character sequence (ESC c, ESC =, ...).
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_is_one_name_per_non_blank_line() {
        assert_eq!(
            parse_pending("20240101_users.js \n\n  20240102_posts.js\r\n   \n"),
            vec!["20240101_users.js", "20240102_posts.js"]
        );
        assert!(parse_pending("").is_empty());
        assert!(parse_pending("\n  \n").is_empty());
    }

    #[test]
    fn colours_are_not_part_of_a_name() {
        assert_eq!(
            parse_pending("\u{1b}[36m20240101_users.js \u{1b}[39m\n"),
            vec!["20240101_users.js"]
        );
        assert_eq!(
            strip_ansi("\u{1b}]0;title\u{7}a\u{1b}[1;31mb\u{1b}[0m"),
            "ab"
        );
        assert_eq!(strip_ansi("plain [ ] text"), "plain [ ] text");
    }

    #[test]
    fn the_tail_keeps_the_last_non_blank_lines() {
        let lines: Vec<String> = ["a", "", "b", "c", "  "]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        assert_eq!(tail(&lines, 2), vec!["b", "c"]);
        assert_eq!(tail(&lines, 10), vec!["a", "b", "c"]);
    }
}
