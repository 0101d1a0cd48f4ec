//! Backups, verified rollback, health checks and schema drift, on every engine.
//! Each scenario checks what an operator would look at afterwards: rows, tables, the tracking
//! table, the files in the backup folder, and what the commands print.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use crate::common::{Engine, TestContext, health_check};
use crate::engine_test;

/// A `safe` environment that backs up and rolls back, plus a `[backup]` table.
fn safe_config(t: &TestContext, env_extra: &str, backup_extra: &str) {
    t.write_config(&format!(
        "[environments.safe]\nurl_env = \"DATABASE_URL\"\nbackup_before_migrate = true\n\
         rollback_on_failure = true\nrollback_on_health_check_failure = true\n{env_extra}\n\
         [backup]\ndir = \"backups\"\n{backup_extra}\n"
    ));
}

fn backup_dir(t: &TestContext) -> PathBuf {
    t.path().join("backups/safe")
}

/// The backup ids in the folder, oldest first.
fn backup_ids(t: &TestContext) -> Vec<String> {
    let mut ids: Vec<String> = std::fs::read_dir(backup_dir(t))
        .map(|d| {
            d.filter_map(Result::ok)
                .filter_map(|e| {
                    e.file_name()
                        .to_str()
                        .and_then(|n| n.strip_suffix(".json"))
                        .map(str::to_owned)
                })
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    ids
}

/// Every user table with its rows in a stable order: what "the data" is.
fn contents(t: &TestContext) -> Vec<(String, Vec<String>)> {
    t.tables()
        .into_iter()
        .filter(|n| n != "_dbdeploy_history")
        .map(|table| {
            let q = t.engine.q(&table);
            let rows = t.sql(&format!("SELECT * FROM {q} ORDER BY 1"));
            (table, rows)
        })
        .collect()
}

fn seed(t: &TestContext) {
    let q = |s: &str| t.engine.q(s);
    t.sql(&format!(
        "INSERT INTO {} ({}, {}) VALUES ('ann@example.com', 'Ann ✓'), ('bob@example.com', 'O''Brien')",
        q("User"),
        q("email"),
        q("name")
    ));
    t.sql(&format!(
        "INSERT INTO {} ({}, {}, {}) VALUES ('Hello', 'tab\there', 1), ('Second', NULL, 2)",
        q("Post"),
        q("title"),
        q("content"),
        q("authorId")
    ));
}

engine_test!(
    backup_then_rollback_restores_data_and_schema_exactly,
    |t: &TestContext| {
        t.fixture("basic");
        safe_config(t, "", "");
        t.run(&["migrate", "safe", "--yes"]).code(0);
        seed(t);
        let before = contents(t);
        let tracking = t.prisma_rows();

        let run = t.run(&["backup", "safe", "--json"]);
        run.code(0);
        let doc = run.json();
        let id = doc["result"]["backup_id"].as_str().unwrap().to_owned();
        assert!(id.starts_with("backup-"), "{id}");
        let file = PathBuf::from(doc["result"]["path"].as_str().unwrap());
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        if file.is_dir() {
            // PostgreSQL's directory-format dump: a private folder of private files.
            assert_eq!(mode, 0o700, "backup directory mode");
            for f in std::fs::read_dir(&file).unwrap() {
                let f = f.unwrap().path();
                let mode = std::fs::metadata(&f).unwrap().permissions().mode() & 0o777;
                assert_eq!(mode, 0o600, "{}", f.display());
            }
        } else {
            assert_eq!(mode, 0o600, "backup file mode");
        }
        let manifest = backup_dir(t).join(format!("{id}.json"));
        let mode = std::fs::metadata(&manifest).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "manifest mode");
        let m: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&manifest).unwrap()).unwrap();
        assert_eq!(m["migrations"].as_array().unwrap().len(), 3);
        assert_eq!(m["sha256"], doc["result"]["sha256"]);

        // Everything changes afterwards: rows, a new table, a new column, a deleted row.
        let q = |s: &str| t.engine.q(s);
        t.sql(&format!("DELETE FROM {} WHERE {} = 2", q("Post"), q("id")));
        t.sql(&format!(
            "INSERT INTO {} ({}) VALUES ('eve@example.com')",
            q("User"),
            q("email")
        ));
        t.sql(&format!(
            "CREATE TABLE {} (id INTEGER PRIMARY KEY)",
            q("Extra")
        ));
        t.sql(&format!(
            "ALTER TABLE {} ADD COLUMN nickname TEXT",
            q("User")
        ));
        assert_ne!(contents(t), before);

        let run = t.run(&["rollback", "safe", "--yes", "--json"]);
        run.code(0);
        let doc = run.json();
        assert_eq!(doc["result"]["backup_id"], id.as_str());
        let verified = doc["result"]["verified"].to_string();
        assert!(verified.contains("schema fingerprint"), "{verified}");
        assert!(verified.contains("tracking table"), "{verified}");
        assert_eq!(contents(t), before, "rows and tables after the restore");
        assert_eq!(t.prisma_rows(), tracking);

        // The restore is recorded, and the run history itself survived it.
        let run = t.run(&["history", "safe", "--json"]);
        run.code(0);
        let runs = run.json()["result"]["runs"].as_array().unwrap().clone();
        let ops: Vec<&str> = runs
            .iter()
            .map(|r| r["operation"].as_str().unwrap())
            .collect();
        assert_eq!(
            ops,
            vec!["rollback", "create-backup", "deploy-migrations"],
            "{runs:?}"
        );
        // No drift after a verified restore: the restored schema is the new baseline.
        t.run(&["diff", "safe"]).code(0);
        t.run(&["migrate", "safe", "--yes"]).code(0);
    }
);

