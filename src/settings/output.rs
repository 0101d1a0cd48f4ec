//! How results are shown: human or JSON, colours per stream, verbosity, and what a GitHub
//! Actions step provides.

use std::io::IsTerminal;
use std::path::PathBuf;

use crate::cli::{ColorChoice, GlobalArgs};

/// Output preferences.
#[derive(Debug, Clone, Copy)]
pub struct OutputSettings {
    /// One JSON document on stdout; human lines on stderr.
    pub json: bool,
    /// ANSI colours on the human stream.
    pub color: bool,
    /// ANSI colours on stderr (errors, diagnostics).
    pub color_stderr: bool,

    /// -1 quiet, 0 normal, 1+ verbose.
    pub verbosity: i8,
}

impl OutputSettings {
    /// Output settings from the global flags and the environment: `NO_COLOR`, `CLICOLOR_FORCE`
    /// and `TERM=dumb` decide `--color auto`, per stream, so that a redirected stream never
    /// gets colour codes.
    #[must_use]
    pub fn from_args(args: &GlobalArgs) -> Self {
        let stdout_tty = std::io::stdout().is_terminal();
        let stderr_tty = std::io::stderr().is_terminal();
        let human_is_tty = if args.json { stderr_tty } else { stdout_tty };
        let color = color_for(args.color, human_is_tty);
        let verbosity = i8::try_from(args.verbose).unwrap_or(i8::MAX)
            - i8::try_from(args.quiet).unwrap_or(i8::MAX);
        Self {
            json: args.json,
            color,
            color_stderr: color_for(args.color, stderr_tty),
            verbosity,
        }
    }
}

/// Whether a stream gets colours: `--color`, then `CLICOLOR_FORCE`, `NO_COLOR`, `TERM=dumb`
/// and whether it is a terminal (<https://no-color.org>, <https://bixense.com/clicolors/>).
fn color_for(choice: ColorChoice, tty: bool) -> bool {
    let set = |var: &str| std::env::var_os(var).is_some_and(|v| !v.is_empty());
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            let forced =
                std::env::var_os("CLICOLOR_FORCE").is_some_and(|v| !v.is_empty() && v != "0");
            let dumb = std::env::var_os("TERM").is_some_and(|t| t == "dumb");
            forced || (tty && !set("NO_COLOR") && !dumb)
        }
    }
}

/// Running as a GitHub Actions step (`GITHUB_ACTIONS=true`): annotations, groups and the
/// step summary.
#[must_use]
pub fn github() -> Option<GithubSettings> {
    (std::env::var_os("GITHUB_ACTIONS").is_some_and(|v| v == "true")).then(|| GithubSettings {
        step_summary: std::env::var_os("GITHUB_STEP_SUMMARY")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from),
        workspace: std::env::var_os("GITHUB_WORKSPACE")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from),
    })
}

/// What a GitHub Actions step provides.
#[derive(Debug, Clone, Default)]
pub struct GithubSettings {
    /// The file the step's Markdown summary is appended to.
    pub step_summary: Option<PathBuf>,
    /// The repository's checkout: annotation paths are relative to it.
    pub workspace: Option<PathBuf>,
}
