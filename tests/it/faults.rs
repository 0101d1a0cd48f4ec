//! Faults in the middle of a deploy: the process killed (`kill -9`), the server connection
//! cut, Ctrl-C, a disk that fills up while the backup is written. Each scenario checks what an
//! operator would check afterwards: which migrations the tracking table records, the schema,
//! that no row of user data was lost, and that the next `dbdeploy migrate` either completes or
//! refuses with a message that says what to do.
#![allow(clippy::disallowed_methods, clippy::print_stderr)]

use std::io::{BufRead, BufReader};
use std::path::Path;
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

fn collect(
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
fn deployed_init(t: &TestContext, secs: u32) {
    three_migrations(t, secs);
    t.run(&["migrate", "staging", "--to", INIT]).code(0);
    seed_users(t);
}

/// On MariaDB a migration that stopped part-way blocks until resolved; this says so, then
/// resolves it the way the hint says and deploys the rest.
fn maria_blocked_then_resolved(t: &TestContext, slow_rows: &[&str]) {
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

// kill -9 in the middle of a long migration ------------------------------------------------

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

// The server ends dbdeploy's session in the middle of a migration ----------------------------

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

// Ctrl-C during apply -----------------------------------------------------------------------

engine_test!(
    ctrl_c_during_apply_stops_after_the_current_migration,
    |t: &TestContext| {
        deployed_init(t, 2);
        let mut run = Spawned::start(t, &["migrate", "staging", "--json"]);
        wait_until_slow_runs(t, &mut run);
        run.signal("INT");
        let run = run.finish(Duration::from_secs(30));
        run.code(130);
        assert!(!run.all().contains("panicked"), "{}", run.all());
        let doc = run.json();
        assert_eq!(doc["status"], "error", "{doc}");
        assert_eq!(doc["error"]["code"], "interrupted", "{doc}");
        assert_eq!(doc["error"]["class"], "mid-deployment", "{doc}");
        assert!(
            run.stderr
                .lines()
                .any(|l| l.starts_with("✗ apply") && l.contains("interrupted (Ctrl-C)")),
            "{}",
            run.stderr
        );
        assert!(
            run.stderr.contains("interrupt received"),
            "the first Ctrl-C is acknowledged at once:\n{}",
            run.stderr
        );
        assert!(
            !has_table(t, "After"),
            "a migration after the interrupt ran"
        );
        assert_users_kept(t);

        let audit = audit_lines(t.path());
        assert_eq!(audit.last().unwrap()["status"], "interrupted", "{audit:?}");
        let history = t.sql(
            "SELECT status, migrations_applied FROM _dbdeploy_history ORDER BY started_at DESC",
        );
        let applied_before = if t.engine == Engine::MariaDb { 0 } else { 1 };
        assert_eq!(
            history.first(),
            Some(&format!("interrupted|{applied_before}")),
            "{history:?}"
        );

        if t.engine == Engine::MariaDb {
            // Statement by statement: the sleep finished, the INSERT after it never ran, and the
            // migration is recorded as failed the way Prisma records failures.
            let message = doc["error"]["message"].as_str().unwrap();
            assert!(
                message.contains(&format!("`{SLOW}` after statement 2 of 3")),
                "{message}"
            );
            assert!(
                doc["error"]["hints"]
                    .to_string()
                    .contains(&format!("dbdeploy resolve staging --applied {SLOW}")),
                "{doc}"
            );
            let rows = t.prisma_rows();
            assert_eq!(rows.len(), 2, "{rows:?}");
            assert_eq!(
                rows[1],
                format!("{SLOW}|{}|unfinished|-|0|logs", checksum(t, SLOW))
            );
            let logs = t.sql(&format!(
                "SELECT logs FROM _prisma_migrations WHERE migration_name = '{SLOW}'"
            ));
            assert!(logs.concat().contains("Ctrl-C"), "{logs:?}");
            maria_blocked_then_resolved(t, &[]);
            return;
        }
        // The migration running at Ctrl-C finished and was recorded; nothing after it started.
        assert_eq!(t.prisma_rows(), [finished(t, INIT), finished(t, SLOW)]);
        assert_eq!(
            t.sql(&format!(
                "SELECT id FROM {} WHERE id < 0",
                t.engine.q("Slow")
            )),
            ["-1"]
        );
        let message = doc["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("after 1 migration(s) were applied; 1 not started"),
            "{message}"
        );
        assert_eq!(doc["result"]["migrations_applied"], 1, "{doc}");
        let run = t.run(&["migrate", "staging", "--json"]);
        run.code(0);
        assert_eq!(run.json()["result"]["migrations_applied"], 1);
        assert_eq!(
            t.prisma_rows(),
            [finished(t, INIT), finished(t, SLOW), finished(t, AFTER)]
        );
        assert_users_kept(t);
        assert_schema_as_clean_deploy(t);
    }
);

// A full disk while the backup is written -----------------------------------------------------

/// A project whose `safe` environment backs up to `backups/` before applying, with `init`
/// applied and about 300 KB of user rows, so that any backup is far larger than 64 KB.
fn deployed_with_data(t: &TestContext) {
    three_migrations(t, 0);
    t.write_config(
        "[environments.safe]\nurl_env = \"DATABASE_URL\"\nbackup_before_migrate = true\n\
         rollback_on_failure = true\n\n[backup]\ndir = \"backups\"\n",
    );
    t.run(&["migrate", "safe", "--to", INIT, "--skip-backup"])
        .code(0);
    seed_users(t);
    let filler = match t.engine {
        Engine::Sqlite => "hex(randomblob(32))",
        Engine::Postgres => "md5(x::text) || md5((x * 7)::text)",
        Engine::MariaDb => "CONCAT(MD5(x), MD5(x * 7))",
    };
    let prologue = if t.engine == Engine::MariaDb {
        "SET SESSION max_recursive_iterations = 10000; "
    } else {
        ""
    };
    t.sql(&format!(
        "{prologue}INSERT INTO {} ({}, {}) WITH RECURSIVE c(x) AS (SELECT 3 UNION ALL SELECT x + 1 FROM c \
         WHERE x < 5002) SELECT x, {filler} FROM c",
        t.engine.q("User"),
        t.engine.q("id"),
        t.engine.q("email")
    ));
}

/// Every file under the backup folder (there must be none after a failed backup).
fn backup_files(t: &TestContext) -> Vec<String> {
    let dir = t.path().join("backups/safe");
    std::fs::read_dir(&dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// After a backup that could not be written: exit 1 before any change, no file left behind,
/// and the user rows untouched.
fn assert_stopped_before_any_change(t: &TestContext, run: &Run, rows_before: &[String]) {
    run.code(1);
    assert!(!run.all().contains("panicked"), "{}", run.all());
    let doc = run.json();
    assert_eq!(doc["error"]["class"], "pre-deployment", "{doc}");
    assert_eq!(doc["result"]["migrations_applied"], 0, "{doc}");
    assert!(
        doc["error"]["hints"]
            .to_string()
            .contains("nothing was changed"),
        "{doc}"
    );
    assert_eq!(t.prisma_rows(), rows_before);
    assert!(!has_table(t, "Slow") && !has_table(t, "After"));
    assert_eq!(backup_files(t), Vec::<String>::new(), "left behind");
    assert_eq!(
        t.sql(&format!("SELECT COUNT(*) FROM {}", t.engine.q("User"))),
        ["5002"]
    );
}

/// A 64 KB tmpfs mounted on `dir`, unmounted on drop.
struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    /// Mounts the tmpfs, or says why it could not be mounted.
    fn mount(dir: &Path) -> Result<Self, String> {
        std::fs::create_dir_all(dir).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs"])
            .arg(dir)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run `mount`: {e}"))?;
        if out.status.success() {
            Ok(Self(dir.to_owned()))
        } else {
            Err(format!(
                "`mount -t tmpfs` failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }

    /// The tmpfs for `test`, or `None` (with the reason on stderr) where this machine does not
    /// let the tests mount one. As root under `DBDEPLOY_REQUIRE_SERVICES=1` the test fails
    /// instead: root can mount a tmpfs, so a refusal there is a real fault, not a skip.
    fn mount_or_skip(dir: &Path, test: &str) -> Option<Self> {
        match Self::mount(dir) {
            Ok(disk) => Some(disk),
            Err(reason) => {
                let required = std::env::var("DBDEPLOY_REQUIRE_SERVICES").is_ok_and(|v| v == "1");
                assert!(
                    !(required && running_as_root()),
                    "{test}: {reason} (running as root with DBDEPLOY_REQUIRE_SERVICES=1)"
                );
                eprintln!("skipping {test}: {reason}; the file_size_limit_* tests still run");
                None
            }
        }
    }
}

/// Whether the tests run as root: `/proc/self` belongs to the process's effective user.
fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

engine_test!(disk_full_while_writing_the_backup, |t: &TestContext| {
    deployed_with_data(t);
    let rows = t.prisma_rows();
    let Some(disk) = SmallDisk::mount_or_skip(
        &t.path().join("backups"),
        &format!("disk_full_while_writing_the_backup on {:?}", t.engine),
    ) else {
        return;
    };
    // The pre-flight check sees that the database cannot fit.
    let run = t.run(&["migrate", "safe", "--json"]);
    assert_stopped_before_any_change(t, &run, &rows);
    let code = run.json()["error"]["code"].clone();
    if t.engine == Engine::MariaDb {
        // InnoDB's table sizes in information_schema lag behind fresh inserts, so the estimate
        // may fit and the dump's write is what fails; either way the stop is clean.
        assert!(
            code == "insufficient-disk-space" || code == "backup-failed",
            "{code}"
        );
    } else {
        assert_eq!(code, "insufficient-disk-space");
    }

    // Without it (or when the disk fills up during the dump) the write itself fails.
    let run = t.run(&["migrate", "safe", "--json", "--skip-health-check"]);
    assert_stopped_before_any_change(t, &run, &rows);
    let doc = run.json();
    assert_eq!(doc["error"]["code"], "backup-failed", "{doc}");
    // The system's error is the cause under the message.
    let message = format!("{} {}", doc["error"]["message"], doc["error"]["causes"]);
    assert!(
        message.contains("No space left on device") || message.contains("full"),
        "{message}"
    );

    // With room again, the same deploy goes through.
    drop(disk);
    let run = t.run(&["migrate", "safe", "--json"]);
    run.code(0);
    assert_eq!(run.json()["result"]["backup_status"], "created");
    assert_eq!(t.prisma_rows().len(), 3);
});

engine_test!(
    file_size_limit_while_writing_the_backup,
    |t: &TestContext| {
        deployed_with_data(t);
        let rows = t.prisma_rows();
        // `ulimit -f` (in KiB with bash): writing past it raises SIGXFSZ, which would kill
        // dbdeploy mid-write and leave a partial backup behind.
        let script = "ulimit -f 128 && exec \"$0\" -C \"$1\" migrate safe --json";
        let out = Command::new("bash")
            .arg("-c")
            .arg(script)
            .arg(env!("CARGO_BIN_EXE_dbdeploy"))
            .arg(t.path())
            .env("DATABASE_URL", &t.url)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let run = Run::from(out);
        assert_ne!(run.code, -1, "killed by a signal:\n{}", run.all());
        assert_stopped_before_any_change(t, &run, &rows);
        let doc = run.json();
        assert_eq!(doc["error"]["code"], "backup-failed", "{doc}");
        let lines = audit_lines(t.path());
        assert_eq!(lines.last().unwrap()["status"], "error");
    }
);

/// The disk fills up after the dump, while its manifest is written: no half-written manifest,
/// no orphaned dump.
#[test]
fn disk_full_while_writing_the_manifest() {
    // pg_dump writes the same files for the same data, so the room its files take is exact.
    let Some(t) = TestContext::new(Engine::Postgres, "disk_full_manifest") else {
        return;
    };
    three_migrations(&t, 0);
    t.write_config(
        "[environments.safe]\nurl_env = \"DATABASE_URL\"\nbackup_before_migrate = true\n\n\
         [backup]\ndir = \"backups\"\n",
    );
    t.run(&["migrate", "safe", "--to", INIT, "--skip-backup"])
        .code(0);
    seed_users(&t);
    // Measure the dump this database makes, then leave exactly room for it and no more.
    t.run(&["backup", "safe"]).code(0);
    let page = 4096;
    let dump_dir = std::fs::read_dir(t.path().join("backups/safe"))
        .unwrap()
        .filter_map(Result::ok)
        .find(|e| e.file_name().to_string_lossy().ends_with(".pgdir"))
        .expect("a directory-format dump")
        .path();
    let room: u64 = std::fs::read_dir(&dump_dir)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len().div_ceil(page) * page)
        .sum();
    std::fs::remove_dir_all(t.path().join("backups")).unwrap();
    let rows = t.prisma_rows();
    let Some(_disk) = SmallDisk::mount_or_skip(
        &t.path().join("backups"),
        "disk_full_while_writing_the_manifest",
    ) else {
        return;
    };
    std::fs::write(
        t.path().join("backups/filler"),
        vec![0u8; usize::try_from(64 * 1024 - room).unwrap()],
    )
    .unwrap();
    let run = t.run(&["migrate", "safe", "--json", "--skip-health-check"]);
    run.code(1);
    let doc = run.json();
    assert_eq!(doc["error"]["code"], "backup-failed", "{doc}");
    assert!(
        doc["error"]["message"]
            .as_str()
            .unwrap()
            .contains("manifest"),
        "{doc}"
    );
    assert_eq!(backup_files(&t), Vec::<String>::new(), "left behind");
    assert_eq!(t.prisma_rows(), rows);
    assert_users_kept(&t);
}
