//! SQLite schema introspection of the `main` database through the `pragma_*` table-valued
//! functions, joined to `sqlite_master` so that each kind of fact is one query.
//!
//! SQLite keeps some facts only in the `CREATE TABLE` text it stores (`CHECK` constraints,
//! constraint names, `AUTOINCREMENT`), so that text is scanned for them. Internal tables
//! (`sqlite_sequence`, `sqlite_stat*`) are never read: their contents are counters.

use std::collections::{BTreeMap, HashMap};

use super::{Kind, Model, ident, one_line, query};
use crate::engine::{Database, DbError};

/// Objects SQLite creates for itself are named `sqlite_...`.
const USER_OBJECT: &str = "m.name NOT LIKE 'sqlite\\_%' ESCAPE '\\'";

pub(super) async fn read<D: Database>(db: &mut D) -> Result<Model, DbError> {
    let mut m = Model::default();
    let mut fk_names = HashMap::new();
    let sql = format!(
        "SELECT m.type, m.name, m.tbl_name, m.sql FROM sqlite_master m \
         WHERE m.type IN ('table', 'view') AND {USER_OBJECT}"
    );
    for r in query(db, "tables and views", &sql, 4).await? {
        let (name, create) = (r.s(1), r.s(3));
        if r.s(0) == "view" {
            m.table(Kind::View, ident(name), name)
                .items
                .push(format!("definition {}", one_line(view_body(create))));
            continue;
        }
        let facts = scan_create_table(create);
        let obj = m.table(Kind::Table, ident(name), name);
        if facts.virtual_table {
            obj.items.push(format!("definition {}", one_line(create)));
        }
        if facts.autoincrement {
            obj.items.push("autoincrement".into());
        }
        obj.items.extend(facts.checks);
        for (cols, fk) in facts.foreign_keys {
            fk_names.insert((name.to_owned(), cols), fk);
        }
    }
    table_options(db, &mut m).await?;
    columns(db, &mut m).await?;
    foreign_keys(db, &mut m, &fk_names).await?;
    indexes(db, &mut m).await?;
    let sql = format!(
        "SELECT m.tbl_name, m.name, m.sql FROM sqlite_master m \
         WHERE m.type = 'trigger' AND {USER_OBJECT}"
    );
    for r in query(db, "triggers", &sql, 3).await? {
        if let Some(obj) = m.relation(&ident(r.s(0))) {
            obj.items.push(format!(
                "trigger {} {}",
                ident(r.s(1)),
                one_line(trigger_body(r.s(2)))
            ));
        }
    }
    Ok(m)
}

async fn table_options<D: Database>(db: &mut D, m: &mut Model) -> Result<(), DbError> {
    let sql = "SELECT name, wr, strict FROM pragma_table_list WHERE schema = 'main'";
    for r in query(db, "table options", sql, 3).await? {
        let Some(obj) = m.get(Kind::Table, &ident(r.s(0))) else {
            continue;
        };
        if r.yes(1) {
            obj.items.push("without_rowid".into());
        }
        if r.yes(2) {
            obj.items.push("strict".into());
        }
    }
    Ok(())
}

async fn columns<D: Database>(db: &mut D, m: &mut Model) -> Result<(), DbError> {
    let sql = format!(
        "SELECT m.name, p.cid, p.name, p.type, p.\"notnull\", p.dflt_value, p.pk, p.hidden \
         FROM sqlite_master m JOIN pragma_table_xinfo(m.name, 'main') p \
         WHERE m.type = 'table' AND {USER_OBJECT}"
    );
    let mut keys: BTreeMap<String, Vec<(i64, String)>> = BTreeMap::new();
    for r in query(db, "columns", &sql, 8).await? {
        let Some(obj) = m.get(Kind::Table, &ident(r.s(0))) else {
            continue;
        };
        let mut line = format!("column {}", ident(r.s(2)));
        if let Some(ty) = r.opt(3) {
            line.push(' ');
            line.push_str(ty);
        }
        if r.yes(4) {
            line.push_str(" not null");
        }
        if let Some(d) = r.opt(5) {
            line.push_str(&format!(" default {d}"));
        }
        match r.s(7) {
            "2" => line.push_str(" generated virtual"),
            "3" => line.push_str(" generated stored"),
            _ => {}
        }
        obj.ordered.push((r.num(1), line));
        if r.num(6) > 0 {
            keys.entry(r.s(0).to_owned())
                .or_default()
                .push((r.num(6), ident(r.s(2))));
        }
    }
    for (table, mut cols) in keys {
        if let Some(obj) = m.get(Kind::Table, &ident(&table)) {
            cols.sort();
            let cols: Vec<String> = cols.into_iter().map(|(_, c)| c).collect();
            obj.items.push(format!("primary_key ({})", cols.join(", ")));
        }
    }
    Ok(())
}

