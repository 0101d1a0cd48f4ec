//! What a command works on. Most commands read a migrations folder through the format's
//! [`Handler`] and keep the tool's tracking table; a backup or a restore needs only that table
//! (they must work when the folder is broken); an external tool (`migration_tool = "command"`)
//! applies its own migrations and keeps its own history, which dbdeploy never reads.
//! Resolving the source once, up front, is what lets the pipeline be written once.

use crate::handler::Handler;
use crate::migration::MigrationSet;
use crate::settings::ExternalTool;

/// What a run works on.
pub enum Source {
    /// A migrations folder that dbdeploy reads and applies, writing the tool's tracking table.
    Files {
        /// The format.
        handler: &'static dyn Handler,
        /// The validated migrations.
        set: MigrationSet,
    },
    /// Only the format's tracking table (backups and restores need no migrations folder).
    Tracking(&'static dyn Handler),
    /// A tool that applies its own migrations.
    External(ExternalTool),
}

impl Source {
    /// The format whose tracking table is read; `None` for an external tool.
    #[must_use]
    pub fn handler(&self) -> Option<&'static dyn Handler> {
        match self {
            Source::Files { handler, .. } | Source::Tracking(handler) => Some(*handler),
            Source::External(_) => None,
        }
    }

    /// The migrations on disk, when they were loaded.
    #[must_use]
    pub fn set(&self) -> Option<&MigrationSet> {
        match self {
            Source::Files { set, .. } => Some(set),
            _ => None,
        }
    }

    /// The migration a user named on the command line: a file name is accepted for the
    /// migration it holds; anything else is kept as written for the step that checks it.
    #[must_use]
    pub fn migration_named(&self, name: String) -> String {
        match self.set().and_then(|set| set.find(&name)) {
            Some(m) => m.name.clone(),
            None => name,
        }
    }

    /// The tool's name as written in `migration_tool`.
    #[must_use]
    pub fn tool_name(&self) -> &'static str {
        match self.handler() {
            Some(h) => h.name(),
            None => crate::external::NAME,
        }
    }
}
