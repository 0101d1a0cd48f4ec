//! Unit tests of the rules, through `check`: one per rule and engine, levels by table size,
//! multi-clause statements, the never-analysed table, rebuilds and allow comments.
//!
//! Shared here: the facts of the test databases, the helpers, and the rules that do not depend
//! on the engine; each engine's rules in its own file.

mod mysql;
mod postgres;
mod sqlite;

use std::collections::BTreeMap;

use super::*;
use crate::engine::Dialect::{MySql, Postgres, Sqlite};

fn table(rows: Rows, bytes: Option<u64>, columns: &[(&str, &str, bool)]) -> TableFacts {
    TableFacts {
        rows,
        bytes,
        columns: columns
            .iter()
            .map(|(n, t, nn)| {
                (
                    (*n).to_owned(),
                    ColumnFacts {
                        data_type: (*t).to_owned(),
                        not_null: *nn,
                    },
                )
            })
            .collect(),
        indexes: Vec::new(),
    }
}

/// A PostgreSQL 15 database: `users` 200,000 rows, `orders` 2,000,000, `countries` 250,
/// `audit_log` never analysed (120 MB).
fn pg() -> Facts {
    let mut users = table(
        Rows::Estimated(200_000),
        Some(40 << 20),
        &[
            ("id", "bigint", true),
            ("email", "character varying(255)", true),
            ("name", "character varying(100)", false),
            ("type", "text", false),
        ],
    );
    users.indexes = vec!["users_pkey".into(), "users_email_key".into()];
    let mut orders = table(
        Rows::Estimated(2_000_000),
        Some(400 << 20),
        &[
            ("id", "bigint", true),
            ("note", "character varying(50)", false),
        ],
    );
    orders.indexes = vec!["orders_pkey".into(), "orders_user_id_idx".into()];
    Facts {
        server: Server::parse(Postgres, "15.4"),
        tables: Some(BTreeMap::from([
            ("users".to_owned(), users),
            ("orders".to_owned(), orders),
            (
                "countries".to_owned(),
                table(Rows::Exact(250), Some(16 << 10), &[]),
            ),
            (
                "audit_log".to_owned(),
                table(Rows::Unknown, Some(120 << 20), &[]),
            ),
        ])),
    }
}

fn lint(sql: &str, dialect: crate::engine::Dialect, facts: &Facts) -> Report {
    check(sql, dialect, facts, &[])
}

fn codes(r: &Report) -> Vec<(&'static str, Level)> {
    r.findings.iter().map(|f| (f.code, f.level)).collect()
}

fn only(sql: &str, dialect: crate::engine::Dialect, facts: &Facts) -> Finding {
    let r = lint(sql, dialect, facts);
    assert_eq!(r.findings.len(), 1, "{sql}: {:#?}", r.findings);
    r.findings[0].clone()
}

#[test]
fn one_finding_per_clause_on_its_own_line() {
    let sql = "-- three risks in one statement\nALTER TABLE users\n  DROP COLUMN type,\n  ALTER COLUMN name SET NOT NULL,\n  ADD COLUMN c text NOT NULL;\n";
    let r = lint(sql, Postgres, &pg());
    assert_eq!(
        codes(&r),
        [
            ("drop-column", Level::High),
            ("set-not-null", Level::High),
            ("adding-required-field", Level::High)
        ]
    );
    let lines: Vec<usize> = r.findings.iter().map(|f| f.line).collect();
    assert_eq!(lines, [3, 4, 5]);
    assert!(r.findings.iter().all(|f| f.statement == 1 && f.parsed));
}

#[test]
fn statements_on_new_tables_are_not_risks() {
    let sql = "CREATE TABLE invoices (id bigint PRIMARY KEY, user_id bigint NOT NULL, total numeric(10,2));\nCREATE INDEX invoices_user ON invoices (user_id);\nALTER TABLE invoices ADD CONSTRAINT fk FOREIGN KEY (user_id) REFERENCES users (id);\nALTER TABLE invoices ADD COLUMN paid boolean NOT NULL;\n";
    let r = lint(sql, Postgres, &pg());
    assert_eq!(codes(&r), [("create-table", Level::Low)]);
    // A table the live database does not have was created by an earlier pending migration.
    let r = lint("CREATE INDEX x ON brand_new (a);", Postgres, &pg());
    assert!(r.findings.is_empty());
}

