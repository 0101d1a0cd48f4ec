//! Running client tools: find them, read their versions, stream their output into a backup
//! file while hashing it, and feed a file to them — in a [`Job`], so that no tool outlives
//! dbdeploy and an interrupt stops them. Credentials reach tools through their environment,
//! never the command line (`ps` shows argv to everyone) nor a file.

use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use rustix::process::{Pid, Signal};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use tokio::process::{Child, Command};

use super::{BackupError, Written};
use crate::checksum::hex;
use crate::interrupt;

/// The most of a tool's stderr kept for an error message.
const STDERR_LIMIT: usize = 8 * 1024;

/// Runs `tool --version`; `None` when the program is not installed.
pub async fn version(tool: &str) -> Option<String> {
    let out = Command::new(tool)
        .arg("--version")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .await
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// The first of `tools` that is installed, with its version line.
pub async fn first_installed(tools: &[&'static str]) -> Option<(&'static str, String)> {
    for tool in tools {
        if let Some(v) = version(tool).await {
            return Some((tool, v));
        }
    }
    None
}

/// The first `major.minor` (or `major`) number in a version line.
#[must_use]
pub fn version_numbers(line: &str) -> Option<(u32, u32)> {
    let start = line.find(|c: char| c.is_ascii_digit())?;
    let rest = &line[start..];
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    let mut parts = rest[..end].split('.').filter(|p| !p.is_empty());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    Some((major, minor))
}

/// How long a stopped tool gets to exit after SIGTERM before it is killed.
const GRACE: Duration = Duration::from_secs(10);

/// The watchdog: the leader of a job's process group, ignoring the signals a terminal or
/// `timeout` sends. It reads one line from dbdeploy: `done` when the job ended normally.
/// End of file without it means dbdeploy died (even by SIGKILL, which no handler sees), and
/// the watchdog then kills its whole group, the tools included.
const WATCHDOG: &str =
    "trap '' INT TERM HUP QUIT PIPE; read line; [ \"$line\" = done ] || kill -KILL 0";

/// The client tools of one backup or restore, so that none outlives dbdeploy: they run in a
/// process group of their own, led by a watchdog (`sh`) that dbdeploy holds a pipe to. A
/// parent-death signal would do the same more directly, but setting one needs `unsafe` in
/// the child before `exec` (no safe API exists in std or tokio), which this crate forbids.
///
/// - Ctrl-C, SIGTERM, SIGHUP: dbdeploy asks the group to stop (SIGTERM), waits for the
///   tools, and kills what is left after a grace period ([`Job::stop`]).
/// - dbdeploy killed (SIGKILL, a panic, `exit`): the pipe closes and the watchdog kills the
///   group.
/// - dropped without [`Job::finish`] (an error path): the group is killed at once.
#[derive(Debug)]
pub struct Job {
    watchdog: Child,
    lifeline: Option<tokio::process::ChildStdin>,
    group: i32,
}

impl Job {
    /// Starts the watchdog.
    ///
    /// # Errors
    /// When `sh` cannot be started.
    pub fn start(what: &str) -> Result<Self, BackupError> {
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(WATCHDOG)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .kill_on_drop(true);
        let mut watchdog = cmd.spawn().map_err(|e| BackupError::Failed {
            what: what.to_owned(),
            message: format!("cannot start the process watchdog (sh): {e}"),
        })?;
        let lifeline = watchdog.stdin.take();
        let group = watchdog
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .ok_or_else(|| BackupError::Failed {
                what: what.to_owned(),
                message: "the process watchdog exited at once".into(),
            })?;
        Ok(Self {
            watchdog,
            lifeline,
            group,
        })
    }

    /// Starts `cmd` in the job's process group.
    ///
    /// # Errors
    /// When the program cannot be started.
    pub fn spawn(&self, cmd: &mut Command, what: &str) -> Result<Child, BackupError> {
        cmd.process_group(self.group).kill_on_drop(true);
        cmd.spawn().map_err(|e| BackupError::Failed {
            what: what.to_owned(),
            message: format!("cannot start: {e}"),
        })
    }

    fn signal(&self, signal: Signal) {
        if let Some(pid) = Pid::from_raw(self.group) {
            let _ = rustix::process::kill_process_group(pid, signal);
        }
    }

    /// Stops every tool of the job: SIGTERM, then SIGKILL after `GRACE`; waits for
    /// `children` to exit.
    pub async fn stop(&self, children: &mut [&mut Child]) {
        self.signal(Signal::TERM);
        let mut all = true;
        for child in children.iter_mut() {
            all &= tokio::time::timeout(GRACE, child.wait()).await.is_ok();
        }
        if !all {
            self.signal(Signal::KILL);
            for child in children.iter_mut() {
                let _ = child.wait().await;
            }
        }
    }

    /// Waits for `child`, unless dbdeploy is interrupted first: then every tool of the job is
    /// stopped and waited for, and `None` comes back.
    pub async fn wait(&self, child: &mut Child) -> Option<std::io::Result<ExitStatus>> {
        let status = tokio::select! {
            biased;
            () = interrupt::wait() => None,
            status = child.wait() => Some(status),
        };
        if status.is_none() {
            self.stop(&mut [child]).await;
        }
        status
    }

    /// Ends the job normally: the watchdog is told and exits without killing anything.
    pub async fn finish(mut self) {
        if let Some(mut lifeline) = self.lifeline.take() {
            let _ = lifeline.write_all(b"done\n").await;
            drop(lifeline);
            let _ = self.watchdog.wait().await;
        }
    }
}

impl Drop for Job {
    fn drop(&mut self) {
        // Not finished: an error path or a cancelled future. The watchdog still leads the
        // group (it is not reaped), so the group id cannot have been reused.
        if self.lifeline.is_some() {
            self.signal(Signal::KILL);
        }
    }
}

/// The error of a tool stopped because dbdeploy was interrupted.
#[must_use]
pub fn stopped(what: &str) -> BackupError {
    BackupError::Failed {
        what: what.to_owned(),
        message: "stopped: dbdeploy was interrupted, and the tool was terminated and waited for"
            .into(),
    }
}

/// Runs `cmd`, writing its stdout through `file` (created 0600 by the caller) and hashing it.
///
/// # Errors
/// When the tool cannot start, exits non-zero or is stopped by an interrupt, or the file
/// cannot be written (disk full).
pub async fn dump_to_file(
    mut cmd: Command,
    what: &str,
    out: &Path,
    file: &std::fs::File,
) -> Result<Written, BackupError> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let io = |e: std::io::Error| BackupError::Io {
        path: out.to_owned(),
        what: "cannot write the backup".into(),
        source: Some(e),
    };
    let file = tokio::fs::File::from_std(file.try_clone().map_err(io)?);
    let job = Job::start(what)?;
    let mut child = job.spawn(&mut cmd, what)?;
    let stderr = collect(child.stderr.take());
    let stdout = child.stdout.take().expect("stdout is piped");
    let copied = tokio::select! {
        biased;
        () = interrupt::wait() => None,
        copied = copy_hashing(stdout, file, what, out) => Some(copied),
    };
    let Some(copied) = copied else {
        job.stop(&mut [&mut child]).await;
        return Err(stopped(what));
    };
    let status = match copied {
        Ok(_) => job.wait(&mut child).await,
        Err(e) => return Err(e),
    };
    let Some(status) = status else {
        return Err(stopped(what));
    };
    let status = status.map_err(|e| BackupError::Failed {
        what: what.to_owned(),
        message: e.to_string(),
    })?;
    job.finish().await;
    let err_text = stderr.await.unwrap_or_default();
    if !status.success() {
        return Err(BackupError::Failed {
            what: what.to_owned(),
            message: failure_message(status, &err_text),
        });
    }
    copied
}

async fn copy_hashing(
    mut from: tokio::process::ChildStdout,
    mut file: tokio::fs::File,
    what: &str,
    out: &Path,
) -> Result<Written, BackupError> {
    let io = |e: std::io::Error| BackupError::Io {
        path: out.to_owned(),
        what: "cannot write the backup".into(),
        source: Some(e),
    };
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = from.read(&mut buf).await.map_err(|e| BackupError::Failed {
            what: what.to_owned(),
            message: format!("cannot read its output: {e}"),
        })?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        file.write_all(&buf[..n]).await.map_err(io)?;
        size += n as u64;
    }
    file.flush().await.map_err(io)?;
    file.sync_all().await.map_err(io)?;
    Ok(Written {
        size: Some(size),
        sha256: Some(hex(&hasher.finalize())),
    })
}