engine_test!(
    failed_migration_is_rolled_back_from_the_backup,
    |t: &TestContext| {
        t.fixture("fails-halfway");
        safe_config(t, "", "");
        t.run(&["migrate", "safe", "--yes", "--to", "20240101000000_init"])
            .code(0);
        seed_user(t);
        let before = contents(t);
        let tracking = t.prisma_rows();

        let run = t.run(&["migrate", "safe", "--yes", "--json"]);
        run.code(1);
        let doc = run.json();
        assert_eq!(doc["error"]["code"], "migration-failed");
        assert_eq!(doc["result"]["failed_migration"], "20240102000000_broken");
        let id = doc["result"]["backup_id"].as_str().unwrap();
        assert_eq!(doc["recovery"]["backup_id"], id);
        let hints = doc["recovery"]["suggestions"].to_string();
        if t.engine == Engine::MariaDb {
            assert_eq!(doc["result"]["rollback_initiated"], true);
            assert_eq!(doc["result"]["rollback_status"], "success");
            assert_eq!(doc["recovery"]["rollback_initiated"], true);
            assert!(hints.contains("restored from backup"), "{hints}");
        } else {
            // The failed migration rolled back in its own transaction and nothing else ran:
            // a restore would only add risk.
            assert_eq!(doc["result"]["rollback_initiated"], false);
            // The contract's word, and the reason beside it.
            assert_eq!(doc["result"]["rollback_status"], "not-attempted");
            assert_eq!(doc["recovery"]["rollback_status"], "not-attempted");
            let reason = doc["result"]["rollback_reason"].as_str().unwrap();
            assert!(reason.starts_with("not needed"), "{reason}");
            assert!(hints.contains("was rolled back"), "{hints}");
        }

        // MariaDB had already committed `Tag` (DDL is not transactional): it is gone again,
        // and the failed row is gone from the tracking table.
        assert_eq!(contents(t), before);
        assert_eq!(t.prisma_rows(), tracking);
        let run = t.run(&["status", "safe"]);
        assert_eq!(run.code, 4, "{}", run.all());
    }
);

fn seed_user(t: &TestContext) {
    let q = |s: &str| t.engine.q(s);
    t.sql(&format!(
        "INSERT INTO {} ({}) VALUES ('ann@example.com')",
        q("User"),
        q("email")
    ));
}

