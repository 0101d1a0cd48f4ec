//! The sqlx format on every engine, through the CLI: the tracking rows sqlx would write,
//! failures recorded sqlx's way, dirty rows and the checksum over the exact bytes.

use std::path::Path;

use sha2::Digest;

use crate::common::{Engine, TestContext, has_table, migration_names};
use crate::engine_test;
use crate::formats_support::{assert_contains, columns, sql_bool, sqlx_project};

/// `version|description|ok-or-dirty|checksum hex|timed` per `_sqlx_migrations` row.
pub(crate) fn sqlx_rows(t: &TestContext) -> Vec<String> {
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
