//! Merges flags, the process environment and `dbdeploy.toml` into what commands use.
//!
//! This is the only module that reads environment variables (clippy enforces it), so a
//! command's behaviour is a function of [`Settings`] alone.
#![allow(clippy::disallowed_methods)]

mod backup;
mod fleet;
mod hidden;
mod output;
mod project;

pub use backup::{BackupSettings, DEFAULT_KEEP};
use hidden::hide_urls_once;
pub use hidden::{hide_more_urls, hide_other_urls};
pub use output::{GithubSettings, OutputSettings, github};
pub use project::ZERO_CONFIG_VAR;

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::cli::GlobalArgs;
use crate::config::{self, Config, ConfigError, MigrationTool, Mode};
use crate::engine::Target;

/// The two commands of `migration_tool = "command"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalTool {
    /// `status_command`: prints the pending migrations, one per line.
    pub status: String,
    /// `apply_command`: applies every pending migration.
    pub apply: String,
}

/// Project-level settings: where things are and the parsed configuration.
#[derive(Debug)]
pub struct Settings {
    /// The directory relative paths resolve from.
    pub working_dir: PathBuf,
    /// The configuration file that was read.
    pub config_path: PathBuf,
    /// Its contents.
    pub config: Config,
    /// Whether a person can answer prompts (stdin and stderr are terminals, not `--json`).
    pub interactive: bool,
    /// `--url`: the database URL of whichever environment is named.
    url_override: Option<String>,
    /// The project's `.env` variables; the process environment wins over them.
    dotenv: BTreeMap<String, String>,
    /// Without `dbdeploy.toml`: what was detected instead, for a note.
    pub zero_config: Option<String>,
}

/// Everything about one environment a command needs.
#[derive(Debug)]
pub struct EnvSettings {
    /// Its name.
    pub name: String,
    /// `dev` or `deploy`.
    pub mode: Mode,
    /// Create the database when it does not exist (`dev` mode, or `create_database = true`).
    pub create_database: bool,
    /// The database.
    pub target: Target,
    /// Changes need approval.
    pub approval_required: bool,
    /// A backup is taken before applying.
    pub backup_before_migrate: bool,
    /// The backup cannot be skipped (`require_backup`).
    pub require_backup: bool,
    /// The environment whose database must have applied a migration first (`promote_from`).
    pub promote_from: Option<String>,
    /// A private copy made by `rehearse`: nobody else uses it, so MySQL's server-wide named
    /// locks are not taken (they would hold up a deploy of the real database meanwhile).
    pub scratch: bool,
    /// Restore automatically when a migration fails.
    pub rollback_on_failure: bool,
    /// Restore automatically when the post-deploy health check fails.
    pub rollback_on_health_check_failure: bool,
    /// The application check run after a deploy.
    pub health_command: Option<String>,
    /// Where and how backups are made.
    pub backup: BackupSettings,
    /// The directory commands run in and relative paths resolve from.
    pub working_dir: PathBuf,
    /// How long to wait for another deploy's lock.
    pub lock_timeout: Duration,
    /// How long a migration waits for another session's table lock, and how often it is
    /// tried again.
    pub ddl_lock: DdlLock,
    /// How long the approval prompt waits for an answer.
    pub approval_timeout: Duration,
    /// How long to retry refused connections.
    pub connect_wait: Duration,
    /// The migration format.
    pub tool: MigrationTool,
    /// The status and apply commands, when `tool` is [`MigrationTool::Command`].
    pub external: Option<ExternalTool>,
    /// The migrations folder (absolute; the working directory for an external tool, which
    /// finds its own migrations).
    pub migrations_dir: PathBuf,
    /// The audit log file (absolute).
    pub audit_file: PathBuf,
    /// The variables that hold other environments' database URLs: child commands (external
    /// tools, health and backup commands) get the caller's environment without them.
    pub other_url_vars: Vec<String>,
    /// The `[lint]` rules.
    pub lint: LintSettings,
}

/// The `[lint]` table, read.
#[derive(Debug, Clone, Default)]
pub struct LintSettings {
    /// `lint` exits 5 at or above this level; `None`: never.
    pub fail_on: Option<crate::lint::Level>,
    /// A deploy-mode `migrate` refuses at or above this level; `None`: never.
    pub block_on: Option<crate::lint::Level>,
    /// Codes silenced everywhere.
    pub allow: Vec<String>,
}

