//! What every step of a run may read: the environment, the source, the flags and where
//! events go.

use super::{Event, Outcome, Reporter, Trail};
use crate::handler::Handler;
use crate::migration::MigrationSet;
use crate::settings::EnvSettings;
use crate::source::Source;

/// The flags that shape a run, whatever the operation.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Plan and preview only, on a read-only session, without the lock.
    pub dry_run: bool,
    /// Approve without asking.
    pub yes: bool,
    /// Skip the pre-deploy consistency checks.
    pub skip_health_check: bool,
    /// Change the database without the backup the environment asks for.
    pub skip_backup: bool,
    /// Deploy even though the schema changed since the last deploy.
    pub allow_drift: bool,
    /// A target of a fleet: approved once for the whole fleet, never asked again.
    pub fleet: Option<super::approve::Delegated>,
    /// The fleet run this target's run belongs to: recorded with its history row and audit
    /// line, so that `rollback ENV --run` finds what one fleet run changed.
    pub fleet_run_id: Option<String>,
}

/// Everything a step may read.
#[derive(Clone, Copy)]
pub struct Ctx<'a> {
    /// The environment.
    pub env: &'a EnvSettings,
    /// What the run works on.
    pub source: &'a Source,
    /// The flags.
    pub options: &'a RunOptions,
    /// A person can answer prompts.
    pub interactive: bool,
    /// Where events go.
    pub reporter: &'a dyn Reporter,
}

impl Ctx<'_> {
    /// Reports how a step ended.
    pub fn step(&self, name: &str, outcome: Outcome, detail: String) {
        self.reporter.event(Event::Step {
            name,
            outcome,
            detail,
        });
    }

    /// Reports something that does not stop the run, and keeps it for the report; once per
    /// run (the plan is made twice).
    pub fn warn(&self, trail: &mut Trail, warning: String) {
        if trail.warnings.contains(&warning) {
            return;
        }
        self.reporter.event(Event::Warning(warning.clone()));
        trail.warnings.push(warning);
    }

    /// The format whose tracking table the run reads; `None` for an external tool.
    #[must_use]
    pub fn handler(&self) -> Option<&'static dyn Handler> {
        self.source.handler()
    }

    /// The migrations on disk, when the source has them.
    #[must_use]
    pub fn set(&self) -> Option<&MigrationSet> {
        self.source.set()
    }

    /// Whether this run takes a backup before it changes anything.
    #[must_use]
    pub fn backup_needed(&self) -> bool {
        self.env.backup_before_migrate && !self.options.skip_backup && !self.options.dry_run
    }
}

impl<'a> Ctx<'a> {
    /// A context for commands that only read the database (lint, status, a rehearsal's
    /// look at the target, promotion's look at the other environment): a dry run, no prompts.
    #[must_use]
    pub fn read_only(env: &'a EnvSettings, source: &'a Source, reporter: &'a dyn Reporter) -> Self {
        static READ_ONLY: RunOptions = RunOptions {
            dry_run: true,
            yes: false,
            skip_health_check: false,
            skip_backup: false,
            allow_drift: false,
            fleet: None,
            fleet_run_id: None,
        };
        Ctx {
            env,
            source,
            options: &READ_ONLY,
            interactive: false,
            reporter,
        }
    }
}
