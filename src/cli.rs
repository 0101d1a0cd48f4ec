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
pub struct GlobalArgs {
    /// Run as if started in DIR (config, migrations and relative SQLite paths resolve from it).
    #[arg(
        short = 'C',
        long = "working-directory",
        value_name = "DIR",
        global = true
    )]
    pub working_directory: Option<PathBuf>,
    /// Use this configuration file instead of ./dbdeploy.toml.
    #[arg(short = 'c', long, value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
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
    Migrate(MigrateArgs),
    /// Show applied, pending, failed, modified and missing migrations (exit 4 pending, 5 inconsistent).
    Status(EnvArgs),
    /// Mark a failed migration as applied or rolled back, as `prisma migrate resolve` does.
    Resolve(ResolveArgs),
    /// Run the health checks alone: connectivity, tracking table, checksums, drift, disk, backup tools.
    Health(HealthArgs),
    /// Back up an environment's database now.
    Backup(BackupArgs),
    /// List an environment's backups: id, age, size, migrations.
    Backups(EnvArgs),
    /// Restore a backup (the latest by default), verified against its manifest.
    Rollback(RollbackArgs),
    /// Past runs recorded in the database's `_dbdeploy_history`.
    History(HistoryArgs),
    /// Schema drift: the live schema against the one recorded at the last deploy, as a unified diff.
    Diff(EnvArgs),
    /// Write dbdeploy.toml for this project, detecting the migration tool and folder.
    Init(InitArgs),
    /// Revert the last applied migration(s) with their down scripts (sqlx, dbmate, golang-migrate).
    Down(DownArgs),
    /// Risk findings for the pending migrations of ENV against its live database, or for every
    /// migration offline (exit 5 at or above `[lint] fail_on`).
    Lint(LintArgs),
    /// Apply the pending migrations to a throw-away copy of an environment's database, measure them, drop the copy.
    Rehearse(EnvArgs),
}

/// `dbdeploy lint`.
#[derive(Debug, Args)]
pub struct LintArgs {
    /// The environment whose pending migrations are linted against its live database (table
    /// sizes, indexes, server version); without it, every migration is linted offline.
    pub environment: Option<String>,
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
