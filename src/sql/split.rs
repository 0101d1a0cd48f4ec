//! Splitting migration scripts into statements, and classifying statements.
//!
//! Migrations usually go to the server as one script, but sometimes they must
//! run statement by statement: PostgreSQL refuses some statements (such as
//! `CREATE INDEX CONCURRENTLY`) inside a transaction block, progress reporting
//! needs statement boundaries, and a failure is only actionable with the line
//! it started on. A naive split on `;` breaks on semicolons inside strings,
//! quoted identifiers, comments, dollar-quoted bodies and trigger or routine
//! bodies, so this module uses a small single-pass lexer that knows each
//! dialect's quoting and comment rules.

#![allow(clippy::doc_markdown, reason = "product names are not code")]

use super::dialect::Dialect;

/// One statement of a migration script, borrowed from the script text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Statement<'a> {
    /// Statement text from its first token to its last: no terminating `;`,
    /// no surrounding whitespace and no leading or trailing comments.
    pub text: &'a str,
    /// 1-based line of the statement's first token (comments skipped).
    pub line: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Comment,
    Word,
    Semi,
    Other,
}

#[derive(Debug, Clone, Copy)]
struct Token {
    kind: Kind,
    start: usize,
    end: usize,
}

/// Every token except whitespace. A whole string, quoted identifier or
/// dollar-quoted body is one `Other` token, so callers never look inside.
/// `dialect: None` serves the dialect-agnostic helpers: it accepts every
/// dialect's comment syntax so that no comment is mistaken for code.
fn tokens(sql: &str, dialect: Option<Dialect>) -> impl Iterator<Item = Token> {
    let b = sql.as_bytes();
    let pg = dialect == Some(Dialect::Postgres);
    let my = dialect == Some(Dialect::MySql);
    let any = dialect.is_none();
    let mut pos = 0;
    std::iter::from_fn(move || {
        while b.get(pos).is_some_and(u8::is_ascii_whitespace) {
            pos += 1;
        }
        let start = pos;
        let c = *b.get(start)?;
        let next = b.get(start + 1).copied();
        // MySQL starts a `--` comment only before whitespace: `5--1` is 6.
        let dashes =
            next == Some(b'-') && (!my || b.get(start + 2).is_none_or(u8::is_ascii_whitespace));
        let (kind, end) = match c {
            b'-' if dashes => (Kind::Comment, line_end(b, start)),
            b'#' if my || any => (Kind::Comment, line_end(b, start)),
            b'/' if next == Some(b'*') => {
                // MySQL executes `/*! ... */` and reads optimizer hints from `/*+ ... */`.
                let code = (my || any) && matches!(b.get(start + 2), Some(b'!' | b'+'));
                let kind = if code { Kind::Other } else { Kind::Comment };
                (kind, block_comment_end(b, start, pg || any))
            }
            b';' => (Kind::Semi, start + 1),
            b'\'' | b'"' => (Kind::Other, quoted_end(b, start, c, my)),
            b'`' if !pg => (Kind::Other, quoted_end(b, start, c, false)),
            b'[' if dialect == Some(Dialect::Sqlite) => {
                let close = b[start..].iter().position(|&x| x == b']');
                (Kind::Other, close.map_or(b.len(), |p| start + p + 1))
            }
            b'$' if pg => (Kind::Other, dollar_end(b, start).unwrap_or(start + 1)),
            c if is_ident(c) => {
                let len = b[start..].iter().position(|&x| !is_ident(x) && x != b'$');
                let end = len.map_or(b.len(), |l| start + l);
                if pg && end == start + 1 && (c | 0x20) == b'e' && b.get(end) == Some(&b'\'') {
                    // E'...' is PostgreSQL's only string form with backslash escapes.
                    (Kind::Other, quoted_end(b, end, b'\'', true))
                } else {
                    (Kind::Word, end)
                }
            }
            _ => (Kind::Other, start + 1),
        };
        pos = end;
        Some(Token { kind, start, end })
    })
}

/// Non-ASCII bytes count as identifier characters so that multi-byte UTF-8
/// characters are never cut into separate tokens.
fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80
}

fn line_end(b: &[u8], start: usize) -> usize {
    start + b[start..].iter().take_while(|&&x| x != b'\n').count()
}

