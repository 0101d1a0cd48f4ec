//! A fleet run's record (issue 15): the fleet run id in every target's `_dbdeploy_history` row,
//! audit line and `result.run_id`; the `--events` stream, line by line, against the final
//! document; `rollback ENV --run RUN_ID`.
#![allow(clippy::disallowed_methods)]

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

use crate::common::{PgDatabases, Run, TestContext, sqlite_basic};
use crate::fleet::sqlite;

const IDS: [&str; 3] = ["acme", "beta", "gamma"];

/// A fleet of three SQLite tenants under `tenants/`, with `extra` in its environment table.
pub fn sqlite_fleet(t: &TestContext, env_extra: &str, fleet_extra: &str) {
    std::fs::create_dir_all(t.path().join("tenants")).expect("mkdir");
    let targets: Vec<String> = IDS
        .iter()
        .map(|id| format!("  {{ id = \"{id}\", url = \"sqlite://tenants/{id}.db\" }},"))
        .collect();
    t.write_config(&format!(
        "[environments.tenants]\nprotected = true\n{env_extra}\n\
         [environments.tenants.fleet]\ntargets = [\n{}\n]\n{fleet_extra}\n",
        targets.join("\n")
    ));
}

pub fn tenant(t: &TestContext, id: &str) -> std::path::PathBuf {
    t.path().join(format!("tenants/{id}.db"))
}

pub fn target<'a>(doc: &'a Value, id: &str) -> &'a Value {
    doc["result"]["targets"]
        .as_array()
        .expect("targets")
        .iter()
        .find(|t| t["id"] == id)
        .unwrap_or_else(|| panic!("no target {id} in {doc}"))
}

/// The event lines of `text` (the JSON objects among the human lines), each checked against
/// `docs/schemas/fleet-event.schema.json`.
pub fn events(text: &str) -> Vec<Value> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/schemas/fleet-event.schema.json");
    let schema: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("schema")).expect("schema");
    let validator = jsonschema::validator_for(&schema).expect("valid schema");
    text.lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
            let errors: Vec<String> = validator.iter_errors(&v).map(|e| e.to_string()).collect();
            assert!(errors.is_empty(), "{l}: {errors:?}");
            v
        })
        .collect()
}

fn kinds<'a>(events: &'a [Value], target: &str) -> Vec<&'a str> {
    events
        .iter()
        .filter(|e| e["target"] == target)
        .map(|e| e["event"].as_str().unwrap_or_default())
        .collect()
}

