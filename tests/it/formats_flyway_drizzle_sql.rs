//! Flyway-style, drizzle-kit and plain SQL migrations deployed through the CLI on every
//! engine: the exact tracking rows each tool writes, re-runs, failures recorded the tool's way,
//! repeatable and back-dated migrations, history written by the tool itself, and `init`.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::{Engine, Run, TestContext, copy_dir};
use crate::engine_test;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations-fixtures")
}

/// Copies `migrations-fixtures/<fixture>` to `<project>/<dir>` and configures `tool` there.
fn project(t: &TestContext, tool: &str, dir: &str, fixture: &str) {
    let dst = t.path().join(dir);
    let _ = std::fs::remove_dir_all(&dst);
    copy_dir(&fixtures().join(fixture), &dst);
    std::fs::write(
        t.path().join("dbdeploy.toml"),
        format!(
            "[project]\nmigration_tool = \"{tool}\"\nmigrations_dir = \"{dir}\"\n\n\
             [environments.dev]\nurl_env = \"DATABASE_URL\"\n\n\
             [environments.production]\nurl_env = \"DATABASE_URL\"\nprotected = true\n"
        ),
    )
    .expect("write config");
}

fn names(doc: &Value, key: &str) -> Vec<String> {
    let list = doc["result"][key]
        .as_array()
        .unwrap_or_else(|| panic!("no result.{key} in {doc}"));
    list.iter()
        .map(|m| {
            m.as_str()
                .or_else(|| m["name"].as_str())
                .expect("a name")
                .to_owned()
        })
        .collect()
}

fn applied_names(run: &Run) -> Vec<String> {
    names(&run.json(), "migrations")
}

fn write(t: &TestContext, rel: &str, text: &str) {
    let path = t.path().join(rel);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, text).expect("write");
}

fn count(t: &TestContext, table: &str) -> String {
    t.sql(&format!("SELECT COUNT(*) FROM {table}")).join("")
}

// Flyway ------------------------------------------------------------------------------------

const FLYWAY_DIR: &str = "db/migration";

/// `rank|version|description|type|script|checksum|ok-or-failed` per row of the history table.
fn flyway_rows(t: &TestContext) -> Vec<String> {
    t.sql(
        "SELECT installed_rank, COALESCE(version, '-'), description, type, script, \
         COALESCE(checksum, 0), CASE WHEN success THEN 'ok' ELSE 'failed' END \
         FROM flyway_schema_history ORDER BY installed_rank",
    )
}

/// The rows Flyway writes for `migrations-fixtures/flyway/basic`; checksums computed with
/// Python's `zlib.crc32` over the lines without terminators, as signed 32-bit integers.
const FLYWAY_BASIC: [&str; 8] = [
    "1|1|create users|SQL|V1__create_users.sql|193722971|ok",
    "2|1.1|add email|SQL|V1_1__add_email.sql|-789335033|ok",
    "3|1.12.2|posts|SQL|V1.12.2__posts.sql|1657904967|ok",
    "4|1.12.10|post user index|SQL|V1_12_10__post_user_index.sql|-561335114|ok",
    "5|2|comment only|SQL|V2__comment_only.sql|197487311|ok",
    "6|2.1|seed users|SQL|V2_1__seed users.sql|-1472550498|ok",
    "7|3|empty|SQL|V3__empty.sql|0|ok",
    "8|-|user names|SQL|R__user_names.sql|-1823359598|ok",
];

