//! Bad input of every kind: malformed configuration, unknown flags, unreadable or huge
//! migrations, odd names, passwords with special characters, a server that never answers.
//! Each gives a clear error (or the correct result), never a panic, and changes nothing.
#![allow(clippy::disallowed_methods)]

use std::io::Write;
use std::time::{Duration, Instant};

use crate::common::{Engine, Run, TestContext, audit_lines, sqlite_basic, write_migrations};
use crate::engine_test;

#[track_caller]
fn no_panic(run: &Run) {
    assert!(
        !run.all().contains("panicked") && run.code != 101,
        "{}",
        run.all()
    );
}

/// A usage error: exit 2, a message naming `needle`, no database file created.
#[track_caller]
fn refused(t: &TestContext, run: &Run, needle: &str) {
    no_panic(run);
    run.code(2);
    assert!(
        run.stderr.contains(needle),
        "no {needle:?} in:\n{}",
        run.stderr
    );
    assert!(
        run.stderr.lines().any(|l| l.starts_with("error:")),
        "{}",
        run.stderr
    );
    assert!(
        !t.path().join("test.db").exists(),
        "the database was touched"
    );
}

fn write_config_bytes(t: &TestContext, bytes: &[u8]) {
    std::fs::write(t.path().join("dbdeploy.toml"), bytes).unwrap();
}

const HEADER: &str = "[project]\nmigration_tool = \"prisma\"\n";

#[test]
fn malformed_configuration_shapes_are_usage_errors() {
    let t = sqlite_basic("bad_config_shapes");
    let env = "[environments.dev]\nurl_env = \"DATABASE_URL\"\n";
    let cases: Vec<(String, &str)> = vec![
        // wrong types
        (format!("{HEADER}{env}protected = \"yes\"\n"), "line 5"),
        (
            format!("{HEADER}{env}lock_timeout_seconds = -1\n"),
            "lock_timeout_seconds",
        ),
        (
            format!("{HEADER}{env}lock_timeout_seconds = 1.5\n"),
            "lock_timeout_seconds",
        ),
        (
            format!("{HEADER}{env}mode = \"production\"\n"),
            "production",
        ),
        (format!("{HEADER}environments = 5\n"), "environments"),
        (
            format!("{HEADER}[environments]\ndev = \"sqlite://x.db\"\n"),
            "dev",
        ),
        (format!("{HEADER}[environments.dev]\nurl = 42\n"), "url"),
        (
            format!("[project]\nmigration_tool = [\"prisma\"]\n{env}"),
            "migration_tool",
        ),
        (format!("{HEADER}{env}[backup]\nkeep = \"ten\"\n"), "keep"),
        // unknown tables and keys
        (format!("{HEADER}{env}[deploy]\nfast = true\n"), "deploy"),
        (
            format!("{HEADER}{env}[environments.dev.extra]\nx = 1\n"),
            "extra",
        ),
        // duplicate keys and tables
        (
            format!("{HEADER}{env}protected = true\nprotected = false\n"),
            "protected",
        ),
        (format!("{HEADER}{env}{env}"), "environments"),
        // not TOML at all
        ("{\"project\": {}}\n".to_owned(), "dbdeploy.toml"),
        (format!("{HEADER}{env}url = \"unterminated\n"), "line"),
    ];
    for (text, needle) in cases {
        write_config_bytes(&t, text.as_bytes());
        let run = t.run(&["migrate", "dev"]);
        refused(&t, &run, needle);
        assert!(run.stderr.contains("dbdeploy.toml"), "{}", run.stderr);
        let run = t.run(&["status", "dev", "--json"]);
        no_panic(&run);
        run.code(2);
        assert_eq!(
            run.json()["error"]["code"],
            "invalid-configuration",
            "{text}"
        );
    }
}

