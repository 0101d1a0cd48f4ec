//! A fleet's targets, resolved before anything runs: listed in the file or printed by
//! `targets_command`, each with its URL read (a secret, registered for redaction at once) and
//! its own environment settings. Two targets that are the same database are refused here,
//! by the identity backups are bound to (read on a read-only session), so that no database
//! is ever deployed twice at once under two names.

use std::collections::BTreeMap;
use std::process::Stdio;

use tokio::io::AsyncReadExt;

use super::config::{FleetSettings, TargetEntry, TargetSource, check_entry, check_unique};
use crate::backup::identity::{self, DatabaseIdentity};
use crate::config::ConfigError;
use crate::engine::{ConnectOptions, Database, Target};
use crate::error::Error;
use crate::settings::{EnvSettings, Settings};

/// One database of a fleet.
#[derive(Debug)]
pub struct FleetTarget {
    /// Its id.
    pub id: String,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// The fleet environment's settings with this target's database.
    pub env: EnvSettings,
}

/// Lists the fleet's targets (running `targets_command` when that is the source) and resolves
/// each one's URL and settings.
///
/// # Errors
/// A configuration error (exit 2): a missing variable, a bad URL, a bad line from the command,
/// a duplicate id; nothing is touched.
pub async fn resolve(
    settings: &Settings,
    fleet: &FleetSettings,
) -> Result<Vec<FleetTarget>, Error> {
    let name = &fleet.environment;
    // Targets' children (backup, health and external tool commands) see no other
    // environment's URL, and no other target's.
    let mut hidden = settings.url_vars_except(name);
    let entries = match &fleet.source {
        TargetSource::Listed(list) => list.clone(),
        TargetSource::Command(command) => {
            crate::settings::hide_more_urls(&hidden);
            from_command(settings, name, command).await?
        }
        TargetSource::Query {
            sql,
            catalog_url_env,
        } => {
            // The catalog's URL is no target's: its children do not see it either.
            hidden.push(catalog_url_env.clone());
            super::catalog::read(settings, name, sql, catalog_url_env).await?
        }
    };
    hidden.extend(entries.iter().filter_map(|t| t.url_env.clone()));
    crate::settings::hide_more_urls(&hidden);
    let mut targets = Vec::with_capacity(entries.len());
    for entry in entries {
        let raw = settings.target_url(name, &entry)?;
        let env = settings
            .fleet_target(name, &entry.id, &raw, hidden.clone())
            .map_err(|e| match e {
                ConfigError::BadUrl { reason, .. } => ConfigError::BadUrl {
                    env: format!("{name}` target `{}", entry.id),
                    reason,
                },
                other => other,
            })?;
        targets.push(FleetTarget {
            id: entry.id,
            labels: entry.labels,
            env,
        });
    }
    Ok(targets)
}

/// Runs `targets_command` (`sh -c`, in the working directory, in a process group that dies
/// with dbdeploy) and reads one target per non-blank line of its output.
async fn from_command(
    settings: &Settings,
    environment: &str,
    command: &str,
) -> Result<Vec<TargetEntry>, Error> {
    let what = format!("`[environments.{environment}.fleet] targets_command`");
    let failed = |reason: String| -> Error {
        ConfigError::Usage(format!("{what} failed: {reason}; nothing was changed")).into()
    };
    let job = crate::backup::process::Job::start(&what).map_err(|e| failed(e.to_string()))?;
    let mut cmd = tokio::process::Command::new("sh");
    crate::settings::hide_other_urls(&mut cmd);
    cmd.arg("-c")
        .arg(command)
        .current_dir(&settings.working_dir)
        .env("DBDEPLOY_ENVIRONMENT", environment)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = job
        .spawn(&mut cmd, &what)
        .map_err(|e| failed(e.to_string()))?;
    let stderr = crate::backup::process::collect(child.stderr.take());
    // Read whole: a fleet of hundreds must not lose a target to a bounded buffer.
    let mut out = child.stdout.take();
    let read = async {
        let mut bytes = Vec::new();
        if let Some(out) = out.as_mut() {
            out.read_to_end(&mut bytes).await.map(|_| bytes)
        } else {
            Ok(bytes)
        }
    };
    let (bytes, status) = tokio::join!(read, job.wait(&mut child));
    let status = status
        .ok_or_else(|| failed("stopped: dbdeploy was interrupted".into()))?
        .map_err(|e| failed(e.to_string()))?;
    job.finish().await;
    let said = stderr.await.unwrap_or_default();
    if !status.success() {
        let last = said.lines().last().unwrap_or("").trim().to_owned();
        return Err(failed(format!(
            "{status}{}",
            if last.is_empty() {
                String::new()
            } else {
                format!(": {last}")
            }
        )));
    }
    let bytes = bytes.map_err(|e| failed(format!("cannot read its output: {e}")))?;
    let text =
        String::from_utf8(bytes).map_err(|_| failed("its output is not UTF-8 text".into()))?;
    parse_lines(&text).map_err(failed)
}

