//! Secrets that used to get past the scrubber (issue 11, item 7): the history row's migration
//! list, JSON with a password that the serialiser escapes, debug logs, and other environments'
//! URLs in the environment of child commands.

use crate::common::{Engine, TestContext};

/// A password with the characters a JSON serialiser escapes.
const PASSWORD: &str = "s3cr\"et\\pw";

/// `url` with `PASSWORD` (percent-encoded) for its user. PostgreSQL's trust authentication on
/// the test server ignores it, so the connection still works.
fn with_password(url: &str) -> String {
    let encoded = PASSWORD.replace('"', "%22").replace('\\', "%5C");
    url.replacen("://postgres@", &format!("://postgres:{encoded}@"), 1)
}

/// An external tool whose status command prints the decoded URL as a pending migration until
/// `applied` exists, and whose apply command creates it.
fn external_project(t: &TestContext) {
    let status = r#"[ -e applied ] || python3 -c 'import os, urllib.parse as u; print(u.unquote(os.environ["DATABASE_URL"]))'"#;
    std::fs::write(
        t.path().join("dbdeploy.toml"),
        format!(
            "[project]\nmigration_tool = \"command\"\nstatus_command = '''{status}'''\napply_command = \"touch applied\"\n\n\
             [environments.staging]\nurl_env = \"STAGING_URL\"\nhealth_command = \"env > child-env.txt\"\n\n\
             [environments.production]\nurl_env = \"PROD_URL\"\nprotected = true\n"
        ),
    )
    .unwrap();
}

fn postgres() -> Option<TestContext> {
    TestContext::new(Engine::Postgres, "secrets")
}

#[test]
fn no_secret_in_history_json_audit_logs_or_child_environments() {
    let Some(t) = postgres() else { return };
    external_project(&t);
    let url = with_password(&t.url);
    let prod = "postgres://prod:prod-only-secret@db.example/prod";
    let run = |args: &[&str]| {
        let out = t
            .cmd(args)
            .env("STAGING_URL", &url)
            .env("PROD_URL", prod)
            .env("DBDEPLOY_LOG", "debug")
            .output()
            .expect("run dbdeploy");
        crate::common::Run::from(out)
    };

    // The pending "migration" is the URL itself, decoded: it reaches the JSON document, the
    // audit line, the history row and the debug log.
    let status = run(&["status", "staging", "--json"]);
    let deploy = run(&["migrate", "staging", "--json", "-vvv"]);
    deploy.code(0);
    let history = t.sql("SELECT migrations FROM _dbdeploy_history");
    let audit = std::fs::read_to_string(t.path().join(".dbdeploy/audit.jsonl")).unwrap();
    let child_env = std::fs::read_to_string(t.path().join("child-env.txt")).unwrap();
    for (what, text) in [
        ("status stdout", status.stdout.as_str()),
        ("migrate stdout", deploy.stdout.as_str()),
        ("migrate stderr (debug log)", deploy.stderr.as_str()),
        ("audit log", audit.as_str()),
        ("history row", &history.join("\n")),
    ] {
        for secret in [PASSWORD, "s3cr\\\"et\\\\pw", "s3cr%22et%5Cpw"] {
            assert!(!text.contains(secret), "{what} shows the password:\n{text}");
        }
    }
    // The scrubbed URL is still there, masked: the test saw the value it was looking for.
    assert!(
        status.stdout.contains("postgres://postgres:***@"),
        "{}",
        status.stdout
    );
    assert!(history.join("").contains("***"), "{history:?}");
    // The health command got its own URL, not production's.
    assert!(child_env.contains("DATABASE_URL="), "{child_env}");
    assert!(!child_env.contains("PROD_URL"), "{child_env}");
    assert!(!child_env.contains("prod-only-secret"), "{child_env}");
}
