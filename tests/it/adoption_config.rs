//! Conventions users bring from other tools: `--url`, the project's `.env`, `dbdeploy.toml`
//! found from any subfolder, and no configuration file at all.

use std::process::Command;

use crate::common::{Run, TestContext, sqlite_basic};
use crate::{dbdeploy_snapshot, engine_test};

/// The binary started in `dir` without `-C`, as a user in a subfolder starts it.
fn in_dir(t: &TestContext, dir: &std::path::Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dbdeploy"));
    cmd.current_dir(dir)
        .args(args)
        .env("DATABASE_URL", &t.url)
        .env("NO_COLOR", "1")
        .env_remove("DBDEPLOY_LOG")
        .stdin(std::process::Stdio::null());
    cmd
}

engine_test!(url_flag_overrides_the_environment, |t| {
    t.fixture("basic");
    // The environment's own variable names a database that does not exist.
    let run = Run::from(
        t.cmd(&["migrate", "staging", "--url", &t.url])
            .env(
                "DATABASE_URL",
                "postgres://nobody:wrong-pw-9@127.0.0.1:1/none",
            )
            .output()
            .unwrap(),
    );
    run.code(0);
    assert!(
        t.tables().contains(&"_prisma_migrations".to_owned()),
        "{}",
        run.all()
    );
    assert!(!run.all().contains("wrong-pw-9"));
});

#[test]
fn url_flag_is_never_printed() {
    let t = sqlite_basic("url_secret");
    std::fs::remove_file(t.migrations().join("migration_lock.toml")).unwrap();
    let secret = "postgres://app:url-flag-secret-7@127.0.0.1:1/shop";
    for args in [
        &["status", "staging", "--url", secret][..],
        &["status", "staging", "--json", "--url", secret],
        &["migrate", "staging", "-vv", "--url", secret],
    ] {
        let run = t.run(args);
        assert_ne!(run.code, 0);
        assert!(!run.all().contains("url-flag-secret-7"), "{}", run.all());
    }
    // A bad value is named as --url's, without the value.
    let run = t.run(&[
        "status",
        "staging",
        "--url",
        "oracle://u:url-flag-secret-7@h/db",
    ]);
    run.code(2);
    assert!(run.stderr.contains("--url"), "{}", run.stderr);
    assert!(!run.all().contains("url-flag-secret-7"), "{}", run.all());
    // A mistyped flag: clap's error echoes the value it could not place, scrubbed.
    let run = t.run(&["status", "staging", "--ulr", secret]);
    run.code(2);
    assert!(!run.all().contains("url-flag-secret-7"), "{}", run.all());
}

#[test]
fn url_flag_hides_the_environments_own_variable_from_child_commands() {
    let t = sqlite_basic("url_children");
    let out = t.path().join("seen.txt");
    t.write_config(&format!(
        "[environments.checked]\nurl_env = \"APP_DB_URL\"\nhealth_command = \"env > {}\"\n",
        out.display()
    ));
    let run = Run::from(
        t.cmd(&["migrate", "checked", "--url", &t.url])
            .env("APP_DB_URL", "sqlite:///elsewhere.db")
            .output()
            .unwrap(),
    );
    run.code(0);
    let seen = std::fs::read_to_string(&out).unwrap();
    assert!(!seen.contains("APP_DB_URL="), "{seen}");
}

#[test]
fn dotenv_is_read_and_exported_variables_win() {
    let t = sqlite_basic("dotenv");
    std::fs::write(
        t.path().join(".env"),
        format!("# local settings\nDATABASE_URL=\"{}\"\nOTHER=1\n", t.url),
    )
    .unwrap();
    let run = Run::from(
        t.cmd(&["migrate", "dev"])
            .env_remove("DATABASE_URL")
            .output()
            .unwrap(),
    );
    run.code(0);
    assert!(t.tables().contains(&"_prisma_migrations".to_owned()));
    // An exported value wins: here it points at another file, which gets the migrations.
    let other = t.path().join("exported.db");
    std::fs::write(
        t.path().join(".env"),
        "DATABASE_URL=sqlite:///nonexistent/dir/x.db\n",
    )
    .unwrap();
    let run = Run::from(
        t.cmd(&["migrate", "dev"])
            .env("DATABASE_URL", format!("sqlite://{}", other.display()))
            .output()
            .unwrap(),
    );
    run.code(0);
    assert!(other.exists(), "{}", run.all());
}

