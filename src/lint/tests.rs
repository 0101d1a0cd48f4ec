//! Unit tests of the rules, through `check`: one per rule and engine, levels by table size,
//! multi-clause statements, the never-analysed table, rebuilds and allow comments.

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
fn adding_a_required_field() {
    let f = only(
        "ALTER TABLE users ADD COLUMN tenant bigint NOT NULL;",
        Postgres,
        &pg(),
    );
    assert_eq!((f.code, f.level), ("adding-required-field", Level::High));
    assert!(f.message.contains("fails"), "{}", f.message);
    assert!(!f.suggestion.is_empty());
    let offline = only(
        "ALTER TABLE users ADD COLUMN tenant bigint NOT NULL;",
        Postgres,
        &Facts::default(),
    );
    assert_eq!(offline.level, Level::Medium);
    assert!(
        offline.message.contains("size unknown"),
        "{}",
        offline.message
    );
    let with_default = only(
        "ALTER TABLE users ADD COLUMN tenant bigint NOT NULL DEFAULT 0;",
        Postgres,
        &pg(),
    );
    assert_eq!(
        (with_default.code, with_default.level),
        ("adding-column", Level::Low)
    );
    assert!(!with_default.rewrites);
}

#[test]
fn volatile_defaults_and_serial_columns_rewrite() {
    let f = only(
        "ALTER TABLE orders ADD COLUMN public_id uuid NOT NULL DEFAULT gen_random_uuid();",
        Postgres,
        &pg(),
    );
    assert_eq!(
        (f.code, f.level),
        ("adding-field-with-default", Level::High)
    );
    assert!(f.rewrites && f.estimated_seconds.unwrap() > 1.0);
    assert_eq!(f.lock.as_deref(), Some("ACCESS EXCLUSIVE"));
    assert_eq!(f.blocks, Blocks::ReadsAndWrites);
    let f = only(
        "ALTER TABLE orders ADD COLUMN seq bigserial;",
        Postgres,
        &pg(),
    );
    assert_eq!((f.code, f.level), ("adding-serial-field", Level::High));
    let f = only(
        "ALTER TABLE countries ADD COLUMN id2 bigint GENERATED ALWAYS AS IDENTITY;",
        Postgres,
        &pg(),
    );
    assert_eq!((f.code, f.level), ("adding-serial-field", Level::Low));
    let f = only(
        "ALTER TABLE orders ADD COLUMN at timestamptz DEFAULT now();",
        Postgres,
        &pg(),
    );
    assert_eq!(f.code, "adding-column");
    // Before PostgreSQL 11 every default rewrites.
    let mut old = pg();
    old.server = Server::parse(Postgres, "10.23");
    let f = only(
        "ALTER TABLE orders ADD COLUMN c int DEFAULT 0;",
        Postgres,
        &old,
    );
    assert_eq!(f.code, "adding-field-with-default");
}

#[test]
fn index_rules_by_size_and_concurrency() {
    let f = only(
        "CREATE INDEX orders_note ON orders (note);",
        Postgres,
        &pg(),
    );
    assert_eq!(
        (f.code, f.level, f.blocks),
        ("create-index", Level::Medium, Blocks::Writes)
    );
    assert!(f.suggestion.contains("CONCURRENTLY"));
    let f = only("CREATE INDEX c_name ON countries (name);", Postgres, &pg());
    assert_eq!(f.level, Level::Low);
    let f = only(
        "CREATE INDEX CONCURRENTLY o_note ON orders (note);",
        Postgres,
        &pg(),
    );
    assert_eq!((f.level, f.blocks), (Level::Low, Blocks::Nothing));
    let f = only("DROP INDEX orders_user_id_idx;", Postgres, &pg());
    assert_eq!((f.code, f.level), ("drop-index", Level::High));
    assert_eq!(f.table.as_deref(), Some("orders"));
    assert_eq!(f.lock.as_deref(), Some("ACCESS EXCLUSIVE"));
    // The parser does not read DROP INDEX CONCURRENTLY: keyword fallback, marked.
    let f = only(
        "DROP INDEX CONCURRENTLY IF EXISTS orders_user_id_idx;",
        Postgres,
        &pg(),
    );
    assert_eq!(
        (f.code, f.parsed, f.blocks),
        ("drop-index", false, Blocks::Nothing)
    );
    // An index on a table created by the same script is no risk.
    let r = lint(
        "CREATE TABLE t (a int);\nCREATE INDEX t_a ON t (a);\nDROP INDEX t_a;",
        Postgres,
        &pg(),
    );
    assert_eq!(codes(&r), [("create-table", Level::Low)]);
    // CREATE INDEX IF NOT EXISTS of an index the table has is a no-op.
    let r = lint(
        "CREATE INDEX IF NOT EXISTS orders_user_id_idx ON orders (user_id);",
        Postgres,
        &pg(),
    );
    assert!(r.findings.is_empty());
}

