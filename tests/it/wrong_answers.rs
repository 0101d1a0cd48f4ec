//! Wrong answers that must be errors (issue 11, item 5): a database kept by another tool is
//! named as such instead of "up to date", `init` tells sqlx from golang-migrate, and Flyway
//! baseline migrations (`B<version>__x.sql`, `SQL_BASELINE` rows) work as Flyway's do.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::{Engine, Run, TestContext, copy_dir, health_check};
use crate::engine_test;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations-fixtures")
}

/// Configures `tool` with its migrations in `dir`, copied from `migrations-fixtures/<fixture>`.
fn project(t: &TestContext, tool: &str, dir: &str, fixture: &str) {
    let dst = t.path().join(dir);
    let _ = std::fs::remove_dir_all(&dst);
    copy_dir(&fixtures().join(fixture), &dst);
    std::fs::write(
        t.path().join("dbdeploy.toml"),
        format!(
            "[project]\nmigration_tool = \"{tool}\"\nmigrations_dir = \"{dir}\"\n\n\
             [environments.dev]\nurl_env = \"DATABASE_URL\"\n"
        ),
    )
    .expect("write config");
}

fn write(dir: &Path, rel: &str, text: &str) {
    let path = dir.join(rel);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, text).expect("write");
}

fn names(doc: &Value, key: &str) -> Vec<String> {
    doc["result"][key]
        .as_array()
        .unwrap_or_else(|| panic!("no result.{key} in {doc}"))
        .iter()
        .map(|m| {
            m.as_str()
                .or_else(|| m["name"].as_str())
                .expect("a name")
                .to_owned()
        })
        .collect()
}

// A database kept by another tool ------------------------------------------------------------

engine_test!(another_tools_tracking_table_is_reported_by_name, |t| {
    // A database deployed by Prisma...
    t.fixture("basic");
    t.run(&["migrate", "dev", "--yes"]).code(0);
    let before = t.tables();
    // ...configured as dbmate's.
    std::fs::write(
        t.path().join("dbdeploy.toml"),
        "[project]\nmigration_tool = \"dbmate\"\nmigrations_dir = \"db/migrations\"\n\n\
         [environments.dev]\nurl_env = \"DATABASE_URL\"\n",
    )
    .expect("config");
    write(
        t.path(),
        "db/migrations/20240101000000_widgets.sql",
        "-- migrate:up\nCREATE TABLE widgets (id INT);\n\n-- migrate:down\nDROP TABLE widgets;\n",
    );

    let run = t.run(&["status", "dev"]);
    run.code(5);
    for needle in ["prisma", "_prisma_migrations", "schema_migrations"] {
        assert!(run.all().contains(needle), "{needle}:\n{}", run.all());
    }
    assert!(run.all().contains("migration_tool"), "{}", run.all());
    let doc = t.run(&["status", "dev", "--json"]).code(5).json();
    assert_eq!(doc["error"]["code"], "inconsistent-history", "{doc}");

    let run = t.run(&["migrate", "dev", "--yes"]);
    run.code(1);
    assert!(run.all().contains("_prisma_migrations"), "{}", run.all());
    assert_eq!(t.tables(), before, "migrate changed the database");

    let doc = t.run(&["health", "dev", "--json"]).code(5).json();
    let check = health_check(&doc, "tracking_table");
    assert_eq!(check["status"], "failed", "{doc}");
    assert!(
        check["detail"].as_str().unwrap_or("").contains("prisma"),
        "{doc}"
    );

    if t.engine == Engine::Postgres {
        // drizzle keeps its table in its own schema; it is found there too.
        t.sql("DROP TABLE _prisma_migrations");
        t.sql(
            "CREATE SCHEMA drizzle; CREATE TABLE drizzle.__drizzle_migrations \
             (id SERIAL PRIMARY KEY, hash text NOT NULL, created_at bigint)",
        );
        let run = t.run(&["status", "dev"]);
        run.code(5);
        assert!(
            run.all().contains("drizzle") && run.all().contains("__drizzle_migrations"),
            "{}",
            run.all()
        );
    }
});