engine_test!(flyway_deploy_writes_flyways_own_rows, |t| {
    project(t, "flyway", FLYWAY_DIR, "flyway/basic");
    let run = t.run(&["migrate", "dev", "--json"]);
    run.code(0);
    assert_eq!(
        applied_names(&run),
        [
            "1",
            "1.1",
            "1.12.2",
            "1.12.10",
            "2",
            "2.1",
            "3",
            "user names"
        ]
    );
    assert!(
        run.stderr.contains("afterMigrate.sql is ignored") && run.stderr.contains("callback"),
        "{}",
        run.stderr
    );
    assert_eq!(flyway_rows(t), FLYWAY_BASIC);
    assert_eq!(count(t, "user_names"), "2");

    // installed_by is the database user, as Flyway's `doGetCurrentUser` reads it.
    let by = t.sql("SELECT DISTINCT installed_by FROM flyway_schema_history");
    match t.engine {
        Engine::Postgres => assert_eq!(by, ["postgres"]),
        Engine::MariaDb => assert_eq!(by, ["root"]),
        Engine::Sqlite => assert_eq!(by.len(), 1, "{by:?}"),
    }
    let mut index = match t.engine {
        Engine::Postgres => t.sql(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'flyway_schema_history' ORDER BY 1",
        ),
        Engine::MariaDb => t.sql(
            "SELECT DISTINCT index_name FROM information_schema.statistics \
             WHERE table_schema = DATABASE() AND table_name = 'flyway_schema_history' ORDER BY 1",
        ),
        Engine::Sqlite => t.sql(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'flyway_schema_history' ORDER BY 1",
        ),
    };
    let expected_pk = match t.engine {
        Engine::Postgres => Some("flyway_schema_history_pk"),
        Engine::MariaDb => Some("PRIMARY"),
        Engine::Sqlite => Some("sqlite_autoindex_flyway_schema_history_1"),
    };
    let mut expected: Vec<&str> = expected_pk.into_iter().collect();
    expected.push("flyway_schema_history_s_idx");
    expected.sort_unstable();
    index.sort_unstable();
    assert_eq!(index, expected);

    // Again: nothing to do, nothing written.
    let again = t.run(&["migrate", "dev", "--json"]);
    again.code(0);
    assert_eq!(again.json()["result"]["migrations_applied"], 0);
    assert_eq!(flyway_rows(t), FLYWAY_BASIC);
    let status = t.run(&["status", "dev", "--json"]);
    status.code(0);
    assert_eq!(names(&status.json(), "applied").len(), 8);
});

engine_test!(flyway_changed_repeatable_runs_again_with_a_new_row, |t| {
    project(t, "flyway", FLYWAY_DIR, "flyway/basic");
    t.run(&["migrate", "dev"]).code(0);
    let view = "DROP VIEW IF EXISTS user_names;\nCREATE VIEW user_names AS SELECT name, email FROM users;\n";
    write(t, "db/migration/R__user_names.sql", view);

    let status = t.run(&["status", "dev", "--json"]);
    status.code(4);
    let doc = status.json();
    assert_eq!(names(&doc, "pending"), ["user names"]);
    assert!(names(&doc, "modified").is_empty(), "{doc}");

    let run = t.run(&["migrate", "dev", "--json"]);
    run.code(0);
    assert_eq!(applied_names(&run), ["user names"]);
    let mut expected: Vec<String> = FLYWAY_BASIC.iter().map(|s| (*s).to_owned()).collect();
    // zlib.crc32(b"DROP VIEW IF EXISTS user_names;CREATE VIEW user_names AS SELECT name, email FROM users;")
    expected.push("9|-|user names|SQL|R__user_names.sql|91046060|ok".into());
    assert_eq!(flyway_rows(t), expected);
    assert_eq!(
        t.sql("SELECT email FROM user_names WHERE name = 'ada'"),
        ["ada@example.com"]
    );
    t.run(&["status", "dev"]).code(0);
});

engine_test!(
    flyway_lower_version_added_later_is_reported_out_of_order,
    |t| {
        project(t, "flyway", FLYWAY_DIR, "flyway/basic");
        t.run(&["migrate", "dev"]).code(0);
        write(
            t,
            "db/migration/V1_5__late_branch.sql",
            "CREATE TABLE late (id INT PRIMARY KEY);\n",
        );

        let status = t.run(&["status", "dev", "--json"]);
        status.code(4);
        assert_eq!(names(&status.json(), "out_of_order"), ["1.5"]);
        let human = t.run(&["status", "dev"]);
        assert!(
            human
                .stdout
                .contains("1.5  V1_5__late_branch.sql  (out of order)"),
            "{}",
            human.stdout
        );

        let run = t.run(&["migrate", "dev", "--json"]);
        run.code(0);
        assert_eq!(applied_names(&run), ["1.5"]);
        assert!(
            run.stderr.contains("`1.5` is older than the last applied"),
            "{}",
            run.stderr
        );
        assert_eq!(
            flyway_rows(t).last().map(String::as_str),
            Some("9|1.5|late branch|SQL|V1_5__late_branch.sql|1717146423|ok")
        );
    }
);

