//! Migrations as dbdeploy sees them, whatever tool wrote them, and their tracking rows.

use std::path::{Path, PathBuf};

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
    /// How it can be wrapped in a transaction: [`Migration::transaction`].
    pub tx: Tx,
    /// Format-specific data the handler attaches at load time and reads back when it writes
    /// the tracking row (Flyway: the script path relative to the folder; drizzle: the
    /// journal's `when`). `None` for formats that need nothing beyond the fields above.
    pub tool_data: Option<String>,
    /// The down script (reverting this migration), when the format keeps one: a sqlx or
    /// golang-migrate `.down.sql` file, or dbmate's `-- migrate:down` section.
    pub down: Option<String>,
}

impl Migration {
    /// A migration without format data or a down script; [`Migration::with_tool_data`] and
    /// [`Migration::with_down`] add those. The script comes last, so that the checksum and the
    /// transaction mode can be worked out from it in the same call.
    #[must_use]
    pub fn new(
        name: impl Into<String>,
        path: impl Into<PathBuf>,
        checksum: String,
        tx: impl Into<Tx>,
        sql: String,
    ) -> Self {
        Self {
            name: name.into(),
            path: path.into(),
            sql,
            checksum,
            tx: tx.into(),
            tool_data: None,
            down: None,
        }
    }

    /// How the migration can run inside a transaction, decided from its script the first time
    /// it is asked: only pending migrations are ever asked, and at 10,000 applied ones
    /// splitting every script into statements was a tenth of a `status` run.
    #[must_use]
    pub fn transaction(&self) -> &TxMode {
        match &self.tx {
            Tx::Given(mode) => mode,
            Tx::FromScript {
                dialect,
                opt_out,
                mode,
            } => mode.get_or_init(|| TxMode::analyze(&self.sql, *dialect, opt_out.clone())),
        }
    }

    /// The same migration with the format's own data attached.
    #[must_use]
    pub fn with_tool_data(self, tool_data: String) -> Self {
        Self {
            tool_data: Some(tool_data),
            ..self
        }
    }

    /// The same migration with its down script, when it has one.
    #[must_use]
    pub fn with_down(self, down: Option<String>) -> Self {
        Self { down, ..self }
    }
}

/// How a migration's [`TxMode`] is found: given, or from its script and the format's opt-out
/// when first asked.
#[derive(Debug, Clone)]
pub enum Tx {
    /// Known up front (a down script's, a test's).
    Given(TxMode),
    /// Decided by [`TxMode::analyze`] on first use.
    FromScript {
        dialect: Dialect,
        opt_out: Option<String>,
        mode: std::sync::OnceLock<TxMode>,
    },
}

impl Tx {
    /// Decided from the script by [`TxMode::analyze`] when first asked.
    #[must_use]
    pub fn from_script(dialect: Dialect, opt_out: Option<String>) -> Self {
        Self::FromScript {
            dialect,
            opt_out,
            mode: std::sync::OnceLock::new(),
        }
    }
}

impl From<TxMode> for Tx {
    fn from(mode: TxMode) -> Self {
        Self::Given(mode)
    }
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
    ///
    /// A script with its own `BEGIN`/`COMMIT` runs as written even when the format opts out
    /// (sqlx `-- no-transaction`, dbmate `transaction:false`): the tools run it as one script
    /// too, and splitting it would leave its transaction open after a failed statement.
    #[must_use]
    pub fn analyze(sql: &str, dialect: Dialect, opt_out: Option<String>) -> Self {
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
        match opt_out {
            Some(reason) => TxMode::NoTransaction { reason },
            None => TxMode::Wrapped,
        }
    }
}

/// History records as a handler reads them: borrowed from the tracking table's read where the
/// format keeps one row per migration under its name (most do), owned where the handler had to
/// rewrite them. A plan at 10,000 migrations then copies nothing.
pub type Records<'r> = std::borrow::Cow<'r, [AppliedRecord]>;

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

impl MigrationSet {
    /// The migrations of the folder `dir`, in the order they apply.
    #[must_use]
    pub fn new(dir: &Path, migrations: Vec<Migration>, warnings: Vec<String>) -> Self {
        Self {
            dir: dir.to_owned(),
            migrations,
            warnings,
        }
    }

    /// The migration a user means: by its name, or by its file name with or without the
    /// extension (`1_users.sql`, `1_users.up.sql`, `1_users`), since version-keyed formats
    /// name migrations by number.
    #[must_use]
    pub fn find(&self, key: &str) -> Option<&Migration> {
        self.migrations.iter().find(|m| m.name == key).or_else(|| {
            self.migrations.iter().find(|m| {
                // Prisma's files are all `migration.sql`: there the folder is the name.
                let named_by_file = !m.path.iter().any(|part| part == m.name.as_str());
                named_by_file
                    && m.path
                        .file_name()
                        .and_then(|f| f.to_str())
                        .is_some_and(|f| {
                            f == key
                                || [".up.sql", ".sql"]
                                    .iter()
                                    .any(|ext| f.strip_suffix(ext) == Some(key))
                        })
            })
        })
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_found_by_name_or_file_name() {
        let m = |name: &str, path: &str| {
            Migration::new(name, path, String::new(), TxMode::Wrapped, String::new())
        };
        let set = MigrationSet::new(
            Path::new("m"),
            vec![m("1", "m/1_users.sql"), m("2", "m/2_posts.up.sql")],
            Vec::new(),
        );
        for key in ["1", "1_users.sql", "1_users"] {
            assert_eq!(set.find(key).map(|m| m.name.as_str()), Some("1"), "{key}");
        }
        for key in ["2", "2_posts.up.sql", "2_posts"] {
            assert_eq!(set.find(key).map(|m| m.name.as_str()), Some("2"), "{key}");
        }
        assert!(set.find("3").is_none());
        assert!(set.find("users").is_none());
        let prisma = MigrationSet::new(
            Path::new("m"),
            vec![m("20240101_init", "m/20240101_init/migration.sql")],
            Vec::new(),
        );
        assert!(prisma.find("migration.sql").is_none());
        assert!(prisma.find("20240101_init").is_some());
    }

    #[test]
    fn an_opt_out_runs_outside_the_transaction_unless_the_script_has_its_own() {
        let opt_out = || Some("opted out".to_owned());
        assert_eq!(
            TxMode::analyze("UPDATE a SET b = 1;", Dialect::Postgres, opt_out()),
            TxMode::NoTransaction {
                reason: "opted out".into()
            }
        );
        assert_eq!(
            TxMode::analyze(
                "BEGIN;\nUPDATE a SET b = 1;\nCOMMIT;",
                Dialect::Sqlite,
                opt_out()
            ),
            TxMode::OwnTransaction
        );
        assert_eq!(
            TxMode::analyze("UPDATE a SET b = 1;", Dialect::MySql, None),
            TxMode::Wrapped
        );
        assert!(matches!(
            TxMode::analyze(
                "CREATE INDEX CONCURRENTLY i ON a (b);",
                Dialect::Postgres,
                opt_out()
            ),
            TxMode::NoTransaction { reason } if reason != "opted out"
        ));
    }
}
