//! The command line, as clap derive types and nothing else.
//!
//! Commands never see these types: `settings.rs` turns them into `Settings`, so the
//! pipeline can be driven from tests without going through argument parsing.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

const EXIT_CODES: &str = "\
Exit codes:
    0  success
    1  deployment or runtime failure
    2  usage or configuration error
    3  cancelled or approval refused
    4  pending migrations (status)
    5  inconsistent state: failed, modified or missing migrations, schema drift (status, health);
       a lint finding at or above [lint] fail_on (lint)
  130  interrupted (Ctrl-C): the deploy stopped after the current statement or migration";

/// Deploy database migrations safely: validate, health-check, preview, approve, apply, verify, log.
#[derive(Debug, Parser)]
#[command(name = "dbdeploy", version, after_help = EXIT_CODES, max_term_width = 100)]
pub struct Cli {
    /// Flags that apply to every command.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Flags accepted by every command.
#[derive(Debug, Args)]
#[command(next_help_heading = "Global options")]
pub struct GlobalArgs {
    /// Run as if started in DIR (config, migrations and relative SQLite paths resolve from it).
    #[arg(
        short = 'C',
        long = "working-directory",
        value_name = "DIR",
        global = true
    )]
    pub working_directory: Option<PathBuf>,
    /// Use this configuration file instead of the nearest dbdeploy.toml (found in the
    /// working directory or its parents).
    #[arg(short = 'c', long, value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
    /// Use this database URL instead of the environment's (never printed; prefer a variable,
    /// since the command line is visible to other users of the machine).
    #[arg(long, value_name = "URL", global = true)]
    pub url: Option<String>,
    /// Write one JSON document to stdout; human progress goes to stderr.
    #[arg(long, global = true)]
    pub json: bool,
    /// When to use colours (NO_COLOR is honoured by `auto`).
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto, global = true)]
    pub color: ColorChoice,
    /// More detail (repeat for debug tracing).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Less output (errors and the final result only).
    #[arg(short, long, action = clap::ArgAction::Count, global = true, conflicts_with = "verbose")]
    pub quiet: u8,
}

