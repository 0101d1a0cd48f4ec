//! `dbdeploy lint` and the lint's findings in `migrate --dry-run`, the approval summary and a
//! deploy (issue 13): rules and levels through the CLI, a finding per clause, live table sizes
//! (a never-analysed table is counted, never "0 rows"), allow comments and `[lint] allow`,
//! `fail_on` (exit 5), `block_on` (a deploy refused with nothing changed), and on PostgreSQL
//! the sessions that would block the DDL now.

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{Engine, TestContext, audit_lines, run_on, write_migrations};
use crate::{dbdeploy_snapshot, engine_test};

/// The first migration: `users` with a column to drop, and 500 rows.
fn users(t: &TestContext) -> (&'static str, String) {
    let create = "CREATE TABLE users (id INTEGER PRIMARY KEY, name VARCHAR(50), legacy TEXT, email VARCHAR(100));\n";
    let rows = match t.engine {
        Engine::Postgres => {
            "INSERT INTO users SELECT i, 'user ' || i, 'x', 'u' || i || '@example.com' FROM generate_series(1, 500) AS i;\n".to_owned()
        }
        Engine::MariaDb => {
            "INSERT INTO users SELECT seq, CONCAT('user ', seq), 'x', CONCAT('u', seq, '@example.com') FROM seq_1_to_500;\n".to_owned()
        }
        Engine::Sqlite => {
            "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 500) INSERT INTO users SELECT i, 'user ' || i, 'x', 'u' || i || '@example.com' FROM s;\n".to_owned()
        }
    };
    ("20240101000000_users", format!("{create}{rows}"))
}

/// The statement: three risks in one `ALTER TABLE`, one finding each.
fn three_clauses(t: &TestContext) -> String {
    let not_null = match t.engine {
        Engine::MariaDb => "MODIFY email VARCHAR(100) NOT NULL",
        _ => "ALTER COLUMN email SET NOT NULL",
    };
    format!(
        "-- three risks in one statement\nALTER TABLE users\n  DROP COLUMN legacy,\n  {not_null},\n  ADD COLUMN c TEXT NOT NULL;\n"
    )
}

/// Applies `users` on staging, then puts `pending` after it; statistics are fresh.
fn applied_then(t: &TestContext, pending: &str) {
    write_migrations(t, &[users(t)]);
    t.run(&["migrate", "staging"]).code(0);
    let (name, sql) = users(t);
    write_migrations(
        t,
        &[(name, sql), ("20240102000000_next", pending.to_owned())],
    );
    match t.engine {
        Engine::Postgres => drop(t.sql("ANALYZE users")),
        Engine::MariaDb => drop(t.sql("ANALYZE TABLE users")),
        Engine::Sqlite => {}
    }
}

fn findings(doc: &Value) -> &Vec<Value> {
    doc["result"]["findings"].as_array().expect("findings")
}

fn codes(doc: &Value) -> Vec<String> {
    findings(doc)
        .iter()
        .map(|f| f["code"].as_str().unwrap().to_owned())
        .collect()
}

