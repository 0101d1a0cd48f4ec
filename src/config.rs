//! The `dbdeploy.toml` file as it is written on disk.
//!
//! Only deserialisation lives here; merging with flags and the process environment happens in
//! `settings.rs`. Every table denies unknown keys so that a typo such as `protcted = true`
//! fails loudly instead of silently leaving production unprotected.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The default file name looked up in the working directory.
pub const FILE_NAME: &str = "dbdeploy.toml";

/// Errors in reading or interpreting the configuration and the flags that refine it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The configuration file does not exist.
    #[error("no configuration file at {path}")]
    Missing {
        /// Where it was looked for.
        path: PathBuf,
    },
    /// No configuration file, and the project's migration tool cannot be detected to run
    /// without one.
    #[error("no {} in {} or its parent folders, and {reason}", FILE_NAME, .path.parent().map_or_else(|| ".".into(), |p| p.display().to_string()))]
    NoConfig {
        /// Where the file was looked for first.
        path: PathBuf,
        /// Why the tool cannot be detected.
        reason: String,
    },
    /// The configuration file exists but cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML or has keys or values dbdeploy does not know.
    #[error("invalid configuration in {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message, with line and column.
        message: String,
    },
    /// The environment named on the command line is not in the file.
    #[error("unknown environment `{name}` in {path}")]
    UnknownEnvironment {
        /// The requested name.
        name: String,
        /// The file.
        path: PathBuf,
        /// The environments the file defines.
        known: Vec<String>,
    },
    /// An environment has neither `url` nor `url_env`, or both.
    #[error("environment `{name}` must set exactly one of `url` and `url_env`")]
    UrlSource {
        /// The environment.
        name: String,
    },
    /// The variable named by `url_env` is not set.
    #[error("environment variable `{var}` (the database URL of environment `{env}`) is not set")]
    MissingVariable {
        /// The variable name (never its value).
        var: String,
        /// The environment.
        env: String,
    },
    /// The database URL cannot be used.
    #[error("the database URL of environment `{env}` is invalid: {reason}")]
    BadUrl {
        /// The environment.
        env: String,
        /// What is wrong, without the URL itself.
        reason: String,
    },
    /// The working directory given with `-C` cannot be used.
    #[error("cannot use working directory {path}: {reason}")]
    WorkingDirectory {
        /// The directory.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Flags that contradict each other or the configuration.
    #[error("{0}")]
    Usage(String),
}

/// The whole `dbdeploy.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Which migration tool authored the migrations, and where they are.
    #[serde(default)]
    pub project: Project,
    /// Named deploy targets.
    #[serde(default)]
    pub environments: BTreeMap<String, Environment>,
    /// Where the per-run audit trail goes.
    #[serde(default)]
    pub audit: Audit,
    /// Where backups go, how many are kept, and how they are made.
    #[serde(default)]
    pub backup: Backup,
    /// What the lint fails or blocks on, and what it lets through.
    #[serde(default)]
    pub lint: Lint,
}

/// The `[lint]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lint {
    /// `dbdeploy lint` exits 5 on a finding at or above this level (`low`, `medium`, `high`
    /// or `none`; default `high`).
    pub fail_on: Option<String>,
    /// A deploy-mode `migrate` refuses, before any change, a finding at or above this level
    /// (default `none`).
    pub block_on: Option<String>,
    /// Finding codes never reported (each is still shown as allowed, with this reason).
    #[serde(default)]
    pub allow: Vec<String>,
}

/// The `[project]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Project {
    /// The authoring tool; decides the folder layout and the tracking table.
    #[serde(default)]
    pub migration_tool: MigrationTool,
    /// The migrations folder, relative to the working directory.
    pub migrations_dir: Option<PathBuf>,
    /// `migration_tool = "command"`: prints the pending migrations, one per line (`sh -c`).
    pub status_command: Option<String>,
    /// `migration_tool = "command"`: applies every pending migration (`sh -c`).
    pub apply_command: Option<String>,
}

