//! FALLBACK: keyword classification for statements the SQL parser cannot read. Every finding
//! made here carries `parsed: false`.
//!
//! The parser (sqlparser 0.64) does not know some statements that migrations use:
//! `DROP INDEX CONCURRENTLY`, `CLUSTER`, `REINDEX`, `DO` blocks (PL/pgSQL), `ALTER COLUMN ...
//! SET STATISTICS`, `CREATE INDEX ... ON ONLY`, MySQL's `OPTIMIZE TABLE`, `ALTER ONLINE TABLE`
//! and table options such as `CONVERT TO CHARACTER SET`, and SQLite's `PRAGMA x = ON`. These
//! get the keyword rules `pipeline/preview.rs` has used since the first release (copied here
//! with the linter's codes, and with `ALTER COLUMN name TYPE` matched as a clause so that a
//! column named `type` is not a type change), plus rules for the statements above. A `DO`
//! block's body is split into its statements and each is classified the same way.

use super::context::{Ctx, Hit, Table};
use super::facts::Work;
use super::finding::{Blocks, Level};
use super::rules;
use crate::engine::Dialect;
use crate::sql::split;

/// Classifies one statement the parser could not read.
pub(crate) fn statement(ctx: &mut Ctx<'_>, text: &str) {
    let n = split::normalized(text).to_ascii_uppercase();
    if n.starts_with("DO ") || n == "DO" {
        do_block(ctx, text);
        return;
    }
    classify(ctx, &n);
}

/// Runs the keyword rules on each statement of a `DO` block's body.
fn do_block(ctx: &mut Ctx<'_>, text: &str) {
    let Some(open) = text.find('$') else { return };
    let Some(close) = text[open + 1..].find('$') else {
        return;
    };
    let tag = &text[open..open + close + 2];
    let body_start = open + tag.len();
    let Some(body_len) = text[body_start..].find(tag) else {
        return;
    };
    let body = &text[body_start..body_start + body_len];
    let offset = text[..body_start].matches('\n').count();
    let outer = ctx.line;
    for inner in split::split(body, Dialect::Postgres) {
        let n = strip_control(&split::normalized(inner.text).to_ascii_uppercase());
        // The line of the statement itself, after the control words before it.
        let first = n.split_whitespace().next().unwrap_or("");
        let skipped = inner
            .text
            .to_ascii_uppercase()
            .find(first)
            .map_or(0, |at| inner.text[..at].matches('\n').count());
        ctx.line = outer + offset + inner.line - 1 + skipped;
        classify(ctx, &n);
    }
    ctx.line = outer;
}

/// `BEGIN UPDATE ...`, `IF x THEN UPDATE ...`: the statement after PL/pgSQL's control words.
fn strip_control(n: &str) -> String {
    let mut s = n.trim();
    loop {
        let before = s;
        for word in ["BEGIN ", "ELSE ", "LOOP ", "DECLARE "] {
            s = s.strip_prefix(word).unwrap_or(s).trim_start();
        }
        if (s.starts_with("IF ") || s.starts_with("ELSIF ")) && s.contains(" THEN ") {
            s = s
                .split_once(" THEN ")
                .map_or(s, |(_, rest)| rest.trim_start());
        }
        if s == before {
            return s.to_owned();
        }
    }
}

/// The table a normalized (uppercased) statement works on, unquoted and lowercased.
fn referenced_table(n: &str) -> Option<String> {
    let words: Vec<&str> = n.split_whitespace().collect();
    let after = |kw: &str| {
        let i = words.iter().position(|w| *w == kw)?;
        words[i + 1..]
            .iter()
            .find(|w| !matches!(**w, "IF" | "NOT" | "EXISTS" | "ONLY" | "CONCURRENTLY"))
            .copied()
    };
    let raw = after("TABLE")
        .or_else(|| after("ON"))
        .or_else(|| after("FROM"))
        .or_else(|| after("UPDATE"))
        .or_else(|| after("CLUSTER"))?;
    let raw = raw.split('(').next().unwrap_or(raw);
    Some(
        raw.trim_matches(|c| c == '"' || c == '`' || c == '[' || c == ']' || c == ';')
            .to_ascii_lowercase(),
    )
}

