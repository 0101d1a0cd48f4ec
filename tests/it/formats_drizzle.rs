//! drizzle-kit migrations on every engine, through the CLI: the rows drizzle writes, back-dated
//! journal entries, failures, history written by drizzle itself, and folder problems.

use serde_json::Value;

use crate::common::{Engine, TestContext};
use crate::engine_test;
use crate::formats_support::{applied_names, configure, count, names, write};

const DRIZZLE_WHEN: [&str; 4] = [
    "1717171717171",
    "1717181818181",
    "1717191919191",
    "1717202020202",
];

const DRIZZLE_TAGS: [&str; 4] = [
    "0000_lush_ironman",
    "0001_tidy_posts",
    "0002_custom_comment_only",
    "0003_crlf_tags",
];

/// `sha256sum` of each fixture file as it is, CRLF included, as drizzle-orm 0.45.4 hashes it
/// (`0003_crlf_tags.sql` has CRLF line endings; tests/compat compares with drizzle-kit).
fn drizzle_hashes(engine: Engine) -> [&'static str; 4] {
    match engine {
        Engine::Postgres => [
            "aba2b3a4c5f2a88918241739decf770fcd5294aea9720d04160dd9644fb24f79",
            "0c99ba58bff3fb59517d8fea1369db09d5f5ba04ff9dfbbeb7a51c10312acfab",
            "49a0fa6e06db91f39903f070ad7a4ae2760463f8710ee67ee5848275d3ed7d53",
            "e38e63106914a3727dfd6f10b0697a8dde896061e03cbcd5d32424d6758e6f42",
        ],
        Engine::MariaDb => [
            "d2bb2e8cea510b232d9bcd040d97f47808ac5fe62f3c454c2e454e03287737f1",
            "486dab5cf47ceb4bf30c63db4ec78e9fd354ac19fd714ae6831d021c1c6187d9",
            "49a0fa6e06db91f39903f070ad7a4ae2760463f8710ee67ee5848275d3ed7d53",
            "588e81e79485ebd31ebf8c80b27b03062d8b31a7bb00895efaa95648a00b977e",
        ],
        Engine::Sqlite => [
            "59021947b87e8564dc6a9b3080d3b281e909c8bd05eb9d50fd79a47786b8bdff",
            "b6d73fb4f839afb2ca62e12e1fc41c1363db07ee74eea3dea84b882fa895f1bc",
            "49a0fa6e06db91f39903f070ad7a4ae2760463f8710ee67ee5848275d3ed7d53",
            "d2ae531ad1ccba3e68873b9746ee2b84924f73a0f136992d4d5064782c969278",
        ],
    }
}

fn drizzle_table(engine: Engine) -> &'static str {
    if engine == Engine::Postgres {
        "drizzle.__drizzle_migrations"
    } else {
        "__drizzle_migrations"
    }
}

/// `hash|created_at` per row of drizzle's table, oldest first.
fn drizzle_rows(t: &TestContext) -> Vec<String> {
    t.sql(&format!(
        "SELECT hash, created_at FROM {} ORDER BY created_at",
        drizzle_table(t.engine)
    ))
}

fn drizzle_expected(t: &TestContext, n: usize) -> Vec<String> {
    drizzle_hashes(t.engine)
        .iter()
        .zip(DRIZZLE_WHEN)
        .take(n)
        .map(|(h, w)| format!("{h}|{w}"))
        .collect()
}

fn drizzle_project(t: &TestContext) {
    configure(
        t,
        "drizzle",
        "drizzle",
        &format!("drizzle/{}-basic", t.engine.provider()),
    );
}

/// Adds an entry to the project's journal and writes its script.
fn add_journal_entry(t: &TestContext, tag: &str, when: i64, sql: &str) {
    let path = t.path().join("drizzle/meta/_journal.json");
    let mut journal: Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("journal")).expect("json");
    let entries = journal["entries"].as_array_mut().expect("entries");
    let idx = entries.len();
    entries.push(serde_json::json!({
        "idx": idx, "version": "7", "when": when, "tag": tag, "breakpoints": true
    }));
    std::fs::write(&path, serde_json::to_string_pretty(&journal).expect("json")).expect("write");
    write(t, &format!("drizzle/{tag}.sql"), sql);
}