engine_test!(flyway_edited_or_deleted_versioned_migration_is_drift, |t| {
    project(t, "flyway", FLYWAY_DIR, "flyway/basic");
    t.run(&["migrate", "dev"]).code(0);
    write(
        t,
        "db/migration/V1_1__add_email.sql",
        "ALTER TABLE users ADD COLUMN email VARCHAR(100);\n",
    );
    let run = t.run(&["migrate", "dev"]);
    run.code(1);
    assert!(
        run.stderr
            .contains("applied migration 1.1 was edited after it was applied"),
        "{}",
        run.stderr
    );
    t.run(&["status", "dev"]).code(5);

    copy_dir(&fixtures().join("flyway/basic"), &t.path().join(FLYWAY_DIR));
    std::fs::remove_file(t.path().join("db/migration/V2__comment_only.sql")).expect("rm");
    let run = t.run(&["migrate", "dev"]);
    run.code(1);
    assert!(
        run.stderr
            .contains("applied migration 2 is missing from the migrations folder"),
        "{}",
        run.stderr
    );
    assert_eq!(flyway_rows(t), FLYWAY_BASIC);
});

engine_test!(flyway_failure_is_recorded_flyways_way_and_blocks, |t| {
    project(t, "flyway", FLYWAY_DIR, "flyway/fails-halfway");
    let run = t.run(&["migrate", "dev"]);
    run.code(1);
    assert!(
        run.stderr.contains("migration `2` failed"),
        "{}",
        run.stderr
    );
    let tables = t.tables();
    assert!(!tables.contains(&"never".to_owned()), "{tables:?}");
    if t.engine == Engine::MariaDb {
        // No transactional DDL: the first statement stays, and the row says success = false.
        assert!(tables.contains(&"tags".to_owned()), "{tables:?}");
        assert_eq!(
            flyway_rows(t),
            [
                "1|1|init|SQL|V1__init.sql|-1564980220|ok",
                "2|2|broken|SQL|V2__broken.sql|561710994|failed",
            ]
        );
        let again = t.run(&["migrate", "dev"]);
        again.code(1);
        assert!(
            again.stderr.contains("failed migration 2 must be resolved"),
            "{}",
            again.stderr
        );
        assert!(again.stderr.contains("flyway repair"), "{}", again.stderr);
        t.run(&["status", "dev"]).code(5);

        t.run(&["resolve", "dev", "--rolled-back", "2"]).code(0);
        assert_eq!(flyway_rows(t), ["1|1|init|SQL|V1__init.sql|-1564980220|ok"]);
        t.sql("DROP TABLE tags");
    } else {
        // Rolled back with its row: as Flyway on a database with transactional DDL.
        assert!(!tables.contains(&"tags".to_owned()), "{tables:?}");
        assert_eq!(flyway_rows(t), ["1|1|init|SQL|V1__init.sql|-1564980220|ok"]);
        t.run(&["status", "dev"]).code(4);
    }
    write(
        t,
        "db/migration/V2__broken.sql",
        "CREATE TABLE tags (\n    id INT PRIMARY KEY\n);\n",
    );
    let run = t.run(&["migrate", "dev", "--json"]);
    run.code(0);
    assert_eq!(applied_names(&run), ["2", "3"]);
    let rows = flyway_rows(t);
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert!(rows.iter().all(|r| r.ends_with("|ok")), "{rows:?}");
});

