//! Property tests: the parsers that read user input never panic, whatever the input, and what
//! they return holds together. Arbitrary text goes to the SQL splitter and its classifiers
//! (every dialect) and to the configuration parser; arbitrary folder trees (odd names,
//! non-UTF-8 and binary files, symlinks, nesting) go to each format's folder parser.
//!
//! **Adding a format** (sqlx, dbmate, drizzle, golang-migrate, flyway, plain SQL, ...): add one
//! test that calls [`folder_parser_never_panics`] with its `MigrationTool` and the file and
//! folder names that format looks for, so that generated trees hit its real code paths:
//!
//! ```ignore
//! #[test]
//! fn dbmate_folder_parser_never_panics() {
//!     folder_parser_never_panics(MigrationTool::Dbmate, &["20240101000000_init.sql", "-- migrate:up", "-- migrate:down"]);
//! }
//! ```
//!
//! The number of cases per property is `PROPTEST_CASES` (64 when unset, to keep CI fast); run
//! `PROPTEST_CASES=20000 cargo test --test it proptests` for a longer search.
#![allow(clippy::disallowed_methods)]

use std::path::Path;

use dbdeploy::config::{Config, MigrationTool};
use dbdeploy::engine::Dialect;
use dbdeploy::handler;
use dbdeploy::sql::split;
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestRunner};

const DIALECTS: [Dialect; 3] = [Dialect::Postgres, Dialect::MySql, Dialect::Sqlite];

/// The case count: `PROPTEST_CASES`, or a small default for CI.
fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    ProptestConfig {
        cases,
        // Failures are reported with their minimal input; no files are written next to the
        // sources.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Text made of SQL's tricky pieces (quotes, dollar quotes, comments, compound bodies,
/// transaction control) mixed with arbitrary unicode.
fn sql_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        any::<String>(),
        "[a-zA-Z_ ]{0,8}",
        Just("'".to_owned()),
        Just("\"".to_owned()),
        Just("`".to_owned()),
        Just("\\".to_owned()),
        Just("E'".to_owned()),
        Just("$$".to_owned()),
        Just("$tag$".to_owned()),
        Just("$1".to_owned()),
        Just("--".to_owned()),
        Just("-- c\n".to_owned()),
        Just("#".to_owned()),
        Just("/*".to_owned()),
        Just("*/".to_owned()),
        Just("/*!".to_owned()),
        Just("[".to_owned()),
        Just("]".to_owned()),
        Just(";".to_owned()),
        Just("\n".to_owned()),
        Just("\r\n".to_owned()),
        Just(" BEGIN ".to_owned()),
        Just(" END ".to_owned()),
        Just(" END IF ".to_owned()),
        Just(" COMMIT ".to_owned()),
        Just(" CASE ".to_owned()),
        Just("CREATE TRIGGER t BEFORE INSERT ON x FOR EACH ROW BEGIN ".to_owned()),
        Just("CREATE FUNCTION f() RETURNS int AS $$ ".to_owned()),
        Just("CREATE PROCEDURE p() BEGIN ".to_owned()),
        Just("DELIMITER //".to_owned()),
        Just("CREATE INDEX CONCURRENTLY i ON t (c)".to_owned()),
        Just("PRAGMA foreign_keys=OFF".to_owned()),
        Just("é✓表".to_owned()),
    ];
    prop::collection::vec(piece, 0..40).prop_map(|v| v.concat())
}

#[test]
fn sql_splitter_never_panics_and_returns_slices_of_the_input() {
    TestRunner::new(config())
        .run(&sql_text(), |sql| {
            let lines = sql.matches('\n').count() + 1;
            for dialect in DIALECTS {
                let statements = split::split(&sql, dialect);
                let mut last_end = 0;
                let mut last_line = 1;
                for s in &statements {
                    // Each statement is a non-empty, trimmed piece of the input, in order.
                    let start = s.text.as_ptr() as usize - sql.as_ptr() as usize;
                    prop_assert!(start + s.text.len() <= sql.len());
                    prop_assert!(start >= last_end, "statements overlap");
                    // Whitespace as SQL knows it (ASCII; servers treat U+2000 and the like as
                    // text, and so does the splitter). An unterminated quote runs to the end,
                    // trailing whitespace included.
                    prop_assert!(!s.text.trim_ascii().is_empty());
                    prop_assert_eq!(s.text, s.text.trim_ascii_start());
                    prop_assert!(s.line >= last_line && s.line <= lines);
                    last_end = start + s.text.len();
                    last_line = s.line;
                    let _ = split::non_transactional_reason(s.text, dialect);
                    let _ = split::is_transaction_control(s.text);
                    let _ = split::normalized(s.text);
                }
                let _ = split::is_empty_script(&sql);
                let _ = dbdeploy::migration::TxMode::analyze(&sql, dialect, None);
            }
            Ok(())
        })
        .unwrap();
}

