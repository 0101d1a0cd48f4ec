//! Scenarios beyond the basic deploy: SQLite table redefinitions, PostgreSQL scripts that
//! cannot run in dbdeploy's transaction, CRLF checksums, `resolve`, `--to`, foreign schemas,
//! required backups, lock contention, the quickstart project, human output and the audit log.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{
    Engine, Run, TestContext, audit_lines, checksum, has_table, migration_names, sha256_file,
};
use crate::engine_test;

const BASIC: [&str; 3] = [
    "20240101000000_init",
    "20240102000000_comments",
    "20240103000000_post_views",
];

const HALFWAY: [&str; 3] = [
    "20240101000000_init",
    "20240102000000_broken",
    "20240103000000_after",
];

// 1. SQLite table redefinition --------------------------------------------------------------

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

// 2, 3. PostgreSQL scripts outside dbdeploy's transaction -----------------------------------

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

// 4. CRLF -------------------------------------------------------------------------------------

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

// 5. resolve ----------------------------------------------------------------------------------

#[test]
fn mariadb_failed_migration_is_resolved_rolled_back_fixed_and_redeployed() {
    let Some(t) = TestContext::new(Engine::MariaDb, "maria_resolve_rb") else {
        return;
    };
    t.fixture("fails-halfway");
    let [init, broken, after] = HALFWAY;
    let broken_sum = checksum(&t, broken);

    t.run(&["migrate", "staging"]).code(1);

    let status = t.run(&["status", "staging"]);
    status.code(5);
    assert!(
        status.stdout.contains("Failed (1)") && status.stdout.contains(broken),
        "{}",
        status.stdout
    );

    let run = t.run(&["resolve", "staging", "--rolled-back", broken]);
    run.code(0);
    assert!(run.stdout.contains(broken), "{}", run.stdout);
    assert_eq!(
        t.sql(&format!(
            "SELECT finished_at IS NULL, rolled_back_at IS NOT NULL FROM _prisma_migrations \
             WHERE migration_name = '{broken}'"
        )),
        ["1|1"]
    );
    // Rolled back means "will run again": pending, no longer inconsistent.
    t.run(&["status", "staging"]).code(4);

    // Undo the partial change by hand and fix the script.
    t.sql("DROP TABLE `Tag`");
    let file = t.migrations().join(broken).join("migration.sql");
    let text = std::fs::read_to_string(&file).unwrap();
    let fixed = text
        .split("-- AlterTable")
        .next()
        .expect("the broken script")
        .to_owned();
    assert!(fixed.contains("CREATE TABLE `Tag`") && !fixed.contains("DoesNotExist"));
    std::fs::write(&file, fixed).unwrap();

    let run = t.run(&["migrate", "staging", "--json"]);
    run.code(0);
    let doc = run.json();
    assert_eq!(doc["result"]["migrations_applied"], 2, "{doc}");
    assert_eq!(migration_names(&doc), [broken, after]);
    assert!(has_table(&t, "Tag") && has_table(&t, "Never"));

    assert_eq!(
        t.prisma_rows(),
        [
            format!("{init}|{}|finished|-|1|-", checksum(&t, init)),
            format!("{broken}|{broken_sum}|unfinished|rolled_back|0|logs"),
            format!("{broken}|{}|finished|-|1|-", checksum(&t, broken)),
            format!("{after}|{}|finished|-|1|-", checksum(&t, after)),
        ]
    );
    t.run(&["status", "staging"]).code(0);
}

