//! What the rules share while walking a script: the facts, what earlier statements of the
//! same script did (tables it created, checks it validated), and the findings so far. Rules
//! describe a risk as a `Hit`; the context turns it into a `Finding` with the statement's
//! position and an estimate from the table's live size.

use std::collections::{HashMap, HashSet};

use sqlparser::ast::{ObjectName, Spanned};

use super::facts::{self, Facts, Product, Size, TableFacts, TableSize, Work};
use super::finding::{Blocks, Finding, Level};
use super::rebuild::Rebuilds;
use crate::engine::Dialect;

/// A table as a statement names it, with what is known of its size.
#[derive(Debug, Clone)]
pub(crate) struct Table<'a> {
    /// The name as written, unquoted (`User`, `app.users`).
    pub name: String,
    /// The lowercased last part, for matching within the script.
    pub key: String,
    /// Its size at this point of the script.
    pub at: TableSize<'a>,
}

impl Table<'_> {
    /// True when the table is created by this script or does not exist in the live database.
    pub fn is_new(&self) -> bool {
        self.at.size == Size::New
    }

    /// The level for a risk that grows with the table: `small` below the large-table
    /// thresholds, `large` above, `unknown` when offline or without statistics.
    pub fn level(&self, small: Level, unknown: Level, large: Level) -> Level {
        match self.at.size {
            Size::New | Size::Small => small,
            Size::Unknown => unknown,
            Size::Large => large,
        }
    }

    /// The live facts of the table, when known.
    pub fn facts(&self) -> Option<&TableFacts> {
        self.at.facts
    }
}

/// A risk a rule found, before it becomes a `Finding`.
#[derive(Debug, Clone)]
pub(crate) struct Hit {
    pub code: &'static str,
    pub level: Level,
    pub message: String,
    pub suggestion: String,
    pub table: Option<String>,
    pub lock: Option<String>,
    pub blocks: Blocks,
    pub rewrites: bool,
    pub scans: bool,
    pub seconds: Option<f64>,
    /// 1-based line within the statement, when the parser knows the clause's position.
    pub line: Option<usize>,
}

impl Hit {
    /// A finding with no table, lock or work yet.
    pub fn new(code: &'static str, level: Level, message: impl Into<String>) -> Hit {
        Hit {
            code,
            level,
            message: message.into(),
            suggestion: String::new(),
            table: None,
            lock: None,
            blocks: Blocks::Nothing,
            rewrites: false,
            scans: false,
            seconds: Some(0.001),
            line: None,
        }
    }

    /// On `table`, doing `work` to its rows (which sets `rewrites`/`scans` and the estimate).
    pub fn on(mut self, table: &Table<'_>, work: Work) -> Hit {
        self.table = Some(table.name.clone());
        self.seconds = table.at.seconds(work);
        self.rewrites |= matches!(work, Work::Rewrite);
        self.scans |= matches!(
            work,
            Work::Scan | Work::IndexBuild | Work::Rewrite | Work::UpdateRows | Work::DeleteRows
        );
        self
    }

    /// Taking `lock`, which blocks `blocks` while held.
    pub fn lock(mut self, lock: impl Into<String>, blocks: Blocks) -> Hit {
        self.lock = Some(lock.into());
        self.blocks = blocks;
        self
    }

    /// The safer alternative.
    pub fn suggest(mut self, suggestion: impl Into<String>) -> Hit {
        self.suggestion = suggestion.into();
        self
    }

    /// At the identifier's line (no change when the parser did not locate it).
    pub fn at_ident(mut self, ident: &sqlparser::ast::Ident) -> Hit {
        let line = ident.span.start.line;
        if line > 0 {
            self.line = usize::try_from(line).ok();
        }
        self
    }

    /// At the clause the parser located (no change when it did not).
    pub fn at(mut self, node: &impl Spanned) -> Hit {
        let line = node.span().start.line;
        if line > 0 {
            self.line = usize::try_from(line).ok();
        }
        self
    }
}

/// What earlier statements of the script did that later ones depend on.
#[derive(Debug, Default)]
pub(crate) struct State {
    /// Tables created by the script, or emptied by it (`TRUNCATE`, `DELETE` without `WHERE`):
    /// empty from there on (lowercased).
    pub created: HashSet<String>,
    /// Columns of the tables the script created: name and type as written.
    pub columns: HashMap<String, Vec<(String, String)>>,
    /// `CHECK (col IS NOT NULL)` constraints added, by constraint name: (table, column).
    pub not_null_checks: HashMap<String, (String, String)>,
    /// (table, column) with a validated `CHECK (col IS NOT NULL)`: PostgreSQL 12+ then skips
    /// the scan of `SET NOT NULL`.
    pub validated_not_null: HashSet<(String, String)>,
    /// MySQL `SET foreign_key_checks = 0` seen: foreign keys are then added in place.
    pub foreign_key_checks_off: bool,
    /// Tables locked with `LOCK TABLE(S)` earlier in the script.
    pub locked: HashSet<String>,
    /// Indexes created by the script (lowercased).
    pub created_indexes: HashSet<String>,
}