engine_test!(rules_levels_and_a_finding_per_clause, |t| {
    applied_then(t, &three_clauses(t));
    let run = dbdeploy_snapshot!(t, ["lint", "staging"]);
    run.code(5);

    let run = t.run(&["lint", "staging", "--json"]);
    run.code(5);
    let doc = run.json();
    assert_eq!(doc["operation"], "lint-migrations", "{doc}");
    let all = findings(&doc);
    assert_eq!(all.len(), 3, "one finding per clause: {doc}");
    let lines: Vec<i64> = all.iter().map(|f| f["line"].as_i64().unwrap()).collect();
    assert_eq!(lines, [3, 4, 5], "each clause on its own line: {doc}");
    for f in all {
        for key in [
            "migration",
            "file",
            "line",
            "code",
            "level",
            "message",
            "lock",
            "rewrites",
            "estimated_seconds",
            "suggestion",
        ] {
            assert!(f.get(key).is_some(), "no `{key}` in {f}");
        }
        assert_eq!(f["migration"], "20240102000000_next");
        assert!(
            f["file"].as_str().unwrap().ends_with("migration.sql"),
            "{f}"
        );
    }
    assert_eq!(all[0]["code"], "drop-column");
    assert_eq!(all[0]["level"], "high");
    assert!(
        all[0]["message"].as_str().unwrap().contains("500 rows"),
        "the live size: {doc}"
    );

    // The dry run and the lint say the same.
    let dry = t.run(&["migrate", "staging", "--dry-run", "--json"]);
    dry.code(0);
    let preview = dry.json();
    let risks: Vec<String> = preview["result"]["migrations"][0]["risks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["code"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(risks, codes(&doc), "{preview}");
    dbdeploy_snapshot!(t, ["migrate", "staging", "--dry-run"]).code(0);

    // Offline: every migration, sizes unknown.
    let run = t.run(&["lint", "--json"]);
    run.code(5);
    let offline = run.json();
    assert_eq!(offline["result"]["live"], false, "{offline}");
    assert_eq!(offline["result"]["migrations_linted"], 2, "{offline}");
    assert!(
        codes(&offline).contains(&"create-table".to_owned()),
        "{offline}"
    );
});

engine_test!(a_never_analysed_table_is_counted, |t| {
    let create = match t.engine {
        // No autovacuum: nothing analyses it behind the test's back.
        Engine::Postgres => {
            "CREATE TABLE big (id INTEGER, note TEXT) WITH (autovacuum_enabled = false);\nINSERT INTO big SELECT i, 'n' FROM generate_series(1, 1000) AS i;\n"
        }
        Engine::MariaDb => {
            "CREATE TABLE big (id INTEGER, note TEXT) STATS_PERSISTENT = 1, STATS_AUTO_RECALC = 0;\nINSERT INTO big SELECT seq, 'n' FROM seq_1_to_1000;\n"
        }
        Engine::Sqlite => {
            "CREATE TABLE big (id INTEGER, note TEXT);\nWITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 1000) INSERT INTO big SELECT i, 'n' FROM s;\n"
        }
    };
    write_migrations(t, &[("1_big", create.to_owned())]);
    t.run(&["migrate", "staging"]).code(0);
    if t.engine == Engine::Postgres {
        assert_eq!(
            t.sql("SELECT reltuples FROM pg_class WHERE relname = 'big'"),
            ["-1"],
            "the table must be one ANALYZE never saw"
        );
    }
    let drop = "ALTER TABLE big DROP COLUMN note;\n";
    write_migrations(
        t,
        &[("1_big", create.to_owned()), ("2_drop", drop.to_owned())],
    );
    let run = t.run(&["lint", "staging", "--json"]);
    let doc = run.json();
    let message = findings(&doc)[0]["message"].as_str().unwrap().to_owned();
    assert!(!message.contains(" 0 rows"), "{message}");
    if t.engine == Engine::MariaDb {
        assert!(message.contains("rows"), "{message}");
    } else {
        assert!(
            message.contains("(1,000 rows)"),
            "counted exactly: {message}"
        );
    }
});

engine_test!(allow_comments_and_config_silence_with_their_reason, |t| {
    let pending = "-- dbdeploy:allow drop-table archived in 2.3, see ticket 42\nDROP TABLE old_things;\nALTER TABLE users DROP COLUMN legacy;\n";
    let (name, sql) = users(t);
    let first = format!("{sql}CREATE TABLE old_things (id INTEGER);\n");
    write_migrations(t, &[(name, first.clone())]);
    t.run(&["migrate", "staging"]).code(0);
    write_migrations(t, &[(name, first), ("2_cleanup", pending.to_owned())]);
    t.write_config("[lint]\nallow = [\"drop-column\"]\n");

    let run = t.run(&["lint", "staging", "--json"]);
    run.code(0);
    let doc = run.json();
    assert!(findings(&doc).iter().all(|f| f["level"] != "high"), "{doc}");
    let allowed = doc["result"]["allowed"].as_array().unwrap();
    let by: Vec<(&str, &str, &str)> = allowed
        .iter()
        .map(|a| {
            (
                a["code"].as_str().unwrap(),
                a["allowed_by"].as_str().unwrap(),
                a["reason"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        by,
        [
            ("drop-table", "comment", "archived in 2.3, see ticket 42"),
            ("drop-column", "config", "listed in [lint] allow"),
        ],
        "{doc}"
    );
    dbdeploy_snapshot!(t, ["lint", "staging"]).code(0);

    // The approval summary shows the findings with their reason; nobody answers, nothing runs.
    t.write_config(
        "[environments.prod]\nurl_env = \"DATABASE_URL\"\nprotected = true\napproval_timeout_seconds = 2\n\n[lint]\nallow = [\"drop-column\"]\n",
    );
    let run = t
        .on_terminal(&["migrate", "prod"])
        .wait(Duration::from_secs(60));
    run.code(3);
    assert!(
        run.stdout.contains(
            "allowed [drop-table] line 2: -- dbdeploy:allow: archived in 2.3, see ticket 42"
        ),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("allowed [drop-column] line 3: listed in [lint] allow"),
        "{}",
        run.stdout
    );

    // The deploy logs them.
    t.run(&["migrate", "staging"]).code(0);
    let audit = audit_lines(t.path());
    let last = audit.last().unwrap();
    let logged = last["lint_allowed"].to_string();
    assert!(logged.contains("archived in 2.3, see ticket 42"), "{last}");
    assert!(logged.contains("[drop-column]"), "{last}");
});

engine_test!(fail_on_sets_the_exit_code, |t| {
    applied_then(
        t,
        "ALTER TABLE users ADD COLUMN nick VARCHAR(20);\nCREATE INDEX users_name ON users (name);\n",
    );
    // Low findings only: below the default `high`.
    t.run(&["lint", "staging"]).code(0);
    t.write_config("[lint]\nfail_on = \"low\"\n");
    let run = t.run(&["lint", "staging", "--json"]);
    run.code(5);
    assert_eq!(run.json()["result"]["fail_on"], "low");
    t.write_config("[lint]\nfail_on = \"none\"\n");
    applied_then(t, &three_clauses(t));
    t.run(&["lint", "staging"]).code(0);
    t.write_config("[lint]\nfail_on = \"severe\"\n");
    let run = t.run(&["lint", "staging"]);
    run.code(2);
    assert!(
        run.all()
            .contains("`[lint] fail_on = \"severe\"` is not a level"),
        "{}",
        run.all()
    );
});

engine_test!(block_on_stops_a_deploy_before_any_change, |t| {
    applied_then(t, "ALTER TABLE users DROP COLUMN legacy;\n");
    t.write_config("[lint]\nblock_on = \"high\"\n");
    let before = t.prisma_rows();

    let dry = t.run(&["migrate", "staging", "--dry-run"]);
    dry.code(0);
    assert!(
        dry.all().contains("a deploy would be refused"),
        "{}",
        dry.all()
    );

    let run = dbdeploy_snapshot!(t, ["migrate", "staging"]);
    run.code(1);
    let run = t.run(&["migrate", "staging", "--json"]);
    run.code(1);
    let doc = run.json();
    assert_eq!(doc["error"]["code"], "lint-blocked", "{doc}");
    assert_eq!(t.prisma_rows(), before, "nothing recorded");
    let legacy = match t.engine {
        Engine::Sqlite => t.sql("SELECT count(*) FROM pragma_table_info('users') WHERE name = 'legacy'"),
        _ => t.sql("SELECT count(*) FROM information_schema.columns WHERE table_name = 'users' AND column_name = 'legacy'"),
    };
    assert_eq!(legacy, ["1"], "the column is still there");

    // A dev-mode environment is not blocked.
    t.run(&["migrate", "dev"]).code(0);
});

/// A psql session holding a transaction open on `users`.
struct Blocker(Child);

const BLOCKER: &str = "lint-blocker";

impl Blocker {
    fn start(t: &TestContext) -> Self {
        let mut child = Command::new("psql")
            .arg(&t.url)
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1"])
            .env("PGAPPNAME", BLOCKER)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start psql");
        child
            .stdin
            .as_mut()
            .unwrap()
            .write_all(b"BEGIN; SELECT count(*) FROM users;\n")
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        let probe = format!(
            "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
             WHERE a.application_name = '{BLOCKER}' AND l.relation = 'users'::regclass AND l.granted"
        );
        while t.sql(&probe) == ["0"] {
            assert!(
                Instant::now() < deadline,
                "the blocking session did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Self(child)
    }
}

impl Drop for Blocker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_preview_names_sessions_that_would_block_the_ddl_now() {
    run_on(Engine::Postgres, "lint_blocking_session", |t| {
        applied_then(t, "ALTER TABLE users DROP COLUMN legacy;\n");
        let blocker = Blocker::start(t);
        let pid = t.sql(&format!(
            "SELECT pid FROM pg_stat_activity WHERE application_name = '{BLOCKER}'"
        ));
        let run = t.run(&["migrate", "staging", "--dry-run"]);
        run.code(0);
        let expected = format!("waits now: pid {} (application {BLOCKER}, user ", pid[0]);
        assert!(run.all().contains(&expected), "{}", run.all());
        assert!(
            run.all().contains("holds AccessShareLock on users"),
            "{}",
            run.all()
        );
        drop(blocker);
        let run = t.run(&["migrate", "staging", "--dry-run"]);
        assert!(!run.all().contains("waits now"), "{}", run.all());
    });
}