engine_test!(drizzle_deploy_writes_drizzles_own_rows, |t| {
    drizzle_project(t);
    let run = t.run(&["migrate", "dev", "--json"]);
    run.code(0);
    assert_eq!(applied_names(&run), DRIZZLE_TAGS);
    assert_eq!(drizzle_rows(t), drizzle_expected(t, 4));
    assert_eq!(count(t, "tags"), "1");
    if t.engine == Engine::Postgres {
        // drizzle's SERIAL id, in its own schema.
        assert_eq!(
            t.sql("SELECT id FROM drizzle.__drizzle_migrations ORDER BY id"),
            ["1", "2", "3", "4"]
        );
        assert!(!t.tables().contains(&"__drizzle_migrations".to_owned()));
    }
    let again = t.run(&["migrate", "dev", "--json"]);
    again.code(0);
    assert_eq!(again.json()["result"]["migrations_applied"], 0);
    assert_eq!(drizzle_rows(t), drizzle_expected(t, 4));
    t.run(&["status", "dev"]).code(0);
});

engine_test!(drizzle_back_dated_entry_is_reported_and_applied, |t| {
    drizzle_project(t);
    t.run(&["migrate", "dev"]).code(0);
    // Merged from a branch whose migration was generated before the newest applied one:
    // drizzle would skip it for good.
    add_journal_entry(
        t,
        "0004_branch_notes",
        1_717_175_000_000,
        "CREATE TABLE notes (\n\tid integer NOT NULL\n);\n",
    );
    let status = t.run(&["status", "dev", "--json"]);
    status.code(4);
    let doc = status.json();
    assert_eq!(names(&doc, "pending"), ["0004_branch_notes"]);
    assert_eq!(names(&doc, "out_of_order"), ["0004_branch_notes"]);

    let run = t.run(&["migrate", "dev", "--json"]);
    run.code(0);
    assert_eq!(applied_names(&run), ["0004_branch_notes"]);
    assert!(
        run.stderr
            .contains("`0004_branch_notes` is older than the last applied"),
        "{}",
        run.stderr
    );
    let rows = drizzle_rows(t);
    assert!(
        rows.iter().any(|r| r.ends_with("|1717175000000")),
        "{rows:?}"
    );
    assert_eq!(rows.len(), 5);
    t.run(&["status", "dev"]).code(0);
});

engine_test!(drizzle_failure_is_rolled_back_or_blocks, |t| {
    drizzle_project(t);
    t.run(&["migrate", "dev"]).code(0);
    add_journal_entry(
        t,
        "0004_broken",
        1_717_303_030_303,
        "CREATE TABLE half (\n\tid integer NOT NULL\n);\n--> statement-breakpoint\nINSERT INTO does_not_exist (id) VALUES (1);",
    );
    let run = t.run(&["migrate", "dev"]);
    run.code(1);
    assert_eq!(drizzle_rows(t), drizzle_expected(t, 4));
    let tables = t.tables();
    if t.engine == Engine::MariaDb {
        // drizzle has no failed state; dbdeploy's note blocks until resolved.
        assert!(tables.contains(&"half".to_owned()), "{tables:?}");
        assert_eq!(
            t.sql("SELECT tool, name, checksum FROM _dbdeploy_unfinished"),
            [format!(
                "drizzle|0004_broken|{}",
                "d3fc429584066af0f460b1848e8656c60009fcc1be22c822904e9b1a414ccf62"
            )]
        );
        let status = t.run(&["status", "dev", "--json"]);
        status.code(5);
        assert_eq!(names(&status.json(), "failed"), ["0004_broken"]);
        t.run(&["migrate", "dev"]).code(1);
        t.run(&["resolve", "dev", "--rolled-back", "0004_broken"])
            .code(0);
        assert_eq!(count(t, "_dbdeploy_unfinished"), "0");
        t.sql("DROP TABLE half");
    } else {
        assert!(!tables.contains(&"half".to_owned()), "{tables:?}");
        t.run(&["status", "dev"]).code(4);
    }
    write(
        t,
        "drizzle/0004_broken.sql",
        "CREATE TABLE half (\n\tid integer NOT NULL\n);\n",
    );
    t.run(&["migrate", "dev"]).code(0);
    let rows = drizzle_rows(t);
    assert_eq!(rows.len(), 5, "{rows:?}");
    assert!(rows[4].ends_with("|1717303030303"), "{rows:?}");
});

