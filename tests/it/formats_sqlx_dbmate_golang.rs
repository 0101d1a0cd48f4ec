//! The sqlx, dbmate and golang-migrate formats on every engine, through the CLI: the tracking
//! rows each tool would write, re-runs, failures recorded the tool's way, dirty rows, status,
//! resolve, another tool's table of the same name, and the tools' own lock ids.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sha2::Digest;

use crate::common::{Engine, Run, TestContext, copy_dir, has_table, migration_names};
use crate::engine_test;

// Helpers --------------------------------------------------------------------------------------

/// Writes `dbdeploy.toml` for `tool` with the migrations in `dir`, and copies
/// `migrations-fixtures/<tool>/<fixture>` there.
fn project(t: &TestContext, tool: &str, dir: &str, fixture: &str) -> PathBuf {
    let text = format!(
        "[project]\nmigration_tool = \"{tool}\"\nmigrations_dir = \"{dir}\"\n\n\
         [environments.dev]\nurl_env = \"DATABASE_URL\"\n\n\
         [environments.staging]\nurl_env = \"DATABASE_URL\"\nconnect_timeout_seconds = 1\n\n\
         [environments.locked]\nurl_env = \"DATABASE_URL\"\nlock_timeout_seconds = 1\n\n\
         [environments.production]\nurl_env = \"DATABASE_URL\"\nprotected = true\n"
    );
    std::fs::write(t.path().join("dbdeploy.toml"), text).expect("write config");
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations-fixtures")
        .join(tool)
        .join(fixture);
    assert!(src.is_dir(), "no fixture {}", src.display());
    let dst = t.path().join(dir);
    let _ = std::fs::remove_dir_all(&dst);
    copy_dir(&src, &dst);
    dst
}

/// A sqlx project with `migrations-fixtures/sqlx/<fixture>` in `migrations/`.
pub(crate) fn sqlx_project(t: &TestContext, fixture: &str) -> PathBuf {
    project(t, "sqlx", "migrations", fixture)
}

fn dbmate_project(t: &TestContext, fixture: &str) -> PathBuf {
    project(t, "dbmate", "db/migrations", fixture)
}

fn golang_project(t: &TestContext, fixture: &str) -> PathBuf {
    project(t, "golang-migrate", "migrations", fixture)
}

/// `name|type` of each column of `table`, in table order, as the engine describes it.
fn columns(t: &TestContext, table: &str) -> Vec<String> {
    t.sql(&match t.engine {
        Engine::Postgres => format!(
            "SELECT column_name, data_type FROM information_schema.columns \
             WHERE table_schema = 'public' AND table_name = '{table}' ORDER BY ordinal_position"
        ),
        Engine::MariaDb => format!(
            "SELECT column_name, column_type FROM information_schema.columns \
             WHERE table_schema = DATABASE() AND table_name = '{table}' ORDER BY ordinal_position"
        ),
        Engine::Sqlite => {
            format!("SELECT name, type FROM pragma_table_info('{table}') ORDER BY cid")
        }
    })
}

/// SQL for a boolean literal the engine's client accepts.
fn sql_bool(t: &TestContext, value: bool) -> &'static str {
    match (t.engine, value) {
        (Engine::Sqlite, true) => "1",
        (Engine::Sqlite, false) => "0",
        (_, true) => "true",
        (_, false) => "false",
    }
}

/// `version|description|ok-or-dirty|checksum hex|timed` per `_sqlx_migrations` row.
fn sqlx_rows(t: &TestContext) -> Vec<String> {
    let hex = match t.engine {
        Engine::Postgres => "encode(checksum, 'hex')",
        _ => "lower(hex(checksum))",
    };
    t.sql(&format!(
        "SELECT version, description, CASE WHEN success THEN 'ok' ELSE 'dirty' END, {hex}, \
         CASE WHEN execution_time > 0 THEN 'timed' ELSE 'untimed' END \
         FROM _sqlx_migrations ORDER BY version"
    ))
}