#[test]
fn non_utf8_and_empty_configuration() {
    let t = sqlite_basic("bad_config_bytes");
    let mut bytes =
        format!("{HEADER}[environments.dev]\nurl_env = \"DATABASE_URL\"\n# caf").into_bytes();
    bytes.extend_from_slice(&[0xe9, b'\n']);
    write_config_bytes(&t, &bytes);
    let run = t.run(&["migrate", "dev"]);
    refused(&t, &run, "UTF-8");
    assert!(run.stderr.contains("line 5"), "{}", run.stderr);

    write_config_bytes(&t, b"\x00\x01\x02\xff\xfe binary");
    refused(&t, &t.run(&["migrate", "dev"]), "dbdeploy.toml");

    // An empty file is valid TOML with no environments: the error says so.
    write_config_bytes(&t, b"");
    let run = t.run(&["migrate", "dev"]);
    refused(&t, &run, "unknown environment `dev`");
    assert!(run.stderr.contains("[environments."), "{}", run.stderr);

    // A folder where the file should be.
    std::fs::remove_file(t.path().join("dbdeploy.toml")).unwrap();
    std::fs::create_dir(t.path().join("dbdeploy.toml")).unwrap();
    refused(&t, &t.run(&["migrate", "dev"]), "dbdeploy.toml");
}

#[test]
fn unknown_flags_and_values_are_usage_errors() {
    let t = sqlite_basic("bad_flags");
    for (args, needle) in [
        (&["migrate", "dev", "--frobnicate"][..], "--frobnicate"),
        (&["migrate", "dev", "--color", "purple"][..], "purple"),
        (&["migrate"][..], "ENVIRONMENT"),
        (&["deploy", "dev"][..], "deploy"),
        (&["history", "dev", "--limit", "-3"][..], "'-3'"),
        (&["health", "dev", "--wait", "soon"][..], "soon"),
        (&["migrate", "dev", "-q", "-v"][..], "--quiet"),
    ] {
        let run = t.run(args);
        refused(&t, &run, needle);
    }
}

#[test]
fn unreadable_migrations_are_named() {
    let t = sqlite_basic("bad_migrations");
    let first = t.migrations().join("20240101000000_init/migration.sql");

    // Latin-1 text: the file and the line are named.
    let mut text = b"CREATE TABLE a (id INTEGER);\n-- caf".to_vec();
    text.extend_from_slice(&[0xe9, b'\n']);
    std::fs::write(&first, &text).unwrap();
    let run = t.run(&["migrate", "dev"]);
    refused(&t, &run, "migration.sql:2");
    assert!(run.stderr.contains("UTF-8"), "{}", run.stderr);

    // Binary garbage.
    let garbage: Vec<u8> = (0..4096u32).map(|i| (i * 7919 % 251) as u8).collect();
    std::fs::write(&first, &garbage).unwrap();
    refused(&t, &t.run(&["migrate", "dev"]), "UTF-8");

    // The migrations folder is a file.
    std::fs::remove_dir_all(t.migrations()).unwrap();
    std::fs::write(t.migrations(), "not a folder").unwrap();
    refused(&t, &t.run(&["migrate", "dev"]), "is not a directory");

    // Symbolic link loops: the folder itself, and an entry inside it.
    std::fs::remove_file(t.migrations()).unwrap();
    std::os::unix::fs::symlink(t.migrations(), t.migrations()).unwrap();
    refused(&t, &t.run(&["migrate", "dev"]), "prisma/migrations");
    std::fs::remove_file(t.migrations()).unwrap();
    t.fixture("basic");
    let looped = t.migrations().join("20240109000000_loop");
    std::os::unix::fs::symlink(&looped, &looped).unwrap();
    refused(&t, &t.run(&["migrate", "dev"]), "20240109000000_loop");
    std::fs::remove_file(&looped).unwrap();
    // A migration folder linking back to its parent is read once, as the folder it is.
    std::os::unix::fs::symlink("..", t.migrations().join("20240101000000_init/up")).unwrap();
    let run = t.run(&["migrate", "dev"]);
    no_panic(&run);
    run.code(0);
}