/// The targets in `targets_command`'s output: one JSON object per non-blank line. A line is
/// never quoted back in an error: it may hold a URL.
///
/// # Errors
/// The first bad line, by number.
pub fn parse_lines(text: &str) -> Result<Vec<TargetEntry>, String> {
    let mut entries = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let entry: TargetEntry = serde_json::from_str(line).map_err(|e| {
            let reason = match e.classify() {
                serde_json::error::Category::Data => unquoted(&e.to_string()),
                _ => "not valid JSON".to_owned(),
            };
            format!(
                "line {} is not a target (one JSON object per line: {{\"id\", \"url\" or \"url_env\", \"labels\"}}): {reason}",
                i + 1
            )
        })?;
        if let Some(url) = &entry.url {
            crate::redact::register_url(url);
        }
        check_entry(&entry).map_err(|e| format!("line {}: {e}", i + 1))?;
        entries.push(entry);
    }
    check_unique(entries.iter().map(|t| t.id.as_str()))?;
    Ok(entries)
}

/// serde's message without the values it quotes (`invalid type: string "postgres://…"`): field
/// names stay, in backticks.
fn unquoted(message: &str) -> String {
    let message = message.split(" at line").next().unwrap_or("");
    let mut out = String::new();
    for (i, part) in message.split('"').enumerate() {
        out.push_str(if i % 2 == 0 { part } else { "…" });
    }
    out
}

/// Refuses two targets that are the same database: the identity backups are bound to, read
/// on a read-only session (SQLite: the file's canonical path, without opening it). Returns,
/// per target, why its identity could not be read (an unreachable server): such a target
/// cannot run, and fails like a target that cannot be planned, without stopping the check.
///
/// # Errors
/// A configuration error naming both targets (exit 2).
pub async fn refuse_duplicates(
    targets: &[FleetTarget],
    claims: &[super::schedule::Claim],
    fleet: &FleetSettings,
) -> Result<Vec<Option<String>>, Error> {
    let ids: Vec<Result<DatabaseIdentity, Error>> = super::schedule::all(
        targets,
        claims,
        fleet.max_parallel,
        fleet.max_parallel_per_server,
        identity_of,
    )
    .await;
    let mut seen: Vec<(&str, DatabaseIdentity)> = Vec::new();
    let mut unreadable = Vec::with_capacity(targets.len());
    for (target, id) in targets.iter().zip(ids) {
        let id = match id {
            Ok(id) => id,
            Err(e) => {
                unreadable.push(Some(format!("cannot tell which database it is: {e}")));
                continue;
            }
        };
        unreadable.push(None);
        if let Some((other, _)) = seen.iter().find(|(_, known)| *known == id) {
            return Err(ConfigError::Usage(format!(
                "targets `{other}` and `{}` of environment `{}` are the same database ({id}): each database may appear once in a fleet; nothing was changed",
                target.id, target.env.name
            ))
            .into());
        }
        seen.push((&target.id, id));
    }
    Ok(unreadable)
}

async fn identity_of(target: &FleetTarget) -> Result<DatabaseIdentity, Error> {
    let t = &target.env.target;
    if let Target::Sqlite { path } = t {
        return Ok(identity::sqlite(path));
    }
    crate::with_database!(t, D => read_identity::<D>(&target.env).await)
}

async fn read_identity<D: Database>(env: &EnvSettings) -> Result<DatabaseIdentity, Error> {
    let opts = ConnectOptions {
        wait: env.connect_wait,
        read_only: true,
        lock_wait: env.lock_timeout,
    };
    let mut db = D::connect(&env.target, opts).await?;
    let id = identity::read(&mut db, &env.target).await;
    // Schemas of one PostgreSQL database are targets of their own (a schema per tenant).
    let schema = match &env.target {
        Target::Postgres { .. } => crate::backup::scalar_text(
            &mut db,
            &crate::engine::Stmt::raw("SELECT current_schema()::text"),
        )
        .await
        .map(Option::unwrap_or_default),
        _ => Ok(String::new()),
    };
    db.close().await;
    let mut id = id?;
    let schema = schema?;
    if !schema.is_empty() {
        id.database = format!("{}` schema `{schema}", id.database);
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_become_targets() {
        let t = parse_lines(
            "{\"id\": \"a\", \"url_env\": \"A_URL\", \"labels\": {\"tier\": \"free\"}}\n\n{\"id\": \"b\", \"url\": \"sqlite://b.db\"}\n",
        )
        .unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].labels["tier"], "free");
    }

    #[test]
    fn a_bad_line_is_named_and_never_quoted() {
        let e = parse_lines(
            "{\"id\": \"a\", \"url\": \"postgres://u:sekret@h/db\"}\nnot json sekret\n",
        )
        .unwrap_err();
        assert!(e.starts_with("line 2 "), "{e}");
        assert!(!e.contains("sekret"), "{e}");
        let dup = parse_lines(
            "{\"id\": \"a\", \"url\": \"sqlite://a\"}\n{\"id\": \"a\", \"url\": \"sqlite://b\"}",
        )
        .unwrap_err();
        assert!(dup.contains("more than once"), "{dup}");
        let unknown = parse_lines("{\"id\": \"a\", \"uri\": \"x\"}").unwrap_err();
        assert!(
            unknown.contains("line 1") && unknown.contains("`uri`"),
            "{unknown}"
        );
        let typed =
            parse_lines("{\"id\": \"a\", \"labels\": \"postgres://u:sekret@h\"}").unwrap_err();
        assert!(!typed.contains("sekret"), "{typed}");
    }
}
