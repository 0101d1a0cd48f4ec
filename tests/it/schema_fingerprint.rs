//! Schema fingerprints on real servers: stable for an unchanged schema, blind to data and to
//! dbdeploy's own history table, and naming the table and fact of every hand-made change.
//!
//! Snapshots are taken through the library (`dbdeploy::schema::snapshot`) on a read-only
//! connection; schema changes are made with the engines' own clients.

use std::process::Command;
use std::time::{Duration, Instant};

use dbdeploy::engine::mysql::MySql;
use dbdeploy::engine::postgres::Postgres;
use dbdeploy::engine::sqlite::Sqlite;
use dbdeploy::engine::{ConnectOptions, Database, Target};
use dbdeploy::schema::{self, Snapshot};

use crate::common::{Engine, TestContext};
use crate::engine_test;

async fn take<D: Database>(target: &Target) -> Snapshot {
    let opts = ConnectOptions {
        wait: Duration::from_secs(5),
        read_only: true,
        lock_wait: Duration::from_secs(5),
    };
    let mut db = D::connect(target, opts).await.expect("connect");
    let snap = schema::snapshot(&mut db).await.expect("snapshot");
    db.close().await;
    snap
}

/// The live schema of the test database.
fn snapshot(t: &TestContext) -> Snapshot {
    let target = Target::parse(&t.url, t.path()).expect("test URL");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        match target {
            Target::Postgres { .. } => take::<Postgres>(&target).await,
            Target::MySql { .. } => take::<MySql>(&target).await,
            Target::Sqlite { .. } => take::<Sqlite>(&target).await,
        }
    })
}

/// A table's name as the snapshot shows it: PostgreSQL qualifies it with its schema.
fn table(t: &TestContext, name: &str) -> String {
    match t.engine {
        Engine::Postgres => format!("public.{name}"),
        _ => name.to_owned(),
    }
}