#[test]
fn sql_with_nul_bytes_is_refused_clearly() {
    let t = sqlite_basic("nul_bytes");
    std::fs::write(
        t.migrations()
            .join("20240103000000_post_views/migration.sql"),
        "ALTER TABLE \"Post\" ADD COLUMN \"views\" INTEGER NOT NULL DEFAULT 0;\n\0\0\0\n",
    )
    .unwrap();
    // It used to hang forever in the SQLite driver; now it is refused before anything runs.
    let mut child = t
        .cmd(&["migrate", "dev"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("migrate hung on a NUL byte");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let run = Run::from(child.wait_with_output().unwrap());
    refused(&t, &run, "20240103000000_post_views/migration.sql:2");
    assert!(run.stderr.contains("NUL byte"), "{}", run.stderr);
    // A UTF-16 file (what some editors save on Windows) is the common way to get there.
    let utf16: Vec<u8> = "CREATE TABLE x (id INTEGER);\n"
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    std::fs::write(
        t.migrations()
            .join("20240103000000_post_views/migration.sql"),
        [&[0xff, 0xfe][..], &utf16].concat(),
    )
    .unwrap();
    refused(&t, &t.run(&["migrate", "dev"]), "migration.sql:1");
}

/// Writes `n` small migrations: the first creates a table, each later one adds a row to it.
fn many_migrations(t: &TestContext, n: usize) {
    let _ = std::fs::remove_dir_all(t.migrations());
    for i in 0..n {
        let dir = t
            .migrations()
            .join(format!("{:014}_m{i}", 20_240_101_000_000u64 + i as u64));
        std::fs::create_dir_all(&dir).unwrap();
        let sql = if i == 0 {
            "CREATE TABLE \"log\" (id INTEGER);\n".to_owned()
        } else {
            format!("INSERT INTO \"log\" (id) VALUES ({i});\n")
        };
        std::fs::write(dir.join("migration.sql"), sql).unwrap();
    }
}

#[test]
fn ten_thousand_migrations_deploy_and_report_quickly() {
    let t = TestContext::new(Engine::Sqlite, "ten_thousand").unwrap();
    many_migrations(&t, 10_000);
    // The database lives in memory-backed /dev/shm where there is one: ten thousand commits
    // are ten thousand fsyncs, which measure the disk, not dbdeploy.
    let shm = std::path::Path::new("/dev/shm");
    let db = if shm.is_dir() {
        shm.join(format!("dbdeploy-it-{}-10k.db", std::process::id()))
    } else {
        t.path().join("test.db")
    };
    let url = format!("sqlite://{}", db.display());
    let run = |args: &[&str]| Run::from(t.cmd(args).env("DATABASE_URL", &url).output().unwrap());
    let count = |sql: &str| {
        let out = std::process::Command::new("sqlite3")
            .arg(&db)
            .arg(sql)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };

    let started = Instant::now();
    let status = run(&["status", "dev", "--json"]);
    status.code(4);
    assert_eq!(
        status.json()["result"]["pending"].as_array().map(Vec::len),
        Some(10_000)
    );
    let status_took = started.elapsed();

    let started = Instant::now();
    let deploy = run(&["migrate", "dev", "--json"]);
    no_panic(&deploy);
    deploy.code(0);
    assert_eq!(deploy.json()["result"]["migrations_applied"], 10_000);
    let migrate_took = started.elapsed();
    assert_eq!(
        count("SELECT COUNT(*) FROM _prisma_migrations WHERE finished_at IS NOT NULL"),
        "10000"
    );
    assert_eq!(count("SELECT COUNT(*) FROM log"), "9999");

    let started = Instant::now();
    run(&["status", "dev"]).code(0);
    let again = run(&["migrate", "dev"]);
    again.code(0);
    assert!(
        again.stdout.contains("No pending migrations"),
        "{}",
        again.stdout
    );
    let again_took = started.elapsed();
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    // Generous for a loaded 2-core machine and a debug build; quadratic work blows them (a
    // no-op deploy took 5.5 s before the plan used sets).
    assert!(
        status_took < Duration::from_secs(10),
        "status took {status_took:?}"
    );
    assert!(
        migrate_took < Duration::from_secs(90),
        "migrate took {migrate_took:?}"
    );
    assert!(
        again_took < Duration::from_secs(10),
        "status + no-op migrate took {again_took:?}"
    );
}

#[test]
fn fifty_megabyte_migration_deploys() {
    let t = sqlite_basic("fifty_megabytes");
    let file = t
        .migrations()
        .join("20240103000000_post_views/migration.sql");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&file).unwrap());
        writeln!(
            f,
            "CREATE TABLE \"Big\" (id INTEGER PRIMARY KEY, body TEXT NOT NULL);"
        )
        .unwrap();
        let row = "x".repeat(1000);
        // 50 000 statements of about 1 KB: 50 MB.
        for i in 0..50_000 {
            writeln!(
                f,
                "INSERT INTO \"Big\" (id, body) VALUES ({i}, '{row}; -- not a comment');"
            )
            .unwrap();
        }
    }
    assert!(std::fs::metadata(&file).unwrap().len() > 50_000_000);
    let started = Instant::now();
    let run = t.run(&["migrate", "dev", "--json"]);
    no_panic(&run);
    run.code(0);
    let took = started.elapsed();
    assert_eq!(run.json()["result"]["migrations_applied"], 3);
    assert_eq!(t.sql("SELECT COUNT(*) FROM \"Big\""), ["50000"]);
    assert_eq!(
        t.sql("SELECT COUNT(*) FROM \"Big\" WHERE body LIKE '%; -- not a comment'"),
        ["50000"]
    );
    assert!(took < Duration::from_secs(90), "took {took:?}");
    let started = Instant::now();
    t.run(&["status", "dev"]).code(0);
    let preview = t.run(&["migrate", "dev", "--dry-run"]);
    preview.code(0);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
}