/// The migration formats dbdeploy can deploy.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MigrationTool {
    /// Prisma ORM (`prisma/migrations`, `_prisma_migrations`).
    #[default]
    Prisma,
    /// sqlx (`migrations/<version>_<description>.sql`, `_sqlx_migrations`).
    Sqlx,
    /// dbmate (`db/migrations`, `-- migrate:up` sections, `schema_migrations(version)`).
    Dbmate,
    /// golang-migrate (`<version>_<name>.up.sql`, `schema_migrations(version, dirty)`).
    GolangMigrate,
    /// drizzle-kit 0.x (`drizzle/meta/_journal.json`, `drizzle.__drizzle_migrations`).
    Drizzle,
    /// Flyway-style files (`V1__x.sql`, `R__x.sql`, `flyway_schema_history`).
    Flyway,
    /// A folder of plain `.sql` files in name order (`_dbdeploy_migrations`).
    Sql,
    /// A tool whose migrations are code (Knex, Alembic, TypeORM, Sequelize): dbdeploy runs its
    /// `status_command` and `apply_command` and keeps out of its history.
    Command,
}

impl MigrationTool {
    /// The name as written in `migration_tool` (and shown in output and manifests).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            MigrationTool::Prisma => "prisma",
            MigrationTool::Sqlx => "sqlx",
            MigrationTool::Dbmate => "dbmate",
            MigrationTool::GolangMigrate => "golang-migrate",
            MigrationTool::Drizzle => "drizzle",
            MigrationTool::Flyway => "flyway",
            MigrationTool::Sql => "sql",
            MigrationTool::Command => "command",
        }
    }
}

impl std::str::FromStr for MigrationTool {
    type Err = String;

    /// Parses the name as written in `migration_tool`, so flags and the file agree.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        use serde::de::IntoDeserializer;
        let de: serde::de::value::StrDeserializer<'_, serde::de::value::Error> =
            s.into_deserializer();
        Self::deserialize(de).map_err(|e| e.to_string())
    }
}

/// Whether an environment behaves like a developer database or a deploy target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Never asks for approval; offers a reset when history and files disagree.
    Dev,
    /// Stops on any inconsistency; asks for approval on protected environments.
    Deploy,
}

impl Mode {
    /// The lowercase name used in output.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Dev => "dev",
            Mode::Deploy => "deploy",
        }
    }
}

/// One `[environments.NAME]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Environment {
    /// A literal database URL (fine for local SQLite; use `url_env` for anything with a password).
    pub url: Option<String>,
    /// The name of the environment variable that holds the database URL.
    pub url_env: Option<String>,
    /// A second variable used for migrations when `url_env` points at a connection pooler.
    pub direct_url_env: Option<String>,
    /// Changes need approval (`--yes` or a typed `yes`).
    #[serde(default)]
    pub protected: bool,
    /// Ask for approval even when the environment is not protected.
    pub require_approval: Option<bool>,
    /// Take a backup before applying anything.
    #[serde(default)]
    pub backup_before_migrate: bool,
    /// Every change needs a backup: implies `backup_before_migrate`, refuses `--skip-backup`,
    /// and a backup that cannot be made stops the run with no way around it.
    #[serde(default)]
    pub require_backup: bool,
    /// The environment whose database must have applied a migration (same checksum) before
    /// this one may apply it.
    pub promote_from: Option<String>,
    /// Restore the backup automatically when a migration fails.
    #[serde(default)]
    pub rollback_on_failure: bool,
    /// Restore the backup automatically when the post-deploy health check fails.
    #[serde(default)]
    pub rollback_on_health_check_failure: bool,
    /// Create the database when it does not exist (always in `dev` mode).
    pub create_database: Option<bool>,
    /// `dev` or `deploy`; defaults to `dev` for environments named dev or test.
    pub mode: Option<Mode>,
    /// How long to wait for the deploy lock held by another deploy.
    pub lock_timeout_seconds: Option<u64>,
    /// How long a migration's statement may wait for a table lock another session holds
    /// (PostgreSQL `lock_timeout`, MySQL `lock_wait_timeout`); 0 = no limit.
    pub ddl_lock_timeout_seconds: Option<u64>,
    /// How many times a migration that waited too long for a lock is tried again.
    pub ddl_lock_retries: Option<u32>,
    /// How long the approval prompt waits for an answer before the deploy is cancelled.
    pub approval_timeout_seconds: Option<u64>,
    /// How long to keep retrying a database that refuses connections.
    pub connect_timeout_seconds: Option<u64>,
    /// An application check run after a deploy (`sh -c`); non-zero exit fails the health check.
    pub health_command: Option<String>,
    /// Many databases instead of one: `migrate` and `status` run on each of its targets.
    pub fleet: Option<crate::fleet::config::FleetTable>,
}

