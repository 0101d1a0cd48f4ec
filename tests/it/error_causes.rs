//! A failed connection shows the driver's cause under the message (`Caused by:`), down to the
//! operating system's error, and never the password of the URL.

use crate::common::{Engine, Run, TestContext};

#[test]
fn a_refused_connection_ends_its_causes_with_the_os_error() {
    // A closed port needs no server: the project is the only thing to set up.
    let t = TestContext::new(Engine::Sqlite, "error_causes").expect("sqlite needs no server");
    t.fixture_named("postgresql-basic");
    t.write_config(
        "[environments.closed]\nurl_env = \"DATABASE_URL\"\nconnect_timeout_seconds = 0\n",
    );
    let secret = "Causes-S3cret-PW";
    let url = format!("postgres://alice:{secret}@127.0.0.1:1/app");
    let run = Run::from(
        t.cmd(&["status", "closed"])
            .env("DATABASE_URL", &url)
            .output()
            .expect("run dbdeploy"),
    );
    run.code(1);
    let os_error = std::io::Error::from_raw_os_error(libc::ECONNREFUSED).to_string();
    let stderr = &run.stderr;
    let top = stderr
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("no error line: {stderr}"));
    let causes: Vec<&str> = stderr
        .split_once("\n\nCaused by:\n")
        .unwrap_or_else(|| panic!("no causes: {stderr}"))
        .1
        .lines()
        .take_while(|l| l.starts_with("    "))
        .map(str::trim)
        .collect();
    assert_eq!(causes.last(), Some(&os_error.as_str()), "{stderr}");
    assert!(
        causes.iter().all(|c| top != format!("error: {c}")),
        "a cause repeats the message: {stderr}"
    );
    assert!(
        !run.all().contains(secret),
        "password leaked: {}",
        run.all()
    );
}