engine_test!(
    resolve_applied_skips_the_failed_migration,
    |t: &TestContext| {
        t.fixture("fails-halfway");
        let [init, broken, after] = HALFWAY;
        t.run(&["migrate", "staging"]).code(1);
        let before = t.prisma_rows();

        // Only a failed migration can be marked rolled back.
        for name in [init, after] {
            let run = t.run(&["resolve", "staging", "--rolled-back", name]);
            assert_ne!(run.code, 0, "{}", run.all());
            assert!(
                run.stderr.contains("not in a failed state") && run.stderr.contains(name),
                "{}",
                run.stderr
            );
            assert_eq!(t.prisma_rows(), before);
        }

        let run = t.run(&["resolve", "staging", "--applied", broken]);
        run.code(0);
        let rows = t.sql(&format!(
            "SELECT checksum, \
             CASE WHEN finished_at IS NULL THEN 'unfinished' ELSE 'finished' END, \
             CASE WHEN rolled_back_at IS NULL THEN '-' ELSE 'rolled_back' END \
             FROM _prisma_migrations WHERE migration_name = '{broken}' ORDER BY started_at"
        ));
        let applied = format!("{}|finished|-", checksum(t, broken));
        if t.engine == Engine::MariaDb {
            // The failed attempt is kept, marked rolled back, as `prisma migrate resolve` does.
            assert_eq!(rows.len(), 2, "{rows:?}");
            assert!(rows[0].ends_with("|unfinished|rolled_back"), "{rows:?}");
            assert_eq!(rows[1], applied);
        } else {
            assert_eq!(rows, [applied]);
        }

        let run = t.run(&["migrate", "staging", "--json"]);
        run.code(0);
        let doc = run.json();
        assert_eq!(doc["result"]["migrations_applied"], 1, "{doc}");
        assert_eq!(migration_names(&doc), [after]);
        assert!(has_table(t, "Never"));
        assert_eq!(has_table(t, "Tag"), t.engine == Engine::MariaDb);
        t.run(&["status", "staging"]).code(0);
    }
);

// 6. resolve on a protected environment ---------------------------------------------------

engine_test!(
    resolve_on_protected_environment_needs_approval,
    |t: &TestContext| {
        t.fixture("basic");
        // An empty database: baselining would create the tracking table.
        let run = t.run(&["resolve", "production", "--applied", BASIC[0]]);
        run.code(3);
        assert!(run.stderr.contains("--yes"), "{}", run.stderr);
        assert!(t.tables().is_empty(), "{:?}", t.tables());

        let run = t.run(&["resolve", "production", "--applied", BASIC[0], "--json"]);
        run.code(3);
        let doc = run.json();
        assert_eq!(doc["status"], "cancelled");
        assert_eq!(doc["error"]["code"], "approval-required");
        assert!(t.tables().is_empty(), "{:?}", t.tables());

        // A database with history: no row is added.
        t.run(&["migrate", "staging", "--to", BASIC[0]]).code(0);
        let rows = t.prisma_rows();
        let history = t.sql("SELECT run_id, status FROM _dbdeploy_history");
        t.run(&["resolve", "production", "--applied", BASIC[1]])
            .code(3);
        assert_eq!(t.prisma_rows(), rows);
        assert_eq!(
            t.sql("SELECT run_id, status FROM _dbdeploy_history"),
            history
        );

        // With --yes the same request goes through.
        t.run(&["resolve", "production", "--applied", BASIC[1], "--yes"])
            .code(0);
        let rows = t.prisma_rows();
        assert_eq!(rows.len(), 2, "{rows:?}");
        assert!(rows[1].starts_with(&format!("{}|", BASIC[1])), "{rows:?}");
    }
);

#[test]
fn cancelled_resolve_is_audited_as_cancelled() {
    let Some(t) = TestContext::new(Engine::Sqlite, "resolve_audit") else {
        return;
    };
    t.fixture("basic");
    t.run(&["resolve", "production", "--applied", BASIC[0]])
        .code(3);
    let lines = audit_lines(t.path());
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["operation"], "resolve-migration");
    assert_eq!(lines[0]["status"], "cancelled", "{}", lines[0]);
}

// 7. --to -------------------------------------------------------------------------------------

engine_test!(to_stops_after_the_named_migration, |t: &TestContext| {
    t.fixture("basic");
    let run = t.run(&["migrate", "dev", "--to", BASIC[1], "--json"]);
    run.code(0);
    let doc = run.json();
    assert_eq!(doc["result"]["migrations_applied"], 2, "{doc}");
    assert_eq!(migration_names(&doc), [BASIC[0], BASIC[1]]);
    let names = t.sql("SELECT migration_name FROM _prisma_migrations ORDER BY migration_name");
    assert_eq!(names, [BASIC[0], BASIC[1]]);
    assert!(has_table(t, "Comment"));

    let status = t.run(&["status", "dev", "--json"]);
    status.code(4);
    assert_eq!(
        status.json()["result"]["pending"],
        serde_json::json!([BASIC[2]])
    );

    // A name that is not a migration is a usage error and changes nothing.
    let run = t.run(&["migrate", "dev", "--to", "20249999000000_nope"]);
    run.code(2);
    assert!(run.stderr.contains("20249999000000_nope"), "{}", run.stderr);
    assert_eq!(t.prisma_rows().len(), 2);

    let run = t.run(&["migrate", "dev", "--json"]);
    run.code(0);
    assert_eq!(migration_names(&run.json()), [BASIC[2]]);
});

