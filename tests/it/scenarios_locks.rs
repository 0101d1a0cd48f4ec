//! Lock contention: a deploy that times out waiting for another session's lock names the
//! session holding it, on the right database.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{Engine, Run, TestContext};

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