fn block_comment_end(b: &[u8], start: usize, nested: bool) -> usize {
    let (mut depth, mut i) = (0, start);
    while i + 1 < b.len() {
        match (b[i], b[i + 1]) {
            (b'/', b'*') if nested || depth == 0 => (depth, i) = (depth + 1, i + 2),
            (b'*', b'/') if depth == 1 => return i + 2,
            (b'*', b'/') => (depth, i) = (depth - 1, i + 2),
            _ => i += 1,
        }
    }
    b.len()
}

/// End of a quoted token whose quote is escaped by doubling it; unterminated
/// quotes run to the end so that the server, not the splitter, reports them.
fn quoted_end(b: &[u8], start: usize, quote: u8, backslash: bool) -> usize {
    let mut i = start + 1;
    while i < b.len() {
        if (backslash && b[i] == b'\\') || (b[i] == quote && b.get(i + 1) == Some(&quote)) {
            i += 2;
        } else if b[i] == quote {
            return i + 1;
        } else {
            i += 1;
        }
    }
    b.len()
}

/// `None` when `$` does not open a dollar quote (e.g. the `$1` placeholder).
fn dollar_end(b: &[u8], start: usize) -> Option<usize> {
    let close = start + 1 + b[start + 1..].iter().position(|&x| !is_ident(x))?;
    if b[close] != b'$' || b[start + 1].is_ascii_digit() {
        return None;
    }
    let delim = &b[start..=close];
    let found = b[close + 1..].windows(delim.len()).position(|w| w == delim);
    Some(found.map_or(b.len(), |p| close + 1 + p + delim.len()))
}

fn is_kw(word: &str, keywords: &[&str]) -> bool {
    keywords.iter().any(|k| word.eq_ignore_ascii_case(k))
}

/// Object kinds that settle a `CREATE`/`ALTER` header as having no compound
/// body, unless the dialect lists the kind as a routine kind.
const OBJECT_KINDS: &[&str] = &[
    "TABLE", "VIEW", "INDEX", "TRIGGER", "FUNCTION", "EVENT", "DATABASE", "SCHEMA", "SEQUENCE",
    "TYPE", "USER", "ROLE",
];

/// Tracks the `BEGIN ... END` body of a trigger or routine, whose inner
/// semicolons do not end the statement.
#[derive(Default)]
struct Body {
    words: usize,
    /// `None` until the `CREATE`/`ALTER` header names its object kind.
    routine: Option<bool>,
    depth: usize,
    /// `END IF` closes nothing counted and `END CASE` closes a `CASE`, so an
    /// `END` waits for the next token.
    pending_end: bool,
    /// PostgreSQL opens a body only with `BEGIN ATOMIC`.
    pending_begin: bool,
}

impl Body {
    fn word(&mut self, w: &str, dialect: Dialect) {
        self.words += 1;
        if self.words == 1 {
            self.routine = (!is_kw(w, &["CREATE", "ALTER"])).then_some(false);
            return;
        }
        if self.routine.is_none() {
            let routine_kinds: &[&str] = match dialect {
                Dialect::Postgres => &["FUNCTION", "PROCEDURE"],
                Dialect::MySql => &["PROCEDURE", "FUNCTION", "TRIGGER", "EVENT"],
                Dialect::Sqlite => &["TRIGGER"],
            };
            if is_kw(w, routine_kinds) {
                self.routine = Some(true);
            } else if is_kw(w, OBJECT_KINDS) {
                self.routine = Some(false);
            }
        }
        if self.routine != Some(true) {
            return;
        }
        if std::mem::take(&mut self.pending_end) {
            // IF/LOOP/WHILE/REPEAT openers are never counted, so neither are their ENDs.
            if is_kw(w, &["IF", "LOOP", "WHILE", "REPEAT"]) {
                return;
            }
            self.depth = self.depth.saturating_sub(1);
            if is_kw(w, &["CASE"]) {
                return;
            }
        }
        let atomic = std::mem::take(&mut self.pending_begin) && is_kw(w, &["ATOMIC"]);
        if atomic || is_kw(w, &["CASE"]) || (is_kw(w, &["BEGIN"]) && dialect != Dialect::Postgres) {
            self.depth += 1;
        } else if is_kw(w, &["END"]) {
            self.pending_end = true;
        } else if is_kw(w, &["BEGIN"]) {
            self.pending_begin = true;
        }
    }

