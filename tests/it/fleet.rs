//! Fleets (issue 15): one environment, many databases. SQLite files listed in the file and
//! PostgreSQL databases printed by `targets_command`; each target's tracking table is read
//! with the engine's own client.
#![allow(clippy::disallowed_methods)]

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::common::{Engine, PgDatabases, TestContext, sqlite_basic, write_migrations};
use crate::dbdeploy_snapshot;

const BASIC: usize = 3;

/// `_prisma_migrations` rows of a SQLite target (finished ones), or `None` without the file.
pub(crate) fn sqlite_rows(path: &Path) -> Option<usize> {
    if !path.exists() {
        return None;
    }
    let out = Command::new("sqlite3")
        .arg(path)
        .arg("SELECT COUNT(*) FROM _prisma_migrations WHERE finished_at IS NOT NULL")
        .output()
        .expect("sqlite3");
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

/// A protected fleet of three SQLite tenants under `tenants/`; `beta`'s URL comes from
/// `BETA_URL`, which [`fleet_cmd`] sets.
fn sqlite_fleet(t: &TestContext, fleet_extra: &str) {
    std::fs::create_dir_all(t.path().join("tenants")).expect("mkdir");
    t.write_config(&format!(
        "[environments.tenants]\nprotected = true\n\n[environments.tenants.fleet]\n\
         targets = [\n  {{ id = \"acme\", url = \"sqlite://tenants/acme.db\", labels = {{ tier = \"enterprise\" }} }},\n  \
         {{ id = \"beta\", url_env = \"BETA_URL\" }},\n  \
         {{ id = \"gamma\", url = \"sqlite://tenants/gamma.db\" }},\n]\n{fleet_extra}\n"
    ));
}

const ITEMS: &str = "20240101000000_items";
const UNIQUE: &str = "20240102000000_unique_sku";

/// Every tenant has `Item` (one migration applied); `bad` gets two rows with the same sku,
/// so the next migration (a unique index, written here) fails on it alone: its plan is clean,
/// its deploy is not.
pub(crate) fn one_bad_tenant(t: &TestContext, bad: &str) {
    write_migrations(
        t,
        &[(
            ITEMS,
            "CREATE TABLE \"Item\" (\"id\" INTEGER NOT NULL, \"sku\" TEXT NOT NULL);\n".into(),
        )],
    );
    run(t, "tenants/beta.db", &["migrate", "tenants", "--yes"]).code(0);
    sqlite(
        &t.path().join(format!("tenants/{bad}.db")),
        "INSERT INTO \"Item\" VALUES (1, 'x'), (2, 'x')",
    );
    write_migrations(
        t,
        &[
            (
                ITEMS,
                "CREATE TABLE \"Item\" (\"id\" INTEGER NOT NULL, \"sku\" TEXT NOT NULL);\n".into(),
            ),
            (
                UNIQUE,
                "CREATE UNIQUE INDEX \"Item_sku_key\" ON \"Item\"(\"sku\");\n".into(),
            ),
        ],
    );
}

pub(crate) fn sqlite(path: &Path, sql: &str) -> String {
    let out = Command::new("sqlite3")
        .arg(path)
        .arg(sql)
        .output()
        .expect("sqlite3");
    assert!(
        out.status.success(),
        "{sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn fleet_cmd(t: &TestContext, beta: &str, args: &[&str]) -> Command {
    let mut cmd = t.cmd(args);
    cmd.env(
        "BETA_URL",
        format!("sqlite://{}", t.path().join(beta).display()),
    );
    cmd
}

pub(crate) fn run(t: &TestContext, beta: &str, args: &[&str]) -> crate::common::Run {
    crate::common::Run::from(fleet_cmd(t, beta, args).output().expect("run dbdeploy"))
}

pub(crate) fn target<'a>(doc: &'a Value, id: &str) -> &'a Value {
    doc["result"]["targets"]
        .as_array()
        .expect("targets")
        .iter()
        .find(|t| t["id"] == id)
        .unwrap_or_else(|| panic!("no target {id} in {doc}"))
}

