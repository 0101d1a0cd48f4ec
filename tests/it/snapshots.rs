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
    let t = sqlite_basic("snap_migrate_fresh");
    dbdeploy_snapshot!(t, ["migrate", "staging"]).code(0);
    let t = sqlite_basic("snap_migrate_fresh_json");
    dbdeploy_snapshot!(t, ["migrate", "staging", "--json"]).code(0);
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
