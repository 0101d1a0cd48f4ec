//! One module per command, each thin: it builds the pipeline's operation (or reads what it
//! shows), runs it, and returns a typed [`Response`] that `output/` renders. Settings, the
//! environment and the [`Source`] are resolved here, once, before any command runs; the engine
//! is chosen once per command by [`with_database!`](crate::with_database).

pub mod backup;
pub mod diff;
pub mod down;
pub mod fleet;
pub mod health;
pub mod history;
pub mod init;
pub mod lint;
pub mod migrate;
pub mod new;
pub mod rehearse;
pub mod resolve;
pub mod rollback;
pub mod status;

use crate::cli::{Cli, Command};
use crate::error::Error;
use crate::external::ExternalError;
use crate::handler;
use crate::output::{Printer, Response};
use crate::pipeline::{Ctx, Finished, Operation, RunOptions};
use crate::settings::{EnvSettings, Settings};
use crate::source::Source;

/// Runs `$body` with `$D` bound to the engine type of `$target`: the one place an engine is
/// chosen from a URL.
#[macro_export]
macro_rules! with_database {
    ($target:expr, $D:ident => $body:expr) => {
        match $target.dialect() {
            $crate::engine::Dialect::Postgres => {
                type $D = $crate::engine::postgres::Postgres;
                $body
            }
            $crate::engine::Dialect::MySql => {
                type $D = $crate::engine::mysql::MySql;
                $body
            }
            $crate::engine::Dialect::Sqlite => {
                type $D = $crate::engine::sqlite::Sqlite;
                $body
            }
        }
    };
}

/// Runs the parsed command line and renders its response; returns the exit code.
pub async fn run(cli: Cli, printer: &Printer) -> u8 {
    let Cli { global, command } = cli;
    let (operation, environment) = command.names();
    if let Command::Init(args) = &command {
        let response = match crate::settings::Location::from_args(&global) {
            Ok(location) => init::run(&location, args, printer),
            Err(e) => Response::failed(operation, &environment, e.into()),
        };
        return printer.finish(response);
    }
    if let Command::Fleet(crate::cli::FleetCommand::Merge(args)) = &command {
        return printer.finish(fleet::merge::run(args, printer));
    }
    match &command {
        Command::Completions(args) => return printer.raw(&completions(args.shell)),
        Command::Man => return printer.raw(&man()),
        _ => {}
    }
    let settings = match Settings::load(&global) {
        Ok(s) => s,
        Err(e) => return printer.finish(Response::failed(operation, &environment, e.into())),
    };
    if let Some(note) = &settings.zero_config
        && !matches!(command, Command::New(_))
    {
        let source = if global.url.is_some() {
            "--url"
        } else {
            crate::settings::ZERO_CONFIG_VAR
        };
        printer.line(&format!("note: {note}; database URL from {source}"));
    }
    let response = match command {
        Command::Migrate(args) => migrate::run(&settings, args, printer).await,
        Command::Status(args) => status::run(&settings, &args, printer).await,
        Command::Resolve(args) => resolve::run(&settings, args, printer).await,
        Command::Health(args) => health::run(&settings, args, printer).await,
        Command::Backup(args) => backup::create(&settings, &args.environment, printer).await,
        Command::Backups(args) => backup::list(&settings, &args.environment, printer).await,
        Command::Rollback(args) => rollback::run(&settings, args, printer).await,
        Command::History(args) => history::run(&settings, args, printer).await,
        Command::Diff(args) => diff::run(&settings, &args.environment, printer).await,
        Command::Down(args) => down::run(&settings, args, printer).await,
        Command::Lint(args) => lint::run(&settings, args.environment.as_deref(), printer).await,
        Command::Rehearse(args) => rehearse::run(&settings, &args.environment, printer).await,
        Command::New(args) => new::run(&settings, &args),
        Command::Init(_) | Command::Completions(_) | Command::Man | Command::Fleet(_) => {
            unreachable!("these run without settings")
        }
    };
    printer.finish(response)
}

