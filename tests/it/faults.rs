//! Faults in the middle of a deploy: the process killed (`kill -9`) and the server connection
//! cut. Each scenario checks what an operator would check afterwards: which migrations the
//! tracking table records, the schema, that no row of user data was lost, and that the next
//! `dbdeploy migrate` either completes or refuses with a message that says what to do. The
//! helpers here are shared with the other fault and concurrency tests.
#![allow(clippy::disallowed_methods, clippy::print_stderr)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::{Engine, Run, TestContext, audit_lines, checksum, has_table, write_migrations};
use crate::engine_test;

pub const INIT: &str = "20240101000000_init";
pub const SLOW: &str = "20240102000000_slow";
pub const AFTER: &str = "20240103000000_after";

/// A statement that keeps the server busy for about `secs` seconds.
pub fn slow_statement(engine: Engine, secs: u32) -> String {
    match engine {
        Engine::Postgres => format!("SELECT pg_sleep({secs});"),
        Engine::MariaDb => format!("SELECT SLEEP({secs});"),
        // SQLite has no sleep: count through a recursive CTE (about 1.5 million rows a second
        // on a slow machine) and keep a handful of them.
        Engine::Sqlite => format!(
            "INSERT INTO \"Slow\" (id) SELECT x FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL \
             SELECT x + 1 FROM c WHERE x < {}) SELECT x FROM c) WHERE x % 5000000 = 0;",
            u64::from(secs) * 5_000_000
        ),
    }
}

/// init (a `User` table), slow (creates `Slow`, then is busy, then inserts a row: three
/// statements), after (creates `After`).
pub fn three_migrations(t: &TestContext, secs: u32) {
    let q = |s: &str| t.engine.q(s);
    write_migrations(
        t,
        &[
            (
                INIT,
                format!(
                    "CREATE TABLE {} ({} INTEGER NOT NULL PRIMARY KEY, {} VARCHAR(100) NOT NULL);\n",
                    q("User"),
                    q("id"),
                    q("email")
                ),
            ),
            (
                SLOW,
                format!(
                    "CREATE TABLE {} ({} INTEGER);\n{}\nINSERT INTO {} ({}) VALUES (-1);\n",
                    q("Slow"),
                    q("id"),
                    slow_statement(t.engine, secs),
                    q("Slow"),
                    q("id")
                ),
            ),
            (
                AFTER,
                format!("CREATE TABLE {} ({} INTEGER);\n", q("After"), q("id")),
            ),
        ],
    );
}

/// The user data every scenario must keep.
pub fn seed_users(t: &TestContext) {
    t.sql(&format!(
        "INSERT INTO {} ({}, {}) VALUES (1, 'ann@example.com'), (2, 'O''Brien ✓')",
        t.engine.q("User"),
        t.engine.q("id"),
        t.engine.q("email")
    ));
}

#[track_caller]
pub fn assert_users_kept(t: &TestContext) {
    assert_eq!(
        t.sql(&format!(
            "SELECT {}, {} FROM {} ORDER BY 1",
            t.engine.q("id"),
            t.engine.q("email"),
            t.engine.q("User")
        )),
        ["1|ann@example.com", "2|O'Brien ✓"],
        "user data changed"
    );
}

pub fn finished(t: &TestContext, name: &str) -> String {
    format!("{name}|{}|finished|-|1|-", checksum(t, name))
}

/// The schema fingerprint dbdeploy recorded at the end of the newest successful run.
fn recorded_schema(t: &TestContext) -> String {
    t.sql(
        "SELECT schema_hash FROM _dbdeploy_history WHERE status = 'success' \
         ORDER BY finished_at DESC",
    )
    .into_iter()
    .next()
    .expect("a successful run with a schema")
}

/// The schema after recovery is exactly what one clean deploy of the same migrations makes.
#[track_caller]
pub fn assert_schema_as_clean_deploy(t: &TestContext) {
    let clean = TestContext::new(t.engine, "clean_twin").expect("the same server");
    let mut files = Vec::new();
    for entry in std::fs::read_dir(t.migrations()).unwrap() {
        let entry = entry.unwrap();
        let sql = std::fs::read_to_string(entry.path().join("migration.sql")).unwrap();
        files.push((entry.file_name().to_string_lossy().into_owned(), sql));
    }
    let files: Vec<(&str, String)> = files.iter().map(|(n, s)| (n.as_str(), s.clone())).collect();
    write_migrations(&clean, &files);
    clean.run(&["migrate", "staging"]).code(0);
    assert_eq!(
        recorded_schema(t),
        recorded_schema(&clean),
        "the schema differs from a clean deploy"
    );
}

/// A dbdeploy process running in the background, its stdout collected line by line.
pub struct Spawned {
    pub child: Child,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<Vec<String>>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

pub(crate) fn collect(
    stream: impl std::io::Read + Send + 'static,
) -> (Arc<Mutex<Vec<String>>>, std::thread::JoinHandle<()>) {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&lines);
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            sink.lock().unwrap().push(line);
        }
    });
    (lines, reader)
}

