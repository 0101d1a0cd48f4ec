//! The golang-migrate format on every engine, through the CLI: its one clean row, numeric
//! order, dirty versions, versions added below the current one, and another tool's table.

use std::path::Path;

use crate::common::{Engine, TestContext, has_table, migration_names};
use crate::engine_test;
use crate::formats_dbmate::dbmate_versions;
use crate::formats_support::{assert_contains, columns, golang_project, sql_bool};

pub(crate) fn golang_row(t: &TestContext) -> Vec<String> {
    t.sql("SELECT version, CASE WHEN dirty THEN 'dirty' ELSE 'clean' END FROM schema_migrations")
}

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