impl EnvSettings {
    /// The environment as `rehearse` deploys to its copy at `target`: the same migrations,
    /// mode and lock waits, but no approval, backup, restore, health command or promotion
    /// gate (the copy is thrown away), and the audit line goes to `audit_file` next to the copy.
    #[must_use]
    pub fn scratch(&self, target: Target, audit_file: PathBuf) -> Self {
        Self {
            name: self.name.clone(),
            mode: self.mode,
            target,
            approval_required: false,
            backup_before_migrate: false,
            require_backup: false,
            promote_from: None,
            scratch: true,
            rollback_on_failure: false,
            rollback_on_health_check_failure: false,
            health_command: None,
            backup: self.backup.clone(),
            working_dir: self.working_dir.clone(),
            lock_timeout: self.lock_timeout,
            ddl_lock: self.ddl_lock,
            approval_timeout: self.approval_timeout,
            connect_wait: self.connect_wait,
            tool: self.tool,
            external: self.external.clone(),
            migrations_dir: self.migrations_dir.clone(),
            audit_file,
            other_url_vars: self.other_url_vars.clone(),
            create_database: false,
            lint: self.lint.clone(),
        }
    }
}

/// The bounded wait of a migration's statements for a lock another session holds, so that a
/// deploy never queues every reader of a table behind its `ALTER TABLE` for long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DdlLock {
    /// The wait per statement; `None`: no limit.
    pub timeout: Option<Duration>,
    /// How many times a migration that waited too long is tried again.
    pub retries: u32,
}

/// A migration's statement waits this long for a lock when `ddl_lock_timeout_seconds` is not set.
pub const DEFAULT_DDL_LOCK_TIMEOUT_SECONDS: u64 = 5;

/// A migration that waited too long for a lock is tried again this often when
/// `ddl_lock_retries` is not set.
pub const DEFAULT_DDL_LOCK_RETRIES: u32 = 3;

impl Default for DdlLock {
    fn default() -> Self {
        Self {
            timeout: Some(Duration::from_secs(DEFAULT_DDL_LOCK_TIMEOUT_SECONDS)),
            retries: DEFAULT_DDL_LOCK_RETRIES,
        }
    }
}

impl DdlLock {
    /// From the environment's keys; 0 seconds means no limit.
    #[must_use]
    pub fn new(seconds: Option<u64>, retries: Option<u32>) -> Self {
        let seconds = seconds.unwrap_or(DEFAULT_DDL_LOCK_TIMEOUT_SECONDS);
        Self {
            timeout: (seconds > 0).then(|| Duration::from_secs(seconds)),
            retries: retries.unwrap_or(DEFAULT_DDL_LOCK_RETRIES),
        }
    }
}

impl std::fmt::Display for DdlLock {
    /// `5 s, 3 retries`; `no limit` without a timeout (nothing then times out to retry).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.timeout {
            None => f.write_str("no limit"),
            Some(t) => {
                let s = if self.retries == 1 {
                    "retry"
                } else {
                    "retries"
                };
                write!(f, "{} s, {} {s}", t.as_secs(), self.retries)
            }
        }
    }
}

/// How long the approval prompt waits when `approval_timeout_seconds` is not set: ten minutes.
pub const DEFAULT_APPROVAL_TIMEOUT_SECONDS: u64 = 600;

impl Settings {
    /// Resolves the working directory and reads the configuration file.
    ///
    /// # Errors
    /// When the directory or the file cannot be used.
    pub fn load(args: &GlobalArgs) -> Result<Self, ConfigError> {
        let located = project::locate(args, &working_dir(args)?);
        let config_path = located.config_path.clone();
        let (config, zero_config) = match Config::load(&config_path) {
            Err(ConfigError::Missing { .. }) if args.config.is_none() => {
                let (config, note) = project::zero_config(&located)?;
                (config, Some(note))
            }
            other => (other?, None),
        };
        if let Some(url) = &args.url {
            crate::redact::register_url(url);
        }
        let dotenv = project::read_dotenv(&located.project_dir)?;
        for name in config.environments.keys() {
            check_environment_name(name).map_err(|rule| ConfigError::Parse {
                path: config_path.clone(),
                message: format!("environment name `{name}` is not allowed: {rule}"),
            })?;
        }
        let interactive =
            !args.json && std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
        Ok(Self {
            working_dir: located.project_dir,
            config_path,
            config,
            interactive,
            url_override: args.url.clone(),
            dotenv,
            zero_config,
        })
    }

