//! Where the project is and what it brings besides `dbdeploy.toml`: the file found from any
//! subfolder (as cargo finds `Cargo.toml`), the project's `.env`, and the configuration used
//! when there is no file at all (the migration tool detected as `init` detects it).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::cli::GlobalArgs;
use crate::config::{self, Config, ConfigError, MigrationTool, Project};
use crate::handler::detect::{self, Outcome};

/// The variable the database URL is read from without a configuration file.
pub const ZERO_CONFIG_VAR: &str = "DATABASE_URL";

/// The configuration file and the folder its relative paths resolve from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    /// The file (it may not exist).
    pub config_path: PathBuf,
    /// The folder relative paths resolve from: the file's folder when it was found by walking
    /// up, the working directory otherwise.
    pub project_dir: PathBuf,
}

/// `-c FILE` as given (relative to the working directory, as before); otherwise the nearest
/// `dbdeploy.toml` in the working directory or one of its parents; otherwise the working
/// directory's (missing) file.
#[must_use]
pub fn locate(args: &GlobalArgs, working_dir: &Path) -> Located {
    if let Some(path) = &args.config {
        return Located {
            config_path: working_dir.join(path),
            project_dir: working_dir.to_owned(),
        };
    }
    working_dir
        .ancestors()
        .find(|dir| dir.join(config::FILE_NAME).is_file())
        .map_or_else(
            || Located {
                config_path: working_dir.join(config::FILE_NAME),
                project_dir: working_dir.to_owned(),
            },
            |dir| Located {
                config_path: dir.join(config::FILE_NAME),
                project_dir: dir.to_owned(),
            },
        )
}

/// The variables of the project's `.env` (none when there is no file). Every value that could
/// be a credential is registered as a secret, so that no output shows it.
///
/// # Errors
/// When the file exists but cannot be read or parsed (the line is named, never a value).
pub fn read_dotenv(project_dir: &Path) -> Result<BTreeMap<String, String>, ConfigError> {
    let path = project_dir.join(".env");
    if !path.is_file() {
        return Ok(BTreeMap::new());
    }
    let invalid = |e: dotenvy::Error| ConfigError::Parse {
        path: path.clone(),
        message: match e {
            dotenvy::Error::LineParse(_, index) => format!(
                "cannot parse the .env file at character {index}; lines look like NAME=value"
            ),
            dotenvy::Error::Io(e) => e.to_string(),
            _ => "cannot parse the .env file; lines look like NAME=value".into(),
        },
    };
    let mut vars = BTreeMap::new();
    for item in dotenvy::from_path_iter(&path).map_err(invalid)? {
        let (name, value) = item.map_err(invalid)?;
        register(&name, &value);
        vars.insert(name, value);
    }
    Ok(vars)
}

/// URLs are secret by their password; other values by a name that says so. Every value is not
/// registered: `NODE_ENV=production` would then mask the word everywhere.
fn register(name: &str, value: &str) {
    if value.contains("://") {
        crate::redact::register_url(value);
    }
    let upper = name.to_ascii_uppercase();
    if [
        "PASSWORD",
        "SECRET",
        "TOKEN",
        "KEY",
        "URL",
        "DSN",
        "CREDENTIAL",
    ]
    .iter()
    .any(|word| upper.contains(word))
    {
        crate::redact::register_secret(value);
    }
}

/// The configuration of a project without `dbdeploy.toml`: the detected tool and folder, and
/// any environment, its URL from `--url` or `DATABASE_URL`.
///
/// # Errors
/// When the tool cannot be detected (the message says what was looked for).
pub fn zero_config(located: &Located) -> Result<(Config, String), ConfigError> {
    let dir = &located.project_dir;
    let reason = match detect::detect(dir) {
        Outcome::Found(d) => {
            let tool: MigrationTool = d.tool.parse().map_err(|e: String| ConfigError::Usage(e))?;
            let note = format!(
                "no {}: {} migrations in {} (detected: {})",
                config::FILE_NAME,
                d.tool,
                d.dir,
                d.evidence
            );
            let config = Config {
                project: Project {
                    migration_tool: tool,
                    migrations_dir: Some(PathBuf::from(d.dir)),
                    ..Project::default()
                },
                ..Config::default()
            };
            return Ok((config, note));
        }
        Outcome::Ambiguous(found) => format!(
            "the migration tool is ambiguous: {}",
            found
                .iter()
                .map(|d| format!("{} ({})", d.tool, d.evidence))
                .collect::<Vec<_>>()
                .join("; ")
        ),
        Outcome::Nothing => "no migrations folder was found to detect the tool from".into(),
    };
    Err(ConfigError::NoConfig {
        path: located.config_path.clone(),
        reason,
    })
}

/// Environments named so are protected without a configuration file.
#[must_use]
pub fn protected_by_name(name: &str) -> bool {
    matches!(name, "prod" | "production")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(config: Option<&str>) -> GlobalArgs {
        use clap::Parser;
        let mut argv = vec!["dbdeploy"];
        if let Some(c) = config {
            argv.extend(["-c", c]);
        }
        argv.extend(["status", "dev"]);
        crate::cli::Cli::parse_from(argv).global
    }

    #[test]
    fn the_nearest_file_upwards_wins_and_its_folder_is_the_project() {
        let root = tempfile::tempdir().unwrap();
        let deep = root.path().join("a/b/c");
        std::fs::create_dir_all(&deep).unwrap();
        std::fs::write(root.path().join(config::FILE_NAME), "").unwrap();
        let found = locate(&args(None), &deep);
        assert_eq!(found.project_dir, root.path());
        std::fs::write(root.path().join("a").join(config::FILE_NAME), "").unwrap();
        assert_eq!(
            locate(&args(None), &deep).project_dir,
            root.path().join("a")
        );
        // `-c` is taken as given, relative to the working directory.
        let given = locate(&args(Some("other.toml")), &deep);
        assert_eq!(given.config_path, deep.join("other.toml"));
        assert_eq!(given.project_dir, deep);
    }

    #[test]
    fn dotenv_values_that_are_credentials_are_masked() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(".env"),
            "# comment\nDATABASE_URL=\"postgres://u:dotenvpw1@h/db\"\nAPI_TOKEN=tok-123456\nNODE_ENV=production\n",
        )
        .unwrap();
        let vars = read_dotenv(dir.path()).unwrap();
        assert_eq!(vars["DATABASE_URL"], "postgres://u:dotenvpw1@h/db");
        let text = "x dotenvpw1 tok-123456 production";
        assert_eq!(crate::redact::scrub(text), "x *** *** production");
    }

    #[test]
    fn a_broken_dotenv_names_the_file_not_the_values() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(".env"), "GOOD=1\nBAD LINE secretvalue\n").unwrap();
        let err = read_dotenv(dir.path()).unwrap_err().to_string();
        assert!(err.contains(".env"), "{err}");
        assert!(!err.contains("secretvalue"), "{err}");
    }
}
