//! A fleet stopped part-way (issue 15): SIGINT lets the running targets finish or roll back
//! their current migration and starts nothing more (exit 130, the rest `not_started`), leaves
//! no process or session behind, and a plain re-run completes the fleet; SIGKILL leaves the
//! `--events` lines written so far. The moment to signal is read from the event stream
//! itself (two `target_started` lines), not guessed from a clock.
#![allow(clippy::disallowed_methods)]

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::common::{Engine, PgDatabases, Run, TestContext};
use crate::fleet_run::{events, target};

const TARGETS: usize = 5;
const SLOW: &str = "20240104000000_slow";

/// A PostgreSQL fleet of five databases whose fourth migration takes two seconds.
struct Fleet {
    t: TestContext,
    dbs: PgDatabases,
}

impl Fleet {
    fn new(test: &str) -> Option<Self> {
        let t = TestContext::new(Engine::Postgres, test)?;
        t.fixture("basic");
        let dir = t.migrations().join(SLOW);
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(
            dir.join("migration.sql"),
            "CREATE TABLE \"Slow\" (\"id\" INTEGER NOT NULL);\nSELECT pg_sleep(2);\n",
        )
        .expect("write migration");
        let admin = std::env::var("DBDEPLOY_TEST_POSTGRES_URL").expect("set when the context is");
        let dbs = PgDatabases::create(&admin, &format!("dbdfi_{test}"), TARGETS);
        let fleet = Self { t, dbs };
        let targets: Vec<String> = (0..TARGETS)
            .map(|i| format!("{{ id = \"t{i}\", url_env = \"T{i}_URL\" }}"))
            .collect();
        fleet.t.write_config(&format!(
            "[environments.tenants]\nprotected = true\n\
             [environments.tenants.fleet]\nmax_parallel = 2\ntargets = [ {} ]\n",
            targets.join(", ")
        ));
        Some(fleet)
    }

    fn url(&self, i: usize) -> String {
        self.dbs.url(i)
    }

    /// `finished unfinished` rows of `_prisma_migrations` (`0 0` without the table).
    fn rows(&self, i: usize) -> String {
        if self
            .dbs
            .query(i, "SELECT to_regclass('_prisma_migrations') IS NULL")
            == "t"
        {
            return "0 0".into();
        }
        self.dbs.query(
            i,
            "SELECT COUNT(*) FILTER (WHERE finished_at IS NOT NULL) || ' ' || \
             COUNT(*) FILTER (WHERE finished_at IS NULL AND rolled_back_at IS NULL) FROM _prisma_migrations",
        )
    }

    /// Sessions still open on the fleet's databases.
    fn sessions(&self) -> String {
        let names: Vec<String> = self.dbs.names.iter().map(|n| format!("'{n}'")).collect();
        self.dbs.admin_query(&format!(
            "SELECT COUNT(*) FROM pg_stat_activity WHERE datname IN ({})",
            names.join(", ")
        ))
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = self.t.cmd(args);
        for i in 0..TARGETS {
            c.env(format!("T{i}_URL"), self.url(i));
        }
        c
    }

