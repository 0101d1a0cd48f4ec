//! One module per command. Each takes resolved settings and the printer and returns the
//! process exit code; none of them sees clap types beyond its own arguments.

pub mod backup;
pub mod diff;
pub mod down;
pub mod health;
pub mod history;
pub mod init;
pub mod migrate;
pub mod resolve;
pub mod rollback;
pub mod status;

use crate::cli::{Cli, Command, GlobalArgs};
use crate::config::ConfigError;
use crate::error::Error;
use crate::external::{ExternalError, ExternalTool};
use crate::handler::{self, Handler};
use crate::migration::MigrationSet;
use crate::output::Printer;
use crate::output::json::{self, Status};
use crate::settings::{EnvSettings, Settings};

/// Runs the parsed command line.
pub async fn run(cli: Cli, printer: &Printer) -> u8 {
    match cli.command {
        Command::Migrate(args) => migrate::run(&cli.global, args, printer).await,
        Command::Status(args) => status::run(&cli.global, &args.environment, printer).await,
        Command::Resolve(args) => resolve::run(&cli.global, args, printer).await,
        Command::Health(args) => health::run(&cli.global, args, printer).await,
        Command::Backup(args) => backup::create(&cli.global, &args.environment, printer).await,
        Command::Backups(args) => backup::list(&cli.global, &args.environment, printer),
        Command::Rollback(args) => rollback::run(&cli.global, args, printer).await,
        Command::History(args) => history::run(&cli.global, args, printer).await,
        Command::Diff(args) => diff::run(&cli.global, &args.environment, printer).await,
        Command::Init(args) => init::run(&cli.global, &args, printer),
        Command::Down(args) => down::run(&cli.global, args, printer).await,
    }
}

/// The steps before any database work: settings, environment, format, migrations folder.
pub struct Prepared {
    /// Project settings.
    pub settings: Settings,
    /// The environment.
    pub env: EnvSettings,
    /// The format.
    pub handler: &'static dyn Handler,
    /// The validated migrations.
    pub set: MigrationSet,
}

/// An environment whose migrations an external tool applies (`migration_tool = "command"`).
pub struct PreparedExternal {
    /// Project settings.
    pub settings: Settings,
    /// The environment.
    pub env: EnvSettings,
    /// The tool's commands.
    pub tool: ExternalTool,
}

/// What a command works on.
pub enum Project {
    /// A migrations folder that dbdeploy reads and applies, writing the tool's tracking table.
    Files(Box<Prepared>),
    /// A tool that applies its own migrations.
    External(Box<PreparedExternal>),
}

/// Loads settings and resolves the environment; for a migrations folder, also validates it.
///
/// # Errors
/// Configuration and folder errors (exit code 2); nothing is touched.
pub fn load(global: &GlobalArgs, environment: &str, to: Option<&str>) -> Result<Project, Error> {
    let settings = Settings::load(global)?;
    let env = settings.environment(environment)?;
    match (handler::for_tool(env.tool), env.external.clone()) {
        (Some(handler), _) => {
            let set = crate::pipeline::validate::run(&env, handler, to)?;
            Ok(Project::Files(Box::new(Prepared {
                settings,
                env,
                handler,
                set,
            })))
        }
        (None, Some(tool)) => Ok(Project::External(Box::new(PreparedExternal {
            settings,
            env,
            tool,
        }))),
        // Settings refuse `migration_tool = "command"` without both commands.
        (None, None) => Err(ConfigError::Usage(
            "`migration_tool = \"command\"` needs `status_command` and `apply_command`".into(),
        )
        .into()),
    }
}

/// Loads settings, resolves the environment and validates the migrations folder, for a command
/// that reads or writes the tracking table.
///
/// # Errors
/// Configuration and folder errors (exit code 2), and an external tool, whose history
/// dbdeploy does not keep; nothing is touched.
pub fn prepare(
    global: &GlobalArgs,
    environment: &str,
    to: Option<&str>,
) -> Result<Prepared, Error> {
    prepare_for("this command", global, environment, to)
}

/// [`prepare`] for `command`, named in the error when the environment uses an external tool.
///
/// # Errors
/// As [`prepare`].
pub fn prepare_for(
    command: &str,
    global: &GlobalArgs,
    environment: &str,
    to: Option<&str>,
) -> Result<Prepared, Error> {
    match load(global, environment, to)? {
        Project::Files(p) => Ok(*p),
        Project::External(_) => Err(ExternalError::Unsupported {
            what: command.to_owned(),
        }
        .into()),
    }
}

/// Reports an error that happened before the pipeline started, and returns its exit code.
pub fn fail_early(printer: &Printer, operation: &str, environment: &str, err: &Error) -> u8 {
    printer.error(err);
    if printer.json_mode() {
        let status = if matches!(err, Error::Approval(_)) {
            Status::Cancelled
        } else {
            Status::Error
        };
        printer.json(
            &json::Document {
                status,
                operation,
                environment,
                mode: None,
                result: serde_json::json!({}),
                message: &err.to_string(),
                error: Some(err),
                recovery: None,
            }
            .render(),
        );
    }
    err.exit_code()
}