engine_test!(flyway_crlf_files_have_the_same_checksum_as_lf, |t| {
    project(t, "flyway", FLYWAY_DIR, "flyway/crlf");
    let raw = std::fs::read(t.path().join("db/migration/V2__seed.sql")).expect("read");
    assert!(
        raw.windows(2).any(|w| w == b"\r\n"),
        "fixture lost its CRLF"
    );
    t.run(&["migrate", "dev"]).code(0);
    // zlib.crc32 of the lines: the same for the CRLF file and its LF checkout.
    assert_eq!(
        flyway_rows(t),
        [
            "1|1|create users|SQL|V1__create_users.sql|230447487|ok",
            "2|2|seed|SQL|V2__seed.sql|-47488964|ok",
        ]
    );
    for f in ["V1__create_users.sql", "V2__seed.sql"] {
        let path = t.path().join(FLYWAY_DIR).join(f);
        let lf = std::fs::read_to_string(&path)
            .expect("read")
            .replace("\r\n", "\n");
        std::fs::write(&path, lf).expect("write");
    }
    t.run(&["status", "dev"]).code(0);
});

engine_test!(flyway_history_written_by_flyway_is_read, |t| {
    project(t, "flyway", FLYWAY_DIR, "flyway/basic");
    // What `flyway migrate` leaves after applying 1 and 1.1 (its DDL, its rows).
    let create = match t.engine {
        Engine::Postgres => {
            "CREATE TABLE flyway_schema_history (installed_rank INT NOT NULL PRIMARY KEY, version VARCHAR(50), \
             description VARCHAR(200) NOT NULL, type VARCHAR(20) NOT NULL, script VARCHAR(1000) NOT NULL, \
             checksum INTEGER, installed_by VARCHAR(100) NOT NULL, installed_on TIMESTAMP NOT NULL DEFAULT now(), \
             execution_time INTEGER NOT NULL, success BOOLEAN NOT NULL)"
        }
        _ => {
            "CREATE TABLE flyway_schema_history (installed_rank INT NOT NULL PRIMARY KEY, version VARCHAR(50), \
             description VARCHAR(200) NOT NULL, type VARCHAR(20) NOT NULL, script VARCHAR(1000) NOT NULL, \
             checksum INT, installed_by VARCHAR(100) NOT NULL, installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, \
             execution_time INT NOT NULL, success BOOLEAN NOT NULL)"
        }
    };
    t.sql(create);
    t.sql(
        "CREATE TABLE users (id INT PRIMARY KEY, name VARCHAR(100) NOT NULL, email VARCHAR(255))",
    );
    let yes = if t.engine == Engine::Postgres {
        "true"
    } else {
        "1"
    };
    t.sql(&format!(
        "INSERT INTO flyway_schema_history VALUES \
         (1, '1', 'create users', 'SQL', 'V1__create_users.sql', 193722971, 'flyway', CURRENT_TIMESTAMP, 12, {yes}), \
         (2, '1.1', 'add email', 'SQL', 'V1_1__add_email.sql', -789335033, 'flyway', CURRENT_TIMESTAMP, 3, {yes})"
    ));
    let status = t.run(&["status", "dev", "--json"]);
    status.code(4);
    let doc = status.json();
    assert_eq!(names(&doc, "applied"), ["1", "1.1"]);
    assert_eq!(
        names(&doc, "pending"),
        ["1.12.2", "1.12.10", "2", "2.1", "3", "user names"]
    );
    t.run(&["migrate", "dev"]).code(0);
    let rows = flyway_rows(t);
    assert_eq!(&rows[2..], &FLYWAY_BASIC[2..]);
});

