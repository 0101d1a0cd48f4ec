//! `init`: the migration tool detected from each fixture's layout, the configuration it
//! writes, and the question it asks when the layout is ambiguous.

use std::path::Path;

use crate::common::{Engine, Run, copy_dir};
use crate::engine_test;
use crate::formats_support::fixtures;

/// Runs `dbdeploy init ARGS` in `dir`, with `DATABASE_URL` set to `url` or unset.
fn init_in(dir: &Path, args: &[&str], url: Option<&str>) -> Run {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_dbdeploy"));
    cmd.arg("-C")
        .arg(dir)
        .arg("init")
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("DATABASE_URL")
        .stdin(std::process::Stdio::null());
    if let Some(url) = url {
        cmd.env("DATABASE_URL", url);
    }
    Run::from(cmd.output().expect("run dbdeploy"))
}

fn config_of(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("dbdeploy.toml")).expect("read config")
}

fn write_files(dir: &Path, files: &[(&str, &str)]) {
    for (f, body) in files {
        let path = dir.join(f);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, body).expect("write");
    }
}

/// Files to write, and the tool and folder `init` must detect from them.
type Layout = (
    &'static [(&'static str, &'static str)],
    &'static str,
    &'static str,
);

#[test]
fn init_detects_each_fixture_layout() {
    let f = fixtures();
    // (what, fixture copied into dir, or files, the tool and folder init must write)
    let copies: [(&str, &str, &str, &str); 6] = [
        (
            "prisma/sqlite-basic",
            "prisma/migrations",
            "prisma",
            "prisma/migrations",
        ),
        ("drizzle/sqlite-basic", "drizzle", "drizzle", "drizzle"),
        ("flyway/basic", "db/migration", "flyway", "db/migration"),
        (
            "flyway/crlf",
            "src/main/resources/db/migration",
            "flyway",
            "src/main/resources/db/migration",
        ),
        ("sql/basic", "migrations", "sql", "migrations"),
        ("sql/crlf", "sql", "sql", "sql"),
    ];
    for (fixture, into, tool, dir) in copies {
        let project = tempfile::tempdir().expect("tempdir");
        copy_dir(&f.join(fixture), &project.path().join(into));
        let run = init_in(project.path(), &[], None);
        run.code(0);
        let text = config_of(project.path());
        assert!(
            text.contains(&format!("migration_tool = \"{tool}\"")),
            "{fixture}:\n{text}"
        );
        assert!(
            text.contains(&format!("migrations_dir = \"{dir}\"")),
            "{fixture}:\n{text}"
        );
    }
    let layouts: [Layout; 3] = [
        (
            &[(
                "db/migrations/20240101000000_create_users.sql",
                "-- migrate:up\nCREATE TABLE users (id INT);\n\n-- migrate:down\nDROP TABLE users;\n",
            )],
            "dbmate",
            "db/migrations",
        ),
        (
            &[
                (
                    "migrations/000001_create_users.up.sql",
                    "CREATE TABLE users (id INT);",
                ),
                (
                    "migrations/000001_create_users.down.sql",
                    "DROP TABLE users;",
                ),
            ],
            "golang-migrate",
            "migrations",
        ),
        (
            &[(
                "migrations/20240101120000_create_users.sql",
                "CREATE TABLE users (id INT);",
            )],
            "sqlx",
            "migrations",
        ),
    ];
    for (files, tool, dir) in layouts {
        let project = tempfile::tempdir().expect("tempdir");
        write_files(project.path(), files);
        init_in(project.path(), &[], None).code(0);
        let text = config_of(project.path());
        assert!(
            text.contains(&format!("migration_tool = \"{tool}\"")),
            "{text}"
        );
        assert!(
            text.contains(&format!("migrations_dir = \"{dir}\"")),
            "{text}"
        );
    }
}