/// Runs `cmd` to completion with `stdin` as its input; returns what it said (stderr, then
/// stdout).
///
/// # Errors
/// When the tool cannot start, exits non-zero, or is stopped by an interrupt.
pub async fn run(mut cmd: Command, what: &str, stdin: Stdio) -> Result<String, BackupError> {
    let job = Job::start(what)?;
    let (status, text) = run_in(&job, &mut cmd, what, stdin).await?;
    job.finish().await;
    check(status, what, text)
}

/// Runs `cmd` in `job` with `stdin` as its input, and collects what it said.
///
/// # Errors
/// When the tool cannot start, or is stopped by an interrupt.
pub async fn run_in(
    job: &Job,
    cmd: &mut Command,
    what: &str,
    stdin: Stdio,
) -> Result<(ExitStatus, String), BackupError> {
    cmd.stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = job.spawn(cmd, what)?;
    let stderr = collect(child.stderr.take());
    let stdout = collect(child.stdout.take());
    let status = job
        .wait(&mut child)
        .await
        .ok_or_else(|| stopped(what))?
        .map_err(|e| BackupError::Failed {
            what: what.to_owned(),
            message: e.to_string(),
        })?;
    let mut text = stderr.await.unwrap_or_default();
    text.push_str(&stdout.await.unwrap_or_default());
    Ok((status, text))
}

