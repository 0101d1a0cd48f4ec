//! Step 6: what a dry run shows for each pending migration — its SQL, risk findings with
//! stable codes, whether it is atomic, and an estimated duration from table sizes.

use std::collections::HashMap;

use serde::Serialize;

use crate::engine::Dialect;
use crate::migration::{Migration, TxMode};
use crate::settings::EnvSettings;
use crate::sql::split;

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

/// One finding about a statement.
#[derive(Debug, Clone, Serialize)]
pub struct Risk {
    /// A stable code (`destructive/drop-table`, ...).
    pub code: &'static str,
    /// `high`, `medium` or `low`.
    pub level: &'static str,
    /// What it means for this statement.
    pub message: String,
    /// The line in the file.
    pub line: usize,
}

/// The preview of one pending migration.
#[derive(Debug, Clone, Serialize)]
pub struct MigrationPreview {
    /// Its name.
    pub name: String,
    /// The script.
    pub sql: String,
    /// Estimated duration.
    pub estimated_duration_seconds: f64,
    /// Findings.
    pub risks: Vec<Risk>,
    /// Runs in one transaction.
    pub atomic: bool,
    /// Why not, when not.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub transaction_note: String,
}

impl MigrationPreview {
    /// Its line in an approval summary: the name, the estimate (when `estimate`), whether it
    /// is atomic, and its risk codes.
    #[must_use]
    pub fn summary_line(&self, estimate: bool) -> String {
        let atomic = if self.atomic { "atomic" } else { "NOT atomic" };
        let estimate = if estimate {
            format!("~{:.1} s, ", self.estimated_duration_seconds)
        } else {
            String::new()
        };
        let risks = if self.risks.is_empty() {
            String::new()
        } else {
            let codes: Vec<&str> = self.risks.iter().map(|r| r.code).collect();
            format!(", risks: {}", codes.join(", "))
        };
        format!("{} ({estimate}{atomic}{risks})", self.name)
    }
}

/// Rows per second assumed for statements that rewrite or scan a table.
const ROWS_PER_SECOND: f64 = 200_000.0;
/// Time assumed for any statement, whatever it touches.
const STATEMENT_SECONDS: f64 = 0.005;

/// Builds the preview of a migration; `rows` maps table names to approximate row counts.
#[must_use]
pub fn preview(
    m: &Migration,
    dialect: Dialect,
    transactional_ddl: bool,
    rows: &HashMap<String, u64>,
) -> MigrationPreview {
    let mut risks = Vec::new();
    let mut seconds = 0.0;
    let statements = split::split(&m.sql, dialect);
    let redefined = redefined_tables(&statements);
    for stmt in statements {
        let n = split::normalized(stmt.text).to_ascii_uppercase();
        let table_rows = referenced_table(&n)
            .and_then(|t| rows.get(&t).copied())
            .unwrap_or(0);
        #[allow(clippy::cast_precision_loss)]
        let scan = table_rows as f64 / ROWS_PER_SECOND;
        seconds += STATEMENT_SECONDS;
        let mut add = |code, level, message: String| {
            risks.push(Risk {
                code,
                level,
                message,
                line: stmt.line,
            });
        };
        if n.starts_with("DROP TABLE") && redefined.iter().any(|t| n.ends_with(t.as_str())) {
            add(
                "schema/table-redefinition",
                "low",
                "rebuilds the table: its rows were copied into the new table first".into(),
            );
            seconds += scan;
        } else if n.starts_with("DROP TABLE") {
            add(
                "destructive/drop-table",
                "high",
                format!("drops a table and all its rows ({table_rows} rows)"),
            );
        } else if n.starts_with("DROP SCHEMA") || n.starts_with("DROP DATABASE") {
            add(
                "destructive/drop-schema",
                "high",
                "drops a schema and everything in it".into(),
            );
        } else if n.starts_with("TRUNCATE") {
            add(
                "destructive/truncate",
                "high",
                format!("deletes every row ({table_rows} rows)"),
            );
        } else if n.starts_with("ALTER TABLE") && n.contains(" DROP COLUMN") {
            add(
                "destructive/drop-column",
                "high",
                "drops a column and its data".into(),
            );
            seconds += scan;
        } else if (n.starts_with("DELETE FROM") || n.starts_with("UPDATE "))
            && !n.contains(" WHERE ")
        {
            add(
                "data/unbounded-write",
                "medium",
                format!("changes every row of the table ({table_rows} rows)"),
            );
            seconds += scan;
        } else if n.starts_with("ALTER TABLE")
            && (n.contains(" TYPE ") || n.contains(" MODIFY ") || n.contains(" CHANGE "))
        {
            add(
                "data/column-type-change",
                "medium",
                "changes a column type: may rewrite the table and fail on existing data".into(),
            );
            seconds += scan;
        } else if n.starts_with("ALTER TABLE") && n.contains(" SET NOT NULL") {
            add(
                "data/set-not-null",
                "medium",
                "fails if any existing row holds NULL".into(),
            );
            seconds += scan;
        } else if n.starts_with("ALTER TABLE")
            && n.contains(" ADD COLUMN")
            && n.contains(" NOT NULL")
            && !n.contains(" DEFAULT ")
            && table_rows > 0
        {
            add(
                "data/not-null-without-default",
                "high",
                format!(
                    "adds a NOT NULL column without a default to a table with {table_rows} rows: fails"
                ),
            );
        } else if n.starts_with("ALTER TABLE")
            && n.contains(" RENAME ")
            && !redefined.iter().any(|t| n.ends_with(t.as_str()))
        {
            add(
                "compat/rename",
                "medium",
                "renames: the running application may still use the old name".into(),
            );
        } else if (n.starts_with("CREATE INDEX") || n.starts_with("CREATE UNIQUE INDEX"))
            && !n.contains(" CONCURRENTLY ")
        {
            seconds += scan;
            if dialect == Dialect::Postgres && table_rows > 100_000 {
                add(
                    "lock/index-blocks-writes",
                    "medium",
                    format!(
                        "builds an index on {table_rows} rows while blocking writes; consider CREATE INDEX CONCURRENTLY"
                    ),
                );
            }
        } else if (n.starts_with("CREATE") && n.contains(" INDEX "))
            || (n.starts_with("INSERT INTO") && n.contains(" SELECT "))
        {
            seconds += scan;
        }
    }
    let (atomic, note) = match (&m.transaction, transactional_ddl) {
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
        sql: m.sql.clone(),
        estimated_duration_seconds: (seconds * 1000.0).round() / 1000.0,
        risks,
        atomic,
        transaction_note: note,
    }
}