fn change_list(old: &Snapshot, new: &Snapshot) -> Vec<String> {
    schema::changes(&old.text, &new.text)
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[track_caller]
fn assert_same(old: &Snapshot, new: &Snapshot) {
    assert!(
        old == new,
        "the fingerprint changed:\n{}",
        schema::diff(&old.text, &new.text, "before", "after")
    );
}

engine_test!(unchanged_schema_has_a_stable_fingerprint, |t| {
    t.fixture("basic");
    t.run(&["migrate", "dev"]).code(0);
    let first = snapshot(t);
    let second = snapshot(t);
    assert_eq!(first.text, second.text);
    assert_eq!(first.hash, second.hash);
    assert_eq!(first.hash.len(), 64, "{}", first.hash);
    assert!(first.hash.chars().all(|c| c.is_ascii_hexdigit()));

    let text = &first.text;
    // The application's tables with their facts, and the tool's tracking table's structure.
    for line in [
        format!("table {}\n", table(t, "User")),
        format!("table {}\n", table(t, "Comment")),
        format!("table {}\n", table(t, "_prisma_migrations")),
        "  column email ".to_owned(),
        "  index Post_views_idx ".to_owned(),
        "  index User_email_key unique ".to_owned(),
    ] {
        assert!(text.contains(&line), "no `{line}` in:\n{text}");
    }
    assert!(
        text.contains("Post_authorId_fkey") && text.to_lowercase().contains("foreign"),
        "foreign key missing:\n{text}"
    );
    // Columns keep their table order.
    let user = text
        .split(&format!("table {}\n", table(t, "User")))
        .nth(1)
        .expect("User table");
    let positions: Vec<usize> = ["id", "email", "name", "createdAt"]
        .iter()
        .map(|c| user.find(&format!("  column {c} ")).expect("column"))
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{user}");

    // dbdeploy's own table exists, but is not part of the schema it fingerprints.
    assert!(t.tables().iter().any(|x| x == "_dbdeploy_history"));
    assert!(!text.contains("_dbdeploy_history"), "{text}");
    // Never rows: the migration names are recorded in rows only.
    assert!(!text.contains("20240101000000_init"), "{text}");
});

engine_test!(
    rows_and_dbdeploy_history_do_not_change_the_fingerprint,
    |t| {
        t.fixture("basic");
        t.run(&["migrate", "dev"]).code(0);
        let before = snapshot(t);

        let (user, post) = (t.engine.q("User"), t.engine.q("Post"));
        let author = t.engine.q("authorId");
        t.sql(&format!(
            "INSERT INTO {user} (email) VALUES ('ada@example.com'), ('bob@example.com');\
         INSERT INTO {post} (title, {author}) VALUES ('first', 1);\
         DELETE FROM {post};"
        ));
        if t.engine == Engine::Postgres {
            t.sql("ANALYZE");
        }
        // Another run writes another history row; a change to the history table's own shape
        // (a newer dbdeploy adding a column) is not drift of the application's schema either.
        t.run(&["migrate", "dev"]).code(0);
        t.sql(&format!(
            "ALTER TABLE {} ADD COLUMN extra_note TEXT",
            t.engine.q("_dbdeploy_history")
        ));
        let after = snapshot(t);
        assert_same(&before, &after);
    }
);

engine_test!(hand_made_changes_are_named_by_table_and_fact, |t| {
    t.fixture("basic");
    t.run(&["migrate", "dev"]).code(0);
    let base = snapshot(t);
    let user = t.engine.q("User");

    t.sql(&format!("ALTER TABLE {user} ADD COLUMN nickname TEXT"));
    let with_column = snapshot(t);
    assert_ne!(base.hash, with_column.hash);
    assert_eq!(
        change_list(&base, &with_column),
        [format!("{}: column nickname added", table(t, "User"))]
    );
    let diff = schema::diff(&base.text, &with_column.text, "recorded", "live");
    assert!(diff.starts_with("--- recorded\n+++ live\n"), "{diff}");
    let added: Vec<&str> = diff
        .lines()
        .filter(|l| l.starts_with('+') && !l.starts_with("+++"))
        .collect();
    assert_eq!(added.len(), 1, "{diff}");
    assert!(added[0].starts_with("+  column nickname "), "{diff}");
    assert_eq!(
        schema::summary(&base.text, &with_column.text, 5),
        format!("{}: column nickname added", table(t, "User"))
    );

    t.sql(&format!(
        "CREATE INDEX user_nickname_idx ON {user} ({})",
        t.engine.q("nickname")
    ));
    let with_index = snapshot(t);
    assert_eq!(
        change_list(&with_column, &with_index),
        [format!(
            "{}: index user_nickname_idx added",
            table(t, "User")
        )]
    );

    let drop_index = match t.engine {
        Engine::MariaDb => "DROP INDEX `Post_views_idx` ON `Post`",
        _ => "DROP INDEX \"Post_views_idx\"",
    };
    t.sql(drop_index);
    let without_index = snapshot(t);
    assert_eq!(
        change_list(&with_index, &without_index),
        [format!(
            "{}: index Post_views_idx removed",
            table(t, "Post")
        )]
    );
});

engine_test!(a_migration_shows_as_exactly_its_changes, |t| {
    t.fixture("basic");
    t.run(&["migrate", "dev", "--to", "20240102000000_comments"])
        .code(0);
    let before = snapshot(t);
    t.run(&["migrate", "dev"]).code(0);
    let after = snapshot(t);
    // 20240103000000_post_views: one column and one index on Post, nothing else; the new
    // `_prisma_migrations` row is data.
    assert_eq!(
        change_list(&before, &after),
        [
            format!("{}: column views added", table(t, "Post")),
            format!("{}: index Post_views_idx added", table(t, "Post")),
        ]
    );
});

engine_test!(creation_order_does_not_matter, |t| {
    let Some(other) = TestContext::new(t.engine, "creation_order_b") else {
        return;
    };
    let (a, b) = (t.engine.q("a"), t.engine.q("b"));
    let int_key = match t.engine {
        Engine::Sqlite => "INTEGER PRIMARY KEY",
        _ => "INTEGER NOT NULL PRIMARY KEY",
    };
    let table_a = format!("CREATE TABLE {a} (id {int_key}, x INTEGER, y INTEGER)");
    let table_b =
        format!("CREATE TABLE {b} (id {int_key}, a_id INTEGER REFERENCES {a} (id), z TEXT)");
    let index_1 = format!("CREATE INDEX a_x ON {a} (x)");
    let index_2 = format!("CREATE UNIQUE INDEX a_y ON {a} (y)");
    t.sql(
        &[&table_a, &table_b, &index_1, &index_2]
            .map(|s| s.as_str())
            .join(";"),
    );
    other.sql(
        &[&table_a, &index_2, &index_1, &table_b]
            .map(|s| s.as_str())
            .join(";"),
    );
    let (one, two) = (snapshot(t), snapshot(&other));
    assert_same(&one, &two);
    assert!(one.text.contains("  index a_x "), "{}", one.text);
});

#[test]
fn postgres_reads_every_user_schema_and_leaves_out_the_system_ones() {
    let Some(t) = TestContext::new(Engine::Postgres, "pg_schemas") else {
        return;
    };
    t.sql(
        "CREATE SCHEMA drizzle;\
         CREATE TABLE drizzle.__drizzle_migrations (id SERIAL PRIMARY KEY, hash text NOT NULL);\
         CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');\
         CREATE TABLE person (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, \
           current_mood mood DEFAULT 'ok', age int CHECK (age >= 0), \
           email text COLLATE \"C\", lower_email text GENERATED ALWAYS AS (lower(email)) STORED);\
         CREATE UNIQUE INDEX person_email ON person (lower(email)) WHERE age > 17;\
         CREATE VIEW adults AS SELECT id, email FROM person WHERE age > 17;\
         CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;\
         CREATE TRIGGER person_touch BEFORE UPDATE ON person FOR EACH ROW EXECUTE FUNCTION touch();",
    );
    let snap = snapshot(&t);
    let text = &snap.text;
    for line in [
        "schema drizzle\n",
        "schema public\n",
        "table drizzle.__drizzle_migrations\n",
        "enum public.mood\n  values 'sad', 'ok', 'happy'\n",
        "  column id bigint not null generated always as identity\n",
        "  column current_mood mood default 'ok'::mood\n",
        "  column email text collate C\n",
        "  column lower_email text generated always as (lower(email)) stored\n",
        "  constraint person_age_check CHECK (age >= 0)\n",
        "  constraint person_pkey PRIMARY KEY (id)\n",
        "  index person_email unique btree (lower(email)) WHERE (age > 17)\n",
        "  trigger person_touch BEFORE UPDATE ON person FOR EACH ROW EXECUTE FUNCTION touch()\n",
        "view public.adults\n  definition SELECT person.id, person.email FROM person WHERE person.age > 17\n",
        "function public.touch()\n",
        "  owned_by drizzle.__drizzle_migrations.id\n",
        "  identity public.person.id\n",
    ] {
        assert!(text.contains(line), "no `{line}` in:\n{text}");
    }
    for absent in ["pg_catalog", "information_schema", "pg_toast", "schema pg_"] {
        assert!(!text.contains(absent), "`{absent}` in:\n{text}");
    }
    // Identity and sequence counters move with inserts; the fingerprint does not.
    t.sql("INSERT INTO person (email, age) VALUES ('a@b.c', 30)");
    assert_same(&snap, &snapshot(&t));
}

#[test]
#[allow(
    clippy::print_stderr,
    reason = "the timing is reported, not asserted tightly"
)]
fn postgres_snapshot_of_300_tables_takes_a_handful_of_queries() {
    let Some(t) = TestContext::new(Engine::Postgres, "pg_300_tables") else {
        return;
    };
    let mut script = String::from("CREATE TABLE t0 (id serial PRIMARY KEY, name text);");
    for i in 1..300 {
        script.push_str(&format!(
            "CREATE TABLE t{i} (id serial PRIMARY KEY, parent_id int REFERENCES t{p} (id), \
             name text NOT NULL DEFAULT '', created_at timestamptz DEFAULT now(), \
             amount numeric(10, 2) CHECK (amount >= 0));\
             CREATE INDEX t{i}_name ON t{i} (name);",
            p = i - 1
        ));
    }
    t.sql(&script);
    let start = Instant::now();
    let snap = snapshot(&t);
    let took = start.elapsed();
    eprintln!(
        "snapshot of 300 tables: {took:?}, {} lines, {} bytes",
        snap.text.lines().count(),
        snap.text.len()
    );
    assert_eq!(snap.text.matches("\ntable public.t").count(), 300);
    assert_eq!(snap.text.matches("\nsequence public.t").count(), 300);
    // One query per kind of fact, not per table: far below a second even on a busy machine.
    assert!(took < Duration::from_secs(10), "took {took:?}");
}

