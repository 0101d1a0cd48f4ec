//! `dbdeploy rehearse ENV`: the pending migrations applied to a copy of ENV's database with the
//! real pipeline; the real database is untouched and the copy is dropped on success, on failure
//! and on SIGTERM.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{Engine, Run, TestContext, sha256_file};
use crate::{dbdeploy_snapshot, engine_test};

/// The private temporary folder the copy's files go to.
fn tmp(t: &TestContext) -> PathBuf {
    let dir = t.path().join("tmp");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn rehearse_cmd(t: &TestContext, args: &[&str]) -> Command {
    let mut cmd = t.cmd(args);
    cmd.env("TMPDIR", tmp(t));
    cmd
}

/// Copies of this test's database still on the server, or copy folders still on disk.
fn copies_left(t: &TestContext) -> Vec<String> {
    let mut left: Vec<String> = std::fs::read_dir(tmp(t))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let db = url::Url::parse(&t.url)
        .unwrap()
        .path()
        .trim_start_matches('/')
        .to_lowercase();
    let prefix: String = db.chars().take(40).collect();
    let names = match t.engine {
        Engine::Sqlite => Vec::new(),
        Engine::Postgres => t.sql("SELECT datname FROM pg_database"),
        Engine::MariaDb => t.sql("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA"),
    };
    left.extend(
        names
            .into_iter()
            .filter(|n| n.starts_with(&format!("{prefix}_rehearse_"))),
    );
    left
}

/// What must not change: tables, tracking rows, and for SQLite the file itself.
fn real_state(t: &TestContext) -> (Vec<String>, Vec<String>, Option<String>) {
    let file = t.path().join("test.db");
    let tables = t.tables();
    let rows = if tables.iter().any(|n| n == "_prisma_migrations") {
        t.prisma_rows()
    } else {
        Vec::new()
    };
    (tables, rows, file.exists().then(|| sha256_file(&file)))
}

fn add_migration(t: &TestContext, name: &str, sql: &str) {
    let dir = t.migrations().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("migration.sql"), sql).unwrap();
}

engine_test!(rehearse_success, |t: &TestContext| {
    t.fixture("basic");
    t.run(&[
        "migrate",
        "production",
        "--yes",
        "--to",
        "20240101000000_init",
    ])
    .code(0);
    let before = real_state(t);
    let run = Run::from(
        rehearse_cmd(t, &["rehearse", "production", "--json"])
            .output()
            .unwrap(),
    );
    run.code(0);
    let doc = run.json();
    let result = &doc["result"];
    let names: Vec<&str> = result["migrations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["20240102000000_comments", "20240103000000_post_views"],
        "{doc}"
    );
    for m in result["migrations"].as_array().unwrap() {
        assert!(m["duration_seconds"].as_f64().unwrap() >= 0.0, "{doc}");
    }
    assert_eq!(result["copy"]["dropped"], true, "{doc}");
    assert_eq!(result["failed_migration"], serde_json::Value::Null);
    assert_eq!(real_state(t), before, "the real database was not changed");
    assert_eq!(copies_left(t), Vec::<String>::new());

    // The record is private, and the next dry run shows the measured durations.
    let record = t.path().join(".dbdeploy/rehearsals/production.json");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&record).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
    let dry = t.run(&["migrate", "production", "--dry-run", "--json"]);
    dry.code(0);
    let dry = dry.json();
    assert!(
        dry["result"]["estimates_from_rehearsal"]
            .as_str()
            .unwrap()
            .contains("2 of 2"),
        "{dry}"
    );
    for (m, p) in result["migrations"]
        .as_array()
        .unwrap()
        .iter()
        .zip(dry["result"]["migrations"].as_array().unwrap())
    {
        assert_eq!(
            m["duration_seconds"], p["estimated_duration_seconds"],
            "{dry}"
        );
    }
    // An edited file is not the one that was rehearsed: its estimate is a guess again.
    let sql = t
        .migrations()
        .join("20240103000000_post_views/migration.sql");
    let text = std::fs::read_to_string(&sql).unwrap();
    std::fs::write(&sql, format!("{text}\n-- edited\n")).unwrap();
    let dry = t
        .run(&["migrate", "production", "--dry-run", "--json"])
        .json();
    assert!(
        dry["result"]["estimates_from_rehearsal"]
            .as_str()
            .unwrap()
            .contains("1 of 2"),
        "{dry}"
    );
    // A tampered record is ignored with a warning, never trusted.
    std::fs::write(&record, "{\"version\": 1, \"evil\": true}").unwrap();
    let dry = t
        .run(&["migrate", "production", "--dry-run", "--json"])
        .json();
    assert!(
        dry["result"].get("estimates_from_rehearsal").is_none(),
        "{dry}"
    );
    assert!(
        dry["result"]["warnings"]
            .to_string()
            .contains("ignored the rehearsal record"),
        "{dry}"
    );
    if t.engine == Engine::Sqlite {
        std::fs::remove_file(&record).unwrap();
        std::fs::write(&sql, text).unwrap();
        dbdeploy_snapshot!(t, rehearse_cmd(t, &["rehearse", "production"])).code(0);
    }
});

