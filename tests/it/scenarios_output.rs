//! The quickstart project, human output of a failed deploy, the audit log, targets shown
//! without passwords, a closed stdout, and racing first deploys; regressions for bugs found
//! while writing these scenarios.

use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::common::{Engine, Run, TestContext, audit_lines};
use crate::engine_test;
use crate::scenarios::{BASIC, HALFWAY};

fn copy_project(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for entry in std::fs::read_dir(src).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() == ".dbdeploy" {
            continue;
        }
        let to = dst.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_project(&entry.path(), &to);
        } else {
            std::fs::copy(entry.path(), &to).unwrap();
        }
    }
}

#[test]
fn quickstart_deploys_with_working_directory_flag() {
    let root = tempfile::Builder::new()
        .prefix("dbdeploy-it-quickstart-")
        .tempdir()
        .unwrap();
    let project = root.path().join("quickstart");
    copy_project(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations-fixtures/quickstart"),
        &project,
    );
    let migrate = || {
        Run::from(
            Command::new(env!("CARGO_BIN_EXE_dbdeploy"))
                .current_dir(root.path())
                .args(["-C", "quickstart", "migrate", "dev"])
                .env("NO_COLOR", "1")
                .env_remove("DATABASE_URL")
                .env_remove("PROD_DATABASE_URL")
                .env_remove("DBDEPLOY_LOG")
                .stdin(Stdio::null())
                .output()
                .unwrap(),
        )
    };
    let run = migrate();
    run.code(0);
    for name in [
        "20240101120000_init",
        "20240115093000_add_comments",
        "20240201150000_add_post_slug",
        "20240310080000_post_published_at",
    ] {
        assert!(run.stdout.contains(name), "{name}: {}", run.stdout);
    }
    assert!(
        run.stdout.contains("Deployed 4 migration(s)"),
        "{}",
        run.stdout
    );
    // The relative SQLite URL resolved from the project, not from the current directory.
    let db = project.join(".dbdeploy/dev.db");
    assert!(db.is_file(), "no {}", db.display());
    assert!(!root.path().join(".dbdeploy").exists());
    let out = Command::new("sqlite3")
        .arg(&db)
        .arg("SELECT COUNT(*) FROM _prisma_migrations WHERE finished_at IS NOT NULL")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "4");
    assert_eq!(audit_lines(&project).len(), 1);

    let again = migrate();
    again.code(0);
    assert!(
        again.stdout.contains("No pending migrations"),
        "{}",
        again.stdout
    );
}

#[test]
fn failed_deploy_human_output_names_the_migration_and_what_to_do() {
    let Some(t) = TestContext::new(Engine::Sqlite, "human_failure") else {
        return;
    };
    t.fixture("fails-halfway");
    let broken = HALFWAY[1];
    let run = t.run(&["migrate", "staging"]);
    run.code(1);

    let errors: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("error:"))
        .collect();
    assert!(
        errors.iter().any(|l| l.contains(broken)),
        "no error: line naming {broken}:\n{}",
        run.stderr
    );
    assert!(
        run.stderr.lines().any(|l| l.starts_with("hint:")),
        "no hint: line:\n{}",
        run.stderr
    );
    assert!(
        run.stdout.lines().any(|l| l.starts_with("✗ apply")),
        "no ✗ apply line:\n{}",
        run.stdout
    );
    assert!(
        run.stdout
            .lines()
            .any(|l| l.trim_start().starts_with(&format!("✗ {broken}"))),
        "no ✗ line for {broken}:\n{}",
        run.stdout
    );
    assert!(
        !run.all().contains('\x1b'),
        "colour without a terminal:\n{}",
        run.all()
    );
    assert!(!run.stdout.trim_start().starts_with('{'), "{}", run.stdout);
}