#[test]
fn dotenv_values_are_secrets() {
    let t = sqlite_basic("dotenv_secret");
    std::fs::remove_file(t.migrations().join("migration_lock.toml")).unwrap();
    std::fs::write(
        t.path().join(".env"),
        "DATABASE_URL=postgres://app:dotenv-secret-3@127.0.0.1:1/shop\n",
    )
    .unwrap();
    let run = Run::from(
        t.cmd(&["status", "staging", "--json"])
            .env_remove("DATABASE_URL")
            .output()
            .unwrap(),
    );
    run.code(1);
    assert!(!run.all().contains("dotenv-secret-3"), "{}", run.all());
    // A file that cannot be parsed is named; its values are not shown.
    std::fs::write(t.path().join(".env"), "GOOD=1\nBROKEN dotenv-secret-3\n").unwrap();
    let run = t.run(&["status", "staging"]);
    run.code(2);
    assert!(run.stderr.contains(".env"), "{}", run.stderr);
    assert!(!run.all().contains("dotenv-secret-3"), "{}", run.all());
}

#[test]
fn config_is_found_from_a_subfolder() {
    let t = sqlite_basic("discovery");
    let deep = t.path().join("src/app/handlers");
    std::fs::create_dir_all(&deep).unwrap();
    // A relative SQLite path resolves from the file's folder, not the subfolder.
    t.write_config("[environments.local]\nurl = \"sqlite://local.db\"\n");
    let run = Run::from(in_dir(&t, &deep, &["migrate", "local"]).output().unwrap());
    run.code(0);
    assert!(t.path().join("local.db").exists(), "{}", run.all());
    assert!(!deep.join("local.db").exists());
    assert!(t.path().join(".dbdeploy/audit.jsonl").exists());
    let run = Run::from(in_dir(&t, &deep, &["status", "local"]).output().unwrap());
    run.code(0);
}

#[test]
fn zero_config_migrates_the_detected_project() {
    let t = sqlite_basic("zero_config");
    std::fs::remove_file(t.path().join("dbdeploy.toml")).unwrap();
    dbdeploy_snapshot!(t, ["migrate", "dev"]).code(0);
    assert!(t.tables().contains(&"_prisma_migrations".to_owned()));
    dbdeploy_snapshot!(t, ["status", "ci", "--json"]).code(0);
}

#[test]
fn zero_config_protects_production() {
    let t = sqlite_basic("zero_config_prod");
    std::fs::remove_file(t.path().join("dbdeploy.toml")).unwrap();
    for env in ["prod", "production"] {
        let run = t.run(&["migrate", env]);
        run.code(3);
        assert!(t.tables().is_empty(), "{}", run.all());
    }
    t.run(&["migrate", "production", "--yes"]).code(0);
    assert!(t.tables().contains(&"_prisma_migrations".to_owned()));
}

#[test]
fn zero_config_without_a_url_or_a_tool_says_what_to_do() {
    let t = sqlite_basic("zero_config_errors");
    std::fs::remove_file(t.path().join("dbdeploy.toml")).unwrap();
    let run = Run::from(
        t.cmd(&["migrate", "dev"])
            .env_remove("DATABASE_URL")
            .output()
            .unwrap(),
    );
    run.code(2);
    assert!(run.stderr.contains("DATABASE_URL"), "{}", run.stderr);
    // --url is enough.
    let run = Run::from(
        t.cmd(&["migrate", "dev", "--url", &t.url])
            .env_remove("DATABASE_URL")
            .output()
            .unwrap(),
    );
    run.code(0);
    std::fs::remove_dir_all(t.migrations()).unwrap();
    dbdeploy_snapshot!(t, ["status", "dev"]).code(2);
}
