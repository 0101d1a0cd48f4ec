//! A disk that fills up (or a file size limit) while the backup or its manifest is written:
//! the run stops before any change and leaves no partial backup.
#![allow(clippy::disallowed_methods, clippy::print_stderr)]

use std::path::Path;
use std::process::{Command, Stdio};

use crate::common::{Engine, Run, TestContext, audit_lines, has_table};
use crate::engine_test;
use crate::faults::{INIT, assert_users_kept, seed_users, three_migrations};

/// A project whose `safe` environment backs up to `backups/` before applying, with `init`
/// applied and about 300 KB of user rows, so that any backup is far larger than 64 KB.
fn deployed_with_data(t: &TestContext) {
    three_migrations(t, 0);
    t.write_config(
        "[environments.safe]\nurl_env = \"DATABASE_URL\"\nbackup_before_migrate = true\n\
         rollback_on_failure = true\n\n[backup]\ndir = \"backups\"\n",
    );
    t.run(&["migrate", "safe", "--to", INIT, "--skip-backup"])
        .code(0);
    seed_users(t);
    let filler = match t.engine {
        Engine::Sqlite => "hex(randomblob(32))",
        Engine::Postgres => "md5(x::text) || md5((x * 7)::text)",
        Engine::MariaDb => "CONCAT(MD5(x), MD5(x * 7))",
    };
    let prologue = if t.engine == Engine::MariaDb {
        "SET SESSION max_recursive_iterations = 10000; "
    } else {
        ""
    };
    t.sql(&format!(
        "{prologue}INSERT INTO {} ({}, {}) WITH RECURSIVE c(x) AS (SELECT 3 UNION ALL SELECT x + 1 FROM c \
         WHERE x < 5002) SELECT x, {filler} FROM c",
        t.engine.q("User"),
        t.engine.q("id"),
        t.engine.q("email")
    ));
}

