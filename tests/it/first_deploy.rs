//! A first deploy that does not happen leaves nothing behind (issue 11, item 5): a refused or
//! cancelled run does not create the SQLite file, and a first migration that fails takes the
//! tracking table with it where DDL is transactional.

use crate::common::{Engine, TestContext, run_on, write_migrations};

#[test]
fn a_refused_migrate_does_not_create_the_sqlite_file() {
    let Some(t) = TestContext::new(Engine::Sqlite, "refused_no_file") else {
        return;
    };
    t.fixture("basic");
    let file = t.path().join("data/new.db");
    let url = format!("sqlite://{}", file.display());
    // Protected, no terminal and no --yes: refused before any change.
    let run = crate::common::Run::from(
        t.cmd(&["migrate", "production"])
            .env("DATABASE_URL", &url)
            .output()
            .unwrap(),
    );
    run.code(3);
    assert!(!file.exists(), "a refused run created {}", file.display());
    assert!(!file.parent().unwrap().exists(), "nor its folder");
    // The same run approved creates it.
    let run = crate::common::Run::from(
        t.cmd(&["migrate", "production", "--yes"])
            .env("DATABASE_URL", &url)
            .output()
            .unwrap(),
    );
    run.code(0);
    assert!(file.exists());
}

fn failing_first(t: &TestContext) {
    write_migrations(
        t,
        &[
            (
                "20240101000000_init",
                "CREATE TABLE a (n INTEGER);\nINSERT INTO missing VALUES (1);\n".into(),
            ),
            (
                "20240102000000_next",
                "CREATE TABLE b (n INTEGER);\n".into(),
            ),
        ],
    );
}

#[test]
fn a_failed_first_deploy_leaves_no_tracking_table() {
    for engine in [Engine::Sqlite, Engine::Postgres] {
        run_on(engine, "failed_first", |t: &TestContext| {
            failing_first(t);
            t.run(&["migrate", "dev"]).code(1);
            // dbdeploy's own run log stays; the tool's table does not.
            assert_eq!(t.tables(), ["_dbdeploy_history"], "{engine:?}");
            // And the next deploy sees a first deploy again.
            let run = t.run(&["status", "dev", "--json"]);
            run.code(4);
            assert_eq!(
                run.json()["result"]["tracking_table_exists"],
                false,
                "{engine:?}"
            );
        });
    }
}

#[test]
fn the_tracking_table_created_with_the_first_migration_stays_with_it() {
    for engine in [Engine::Sqlite, Engine::Postgres] {
        run_on(engine, "first_ok_second_fails", |t: &TestContext| {
            write_migrations(
                t,
                &[
                    (
                        "20240101000000_init",
                        "CREATE TABLE a (n INTEGER);\n".into(),
                    ),
                    (
                        "20240102000000_bad",
                        "INSERT INTO missing VALUES (1);\n".into(),
                    ),
                ],
            );
            t.run(&["migrate", "dev"]).code(1);
            let rows = t.prisma_rows();
            assert_eq!(rows.len(), 1, "{engine:?}: {rows:?}");
            assert!(rows[0].starts_with("20240101000000_init|"), "{rows:?}");
        });
    }
}
