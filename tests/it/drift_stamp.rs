//! Schema drift through the catalog stamp. A run that finds the stamp recorded with the
//! baseline passes the drift check without reading the schema, and records only the schema's
//! hash; every hand-made change must still move the stamp, so that the next deploy reads the
//! schema and refuses the drift, naming it.

use crate::common::{Engine, TestContext, health_check, run_on};

/// What `-vv` prints when the drift check took the stamp path.
const STAMP_PATH: &str = "the catalog stamp is the recorded one";

/// The last migration of the baseline; the fixture's `post_views` stays pending.
const DEPLOYED: &str = "20240102120000_extras";

/// Objects beside the tables that hand-made changes redefine: a view, and on PostgreSQL a
/// function; on SQLite a trigger.
fn extras(engine: Engine) -> &'static str {
    match engine {
        Engine::Postgres => {
            "CREATE VIEW published_posts AS SELECT id, title FROM \"Post\" WHERE published;\n\
             CREATE FUNCTION post_count() RETURNS bigint LANGUAGE sql AS 'SELECT count(*) FROM \"Post\"';\n"
        }
        _ => {
            "CREATE VIEW published_posts AS SELECT id, title FROM \"Post\" WHERE published;\n\
             CREATE TRIGGER comment_touch AFTER INSERT ON \"Comment\" BEGIN SELECT 1; END;\n"
        }
    }
}

/// Two quiet deploys: the first applies the fixture's first migrations and the extras, the
/// second finds nothing to do and must pass the drift check on the stamp alone.
fn quiet_deploys(t: &TestContext) {
    t.fixture("basic");
    let dir = t.migrations().join(DEPLOYED);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("migration.sql"), extras(t.engine)).unwrap();
    t.run(&["migrate", "staging", "--yes", "--to", DEPLOYED])
        .code(0);
    let run = t.run(&["migrate", "staging", "--yes", "--to", DEPLOYED, "-vv"]);
    run.code(0);
    assert!(run.stderr.contains(STAMP_PATH), "{}", run.all());
    assert!(run.all().contains("no pending migrations"), "{}", run.all());
}

/// Per run, oldest first: `status|schema_hash|text or NULL|schema_stamp`.
fn history(t: &TestContext) -> Vec<String> {
    t.sql(
        "SELECT status, COALESCE(schema_hash, 'NULL'), \
         CASE WHEN schema_text IS NULL THEN 'NULL' ELSE 'text' END, \
         COALESCE(schema_stamp, 'NULL') FROM _dbdeploy_history ORDER BY finished_at",
    )
}

/// The quiet deploys, then `change` by hand: the next deploy is refused with `schema-drift`
/// naming every one of `names`, and applies nothing.
fn refused_after(t: &TestContext, change: &str, names: &[&str]) {
    quiet_deploys(t);
    let rows_before = t.prisma_rows();
    let history_before = history(t);
    t.sql(change);

    let run = t.run(&["migrate", "staging", "--yes", "--json", "-vv"]);
    run.code(1);
    assert!(!run.stderr.contains(STAMP_PATH), "{}", run.stderr);
    let doc = run.json();
    assert_eq!(doc["error"]["code"], "schema-drift", "{}", run.stdout);
    let msg = doc["error"]["message"].as_str().unwrap();
    for name in names {
        assert!(msg.contains(name), "`{name}` not in: {msg}");
    }
    assert_eq!(t.prisma_rows(), rows_before, "nothing applied");
    // The refused run leaves a row without a schema: the baseline stays the recorded one.
    let history_after = history(t);
    assert_eq!(history_after[..history_before.len()], history_before[..]);
    assert_eq!(history_after.len(), history_before.len() + 1);
    assert!(
        history_after
            .last()
            .unwrap()
            .starts_with("error|NULL|NULL|NULL"),
        "{history_after:?}"
    );

    let run = t.run(&["diff", "staging"]);
    run.code(5);
    for name in names {
        assert!(
            run.stdout.contains(name),
            "`{name}` not in:\n{}",
            run.stdout
        );
    }
    // Asked again, the drift is still found: the refused run did not record it as a baseline.
    let run = t.run(&["migrate", "staging", "--yes", "--json"]);
    run.code(1);
    assert_eq!(run.json()["error"]["code"], "schema-drift");
}

