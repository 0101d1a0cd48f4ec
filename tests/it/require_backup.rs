//! `require_backup = true`: `--skip-backup` is refused before anything runs (exit 2), and a
//! backup that cannot be made stops the deploy with no way around it offered.

use crate::common::{Engine, TestContext};
use crate::{dbdeploy_snapshot, engine_test};

const CONFIG: &str = "[project]\nmigration_tool = \"prisma\"\nmigrations_dir = \"prisma/migrations\"\n\n\
    [environments.production]\nurl_env = \"DATABASE_URL\"\nrequire_backup = true\n\n";

/// The tables a deploy makes (dbdeploy's own history records the refused run too).
fn migrated_tables(t: &TestContext) -> Vec<String> {
    t.tables()
        .into_iter()
        .filter(|n| n != "_dbdeploy_history")
        .collect()
}

engine_test!(require_backup_refuses_skip_backup, |t: &TestContext| {
    t.fixture("basic");
    std::fs::write(
        t.path().join("dbdeploy.toml"),
        format!("{CONFIG}[backup]\ndir = \"backups\"\n"),
    )
    .unwrap();
    for args in [
        &["migrate", "production", "--yes", "--skip-backup", "--json"][..],
        &["down", "production", "--yes", "--skip-backup", "--json"],
    ] {
        let run = t.run(args);
        run.code(2);
        let doc = run.json();
        assert_eq!(doc["error"]["code"], "backup-required", "{doc}");
        assert!(
            doc["error"]["message"]
                .as_str()
                .unwrap()
                .contains("`production` requires a backup"),
            "{doc}"
        );
    }
    assert_eq!(
        migrated_tables(t),
        Vec::<String>::new(),
        "nothing was changed"
    );
    if t.engine == Engine::Sqlite {
        dbdeploy_snapshot!(t, ["migrate", "production", "--yes", "--skip-backup"]).code(2);
    }
    // Without the flag the backup is taken (require_backup implies backup_before_migrate).
    let run = t.run(&["migrate", "production", "--yes", "--json"]);
    run.code(0);
    assert_eq!(run.json()["result"]["backup_status"], "created");
});

engine_test!(
    require_backup_failure_offers_no_bypass,
    |t: &TestContext| {
        t.fixture("basic");
        std::fs::write(
        t.path().join("dbdeploy.toml"),
        format!(
            "{CONFIG}[backup]\ndir = \"backups\"\ncommand = \"echo the snapshot service is down >&2; exit 3\"\nrestore_command = \"true\"\n"
        ),
    )
    .unwrap();
        let run = t.run(&["migrate", "production", "--yes", "--json"]);
        run.code(1);
        let doc = run.json();
        assert_eq!(doc["error"]["code"], "backup-failed", "{doc}");
        let hints = doc["error"]["hints"].to_string();
        assert!(!hints.contains("--skip-backup"), "{hints}");
        assert!(hints.contains("require_backup = true"), "{hints}");
        assert_eq!(
            migrated_tables(t),
            Vec::<String>::new(),
            "nothing was changed"
        );
        if t.engine == Engine::Sqlite {
            dbdeploy_snapshot!(t, ["migrate", "production", "--yes"]).code(1);
        }
        // The same failure without require_backup still offers the flag.
        let text = std::fs::read_to_string(t.path().join("dbdeploy.toml"))
            .unwrap()
            .replace("require_backup = true", "backup_before_migrate = true");
        std::fs::write(t.path().join("dbdeploy.toml"), text).unwrap();
        let run = t.run(&["migrate", "production", "--yes", "--json"]);
        run.code(1);
        assert!(
            run.json()["error"]["hints"]
                .to_string()
                .contains("--skip-backup")
        );
    }
);