    /// Resolves one environment: its URL from the file or the named variable, its mode, its rules.
    ///
    /// # Errors
    /// Unknown environment, missing variable, malformed URL.
    pub fn environment(&self, name: &str) -> Result<EnvSettings, ConfigError> {
        // Without a file any environment exists: its URL from --url or DATABASE_URL.
        let implicit;
        let env = match self.config.environments.get(name) {
            Some(env) => env,
            None if self.zero_config.is_some() => {
                check_environment_name(name).map_err(|rule| {
                    ConfigError::Usage(format!("environment name `{name}` is not allowed: {rule}"))
                })?;
                implicit = config::Environment {
                    url_env: Some(project::ZERO_CONFIG_VAR.to_owned()),
                    protected: project::protected_by_name(name),
                    ..config::Environment::default()
                };
                &implicit
            }
            None => {
                return Err(ConfigError::UnknownEnvironment {
                    name: name.to_owned(),
                    path: self.config_path.clone(),
                    known: self.config.environments.keys().cloned().collect(),
                });
            }
        };
        if env.fleet.is_some() {
            return Err(ConfigError::Usage(format!(
                "environment `{name}` is a fleet of databases: `dbdeploy migrate {name}` and `dbdeploy status {name}` run on its targets; other commands need one database (an environment with `url` or `url_env`)"
            )));
        }
        let raw_url = if let Some(url) = &self.url_override {
            url.clone()
        } else {
            match (&env.url, &env.direct_url_env, &env.url_env) {
                (Some(_), _, Some(_)) | (None, _, None) => {
                    return Err(ConfigError::UrlSource {
                        name: name.to_owned(),
                    });
                }
                (Some(url), _, None) => url.clone(),
                // Migrations need a direct connection: poolers break session-level locks.
                (None, Some(direct), Some(_)) => self.read_var(direct, name)?,
                (None, None, Some(var)) => self.read_var(var, name)?,
            }
        };
        let vars = self.other_url_vars(name);
        hide_urls_once(&vars);
        self.resolve(name, env, &raw_url, None, vars)
    }

    fn resolve(
        &self,
        name: &str,
        env: &config::Environment,
        raw_url: &str,
        target_id: Option<&str>,
        other_url_vars: Vec<String>,
    ) -> Result<EnvSettings, ConfigError> {
        let raw_url = raw_url.to_owned();
        crate::redact::register_url(&raw_url);
        let target =
            Target::parse(&raw_url, &self.working_dir).map_err(|reason| ConfigError::BadUrl {
                env: name.to_owned(),
                reason: if self.url_override.is_some() {
                    format!("--url: {reason}")
                } else {
                    reason
                },
            })?;
        let mode = env.mode.unwrap_or(if matches!(name, "dev" | "test") {
            Mode::Dev
        } else {
            Mode::Deploy
        });
        let tool = self.config.project.migration_tool;
        let external = self.external_tool()?;
        let audit = self
            .config
            .audit
            .file
            .clone()
            .unwrap_or_else(|| PathBuf::from(".dbdeploy/audit.jsonl"));
        let mut backup = self.backup_settings(name)?;
        if let Some(id) = target_id {
            backup.dir = backup.dir.join(id);
        }
        Ok(EnvSettings {
            name: name.to_owned(),
            mode,
            target,
            create_database: mode == Mode::Dev || env.create_database == Some(true),
            approval_required: env.protected || env.require_approval.unwrap_or(false),
            backup_before_migrate: env.backup_before_migrate || env.require_backup,
            require_backup: env.require_backup,
            promote_from: self.promote_from(name, env.promote_from.as_deref())?,
            scratch: false,
            rollback_on_failure: env.rollback_on_failure,
            rollback_on_health_check_failure: env.rollback_on_health_check_failure,
            health_command: env.health_command.clone().filter(|c| !c.trim().is_empty()),
            backup,
            working_dir: self.working_dir.clone(),
            lock_timeout: Duration::from_secs(env.lock_timeout_seconds.unwrap_or(60)),
            ddl_lock: DdlLock::new(env.ddl_lock_timeout_seconds, env.ddl_lock_retries),
            approval_timeout: Duration::from_secs(
                env.approval_timeout_seconds
                    .unwrap_or(DEFAULT_APPROVAL_TIMEOUT_SECONDS),
            ),
            connect_wait: Duration::from_secs(env.connect_timeout_seconds.unwrap_or(10)),
            tool,
            external,
            migrations_dir: self.migrations_dir(),
            audit_file: absolute(&self.working_dir, &audit),
            other_url_vars,
            lint: self.lint()?,
        })
    }
}

