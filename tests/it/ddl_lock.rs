//! DDL never waits unboundedly behind another session's lock (issue 11, item 6): a migration
//! blocked by a long transaction is retried a bounded number of times, then fails naming the
//! blocking session with nothing applied; released during the retries, it succeeds with one
//! tracking row.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{Engine, TestContext, run_on, write_migrations};

/// The application name the blocking session shows.
const BLOCKER: &str = "ddl-blocker";

/// A session of the engine's own client holding a transaction open on table `t`.
struct Blocker {
    child: Child,
}

impl Blocker {
    fn start(t: &TestContext) -> Self {
        let mut cmd = match t.engine {
            Engine::Postgres => {
                let mut c = Command::new("psql");
                c.arg(&t.url)
                    .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
                    .env("PGAPPNAME", BLOCKER);
                c
            }
            Engine::MariaDb => {
                let u = url::Url::parse(&t.url).unwrap();
                let mut c = Command::new("mariadb");
                c.arg("-h")
                    .arg(u.host_str().unwrap())
                    .arg("-P")
                    .arg(u.port().unwrap_or(3306).to_string())
                    .arg("-u")
                    .arg(u.username())
                    .args(["-N", "-B", "--unbuffered"])
                    .arg(&u.path()[1..]);
                c
            }
            Engine::Sqlite => unreachable!(),
        };
        let log = t.path().join("blocker.log");
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start the blocking session");
        // The client prints `ready` only after the SELECT inside the transaction has returned,
        // so the lock on `t` is held from then on, whatever else the server is doing.
        let open = match t.engine {
            Engine::Postgres => "BEGIN; SELECT * FROM t; SELECT 'ready';\n",
            _ => "SET SESSION wait_timeout = 120; BEGIN; SELECT * FROM t; SELECT 'ready';\n",
        };
        child
            .stdin
            .as_mut()
            .unwrap()
            .write_all(open.as_bytes())
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.trim() == "ready" {
                    let _ = tx.send(());
                }
            }
        });
        let blocker = Self { child };
        if rx.recv_timeout(Duration::from_secs(60)).is_err() {
            panic!(
                "the blocking session did not start: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        blocker
    }

    /// Ends the transaction and the session.
    fn release(mut self) {
        if let Some(mut stdin) = self.child.stdin.take() {
            let _ = stdin.write_all(b"COMMIT;\n");
        }
        let _ = self.child.wait();
    }
}

impl Drop for Blocker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `t` exists; the pending migration alters it.
fn setup(t: &TestContext) {
    t.write_config(
        "[environments.ci]\nurl_env = \"DATABASE_URL\"\nddl_lock_timeout_seconds = 1\nddl_lock_retries = 2\n",
    );
    write_migrations(
        t,
        &[("20240101000000_t", "CREATE TABLE t (n INTEGER);\n".into())],
    );
    t.run(&["migrate", "ci"]).code(0);
    write_migrations(
        t,
        &[
            ("20240101000000_t", "CREATE TABLE t (n INTEGER);\n".into()),
            (
                "20240102000000_alter",
                "ALTER TABLE t ADD COLUMN y INTEGER;\n".into(),
            ),
        ],
    );
}

fn columns(t: &TestContext) -> Vec<String> {
    t.sql(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 't' \
         AND table_schema = current_schema() ORDER BY ordinal_position",
    )
}

fn columns_of(t: &TestContext) -> Vec<String> {
    match t.engine {
        Engine::Postgres => columns(t),
        _ => t.sql(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 't' \
             AND table_schema = DATABASE() ORDER BY ordinal_position",
        ),
    }
}

fn on_servers(test: &str, body: impl Fn(&TestContext)) {
    run_on(Engine::Postgres, test, &body);
    run_on(Engine::MariaDb, test, &body);
}

