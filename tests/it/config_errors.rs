//! Bad input is exit code 2 with a message that says what and where, and changes nothing.

use crate::common::{Engine, TestContext, sqlite_basic};

#[test]
fn unknown_key_names_key_and_line() {
    let t = sqlite_basic("unknown_key");
    t.write_config("[environments.qa]\nurl_env = \"DATABASE_URL\"\nprotcted = true\n");
    let run = t.run(&["migrate", "qa"]);
    run.code(2);
    assert!(
        run.stderr.contains("protcted") && run.stderr.contains("line"),
        "{}",
        run.stderr
    );
    assert!(!t.path().join("test.db").exists());
}

#[test]
fn unknown_environment_lists_the_known_ones() {
    let t = sqlite_basic("unknown_env");
    let run = t.run(&["migrate", "prod"]);
    run.code(2);
    assert!(
        run.stderr.contains("`prod`") && run.stderr.contains("production"),
        "{}",
        run.stderr
    );
}

#[test]
fn missing_variable_names_the_variable() {
    let t = sqlite_basic("missing_var");
    let run = crate::common::Run::from(
        t.cmd(&["migrate", "dev"])
            .env_remove("DATABASE_URL")
            .output()
            .unwrap(),
    );
    run.code(2);
    assert!(run.stderr.contains("DATABASE_URL"), "{}", run.stderr);
}

#[test]
fn malformed_url_is_a_usage_error_without_the_url() {
    let t = sqlite_basic("bad_url");
    for url in [
        "postgres://user:hunter22@:5432/db",
        "oracle://user:hunter22@h/db",
        "nonsense",
    ] {
        let run = crate::common::Run::from(
            t.cmd(&["migrate", "dev", "--json"])
                .env("DATABASE_URL", url)
                .output()
                .unwrap(),
        );
        run.code(2);
        assert_eq!(run.json()["error"]["code"], "invalid-database-url");
        assert!(!run.all().contains("hunter22"), "{}", run.all());
    }
}

#[test]
fn provider_mismatch_is_refused_before_connecting() {
    let t = TestContext::new(Engine::Sqlite, "bad_provider").unwrap();
    t.fixture_named("sqlite-bad-provider");
    let run = t.run(&["migrate", "dev"]);
    run.code(2);
    assert!(
        run.stderr.contains("migration_lock.toml") && run.stderr.contains("postgresql"),
        "{}",
        run.stderr
    );
    assert!(!t.path().join("test.db").exists());
}

#[test]
fn unknown_to_target_is_a_usage_error() {
    let t = sqlite_basic("bad_to");
    t.run(&["migrate", "dev", "--to", "nope"]).code(2);
}