engine_test!(names_with_spaces_unicode_and_quotes, |t: &TestContext| {
    let names = [
        "20240101000000_add users",
        "20240102000000_ünïcödé_✓_表",
        "20240103000000_it's \"quoted\" `back`",
    ];
    let q = |s: &str| t.engine.q(s);
    write_migrations(
        t,
        &[
            (
                names[0],
                format!("CREATE TABLE {} ({} INTEGER);\n", q("a b"), q("id")),
            ),
            (
                names[1],
                format!("CREATE TABLE {} ({} INTEGER);\n", q("Zürich ✓"), q("id")),
            ),
            (
                names[2],
                format!("CREATE TABLE {} ({} INTEGER);\n", q("it's"), q("id")),
            ),
        ],
    );
    let run = t.run(&["migrate", "staging", "--json"]);
    no_panic(&run);
    run.code(0);
    let doc = run.json();
    let applied: Vec<&str> = doc["result"]["migrations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(applied, names);
    let mut recorded = t.sql("SELECT migration_name FROM _prisma_migrations");
    recorded.sort();
    assert_eq!(recorded, names);
    let run = t.run(&["status", "staging", "--json"]);
    run.code(0);
    let run = t.run(&["migrate", "staging"]);
    run.code(0);
    assert!(
        run.stdout.contains("No pending migrations"),
        "{}",
        run.stdout
    );
    let lines = audit_lines(t.path());
    assert_eq!(lines[0]["migrations"], serde_json::json!(names));
});

/// A password full of URL delimiters, percent-encoded in the URL as it must be.
const PASSWORD: &str = "p@ss:w/o#rd?&%";
const ENCODED: &str = "p%40ss%3Aw%2Fo%23rd%3F%26%25";

fn password_url(t: &TestContext, user: &str) -> String {
    let mut u = url::Url::parse(&t.url).unwrap();
    u.set_username(user).unwrap();
    let text = u.to_string();
    // Set by hand: the url crate would re-encode it its own way.
    text.replacen(&format!("{user}@"), &format!("{user}:{ENCODED}@"), 1)
}

#[track_caller]
fn never_shows_the_password(t: &TestContext, text: &str) {
    for secret in [PASSWORD, ENCODED, "p@ss", "w/o#rd"] {
        assert!(!text.contains(secret), "{secret} shown in:\n{text}");
    }
    let _ = t;
}

#[test]
fn special_characters_in_the_password_postgres_and_mariadb() {
    for engine in [Engine::Postgres, Engine::MariaDb] {
        let Some(t) = TestContext::new(engine, "password_chars") else {
            continue;
        };
        t.fixture("basic");
        let user = format!("dbd_pw_{}", std::process::id());
        let db = t.url.rsplit('/').next().unwrap().to_owned();
        let escaped = PASSWORD.replace('\'', "''");
        match engine {
            Engine::Postgres => {
                t.sql(&format!(
                    "DROP ROLE IF EXISTS {user}; CREATE ROLE {user} LOGIN PASSWORD '{escaped}'; \
                     GRANT ALL ON SCHEMA public TO {user}"
                ));
            }
            _ => {
                t.sql(&format!(
                    "DROP USER IF EXISTS '{user}'@'%'; CREATE USER '{user}'@'%' IDENTIFIED BY '{escaped}'; \
                     GRANT ALL ON `{db}`.* TO '{user}'@'%'"
                ));
            }
        }
        let url = password_url(&t, &user);
        let run = Run::from(
            t.cmd(&["migrate", "staging", "--json"])
                .env("DATABASE_URL", &url)
                .output()
                .unwrap(),
        );
        no_panic(&run);
        run.code(0);
        never_shows_the_password(&t, &run.all());
        assert_eq!(t.prisma_rows().len(), 3);
        let audit = std::fs::read_to_string(t.path().join(".dbdeploy/audit.jsonl")).unwrap();
        never_shows_the_password(&t, &audit);
        never_shows_the_password(&t, &t.sql("SELECT * FROM _dbdeploy_history").join("\n"));

        // A wrong password: refused by the server (MariaDB) without echoing either password.
        let wrong = url.replace(ENCODED, "wr%40ng%3Apw");
        let run = Run::from(
            t.cmd(&["status", "staging", "--json"])
                .env("DATABASE_URL", &wrong)
                .output()
                .unwrap(),
        );
        no_panic(&run);
        never_shows_the_password(&t, &run.all());
        assert!(
            !run.all().contains("wr@ng:pw") && !run.all().contains("wr%40ng"),
            "{}",
            run.all()
        );
        let drop = match engine {
            Engine::Postgres => format!(
                "REVOKE ALL ON SCHEMA public FROM {user}; REASSIGN OWNED BY {user} TO postgres; DROP OWNED BY {user}; DROP ROLE {user}"
            ),
            _ => format!("DROP USER '{user}'@'%'"),
        };
        t.sql(&drop);
    }
}

/// A TCP server that accepts connections and never says a word.
fn silent_server() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            held.push(stream);
        }
    });
    port
}