// 8. A schema that was not created by these migrations -------------------------------------

engine_test!(
    non_empty_database_without_history_is_refused,
    |t: &TestContext| {
        t.fixture("basic");
        t.sql("CREATE TABLE legacy (id INTEGER)");
        let run = t.run(&["migrate", "staging"]);
        run.code(1);
        assert!(
            run.stderr.contains("not empty")
                && run.stderr.contains("legacy")
                && run.stderr.contains("resolve"),
            "{}",
            run.stderr
        );
        assert_eq!(t.tables(), ["legacy"]);

        let run = t.run(&["migrate", "staging", "--json"]);
        run.code(1);
        let doc = run.json();
        assert_eq!(doc["status"], "error");
        assert_eq!(doc["error"]["code"], "inconsistent-history");
        assert_eq!(doc["error"]["class"], "pre-deployment");
        assert_eq!(doc["result"]["migrations_applied"], 0);
        assert_eq!(t.tables(), ["legacy"]);
    }
);

engine_test!(
    the_not_empty_check_ignores_dbdeploys_own_tables_and_names_a_few,
    |t: &TestContext| {
        t.fixture("basic");
        t.run(&["migrate", "staging"]).code(0);
        t.sql("DROP TABLE _prisma_migrations");
        for i in 1..=6 {
            t.sql(&format!("CREATE TABLE extra_{i} (id INTEGER)"));
        }
        let run = t.run(&["migrate", "staging", "--json"]);
        run.code(1);
        let doc = run.json();
        assert_eq!(doc["error"]["code"], "inconsistent-history", "{doc}");
        let message = doc["error"]["message"].as_str().unwrap();
        let (_, listed) = message.rsplit_once(": ").unwrap();
        let listed: Vec<&str> = listed.split(", ").collect();
        let tables = t.tables();
        assert_eq!(listed.len(), 5, "{message}");
        assert!(
            listed
                .iter()
                .all(|l| tables.iter().any(|x| x == l) && !l.starts_with("_dbdeploy")),
            "{message}"
        );

        // With nothing but dbdeploy's own history left, the database counts as empty (the
        // deploy then stops at the schema drift check: the recorded tables are gone).
        for table in ["Comment", "Post", "User"] {
            t.sql(&format!("DROP TABLE {}", t.engine.q(table)));
        }
        for i in 1..=6 {
            t.sql(&format!("DROP TABLE extra_{i}"));
        }
        let doc = t.run(&["migrate", "staging", "--json"]).json();
        let checks = doc["result"]["health_checks_before"].as_array().unwrap();
        let tracking = checks
            .iter()
            .find(|c| c["name"] == "tracking_table")
            .expect("the tracking_table check");
        assert_eq!(tracking["status"], "passed", "{doc}");
        assert!(
            tracking["detail"]
                .as_str()
                .unwrap()
                .contains("empty database"),
            "{doc}"
        );
    }
);

// 10. Lock contention -------------------------------------------------------------------------

/// A client process holding the deploy lock; killed (and its session ended) on drop.
pub(crate) struct LockHolder<'a> {
    t: &'a TestContext,
    child: Child,
    /// The holder's PostgreSQL backend pid or MariaDB connection id, once it holds the lock.
    pub(crate) session: String,
}

impl Drop for LockHolder<'_> {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // The server may keep sleeping with the lock after the client is gone.
        let sql = match self.t.engine {
            Engine::Postgres => format!("SELECT pg_terminate_backend({})", self.session),
            _ => format!("KILL {}", self.session),
        };
        if !self.session.is_empty() {
            let _ = client(self.t, &sql).stdout(Stdio::null()).status();
        }
    }
}

/// The engine's command-line client on the test database, running `sql` (quiet, unaligned).
fn client(t: &TestContext, sql: &str) -> Command {
    match t.engine {
        Engine::Postgres => {
            let mut cmd = Command::new("psql");
            cmd.arg(&t.url)
                .args(["-X", "-A", "-t", "-q", "-c", sql])
                .stdin(Stdio::null())
                .stderr(Stdio::null());
            cmd
        }
        Engine::MariaDb => {
            let u = url::Url::parse(&t.url).expect("url");
            let mut cmd = Command::new("mariadb");
            cmd.arg("-h")
                .arg(u.host_str().unwrap_or("127.0.0.1"))
                .arg("-P")
                .arg(u.port().unwrap_or(3306).to_string())
                .arg("-u")
                .arg(u.username())
                .args(["-N", "-B", "-e", sql])
                .stdin(Stdio::null())
                .stderr(Stdio::null());
            if let Some(pw) = u.password() {
                cmd.arg(format!("-p{pw}"));
            }
            cmd
        }
        Engine::Sqlite => unreachable!("no lock holder process on SQLite"),
    }
}

