//! Progress of long work: a backup or restore, a running migration, a lock wait, a connection
//! to a server that is not up yet. On a terminal, once the work has taken 2 s, an
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
    let done = if step == "restore" {
        "of SQL loaded"
    } else {
        "written"
    };
    show(step, move || match bytes() {
        0 => format!("{tool} still running"),
        n => format!(
            "{tool} still running, {} {done}",
            crate::backup::human_bytes(n)
        ),
    })
}

/// Starts showing `what` (a migration still running, a lock waited for, a server not up yet)
/// in `step`; `waits_on` names what it waits for now, when that is known (the session holding
/// the lock a statement needs).
pub fn activity(
    step: &'static str,
    what: String,
    waits_on: impl Fn() -> Vec<String> + Send + 'static,
) -> Progress {
    show(step, move || {
        let waits = waits_on();
        if waits.is_empty() {
            what.clone()
        } else {
            format!("{what}, waiting for {}", waits.join(", "))
        }
    })
}

/// Shows `message()` with the time so far: redrawn in place on a terminal after
/// [`SHOW_AFTER`], a line every [`LINE_EVERY`] otherwise.
fn show(step: &'static str, message: impl Fn() -> String + Send + 'static) -> Progress {
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
                spinner(printer, step, &message, &stopped, started);
            } else {
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(LINE_EVERY) {
                    printer.line(&format!(
                        "{step}: {}, {} so far",
                        message(),
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
    message: &dyn Fn() -> String,
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
        bar.set_message(format!("{} ({})", message(), duration(started.elapsed())));
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
