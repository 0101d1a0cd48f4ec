//! Scenarios beyond the basic deploy: `resolve` after a failure, on a protected environment
//! and cancelled, `--to`, and a database that is not empty but has no history.

use crate::common::{Engine, TestContext, audit_lines, checksum, has_table, migration_names};
use crate::engine_test;

pub(crate) const BASIC: [&str; 3] = [
    "20240101000000_init",
    "20240102000000_comments",
    "20240103000000_post_views",
];

pub(crate) const HALFWAY: [&str; 3] = [
    "20240101000000_init",
    "20240102000000_broken",
    "20240103000000_after",
];

#[test]
fn mariadb_failed_migration_is_resolved_rolled_back_fixed_and_redeployed() {
    let Some(t) = TestContext::new(Engine::MariaDb, "maria_resolve_rb") else {
        return;
    };
    t.fixture("fails-halfway");
    let [init, broken, after] = HALFWAY;
    let broken_sum = checksum(&t, broken);

    t.run(&["migrate", "staging"]).code(1);

    let status = t.run(&["status", "staging"]);
    status.code(5);
    assert!(
        status.stdout.contains("Failed (1)") && status.stdout.contains(broken),
        "{}",
        status.stdout
    );

    let run = t.run(&["resolve", "staging", "--rolled-back", broken]);
    run.code(0);
    assert!(run.stdout.contains(broken), "{}", run.stdout);
    assert_eq!(
        t.sql(&format!(
            "SELECT finished_at IS NULL, rolled_back_at IS NOT NULL FROM _prisma_migrations \
             WHERE migration_name = '{broken}'"
        )),
        ["1|1"]
    );
    // Rolled back means "will run again": pending, no longer inconsistent.
    t.run(&["status", "staging"]).code(4);

    // Undo the partial change by hand and fix the script.
    t.sql("DROP TABLE `Tag`");
    let file = t.migrations().join(broken).join("migration.sql");
    let text = std::fs::read_to_string(&file).unwrap();
    let fixed = text
        .split("-- AlterTable")
        .next()
        .expect("the broken script")
        .to_owned();
    assert!(fixed.contains("CREATE TABLE `Tag`") && !fixed.contains("DoesNotExist"));
    std::fs::write(&file, fixed).unwrap();

    let run = t.run(&["migrate", "staging", "--json"]);
    run.code(0);
    let doc = run.json();
    assert_eq!(doc["result"]["migrations_applied"], 2, "{doc}");
    assert_eq!(migration_names(&doc), [broken, after]);
    assert!(has_table(&t, "Tag") && has_table(&t, "Never"));

    assert_eq!(
        t.prisma_rows(),
        [
            format!("{init}|{}|finished|-|1|-", checksum(&t, init)),
            format!("{broken}|{broken_sum}|unfinished|rolled_back|0|logs"),
            format!("{broken}|{}|finished|-|1|-", checksum(&t, broken)),
            format!("{after}|{}|finished|-|1|-", checksum(&t, after)),
        ]
    );
    t.run(&["status", "staging"]).code(0);
}

engine_test!(
    resolve_applied_skips_the_failed_migration,
    |t: &TestContext| {
        t.fixture("fails-halfway");
        let [init, broken, after] = HALFWAY;
        t.run(&["migrate", "staging"]).code(1);
        let before = t.prisma_rows();

        // Only a failed migration can be marked rolled back.
        for name in [init, after] {
            let run = t.run(&["resolve", "staging", "--rolled-back", name]);
            assert_ne!(run.code, 0, "{}", run.all());
            assert!(
                run.stderr.contains("not in a failed state") && run.stderr.contains(name),
                "{}",
                run.stderr
            );
            assert_eq!(t.prisma_rows(), before);
        }

        let run = t.run(&["resolve", "staging", "--applied", broken]);
        run.code(0);
        let rows = t.sql(&format!(
            "SELECT checksum, \
             CASE WHEN finished_at IS NULL THEN 'unfinished' ELSE 'finished' END, \
             CASE WHEN rolled_back_at IS NULL THEN '-' ELSE 'rolled_back' END \
             FROM _prisma_migrations WHERE migration_name = '{broken}' ORDER BY started_at"
        ));
        let applied = format!("{}|finished|-", checksum(t, broken));
        if t.engine == Engine::MariaDb {
            // The failed attempt is kept, marked rolled back, as `prisma migrate resolve` does.
            assert_eq!(rows.len(), 2, "{rows:?}");
            assert!(rows[0].ends_with("|unfinished|rolled_back"), "{rows:?}");
            assert_eq!(rows[1], applied);
        } else {
            assert_eq!(rows, [applied]);
        }

        let run = t.run(&["migrate", "staging", "--json"]);
        run.code(0);
        let doc = run.json();
        assert_eq!(doc["result"]["migrations_applied"], 1, "{doc}");
        assert_eq!(migration_names(&doc), [after]);
        assert!(has_table(t, "Never"));
        assert_eq!(has_table(t, "Tag"), t.engine == Engine::MariaDb);
        t.run(&["status", "staging"]).code(0);
    }
);

