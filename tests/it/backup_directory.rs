//! PostgreSQL backups in directory format (issue 12): `pg_dump -Fd -j N` into a fresh private
//! directory, restored in one transaction; one-file backups of earlier versions still
//! restore; `[backup] compression` and `jobs` are validated; an interrupted backup leaves
//! nothing.
#![allow(clippy::disallowed_methods)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::backup_signals::{none_left, signal_during};
use crate::common::{Engine, Run, TestContext, sha256_file, sqlite_basic};

fn config(t: &TestContext, extra: &str) {
    t.write_config(&format!(
        "[environments.safe]\nurl_env = \"DATABASE_URL\"\nbackup_before_migrate = true\n\
         rollback_on_failure = true\n\n[backup]\ndir = \"backups\"\n{extra}\n"
    ));
}

fn users(t: &TestContext) -> Vec<String> {
    t.sql("SELECT email FROM \"User\" ORDER BY 1")
}

fn backup(t: &TestContext) -> serde_json::Value {
    let run = t.run(&["backup", "safe", "--json"]);
    run.code(0);
    run.json()
}

fn folder(t: &TestContext) -> PathBuf {
    t.path().join("backups/safe")
}

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o777
}

/// Everything in the backup folder but the finished backups' manifests and data.
fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| {
            n.ends_with(".partial")
                || n.ends_with(".tmp")
                || (n.ends_with(".json")
                    && std::fs::metadata(dir.join(n)).is_ok_and(|m| m.len() == 0))
        })
        .collect()
}

#[test]
fn a_postgres_backup_is_a_private_directory_dump_and_restores_in_one_piece() {
    crate::common::run_on(Engine::Postgres, "dir_round_trip", |t| {
        t.fixture("basic");
        config(t, "jobs = 2\ncompression = \"gzip:1\"");
        t.run(&["migrate", "safe", "--yes", "--skip-backup"])
            .code(0);
        t.sql("INSERT INTO \"User\" (email) VALUES ('kept@example.com')");
        t.sql("CREATE TABLE extra (id int PRIMARY KEY, note text)");
        t.sql("INSERT INTO extra SELECT g, md5(g::text) FROM generate_series(1, 5000) g");
        let doc = backup(t);
        let id = doc["result"]["backup_id"].as_str().unwrap().to_owned();
        let data = folder(t).join(format!("{id}.pgdir"));
        assert!(data.is_dir(), "a directory-format dump");
        assert_eq!(mode(&data), 0o700);
        let files: Vec<PathBuf> = std::fs::read_dir(&data)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert!(files.iter().any(|f| f.ends_with("toc.dat")), "{files:?}");
        assert!(files.len() >= 3, "one file per table: {files:?}");
        for f in &files {
            assert_eq!(mode(f), 0o600, "{}", f.display());
        }
        let manifest: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(folder(t).join(format!("{id}.json"))).unwrap(),
        )
        .unwrap();
        assert_eq!(manifest["file"], format!("{id}.pgdir"));
        let provider = manifest["provider"].as_str().unwrap();
        assert!(
            provider.contains("-Fd -j 2") && provider.contains("--compress=1"),
            "{provider}"
        );
        assert!(manifest["size_bytes"].as_u64().unwrap() > 0);

        t.sql("INSERT INTO \"User\" (email) VALUES ('later@example.com')");
        t.sql("DROP TABLE extra");
        t.sql("CREATE TABLE newer (id int)");
        let run = t.run(&["rollback", "safe", "--yes", "--to", &id]);
        run.code(0);
        assert_eq!(users(t), vec!["kept@example.com"]);
        assert_eq!(t.sql("SELECT count(*) FROM extra"), vec!["5000"]);
        assert!(
            !t.tables().contains(&"newer".to_owned()),
            "{:?}",
            t.tables()
        );

        // A file of the dump changed after the backup: refused before anything is touched.
        let victim = files.iter().find(|f| !f.ends_with("toc.dat")).unwrap();
        std::fs::write(victim, b"changed").unwrap();
        t.sql("INSERT INTO \"User\" (email) VALUES ('after@example.com')");
        let run = t.run(&["rollback", "safe", "--yes", "--to", &id, "--json"]);
        run.code(1);
        assert_eq!(run.json()["error"]["code"], "backup-tampered");
        assert_eq!(users(t), vec!["after@example.com", "kept@example.com"]);
    });
}

