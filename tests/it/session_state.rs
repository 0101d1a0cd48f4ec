//! What one migration sets for its session does not reach the next one (issue 11, item 5):
//! each engine's session settings are reset between migrations, and dbdeploy's own are kept.

use crate::common::{Engine, TestContext, write_migrations};
use crate::engine_test;

engine_test!(
    a_setting_made_by_one_migration_does_not_reach_the_next,
    |t: &TestContext| {
        // The first migration sets a limit the second would break; the same session runs both.
        let (set, check) = match t.engine {
            Engine::Postgres => ("SET statement_timeout = '100ms';", "SELECT pg_sleep(0.3);"),
            Engine::MariaDb => (
                "SET SESSION max_statement_time = 0.1;",
                "SELECT SLEEP(0.3);",
            ),
            // A pragma that persists on the connection: with it, a CHECK is not enforced.
            Engine::Sqlite => ("PRAGMA ignore_check_constraints = ON;", ""),
        };
        let second = if t.engine == Engine::Sqlite {
            "CREATE TABLE checked (n INTEGER CHECK (n > 0));\nINSERT INTO checked VALUES (1);\n"
                .to_owned()
        } else {
            format!("CREATE TABLE second (n INTEGER);\n{check}\n")
        };
        write_migrations(
            t,
            &[
                (
                    "20240101000000_sets",
                    format!("CREATE TABLE first (n INTEGER);\n{set}\n"),
                ),
                ("20240102000000_runs", second),
                (
                    "20240103000000_checks",
                    if t.engine == Engine::Sqlite {
                        "INSERT INTO checked VALUES (-1);\n".to_owned()
                    } else {
                        "CREATE TABLE third (n INTEGER);\n".to_owned()
                    },
                ),
            ],
        );
        let run = t.run(&["migrate", "dev", "--json"]);
        if t.engine == Engine::Sqlite {
            // The CHECK is enforced again: the third migration fails on it.
            run.code(1);
            assert!(
                run.all().contains("CHECK constraint failed"),
                "{}",
                run.all()
            );
            assert_eq!(t.sql("SELECT n FROM checked"), ["1"]);
            assert_eq!(t.prisma_rows().len(), 2);
        } else {
            run.code(0);
            assert_eq!(t.prisma_rows().len(), 3, "{}", run.all());
        }
    }
);

#[test]
fn a_migration_keeps_its_own_lock_timeout_and_the_next_gets_dbdeploys() {
    crate::common::run_on(Engine::Postgres, "own_settings_kept", |t: &TestContext| {
        t.write_config(
            "[environments.ci]\nurl_env = \"DATABASE_URL\"\nddl_lock_timeout_seconds = 7\n",
        );
        write_migrations(
            t,
            &[
                (
                    "20240101000000_a",
                    "SET lock_timeout = '3s';\nCREATE TABLE a AS SELECT current_setting('lock_timeout') AS lock_timeout;\n".into(),
                ),
                (
                    "20240102000000_b",
                    "CREATE TABLE b AS SELECT current_setting('lock_timeout') AS lock_timeout;\n"
                        .into(),
                ),
            ],
        );
        t.run(&["migrate", "ci"]).code(0);
        // A migration that sets its own keeps it; the next one has dbdeploy's again.
        assert_eq!(t.sql("SELECT lock_timeout FROM a"), ["3s"]);
        assert_eq!(t.sql("SELECT lock_timeout FROM b"), ["7s"]);
    });
}

#[test]
fn a_migration_that_changes_the_current_database_does_not_move_the_next() {
    crate::common::run_on(Engine::MariaDb, "use_other_db", |t: &TestContext| {
        write_migrations(
            t,
            &[
                (
                    "20240101000000_a",
                    "CREATE TABLE a (n INTEGER);\nUSE information_schema;\n".into(),
                ),
                ("20240102000000_b", "CREATE TABLE b (n INTEGER);\n".into()),
            ],
        );
        t.run(&["migrate", "dev"]).code(0);
        assert_eq!(t.prisma_rows().len(), 2);
        assert!(t.tables().contains(&"b".to_owned()), "{:?}", t.tables());
    });
}