    fn other(&mut self) {
        if std::mem::take(&mut self.pending_end) {
            self.depth = self.depth.saturating_sub(1);
        }
        self.pending_begin = false;
    }
}

/// Splits a migration script into its statements using `dialect`'s quoting,
/// comment and compound-body rules. Empty and comment-only statements are
/// dropped; the last statement does not need a terminating `;`.
#[must_use]
pub fn split(sql: &str, dialect: Dialect) -> Vec<Statement<'_>> {
    let mut spans = Vec::new();
    let mut current: Option<(usize, usize)> = None;
    let mut body = Body::default();
    for t in tokens(sql, Some(dialect)) {
        match t.kind {
            Kind::Comment => continue,
            Kind::Word => body.word(&sql[t.start..t.end], dialect),
            Kind::Other => body.other(),
            Kind::Semi => {
                body.other();
                if body.depth == 0 {
                    spans.extend(current.take());
                    body = Body::default();
                    continue;
                }
            }
        }
        current = Some((current.map_or(t.start, |(s, _)| s), t.end));
    }
    spans.extend(current);
    // Spans ascend, so counting newlines incrementally keeps this O(n).
    let (mut counted, mut line) = (0, 1);
    let mut out = Vec::with_capacity(spans.len());
    for (start, end) in spans {
        line += sql[counted..start].matches('\n').count();
        counted = start;
        let text = &sql[start..end];
        out.push(Statement { text, line });
    }
    out
}

/// The first two code tokens as written (empty when missing).
fn head(stmt: &str, dialect: Option<Dialect>) -> (&str, &str) {
    let mut code = tokens(stmt, dialect)
        .filter(|t| t.kind != Kind::Comment)
        .map(|t| &stmt[t.start..t.end]);
    (code.next().unwrap_or(""), code.next().unwrap_or(""))
}

/// Code tokens, upper-cased; quoted tokens keep their quotes, so a
/// quoted identifier never equals a keyword.
fn keywords(stmt: &str, dialect: Option<Dialect>) -> Vec<String> {
    let mut out: Vec<String> = tokens(stmt, dialect)
        .filter(|t| t.kind != Kind::Comment)
        .map(|t| stmt[t.start..t.end].to_ascii_uppercase())
        .collect();
    while out.last().is_some_and(|t| t == ";") {
        out.pop();
    }
    out
}

/// True when `stmt` is a top-level transaction-control statement (`BEGIN`,
/// `START TRANSACTION`, `COMMIT`, `END`, `ROLLBACK`, `ABORT`) in any dialect,
/// i.e. the migration manages its own transactions. `BEGIN` of a procedural
/// block, `END IF`, `ROLLBACK TO SAVEPOINT` and two-phase `... PREPARED`
/// commands are not.
#[must_use]
pub fn is_transaction_control(stmt: &str) -> bool {
    // Every migration's statements are classified at load time: rule most out by their first
    // word before upper-casing every token.
    let (first, _) = head(stmt, None);
    if !is_kw(
        first,
        &["BEGIN", "END", "START", "COMMIT", "ROLLBACK", "ABORT"],
    ) {
        return false;
    }
    let owned = keywords(stmt, None);
    let w: Vec<&str> = owned.iter().map(String::as_str).collect();
    match w.as_slice() {
        ["BEGIN" | "END"] | ["START", "TRANSACTION", ..] | ["BEGIN", "NOT", "DEFERRABLE", ..] => {
            true
        }
        ["END", next] => matches!(*next, "TRANSACTION" | "WORK"),
        ["BEGIN", mode, ..] => {
            // PostgreSQL/MySQL transaction modes and SQLite's locking modes.
            matches!(*mode, "TRANSACTION" | "WORK" | "ISOLATION" | "READ")
                || matches!(*mode, "DEFERRABLE" | "IMMEDIATE" | "EXCLUSIVE" | "DEFERRED")
        }
        ["COMMIT", rest @ ..] => !rest.contains(&"PREPARED"),
        ["ROLLBACK" | "ABORT", rest @ ..] => !rest.iter().any(|w| matches!(*w, "TO" | "PREPARED")),
        _ => false,
    }
}