    /// Starts `migrate --yes --json --events` and returns once two targets have started, with
    /// the event lines read so far and the rest of stderr to come.
    fn start_until_two_running(&self) -> (Child, Vec<String>, mpsc::Receiver<String>) {
        let mut child = self
            .cmd(&["migrate", "tenants", "--yes", "--json", "--events"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut seen = Vec::new();
        let mut started = 0;
        while started < 2 {
            let line = rx
                .recv_timeout(Duration::from_secs(120))
                .unwrap_or_else(|_| panic!("no second target_started event:\n{}", seen.join("\n")));
            if line.contains("\"event\":\"target_started\"") {
                started += 1;
            }
            seen.push(line);
        }
        (child, seen, rx)
    }
}

/// Processes whose command line names one of the fleet's databases (a leftover `psql` or
/// tool would).
fn leftovers(fleet: &Fleet, pid: u32) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(n) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        // Field 4, after the parenthesised name: the parent.
        let parent = stat
            .rsplit(')')
            .next()
            .and_then(|rest| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if parent == Some(pid)
            || fleet
                .dbs
                .names
                .iter()
                .any(|name| cmdline.contains(name.as_str()))
        {
            found.push(format!("{n}: {cmdline}"));
        }
    }
    found
}

#[test]
fn sigint_mid_fleet_lets_running_targets_finish_leaves_the_rest_and_a_re_run_completes() {
    let Some(fleet) = Fleet::new("fleet_sigint_pg") else {
        return;
    };
    let (child, _seen, rx) = fleet.start_until_two_running();
    let pid = child.id();
    // Inside the slow migration of the first two targets (their first three take
    // milliseconds).
    std::thread::sleep(Duration::from_millis(700));
    let kill = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(kill.success());
    let mut out = child.wait_with_output().expect("wait");
    let rest: Vec<String> = rx.iter().collect();
    out.stderr = rest.join("\n").into_bytes();
    let run = Run::from(out);
    run.code(130);
    let doc = run.json();
    assert_eq!(doc["result"]["counts"]["not_started"], 3, "{doc:#}");
    assert_eq!(doc["result"]["counts"]["failed"], 0, "{doc:#}");
    let mut running = 0;
    for i in 0..TARGETS {
        let r = target(&doc, &format!("t{i}"));
        match r["status"].as_str() {
            Some("not_started") => assert_eq!(fleet.rows(i), "0 0", "t{i}"),
            // Ran: its current migration finished or was rolled back, never left half-way.
            Some("success" | "cancelled") => {
                running += 1;
                let rows = fleet.rows(i);
                assert!(rows == "4 0" || rows == "3 0", "t{i}: {rows} {r}");
                // The databases started empty: what it applied is what it holds.
                assert_eq!(
                    r["migrations_applied"].as_u64(),
                    Some(rows[..1].parse::<u64>().expect("count")),
                    "t{i}"
                );
            }
            other => panic!("t{i}: {other:?} in {doc:#}"),
        }
    }
    assert_eq!(running, 2);
    // The last event says how the fleet ended.
    let events = events(&run.stderr);
    let last = events.last().expect("events");
    assert_eq!(last["event"], "fleet_finished");
    assert_eq!(last["exit_code"], 130);
    // Nothing of the run is left: no process, no session.
    assert_eq!(leftovers(&fleet, pid), Vec::<String>::new());
    assert_eq!(fleet.sessions(), "0");

    // A plain re-run completes the fleet; the next one is a no-op.
    let again = Run::from(
        fleet
            .cmd(&["migrate", "tenants", "--yes", "--json"])
            .output()
            .expect("run"),
    );
    again.code(0);
    for i in 0..TARGETS {
        assert_eq!(fleet.rows(i), "4 0", "t{i}");
    }
    let noop = Run::from(
        fleet
            .cmd(&["migrate", "tenants", "--yes", "--json"])
            .output()
            .expect("run"),
    );
    noop.code(0);
    let doc = noop.json();
    for i in 0..TARGETS {
        assert_eq!(target(&doc, &format!("t{i}"))["migrations_applied"], 0);
    }
    assert!(
        noop.json()["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("no pending migrations on 5 target(s)"))
    );
}

#[test]
fn sigkill_mid_fleet_leaves_the_event_lines_written_so_far() {
    let Some(fleet) = Fleet::new("fleet_sigkill_pg") else {
        return;
    };
    let (mut child, seen, rx) = fleet.start_until_two_running();
    std::thread::sleep(Duration::from_millis(300));
    child.kill().expect("SIGKILL");
    let status = child.wait().expect("wait");
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9)
    );
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut stdout)
        .expect("read stdout");
    // No document: the process died before its end.
    assert_eq!(stdout, "");
    let mut lines = seen;
    lines.extend(rx.iter());
    let events = events(&lines.join("\n"));
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(kinds[0], "fleet_started");
    assert_eq!(
        kinds.iter().filter(|k| **k == "target_planned").count(),
        TARGETS
    );
    assert_eq!(kinds.iter().filter(|k| **k == "target_started").count(), 2);
    assert!(!kinds.contains(&"fleet_finished"), "{kinds:?}");
    let run_id = events[0]["run_id"].as_str().expect("run id").to_owned();
    assert!(events.iter().all(|e| e["run_id"] == run_id.as_str()));
    // What the record says was running is what a re-run finishes.
    let started: Vec<&str> = events
        .iter()
        .filter(|e| e["event"] == "target_started")
        .filter_map(|e| e["target"].as_str())
        .collect();
    let again = Run::from(
        fleet
            .cmd(&["migrate", "tenants", "--yes", "--json"])
            .output()
            .expect("run"),
    );
    again.code(0);
    let doc = again.json();
    for i in 0..TARGETS {
        assert_eq!(fleet.rows(i), "4 0", "t{i}");
        let id = format!("t{i}");
        if !started.contains(&id.as_str()) {
            assert_eq!(target(&doc, &id)["migrations_applied"], 4, "{id}");
        }
    }
}