#[test]
fn a_server_that_never_answers_times_out() {
    let t = TestContext::new(Engine::Sqlite, "silent_server").unwrap();
    write_migrations(
        &t,
        &[(
            "20240101000000_init",
            "CREATE TABLE a (id INTEGER);\n".into(),
        )],
    );
    let port = silent_server();
    for url in [
        format!("postgres://app:s3cret-pw@127.0.0.1:{port}/app"),
        format!("mysql://app:s3cret-pw@127.0.0.1:{port}/app"),
    ] {
        for args in [
            &["migrate", "staging", "--json"][..],
            &["status", "staging", "--json"][..],
            &["health", "staging", "--json"][..],
        ] {
            let started = Instant::now();
            let mut child = t
                .cmd(args)
                .env("DATABASE_URL", &url)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            // staging waits 1 s; each attempt gets at least 2 s.
            let deadline = started + Duration::from_secs(30);
            while child.try_wait().unwrap().is_none() {
                if Instant::now() > deadline {
                    let _ = child.kill();
                    panic!("{args:?} against {url} hung");
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let run = Run::from(child.wait_with_output().unwrap());
            let took = started.elapsed();
            no_panic(&run);
            run.code(1);
            assert!(took < Duration::from_secs(10), "{args:?} took {took:?}");
            let doc = run.json();
            assert_eq!(doc["error"]["code"], "connection-failed", "{doc}");
            let message = doc["error"]["message"].as_str().unwrap();
            assert!(message.contains("did not answer"), "{message}");
            assert!(!run.all().contains("s3cret-pw"), "{}", run.all());
        }
    }
}
