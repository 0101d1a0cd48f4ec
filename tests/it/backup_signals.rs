//! A restore or backup that is stopped (SIGTERM, `kill -9`) says what it left, and no client
//! tool outlives dbdeploy (issue 11).
#![allow(clippy::disallowed_methods)]

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::backup_trust::{add_user, admin, backup_id, db_name, safe_config, users};
use crate::common::{Engine, Run, TestContext, audit_lines};

/// Every process descended from `pid`, found through /proc.
fn descendants(pid: u32) -> Vec<u32> {
    let mut all = Vec::new();
    let mut frontier = vec![pid];
    while let Some(parent) = frontier.pop() {
        for entry in std::fs::read_dir("/proc").unwrap().filter_map(Result::ok) {
            let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else {
                continue;
            };
            // pid (comm) state ppid pgrp ...: comm may hold spaces, so split after ')'.
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|p| p.parse::<u32>().ok());
            if ppid == Some(parent) && !all.contains(&child) {
                all.push(child);
                frontier.push(child);
            }
        }
    }
    all
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        !s.rsplit_once(')')
            .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
    })
}

fn cmdline(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
        .unwrap_or_default()
}

fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        .to_owned()
}

/// Starts `args`, waits until a tool whose command line holds `marker` runs under it, sends
/// `signal`; returns the run and every process that ran under dbdeploy.
pub(crate) fn signal_during(
    t: &TestContext,
    args: &[&str],
    marker: &str,
    signal: &str,
    envs: &[(&str, &std::ffi::OsStr)],
    settle: Duration,
) -> (Run, Vec<u32>) {
    let mut cmd = t.cmd(args);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let started = Instant::now();
    let mut seen = Vec::new();
    loop {
        for p in descendants(pid) {
            if !seen.contains(&p) {
                seen.push(p);
            }
        }
        if seen
            .iter()
            .any(|p| alive(*p) && cmdline(*p).contains(marker))
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no tool with {marker} started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(settle);
    for p in descendants(pid) {
        if !seen.contains(&p) {
            seen.push(p);
        }
    }
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(status.success());
    let run = Run::from(child.wait_with_output().unwrap());
    (run, seen)
}

/// No process that ran under dbdeploy is left (the watchdog's kill takes a moment).
#[track_caller]
pub(crate) fn none_left(seen: &[u32]) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left: Vec<(u32, String)> = seen
            .iter()
            .filter(|p| alive(**p))
            .map(|p| (*p, comm(*p)))
            .collect();
        if left.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "left running: {left:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A few MB of rows, so that a dump and a restore take a moment.
fn bulk(t: &TestContext) {
    match t.engine {
        Engine::Postgres => t.sql(
            "INSERT INTO \"User\" (email, name) SELECT 'u' || g || '@example.com', repeat('x', 300) FROM generate_series(1, 30000) g",
        ),
        Engine::MariaDb => t.sql(
            "SET SESSION max_recursive_iterations = 100000; INSERT INTO `User` (email, name) WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < 60000) SELECT CONCAT('u', n, '@example.com'), REPEAT('x', 150) FROM s",
        ),
        Engine::Sqlite => unreachable!("SQLite restores run in-process"),
    };
}

pub(crate) fn count(t: &TestContext) -> String {
    t.sql(&format!("SELECT COUNT(*) FROM {}", t.engine.q("User")))
        .concat()
}

fn server_engines() -> [Engine; 2] {
    [Engine::Postgres, Engine::MariaDb]
}

/// What only the restoring tool has on its command line.
fn restore_tool(engine: Engine) -> &'static str {
    match engine {
        Engine::Postgres => "--single-transaction",
        _ => "--binary-mode",
    }
}

