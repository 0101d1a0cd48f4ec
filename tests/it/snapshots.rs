//! What users see, pinned: the human and JSON output of every command in its usual outcomes,
//! snapshotted with `dbdeploy_snapshot!` (volatile values filtered, see `common::snapshot`).
//! These are the safety net for refactorings of the pipeline, the commands and the output: a
//! change of wording, order, exit code or JSON shape shows up here as a snapshot diff.
//!
//! Mostly SQLite, whose output is the same on every machine; a few on PostgreSQL. Write new
//! snapshots with `INSTA_UPDATE=always cargo test --test it snapshots` and read them before
//! committing; under `CI=true` a missing or different snapshot fails.

use crate::common::{Engine, TestContext, sqlite_basic};
use crate::dbdeploy_snapshot;

/// A SQLite project with the `basic` fixture deployed to `staging`.
fn deployed(test: &str) -> TestContext {
    let t = sqlite_basic(test);
    t.run(&["migrate", "staging"]).code(0);
    t
}

/// `args` as a human run, then as a `--json` run: for commands that change the project or the
/// database, each is run in a fresh one.
fn human_and_json<'a>(args: &[&'a str]) -> [Vec<&'a str>; 2] {
    let mut json = args.to_vec();
    json.push("--json");
    [args.to_vec(), json]
}

/// A fourth migration that drops a table and a column: risks for the preview to show.
fn add_destructive_migration(t: &TestContext) {
    let dir = t.migrations().join("20240104000000_drop_comments");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("migration.sql"),
        "-- DropTable\nDROP TABLE \"Comment\";\n\n-- AlterTable\nALTER TABLE \"Post\" DROP COLUMN \"views\";\n",
    )
    .unwrap();
}

// migrate --------------------------------------------------------------------------------------

#[test]
fn migrate_fresh_deploy() {
    for args in human_and_json(&["migrate", "staging"]) {
        let t = sqlite_basic("snap_migrate_fresh");
        dbdeploy_snapshot!(t, t.cmd(&args)).code(0);
    }
}

#[test]
fn migrate_nothing_pending() {
    let t = deployed("snap_migrate_noop");
    dbdeploy_snapshot!(t, ["migrate", "staging"]).code(0);
    dbdeploy_snapshot!(t, ["migrate", "staging", "--json"]).code(0);
}

#[test]
fn migrate_dry_run_with_risks() {
    let t = deployed("snap_dry_run");
    add_destructive_migration(&t);
    dbdeploy_snapshot!(t, ["migrate", "staging", "--dry-run"]).code(0);
    dbdeploy_snapshot!(t, ["migrate", "staging", "--dry-run", "--json"]).code(0);
}

// status ---------------------------------------------------------------------------------------

#[test]
fn status_up_to_date() {
    let t = deployed("snap_status_ok");
    dbdeploy_snapshot!(t, ["status", "staging"]).code(0);
    dbdeploy_snapshot!(t, ["status", "staging", "--json"]).code(0);
}

#[test]
fn status_pending() {
    let t = sqlite_basic("snap_status_pending");
    t.run(&["migrate", "staging", "--to", "20240101000000_init"])
        .code(0);
    dbdeploy_snapshot!(t, ["status", "staging"]).code(4);
    dbdeploy_snapshot!(t, ["status", "staging", "--json"]).code(4);
}

#[test]
fn status_inconsistent() {
    let t = deployed("snap_status_modified");
    let file = t.migrations().join("20240102000000_comments/migration.sql");
    let sql = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, format!("{sql}\n-- edited after it was applied\n")).unwrap();
    dbdeploy_snapshot!(t, ["status", "staging"]).code(5);
    dbdeploy_snapshot!(t, ["status", "staging", "--json"]).code(5);
}

#[test]
fn postgres_migrate_then_status() {
    let Some(t) = TestContext::new(Engine::Postgres, "snap_pg_fresh") else {
        return;
    };
    t.fixture("basic");
    dbdeploy_snapshot!(t, ["migrate", "staging"]).code(0);
    dbdeploy_snapshot!(t, ["status", "staging", "--json"]).code(0);
}

/// A `safe` environment that backs up before applying and restores on failure (as in
/// safety_net.rs), with `extra` settings.
fn safe_config(t: &TestContext, extra: &str) {
    t.write_config(&format!(
        "[environments.safe]\nurl_env = \"DATABASE_URL\"\nbackup_before_migrate = true\n\
         rollback_on_failure = true\nrollback_on_health_check_failure = true\n{extra}\n\n\
         [backup]\ndir = \"backups\"\n"
    ));
}