#[test]
fn never_analysed_table_is_sized_from_its_bytes() {
    let f = only(
        "CREATE INDEX audit_at ON audit_log (created_at);",
        Postgres,
        &pg(),
    );
    assert_eq!(f.level, Level::Medium);
    assert!(f.message.contains("never analysed"), "{}", f.message);
    assert!(
        f.estimated_seconds.unwrap() > 1.0,
        "{:?}",
        f.estimated_seconds
    );
    assert!(!f.message.contains("0 rows"));
}

#[test]
fn column_type_changes() {
    let f = only(
        "ALTER TABLE users ALTER COLUMN name TYPE varchar(50);",
        Postgres,
        &pg(),
    );
    assert_eq!(
        (f.code, f.level, f.rewrites),
        ("changing-column-type", Level::High, true)
    );
    let f = only(
        "ALTER TABLE users ALTER COLUMN name TYPE varchar(200);",
        Postgres,
        &pg(),
    );
    assert_eq!((f.level, f.rewrites), (Level::Low, false));
    let f = only(
        "ALTER TABLE users ALTER COLUMN email SET DATA TYPE text;",
        Postgres,
        &pg(),
    );
    assert_eq!(f.level, Level::Low);
    let f = only(
        "ALTER TABLE users ALTER COLUMN id TYPE bigint USING id::bigint;",
        Postgres,
        &pg(),
    );
    assert_eq!(f.level, Level::High);
    // A column named `type` is not a type change.
    let r = lint(
        "ALTER TABLE users ALTER COLUMN type SET DEFAULT 'x';\nALTER TABLE users ADD COLUMN \"type\" text;",
        Postgres,
        &pg(),
    );
    assert_eq!(codes(&r), [("adding-column", Level::Low)]);
    // The old type from earlier in the script counts too.
    let r = lint(
        "CREATE TABLE t (a varchar(10));\nALTER TABLE t ALTER COLUMN a TYPE text;",
        Postgres,
        &Facts::default(),
    );
    assert_eq!(codes(&r), [("create-table", Level::Low)]);
}

#[test]
fn constraints_without_not_valid() {
    let f = only(
        "ALTER TABLE orders ADD CONSTRAINT fk FOREIGN KEY (user_id) REFERENCES users (id);",
        Postgres,
        &pg(),
    );
    assert_eq!(
        (f.code, f.blocks),
        ("adding-foreign-key-constraint", Blocks::Writes)
    );
    assert_eq!(f.lock.as_deref(), Some("SHARE ROW EXCLUSIVE"));
    assert!(f.suggestion.contains("NOT VALID"));
    let r = lint(
        "ALTER TABLE orders ADD CONSTRAINT fk FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID;\nALTER TABLE orders VALIDATE CONSTRAINT fk;",
        Postgres,
        &pg(),
    );
    assert!(r.findings.is_empty(), "{:?}", r.findings);
    let f = only(
        "ALTER TABLE orders ADD CONSTRAINT pos CHECK (total >= 0);",
        Postgres,
        &pg(),
    );
    assert_eq!((f.code, f.level), ("adding-check-constraint", Level::High));
    let f = only(
        "ALTER TABLE users ADD CONSTRAINT u UNIQUE (name);",
        Postgres,
        &pg(),
    );
    assert_eq!((f.code, f.level), ("adding-unique-constraint", Level::High));
    assert!(f.suggestion.contains("USING INDEX"));
    let r = lint(
        "ALTER TABLE users ADD CONSTRAINT u UNIQUE USING INDEX users_name_idx;",
        Postgres,
        &pg(),
    );
    assert!(r.findings.is_empty());
    let r = lint(
        "ALTER TABLE users DROP CONSTRAINT users_pkey, ADD PRIMARY KEY (id, email);",
        Postgres,
        &pg(),
    );
    assert_eq!(
        codes(&r),
        [
            ("dropping-primary-key", Level::Medium),
            ("adding-primary-key", Level::High)
        ]
    );
}

