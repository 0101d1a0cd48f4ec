//! `dbdeploy_snapshot!`: runs the binary and snapshots what a user sees — exit code, stdout and
//! stderr — with insta, after filtering out what changes from run to run or machine to machine
//! (durations, timestamps, run and backup ids, hashes, temporary paths, ports, user and host,
//! server versions, free space). In the spirit of uv's `uv_snapshot!`.
//!
//! A command with `--json` is snapshotted as one JSON document (`<test>@json.snap`): `exit_code`,
//! `stdout` parsed (so a change of the document shows key by key, measured times redacted by
//! key) and `stderr` as a list of lines.

use std::ffi::OsStr;
use std::process::Command;

use serde_json::{Value, json};

use super::{Engine, Run, TestContext};

/// Runs `cmd` for `context` and snapshots its output under the calling test's name; the
/// [`Run`](crate::common::Run) is returned for further assertions.
///
/// `dbdeploy_snapshot!(t, ["migrate", "staging"])` runs `t.cmd(&[...])`;
/// `dbdeploy_snapshot!(t, command)` runs a `Command` built by the test (another environment,
/// another folder).
#[macro_export]
macro_rules! dbdeploy_snapshot {
    ($context:expr, [$($arg:expr),* $(,)?]) => {{
        let context: &$crate::common::TestContext = &$context;
        $crate::dbdeploy_snapshot!(context, context.cmd(&[$($arg),*]))
    }};
    ($context:expr, $cmd:expr) => {{
        let context: &$crate::common::TestContext = &$context;
        let mut cmd: ::std::process::Command = $cmd;
        let (settings, run, snapshot) = $crate::common::snapshot::run_and_format(context, &mut cmd);
        settings.bind(|| match snapshot {
            $crate::common::snapshot::Snapshot::Text(text) => ::insta::assert_snapshot!(text),
            $crate::common::snapshot::Snapshot::Json(doc) => ::insta::assert_json_snapshot!(doc),
        });
        run
    }};
}

/// What is compared: the text of a human run, or the document of a `--json` run.
pub enum Snapshot {
    Text(String),
    Json(Value),
}

/// Runs `cmd` and returns the insta settings for `context`, the run, and the snapshot.
pub fn run_and_format(
    context: &TestContext,
    cmd: &mut Command,
) -> (insta::Settings, Run, Snapshot) {
    let args: Vec<String> = cmd
        .get_args()
        .map(OsStr::to_string_lossy)
        .map(String::from)
        .collect();
    let run = Run::from(cmd.output().expect("run dbdeploy"));
    let json = args.iter().any(|a| a == "--json");
    let snapshot = if json {
        Snapshot::Json(json!({
            "exit_code": run.code,
            // Not JSON at all (a usage error before the output was chosen) shows as text.
            "stdout": serde_json::from_str::<Value>(&run.stdout)
                .unwrap_or_else(|_| Value::String(run.stdout.clone())),
            "stderr": run.stderr.lines().collect::<Vec<_>>(),
        }))
    } else {
        Snapshot::Text(format!(
            "exit_code: {}\n----- stdout -----\n{}\n----- stderr -----\n{}",
            run.code, run.stdout, run.stderr
        ))
    };
    (settings(context, &args, json), run, snapshot)
}

/// Filters and redactions for `context`, with the command line (without `-C DIR`, filtered
/// too) as the snapshot's description.
fn settings(context: &TestContext, args: &[String], json: bool) -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    let filters = filters(context);
    let mut shown = Vec::new();
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        if arg == "-C" {
            rest.next();
        } else {
            shown.push(arg.as_str());
        }
    }
    let mut command = format!("dbdeploy {}", shown.join(" "));
    for (pattern, replacement) in &filters {
        let re = regex::Regex::new(pattern).expect("snapshot filter");
        command = re.replace_all(&command, replacement.as_str()).into_owned();
    }
    s.set_description(command);
    s.set_omit_expression(true);
    for (pattern, replacement) in filters {
        s.add_filter(&pattern, replacement);
    }
    for key in DURATION_KEYS {
        s.add_dynamic_redaction(&format!(".**.{key}"), |value, _| {
            if value.is_nil() {
                value
            } else {
                "[DURATION]".into()
            }
        });
    }
    s.add_redaction(".**.user", "[USER]");
    s.add_redaction(".**.host", "[HOST]");
    s.add_redaction(".**.tool_version", "[VERSION]");
    if json {
        s.set_snapshot_suffix("json");
    }
    s
}

