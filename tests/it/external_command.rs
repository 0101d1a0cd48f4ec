//! `migration_tool = "command"`: dbdeploy runs the pipeline around a tool that applies its own
//! migrations. The tool here is a shell script standing in for Knex or Alembic: it keeps its own
//! history in `tool_migrations`, applies `tool-migrations/*.sql` with the engine's client, and
//! records how it was called, so each test checks what the tool saw and what the database holds.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::common::{Engine, Run, TestContext};
use crate::engine_test;

/// The stand-in tool. `./tool status` prints the pending files, one per line; `./tool apply`
/// applies them in order, saying so on stdout and stderr. With `TOOL_HANDSHAKE=1`, `apply`
/// first writes `waiting`, then waits (up to 20 s) for the file `go`.
const TOOL: &str = r#"#!/bin/sh
set -eu
printf '%s\n' "$0 $*" >> argv.log
printf '%s\n' "$DATABASE_URL" > seen-url
printf '%s\n' "${DBDEPLOY_ENVIRONMENT:-unset}" > seen-environment
# The URL is read here, in the tool, as real tools do; credentials go to the clients through
# their environment.
eval "$(python3 -c '
import os, shlex, urllib.parse as u
x = u.urlsplit(os.environ["DATABASE_URL"])
v = {"HOST": x.hostname or "", "PORT": str(x.port or ""), "USER": u.unquote(x.username or ""),
     "PASS": u.unquote(x.password or ""), "DB": u.unquote(x.path.lstrip("/")), "FILE": x.path}
