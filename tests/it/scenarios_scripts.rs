//! Scripts that need care on one engine: SQLite table redefinitions, PostgreSQL scripts that
//! cannot run in dbdeploy's transaction or bring their own, and CRLF checksums.

use crate::common::{Engine, TestContext, checksum, migration_names, sha256_file};

#[test]
fn sqlite_table_redefinition_keeps_every_row() {
    let Some(t) = TestContext::new(Engine::Sqlite, "sqlite_redefine") else {
        return;
    };
    t.fixture("redefine");
    t.run(&["migrate", "dev", "--to", "20240102000000_comments"])
        .code(0);
    t.sql(
        "INSERT INTO \"User\" (id, email) VALUES (1, 'ada@example.com');\
         INSERT INTO \"Post\" (id, title, authorId) VALUES (1, 'first', 1), (2, 'second', 1);\
         INSERT INTO \"Comment\" (body, postId) VALUES ('a', 1), ('b', 1), ('c', 2);",
    );

    let run = t.run(&["migrate", "dev", "--json"]);
    run.code(0);
    let doc = run.json();
    assert_eq!(
        migration_names(&doc),
        ["20240103000000_post_title_optional"]
    );
    assert_eq!(doc["result"]["migrations"][0]["atomic"], true, "{doc}");

    // The redefinition happened: `title` is nullable now.
    assert_eq!(
        t.sql("SELECT \"notnull\" FROM pragma_table_info('Post') WHERE name = 'title'"),
        ["0"]
    );
    // DROP TABLE "Post" did not cascade to the comments, and no row was lost.
    assert_eq!(
        t.sql("SELECT id, title, authorId FROM \"Post\" ORDER BY id"),
        ["1|first|1", "2|second|1"]
    );
    assert_eq!(t.sql("SELECT COUNT(*) FROM \"Comment\""), ["3"]);
    assert_eq!(
        t.sql(
            "SELECT c.body, p.title FROM \"Comment\" c JOIN \"Post\" p ON p.id = c.postId ORDER BY c.body"
        ),
        ["a|first", "b|first", "c|second"]
    );
    assert_eq!(t.sql("SELECT COUNT(*) FROM \"User\""), ["1"]);
    assert!(
        t.sql("PRAGMA foreign_key_check").is_empty(),
        "{:?}",
        t.sql("PRAGMA foreign_key_check")
    );
    // The comments still reference the new table under its final name.
    assert!(
        t.sql("SELECT \"table\" FROM pragma_foreign_key_list('Comment')")
            .iter()
            .all(|x| x == "Post")
    );
    let rows = t.prisma_rows();
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert!(
        rows.iter().all(|r| r.ends_with("|finished|-|1|-")),
        "{rows:?}"
    );
}

#[test]
fn postgres_create_index_concurrently_deploys_outside_a_transaction() {
    let Some(t) = TestContext::new(Engine::Postgres, "pg_concurrently") else {
        return;
    };
    t.fixture("concurrently");
    let index_migration = "20240102000000_post_title_index";

    let preview = t.run(&["migrate", "dev", "--dry-run", "--json"]);
    preview.code(0);
    let doc = preview.json();
    assert_eq!(
        migration_names(&doc),
        ["20240101000000_init", index_migration]
    );
    assert_eq!(doc["result"]["migrations"][0]["atomic"], true, "{doc}");
    assert_eq!(doc["result"]["migrations"][1]["atomic"], false, "{doc}");
    assert!(t.tables().is_empty(), "dry run created {:?}", t.tables());

    let run = t.run(&["migrate", "dev", "--json"]);
    run.code(0);
    let doc = run.json();
    assert_eq!(doc["result"]["migrations_applied"], 2);
    assert_eq!(doc["result"]["migrations"][1]["atomic"], false, "{doc}");

    assert_eq!(
        t.sql(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'Post' AND indexname = 'Post_title_idx'"
        ),
        ["Post_title_idx"]
    );
    assert_eq!(
        t.sql(
            "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid \
             WHERE c.relname = 'Post_title_idx'"
        ),
        ["t"]
    );
    assert_eq!(
        t.prisma_rows(),
        [
            format!(
                "20240101000000_init|{}|finished|-|1|-",
                checksum(&t, "20240101000000_init")
            ),
            format!(
                "{index_migration}|{}|finished|-|1|-",
                checksum(&t, index_migration)
            ),
        ]
    );
    t.run(&["status", "dev"]).code(0);
}

#[test]
fn postgres_migration_with_its_own_transaction_deploys() {
    let Some(t) = TestContext::new(Engine::Postgres, "pg_own_tx") else {
        return;
    };
    t.fixture("own-transaction");
    let run = t.run(&["migrate", "dev", "--json"]);
    run.code(0);
    assert_eq!(
        migration_names(&run.json()),
        ["20240101000000_init", "20240102000000_post_views"]
    );
    assert_eq!(
        t.sql(
            "SELECT data_type, column_default FROM information_schema.columns \
             WHERE table_schema = 'public' AND table_name = 'Post' AND column_name = 'views'"
        ),
        ["integer|0"]
    );
    assert_eq!(
        t.sql("SELECT indexname FROM pg_indexes WHERE indexname = 'Post_views_idx'"),
        ["Post_views_idx"]
    );
    let rows = t.prisma_rows();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(
        rows[1].starts_with("20240102000000_post_views|") && rows[1].ends_with("|finished|-|1|-"),
        "{rows:?}"
    );
    t.run(&["status", "dev"]).code(0);
}

#[test]
fn crlf_checksum_still_matches_after_line_endings_change() {
    let Some(t) = TestContext::new(Engine::Sqlite, "crlf") else {
        return;
    };
    t.fixture("crlf");
    let file = t.migrations().join("20240101000000_init/migration.sql");
    let crlf = std::fs::read_to_string(&file).unwrap();
    assert!(
        crlf.contains("\r\n"),
        "the fixture lost its CRLF line endings"
    );
    let crlf_sum = sha256_file(&file);

    t.run(&["migrate", "dev"]).code(0);
    assert_eq!(
        t.prisma_rows(),
        [format!("20240101000000_init|{crlf_sum}|finished|-|1|-")]
    );

    std::fs::write(&file, crlf.replace("\r\n", "\n")).unwrap();
    assert_ne!(sha256_file(&file), crlf_sum);

    let status = t.run(&["status", "dev", "--json"]);
    status.code(0);
    let doc = status.json();
    assert_eq!(doc["result"]["modified"], serde_json::json!([]), "{doc}");
    let run = t.run(&["migrate", "dev", "--json"]);
    run.code(0);
    assert_eq!(run.json()["result"]["migrations_applied"], 0);
    assert_eq!(t.prisma_rows().len(), 1);
}