#[test]
fn flyway_postgresql_concurrently_own_transaction_and_opt_out() {
    let Some(t) = TestContext::new(Engine::Postgres, "flyway_pg_special") else {
        return;
    };
    project(&t, "flyway", FLYWAY_DIR, "flyway/postgresql-special");
    let preview = t.run(&["migrate", "dev", "--dry-run", "--json"]);
    preview.code(0);
    let doc = preview.json();
    let atomic: Vec<&Value> = doc["result"]["migrations"]
        .as_array()
        .expect("migrations")
        .iter()
        .map(|m| &m["atomic"])
        .collect();
    assert_eq!(
        atomic,
        [
            &Value::Bool(true),
            &Value::Bool(false),
            &Value::Bool(false),
            &Value::Bool(false)
        ]
    );

    t.run(&["migrate", "dev"]).code(0);
    assert_eq!(
        flyway_rows(&t),
        [
            "1|1|init|SQL|V1__init.sql|-1075803641|ok",
            "2|2|title index|SQL|V2__title_index.sql|-868136126|ok",
            "3|3|own transaction|SQL|V3__own_transaction.sql|2080515622|ok",
            "4|4|opt out|SQL|V4__opt_out.sql|29307339|ok",
        ]
    );
    assert_eq!(
        t.sql("SELECT indexname FROM pg_indexes WHERE indexname = 'posts_title_idx'"),
        ["posts_title_idx"]
    );

    // A failure outside a transaction stays recorded as Flyway records one.
    write(
        &t,
        "db/migration/V5__slug_index.sql",
        "CREATE INDEX CONCURRENTLY posts_slug_idx ON posts (slug);\nALTER TABLE nope ADD COLUMN x INT;\n",
    );
    t.run(&["migrate", "dev"]).code(1);
    assert_eq!(
        flyway_rows(&t).last().map(String::as_str),
        Some("5|5|slug index|SQL|V5__slug_index.sql|912114274|failed")
    );
    let status = t.run(&["status", "dev", "--json"]);
    status.code(5);
    assert_eq!(names(&status.json(), "failed"), ["5"]);
    t.run(&["resolve", "dev", "--applied", "5"]).code(0);
    assert_eq!(
        flyway_rows(&t).last().map(String::as_str),
        Some("5|5|slug index|SQL|V5__slug_index.sql|912114274|ok")
    );
    t.run(&["status", "dev"]).code(0);
}

