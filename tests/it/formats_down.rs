//! `down` in every format: reversible migrations reverted, missing down scripts refused, the
//! required backup taken and the drift baseline kept.

use crate::common::{Engine, TestContext, has_table, migration_names};
use crate::engine_test;
use crate::formats_dbmate::dbmate_versions;
use crate::formats_golang::golang_row;
use crate::formats_sqlx::sqlx_rows;
use crate::formats_support::{
    assert_contains, columns, dbmate_project, golang_project, sqlx_project,
};

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