engine_test!(
    init_writes_a_config_that_deploys_and_refuses_to_overwrite_it,
    |t| {
        std::fs::remove_file(t.path().join("dbdeploy.toml")).expect("rm config");
        let fixture = match t.engine {
            Engine::Sqlite => "flyway/basic".to_owned(),
            _ => format!("drizzle/{}-basic", t.engine.provider()),
        };
        let into = if t.engine == Engine::Sqlite {
            "db/migration"
        } else {
            "drizzle"
        };
        copy_dir(&fixtures().join(&fixture), &t.path().join(into));
        // A server database needs its URL from the environment; SQLite gets a local file.
        let url = (t.engine != Engine::Sqlite).then_some(t.url.as_str());
        let run = init_in(t.path(), &["--json"], url);
        run.code(0);
        let doc = run.json();
        assert_eq!(doc["status"], "success", "{doc}");
        let text = config_of(t.path());
        assert!(text.contains("[environments.production]"), "{text}");
        assert!(text.contains("url_env = \"PROD_DATABASE_URL\""), "{text}");
        assert!(text.contains("protected = true"), "{text}");
        assert!(
            text.lines().filter(|l| l.starts_with('#')).count() >= 3,
            "{text}"
        );
        assert!(
            !text.contains(&t.url),
            "the URL itself must never be written:\n{text}"
        );
        let applied = if t.engine == Engine::Sqlite {
            assert_eq!(doc["result"]["migration_tool"], "flyway", "{doc}");
            assert!(
                text.contains("url = \"sqlite://.dbdeploy/dev.db\""),
                "{text}"
            );
            // The generated file works as it is: deploy to the local SQLite database it names.
            let run = Run::from(
                std::process::Command::new(env!("CARGO_BIN_EXE_dbdeploy"))
                    .arg("-C")
                    .arg(t.path())
                    .args(["migrate", "dev", "--json"])
                    .env_remove("DATABASE_URL")
                    .stdin(std::process::Stdio::null())
                    .output()
                    .expect("run"),
            );
            run.code(0);
            assert!(t.path().join(".dbdeploy/dev.db").is_file());
            run.json()["result"]["migrations_applied"].clone()
        } else {
            assert_eq!(doc["result"]["migration_tool"], "drizzle", "{doc}");
            assert!(text.contains("url_env = \"DATABASE_URL\""), "{text}");
            let run = t.run(&["migrate", "dev", "--json"]);
            run.code(0);
            run.json()["result"]["migrations_applied"].clone()
        };
        assert_ne!(applied, 0);

        let again = init_in(t.path(), &[], url);
        again.code(2);
        assert!(
            again.stderr.contains("dbdeploy.toml already exists"),
            "{}",
            again.stderr
        );
        assert_eq!(config_of(t.path()), text, "the existing file was changed");
    }
);

#[test]
fn init_asks_for_the_tool_when_the_layout_is_ambiguous() {
    let project = tempfile::tempdir().expect("tempdir");
    write_files(
        project.path(),
        &[
            ("migrations/20240101120000_create_users.up.sql", "SELECT 1;"),
            (
                "migrations/20240101120000_create_users.down.sql",
                "SELECT 1;",
            ),
        ],
    );
    let run = init_in(project.path(), &[], None);
    run.code(2);
    assert!(run.stderr.contains("--tool"), "{}", run.stderr);
    assert!(
        run.stderr.contains("sqlx") && run.stderr.contains("golang-migrate"),
        "{}",
        run.stderr
    );
    assert!(!project.path().join("dbdeploy.toml").exists());

    let run = init_in(project.path(), &["--tool", "liquibase"], None);
    run.code(2);
    assert!(run.stderr.contains("liquibase"), "{}", run.stderr);
    assert!(!project.path().join("dbdeploy.toml").exists());

    init_in(project.path(), &["--tool", "golang-migrate"], None).code(0);
    let text = config_of(project.path());
    assert!(
        text.contains("migration_tool = \"golang-migrate\""),
        "{text}"
    );
    assert!(text.contains("migrations_dir = \"migrations\""), "{text}");

    let empty = tempfile::tempdir().expect("tempdir");
    let run = init_in(empty.path(), &[], None);
    run.code(2);
    assert!(
        run.stderr.contains("no migrations folder found"),
        "{}",
        run.stderr
    );
    init_in(
        empty.path(),
        &["--tool", "sql", "--migrations-dir", "db/sql"],
        None,
    )
    .code(0);
    assert!(config_of(empty.path()).contains("migrations_dir = \"db/sql\""));
}
