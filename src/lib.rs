//! dbdeploy: deploy database migrations written with the tool a team already uses, with the
//! checks careful operators do by hand around every run.
//!
//! The binary is a thin wrapper around [`main`]; everything is testable from here.

pub mod backup;
pub mod checksum;
pub mod cli;
pub mod commands;
pub mod config;
pub mod engine;
pub mod error;
pub mod external;
pub mod fleet;
pub mod handler;
pub mod history;
pub mod interrupt;
pub mod lint;
pub mod migration;
pub mod operator;
pub mod output;
pub mod pipeline;
pub mod redact;
pub mod rehearse;
pub mod schema;
pub mod settings;
pub mod source;
pub mod sql;

use std::process::ExitCode;

use clap::Parser as _;

/// Parses the command line, runs the command and returns its exit code.
#[must_use]
pub fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e),
    };
    let out = settings::OutputSettings::from_args(&cli.global);
    init_tracing(out.verbosity, out.color_stderr);
    let printer = output::Printer::new(out);
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!("cannot start the async runtime: {e}");
            return ExitCode::from(error::exit::FAILURE);
        }
    };
    let code = runtime.block_on(async {
        if let Err(e) = interrupt::install(move |message| printer.stderr(message)) {
            tracing::warn!("cannot handle Ctrl-C: {e}");
        }
        catch_file_size_signal();
        commands::run(cli, &printer).await
    });
    // A prompt abandoned after Ctrl-C still blocks a thread on stdin; do not wait for it.
    runtime.shutdown_background();
    ExitCode::from(code)
}

/// A command line clap cannot read. Under `--json` the caller parses stdout, so it gets an
/// error document (operation `usage`, exit 2) instead of clap's text; help and version
/// requests print as usual, and callers without `--json` get clap's text on stderr (exit 2).
fn usage_error(e: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    use std::io::Write;
    if !e.use_stderr() {
        let _ = e.print();
        return ExitCode::SUCCESS;
    }
    let wants_json = std::env::args_os().skip(1).any(|a| a == "--json");
    let informational = matches!(
        e.kind(),
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    );
    if !wants_json || informational {
        // clap's text can echo an argument (a mistyped `--url` value): scrubbed like every
        // other output.
        let text = e.render().to_string();
        let _ = redact::ScrubbedStderr.write_all(text.as_bytes());
        return ExitCode::from(error::exit::USAGE);
    }
    let printer = output::Printer::new(settings::OutputSettings {
        json: true,
        color: false,
        color_stderr: false,
        verbosity: 0,
    });
    // clap's text names the problem, then its usage line and a pointer to --help: the first
    // line is the message; the rest stays for people reading stderr.
    let text = e.render().to_string();
    let message = text
        .lines()
        .next()
        .unwrap_or("the command line could not be read")
        .trim_start_matches("error: ")
        .to_owned();
    let error = config::ConfigError::Usage(message);
    let code = printer.finish(output::Response::failed("usage", "", error.into()));
    ExitCode::from(code)
}

/// A file-size limit (`ulimit -f`) reached while writing a backup sends SIGXFSZ, whose default
/// action kills the process on the spot, leaving a partial backup file behind and nothing
/// logged. With a handler installed the write fails with EFBIG instead, and the backup step
/// reports it and cleans up like any full disk. Child processes get the default action back.
fn catch_file_size_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    // The handler stays installed for the life of the process once registered.
    if let Err(e) = signal(SignalKind::from_raw(libc::SIGXFSZ)) {
        tracing::warn!("cannot handle SIGXFSZ: {e}");
    }
}

fn init_tracing(verbosity: i8, color: bool) {
    let level = match verbosity {
        i8::MIN..=1 => "off",
        2 => "dbdeploy=debug",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("DBDEPLOY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(color)
        .with_writer(|| redact::ScrubbedStderr)
        .try_init();
}
