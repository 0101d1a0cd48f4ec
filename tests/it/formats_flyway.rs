//! Flyway-style migrations on every engine, through the CLI: the exact rows Flyway writes,
//! repeatable and out-of-order migrations, drift, failures recorded Flyway's way, history
//! written by Flyway itself, and PostgreSQL's `CONCURRENTLY`.

use serde_json::Value;

use crate::common::{Engine, TestContext, copy_dir};
use crate::engine_test;
use crate::formats_support::{applied_names, configure, count, fixtures, names, write};

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
    configure(t, "flyway", FLYWAY_DIR, "flyway/basic");
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
    configure(t, "flyway", FLYWAY_DIR, "flyway/basic");
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
        configure(t, "flyway", FLYWAY_DIR, "flyway/basic");
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
    configure(t, "flyway", FLYWAY_DIR, "flyway/basic");
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
    configure(t, "flyway", FLYWAY_DIR, "flyway/fails-halfway");
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
    configure(t, "flyway", FLYWAY_DIR, "flyway/crlf");
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
    configure(t, "flyway", FLYWAY_DIR, "flyway/basic");
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
    configure(&t, "flyway", FLYWAY_DIR, "flyway/postgresql-special");
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
