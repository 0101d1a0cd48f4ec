//! `dbdeploy migrate` scenarios on every engine.

use crate::common::{Engine, TestContext, run_on, sha256_file};
use crate::engine_test;

const BASIC: [&str; 3] = [
    "20240101000000_init",
    "20240102000000_comments",
    "20240103000000_post_views",
];

engine_test!(
    fresh_deploy_applies_all_in_order_and_writes_prisma_rows,
    |t: &TestContext| {
        t.fixture("basic");
        let run = t.run(&["migrate", "dev"]);
        run.code(0);
        for name in BASIC {
            assert!(run.stdout.contains(name), "{}", run.stdout);
        }
        assert!(
            run.stdout.contains("Deployed 3 migration(s)"),
            "{}",
            run.stdout
        );
        let rows = t.prisma_rows();
        let expected: Vec<String> = BASIC
            .iter()
            .map(|n| {
                let sum = sha256_file(&t.migrations().join(n).join("migration.sql"));
                format!("{n}|{sum}|finished|-|1|-")
            })
            .collect();
        assert_eq!(rows, expected);
        // One row per migration, written whole as Prisma's INSERT and UPDATE leave it.
        assert_eq!(
            t.sql(
                "SELECT COUNT(*) FROM _prisma_migrations WHERE started_at <= finished_at \
                 AND logs IS NULL AND rolled_back_at IS NULL AND applied_steps_count = 1"
            ),
            ["3"]
        );
        let ids = t.sql("SELECT id FROM _prisma_migrations");
        for id in ids {
            assert_eq!(
                uuid::Uuid::parse_str(&id)
                    .expect("uuid id")
                    .get_version_num(),
                4
            );
        }
        let tables = t.tables();
        for table in [
            "Comment",
            "Post",
            "User",
            "_dbdeploy_history",
            "_prisma_migrations",
        ] {
            assert!(
                tables.iter().any(|x| x == table),
                "{table} missing from {tables:?}"
            );
        }
    }
);

engine_test!(second_deploy_applies_nothing, |t: &TestContext| {
    t.fixture("basic");
    t.run(&["migrate", "dev"]).code(0);
    let run = t.run(&["migrate", "dev", "--json"]);
    run.code(0);
    let doc = run.json();
    assert_eq!(doc["status"], "success");
    assert_eq!(doc["result"]["migrations_applied"], 0);
    assert_eq!(t.prisma_rows().len(), 3);
    let history =
        t.sql("SELECT status, migrations_applied FROM _dbdeploy_history ORDER BY started_at");
    assert_eq!(history, ["success|3", "success|0"]);
});

engine_test!(dry_run_changes_nothing, |t: &TestContext| {
    t.fixture("basic");
    let run = t.run(&["migrate", "production", "--dry-run", "--json"]);
    run.code(0);
    let doc = run.json();
    assert_eq!(doc["operation"], "preview-migrations");
    assert_eq!(doc["result"]["pending_migrations"], 3);
    let first = &doc["result"]["migrations"][0];
    assert_eq!(first["name"], BASIC[0]);
    assert!(first["sql"].as_str().unwrap().contains("CREATE TABLE"));
    assert!(first["estimated_duration_seconds"].as_f64().is_some());
    assert!(first["risks"].is_array());
    assert!(t.tables().is_empty(), "dry run created {:?}", t.tables());
    if t.engine == Engine::Sqlite {
        assert!(
            !t.path().join("test.db").exists(),
            "dry run created the SQLite file"
        );
    }
    assert!(
        !t.path().join(".dbdeploy/audit.jsonl").exists(),
        "dry run wrote the audit log"
    );

    // With one migration applied, a dry run still leaves the tracking table as it was.
    t.run(&["migrate", "dev", "--to", BASIC[0]]).code(0);
    let before = t.prisma_rows();
    let tables_before = t.tables();
    let run = t.run(&["migrate", "dev", "--dry-run"]);
    run.code(0);
    assert!(
        run.stdout.contains(BASIC[1]) && run.stdout.contains("Nothing was changed"),
        "{}",
        run.stdout
    );
    assert_eq!(t.prisma_rows(), before);
    assert_eq!(t.tables(), tables_before);
});