impl Settings {
    /// The migrations folder (absolute): `[project] migrations_dir`, or the tool's default.
    #[must_use]
    pub fn migrations_dir(&self) -> PathBuf {
        let tool = self.config.project.migration_tool;
        let dir = self
            .config
            .project
            .migrations_dir
            .clone()
            .unwrap_or_else(|| {
                PathBuf::from(crate::handler::for_tool(tool).map_or(".", |h| h.default_dir()))
            });
        absolute(&self.working_dir, &dir)
    }

    /// `promote_from`, which must name another environment of the file.
    fn promote_from(&self, name: &str, from: Option<&str>) -> Result<Option<String>, ConfigError> {
        let Some(from) = from else { return Ok(None) };
        let invalid = |message: String| ConfigError::Parse {
            path: self.config_path.clone(),
            message,
        };
        if from == name {
            return Err(invalid(format!(
                "`[environments.{name}] promote_from` names the environment itself; name the environment migrations are tried on first (e.g. promote_from = \"staging\")"
            )));
        }
        if !self.config.environments.contains_key(from) {
            let known: Vec<&str> = self
                .config
                .environments
                .keys()
                .map(String::as_str)
                .collect();
            return Err(invalid(format!(
                "`[environments.{name}] promote_from = \"{from}\"` names no environment of this file (defined: {})",
                known.join(", ")
            )));
        }
        Ok(Some(from.to_owned()))
    }

    /// The commands of `migration_tool = "command"`, which must be set with it and only with it.
    fn external_tool(&self) -> Result<Option<ExternalTool>, ConfigError> {
        let p = &self.config.project;
        let invalid = |message: String| ConfigError::Parse {
            path: self.config_path.clone(),
            message,
        };
        if p.migration_tool != MigrationTool::Command {
            if let Some(key) = [
                ("status_command", &p.status_command),
                ("apply_command", &p.apply_command),
            ]
            .iter()
            .find_map(|(k, v)| v.is_some().then_some(*k))
            {
                return Err(invalid(format!(
                    "`[project] {key}` is only used with `migration_tool = \"command\"`; remove it, or set `migration_tool = \"command\"` to let your tool apply its own migrations"
                )));
            }
            return Ok(None);
        }
        if p.migrations_dir.is_some() {
            return Err(invalid(
                "`[project] migrations_dir` is not used with `migration_tool = \"command\"`: the tool finds its own migrations; remove it".into(),
            ));
        }
        let missing = |key: &str, what: &str| {
            invalid(format!(
                "`migration_tool = \"command\"` needs `[project] {key}`: {what}"
            ))
        };
        let status = given(p.status_command.as_deref()).ok_or_else(|| {
            missing(
                "status_command",
                "a command that prints the pending migrations, one per line, and nothing when the database is up to date (e.g. status_command = \"./scripts/pending-migrations\")",
            )
        })?;
        let apply = given(p.apply_command.as_deref()).ok_or_else(|| {
            missing(
                "apply_command",
                "the command that applies every pending migration (e.g. apply_command = \"npx knex migrate:latest\")",
            )
        })?;
        Ok(Some(ExternalTool {
            status: status.to_owned(),
            apply: apply.to_owned(),
        }))
    }

    /// The `[lint]` table: levels are `low`, `medium`, `high` or `none`.
    ///
    /// # Errors
    /// A level that is none of these.
    pub fn lint(&self) -> Result<LintSettings, ConfigError> {
        let l = &self.config.lint;
        let level = |key: &str, value: Option<&str>, default: Option<crate::lint::Level>| {
            match value {
                None => Ok(default),
                Some(v) if v.eq_ignore_ascii_case("none") => Ok(None),
                Some(v) => v.parse().map(Some).map_err(|_| ConfigError::Parse {
                    path: self.config_path.clone(),
                    message: format!(
                        "`[lint] {key} = \"{v}\"` is not a level: use \"low\", \"medium\", \"high\" or \"none\""
                    ),
                }),
            }
        };
        Ok(LintSettings {
            fail_on: level(
                "fail_on",
                l.fail_on.as_deref(),
                Some(crate::lint::Level::High),
            )?,
            block_on: level("block_on", l.block_on.as_deref(), None)?,
            allow: l.allow.clone(),
        })
    }
}