/// Text made of TOML's pieces and dbdeploy's keys, mixed with arbitrary unicode.
fn toml_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        any::<String>(),
        Just("[project]\n".to_owned()),
        Just("[environments.dev]\n".to_owned()),
        Just("[environments.\"a b\"]\n".to_owned()),
        Just("[[environments]]\n".to_owned()),
        Just("[backup]\n".to_owned()),
        Just("[audit]\n".to_owned()),
        Just("migration_tool = \"prisma\"\n".to_owned()),
        Just("url = \"sqlite://x.db\"\n".to_owned()),
        Just("url_env = \"DATABASE_URL\"\n".to_owned()),
        Just("protected = true\n".to_owned()),
        Just("mode = \"deploy\"\n".to_owned()),
        Just("lock_timeout_seconds = 18446744073709551615\n".to_owned()),
        Just("keep = -1\n".to_owned()),
        Just("environments = { dev = { url = 1 } }\n".to_owned()),
        Just("\"\"\"".to_owned()),
        Just("'''".to_owned()),
        Just("=".to_owned()),
        Just("\"".to_owned()),
        Just("[".to_owned()),
        Just("]".to_owned()),
        Just("{".to_owned()),
        Just("}".to_owned()),
        Just(".".to_owned()),
        Just("#".to_owned()),
        Just("\n".to_owned()),
        Just("1979-05-27T07:32:00Z".to_owned()),
        Just("inf".to_owned()),
        Just("\\u0000".to_owned()),
    ];
    prop::collection::vec(piece, 0..30).prop_map(|v| v.concat())
}

#[test]
fn config_parser_never_panics() {
    TestRunner::new(config())
        .run(&toml_text(), |text| {
            if let Err(e) = Config::parse(&text, Path::new("dbdeploy.toml")) {
                // Every error names the file.
                prop_assert!(e.to_string().contains("dbdeploy.toml"), "{}", e);
            }
            Ok(())
        })
        .unwrap();
}

/// One entry of a generated migrations tree.
#[derive(Debug, Clone)]
enum Entry {
    /// A file at `path` (relative, 1 to 3 components) with these bytes.
    File(Vec<String>, Vec<u8>),
    /// A folder.
    Dir(Vec<String>),
    /// A symbolic link to `target` (which may not exist, or loop).
    Link(Vec<String>, String),
}

/// File and folder names: the ones the format looks for, timestamps, and arbitrary ones.
fn name(known: &'static [&'static str]) -> impl Strategy<Value = String> {
    let arbitrary = "[^/\\x00]{1,24}".prop_filter("not . or ..", |n| n != "." && n != "..");
    prop_oneof![
        3 => prop::sample::select(known).prop_map(str::to_owned),
        2 => "[0-9]{14}_[a-z_]{1,10}",
        2 => arbitrary,
    ]
}

fn contents(known: &'static [&'static str]) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        sql_text().prop_map(String::into_bytes),
        prop::collection::vec(any::<u8>(), 0..64),
        prop::sample::select(known).prop_map(|k| k.as_bytes().to_vec()),
        Just(b"provider = \"sqlite\"\n".to_vec()),
    ]
}

fn entries(known: &'static [&'static str]) -> impl Strategy<Value = Vec<Entry>> {
    let path = move || prop::collection::vec(name(known), 1..4);
    let entry = prop_oneof![
        4 => (path(), contents(known)).prop_map(|(p, c)| Entry::File(p, c)),
        2 => path().prop_map(Entry::Dir),
        1 => (path(), prop_oneof![Just(".".to_owned()), Just("..".to_owned()), name(known)])
            .prop_map(|(p, t)| Entry::Link(p, t)),
    ];
    prop::collection::vec(entry, 0..12)
}