#[test]
fn a_sqlite_fleet_deploys_every_tenant_once_and_a_second_run_is_a_no_op() {
    let t = sqlite_basic("fleet_sqlite");
    sqlite_fleet(&t, "max_parallel = 1");
    let first = dbdeploy_snapshot!(
        t,
        fleet_cmd(&t, "tenants/beta.db", &["migrate", "tenants", "--yes"])
    );
    first.code(0);
    for db in ["acme", "beta", "gamma"] {
        assert_eq!(
            sqlite_rows(&t.path().join(format!("tenants/{db}.db"))),
            Some(BASIC),
            "{db}"
        );
    }
    // Each target's run is logged in its own database.
    let history = Command::new("sqlite3")
        .arg(t.path().join("tenants/acme.db"))
        .arg("SELECT status, migrations_applied FROM _dbdeploy_history")
        .output()
        .expect("sqlite3");
    assert_eq!(String::from_utf8_lossy(&history.stdout).trim(), "success|3");

    let second = run(
        &t,
        "tenants/beta.db",
        &["migrate", "tenants", "--yes", "--json"],
    );
    second.code(0);
    let doc = second.json();
    assert_eq!(doc["operation"], "fleet-deploy");
    assert_eq!(doc["result"]["counts"]["success"], 3);
    for id in ["acme", "beta", "gamma"] {
        assert_eq!(target(&doc, id)["migrations_applied"], 0);
        assert_eq!(target(&doc, id)["status"], "success");
    }
    assert_eq!(target(&doc, "acme")["labels"]["tier"], "enterprise");

    let status = run(&t, "tenants/beta.db", &["status", "tenants", "--json"]);
    status.code(0);
    assert_eq!(status.json()["result"]["counts"]["up_to_date"], 3);
}

#[test]
fn status_of_a_fleet_reports_pending_per_target() {
    let t = sqlite_basic("fleet_status");
    sqlite_fleet(&t, "");
    let run = run(&t, "tenants/beta.db", &["status", "tenants", "--json"]);
    run.code(4);
    let doc = run.json();
    assert_eq!(doc["operation"], "fleet-status");
    assert_eq!(doc["result"]["counts"]["pending"], 3);
    assert_eq!(
        target(&doc, "gamma")["pending"].as_array().unwrap().len(),
        BASIC
    );
    // Read-only: no database file was created.
    assert!(!t.path().join("tenants/acme.db").exists());
}

#[test]
fn a_protected_fleet_without_yes_and_no_terminal_changes_nothing() {
    let t = sqlite_basic("fleet_no_yes");
    sqlite_fleet(&t, "");
    let run = run(&t, "tenants/beta.db", &["migrate", "tenants"]);
    run.code(3);
    assert!(run.stderr.contains("no terminal"), "{}", run.all());
    for db in ["acme", "beta", "gamma"] {
        assert_eq!(
            sqlite_rows(&t.path().join(format!("tenants/{db}.db"))),
            None
        );
    }
}

#[test]
fn a_failed_canary_touches_nothing_else() {
    let t = sqlite_basic("fleet_canary");
    sqlite_fleet(&t, "canary = 1\non_error = \"continue\"");
    one_bad_tenant(&t, "acme");
    let run = dbdeploy_snapshot!(
        t,
        fleet_cmd(&t, "tenants/beta.db", &["migrate", "tenants", "--yes"])
    );
    run.code(1);
    let doc = self::run(
        &t,
        "tenants/beta.db",
        &["migrate", "tenants", "--yes", "--json", "--dry-run"],
    );
    doc.code(0);
    // The others are as they were: one migration, one history row.
    for db in ["beta", "gamma"] {
        let path = t.path().join(format!("tenants/{db}.db"));
        assert_eq!(sqlite_rows(&path), Some(1), "{db}");
        assert_eq!(
            sqlite(&path, "SELECT COUNT(*) FROM _dbdeploy_history"),
            "1",
            "{db}"
        );
    }
    let json = self::run(
        &t,
        "tenants/beta.db",
        &["migrate", "tenants", "--yes", "--json"],
    );
    json.code(1);
    let doc = json.json();
    assert_eq!(target(&doc, "acme")["status"], "failed");
    assert!(target(&doc, "acme")["error"].is_string());
    assert_eq!(target(&doc, "beta")["status"], "not_started");
    assert_eq!(target(&doc, "gamma")["status"], "not_started");
    assert_eq!(doc["result"]["counts"]["not_started"], 2);
    assert_eq!(doc["status"], "error");
    assert_eq!(doc["error"]["code"], "fleet-targets-failed");
    assert_eq!(doc["error"]["class"], "pre-deployment");
}