#[test]
fn every_target_of_a_fleet_run_records_its_run_id_and_the_event_stream_matches_the_report() {
    let t = sqlite_basic("fleet_run_id");
    sqlite_fleet(&t, "", "max_parallel = 2");
    // acme has a history table from before the column (as the first versions created it):
    // the run adds the columns it lacks and keeps the old row.
    sqlite(
        &tenant(&t, "acme"),
        "CREATE TABLE _dbdeploy_history (run_id VARCHAR(36) PRIMARY KEY NOT NULL, \
         environment VARCHAR(255) NOT NULL, operation VARCHAR(64) NOT NULL, status VARCHAR(32) NOT NULL, \
         migrations_applied INTEGER NOT NULL, migrations TEXT NOT NULL, started_at DATETIME NOT NULL, \
         finished_at DATETIME NOT NULL, duration_ms BIGINT NOT NULL, tool_version VARCHAR(64) NOT NULL, \
         username VARCHAR(255) NOT NULL, hostname VARCHAR(255) NOT NULL, error TEXT);
         INSERT INTO _dbdeploy_history VALUES ('old', 'tenants', 'backup', 'success', 0, '[]', \
         '2020-01-01 00:00:00', '2020-01-01 00:00:00', 0, '0.1.0', 'u', 'h', NULL);",
    );
    let run = Run::from(
        t.cmd(&["migrate", "tenants", "--yes", "--json", "--events"])
            .output()
            .expect("run"),
    );
    run.code(0);
    let doc = run.json();
    let run_id = doc["result"]["run_id"].as_str().expect("result.run_id");
    let parsed = uuid::Uuid::parse_str(run_id).expect("a UUID");
    assert_eq!(parsed.get_version_num(), 7, "{run_id}");
    for id in IDS {
        assert_eq!(
            sqlite(
                &tenant(&t, id),
                "SELECT operation, status, fleet_run_id FROM _dbdeploy_history WHERE run_id <> 'old'"
            ),
            format!("deploy-migrations|success|{run_id}"),
            "{id}"
        );
        assert_eq!(target(&doc, id)["migrations_applied"], 3);
    }
    assert_eq!(
        sqlite(
            &tenant(&t, "acme"),
            "SELECT run_id, fleet_run_id IS NULL FROM _dbdeploy_history WHERE run_id = 'old'"
        ),
        "old|1"
    );
    // The audit log has the same id on each target's line.
    let audit = std::fs::read_to_string(t.path().join(".dbdeploy/audit.jsonl")).expect("audit");
    let fleet_lines: Vec<Value> = audit
        .lines()
        .map(|l| serde_json::from_str(l).expect("audit line"))
        .filter(|l: &Value| l["fleet_run_id"] == run_id)
        .collect();
    assert_eq!(fleet_lines.len(), 3, "{audit}");

    // The stream: on stderr under --json, one valid line per event, in order, matching the
    // document.
    let stream = events(&run.stderr);
    assert!(stream.iter().all(|e| e["run_id"] == run_id), "{stream:?}");
    assert_eq!(stream[0]["event"], "fleet_started");
    assert_eq!(stream[0]["targets"], 3);
    let last = stream.last().expect("events");
    assert_eq!(last["event"], "fleet_finished");
    assert_eq!(last["exit_code"], 0);
    assert_eq!(last["status"], "success");
    assert_eq!(last["counts"], doc["result"]["counts"]);
    for id in IDS {
        assert_eq!(
            kinds(&stream, id),
            ["target_planned", "target_started", "target_finished"],
            "{id}"
        );
        let finished = stream
            .iter()
            .find(|e| e["event"] == "target_finished" && e["target"] == id)
            .expect("finished");
        let reported = target(&doc, id);
        for key in ["status", "migrations_applied", "error", "backup_id"] {
            assert_eq!(finished[key], reported[key], "{id} {key}");
        }
        let planned = stream
            .iter()
            .find(|e| e["event"] == "target_planned" && e["target"] == id)
            .expect("planned");
        assert_eq!(planned["pending"], reported["pending"], "{id}");
    }

    // A second run is a no-op: planned targets, none started; without --json the stream is
    // on stdout among the human lines.
    let again = Run::from(
        t.cmd(&["migrate", "tenants", "--yes", "--events"])
            .output()
            .expect("run"),
    );
    again.code(0);
    let events = events(&again.stdout);
    let seen: BTreeSet<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        seen,
        BTreeSet::from(["fleet_started", "target_planned", "fleet_finished"])
    );
    assert!(
        again.stdout.contains("no pending migrations"),
        "{}",
        again.stdout
    );
    for id in IDS {
        assert_eq!(
            sqlite(
                &tenant(&t, id),
                "SELECT COUNT(DISTINCT fleet_run_id) FROM _dbdeploy_history"
            ),
            "1",
            "{id}"
        );
    }
}

#[test]
fn events_is_refused_on_an_environment_that_is_one_database() {
    let t = sqlite_basic("fleet_events_single");
    let run = t.run(&["migrate", "dev", "--yes", "--events"]);
    run.code(2);
    assert!(
        run.stderr.contains(
            "--events streams a fleet's target events, and environment `dev` is one database"
        ),
        "{}",
        run.all()
    );
    assert!(!t.path().join("dev.db").exists());
}

const EXTRA: &str = "20240104000000_extra";

/// Adds a fourth migration to the project's folder.
fn add_extra(t: &TestContext) {
    let dir = t.migrations().join(EXTRA);
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(
        dir.join("migration.sql"),
        "CREATE TABLE \"Extra\" (\"id\" INTEGER NOT NULL);\n",
    )
    .expect("write migration");
}

fn finished_rows(path: &Path) -> String {
    sqlite(
        path,
        "SELECT COUNT(*) FROM _prisma_migrations WHERE finished_at IS NOT NULL",
    )
}