engine_test!(
    audit_log_has_one_line_per_run_and_cancelled_runs_stay_out_of_the_database,
    |t: &TestContext| {
        t.fixture("basic");
        let run = t.run(&["migrate", "staging", "--to", BASIC[1], "--json"]);
        run.code(0);
        let run_id = run.json()["result"]["run_id"]
            .as_str()
            .expect("run_id")
            .to_owned();

        let lines = audit_lines(t.path());
        assert_eq!(lines.len(), 1, "{lines:?}");
        let first = &lines[0];
        assert_eq!(first["run_id"], run_id.as_str());
        assert_eq!(first["environment"], "staging");
        assert_eq!(first["operation"], "deploy-migrations");
        assert_eq!(first["status"], "success");
        assert_eq!(first["migrations_applied"], 2);
        assert_eq!(first["migrations"], serde_json::json!([BASIC[0], BASIC[1]]));

        // Production is protected: without --yes and a terminal the run is cancelled.
        t.run(&["migrate", "production"]).code(3);
        let lines = audit_lines(t.path());
        assert_eq!(lines.len(), 2, "{lines:?}");
        let second = &lines[1];
        let cancelled_id = second["run_id"].as_str().expect("run_id");
        assert!(uuid::Uuid::parse_str(cancelled_id).is_ok(), "{second}");
        assert_ne!(cancelled_id, run_id);
        assert_eq!(second["environment"], "production");
        assert_eq!(second["operation"], "deploy-migrations");
        assert_eq!(second["status"], "cancelled");
        assert_eq!(second["migrations_applied"], 0);

        assert_eq!(
            t.sql("SELECT run_id, status, migrations_applied FROM _dbdeploy_history"),
            [format!("{run_id}|success|2")]
        );
        assert_eq!(t.prisma_rows().len(), 2);
    }
);

#[test]
fn target_without_password_is_shown_and_audited() {
    let Some(t) = TestContext::new(Engine::Sqlite, "target_shown") else {
        return;
    };
    t.fixture("basic");
    let run = t.run(&["migrate", "staging"]);
    run.code(0);
    let target = run.stdout.lines().nth(1).unwrap_or_default();
    assert!(
        target.contains("test.db") && !target.contains("***"),
        "target line: {target}"
    );
    let lines = audit_lines(t.path());
    assert_eq!(lines.len(), 1, "{lines:?}");
    let database = lines[0]["database"].as_str().unwrap_or_default();
    assert!(database.contains("test.db"), "audit database: {database}");
}

#[test]
fn closed_stdout_does_not_panic() {
    let Some(t) = TestContext::new(Engine::Sqlite, "closed_stdout") else {
        return;
    };
    t.fixture("basic");
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = t
        .cmd(&["migrate", "staging"])
        .env_remove("RUST_BACKTRACE")
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_ne!(out.status.code(), Some(101), "{stderr}");
}

/// Several first deploys of the same empty database at once, a few times over: every one must
/// either apply migrations or find nothing pending, never refuse the database another deploy is
/// filling (the pre-lock health check must not judge a schema that is changing under the lock).
fn racing_first_deploys(engine: Engine) {
    for _ in 0..6 {
        let Some(t) = TestContext::new(engine, "racing_first_deploys") else {
            return;
        };
        t.fixture("basic");
        let children: Vec<Child> = (0..4)
            .map(|_| {
                t.cmd(&["migrate", "staging", "--json"])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let mut applied = 0;
        for child in children {
            let run = Run::from(child.wait_with_output().unwrap());
            let doc = run.json();
            assert_eq!(run.code, 0, "{}", doc["error"]["message"]);
            applied += doc["result"]["migrations_applied"].as_u64().unwrap();
        }
        assert_eq!(applied, 3);
        assert_eq!(t.prisma_rows().len(), 3);
    }
}

#[test]
fn racing_first_deploys_sqlite() {
    racing_first_deploys(Engine::Sqlite);
}

#[test]
fn racing_first_deploys_postgres() {
    racing_first_deploys(Engine::Postgres);
}

#[test]
fn racing_first_deploys_mariadb() {
    racing_first_deploys(Engine::MariaDb);
}