engine_test!(
    protected_without_terminal_or_yes_exits_3_and_changes_nothing,
    |t: &TestContext| {
        t.fixture("basic");
        let run = t.run(&["migrate", "production"]);
        run.code(3);
        assert!(run.stderr.contains("--yes"), "{}", run.stderr);
        assert!(t.tables().is_empty(), "{:?}", t.tables());

        let run = t.run(&["migrate", "production", "--json"]);
        run.code(3);
        let doc = run.json();
        assert_eq!(doc["status"], "cancelled");
        assert_eq!(doc["error"]["code"], "approval-required");
        assert!(t.tables().is_empty());

        t.run(&["migrate", "production", "--yes"]).code(0);
        assert_eq!(t.prisma_rows().len(), 3);
    }
);

engine_test!(
    failing_migration_stops_the_run_and_names_it,
    |t: &TestContext| {
        t.fixture("fails-halfway");
        let run = t.run(&["migrate", "staging", "--json"]);
        run.code(1);
        let doc = run.json();
        assert_eq!(doc["status"], "error");
        assert_eq!(doc["error"]["class"], "mid-deployment");
        assert_eq!(doc["result"]["failed_migration"], "20240102000000_broken");
        assert_eq!(doc["result"]["migrations_applied_before_failure"], 1);
        assert!(
            doc["error"]["message"]
                .as_str()
                .unwrap()
                .contains("20240102000000_broken")
        );
        assert!(
            doc["recovery"]["suggestions"]
                .as_array()
                .is_some_and(|s| !s.is_empty())
        );
        let tables = t.tables();
        assert!(
            !tables.iter().any(|x| x == "Never"),
            "a later migration ran: {tables:?}"
        );
        if t.engine == Engine::MariaDb {
            // DDL commits implicitly: the failure is recorded Prisma's way and blocks.
            assert!(tables.iter().any(|x| x == "Tag"));
            let rows = t.prisma_rows();
            assert_eq!(rows.len(), 2);
            assert!(
                rows[1].starts_with("20240102000000_broken|")
                    && rows[1].ends_with("|unfinished|-|0|logs"),
                "{rows:?}"
            );
            let again = t.run(&["migrate", "staging"]);
            again.code(1);
            assert!(
                again.stderr.contains("20240102000000_broken")
                    && again.stderr.contains("dbdeploy resolve"),
                "{}",
                again.stderr
            );
        } else {
            // Rolled back: exactly as before the failed migration, which stays committed.
            assert!(!tables.iter().any(|x| x == "Tag"), "{tables:?}");
            assert!(tables.iter().any(|x| x == "User"), "{tables:?}");
            let init = "20240101000000_init";
            let sum = sha256_file(&t.migrations().join(init).join("migration.sql"));
            assert_eq!(t.prisma_rows(), [format!("{init}|{sum}|finished|-|1|-")]);
            assert_eq!(doc["result"]["failed_migration_rolled_back"], true);
        }
    }
);

engine_test!(
    edited_applied_migration_is_refused_by_name,
    |t: &TestContext| {
        t.fixture("basic");
        t.run(&["migrate", "staging"]).code(0);
        let file = t.migrations().join(BASIC[1]).join("migration.sql");
        let mut text = std::fs::read_to_string(&file).unwrap();
        text.push_str("-- edited after deploy\n");
        std::fs::write(&file, text).unwrap();
        std::fs::create_dir_all(t.migrations().join("20240104000000_more")).unwrap();
        std::fs::write(
            t.migrations().join("20240104000000_more/migration.sql"),
            "CREATE TABLE more_things (id INTEGER);\n",
        )
        .unwrap();
        let run = t.run(&["migrate", "staging"]);
        run.code(1);
        assert!(
            run.stderr.contains(BASIC[1]) && run.stderr.contains("edited"),
            "{}",
            run.stderr
        );
        assert!(!t.tables().iter().any(|x| x == "more_things"));
        let status = t.run(&["status", "staging", "--json"]);
        status.code(5);
        assert_eq!(status.json()["result"]["modified"][0], BASIC[1]);
    }
);