#[test]
fn on_error_continue_then_a_narrowed_re_run_after_the_fix() {
    let t = sqlite_basic("fleet_continue");
    sqlite_fleet(&t, "on_error = \"continue\"\nmax_parallel = 2");
    one_bad_tenant(&t, "beta");
    let run1 = run(
        &t,
        "tenants/beta.db",
        &["migrate", "tenants", "--yes", "--json"],
    );
    run1.code(1);
    let doc = run1.json();
    assert_eq!(target(&doc, "beta")["status"], "failed");
    assert_eq!(target(&doc, "acme")["status"], "success");
    assert_eq!(target(&doc, "gamma")["migrations_applied"], 1);
    assert_eq!(doc["result"]["counts"]["failed"], 1);
    std::fs::write(t.path().join("report.json"), &run1.stdout).expect("write report");

    // Fixed by hand: the duplicate removed, the failed attempt cleared.
    sqlite(
        &t.path().join("tenants/beta.db"),
        "DELETE FROM \"Item\" WHERE id = 2; DELETE FROM _prisma_migrations WHERE finished_at IS NULL",
    );
    let run2 = run(
        &t,
        "tenants/beta.db",
        &[
            "migrate",
            "tenants",
            "--yes",
            "--json",
            "--only",
            "failed",
            "--from",
            "report.json",
        ],
    );
    run2.code(0);
    let doc = run2.json();
    assert_eq!(target(&doc, "beta")["status"], "success");
    assert_eq!(target(&doc, "beta")["migrations_applied"], 1);
    assert_eq!(target(&doc, "acme")["status"], "skipped");
    assert_eq!(target(&doc, "gamma")["status"], "skipped");
    assert_eq!(doc["result"]["counts"]["skipped"], 2);
    assert_eq!(sqlite_rows(&t.path().join("tenants/beta.db")), Some(2));
    // acme ran twice in all (set-up, the first fleet run), never in the narrowed one.
    let acme = t.path().join("tenants/acme.db");
    assert_eq!(sqlite(&acme, "SELECT COUNT(*) FROM _dbdeploy_history"), "2");
    run(&t, "tenants/beta.db", &["status", "tenants"]).code(0);
}

#[test]
fn two_targets_that_are_the_same_database_are_refused() {
    let t = sqlite_basic("fleet_duplicates");
    std::fs::create_dir_all(t.path().join("tenants")).expect("mkdir");
    t.write_config(
        "[environments.tenants.fleet]\n\
         targets = [\n  { id = \"acme\", url = \"sqlite://tenants/acme.db\" },\n  \
         { id = \"again\", url = \"sqlite://./tenants/../tenants/acme.db\" },\n]\n",
    );
    let run = t.run(&["migrate", "tenants", "--yes"]);
    run.code(2);
    assert!(run.stderr.contains("`acme` and `again`"), "{}", run.all());
    assert!(run.stderr.contains("same database"), "{}", run.all());
    assert!(!t.path().join("tenants/acme.db").exists());
}

#[test]
fn bad_fleet_configuration_is_refused_before_anything_runs() {
    let t = sqlite_basic("fleet_bad_config");
    for (fleet, expected) in [
        (
            "targets = [ { id = \"a\", url = \"sqlite://a.db\" }, { id = \"a\", url = \"sqlite://b.db\" } ]",
            "more than once",
        ),
        (
            "targets = []\ntargets_command = \"echo\"",
            "exactly one source",
        ),
        (
            "targets = [ { id = \"a b\", url = \"sqlite://a.db\" } ]",
            "not allowed",
        ),
        (
            "targets = [ { id = \"a\", url_env = \"NOT_SET_ANYWHERE\" } ]",
            "NOT_SET_ANYWHERE",
        ),
    ] {
        t.write_config(&format!("[environments.tenants.fleet]\n{fleet}\n"));
        let run = t.run(&["migrate", "tenants", "--yes"]);
        run.code(2);
        assert!(run.stderr.contains(expected), "{fleet}: {}", run.all());
    }
    t.write_config(
        "[environments.tenants]\nurl = \"sqlite://x.db\"\n[environments.tenants.fleet]\ntargets = []\n",
    );
    let run = t.run(&["status", "tenants"]);
    run.code(2);
    assert!(run.stderr.contains("URL of its own"), "{}", run.all());
    assert!(!t.path().join("a.db").exists());
}