/// The `--color` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    /// Colour on a terminal unless NO_COLOR is set.
    Auto,
    /// Always colour.
    Always,
    /// Never colour.
    Never,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Apply pending migrations to an environment (validate, health, lock, preview/approve, apply, verify, log).
    #[command(after_help = "Examples:
  dbdeploy migrate dev                   apply pending migrations to dev
  dbdeploy migrate staging --dry-run     show the SQL, risks and estimates; change nothing
  dbdeploy migrate production --yes      approve in CI (protected environments ask otherwise)
  dbdeploy migrate staging --to 20240101000000_add_users
  dbdeploy migrate ci --url \"$CI_DATABASE_URL\"   without dbdeploy.toml: the tool is detected")]
    Migrate(MigrateArgs),
    /// Show applied, pending, failed, modified and missing migrations (exit 4 pending, 5 inconsistent).
    #[command(after_help = "Examples:
  dbdeploy status production             exit 4 when migrations are pending, 5 when inconsistent
  dbdeploy status production --json | jq .result")]
    Status(StatusArgs),
    /// Mark a failed migration as applied or rolled back, as `prisma migrate resolve` does.
    #[command(after_help = "Examples:
  dbdeploy resolve production --applied 20240101000000_add_users
  dbdeploy resolve production --rolled-back 20240101000000_add_users --yes")]
    Resolve(ResolveArgs),
    /// Run the health checks alone: connectivity, tracking table, checksums, drift, disk, backup tools.
    #[command(after_help = "Examples:
  dbdeploy health staging
  dbdeploy health staging --wait 60      wait up to a minute for the database to come up")]
    Health(HealthArgs),
    /// Back up an environment's database now.
    #[command(after_help = "Examples:
  dbdeploy backup production")]
    Backup(BackupArgs),
    /// List an environment's backups: id, age, size, migrations.
    #[command(after_help = "Examples:
  dbdeploy backups production")]
    Backups(EnvArgs),
    /// Restore a backup (the latest by default), verified against its manifest.
    #[command(after_help = "Examples:
  dbdeploy rollback production           restore the newest backup (asks for approval)
  dbdeploy rollback production --to backup-20240101-120000 --yes")]
    Rollback(RollbackArgs),
    /// Past runs recorded in the database's `_dbdeploy_history`.
    #[command(after_help = "Examples:
  dbdeploy history production --limit 5")]
    History(HistoryArgs),
    /// Schema drift: the live schema against the one recorded at the last deploy, as a unified diff.
    #[command(after_help = "Examples:
  dbdeploy diff production")]
    Diff(EnvArgs),
    /// Write dbdeploy.toml for this project, detecting the migration tool and folder.
    #[command(after_help = "Examples:
  dbdeploy init                          detect the tool and folder
  dbdeploy init --tool sqlx --migrations-dir db/migrations")]
    Init(InitArgs),
    /// Revert the last applied migration(s) with their down scripts (sqlx, dbmate, golang-migrate).
    #[command(after_help = "Examples:
  dbdeploy down dev                      revert the last migration
  dbdeploy down dev --steps 2 --dry-run
  dbdeploy down staging --to 20240101000000_add_users")]
    Down(DownArgs),
    /// Risk findings for the pending migrations of ENV against its live database, or for every
    /// migration offline (exit 5 at or above `[lint] fail_on`).
    #[command(after_help = "Examples:
  dbdeploy lint                          every migration, offline
  dbdeploy lint production               the pending ones, against production's table sizes
  dbdeploy lint production --json | jq '.result.findings'")]
    Lint(LintArgs),
    /// Apply the pending migrations to a throw-away copy of an environment's database, measure them, drop the copy.
    #[command(after_help = "Examples:
  dbdeploy rehearse production           copy production, apply, measure, drop the copy
  dbdeploy migrate production --dry-run  then shows the measured durations")]
    Rehearse(EnvArgs),
    /// Create an empty migration in the project's format and print its path.
    #[command(after_help = "Examples:
  dbdeploy new add_users_email
  $EDITOR \"$(dbdeploy new add_users_email)\"")]
    New(NewArgs),
    /// Fleets: combine the reports of a sharded fleet deploy (`fleet merge r1.json r2.json ...`).
    #[command(
        subcommand,
        after_help = "Examples:
  dbdeploy fleet merge shard-1.json shard-2.json shard-3.json shard-4.json"
    )]
    Fleet(FleetCommand),
    /// Print a shell completion script.
    #[command(after_help = "Examples:
  dbdeploy completions bash > ~/.local/share/bash-completion/completions/dbdeploy
  dbdeploy completions zsh > \"${fpath[1]}/_dbdeploy\"
  dbdeploy completions fish > ~/.config/fish/completions/dbdeploy.fish
  dbdeploy completions powershell >> $PROFILE")]
    Completions(CompletionsArgs),
    /// Print the manual page (roff), e.g. `dbdeploy man > /usr/local/share/man/man1/dbdeploy.1`.
    #[command(after_help = "Examples:
  dbdeploy man | man -l -")]
    Man,
}

/// `dbdeploy lint`.
#[derive(Debug, Args)]
pub struct LintArgs {
    /// The environment whose pending migrations are linted against its live database (table
    /// sizes, indexes, server version); without it, every migration is linted offline.
    pub environment: Option<String>,
}

/// `dbdeploy new`.
#[derive(Debug, Args)]
pub struct NewArgs {
    /// The migration's name: letters, digits, `_` and `-` (e.g. add_users_email).
    pub name: String,
}

/// `dbdeploy completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// `dbdeploy health`.
#[derive(Debug, Args)]
pub struct HealthArgs {
    /// The environment from dbdeploy.toml.
    pub environment: String,
    /// Keep retrying a database that refuses connections for up to SECONDS (default: the
    /// environment's connect_timeout_seconds).
    #[arg(long, value_name = "SECONDS")]
    pub wait: Option<u64>,
}