#[test]
fn a_blocked_migration_is_retried_then_fails_naming_the_blocker() {
    on_servers("ddl_blocked", |t| {
        setup(t);
        let blocker = Blocker::start(t);
        let started = Instant::now();
        let run = t.run(&["migrate", "ci", "--json"]);
        let took = started.elapsed();
        run.code(1);
        let doc = run.json();
        let message = doc["error"]["message"].as_str().unwrap().to_owned();
        assert!(message.contains("3 attempts"), "{doc}");
        if t.engine == Engine::Postgres {
            assert!(message.contains(BLOCKER), "the blocker is named: {doc}");
            assert!(message.contains("idle in transaction"), "{doc}");
        }
        assert!(
            message.contains("pid") || message.contains("connection"),
            "{doc}"
        );
        // Three waits of 1 s and the pauses between them; never unbounded.
        assert!(took >= Duration::from_secs(3), "{took:?}");
        assert!(took < Duration::from_secs(30), "{took:?}");
        assert_eq!(columns_of(t), ["n"], "nothing applied");
        if t.engine == Engine::Postgres {
            assert_eq!(t.prisma_rows().len(), 1, "no row for the failed attempts");
        }
        blocker.release();
    });
}

#[test]
fn a_migration_blocked_for_a_moment_succeeds_with_one_tracking_row() {
    on_servers("ddl_released", |t| {
        setup(t);
        let blocker = Blocker::start(t);
        let releaser = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(1500));
            blocker.release();
        });
        let run = t.run(&["migrate", "ci", "--json"]);
        releaser.join().unwrap();
        run.code(0);
        assert_eq!(columns_of(t), ["n", "y"]);
        let rows = t.prisma_rows();
        assert_eq!(rows.len(), 2, "{rows:?}");
        assert!(rows[1].starts_with("20240102000000_alter|"), "{rows:?}");
        assert!(rows[1].ends_with("|finished|-|1|-"), "{rows:?}");
    });
}

#[test]
fn the_preview_and_the_summary_show_the_ddl_lock_wait() {
    run_on(Engine::Postgres, "ddl_preview", |t: &TestContext| {
        setup(t);
        let run = t.run(&["migrate", "ci", "--dry-run"]);
        run.code(0);
        assert!(
            run.all().contains("DDL lock wait: 1 s, 2 retries"),
            "{}",
            run.all()
        );
        // The approval summary, on a terminal, with the defaults.
        t.write_config("");
        let mut term = t.on_terminal(&["migrate", "production"]);
        std::thread::sleep(Duration::from_secs(2));
        term.type_line("no");
        let run = term.wait(Duration::from_secs(30));
        run.code(3);
        assert!(
            run.all().contains("DDL lock wait: 5 s, 3 retries"),
            "{}",
            run.all()
        );
    });
}

/// A statement waiting for a lock longer than 10 s says whom it waits for while it waits.
#[test]
fn a_long_lock_wait_names_the_blocker_while_it_waits() {
    run_on(Engine::Postgres, "ddl_heartbeat", |t: &TestContext| {
        setup(t);
        t.write_config(
            "[environments.ci]\nurl_env = \"DATABASE_URL\"\nddl_lock_timeout_seconds = 30\nddl_lock_retries = 0\n",
        );
        let blocker = Blocker::start(t);
        let releaser = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(13));
            blocker.release();
        });
        let run = t.run(&["migrate", "ci"]);
        releaser.join().unwrap();
        run.code(0);
        let waiting: Vec<&str> = run
            .stdout
            .lines()
            .filter(|l| {
                l.starts_with("apply: 20240102000000_alter still running, waiting for pid ")
            })
            .collect();
        assert_eq!(waiting.len(), 1, "{}", run.stdout);
        assert!(
            waiting[0].contains(&format!("application {BLOCKER}")),
            "{}",
            run.stdout
        );
        assert!(waiting[0].contains("idle in transaction"), "{}", run.stdout);
        assert!(waiting[0].ends_with(" so far"), "{}", run.stdout);
        assert_eq!(columns_of(t), ["n", "y"]);
    });
}