fn sha384_file(path: &Path) -> String {
    let bytes = std::fs::read(path).expect("read migration");
    sha2::Sha384::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn golang_row(t: &TestContext) -> Vec<String> {
    t.sql("SELECT version, CASE WHEN dirty THEN 'dirty' ELSE 'clean' END FROM schema_migrations")
}

fn dbmate_versions(t: &TestContext) -> Vec<String> {
    t.sql("SELECT version FROM schema_migrations ORDER BY version")
}

#[track_caller]
fn assert_contains(run: &Run, needle: &str) {
    assert!(
        run.all().contains(needle),
        "expected {needle:?} in the output\n{}",
        run.all()
    );
}

// sqlx -----------------------------------------------------------------------------------------

const SQLX_BASIC: [(&str, &str); 7] = [
    ("1", "1_users.sql"),
    ("2", "2_posts.up.sql"),
    ("3", "3_comment_only.sql"),
    ("4", "4_empty.sql"),
    ("5", "5_add email index.sql"),
    ("6", "6_backfill.sql"),
    ("10", "10_post_views.sql"),
];

engine_test!(
    sqlx_deploy_writes_the_rows_sqlx_writes,
    |t: &TestContext| {
        let dir = sqlx_project(t, "basic");
        let run = t.run(&["migrate", "dev", "--json"]);
        run.code(0);
        let doc = run.json();
        // Numeric order: 10 after 2, although "10" sorts before "2" as text.
        assert_eq!(
            migration_names(&doc),
            ["1", "2", "3", "4", "5", "6", "10"],
            "{doc}"
        );

        let descriptions = [
            "users",
            "posts",
            "comment only",
            "empty",
            "add email index",
            "backfill",
            "post views",
        ];
        let expected: Vec<String> = SQLX_BASIC
            .iter()
            .zip(descriptions)
            .map(|((v, file), d)| format!("{v}|{d}|ok|{}|timed", sha384_file(&dir.join(file))))
            .collect();
        assert_eq!(sqlx_rows(t), expected);

        let expected_columns: &[&str] = match t.engine {
            Engine::Postgres => &[
                "version|bigint",
                "description|text",
                "installed_on|timestamp with time zone",
                "success|boolean",
                "checksum|bytea",
                "execution_time|bigint",
            ],
            Engine::MariaDb => &[
                "version|bigint(20)",
                "description|text",
                "installed_on|timestamp",
                "success|tinyint(1)",
                "checksum|blob",
                "execution_time|bigint(20)",
            ],
            Engine::Sqlite => &[
                "version|BIGINT",
                "description|TEXT",
                "installed_on|TIMESTAMP",
                "success|BOOLEAN",
                "checksum|BLOB",
                "execution_time|BIGINT",
            ],
        };
        assert_eq!(columns(t, "_sqlx_migrations"), expected_columns);

        // The reversible pair's down file did not run; the own-transaction backfill did.
        assert!(has_table(t, "posts"));
        assert!(columns(t, "posts").iter().any(|c| c.starts_with("views|")));
        assert_eq!(t.sql("SELECT email FROM users"), ["ada@example.com"]);

        let again = t.run(&["migrate", "dev", "--json"]);
        again.code(0);
        assert_eq!(again.json()["result"]["migrations_applied"], 0);
        assert_eq!(sqlx_rows(t), expected);

        let status = t.run(&["status", "dev"]);
        status.code(0);
        assert!(status.stdout.contains("Applied (7)"), "{}", status.stdout);
        assert!(status.stdout.contains("Pending (0)"), "{}", status.stdout);
        // Versions are shown with the file that holds them.
        assert!(
            status.stdout.contains("✓ 5_add email index.sql"),
            "{}",
            status.stdout
        );
    }
);

engine_test!(
    sqlx_failure_is_recorded_as_sqlx_records_it,
    |t: &TestContext| {
        sqlx_project(t, "fails-halfway");
        let run = t.run(&["migrate", "staging"]);
        run.code(1);
        assert_contains(&run, "migration `2` failed");
        assert_contains(&run, "missing_table");
        assert!(!has_table(t, "after_broken"), "a later migration ran");
        let init = sqlx_rows(t)[0].clone();
        assert!(init.starts_with("1|init|ok|"), "{init}");

        if t.engine == Engine::MariaDb {
            // DDL commits on MySQL: the first statement stays, and sqlx's success = FALSE row
            // marks the version dirty.
            assert!(has_table(t, "half"));
            assert_contains(&run, "could not be rolled back");
            let rows = sqlx_rows(t);
            assert_eq!(rows.len(), 2, "{rows:?}");
            assert!(rows[1].starts_with("2|broken|dirty|"), "{rows:?}");

            let blocked = t.run(&["migrate", "staging"]);
            blocked.code(1);
            assert_contains(&blocked, "failed migration 2 must be resolved");
            assert_contains(&blocked, "dbdeploy resolve staging --rolled-back 2");
            assert_eq!(sqlx_rows(t).len(), 2);

            t.run(&["resolve", "staging", "--rolled-back", "2"]).code(0);
            assert_eq!(sqlx_rows(t), [init]);
        } else {
            // One transaction: the script and its row are gone, nothing blocks a retry.
            assert!(!has_table(t, "half"));
            assert_contains(&run, "was rolled back");
            assert_eq!(sqlx_rows(t), std::slice::from_ref(&init));
            let retry = t.run(&["migrate", "staging"]);
            retry.code(1);
            assert_contains(&retry, "migration `2` failed");
            assert_eq!(sqlx_rows(t), [init]);
        }
    }
);

engine_test!(sqlx_dirty_row_blocks_until_resolved, |t: &TestContext| {
    sqlx_project(t, "basic");
    t.run(&["migrate", "dev", "--to", "2"]).code(0);
    // What `sqlx migrate run` leaves behind when it dies on MySQL part-way through version 3.
    let blob = match t.engine {
        Engine::Postgres => "'\\x00'::bytea",
        _ => "X'00'",
    };
    t.sql(&format!(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (3, 'comment only', {}, {blob}, -1)",
        sql_bool(t, false)
    ));

    let run = t.run(&["migrate", "dev"]);
    run.code(1);
    assert_contains(&run, "failed migration 3 must be resolved");
    assert_contains(&run, "dbdeploy resolve dev --rolled-back 3");
    assert_eq!(sqlx_rows(t).len(), 3);

    let status = t.run(&["status", "dev"]);
    status.code(5);
    assert!(status.stdout.contains("Failed (1)"), "{}", status.stdout);
    assert!(
        status.stdout.contains("success = false"),
        "{}",
        status.stdout
    );
    assert!(
        status.stdout.contains("✗ 3_comment_only.sql"),
        "{}",
        status.stdout
    );

    // The file name is accepted for the version it holds.
    let resolved = t.run(&["resolve", "dev", "--rolled-back", "3_comment_only.sql"]);
    resolved.code(0);
    assert_contains(&resolved, "Migration `3` marked as rolled back");
    assert_eq!(sqlx_rows(t).len(), 2);
    let run = t.run(&["migrate", "dev", "--json"]);
    run.code(0);
    assert_eq!(migration_names(&run.json()), ["3", "4", "5", "6", "10"]);
    assert!(sqlx_rows(t).iter().all(|r| r.contains("|ok|")));
});

engine_test!(sqlx_checksum_is_over_the_exact_bytes, |t: &TestContext| {
    let dir = sqlx_project(t, "crlf");
    let file = dir.join("20240101000000_init.sql");
    let crlf = std::fs::read_to_string(&file).unwrap();
    assert!(
        crlf.contains("\r\n"),
        "the fixture lost its CRLF line endings"
    );
    t.run(&["migrate", "dev"]).code(0);
    assert_eq!(
        sqlx_rows(t),
        [format!(
            "20240101000000|init|ok|{}|timed",
            sha384_file(&file)
        )]
    );

    // sqlx compares the exact bytes: converting the line endings is an edit.
    std::fs::write(&file, crlf.replace("\r\n", "\n")).unwrap();
    let status = t.run(&["status", "dev"]);
    status.code(5);
    assert!(
        status.stdout.contains("Modified since applied (1)"),
        "{}",
        status.stdout
    );
    let run = t.run(&["migrate", "dev"]);
    run.code(1);
    assert_contains(&run, "20240101000000 was edited after it was applied");
});

// dbmate ---------------------------------------------------------------------------------------

const DBMATE_BASIC: [&str; 6] = [
    "20240101000000",
    "20240102000000",
    "20240103000000",
    "20240104000000",
    "20240105000000",
    "20240106000000",
];

engine_test!(
    dbmate_deploy_writes_the_versions_dbmate_writes,
    |t: &TestContext| {
        dbmate_project(t, "basic");
        let run = t.run(&["migrate", "dev"]);
        run.code(0);
        // The indented `-- migrate:down` is named with its file and line.
        assert_contains(&run, "20240102000000_posts.sql:8");
        assert_contains(&run, "indented");
        assert_eq!(dbmate_versions(t), DBMATE_BASIC);
        let expected_columns = match t.engine {
            Engine::Postgres => ["version|character varying"],
            Engine::MariaDb => ["version|varchar(128)"],
            Engine::Sqlite => ["version|varchar(128)"],
        };
        assert_eq!(columns(t, "schema_migrations"), expected_columns);
        if t.engine == Engine::Postgres {
            // dbmate's column has no length limit (tests/compat: `dbmate migrate` 2.36.0).
            assert_eq!(
                t.sql(
                    "SELECT coalesce(character_maximum_length, 0) FROM information_schema.columns \
                     WHERE table_name = 'schema_migrations' AND column_name = 'version'"
                ),
                ["0"]
            );
        }

        // The down section after the indented marker did not run as part of up.
        assert!(has_table(t, "posts"));
        assert!(columns(t, "posts").iter().any(|c| c.starts_with("views|")));
        assert_eq!(t.sql("SELECT email FROM users"), ["ada@example.com"]);

        let again = t.run(&["migrate", "dev", "--json"]);
        again.code(0);
        assert_eq!(again.json()["result"]["migrations_applied"], 0);
        assert_eq!(dbmate_versions(t), DBMATE_BASIC);

        let status = t.run(&["status", "dev"]);
        status.code(0);
        assert!(status.stdout.contains("Applied (6)"), "{}", status.stdout);
    }
);

engine_test!(
    dbmate_failure_leaves_no_row_as_dbmate_does,
    |t: &TestContext| {
        dbmate_project(t, "fails-halfway");
        let run = t.run(&["migrate", "staging"]);
        run.code(1);
        assert_contains(&run, "migration `20240102000000` failed");
        assert_eq!(dbmate_versions(t), ["20240101000000"]);
        assert!(!has_table(t, "after_broken"));
        if t.engine == Engine::MariaDb {
            assert!(has_table(t, "half"));
            assert_contains(&run, "keeps no record of failed migrations");
            assert_contains(&run, "dbdeploy resolve staging --applied 20240102000000");
            // Still pending: the next run tries it again, and says why it fails.
            let retry = t.run(&["migrate", "staging"]);
            retry.code(1);
            assert_contains(&retry, "migration `20240102000000` failed");
        } else {
            assert!(!has_table(t, "half"));
            assert_contains(&run, "was rolled back");
        }
        let status = t.run(&["status", "staging"]);
        status.code(4);
        assert!(status.stdout.contains("Pending (2)"), "{}", status.stdout);

        // Nothing failed is recorded, so there is nothing to mark rolled back.
        let rb = t.run(&["resolve", "staging", "--rolled-back", "20240102000000"]);
        assert_ne!(rb.code, 0);
        assert_contains(&rb, "dbmate records no failed migrations");
        // Finished by hand: recorded as dbmate would.
        t.run(&["resolve", "staging", "--applied", "20240102000000"])
            .code(0);
        assert_eq!(dbmate_versions(t), ["20240101000000", "20240102000000"]);
    }
);

engine_test!(
    dbmate_sql_before_the_up_marker_is_refused,
    |t: &TestContext| {
        dbmate_project(t, "sql-before-up");
        let run = t.run(&["migrate", "dev"]);
        run.code(2);
        assert_contains(&run, "20240101000000_init.sql:2");
        assert_contains(&run, "before `-- migrate:up`");
        assert!(t.tables().is_empty(), "{:?}", t.tables());
    }
);

engine_test!(dbmate_refuses_golang_migrate_table, |t: &TestContext| {
    dbmate_project(t, "basic");
    t.sql(
        "CREATE TABLE schema_migrations (version bigint not null primary key, dirty boolean not null)",
    );
    t.sql(&format!(
        "INSERT INTO schema_migrations (version, dirty) VALUES (1, {})",
        sql_bool(t, false)
    ));
    for args in [&["migrate", "dev"][..], &["status", "dev"][..]] {
        let run = t.run(args);
        run.code(2);
        assert_contains(&run, "golang-migrate");
        assert_contains(&run, "migration_tool = \"golang-migrate\"");
    }
    assert_eq!(golang_row(t), ["1|clean"]);
    assert!(!has_table(t, "users"));
});

// golang-migrate -------------------------------------------------------------------------------

engine_test!(
    golang_migrate_deploy_keeps_one_clean_row,
    |t: &TestContext| {
        golang_project(t, "basic");
        let run = t.run(&["migrate", "dev", "--json"]);
        run.code(0);
        assert_eq!(
            migration_names(&run.json()),
            ["1", "2", "3", "4", "5", "10"]
        );
        assert_eq!(golang_row(t), ["10|clean"]);
        let expected_columns: &[&str] = match t.engine {
            Engine::Postgres => &["version|bigint", "dirty|boolean"],
            Engine::MariaDb => &["version|bigint(20)", "dirty|tinyint(1)"],
            Engine::Sqlite => &["version|uint64", "dirty|bool"],
        };
        assert_eq!(columns(t, "schema_migrations"), expected_columns);
        if t.engine == Engine::Sqlite {
            assert_eq!(
            t.sql("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'schema_migrations'"),
            ["version_unique"]
        );
        }
        assert!(columns(t, "posts").iter().any(|c| c.starts_with("views|")));

        let again = t.run(&["migrate", "dev", "--json"]);
        again.code(0);
        assert_eq!(again.json()["result"]["migrations_applied"], 0);
        assert_eq!(golang_row(t), ["10|clean"]);

        let status = t.run(&["status", "dev"]);
        status.code(0);
        assert!(status.stdout.contains("Applied (6)"), "{}", status.stdout);
    }
);

engine_test!(
    golang_migrate_versions_run_in_numeric_order,
    |t: &TestContext| {
        golang_project(t, "basic");
        t.run(&["migrate", "dev", "--to", "2_posts"]).code(0);
        assert_eq!(golang_row(t), ["2|clean"]);
        let status = t.run(&["status", "dev", "--json"]);
        status.code(4);
        let doc = status.json();
        assert_eq!(
            doc["result"]["pending"],
            serde_json::json!(["3", "4", "5", "10"]),
            "{doc}"
        );
        assert_eq!(
            doc["result"]["out_of_order"],
            serde_json::json!([]),
            "{doc}"
        );
        let run = t.run(&["migrate", "dev", "--json"]);
        run.code(0);
        assert_eq!(migration_names(&run.json()), ["3", "4", "5", "10"]);
        assert_eq!(golang_row(t), ["10|clean"]);
    }
);

engine_test!(
    golang_migrate_failure_leaves_the_version_dirty,
    |t: &TestContext| {
        golang_project(t, "fails-halfway");
        let run = t.run(&["migrate", "staging"]);
        run.code(1);
        assert_contains(&run, "migration `2` failed");
        assert!(!has_table(t, "after_broken"));
        if t.engine == Engine::MariaDb {
            assert!(has_table(t, "half"));
            assert_eq!(golang_row(t), ["2|dirty"]);
            let blocked = t.run(&["migrate", "staging"]);
            blocked.code(1);
            assert_contains(&blocked, "failed migration 2 must be resolved");
            let status = t.run(&["status", "staging"]);
            status.code(5);
            assert!(status.stdout.contains("dirty"), "{}", status.stdout);
            // Undone by hand: back to the version before it, as `migrate force 1` would.
            t.sql("DROP TABLE half");
            t.run(&["resolve", "staging", "--rolled-back", "2"]).code(0);
            assert_eq!(golang_row(t), ["1|clean"]);
            t.run(&["status", "staging"]).code(4);
        } else {
            // One transaction: the dirty row was rolled back with the script.
            assert!(!has_table(t, "half"));
            assert_eq!(golang_row(t), ["1|clean"]);
        }
    }
);

engine_test!(
    golang_migrate_dirty_row_blocks_until_forced,
    |t: &TestContext| {
        golang_project(t, "basic");
        t.run(&["migrate", "dev", "--to", "2"]).code(0);
        // What golang-migrate leaves when version 3 dies part-way.
        t.sql("DELETE FROM schema_migrations");
        t.sql(&format!(
            "INSERT INTO schema_migrations (version, dirty) VALUES (3, {})",
            sql_bool(t, true)
        ));
        let run = t.run(&["migrate", "dev"]);
        run.code(1);
        assert_contains(&run, "failed migration 3 must be resolved");
        assert_eq!(golang_row(t), ["3|dirty"]);
        t.run(&["status", "dev"]).code(5);

        // Only the dirty version can be resolved, and --applied may not skip versions.
        let other = t.run(&["resolve", "dev", "--applied", "4"]);
        assert_ne!(other.code, 0);
        assert_contains(&other, "version 3 is the failed (dirty) migration");

        // Finished by hand: `migrate force 3`.
        t.run(&["resolve", "dev", "--applied", "3"]).code(0);
        assert_eq!(golang_row(t), ["3|clean"]);
        let run = t.run(&["migrate", "dev", "--json"]);
        run.code(0);
        assert_eq!(migration_names(&run.json()), ["4", "5", "10"]);
        assert_eq!(golang_row(t), ["10|clean"]);
    }
);

engine_test!(
    golang_migrate_versions_added_below_the_current_one_are_reported,
    |t: &TestContext| {
        let dir = golang_project(t, "basic");
        // 3 and 4 arrive later, from a branch merged after 5 and 10 were deployed.
        let later = ["3_comment_only", "4_empty"];
        for stem in later {
            for ext in ["up.sql", "down.sql"] {
                std::fs::remove_file(dir.join(format!("{stem}.{ext}"))).unwrap();
            }
        }
        t.run(&["migrate", "dev"]).code(0);
        assert_eq!(golang_row(t), ["10|clean"]);
        let src =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations-fixtures/golang-migrate/basic");
        for stem in later {
            for ext in ["up.sql", "down.sql"] {
                let file = format!("{stem}.{ext}");
                std::fs::copy(src.join(&file), dir.join(&file)).unwrap();
            }
        }

        // golang-migrate would report "no change" and never run them; dbdeploy says so.
        let run = t.run(&["migrate", "dev"]);
        run.code(1);
        assert_contains(
            &run,
            "migration 3, 4 was never applied and sorts below the current version",
        );
        assert_contains(&run, "give 3, 4 a version above it");
        let status = t.run(&["status", "dev", "--json"]);
        status.code(5);
        assert_eq!(
            status.json()["result"]["unreachable"],
            serde_json::json!(["3", "4"])
        );
        let status = t.run(&["status", "dev"]);
        assert!(
            status
                .stdout
                .contains("Never applied, below the current version (2)"),
            "{}",
            status.stdout
        );
        let skipped = t.run(&["migrate", "dev", "--skip-health-check", "--json"]);
        skipped.code(0);
        assert_eq!(skipped.json()["result"]["migrations_applied"], 0);
        assert_contains(
            &skipped,
            "`3` was never applied and the tool will never run it",
        );

        // Renamed above the current version, 4 runs next; 3's changes were made by hand.
        for ext in ["up.sql", "down.sql"] {
            std::fs::rename(
                dir.join(format!("4_empty.{ext}")),
                dir.join(format!("11_empty.{ext}")),
            )
            .unwrap();
        }
        let status = t.run(&["status", "dev", "--json"]);
        status.code(5);
        let doc = status.json();
        assert_eq!(
            doc["result"]["unreachable"],
            serde_json::json!(["3"]),
            "{doc}"
        );
        assert_eq!(doc["result"]["pending"], serde_json::json!(["11"]), "{doc}");
        let resolved = t.run(&["resolve", "dev", "--applied", "3"]);
        resolved.code(0);
        assert_eq!(golang_row(t), ["10|clean"]);
        let run = t.run(&["migrate", "dev", "--json"]);
        run.code(0);
        assert_eq!(migration_names(&run.json()), ["11"]);
        assert_eq!(golang_row(t), ["11|clean"]);
        t.run(&["status", "dev"]).code(0);
    }
);

engine_test!(
    golang_migrate_current_version_missing_on_disk,
    |t: &TestContext| {
        golang_project(t, "basic");
        t.run(&["migrate", "dev", "--to", "2"]).code(0);
        t.sql("UPDATE schema_migrations SET version = 7");
        let run = t.run(&["migrate", "dev"]);
        run.code(1);
        assert_contains(
            &run,
            "applied migration 7 is missing from the migrations folder",
        );
        assert_eq!(golang_row(t), ["7|clean"]);
    }
);

engine_test!(golang_migrate_refuses_dbmate_table, |t: &TestContext| {
    golang_project(t, "basic");
    t.sql("CREATE TABLE schema_migrations (version varchar(128) primary key)");
    t.sql("INSERT INTO schema_migrations (version) VALUES ('20240101000000')");
    let run = t.run(&["migrate", "dev"]);
    run.code(2);
    assert_contains(&run, "dbmate's shape");
    assert_contains(&run, "migration_tool = \"dbmate\"");
    assert_eq!(dbmate_versions(t), ["20240101000000"]);
});

// Locks: the tools' own ids, computed here independently ---------------------------------------

/// CRC-32/ISO-HDLC, bit by bit (the tools use Go's and the `crc` crate's table versions).
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = u32::MAX;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    !crc
}

