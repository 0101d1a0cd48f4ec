//! Long steps are never silent (issue 14): without a terminal, a migration still running
//! after 10 s gets a line every 10 s naming it and the time so far, and a PostgreSQL
//! migration waiting for a lock names the session it waits for.

use crate::common::{Engine, Run, TestContext};
use crate::engine_test;
use crate::faults::{SLOW, three_migrations};

/// The heartbeat lines of a run, with the time so far replaced by `[T]`.
fn heartbeats(run: &Run, step: &str) -> Vec<String> {
    run.stdout
        .lines()
        .filter(|l| l.starts_with(&format!("{step}: ")))
        .map(|l| match (l.rfind(", "), l.strip_suffix(" so far")) {
            (Some(at), Some(_)) => format!("{}, [T] so far", &l[..at]),
            _ => l.to_owned(),
        })
        .collect()
}

engine_test!(
    a_25_second_migration_reports_every_10_seconds,
    |t: &TestContext| {
        three_migrations(t, 25);
        t.write_config("");
        let run = t.run(&["migrate", "dev"]);
        run.code(0);
        let lines = heartbeats(&run, "apply");
        // 10 s and 20 s at least; more where a loaded machine takes longer over the 25 s of
        // work (SQLite's is CPU-bound).
        assert!(lines.len() >= 2, "{}", run.stdout);
        for line in &lines {
            assert_eq!(
                line,
                &format!("apply: {SLOW} still running, [T] so far"),
                "{}",
                run.stdout
            );
        }
        // The lines come between the migration's start and its end, not after.
        let first = run.stdout.find(&lines[0][..10]).unwrap();
        let applied = run.stdout.rfind(SLOW).unwrap();
        assert!(first < applied, "{}", run.stdout);
        if t.engine == Engine::Sqlite {
            // Nothing else was slow: the other steps say nothing extra.
            assert!(heartbeats(&run, "lock").is_empty() && heartbeats(&run, "connect").is_empty());
        }
    }
);
