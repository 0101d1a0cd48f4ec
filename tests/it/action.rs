//! The GitHub Action's script (`scripts/action.sh`, run by `action.yml`) as a runner runs it:
//! GITHUB_OUTPUT, GITHUB_STEP_SUMMARY, GITHUB_PATH and RUNNER_* point at temporary files, and
//! DBDEPLOY_BIN at the binary under test, so no release is downloaded. What a workflow sees is
//! asserted: the outputs, the step's exit code, the annotations and the step summary.
#![allow(clippy::disallowed_methods)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::common::{Engine, Run, TestContext, sqlite_basic};

/// One step of a job: the runner's files in a temporary folder, and the script.
struct Runner {
    dir: tempfile::TempDir,
}

/// A finished step: the script's run and what it wrote to GitHub's files.
struct Step {
    run: Run,
    outputs: BTreeMap<String, String>,
    /// GITHUB_OUTPUT as written, to look for anything that should not be there.
    output_file: String,
    summary: String,
    path: String,
}

impl Runner {
    fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("dbdeploy-runner-")
            .tempdir()
            .expect("temp dir");
        std::fs::create_dir(dir.path().join("temp")).expect("mkdir temp");
        std::fs::create_dir(dir.path().join("tool-cache")).expect("mkdir tool cache");
        Self { dir }
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The script with a Linux x64 runner's variables and nothing from the real environment's
    /// GitHub variables (the suite itself may run inside GitHub Actions).
    fn script(&self, subcommand: &str) -> Command {
        let mut cmd = Command::new("bash");
        cmd.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/action.sh"))
            .arg(subcommand)
            .stdin(Stdio::null())
            .env("GITHUB_ACTIONS", "true")
            .env("GITHUB_OUTPUT", self.file("output"))
            .env("GITHUB_STEP_SUMMARY", self.file("summary"))
            .env("GITHUB_PATH", self.file("path"))
            .env("GITHUB_REPOSITORY", "acme/app")
            .env("GITHUB_SERVER_URL", "https://github.com")
            .env("RUNNER_OS", "Linux")
            .env("RUNNER_ARCH", "X64")
            .env("RUNNER_TEMP", self.file("temp"))
            .env("RUNNER_TOOL_CACHE", self.file("tool-cache"))
            .env("NO_COLOR", "1")
            .env_remove("DBDEPLOY_LOG");
        for var in [
            "DBDEPLOY_BIN",
            "DBDEPLOY_DIR",
            "DBDEPLOY_URL",
            "DBDEPLOY_RELEASES_URL",
            "DBDEPLOY_REPOSITORY",
            "DBDEPLOY_ACTION_REF",
            "INPUT_ENVIRONMENT",
            "INPUT_COMMAND",
            "INPUT_ARGS",
            "INPUT_VERSION",
            "INPUT_WORKING_DIRECTORY",
        ] {
            cmd.env_remove(var);
        }
        cmd
    }

    /// Runs `cmd` as one step: GitHub's files start empty, as they do for every step.
    fn step(&self, cmd: &mut Command) -> Step {
        for name in ["output", "summary", "path"] {
            std::fs::write(self.file(name), "").expect("reset runner file");
        }
        let run = Run::from(cmd.output().expect("run scripts/action.sh"));
        let read = |name: &str| std::fs::read_to_string(self.file(name)).expect("runner file");
        let output_file = read("output");
        let outputs = output_file
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        Step {
            run,
            outputs,
            output_file,
            summary: read("summary"),
            path: read("path"),
        }
    }

    /// `scripts/action.sh run` on the project of `t`, with the binary under test and `url` as
    /// the environment's DATABASE_URL.
    fn run_cmd(&self, t: &TestContext, url: &str, environment: &str, command: &str) -> Command {
        let mut cmd = self.script("run");
        cmd.env("DBDEPLOY_BIN", env!("CARGO_BIN_EXE_dbdeploy"))
            .env("DATABASE_URL", url)
            .env("INPUT_ENVIRONMENT", environment)
            .env("INPUT_COMMAND", command)
            .env("INPUT_WORKING_DIRECTORY", t.path());
        cmd
    }

    /// Runs `command` with `args` on `environment` of the project of `t` as one step.
    fn dbdeploy(&self, t: &TestContext, environment: &str, command: &str, args: &str) -> Step {
        self.step(
            self.run_cmd(t, &t.url, environment, command)
                .env("INPUT_ARGS", args),
        )
    }
}

impl Step {
    #[track_caller]
    fn output(&self, name: &str) -> &str {
        self.outputs.get(name).map_or_else(
            || panic!("no output {name} in\n{}", self.output_file),
            String::as_str,
        )
    }