/// A backup made by an earlier version: one `pg_dump -Fc` file named in its manifest.
#[test]
fn a_one_file_backup_of_an_earlier_version_still_restores() {
    crate::common::run_on(Engine::Postgres, "old_format", |t| {
        t.fixture("basic");
        config(t, "");
        t.run(&["migrate", "safe", "--yes", "--skip-backup"])
            .code(0);
        t.sql("INSERT INTO \"User\" (email) VALUES ('old@example.com')");
        let doc = backup(t);
        let id = doc["result"]["backup_id"].as_str().unwrap().to_owned();
        let dir = folder(t);
        std::fs::remove_dir_all(dir.join(format!("{id}.pgdir"))).unwrap();
        let file = dir.join(format!("{id}.dump"));
        let dumped = Command::new("pg_dump")
            .args([
                "--format=custom",
                "--exclude-table=*._dbdeploy_history",
                "--file",
            ])
            .arg(&file)
            .arg(&t.url)
            .status()
            .unwrap();
        assert!(dumped.success());
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let manifest_path = dir.join(format!("{id}.json"));
        let mut manifest: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&manifest_path).unwrap()).unwrap();
        manifest["file"] = format!("{id}.dump").into();
        manifest["sha256"] = sha256_file(&file).into();
        manifest["size_bytes"] = std::fs::metadata(&file).unwrap().len().into();
        manifest["provider"] = "pg_dump (pg_dump (PostgreSQL) 15)".into();
        std::fs::write(&manifest_path, manifest.to_string()).unwrap();

        t.sql("DELETE FROM \"User\"");
        t.sql("INSERT INTO \"User\" (email) VALUES ('new@example.com')");
        let run = t.run(&["rollback", "safe", "--yes", "--to", &id]);
        run.code(0);
        assert_eq!(users(t), vec!["old@example.com"]);
    });
}

#[test]
fn backup_compression_and_jobs_are_validated() {
    let t = sqlite_basic("backup_keys");
    for (extra, key) in [
        ("compression = \"brotli\"", "compression"),
        ("compression = \"gzip:0\"", "compression"),
        ("compression = \"zstd:23\"", "compression"),
        ("compression = 3", "compression"),
        ("jobs = 0", "jobs"),
        ("jobs = 33", "jobs"),
        ("jobs = -1", "jobs"),
        ("jobs = \"4\"", "jobs"),
    ] {
        config(&t, extra);
        let run = t.run(&["backup", "safe"]);
        run.code(2);
        assert!(
            run.stderr.contains(key) && run.stderr.contains("dbdeploy.toml"),
            "{extra}: {}",
            run.stderr
        );
        assert!(!t.path().join("backups").exists(), "{extra}: nothing made");
    }
    config(&t, "compression = \"zstd:3\"\njobs = 32");
    t.run(&["backups", "safe"]).code(0);
}

#[test]
fn lz4_with_a_pg_dump_older_than_16_stops_before_anything_is_written() {
    let client = Command::new("pg_dump").arg("--version").output();
    let Ok(out) = client else { return };
    let line = String::from_utf8_lossy(&out.stdout).into_owned();
    let major: u32 = line
        .split(|c: char| !c.is_ascii_digit())
        .find(|s| !s.is_empty())
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    if major >= 16 {
        return;
    }
    crate::common::run_on(Engine::Postgres, "lz4_old_client", |t| {
        t.fixture("basic");
        config(t, "compression = \"lz4\"");
        t.run(&["migrate", "safe", "--yes", "--skip-backup"])
            .code(0);
        let run = t.run(&["backup", "safe"]);
        run.code(1);
        assert!(
            run.stderr.contains("pg_dump 16 or newer") && run.stderr.contains("gzip:1"),
            "{}",
            run.stderr
        );
        let dir = folder(t);
        let left: Vec<_> = std::fs::read_dir(&dir)
            .map(|d| d.filter_map(Result::ok).map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "{left:?}");
    });
}

#[test]
fn an_interrupted_directory_backup_leaves_nothing_behind() {
    crate::common::run_on(Engine::Postgres, "dir_interrupted", |t| {
        t.fixture("basic");
        // One slow job, so that the dump is still running when the signal comes.
        config(t, "jobs = 1\ncompression = \"gzip:9\"");
        t.run(&["migrate", "safe", "--yes", "--skip-backup"])
            .code(0);
        t.sql(
            "INSERT INTO \"User\" (email, name) SELECT 'u' || g || '@example.com', repeat(md5(g::text), 12) FROM generate_series(1, 150000) g",
        );
        let (run, seen) = signal_during(
            t,
            &["backup", "safe"],
            "--format=directory",
            "TERM",
            &[],
            Duration::from_millis(200),
        );
        assert!(
            run.code != 0 && run.all().contains("interrupted"),
            "{}",
            run.all()
        );
        none_left(&seen);
        let dir = folder(t);
        let everything: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(Result::ok)
            .map(|e| e.file_name())
            .collect();
        assert!(everything.is_empty(), "left: {everything:?}");

        // Killed outright: the next run removes what is left once nobody holds it.
        let (_, seen) = signal_during(
            t,
            &["backup", "safe"],
            "--format=directory",
            "KILL",
            &[],
            Duration::from_millis(200),
        );
        none_left(&seen);
        assert!(
            !leftovers(&dir).is_empty(),
            "the killed backup left its directory"
        );
        std::thread::sleep(Duration::from_millis(2100));
        let run: Run = t.run(&["backups", "safe"]);
        run.code(0);
        assert!(leftovers(&dir).is_empty(), "{:?}", leftovers(&dir));
        assert!(
            std::fs::read_dir(&dir).unwrap().next().is_none(),
            "nothing else either"
        );
    });
}
