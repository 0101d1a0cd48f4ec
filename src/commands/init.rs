//! `dbdeploy init`: write a commented `dbdeploy.toml` for the project, with the migration tool
//! and folder detected from its layout, a `dev` environment and a protected `production` one.
//! It never overwrites an existing file and never writes a database URL with a password: URLs
//! other than a local SQLite file are read from environment variables.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::cli::InitArgs;
use crate::config::ConfigError;
use crate::error::Error;
use crate::handler::detect::{self, Detection, Outcome};
use crate::output::{Printer, Response, listing};
use crate::settings::{self, Location};

const OPERATION: &str = "init";

/// The variable the `dev` environment reads when the project's database is a server.
const DEV_VAR: &str = "DATABASE_URL";
/// The variable the `production` environment reads.
const PROD_VAR: &str = "PROD_DATABASE_URL";
/// The local database of the `dev` environment.
const DEV_SQLITE: &str = "sqlite://.dbdeploy/dev.db";

/// What `init` decided.
#[derive(Debug)]
struct Plan {
    tool: &'static str,
    dir: String,
    /// Why: the detection evidence, or "--tool".
    reason: String,
    /// `Some(why)` when `dev` reads `DATABASE_URL` instead of a local SQLite file.
    dev_from_env: Option<String>,
}

/// What `init` wrote.
#[derive(Serialize)]
struct Written<'a> {
    config_file: String,
    migration_tool: &'a str,
    migrations_dir: &'a str,
    reason: &'a str,
    dev_url_env: Option<&'static str>,
    gitignore_updated: bool,
}

/// Runs `init` in the project `location`.
pub fn run(location: &Location, args: &InitArgs, printer: &Printer) -> Response {
    let (path, plan) = match init(location, args) {
        Ok(x) => x,
        Err(e) => return Response::failed(OPERATION, "", e),
    };
    let gitignore_updated = match ignore_state(&location.working_dir) {
        Ok(updated) => updated,
        Err(e) => return Response::failed(OPERATION, "", e),
    };
    let shown = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    listing::detected(printer, plan.tool, &plan.dir, &plan.reason);
    let ignored = if gitignore_updated {
        " Added .dbdeploy/ (backups, audit log, local database) to .gitignore."
    } else {
        ""
    };
    let message = format!(
        "Wrote {shown}: migration_tool = \"{}\", migrations_dir = \"{}\".{ignored} Next: dbdeploy status dev",
        plan.tool, plan.dir
    );
    let result = Written {
        config_file: path.display().to_string(),
        migration_tool: plan.tool,
        migrations_dir: &plan.dir,
        reason: &plan.reason,
        dev_url_env: plan.dev_from_env.as_ref().map(|_| DEV_VAR),
        gitignore_updated,
    };
    Response::success(OPERATION, "", None, message, &result)
}

fn usage(message: String) -> Error {
    ConfigError::Usage(message).into()
}

fn init(location: &Location, args: &InitArgs) -> Result<(PathBuf, Plan), Error> {
    let root = location.working_dir.clone();
    let path = location.config_path.clone();
    if path.exists() {
        return Err(usage(format!(
            "{} already exists; `dbdeploy init` never overwrites it: edit it, or move it away and run `dbdeploy init` again",
            path.display()
        )));
    }
    let plan = decide(&root, args)?;
    let text = render(&plan);
    // `create_new` so that a file appearing meanwhile is not overwritten either.
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| usage(format!("cannot create {}: {e}", path.display())))?;
    file.write_all(text.as_bytes())
        .map_err(|e| usage(format!("cannot write {}: {e}", path.display())))?;
    Ok((path, plan))
}

/// Adds `.dbdeploy/` (backups, the audit log, the local SQLite database) to the project's
/// `.gitignore`, unless a line already ignores it; returns whether the file changed.
fn ignore_state(root: &Path) -> Result<bool, Error> {
    let path = root.join(".gitignore");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(usage(format!("cannot read {}: {e}", path.display()))),
    };
    let ignored = text.lines().map(str::trim).any(|l| {
        matches!(
            l,
            ".dbdeploy"
                | ".dbdeploy/"
                | "/.dbdeploy"
                | "/.dbdeploy/"
                | ".dbdeploy/*"
                | "/.dbdeploy/*"
        )
    });
    if ignored {
        return Ok(false);
    }
    let sep = if text.is_empty() || text.ends_with('\n') {
        ""
    } else {
        "\n"
    };
    let addition =
        format!("{sep}# dbdeploy: backups, the audit log and the local database\n.dbdeploy/\n");
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(&path)
        .and_then(|mut f| f.write_all(addition.as_bytes()))
        .map_err(|e| usage(format!("cannot write {}: {e}", path.display())))?;
    Ok(true)
}

