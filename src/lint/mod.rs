//! Risk lint for migration scripts: parses each statement with a real SQL parser and reports,
//! per clause, what it locks, whether it rewrites or scans the table, whether it can fail on
//! existing rows, an estimate from the live table size, and a safer alternative. Pure: no
//! I/O. The caller brings what the live database knows as [`Facts`].
//!
//! # Parser
//!
//! [`sqlparser`](https://crates.io/crates/sqlparser) (Apache DataFusion's SQL parser, pure
//! Rust), with its PostgreSQL, MySQL and SQLite dialects: one AST for the three engines, so one
//! set of rules. The alternative, `pg_query` (libpg_query, PostgreSQL's own grammar), was tried
//! on this machine: it does not build without `libclang` (bindgen), which the machine and CI
//! do not have, adds a C build of PostgreSQL's parser, and reads PostgreSQL only. On the 434
//! migrations of langfuse (1,114 statements) pg_query read every statement and sqlparser 1,079;
//! the 35 it missed are all `DROP INDEX CONCURRENTLY`, which the keyword fallback handles. Other
//! gaps seen: `DO` blocks, `CLUSTER`, `REINDEX`, `ALTER COLUMN ... SET STATISTICS`,
//! `CREATE INDEX ... ON ONLY`, MySQL `OPTIMIZE TABLE`/`ALTER ONLINE TABLE`/`CONVERT TO
//! CHARACTER SET`, and SQLite `PRAGMA x = ON`. Statements the parser cannot read go to the
//! keyword rules in `fallback`, and their findings say `parsed: false`.
//!
//! # Rules (codes and levels)
//!
//! Levels follow the seed's mapping; "by size" means low on a small table, medium when the
//! size is unknown, and the stated level on a large table (100,000 rows or 64 MB).
//!
//! | code | what | level |
//! |---|---|---|
//! | `drop-table`, `drop-column`, `drop-schema`, `truncate`, `unbounded-delete` | data loss | high |
//! | `drop-index` | an index removed (ACCESS EXCLUSIVE unless `CONCURRENTLY`) | high |
//! | `changing-column-type` | a rewrite (or MySQL `COPY`) that may fail on values; low when binary-coercible / in place | high |
//! | `adding-required-field` | NOT NULL without default: fails on a non-empty PostgreSQL table, always on SQLite | high when rows exist, else medium |
//! | `adding-field-with-default` | a volatile default (or any default before PostgreSQL 11) rewrites | by size, high |
//! | `adding-serial-field`, `adding-stored-generated-field` | serial, identity or stored generated column rewrites | by size, high |
//! | `set-not-null` | full scan under ACCESS EXCLUSIVE (low with a validated `IS NOT NULL` check, PostgreSQL 12+) | medium, high when large |
//! | `adding-foreign-key-constraint` | validation without `NOT VALID` (MySQL: table copy) | by size, medium (MySQL high) |
//! | `adding-check-constraint` | validation without `NOT VALID` | by size, high |
//! | `adding-unique-constraint`, `adding-primary-key` | index built under ACCESS EXCLUSIVE | medium, high when large |
//! | `dropping-primary-key` | primary key removed (MySQL alone: table copy) | medium (high) |
//! | `create-index` | index built blocking writes; low when concurrent/online or the table small | medium when large or unknown |
//! | `renaming-table`, `renaming-column` | the running application's queries break | medium |
//! | `unbounded-update` | every row rewritten in one transaction | by size, high |
//! | `vacuum-full`, `cluster`, `table-rewrite` | table rewritten under an exclusive lock | by size, high |
//! | `reindex` | indexes rebuilt blocking writes | by size, medium |
//! | `table-rebuild` | copy, drop, rename (not data loss; on PostgreSQL/MySQL writes during the copy are lost unless locked) | low on SQLite, medium elsewhere, high when large |
//! | `mysql-algorithm-unsupported` | the requested `ALGORITHM=` fails on this server | high |
//! | `sqlite-unsupported-alter` | SQLite's `ALTER TABLE` cannot do it | high |
//! | `adding-column`, `create-table`, `drop-not-null`, `drop-constraint`, `drop-object` | worth knowing | low |
//!
//! Statements on a table the script created (or that the live database does not have yet) get
//! no size-dependent finding: it is empty when they run.

mod allow;
mod alter;
mod context;
mod facts;
mod fallback;
mod finding;
mod rebuild;
mod rules;
mod types;

#[cfg(test)]
mod eval;
#[cfg(test)]
mod tests;