/// The completion script for `shell`.
fn completions(shell: clap_complete::Shell) -> String {
    use clap::CommandFactory;
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "dbdeploy", &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// The manual page, in roff.
fn man() -> String {
    use clap::CommandFactory;
    let mut out = Vec::new();
    // Writing to a Vec cannot fail.
    let _ = clap_mangen::Man::new(Cli::command()).render(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

impl Command {
    /// The operation named in the JSON document and the environment the command is about,
    /// known before anything is loaded so that even a configuration error is reported in
    /// the command's own terms.
    fn names(&self) -> (&'static str, String) {
        match self {
            Command::Migrate(a) if a.dry_run => ("preview-migrations", a.environment.clone()),
            Command::Migrate(a) => ("deploy-migrations", a.environment.clone()),
            Command::Status(a) => ("migration-status", a.environment.clone()),
            Command::Resolve(a) => ("resolve-migration", a.environment.clone()),
            Command::Health(a) => ("health-check", a.environment.clone()),
            Command::Backup(a) => ("create-backup", a.environment.clone()),
            Command::Backups(a) => ("list-backups", a.environment.clone()),
            Command::Rollback(a) => ("rollback", a.environment.clone()),
            Command::History(a) => ("deploy-history", a.environment.clone()),
            Command::Diff(a) => ("schema-diff", a.environment.clone()),
            Command::Down(a) => ("revert-migrations", a.environment.clone()),
            Command::Lint(a) => ("lint-migrations", a.environment.clone().unwrap_or_default()),
            Command::Rehearse(a) => ("rehearse-migrations", a.environment.clone()),
            Command::Init(_) => ("init", String::new()),
            Command::New(_) => ("new-migration", String::new()),
            Command::Fleet(_) => ("fleet-merge", String::new()),
            Command::Completions(_) => ("completions", String::new()),
            Command::Man => ("man", String::new()),
        }
    }
}

/// What a command needs to work on.
#[derive(Debug, Clone, Copy)]
pub enum Needs<'a> {
    /// The migrations folder (validated), or an external tool's commands.
    Files {
        /// `--to`, checked against the folder.
        to: Option<&'a str>,
    },
    /// The migrations folder; `command` (as shown) is not available for an external tool.
    FilesOnly {
        /// The command, for the error.
        command: &'a str,
    },
    /// The tool's tracking table only: the folder is not read (it may be broken).
    Tracking,
}

/// The environment and what the command works on.
pub struct Setup {
    /// The environment.
    pub env: EnvSettings,
    /// Its source.
    pub source: Source,
}

/// Resolves the environment and its source.
///
/// # Errors
/// Configuration and folder errors (exit code 2); nothing is touched.
pub fn setup(settings: &Settings, environment: &str, needs: Needs<'_>) -> Result<Setup, Error> {
    let env = settings.environment(environment)?;
    let source = source_for(&env, needs)?;
    Ok(Setup { env, source })
}

/// What a command works on in `env`: its migrations folder (validated), its format's tracking
/// table, or its external tool.
///
/// # Errors
/// Configuration and folder errors (exit code 2); nothing is touched.
pub fn source_for(env: &EnvSettings, needs: Needs<'_>) -> Result<Source, Error> {
    Ok(
        match (handler::for_tool(env.tool), env.external.clone(), needs) {
            (Some(handler), _, Needs::Tracking) => Source::Tracking(handler),
            (Some(handler), _, Needs::Files { to }) => Source::Files {
                handler,
                set: crate::pipeline::validate::run(env, handler, to)?,
            },
            (Some(handler), _, Needs::FilesOnly { .. }) => Source::Files {
                handler,
                set: crate::pipeline::validate::run(env, handler, None)?,
            },
            (None, Some(_), Needs::FilesOnly { command }) => {
                return Err(ExternalError::Unsupported {
                    what: command.to_owned(),
                }
                .into());
            }
            (None, Some(tool), _) => Source::External(tool),
            // Settings refuse `migration_tool = "command"` without both commands.
            (None, None, _) => {
                return Err(crate::config::ConfigError::Usage(
                    "`migration_tool = \"command\"` needs `status_command` and `apply_command`"
                        .into(),
                )
                .into());
            }
        },
    )
}

/// Runs `op` through the pipeline on the engine of the environment's URL.
pub async fn execute<O: Operation>(
    setup: &Setup,
    options: &RunOptions,
    interactive: bool,
    printer: &Printer,
    op: &O,
) -> Finished<O> {
    let cx = Ctx {
        env: &setup.env,
        source: &setup.source,
        options,
        interactive,
        reporter: printer,
    };
    with_database!(setup.env.target, D => crate::pipeline::run::<D, O>(&cx, op).await)
}

/// One migration in the result of a run that changes migrations (`migrate`, `down`).
#[derive(serde::Serialize)]
#[serde(untagged)]
enum Entry<'a> {
    /// Applied or reverted by this run.
    Done {
        name: &'a str,
        status: &'static str,
        duration_seconds: f64,
        atomic: bool,
    },
    /// Its script failed.
    Failed {
        name: &'a str,
        status: &'static str,
        error: &'a str,
        statement: Option<usize>,
        line: Option<usize>,
        rolled_back: bool,
    },
    /// Stopped by Ctrl-C after some of its statements.
    Interrupted {
        name: &'a str,
        status: &'static str,
        statement: usize,
        rolled_back: bool,
    },
    /// As an external tool's `status_command` reports it.
    External { name: &'a str, status: &'static str },
}

impl<'a> Entry<'a> {
    /// A migration this run changed; `status` is `applied` or `reverted`.
    fn done(c: &'a crate::pipeline::trail::Changed, status: &'static str) -> Self {
        Entry::Done {
            name: &c.name,
            status,
            duration_seconds: crate::pipeline::trail::round_seconds(c.duration),
            atomic: c.atomic,
        }
    }

    /// The migration whose script failed.
    fn failed(f: &'a crate::pipeline::apply::FailedScript, rolled_back: bool) -> Self {
        Entry::Failed {
            name: &f.migration,
            status: "failed",
            error: &f.message,
            statement: f.statement,
            line: f.line,
            rolled_back,
        }
    }
}