/// One test per engine and hand-made change.
macro_rules! drift_case {
    ($name:ident, $engine:ident, $change:expr, $names:expr) => {
        #[test]
        fn $name() {
            run_on(Engine::$engine, stringify!($name), |t| {
                refused_after(t, $change, $names);
            });
        }
    };
}

drift_case!(
    postgres_added_column,
    Postgres,
    r#"ALTER TABLE "User" ADD COLUMN nickname VARCHAR(40)"#,
    &["User", "column nickname added"]
);
drift_case!(
    postgres_dropped_column,
    Postgres,
    r#"ALTER TABLE "Post" DROP COLUMN content"#,
    &["Post", "column content removed"]
);
drift_case!(
    postgres_column_type,
    Postgres,
    r#"ALTER TABLE "Comment" ALTER COLUMN body TYPE VARCHAR(500)"#,
    &["Comment", "column body changed"]
);
drift_case!(
    postgres_column_default,
    Postgres,
    r#"ALTER TABLE "Post" ALTER COLUMN published SET DEFAULT true"#,
    &["Post", "column published changed"]
);
drift_case!(
    postgres_column_not_null,
    Postgres,
    r#"ALTER TABLE "Post" ALTER COLUMN content SET NOT NULL"#,
    &["Post", "column content changed"]
);
drift_case!(
    postgres_renamed_column,
    Postgres,
    r#"ALTER TABLE "Comment" RENAME COLUMN body TO text"#,
    &["Comment", "column body removed", "column text added"]
);
drift_case!(
    postgres_added_index,
    Postgres,
    r#"CREATE INDEX post_title_idx ON "Post"(title)"#,
    &["Post", "index post_title_idx added"]
);
drift_case!(
    postgres_replaced_view_body,
    Postgres,
    r#"CREATE OR REPLACE VIEW published_posts AS SELECT id, title FROM "Post" WHERE published AND id > 10"#,
    &["published_posts", "definition changed"]
);
drift_case!(
    postgres_replaced_function_body,
    Postgres,
    r#"CREATE OR REPLACE FUNCTION post_count() RETURNS bigint LANGUAGE sql AS 'SELECT count(*) + 1 FROM "Post"'"#,
    &["post_count", "definition changed"]
);
drift_case!(
    postgres_added_table,
    Postgres,
    "CREATE TABLE audit (id integer)",
    &["audit", "table added"]
);
drift_case!(
    postgres_added_check_constraint,
    Postgres,
    r#"ALTER TABLE "Comment" ADD CONSTRAINT body_not_empty CHECK (length(body) > 0)"#,
    &["Comment", "constraint body_not_empty added"]
);
drift_case!(
    postgres_added_trigger,
    Postgres,
    "CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END'; \
     CREATE TRIGGER post_touch BEFORE UPDATE ON \"Post\" FOR EACH ROW EXECUTE FUNCTION touch()",
    &["trigger post_touch added", "touch()"]
);

