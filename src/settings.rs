//! Merges flags, the process environment and `dbdeploy.toml` into what commands use.
//!
//! This is the only module that reads environment variables (clippy enforces it), so a
//! command's behaviour is a function of [`Settings`] alone.
#![allow(clippy::disallowed_methods)]

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::cli::{ColorChoice, GlobalArgs};
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

/// Output preferences.
#[derive(Debug, Clone, Copy)]
pub struct OutputSettings {
    /// One JSON document on stdout; human lines on stderr.
    pub json: bool,
    /// ANSI colours.
    pub color: bool,
    /// -1 quiet, 0 normal, 1+ verbose.
    pub verbosity: i8,
}

impl OutputSettings {
    /// Output settings from the global flags and the environment (`NO_COLOR`).
    #[must_use]
    pub fn from_args(args: &GlobalArgs) -> Self {
        let human_is_tty = if args.json {
            std::io::stderr().is_terminal()
        } else {
            std::io::stdout().is_terminal()
        };
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let color = match args.color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => human_is_tty && !no_color,
        };
        let verbosity = i8::try_from(args.verbose).unwrap_or(i8::MAX)
            - i8::try_from(args.quiet).unwrap_or(i8::MAX);
        Self {
            json: args.json,
            color,
            verbosity,
        }
    }
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
}

/// Everything about one environment a command needs.
#[derive(Debug)]
pub struct EnvSettings {
    /// Its name.
    pub name: String,
    /// `dev` or `deploy`.
    pub mode: Mode,
    /// The database.
    pub target: Target,
    /// Changes need approval.
    pub approval_required: bool,
    /// A backup is required before applying.
    pub backup_before_migrate: bool,
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
}

/// The other environments' URL variables of the environment this process works on, for every
/// child command it starts (see [`hide_other_urls`]).
static OTHER_URL_VARS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();