engine_test!(
    a_leftover_empty_tracking_table_is_named_not_baselined,
    |t| {
        // `init` once chose golang-migrate for this sqlx project, and its failed first deploy left
        // golang-migrate's empty table behind; the project is now configured as sqlx.
        project(t, "sqlx", "migrations", "sqlx/basic");
        t.sql("CREATE TABLE schema_migrations (version bigint not null primary key, dirty boolean not null)");
        let run = t.run(&["migrate", "dev", "--yes"]);
        run.code(1);
        let all = run.all();
        assert!(!all.contains("baseline it"), "{all}");
        for needle in [
            "golang-migrate",
            "schema_migrations",
            "no rows",
            "DROP TABLE",
        ] {
            assert!(all.contains(needle), "{needle}:\n{all}");
        }
        t.sql("DROP TABLE schema_migrations");
        let doc = t.run(&["migrate", "dev", "--yes", "--json"]).code(0).json();
        assert_eq!(doc["result"]["migrations_applied"], 7, "{doc}");
        t.run(&["status", "dev"]).code(0);
    }
);

// init: sqlx or golang-migrate ---------------------------------------------------------------

/// Runs `dbdeploy init ARGS` in `dir`.
fn init_in(dir: &Path, args: &[&str]) -> Run {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_dbdeploy"));
    cmd.arg("-C")
        .arg(dir)
        .arg("init")
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("DATABASE_URL")
        .stdin(std::process::Stdio::null());
    Run::from(cmd.output().expect("run dbdeploy"))
}

/// The tool `init` writes for a project of `fixture` copied to `migrations/`, plus `files`;
/// `None` when it asks.
fn init_tool(fixture: &str, files: &[(&str, &str)]) -> Option<String> {
    let project = tempfile::tempdir().expect("tempdir");
    copy_dir(
        &fixtures().join(fixture),
        &project.path().join("migrations"),
    );
    for (f, text) in files {
        write(project.path(), f, text);
    }
    let run = init_in(project.path(), &[]);
    if run.code == 2 {
        assert!(run.stderr.contains("--tool"), "{}", run.stderr);
        assert!(!project.path().join("dbdeploy.toml").exists());
        return None;
    }
    run.code(0);
    let text = std::fs::read_to_string(project.path().join("dbdeploy.toml")).expect("config");
    let tool = text
        .lines()
        .find_map(|l| l.strip_prefix("migration_tool = "))
        .expect("migration_tool");
    Some(tool.trim_matches('"').to_owned())
}

const CARGO_SQLX: &str = "[package]\nname = \"app\"\nversion = \"0.1.0\"\n\n[dependencies]\nsqlx = { version = \"0.8\", features = [\"postgres\"] }\n";
const GO_MIGRATE: &str =
    "module example.com/app\n\ngo 1.22\n\nrequire github.com/golang-migrate/migrate/v4 v4.17.0\n";

#[test]
fn init_tells_sqlx_from_golang_migrate() {
    let sqlx = Some("sqlx".to_owned());
    let golang = Some("golang-migrate".to_owned());
    // The project: plain `<v>_<d>.sql` files and one `.up.sql`/`.down.sql` pair, which
    // only sqlx reads, with sqlx in Cargo.toml; and without it.
    assert_eq!(init_tool("sqlx/basic", &[("Cargo.toml", CARGO_SQLX)]), sqlx);
    assert_eq!(init_tool("sqlx/basic", &[]), sqlx);
    // Up/down pairs only: both tools read them, so the build file decides, or init asks.
    assert_eq!(
        init_tool("sqlx/reversible", &[("Cargo.toml", CARGO_SQLX)]),
        sqlx
    );
    assert_eq!(
        init_tool("golang-migrate/basic", &[("go.mod", GO_MIGRATE)]),
        golang
    );
    assert_eq!(init_tool("golang-migrate/basic", &[]), None);
    assert_eq!(init_tool("sqlx/reversible", &[]), None);
    // A Cargo.toml or go.mod that does not depend on the tool is no evidence.
    let no_sqlx = "[package]\nname = \"sqlx-demo\"\nversion = \"0.1.0\"\n# uses sqlx later\n";
    assert_eq!(
        init_tool("golang-migrate/basic", &[("Cargo.toml", no_sqlx)]),
        None
    );
    assert_eq!(
        init_tool(
            "golang-migrate/basic",
            &[("go.mod", "module example.com/app\n\ngo 1.22\n")]
        ),
        None
    );
    // Both build files: init asks.
    assert_eq!(
        init_tool(
            "golang-migrate/basic",
            &[("go.mod", GO_MIGRATE), ("Cargo.toml", CARGO_SQLX)]
        ),
        None
    );
}