#[test]
fn rollback_run_restores_only_the_sqlite_targets_that_run_changed() {
    let t = sqlite_basic("fleet_rollback_sqlite");
    sqlite_fleet(&t, "backup_before_migrate = true", "");
    // gamma alone, to get the fourth migration before the fleet does.
    let config = std::fs::read_to_string(t.path().join("dbdeploy.toml")).expect("config");
    std::fs::write(
        t.path().join("dbdeploy.toml"),
        format!("{config}\n[environments.gamma-alone]\nurl = \"sqlite://tenants/gamma.db\"\n"),
    )
    .expect("config");
    let first = t.run(&["migrate", "tenants", "--yes", "--json"]);
    first.code(0);
    let first_id = first.json()["result"]["run_id"]
        .as_str()
        .expect("run id")
        .to_owned();
    add_extra(&t);
    t.run(&["migrate", "gamma-alone", "--yes"]).code(0);
    // `history` of one target names the fleet run each of its runs was part of.
    let history = t.run(&["history", "gamma-alone", "--json"]);
    history.code(0);
    let doc = history.json();
    let fleet_ids: Vec<(&str, Option<&str>)> = doc["result"]["runs"]
        .as_array()
        .expect("runs")
        .iter()
        .map(|r| {
            (
                r["operation"].as_str().unwrap_or(""),
                r["fleet_run_id"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        fleet_ids,
        [
            ("deploy-migrations", None),
            ("deploy-migrations", Some(first_id.as_str()))
        ]
    );
    let second = t.run(&["migrate", "tenants", "--yes", "--json"]);
    second.code(0);
    let doc = second.json();
    let run_id = doc["result"]["run_id"].as_str().expect("run id").to_owned();
    assert_ne!(run_id, first_id);
    assert_eq!(target(&doc, "gamma")["migrations_applied"], 0);
    for id in IDS {
        assert_eq!(finished_rows(&tenant(&t, id)), "4", "{id}");
    }
    sqlite(&tenant(&t, "acme"), "INSERT INTO \"Extra\" VALUES (7)");

    // Refused approval (no terminal, no --yes): exit 3, nothing restored.
    // The banner says how a rollback schedules: every target on its own, whatever `on_error`.
    let refused = crate::dbdeploy_snapshot!(t, ["rollback", "tenants", "--run", &run_id]);
    refused.code(3);
    // Bad and unknown ids: exit 2, nothing restored.
    let bad = t.run(&["rollback", "tenants", "--run", "last-tuesday"]);
    bad.code(2);
    assert!(
        bad.stderr
            .contains("--run `last-tuesday` is not a fleet run id"),
        "{}",
        bad.all()
    );
    let unknown = t.run(&[
        "rollback",
        "tenants",
        "--run",
        "0193a1f2-7c4e-7d31-9b0a-2f6c1e8d4a55",
        "--yes",
    ]);
    unknown.code(2);
    assert!(
        unknown.stderr.contains("no target of fleet `tenants` has a run of fleet run 0193a1f2-7c4e-7d31-9b0a-2f6c1e8d4a55"),
        "{}",
        unknown.all()
    );
    let missing = t.run(&["rollback", "tenants", "--yes"]);
    missing.code(2);
    assert!(missing.stderr.contains("--run RUN_ID"), "{}", missing.all());
    for id in IDS {
        assert_eq!(finished_rows(&tenant(&t, id)), "4", "{id}");
    }
    assert_eq!(sqlite(&tenant(&t, "acme"), "SELECT id FROM \"Extra\""), "7");

    let rolled = Run::from(
        t.cmd(&["rollback", "tenants", "--run", &run_id, "--yes", "--json"])
            .output()
            .expect("run"),
    );
    rolled.code(0);
    let doc = rolled.json();
    assert_eq!(doc["operation"], "fleet-rollback");
    assert_eq!(doc["result"]["run_id"], run_id.as_str());
    assert_eq!(doc["result"]["counts"]["restored"], 2);
    assert_eq!(doc["result"]["counts"]["untouched"], 1);
    for id in ["acme", "beta"] {
        let r = target(&doc, id);
        assert_eq!(r["status"], "restored", "{id}");
        assert_eq!(r["run"], "deploy-migrations: success, 1 applied", "{id}");
        assert!(r["backup_id"].is_string(), "{id}");
        assert_eq!(finished_rows(&tenant(&t, id)), "3", "{id}");
        assert_eq!(
            sqlite(
                &tenant(&t, id),
                "SELECT COUNT(*) FROM sqlite_master WHERE name = 'Extra'"
            ),
            "0",
            "{id}"
        );
    }
    assert_eq!(target(&doc, "gamma")["status"], "untouched");
    assert_eq!(target(&doc, "gamma")["backup_id"], Value::Null);
    assert_eq!(finished_rows(&tenant(&t, "gamma")), "4");
    // Each restore is an ordinary rollback run in its target's history; the fleet run's rows
    // stay, so the run can be found again.
    assert_eq!(
        sqlite(
            &tenant(&t, "acme"),
            "SELECT operation, status FROM _dbdeploy_history ORDER BY started_at DESC LIMIT 1"
        ),
        "rollback|success"
    );
    assert_eq!(
        sqlite(
            &tenant(&t, "acme"),
            &format!("SELECT COUNT(*) FROM _dbdeploy_history WHERE fleet_run_id = '{run_id}'")
        ),
        "1"
    );
    // A re-run of the fleet applies the fourth migration again where it was undone.
    let again = t.run(&["migrate", "tenants", "--yes", "--json"]);
    again.code(0);
    let doc = again.json();
    assert_eq!(target(&doc, "acme")["migrations_applied"], 1);
    assert_eq!(target(&doc, "gamma")["migrations_applied"], 0);
}

#[test]
fn rollback_run_restores_only_the_postgres_targets_that_run_changed() {
    let Some(t) = TestContext::new(crate::common::Engine::Postgres, "fleet_rollback_pg") else {
        return;
    };
    t.fixture("basic");
    let admin = std::env::var("DBDEPLOY_TEST_POSTGRES_URL").expect("set when the context is");
    let dbs = PgDatabases::create(&admin, "dbd_fleet_rb", 2);
    // t1 has a history table from before `fleet_run_id`: the run adds the column.
    dbs.query(
        1,
        "CREATE TABLE _dbdeploy_history (run_id VARCHAR(36) PRIMARY KEY NOT NULL, \
         environment VARCHAR(255) NOT NULL, operation VARCHAR(64) NOT NULL, status VARCHAR(32) NOT NULL, \
         migrations_applied INTEGER NOT NULL, migrations TEXT NOT NULL, started_at TIMESTAMPTZ NOT NULL, \
         finished_at TIMESTAMPTZ NOT NULL, duration_ms BIGINT NOT NULL, tool_version VARCHAR(64) NOT NULL, \
         username VARCHAR(255) NOT NULL, hostname VARCHAR(255) NOT NULL, error TEXT)",
    );
    t.write_config(
        "[environments.tenants]\nprotected = true\nbackup_before_migrate = true\n\
         [environments.tenants.fleet]\nmax_parallel = 2\n\
         targets = [ { id = \"t0\", url_env = \"T0_URL\" }, { id = \"t1\", url_env = \"T1_URL\" } ]\n\n\
         [environments.t1-alone]\nurl_env = \"T1_URL\"\n",
    );
    let cmd = |args: &[&str]| {
        let mut c = t.cmd(args);
        c.env("T0_URL", dbs.url(0)).env("T1_URL", dbs.url(1));
        Run::from(c.output().expect("run dbdeploy"))
    };
    let first = cmd(&["migrate", "tenants", "--yes", "--json"]);
    first.code(0);
    let first_id = first.json()["result"]["run_id"]
        .as_str()
        .expect("run id")
        .to_owned();
    for i in 0..2 {
        assert_eq!(
            dbs.query(
                i,
                "SELECT COUNT(DISTINCT fleet_run_id) || ' ' || MAX(fleet_run_id) FROM _dbdeploy_history"
            ),
            format!("1 {first_id}")
        );
    }
    add_extra(&t);
    cmd(&["migrate", "t1-alone", "--yes"]).code(0);
    let second = cmd(&["migrate", "tenants", "--yes", "--json"]);
    second.code(0);
    let run_id = second.json()["result"]["run_id"]
        .as_str()
        .expect("run id")
        .to_owned();
    dbs.query(0, "INSERT INTO \"Extra\" VALUES (7)");
    let count = "SELECT COUNT(*) FROM _prisma_migrations WHERE finished_at IS NOT NULL";
    assert_eq!(dbs.query(0, count), "4");

    let rolled = cmd(&["rollback", "tenants", "--run", &run_id, "--yes", "--json"]);
    rolled.code(0);
    let doc = rolled.json();
    assert_eq!(target(&doc, "t0")["status"], "restored");
    assert_eq!(target(&doc, "t1")["status"], "untouched");
    assert_eq!(dbs.query(0, count), "3");
    assert_eq!(dbs.query(0, "SELECT to_regclass('\"Extra\"') IS NULL"), "t");
    assert_eq!(dbs.query(1, count), "4");
    assert!(!rolled.all().contains(&dbs.url(0)));
    // Rolled back again: t0 is restored from the same backup, t1 is still untouched.
    let again = cmd(&["rollback", "tenants", "--run", &run_id, "--yes", "--json"]);
    again.code(0);
    assert_eq!(target(&again.json(), "t0")["status"], "restored");
    assert_eq!(dbs.query(0, count), "3");
}

/// MariaDB: a history table from before `fleet_run_id` gains it (ALTER TABLE), keeps its row,
/// and the fleet run's row carries the id; a second run adds nothing again.
#[test]
fn a_mariadb_target_with_an_old_history_table_gains_the_fleet_run_id() {
    let Some(t) = TestContext::new(crate::common::Engine::MariaDb, "fleet_run_mariadb") else {
        return;
    };
    t.fixture("basic");
    t.sql(
        "CREATE TABLE _dbdeploy_history (run_id VARCHAR(36) PRIMARY KEY NOT NULL, \
         environment VARCHAR(255) NOT NULL, operation VARCHAR(64) NOT NULL, status VARCHAR(32) NOT NULL, \
         migrations_applied INTEGER NOT NULL, migrations TEXT NOT NULL, started_at DATETIME(3) NOT NULL, \
         finished_at DATETIME(3) NOT NULL, duration_ms BIGINT NOT NULL, tool_version VARCHAR(64) NOT NULL, \
         username VARCHAR(255) NOT NULL, hostname VARCHAR(255) NOT NULL, error TEXT)",
    );
    t.sql(
        "INSERT INTO _dbdeploy_history VALUES ('old', 'tenants', 'create-backup', 'success', 0, '[]', \
         '2020-01-01 00:00:00', '2020-01-01 00:00:00', 0, '0.1.0', 'u', 'h', NULL)",
    );
    t.write_config(
        "[environments.tenants.fleet]\ntargets = [ { id = \"only\", url_env = \"DATABASE_URL\" } ]\n",
    );
    let run = t.run(&["migrate", "tenants", "--yes", "--json"]);
    run.code(0);
    let run_id = run.json()["result"]["run_id"]
        .as_str()
        .expect("run id")
        .to_owned();
    let rows = t.sql(
        "SELECT run_id, COALESCE(fleet_run_id, 'NULL') FROM _dbdeploy_history ORDER BY started_at",
    );
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[0], "old|NULL");
    assert!(rows[1].ends_with(&format!("|{run_id}")), "{rows:?}");
    assert_eq!(
        t.sql("SELECT COUNT(*) FROM _dbdeploy_history WHERE fleet_run_id IS NOT NULL"),
        ["1"]
    );
    // Idempotent: the next run finds the column and adds nothing.
    let again = t.run(&["migrate", "tenants", "--yes"]);
    again.code(0);
    assert_eq!(
        t.sql(
            "SELECT COUNT(*) FROM information_schema.columns WHERE table_schema = DATABASE() \
             AND table_name = '_dbdeploy_history' AND column_name = 'fleet_run_id'"
        ),
        ["1"]
    );
}

#[test]
fn shards_given_one_run_id_are_one_fleet_run_for_rollback() {
    let t = sqlite_basic("fleet_run_id_shared");
    sqlite_fleet(&t, "backup_before_migrate = true", "");
    let id = "0193a1f2-7c4e-7d31-9b0a-2f6c1e8d4a55";
    let mut deployed = BTreeSet::new();
    let mut reports = Vec::new();
    for (i, shard) in ["1/2", "2/2"].into_iter().enumerate() {
        let run = t.run(&[
            "migrate", "tenants", "--yes", "--json", "--shard", shard, "--run-id", id,
        ]);
        run.code(0);
        for r in run.json()["result"]["targets"].as_array().expect("targets") {
            deployed.insert(r["id"].as_str().expect("id").to_owned());
        }
        let path = t.path().join(format!("shard{i}.json"));
        std::fs::write(&path, &run.stdout).expect("report");
        reports.push(path.display().to_string());
    }
    assert_eq!(deployed, IDS.iter().map(|s| (*s).to_owned()).collect());
    let merged = t.run(&["fleet", "merge", &reports[0], &reports[1], "--json"]);
    merged.code(0);
    assert_eq!(merged.json()["result"]["run_id"], id);
    for tenant_id in IDS {
        assert_eq!(
            sqlite(
                &tenant(&t, tenant_id),
                "SELECT fleet_run_id FROM _dbdeploy_history"
            ),
            id,
            "{tenant_id}"
        );
    }
    let rolled = t.run(&["rollback", "tenants", "--run", id, "--yes", "--json"]);
    rolled.code(0);
    assert_eq!(rolled.json()["result"]["counts"]["restored"], 3);

    let bad = t.run(&["migrate", "tenants", "--yes", "--run-id", "ci-42"]);
    bad.code(2);
    assert!(bad.stderr.contains("not a UUID"), "{}", bad.all());
    let single = t.run(&["migrate", "dev", "--yes", "--run-id", id]);
    single.code(2);
    assert!(
        single.stderr.contains("--run-id names a fleet's run"),
        "{}",
        single.all()
    );
}