engine_test!(drizzle_history_written_by_drizzle_is_read, |t| {
    drizzle_project(t);
    // What drizzle's migrator leaves after the first two entries (its DDL, its rows).
    let hashes = drizzle_hashes(t.engine);
    match t.engine {
        Engine::Postgres => {
            t.sql("CREATE SCHEMA IF NOT EXISTS drizzle");
            t.sql("CREATE TABLE IF NOT EXISTS drizzle.__drizzle_migrations (id SERIAL PRIMARY KEY, hash text NOT NULL, created_at bigint)")
        }
        Engine::MariaDb => t.sql(
            "create table if not exists __drizzle_migrations (id serial primary key, hash text not null, created_at bigint)",
        ),
        Engine::Sqlite => t.sql(
            "CREATE TABLE IF NOT EXISTS __drizzle_migrations (id SERIAL PRIMARY KEY, hash text NOT NULL, created_at numeric)",
        ),
    };
    for i in 0..2 {
        t.sql(&format!(
            "INSERT INTO {} (hash, created_at) VALUES ('{}', {})",
            drizzle_table(t.engine),
            hashes[i],
            DRIZZLE_WHEN[i]
        ));
    }
    let q = |s: &str| t.engine.q(s);
    t.sql(&format!(
        "CREATE TABLE {} ({} integer)",
        q("users"),
        q("id")
    ));
    t.sql(&format!(
        "CREATE TABLE {} ({} integer)",
        q("posts"),
        q("id")
    ));
    let status = t.run(&["status", "dev", "--json"]);
    status.code(4);
    let doc = status.json();
    assert_eq!(names(&doc, "applied"), &DRIZZLE_TAGS[..2]);
    assert_eq!(names(&doc, "pending"), &DRIZZLE_TAGS[2..]);
    t.run(&["migrate", "dev"]).code(0);
    assert_eq!(drizzle_rows(t), drizzle_expected(t, 4));
});

engine_test!(drizzle_folder_problems_are_reported, |t| {
    drizzle_project(t);
    write(t, "drizzle/0099_handwritten.sql", "SELECT 1;\n");
    let run = t.run(&["migrate", "dev", "--dry-run"]);
    run.code(0);
    assert!(
        run.all()
            .contains("0099_handwritten.sql is not in meta/_journal.json"),
        "{}",
        run.all()
    );
    std::fs::remove_file(t.path().join("drizzle/0001_tidy_posts.sql")).expect("rm");
    let run = t.run(&["migrate", "dev"]);
    run.code(2);
    assert!(run.stderr.contains("0001_tidy_posts.sql"), "{}", run.stderr);
    assert!(run.stderr.contains("is missing"), "{}", run.stderr);
    assert!(t.tables().is_empty(), "{:?}", t.tables());
});

#[test]
fn drizzle_postgresql_failure_after_concurrently_is_noted_and_blocks() {
    let Some(t) = TestContext::new(Engine::Postgres, "drizzle_pg_concurrently") else {
        return;
    };
    configure(&t, "drizzle", "drizzle", "drizzle/postgresql-concurrently");
    let run = t.run(&["migrate", "dev"]);
    run.code(1);
    assert!(
        run.stderr.contains("migration `0001_title_index` failed"),
        "{}",
        run.stderr
    );
    assert_eq!(drizzle_rows(&t).len(), 1);
    assert_eq!(
        t.sql("SELECT name FROM _dbdeploy_unfinished WHERE tool = 'drizzle'"),
        ["0001_title_index"]
    );
    t.run(&["status", "dev"]).code(5);
    let blocked = t.run(&["migrate", "dev"]);
    blocked.code(1);
    assert!(
        blocked
            .stderr
            .contains("failed migration 0001_title_index must be resolved"),
        "{}",
        blocked.stderr
    );
    // The index was built before the failure; finishing by hand means the rest is not wanted.
    t.run(&["resolve", "dev", "--applied", "0001_title_index"])
        .code(0);
    assert_eq!(drizzle_rows(&t).len(), 2);
    assert_eq!(count(&t, "_dbdeploy_unfinished"), "0");
    t.run(&["status", "dev"]).code(0);
}
