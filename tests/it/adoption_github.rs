//! Inside a GitHub Actions step: a failed migration becomes an `::error file=…,line=…::`
//! annotation on its file, long SQL is folded in groups, and a Markdown summary is appended to
//! `$GITHUB_STEP_SUMMARY`; all of it scrubbed of secrets. Outside Actions, none of it.

use std::process::Command;

use crate::common::{Run, TestContext, sqlite_basic, write_migrations};

/// The command as a GitHub Actions step runs it, the summary file beside the project.
fn in_actions(t: &TestContext, args: &[&str]) -> (Command, std::path::PathBuf) {
    let summary = t.path().join("step-summary.md");
    let mut cmd = t.cmd(args);
    cmd.env("GITHUB_ACTIONS", "true")
        .env("GITHUB_STEP_SUMMARY", &summary)
        .env("GITHUB_WORKSPACE", t.path());
    (cmd, summary)
}

#[test]
fn a_failed_migration_is_annotated_on_its_file_and_line() {
    let t = sqlite_basic("gh_failure");
    write_migrations(
        &t,
        &[
            ("20240101000000_ok", "CREATE TABLE a (id INTEGER);\n".into()),
            (
                "20240102000000_broken",
                "CREATE TABLE b (id INTEGER);\n\nINSERT INTO missing_table VALUES (1);\n".into(),
            ),
        ],
    );
    let (mut cmd, summary) = in_actions(&t, &["migrate", "staging"]);
    let run = Run::from(cmd.output().unwrap());
    run.code(1);
    let line = run
        .stdout
        .lines()
        .find(|l| l.starts_with("::error "))
        .unwrap_or_else(|| panic!("no annotation:\n{}", run.all()));
    assert!(
        line.starts_with(
            "::error file=prisma/migrations/20240102000000_broken/migration.sql,line=3::migration `20240102000000_broken` failed"
        ),
        "{line}"
    );
    assert!(line.contains("missing_table"), "{line}");
    let md = std::fs::read_to_string(&summary).unwrap();
    assert!(
        md.starts_with("### ❌ dbdeploy deploy-migrations · `staging`"),
        "{md}"
    );
    assert!(md.contains("| 20240101000000_ok | applied |"), "{md}");
    assert!(md.contains("| 20240102000000_broken | failed |"), "{md}");
    assert!(md.contains("**Error:**"), "{md}");
}

#[test]
fn a_deploy_summary_has_the_migrations_the_backup_and_the_rollback_command() {
    let t = sqlite_basic("gh_summary");
    t.write_config(
        "[environments.safe]\nurl_env = \"DATABASE_URL\"\nbackup_before_migrate = true\n",
    );
    t.run(&["migrate", "dev", "--to", "20240101000000_init"])
        .code(0);
    let (mut cmd, summary) = in_actions(&t, &["migrate", "safe", "--json"]);
    let run = Run::from(cmd.output().unwrap());
    run.code(0);
    // Under --json stdout stays one document; workflow commands go to stderr.
    let doc = run.json();
    let backup = doc["result"]["backup_id"].as_str().map(str::to_owned);
    let md = std::fs::read_to_string(&summary).unwrap();
    assert!(
        md.contains("| Migration | Status | Duration | Risks |"),
        "{md}"
    );
    assert!(md.contains("| applied | "), "{md}");
    if let Some(id) = backup {
        assert!(md.contains(&format!("**Backup:** `{id}`")), "{md}");
        assert!(
            md.contains(&format!("`dbdeploy rollback safe --to {id}`")),
            "{md}"
        );
    } else {
        panic!("no backup in {doc}");
    }
}

#[test]
fn dry_run_sql_is_folded_and_status_is_summarised() {
    let t = sqlite_basic("gh_groups");
    let (mut cmd, summary) = in_actions(&t, &["migrate", "staging", "--dry-run"]);
    let run = Run::from(cmd.output().unwrap());
    run.code(0);
    let groups = run
        .stdout
        .lines()
        .filter(|l| l.starts_with("::group::SQL of "))
        .count();
    let ends = run.stdout.lines().filter(|l| *l == "::endgroup::").count();
    assert!(groups > 0 && groups == ends, "{}", run.stdout);
    let (mut cmd, _) = in_actions(&t, &["status", "staging"]);
    Run::from(cmd.output().unwrap()).code(4);
    let md = std::fs::read_to_string(&summary).unwrap();
    assert!(md.contains("dbdeploy preview-migrations"), "{md}");
    assert!(md.contains("dbdeploy migration-status"), "{md}");
    assert!(md.contains("| pending |"), "{md}");
}

#[test]
fn annotations_and_summaries_are_scrubbed() {
    let t = sqlite_basic("gh_scrub");
    // Written for SQLite: without the lock file the folder is read for any engine, and the
    // run gets as far as connecting.
    std::fs::remove_file(t.migrations().join("migration_lock.toml")).unwrap();
    let secret = "postgres://app:gh-step-secret-5@127.0.0.1:1/shop";
    let (mut cmd, summary) = in_actions(&t, &["migrate", "staging", "--url", secret]);
    let run = Run::from(cmd.output().unwrap());
    run.code(1);
    assert!(run.stdout.contains("::error::"), "{}", run.all());
    assert!(!run.all().contains("gh-step-secret-5"), "{}", run.all());
    let md = std::fs::read_to_string(&summary).unwrap();
    assert!(!md.contains("gh-step-secret-5"), "{md}");
}

#[test]
fn nothing_of_it_outside_actions() {
    let t = sqlite_basic("gh_off");
    let run = t.run(&["migrate", "staging", "--dry-run"]);
    run.code(0);
    assert!(!run.all().contains("::"), "{}", run.all());
}