engine_test!(
    resolve_on_protected_environment_needs_approval,
    |t: &TestContext| {
        t.fixture("basic");
        // An empty database: baselining would create the tracking table.
        let run = t.run(&["resolve", "production", "--applied", BASIC[0]]);
        run.code(3);
        assert!(run.stderr.contains("--yes"), "{}", run.stderr);
        assert!(t.tables().is_empty(), "{:?}", t.tables());

        let run = t.run(&["resolve", "production", "--applied", BASIC[0], "--json"]);
        run.code(3);
        let doc = run.json();
        assert_eq!(doc["status"], "cancelled");
        assert_eq!(doc["error"]["code"], "approval-required");
        assert!(t.tables().is_empty(), "{:?}", t.tables());

        // A database with history: no row is added.
        t.run(&["migrate", "staging", "--to", BASIC[0]]).code(0);
        let rows = t.prisma_rows();
        let history = t.sql("SELECT run_id, status FROM _dbdeploy_history");
        t.run(&["resolve", "production", "--applied", BASIC[1]])
            .code(3);
        assert_eq!(t.prisma_rows(), rows);
        assert_eq!(
            t.sql("SELECT run_id, status FROM _dbdeploy_history"),
            history
        );

        // With --yes the same request goes through.
        t.run(&["resolve", "production", "--applied", BASIC[1], "--yes"])
            .code(0);
        let rows = t.prisma_rows();
        assert_eq!(rows.len(), 2, "{rows:?}");
        assert!(rows[1].starts_with(&format!("{}|", BASIC[1])), "{rows:?}");
    }
);

#[test]
fn cancelled_resolve_is_audited_as_cancelled() {
    let Some(t) = TestContext::new(Engine::Sqlite, "resolve_audit") else {
        return;
    };
    t.fixture("basic");
    t.run(&["resolve", "production", "--applied", BASIC[0]])
        .code(3);
    let lines = audit_lines(t.path());
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["operation"], "resolve-migration");
    assert_eq!(lines[0]["status"], "cancelled", "{}", lines[0]);
}

engine_test!(to_stops_after_the_named_migration, |t: &TestContext| {
    t.fixture("basic");
    let run = t.run(&["migrate", "dev", "--to", BASIC[1], "--json"]);
    run.code(0);
    let doc = run.json();
    assert_eq!(doc["result"]["migrations_applied"], 2, "{doc}");
    assert_eq!(migration_names(&doc), [BASIC[0], BASIC[1]]);
    let names = t.sql("SELECT migration_name FROM _prisma_migrations ORDER BY migration_name");
    assert_eq!(names, [BASIC[0], BASIC[1]]);
    assert!(has_table(t, "Comment"));

    let status = t.run(&["status", "dev", "--json"]);
    status.code(4);
    assert_eq!(
        status.json()["result"]["pending"],
        serde_json::json!([BASIC[2]])
    );

    // A name that is not a migration is a usage error and changes nothing.
    let run = t.run(&["migrate", "dev", "--to", "20249999000000_nope"]);
    run.code(2);
    assert!(run.stderr.contains("20249999000000_nope"), "{}", run.stderr);
    assert_eq!(t.prisma_rows().len(), 2);

    let run = t.run(&["migrate", "dev", "--json"]);
    run.code(0);
    assert_eq!(migration_names(&run.json()), [BASIC[2]]);
});

engine_test!(
    non_empty_database_without_history_is_refused,
    |t: &TestContext| {
        t.fixture("basic");
        t.sql("CREATE TABLE legacy (id INTEGER)");
        let run = t.run(&["migrate", "staging"]);
        run.code(1);
        assert!(
            run.stderr.contains("not empty")
                && run.stderr.contains("legacy")
                && run.stderr.contains("resolve"),
            "{}",
            run.stderr
        );
        assert_eq!(t.tables(), ["legacy"]);

        let run = t.run(&["migrate", "staging", "--json"]);
        run.code(1);
        let doc = run.json();
        assert_eq!(doc["status"], "error");
        assert_eq!(doc["error"]["code"], "inconsistent-history");
        assert_eq!(doc["error"]["class"], "pre-deployment");
        assert_eq!(doc["result"]["migrations_applied"], 0);
        assert_eq!(t.tables(), ["legacy"]);
    }
);

engine_test!(
    the_not_empty_check_ignores_dbdeploys_own_tables_and_names_a_few,
    |t: &TestContext| {
        t.fixture("basic");
        t.run(&["migrate", "staging"]).code(0);
        t.sql("DROP TABLE _prisma_migrations");
        for i in 1..=6 {
            t.sql(&format!("CREATE TABLE extra_{i} (id INTEGER)"));
        }
        let run = t.run(&["migrate", "staging", "--json"]);
        run.code(1);
        let doc = run.json();
        assert_eq!(doc["error"]["code"], "inconsistent-history", "{doc}");
        let message = doc["error"]["message"].as_str().unwrap();
        let (_, listed) = message.rsplit_once(": ").unwrap();
        let listed: Vec<&str> = listed.split(", ").collect();
        let tables = t.tables();
        assert_eq!(listed.len(), 5, "{message}");
        assert!(
            listed
                .iter()
                .all(|l| tables.iter().any(|x| x == l) && !l.starts_with("_dbdeploy")),
            "{message}"
        );

        // With nothing but dbdeploy's own history left, the database counts as empty (the
        // deploy then stops at the schema drift check: the recorded tables are gone).
        for table in ["Comment", "Post", "User"] {
            t.sql(&format!("DROP TABLE {}", t.engine.q(table)));
        }
        for i in 1..=6 {
            t.sql(&format!("DROP TABLE extra_{i}"));
        }
        let doc = t.run(&["migrate", "staging", "--json"]).json();
        let checks = doc["result"]["health_checks_before"].as_array().unwrap();
        let tracking = checks
            .iter()
            .find(|c| c["name"] == "tracking_table")
            .expect("the tracking_table check");
        assert_eq!(tracking["status"], "passed", "{doc}");
        assert!(
            tracking["detail"]
                .as_str()
                .unwrap()
                .contains("empty database"),
            "{doc}"
        );
    }
);