/// Gives a child command (an external tool, a health or backup command, a client tool) the
/// caller's environment minus other environments' database URLs; the caller adds what the
/// command needs (`DATABASE_URL`, ...). One place, so no spawn site can forget it.
pub fn hide_other_urls(cmd: &mut tokio::process::Command) {
    for var in OTHER_URL_VARS.get().map_or(&[][..], Vec::as_slice) {
        cmd.env_remove(var);
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

/// The `[backup]` table, resolved for one environment.
#[derive(Debug, Clone)]
pub struct BackupSettings {
    /// This environment's backup folder (absolute): `[backup] dir` / environment name.
    pub dir: PathBuf,
    /// How many backups to keep.
    pub keep: usize,
    /// A configured backup command and its restore command.
    pub command: Option<(String, String)>,
    /// `pg_dump`'s compression.
    pub compression: crate::backup::pg_options::Compression,
    /// `pg_dump`'s parallel jobs.
    pub jobs: u32,
}

/// How long the approval prompt waits when `approval_timeout_seconds` is not set: ten minutes.
pub const DEFAULT_APPROVAL_TIMEOUT_SECONDS: u64 = 600;

/// Backups kept per environment when `[backup] keep` is not set.
pub const DEFAULT_KEEP: usize = 10;

impl Settings {
    /// Resolves the working directory and reads the configuration file.
    ///
    /// # Errors
    /// When the directory or the file cannot be used.
    pub fn load(args: &GlobalArgs) -> Result<Self, ConfigError> {
        let working_dir = working_dir(args)?;
        let config_path = config_path(args, &working_dir);
        let config = Config::load(&config_path)?;
        for name in config.environments.keys() {
            check_environment_name(name).map_err(|rule| ConfigError::Parse {
                path: config_path.clone(),
                message: format!("environment name `{name}` is not allowed: {rule}"),
            })?;
        }
        let interactive =
            !args.json && std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
        Ok(Self {
            working_dir,
            config_path,
            config,
            interactive,
        })
    }

    /// Resolves one environment: its URL from the file or the named variable, its mode, its rules.
    ///
    /// # Errors
    /// Unknown environment, missing variable, malformed URL.
    pub fn environment(&self, name: &str) -> Result<EnvSettings, ConfigError> {
        let Some(env) = self.config.environments.get(name) else {
            return Err(ConfigError::UnknownEnvironment {
                name: name.to_owned(),
                path: self.config_path.clone(),
                known: self.config.environments.keys().cloned().collect(),
            });
        };
        let raw_url = match (&env.url, &env.direct_url_env, &env.url_env) {
            (Some(_), _, Some(_)) | (None, _, None) => {
                return Err(ConfigError::UrlSource {
                    name: name.to_owned(),
                });
            }
            (Some(url), _, None) => url.clone(),
            // Migrations need a direct connection: poolers break session-level locks.
            (None, Some(direct), Some(_)) => read_var(direct, name)?,
            (None, None, Some(var)) => read_var(var, name)?,
        };
        crate::redact::register_url(&raw_url);
        let target =
            Target::parse(&raw_url, &self.working_dir).map_err(|reason| ConfigError::BadUrl {
                env: name.to_owned(),
                reason,
            })?;
        let mode = env.mode.unwrap_or(if matches!(name, "dev" | "test") {
            Mode::Dev
        } else {
            Mode::Deploy
        });
        let tool = self.config.project.migration_tool;
        let external = self.external_tool()?;
        let dir = self
            .config
            .project
            .migrations_dir
            .clone()
            .unwrap_or_else(|| {
                PathBuf::from(crate::handler::for_tool(tool).map_or(".", |h| h.default_dir()))
            });
        let audit = self
            .config
            .audit
            .file
            .clone()
            .unwrap_or_else(|| PathBuf::from(".dbdeploy/audit.jsonl"));
        let backup = self.backup_settings(name)?;
        Ok(EnvSettings {
            name: name.to_owned(),
            mode,
            target,
            approval_required: env.protected || env.require_approval.unwrap_or(false),
            backup_before_migrate: env.backup_before_migrate,
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
            migrations_dir: absolute(&self.working_dir, &dir),
            audit_file: absolute(&self.working_dir, &audit),
            other_url_vars: {
                let vars = self.other_url_vars(name);
                let _ = OTHER_URL_VARS.set(vars.clone());
                vars
            },
        })
    }
}

impl Settings {
    /// The variables named by other environments' `url_env` and `direct_url_env`, except those
    /// this environment reads itself.
    fn other_url_vars(&self, name: &str) -> Vec<String> {
        let own: Vec<&String> = self
            .config
            .environments
            .get(name)
            .map(|e| {
                [&e.url_env, &e.direct_url_env]
                    .into_iter()
                    .flatten()
                    .collect()
            })
            .unwrap_or_default();
        let mut vars: Vec<String> = self
            .config
            .environments
            .iter()
            .filter(|(other, _)| other.as_str() != name)
            .flat_map(|(_, e)| [&e.url_env, &e.direct_url_env].into_iter().flatten())
            .filter(|var| !own.contains(var))
            .cloned()
            .collect();
        vars.sort();
        vars.dedup();
        vars
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

    fn backup_settings(&self, env: &str) -> Result<BackupSettings, ConfigError> {
        let b = &self.config.backup;
        let invalid = |message: &str| ConfigError::Parse {
            path: self.config_path.clone(),
            message: message.to_owned(),
        };
        let keep = b.keep.unwrap_or(DEFAULT_KEEP);
        if keep == 0 {
            return Err(invalid(
                "`[backup] keep` must be at least 1 (the backup of the current run is always kept)",
            ));
        }
        let command = match (&b.command, &b.restore_command) {
            (None, None) => None,
            (Some(c), Some(r)) if !c.trim().is_empty() && !r.trim().is_empty() => {
                Some((c.clone(), r.clone()))
            }
            _ => {
                return Err(invalid(
                    "`[backup] command` and `[backup] restore_command` must be set together: a backup that cannot be restored is not a backup",
                ));
            }
        };
        let compression = match &b.compression {
            Some(c) => c.parse().map_err(|m: String| invalid(&m))?,
            None => crate::backup::pg_options::Compression::Auto,
        };
        let jobs = match b.jobs {
            None => crate::backup::pg_options::default_jobs(),
            Some(n) => u32::try_from(n)
                .ok()
                .filter(|n| (1..=crate::backup::pg_options::MAX_JOBS).contains(&i64::from(*n)))
                .ok_or_else(|| {
                    invalid(&format!(
                        "`[backup] jobs = {n}` must be between 1 and {} (each job is a connection to the server)",
                        crate::backup::pg_options::MAX_JOBS
                    ))
                })?,
        };
        let dir = b
            .dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(".dbdeploy/backups"));
        Ok(BackupSettings {
            dir: absolute(&self.working_dir, &dir).join(env),
            keep,
            command,
            compression,
            jobs,
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

fn read_var(var: &str, env: &str) -> Result<String, ConfigError> {
    match std::env::var(var) {
        Ok(v) if !v.trim().is_empty() => Ok(v),
        _ => Err(ConfigError::MissingVariable {
            var: var.to_owned(),
            env: env.to_owned(),
        }),
    }
}

fn absolute(base: &Path, p: &Path) -> PathBuf {
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