/// Builds the tree; entries that clash with earlier ones are skipped, as a file system would.
fn build(root: &Path, tree: &[Entry]) {
    for entry in tree {
        let (parts, kind) = match entry {
            Entry::File(p, _) | Entry::Dir(p) | Entry::Link(p, _) => (p, entry),
        };
        let path = parts.iter().fold(root.to_path_buf(), |p, n| p.join(n));
        if let Some(parent) = path.parent()
            && std::fs::create_dir_all(parent).is_err()
        {
            continue;
        }
        let _ = match kind {
            Entry::File(_, bytes) => std::fs::write(&path, bytes),
            Entry::Dir(_) => std::fs::create_dir_all(&path),
            Entry::Link(_, target) => std::os::unix::fs::symlink(target, &path),
        };
    }
}

/// The property every format's folder parser must have: any tree of files gives migrations or
/// an error, never a panic; migrations come back in order with unique names.
pub fn folder_parser_never_panics(tool: MigrationTool, known: &'static [&'static str]) {
    let handler = handler::for_tool(tool).expect("a format with a migrations folder");
    // Formats ordered by version (sqlx, golang-migrate, Flyway) or by a journal (drizzle) do
    // not come back in name order; every format's names are unique.
    let name_ordered = matches!(tool, MigrationTool::Prisma | MigrationTool::Sql);
    TestRunner::new(config())
        .run(&entries(known), |tree| {
            let root = tempfile::tempdir().unwrap();
            let dir = root.path().join("migrations");
            std::fs::create_dir(&dir).unwrap();
            build(&dir, &tree);
            for dialect in DIALECTS {
                match handler.load(&dir, dialect) {
                    Ok(set) => {
                        let names: Vec<&str> =
                            set.migrations.iter().map(|m| m.name.as_str()).collect();
                        let mut sorted = names.clone();
                        sorted.sort_unstable();
                        sorted.dedup();
                        prop_assert_eq!(sorted.len(), names.len(), "duplicated names");
                        if name_ordered {
                            prop_assert_eq!(&names, &sorted, "out of name order");
                        }
                    }
                    Err(e) => prop_assert!(!e.to_string().is_empty()),
                }
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn prisma_folder_parser_never_panics() {
    folder_parser_never_panics(
        MigrationTool::Prisma,
        &[
            "migration.sql",
            "migration_lock.toml",
            "20240101000000_init",
            "20240102000000_next",
            "README.md",
        ],
    );
}

#[test]
fn sqlx_folder_parser_never_panics() {
    folder_parser_never_panics(
        MigrationTool::Sqlx,
        &[
            "1_init.sql",
            "2_next.up.sql",
            "2_next.down.sql",
            "10_ten.sql",
            "-- no-transaction",
        ],
    );
}

#[test]
fn dbmate_folder_parser_never_panics() {
    folder_parser_never_panics(
        MigrationTool::Dbmate,
        &[
            "20240101000000_init.sql",
            "2_x.sql",
            "-- migrate:up",
            "  -- migrate:down",
            "-- migrate:up transaction:false",
        ],
    );
}

#[test]
fn golang_migrate_folder_parser_never_panics() {
    folder_parser_never_panics(
        MigrationTool::GolangMigrate,
        &[
            "1_init.up.sql",
            "1_init.down.sql",
            "10_x.up.sql",
            "2_y.down.sql",
        ],
    );
}

#[test]
fn drizzle_folder_parser_never_panics() {
    folder_parser_never_panics(
        MigrationTool::Drizzle,
        &[
            "meta",
            "_journal.json",
            "0000_init.sql",
            "0001_next.sql",
            "--> statement-breakpoint",
        ],
    );
}

#[test]
fn flyway_folder_parser_never_panics() {
    folder_parser_never_panics(
        MigrationTool::Flyway,
        &[
            "V1__init.sql",
            "V1_2__x.sql",
            "R__views.sql",
            "V2__y.sql.conf",
            "executeInTransaction=false",
        ],
    );
}

#[test]
fn plain_sql_folder_parser_never_panics() {
    folder_parser_never_panics(
        MigrationTool::Sql,
        &[
            "001_init.sql",
            "002_next.sql",
            "x.down.sql",
            "-- dbdeploy:no-transaction",
        ],
    );
}
