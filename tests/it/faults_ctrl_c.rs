//! Ctrl-C during apply: the run stops after the current migration, and the next deploy
//! finishes the rest.

use std::time::Duration;

use crate::common::{Engine, TestContext, audit_lines, checksum, has_table};
use crate::engine_test;
use crate::faults::{
    AFTER, INIT, SLOW, Spawned, assert_schema_as_clean_deploy, assert_users_kept, deployed_init,
    finished, maria_blocked_then_resolved, wait_until_slow_runs,
};

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