    #[track_caller]
    fn code(&self, expected: i32) -> &Self {
        self.run.code(expected);
        self
    }
}

/// A `dbdeploy.toml` environment that backs up before migrating, so `backup-id` is set.
const CI_ENVIRONMENT: &str =
    "[environments.ci]\nurl_env = \"DATABASE_URL\"\nbackup_before_migrate = true\n";

/// The number of migrations in the project's folder.
fn migration_count(t: &TestContext) -> usize {
    std::fs::read_dir(t.migrations())
        .expect("migrations folder")
        .filter(|e| e.as_ref().is_ok_and(|e| e.path().is_dir()))
        .count()
}

fn assert_has_jq() {
    let found = Command::new("jq").arg("--version").output().is_ok();
    assert!(
        found,
        "the Action's script reads dbdeploy's JSON with jq: install it (apt-get install jq)"
    );
}

#[test]
fn action_script_maps_runners_to_release_targets() {
    let r = Runner::new();
    for (os, arch, target) in [
        ("Linux", "X64", "x86_64-unknown-linux-musl"),
        ("Linux", "ARM64", "aarch64-unknown-linux-musl"),
        ("macOS", "X64", "x86_64-apple-darwin"),
        ("macOS", "ARM64", "aarch64-apple-darwin"),
    ] {
        let step = r.step(
            r.script("target")
                .env("RUNNER_OS", os)
                .env("RUNNER_ARCH", arch),
        );
        step.code(0);
        assert_eq!(step.run.stdout.trim(), target, "{os}/{arch}");
    }
    for (os, arch) in [("Windows", "X64"), ("Linux", "ARM"), ("Linux", "X86")] {
        let step = r.step(
            r.script("target")
                .env("RUNNER_OS", os)
                .env("RUNNER_ARCH", arch),
        );
        step.code(2);
        assert!(
            step.run.stderr.starts_with("::error ")
                && step.run.stderr.contains(&format!("{os}/{arch}"))
                && step.run.stderr.contains("DBDEPLOY_BIN"),
            "{}",
            step.run.stderr
        );
    }
}

#[test]
fn action_script_resolves_the_release_archive_without_downloading() {
    let r = Runner::new();
    // `version: 0.3.1` and `version: v0.3.1` name the same release.
    for version in ["0.3.1", "v0.3.1"] {
        let step = r.step(
            r.script("resolve")
                .env("INPUT_VERSION", version)
                .env("DBDEPLOY_REPOSITORY", "dbdeploy-org/dbdeploy")
                .env("RUNNER_OS", "macOS")
                .env("RUNNER_ARCH", "ARM64"),
        );
        step.code(0);
        assert_eq!(step.output("version"), "v0.3.1");
        assert_eq!(step.output("target"), "aarch64-apple-darwin");
        assert_eq!(
            step.output("archive"),
            "dbdeploy-v0.3.1-aarch64-apple-darwin.tar.gz"
        );
        assert_eq!(
            step.output("url"),
            "https://github.com/dbdeploy-org/dbdeploy/releases/download/v0.3.1/dbdeploy-v0.3.1-aarch64-apple-darwin.tar.gz"
        );
        // The folder actions/cache keeps, one per version and target.
        assert_eq!(
            Path::new(step.output("dir")),
            r.file("tool-cache/dbdeploy/v0.3.1/aarch64-apple-darwin")
        );
    }

    // No version input: the tag the action is used at (`uses: ...@v0.2.0`); from its own
    // repository (`uses: ./`), github.action_repository is empty and GITHUB_REPOSITORY counts.
    let step = r.step(r.script("resolve").env("DBDEPLOY_ACTION_REF", "v0.2.0"));
    step.code(0);
    assert_eq!(step.output("version"), "v0.2.0");
    assert_eq!(
        step.output("url"),
        "https://github.com/acme/app/releases/download/v0.2.0/dbdeploy-v0.2.0-x86_64-unknown-linux-musl.tar.gz"
    );

    // Something that is not a version is refused before anything is downloaded.
    for bad in ["banana", "1.2", "v1.2.3;rm -rf /"] {
        let step = r.step(r.script("resolve").env("INPUT_VERSION", bad));
        step.code(2);
        assert!(
            step.run.stderr.contains("is not a release version"),
            "{}",
            step.run.stderr
        );
        assert!(!step.output_file.contains("url="), "{}", step.output_file);
    }
}