async fn foreign_keys<D: Database>(
    db: &mut D,
    m: &mut Model,
    names: &HashMap<(String, String), String>,
) -> Result<(), DbError> {
    let sql = format!(
        "SELECT m.name, f.id, f.seq, f.\"table\", f.\"from\", f.\"to\", f.on_update, \
         f.on_delete, f.\"match\" \
         FROM sqlite_master m JOIN pragma_foreign_key_list(m.name, 'main') f \
         WHERE m.type = 'table' AND {USER_OBJECT}"
    );
    // (table, id) -> (target, on update, on delete, match, [(seq, from, to)])
    type Fk = (String, String, String, String, Vec<(i64, String, String)>);
    let mut found: BTreeMap<(String, i64), Fk> = BTreeMap::new();
    for r in query(db, "foreign keys", &sql, 9).await? {
        found
            .entry((r.s(0).to_owned(), r.num(1)))
            .or_insert_with(|| {
                (
                    r.s(3).to_owned(),
                    r.s(6).to_owned(),
                    r.s(7).to_owned(),
                    r.s(8).to_owned(),
                    Vec::new(),
                )
            })
            .4
            .push((r.num(2), r.s(4).to_owned(), r.s(5).to_owned()));
    }
    for ((table, _), (target, update, delete, matching, mut cols)) in found {
        let Some(obj) = m.get(Kind::Table, &ident(&table)) else {
            continue;
        };
        cols.sort();
        let from: Vec<String> = cols.iter().map(|c| ident(&c.1)).collect();
        let to: Vec<String> = cols
            .iter()
            .filter(|c| !c.2.is_empty())
            .map(|c| ident(&c.2))
            .collect();
        let key = (table.clone(), column_key(cols.iter().map(|c| c.1.as_str())));
        let mut line = match names.get(&key) {
            Some(name) => format!("constraint {} foreign_key", ident(name)),
            None => "foreign_key".to_owned(),
        };
        line.push_str(&format!(
            " ({}) references {}",
            from.join(", "),
            ident(&target)
        ));
        if !to.is_empty() {
            line.push_str(&format!(" ({})", to.join(", ")));
        }
        line.push_str(&format!(" on update {update} on delete {delete}"));
        if matching != "NONE" {
            line.push_str(&format!(" match {matching}"));
        }
        obj.items.push(line);
    }
    Ok(())
}

async fn indexes<D: Database>(db: &mut D, m: &mut Model) -> Result<(), DbError> {
    let sql = format!(
        "SELECT m.name, il.name, il.\"unique\", il.origin, il.partial, ii.seqno, ii.cid, \
         ii.name, ii.\"desc\", ii.coll, ix.sql \
         FROM sqlite_master m JOIN pragma_index_list(m.name, 'main') il \
         JOIN pragma_index_xinfo(il.name, 'main') ii \
         LEFT JOIN sqlite_master ix ON ix.type = 'index' AND ix.name = il.name \
         WHERE m.type = 'table' AND {USER_OBJECT} AND ii.\"key\" = 1"
    );
    struct Index {
        unique: bool,
        origin: String,
        partial: bool,
        sql: String,
        expression: bool,
        cols: Vec<(i64, String)>,
    }
    let mut found: BTreeMap<(String, String), Index> = BTreeMap::new();
    for r in query(db, "indexes", &sql, 11).await? {
        let idx = found
            .entry((r.s(0).to_owned(), r.s(1).to_owned()))
            .or_insert_with(|| Index {
                unique: r.yes(2),
                origin: r.s(3).to_owned(),
                partial: r.yes(4),
                sql: r.s(10).to_owned(),
                expression: false,
                cols: Vec::new(),
            });
        // cid -2 is an expression, whose text only the CREATE INDEX statement has.
        idx.expression |= r.num(6) == -2;
        let mut col = r.opt(7).map_or_else(|| "<expression>".to_owned(), ident);
        if r.yes(8) {
            col.push_str(" desc");
        }
        if let Some(coll) = r.opt(9).filter(|c| !c.eq_ignore_ascii_case("BINARY")) {
            col.push_str(&format!(" collate {coll}"));
        }
        idx.cols.push((r.num(5), col));
    }
    for ((table, name), mut idx) in found {
        let Some(obj) = m.get(Kind::Table, &ident(&table)) else {
            continue;
        };
        idx.cols.sort();
        let cols: Vec<String> = idx.cols.into_iter().map(|(_, c)| c).collect();
        let cols = cols.join(", ");
        let unique = if idx.unique { "unique " } else { "" };
        match idx.origin.as_str() {
            // The table's PRIMARY KEY, already shown as `primary_key`.
            "pk" => {}
            // A UNIQUE constraint; its automatic index name only numbers the constraints.
            "u" => obj.items.push(format!("unique ({cols})")),
            _ if idx.partial || idx.expression => {
                obj.items
                    .push(format!("index {} {}", ident(&name), one_line(&idx.sql)))
            }
            _ => obj
                .items
                .push(format!("index {} {unique}({cols})", ident(&name))),
        }
    }
    Ok(())
}