/// `dbdeploy backup`.
#[derive(Debug, Args)]
pub struct BackupArgs {
    /// The environment from dbdeploy.toml.
    pub environment: String,
}

/// `dbdeploy rollback`.
#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// The environment from dbdeploy.toml.
    pub environment: String,
    /// The backup to restore (default: the newest of this database's).
    #[arg(long, value_name = "BACKUP_ID")]
    pub to: Option<String>,
    /// Approve without prompting (for CI and scripts).
    #[arg(short, long)]
    pub yes: bool,
    /// Restore a backup taken from another database or environment (needs --to and approval).
    #[arg(long, requires = "to")]
    pub from_other_database: bool,
    /// A fleet: undo fleet run RUN_ID (`result.run_id` of its --json), restoring each target it
    /// changed from that target's own backup.
    #[arg(long, value_name = "RUN_ID", conflicts_with_all = ["to", "from_other_database"])]
    pub run: Option<String>,
}

/// `dbdeploy history`.
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// The environment from dbdeploy.toml.
    pub environment: String,
    /// How many runs to show, newest first.
    #[arg(long, default_value_t = 20, value_name = "N")]
    pub limit: usize,
}

/// `dbdeploy init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// The migration tool, when detection cannot tell: prisma, sqlx, dbmate, drizzle,
    /// golang-migrate, flyway or sql.
    #[arg(long, value_name = "TOOL")]
    pub tool: Option<String>,
    /// The migrations folder, relative to the project (default: the detected one).
    #[arg(long, value_name = "DIR")]
    pub migrations_dir: Option<PathBuf>,
}

/// The environment argument shared by every command that talks to a database.
#[derive(Debug, Args)]
pub struct EnvArgs {
    /// The environment from dbdeploy.toml (dev, staging, production, ...).
    pub environment: String,
}

/// `dbdeploy status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The environment from dbdeploy.toml (dev, staging, production, ...).
    pub environment: String,
    /// A fleet: only the targets of shard I of N (`--shard 2/4`), for CI matrices.
    #[arg(long, value_name = "I/N", value_parser = parse_shard)]
    pub shard: Option<Shard>,
}

/// `dbdeploy fleet ...`.
#[derive(Debug, Subcommand)]
pub enum FleetCommand {
    /// Combine the `--json` reports of a fleet's shards into one: every target exactly once,
    /// one summary, the exit code of a fleet run.
    Merge(MergeArgs),
}

/// `dbdeploy fleet merge`.
#[derive(Debug, Args)]
pub struct MergeArgs {
    /// The shards' `migrate --shard I/N --json` reports.
    #[arg(required = true, value_name = "REPORT")]
    pub reports: Vec<PathBuf>,
}

/// Shard `index` of `count` (1-based), from `--shard I/N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// Which shard, from 1.
    pub index: u32,
    /// How many shards.
    pub count: u32,
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// A fleet run id as given: any UUID, written back in its hyphenated form.
///
/// # Errors
/// A message when `value` is not a UUID.
pub fn parse_run_id(value: &str) -> Result<String, String> {
    uuid::Uuid::parse_str(value.trim())
        .map(|id| id.hyphenated().to_string())
        .map_err(|_| {
            "not a UUID: generate one per CI run (e.g. `uuidgen`, or `cat /proc/sys/kernel/random/uuid`) and give the same to every shard".to_owned()
        })
}

/// `I/N` with 1 ≤ I ≤ N.
///
/// # Errors
/// What is wrong with the value.
pub fn parse_shard(value: &str) -> Result<Shard, String> {
    let bad = || format!("`{value}` is not a shard: write I/N with 1 ≤ I ≤ N, e.g. 2/4");
    let (i, n) = value.split_once('/').ok_or_else(bad)?;
    let index: u32 = i.trim().parse().map_err(|_| bad())?;
    let count: u32 = n.trim().parse().map_err(|_| bad())?;
    if index == 0 || count == 0 || index > count {
        return Err(bad());
    }
    Ok(Shard { index, count })
}

