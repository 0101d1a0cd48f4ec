//! Step 6: what a dry run shows for each pending migration — its SQL, the lint's findings
//! (one per clause, with stable codes, the lock, the rewrite and a safer alternative),
//! whether it is atomic, and an estimated duration from the live table sizes. The approval
//! summary and `dbdeploy lint` show the same findings.

use serde::Serialize;

use crate::engine::Dialect;
use crate::lint::{AllowedBy, Facts, Finding, Level, Silenced};
use crate::migration::{Migration, TxMode};
use crate::settings::{EnvSettings, LintSettings};

/// How long each migration's statements wait for a lock another session holds, for the
/// preview and the approval summary: `DDL lock wait: 5 s, 3 retries`.
#[must_use]
pub fn ddl_lock_line(env: &EnvSettings) -> String {
    match env.target.dialect() {
        Dialect::Sqlite => {
            "DDL lock wait: not needed (the deploy lock holds the whole SQLite file)".into()
        }
        _ => format!("DDL lock wait: {}", env.ddl_lock),
    }
}

/// The preview of one pending migration.
#[derive(Debug, Clone, Serialize)]
pub struct MigrationPreview {
    /// Its name.
    pub name: String,
    /// Its script file, as shown to users.
    pub file: String,
    /// The script.
    pub sql: String,
    /// Estimated duration from the live table sizes; a lower bound when
    /// `estimate_is_lower_bound` (a table's size could not be read).
    pub estimated_duration_seconds: f64,
    /// True when a table's size is unknown, so the estimate leaves its work out.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub estimate_is_lower_bound: bool,
    /// The lint's findings, one per clause (see `lint`).
    pub risks: Vec<Finding>,
    /// Findings silenced by `[lint] allow` or a `-- dbdeploy:allow` comment, with the reason.
    pub allowed: Vec<Silenced>,
    /// Statements the SQL parser could not read (only keyword rules looked at them).
    pub unparsed_statements: Vec<usize>,
    /// Runs in one transaction.
    pub atomic: bool,
    /// Why not, when not.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub transaction_note: String,
}

impl MigrationPreview {
    /// Its lines in an approval summary: the name, the estimate (when `estimate`) and whether
    /// it is atomic, then one line per finding and per allowed finding, with its reason.
    #[must_use]
    pub fn summary_lines(&self, estimate: bool) -> Vec<String> {
        let atomic = if self.atomic { "atomic" } else { "NOT atomic" };
        let estimate = if estimate {
            let bound = if self.estimate_is_lower_bound {
                ">"
            } else {
                "~"
            };
            format!("{bound}{:.1} s, ", self.estimated_duration_seconds)
        } else {
            String::new()
        };
        let mut lines = vec![format!("{} ({estimate}{atomic})", self.name)];
        for f in &self.risks {
            lines.push(format!(
                "  {} [{}] line {}: {}",
                f.level, f.code, f.line, f.message
            ));
        }
        for s in &self.allowed {
            lines.push(format!(
                "  allowed [{}] line {}: {}",
                s.finding.code,
                s.finding.line,
                allowed_reason(s)
            ));
        }
        lines
    }

    /// The highest level among its findings.
    #[must_use]
    pub fn max_level(&self) -> Option<Level> {
        self.risks.iter().map(|f| f.level).max()
    }
}

/// Why a finding was let through, as people read it.
#[must_use]
pub fn allowed_reason(s: &Silenced) -> String {
    match (s.allowed_by, s.reason.as_str()) {
        (AllowedBy::Config, _) => "listed in [lint] allow".to_owned(),
        (AllowedBy::Comment, "") => "-- dbdeploy:allow (no reason given)".to_owned(),
        (AllowedBy::Comment, reason) => format!("-- dbdeploy:allow: {reason}"),
    }
}

/// Builds the preview of a migration from the lint's report on its script, against what
/// `facts` knows of the live database.
#[must_use]
pub fn preview(
    m: &Migration,
    dialect: Dialect,
    transactional_ddl: bool,
    facts: &Facts,
    lint: &LintSettings,
) -> MigrationPreview {
    let report = crate::lint::check(&m.sql, dialect, facts, &lint.allow);
    let known: f64 = report
        .statements
        .iter()
        .filter_map(|s| s.estimated_seconds)
        .sum();
    let (atomic, note) = match (m.transaction(), transactional_ddl) {
        (_, false) => (
            false,
            "MySQL/MariaDB commit DDL immediately; a failure leaves earlier statements applied"
                .to_owned(),
        ),
        (TxMode::Wrapped, true) => (true, String::new()),
        (TxMode::NoTransaction { reason }, true) => (
            false,
            format!("runs statement by statement outside a transaction ({reason})"),
        ),
        (TxMode::OwnTransaction, true) => (
            false,
            "manages its own transaction (BEGIN/COMMIT in the file)".to_owned(),
        ),
    };
    MigrationPreview {
        name: m.name.clone(),
        file: m.path.display().to_string(),
        sql: m.sql.clone(),
        estimated_duration_seconds: (known * 1000.0).round() / 1000.0,
        estimate_is_lower_bound: report.estimated_seconds().is_none(),
        unparsed_statements: report
            .statements
            .iter()
            .filter(|s| !s.parsed)
            .map(|s| s.statement)
            .collect(),
        risks: report.findings,
        allowed: report.silenced,
        atomic,
        transaction_note: note,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lint::{Rows, TableFacts};

    fn m(sql: &str) -> Migration {
        Migration {
            name: "m".into(),
            path: "m".into(),
            sql: sql.into(),
            checksum: String::new(),
            tx: crate::migration::Tx::from_script(Dialect::Postgres, None),
            tool_data: None,
            down: None,
        }
    }

    #[test]
    fn findings_and_allowed_ones_come_from_the_lint() {
        let p = preview(
            &m("DROP TABLE \"User\";\nALTER TABLE \"Post\" DROP COLUMN \"x\", DROP COLUMN y;\n"),
            Dialect::Postgres,
            true,
            &Facts::default(),
            &LintSettings {
                allow: vec!["drop-table".into()],
                ..LintSettings::default()
            },
        );
        let codes: Vec<_> = p.risks.iter().map(|r| (r.code, r.line)).collect();
        assert_eq!(codes, [("drop-column", 2), ("drop-column", 2)]);
        assert_eq!(p.allowed[0].finding.code, "drop-table");
        let lines = p.summary_lines(true);
        assert_eq!(lines.len(), 4, "{lines:?}");
        assert!(lines[3].contains("listed in [lint] allow"), "{lines:?}");
    }

    #[test]
    fn index_estimate_grows_with_the_live_table_size() {
        let facts = Facts {
            server: None,
            tables: Some(
                [(
                    "Post".to_owned(),
                    TableFacts {
                        rows: Rows::Exact(2_000_000),
                        ..TableFacts::default()
                    },
                )]
                .into(),
            ),
        };
        let p = preview(
            &m("CREATE INDEX \"i\" ON \"Post\"(\"title\");"),
            Dialect::Postgres,
            true,
            &facts,
            &LintSettings::default(),
        );
        assert!(
            p.estimated_duration_seconds > 5.0,
            "{}",
            p.estimated_duration_seconds
        );
        assert_eq!(p.risks[0].code, "create-index");
        assert_eq!(p.max_level(), Some(Level::Medium));
    }

    #[test]
    fn concurrently_is_not_atomic() {
        let p = preview(
            &m("CREATE INDEX CONCURRENTLY i ON t(a);"),
            Dialect::Postgres,
            true,
            &Facts::default(),
            &LintSettings::default(),
        );
        assert!(!p.atomic);
    }
}