/// What the stored `CREATE TABLE` text says that no pragma does.
#[derive(Debug, Default, PartialEq)]
struct CreateTableFacts {
    autoincrement: bool,
    virtual_table: bool,
    /// `check (...)` or `constraint NAME check (...)` lines.
    checks: Vec<String>,
    /// Foreign-key constraint names by [`column_key`] of their columns.
    foreign_keys: Vec<(String, String)>,
}

/// The key a foreign key is matched by: its columns, case-folded as SQLite compares names.
fn column_key<'a>(cols: impl Iterator<Item = &'a str>) -> String {
    cols.map(str::to_ascii_lowercase)
        .collect::<Vec<_>>()
        .join(",")
}

fn scan_create_table(sql: &str) -> CreateTableFacts {
    let toks = lex(sql);
    let word = |i: usize, w: &str| {
        toks.get(i)
            .is_some_and(|t| t.kind == Tok::Word && sql[t.start..t.end].eq_ignore_ascii_case(w))
    };
    let punct = |i: usize, c: char| {
        toks.get(i)
            .is_some_and(|t| t.kind == Tok::Punct && sql[t.start..t.end].starts_with(c))
    };
    let text = |i: usize| unquote(&sql[toks[i].start..toks[i].end]);
    let mut facts = CreateTableFacts {
        virtual_table: word(1, "VIRTUAL"),
        ..CreateTableFacts::default()
    };
    for i in 0..toks.len() {
        if word(i, "AUTOINCREMENT") {
            facts.autoincrement = true;
        }
        let named = (i >= 2 && word(i - 2, "CONSTRAINT")).then(|| text(i - 1));
        if word(i, "CHECK") && punct(i + 1, '(') {
            let close = matching_paren(&toks, sql, i + 1);
            let expr = one_line(&sql[toks[i + 1].start..toks[close].end]);
            facts.checks.push(match &named {
                Some(name) => format!("constraint {} check {expr}", ident(name)),
                None => format!("check {expr}"),
            });
        }
        if let Some(name) = named
            && word(i, "FOREIGN")
            && word(i + 1, "KEY")
            && punct(i + 2, '(')
        {
            let close = matching_paren(&toks, sql, i + 2);
            let cols: Vec<String> = (i + 3..close)
                .filter(|&j| toks[j].kind != Tok::Punct)
                .map(text)
                .collect();
            facts
                .foreign_keys
                .push((column_key(cols.iter().map(String::as_str)), name));
        }
    }
    facts
}

/// A view's definition without `CREATE VIEW name`, which the header already says: from its
/// column list when it has one, else from `AS`.
fn view_body(sql: &str) -> &str {
    let toks = lex(sql);
    let Some(at) = toks
        .iter()
        .position(|t| t.kind == Tok::Word && sql[t.start..t.end].eq_ignore_ascii_case("AS"))
    else {
        return sql;
    };
    let open = toks[..at]
        .iter()
        .position(|t| t.kind == Tok::Punct && &sql[t.start..t.end] == "(");
    match (open, toks.get(at + 1)) {
        (Some(open), _) => &sql[toks[open].start..],
        (None, Some(next)) => &sql[next.start..],
        (None, None) => sql,
    }
}

/// A trigger's definition without `CREATE TRIGGER name`: from its timing or event.
fn trigger_body(sql: &str) -> &str {
    const STARTS: [&str; 6] = ["BEFORE", "AFTER", "INSTEAD", "DELETE", "INSERT", "UPDATE"];
    lex(sql)
        .iter()
        .skip(3)
        .find(|t| {
            t.kind == Tok::Word
                && STARTS
                    .iter()
                    .any(|w| sql[t.start..t.end].eq_ignore_ascii_case(w))
        })
        .map_or(sql, |t| &sql[t.start..])
}

/// The index of the `)` that closes the `(` at `open`, or the last token.
fn matching_paren(toks: &[Token], sql: &str, open: usize) -> usize {
    let mut depth = 0usize;
    for (j, t) in toks.iter().enumerate().skip(open) {
        if t.kind == Tok::Punct {
            match &sql[t.start..t.end] {
                "(" => depth += 1,
                ")" => {
                    depth -= 1;
                    if depth == 0 {
                        return j;
                    }
                }
                _ => {}
            }
        }
    }
    toks.len().saturating_sub(1)
}