/// A release as the release workflow publishes it, in a folder served as file://.
fn fake_release(root: &Path, tag: &str, target: &str) -> PathBuf {
    let name = format!("dbdeploy-{tag}-{target}");
    let download = root.join("download").join(tag);
    let staging = root.join("staging").join(&name);
    std::fs::create_dir_all(&staging).expect("mkdir");
    std::fs::create_dir_all(&download).expect("mkdir");
    std::fs::copy(env!("CARGO_BIN_EXE_dbdeploy"), staging.join("dbdeploy")).expect("copy binary");
    let archive = download.join(format!("{name}.tar.gz"));
    let tar = Command::new("tar")
        .arg("-czf")
        .arg(&archive)
        .arg("-C")
        .arg(root.join("staging"))
        .arg(&name)
        .status()
        .expect("run tar");
    assert!(tar.success());
    let sha = crate::common::sha256_file(&archive);
    std::fs::write(
        download.join(format!("{name}.tar.gz.sha256")),
        format!("{sha}  {name}.tar.gz\n"),
    )
    .expect("write sha256");
    archive
}

#[test]
fn action_script_installs_a_release_after_checking_its_sha256() {
    let r = Runner::new();
    let releases = r.file("releases");
    let archive = fake_release(&releases, "v9.8.7", "x86_64-unknown-linux-musl");
    let base = format!("file://{}", releases.display());

    let resolved = r.step(
        r.script("resolve")
            .env("INPUT_VERSION", "9.8.7")
            .env("DBDEPLOY_RELEASES_URL", &base),
    );
    resolved.code(0);
    let dir = PathBuf::from(resolved.output("dir"));
    let install = |r: &Runner| {
        r.step(
            r.script("install")
                .env("DBDEPLOY_DIR", &dir)
                .env("DBDEPLOY_URL", resolved.output("url")),
        )
    };

    let step = install(&r);
    step.code(0);
    assert!(
        step.run.stdout.contains("downloading"),
        "{}",
        step.run.stdout
    );
    assert!(
        step.run
            .stdout
            .contains(concat!("dbdeploy ", env!("CARGO_PKG_VERSION"))),
        "{}",
        step.run.stdout
    );
    assert!(dir.join("dbdeploy").is_file());
    assert_eq!(step.path.trim(), dir.display().to_string());

    // A cache hit (actions/cache restored the folder) downloads nothing.
    let step = install(&r);
    step.code(0);
    assert!(step.run.stdout.contains("cached"), "{}", step.run.stdout);
    assert!(!step.run.stdout.contains("downloading"));

    // An archive that does not match its .sha256 is refused and nothing is installed.
    std::fs::remove_dir_all(&dir).expect("empty the cache");
    std::fs::write(&archive, b"not the archive that was hashed").expect("tamper");
    let step = install(&r);
    step.code(2);
    assert!(
        step.run.stderr.contains("::error ") && step.run.stderr.contains("sha256"),
        "{}",
        step.run.stderr
    );
    assert!(!dir.join("dbdeploy").exists());
    assert!(step.path.is_empty());
}

#[test]
fn action_script_runs_dbdeploy_and_sets_the_outputs() {
    assert_has_jq();
    let t = sqlite_basic("action_outputs");
    t.write_config(CI_ENVIRONMENT);
    let n = migration_count(&t).to_string();
    let r = Runner::new();

    // status with pending migrations exits 4: an answer, not a failed step.
    let step = r.dbdeploy(&t, "ci", "status", "");
    step.code(0);
    assert_eq!(step.output("status"), "success");
    assert_eq!(step.output("exit-code"), "4");
    assert_eq!(step.output("applied"), "0");
    assert_eq!(step.output("pending"), n);

    // A dry run changes nothing and says what would be applied.
    let step = r.dbdeploy(&t, "ci", "migrate --dry-run", "");
    step.code(0);
    assert_eq!(step.output("applied"), "0");
    assert_eq!(step.output("pending"), n);
    assert_eq!(step.output("backup-id"), "");
    assert!(!t.path().join("test.db").exists());

    // The deploy: applied, nothing pending, the backup taken before it.
    let step = r.dbdeploy(&t, "ci", "migrate", "");
    step.code(0);
    assert_eq!(step.output("status"), "success");
    assert_eq!(step.output("exit-code"), "0");
    assert_eq!(step.output("applied"), n);
    assert_eq!(step.output("pending"), "0");
    let backup = step.output("backup-id");
    assert!(backup.starts_with("backup-"), "{}", step.output_file);
    assert!(
        t.path()
            .join(format!(".dbdeploy/backups/ci/{backup}.json"))
            .is_file()
    );
    // The whole document is there for later steps.
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(step.output("json")).expect("json output"))
            .expect("one JSON document");
    assert_eq!(doc["operation"], "deploy-migrations");
    assert_eq!(doc["result"]["backup_id"], backup);
    // The step summary is dbdeploy's own (GITHUB_ACTIONS=true): the script adds none.
    assert!(
        step.summary
            .contains("### ✅ dbdeploy deploy-migrations · `ci`")
            && step.summary.contains(&format!("**Backup:** `{backup}`"))
            && !step.summary.contains("### dbdeploy `migrate`"),
        "{}",
        step.summary
    );
    assert!(!step.output_file.contains(&t.url), "{}", step.output_file);

    // status afterwards: everything applied.
    let step = r.dbdeploy(&t, "ci", "status", "");
    step.code(0);
    assert_eq!(step.output("exit-code"), "0");
    assert_eq!(step.output("applied"), n);
    assert_eq!(step.output("pending"), "0");
}

