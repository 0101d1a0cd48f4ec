//! `dbdeploy new NAME`: an empty migration in the project's format, numbered as its tool does,
//! that the tool's loader (here dbdeploy's) reads back; its path is printed.

use std::path::Path;

use crate::common::{Run, TestContext, sqlite_basic};

/// A project of `tool` in `dir` with the given files.
fn project(test: &str, tool: &str, dir: &str, files: &[(&str, &str)]) -> TestContext {
    let t = TestContext::new(crate::common::Engine::Sqlite, test).unwrap();
    std::fs::write(
        t.path().join("dbdeploy.toml"),
        format!(
            "[project]\nmigration_tool = \"{tool}\"\nmigrations_dir = \"{dir}\"\n\n[environments.dev]\nurl_env = \"DATABASE_URL\"\n"
        ),
    )
    .unwrap();
    std::fs::create_dir_all(t.path().join(dir)).unwrap();
    for (name, text) in files {
        let p = t.path().join(dir).join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    t
}

/// Runs `new`, returns the printed paths (relative to the project, since it runs there).
fn new(t: &TestContext, name: &str) -> Vec<String> {
    let mut cmd = t.cmd(&["new", name]);
    cmd.current_dir(t.path());
    let run = Run::from(cmd.output().unwrap());
    run.code(0);
    assert!(run.stderr.is_empty(), "{}", run.stderr);
    run.stdout.lines().map(str::to_owned).collect()
}

fn read(t: &TestContext, p: &str) -> String {
    std::fs::read_to_string(t.path().join(p)).unwrap()
}

/// 14 digits: a UTC timestamp.
fn stamped(name: &str, prefix: &str, rest: &str) -> bool {
    name.strip_prefix(prefix)
        .and_then(|n| {
            n.get(14..)
                .map(|tail| (n[..14].bytes().all(|b| b.is_ascii_digit()), tail))
        })
        .is_some_and(|(digits, tail)| digits && tail == rest)
}

/// The new migration is pending and dbdeploy can apply it.
fn applies(t: &TestContext, expected_pending: usize) {
    let run = t.run(&["status", "dev", "--json"]);
    run.code(4);
    let doc = run.json();
    assert_eq!(
        doc["result"]["pending"].as_array().map(Vec::len),
        Some(expected_pending),
        "{doc}"
    );
    t.run(&["migrate", "dev"]).code(0);
}

#[test]
fn prisma_folder_with_migration_sql() {
    let t = sqlite_basic("new_prisma");
    t.run(&["migrate", "dev"]).code(0);
    let files = new(&t, "add_email");
    assert_eq!(files.len(), 1);
    assert!(
        stamped(&files[0], "prisma/migrations/", "_add_email/migration.sql"),
        "{files:?}"
    );
    assert_eq!(read(&t, &files[0]), "-- This is an empty migration.\n");
    applies(&t, 1);
}

#[test]
fn sqlx_single_file_or_pair_as_the_folder_does() {
    let t = project(
        "new_sqlx",
        "sqlx",
        "migrations",
        &[("20240101000000_init.sql", "CREATE TABLE a (id INTEGER);\n")],
    );
    let files = new(&t, "add_b");
    assert!(stamped(&files[0], "migrations/", "_add_b.sql"), "{files:?}");
    assert_eq!(read(&t, &files[0]), "-- Add migration script here\n");
    applies(&t, 2);

    let t = project(
        "new_sqlx_pair",
        "sqlx",
        "migrations",
        &[
            ("0001_init.up.sql", "CREATE TABLE a (id INTEGER);\n"),
            ("0001_init.down.sql", "DROP TABLE a;\n"),
        ],
    );
    assert_eq!(
        new(&t, "add_b"),
        [
            "migrations/0002_add_b.up.sql",
            "migrations/0002_add_b.down.sql"
        ]
    );
    assert_eq!(
        read(&t, "migrations/0002_add_b.down.sql"),
        "-- Add down migration script here\n"
    );
    applies(&t, 2);
}

#[test]
fn dbmate_file_with_sections() {
    let t = project("new_dbmate", "dbmate", "db/migrations", &[]);
    let files = new(&t, "create_users");
    assert!(
        stamped(&files[0], "db/migrations/", "_create_users.sql"),
        "{files:?}"
    );
    assert_eq!(
        read(&t, &files[0]),
        "-- migrate:up\n\n\n-- migrate:down\n\n"
    );
    applies(&t, 1);
}

#[test]
fn golang_migrate_pair_keeps_the_sequence() {
    let t = project(
        "new_golang",
        "golang-migrate",
        "migrations",
        &[
            ("000001_init.up.sql", "CREATE TABLE a (id INTEGER);\n"),
            ("000001_init.down.sql", "DROP TABLE a;\n"),
        ],
    );
    assert_eq!(
        new(&t, "add_b"),
        [
            "migrations/000002_add_b.up.sql",
            "migrations/000002_add_b.down.sql"
        ]
    );
    applies(&t, 2);
}

#[test]
fn drizzle_file_and_journal_entry() {
    let journal = r#"{"version":"7","dialect":"sqlite","entries":[{"idx":0,"version":"6","when":1700000000000,"tag":"0000_init","breakpoints":true}]}"#;
    let t = project(
        "new_drizzle",
        "drizzle",
        "drizzle",
        &[
            ("meta/_journal.json", journal),
            ("0000_init.sql", "CREATE TABLE a (id INTEGER);\n"),
        ],
    );
    assert_eq!(
        new(&t, "add_b"),
        ["drizzle/0001_add_b.sql", "drizzle/meta/_journal.json"]
    );
    let j: serde_json::Value =
        serde_json::from_str(&read(&t, "drizzle/meta/_journal.json")).unwrap();
    let entry = &j["entries"][1];
    assert_eq!(entry["idx"], 1);
    assert_eq!(entry["tag"], "0001_add_b");
    assert_eq!(entry["version"], "6");
    assert_eq!(entry["breakpoints"], true);
    assert!(entry["when"].as_i64().unwrap() > 1_700_000_000_000);
    assert_eq!(j["dialect"], "sqlite");
    applies(&t, 2);
}

#[test]
fn flyway_next_version() {
    let t = project(
        "new_flyway",
        "flyway",
        "db/migration",
        &[
            ("V1__init.sql", "CREATE TABLE a (id INTEGER);\n"),
            ("V2.1__more.sql", "CREATE TABLE b (id INTEGER);\n"),
        ],
    );
    assert_eq!(new(&t, "add_c"), ["db/migration/V3__add_c.sql"]);
    applies(&t, 3);
}

#[test]
fn plain_sql_keeps_the_numbering() {
    let t = project(
        "new_sql",
        "sql",
        "sql",
        &[("001_init.sql", "CREATE TABLE a (id INTEGER);\n")],
    );
    assert_eq!(new(&t, "add_b"), ["sql/002_add_b.sql"]);
    applies(&t, 2);
}

#[test]
fn bad_names_and_external_tools_are_refused() {
    let t = sqlite_basic("new_refused");
    for bad in ["add users", "../escape", "x.y", ""] {
        let run = t.run(&["new", bad]);
        run.code(2);
        assert!(run.stderr.contains("letters, digits"), "{}", run.stderr);
    }
    assert_eq!(
        std::fs::read_dir(t.migrations()).unwrap().count(),
        std::fs::read_dir(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations-fixtures/prisma/sqlite-basic")
        )
        .unwrap()
        .count()
    );
    std::fs::write(
        t.path().join("dbdeploy.toml"),
        "[project]\nmigration_tool = \"command\"\nstatus_command = \"true\"\napply_command = \"true\"\n",
    )
    .unwrap();
    let run = t.run(&["new", "x"]);
    run.code(2);
    assert!(run.stderr.contains("your tool"), "{}", run.stderr);
}

#[test]
fn json_names_the_files() {
    let t = project("new_json", "dbmate", "db/migrations", &[]);
    let run = t.run(&["new", "x", "--json"]);
    run.code(0);
    let doc = run.json();
    assert_eq!(doc["operation"], "new-migration");
    assert_eq!(doc["result"]["migration_tool"], "dbmate");
    assert_eq!(doc["result"]["files"].as_array().map(Vec::len), Some(1));
}