#[test]
fn an_empty_fleet_exits_0_unless_targets_are_required() {
    let t = sqlite_basic("fleet_empty");
    t.write_config("[environments.tenants.fleet]\ntargets = []\n");
    let run = t.run(&["migrate", "tenants", "--yes"]);
    run.code(0);
    assert!(run.stdout.contains("no targets"), "{}", run.all());
    t.write_config("[environments.tenants.fleet]\ntargets = []\nrequire_targets = true\n");
    let run = t.run(&["migrate", "tenants", "--yes"]);
    run.code(2);
    assert!(run.stderr.contains("require_targets"), "{}", run.all());
}

#[test]
fn a_postgres_fleet_from_targets_command() {
    let Some(t) = TestContext::new(Engine::Postgres, "fleet_postgres") else {
        return;
    };
    t.fixture("basic");
    let admin = std::env::var("DBDEPLOY_TEST_POSTGRES_URL").expect("set when the context is");
    let dbs = PgDatabases::create(&admin, "dbd_fleet_pg", 3);
    // One literal URL, two by variable: the command's output is a secret like the file's.
    let script = format!(
        "#!/bin/sh\n\
         echo '{{\"id\": \"t0\", \"url\": \"{}\", \"labels\": {{\"region\": \"eu\"}}}}'\n\
         echo '{{\"id\": \"t1\", \"url_env\": \"T1_URL\"}}'\n\
         echo\n\
         echo '{{\"id\": \"t2\", \"url_env\": \"T2_URL\"}}'\n",
        dbs.url(0)
    );
    let script_path = t.path().join("tenants.sh");
    std::fs::write(&script_path, script).expect("write script");
    t.write_config(
        "[environments.tenants]\nprotected = true\nbackup_before_migrate = true\n\
         [environments.tenants.fleet]\ntargets_command = \"sh ./tenants.sh\"\nmax_parallel = 2\n",
    );
    let cmd = |args: &[&str]| {
        let mut c = t.cmd(args);
        c.env("T1_URL", dbs.url(1)).env("T2_URL", dbs.url(2));
        crate::common::Run::from(c.output().expect("run dbdeploy"))
    };
    let status = cmd(&["status", "tenants"]);
    status.code(4);
    let run = cmd(&["migrate", "tenants", "--yes", "--json"]);
    run.code(0);
    let doc = run.json();
    assert_eq!(doc["result"]["counts"]["success"], 3);
    for id in ["t0", "t1", "t2"] {
        assert_eq!(target(&doc, id)["migrations_applied"], BASIC, "{id}");
        assert!(target(&doc, id)["backup_id"].is_string(), "{id}");
    }
    assert_eq!(target(&doc, "t0")["labels"]["region"], "eu");
    for i in 0..3 {
        assert_eq!(dbs.finished(i), BASIC.to_string());
    }
    assert!(!run.stdout.contains(&dbs.url(0)) && !run.stderr.contains(&dbs.url(0)));
    let again = cmd(&["migrate", "tenants", "--yes", "--json"]);
    again.code(0);
    assert_eq!(target(&again.json(), "t1")["migrations_applied"], 0);
    cmd(&["status", "tenants"]).code(0);

    // The same database under two ids is refused before anything runs.
    std::fs::write(
        &script_path,
        format!(
            "echo '{{\"id\": \"a\", \"url_env\": \"T1_URL\"}}'\necho '{{\"id\": \"b\", \"url\": \"{}\"}}'\n",
            dbs.url(1)
        ),
    )
    .expect("write script");
    let dup = cmd(&["migrate", "tenants", "--yes"]);
    dup.code(2);
    assert!(dup.stderr.contains("same database"), "{}", dup.all());
}

