//! Fleets: one environment that is many databases (a database or schema per tenant, region or
//! customer). A fleet is a scheduler over the one pipeline, not a second pipeline: every
//! target runs `pipeline::run` with its own lock, backup, verification and log, and what the
//! fleet adds is around it — resolving the targets (`targets.rs`), one read-only plan and one
//! approval for all of them, the order and parallelism they run in (`schedule.rs`, with the
//! phases of `waves.rs`, the servers of `servers.rs` and the lock domains of `domains.rs`),
//! the split of a CI matrix (`shard.rs`), and one report (`report.rs`) that a later run can be
//! narrowed by.

pub mod catalog;
pub mod config;
pub mod domains;
pub mod events;
pub mod report;
pub mod schedule;
pub mod servers;
pub mod shard;
pub mod targets;
pub mod waves;

use std::cell::RefCell;

use crate::pipeline::event::{Event, Outcome, Reporter};

/// Keeps a target's events instead of printing them: targets run at once, and their step
/// lines would interleave. The fleet prints one line per target when it finishes.
#[derive(Debug, Default)]
pub struct Capture {
    lines: RefCell<Vec<String>>,
}

impl Capture {
    /// The step lines, as a single run would have printed them (marks without colour).
    #[must_use]
    pub fn lines(&self) -> Vec<String> {
        self.lines.borrow().clone()
    }
}

impl Reporter for Capture {
    fn event(&self, event: Event<'_>) {
        let line = match event {
            Event::Step {
                name,
                outcome,
                detail,
            } => {
                let mark = match outcome {
                    Outcome::Ok => "✓",
                    Outcome::Failed => "✗",
                    Outcome::Skipped => "-",
                    Outcome::Warning => "!",
                };
                format!("{mark} {name:<13} {detail}")
            }
            Event::Warning(w) => format!("! {w}"),
            Event::MigrationFailed { name, .. } => format!("✗ {name}"),
            _ => return,
        };
        self.lines.borrow_mut().push(line);
    }
}