/// Where the project is: the working directory and the configuration file's path.
#[derive(Debug, Clone)]
pub struct Location {
    /// The directory relative paths resolve from.
    pub working_dir: PathBuf,
    /// The configuration file (which may not exist yet, for `init`).
    pub config_path: PathBuf,
}

impl Location {
    /// The project location from `-C` and `-c`.
    ///
    /// # Errors
    /// When the directory cannot be used.
    pub fn from_args(args: &GlobalArgs) -> Result<Self, ConfigError> {
        let working_dir = working_dir(args)?;
        let config_path = config_path(args, &working_dir);
        Ok(Self {
            working_dir,
            config_path,
        })
    }
}

/// The directory relative paths resolve from: `-C DIR`, or the current directory.
///
/// # Errors
/// When the current directory cannot be read or `-C` is not a directory.
pub fn working_dir(args: &GlobalArgs) -> Result<PathBuf, ConfigError> {
    let cwd = std::env::current_dir().map_err(|e| ConfigError::WorkingDirectory {
        path: PathBuf::from("."),
        reason: e.to_string(),
    })?;
    match &args.working_directory {
        Some(dir) => {
            let dir = cwd.join(dir);
            if dir.is_dir() {
                Ok(dir)
            } else {
                Err(ConfigError::WorkingDirectory {
                    path: dir,
                    reason: "it is not a directory".into(),
                })
            }
        }
        None => Ok(cwd),
    }
}

/// The configuration file: `-c FILE`, or `dbdeploy.toml`, in the working directory.
#[must_use]
pub fn config_path(args: &GlobalArgs, working_dir: &Path) -> PathBuf {
    match &args.config {
        Some(path) => working_dir.join(path),
        None => working_dir.join(config::FILE_NAME),
    }
}

/// Whether an environment variable is set to something (its value is never needed).
#[must_use]
pub fn var_is_set(var: &str) -> bool {
    std::env::var_os(var).is_some_and(|v| !v.is_empty())
}

/// Environment names become folder names (`[backup] dir`/NAME) and appear in commands:
/// letters, digits, `-`, `_` and `.` only, and not `.` or `..`, so that a name can never
/// point outside the backup folder.
///
/// # Errors
/// The rule the name breaks.
pub fn check_environment_name(name: &str) -> Result<(), &'static str> {
    const RULE: &str = "use only letters, digits, `-`, `_` and `.` (and not `.` or `..` alone)";
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if name.is_empty() || name == "." || name == ".." || !name.chars().all(allowed) {
        return Err(RULE);
    }
    Ok(())
}

/// A command as configured, unless it is blank.
fn given(command: Option<&str>) -> Option<&str> {
    command.map(str::trim).filter(|c| !c.is_empty())
}

impl Settings {
    /// An exported variable, else the project's `.env`.
    fn read_var(&self, var: &str, env: &str) -> Result<String, ConfigError> {
        let exported = std::env::var(var).ok().filter(|v| !v.trim().is_empty());
        let from_file = || {
            self.dotenv
                .get(var)
                .filter(|v| !v.trim().is_empty())
                .cloned()
        };
        exported
            .or_else(from_file)
            .ok_or_else(|| ConfigError::MissingVariable {
                var: var.to_owned(),
                env: env.to_owned(),
            })
    }
}

/// `p` resolved against `base` when relative.
#[must_use]
pub fn absolute(base: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_owned()
    } else {
        base.join(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ddl_lock_wait_reads_as_the_preview_shows_it() {
        assert_eq!(DdlLock::new(None, None).to_string(), "5 s, 3 retries");
        assert_eq!(DdlLock::new(Some(1), Some(1)).to_string(), "1 s, 1 retry");
        let unbounded = DdlLock::new(Some(0), Some(2));
        assert_eq!(unbounded.timeout, None);
        assert_eq!(unbounded.to_string(), "no limit");
    }
}