/// Every file under the backup folder (there must be none after a failed backup).
fn backup_files(t: &TestContext) -> Vec<String> {
    let dir = t.path().join("backups/safe");
    std::fs::read_dir(&dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// After a backup that could not be written: exit 1 before any change, no file left behind,
/// and the user rows untouched.
fn assert_stopped_before_any_change(t: &TestContext, run: &Run, rows_before: &[String]) {
    run.code(1);
    assert!(!run.all().contains("panicked"), "{}", run.all());
    let doc = run.json();
    assert_eq!(doc["error"]["class"], "pre-deployment", "{doc}");
    assert_eq!(doc["result"]["migrations_applied"], 0, "{doc}");
    assert!(
        doc["error"]["hints"]
            .to_string()
            .contains("nothing was changed"),
        "{doc}"
    );
    assert_eq!(t.prisma_rows(), rows_before);
    assert!(!has_table(t, "Slow") && !has_table(t, "After"));
    assert_eq!(backup_files(t), Vec::<String>::new(), "left behind");
    assert_eq!(
        t.sql(&format!("SELECT COUNT(*) FROM {}", t.engine.q("User"))),
        ["5002"]
    );
}

/// A 64 KB tmpfs mounted on `dir`, unmounted on drop.
struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    /// Mounts the tmpfs, or says why it could not be mounted.
    fn mount(dir: &Path) -> Result<Self, String> {
        std::fs::create_dir_all(dir).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs"])
            .arg(dir)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run `mount`: {e}"))?;
        if out.status.success() {
            Ok(Self(dir.to_owned()))
        } else {
            Err(format!(
                "`mount -t tmpfs` failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }

    /// The tmpfs for `test`, or `None` (with the reason on stderr) where this machine does not
    /// let the tests mount one. As root under `DBDEPLOY_REQUIRE_SERVICES=1` the test fails
    /// instead: root can mount a tmpfs, so a refusal there is a real fault, not a skip.
    fn mount_or_skip(dir: &Path, test: &str) -> Option<Self> {
        match Self::mount(dir) {
            Ok(disk) => Some(disk),
            Err(reason) => {
                let required = std::env::var("DBDEPLOY_REQUIRE_SERVICES").is_ok_and(|v| v == "1");
                assert!(
                    !(required && running_as_root()),
                    "{test}: {reason} (running as root with DBDEPLOY_REQUIRE_SERVICES=1)"
                );
                eprintln!("skipping {test}: {reason}; the file_size_limit_* tests still run");
                None
            }
        }
    }
}

/// Whether the tests run as root: `/proc/self` belongs to the process's effective user.
fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

engine_test!(disk_full_while_writing_the_backup, |t: &TestContext| {
    deployed_with_data(t);
    let rows = t.prisma_rows();
    let Some(disk) = SmallDisk::mount_or_skip(
        &t.path().join("backups"),
        &format!("disk_full_while_writing_the_backup on {:?}", t.engine),
    ) else {
        return;
    };
    // The pre-flight check sees that the database cannot fit.
    let run = t.run(&["migrate", "safe", "--json"]);
    assert_stopped_before_any_change(t, &run, &rows);
    let code = run.json()["error"]["code"].clone();
    if t.engine == Engine::MariaDb {
        // InnoDB's table sizes in information_schema lag behind fresh inserts, so the estimate
        // may fit and the dump's write is what fails; either way the stop is clean.
        assert!(
            code == "insufficient-disk-space" || code == "backup-failed",
            "{code}"
        );
    } else {
        assert_eq!(code, "insufficient-disk-space");
    }

    // Without it (or when the disk fills up during the dump) the write itself fails.
    let run = t.run(&["migrate", "safe", "--json", "--skip-health-check"]);
    assert_stopped_before_any_change(t, &run, &rows);
    let doc = run.json();
    assert_eq!(doc["error"]["code"], "backup-failed", "{doc}");
    // The system's error is the cause under the message.
    let message = format!("{} {}", doc["error"]["message"], doc["error"]["causes"]);
    assert!(
        message.contains("No space left on device") || message.contains("full"),
        "{message}"
    );

    // With room again, the same deploy goes through.
    drop(disk);
    let run = t.run(&["migrate", "safe", "--json"]);
    run.code(0);
    assert_eq!(run.json()["result"]["backup_status"], "created");
    assert_eq!(t.prisma_rows().len(), 3);
});

engine_test!(
    file_size_limit_while_writing_the_backup,
    |t: &TestContext| {
        deployed_with_data(t);
        let rows = t.prisma_rows();
        // `ulimit -f` (in KiB with bash): writing past it raises SIGXFSZ, which would kill
        // dbdeploy mid-write and leave a partial backup behind.
        let script = "ulimit -f 128 && exec \"$0\" -C \"$1\" migrate safe --json";
        let out = Command::new("bash")
            .arg("-c")
            .arg(script)
            .arg(env!("CARGO_BIN_EXE_dbdeploy"))
            .arg(t.path())
            .env("DATABASE_URL", &t.url)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let run = Run::from(out);
        assert_ne!(run.code, -1, "killed by a signal:\n{}", run.all());
        assert_stopped_before_any_change(t, &run, &rows);
        let doc = run.json();
        assert_eq!(doc["error"]["code"], "backup-failed", "{doc}");
        let lines = audit_lines(t.path());
        assert_eq!(lines.last().unwrap()["status"], "error");
    }
);

/// The disk fills up after the dump, while its manifest is written: no half-written manifest,
/// no orphaned dump.
#[test]
fn disk_full_while_writing_the_manifest() {
    // pg_dump writes the same files for the same data, so the room its files take is exact.
    let Some(t) = TestContext::new(Engine::Postgres, "disk_full_manifest") else {
        return;
    };
    three_migrations(&t, 0);
    t.write_config(
        "[environments.safe]\nurl_env = \"DATABASE_URL\"\nbackup_before_migrate = true\n\n\
         [backup]\ndir = \"backups\"\n",
    );
    t.run(&["migrate", "safe", "--to", INIT, "--skip-backup"])
        .code(0);
    seed_users(&t);
    // Measure the dump this database makes, then leave exactly room for it and no more.
    t.run(&["backup", "safe"]).code(0);
    let page = 4096;
    let dump_dir = std::fs::read_dir(t.path().join("backups/safe"))
        .unwrap()
        .filter_map(Result::ok)
        .find(|e| e.file_name().to_string_lossy().ends_with(".pgdir"))
        .expect("a directory-format dump")
        .path();
    let room: u64 = std::fs::read_dir(&dump_dir)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len().div_ceil(page) * page)
        .sum();
    std::fs::remove_dir_all(t.path().join("backups")).unwrap();
    let rows = t.prisma_rows();
    let Some(_disk) = SmallDisk::mount_or_skip(
        &t.path().join("backups"),
        "disk_full_while_writing_the_manifest",
    ) else {
        return;
    };
    std::fs::write(
        t.path().join("backups/filler"),
        vec![0u8; usize::try_from(64 * 1024 - room).unwrap()],
    )
    .unwrap();
    let run = t.run(&["migrate", "safe", "--json", "--skip-health-check"]);
    run.code(1);
    let doc = run.json();
    assert_eq!(doc["error"]["code"], "backup-failed", "{doc}");
    assert!(
        doc["error"]["message"]
            .as_str()
            .unwrap()
            .contains("manifest"),
        "{doc}"
    );
    assert_eq!(backup_files(&t), Vec::<String>::new(), "left behind");
    assert_eq!(t.prisma_rows(), rows);
    assert_users_kept(&t);
}
