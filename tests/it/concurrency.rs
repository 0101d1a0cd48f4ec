//! Many deploys at once against one database, and Ctrl-C while waiting for another deploy's
//! lock. (First deploys racing, and the lock holder named on a timeout, are in scenarios.rs.)

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::common::{Engine, Run, TestContext, audit_lines};
use crate::engine_test;
use crate::faults::{
    AFTER, INIT, SLOW, Spawned, assert_users_kept, finished, seed_users, three_migrations,
};

engine_test!(
    eight_deploys_at_once_apply_every_migration_exactly_once,
    |t: &TestContext| {
        // A slow middle migration keeps the lock long enough for short lock timeouts to expire.
        three_migrations(t, 2);
        t.write_config(
            "[environments.busy]\nurl_env = \"DATABASE_URL\"\nlock_timeout_seconds = 1\n",
        );
        // Set up with the default lock wait: MariaDB's lock is server-wide, and other tests'
        // deploys may hold it for more than `busy`'s one second.
        t.run(&["migrate", "staging", "--to", INIT]).code(0);
        seed_users(t);
        let children: Vec<Child> = (0..8)
            .map(|_| {
                t.cmd(&["migrate", "busy", "--json"])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let mut applied = 0;
        let mut timed_out = 0;
        for child in children {
            let run = Run::from(child.wait_with_output().unwrap());
            assert!(!run.all().contains("panicked"), "{}", run.all());
            let doc = run.json();
            match run.code {
                0 => applied += doc["result"]["migrations_applied"].as_u64().unwrap(),
                1 => {
                    // The only acceptable failure: another deploy held the lock too long.
                    assert_eq!(doc["error"]["code"], "lock-timeout", "{doc}");
                    assert_eq!(doc["error"]["class"], "pre-deployment", "{doc}");
                    assert_eq!(doc["result"]["migrations_applied"], 0, "{doc}");
                    timed_out += 1;
                }
                other => panic!("exit {other}: {}", run.all()),
            }
        }
        // MariaDB's named lock is server-wide (as Prisma's is): other tests' deploys may have
        // held it, so finish what the eight left over, if anything.
        let rest = t.run(&["migrate", "staging", "--json"]);
        rest.code(0);
        applied += rest.json()["result"]["migrations_applied"]
            .as_u64()
            .unwrap();
        assert_eq!(applied, 2, "{timed_out} timed out");
        assert_eq!(
            t.prisma_rows(),
            [finished(t, INIT), finished(t, SLOW), finished(t, AFTER)]
        );
        assert_users_kept(t);
        // Every run is in the audit log; the history agrees with the tracking table.
        assert_eq!(audit_lines(t.path()).len(), 1 + 8 + 1);
        let sum =
            t.sql("SELECT SUM(migrations_applied) FROM _dbdeploy_history WHERE status = 'success'");
        assert_eq!(sum, ["3"], "1 by the first deploy, 2 by the others");
        t.run(&["status", "staging"]).code(0);
    }
);

fn ctrl_c_while_waiting_for_the_lock(engine: Engine) {
    let Some(t) = TestContext::new(engine, "ctrl_c_lock_wait") else {
        return;
    };
    t.fixture("basic");
    let holder = crate::scenarios_locks::hold_lock(&t);
    let mut run = Spawned::start(&t, &["migrate", "production", "--yes", "--json"]);
    // production waits up to 30 s for the lock.
    run.wait_for_line("health ", Duration::from_secs(20));
    std::thread::sleep(Duration::from_millis(300));
    let interrupted_at = Instant::now();
    run.signal("INT");
    let run = run.finish(Duration::from_secs(20));
    assert!(
        interrupted_at.elapsed() < Duration::from_secs(5),
        "Ctrl-C took {:?} to stop a lock wait",
        interrupted_at.elapsed()
    );
    run.code(130);
    let doc = run.json();
    assert_eq!(doc["error"]["code"], "interrupted", "{doc}");
    assert_eq!(doc["error"]["class"], "pre-deployment", "{doc}");
    assert!(
        doc["error"]["hints"]
            .to_string()
            .contains("nothing was changed"),
        "{doc}"
    );
    assert!(t.tables().is_empty(), "{:?}", t.tables());
    let audit = audit_lines(t.path());
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(audit[0]["status"], "interrupted");
    drop(holder);
    t.run(&["migrate", "production", "--yes"]).code(0);
    assert_eq!(t.prisma_rows().len(), 3);
}

#[test]
fn ctrl_c_while_waiting_for_the_lock_postgres() {
    ctrl_c_while_waiting_for_the_lock(Engine::Postgres);
}

#[test]
fn ctrl_c_while_waiting_for_the_lock_mariadb() {
    ctrl_c_while_waiting_for_the_lock(Engine::MariaDb);
}

/// Another process writing to the SQLite file (an application, `sqlite3`) holds its lock: the
/// deploy reports lock contention, not a broken query, and changes nothing.
#[test]
fn sqlite_file_locked_by_another_process_is_lock_contention() {
    let Some(t) = TestContext::new(Engine::Sqlite, "sqlite_file_locked") else {
        return;
    };
    t.fixture("basic");
    t.write_config("[environments.hurry]\nurl_env = \"DATABASE_URL\"\nlock_timeout_seconds = 1\n");
    t.run(&["migrate", "hurry", "--to", "20240101000000_init"])
        .code(0);
    let rows = t.prisma_rows();
    let mut holder = std::process::Command::new("sqlite3")
        .arg(t.path().join("test.db"))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = holder.stdin.take().unwrap();
    // A busy timeout: the probe below may hold a read lock at that very moment.
    std::io::Write::write_all(&mut stdin, b".timeout 5000\nBEGIN EXCLUSIVE;\n").unwrap();
    std::io::Write::flush(&mut stdin).unwrap();
    // Wait until the exclusive lock is really held.
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::process::Command::new("sqlite3")
        .arg(t.path().join("test.db"))
        .arg("SELECT COUNT(*) FROM _prisma_migrations")
        .output()
        .unwrap()
        .status
        .success()
    {
        assert!(
            holder.try_wait().unwrap().is_none(),
            "sqlite3 exited before taking the lock"
        );
        assert!(Instant::now() < deadline, "sqlite3 never took the lock");
        std::thread::sleep(Duration::from_millis(50));
    }
    let started = Instant::now();
    let run = t.run(&["migrate", "hurry", "--json"]);
    run.code(1);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    let doc = run.json();
    assert_eq!(doc["error"]["code"], "lock-timeout", "{doc}");
    let message = doc["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("another process has the SQLite file open"),
        "{message}"
    );
    drop(stdin);
    let _ = holder.wait();
    assert_eq!(t.prisma_rows(), rows);
    t.run(&["migrate", "hurry"]).code(0);
    assert_eq!(t.prisma_rows().len(), 3);
}