#[test]
fn set_not_null_and_the_validated_check() {
    let f = only(
        "ALTER TABLE users ALTER COLUMN name SET NOT NULL;",
        Postgres,
        &pg(),
    );
    assert_eq!(
        (f.code, f.level, f.scans),
        ("set-not-null", Level::High, true)
    );
    let r = lint(
        "ALTER TABLE users ADD CONSTRAINT name_nn CHECK (name IS NOT NULL) NOT VALID;\nALTER TABLE users VALIDATE CONSTRAINT name_nn;\nALTER TABLE users ALTER COLUMN name SET NOT NULL;",
        Postgres,
        &pg(),
    );
    assert_eq!(codes(&r), [("set-not-null", Level::Low)]);
}

#[test]
fn renames_drops_and_data_changes() {
    let f = only(
        "ALTER TABLE users RENAME COLUMN name TO full_name;",
        Postgres,
        &pg(),
    );
    assert_eq!((f.code, f.level), ("renaming-column", Level::Medium));
    let f = only("ALTER TABLE orders RENAME TO purchases;", Postgres, &pg());
    assert_eq!(f.code, "renaming-table");
    let f = only("DROP TABLE countries;", Postgres, &pg());
    assert_eq!((f.code, f.level), ("drop-table", Level::High));
    assert!(f.message.contains("250 rows"), "{}", f.message);
    let f = only("ALTER TABLE users DROP COLUMN type;", Postgres, &pg());
    assert_eq!((f.code, f.level), ("drop-column", Level::High));
    let f = only(
        "ALTER TABLE users DROP CONSTRAINT users_email_key;",
        Postgres,
        &pg(),
    );
    assert_eq!((f.code, f.level), ("drop-constraint", Level::Low));
    let f = only("UPDATE orders SET note = '';", Postgres, &pg());
    assert_eq!((f.code, f.level), ("unbounded-update", Level::High));
    assert!(f.estimated_seconds.unwrap() > 10.0);
    let f = only("UPDATE countries SET name = upper(name);", Postgres, &pg());
    assert_eq!(f.level, Level::Low);
    assert!(
        lint(
            "UPDATE orders SET note = '' WHERE id < 1000;",
            Postgres,
            &pg()
        )
        .findings
        .is_empty()
    );
    let f = only("DELETE FROM users;", Postgres, &pg());
    assert_eq!((f.code, f.level), ("unbounded-delete", Level::High));
    // A table the script emptied takes a NOT NULL column (langfuse's organizations migration).
    let r = lint(
        "DELETE FROM users;\nALTER TABLE users ADD COLUMN org_id text NOT NULL;",
        Postgres,
        &pg(),
    );
    assert_eq!(codes(&r), [("unbounded-delete", Level::High)]);
    let f = only("TRUNCATE audit_log;", Postgres, &pg());
    assert_eq!((f.code, f.level), ("truncate", Level::High));
    let f = only("VACUUM FULL orders;", Postgres, &pg());
    assert_eq!(
        (f.code, f.level, f.rewrites),
        ("vacuum-full", Level::High, true)
    );
    let f = only("CLUSTER users USING users_pkey;", Postgres, &pg());
    assert_eq!((f.code, f.level, f.parsed), ("cluster", Level::High, false));
    let f = only("DROP SCHEMA legacy CASCADE;", Postgres, &pg());
    assert_eq!(f.code, "drop-schema");
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

/// MariaDB 10.11: `users` 200,000 rows, `orders` 2,000,000.
fn mariadb(version: &str) -> Facts {
    Facts {
        server: Server::parse(MySql, version),
        tables: Some(BTreeMap::from([
            (
                "users".to_owned(),
                table(
                    Rows::Estimated(200_000),
                    Some(40 << 20),
                    &[
                        ("name", "varchar(100)", false),
                        ("status", "varchar(20)", false),
                    ],
                ),
            ),
            (
                "orders".to_owned(),
                table(
                    Rows::Estimated(2_000_000),
                    Some(400 << 20),
                    &[
                        ("note", "varchar(50)", false),
                        ("total", "decimal(10,2)", true),
                    ],
                ),
            ),
        ])),
    }
}

#[test]
fn mysql_online_ddl_by_version() {
    let f = only(
        "ALTER TABLE orders ADD COLUMN c int;",
        MySql,
        &mariadb("10.11.6-MariaDB"),
    );
    assert_eq!((f.code, f.level), ("adding-column", Level::Low));
    assert_eq!(f.lock.as_deref(), Some("ALGORITHM=INSTANT"));
    let f = only(
        "ALTER TABLE orders ADD COLUMN c int;",
        MySql,
        &mariadb("10.2.44-MariaDB"),
    );
    assert_eq!(f.lock.as_deref(), Some("ALGORITHM=INPLACE, LOCK=NONE"));
    assert!(f.rewrites);
    let f = only(
        "ALTER TABLE orders ADD COLUMN c int FIRST;",
        MySql,
        &mariadb("8.0.20"),
    );
    assert!(
        f.rewrites,
        "positioned columns are instant from 8.0.29 only"
    );
    let f = only(
        "ALTER TABLE orders ADD COLUMN c int FIRST;",
        MySql,
        &mariadb("8.0.36"),
    );
    assert!(!f.rewrites);
    let r = lint(
        "ALTER TABLE orders ADD COLUMN c int, ALGORITHM=INSTANT;",
        MySql,
        &mariadb("10.2.44-MariaDB"),
    );
    assert_eq!(codes(&r)[0], ("mysql-algorithm-unsupported", Level::High));
    let f = only(
        "ALTER TABLE orders MODIFY note varchar(60);",
        MySql,
        &mariadb("10.11.6-MariaDB"),
    );
    assert_eq!((f.code, f.level), ("changing-column-type", Level::Low));
    let f = only(
        "ALTER TABLE orders MODIFY note varchar(500);",
        MySql,
        &mariadb("10.11.6-MariaDB"),
    );
    assert_eq!(
        (f.code, f.level, f.blocks),
        ("changing-column-type", Level::High, Blocks::Writes)
    );
    assert_eq!(f.lock.as_deref(), Some("ALGORITHM=COPY, LOCK=SHARED"));
    let f = only(
        "ALTER TABLE orders ADD CONSTRAINT fk FOREIGN KEY (user_id) REFERENCES users (id);",
        MySql,
        &mariadb("10.11.6-MariaDB"),
    );
    assert_eq!(
        (f.code, f.level),
        ("adding-foreign-key-constraint", Level::High)
    );
    let r = lint(
        "SET foreign_key_checks = 0;\nALTER TABLE orders ADD CONSTRAINT fk FOREIGN KEY (user_id) REFERENCES users (id);",
        MySql,
        &mariadb("10.11.6-MariaDB"),
    );
    assert_eq!(codes(&r), [("adding-foreign-key-constraint", Level::Low)]);
    let f = only(
        "ALTER TABLE users ADD INDEX idx_name (name);",
        MySql,
        &mariadb("10.11.6-MariaDB"),
    );
    assert_eq!(
        (f.code, f.level, f.blocks),
        ("create-index", Level::Low, Blocks::Nothing)
    );
    let f = only(
        "ALTER TABLE orders DROP PRIMARY KEY;",
        MySql,
        &mariadb("10.11.6-MariaDB"),
    );
    assert_eq!((f.code, f.level), ("dropping-primary-key", Level::High));
    let f = only(
        "RENAME TABLE orders TO purchases;",
        MySql,
        &mariadb("10.11.6-MariaDB"),
    );
    assert_eq!(f.code, "renaming-table");
    let f = only("OPTIMIZE TABLE orders;", MySql, &mariadb("10.11.6-MariaDB"));
    assert_eq!((f.code, f.parsed), ("table-rewrite", false));
}

/// SQLite: `Post` 5,000 rows with id, title, body; `User` 200 rows with id, name, bio.
fn sqlite() -> Facts {
    Facts {
        server: Server::parse(Sqlite, "3.45.1"),
        tables: Some(BTreeMap::from([
            (
                "Post".to_owned(),
                table(
                    Rows::Exact(5_000),
                    None,
                    &[
                        ("id", "INTEGER", true),
                        ("title", "TEXT", true),
                        ("body", "TEXT", false),
                    ],
                ),
            ),
            (
                "User".to_owned(),
                table(
                    Rows::Exact(200),
                    None,
                    &[
                        ("id", "INTEGER", true),
                        ("name", "TEXT", false),
                        ("bio", "TEXT", false),
                    ],
                ),
            ),
        ])),
    }
}

#[test]
fn sqlite_rebuilds_with_any_naming_are_not_data_loss() {
    let prisma = "PRAGMA foreign_keys=OFF;\nCREATE TABLE \"new_Post\" (\"id\" INTEGER NOT NULL PRIMARY KEY, \"title\" TEXT NOT NULL, \"body\" TEXT);\nINSERT INTO \"new_Post\" (\"id\", \"title\", \"body\") SELECT \"id\", \"title\", \"body\" FROM \"Post\";\nDROP TABLE \"Post\";\nALTER TABLE \"new_Post\" RENAME TO \"Post\";\nPRAGMA foreign_keys=ON;\n";
    let r = lint(prisma, Sqlite, &sqlite());
    assert_eq!(codes(&r), [("table-rebuild", Level::Low)]);
    assert!(r.findings[0].rewrites);
    let renamed_first = "ALTER TABLE Post RENAME TO _Post_old;\nCREATE TABLE Post (id INTEGER PRIMARY KEY, title TEXT NOT NULL, body TEXT);\nINSERT INTO Post SELECT * FROM _Post_old;\nDROP TABLE _Post_old;\n";
    let r = lint(renamed_first, Sqlite, &sqlite());
    assert_eq!(codes(&r), [("table-rebuild", Level::Low)]);
    assert_eq!(r.findings[0].table.as_deref(), Some("Post"));
    let drizzle = "CREATE TABLE `__new_User` (`id` integer PRIMARY KEY, `name` text);\nINSERT INTO `__new_User`(\"id\", \"name\") SELECT \"id\", \"name\" FROM `User`;\nDROP TABLE `User`;\nALTER TABLE `__new_User` RENAME TO `User`;\n";
    let r = lint(drizzle, Sqlite, &sqlite());
    assert_eq!(
        codes(&r),
        [("table-rebuild", Level::Low), ("drop-column", Level::High)],
        "the rebuild does not copy bio"
    );
    assert!(r.findings[1].message.contains("bio"));
    // Without the copy it is a plain drop.
    let r = lint("DROP TABLE \"Post\";", Sqlite, &sqlite());
    assert_eq!(codes(&r), [("drop-table", Level::High)]);
    // Offline, a rebuild is still a rebuild.
    let r = lint(prisma, Sqlite, &Facts::default());
    assert_eq!(codes(&r), [("table-rebuild", Level::Low)]);
}

#[test]
fn sqlite_alter_table_limits() {
    let f = only(
        "ALTER TABLE \"User\" ADD COLUMN \"age\" INTEGER NOT NULL;",
        Sqlite,
        &sqlite(),
    );
    assert_eq!((f.code, f.level), ("adding-required-field", Level::High));
    assert!(f.message.contains("SQLite refuses"));
    let f = only(
        "ALTER TABLE \"User\" ADD COLUMN \"at\" DATETIME DEFAULT CURRENT_TIMESTAMP;",
        Sqlite,
        &sqlite(),
    );
    assert_eq!(f.level, Level::High);
    let f = only(
        "ALTER TABLE \"User\" ADD COLUMN \"age\" INTEGER NOT NULL DEFAULT 0;",
        Sqlite,
        &sqlite(),
    );
    assert_eq!((f.code, f.level), ("adding-column", Level::Low));
    let f = only(
        "ALTER TABLE \"User\" DROP COLUMN \"bio\";",
        Sqlite,
        &sqlite(),
    );
    assert_eq!((f.code, f.rewrites), ("drop-column", true));
    let f = only(
        "ALTER TABLE \"User\" RENAME COLUMN \"name\" TO \"fullName\";",
        Sqlite,
        &sqlite(),
    );
    assert_eq!(f.code, "renaming-column");
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
fn drizzle_mysql_breakpoints_do_not_hide_statements() {
    let sql = "CREATE TABLE `t` (`a` int);\n--> statement-breakpoint\nDROP TABLE `users`;\n";
    let r = lint(sql, MySql, &mariadb("10.11.6-MariaDB"));
    assert_eq!(
        codes(&r),
        [("create-table", Level::Low), ("drop-table", Level::High)]
    );
    assert_eq!(r.findings[1].line, 3);
    assert!(r.statements.iter().all(|s| s.parsed));
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