/// The word after `ALTER [COLUMN] name` is `TYPE` (or `SET DATA TYPE`).
fn alters_column_type(words: &[&str]) -> bool {
    words.iter().enumerate().skip(1).any(|(i, w)| {
        if *w != "ALTER" {
            return false;
        }
        let mut j = i + 1;
        if words.get(j) == Some(&"COLUMN") {
            j += 1;
        }
        matches!(
            words.get(j + 1..),
            Some(["TYPE", ..] | ["SET", "DATA", "TYPE", ..])
        )
    })
}

#[allow(
    clippy::too_many_lines,
    reason = "one keyword rule after the other, in order"
)]
fn classify(ctx: &mut Ctx<'_>, n: &str) {
    let words: Vec<&str> = n.split_whitespace().collect();
    let table = referenced_table(n).map(|t| ctx.table_str(&t));
    let table_or_unknown = || table.clone().unwrap_or_else(|| ctx.table_str("?"));
    let t = table_or_unknown();
    let size = t.at.describe();
    if let ["DROP", "INDEX", rest @ ..] = words.as_slice() {
        let concurrently = rest.first() == Some(&"CONCURRENTLY");
        let names = rest
            .iter()
            .filter(|w| {
                !matches!(
                    **w,
                    "CONCURRENTLY" | "IF" | "EXISTS" | "CASCADE" | "RESTRICT"
                )
            })
            .flat_map(|w| w.split(','))
            .filter(|w| !w.is_empty());
        for name in names {
            let index = name.trim_matches(['"', '`']).to_lowercase();
            let index = index.rsplit('.').next().unwrap_or(&index).to_owned();
            if ctx.state.created_indexes.contains(&index) {
                continue;
            }
            let owner = ctx.index_owner(&index);
            rules::drop_index(ctx, &index, owner.as_ref(), concurrently);
        }
    } else if n.starts_with("CLUSTER") {
        rules::rewrite_maintenance(ctx, table.as_ref(), "cluster", "CLUSTER");
    } else if n.starts_with("VACUUM") && words.contains(&"FULL") {
        rules::rewrite_maintenance(ctx, table.as_ref(), "vacuum-full", "VACUUM FULL");
    } else if let ["REINDEX", rest @ ..] = words.as_slice() {
        reindex(ctx, rest);
    } else if n.starts_with("OPTIMIZE TABLE") || n.starts_with("OPTIMIZE NO_WRITE_TO_BINLOG") {
        mysql_rebuild(ctx, &t, false, "OPTIMIZE TABLE");
    } else if n.starts_with("ALTER") && n.contains(" CONVERT TO CHARACTER SET") {
        mysql_rebuild(ctx, &t, true, "CONVERT TO CHARACTER SET");
    } else if n.starts_with("ALTER") && (n.contains(" ENGINE") || n.ends_with(" FORCE")) {
        mysql_rebuild(ctx, &t, false, "ENGINE=/FORCE");
    } else if n.starts_with("DROP TABLE") {
        if !t.is_new() {
            let (lock, blocks) = rules::exclusive(ctx.dialect);
            ctx.emit(
                Hit::new(
                    "drop-table",
                    Level::High,
                    format!("drops table {} and all its rows ({size})", t.name),
                )
                .on(&t, Work::Metadata)
                .lock(lock, blocks),
            );
        }
    } else if n.starts_with("DROP SCHEMA") || n.starts_with("DROP DATABASE") {
        ctx.emit(Hit::new(
            "drop-schema",
            Level::High,
            "drops a schema and everything in it",
        ));
    } else if n.starts_with("TRUNCATE") {
        if !t.is_new() {
            let (lock, blocks) = rules::exclusive(ctx.dialect);
            ctx.emit(
                Hit::new(
                    "truncate",
                    Level::High,
                    format!("deletes every row of {} ({size})", t.name),
                )
                .on(&t, Work::Metadata)
                .lock(lock, blocks),
            );
        }
    } else if n.starts_with("ALTER TABLE") && n.contains(" DROP COLUMN") {
        if !t.is_new() {
            ctx.emit(
                Hit::new(
                    "drop-column",
                    Level::High,
                    format!("drops a column of {} and its data", t.name),
                )
                .on(&t, Work::Metadata),
            );
        }
    } else if n.starts_with("DELETE FROM") && !n.contains(" WHERE ") {
        if !t.is_new() {
            ctx.emit(
                Hit::new(
                    "unbounded-delete",
                    Level::High,
                    format!(
                        "DELETE without WHERE deletes every row of {} ({size})",
                        t.name
                    ),
                )
                .on(&t, Work::DeleteRows),
            );
        }
    } else if n.starts_with("UPDATE ") && !n.contains(" WHERE ") {
        if !t.is_new() {
            ctx.emit(
                Hit::new(
                    "unbounded-update",
                    t.level(Level::Low, Level::Medium, Level::High),
                    format!(
                        "UPDATE without WHERE changes every row of {} ({size})",
                        t.name
                    ),
                )
                .on(&t, Work::UpdateRows)
                .suggest("backfill in batches (UPDATE ... WHERE id BETWEEN x AND y)"),
            );
        }
    } else if n.starts_with("ALTER TABLE")
        && (alters_column_type(&words)
            || (ctx.dialect == Dialect::MySql
                && (n.contains(" MODIFY ") || n.contains(" CHANGE "))))
    {
        if !t.is_new() {
            let mut hit = Hit::new(
                "changing-column-type",
                Level::High,
                format!(
                    "changes a column type of {} ({size}): may rewrite the table and fail on existing data",
                    t.name
                ),
            )
            .on(&t, Work::Rewrite);
            hit.rewrites = true;
            ctx.emit(hit);
        }
    } else if n.starts_with("ALTER TABLE") && n.contains(" SET NOT NULL") {
        if !t.is_new() {
            ctx.emit(
                Hit::new(
                    "set-not-null",
                    t.level(Level::Medium, Level::Medium, Level::High),
                    format!("sets a column of {} ({size}) NOT NULL: scans every row and fails if any holds NULL", t.name),
                )
                .on(&t, Work::Scan),
            );
        }
    } else if n.starts_with("ALTER TABLE")
        && n.contains(" ADD COLUMN")
        && n.contains(" NOT NULL")
        && !n.contains(" DEFAULT ")
    {
        if !t.is_new() {
            ctx.emit(
                Hit::new(
                    "adding-required-field",
                    Level::Medium,
                    format!("adds a NOT NULL column without a default to {} ({size}): fails if the table has rows", t.name),
                )
                .on(&t, Work::Metadata),
            );
        }
    } else if n.starts_with("ALTER TABLE") && n.contains(" RENAME ") {
        if !t.is_new() {
            let code = if n.contains(" RENAME TO ") {
                "renaming-table"
            } else {
                "renaming-column"
            };
            ctx.emit(
                Hit::new(
                    code,
                    Level::Medium,
                    format!(
                        "renames in {}: the running application may still use the old name",
                        t.name
                    ),
                )
                .on(&t, Work::Metadata),
            );
        }
    } else if (n.starts_with("CREATE INDEX") || n.starts_with("CREATE UNIQUE INDEX"))
        && !n.contains(" CONCURRENTLY ")
    {
        if t.is_new() {
            ctx.work(&t, Work::IndexBuild);
        } else {
            ctx.emit(
                Hit::new(
                    "create-index",
                    t.level(Level::Low, Level::Medium, Level::Medium),
                    format!(
                        "builds an index on {} ({size}) while blocking writes to it",
                        t.name
                    ),
                )
                .on(&t, Work::IndexBuild)
                .lock("SHARE", Blocks::Writes),
            );
        }
    }
}

