//! Progress of a long backup or restore. On a terminal, once the work has taken 2 s, an
//! `indicatif` spinner redrawn in place shows what has been written and the time; it is
//! cleared when the work ends, so nothing of it stays in the output. Without a terminal
//! (output redirected to a file or a CI log), one plain line every 10 s names the step and
//! the time so far. Quiet runs (`-q`) show neither.

use std::sync::OnceLock;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::Printer;
use crate::pipeline::event::duration;

/// The process's printer, for progress started deep inside a provider.
static PRINTER: OnceLock<Printer> = OnceLock::new();

/// Work shorter than this shows no progress at all.
const SHOW_AFTER: Duration = Duration::from_secs(2);
/// How often a line is written without a terminal.
const LINE_EVERY: Duration = Duration::from_secs(10);

pub(super) fn install(printer: Printer) {
    let _ = PRINTER.set(printer);
}

/// Progress being shown; ends (and is cleared) when dropped.
#[must_use = "progress ends when dropped"]
pub struct Progress {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// Starts showing progress of `step` (`backup`, `restore`) done by `tool`; `bytes` says how
/// much has been done so far (0: unknown).
pub fn start(
    step: &'static str,
    tool: &'static str,
    bytes: impl Fn() -> u64 + Send + 'static,
) -> Progress {
    let none = Progress {
        stop: None,
        thread: None,
    };
    let Some(printer) = PRINTER.get().copied() else {
        return none;
    };
    if printer.settings.verbosity < 0 {
        return none;
    }
    let (stop, stopped) = mpsc::channel::<()>();
    let started = Instant::now();
    let thread = std::thread::Builder::new()
        .name("progress".into())
        .spawn(move || {
            if printer.human_tty {
                spinner(printer, step, tool, &bytes, &stopped, started);
            } else {
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(LINE_EVERY) {
                    printer.line(&format!(
                        "{step}: {tool} still running, {} so far",
                        duration(started.elapsed())
                    ));
                }
            }
        });
    match thread {
        Ok(thread) => Progress {
            stop: Some(stop),
            thread: Some(thread),
        },
        Err(_) => none,
    }
}

fn spinner(
    printer: Printer,
    step: &str,
    tool: &str,
    bytes: &dyn Fn() -> u64,
    stopped: &mpsc::Receiver<()>,
    started: Instant,
) {
    if !matches!(
        stopped.recv_timeout(SHOW_AFTER),
        Err(RecvTimeoutError::Timeout)
    ) {
        return;
    }
    let target = if printer.settings.json {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::stdout()
    };
    let bar = ProgressBar::with_draw_target(None, target);
    if let Ok(style) = ProgressStyle::with_template("{spinner} {prefix}: {msg}") {
        bar.set_style(style);
    }
    bar.set_prefix(step.to_owned());
    loop {
        let done = bytes();
        let what = if done > 0 {
            format!(
                "{tool}, {} {}",
                crate::backup::human_bytes(done),
                if step == "restore" {
                    "of SQL loaded"
                } else {
                    "written"
                }
            )
        } else {
            format!("{tool} running")
        };
        bar.set_message(format!("{what} ({})", duration(started.elapsed())));
        bar.tick();
        if !matches!(
            stopped.recv_timeout(Duration::from_millis(200)),
            Err(RecvTimeoutError::Timeout)
        ) {
            break;
        }
    }
    bar.finish_and_clear();
}

impl Drop for Progress {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