engine_test!(views_triggers_and_checks_are_part_of_the_schema, |t| {
    t.sql(
        "CREATE TABLE item (id INTEGER NOT NULL PRIMARY KEY, qty INTEGER, note TEXT, \
         CONSTRAINT item_qty_positive CHECK (qty > 0));\
         CREATE VIEW big_items AS SELECT id, qty FROM item WHERE qty > 10",
    );
    t.sql(match t.engine {
        Engine::Sqlite => {
            "CREATE TRIGGER item_note AFTER INSERT ON item \
             BEGIN UPDATE item SET note = 'new' WHERE id = NEW.id; END"
        }
        Engine::MariaDb => {
            "CREATE TRIGGER item_note BEFORE INSERT ON item FOR EACH ROW SET NEW.note = 'new'"
        }
        Engine::Postgres => {
            "CREATE FUNCTION set_note() RETURNS trigger LANGUAGE plpgsql \
             AS $$ BEGIN NEW.note := 'new'; RETURN NEW; END $$;\
             CREATE TRIGGER item_note BEFORE INSERT ON item \
             FOR EACH ROW EXECUTE FUNCTION set_note()"
        }
    });
    let base = snapshot(t);
    let (item, view) = (table(t, "item"), table(t, "big_items"));
    let text = base.text.to_lowercase();
    for line in [
        format!("\nview {view}\n  definition select "),
        "\n  trigger item_note ".to_owned(),
        "\n  constraint item_qty_positive check ".to_owned(),
    ] {
        assert!(text.contains(&line), "no `{line}` in:\n{}", base.text);
    }

    t.sql("DROP VIEW big_items");
    t.sql("CREATE VIEW big_items AS SELECT id, qty FROM item WHERE qty > 20");
    let new_view = snapshot(t);
    assert_eq!(
        change_list(&base, &new_view),
        [format!("{view}: definition changed")]
    );

    t.sql(match t.engine {
        Engine::Postgres => "DROP TRIGGER item_note ON item",
        _ => "DROP TRIGGER item_note",
    });
    assert_eq!(
        change_list(&new_view, &snapshot(t)),
        [format!("{item}: trigger item_note removed")]
    );
});

