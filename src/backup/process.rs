//! Running client tools: find them, read their versions, stream their output into a backup
//! file while hashing it, and feed a file to them. Credentials reach tools through their
//! environment or a 0600 options file, never the command line (`ps` shows argv to everyone).

use std::path::Path;
use std::process::Stdio;

use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

use super::{BackupError, Written};
use crate::checksum::hex;

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

/// Runs `cmd`, writing its stdout to `out` (already created, mode 0600) and hashing it.
///
/// # Errors
/// When the tool cannot start, exits non-zero, or the file cannot be written (disk full).
pub async fn dump_to_file(
    mut cmd: Command,
    what: &str,
    out: &Path,
) -> Result<Written, BackupError> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().map_err(|e| BackupError::Failed {
        what: what.to_owned(),
        message: format!("cannot start: {e}"),
    })?;
    let stderr = collect_stderr(child.stderr.take());
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let io = |e: std::io::Error| BackupError::Io {
        path: out.to_owned(),
        what: "cannot write the backup".into(),
        source: Some(e),
    };
    let mut file = tokio::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(out)
        .await
        .map_err(io)?;
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = stdout
            .read(&mut buf)
            .await
            .map_err(|e| BackupError::Failed {
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
    let status = child.wait().await.map_err(|e| BackupError::Failed {
        what: what.to_owned(),
        message: e.to_string(),
    })?;
    let err_text = stderr.await.unwrap_or_default();
    if !status.success() {
        return Err(BackupError::Failed {
            what: what.to_owned(),
            message: failure_message(status, &err_text),
        });
    }
    Ok(Written {
        size: Some(size),
        sha256: Some(hex(&hasher.finalize())),
    })
}

/// Runs `cmd` to completion with `stdin` as its input; returns its stderr.
///
/// # Errors
/// When the tool cannot start or exits non-zero.
pub async fn run(mut cmd: Command, what: &str, stdin: Stdio) -> Result<String, BackupError> {
    cmd.stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = cmd.spawn().map_err(|e| BackupError::Failed {
        what: what.to_owned(),
        message: format!("cannot start: {e}"),
    })?;
    let out = child
        .wait_with_output()
        .await
        .map_err(|e| BackupError::Failed {
            what: what.to_owned(),
            message: e.to_string(),
        })?;
    let mut text = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.stdout.is_empty() {
        text.push_str(&String::from_utf8_lossy(&out.stdout));
    }
    if out.status.success() {
        Ok(text)
    } else {
        Err(BackupError::Failed {
            what: what.to_owned(),
            message: failure_message(out.status, &text),
        })
    }
}

fn collect_stderr(stderr: Option<tokio::process::ChildStderr>) -> tokio::task::JoinHandle<String> {
    tokio::spawn(async move {
        let Some(mut stderr) = stderr else {
            return String::new();
        };
        let mut kept = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = stderr.read(&mut buf).await {
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

/// The sha256 and size of a file, streamed.
///
/// # Errors
/// When the file cannot be read.
pub async fn hash_file(path: &Path) -> Result<Written, BackupError> {
    let io = |e: std::io::Error| BackupError::Io {
        path: path.to_owned(),
        what: "cannot read it".into(),
        source: Some(e),
    };
    let mut file = tokio::fs::File::open(path).await.map_err(io)?;
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
    Ok(Written {
        size: Some(size),
        sha256: Some(hex(&hasher.finalize())),
    })
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