engine_test!(
    failing_health_command_after_deploy_triggers_rollback,
    |t: &TestContext| {
        t.fixture("basic");
        safe_config(t, "health_command = \"echo app is down >&2; exit 3\"", "");
        let run = t.run(&["migrate", "safe", "--yes", "--json"]);
        run.code(1);
        let doc = run.json();
        assert_eq!(doc["error"]["code"], "health-check-failed");
        assert_eq!(doc["error"]["class"], "post-deployment");
        assert_eq!(doc["result"]["rollback_status"], "success");
        assert!(
            doc["error"]["message"]
                .as_str()
                .unwrap()
                .contains("app is down"),
            "{doc}"
        );
        // Restored to the backup taken before the deploy: an empty database.
        let left: Vec<String> = t
            .tables()
            .into_iter()
            .filter(|n| n != "_dbdeploy_history")
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }
);

engine_test!(tampered_backup_is_refused, |t: &TestContext| {
    t.fixture("basic");
    safe_config(t, "", "");
    t.run(&["migrate", "safe", "--yes"]).code(0);
    let id = backup_ids(t).pop().unwrap();
    let file = std::fs::read_dir(backup_dir(t))
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| {
            p.file_name().unwrap().to_str().unwrap().starts_with(&id)
                && p.extension().is_some_and(|x| x != "json")
        })
        .unwrap();
    // A directory-format dump (PostgreSQL): change one of its table files.
    let file = if file.is_dir() {
        std::fs::read_dir(&file)
            .unwrap()
            .map(|e| e.unwrap().path())
            .max_by_key(|p| std::fs::metadata(p).unwrap().len())
            .unwrap()
    } else {
        file
    };
    let mut bytes = std::fs::read(&file).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&file, bytes).unwrap();
    let before = contents(t);

    let run = t.run(&["rollback", "safe", "--yes", "--to", &id, "--json"]);
    run.code(1);
    let doc = run.json();
    assert_eq!(doc["error"]["code"], "backup-tampered");
    assert_eq!(contents(t), before, "nothing restored");

    let run = t.run(&[
        "rollback",
        "safe",
        "--yes",
        "--to",
        "backup-19990101-000000",
    ]);
    run.code(2);
    assert!(run.stderr.contains("not found"), "{}", run.stderr);
});

engine_test!(hand_made_column_is_reported_as_drift, |t: &TestContext| {
    t.fixture("basic");
    t.run(&[
        "migrate",
        "staging",
        "--yes",
        "--to",
        "20240102000000_comments",
    ])
    .code(0);
    t.sql(&format!(
        "ALTER TABLE {} ADD COLUMN nickname VARCHAR(40)",
        t.engine.q("User")
    ));

    let run = t.run(&["migrate", "staging", "--yes", "--json"]);
    run.code(1);
    let doc = run.json();
    assert_eq!(doc["error"]["code"], "schema-drift");
    let msg = doc["error"]["message"].as_str().unwrap();
    assert!(msg.contains("User") && msg.contains("nickname"), "{msg}");
    assert_eq!(t.prisma_rows().len(), 2, "nothing applied");

    let run = t.run(&["diff", "staging"]);
    run.code(5);
    assert!(run.stdout.contains("+  column nickname"), "{}", run.stdout);
    let run = t.run(&["health", "staging", "--json"]);
    run.code(5);
    let doc = run.json();
    assert_eq!(health_check(&doc, "schema_drift")["status"], "failed");

    // dev mode warns and deploys; --allow-drift deploys and takes the schema as baseline.
    let run = t.run(&["migrate", "staging", "--yes", "--allow-drift"]);
    run.code(0);
    assert!(run.all().contains("nickname"), "{}", run.all());
    t.run(&["diff", "staging"]).code(0);
});

