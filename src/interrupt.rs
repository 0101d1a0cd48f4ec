//! Ctrl-C (SIGINT). Outside a deploy it ends the process at once with exit code 130, as the
//! default signal action would. While a deploy may change the database it must not: a
//! half-applied non-atomic migration with no record of the failure, or a run missing from the
//! audit log, is worse than waiting a little. So inside a [`Guard`] the first Ctrl-C only
//! asks the pipeline to stop at its next safe point (the current statement or migration
//! finishes, nothing after it starts, the run is logged as interrupted), and a second one ends
//! the process at once.
//!
//! The handler stays installed for the life of the process (the OS default cannot be put back
//! without `unsafe`), which is why the "outside a deploy" case exits by itself.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use tokio::sync::Notify;

/// The conventional exit code of a process stopped by Ctrl-C (128 + SIGINT).
pub const EXIT_CODE: u8 = 130;

static REQUESTED: AtomicBool = AtomicBool::new(false);
static GUARDS: AtomicUsize = AtomicUsize::new(0);
static NOTIFY: Notify = Notify::const_new();

/// Installs the SIGINT handler; call once, inside the async runtime. `tell` shows the user
/// what an interrupt does (the printer owns stderr).
///
/// # Errors
/// When the signal handler cannot be registered (Ctrl-C then keeps its default action).
pub fn install(tell: impl Fn(&str) + Send + Sync + 'static) -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    // SIGTERM (what `timeout`, systemd and CI runners send) and SIGHUP (a closed terminal)
    // are treated as Ctrl-C: client tools are stopped and waited for, and the run is logged.
    let tell = std::sync::Arc::new(tell);
    for kind in [
        SignalKind::interrupt(),
        SignalKind::terminate(),
        SignalKind::hangup(),
    ] {
        let mut stream = signal(kind)?;
        let tell = std::sync::Arc::clone(&tell);
        tokio::spawn(async move {
            while stream.recv().await.is_some() {
                on_signal(&*tell);
            }
        });
    }
    Ok(())
}

fn on_signal(tell: &impl Fn(&str)) {
    let guarded = GUARDS.load(Ordering::SeqCst) > 0;
    let again = REQUESTED.swap(true, Ordering::SeqCst);
    if !guarded || again {
        let why = if guarded {
            "interrupted again: stopping now; the database may need `dbdeploy status` and `dbdeploy resolve`"
        } else {
            "interrupted"
        };
        tell(&format!("\n{why}\n"));
        std::process::exit(i32::from(EXIT_CODE));
    }
    NOTIFY.notify_waiters();
    tell(
        "\n! interrupt received: stopping after the current statement or migration (Ctrl-C again to stop at once)\n",
    );
}

/// While one is alive, Ctrl-C requests a stop instead of ending the process.
#[derive(Debug)]
#[must_use = "the guard protects only while it is alive"]
pub struct Guard(());

impl Guard {
    /// Starts a section that must end at a safe point.
    pub fn new() -> Self {
        GUARDS.fetch_add(1, Ordering::SeqCst);
        Guard(())
    }
}

impl Default for Guard {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        GUARDS.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Whether Ctrl-C was pressed inside a guarded section.
#[must_use]
pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}

/// Resolves once Ctrl-C is pressed (at once if it already was).
pub async fn wait() {
    loop {
        let notified = NOTIFY.notified();
        tokio::pin!(notified);
        // Register before looking at the flag, so a signal in between is not lost.
        notified.as_mut().enable();
        if requested() {
            return;
        }
        notified.await;
    }
}

/// Runs `work` unless Ctrl-C comes first; the work is then dropped. Only for work that
/// changes nothing (connecting, reading, waiting for the lock).
pub async fn unless_interrupted<T>(work: impl Future<Output = T>) -> Option<T> {
    tokio::select! {
        biased;
        () = wait() => None,
        value = work => Some(value),
    }
}

/// A non-atomic migration stopped between two of its statements.
#[derive(Debug, Clone)]
pub struct Partial {
    /// The migration.
    pub migration: String,
    /// Statements that ran (and stay applied).
    pub ran: usize,
    /// Statements in the migration.
    pub of: usize,
}

/// A deploy stopped by Ctrl-C at a safe point.
#[derive(Debug, thiserror::Error)]
#[error("{}", self.summary())]
pub struct Interrupted {
    /// The environment, for hints.
    pub environment: String,
    /// Migrations of this run that were applied and recorded before the stop.
    pub applied: usize,
    /// Migrations selected for this run that were not started.
    pub not_started: usize,
    /// The migration stopped part-way, when a non-atomic one was running.
    pub partial: Option<Partial>,
    /// The backup this run made, if any.
    pub backup_id: Option<String>,
}

impl Interrupted {
    /// Stopped before anything was changed.
    #[must_use]
    pub fn before_any_change(environment: &str, not_started: usize) -> Self {
        Self {
            environment: environment.to_owned(),
            applied: 0,
            not_started,
            partial: None,
            backup_id: None,
        }
    }

    /// Whether the database was changed before the stop.
    #[must_use]
    pub fn changed(&self) -> bool {
        self.applied > 0 || self.partial.is_some()
    }

    fn summary(&self) -> String {
        if let Some(p) = &self.partial {
            return format!(
                "interrupted (Ctrl-C) during `{}` after statement {} of {}: it runs outside a transaction, so those statements stay applied and it is recorded as failed",
                p.migration, p.ran, p.of
            );
        }
        match (self.applied, self.not_started) {
            (0, _) => "interrupted (Ctrl-C) before any change".to_owned(),
            (n, 0) => format!(
                "interrupted (Ctrl-C) after all {n} migration(s) were applied; the checks after the deploy did not run"
            ),
            (n, rest) => format!(
                "interrupted (Ctrl-C) after {n} migration(s) were applied; {rest} not started"
            ),
        }
    }

    /// What to do.
    #[must_use]
    pub fn hints(&self) -> Vec<String> {
        let env = &self.environment;
        let mut hints = Vec::new();
        if let Some(p) = &self.partial {
            let name = &p.migration;
            hints.push(format!(
                "finish the rest of `{name}` by hand and run `dbdeploy resolve {env} --applied {name}`, or undo its first {} statement(s) and run `dbdeploy resolve {env} --rolled-back {name}` to run it again",
                p.ran
            ));
        }
        if self.applied > 0 {
            hints.push(format!(
                "the {} migration(s) applied in this run are recorded and stay applied",
                self.applied
            ));
        }
        if !self.changed() {
            hints.push("nothing was changed".into());
        }
        if self.partial.is_some() {
            if self.not_started > 0 {
                hints.push("later migrations were not started".into());
            }
        } else if self.not_started > 0 || !self.changed() {
            hints.push(format!(
                "run `dbdeploy migrate {env}` again to apply what is pending"
            ));
        } else {
            hints.push(format!(
                "check the result with `dbdeploy status {env}` and `dbdeploy health {env}`"
            ));
        }
        if self.changed()
            && let Some(id) = &self.backup_id
        {
            hints.push(format!(
                "to return to the state before this deploy: `dbdeploy rollback {env} --to {id}`"
            ));
        }
        hints
    }
}