engine_test!(init_on_the_sqlx_project_deploys_every_migration, |t| {
    std::fs::remove_file(t.path().join("dbdeploy.toml")).expect("rm config");
    copy_dir(&fixtures().join("sqlx/basic"), &t.path().join("migrations"));
    write(t.path(), "Cargo.toml", CARGO_SQLX);
    let run = init_in(t.path(), &[]);
    run.code(0);
    assert!(run.all().contains("sqlx in Cargo.toml"), "{}", run.all());
    // Point dev at the test database, whatever init chose for it.
    let text = std::fs::read_to_string(t.path().join("dbdeploy.toml")).expect("config");
    let text = text.replace(
        "url = \"sqlite://.dbdeploy/dev.db\"",
        "url_env = \"DATABASE_URL\"",
    );
    std::fs::write(t.path().join("dbdeploy.toml"), text).expect("config");
    let doc = t.run(&["migrate", "dev", "--yes", "--json"]).code(0).json();
    assert_eq!(doc["result"]["migrations_applied"], 7, "{doc}");
    assert_eq!(
        t.sql("SELECT COUNT(*) FROM _sqlx_migrations WHERE success"),
        ["7"]
    );
});

// Flyway baseline migrations -----------------------------------------------------------------

const FLYWAY_DIR: &str = "db/migration";

/// Deploys the fixture's V1 and V2 alone (the history of a database from before the
/// baseline migrations and V3 were written), then puts the other files back.
fn deploy_v1_v2(t: &TestContext) {
    let dir = t.path().join(FLYWAY_DIR);
    let later = [
        "B1__old_baseline.sql",
        "B2__baseline.sql",
        "V3__add_title.sql",
    ];
    let texts: Vec<String> = later
        .iter()
        .map(|f| std::fs::read_to_string(dir.join(f)).expect("read"))
        .collect();
    for f in later {
        std::fs::remove_file(dir.join(f)).expect("rm");
    }
    t.run(&["migrate", "dev", "--yes"]).code(0);
    for (f, text) in later.iter().zip(texts) {
        std::fs::write(dir.join(f), text).expect("write");
    }
}

/// `rank|version|description|type|script|checksum|ok-or-failed` per row of the history table.
fn flyway_rows(t: &TestContext) -> Vec<String> {
    t.sql(
        "SELECT installed_rank, COALESCE(version, '-'), description, type, script, \
         COALESCE(checksum, 0), CASE WHEN success THEN 'ok' ELSE 'failed' END \
         FROM flyway_schema_history ORDER BY installed_rank",
    )
}

/// The rows Flyway writes for `migrations-fixtures/flyway/baseline` on an empty database;
/// checksums by Python's `zlib.crc32` over the lines without terminators, signed.
const BASELINE_ROWS: [&str; 2] = [
    "1|2|baseline|SQL_BASELINE|B2__baseline.sql|178726463|ok",
    "2|3|add title|SQL|V3__add_title.sql|699134673|ok",
];

engine_test!(
    flyway_baseline_migration_replaces_older_versions_on_an_empty_database,
    |t| {
        project(t, "flyway", FLYWAY_DIR, "flyway/baseline");
        let doc = t.run(&["status", "dev", "--json"]).code(4).json();
        assert_eq!(names(&doc, "pending"), ["B2", "3"], "{doc}");
        t.run(&["migrate", "dev", "--yes"]).code(0);
        assert_eq!(flyway_rows(t), BASELINE_ROWS);
        // The baseline ran, not V1/V2 nor the older baseline B1.
        assert_eq!(t.sql("SELECT name FROM users"), ["from baseline"]);
        assert!(!t.tables().contains(&"old_baseline_ran".to_owned()));
        let doc = t.run(&["status", "dev", "--json"]).code(0).json();
        assert_eq!(names(&doc, "applied"), ["1", "2", "B2", "3"], "{doc}");
        assert!(names(&doc, "missing").is_empty(), "{doc}");
        t.run(&["migrate", "dev", "--yes"]).code(0);
        assert_eq!(flyway_rows(t).len(), 2);
    }
);