#[track_caller]
fn run_ok(cmd: &mut Command) {
    let out = cmd.output().expect("run the engine's tool");
    assert!(
        out.status.success(),
        "{:?} failed: {}",
        cmd.get_program(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The MariaDB client tools with the test server's address and login.
fn mariadb_tool(t: &TestContext, tool: &str) -> (Command, String) {
    let url = url::Url::parse(&t.url).expect("url");
    let mut c = Command::new(tool);
    c.arg("-h")
        .arg(url.host_str().unwrap_or("127.0.0.1"))
        .arg("-P")
        .arg(url.port().unwrap_or(3306).to_string())
        .arg("-u")
        .arg(url.username());
    if let Some(pw) = url.password() {
        c.arg(format!("-p{pw}"));
    }
    (c, url.path().trim_start_matches('/').to_owned())
}

/// A backup of the test database made with the engine's own tool, as dbdeploy's backups are.
fn dump(t: &TestContext) -> std::path::PathBuf {
    let dump = t.path().join("dump");
    match t.engine {
        Engine::Sqlite => {
            t.sql(&format!("VACUUM INTO '{}'", dump.display()));
        }
        Engine::Postgres => {
            run_ok(
                Command::new("pg_dump")
                    .args(["-Fc", "-f"])
                    .arg(&dump)
                    .arg(&t.url),
            );
        }
        Engine::MariaDb => {
            let (mut cmd, db) = mariadb_tool(t, "mariadb-dump");
            run_ok(
                cmd.args(["--routines", "--triggers", "--result-file"])
                    .arg(&dump)
                    .arg(&db),
            );
        }
    }
    dump
}

/// Drops every table and view of the test database.
fn empty(t: &TestContext) {
    match t.engine {
        Engine::Sqlite => std::fs::remove_file(t.path().join("test.db")).expect("remove file"),
        Engine::Postgres => {
            t.sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public");
        }
        Engine::MariaDb => {
            let views = t.sql(
                "SELECT table_name FROM information_schema.views \
                 WHERE table_schema = DATABASE()",
            );
            let tables: Vec<String> = t
                .tables()
                .into_iter()
                .filter(|n| !views.contains(n))
                .map(|n| format!("`{n}`"))
                .collect();
            for v in views {
                t.sql(&format!("DROP VIEW `{v}`"));
            }
            t.sql(&format!(
                "SET FOREIGN_KEY_CHECKS = 0; DROP TABLE {}",
                tables.join(", ")
            ));
        }
    }
}

fn restore(t: &TestContext, dump: &std::path::Path) {
    match t.engine {
        Engine::Sqlite => std::fs::copy(dump, t.path().join("test.db"))
            .map(drop)
            .expect("copy"),
        Engine::Postgres => run_ok(
            Command::new("pg_restore")
                .args(["--no-owner", "-d"])
                .arg(&t.url)
                .arg(dump),
        ),
        Engine::MariaDb => {
            let (mut cmd, db) = mariadb_tool(t, "mariadb");
            run_ok(
                cmd.arg(&db)
                    .stdin(std::fs::File::open(dump).expect("dump file")),
            );
        }
    }
}

engine_test!(a_restored_backup_has_the_same_fingerprint, |t| {
    t.fixture("basic");
    t.run(&["migrate", "dev"]).code(0);
    let (user, post) = (t.engine.q("User"), t.engine.q("Post"));
    t.sql(&format!(
        "CREATE VIEW big_posts AS SELECT id, views FROM {post} WHERE views > 100;\
         INSERT INTO {user} (email) VALUES ('ada@example.com');\
         INSERT INTO {post} (title, {}) VALUES ('first', 1)",
        t.engine.q("authorId")
    ));
    let before = snapshot(t);
    let backup = dump(t);
    empty(t);
    assert!(t.tables().is_empty(), "{:?}", t.tables());
    assert_ne!(before.hash, snapshot(t).hash);
    restore(t, &backup);
    assert_eq!(t.sql(&format!("SELECT COUNT(*) FROM {post}")), ["1"]);
    assert_same(&before, &snapshot(t));
});