// drizzle -----------------------------------------------------------------------------------

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
    project(
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
    project(&t, "drizzle", "drizzle", "drizzle/postgresql-concurrently");
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

// Plain SQL ---------------------------------------------------------------------------------

/// `name|checksum|ok-or-failed` per row of `_dbdeploy_migrations`.
fn sql_rows(t: &TestContext) -> Vec<String> {
    t.sql(
        "SELECT name, checksum, CASE WHEN success THEN 'ok' ELSE 'failed' END \
         FROM _dbdeploy_migrations ORDER BY name",
    )
}

/// `sha256sum` of each file of `migrations-fixtures/sql/basic`.
const SQL_BASIC: [&str; 5] = [
    "001_create_users.sql|5b64787dcaf58c2ae8b0ae7071505651c3b7a11d6ca9060ca8937e0eafd6520b|ok",
    "002 add posts.sql|322194c45b476542a15c611afc7c757bbb31d6f4e84f36e4bb3e756888b9661f|ok",
    "003_empty.sql|e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855|ok",
    "004_comments_only.sql|24c97b323708778415e9c02b4966197f56369db6f4b50c72ca6c988b1e4c5737|ok",
    "005_own_transaction.sql|24d1bc85af599cf00d68f148ba51c159c144a4058d70ad3c78296605c91ce646|ok",
];

engine_test!(sql_deploy_tracks_files_in_dbdeploys_table, |t| {
    project(t, "sql", "migrations", "sql/basic");
    let run = t.run(&["migrate", "dev", "--json"]);
    run.code(0);
    assert_eq!(
        applied_names(&run),
        [
            "001_create_users.sql",
            "002 add posts.sql",
            "003_empty.sql",
            "004_comments_only.sql",
            "005_own_transaction.sql",
        ]
    );
    assert_eq!(sql_rows(t), SQL_BASIC);
    assert_eq!(count(t, "users"), "2");
    let again = t.run(&["migrate", "dev", "--json"]);
    again.code(0);
    assert_eq!(again.json()["result"]["migrations_applied"], 0);
    assert_eq!(sql_rows(t), SQL_BASIC);
    t.run(&["status", "dev"]).code(0);

    write(
        t,
        "migrations/002 add posts.sql",
        "CREATE TABLE posts (id INT);\n",
    );
    let run = t.run(&["migrate", "dev"]);
    run.code(1);
    assert!(
        run.stderr
            .contains("applied migration 002 add posts.sql was edited"),
        "{}",
        run.stderr
    );
});

engine_test!(sql_failure_is_recorded_and_blocks, |t| {
    project(t, "sql", "migrations", "sql/fails-halfway");
    t.run(&["migrate", "dev"]).code(1);
    let init = "001_init.sql|abf1aa4883eb662535e50a3a5a1f1cd37b6b08fecd8ecca9cd437d244ec5c857|ok";
    if t.engine == Engine::MariaDb {
        assert_eq!(
            sql_rows(t),
            [
                init,
                "002_broken.sql|5e7c03464daf3db240507c3fe048361336af444850e298d1017fdfec9b8a7fbd|failed",
            ]
        );
        let error = t.sql("SELECT error FROM _dbdeploy_migrations WHERE name = '002_broken.sql'");
        assert!(error.join(" ").contains("does_not_exist"), "{error:?}");
        let status = t.run(&["status", "dev"]);
        status.code(5);
        assert!(
            status.stdout.contains("does_not_exist"),
            "{}",
            status.stdout
        );
        t.run(&["migrate", "dev"]).code(1);
        t.run(&["resolve", "dev", "--rolled-back", "002_broken.sql"])
            .code(0);
        assert_eq!(sql_rows(t), [init]);
        t.sql("DROP TABLE tags");
    } else {
        assert_eq!(sql_rows(t), [init]);
        assert!(!t.tables().contains(&"tags".to_owned()));
    }
    write(
        t,
        "migrations/002_broken.sql",
        "CREATE TABLE tags (\n    id INT PRIMARY KEY\n);\n",
    );
    t.run(&["migrate", "dev"]).code(0);
    assert_eq!(sql_rows(t).len(), 3);
});

engine_test!(sql_crlf_checkouts_of_either_kind_match, |t| {
    project(t, "sql", "migrations", "sql/crlf");
    t.run(&["migrate", "dev"]).code(0);
    assert_eq!(
        sql_rows(t),
        [
            "001_create_users.sql|71548d475471dc6e6e0047fe398d5db1a9030db5a48d58ae6b046af90f2d9dc1|ok",
            "002_seed.sql|28aa745b312f97a1165bb5fb4fad78bcb3406972572f0a09d634f7c799a8bf08|ok",
        ]
    );
    let path = t.path().join("migrations/002_seed.sql");
    let lf = std::fs::read_to_string(&path)
        .expect("read")
        .replace("\r\n", "\n");
    std::fs::write(&path, lf).expect("write");
    t.run(&["status", "dev"]).code(0);
});

#[test]
fn sql_postgresql_concurrently_and_opt_out_run_outside_a_transaction() {
    let Some(t) = TestContext::new(Engine::Postgres, "sql_pg_special") else {
        return;
    };
    project(&t, "sql", "migrations", "sql/postgresql-special");
    let preview = t.run(&["migrate", "dev", "--dry-run", "--json"]);
    preview.code(0);
    let doc = preview.json();
    let atomic: Vec<bool> = doc["result"]["migrations"]
        .as_array()
        .expect("migrations")
        .iter()
        .map(|m| m["atomic"].as_bool().expect("atomic"))
        .collect();
    assert_eq!(atomic, [true, false, false]);
    t.run(&["migrate", "dev"]).code(0);
    assert_eq!(sql_rows(&t).len(), 3);
    assert_eq!(
        t.sql("SELECT column_name FROM information_schema.columns WHERE table_name = 'posts' ORDER BY 1"),
        ["id", "slug", "title", "views"]
    );

    // A failure outside a transaction leaves a failed row; finished by hand, it is resolved.
    write(
        &t,
        "migrations/004_slug_index.sql",
        "CREATE INDEX CONCURRENTLY posts_slug_idx ON posts (slug);\nALTER TABLE nope ADD COLUMN x INT;\n",
    );
    t.run(&["migrate", "dev"]).code(1);
    assert_eq!(
        t.sql(
            "SELECT success, error LIKE '%relation \"nope\" does not exist%' \
             FROM _dbdeploy_migrations WHERE name = '004_slug_index.sql'"
        ),
        ["f|t"]
    );
    t.run(&["status", "dev"]).code(5);
    t.run(&["resolve", "dev", "--applied", "004_slug_index.sql"])
        .code(0);
    assert_eq!(
        t.sql("SELECT success, error IS NULL FROM _dbdeploy_migrations WHERE name = '004_slug_index.sql'"),
        ["t|t"]
    );
    t.run(&["status", "dev"]).code(0);
}

// init --------------------------------------------------------------------------------------

/// Runs `dbdeploy init ARGS` in `dir`, with `DATABASE_URL` set to `url` or unset.
fn init_in(dir: &Path, args: &[&str], url: Option<&str>) -> Run {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_dbdeploy"));
    cmd.arg("-C")
        .arg(dir)
        .arg("init")
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("DATABASE_URL")
        .stdin(std::process::Stdio::null());
    if let Some(url) = url {
        cmd.env("DATABASE_URL", url);
    }
    Run::from(cmd.output().expect("run dbdeploy"))
}

fn config_of(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("dbdeploy.toml")).expect("read config")
}