engine_test!(
    flyway_baseline_migrations_are_ignored_once_the_database_has_history,
    |t| {
        project(t, "flyway", FLYWAY_DIR, "flyway/baseline");
        deploy_v1_v2(t);
        let doc = t.run(&["status", "dev", "--json"]).code(4).json();
        assert_eq!(names(&doc, "pending"), ["3"], "{doc}");
        t.run(&["migrate", "dev", "--yes"]).code(0);
        let rows = flyway_rows(t);
        let kinds: Vec<&str> = rows
            .iter()
            .map(|r| r.split('|').nth(3).unwrap_or(""))
            .collect();
        assert_eq!(kinds, ["SQL", "SQL", "SQL"], "{rows:?}");
        assert!(t.sql("SELECT name FROM users").is_empty());
        t.run(&["status", "dev"]).code(0);
    }
);

engine_test!(history_with_a_flyway_baseline_row_is_understood, |t| {
    // The schema B2 makes, and the history Flyway leaves after applying it; V1 and V2 are
    // then deleted from the folder, as teams do once a baseline migration replaces them.
    project(t, "flyway", FLYWAY_DIR, "flyway/baseline");
    let dir = t.path().join(FLYWAY_DIR);
    deploy_v1_v2(t);
    let yes = if t.engine == Engine::Postgres {
        "true"
    } else {
        "1"
    };
    t.sql(&format!(
        "DELETE FROM flyway_schema_history; \
         INSERT INTO flyway_schema_history (installed_rank, version, description, type, script, \
         checksum, installed_by, execution_time, success) VALUES \
         (1, '2', 'baseline', 'SQL_BASELINE', 'B2__baseline.sql', 178726463, 'flyway', 12, {yes})"
    ));
    for f in ["V1__create_users.sql", "V2__create_posts.sql"] {
        std::fs::remove_file(dir.join(f)).expect("rm");
    }
    let doc = t.run(&["status", "dev", "--json"]).code(4).json();
    assert_eq!(names(&doc, "pending"), ["3"], "{doc}");
    assert!(names(&doc, "missing").is_empty(), "{doc}");
    // Flyway does not validate the checksum of the baseline it applied; neither does dbdeploy.
    std::fs::write(
        dir.join("B2__baseline.sql"),
        format!(
            "{}-- regenerated\n",
            std::fs::read_to_string(dir.join("B2__baseline.sql")).expect("read")
        ),
    )
    .expect("write");
    t.run(&["migrate", "dev", "--yes"]).code(0);
    assert_eq!(flyway_rows(t), BASELINE_ROWS);
    t.run(&["status", "dev"]).code(0);

    // `flyway baseline` writes a BASELINE row: versions at or below it count as applied, and
    // baseline migrations are ignored once it is there.
    for f in ["V1__create_users.sql", "V2__create_posts.sql"] {
        std::fs::copy(fixtures().join("flyway/baseline").join(f), dir.join(f)).expect("copy");
    }
    t.sql(&format!(
        "DELETE FROM flyway_schema_history; \
         INSERT INTO flyway_schema_history (installed_rank, version, description, type, script, \
         checksum, installed_by, execution_time, success) VALUES \
         (1, '2', '<< Flyway Baseline >>', 'BASELINE', '<< Flyway Baseline >>', NULL, 'flyway', 0, {yes})"
    ));
    let doc = t.run(&["status", "dev", "--json"]).code(4).json();
    assert_eq!(names(&doc, "pending"), ["3"], "{doc}");
    assert_eq!(names(&doc, "applied"), ["1", "2"], "{doc}");
});
