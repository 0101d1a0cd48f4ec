//! Plain SQL migrations on every engine, through the CLI: dbdeploy's own tracking table,
//! failures that block, CRLF checkouts, and PostgreSQL's `CONCURRENTLY`.

use crate::common::{Engine, TestContext};
use crate::engine_test;
use crate::formats_support::{applied_names, configure, count, write};

/// `name|checksum|ok-or-failed` per row of `_dbdeploy_migrations`.
fn sql_rows(t: &TestContext) -> Vec<String> {
    t.sql(
        "SELECT name, checksum, CASE WHEN success THEN 'ok' ELSE 'failed' END \
         FROM _dbdeploy_migrations ORDER BY name",
    )
}

/// `sha256sum` of each file of `migrations-fixtures/sql/basic`.
const SQL_BASIC: [&str; 5] = [
    "001_create_users.sql|5b64787dcaf58c2ae8b0ae7071505651c3b7a11d6ca9060ca8937e0eafd6520b|ok",
    "002 add posts.sql|322194c45b476542a15c611afc7c757bbb31d6f4e84f36e4bb3e756888b9661f|ok",
    "003_empty.sql|e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855|ok",
    "004_comments_only.sql|24c97b323708778415e9c02b4966197f56369db6f4b50c72ca6c988b1e4c5737|ok",
    "005_own_transaction.sql|24d1bc85af599cf00d68f148ba51c159c144a4058d70ad3c78296605c91ce646|ok",
];

engine_test!(sql_deploy_tracks_files_in_dbdeploys_table, |t| {
    configure(t, "sql", "migrations", "sql/basic");
    let run = t.run(&["migrate", "dev", "--json"]);
    run.code(0);
    assert_eq!(
        applied_names(&run),
        [
            "001_create_users.sql",
            "002 add posts.sql",
            "003_empty.sql",
            "004_comments_only.sql",
            "005_own_transaction.sql",
        ]
    );
    assert_eq!(sql_rows(t), SQL_BASIC);
    assert_eq!(count(t, "users"), "2");
    let again = t.run(&["migrate", "dev", "--json"]);
    again.code(0);
    assert_eq!(again.json()["result"]["migrations_applied"], 0);
    assert_eq!(sql_rows(t), SQL_BASIC);
    t.run(&["status", "dev"]).code(0);

    write(
        t,
        "migrations/002 add posts.sql",
        "CREATE TABLE posts (id INT);\n",
    );
    let run = t.run(&["migrate", "dev"]);
    run.code(1);
    assert!(
        run.stderr
            .contains("applied migration 002 add posts.sql was edited"),
        "{}",
        run.stderr
    );
});

engine_test!(sql_failure_is_recorded_and_blocks, |t| {
    configure(t, "sql", "migrations", "sql/fails-halfway");
    t.run(&["migrate", "dev"]).code(1);
    let init = "001_init.sql|abf1aa4883eb662535e50a3a5a1f1cd37b6b08fecd8ecca9cd437d244ec5c857|ok";
    if t.engine == Engine::MariaDb {
        assert_eq!(
            sql_rows(t),
            [
                init,
                "002_broken.sql|5e7c03464daf3db240507c3fe048361336af444850e298d1017fdfec9b8a7fbd|failed",
            ]
        );
        let error = t.sql("SELECT error FROM _dbdeploy_migrations WHERE name = '002_broken.sql'");
        assert!(error.join(" ").contains("does_not_exist"), "{error:?}");
        let status = t.run(&["status", "dev"]);
        status.code(5);
        assert!(
            status.stdout.contains("does_not_exist"),
            "{}",
            status.stdout
        );
        t.run(&["migrate", "dev"]).code(1);
        t.run(&["resolve", "dev", "--rolled-back", "002_broken.sql"])
            .code(0);
        assert_eq!(sql_rows(t), [init]);
        t.sql("DROP TABLE tags");
    } else {
        assert_eq!(sql_rows(t), [init]);
        assert!(!t.tables().contains(&"tags".to_owned()));
    }
    write(
        t,
        "migrations/002_broken.sql",
        "CREATE TABLE tags (\n    id INT PRIMARY KEY\n);\n",
    );
    t.run(&["migrate", "dev"]).code(0);
    assert_eq!(sql_rows(t).len(), 3);
});

engine_test!(sql_crlf_checkouts_of_either_kind_match, |t| {
    configure(t, "sql", "migrations", "sql/crlf");
    t.run(&["migrate", "dev"]).code(0);
    assert_eq!(
        sql_rows(t),
        [
            "001_create_users.sql|71548d475471dc6e6e0047fe398d5db1a9030db5a48d58ae6b046af90f2d9dc1|ok",
            "002_seed.sql|28aa745b312f97a1165bb5fb4fad78bcb3406972572f0a09d634f7c799a8bf08|ok",
        ]
    );
    let path = t.path().join("migrations/002_seed.sql");
    let lf = std::fs::read_to_string(&path)
        .expect("read")
        .replace("\r\n", "\n");
    std::fs::write(&path, lf).expect("write");
    t.run(&["status", "dev"]).code(0);
});

#[test]
fn sql_postgresql_concurrently_and_opt_out_run_outside_a_transaction() {
    let Some(t) = TestContext::new(Engine::Postgres, "sql_pg_special") else {
        return;
    };
    configure(&t, "sql", "migrations", "sql/postgresql-special");
    let preview = t.run(&["migrate", "dev", "--dry-run", "--json"]);
    preview.code(0);
    let doc = preview.json();
    let atomic: Vec<bool> = doc["result"]["migrations"]
        .as_array()
        .expect("migrations")
        .iter()
        .map(|m| m["atomic"].as_bool().expect("atomic"))
        .collect();
    assert_eq!(atomic, [true, false, false]);
    t.run(&["migrate", "dev"]).code(0);
    assert_eq!(sql_rows(&t).len(), 3);
    assert_eq!(
        t.sql("SELECT column_name FROM information_schema.columns WHERE table_name = 'posts' ORDER BY 1"),
        ["id", "slug", "title", "views"]
    );

    // A failure outside a transaction leaves a failed row; finished by hand, it is resolved.
    write(
        &t,
        "migrations/004_slug_index.sql",
        "CREATE INDEX CONCURRENTLY posts_slug_idx ON posts (slug);\nALTER TABLE nope ADD COLUMN x INT;\n",
    );
    t.run(&["migrate", "dev"]).code(1);
    assert_eq!(
        t.sql(
            "SELECT success, error LIKE '%relation \"nope\" does not exist%' \
             FROM _dbdeploy_migrations WHERE name = '004_slug_index.sql'"
        ),
        ["f|t"]
    );
    t.run(&["status", "dev"]).code(5);
    t.run(&["resolve", "dev", "--applied", "004_slug_index.sql"])
        .code(0);
    assert_eq!(
        t.sql("SELECT success, error IS NULL FROM _dbdeploy_migrations WHERE name = '004_slug_index.sql'"),
        ["t|t"]
    );
    t.run(&["status", "dev"]).code(0);
}
