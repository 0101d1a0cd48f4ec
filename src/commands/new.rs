//! `dbdeploy new NAME`: an empty migration in the project's format, named and numbered the way
//! the tool itself does it (`prisma migrate dev --create-only`, `sqlx migrate add`, `dbmate new`,
//! `migrate create`, `drizzle-kit generate --custom`, Flyway's `V<n>__`), so that the tool and
//! dbdeploy read it alike. It prints the path(s) it wrote.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::cli::NewArgs;
use crate::config::{ConfigError, MigrationTool};
use crate::error::Error;
use crate::output::{Line, Response};
use crate::settings::Settings;

const OPERATION: &str = "new-migration";

/// What `new` wrote.
#[derive(Debug, Serialize)]
struct Created {
    migration_tool: &'static str,
    name: String,
    files: Vec<String>,
}

/// Runs `new`.
pub fn run(settings: &Settings, args: &NewArgs) -> Response {
    let tool = settings.config.project.migration_tool;
    let dir = settings.migrations_dir();
    match create(tool, &dir, &args.name, chrono::Utc::now()) {
        Ok((name, files)) => {
            let shown: Vec<String> = files.iter().map(|f| display_path(f)).collect();
            let result = Created {
                migration_tool: tool.as_str(),
                name,
                files: shown.clone(),
            };
            let mut response = Response::success(OPERATION, "", None, shown.join("\n"), &result);
            // The path alone, so that `$EDITOR "$(dbdeploy new add_users)"` works.
            response.line = Line::Plain;
            response
        }
        Err(e) => Response::failed(OPERATION, "", e),
    }
}

/// A path relative to the current directory when it is below it.
fn display_path(path: &Path) -> String {
    std::env::current_dir()
        .ok()
        .and_then(|cwd| path.strip_prefix(cwd).ok().map(Path::to_path_buf))
        .unwrap_or_else(|| path.to_path_buf())
        .display()
        .to_string()
}

fn usage(message: String) -> Error {
    ConfigError::Usage(message).into()
}

/// Letters, digits, `_` and `-`: the name becomes part of a file name every tool parses.
fn check_name(name: &str) -> Result<(), Error> {
    let ok = !name.is_empty()
        && name.len() <= 100
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(usage(format!(
            "migration name `{name}` is not allowed: use letters, digits, `_` and `-` (starting with a letter or digit, at most 100 characters), e.g. `dbdeploy new add_users_email`"
        )))
    }
}

/// Writes the migration; returns its name and its files.
fn create(
    tool: MigrationTool,
    dir: &Path,
    name: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(String, Vec<PathBuf>), Error> {
    check_name(name)?;
    if tool == MigrationTool::Command {
        return Err(usage(
            "`migration_tool = \"command\"`: create migrations with your tool; dbdeploy only runs its commands".into(),
        ));
    }
    let existing = list(dir)?;
    let stamp = now.format("%Y%m%d%H%M%S").to_string();
    let files: Vec<(PathBuf, String)> = match tool {
        MigrationTool::Prisma => {
            let v = next_timestamp(&stamp, &existing);
            vec![(
                dir.join(format!("{v}_{name}")).join("migration.sql"),
                "-- This is an empty migration.\n".into(),
            )]
        }
        MigrationTool::Sqlx => {
            let v = next_version(&stamp, &existing);
            if existing.iter().any(|n| n.ends_with(".up.sql")) {
                pair(
                    dir,
                    &v,
                    name,
                    "-- Add up migration script here\n",
                    "-- Add down migration script here\n",
                )
            } else {
                vec![(
                    dir.join(format!("{v}_{name}.sql")),
                    "-- Add migration script here\n".into(),
                )]
            }
        }
        MigrationTool::Dbmate => vec![(
            dir.join(format!("{}_{name}.sql", next_timestamp(&stamp, &existing))),
            "-- migrate:up\n\n\n-- migrate:down\n\n".into(),
        )],
        MigrationTool::GolangMigrate => pair(dir, &next_version(&stamp, &existing), name, "", ""),
        MigrationTool::Sql => vec![(
            dir.join(format!("{}_{name}.sql", next_version(&stamp, &existing))),
            String::new(),
        )],
        MigrationTool::Flyway => vec![(
            dir.join(format!("V{}__{name}.sql", next_flyway(&existing))),
            String::new(),
        )],
        MigrationTool::Drizzle => return drizzle(dir, name, now),
        MigrationTool::Command => unreachable!("refused above"),
    };
    write(&files)?;
    let migration = files[0]
        .0
        .strip_prefix(dir)
        .ok()
        .and_then(|p| p.components().next())
        .map_or_else(
            || name.to_owned(),
            |c| c.as_os_str().to_string_lossy().into_owned(),
        );
    let migration = migration
        .trim_end_matches(".sql")
        .trim_end_matches(".up")
        .to_owned();
    Ok((migration, files.into_iter().map(|(p, _)| p).collect()))
}

fn pair(dir: &Path, v: &str, name: &str, up: &str, down: &str) -> Vec<(PathBuf, String)> {
    vec![
        (dir.join(format!("{v}_{name}.up.sql")), up.to_owned()),
        (dir.join(format!("{v}_{name}.down.sql")), down.to_owned()),
    ]
}

/// The names in the folder (none when it does not exist yet).
fn list(dir: &Path) -> Result<Vec<String>, Error> {
    match std::fs::read_dir(dir) {
        Ok(rd) => Ok(rd
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().into_string().ok())
            .collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(usage(format!("cannot read {}: {e}", dir.display()))),
    }
}

/// The leading digits of each name.
fn versions(existing: &[String]) -> Vec<&str> {
    existing
        .iter()
        .filter_map(|n| {
            let end = n.find(|c: char| !c.is_ascii_digit()).unwrap_or(n.len());
            (end > 0 && n[end..].starts_with('_')).then(|| &n[..end])
        })
        .collect()
}

/// A timestamp after every existing version, so that the new migration sorts last even when
/// two are made in the same second or a clock is behind.
fn next_timestamp(stamp: &str, existing: &[String]) -> String {
    let newest = versions(existing)
        .iter()
        .filter_map(|v| v.parse::<u128>().ok())
        .max();
    match (stamp.parse::<u128>(), newest) {
        (Ok(now), Some(newest)) if newest >= now => (newest + 1).to_string(),
        _ => stamp.to_owned(),
    }
}

/// The next number when the folder is numbered (`0001_`, `000042_`), keeping its width;
/// otherwise a timestamp.
fn next_version(stamp: &str, existing: &[String]) -> String {
    let vs = versions(existing);
    let sequential = !vs.is_empty() && vs.iter().all(|v| v.len() < 14);
    if !sequential {
        return next_timestamp(stamp, existing);
    }
    let width = vs.iter().map(|v| v.len()).max().unwrap_or(1);
    let next = vs
        .iter()
        .filter_map(|v| v.parse::<u64>().ok())
        .max()
        .unwrap_or(0)
        + 1;
    format!("{next:0width$}")
}

/// One more than the highest major version of the `V<version>__` files.
fn next_flyway(existing: &[String]) -> u64 {
    existing
        .iter()
        .filter_map(|n| {
            let v = n.strip_prefix('V')?.split("__").next()?;
            v.split(['.', '_']).next()?.parse::<u64>().ok()
        })
        .max()
        .unwrap_or(0)
        + 1
}

fn write(files: &[(PathBuf, String)]) -> Result<(), Error> {
    if let Some((p, _)) = files.iter().find(|(p, _)| p.exists()) {
        return Err(usage(format!(
            "{} already exists; choose another name",
            p.display()
        )));
    }
    for (path, text) in files {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| usage(format!("cannot create {}: {e}", parent.display())))?;
        }
        // `create_new`: a file that appeared meanwhile is never overwritten.
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .and_then(|mut f| std::io::Write::write_all(&mut f, text.as_bytes()))
            .map_err(|e| usage(format!("cannot write {}: {e}", path.display())))?;
    }
    Ok(())
}