/// The walk over one script.
pub(crate) struct Ctx<'a> {
    pub dialect: Dialect,
    pub facts: &'a Facts,
    pub state: State,
    pub rebuilds: Rebuilds,
    /// 1-based position of the current statement.
    pub statement: usize,
    /// First line of the current statement.
    pub line: usize,
    /// Whether the current statement was parsed.
    pub parsed: bool,
    pub findings: Vec<Finding>,
    /// Estimated seconds of the current statement so far.
    pub seconds: Option<f64>,
}

impl<'a> Ctx<'a> {
    pub fn new(dialect: Dialect, facts: &'a Facts, rebuilds: Rebuilds) -> Ctx<'a> {
        Ctx {
            dialect,
            facts,
            state: State::default(),
            rebuilds,
            statement: 0,
            line: 1,
            parsed: true,
            findings: Vec::new(),
            seconds: Some(0.0),
        }
    }

    /// The table `name` refers to, with its size at this point of the script.
    pub fn table(&self, name: &ObjectName) -> Table<'a> {
        let parts: Vec<String> = name
            .0
            .iter()
            .map(|p| {
                p.as_ident()
                    .map_or_else(|| p.to_string(), |i| i.value.clone())
            })
            .collect();
        let last = parts.last().cloned().unwrap_or_default();
        // PostgreSQL folds unquoted names to lowercase; the catalog holds that spelling.
        let folded = match name.0.last().and_then(|p| p.as_ident()) {
            Some(i) if i.quote_style.is_none() && self.dialect == Dialect::Postgres => {
                last.to_lowercase()
            }
            _ => last.clone(),
        };
        let qualified = (parts.len() > 1).then(|| parts.join("."));
        self.table_named(&parts.join("."), &folded, qualified.as_deref(), true)
    }

    /// A table by plain name (from keyword matching or an index's owner).
    pub fn table_str(&self, name: &str) -> Table<'a> {
        let name = name.trim_matches(|c| matches!(c, '"' | '`' | '[' | ']'));
        let last = name.rsplit('.').next().unwrap_or(name);
        let qualified = name.contains('.').then_some(name);
        self.table_named(name, last, qualified, true)
    }

    /// A table by plain name as the live database has it, whatever the script did to it so
    /// far (a rebuild re-creates a table under its old name).
    pub fn live_table_str(&self, name: &str) -> Table<'a> {
        let last = name.rsplit('.').next().unwrap_or(name);
        let qualified = name.contains('.').then_some(name);
        self.table_named(name, last, qualified, false)
    }

    fn table_named(
        &self,
        display: &str,
        last: &str,
        qualified: Option<&str>,
        script: bool,
    ) -> Table<'a> {
        let key = last.to_lowercase();
        let at = if script && self.state.created.contains(&key) {
            TableSize {
                size: Size::New,
                facts: None,
            }
        } else {
            match &self.facts.tables {
                None => TableSize {
                    size: Size::Unknown,
                    facts: None,
                },
                Some(tables) => {
                    let found = qualified
                        .and_then(|q| tables.get(q))
                        .or_else(|| tables.get(last))
                        .or_else(|| {
                            tables
                                .iter()
                                .find(|(k, _)| {
                                    k.rsplit('.').next().unwrap_or(k).to_lowercase() == key
                                })
                                .map(|(_, v)| v)
                        });
                    match found {
                        Some(f) => TableSize {
                            size: facts::classify(f),
                            facts: Some(f),
                        },
                        None => TableSize {
                            size: Size::New,
                            facts: None,
                        },
                    }
                }
            }
        };
        Table {
            name: display.to_owned(),
            key,
            at,
        }
    }

    /// The live table owning index `index`, when the facts know it.
    pub fn index_owner(&self, index: &str) -> Option<Table<'a>> {
        let tables = self.facts.tables.as_ref()?;
        let index = index.rsplit('.').next().unwrap_or(index);
        let (name, _) = tables
            .iter()
            .find(|(_, t)| t.indexes.iter().any(|i| i.eq_ignore_ascii_case(index)))?;
        Some(self.table_str(name))
    }

    /// True unless the server is known to be PostgreSQL older than `major`.
    pub fn pg_at_least(&self, major: u32) -> bool {
        self.facts
            .server
            .is_none_or(|s| s.product != Product::Postgres || s.version.0 >= major)
    }

    /// Records a finding of the current statement.
    pub fn emit(&mut self, hit: Hit) {
        self.add_seconds(hit.seconds);
        let line = hit.line.map_or(self.line, |l| self.line + l - 1);
        self.findings.push(Finding {
            code: hit.code,
            level: hit.level,
            message: hit.message,
            line,
            statement: self.statement,
            table: hit.table,
            lock: hit.lock,
            blocks: hit.blocks,
            rewrites: hit.rewrites,
            scans: hit.scans,
            estimated_seconds: hit.seconds,
            suggestion: hit.suggestion,
            parsed: self.parsed,
        });
    }

    /// Counts work the statement does that is not a risk (a concurrent index build, a copy).
    pub fn work(&mut self, table: &Table<'_>, work: Work) {
        self.add_seconds(table.at.seconds(work));
    }

    fn add_seconds(&mut self, s: Option<f64>) {
        self.seconds = match (self.seconds, s) {
            (Some(a), Some(b)) => Some(a + b),
            _ => None,
        };
    }
}