/// A tool's exit status as a result: its output when it succeeded, its last words when not.
///
/// # Errors
/// A non-zero exit.
pub fn check(status: ExitStatus, what: &str, text: String) -> Result<String, BackupError> {
    if status.success() {
        Ok(text)
    } else {
        Err(BackupError::Failed {
            what: what.to_owned(),
            message: failure_message(status, &text),
        })
    }
}

/// Output of a tool, read to the end in the background; the end is kept.
pub enum Output {
    /// Its stderr.
    Err(tokio::process::ChildStderr),
    /// Its stdout.
    Out(tokio::process::ChildStdout),
}

impl From<tokio::process::ChildStderr> for Output {
    fn from(e: tokio::process::ChildStderr) -> Self {
        Output::Err(e)
    }
}

impl From<tokio::process::ChildStdout> for Output {
    fn from(o: tokio::process::ChildStdout) -> Self {
        Output::Out(o)
    }
}

/// Reads a tool's stderr or stdout to the end in the background, keeping the end.
pub fn collect(output: Option<impl Into<Output>>) -> tokio::task::JoinHandle<String> {
    let mut output = output.map(Into::into);
    tokio::spawn(async move {
        let mut kept = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let read = match &mut output {
                Some(Output::Err(e)) => e.read(&mut buf).await,
                Some(Output::Out(o)) => o.read(&mut buf).await,
                None => break,
            };
            let Ok(n) = read else { break };
            if n == 0 {
                break;
            }
            // Keep the end: the reason for a failure is usually the last thing said.
            kept.extend_from_slice(&buf[..n]);
            if kept.len() > 2 * STDERR_LIMIT {
                kept.drain(..kept.len() - STDERR_LIMIT);
            }
        }
        String::from_utf8_lossy(&kept).into_owned()
    })
}

fn failure_message(status: std::process::ExitStatus, stderr: &str) -> String {
    let tail: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .rev()
        .take(6)
        .collect();
    let said: Vec<&str> = tail.into_iter().rev().collect();
    let code = status.code().map_or_else(
        || "was killed by a signal".to_owned(),
        |c| format!("exited with {c}"),
    );
    let text = if said.is_empty() {
        code
    } else {
        format!("{code}: {}", said.join(" / "))
    };
    let text = if text.len() > STDERR_LIMIT {
        text[text.len() - STDERR_LIMIT..].to_owned()
    } else {
        text
    };
    crate::redact::scrub(&text).into_owned()
}

/// The sha256 and size of a file of a checked folder (a regular file of ours, never through
/// a link), streamed.
///
/// # Errors
/// When the file is untrusted or cannot be read.
pub async fn hash_file(path: &Path) -> Result<Written, BackupError> {
    let file = super::folder::open_own(path)?;
    Ok(hash_handle(file, path).await?.1)
}

/// The sha256 and size of an open file, and the file, rewound.
///
/// # Errors
/// When it cannot be read.
pub async fn hash_handle(
    file: std::fs::File,
    path: &Path,
) -> Result<(std::fs::File, Written), BackupError> {
    let io = |e: std::io::Error| BackupError::Io {
        path: path.to_owned(),
        what: "cannot read it".into(),
        source: Some(e),
    };
    let mut file = tokio::fs::File::from_std(file);
    file.rewind().await.map_err(io)?;
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = file.read(&mut buf).await.map_err(io)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    file.rewind().await.map_err(io)?;
    let written = Written {
        size: Some(size),
        sha256: Some(hex(&hasher.finalize())),
    };
    Ok((file.into_std().await, written))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_tool_versions() {
        assert_eq!(
            version_numbers("pg_dump (PostgreSQL) 15.19 (Debian 15.19-0+deb12u1)"),
            Some((15, 19))
        );
        assert_eq!(version_numbers("PostgreSQL 16.2"), Some((16, 2)));
        assert_eq!(version_numbers("PostgreSQL 17beta1"), Some((17, 0)));
        assert_eq!(version_numbers("no digits"), None);
    }
}