engine_test!(rehearse_failure, |t: &TestContext| {
    t.fixture("fails-halfway");
    let before = real_state(t);
    let run = Run::from(
        rehearse_cmd(t, &["rehearse", "production", "--json"])
            .output()
            .unwrap(),
    );
    run.code(1);
    let doc = run.json();
    assert_eq!(
        doc["result"]["failed_migration"]["migration"], "20240102000000_broken",
        "{doc}"
    );
    assert!(
        doc["message"]
            .as_str()
            .unwrap()
            .contains("`20240102000000_broken` failed"),
        "{doc}"
    );
    assert_eq!(
        doc["result"]["not_tried"],
        serde_json::json!(["20240103000000_after"]),
        "{doc}"
    );
    assert_eq!(doc["result"]["copy"]["dropped"], true, "{doc}");
    assert_eq!(real_state(t), before, "the real database was not changed");
    assert_eq!(copies_left(t), Vec::<String>::new());
    if t.engine == Engine::Sqlite {
        dbdeploy_snapshot!(t, rehearse_cmd(t, &["rehearse", "production"])).code(1);
    }
});

/// A migration that runs for a minute, unless it is stopped.
fn slow_sql(engine: Engine) -> &'static str {
    match engine {
        Engine::Postgres => "SELECT pg_sleep(60);\n",
        Engine::MariaDb => "SELECT SLEEP(60);\n",
        Engine::Sqlite => {
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3000000000) SELECT count(*) FROM c;\n"
        }
    }
}

/// Whether the slow migration is running on a copy now.
fn slow_running(t: &TestContext) -> bool {
    match t.engine {
        Engine::Postgres => {
            t.sql("SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(60)%' AND datname LIKE '%\\_rehearse\\_%'")
                .concat()
                != "0"
        }
        Engine::MariaDb => {
            t.sql("SELECT count(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE '%SLEEP(60)%' AND DB LIKE '%\\_rehearse\\_%'")
                .concat()
                != "0"
        }
        // The copy's file exists and the copy step is long over by then.
        Engine::Sqlite => std::fs::read_dir(tmp(t))
            .unwrap()
            .any(|e| e.unwrap().path().join("copy.db").exists()),
    }
}

engine_test!(rehearse_interrupted, |t: &TestContext| {
    t.fixture("basic");
    add_migration(t, "20240104000000_slow", slow_sql(t.engine));
    let before = real_state(t);
    let mut child = rehearse_cmd(t, &["rehearse", "production", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    while !slow_running(t) {
        assert!(
            Instant::now() < deadline,
            "the slow migration never started"
        );
        assert!(child.try_wait().unwrap().is_none(), "rehearse ended early");
        std::thread::sleep(Duration::from_millis(100));
    }
    if t.engine == Engine::Sqlite {
        std::thread::sleep(Duration::from_secs(2));
    }
    let stopped = Instant::now();
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let run = Run::from(child.wait_with_output().unwrap());
    assert!(
        stopped.elapsed() < Duration::from_secs(30),
        "it waited for the migration"
    );
    assert_eq!(run.code, 130, "{}", run.all());
    assert_eq!(copies_left(t), Vec::<String>::new(), "no copy is left");
    assert_eq!(real_state(t), before, "the real database was not changed");
});