#[test]
fn a_target_whose_plan_changed_after_approval_fails_untouched() {
    let t = sqlite_basic("fleet_plan_changed");
    std::fs::create_dir_all(t.path().join("tenants")).expect("mkdir");
    // After the canary's deploy, its health command deploys beta on its own (another deploy
    // meanwhile): beta's plan under its lock is no longer the approved one.
    let sneak = format!(
        "case \"$DATABASE_URL\" in *acme.db) '{}' -C '{}' migrate beta-alone --yes >/dev/null ;; esac",
        env!("CARGO_BIN_EXE_dbdeploy"),
        t.path().display()
    );
    std::fs::write(t.path().join("sneak.sh"), sneak).expect("write script");
    t.write_config(
        "[environments.beta-alone]\nurl = \"sqlite://tenants/beta.db\"\n\n\
         [environments.tenants]\nhealth_command = \"sh ./sneak.sh\"\n\
         [environments.tenants.fleet]\ncanary = 1\n\
         targets = [\n  { id = \"acme\", url = \"sqlite://tenants/acme.db\" },\n  \
         { id = \"beta\", url = \"sqlite://tenants/beta.db\" },\n]\n",
    );
    let run = t.run(&["migrate", "tenants", "--json"]);
    run.code(1);
    let doc = run.json();
    assert_eq!(target(&doc, "acme")["status"], "success");
    assert_eq!(target(&doc, "beta")["status"], "failed");
    assert_eq!(target(&doc, "beta")["migrations_applied"], 0);
    let error = target(&doc, "beta")["error"].as_str().unwrap_or_default();
    assert!(error.contains("plan changed"), "{error}");
    // beta holds what the other deploy applied, once.
    let beta = t.path().join("tenants/beta.db");
    assert_eq!(sqlite_rows(&beta), Some(BASIC));
    assert_eq!(
        sqlite(&beta, "SELECT COUNT(*) FROM _prisma_migrations"),
        BASIC.to_string()
    );
}

#[test]
fn ctrl_c_mid_fleet_leaves_the_rest_not_started_and_a_re_run_completes_it() {
    let t = sqlite_basic("fleet_sigint");
    // Each target's health check takes a second: Ctrl-C lands while the first ones run.
    sqlite_fleet(&t, "max_parallel = 1");
    let config = std::fs::read_to_string(t.path().join("dbdeploy.toml")).expect("config");
    std::fs::write(
        t.path().join("dbdeploy.toml"),
        config.replace(
            "[environments.tenants]\n",
            "[environments.tenants]\nhealth_command = \"sleep 1\"\n",
        ),
    )
    .expect("config");
    let child = fleet_cmd(
        &t,
        "tenants/beta.db",
        &["migrate", "tenants", "--yes", "--json"],
    )
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .expect("spawn");
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(kill.success());
    let run = crate::common::Run::from(child.wait_with_output().expect("wait"));
    run.code(130);
    let doc = run.json();
    assert_eq!(target(&doc, "gamma")["status"], "not_started");
    assert_eq!(doc["result"]["counts"]["failed"], 0, "{doc}");
    assert_eq!(doc["error"]["code"], "fleet-targets-failed");
    assert!(!t.path().join("tenants/gamma.db").exists());
    // A plain re-run applies what is pending and finishes the fleet.
    let again = run_again(&t);
    again.code(0);
    for db in ["acme", "beta", "gamma"] {
        assert_eq!(
            sqlite_rows(&t.path().join(format!("tenants/{db}.db"))),
            Some(BASIC),
            "{db}"
        );
    }
}

fn run_again(t: &TestContext) -> crate::common::Run {
    run(t, "tenants/beta.db", &["migrate", "tenants", "--yes"])
}

