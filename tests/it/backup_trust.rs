//! The safety net must never do harm nor report a wrong state (issue 11, items 1–3): a backup
//! is restored only into the database it was taken from, and the backup folder is untrusted
//! input.
#![allow(clippy::disallowed_methods)]

use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::Duration;

use crate::common::{Engine, Run, TestContext};
use crate::engine_test;

/// A `safe` environment that backs up and rolls back, with `[backup] dir = dir`.
pub(crate) fn safe_config(t: &TestContext, dir: &str, extra: &str) {
    t.write_config(&format!(
        "[environments.safe]\nurl_env = \"DATABASE_URL\"\nbackup_before_migrate = true\n\
         rollback_on_failure = true\n\n[backup]\ndir = \"{dir}\"\n{extra}\n"
    ));
}

pub(crate) fn backup_id(t: &TestContext, url: &str) -> String {
    let run = Run::from(
        t.cmd(&["backup", "safe", "--json"])
            .env("DATABASE_URL", url)
            .output()
            .unwrap(),
    );
    run.code(0);
    run.json()["result"]["backup_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

pub(crate) fn users(t: &TestContext) -> Vec<String> {
    let q = |s: &str| t.engine.q(s);
    t.sql(&format!(
        "SELECT {} FROM {} ORDER BY 1",
        q("email"),
        q("User")
    ))
}

pub(crate) fn add_user(t: &TestContext, email: &str) {
    let q = |s: &str| t.engine.q(s);
    t.sql(&format!(
        "INSERT INTO {} ({}) VALUES ('{email}')",
        q("User"),
        q("email")
    ));
}

fn listed(run: &Run) -> Vec<String> {
    run.json()["result"]["backups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_str().unwrap().to_owned())
        .collect()
}

engine_test!(
    rollback_refuses_another_databases_backup,
    |t: &TestContext| {
        t.fixture("basic");
        safe_config(t, "backups", "");
        t.run(&["migrate", "safe", "--yes"]).code(0);
        add_user(t, "old@example.com");
        let id = backup_id(t, &t.url);

        // The environment's URL now points at another, empty database.
        let other = TestContext::new(t.engine, "other_db").unwrap();
        let there = |args: &[&str]| {
            Run::from(
                t.cmd(args)
                    .env("DATABASE_URL", &other.url)
                    .output()
                    .unwrap(),
            )
        };
        let run = there(&["backups", "safe", "--json"]);
        run.code(0);
        assert!(listed(&run).is_empty(), "{}", run.stdout);
        assert_eq!(
            run.json()["result"]["other_backups"],
            2,
            "the deploy's and the manual backup"
        );

        // The newest backup is not this database's: none to restore.
        let run = there(&["rollback", "safe", "--yes", "--json"]);
        run.code(2);
        assert_eq!(run.json()["error"]["code"], "backup-not-found");
        // Named: refused, naming both databases, nothing touched.
        let run = there(&["rollback", "safe", "--yes", "--to", &id, "--json"]);
        run.code(1);
        let doc = run.json();
        assert_eq!(doc["error"]["code"], "backup-of-another-database");
        let message = doc["error"]["message"].as_str().unwrap();
        let (mine, theirs) = match t.engine {
            Engine::Sqlite => (
                t.path()
                    .join("test.db")
                    .canonicalize()
                    .unwrap()
                    .display()
                    .to_string(),
                other.path().join("test.db").display().to_string(),
            ),
            _ => (db_name(&t.url), db_name(&other.url)),
        };
        assert!(
            message.contains(&mine) && message.contains(&theirs),
            "{message}"
        );
        assert!(
            other.tables().iter().all(|t| t == "_dbdeploy_history"),
            "{:?}",
            other.tables()
        );
        // Only on purpose, approved.
        there(&["rollback", "safe", "--to", &id, "--from-other-database"]).code(2);
        there(&[
            "rollback",
            "safe",
            "--yes",
            "--to",
            &id,
            "--from-other-database",
        ])
        .code(0);
        assert_eq!(users(&other), vec!["old@example.com"]);
    }
);

pub(crate) fn db_name(url: &str) -> String {
    url::Url::parse(url)
        .unwrap()
        .path()
        .trim_start_matches('/')
        .to_owned()
}

/// A staging backup copied into production's folder is not production's.
#[test]
fn another_environments_backup_is_refused() {
    let t = crate::common::sqlite_basic("staging_into_production");
    t.write_config("[backup]\ndir = \"backups\"\n");
    t.run(&["migrate", "staging", "--yes"]).code(0);
    let run = t.run(&["backup", "staging", "--json"]);
    run.code(0);
    let id = run.json()["result"]["backup_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let prod = t.path().join("backups/production");
    std::fs::create_dir_all(&prod).unwrap();
    std::fs::set_permissions(&prod, std::fs::Permissions::from_mode(0o700)).unwrap();
    for entry in std::fs::read_dir(t.path().join("backups/staging")).unwrap() {
        let p = entry.unwrap().path();
        std::fs::copy(&p, prod.join(p.file_name().unwrap())).unwrap();
    }
    add_user(&t, "new@example.com");
    let run = t.run(&["rollback", "production", "--yes", "--to", &id, "--json"]);
    run.code(1);
    let doc = run.json();
    assert_eq!(doc["error"]["code"], "backup-of-another-database");
    assert!(
        doc["error"]["message"]
            .as_str()
            .unwrap()
            .contains("environment `staging`"),
        "{doc}"
    );
    assert_eq!(users(&t), vec!["new@example.com"], "nothing restored");
}

/// Two projects share one absolute `[backup] dir`, both with an environment `safe`.
#[test]
fn projects_sharing_a_backup_folder_never_see_or_prune_each_other() {
    let shared = tempfile::tempdir().unwrap();
    let dir = shared.path().join("backups");
    let a = crate::common::sqlite_basic("shared_a");
    let b = crate::common::sqlite_basic("shared_b");
    for t in [&a, &b] {
        safe_config(t, &dir.display().to_string(), "keep = 1");
        t.run(&["migrate", "safe", "--yes"]).code(0);
    }
    add_user(&a, "a@example.com");
    let a_id = backup_id(&a, &a.url);
    add_user(&b, "b@example.com");
    std::thread::sleep(Duration::from_millis(1100));
    let b_id = backup_id(&b, &b.url);
    let b_id2 = backup_id(&b, &b.url);
    // b's retention (keep 1) pruned b's older backup only.
    let run = a.run(&["backups", "safe", "--json"]);
    run.code(0);
    assert_eq!(listed(&run), vec![a_id.clone()]);
    let run = b.run(&["backups", "safe", "--json"]);
    assert_eq!(listed(&run), vec![b_id2.clone()]);
    assert!(!dir.join(format!("safe/{b_id}.sqlite")).exists());
    assert!(dir.join(format!("safe/{a_id}.sqlite")).exists());
    // a's rollback restores a's own backup, not b's newer one.
    a.sql("DELETE FROM \"User\"");
    a.run(&["rollback", "safe", "--yes"]).code(0);
    assert_eq!(users(&a), vec!["a@example.com"]);
}

/// The restore is verified against the state the backup recorded, and that check can fail:
/// a restore command that restores nothing is caught.
#[test]
fn a_restore_that_restores_nothing_does_not_verify() {
    let t = crate::common::sqlite_basic("verify_can_fail");
    safe_config(
        &t,
        "backups",
        "command = \"cp \\\"${DATABASE_URL#sqlite://}\\\" \\\"$DBDEPLOY_BACKUP_PATH\\\"\"\nrestore_command = \"true\"",
    );
    t.run(&["migrate", "safe", "--yes", "--to", "20240101000000_init"])
        .code(0);
    t.run(&["backup", "safe"]).code(0);
    t.run(&["migrate", "safe", "--yes"]).code(0);
    let run = t.run(&["rollback", "safe", "--yes", "--json"]);
    run.code(1);
    let doc = run.json();
    assert_eq!(doc["error"]["code"], "restore-unverified", "{doc}");
}

#[test]
fn an_untrusted_backup_folder_is_refused_and_an_open_one_of_ours_tightened() {
    let t = crate::common::sqlite_basic("untrusted_folder");
    safe_config(&t, "backups", "");
    t.run(&["migrate", "safe", "--yes", "--skip-backup"])
        .code(0);
    let env_dir = t.path().join("backups/safe");
    std::fs::create_dir_all(&env_dir).unwrap();

    // Ours but open to everyone: tightened to 0700, then used.
    std::fs::set_permissions(&env_dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    t.run(&["backup", "safe"]).code(0);
    let mode = std::fs::metadata(&env_dir).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);

    // Another user's folder: refused, nothing written.
    let status = Command::new("chown")
        .args(["65534:65534"])
        .arg(&env_dir)
        .status()
        .unwrap();
    assert!(status.success());
    let before = std::fs::read_dir(&env_dir).unwrap().count();
    let run = t.run(&["backup", "safe", "--json"]);
    run.code(1);
    assert_eq!(run.json()["error"]["code"], "backup-folder-untrusted");
    assert!(run.stdout.contains("uid 65534"), "{}", run.stdout);
    t.run(&["rollback", "safe", "--yes"]).code(1);
    assert_eq!(std::fs::read_dir(&env_dir).unwrap().count(), before);

    // A symbolic link in place of the folder: refused.
    std::fs::rename(&env_dir, t.path().join("elsewhere")).unwrap();
    std::os::unix::fs::symlink(t.path().join("elsewhere"), &env_dir).unwrap();
    let run = t.run(&["backups", "safe", "--json"]);
    run.code(1);
    assert_eq!(run.json()["error"]["code"], "backup-folder-untrusted");
}

#[test]
fn a_planted_manifest_cannot_delete_or_restore_anything() {
    let t = crate::common::sqlite_basic("planted_manifest");
    safe_config(&t, "backups", "keep = 1");
    t.run(&["migrate", "safe", "--yes", "--skip-backup"])
        .code(0);
    let id = backup_id(&t, &t.url);
    let env_dir = t.path().join("backups/safe");
    let victim = t.path().join("victim.txt");
    std::fs::write(&victim, "precious").unwrap();
    let mut m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(env_dir.join(format!("{id}.json"))).unwrap())
            .unwrap();
    m["id"] = "backup-20000101-000000".into();
    m["file"] = victim.display().to_string().into();
    m["created_at"] = "2000-01-01T00:00:00Z".into();
    std::fs::write(env_dir.join("backup-20000101-000000.json"), m.to_string()).unwrap();
    // Retention (keep 1) would delete the oldest backup's file: the planted one is refused.
    std::thread::sleep(Duration::from_millis(1100));
    t.run(&["backup", "safe"]).code(0);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    let run = t.run(&["backups", "safe", "--json"]);
    run.code(0);
    let refused = run.json()["result"]["refused"].to_string();
    assert!(refused.contains("plain file name"), "{refused}");
    let run = t.run(&[
        "rollback",
        "safe",
        "--yes",
        "--to",
        "backup-20000101-000000",
        "--json",
    ]);
    run.code(1);
    assert_eq!(run.json()["error"]["code"], "backup-folder-untrusted");
}

#[test]
fn environment_names_are_validated() {
    let t = crate::common::sqlite_basic("env_names");
    // A name of its own, so that nothing else on the machine can have made the folder the
    // test looks for outside the project.
    let escape = format!(
        "escape_{}_{}",
        std::process::id(),
        t.path().display().to_string().len()
    );
    let env = format!("../../{escape}");
    t.write_config(&format!(
        "[environments.\"{env}\"]\nurl_env = \"DATABASE_URL\"\n"
    ));
    let run = t.run(&["backup", &env, "--json"]);
    run.code(2);
    let message = run.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(
        message.contains(&format!("`{env}`")) && message.contains("letters, digits"),
        "{message}"
    );
    for folder in [
        t.path(),
        t.path().parent().unwrap(),
        &t.path().join(".dbdeploy"),
    ] {
        assert!(!folder.join(&escape).exists(), "{}", folder.display());
    }
}

#[test]
fn the_audit_log_is_private() {
    let t = crate::common::sqlite_basic("audit_mode");
    t.run(&["migrate", "staging", "--yes"]).code(0);
    let mode = std::fs::metadata(t.path().join(".dbdeploy/audit.jsonl"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
}

/// Runs SQL as the test server's admin (MariaDB).
pub(crate) fn admin(sql: &str) {
    let admin = url::Url::parse(&std::env::var("DBDEPLOY_TEST_MARIADB_URL").unwrap()).unwrap();
    let mut cmd = Command::new("mariadb");
    cmd.arg("-h")
        .arg(admin.host_str().unwrap_or("127.0.0.1"))
        .arg("-P")
        .arg(admin.port().unwrap_or(3306).to_string())
        .arg("-u")
        .arg(admin.username());
    if let Some(pw) = admin.password() {
        cmd.arg(format!("-p{pw}"));
    }
    let out = cmd.arg("-e").arg(sql).output().unwrap();
    assert!(
        out.status.success(),
        "{sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A dump holding a trigger with `DEFINER=root@localhost`, restored by a user who may not set
/// another definer: refused before anything is dropped, with restore hints (not a backup's).
#[test]
fn mariadb_restore_needing_a_definer_is_refused_before_anything_is_dropped() {
    crate::common::run_on(Engine::MariaDb, "definer_restore", |t| {
        t.fixture("basic");
        safe_config(t, "backups", "");
        t.run(&["migrate", "safe", "--yes", "--skip-backup"])
            .code(0);
        add_user(t, "ann@example.com");
        t.sql(
            "CREATE DEFINER=`root`@`localhost` TRIGGER user_name BEFORE INSERT ON `User` FOR EACH ROW SET NEW.name = COALESCE(NEW.name, 'anon')",
        );
        let user = format!("dbd_def_{}", std::process::id());
        admin(&format!(
            "CREATE USER '{user}'@'%' IDENTIFIED BY 'pw'; GRANT ALL ON `{}`.* TO '{user}'@'%'",
            db_name(&t.url)
        ));
        let mut url = url::Url::parse(&t.url).unwrap();
        url.set_username(&user).unwrap();
        url.set_password(Some("pw")).unwrap();
        let as_user = |args: &[&str]| {
            Run::from(
                t.cmd(args)
                    .env("DATABASE_URL", url.as_str())
                    .output()
                    .unwrap(),
            )
        };
        let id = {
            let run = as_user(&["backup", "safe", "--json"]);
            run.code(0);
            run.json()["result"]["backup_id"]
                .as_str()
                .unwrap()
                .to_owned()
        };
        add_user(t, "bob@example.com");
        let tables = t.tables();
        let run = as_user(&["rollback", "safe", "--yes", "--to", &id, "--json"]);
        run.code(1);
        let doc = run.json();
        assert_eq!(doc["error"]["code"], "restore-failed", "{doc}");
        let all = doc.to_string();
        assert!(
            all.contains("DEFINER") && all.contains("root@localhost"),
            "{all}"
        );
        assert!(all.contains("was not changed"), "{all}");
        assert!(
            !all.contains("the deploy stops before any change when its backup cannot be made"),
            "{all}"
        );
        assert_eq!(t.tables(), tables, "nothing dropped");
        assert_eq!(users(t), vec!["ann@example.com", "bob@example.com"]);
        t.run(&["status", "safe"]).code(0);
        admin(&format!("DROP USER '{user}'@'%'"));
    });
}