fn reindex(ctx: &mut Ctx<'_>, rest: &[&str]) {
    let rest: Vec<&str> = rest
        .iter()
        .copied()
        .skip_while(|w| w.starts_with('('))
        .collect();
    let concurrently = rest.contains(&"CONCURRENTLY");
    let name = rest
        .iter()
        .rfind(|w| !matches!(**w, "CONCURRENTLY"))
        .map(|w| w.trim_matches(['"', '`']).to_lowercase())
        .unwrap_or_default();
    let table = match rest.first() {
        Some(&"TABLE") => Some(ctx.table_str(&name)),
        Some(&"INDEX") => ctx.index_owner(&name),
        _ => None,
    };
    if table.as_ref().is_some_and(Table::is_new) {
        return;
    }
    let (level, lock, blocks) = if concurrently {
        (Level::Low, "SHARE UPDATE EXCLUSIVE", Blocks::Nothing)
    } else {
        (
            table.as_ref().map_or(Level::Medium, |t| {
                t.level(Level::Low, Level::Medium, Level::Medium)
            }),
            "SHARE on the table, ACCESS EXCLUSIVE on the index",
            Blocks::Writes,
        )
    };
    let subject = table.as_ref().map_or_else(
        || name.clone(),
        |t| format!("{} ({})", t.name, t.at.describe()),
    );
    let mut hit = Hit::new(
        "reindex",
        level,
        format!("REINDEX rebuilds the indexes of {subject}"),
    )
    .lock(lock, blocks);
    if !concurrently {
        hit = hit.suggest("REINDEX ... CONCURRENTLY (PostgreSQL 12+): reads and writes go on");
    }
    if let Some(t) = &table {
        hit = hit.on(t, Work::IndexBuild);
    } else {
        hit.seconds = None;
    }
    ctx.emit(hit);
}