/// Skips a leading parenthesised option list such as `(VERBOSE)`.
fn skip_options<'a>(w: &'a [&'a str]) -> &'a [&'a str] {
    match (w, w.iter().position(|t| *t == ")")) {
        (["(", ..], Some(close)) => &w[close + 1..],
        _ => w,
    }
}

/// `Some(reason)` when the database refuses to run `stmt` inside a transaction
/// block, so it must run on its own. Keywords are matched by position (not as
/// substrings), case- and whitespace-insensitively, after leading comments.
/// `ALTER TYPE ... ADD VALUE` is allowed in a transaction since PostgreSQL 12
/// and is not reported; MySQL has no such statements.
#[must_use]
pub fn non_transactional_reason(stmt: &str, dialect: Dialect) -> Option<&'static str> {
    // A cheap look at the first words rules out nearly every statement; the rest are matched
    // on the full keyword list below.
    let (first, second) = head(stmt, Some(dialect));
    let candidate = match dialect {
        Dialect::Postgres => {
            is_kw(first, &["REINDEX", "VACUUM", "CLUSTER"])
                || (is_kw(first, &["CREATE", "DROP"])
                    && is_kw(second, &["INDEX", "UNIQUE", "DATABASE", "TABLESPACE"]))
                || (is_kw(first, &["ALTER"])
                    && (is_kw(second, &["SYSTEM"])
                        || stmt
                            .as_bytes()
                            .windows(12)
                            .any(|w| w.eq_ignore_ascii_case(b"CONCURRENTLY"))))
        }
        Dialect::Sqlite => is_kw(first, &["VACUUM"]),
        Dialect::MySql => false,
    };
    if !candidate {
        return None;
    }
    let owned = keywords(stmt, Some(dialect));
    let w: Vec<&str> = owned.iter().map(String::as_str).collect();
    match (dialect, w.as_slice()) {
        (Dialect::Postgres, w) => postgres_reason(w),
        (Dialect::Sqlite, ["VACUUM", ..]) => Some("SQLite cannot VACUUM from within a transaction"),
        _ => None,
    }
}

macro_rules! refused {
    ($what:literal) => {
        concat!($what, " cannot run inside a transaction block")
    };
}

fn postgres_reason(w: &[&str]) -> Option<&'static str> {
    Some(match w {
        ["CREATE", "INDEX", "CONCURRENTLY", ..]
        | ["CREATE", "UNIQUE", "INDEX", "CONCURRENTLY", ..] => {
            refused!("CREATE INDEX CONCURRENTLY")
        }
        ["DROP", "INDEX", "CONCURRENTLY", ..] => refused!("DROP INDEX CONCURRENTLY"),
        // A bare CONCURRENTLY anywhere in REINDEX is the keyword: names follow it.
        ["REINDEX", rest @ ..] if rest.contains(&"CONCURRENTLY") => {
            refused!("REINDEX CONCURRENTLY")
        }
        ["REINDEX", rest @ ..]
            if matches!(skip_options(rest), ["SCHEMA" | "DATABASE" | "SYSTEM", ..]) =>
        {
            refused!("REINDEX SCHEMA/DATABASE/SYSTEM")
        }
        ["VACUUM", ..] => refused!("VACUUM"),
        ["CREATE" | "DROP", "DATABASE", ..] => refused!("CREATE/DROP DATABASE"),
        ["CREATE" | "DROP", "TABLESPACE", ..] => refused!("CREATE/DROP TABLESPACE"),
        ["ALTER", "SYSTEM", ..] => refused!("ALTER SYSTEM"),
        ["CLUSTER", rest @ ..] if matches!(skip_options(rest), [] | ["VERBOSE"]) => {
            refused!("CLUSTER without a table")
        }
        ["ALTER", "TABLE", rest @ .., "CONCURRENTLY"]
            if rest.windows(2).any(|p| p == ["DETACH", "PARTITION"]) =>
        {
            refused!("DETACH PARTITION CONCURRENTLY")
        }
        _ => return None,
    })
}