print(" ".join("DB_%s=%s" % (k, shlex.quote(s)) for k, s in v.items()))
')"
sql() {
  case "$DATABASE_URL" in
    sqlite:*) sqlite3 -bail "$DB_FILE" ;;
    postgres*) PGHOST=$DB_HOST PGPORT=$DB_PORT PGUSER=$DB_USER PGPASSWORD=$DB_PASS PGDATABASE=$DB_DB \
      psql -X -q -A -t -v ON_ERROR_STOP=1 ;;
    *) MYSQL_PWD=$DB_PASS mariadb -N -B -h "$DB_HOST" -P "$DB_PORT" -u "$DB_USER" "$DB_DB" ;;
  esac
}
applied() {
  case "$DATABASE_URL" in
    sqlite:*) q="SELECT count(*) FROM sqlite_master WHERE name = 'tool_migrations';" ;;
    postgres*) q="SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = 'tool_migrations';" ;;
    *) q="SELECT count(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = 'tool_migrations';" ;;
  esac
  if [ "$(echo "$q" | sql)" = 1 ]; then
    echo "SELECT name FROM tool_migrations;" | sql
  fi
}
pending() {
  done_list=$(applied)
  for f in tool-migrations/*.sql; do
    [ -e "$f" ] || continue
    n=$(basename "$f")
    printf '%s\n' "$done_list" | grep -qxF "$n" || printf '%s\n' "$n"
  done
}
case "${1:-}" in
  status) pending ;;
  apply)
    echo "connecting to $DATABASE_URL"
    echo "a URL the tool made up: postgres://app:hunter2-secret@db.internal/app" >&2
    if [ "${TOOL_HANDSHAKE:-}" = 1 ]; then
      echo "waiting for the test"
      touch waiting
      i=0
      while [ ! -e go ] && [ $i -lt 200 ]; do sleep 0.1; i=$((i + 1)); done
      if [ -e go ]; then echo "got go"; else echo "no go: dbdeploy did not show the output in time"; exit 7; fi
    fi
    echo "CREATE TABLE IF NOT EXISTS tool_migrations (name VARCHAR(255) PRIMARY KEY);" | sql 2>/dev/null
    for n in $(pending); do
      echo "applying $n"
      sql < "tool-migrations/$n"
      echo "INSERT INTO tool_migrations (name) VALUES ('$n');" | sql
      echo "applied $n" >&2
    done ;;
  *) echo "usage: tool status|apply" >&2; exit 64 ;;
esac
"#;

const CONFIG: &str = r#"[project]
migration_tool = "command"
status_command = "./tool status"
apply_command = "./tool apply"

[environments.dev]
url_env = "DATABASE_URL"

[environments.production]
url_env = "DATABASE_URL"
protected = true
backup_before_migrate = true
rollback_on_failure = true
lock_timeout_seconds = 1

[backup]
dir = "backups"
"#;

/// A project with the tool, its config and migrations `001_users.sql` and `002_posts.sql`.
pub(crate) fn project(t: &TestContext) {
    let tool = t.path().join("tool");
    std::fs::write(&tool, TOOL).unwrap();
    std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(t.path().join("dbdeploy.toml"), CONFIG).unwrap();
    std::fs::create_dir_all(t.path().join("tool-migrations")).unwrap();
    migration(
        t,
        "001_users.sql",
        "CREATE TABLE users (id INTEGER PRIMARY KEY, email VARCHAR(255));\nINSERT INTO users (id, email) VALUES (1, 'ann@example.com');\n",
    );
    migration(
        t,
        "002_posts.sql",
        "CREATE TABLE posts (id INTEGER PRIMARY KEY, title VARCHAR(255));\n",
    );
}

fn migration(t: &TestContext, name: &str, sql: &str) {
    std::fs::write(t.path().join("tool-migrations").join(name), sql).unwrap();
}

/// How the tool was called, one line per call.
fn calls(t: &TestContext) -> Vec<String> {
    std::fs::read_to_string(t.path().join("argv.log"))
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn applies(t: &TestContext) -> usize {
    calls(t).iter().filter(|c| c.ends_with(" apply")).count()
}

/// The tool's own history.
fn tool_rows(t: &TestContext) -> Vec<String> {
    if !t.tables().iter().any(|n| n == "tool_migrations") {
        return Vec::new();
    }
    t.sql("SELECT name FROM tool_migrations ORDER BY name")
}

/// Where `needle` is in `haystack`, failing with the text when it is not there.
#[track_caller]
fn at(haystack: &str, needle: &str) -> usize {
    haystack
        .find(needle)
        .unwrap_or_else(|| panic!("`{needle}` not in:\n{haystack}"))
}

engine_test!(
    deploys_then_does_nothing_the_second_time,
    |t: &TestContext| {
        project(t);
        let run = t.run(&["status", "dev"]);
        run.code(4);
        assert!(
            run.stdout.contains("001_users.sql") && run.stdout.contains("002_posts.sql"),
            "{}",
            run.stdout
        );

        let run = t.run(&["migrate", "dev"]);
        run.code(0);
        let out = &run.stdout;
        // The tool's output comes live, in the order it wrote it (stdout and stderr interleaved),
        // between dbdeploy's own steps.
        let order = [
            at(out, "✓ pending       2 pending"),
            at(out, "running apply_command: ./tool apply"),
            at(out, "│ applying 001_users.sql"),
            at(out, "│ applied 001_users.sql"),
            at(out, "│ applying 002_posts.sql"),
            at(out, "│ applied 002_posts.sql"),
            at(out, "✓ apply         apply_command exited 0"),
            at(
                out,
                "✓ verify        status_command reports nothing pending",
            ),
            at(out, "Deployed 2 migration(s) to dev"),
        ];
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{out}");
        assert_eq!(tool_rows(t), vec!["001_users.sql", "002_posts.sql"]);
        assert_eq!(t.sql("SELECT email FROM users"), vec!["ann@example.com"]);
        assert_eq!(applies(t), 1);

        let run = t.run(&["migrate", "dev"]);
        run.code(0);
        assert!(
            run.stdout
                .contains("No pending migrations: dev is up to date"),
            "{}",
            run.stdout
        );
        assert_eq!(
            applies(t),
            1,
            "a deploy with nothing pending ran apply_command"
        );
        assert_eq!(tool_rows(t), vec!["001_users.sql", "002_posts.sql"]);
        t.run(&["status", "dev"]).code(0);

        // Both runs are in dbdeploy's history, the first with what the tool applied.
        let rows = t.sql(&format!(
            "SELECT status, migrations_applied, migrations FROM {} ORDER BY started_at",
            t.engine.q("_dbdeploy_history")
        ));
        assert_eq!(
            rows,
            vec![
                r#"success|2|["001_users.sql","002_posts.sql"]"#,
                "success|0|[]"
            ]
        );
    }
);

engine_test!(
    dry_run_shows_the_status_and_never_calls_apply,
    |t: &TestContext| {
        project(t);
        let run = t.run(&["migrate", "dev", "--dry-run"]);
        run.code(0);
        assert!(
            run.stdout.contains("· 001_users.sql") && run.stdout.contains("· 002_posts.sql"),
            "{}",
            run.stdout
        );
        assert!(
            run.stdout
                .contains("apply_command (`./tool apply`) was not run"),
            "{}",
            run.stdout
        );

        let run = t.run(&["migrate", "dev", "--dry-run", "--json"]);
        run.code(0);
        let doc = run.json();
        assert_eq!(doc["status"], "success");
        assert_eq!(doc["operation"], "preview-migrations");
        assert_eq!(doc["result"]["pending_migrations"], 2);
        assert_eq!(doc["result"]["migrations"][1]["name"], "002_posts.sql");
        assert_eq!(doc["result"]["apply_command_run"], false);

        assert_eq!(applies(t), 0, "{:?}", calls(t));
        assert!(calls(t).iter().all(|c| c.ends_with(" status")));
        assert!(t.tables().is_empty(), "{:?}", t.tables());

        // The deploy's document: what the tool reported, what it applied, how it ended.
        let run = t.run(&["migrate", "dev", "--json"]);
        run.code(0);
        assert!(
            run.stderr.contains("│ applying 001_users.sql"),
            "{}",
            run.stderr
        );
        let doc = run.json();
        assert_eq!(doc["status"], "success");
        assert_eq!(doc["operation"], "deploy-migrations");
        let result = &doc["result"];
        assert_eq!(result["migrations_applied"], 2);
        assert_eq!(
            result["migrations"],
            serde_json::json!([
                {"name": "001_users.sql", "status": "applied"},
                {"name": "002_posts.sql", "status": "applied"}
            ])
        );
        assert_eq!(
            result["pending_before"],
            serde_json::json!(["001_users.sql", "002_posts.sql"])
        );
        assert_eq!(result["pending_after"], serde_json::json!([]));
        assert_eq!(result["apply_command"]["exit_code"], 0);
        assert!(
            result["apply_command"]["duration_seconds"].is_f64(),
            "{result}"
        );
        assert_eq!(result["verified"], true);
        assert_eq!(result["health_check_after"], "passed");
    }
);

engine_test!(
    a_failed_apply_restores_the_backup_and_reports_the_tool_output,
    |t: &TestContext| {
        project(t);
        t.run(&["migrate", "production", "--yes"]).code(0);
        // Half of it runs (a table and a row) before the error.
        migration(
            t,
            "003_broken.sql",
            "CREATE TABLE half (id INTEGER);\nINSERT INTO half (id) VALUES (1);\nTHIS IS NOT SQL;\n",
        );
        let run = t.run(&["migrate", "production", "--yes", "--json"]);
        run.code(1);
        // Under --json the tool's output streams to stderr; stdout is the one document.
        assert!(
            run.stderr.contains("│ applying 003_broken.sql"),
            "{}",
            run.stderr
        );
        let doc = run.json();
        assert_eq!(doc["status"], "error");
        assert_eq!(doc["error"]["code"], "migration-failed");
        assert_eq!(doc["error"]["class"], "mid-deployment");
        let result = &doc["result"];
        assert_ne!(result["apply_command"]["exit_code"], 0);
        assert!(result["apply_command"]["exit_code"].is_i64(), "{result}");
        let last = result["apply_command"]["last_output"].to_string();
        assert!(last.contains("applying 003_broken.sql"), "{last}");
        assert_eq!(
            result["pending_before"],
            serde_json::json!(["003_broken.sql"])
        );
        assert_eq!(result["migrations"][0]["status"], "pending");
        assert_eq!(result["rollback_status"], "success");
        assert_eq!(doc["recovery"]["rollback_status"], "success");
        let verified = result["rollback_verified"].to_string();
        assert!(
            verified.contains("status_command reports the same 1 pending migration(s)"),
            "{verified}"
        );
        // The backup undid what the tool did before it failed.
        assert!(!t.tables().iter().any(|n| n == "half"), "{:?}", t.tables());
        assert_eq!(tool_rows(t), vec!["001_users.sql", "002_posts.sql"]);
        assert_eq!(t.sql("SELECT email FROM users"), vec!["ann@example.com"]);
        let run = t.run(&["status", "production"]);
        run.code(4);
        assert!(run.stdout.contains("003_broken.sql"), "{}", run.stdout);
    }
);

engine_test!(
    a_failed_apply_without_a_backup_leaves_what_the_tool_did,
    |t: &TestContext| {
        project(t);
        migration(
            t,
            "003_broken.sql",
            "CREATE TABLE half (id INTEGER);\nTHIS IS NOT SQL;\n",
        );
        let run = t.run(&["migrate", "dev"]);
        run.code(1);
        assert!(
            run.stderr.contains("error: apply_command exited with"),
            "{}",
            run.stderr
        );
        // The error repeats the tool's last words, and says what to do.
        assert!(
            run.stderr.contains("applying 003_broken.sql")
                && run.stderr.contains("there is no backup from this run"),
            "{}",
            run.stderr
        );
        assert!(
            run.stdout
                .contains("failed after 2 migration(s) were applied"),
            "{}",
            run.stdout
        );
        assert!(t.tables().iter().any(|n| n == "half"));
        assert_eq!(tool_rows(t), vec!["001_users.sql", "002_posts.sql"]);
        let rows = t.sql(&format!(
            "SELECT status, migrations FROM {}",
            t.engine.q("_dbdeploy_history")
        ));
        assert_eq!(rows, vec![r#"error|["001_users.sql","002_posts.sql"]"#]);
    }
);

engine_test!(
    the_url_reaches_the_tool_only_through_its_environment,
    |t: &TestContext| {
        project(t);
        // PostgreSQL trusts local logins here, so a password can be given and is ignored.
        let url = if t.engine == Engine::Postgres {
            t.url_with_password("Sup3r-Secret-Pw")
        } else {
            t.url.clone()
        };
        let run = Run::from(
            t.cmd(&["migrate", "dev"])
                .env("DATABASE_URL", &url)
                .output()
                .unwrap(),
        );
        run.code(0);
        let seen = std::fs::read_to_string(t.path().join("seen-url")).unwrap();
        let expected = if t.engine == Engine::Sqlite {
            // SQLite URLs reach tools with the absolute path.
            format!("sqlite://{}", t.path().join("test.db").display())
        } else {
            url.clone()
        };
        assert_eq!(seen.trim(), expected);
        let environment = std::fs::read_to_string(t.path().join("seen-environment")).unwrap();
        assert_eq!(environment.trim(), "dev");
        for call in calls(t) {
            assert!(
                !call.contains(seen.trim()),
                "the URL is on a command line: {call}"
            );
            assert!(!call.contains("://"), "a URL is on a command line: {call}");
        }
        // The tool printed the URL and a made-up one; neither password gets out.
        let all = run.all();
        assert!(all.contains("│ connecting to "), "{all}");
        assert!(!all.contains("hunter2-secret"), "{all}");
        assert!(!all.contains("Sup3r-Secret-Pw"), "{all}");
        let audit = std::fs::read_to_string(t.path().join(".dbdeploy/audit.jsonl")).unwrap();
        assert!(!audit.contains("Sup3r-Secret-Pw"), "{audit}");
    }
);

engine_test!(output_is_shown_while_the_tool_runs, |t: &TestContext| {
    project(t);
    // The tool waits for a file the test only writes after it saw the tool's first line: if
    // dbdeploy held the output back until the tool exits, the tool gives up and fails.
    let mut child = t
        .cmd(&["migrate", "dev"])
        .env("TOOL_HANDSHAKE", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut seen = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if line.contains("│ waiting for the test") {
            std::fs::write(t.path().join("go"), "").unwrap();
        }
        seen.push(line);
    }
    let status = child.wait().unwrap();
    let text = seen.join("\n");
    assert!(status.success(), "{text}");
    assert!(text.contains("│ got go"), "{text}");
    assert_eq!(tool_rows(t), vec!["001_users.sql", "002_posts.sql"]);
});

engine_test!(two_runs_never_overlap, |t: &TestContext| {
    project(t);
    let mut first = t
        .cmd(&["migrate", "production", "--yes"])
        .env("TOOL_HANDSHAKE", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !t.path().join("waiting").exists() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the first run never reached apply_command"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // The first run holds the deploy lock while its tool runs; production waits 1 s for it.
    let second = t.run(&["migrate", "production", "--yes", "--json"]);
    second.code(1);
    assert_eq!(second.json()["error"]["code"], "lock-timeout");
    std::fs::write(t.path().join("go"), "").unwrap();
    assert!(first.wait().unwrap().success());
    assert_eq!(applies(t), 1, "{:?}", calls(t));
    assert_eq!(tool_rows(t), vec!["001_users.sql", "002_posts.sql"]);
});

engine_test!(
    an_apply_that_leaves_migrations_pending_fails_verification,
    |t: &TestContext| {
        project(t);
        let config = CONFIG.replace(
            "apply_command = \"./tool apply\"",
            "apply_command = \"echo nothing to do\"",
        );
        std::fs::write(t.path().join("dbdeploy.toml"), config).unwrap();
        let run = t.run(&["migrate", "dev", "--json"]);
        run.code(1);
        let doc = run.json();
        assert_eq!(doc["error"]["code"], "verification-failed");
        assert_eq!(doc["error"]["class"], "post-deployment");
        let message = doc["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("2 pending migration(s): 001_users.sql, 002_posts.sql"),
            "{message}"
        );
        assert_eq!(doc["result"]["apply_command"]["exit_code"], 0);
        assert_eq!(doc["result"]["migrations_applied"], 0);
        assert!(run.stderr.contains("│ nothing to do"), "{}", run.stderr);
    }
);

engine_test!(
    a_failing_status_command_stops_before_any_change,
    |t: &TestContext| {
        project(t);
        let config = CONFIG.replace(
            "status_command = \"./tool status\"",
            "status_command = \"echo cannot reach the knexfile >&2; exit 3\"",
        );
        std::fs::write(t.path().join("dbdeploy.toml"), config).unwrap();
        let run = t.run(&["migrate", "production", "--yes", "--json"]);
        run.code(1);
        let doc = run.json();
        assert_eq!(doc["error"]["code"], "status-command-failed");
        assert_eq!(doc["error"]["class"], "pre-deployment");
        let message = doc["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("status_command exited with 3")
                && message.contains("cannot reach the knexfile"),
            "{message}"
        );
        assert_eq!(doc["result"]["backup_status"], "not-reached");
        assert_eq!(applies(t), 0);
        assert!(!t.path().join("backups").exists());

        let run = t.run(&["status", "production"]);
        run.code(1);
        assert!(
            run.stderr.contains("cannot reach the knexfile"),
            "{}",
            run.stderr
        );
    }
);

fn sqlite_project(test: &str) -> TestContext {
    let t = TestContext::new(Engine::Sqlite, test).expect("sqlite needs no server");
    project(&t);
    t
}

#[test]
fn down_resolve_and_to_are_refused_for_an_external_tool() {
    let t = sqlite_project("external_refusals");
    for (args, what) in [
        (vec!["down", "dev"], "`dbdeploy down`"),
        (
            vec!["resolve", "dev", "--applied", "001_users.sql"],
            "`dbdeploy resolve`",
        ),
        (
            vec!["migrate", "dev", "--to", "001_users.sql"],
            "`migrate --to`",
        ),
    ] {
        let run = t.run(&args);
        run.code(2);
        assert!(
            run.stderr.contains(&format!(
                "{what} is not available with `migration_tool = \"command\"`"
            )),
            "{}",
            run.stderr
        );
        assert!(
            run.stderr.contains("hint: use the tool's own command"),
            "{}",
            run.stderr
        );
    }
    assert!(calls(&t).is_empty(), "{:?}", calls(&t));
    assert!(!t.path().join("test.db").exists());
}

#[test]
fn the_commands_must_be_configured_with_the_external_tool_only() {
    let t = sqlite_project("external_config");
    for (config, expected) in [
        (
            CONFIG.replace("apply_command = \"./tool apply\"\n", ""),
            "`migration_tool = \"command\"` needs `[project] apply_command`",
        ),
        (
            CONFIG.replace(
                "status_command = \"./tool status\"\n",
                "status_command = \"  \"\n",
            ),
            "`migration_tool = \"command\"` needs `[project] status_command`",
        ),
        (
            CONFIG.replace(
                "migration_tool = \"command\"",
                "migration_tool = \"prisma\"",
            ),
            "`[project] status_command` is only used with `migration_tool = \"command\"`",
        ),
        (
            CONFIG.replace(
                "[environments.dev]",
                "migrations_dir = \"tool-migrations\"\n\n[environments.dev]",
            ),
            "`[project] migrations_dir` is not used with `migration_tool = \"command\"`",
        ),
        (
            CONFIG.replace("[project]\n", "[project]\nstatus_comand = \"x\"\n"),
            "status_comand",
        ),
    ] {
        std::fs::write(t.path().join("dbdeploy.toml"), &config).unwrap();
        let run = t.run(&["migrate", "dev"]);
        run.code(2);
        assert!(run.stderr.contains(expected), "{config}\n{}", run.stderr);
        assert!(run.stderr.contains("dbdeploy.toml"), "{}", run.stderr);
    }
    assert!(calls(&t).is_empty(), "{:?}", calls(&t));
}

#[test]
fn status_json_lists_what_the_tool_reports() {
    let t = sqlite_project("external_status_json");
    let run = t.run(&["status", "dev", "--json"]);
    run.code(4);
    let doc = run.json();
    assert_eq!(doc["operation"], "migration-status");
    assert_eq!(doc["result"]["source"], "status_command");
    assert_eq!(
        doc["result"]["pending"],
        serde_json::json!(["001_users.sql", "002_posts.sql"])
    );
    assert_eq!(doc["result"]["exit_code"], 4);
    t.run(&["migrate", "dev"]).code(0);
    let doc = t.run(&["status", "dev", "--json"]).code(0).json();
    assert_eq!(doc["result"]["pending"], serde_json::json!([]));
}

#[test]
fn health_and_backup_work_for_an_external_tool() {
    let t = sqlite_project("external_health_backup");
    t.run(&["migrate", "dev"]).code(0);
    let run = t.run(&["health", "dev", "--json"]);
    run.code(0);
    let checks = run.json()["result"]["checks"].to_string();
    assert!(checks.contains(r#""name":"status_command""#), "{checks}");
    assert!(checks.contains("nothing pending"), "{checks}");

    let doc = t.run(&["backup", "production", "--json"]).code(0).json();
    let id = doc["result"]["backup_id"].as_str().unwrap().to_owned();
    t.sql("DROP TABLE posts");
    let run = t.run(&["rollback", "production", "--to", &id, "--yes"]);
    run.code(0);
    assert!(t.tables().iter().any(|n| n == "posts"), "{}", run.stdout);
    let manifest = std::fs::read_to_string(
        t.path()
            .join("backups/production")
            .join(format!("{id}.json")),
    )
    .unwrap();
    assert!(
        manifest.contains(r#""migration_tool": "command""#),
        "{manifest}"
    );
}

engine_test!(
    a_failed_health_check_after_apply_restores_the_backup,
    |t: &TestContext| {
        project(t);
        let config = CONFIG.replace(
            "rollback_on_failure = true\n",
            "rollback_on_failure = true\nrollback_on_health_check_failure = true\nhealth_command = \"echo the app is down >&2; exit 1\"\n",
        );
        std::fs::write(t.path().join("dbdeploy.toml"), config).unwrap();
        let run = t.run(&["migrate", "production", "--yes", "--json"]);
        run.code(1);
        let doc = run.json();
        assert_eq!(doc["error"]["code"], "health-check-failed");
        assert_eq!(doc["recovery"]["rollback_status"], "success");
        let verified = doc["result"]["rollback_verified"].to_string();
        assert!(
            verified.contains("status_command reports the same 2 pending migration(s)"),
            "{verified}"
        );
        // The tool's tables and its history are gone with the rest of the deploy.
        assert!(tool_rows(t).is_empty());
        assert!(!t.tables().iter().any(|n| n == "users"), "{:?}", t.tables());
        t.run(&["status", "production"]).code(4);
    }
);