#[test]
fn migrate_cancelled_without_approval() {
    // A protected environment, no terminal, no --yes: refused, nothing changed.
    let t = sqlite_basic("snap_cancelled");
    dbdeploy_snapshot!(t, ["migrate", "production"]).code(3);
    dbdeploy_snapshot!(t, ["migrate", "production", "--json"]).code(3);
}

#[test]
fn migrate_fails_midway() {
    for args in human_and_json(&["migrate", "staging"]) {
        let t = sqlite_basic("snap_fails_midway");
        t.fixture("fails-halfway");
        dbdeploy_snapshot!(t, t.cmd(&args)).code(1);
    }
}

#[test]
fn migrate_fails_midway_with_backup_and_rollback() {
    for args in human_and_json(&["migrate", "safe"]) {
        let t = sqlite_basic("snap_fails_midway_backup");
        t.fixture("fails-halfway");
        // `init` is applied by this run before `broken` fails: the backup is restored.
        safe_config(&t, "");
        dbdeploy_snapshot!(t, t.cmd(&args)).code(1);
    }
}

#[test]
fn migrate_refuses_a_modified_migration() {
    let t = deployed("snap_modified");
    let file = t.migrations().join("20240101000000_init/migration.sql");
    let sql = std::fs::read_to_string(&file).unwrap();
    std::fs::write(
        &file,
        sql.replace("\"name\" TEXT,", "\"name\" TEXT NOT NULL,"),
    )
    .unwrap();
    add_destructive_migration(&t);
    dbdeploy_snapshot!(t, ["migrate", "staging"]).code(1);
    dbdeploy_snapshot!(t, ["migrate", "staging", "--json"]).code(1);
}

#[test]
fn migrate_refuses_schema_drift() {
    let t = deployed("snap_drift_refused");
    t.sql("ALTER TABLE \"User\" ADD COLUMN nickname TEXT");
    add_destructive_migration(&t);
    dbdeploy_snapshot!(t, ["migrate", "staging"]).code(1);
    dbdeploy_snapshot!(t, ["migrate", "staging", "--json"]).code(1);
}

#[test]
fn migrate_health_command_fails_and_rolls_back() {
    for args in human_and_json(&["migrate", "safe"]) {
        let t = sqlite_basic("snap_health_command");
        safe_config(&t, "health_command = \"echo app is down >&2; exit 1\"");
        dbdeploy_snapshot!(t, t.cmd(&args)).code(1);
    }
}

#[test]
fn migrate_with_an_external_command() {
    for args in human_and_json(&["migrate", "dev"]) {
        let t = TestContext::new(Engine::Sqlite, "snap_external").unwrap();
        crate::external_command::project(&t);
        dbdeploy_snapshot!(t, t.cmd(&args)).code(0);
    }
}

// health ---------------------------------------------------------------------------------------

#[test]
fn health_healthy() {
    let t = deployed("snap_health_ok");
    dbdeploy_snapshot!(t, ["health", "staging"]).code(0);
    dbdeploy_snapshot!(t, ["health", "staging", "--json"]).code(0);
}

#[test]
fn health_unhealthy() {
    let t = deployed("snap_health_drift");
    t.sql("CREATE TABLE \"Audit\" (id INTEGER PRIMARY KEY)");
    dbdeploy_snapshot!(t, ["health", "staging"]).code(5);
    dbdeploy_snapshot!(t, ["health", "staging", "--json"]).code(5);
}

// backup, backups, rollback ------------------------------------------------------------------

#[test]
fn backup_created() {
    for args in human_and_json(&["backup", "staging"]) {
        let t = deployed("snap_backup");
        dbdeploy_snapshot!(t, t.cmd(&args)).code(0);
    }
}

#[test]
fn backups_listed() {
    let t = deployed("snap_backups");
    t.run(&["backup", "staging"]).code(0);
    dbdeploy_snapshot!(t, ["backups", "staging"]).code(0);
    dbdeploy_snapshot!(t, ["backups", "staging", "--json"]).code(0);
}

#[test]
fn rollback_restores_the_latest_backup() {
    for args in human_and_json(&["rollback", "staging", "--yes"]) {
        let t = deployed("snap_rollback");
        t.run(&["backup", "staging"]).code(0);
        t.sql("CREATE TABLE \"Scratch\" (id INTEGER PRIMARY KEY)");
        dbdeploy_snapshot!(t, t.cmd(&args)).code(0);
    }
}