fn database_name(t: &TestContext) -> String {
    url::Url::parse(&t.url)
        .unwrap()
        .path()
        .trim_start_matches('/')
        .to_owned()
}

/// A second session that holds a lock, started with the engine's own client.
struct Holder(Child);

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn hold_lock(t: &TestContext, lock_sql: &str) -> Holder {
    let script = format!(
        "{lock_sql}; SELECT {};",
        match t.engine {
            Engine::Postgres => "pg_sleep(30)",
            _ => "SLEEP(30)",
        }
    );
    let child = match t.engine {
        Engine::Postgres => Command::new("psql")
            .arg(&t.url)
            .args(["-X", "-q", "-c", &script])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn(),
        _ => {
            let u = url::Url::parse(&t.url).unwrap();
            let mut cmd = Command::new("mariadb");
            cmd.arg("-h")
                .arg(u.host_str().unwrap_or("127.0.0.1"))
                .arg("-P")
                .arg(u.port().unwrap_or(3306).to_string())
                .arg("-u")
                .arg(u.username());
            if let Some(pw) = u.password() {
                cmd.arg(format!("-p{pw}"));
            }
            cmd.arg(database_name(t))
                .arg("-e")
                .arg(&script)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
        }
    }
    .expect("start the database client");
    Holder(child)
}