fn mysql_rebuild(ctx: &mut Ctx<'_>, t: &Table<'_>, copy: bool, what: &str) {
    if t.is_new() {
        return;
    }
    let (level, lock, blocks) = if copy {
        (
            t.level(Level::Low, Level::Medium, Level::High),
            "ALGORITHM=COPY, LOCK=SHARED",
            Blocks::Writes,
        )
    } else {
        (
            t.level(Level::Low, Level::Low, Level::Medium),
            "ALGORITHM=INPLACE, LOCK=NONE",
            Blocks::Nothing,
        )
    };
    let mut hit = Hit::new(
        "table-rewrite",
        level,
        format!("{what} rebuilds {} ({})", t.name, t.at.describe()),
    )
    .on(t, Work::Rewrite)
    .lock(lock, blocks);
    hit.rewrites = true;
    ctx.emit(hit);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_column_named_type_is_not_a_type_change() {
        let w = |s: &str| -> bool {
            let up = s.to_ascii_uppercase();
            let words: Vec<&str> = up.split_whitespace().collect();
            alters_column_type(&words)
        };
        assert!(!w("ALTER TABLE t ALTER COLUMN type SET DEFAULT 'x'"));
        assert!(!w("ALTER TABLE t ADD COLUMN type text"));
        assert!(w("ALTER TABLE t ALTER COLUMN type TYPE text"));
        assert!(w("ALTER TABLE t ALTER a SET DATA TYPE bigint"));
    }

    #[test]
    fn strips_plpgsql_control_words() {
        assert_eq!(
            strip_control("BEGIN UPDATE T SET A = 1"),
            "UPDATE T SET A = 1"
        );
        assert_eq!(
            strip_control("IF X > 0 THEN DELETE FROM T"),
            "DELETE FROM T"
        );
    }
}