#[test]
fn do_blocks_are_classified_by_keywords() {
    let sql = "DO $$\nBEGIN\n  UPDATE users SET type = 'person';\nEND $$;\n";
    let f = only(sql, Postgres, &pg());
    assert_eq!((f.code, f.parsed, f.line), ("unbounded-update", false, 3));
    let r = lint(sql, Postgres, &pg());
    assert!(!r.statements[0].parsed && r.statements[0].parse_error.is_some());
}

#[test]
fn allow_comments_and_config_silence_with_their_reason() {
    let sql = "-- dbdeploy:allow drop-table replaced by countries_v2 in 2.3\nDROP TABLE countries;\nALTER TABLE users DROP COLUMN type; -- dbdeploy:allow drop-column unused since 2.1\nTRUNCATE audit_log;\n";
    let r = check(sql, Postgres, &pg(), &["truncate".to_owned()]);
    assert!(r.findings.is_empty(), "{:?}", r.findings);
    let reasons: Vec<(&str, AllowedBy, &str)> = r
        .silenced
        .iter()
        .map(|s| (s.finding.code, s.allowed_by, s.reason.as_str()))
        .collect();
    assert_eq!(
        reasons,
        [
            (
                "drop-table",
                AllowedBy::Comment,
                "replaced by countries_v2 in 2.3"
            ),
            ("drop-column", AllowedBy::Comment, "unused since 2.1"),
            ("truncate", AllowedBy::Config, "listed in [lint] allow"),
        ]
    );
    // A comment silences only the code it names, only at its statement.
    let r = lint(
        "-- dbdeploy:allow drop-column no\nDROP TABLE countries;\nDROP TABLE users;",
        Postgres,
        &pg(),
    );
    assert_eq!(r.findings.len(), 2);
    let json = serde_json::to_value(check(sql, Postgres, &pg(), &[])).unwrap();
    assert_eq!(json["silenced"][0]["code"], "drop-table");
    assert_eq!(json["silenced"][0]["allowed_by"], "comment");
    assert_eq!(json["findings"][0]["code"], "truncate");
    assert_eq!(json["findings"][0]["blocks"], "reads-and-writes");
}

#[test]
fn estimates_per_statement_and_script() {
    let r = lint(
        "CREATE INDEX CONCURRENTLY o_note ON orders (note);\nSELECT 1;",
        Postgres,
        &pg(),
    );
    assert!(r.statements[0].estimated_seconds.unwrap() > 1.0);
    assert_eq!(r.statements[1].estimated_seconds, Some(0.001));
    assert!(r.estimated_seconds().unwrap() > 1.0);
    let r = lint(
        "CREATE INDEX i ON users (name);",
        Postgres,
        &Facts::default(),
    );
    assert_eq!(r.estimated_seconds(), None);
    assert_eq!(r.max_level(), Some(Level::Medium));
}

#[test]
fn bad_input_gets_findings_or_nothing_never_a_panic() {
    let deep = format!("SELECT {}1{};", "(".repeat(5000), ")".repeat(5000));
    for sql in [
        "",
        ";;;",
        "DO $$ BEGIN",
        "DO $x$ UPDATE t SET a = 1 $x$;",
        "ALTER TABLE",
        "DROP INDEX CONCURRENTLY",
        "REINDEX",
        "'unterminated",
        "-- dbdeploy:allow",
        deep.as_str(),
    ] {
        for d in [Postgres, MySql, Sqlite] {
            let _ = check(sql, d, &pg(), &[]);
        }
    }
}

proptest::proptest! {
    #[test]
    fn never_panics(sql in "(ALTER TABLE|DROP|DO \\$\\$|CREATE INDEX|UPDATE|DELETE FROM|;|'|\"|--|\\(|\\)|[a-z ]{0,8}|\n){0,24}") {
        for d in [Postgres, MySql, Sqlite] {
            let _ = check(&sql, d, &pg(), &[]);
        }
    }
}
