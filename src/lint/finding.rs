//! The linter's output: findings with a stable code and level, the findings a person
//! silenced (kept, with their reason, for the approval summary and the log), and what was
//! read of each statement. Serialized as JSON by the commands that show them.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

/// How much a finding matters, in the seed's mapping: high for dropping columns, tables or
/// indexes, changing column types and long locks on large tables; medium for NOT NULL
/// columns, unique constraints and write-blocking index builds on large tables; low for
/// nullable columns, new tables and indexes on small tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Worth knowing.
    Low,
    /// Needs a look before deploying.
    Medium,
    /// Loses data, fails, or blocks a large table.
    High,
}

impl Level {
    /// `low`, `medium` or `high`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Low => "low",
            Level::Medium => "medium",
            Level::High => "high",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error for a level name that is not `low`, `medium` or `high`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown lint level `{0}` (expected low, medium or high)")]
pub struct UnknownLevel(pub String);

impl FromStr for Level {
    type Err = UnknownLevel;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "low" => Ok(Level::Low),
            "medium" => Ok(Level::Medium),
            "high" => Ok(Level::High),
            _ => Err(UnknownLevel(s.to_owned())),
        }
    }
}

/// What other sessions cannot do on the table while the statement holds its lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Blocks {
    /// Reads and writes go on (other schema changes wait).
    Nothing,
    /// Reads go on, writes wait.
    Writes,
    /// Reads and writes wait.
    ReadsAndWrites,
}

impl Blocks {
    /// `nothing`, `writes` or `reads and writes`.
    #[must_use]
    pub fn describe(self) -> &'static str {
        match self {
            Blocks::Nothing => "nothing",
            Blocks::Writes => "writes",
            Blocks::ReadsAndWrites => "reads and writes",
        }
    }
}

/// One risk in one clause of one statement.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    /// A stable code (`adding-required-field`, `drop-column`, ...).
    pub code: &'static str,
    /// How much it matters.
    pub level: Level,
    /// What happens, in one sentence naming the table and its size.
    pub message: String,
    /// The 1-based line in the file of the clause (of the statement when unknown).
    pub line: usize,
    /// The 1-based position of the statement in the file.
    pub statement: usize,
    /// The table it works on, when there is one.
    pub table: Option<String>,
    /// The lock it takes (`ACCESS EXCLUSIVE`, `ALGORITHM=COPY, LOCK=SHARED`, ...).
    pub lock: Option<String>,
    /// What that lock blocks while it is held.
    pub blocks: Blocks,
    /// Whether the table (or its indexes) is rewritten.
    pub rewrites: bool,
    /// Whether every row is read.
    pub scans: bool,
    /// Estimated seconds from the live size of the table; `None` when the size is unknown.
    pub estimated_seconds: Option<f64>,
    /// A concrete safer alternative.
    pub suggestion: String,
    /// False when the statement could not be parsed and the finding comes from keyword
    /// matching (PL/pgSQL bodies, syntax the parser does not know).
    pub parsed: bool,
}

/// Who silenced a finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AllowedBy {
    /// `[lint] allow = [...]` in the configuration.
    Config,
    /// A `-- dbdeploy:allow CODE reason` comment at the statement.
    Comment,
}

/// A finding a person silenced, kept with their reason.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Silenced {
    /// The finding.
    #[serde(flatten)]
    pub finding: Finding,
    /// Where it was silenced.
    pub allowed_by: AllowedBy,
    /// The reason given (empty when none was written).
    pub reason: String,
}

/// What was read of one statement.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatementInfo {
    /// Its 1-based position in the file.
    pub statement: usize,
    /// Its first line.
    pub line: usize,
    /// Whether the SQL parser read it; when not, only keyword rules looked at it.
    pub parsed: bool,
    /// The parser's complaint when it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parse_error: Option<String>,
    /// Estimated seconds for the whole statement; `None` when a table's size is unknown.
    pub estimated_seconds: Option<f64>,
}

/// Everything the linter says about one script.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Report {
    /// Findings in script order, silenced ones left out.
    pub findings: Vec<Finding>,
    /// Findings silenced by the configuration or a comment, with the reason.
    pub silenced: Vec<Silenced>,
    /// Each statement, in order.
    pub statements: Vec<StatementInfo>,
}

impl Report {
    /// The highest level among the findings that were not silenced.
    #[must_use]
    pub fn max_level(&self) -> Option<Level> {
        self.findings.iter().map(|f| f.level).max()
    }

    /// The findings at or above `level`.
    pub fn at_least(&self, level: Level) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(move |f| f.level >= level)
    }

    /// Estimated seconds for the script: the sum over its statements; `None` when a
    /// statement's table size is unknown.
    #[must_use]
    pub fn estimated_seconds(&self) -> Option<f64> {
        let total: Option<f64> = self.statements.iter().map(|s| s.estimated_seconds).sum();
        total.map(|t| (t * 1000.0).round() / 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_order_parse_and_print() {
        assert!(Level::High > Level::Medium && Level::Medium > Level::Low);
        assert_eq!("HIGH".parse::<Level>(), Ok(Level::High));
        assert!("none".parse::<Level>().is_err());
        assert_eq!(Level::Medium.to_string(), "medium");
        assert_eq!(
            serde_json::to_string(&Blocks::ReadsAndWrites).unwrap(),
            "\"reads-and-writes\""
        );
    }
}
