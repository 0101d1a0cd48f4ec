//! The `--json` contract beyond each operation's keys (issue 14): a usage error is still a
//! document, and every timestamp comes out in one format whichever engine stored it.
//! (Every document the suite produces is also checked against `docs/schemas/`.)

use crate::common::{Engine, TestContext, run_on};

#[test]
fn a_command_line_that_cannot_be_read_is_still_a_document() {
    let t = crate::common::sqlite_basic("usage_json");
    for args in [
        &["migrate", "staging", "--bogus", "--json"][..],
        &["status", "--json"],
        &["--json", "no-such-command"],
    ] {
        let run = t.run(args);
        run.code(2);
        let doc = run.json();
        assert_eq!(doc["schema_version"], 1, "{doc}");
        assert_eq!(doc["operation"], "usage", "{doc}");
        assert_eq!(doc["status"], "error", "{doc}");
        assert!(
            !doc["error"]["message"].as_str().unwrap().is_empty(),
            "{doc}"
        );
    }
    // Without --json, clap's own text and exit code; help is not an error.
    let run = t.run(&["migrate", "--bogus"]);
    run.code(2);
    assert!(
        run.stdout.is_empty() && run.stderr.contains("--bogus"),
        "{}",
        run.stderr
    );
    t.run(&["--json", "--help"]).code(0);
}

#[test]
fn timestamps_are_rfc3339_utc_on_every_engine() {
    let rfc3339 = regex::Regex::new(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$").unwrap();
    for engine in [Engine::Sqlite, Engine::Postgres, Engine::MariaDb] {
        run_on(engine, "json_times", |t: &TestContext| {
            t.fixture("basic");
            t.run(&["migrate", "staging", "--yes"]).code(0);
            let status = t.run(&["status", "staging", "--json"]).json();
            let applied = status["result"]["applied"].as_array().unwrap();
            assert!(!applied.is_empty());
            for row in applied {
                let at = row["finished_at"].as_str().unwrap();
                assert!(rfc3339.is_match(at), "{engine:?}: {at}");
            }
            let history = t.run(&["history", "staging", "--json"]).json();
            for run in history["result"]["runs"].as_array().unwrap() {
                let at = run["started_at"].as_str().unwrap();
                assert!(rfc3339.is_match(at), "{engine:?}: {at}");
            }
        });
    }
}