drift_case!(
    sqlite_added_column,
    Sqlite,
    r#"ALTER TABLE "User" ADD COLUMN nickname VARCHAR(40)"#,
    &["User", "column nickname added"]
);
drift_case!(
    sqlite_dropped_column,
    Sqlite,
    r#"ALTER TABLE "Post" DROP COLUMN content"#,
    &["Post", "column content removed"]
);
drift_case!(
    sqlite_renamed_column,
    Sqlite,
    r#"ALTER TABLE "Comment" RENAME COLUMN body TO text"#,
    &["Comment", "column body removed", "column text added"]
);
drift_case!(
    sqlite_added_index,
    Sqlite,
    r#"CREATE INDEX post_title_idx ON "Post"(title)"#,
    &["Post", "index post_title_idx added"]
);
drift_case!(
    sqlite_replaced_view_body,
    Sqlite,
    r#"DROP VIEW published_posts; CREATE VIEW published_posts AS SELECT id, title FROM "Post" WHERE published AND id > 10"#,
    &["published_posts", "definition changed"]
);
drift_case!(
    sqlite_added_table,
    Sqlite,
    "CREATE TABLE audit (id integer)",
    &["audit", "table added"]
);
drift_case!(
    sqlite_dropped_trigger,
    Sqlite,
    "DROP TRIGGER comment_touch",
    &["Comment", "trigger comment_touch removed"]
);
// SQLite adds a constraint by rebuilding the table, the way Prisma's own migrations do.
drift_case!(
    sqlite_added_check_constraint_and_default,
    Sqlite,
    r#"PRAGMA foreign_keys = OFF;
       CREATE TABLE "new_Comment" (
         "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
         "body" TEXT NOT NULL DEFAULT '' CHECK (length(body) < 1000),
         "postId" INTEGER NOT NULL,
         "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
         CONSTRAINT "Comment_postId_fkey" FOREIGN KEY ("postId") REFERENCES "Post" ("id") ON DELETE CASCADE ON UPDATE CASCADE
       );
       INSERT INTO "new_Comment" SELECT * FROM "Comment";
       DROP TABLE "Comment";
       ALTER TABLE "new_Comment" RENAME TO "Comment";
       CREATE TRIGGER comment_touch AFTER INSERT ON "Comment" BEGIN SELECT 1; END;"#,
    &["Comment", "column body changed", "check"]
);

/// A no-op run records the baseline's hash and stamp without the text; the text is still
/// found by hash (by `diff`, `health` and the next drift check), and a schema that changed
/// is stored in full again.
fn history_stores_each_schema_once(t: &TestContext) {
    quiet_deploys(t);
    let h = history(t);
    assert_eq!(h.len(), 2, "{h:?}");
    let first: Vec<&str> = h[0].split('|').collect();
    let second: Vec<&str> = h[1].split('|').collect();
    assert_eq!(first[0], "success");
    assert_eq!(first[1].len(), 64, "{h:?}");
    assert_eq!(first[2], "text");
    assert!(first[3].contains("-stamp-v"), "{h:?}");
    assert_eq!(
        second,
        vec!["success", first[1], "NULL", first[3]],
        "the no-op run records hash and stamp, not the text"
    );

    let run = t.run(&["diff", "staging", "--json"]);
    run.code(0);
    let doc = run.json();
    assert_eq!(doc["result"]["drift"], false, "{}", run.stdout);
    assert_eq!(doc["result"]["recorded_fingerprint"], first[1]);
    assert_eq!(doc["result"]["live_fingerprint"], first[1]);
    let run = t.run(&["health", "staging", "--json"]);
    let doc = run.json();
    let drift = health_check(&doc, "schema_drift");
    assert_eq!(drift["status"], "passed", "{drift}");

    // A change taken as the new baseline is stored in full; the no-op after it is not.
    t.sql(&format!(
        "ALTER TABLE {} ADD COLUMN nickname VARCHAR(40)",
        t.engine.q("User")
    ));
    t.run(&[
        "migrate",
        "staging",
        "--yes",
        "--to",
        DEPLOYED,
        "--allow-drift",
    ])
    .code(0);
    let run = t.run(&["migrate", "staging", "--yes", "--to", DEPLOYED, "-vv"]);
    run.code(0);
    assert!(run.stderr.contains(STAMP_PATH), "{}", run.stderr);
    let h = history(t);
    assert_eq!(h.len(), 4, "{h:?}");
    let third: Vec<&str> = h[2].split('|').collect();
    let fourth: Vec<&str> = h[3].split('|').collect();
    assert_ne!(third[1], first[1]);
    assert_eq!(third[2], "text", "{h:?}");
    assert_eq!(fourth, vec!["success", third[1], "NULL", third[3]], "{h:?}");
    let run = t.run(&["diff", "staging", "--json"]);
    run.code(0);
    assert_eq!(run.json()["result"]["recorded_fingerprint"], third[1]);

    // A deploy that applies a migration reads the schema and stores the new text.
    t.run(&["migrate", "staging", "--yes"]).code(0);
    let h = history(t);
    let fifth: Vec<&str> = h[4].split('|').collect();
    assert_ne!(fifth[1], third[1]);
    assert_eq!(fifth[2], "text", "{h:?}");
    assert_ne!(fifth[3], third[3], "{h:?}");
    let run = t.run(&["diff", "staging"]);
    run.code(0);
    // And a change after all that is still shown against the right text.
    t.sql("CREATE TABLE audit (id integer)");
    let run = t.run(&["diff", "staging"]);
    run.code(5);
    assert!(
        run.stdout.contains("+table audit") || run.stdout.contains("+table public.audit"),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("nickname"), "{}", run.stdout);
}