fn tool_names() -> String {
    detect::TOOLS
        .iter()
        .map(|(t, _)| *t)
        .collect::<Vec<_>>()
        .join(", ")
}

fn decide(root: &Path, args: &InitArgs) -> Result<Plan, Error> {
    let dir_flag = args
        .migrations_dir
        .as_ref()
        .map(|d| d.to_string_lossy().replace('\\', "/"));
    let detection: Detection = match args.tool.as_deref() {
        Some(tool) => {
            let Some((tool, default_dir)) = detect::TOOLS.iter().find(|(t, _)| *t == tool) else {
                return Err(usage(format!(
                    "--tool {tool}: unknown migration tool; use one of {}",
                    tool_names()
                )));
            };
            detect::find(root, tool).unwrap_or_else(|| Detection {
                tool,
                dir: (*default_dir).to_owned(),
                evidence: "--tool".into(),
                database: None,
            })
        }
        None => match detect::detect(root) {
            Outcome::Found(d) => d,
            Outcome::Ambiguous(found) => {
                let readings = found
                    .iter()
                    .map(|d| format!("{} ({})", d.tool, d.evidence))
                    .collect::<Vec<_>>()
                    .join("; ");
                return Err(usage(format!(
                    "cannot tell which migration tool this project uses: it could be {readings}; run `dbdeploy init --tool NAME` with one of them"
                )));
            }
            Outcome::Nothing => {
                return Err(usage(format!(
                    "no migrations folder found in {} (looked for prisma/migrations, drizzle, db/migration, db/migrations, migrations, sql, ...); run `dbdeploy init --tool NAME --migrations-dir DIR` with NAME one of {}",
                    root.display(),
                    tool_names()
                )));
            }
        },
    };
    let dev_from_env = if settings::var_is_set(DEV_VAR) {
        Some(format!("{DEV_VAR} is set"))
    } else {
        detection
            .database
            .filter(|db| *db != "sqlite")
            .map(|db| format!("the migrations are written for {db}"))
    };
    let reason = if args.tool.is_some() {
        "--tool".to_owned()
    } else {
        format!("detected: {}", detection.evidence)
    };
    Ok(Plan {
        tool: detection.tool,
        dir: dir_flag.unwrap_or(detection.dir),
        reason,
        dev_from_env,
    })
}

/// A TOML basic string.
fn quoted(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

fn render(plan: &Plan) -> String {
    let dev = match &plan.dev_from_env {
        Some(why) => format!(
            "# A development database; its URL comes from ${DEV_VAR} ({why}).\n\
             [environments.dev]\n\
             url_env = {}\n",
            quoted(DEV_VAR)
        ),
        None => format!(
            "# A local SQLite database to try deploys on; `dbdeploy migrate dev` creates it.\n\
             [environments.dev]\n\
             url = {}\n",
            quoted(DEV_SQLITE)
        ),
    };
    format!(
        "# dbdeploy configuration, written by `dbdeploy init`.\n\
         # Unknown keys are an error, so a typo never goes unnoticed.\n\
         \n\
         [project]\n\
         # The tool that writes the migrations: dbdeploy reads its folder and keeps its tracking\n\
         # table the way it does ({reason}).\n\
         # One of: {tools}.\n\
         migration_tool = {tool}\n\
         migrations_dir = {dir}\n\
         \n\
         {dev}\
         \n\
         # Production: the URL is read from ${PROD_VAR} and never written here.\n\
         [environments.production]\n\
         url_env = {prod}\n\
         # Ask for approval before changing it (`--yes` approves in CI).\n\
         protected = true\n\
         # Seconds to wait for another deploy's lock.\n\
         # lock_timeout_seconds = 60\n\
         # When the database sits behind a connection pooler, migrate through a direct URL:\n\
         # direct_url_env = \"PROD_DIRECT_DATABASE_URL\"\n",
        reason = plan.reason,
        tools = tool_names(),
        tool = quoted(plan.tool),
        dir = quoted(&plan.dir),
        prod = quoted(PROD_VAR),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn the_written_file_parses_and_protects_production() {
        for dev_from_env in [None, Some("DATABASE_URL is set".to_owned())] {
            let plan = Plan {
                tool: "flyway",
                dir: "src/main/resources/db/migration".into(),
                reason: "detected: a \"quoted\" reason".into(),
                dev_from_env,
            };
            let text = render(&plan);
            let config = Config::parse(&text, Path::new("dbdeploy.toml"))
                .unwrap_or_else(|e| panic!("{e}\n{text}"));
            assert_eq!(
                config.project.migrations_dir.as_deref(),
                Some(Path::new("src/main/resources/db/migration"))
            );
            assert!(config.environments["production"].protected);
            assert_eq!(
                config.environments["production"].url_env.as_deref(),
                Some(PROD_VAR)
            );
        }
    }
}