use sqlparser::dialect::{MySqlDialect, PostgreSqlDialect, SQLiteDialect};
use sqlparser::parser::Parser;

pub use facts::{ColumnFacts, Facts, Product, Rows, Server, TableFacts};
pub use finding::{
    AllowedBy, Blocks, Finding, Level, Report, Silenced, StatementInfo, UnknownLevel,
};

use crate::engine::Dialect;
use crate::sql::split;

/// Nesting the parser accepts before it gives up on a statement (which then goes to the
/// keyword rules) instead of risking the stack.
const RECURSION_LIMIT: usize = 64;

/// Lints one migration script for `dialect` against what `facts` knows of the live database.
/// Findings whose code is in `allow`, or named by a `-- dbdeploy:allow CODE reason` comment
/// at their statement, are moved to `Report::silenced` with the reason.
#[must_use]
pub fn check(script: &str, dialect: Dialect, facts: &Facts, allow: &[String]) -> Report {
    let script = without_drizzle_breakpoints(script, dialect);
    let statements = split::split(&script, dialect);
    let parsed: Vec<Result<Vec<sqlparser::ast::Statement>, String>> =
        statements.iter().map(|s| parse(s.text, dialect)).collect();
    let flat: Vec<Option<&sqlparser::ast::Statement>> = parsed
        .iter()
        .map(|p| p.as_ref().ok().and_then(|v| v.first()))
        .collect();
    let rebuilds = rebuild::find(&flat);
    let mut ctx = context::Ctx::new(dialect, facts, rebuilds);
    let mut infos = Vec::with_capacity(statements.len());
    for (i, (stmt, result)) in statements.iter().zip(&parsed).enumerate() {
        ctx.statement = i + 1;
        ctx.line = stmt.line;
        ctx.parsed = result.is_ok();
        ctx.seconds = Some(0.0);
        match result {
            Ok(asts) => {
                for ast in asts {
                    rules::statement(&mut ctx, ast, i);
                }
            }
            Err(_) => fallback::statement(&mut ctx, stmt.text),
        }
        infos.push(StatementInfo {
            statement: i + 1,
            line: stmt.line,
            parsed: result.is_ok(),
            parse_error: result.as_ref().err().cloned(),
            estimated_seconds: ctx
                .seconds
                .map(|s| (s.max(0.001) * 1000.0).round() / 1000.0),
        });
    }
    let base = script.as_ptr() as usize;
    let spans: Vec<(usize, usize)> = statements
        .iter()
        .map(|s| {
            let start = s.text.as_ptr() as usize - base;
            (start, start + s.text.len())
        })
        .collect();
    let directives = allow::directives(&script, &spans);
    let (findings, silenced) = allow::apply(std::mem::take(&mut ctx.findings), allow, &directives);
    Report {
        findings,
        silenced,
        statements: infos,
    }
}

fn parse(text: &str, dialect: Dialect) -> Result<Vec<sqlparser::ast::Statement>, String> {
    let result = match dialect {
        Dialect::Postgres => Parser::new(&PostgreSqlDialect {})
            .with_recursion_limit(RECURSION_LIMIT)
            .try_with_sql(text)
            .and_then(|mut p| p.parse_statements()),
        Dialect::MySql => Parser::new(&MySqlDialect {})
            .with_recursion_limit(RECURSION_LIMIT)
            .try_with_sql(text)
            .and_then(|mut p| p.parse_statements()),
        Dialect::Sqlite => Parser::new(&SQLiteDialect {})
            .with_recursion_limit(RECURSION_LIMIT)
            .try_with_sql(text)
            .and_then(|mut p| p.parse_statements()),
    };
    match result {
        Ok(v) if v.is_empty() => Err("no statement".to_owned()),
        Ok(v) => Ok(v),
        Err(e) => Err(e.to_string()),
    }
}

/// drizzle-kit separates statements with `--> statement-breakpoint`, which MySQL does not
/// read as a comment (its `--` needs a space after it). Blanked to spaces, so byte offsets
/// and lines stay those of the file.
fn without_drizzle_breakpoints(script: &str, dialect: Dialect) -> std::borrow::Cow<'_, str> {
    const BREAK: &str = "--> statement-breakpoint";
    if dialect == Dialect::MySql && script.contains(BREAK) {
        std::borrow::Cow::Owned(script.replace(BREAK, &" ".repeat(BREAK.len())))
    } else {
        std::borrow::Cow::Borrowed(script)
    }
}