/// The `[backup]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Backup {
    /// The folder backups are written to (one subfolder per environment); relative to the
    /// working directory.
    pub dir: Option<PathBuf>,
    /// How many backups to keep per environment; older ones are deleted after a new one is made.
    pub keep: Option<usize>,
    /// A command that makes the backup instead of the engine's dump tool (cloud snapshots).
    pub command: Option<String>,
    /// The command that restores a backup made by `command`.
    pub restore_command: Option<String>,
    /// How `pg_dump` compresses (`auto`, `none`, `gzip[:N]`, `lz4[:N]`, `zstd[:N]`).
    pub compression: Option<String>,
    /// How many tables `pg_dump` dumps at once.
    pub jobs: Option<i64>,
}

/// The `[audit]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Audit {
    /// The JSON Lines file that gets one line per run; relative to the working directory.
    pub file: Option<PathBuf>,
}

impl Config {
    /// Reads and parses a configuration file.
    ///
    /// # Errors
    /// When the file is missing, unreadable, not TOML, or has unknown keys.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let bytes = std::fs::read(path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                ConfigError::Missing {
                    path: path.to_owned(),
                }
            } else {
                ConfigError::Read {
                    path: path.to_owned(),
                    source,
                }
            }
        })?;
        let text = String::from_utf8(bytes).map_err(|e| {
            let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
            let line = valid.iter().filter(|b| **b == b'\n').count() + 1;
            ConfigError::Parse {
                path: path.to_owned(),
                message: format!("line {line} is not valid UTF-8 text; save the file as UTF-8"),
            }
        })?;
        Self::parse(&text, path)
    }

    /// Parses configuration text; `path` only names the file in errors.
    ///
    /// # Errors
    /// When the text is not TOML or has unknown keys or wrongly typed values.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string().trim_end().replace('\n', "\n  "),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("dbdeploy.toml"))
    }

    #[test]
    fn reads_the_spec_example() {
        let c = parse(
            r#"
            [project]
            migration_tool = "prisma"
            migrations_dir = "prisma/migrations"
            [environments.dev]
            url = "sqlite://.dbdeploy/dev.db"
            [environments.production]
            url_env = "PROD_DATABASE_URL"
            protected = true
            backup_before_migrate = true
            rollback_on_failure = true
            mode = "deploy"
            "#,
        )
        .unwrap();
        assert_eq!(c.environments.len(), 2);
        let prod = &c.environments["production"];
        assert!(prod.protected);
        assert_eq!(prod.mode, Some(Mode::Deploy));
    }

    #[test]
    fn unknown_key_names_the_key_and_line() {
        let err = parse("[environments.prod]\nurl_env = \"X\"\nprotcted = true\n").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("protcted"), "{msg}");
        assert!(msg.contains("line 3"), "{msg}");
    }

    #[test]
    fn every_tool_name_parses() {
        for tool in [
            MigrationTool::Prisma,
            MigrationTool::Sqlx,
            MigrationTool::Dbmate,
            MigrationTool::GolangMigrate,
            MigrationTool::Drizzle,
            MigrationTool::Flyway,
            MigrationTool::Sql,
            MigrationTool::Command,
        ] {
            assert_eq!(tool.as_str().parse::<MigrationTool>(), Ok(tool));
        }
        for (name, tool) in [
            ("prisma", MigrationTool::Prisma),
            ("sqlx", MigrationTool::Sqlx),
            ("dbmate", MigrationTool::Dbmate),
            ("golang-migrate", MigrationTool::GolangMigrate),
            ("command", MigrationTool::Command),
        ] {
            let c = parse(&format!("[project]\nmigration_tool = \"{name}\"\n")).unwrap();
            assert_eq!(c.project.migration_tool, tool);
        }
    }

    #[test]
    fn unknown_tool_is_an_error() {
        let err = parse("[project]\nmigration_tool = \"liquibase\"\n").unwrap_err();
        assert!(err.to_string().contains("liquibase"));
    }
}
