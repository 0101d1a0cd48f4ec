//! Migrations as dbdeploy sees them, whatever tool wrote them, and their tracking rows.

use std::path::PathBuf;

use crate::engine::Dialect;
use crate::sql::split;

/// One migration found on disk.
#[derive(Debug, Clone)]
pub struct Migration {
    /// The identity the authoring tool tracks it by (Prisma: the folder name).
    pub name: String,
    /// The script file, as shown to users.
    pub path: PathBuf,
    /// The up script, exactly as on disk.
    pub sql: String,
    /// The checksum the tool records, in the tool's textual form.
    pub checksum: String,
    /// How it can be wrapped in a transaction.
    pub transaction: TxMode,
    /// The down script (reverting this migration), when the format keeps one: a sqlx or
    /// golang-migrate `.down.sql` file, or dbmate's `-- migrate:down` section.
    pub down: Option<String>,
}

/// Whether a migration can run inside dbdeploy's per-migration transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxMode {
    /// The script and its tracking-table row commit or roll back together.
    Wrapped,
    /// Runs statement by statement outside a transaction; a failure leaves what ran in place.
    NoTransaction {
        /// Why (a statement PostgreSQL refuses in a transaction, an opt-out comment, ...).
        reason: String,
    },
    /// The script has its own `BEGIN`/`COMMIT`; it runs as written.
    OwnTransaction,
}

impl TxMode {
    /// Decides the mode from the script text and an explicit opt-out by the format.
    #[must_use]
    pub fn analyze(sql: &str, dialect: Dialect, opt_out: Option<String>) -> Self {
        if let Some(reason) = opt_out {
            return TxMode::NoTransaction { reason };
        }
        let statements = split::split(sql, dialect);
        if let Some(reason) = statements
            .iter()
            .find_map(|s| split::non_transactional_reason(s.text, dialect))
        {
            return TxMode::NoTransaction {
                reason: reason.to_owned(),
            };
        }
        if statements
            .iter()
            .any(|s| split::is_transaction_control(s.text))
        {
            return TxMode::OwnTransaction;
        }
        TxMode::Wrapped
    }
}

/// Every migration of a project, in the order they apply.
#[derive(Debug, Clone, Default)]
pub struct MigrationSet {
    /// The migrations folder.
    pub dir: PathBuf,
    /// Sorted migrations.
    pub migrations: Vec<Migration>,
    /// Things worth telling the user that do not stop a deploy (e.g. no provider lock file).
    pub warnings: Vec<String>,
}

/// The state of one row of the tool's tracking table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordState {
    /// Finished successfully and not rolled back.
    Applied,
    /// Started and never finished nor rolled back: blocks further deploys.
    Failed,
    /// Marked rolled back (`resolve --rolled-back`): as if it never ran.
    RolledBack,
}

/// One row of the tool's tracking table, in tool-independent form.
#[derive(Debug, Clone)]
pub struct AppliedRecord {
    /// The migration identity.
    pub name: String,
    /// The recorded checksum, when the format keeps one.
    pub checksum: Option<String>,
    /// Applied, failed or rolled back.
    pub state: RecordState,
    /// When it started, as text.
    pub started_at: Option<String>,
    /// When it finished, as text.
    pub finished_at: Option<String>,
    /// The error text recorded for a failure.
    pub logs: Option<String>,
}