#[test]
fn rollback_refused_without_approval() {
    let t = deployed("snap_rollback_refused");
    t.run(&["backup", "production"]).code(0);
    dbdeploy_snapshot!(t, ["rollback", "production"]).code(3);
    dbdeploy_snapshot!(t, ["rollback", "production", "--json"]).code(3);
}

// resolve, history, diff, down -----------------------------------------------------------------

#[test]
fn resolve_a_failed_migration() {
    for args in human_and_json(&["resolve", "staging", "--applied", "20240102000000_broken"]) {
        let t = sqlite_basic("snap_resolve");
        t.fixture("fails-halfway");
        t.run(&["migrate", "staging"]).code(1);
        dbdeploy_snapshot!(t, t.cmd(&args)).code(0);
    }
}

#[test]
fn history_of_runs() {
    let t = sqlite_basic("snap_history");
    t.run(&["migrate", "staging", "--to", "20240101000000_init"])
        .code(0);
    t.run(&["migrate", "staging"]).code(0);
    t.run(&["backup", "staging"]).code(0);
    dbdeploy_snapshot!(t, ["history", "staging"]).code(0);
    dbdeploy_snapshot!(t, ["history", "staging", "--json"]).code(0);
}

#[test]
fn diff_without_drift() {
    let t = deployed("snap_diff_none");
    dbdeploy_snapshot!(t, ["diff", "staging"]).code(0);
    dbdeploy_snapshot!(t, ["diff", "staging", "--json"]).code(0);
}

#[test]
fn diff_with_drift() {
    let t = deployed("snap_diff_drift");
    t.sql("ALTER TABLE \"User\" ADD COLUMN nickname TEXT");
    t.sql("DROP INDEX \"Post_views_idx\"");
    dbdeploy_snapshot!(t, ["diff", "staging"]).code(5);
    dbdeploy_snapshot!(t, ["diff", "staging", "--json"]).code(5);
}

#[test]
fn down_reverts_with_sqlx_down_scripts() {
    let t = TestContext::new(Engine::Sqlite, "snap_down").unwrap();
    crate::formats_support::sqlx_project(&t, "reversible");
    t.run(&["migrate", "dev"]).code(0);
    dbdeploy_snapshot!(t, ["down", "dev"]).code(0);
    dbdeploy_snapshot!(t, ["down", "dev", "--json"]).code(0);
}

// init and configuration errors ----------------------------------------------------------------

#[test]
fn init_detects_prisma() {
    for args in human_and_json(&["init"]) {
        let t = sqlite_basic("snap_init");
        std::fs::remove_file(t.path().join("dbdeploy.toml")).unwrap();
        dbdeploy_snapshot!(t, t.cmd(&args)).code(0);
    }
}

#[test]
fn config_error_unknown_environment() {
    let t = sqlite_basic("snap_unknown_env");
    dbdeploy_snapshot!(t, ["migrate", "prod"]).code(2);
    dbdeploy_snapshot!(t, ["migrate", "prod", "--json"]).code(2);
}

#[test]
fn config_error_missing_url_variable() {
    let t = sqlite_basic("snap_missing_var");
    let mut cmd = t.cmd(&["migrate", "dev"]);
    cmd.env_remove("DATABASE_URL");
    dbdeploy_snapshot!(t, cmd).code(2);
}

#[test]
fn config_error_unknown_key() {
    let t = sqlite_basic("snap_unknown_key");
    t.write_config("[environments.qa]\nurl_env = \"DATABASE_URL\"\nprotcted = true\n");
    dbdeploy_snapshot!(t, ["migrate", "qa"]).code(2);
}

// PostgreSQL ----------------------------------------------------------------------------------

#[test]
fn postgres_dry_run_and_failure() {
    let Some(t) = TestContext::new(Engine::Postgres, "snap_pg_fails") else {
        return;
    };
    t.fixture("fails-halfway");
    dbdeploy_snapshot!(t, ["migrate", "staging", "--dry-run", "--json"]).code(0);
    dbdeploy_snapshot!(t, ["migrate", "staging"]).code(1);
}

#[test]
fn postgres_health() {
    let Some(t) = TestContext::new(Engine::Postgres, "snap_pg_health") else {
        return;
    };
    t.fixture("basic");
    t.run(&["migrate", "staging"]).code(0);
    dbdeploy_snapshot!(t, ["health", "staging"]).code(0);
}