engine_test!(
    concurrent_deploys_apply_each_migration_once,
    |t: &TestContext| {
        t.fixture("basic");
        let children: Vec<_> = (0..2)
            .map(|_| {
                t.cmd(&["migrate", "staging", "--json"])
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let mut applied = 0;
        for child in children {
            let out = crate::common::Run::from(child.wait_with_output().unwrap());
            out.code(0);
            applied += out.json()["result"]["migrations_applied"].as_u64().unwrap();
        }
        assert_eq!(applied, 3);
        let names = t.sql("SELECT migration_name FROM _prisma_migrations ORDER BY migration_name");
        assert_eq!(names, BASIC);
    }
);

engine_test!(json_document_has_the_documented_keys, |t: &TestContext| {
    t.fixture("basic");
    let run = t.run(&["migrate", "dev", "--json"]);
    run.code(0);
    let doc = run.json();
    for key in [
        "status",
        "operation",
        "environment",
        "mode",
        "result",
        "message",
    ] {
        assert!(doc.get(key).is_some(), "missing {key}: {doc}");
    }
    assert_eq!(doc["operation"], "deploy-migrations");
    assert_eq!(doc["environment"], "dev");
    assert_eq!(doc["mode"], "dev");
    let r = &doc["result"];
    for key in [
        "migrations_applied",
        "migrations",
        "total_duration_seconds",
        "backup_id",
        "health_check_before",
        "health_check_after",
    ] {
        assert!(r.get(key).is_some(), "missing result.{key}: {r}");
    }
    assert_eq!(r["migrations"][2]["name"], BASIC[2]);
    assert_eq!(r["migrations"][2]["status"], "applied");
    assert!(r["migrations"][2]["duration_seconds"].as_f64().is_some());
    // Human progress went to stderr, so stdout is the document alone.
    assert!(run.stderr.contains("apply"), "{}", run.stderr);
});

engine_test!(status_exit_codes_follow_the_state, |t: &TestContext| {
    t.fixture("basic");
    let run = t.run(&["status", "dev", "--json"]);
    run.code(4);
    assert_eq!(run.json()["result"]["pending"].as_array().unwrap().len(), 3);
    t.run(&["migrate", "dev"]).code(0);
    t.run(&["status", "dev"]).code(0);
});

#[test]
fn password_never_appears_even_when_wrong() {
    for engine in [Engine::Postgres, Engine::MariaDb] {
        let Some(t) = TestContext::new(engine, "password_never_appears") else {
            continue;
        };
        t.fixture("basic");
        let secret = "Sup3r-S3cret-PW";
        let wrong_password = t.url_with_password(secret);
        let mut unreachable = url::Url::parse(&wrong_password).unwrap();
        unreachable.set_port(Some(1)).unwrap();
        for (url, args) in [
            (
                wrong_password.as_str(),
                &["migrate", "staging", "--json"][..],
            ),
            (unreachable.as_str(), &["migrate", "staging", "--json"][..]),
            (wrong_password.as_str(), &["-vvv", "status", "staging"][..]),
            (unreachable.as_str(), &["-vvv", "migrate", "staging"][..]),
        ] {
            let run = Run::from(t.cmd(args).env("DATABASE_URL", url).output().unwrap());
            assert!(
                !run.all().contains(secret),
                "password leaked ({args:?}): {}",
                run.all()
            );
        }
        // MariaDB checks the password (PostgreSQL here trusts local connections).
        if engine == Engine::MariaDb {
            let run = Run::from(
                t.cmd(&["migrate", "staging", "--json"])
                    .env("DATABASE_URL", &wrong_password)
                    .output()
                    .unwrap(),
            );
            run.code(1);
            assert_eq!(run.json()["error"]["code"], "connection-failed");
        }
        let run = Run::from(
            t.cmd(&["migrate", "staging", "--json"])
                .env("DATABASE_URL", unreachable.as_str())
                .output()
                .unwrap(),
        );
        run.code(1);
        assert_eq!(run.json()["error"]["code"], "connection-failed");
        let audit =
            std::fs::read_to_string(t.path().join(".dbdeploy/audit.jsonl")).unwrap_or_default();
        assert!(
            !audit.is_empty() && !audit.contains(secret),
            "audit log: {audit}"
        );
    }
}

use crate::common::Run;

/// Writes PostgreSQL Prisma migrations `(name, script)` into the project.
fn write_postgres_migrations(t: &TestContext, migrations: &[(&str, &str)]) {
    let dir = t.migrations();
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("migration_lock.toml"),
        "provider = \"postgresql\"\n",
    )
    .unwrap();
    for (name, sql) in migrations {
        std::fs::create_dir_all(dir.join(name)).unwrap();
        std::fs::write(dir.join(name).join("migration.sql"), sql).unwrap();
    }
}

#[test]
fn postgres_reports_the_line_of_the_failing_statement() {
    run_on(Engine::Postgres, "failing_line", |t: &TestContext| {
        write_postgres_migrations(
            t,
            &[
                ("20240101000000_a", "CREATE TABLE a (id INTEGER);\n"),
                (
                    "20240102000000_b",
                    "-- CreateTable\nCREATE TABLE b (id INTEGER);\n\n-- Data\nINSERT INTO b\nSELECT id FROM does_not_exist;\n",
                ),
            ],
        );
        let run = t.run(&["migrate", "staging", "--json"]);
        run.code(1);
        let doc = run.json();
        let failed = &doc["result"]["migrations"][1];
        assert_eq!(failed["name"], "20240102000000_b", "{doc}");
        assert_eq!(failed["status"], "failed", "{doc}");
        // The file's own line, whatever else travelled to the server with the script.
        assert_eq!(failed["line"], 6, "{doc}");
        assert_eq!(failed["rolled_back"], true, "{doc}");
        assert_eq!(t.tables(), ["_dbdeploy_history", "_prisma_migrations", "a"]);
        assert_eq!(t.prisma_rows().len(), 1);
    });
}

#[test]
fn postgres_waits_for_the_disk_only_at_the_last_commit_of_a_run() {
    run_on(Engine::Postgres, "relaxed_commits", |t: &TestContext| {
        // Each migration keeps the setting its transaction commits with.
        let scripts: Vec<(String, String)> = (0..3)
            .map(|i| {
                (
                    format!("2024010{}000000_m{i}", i + 1),
                    format!(
                        "CREATE TABLE s{i} AS SELECT {i} AS n, current_setting('synchronous_commit') AS setting;\n"
                    ),
                )
            })
            .collect();
        let scripts: Vec<(&str, &str)> = scripts
            .iter()
            .map(|(n, s)| (n.as_str(), s.as_str()))
            .collect();
        write_postgres_migrations(t, &scripts);
        t.run(&["migrate", "staging"]).code(0);
        assert_eq!(
            t.sql("SELECT n, setting FROM s0 UNION ALL SELECT n, setting FROM s1 UNION ALL SELECT n, setting FROM s2 ORDER BY 1"),
            ["0|off", "1|off", "2|on"],
            "the last migration of a run must commit with the server's setting: its WAL flush makes the run durable"
        );
        assert_eq!(t.prisma_rows().len(), 3);
        assert!(
            t.prisma_rows()
                .iter()
                .all(|r| r.ends_with("|finished|-|1|-"))
        );
    });
}