impl Spawned {
    pub fn start(t: &TestContext, args: &[&str]) -> Self {
        let mut child = t
            .cmd(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start dbdeploy");
        let (stdout, out_reader) = collect(child.stdout.take().expect("stdout"));
        let (stderr, err_reader) = collect(child.stderr.take().expect("stderr"));
        Self {
            child,
            stdout,
            stderr,
            readers: vec![out_reader, err_reader],
        }
    }

    /// Everything printed so far, stdout then stderr.
    fn printed(&self) -> String {
        format!(
            "{}\n{}",
            self.stdout.lock().unwrap().join("\n"),
            self.stderr.lock().unwrap().join("\n")
        )
    }

    /// Waits until a line of its output contains `needle`.
    pub fn wait_for_line(&mut self, needle: &str, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            if self.printed().lines().any(|l| l.contains(needle)) {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "dbdeploy exited ({status}) before printing {needle:?}:\n{}",
                    self.printed()
                );
            }
            assert!(
                Instant::now() < deadline,
                "no line with {needle:?} within {within:?}:\n{}",
                self.printed()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends a signal by name (`INT`, `KILL`, ...).
    pub fn signal(&self, name: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill")
            .success();
        assert!(ok, "kill -{name} failed");
    }

    /// Waits for the exit (at most `within`, then kills and fails) and returns what it printed.
    pub fn finish(mut self, within: Duration) -> Run {
        let deadline = Instant::now() + within;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "dbdeploy did not exit within {within:?}:\n{}",
                    self.printed()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        for reader in self.readers {
            let _ = reader.join();
        }
        let stdout = self.stdout.lock().unwrap().join("\n");
        let stderr = self.stderr.lock().unwrap().join("\n");
        Run {
            code: status.code().unwrap_or(-1),
            stdout,
            stderr,
        }
    }
}

/// The server session of a dbdeploy running `marker` (a fragment of the running statement) in
/// the test database: PostgreSQL backend pid or MariaDB connection id.
pub fn session_running(t: &TestContext, marker: &str) -> Option<String> {
    let sql = match t.engine {
        Engine::Postgres => format!(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() \
             AND application_name = 'dbdeploy' AND query LIKE '%{marker}%' AND pid <> pg_backend_pid()"
        ),
        Engine::MariaDb => format!(
            "SELECT ID FROM information_schema.processlist WHERE DB = DATABASE() \
             AND INFO LIKE '%{marker}%' AND ID <> CONNECTION_ID()"
        ),
        Engine::Sqlite => return None,
    };
    t.sql(&sql).into_iter().next()
}

/// Waits until the slow migration is running: its statement is on the server, or (SQLite,
/// which has no server to ask) the migration before it was reported applied.
pub fn wait_until_slow_runs(t: &TestContext, run: &mut Spawned) -> Option<String> {
    // The step printed just before the first migration starts.
    run.wait_for_line("backup ", Duration::from_secs(30));
    if t.engine == Engine::Sqlite {
        std::thread::sleep(Duration::from_millis(400));
        return None;
    }
    let marker = match t.engine {
        Engine::Postgres => "pg_sleep(",
        _ => "SLEEP(",
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(id) = session_running(t, marker) {
            return Some(id);
        }
        assert!(Instant::now() < deadline, "the slow migration never ran");
        std::thread::sleep(Duration::from_millis(30));
    }
}

/// A project with `init` applied and user data in it, the slow migration and one after it.
pub(crate) fn deployed_init(t: &TestContext, secs: u32) {
    three_migrations(t, secs);
    t.run(&["migrate", "staging", "--to", INIT]).code(0);
    seed_users(t);
}

/// On MariaDB a migration that stopped part-way blocks until resolved; this says so, then
/// resolves it the way the hint says and deploys the rest.
pub(crate) fn maria_blocked_then_resolved(t: &TestContext, slow_rows: &[&str]) {
    let run = t.run(&["migrate", "staging", "--json"]);
    run.code(1);
    let doc = run.json();
    assert_eq!(doc["error"]["code"], "inconsistent-history", "{doc}");
    let message = doc["error"]["message"].as_str().unwrap();
    assert!(message.contains(SLOW), "{message}");
    let hints = doc["error"]["hints"].to_string();
    assert!(
        hints.contains(&format!("dbdeploy resolve staging --rolled-back {SLOW}"))
            && hints.contains(&format!("dbdeploy resolve staging --applied {SLOW}")),
        "{hints}"
    );
    assert!(
        run.stderr.contains("resolve"),
        "human output must name resolve:\n{}",
        run.stderr
    );
    // Undo by hand what ran, mark it rolled back, deploy again.
    assert_eq!(t.sql("SELECT id FROM `Slow` ORDER BY 1"), slow_rows);
    t.sql("DROP TABLE `Slow`");
    t.run(&["resolve", "staging", "--rolled-back", SLOW])
        .code(0);
    let run = t.run(&["migrate", "staging", "--json"]);
    run.code(0);
    assert_eq!(run.json()["result"]["migrations_applied"], 2);
    let rows = t.prisma_rows();
    assert_eq!(rows.len(), 4, "{rows:?}");
    assert_eq!(rows[0], finished(t, INIT));
    assert!(
        rows[1].starts_with(&format!("{SLOW}|")) && rows[1].contains("|unfinished|rolled_back|")
    );
    assert_eq!(rows[2..], [finished(t, SLOW), finished(t, AFTER)]);
    assert_eq!(t.sql("SELECT id FROM `Slow`"), ["-1"]);
    assert_users_kept(t);
    t.run(&["status", "staging"]).code(0);
    assert_schema_as_clean_deploy(t);
}

engine_test!(killed_in_the_middle_of_a_migration, |t: &TestContext| {
    deployed_init(t, 3);
    let mut run = Spawned::start(t, &["migrate", "staging"]);
    wait_until_slow_runs(t, &mut run);
    run.signal("KILL");
    let killed = run.finish(Duration::from_secs(30));
    assert_eq!(killed.code, -1, "not killed: {killed:?}");
    assert_users_kept(t);

    if t.engine == Engine::MariaDb {
        // DDL commits at once on MariaDB: `Slow` exists and the started row stays unfinished.
        let rows = t.prisma_rows();
        assert_eq!(rows.len(), 2, "{rows:?}");
        assert_eq!(rows[0], finished(t, INIT));
        assert_eq!(
            rows[1],
            format!("{SLOW}|{}|unfinished|-|0|-", checksum(t, SLOW))
        );
        maria_blocked_then_resolved(t, &[]);
        return;
    }
    // Atomic: nothing of the killed migration is left, not even its tracking row.
    assert_eq!(t.prisma_rows(), [finished(t, INIT)]);
    assert!(!has_table(t, "Slow"), "{:?}", t.tables());
    let run = t.run(&["migrate", "staging", "--json"]);
    run.code(0);
    let doc = run.json();
    assert_eq!(doc["result"]["migrations_applied"], 2, "{doc}");
    assert_eq!(
        t.prisma_rows(),
        [finished(t, INIT), finished(t, SLOW), finished(t, AFTER)]
    );
    assert!(has_table(t, "Slow") && has_table(t, "After"));
    assert_users_kept(t);
    t.run(&["status", "staging"]).code(0);
    assert_schema_as_clean_deploy(t);
});

fn connection_cut(engine: Engine) {
    let Some(t) = TestContext::new(engine, "connection_cut") else {
        return;
    };
    deployed_init(&t, 3);
    let mut run = Spawned::start(&t, &["migrate", "staging", "--json"]);
    let session = wait_until_slow_runs(&t, &mut run).expect("a server session");
    let cut = match engine {
        Engine::Postgres => format!("SELECT pg_terminate_backend({session})"),
        _ => format!("KILL {session}"),
    };
    t.sql(&cut);
    let run = run.finish(Duration::from_secs(30));
    run.code(1);
    assert!(!run.all().contains("panicked"), "{}", run.all());
    let doc = run.json();
    assert_eq!(doc["error"]["code"], "migration-failed", "{doc}");
    assert_eq!(doc["result"]["failed_migration"], SLOW, "{doc}");
    let hints = doc["error"]["hints"].to_string();
    assert!(
        hints.contains("connection to the database was lost"),
        "the hints must say the connection was lost, not that the file is wrong: {hints}"
    );
    assert_users_kept(&t);
    let lines = audit_lines(t.path());
    let last = lines.last().expect("an audit line");
    assert_eq!(last["status"], "error", "{last}");
    // dbdeploy connected again to record the failed run in the database too.
    assert!(run.all().contains("reconnect"), "{}", run.all());
    let history = t.sql("SELECT status FROM _dbdeploy_history ORDER BY started_at DESC");
    assert_eq!(
        history.first().map(String::as_str),
        Some("error"),
        "{history:?}"
    );

    if engine == Engine::MariaDb {
        assert_eq!(
            doc["result"]["failed_migration_rolled_back"], false,
            "{doc}"
        );
        let rows = t.prisma_rows();
        assert_eq!(rows.len(), 2, "{rows:?}");
        assert!(
            rows[1].starts_with(&format!("{SLOW}|")) && rows[1].contains("|unfinished|-|0|"),
            "{rows:?}"
        );
        maria_blocked_then_resolved(&t, &[]);
        return;
    }
    assert_eq!(doc["result"]["failed_migration_rolled_back"], true, "{doc}");
    assert_eq!(t.prisma_rows(), [finished(&t, INIT)]);
    assert!(!has_table(&t, "Slow"));
    let run = t.run(&["migrate", "staging", "--json"]);
    run.code(0);
    assert_eq!(run.json()["result"]["migrations_applied"], 2);
    assert_eq!(
        t.prisma_rows(),
        [finished(&t, INIT), finished(&t, SLOW), finished(&t, AFTER)]
    );
    assert_users_kept(&t);
    assert_schema_as_clean_deploy(&t);
}

#[test]
fn connection_cut_postgres() {
    connection_cut(Engine::Postgres);
}

#[test]
fn connection_cut_mariadb() {
    connection_cut(Engine::MariaDb);
}