fn write_files(dir: &Path, files: &[(&str, &str)]) {
    for (f, body) in files {
        let path = dir.join(f);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, body).expect("write");
    }
}

/// Files to write, and the tool and folder `init` must detect from them.
type Layout = (
    &'static [(&'static str, &'static str)],
    &'static str,
    &'static str,
);

#[test]
fn init_detects_each_fixture_layout() {
    let f = fixtures();
    // (what, fixture copied into dir, or files, the tool and folder init must write)
    let copies: [(&str, &str, &str, &str); 6] = [
        (
            "prisma/sqlite-basic",
            "prisma/migrations",
            "prisma",
            "prisma/migrations",
        ),
        ("drizzle/sqlite-basic", "drizzle", "drizzle", "drizzle"),
        ("flyway/basic", "db/migration", "flyway", "db/migration"),
        (
            "flyway/crlf",
            "src/main/resources/db/migration",
            "flyway",
            "src/main/resources/db/migration",
        ),
        ("sql/basic", "migrations", "sql", "migrations"),
        ("sql/crlf", "sql", "sql", "sql"),
    ];
    for (fixture, into, tool, dir) in copies {
        let project = tempfile::tempdir().expect("tempdir");
        copy_dir(&f.join(fixture), &project.path().join(into));
        let run = init_in(project.path(), &[], None);
        run.code(0);
        let text = config_of(project.path());
        assert!(
            text.contains(&format!("migration_tool = \"{tool}\"")),
            "{fixture}:\n{text}"
        );
        assert!(
            text.contains(&format!("migrations_dir = \"{dir}\"")),
            "{fixture}:\n{text}"
        );
    }
    let layouts: [Layout; 3] = [
        (
            &[(
                "db/migrations/20240101000000_create_users.sql",
                "-- migrate:up\nCREATE TABLE users (id INT);\n\n-- migrate:down\nDROP TABLE users;\n",
            )],
            "dbmate",
            "db/migrations",
        ),
        (
            &[
                (
                    "migrations/000001_create_users.up.sql",
                    "CREATE TABLE users (id INT);",
                ),
                (
                    "migrations/000001_create_users.down.sql",
                    "DROP TABLE users;",
                ),
            ],
            "golang-migrate",
            "migrations",
        ),
        (
            &[(
                "migrations/20240101120000_create_users.sql",
                "CREATE TABLE users (id INT);",
            )],
            "sqlx",
            "migrations",
        ),
    ];
    for (files, tool, dir) in layouts {
        let project = tempfile::tempdir().expect("tempdir");
        write_files(project.path(), files);
        init_in(project.path(), &[], None).code(0);
        let text = config_of(project.path());
        assert!(
            text.contains(&format!("migration_tool = \"{tool}\"")),
            "{text}"
        );
        assert!(
            text.contains(&format!("migrations_dir = \"{dir}\"")),
            "{text}"
        );
    }
}