/// An identifier token without its quotes (`"a""b"`, `` `a` ``, `[a]`, `'a'`).
fn unquote(tok: &str) -> String {
    let mut chars = tok.chars();
    match (chars.next(), tok.chars().last()) {
        (Some(q @ ('"' | '`' | '\'')), Some(end)) if end == q && tok.len() >= 2 => {
            let q = q.to_string();
            tok[1..tok.len() - 1].replace(&format!("{q}{q}"), &q)
        }
        (Some('['), Some(']')) => tok[1..tok.len() - 1].to_owned(),
        _ => tok.to_owned(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok {
    Word,
    Quoted,
    Punct,
}

#[derive(Debug, Clone, Copy)]
struct Token {
    kind: Tok,
    start: usize,
    end: usize,
}

/// SQLite's tokens, enough to find keywords: comments dropped, strings and quoted names whole.
fn lex(sql: &str) -> Vec<Token> {
    let b = sql.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let start = i;
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if c == b'-' && b.get(i + 1) == Some(&b'-') {
            i += b[i..]
                .iter()
                .position(|&x| x == b'\n')
                .unwrap_or(b.len() - i);
            continue;
        }
        if c == b'/' && b.get(i + 1) == Some(&b'*') {
            i = sql[i + 2..].find("*/").map_or(b.len(), |p| i + 2 + p + 2);
            continue;
        }
        let kind = match c {
            b'\'' | b'"' | b'`' => {
                i += 1;
                loop {
                    match b.get(i) {
                        None => break,
                        Some(&x) if x == c && b.get(i + 1) == Some(&c) => i += 2,
                        Some(&x) if x == c => {
                            i += 1;
                            break;
                        }
                        Some(_) => i += 1,
                    }
                }
                Tok::Quoted
            }
            b'[' => {
                i = b[i..]
                    .iter()
                    .position(|&x| x == b']')
                    .map_or(b.len(), |p| i + p + 1);
                Tok::Quoted
            }
            c if c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80 => {
                while b.get(i).is_some_and(|&x| {
                    x.is_ascii_alphanumeric() || x == b'_' || x == b'$' || x >= 0x80
                }) {
                    i += 1;
                }
                Tok::Word
            }
            _ => {
                i += sql[i..].chars().next().map_or(1, char::len_utf8);
                Tok::Punct
            }
        };
        out.push(Token {
            kind,
            start,
            end: i,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_table_text_yields_checks_names_and_autoincrement() {
        let facts = scan_create_table(
            "CREATE TABLE \"Post\" (\n\
             \"id\" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT, -- CHECK (not this)\n\
             \"n\" INTEGER CHECK (n > 0 AND n < (10)),\n\
             \"authorId\" INTEGER NOT NULL,\n\
             /* CONSTRAINT x CHECK (nor this) */\n\
             CONSTRAINT \"Post_n_check\" CHECK ( n <> 'CHECK (' ),\n\
             CONSTRAINT \"Post_authorId_fkey\" FOREIGN KEY (\"authorId\") REFERENCES \"User\" (\"id\")\n\
             )",
        );
        assert_eq!(
            facts,
            CreateTableFacts {
                autoincrement: true,
                virtual_table: false,
                checks: vec![
                    "check (n > 0 AND n < (10))".into(),
                    "constraint Post_n_check check ( n <> 'CHECK (' )".into(),
                ],
                foreign_keys: vec![("authorid".into(), "Post_authorId_fkey".into())],
            }
        );
    }

    #[test]
    fn plain_tables_have_no_extra_facts() {
        let facts = scan_create_table("CREATE TABLE t (id INTEGER PRIMARY KEY, autoinc TEXT)");
        assert_eq!(facts, CreateTableFacts::default());
        assert!(scan_create_table("CREATE VIRTUAL TABLE f USING fts5(body)").virtual_table);
    }

    #[test]
    fn view_and_trigger_texts_lose_their_create_and_name() {
        assert_eq!(view_body("CREATE VIEW v AS SELECT 1"), "SELECT 1");
        assert_eq!(
            view_body("CREATE VIEW IF NOT EXISTS \"as\" (a, b) AS SELECT 1, 2"),
            "(a, b) AS SELECT 1, 2"
        );
        assert_eq!(
            trigger_body("CREATE TRIGGER IF NOT EXISTS \"after\" AFTER INSERT ON t BEGIN END"),
            "AFTER INSERT ON t BEGIN END"
        );
        assert_eq!(
            trigger_body("CREATE TRIGGER u UPDATE OF x ON t BEGIN END"),
            "UPDATE OF x ON t BEGIN END"
        );
    }

    #[test]
    fn quoted_names_are_unquoted() {
        assert_eq!(unquote("\"a\"\"b\""), "a\"b");
        assert_eq!(unquote("[a b]"), "a b");
        assert_eq!(unquote("`x`"), "x");
        assert_eq!(unquote("plain"), "plain");
    }
}