/// JSON keys whose numbers are measured times (or ages), different on every run.
const DURATION_KEYS: [&str; 6] = [
    "duration_seconds",
    "total_duration_seconds",
    "estimated_duration_seconds",
    "total_estimated_duration_seconds",
    "duration_ms",
    "age_seconds",
];

/// `(regex, replacement)` pairs, applied in order: the exact values of this test first (its
/// folder, database, user and host), then the shapes of volatile values.
pub fn filters(context: &TestContext) -> Vec<(String, String)> {
    let mut f: Vec<(String, String)> = Vec::new();
    let dir = context.path();
    if let Ok(real) = dir.canonicalize()
        && real != dir
    {
        f.push((regex::escape(&real.to_string_lossy()), "[TEMP]".into()));
    }
    f.push((regex::escape(&dir.to_string_lossy()), "[TEMP]".into()));
    if context.engine != Engine::Sqlite
        && let Ok(url) = url::Url::parse(&context.url)
    {
        // The target as dbdeploy describes it: scheme://user@host:port/database.
        let user = url.username();
        let host = url.host_str().unwrap_or_default();
        if let Some(port) = url.port() {
            f.push((
                regex::escape(&format!("{host}:{port}")),
                "[HOST]:[PORT]".into(),
            ));
        }
        if !user.is_empty() {
            f.push((
                format!(r"//{}@\[HOST\]", regex::escape(user)),
                "//[USER]@[HOST]".into(),
            ));
        }
        f.push((
            regex::escape(url.path().trim_start_matches('/')),
            "[DB]".into(),
        ));
    }
    let user = whoami::username();
    let host = whoami::fallible::hostname().unwrap_or_else(|_| "unknown".into());
    f.push((
        regex::escape(&format!("{user}@{host}")),
        "[USER]@[HOST]".into(),
    ));
    for (pattern, replacement) in [
        // Any other test folder (a sibling context, a twin database).
        (r"/[\w./-]*/dbdeploy-it-\w+", "[TEMP]"),
        // Run ids, in full and in their short form.
        (
            r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b",
            "[RUN_ID]",
        ),
        (r"\brun [0-9a-f]{8}\b", "run [RUN_ID]"),
        // Backup ids carry the time they were taken.
        (r"\bbackup-\d{8}-\d{6}(-\d+)?\b", "[BACKUP_ID]"),
        // Timestamps: RFC 3339, and `YYYY-MM-DD HH:MM:SS[.fff]`.
        (
            r"\b\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})?",
            "[TIMESTAMP]",
        ),
        (
            r"\b\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d+)?",
            "[TIMESTAMP]",
        ),
        // sha256 checksums, schema fingerprints and short digests.
        (r"\b[0-9a-f]{40,}\b", "[HASH]"),
        (r"\bsha256:[0-9a-f]{16}\b", "sha256:[HASH]"),
        (r"\bfingerprint [0-9a-f]{12}\b", "fingerprint [HASH]"),
        // Free space, ages and durations.
        (r"\b\d+(\.\d+)? (B|KB|MB|GB|TB) free\b", "[SIZE] free"),
        // An age is right-aligned in the `backups` table: its padding goes with it.
        (r" *\b\d+[smhd] ago\b", " [AGE] ago"),
        (r"\b\d+ min \d+ s\b", "[TIME]"),
        (r"\b\d+(\.\d+)? ?(ms|s)\b", "[TIME]"),
        // A rehearsal's copy: its private folder and its database carry a random id.
        (r"dbdeploy-rehearse-\w+", "dbdeploy-rehearse-[ID]"),
        (r"_rehearse_[0-9a-f]{8}\b", "_rehearse_[ID]"),
        // Server and client versions.
        (r"\bSQLite \d+(\.\d+)+", "SQLite [VERSION]"),
        (r"\bMariaDB \d+(\.\d+)+", "MariaDB [VERSION]"),
        (
            r"\bPostgreSQL \d+(\.\d+)*(beta\d+|rc\d+)?( \([^)]*\))?",
            "PostgreSQL [VERSION]",
        ),
        (r"\b\d+\.\d+\.\d+-MariaDB[\w.+~-]*", "[VERSION]-MariaDB"),
        (
            r"\bpg_dump \(PostgreSQL\) \d+(\.\d+)*",
            "pg_dump (PostgreSQL) [VERSION]",
        ),
        // Loopback ports of servers other than the test's own.
        (r"\b(127\.0\.0\.1|localhost):\d+\b", "[HOST]:[PORT]"),
    ] {
        f.push((pattern.into(), replacement.into()));
    }
    f
}