/// True when the script holds no statement: only whitespace, comments and
/// bare `;`. Every dialect's comment syntax is accepted (`#` included), but
/// MySQL's executable `/*! ... */` comments count as statements.
#[must_use]
pub fn is_empty_script(sql: &str) -> bool {
    tokens(sql, None).all(|t| matches!(t.kind, Kind::Comment | Kind::Semi))
}

/// The statement with comments removed and whitespace runs collapsed to one
/// space (strings and quoted identifiers untouched, case kept), for keyword
/// matching and one-line display, e.g. `CREATE INDEX CONCURRENTLY "x" ON t (a)`.
/// Lexed with the PostgreSQL rules, the closest to standard SQL.
#[must_use]
pub fn normalized(stmt: &str) -> String {
    let mut out = String::with_capacity(stmt.len());
    let (mut last_end, mut gap) = (0, false);
    for t in tokens(stmt, Some(Dialect::Postgres)) {
        if t.kind == Kind::Comment {
            gap = true;
            continue;
        }
        if !out.is_empty() && (gap || t.start > last_end) {
            out.push(' ');
        }
        out.push_str(&stmt[t.start..t.end]);
        (last_end, gap) = (t.end, false);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use Dialect::{MySql, Postgres, Sqlite};

    fn parts(sql: &str, d: Dialect) -> Vec<(&str, usize)> {
        split(sql, d).iter().map(|s| (s.text, s.line)).collect()
    }

    fn texts(sql: &str, d: Dialect) -> Vec<&str> {
        split(sql, d).iter().map(|s| s.text).collect()
    }

    #[test]
    fn splits_plain_statements_with_line_numbers() {
        let sql = "CREATE TABLE a (id int);\n\n  INSERT INTO a\n  VALUES (1);\nSELECT 1;";
        let want = [
            ("CREATE TABLE a (id int)", 1),
            ("INSERT INTO a\n  VALUES (1)", 3),
        ];
        for d in [Postgres, MySql, Sqlite] {
            assert_eq!(parts(sql, d)[..2], want);
            assert_eq!(parts(sql, d)[2], ("SELECT 1", 5));
        }
    }

    #[test]
    fn line_points_past_leading_comments_which_text_excludes() {
        let sql = "SELECT 1; -- note\n/* block\n comment */\n  SELECT 2 -- tail\n;";
        assert_eq!(parts(sql, Postgres), [("SELECT 1", 1), ("SELECT 2", 4)]);
    }

    #[test]
    fn semicolons_in_strings_escapes_and_quoted_identifiers_do_not_split() {
        let sql = "INSERT INTO t VALUES ('a;b', 'it''s; ok');\nSELECT \"odd;\"\"name\" FROM t";
        for d in [Postgres, MySql, Sqlite] {
            let got = texts(sql, d);
            assert_eq!(got[0], "INSERT INTO t VALUES ('a;b', 'it''s; ok')");
            assert_eq!(got[1..], ["SELECT \"odd;\"\"name\" FROM t"]);
        }
    }

    #[test]
    fn semicolons_in_comments_do_not_split_and_postgres_nests_block_comments() {
        let got = texts(
            "SELECT 1 -- not; here\n, 2 /* nor; here */;\nSELECT 3",
            Sqlite,
        );
        assert_eq!(got, ["SELECT 1 -- not; here\n, 2", "SELECT 3"]);
        let nested = "SELECT 1 /* outer /* inner; */ still comment; */; SELECT 2";
        assert_eq!(texts(nested, Postgres), ["SELECT 1", "SELECT 2"]);
        assert_eq!(texts(nested, Sqlite).len(), 3);
    }

    #[test]
    fn dollar_quoted_bodies_hide_semicolons_but_placeholders_do_not() {
        let sql = "CREATE FUNCTION f() RETURNS int AS $$ BEGIN RETURN 1; END; $$ LANGUAGE plpgsql;\n\
                   CREATE FUNCTION g() RETURNS int AS $fn$ SELECT '$$'; SELECT 2; $fn$ LANGUAGE sql;\n\
                   DO $body$BEGIN PERFORM 1; END$body$; SELECT $1; SELECT $2, price$ FROM t";
        let got = parts(sql, Postgres);
        assert!(got[0].0.ends_with("END; $$ LANGUAGE plpgsql"));
        assert!(got[1].0.ends_with("SELECT 2; $fn$ LANGUAGE sql"));
        assert_eq!(got[2], ("DO $body$BEGIN PERFORM 1; END$body$", 3));
        assert_eq!(
            got[3..],
            [("SELECT $1", 3), ("SELECT $2, price$ FROM t", 3)]
        );
    }

    #[test]
    fn postgres_backslash_escapes_only_in_e_strings() {
        let got = texts(r"SELECT E'a\'; b'; SELECT 'c\'; SELECT 2", Postgres);
        assert_eq!(got, [r"SELECT E'a\'; b'", r"SELECT 'c\'", "SELECT 2"]);
    }

    #[test]
    fn postgres_begin_atomic_body_is_one_statement() {
        let sql = "CREATE PROCEDURE p(begin int) LANGUAGE sql BEGIN ATOMIC\n  INSERT INTO t VALUES (1);\n  \
                   SELECT CASE WHEN true THEN 1 END;\nEND;\nSELECT 1;";
        let got = texts(sql, Postgres);
        assert!(got[0].ends_with("END;\nEND"));
        assert_eq!(got[1..], ["SELECT 1"]);
    }

    #[test]
    fn sqlite_trigger_body_with_case_is_one_statement() {
        let sql = "CREATE TEMP TRIGGER trg AFTER INSERT ON a\nBEGIN\n  UPDATE b SET n = n + 1;\n  \
                   INSERT INTO log VALUES (CASE WHEN new.x > 0 THEN 'pos' ELSE 'neg' END);\nEND;\n\
                   BEGIN; [weird;name]; SELECT `x;y`; END;";
        let got = texts(sql, Sqlite);
        assert!(got[0].starts_with("CREATE TEMP TRIGGER") && got[0].ends_with("'neg' END);\nEND"));
        assert_eq!(got[1..], ["BEGIN", "[weird;name]", "SELECT `x;y`", "END"]);
    }

    #[test]
    fn mysql_procedure_body_is_one_statement() {
        let sql = "CREATE DEFINER=`root`@`%` PROCEDURE p(IN n INT)\nBEGIN\n  DECLARE i INT DEFAULT 0;\n  \
                   lbl: LOOP\n    SET i = i + 1;\n    IF i > n THEN LEAVE lbl; END IF;\n  END LOOP lbl;\n  \
                   CASE i WHEN 1 THEN SELECT 1; ELSE BEGIN SELECT 2; END; END CASE;\n  \
                   WHILE i > 0 DO SET i = i - 1; END WHILE;\n  SELECT IF(i = 0, 'a', 'b');\nEND;\nSELECT 1";
        let got = parts(sql, MySql);
        assert!(got[0].0.ends_with("'b');\nEND"), "{got:?}");
        assert_eq!(got[1..], [("SELECT 1", 12)]);
    }

    #[test]
    fn mysql_backslash_quotes_hash_comments_and_dash_rule() {
        let sql = "INSERT INTO t VALUES ('it\\'s; ok', \"a\\\";\");\n# comment; here\nSELECT 5--1;\n\
                   /*!40101 SET NAMES utf8 */;";
        let got = texts(sql, MySql);
        assert_eq!(got[0], r#"INSERT INTO t VALUES ('it\'s; ok', "a\";")"#);
        assert_eq!(got[1..], ["SELECT 5--1", "/*!40101 SET NAMES utf8 */"]);
    }

    #[test]
    fn trailing_comment_and_missing_final_semicolon_are_handled() {
        let got = parts("SELECT 1;\nSELECT 2 -- done", Postgres);
        assert_eq!(got, [("SELECT 1", 1), ("SELECT 2", 2)]);
        assert_eq!(texts("SELECT 1;\n-- trailing;\n;;", Postgres), ["SELECT 1"]);
    }

    #[test]
    fn crlf_line_endings_count_lines_and_are_trimmed() {
        let got = parts(
            "SELECT 1;\r\n\r\n-- c\r\nSELECT 'é';\r\nSELECT 3\r\n",
            MySql,
        );
        assert_eq!(got, [("SELECT 1", 1), ("SELECT 'é'", 4), ("SELECT 3", 5)]);
    }

    #[test]
    fn unterminated_quotes_and_comments_run_to_the_end() {
        let got = texts("SELECT 1; SELECT 'oops; SELECT 2", Sqlite);
        assert_eq!(got, ["SELECT 1", "SELECT 'oops; SELECT 2"]);
        assert_eq!(texts("SELECT $x$ a; b", Postgres), ["SELECT $x$ a; b"]);
        assert_eq!(texts("SELECT 1; /* open; ", Postgres), ["SELECT 1"]);
    }

    #[test]
    fn transaction_control_statements_are_recognised() {
        let yes = "BEGIN; BEGIN TRANSACTION; BEGIN WORK; BEGIN ISOLATION LEVEL SERIALIZABLE; begin immediate; \
                   START TRANSACTION READ ONLY; COMMIT; commit work; END; END TRANSACTION; ROLLBACK; ABORT";
        for s in split(yes, Sqlite) {
            assert!(is_transaction_control(s.text), "{}", s.text);
        }
        assert!(is_transaction_control("-- c\nbegin;"));
        let no = "ROLLBACK TO SAVEPOINT a; ROLLBACK WORK TO a; END IF; COMMIT PREPARED 'x'; SAVEPOINT a; \
                  DO $$BEGIN PERFORM 1; END$$; SELECT 'BEGIN'; BEGIN ATOMIC";
        for s in split(no, Postgres) {
            assert!(!is_transaction_control(s.text), "{}", s.text);
        }
    }

    #[test]
    fn postgres_non_transactional_statements_are_detected() {
        let yes = "create   index\n concurrently idx ON t(a); CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS u ON t(a); \
                   -- comment\nVACUUM; /* x */ vacuum (analyze) t; DROP INDEX CONCURRENTLY i; REINDEX TABLE CONCURRENTLY t; \
                   REINDEX (VERBOSE) DATABASE app; CREATE DATABASE app; drop tablespace ts; CLUSTER VERBOSE; \
                   ALTER SYSTEM SET work_mem = '64MB'; ALTER TABLE p DETACH PARTITION s.p1 CONCURRENTLY";
        for s in split(yes, Postgres) {
            let reason = non_transactional_reason(s.text, Postgres);
            assert!(reason.is_some(), "{}", s.text);
        }
        let reason = non_transactional_reason("-- comment\nVACUUM", Postgres);
        assert_eq!(reason, Some("VACUUM cannot run inside a transaction block"));
    }

    #[test]
    fn ordinary_statements_have_no_non_transactional_reason() {
        let no = "CREATE INDEX \"concurrently_idx\" ON t(a); CREATE INDEX concurrently_idx ON t(a); \
                  ALTER TYPE mood ADD VALUE 'meh'; CLUSTER t USING i; REINDEX TABLE t; SELECT 'VACUUM'; \
                  -- VACUUM\nSELECT 1";
        for s in split(no, Postgres) {
            let reason = non_transactional_reason(s.text, Postgres);
            assert_eq!(reason, None, "{}", s.text);
        }
        for (stmt, d) in [
            ("CREATE INDEX CONCURRENTLY i ON t(a)", MySql),
            ("VACUUM", MySql),
        ] {
            assert_eq!(non_transactional_reason(stmt, d), None);
        }
        assert_eq!(non_transactional_reason("CREATE DATABASE x", Sqlite), None);
        assert!(non_transactional_reason("  vacuum;", Sqlite).is_some());
    }

    #[test]
    fn empty_scripts_hold_only_whitespace_comments_and_semicolons() {
        assert!(is_empty_script(""));
        assert!(is_empty_script(" \r\n-- x\n/* a /* b */ */\n# mysql\n;"));
        assert!(!is_empty_script("-- c\nSELECT 1"));
        assert!(!is_empty_script("/*!40101 SET NAMES utf8 */"));
    }

    #[test]
    fn normalized_strips_comments_and_collapses_whitespace() {
        let stmt = "-- lead\nCREATE  INDEX\n\tCONCURRENTLY /* c */ \"x\"  ON t(a, 'b  c')";
        assert_eq!(
            normalized(stmt),
            "CREATE INDEX CONCURRENTLY \"x\" ON t(a, 'b  c')"
        );
        assert_eq!(normalized("a/*x*/b"), "a b");
    }
}
