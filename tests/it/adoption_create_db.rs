//! A missing database: `dev` mode creates it, as `prisma migrate dev` and `dbmate up` do; a
//! `deploy` environment only with `create_database = true`, and otherwise reports it missing.

use crate::common::Run;
use crate::{dbdeploy_snapshot, engine_test};

/// The test database's URL with another (missing) database name.
fn missing_url(t: &crate::common::TestContext, suffix: &str) -> (String, String) {
    let mut u = url::Url::parse(&t.url).unwrap();
    let name = format!("{}_{suffix}", u.path().trim_start_matches('/'));
    u.set_path(&format!("/{name}"));
    (u.to_string(), name)
}

/// Drops a database the test created through dbdeploy, with the engine's own client.
fn drop_database(t: &crate::common::TestContext, name: &str) {
    let q = t.engine.q(name);
    let sql = match t.engine {
        crate::common::Engine::Postgres => format!("DROP DATABASE IF EXISTS {q} WITH (FORCE)"),
        _ => format!("DROP DATABASE IF EXISTS {q}"),
    };
    t.sql(&sql);
}

engine_test!(dev_mode_creates_a_missing_database, |t| {
    if t.engine == crate::common::Engine::Sqlite {
        return;
    }
    t.fixture("basic");
    let (url, name) = missing_url(t, "new");
    let run = Run::from(t.cmd(&["migrate", "dev", "--url", &url]).output().unwrap());
    let created = run
        .stdout
        .contains(&format!("created database {name} (it did not exist)"));
    let status = Run::from(t.cmd(&["status", "dev", "--url", &url]).output().unwrap());
    drop_database(t, &name);
    run.code(0);
    assert!(created, "{}", run.all());
    status.code(0);
});

engine_test!(deploy_mode_creates_only_when_configured, |t| {
    if t.engine == crate::common::Engine::Sqlite {
        return;
    }
    t.fixture("basic");
    let (url, name) = missing_url(t, "cfg");
    // staging is a deploy environment: the database is reported missing, nothing is created.
    let refused = Run::from(
        t.cmd(&["migrate", "staging", "--url", &url])
            .output()
            .unwrap(),
    );
    let exists_after_refusal = Run::from(
        t.cmd(&["status", "staging", "--url", &url])
            .output()
            .unwrap(),
    );
    t.write_config("[environments.fresh]\nurl_env = \"X\"\ncreate_database = true\n");
    let created = Run::from(
        t.cmd(&["migrate", "fresh", "--url", &url])
            .output()
            .unwrap(),
    );
    drop_database(t, &name);
    refused.code(1);
    assert!(
        !refused.stdout.contains("created database"),
        "{}",
        refused.all()
    );
    assert_ne!(
        exists_after_refusal.code,
        0,
        "{}",
        exists_after_refusal.all()
    );
    created.code(0);
    assert!(
        created.stdout.contains("created database"),
        "{}",
        created.all()
    );
});

engine_test!(dry_run_and_status_never_create, |t| {
    if t.engine == crate::common::Engine::Sqlite {
        return;
    }
    t.fixture("basic");
    let (url, name) = missing_url(t, "dry");
    let dry = Run::from(
        t.cmd(&["migrate", "dev", "--dry-run", "--url", &url])
            .output()
            .unwrap(),
    );
    let status = Run::from(t.cmd(&["status", "dev", "--url", &url]).output().unwrap());
    drop_database(t, &name);
    assert_ne!(dry.code, 0, "{}", dry.all());
    assert!(!dry.stdout.contains("created database"), "{}", dry.all());
    assert_ne!(status.code, 0, "{}", status.all());
});

#[test]
fn creating_a_database_is_shown() {
    let Some(t) = crate::common::TestContext::new(crate::common::Engine::Postgres, "create_snap")
    else {
        return;
    };
    t.fixture("basic");
    let (url, name) = missing_url(&t, "snap");
    let mut cmd = t.cmd(&["migrate", "dev", "--url", &url]);
    cmd.env("DATABASE_URL", "unused");
    insta::with_settings!({filters => vec![(regex::escape(&name).leak() as &str, "[NEW_DB]")]}, {
        dbdeploy_snapshot!(t, cmd).code(0);
    });
    drop_database(&t, &name);
}