/// `dbdeploy migrate`.
#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// The environment from dbdeploy.toml.
    pub environment: String,
    /// Show what would run (SQL, risks, estimates) and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Deploy without the backup the environment asks for (not recommended).
    #[arg(long)]
    pub skip_backup: bool,
    /// Skip the pre-deploy consistency checks (connectivity is still required).
    #[arg(long)]
    pub skip_health_check: bool,
    /// Approve without prompting (for CI and scripts).
    #[arg(short, long)]
    pub yes: bool,
    /// Stop after this migration (inclusive).
    #[arg(long, value_name = "MIGRATION")]
    pub to: Option<String>,
    /// Deploy even though the schema was changed outside dbdeploy since the last deploy
    /// (the current schema becomes the new baseline).
    #[arg(long)]
    pub allow_drift: bool,
    /// A fleet: run only the targets an earlier run reported with this status (`failed`,
    /// `not_started`, `cancelled`; comma-separated or repeated); needs --from.
    #[arg(long, value_name = "STATUS", value_delimiter = ',', requires = "from")]
    pub only: Vec<String>,
    /// A fleet: the `--json` report of the earlier run that --only reads.
    #[arg(long, value_name = "REPORT", requires = "only")]
    pub from: Option<std::path::PathBuf>,
    /// A fleet: only the targets of shard I of N (`--shard 2/4`), for CI matrices; combine the
    /// shards' reports with `dbdeploy fleet merge`.
    #[arg(long, value_name = "I/N", value_parser = parse_shard)]
    pub shard: Option<Shard>,
    /// A fleet: stream one JSON line per target event as it happens (stdout; stderr under
    /// --json), so that a run killed part-way still leaves a record.
    #[arg(long)]
    pub events: bool,
    /// A fleet: record this run under RUN_ID (a UUID) instead of a new one, so that the jobs
    /// of a sharded CI run share one id and `rollback ENV --run RUN_ID` undoes all of them.
    #[arg(long, value_name = "RUN_ID", value_parser = parse_run_id)]
    pub run_id: Option<String>,
}

/// `dbdeploy resolve`.
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("resolution").required(true).args(["applied", "rolled_back"]))]
pub struct ResolveArgs {
    /// The environment from dbdeploy.toml.
    pub environment: String,
    /// Record the failed migration NAME as applied (you finished it by hand).
    #[arg(long, value_name = "NAME")]
    pub applied: Option<String>,
    /// Record the failed migration NAME as rolled back (you undid it by hand); it will run again.
    #[arg(long, value_name = "NAME")]
    pub rolled_back: Option<String>,
    /// Approve without prompting on protected environments.
    #[arg(short, long)]
    pub yes: bool,
}

/// `dbdeploy down`.
#[derive(Debug, Args)]
pub struct DownArgs {
    /// The environment from dbdeploy.toml.
    pub environment: String,
    /// How many applied migrations to revert, newest first.
    #[arg(long, value_name = "N", conflicts_with = "to")]
    pub steps: Option<usize>,
    /// Revert every migration applied after MIGRATION (which stays applied).
    #[arg(long, value_name = "MIGRATION")]
    pub to: Option<String>,
    /// Show the down scripts that would run and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Approve without prompting on protected environments.
    #[arg(short, long)]
    pub yes: bool,
    /// Revert without the backup the environment asks for (not recommended).
    #[arg(long)]
    pub skip_backup: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn resolve_needs_exactly_one_resolution() {
        assert!(Cli::try_parse_from(["dbdeploy", "resolve", "prod"]).is_err());
        assert!(
            Cli::try_parse_from([
                "dbdeploy",
                "resolve",
                "prod",
                "--applied",
                "a",
                "--rolled-back",
                "a"
            ])
            .is_err()
        );
        assert!(Cli::try_parse_from(["dbdeploy", "resolve", "prod", "--applied", "a"]).is_ok());
    }
}