/// drizzle-kit: `<idx>_<name>.sql` and its journal entry, as `drizzle-kit generate --custom`.
fn drizzle(
    dir: &Path,
    name: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(String, Vec<PathBuf>), Error> {
    use serde_json::{Value, json};
    let journal_path = dir.join("meta/_journal.json");
    let mut journal: Value = match std::fs::read_to_string(&journal_path) {
        Ok(text) => serde_json::from_str(&text).map_err(|e| {
            usage(format!(
                "{} is not a drizzle-kit journal: {e}",
                journal_path.display()
            ))
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            json!({ "version": "7", "entries": [] })
        }
        Err(e) => {
            return Err(usage(format!(
                "cannot read {}: {e}",
                journal_path.display()
            )));
        }
    };
    let Some(entries) = journal.get_mut("entries").and_then(Value::as_array_mut) else {
        return Err(usage(format!(
            "{} has no `entries` list",
            journal_path.display()
        )));
    };
    let last = entries.last().cloned().unwrap_or(Value::Null);
    let idx = entries.len();
    let tag = format!("{idx:04}_{name}");
    let when = now
        .timestamp_millis()
        .max(last["when"].as_i64().map_or(0, |w| w + 1));
    let version = last["version"].as_str().unwrap_or("7").to_owned();
    entries.push(json!({
        "idx": idx,
        "version": version,
        "when": when,
        "tag": tag,
        "breakpoints": true,
    }));
    let sql = dir.join(format!("{tag}.sql"));
    write(&[(
        sql.clone(),
        "-- Custom SQL migration file, put your code below! --\n".into(),
    )])?;
    let text = serde_json::to_string_pretty(&journal).unwrap_or_default();
    std::fs::create_dir_all(dir.join("meta"))
        .and_then(|()| std::fs::write(&journal_path, format!("{text}\n")))
        .map_err(|e| usage(format!("cannot write {}: {e}", journal_path.display())))?;
    Ok((tag, vec![sql, journal_path]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn numbering_follows_the_folder() {
        let stamp = "20260101120000";
        assert_eq!(next_version(stamp, &[]), stamp);
        assert_eq!(
            next_version(stamp, &names(&["0001_a.sql", "0009_b.sql"])),
            "0010"
        );
        assert_eq!(
            next_version(stamp, &names(&["000001_a.up.sql", "000001_a.down.sql"])),
            "000002"
        );
        // A clock behind the newest migration still sorts the new one last.
        assert_eq!(
            next_timestamp(stamp, &names(&["20270101000000_x"])),
            "20270101000001"
        );
        assert_eq!(
            next_flyway(&names(&["V1__a.sql", "V2.1__b.sql", "R__v.sql"])),
            3
        );
    }

    #[test]
    fn names_that_would_break_a_file_name_are_refused() {
        for bad in ["", "a b", "../x", "-x", "a/b", "ä"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
        check_name("add_users-2").unwrap();
    }
}
