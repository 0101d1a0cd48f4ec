//! Approval (issue 11, item 4): nothing is locked while a person reads the summary, what is
//! applied is exactly what was approved, the prompt does not wait forever, a restore always
//! asks, and a dev-mode reset happens under the lock after the backup.

use std::time::{Duration, Instant};

use crate::common::{Engine, TestContext};
use crate::engine_test;

/// Long enough for dbdeploy to reach its prompt on a loaded machine.
const TO_THE_PROMPT: Duration = Duration::from_secs(3);

engine_test!(
    the_prompt_holds_no_lock_and_a_changed_plan_is_not_applied,
    |t: &TestContext| {
        t.fixture("basic");
        let mut waiting = t.on_terminal(&["migrate", "production"]);
        std::thread::sleep(TO_THE_PROMPT);
        // While a person reads the summary, another deploy gets the lock at once (the
        // environment waits up to 30 s for it) and applies everything.
        let started = Instant::now();
        t.run(&["migrate", "production", "--yes"]).code(0);
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the other deploy waited {:?}: the prompt held the lock",
            started.elapsed()
        );
        let applied = t.prisma_rows();
        // The person approves what they read; it is no longer what would run.
        waiting.type_line("yes");
        let run = waiting.wait(Duration::from_secs(60));
        run.code(3);
        assert!(
            run.stdout
                .contains("the plan changed after it was approved")
                && run.stdout.contains("no longer to be applied"),
            "{}",
            run.stdout
        );
        assert_eq!(t.prisma_rows(), applied, "nothing was applied twice");
    }
);

#[test]
fn an_unanswered_prompt_times_out() {
    let Some(t) = TestContext::new(Engine::Sqlite, "an_unanswered_prompt_times_out") else {
        return;
    };
    t.fixture("basic");
    t.write_config(
        "[environments.prod]\nurl_env = \"DATABASE_URL\"\nprotected = true\napproval_timeout_seconds = 1\n",
    );
    let started = Instant::now();
    let run = t
        .on_terminal(&["migrate", "prod"])
        .wait(Duration::from_secs(30));
    run.code(3);
    assert!(
        run.stdout
            .contains("no answer at the approval prompt within 1 s"),
        "{}",
        run.stdout
    );
    assert!(started.elapsed() < Duration::from_secs(15));
    assert!(
        !t.tables().iter().any(|n| n == "User"),
        "nothing was applied: {:?}",
        t.tables()
    );
}

engine_test!(a_restore_always_needs_approval, |t: &TestContext| {
    t.fixture("basic");
    t.write_config("[backup]\ndir = \"backups\"\n");
    t.run(&["migrate", "staging"]).code(0);
    t.run(&["backup", "staging"]).code(0);
    // `staging` is not protected, but a restore discards what was written since the backup.
    let run = t.run(&["rollback", "staging", "--json"]);
    run.code(3);
    let doc = run.json();
    assert_eq!(doc["error"]["code"], "approval-required", "{doc}");
    assert!(
        doc["error"]["message"]
            .as_str()
            .unwrap()
            .contains("a restore of environment `staging` always needs approval"),
        "{doc}"
    );
    // Typed `yes` on a terminal restores.
    let mut term = t.on_terminal(&["rollback", "staging"]);
    std::thread::sleep(TO_THE_PROMPT);
    term.type_line("yes");
    let run = term.wait(Duration::from_secs(60));
    run.code(0);
    assert!(
        run.stdout.contains("will be replaced by backup"),
        "{}",
        run.stdout
    );
});

#[test]
fn a_dev_reset_happens_under_the_lock_after_the_backup() {
    let Some(t) = TestContext::new(
        Engine::Sqlite,
        "a_dev_reset_happens_under_the_lock_after_the_backup",
    ) else {
        return;
    };
    t.fixture("basic");
    t.write_config(
        "[environments.local]\nurl_env = \"DATABASE_URL\"\nmode = \"dev\"\nbackup_before_migrate = true\n\
         [backup]\ndir = \"backups\"\n",
    );
    t.run(&["migrate", "local"]).code(0);
    // An applied migration edited afterwards: in dev mode a reset is offered.
    let first = std::fs::read_dir(t.migrations())
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .min()
        .unwrap();
    let script = first.join("migration.sql");
    let text = std::fs::read_to_string(&script).unwrap();
    std::fs::write(&script, format!("{text}\n-- edited\n")).unwrap();

    // Declined: nothing dropped.
    let mut term = t.on_terminal(&["migrate", "local"]);
    std::thread::sleep(TO_THE_PROMPT);
    term.type_line("no");
    let run = term.wait(Duration::from_secs(60));
    run.code(1);
    assert!(t.tables().iter().any(|n| n == "User"), "{:?}", t.tables());

    // Accepted: the lock, then the backup, then the reset naming what it dropped.
    let mut term = t.on_terminal(&["migrate", "local"]);
    std::thread::sleep(TO_THE_PROMPT);
    term.type_line("yes");
    let run = term.wait(Duration::from_secs(60));
    run.code(0);
    let out = &run.stdout;
    let at = |needle: &str| {
        out.find(needle)
            .unwrap_or_else(|| panic!("no `{needle}` in:\n{out}"))
    };
    assert!(at("✓ lock") < at("✓ backup"), "{out}");
    assert!(at("✓ backup") < at("✓ reset"), "{out}");
    assert!(out.contains("dropped ") && out.contains("User"), "{out}");
    let backups: Vec<_> = std::fs::read_dir(t.path().join("backups/local"))
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
        .collect();
    // One before the first deploy, one before the reset; none for the declined run.
    assert_eq!(backups.len(), 2, "{backups:?}");
}