/// Tables a script rebuilds the way Prisma does on SQLite: rows are copied into `new_X`, `X`
/// is dropped and `new_X` renamed to `X`. Returned as the uppercased quoted name, `"X"`.
fn redefined_tables(statements: &[split::Statement<'_>]) -> Vec<String> {
    statements
        .iter()
        .filter_map(|s| {
            let n = split::normalized(s.text).to_ascii_uppercase();
            let (from, to) = n.strip_prefix("ALTER TABLE ")?.split_once(" RENAME TO ")?;
            let unquote = |x: &str| x.trim_matches(|c| c == '"' || c == '`').to_owned();
            (unquote(from) == format!("NEW_{}", unquote(to)))
                .then(|| format!("\"{}\"", unquote(to)))
        })
        .collect()
}

/// The table a normalized (uppercased) statement works on, unquoted and lowercased for lookup.
fn referenced_table(n: &str) -> Option<String> {
    let words: Vec<&str> = n.split_whitespace().collect();
    let after = |kw: &str| {
        let i = words.iter().position(|w| *w == kw)?;
        words[i + 1..]
            .iter()
            .find(|w| !matches!(**w, "IF" | "NOT" | "EXISTS" | "ONLY"))
            .copied()
    };
    let raw = after("TABLE")
        .or_else(|| after("ON"))
        .or_else(|| after("FROM"))
        .or_else(|| after("UPDATE"))?;
    let raw = raw.split('(').next().unwrap_or(raw);
    let name = raw.rsplit('.').next().unwrap_or(raw);
    Some(
        name.trim_matches(|c| c == '"' || c == '`' || c == '[' || c == ']' || c == ';')
            .to_ascii_lowercase(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(sql: &str) -> Migration {
        Migration {
            name: "m".into(),
            path: "m".into(),
            sql: sql.into(),
            checksum: String::new(),
            transaction: TxMode::analyze(sql, Dialect::Postgres, None),
            tool_data: None,
            down: None,
        }
    }

    #[test]
    fn flags_destructive_statements_with_stable_codes() {
        let p = preview(
            &m("DROP TABLE \"User\";\nALTER TABLE \"Post\" DROP COLUMN \"x\";\n"),
            Dialect::Postgres,
            true,
            &HashMap::new(),
        );
        let codes: Vec<_> = p.risks.iter().map(|r| r.code).collect();
        assert_eq!(codes, ["destructive/drop-table", "destructive/drop-column"]);
        assert_eq!(p.risks[1].line, 2);
    }

    #[test]
    fn prisma_table_redefinition_is_not_reported_as_data_loss() {
        let sql = "CREATE TABLE \"new_Post\" (id INTEGER);\nINSERT INTO \"new_Post\" SELECT id FROM \"Post\";\nDROP TABLE \"Post\";\nALTER TABLE \"new_Post\" RENAME TO \"Post\";\n";
        let p = preview(&m(sql), Dialect::Sqlite, true, &HashMap::new());
        let codes: Vec<_> = p.risks.iter().map(|r| r.code).collect();
        assert_eq!(codes, ["schema/table-redefinition"]);
    }

    #[test]
    fn index_estimate_grows_with_table_size() {
        let rows = HashMap::from([("post".to_owned(), 2_000_000)]);
        let p = preview(
            &m("CREATE INDEX \"i\" ON \"Post\"(\"title\");"),
            Dialect::Postgres,
            true,
            &rows,
        );
        assert!(
            p.estimated_duration_seconds > 5.0,
            "{}",
            p.estimated_duration_seconds
        );
        assert_eq!(p.risks[0].code, "lock/index-blocks-writes");
    }

    #[test]
    fn concurrently_is_not_atomic() {
        let p = preview(
            &m("CREATE INDEX CONCURRENTLY i ON t(a);"),
            Dialect::Postgres,
            true,
            &HashMap::new(),
        );
        assert!(!p.atomic);
        let p = preview(
            &m("CREATE TABLE t (a int);"),
            Dialect::MySql,
            false,
            &HashMap::new(),
        );
        assert!(!p.atomic);
    }
}
