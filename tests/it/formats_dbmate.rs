//! The dbmate format on every engine, through the CLI: the versions dbmate would write, a
//! failure that leaves no row, the up marker, and another tool's table of the same name.

use crate::common::{Engine, TestContext, has_table};
use crate::engine_test;
use crate::formats_golang::golang_row;
use crate::formats_support::{assert_contains, columns, dbmate_project, sql_bool};

pub(crate) fn dbmate_versions(t: &TestContext) -> Vec<String> {
    t.sql("SELECT version FROM schema_migrations ORDER BY version")
}

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