engine_test!(
    init_writes_a_config_that_deploys_and_refuses_to_overwrite_it,
    |t| {
        std::fs::remove_file(t.path().join("dbdeploy.toml")).expect("rm config");
        let fixture = match t.engine {
            Engine::Sqlite => "flyway/basic".to_owned(),
            _ => format!("drizzle/{}-basic", t.engine.provider()),
        };
        let into = if t.engine == Engine::Sqlite {
            "db/migration"
        } else {
            "drizzle"
        };
        copy_dir(&fixtures().join(&fixture), &t.path().join(into));
        // A server database needs its URL from the environment; SQLite gets a local file.
        let url = (t.engine != Engine::Sqlite).then_some(t.url.as_str());
        let run = init_in(t.path(), &["--json"], url);
        run.code(0);
        let doc = run.json();
        assert_eq!(doc["status"], "success", "{doc}");
        let text = config_of(t.path());
        assert!(text.contains("[environments.production]"), "{text}");
        assert!(text.contains("url_env = \"PROD_DATABASE_URL\""), "{text}");
        assert!(text.contains("protected = true"), "{text}");
        assert!(
            text.lines().filter(|l| l.starts_with('#')).count() >= 3,
            "{text}"
        );
        assert!(
            !text.contains(&t.url),
            "the URL itself must never be written:\n{text}"
        );
        let applied = if t.engine == Engine::Sqlite {
            assert_eq!(doc["result"]["migration_tool"], "flyway", "{doc}");
            assert!(
                text.contains("url = \"sqlite://.dbdeploy/dev.db\""),
                "{text}"
            );
            // The generated file works as it is: deploy to the local SQLite database it names.
            let run = Run::from(
                std::process::Command::new(env!("CARGO_BIN_EXE_dbdeploy"))
                    .arg("-C")
                    .arg(t.path())
                    .args(["migrate", "dev", "--json"])
                    .env_remove("DATABASE_URL")
                    .stdin(std::process::Stdio::null())
                    .output()
                    .expect("run"),
            );
            run.code(0);
            assert!(t.path().join(".dbdeploy/dev.db").is_file());
            run.json()["result"]["migrations_applied"].clone()
        } else {
            assert_eq!(doc["result"]["migration_tool"], "drizzle", "{doc}");
            assert!(text.contains("url_env = \"DATABASE_URL\""), "{text}");
            let run = t.run(&["migrate", "dev", "--json"]);
            run.code(0);
            run.json()["result"]["migrations_applied"].clone()
        };
        assert_ne!(applied, 0);

        let again = init_in(t.path(), &[], url);
        again.code(2);
        assert!(
            again.stderr.contains("dbdeploy.toml already exists"),
            "{}",
            again.stderr
        );
        assert_eq!(config_of(t.path()), text, "the existing file was changed");
    }
);

#[test]
fn init_asks_for_the_tool_when_the_layout_is_ambiguous() {
    let project = tempfile::tempdir().expect("tempdir");
    write_files(
        project.path(),
        &[
            ("migrations/20240101120000_create_users.up.sql", "SELECT 1;"),
            (
                "migrations/20240101120000_create_users.down.sql",
                "SELECT 1;",
            ),
        ],
    );
    let run = init_in(project.path(), &[], None);
    run.code(2);
    assert!(run.stderr.contains("--tool"), "{}", run.stderr);
    assert!(
        run.stderr.contains("sqlx") && run.stderr.contains("golang-migrate"),
        "{}",
        run.stderr
    );
    assert!(!project.path().join("dbdeploy.toml").exists());

    let run = init_in(project.path(), &["--tool", "liquibase"], None);
    run.code(2);
    assert!(run.stderr.contains("liquibase"), "{}", run.stderr);
    assert!(!project.path().join("dbdeploy.toml").exists());

    init_in(project.path(), &["--tool", "golang-migrate"], None).code(0);
    let text = config_of(project.path());
    assert!(
        text.contains("migration_tool = \"golang-migrate\""),
        "{text}"
    );
    assert!(text.contains("migrations_dir = \"migrations\""), "{text}");

    let empty = tempfile::tempdir().expect("tempdir");
    let run = init_in(empty.path(), &[], None);
    run.code(2);
    assert!(
        run.stderr.contains("no migrations folder found"),
        "{}",
        run.stderr
    );
    init_in(
        empty.path(),
        &["--tool", "sql", "--migrations-dir", "db/sql"],
        None,
    )
    .code(0);
    assert!(config_of(empty.path()).contains("migrations_dir = \"db/sql\""));
}