#[test]
fn action_script_fails_the_step_when_the_deploy_fails() {
    assert_has_jq();
    let t = TestContext::new(Engine::Sqlite, "action_failure").expect("sqlite");
    t.fixture("fails-halfway");
    t.write_config(CI_ENVIRONMENT);
    let r = Runner::new();

    let step = r.dbdeploy(&t, "ci", "migrate", "");
    step.code(1);
    assert_eq!(step.output("status"), "error");
    assert_eq!(step.output("exit-code"), "1");
    // A failed run stops at the first failure: what is still pending is not known.
    assert_eq!(step.output("pending"), "");
    let backup = step.output("backup-id");
    assert!(backup.starts_with("backup-"), "{}", step.output_file);
    // One annotation with dbdeploy's message, on one line.
    let annotation = step
        .run
        .stderr
        .lines()
        .find(|l| l.starts_with("::error title=dbdeploy migrate ci failed (exit 1)::"))
        .unwrap_or_else(|| panic!("no annotation in\n{}", step.run.stderr));
    assert!(annotation.contains("failed"), "{annotation}");
    assert!(
        step.summary
            .contains(&format!("`dbdeploy rollback ci --to {backup}`")),
        "{}",
        step.summary
    );

    // A protected environment without --yes: exit 3 fails the step and changes nothing.
    let t = sqlite_basic("action_protected");
    let step = r.dbdeploy(&t, "production", "migrate", "");
    step.code(3);
    assert_eq!(step.output("exit-code"), "3");
    assert_eq!(step.output("status"), "cancelled");
    assert!(!crate::common::has_table(&t, "_prisma_migrations"));
    // args carries --yes, the approval a CI job gives (after its own environment's review).
    let step = r.dbdeploy(&t, "production", "migrate", "--yes");
    step.code(0);
    assert_eq!(step.output("applied"), migration_count(&t).to_string());
}

#[test]
fn action_script_refuses_bad_inputs() {
    assert_has_jq();
    let t = sqlite_basic("action_inputs");
    let r = Runner::new();

    for (environment, command, folder, says) in [
        ("", "migrate", None, "environment input is required"),
        ("dev", "drop-database", None, "is not one of"),
        (
            "dev",
            "migrate",
            Some("/nonexistent/folder"),
            "is not a folder",
        ),
    ] {
        let mut cmd = r.run_cmd(&t, &t.url, environment, command);
        if let Some(folder) = folder {
            cmd.env("INPUT_WORKING_DIRECTORY", folder);
        }
        let step = r.step(&mut cmd);
        step.code(2);
        assert!(step.run.stderr.contains(says), "{}", step.run.stderr);
        assert!(step.output_file.is_empty(), "{}", step.output_file);
    }

    // dbdeploy's own usage errors (an unknown environment) come through with its exit code.
    let step = r.dbdeploy(&t, "nowhere", "migrate", "");
    step.code(2);
    assert_eq!(step.output("status"), "error");
    assert_eq!(step.output("exit-code"), "2");
    assert!(step.run.stderr.contains("::error "), "{}", step.run.stderr);
}

/// A password in the database URL appears nowhere a workflow can show: outputs, summary,
/// annotations, the log, the JSON file.
#[test]
fn action_script_keeps_the_password_out_of_everything_it_writes() {
    assert_has_jq();
    crate::common::run_on(Engine::Postgres, "action_secret", |t| {
        t.fixture("fails-halfway");
        t.write_config(CI_ENVIRONMENT);
        let secret = "Sup3rS3cret-action-pw";
        let r = Runner::new();
        // The test server trusts local connections, so the password is carried but unused.
        let step = r.step(&mut r.run_cmd(t, &t.url_with_password(secret), "ci", "migrate"));
        step.code(1);
        let json = std::fs::read_to_string(step.output("json")).expect("json output");
        for (what, text) in [
            ("GITHUB_OUTPUT", &step.output_file),
            ("GITHUB_STEP_SUMMARY", &step.summary),
            ("stdout", &step.run.stdout),
            ("stderr", &step.run.stderr),
            ("the JSON document", &json),
        ] {
            assert!(!text.contains(secret), "the password is in {what}:\n{text}");
        }
    });
}