/// SIGTERM (what `timeout` sends) during a restore: the tools are stopped and waited for,
/// the database is as it was, the run is logged as interrupted, and nothing is left behind.
#[test]
fn sigterm_during_a_restore_stops_the_tools_and_leaves_the_database_as_it_was() {
    for engine in server_engines() {
        crate::common::run_on(engine, "sigterm_restore", |t| {
            t.fixture("basic");
            safe_config(t, "backups", "");
            t.run(&["migrate", "safe", "--yes", "--skip-backup"])
                .code(0);
            bulk(t);
            let id = backup_id(t, &t.url);
            add_user(t, "after@example.com");
            let before = count(t);
            // The signal comes soon after the tool starts: an idle machine restores this
            // backup in a few hundred milliseconds.
            let (run, seen) = signal_during(
                t,
                &["rollback", "safe", "--yes", "--to", &id, "--json"],
                restore_tool(engine),
                "TERM",
                &[],
                Duration::from_millis(20),
            );
            assert_eq!(run.code, 130, "{}", run.all());
            let doc = run.json();
            assert_eq!(doc["error"]["code"], "restore-interrupted", "{doc}");
            assert!(
                doc["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("was not changed"),
                "{doc}"
            );
            none_left(&seen);
            assert_eq!(count(t), before, "the database is as it was");
            let audit = audit_lines(t.path());
            assert_eq!(audit.last().unwrap()["status"], "interrupted");
            if engine == Engine::MariaDb {
                // This database's scratch schemas only: other tests restore at the same time.
                let scratch = t.sql(&format!(
                    "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE '\\_dbd\\_%\\_{}\\_%'",
                    scratch_digest(t)
                ));
                assert_eq!(scratch.concat(), "0", "scratch schemas left");
            }
            // Nothing unfinished: status answers as usual.
            t.run(&["status", "safe"]).code(0);
        });
    }
}

/// `kill -9` of dbdeploy during a restore: its tools die with it, and the unfinished restore
/// is reported (and refused) by `status`, `health` and `migrate` until it is finished.
#[test]
fn kill_9_during_a_restore_kills_the_tools_and_status_reports_it() {
    for engine in server_engines() {
        crate::common::run_on(engine, "kill9_restore", |t| {
            t.fixture("basic");
            safe_config(t, "backups", "");
            t.run(&["migrate", "safe", "--yes", "--skip-backup"])
                .code(0);
            bulk(t);
            let id = backup_id(t, &t.url);
            add_user(t, "after@example.com");
            let (run, seen) = signal_during(
                t,
                &["rollback", "safe", "--yes", "--to", &id],
                restore_tool(engine),
                "KILL",
                &[],
                Duration::from_millis(150),
            );
            assert_eq!(run.code, -1, "killed: {}", run.all());
            none_left(&seen);
            for args in [
                &["status", "safe", "--json"][..],
                &["health", "safe", "--json"],
                &["migrate", "safe", "--yes", "--json"],
            ] {
                let run = t.run(args);
                run.code(1);
                let doc = run.json();
                assert_eq!(
                    doc["error"]["code"], "restore-unfinished",
                    "{args:?}: {doc}"
                );
                let hints = doc["recovery"]["suggestions"].to_string() + &doc["error"].to_string();
                assert!(
                    hints.contains(&format!("dbdeploy rollback safe --to {id}")),
                    "{hints}"
                );
            }
            // Finishing the restore clears it.
            t.run(&["rollback", "safe", "--yes", "--to", &id]).code(0);
            assert!(!users(t).contains(&"after@example.com".to_owned()));
            t.run(&["status", "safe"]).code(0);
        });
    }
}

/// A backup's tools never leave a credentials file, and `kill -9` during a backup leaves
/// no tool running; its partial files are removed by the next run.
#[test]
fn kill_9_during_a_mariadb_backup_leaves_no_tool_no_credentials_and_no_partial_file() {
    crate::common::run_on(Engine::MariaDb, "kill9_backup", |t| {
        t.fixture("basic");
        safe_config(t, "backups", "");
        t.run(&["migrate", "safe", "--yes", "--skip-backup"])
            .code(0);
        bulk(t);
        let user = format!("dbd_pw_{}", std::process::id());
        admin(&format!(
            "CREATE USER '{user}'@'%' IDENTIFIED BY 'S3cret-pw'; GRANT ALL ON `{}`.* TO '{user}'@'%'",
            db_name(&t.url)
        ));
        let mut url = url::Url::parse(&t.url).unwrap();
        url.set_username(&user).unwrap();
        url.set_password(Some("S3cret-pw")).unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let run = Run::from(
            t.cmd(&["backup", "safe"])
                .env("DATABASE_URL", url.as_str())
                .env("TMPDIR", tmp.path())
                .output()
                .unwrap(),
        );
        run.code(0);
        let (_, seen) = signal_during(
            t,
            &["backup", "safe"],
            "--single-transaction",
            "KILL",
            &[
                ("TMPDIR", tmp.path().as_os_str()),
                ("DATABASE_URL", std::ffi::OsStr::new(url.as_str())),
            ],
            Duration::ZERO,
        );
        none_left(&seen);
        let files: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
        assert!(files.is_empty(), "left in TMPDIR: {files:?}");
        let dir = t.path().join("backups/safe");
        let partial = |dir: &Path| {
            std::fs::read_dir(dir)
                .unwrap()
                .filter_map(Result::ok)
                .filter(|e| {
                    let n = e.file_name().to_string_lossy().into_owned();
                    n.ends_with(".partial")
                        || (n.ends_with(".json") && e.metadata().unwrap().len() == 0)
                })
                .count()
        };
        assert!(partial(&dir) > 0, "the killed backup left its partial file");
        std::thread::sleep(Duration::from_millis(2100));
        t.run(&["backups", "safe"]).code(0);
        assert_eq!(partial(&dir), 0, "cleaned by the next run");
        admin(&format!("DROP USER '{user}'@'%'"));
    });
}

/// The part of a MariaDB restore's scratch schema names that says which schema it restores:
/// the first 10 hex digits of the sha256 of the schema's name.
fn scratch_digest(t: &TestContext) -> String {
    use sha2::Digest;
    let url = url::Url::parse(&t.url).unwrap();
    let digest = sha2::Sha256::digest(url.path().trim_start_matches('/').as_bytes());
    digest
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>()[..10]
        .to_owned()
}
