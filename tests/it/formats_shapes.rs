//! Real-world shapes in every format: `CONCURRENTLY`, CRLF files and shared versions.

use crate::common::{Engine, TestContext, has_table, migration_names};
use crate::engine_test;
use crate::formats_support::{assert_contains, project};

/// `CREATE INDEX CONCURRENTLY` runs outside dbdeploy's transaction in each format: sqlx's
/// `-- no-transaction`, dbmate's `transaction:false`, and detected for golang-migrate.
#[test]
fn postgres_concurrently_index_deploys_in_every_format() {
    for (tool, dir, index_version) in [
        ("sqlx", "migrations", "2"),
        ("dbmate", "db/migrations", "20240102000000"),
        ("golang-migrate", "migrations", "2"),
    ] {
        let Some(t) = TestContext::new(Engine::Postgres, &format!("pg_concurrently_{tool}")) else {
            return;
        };
        project(&t, tool, dir, "postgresql-concurrently");
        let preview = t.run(&["migrate", "dev", "--dry-run", "--json"]);
        preview.code(0);
        let doc = preview.json();
        assert_eq!(
            doc["result"]["migrations"][0]["atomic"], true,
            "{tool}: {doc}"
        );
        assert_eq!(
            doc["result"]["migrations"][1]["atomic"], false,
            "{tool}: {doc}"
        );

        let run = t.run(&["migrate", "dev", "--json"]);
        run.code(0);
        let doc = run.json();
        assert_eq!(migration_names(&doc)[1], index_version, "{tool}: {doc}");
        assert_eq!(
            t.sql(
                "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid \
                 WHERE c.relname = 'posts_title_idx'"
            ),
            ["t"],
            "{tool}"
        );
        t.run(&["status", "dev"]).code(0);
    }
}

engine_test!(crlf_files_deploy_in_every_format, |t: &TestContext| {
    for (tool, dir) in [
        ("sqlx", "migrations"),
        ("dbmate", "db/migrations"),
        ("golang-migrate", "migrations"),
    ] {
        let files = project(t, tool, dir, "crlf");
        let any = std::fs::read_dir(&files).unwrap().next().unwrap().unwrap();
        let text = std::fs::read_to_string(any.path()).unwrap();
        assert!(
            text.contains("\r\n"),
            "{tool}: the fixture lost its CRLF line endings"
        );
        let run = t.run(&["migrate", "dev"]);
        run.code(0);
        // dbmate's `-- migrate:down\r` is still a marker: the table was not dropped again.
        assert!(has_table(t, "notes"), "{tool}: {}", run.all());
        t.run(&["status", "dev"]).code(0);
        for table in [
            "notes",
            "_sqlx_migrations",
            "schema_migrations",
            "_dbdeploy_history",
        ] {
            t.sql(&format!("DROP TABLE IF EXISTS {table}"));
        }
    }
});

/// Two files with the same version: every one of these tools refuses them, so does dbdeploy,
/// before touching the database.
#[test]
fn shared_versions_are_refused_before_anything_runs() {
    for (tool, dir, files) in [
        (
            "sqlx",
            "migrations",
            ["20240101000000_a.sql", "20240101000000_b.sql"],
        ),
        (
            "dbmate",
            "db/migrations",
            ["20240101000000_a.sql", "20240101000000_b.sql"],
        ),
        ("golang-migrate", "migrations", ["1_a.up.sql", "1_b.up.sql"]),
    ] {
        let Some(t) = TestContext::new(Engine::Sqlite, &format!("shared_version_{tool}")) else {
            return;
        };
        project(&t, tool, dir, "duplicate-version");
        let run = t.run(&["migrate", "dev", "--json"]);
        run.code(2);
        assert_eq!(run.json()["error"]["code"], "invalid-migrations", "{tool}");
        for file in files {
            assert_contains(&run, file);
        }
        assert!(t.tables().is_empty(), "{tool}: {:?}", t.tables());
    }
}