#[test]
fn postgres_history_stores_each_schema_once() {
    run_on(
        Engine::Postgres,
        "stamp_history",
        history_stores_each_schema_once,
    );
}

#[test]
fn sqlite_history_stores_each_schema_once() {
    run_on(
        Engine::Sqlite,
        "stamp_history",
        history_stores_each_schema_once,
    );
}

/// A history table written by the first dbdeploy version (no backup, rollback or schema
/// columns) gets the later columns on the next run, keeps its rows, and records a stamp.
#[test]
fn an_old_history_table_gains_the_later_columns() {
    run_on(Engine::Sqlite, "old_history", |t: &TestContext| {
        t.fixture("basic");
        t.sql(
            "CREATE TABLE _dbdeploy_history (run_id VARCHAR(36) PRIMARY KEY NOT NULL, \
             environment VARCHAR(255) NOT NULL, operation VARCHAR(64) NOT NULL, \
             status VARCHAR(32) NOT NULL, migrations_applied INTEGER NOT NULL, \
             migrations TEXT NOT NULL, started_at DATETIME NOT NULL, finished_at DATETIME NOT NULL, \
             duration_ms BIGINT NOT NULL, tool_version VARCHAR(64) NOT NULL, \
             username VARCHAR(255) NOT NULL, hostname VARCHAR(255) NOT NULL, error TEXT)",
        );
        t.sql(
            "INSERT INTO _dbdeploy_history VALUES ('old-run', 'staging', 'create-backup', \
             'success', 0, '[]', '2024-01-01 00:00:00', '2024-01-01 00:00:00', 1, '0.0.1', 'u', 'h', NULL)",
        );
        t.run(&["migrate", "staging", "--yes"]).code(0);
        let columns = t.sql("SELECT name FROM pragma_table_info('_dbdeploy_history') ORDER BY cid");
        for later in [
            "backup_id",
            "rollback_status",
            "schema_hash",
            "schema_text",
            "schema_stamp",
            "fleet_run_id",
        ] {
            assert!(columns.iter().any(|c| c == later), "{later}: {columns:?}");
        }
        // The old row's text timestamp and the new row's epoch milliseconds do not sort
        // together, so by content: the old row as it was, and the new one with its schema.
        let rows = history(t);
        assert_eq!(rows.len(), 2, "{rows:?}");
        assert!(
            rows.iter().any(|r| r == "success|NULL|NULL|NULL"),
            "{rows:?}"
        );
        assert!(
            rows.iter()
                .any(|r| r.starts_with("success|") && r.contains("|text|sqlite-stamp-v")),
            "{rows:?}"
        );
    });
}