engine_test!(retention_keeps_the_newest_n, |t: &TestContext| {
    t.fixture("basic");
    safe_config(t, "", "keep = 2");
    for _ in 0..3 {
        t.run(&["backup", "safe"]).code(0);
    }
    let ids = backup_ids(t);
    assert_eq!(ids.len(), 2, "{ids:?}");
    let run = t.run(&["backups", "safe", "--json"]);
    run.code(0);
    let listed: Vec<String> = run.json()["result"]["backups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_str().unwrap().to_owned())
        .collect();
    // Newest first; ids made within one second stay unique and ordered.
    let mut expected = ids.clone();
    expected.reverse();
    assert_eq!(listed, expected);
    // Data files go with their manifests.
    let files = std::fs::read_dir(backup_dir(t)).unwrap().count();
    assert_eq!(files, 4);
});

engine_test!(
    required_backup_is_taken_and_skip_backup_skips_it,
    |t: &TestContext| {
        t.fixture("basic");
        safe_config(t, "", "");
        let run = t.run(&[
            "migrate",
            "safe",
            "--yes",
            "--to",
            "20240101000000_init",
            "--json",
        ]);
        run.code(0);
        let doc = run.json();
        assert_eq!(doc["result"]["backup_status"], "created");
        assert!(
            doc["result"]["backup_id"]
                .as_str()
                .unwrap()
                .starts_with("backup-")
        );
        // Nothing pending: no backup.
        let n = backup_ids(t).len();
        t.run(&["migrate", "safe", "--yes", "--to", "20240101000000_init"])
            .code(0);
        assert_eq!(backup_ids(t).len(), n);
        let run = t.run(&["migrate", "safe", "--yes", "--skip-backup", "--json"]);
        run.code(0);
        assert_eq!(run.json()["result"]["backup_status"], "skipped");
        assert_eq!(backup_ids(t).len(), n);
        assert_eq!(t.prisma_rows().len(), 3);
    }
);

/// pg_dump missing, or older than the server: found before anything changes.
#[test]
fn postgres_missing_or_old_pg_dump_is_found_before_any_change() {
    crate::common::run_on(Engine::Postgres, "pg_dump_preflight", |t| {
        t.fixture("basic");
        safe_config(t, "", "");
        let bin = t.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let run = crate::common::Run::from(
            t.cmd(&["migrate", "safe", "--yes", "--json"])
                .env("PATH", &bin)
                .output()
                .unwrap(),
        );
        run.code(1);
        let doc = run.json();
        assert_eq!(doc["error"]["code"], "backup-tool-missing");
        assert_eq!(doc["error"]["class"], "pre-deployment");
        assert!(
            doc["error"]["message"]
                .as_str()
                .unwrap()
                .contains("pg_dump"),
            "{doc}"
        );
        assert!(t.tables().is_empty(), "{:?}", t.tables());

        let fake = bin.join("pg_dump");
        std::fs::write(&fake, "#!/bin/sh\necho 'pg_dump (PostgreSQL) 9.6.24'\n").unwrap();
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        let run = crate::common::Run::from(
            t.cmd(&["migrate", "safe", "--yes"])
                .env("PATH", &bin)
                .output()
                .unwrap(),
        );
        run.code(1);
        assert!(
            run.stderr.contains("9.6") && run.stderr.contains("older than the server"),
            "{}",
            run.stderr
        );
        assert!(t.tables().is_empty(), "{:?}", t.tables());
        assert!(backup_ids(t).is_empty());
    });
}

/// The password never reaches a manifest, the audit log, the history table or the output.
#[test]
fn postgres_password_stays_out_of_backups_and_logs() {
    crate::common::run_on(Engine::Postgres, "backup_password", |t| {
        t.fixture("basic");
        safe_config(t, "", "");
        // Trust authentication accepts any password, so a secret one can be used.
        let url = t.url_with_password("s3cr3t-Pw");
        let run = crate::common::Run::from(
            t.cmd(&["migrate", "safe", "--yes", "--json"])
                .env("DATABASE_URL", &url)
                .output()
                .unwrap(),
        );
        run.code(0);
        let run2 = crate::common::Run::from(
            t.cmd(&["backups", "safe", "--json"])
                .env("DATABASE_URL", &url)
                .output()
                .unwrap(),
        );
        let mut seen = run.all() + &run2.all();
        let mut paths: Vec<PathBuf> = std::fs::read_dir(backup_dir(t))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        while let Some(path) = paths.pop() {
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            if path.is_dir() {
                assert_eq!(mode, 0o700, "{}", path.display());
                paths.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
                continue;
            }
            assert_eq!(mode, 0o600, "{}", path.display());
            seen.push_str(&String::from_utf8_lossy(&std::fs::read(&path).unwrap()));
        }
        seen.push_str(&std::fs::read_to_string(t.path().join(".dbdeploy/audit.jsonl")).unwrap());
        seen.push_str(&t.sql("SELECT * FROM _dbdeploy_history").join("\n"));
        assert!(!seen.contains("s3cr3t"), "the password leaked");
    });
}