fn wait_until(t: &TestContext, probe: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while t.sql(probe).first().map(String::as_str) != Some("1") {
        assert!(
            Instant::now() < deadline,
            "the lock was never taken: {probe}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// While another session holds a lock, a deploy waits for it and gives up; once that session
/// is gone, the deploy goes through. `release` ends the holding session from the server side
/// (a killed client does not end a session that is sleeping).
fn assert_deploy_waits_for(t: &TestContext, lock_sql: &str, probe: &str, release: impl Fn()) {
    let holder = hold_lock(t, lock_sql);
    wait_until(t, probe);
    let run = t.run(&["migrate", "locked"]);
    run.code(1);
    assert_contains(&run, "waiting for the deploy lock");
    assert!(t.tables().iter().all(|x| x != "users"), "{:?}", t.tables());
    release();
    drop(holder);
    let deadline = Instant::now() + Duration::from_secs(10);
    while t.sql(probe).first().map(String::as_str) == Some("1") {
        assert!(
            Instant::now() < deadline,
            "the lock was never released: {probe}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    t.run(&["migrate", "locked"]).code(0);
}

fn pg_lock_probe(id: i64) -> String {
    format!(
        "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND granted \
         AND ((classid::bigint << 32) | objid::bigint) = {id}"
    )
}

fn pg_release(t: &TestContext, id: i64) {
    t.sql(&format!(
        "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' \
         AND ((classid::bigint << 32) | objid::bigint) = {id}"
    ));
}

fn mariadb_release(t: &TestContext, name: &str) {
    if let Some(id) = t.sql(&format!("SELECT IS_USED_LOCK('{name}')")).first()
        && id != "NULL"
    {
        t.sql(&format!("KILL {id}"));
    }
}

#[test]
fn postgres_deploys_wait_for_the_tools_own_advisory_locks() {
    let Some(t) = TestContext::new(Engine::Postgres, "pg_tool_locks") else {
        return;
    };
    // sqlx: 0x3d32ad9e * crc32(current_database()).
    sqlx_project(&t, "basic");
    let id = 0x3d32_ad9e * i64::from(crc32(database_name(&t).as_bytes()));
    assert_deploy_waits_for(
        &t,
        &format!("SELECT pg_advisory_lock({id})"),
        &pg_lock_probe(id),
        || pg_release(&t, id),
    );

    // golang-migrate: database (as its CLI spells it, from the URL path, and as
    // `WithInstance` reads it), schema and table.
    for (i, spelling) in ["/{db}", "{db}"].into_iter().enumerate() {
        let t = TestContext::new(Engine::Postgres, &format!("pg_tool_locks_gm{i}")).unwrap();
        golang_project(&t, "basic");
        let db = spelling.replace("{db}", &database_name(&t));
        let key = format!("{db}\0public\0schema_migrations");
        let id = i64::from(crc32(key.as_bytes()).wrapping_mul(1_486_364_155));
        assert_deploy_waits_for(
            &t,
            &format!("SELECT pg_advisory_lock({id})"),
            &pg_lock_probe(id),
            || pg_release(&t, id),
        );
    }
}

#[test]
fn mariadb_deploys_wait_for_the_tools_own_named_locks() {
    let Some(t) = TestContext::new(Engine::MariaDb, "maria_tool_locks") else {
        return;
    };
    // The lock names are computed by MariaDB's own CRC32(), independently of dbdeploy.
    sqlx_project(&t, "basic");
    let name = t.sql("SELECT LOWER(HEX(1026731422 * CRC32(DATABASE())))")[0].clone();
    assert_deploy_waits_for(
        &t,
        &format!("SELECT GET_LOCK('{name}', 0)"),
        &format!("SELECT IS_USED_LOCK('{name}') IS NOT NULL"),
        || mariadb_release(&t, &name),
    );

    let t = TestContext::new(Engine::MariaDb, "maria_tool_locks_gm").unwrap();
    golang_project(&t, "basic");
    let name = t.sql(
        "SELECT CAST((CRC32(CONCAT(DATABASE(), ':schema_migrations')) * 1486364155) % 4294967296 AS CHAR)",
    )[0]
    .clone();
    assert_deploy_waits_for(
        &t,
        &format!("SELECT GET_LOCK('{name}', 0)"),
        &format!("SELECT IS_USED_LOCK('{name}') IS NOT NULL"),
        || mariadb_release(&t, &name),
    );
}

// Real-world shapes: CONCURRENTLY, CRLF, shared versions -----------------------------------------

/// `CREATE INDEX CONCURRENTLY` runs outside dbdeploy's transaction in each format: sqlx's
/// `-- no-transaction`, dbmate's `transaction:false`, and detected for golang-migrate.
#[test]
fn postgres_concurrently_index_deploys_in_every_format() {
    for (tool, dir, index_version) in [
        ("sqlx", "migrations", "2"),
        ("dbmate", "db/migrations", "20240102000000"),
        ("golang-migrate", "migrations", "2"),
    ] {
        let Some(t) = TestContext::new(Engine::Postgres, &format!("pg_concurrently_{tool}")) else {
            return;
        };
        project(&t, tool, dir, "postgresql-concurrently");
        let preview = t.run(&["migrate", "dev", "--dry-run", "--json"]);
        preview.code(0);
        let doc = preview.json();
        assert_eq!(
            doc["result"]["migrations"][0]["atomic"], true,
            "{tool}: {doc}"
        );
        assert_eq!(
            doc["result"]["migrations"][1]["atomic"], false,
            "{tool}: {doc}"
        );

        let run = t.run(&["migrate", "dev", "--json"]);
        run.code(0);
        let doc = run.json();
        assert_eq!(migration_names(&doc)[1], index_version, "{tool}: {doc}");
        assert_eq!(
            t.sql(
                "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid \
                 WHERE c.relname = 'posts_title_idx'"
            ),
            ["t"],
            "{tool}"
        );
        t.run(&["status", "dev"]).code(0);
    }
}

engine_test!(crlf_files_deploy_in_every_format, |t: &TestContext| {
    for (tool, dir) in [
        ("sqlx", "migrations"),
        ("dbmate", "db/migrations"),
        ("golang-migrate", "migrations"),
    ] {
        let files = project(t, tool, dir, "crlf");
        let any = std::fs::read_dir(&files).unwrap().next().unwrap().unwrap();
        let text = std::fs::read_to_string(any.path()).unwrap();
        assert!(
            text.contains("\r\n"),
            "{tool}: the fixture lost its CRLF line endings"
        );
        let run = t.run(&["migrate", "dev"]);
        run.code(0);
        // dbmate's `-- migrate:down\r` is still a marker: the table was not dropped again.
        assert!(has_table(t, "notes"), "{tool}: {}", run.all());
        t.run(&["status", "dev"]).code(0);
        for table in [
            "notes",
            "_sqlx_migrations",
            "schema_migrations",
            "_dbdeploy_history",
        ] {
            t.sql(&format!("DROP TABLE IF EXISTS {table}"));
        }
    }
});

/// Two files with the same version: every one of these tools refuses them, so does dbdeploy,
/// before touching the database.
#[test]
fn shared_versions_are_refused_before_anything_runs() {
    for (tool, dir, files) in [
        (
            "sqlx",
            "migrations",
            ["20240101000000_a.sql", "20240101000000_b.sql"],
        ),
        (
            "dbmate",
            "db/migrations",
            ["20240101000000_a.sql", "20240101000000_b.sql"],
        ),
        ("golang-migrate", "migrations", ["1_a.up.sql", "1_b.up.sql"]),
    ] {
        let Some(t) = TestContext::new(Engine::Sqlite, &format!("shared_version_{tool}")) else {
            return;
        };
        project(&t, tool, dir, "duplicate-version");
        let run = t.run(&["migrate", "dev", "--json"]);
        run.code(2);
        assert_eq!(run.json()["error"]["code"], "invalid-migrations", "{tool}");
        for file in files {
            assert_contains(&run, file);
        }
        assert!(t.tables().is_empty(), "{tool}: {:?}", t.tables());
    }
}

// down -----------------------------------------------------------------------------------------

engine_test!(
    sqlx_down_reverts_reversible_migrations,
    |t: &TestContext| {
        sqlx_project(t, "reversible");
        t.run(&["migrate", "dev"]).code(0);
        t.sql("INSERT INTO posts (id, title) VALUES (1, 'kept until reverted')");
        assert_eq!(sqlx_rows(t).len(), 3);

        // The newest first: 3's down script opts out of the transaction, as sqlx allows.
        let run = t.run(&["down", "dev", "--json"]);
        run.code(0);
        let doc = run.json();
        assert_eq!(doc["operation"], "revert-migrations");
        assert_eq!(migration_names(&doc), ["3"], "{doc}");
        assert_eq!(doc["result"]["migrations"][0]["atomic"], false, "{doc}");
        assert!(t.sql("SELECT id FROM users").is_empty());

        let dry = t.run(&["down", "dev", "--to", "1_users", "--dry-run", "--json"]);
        dry.code(0);
        let doc = dry.json();
        assert_eq!(doc["result"]["migrations_to_revert"], 1, "{doc}");
        assert_eq!(doc["result"]["migrations"][0]["name"], "2", "{doc}");
        assert!(
            doc["result"]["migrations"][0]["risks"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["code"] == "drop-table"),
            "{doc}"
        );
        assert!(has_table(t, "posts"), "the dry run changed something");

        t.run(&["down", "dev", "--to", "1_users"]).code(0);
        assert!(!has_table(t, "posts"));
        let rows = sqlx_rows(t);
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert!(rows[0].starts_with("1|users|ok|"), "{rows:?}");
        t.run(&["status", "dev"]).code(4);

        // Reverted migrations deploy again.
        let run = t.run(&["migrate", "dev", "--json"]);
        run.code(0);
        assert_eq!(migration_names(&run.json()), ["2", "3"]);
        assert_eq!(sqlx_rows(t).len(), 3);
    }
);

engine_test!(
    sqlx_down_refuses_a_migration_without_a_down_file,
    |t: &TestContext| {
        sqlx_project(t, "basic");
        t.run(&["migrate", "dev"]).code(0);
        let run = t.run(&["down", "dev"]);
        run.code(1);
        assert_contains(&run, "migration `10` has no down script");
        assert_contains(&run, "10_post_views.sql");
        assert_contains(&run, "dbdeploy rollback dev");
        assert_eq!(sqlx_rows(t).len(), 7);
        let run = t.run(&["down", "dev", "--steps", "8"]);
        run.code(2);
        assert_contains(&run, "only 7 migration(s) are applied");
    }
);

engine_test!(
    dbmate_down_runs_down_sections_and_deletes_versions,
    |t: &TestContext| {
        dbmate_project(t, "basic");
        t.run(&["migrate", "dev"]).code(0);

        // Protected: approval is needed, and without a terminal only --yes gives it.
        let refused = t.run(&["down", "production"]);
        refused.code(3);
        assert_eq!(dbmate_versions(t).len(), 6);

        let run = t.run(&["down", "production", "--yes", "--to", "20240103000000"]);
        run.code(0);
        assert_eq!(
            dbmate_versions(t),
            ["20240101000000", "20240102000000", "20240103000000"]
        );
        assert!(!columns(t, "posts").iter().any(|c| c.starts_with("views|")));
        assert!(t.sql("SELECT id FROM users").is_empty());

        // The section after the indented marker is the down script.
        t.run(&["down", "dev", "--steps", "2"]).code(0);
        assert_eq!(dbmate_versions(t), ["20240101000000"]);
        assert!(!has_table(t, "posts"));
        let history = t.sql(
            "SELECT operation, status, migrations FROM _dbdeploy_history \
         WHERE operation = 'revert-migrations' ORDER BY started_at",
        );
        assert_eq!(
            history,
            [
                "revert-migrations|success|[\"20240106000000\",\"20240105000000\",\"20240104000000\"]",
                "revert-migrations|success|[\"20240103000000\",\"20240102000000\"]",
            ]
        );
    }
);

engine_test!(
    golang_migrate_down_steps_back_one_version_at_a_time,
    |t: &TestContext| {
        golang_project(t, "basic");
        t.run(&["migrate", "dev"]).code(0);
        let run = t.run(&["down", "dev", "--steps", "2", "--json"]);
        run.code(0);
        assert_eq!(migration_names(&run.json()), ["10", "5"]);
        assert_eq!(golang_row(t), ["4|clean"]);
        assert!(t.sql("SELECT id FROM users").is_empty());
        assert!(!columns(t, "posts").iter().any(|c| c.starts_with("views|")));

        t.run(&["down", "dev", "--steps", "4"]).code(0);
        // Below the first version golang-migrate keeps no row at all.
        assert!(golang_row(t).is_empty());
        assert!(!has_table(t, "users"));
        let run = t.run(&["down", "dev"]);
        run.code(2);
        assert_contains(&run, "only 0 migration(s) are applied");
        t.run(&["migrate", "dev"]).code(0);
        assert_eq!(golang_row(t), ["10|clean"]);
    }
);

#[test]
fn prisma_has_no_down_scripts_and_points_at_rollback() {
    let Some(t) = TestContext::new(Engine::Sqlite, "prisma_down") else {
        return;
    };
    t.fixture("basic");
    t.run(&["migrate", "dev"]).code(0);
    let run = t.run(&["down", "dev", "--json"]);
    run.code(1);
    assert_contains(&run, "prisma migrations have no down scripts");
    assert_contains(&run, "dbdeploy rollback dev");
    assert_eq!(t.prisma_rows().len(), 3);
}

engine_test!(
    a_failed_script_with_its_own_transaction_leaves_it_closed,
    |t: &TestContext| {
        sqlx_project(t, "own-transaction-fails");
        let run = t.run(&["migrate", "dev"]);
        run.code(1);
        assert_contains(&run, "migration `2` failed");
        // The script's own transaction was rolled back, not left open: its insert is gone,
        // and what dbdeploy wrote afterwards (sqlx's dirty row, the history row) is kept.
        assert_eq!(t.sql("SELECT COUNT(*) FROM accounts"), ["0"]);
        let rows = sqlx_rows(t);
        assert_eq!(rows.len(), 2, "{rows:?}");
        assert!(rows[1].starts_with("2|backfill|dirty|"), "{rows:?}");
        assert_eq!(
            t.sql("SELECT status, migrations_applied FROM _dbdeploy_history"),
            ["error|1"]
        );
        t.run(&["migrate", "dev"]).code(1);
        assert_eq!(
            t.sql("SELECT status FROM _dbdeploy_history ORDER BY started_at"),
            ["error", "error"]
        );
    }
);

engine_test!(
    down_takes_the_required_backup_and_keeps_the_drift_baseline,
    |t: &TestContext| {
        sqlx_project(t, "reversible");
        let cfg = t.path().join("dbdeploy.toml");
        let mut text = std::fs::read_to_string(&cfg).unwrap();
        text.push_str(
            "\n[environments.safe]\nurl_env = \"DATABASE_URL\"\nbackup_before_migrate = true\n\n[backup]\ndir = \"backups\"\n",
        );
        std::fs::write(&cfg, text).unwrap();
        t.run(&["migrate", "safe", "--yes"]).code(0);
        let run = t.run(&["down", "safe", "--yes", "--json"]);
        run.code(0);
        let doc = run.json();
        let id = doc["result"]["backup_id"].as_str().unwrap().to_owned();
        assert!(t.path().join(format!("backups/safe/{id}.json")).exists());
        // `safe` is in deploy mode: a revert that left no schema record would look like drift.
        t.run(&["diff", "safe"]).code(0);
        let run = t.run(&["migrate", "safe", "--yes", "--json"]);
        run.code(0);
        assert_eq!(migration_names(&run.json()), ["3"]);
        // The backup taken before the revert restores the reverted migration's state.
        t.run(&["rollback", "safe", "--yes", "--to", &id]).code(0);
        assert_eq!(sqlx_rows(t).len(), 3);
    }
);