#[test]
fn targets_command_sees_no_other_environment_url_and_its_failures_exit_2() {
    let t = sqlite_basic("fleet_targets_command");
    std::fs::create_dir_all(t.path().join("tenants")).expect("mkdir");
    // dev, staging and production read DATABASE_URL, which `t.cmd` sets.
    std::fs::write(
        t.path().join("tenants.sh"),
        "if [ -n \"$DATABASE_URL\" ]; then echo 'sees DATABASE_URL' >&2; exit 3; fi\n\
         echo '{\"id\": \"a\", \"url\": \"sqlite://tenants/a.db\"}'\n",
    )
    .expect("script");
    t.write_config("[environments.tenants.fleet]\ntargets_command = \"sh ./tenants.sh\"\n");
    let run = t.run(&["status", "tenants"]);
    run.code(4);
    assert!(
        run.stdout.contains("0 applied · 3 pending"),
        "{}",
        run.all()
    );

    std::fs::write(t.path().join("tenants.sh"), "echo 'on fire' >&2; exit 7\n").expect("script");
    let run = t.run(&["migrate", "tenants", "--yes"]);
    run.code(2);
    assert!(
        run.stderr.contains("targets_command` failed"),
        "{}",
        run.all()
    );
    assert!(run.stderr.contains("on fire"), "{}", run.all());

    std::fs::write(
        t.path().join("tenants.sh"),
        "echo '{\"id\": \"a\", \"url\": \"sqlite://tenants/a.db\"}'\necho 'postgres://u:hunter22@db/x'\n",
    )
    .expect("script");
    let run = t.run(&["migrate", "tenants", "--yes"]);
    run.code(2);
    assert!(run.stderr.contains("line 2"), "{}", run.all());
    assert!(!run.all().contains("hunter22"), "{}", run.all());
    assert!(!t.path().join("tenants/a.db").exists());
}

#[test]
fn a_person_approves_a_protected_fleet_once() {
    let t = sqlite_basic("fleet_prompt");
    std::fs::create_dir_all(t.path().join("tenants")).expect("mkdir");
    t.write_config(
        "[environments.tenants]\nprotected = true\n[environments.tenants.fleet]\n\
         targets = [\n  { id = \"acme\", url = \"sqlite://tenants/acme.db\" },\n  \
         { id = \"beta\", url = \"sqlite://tenants/beta.db\" },\n]\n",
    );
    let mut term = t.on_terminal(&["migrate", "tenants"]);
    std::thread::sleep(std::time::Duration::from_secs(3));
    term.type_line("yes");
    let run = term.wait(std::time::Duration::from_secs(60));
    run.code(0);
    // One summary, one approval (the prompt line itself is redrawn as it is answered).
    assert_eq!(
        run.stdout.matches("is protected:").count(),
        1,
        "{}",
        run.stdout
    );
    assert_eq!(run.stdout.matches("✓ approve").count(), 1, "{}", run.stdout);
    assert!(
        run.stdout
            .contains("6 migration(s) will be applied to 2 of 2 target(s)"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("acme: 20240101000000_init"),
        "{}",
        run.stdout
    );
    for db in ["acme", "beta"] {
        assert_eq!(
            sqlite_rows(&t.path().join(format!("tenants/{db}.db"))),
            Some(BASIC)
        );
    }
}

#[test]
fn an_unreachable_target_fails_alone_with_on_error_continue_and_engines_do_not_mix() {
    let Some(t) = TestContext::new(Engine::Postgres, "fleet_unreachable") else {
        return;
    };
    t.fixture("basic");
    t.write_config(
        "[environments.tenants]\nconnect_timeout_seconds = 1\n[environments.tenants.fleet]\non_error = \"continue\"\n\
         targets = [\n  { id = \"up\", url_env = \"DATABASE_URL\" },\n  \
         { id = \"down\", url = \"postgres://postgres@127.0.0.1:1/nowhere\" },\n]\n",
    );
    let run = t.run(&["migrate", "tenants", "--json"]);
    run.code(1);
    let doc = run.json();
    assert_eq!(target(&doc, "up")["status"], "success");
    assert_eq!(target(&doc, "up")["migrations_applied"], BASIC);
    assert_eq!(target(&doc, "down")["status"], "failed");
    assert_eq!(t.prisma_rows().len(), BASIC);

    t.write_config(
        "[environments.tenants.fleet]\n\
         targets = [\n  { id = \"pg\", url_env = \"DATABASE_URL\" },\n  \
         { id = \"file\", url = \"sqlite://x.db\" },\n]\n",
    );
    let run = t.run(&["migrate", "tenants", "--yes"]);
    run.code(2);
    assert!(run.stderr.contains("one engine"), "{}", run.all());
}