/// Starts a client that takes the deploy lock and sleeps; returns once it holds the lock.
pub(crate) fn hold_lock(t: &TestContext) -> LockHolder<'_> {
    // A marker in the held statement tells this holder from other tests' deploys (MariaDB's
    // named locks are server-wide).
    let marker = format!("held_{}", std::process::id());
    let (sql, probe) = match t.engine {
        Engine::Postgres => (
            "SELECT pg_advisory_lock(72707369); SELECT pg_sleep(8)".to_owned(),
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted \
             AND objid = 72707369 AND database = \
             (SELECT oid FROM pg_database WHERE datname = current_database())"
                .to_owned(),
        ),
        _ => (
            format!("SELECT GET_LOCK('prisma_migrate', 10) AS {marker}, SLEEP(8)"),
            format!(
                "SELECT p.ID FROM information_schema.processlist p \
                 WHERE p.ID = IS_USED_LOCK('prisma_migrate') AND p.INFO LIKE '%AS {marker}%'"
            ),
        ),
    };
    let child = client(t, &sql)
        .stdout(Stdio::null())
        .spawn()
        .expect("start the lock holder");
    let mut holder = LockHolder {
        t,
        child,
        session: String::new(),
    };
    let deadline = Instant::now() + Duration::from_secs(12);
    loop {
        if let Some(id) = t.sql(&probe).into_iter().next() {
            holder.session = id;
            return holder;
        }
        assert!(
            Instant::now() < deadline,
            "the lock holder did not get the lock"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs a deploy with a 1 s lock timeout against the held lock; returns the error message.
fn assert_lock_timeout(t: &TestContext, holder_says: &str) -> String {
    t.write_config("[environments.hurry]\nurl_env = \"DATABASE_URL\"\nlock_timeout_seconds = 1\n");
    let started = Instant::now();
    let run = t.run(&["migrate", "hurry", "--json"]);
    run.code(1);
    assert!(
        started.elapsed() < Duration::from_secs(7),
        "waited {:?} for a 1 s lock timeout",
        started.elapsed()
    );
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "gave up after {:?}, before the 1 s lock timeout",
        started.elapsed()
    );
    let doc = run.json();
    assert_eq!(doc["error"]["code"], "lock-timeout", "{doc}");
    let message = doc["error"]["message"].as_str().unwrap();
    assert!(message.contains(holder_says), "{message}");
    assert!(run.stderr.contains(holder_says), "{}", run.stderr);
    assert_eq!(doc["result"]["migrations_applied"], 0);
    assert!(t.tables().is_empty(), "{:?}", t.tables());
    message.to_owned()
}

#[test]
fn postgres_lock_timeout_names_the_holder() {
    let Some(t) = TestContext::new(Engine::Postgres, "pg_lock_timeout") else {
        return;
    };
    t.fixture("basic");
    let holder = hold_lock(&t);
    let says = format!("held by pid {},", holder.session);
    let message = assert_lock_timeout(&t, &says);
    // Who (the psql session), and since when.
    assert!(
        message.contains("application psql, user postgres, since 20"),
        "{message}"
    );
    drop(holder);
    // Once the holder is gone the deploy goes through.
    t.run(&["migrate", "staging"]).code(0);
    assert_eq!(t.prisma_rows().len(), 3);
}

#[test]
fn postgres_lock_holder_is_looked_up_in_the_right_database() {
    let (Some(a), Some(b)) = (
        TestContext::new(Engine::Postgres, "pg_lock_holder_a"),
        TestContext::new(Engine::Postgres, "pg_lock_holder_b"),
    ) else {
        return;
    };
    let holders: Vec<LockHolder<'_>> = [&a, &b]
        .into_iter()
        .map(|t| {
            t.fixture("basic");
            t.write_config(
                "[environments.hurry]\nurl_env = \"DATABASE_URL\"\nlock_timeout_seconds = 1\n",
            );
            hold_lock(t)
        })
        .collect();
    let children: Vec<Child> = [&a, &b]
        .iter()
        .map(|t| {
            t.cmd(&["migrate", "hurry", "--json"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for (child, holder) in children.into_iter().zip(&holders) {
        let run = Run::from(child.wait_with_output().unwrap());
        run.code(1);
        let doc = run.json();
        let message = doc["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(&format!("held by pid {},", holder.session)),
            "expected the holder in this database, pid {}: {message}",
            holder.session
        );
    }
}

#[test]
fn mariadb_lock_timeout_names_the_holder() {
    let Some(t) = TestContext::new(Engine::MariaDb, "maria_lock_timeout") else {
        return;
    };
    t.fixture("basic");
    let holder = hold_lock(&t);
    // MariaDB identifies sessions by connection id.
    let says = format!("held by connection {},", holder.session);
    let message = assert_lock_timeout(&t, &says);
    assert!(message.contains(" s)"), "for how long: {message}");
    drop(holder);
    t.run(&["migrate", "staging"]).code(0);
    assert_eq!(t.prisma_rows().len(), 3);
}

// 11. The quickstart project ----------------------------------------------------------------

fn copy_project(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for entry in std::fs::read_dir(src).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() == ".dbdeploy" {
            continue;
        }
        let to = dst.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_project(&entry.path(), &to);
        } else {
            std::fs::copy(entry.path(), &to).unwrap();
        }
    }
}

#[test]
fn quickstart_deploys_with_working_directory_flag() {
    let root = tempfile::Builder::new()
        .prefix("dbdeploy-it-quickstart-")
        .tempdir()
        .unwrap();
    let project = root.path().join("quickstart");
    copy_project(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations-fixtures/quickstart"),
        &project,
    );
    let migrate = || {
        Run::from(
            Command::new(env!("CARGO_BIN_EXE_dbdeploy"))
                .current_dir(root.path())
                .args(["-C", "quickstart", "migrate", "dev"])
                .env("NO_COLOR", "1")
                .env_remove("DATABASE_URL")
                .env_remove("PROD_DATABASE_URL")
                .env_remove("DBDEPLOY_LOG")
                .stdin(Stdio::null())
                .output()
                .unwrap(),
        )
    };
    let run = migrate();
    run.code(0);
    for name in [
        "20240101120000_init",
        "20240115093000_add_comments",
        "20240201150000_add_post_slug",
        "20240310080000_post_published_at",
    ] {
        assert!(run.stdout.contains(name), "{name}: {}", run.stdout);
    }
    assert!(
        run.stdout.contains("Deployed 4 migration(s)"),
        "{}",
        run.stdout
    );
    // The relative SQLite URL resolved from the project, not from the current directory.
    let db = project.join(".dbdeploy/dev.db");
    assert!(db.is_file(), "no {}", db.display());
    assert!(!root.path().join(".dbdeploy").exists());
    let out = Command::new("sqlite3")
        .arg(&db)
        .arg("SELECT COUNT(*) FROM _prisma_migrations WHERE finished_at IS NOT NULL")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "4");
    assert_eq!(audit_lines(&project).len(), 1);

    let again = migrate();
    again.code(0);
    assert!(
        again.stdout.contains("No pending migrations"),
        "{}",
        again.stdout
    );
}

// 12. Human output of a failed deploy -------------------------------------------------------

#[test]
fn failed_deploy_human_output_names_the_migration_and_what_to_do() {
    let Some(t) = TestContext::new(Engine::Sqlite, "human_failure") else {
        return;
    };
    t.fixture("fails-halfway");
    let broken = HALFWAY[1];
    let run = t.run(&["migrate", "staging"]);
    run.code(1);

    let errors: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("error:"))
        .collect();
    assert!(
        errors.iter().any(|l| l.contains(broken)),
        "no error: line naming {broken}:\n{}",
        run.stderr
    );
    assert!(
        run.stderr.lines().any(|l| l.starts_with("hint:")),
        "no hint: line:\n{}",
        run.stderr
    );
    assert!(
        run.stdout.lines().any(|l| l.starts_with("✗ apply")),
        "no ✗ apply line:\n{}",
        run.stdout
    );
    assert!(
        run.stdout
            .lines()
            .any(|l| l.trim_start().starts_with(&format!("✗ {broken}"))),
        "no ✗ line for {broken}:\n{}",
        run.stdout
    );
    assert!(
        !run.all().contains('\x1b'),
        "colour without a terminal:\n{}",
        run.all()
    );
    assert!(!run.stdout.trim_start().starts_with('{'), "{}", run.stdout);
}

// 13. Audit log -------------------------------------------------------------------------------

engine_test!(
    audit_log_has_one_line_per_run_and_cancelled_runs_stay_out_of_the_database,
    |t: &TestContext| {
        t.fixture("basic");
        let run = t.run(&["migrate", "staging", "--to", BASIC[1], "--json"]);
        run.code(0);
        let run_id = run.json()["result"]["run_id"]
            .as_str()
            .expect("run_id")
            .to_owned();

        let lines = audit_lines(t.path());
        assert_eq!(lines.len(), 1, "{lines:?}");
        let first = &lines[0];
        assert_eq!(first["run_id"], run_id.as_str());
        assert_eq!(first["environment"], "staging");
        assert_eq!(first["operation"], "deploy-migrations");
        assert_eq!(first["status"], "success");
        assert_eq!(first["migrations_applied"], 2);
        assert_eq!(first["migrations"], serde_json::json!([BASIC[0], BASIC[1]]));

        // Production is protected: without --yes and a terminal the run is cancelled.
        t.run(&["migrate", "production"]).code(3);
        let lines = audit_lines(t.path());
        assert_eq!(lines.len(), 2, "{lines:?}");
        let second = &lines[1];
        let cancelled_id = second["run_id"].as_str().expect("run_id");
        assert!(uuid::Uuid::parse_str(cancelled_id).is_ok(), "{second}");
        assert_ne!(cancelled_id, run_id);
        assert_eq!(second["environment"], "production");
        assert_eq!(second["operation"], "deploy-migrations");
        assert_eq!(second["status"], "cancelled");
        assert_eq!(second["migrations_applied"], 0);

        assert_eq!(
            t.sql("SELECT run_id, status, migrations_applied FROM _dbdeploy_history"),
            [format!("{run_id}|success|2")]
        );
        assert_eq!(t.prisma_rows().len(), 2);
    }
);

// Regressions for bugs found while writing these scenarios ------------------------------------

#[test]
fn target_without_password_is_shown_and_audited() {
    let Some(t) = TestContext::new(Engine::Sqlite, "target_shown") else {
        return;
    };
    t.fixture("basic");
    let run = t.run(&["migrate", "staging"]);
    run.code(0);
    let target = run.stdout.lines().nth(1).unwrap_or_default();
    assert!(
        target.contains("test.db") && !target.contains("***"),
        "target line: {target}"
    );
    let lines = audit_lines(t.path());
    assert_eq!(lines.len(), 1, "{lines:?}");
    let database = lines[0]["database"].as_str().unwrap_or_default();
    assert!(database.contains("test.db"), "audit database: {database}");
}

#[test]
fn closed_stdout_does_not_panic() {
    let Some(t) = TestContext::new(Engine::Sqlite, "closed_stdout") else {
        return;
    };
    t.fixture("basic");
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = t
        .cmd(&["migrate", "staging"])
        .env_remove("RUST_BACKTRACE")
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_ne!(out.status.code(), Some(101), "{stderr}");
}

/// Several first deploys of the same empty database at once, a few times over: every one must
/// either apply migrations or find nothing pending, never refuse the database another deploy is
/// filling (the pre-lock health check must not judge a schema that is changing under the lock).
fn racing_first_deploys(engine: Engine) {
    for _ in 0..6 {
        let Some(t) = TestContext::new(engine, "racing_first_deploys") else {
            return;
        };
        t.fixture("basic");
        let children: Vec<Child> = (0..4)
            .map(|_| {
                t.cmd(&["migrate", "staging", "--json"])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let mut applied = 0;
        for child in children {
            let run = Run::from(child.wait_with_output().unwrap());
            let doc = run.json();
            assert_eq!(run.code, 0, "{}", doc["error"]["message"]);
            applied += doc["result"]["migrations_applied"].as_u64().unwrap();
        }
        assert_eq!(applied, 3);
        assert_eq!(t.prisma_rows().len(), 3);
    }
}

#[test]
fn racing_first_deploys_sqlite() {
    racing_first_deploys(Engine::Sqlite);
}

#[test]
fn racing_first_deploys_postgres() {
    racing_first_deploys(Engine::Postgres);
}

#[test]
fn racing_first_deploys_mariadb() {
    racing_first_deploys(Engine::MariaDb);
}
