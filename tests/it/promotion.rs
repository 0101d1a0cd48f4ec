//! `promote_from = "staging"`: production refuses, before any change, every pending migration
//! that staging's database has not applied with the same checksum; an unreadable staging is an
//! error, never a pass.

use std::process::Command;

use crate::common::{Engine, TestContext};
use crate::{dbdeploy_snapshot, engine_test};

/// `production` (this context's database) promoted from `staging` (the `staging` context's).
fn promoted(t: &TestContext) {
    std::fs::write(
        t.path().join("dbdeploy.toml"),
        "[project]\nmigration_tool = \"prisma\"\nmigrations_dir = \"prisma/migrations\"\n\n\
         [environments.staging]\nurl_env = \"STAGING_URL\"\nconnect_timeout_seconds = 1\n\n\
         [environments.production]\nurl_env = \"DATABASE_URL\"\npromote_from = \"staging\"\n",
    )
    .unwrap();
}

fn with_staging(t: &TestContext, staging_url: &str, args: &[&str]) -> Command {
    let mut cmd = t.cmd(args);
    cmd.env("STAGING_URL", staging_url);
    cmd
}

fn add_migration(t: &TestContext, name: &str, table: &str) {
    let dir = t.migrations().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let q = t.engine.q(table);
    std::fs::write(
        dir.join("migration.sql"),
        format!("CREATE TABLE {q} (id INTEGER PRIMARY KEY);\n"),
    )
    .unwrap();
}

engine_test!(promotion_gate, |t: &TestContext| {
    let staging = TestContext::new(t.engine, "promotion_staging").unwrap();
    t.fixture("basic");
    promoted(t);
    let run = |args: &[&str]| {
        crate::common::Run::from(with_staging(t, &staging.url, args).output().unwrap())
    };

    // Nothing on staging yet: every pending migration is refused, by name.
    let r = run(&["migrate", "production", "--json"]);
    r.code(1);
    let doc = r.json();
    assert_eq!(doc["error"]["code"], "not-promoted", "{doc}");
    let message = doc["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("`production`") && message.contains("`staging`"),
        "{message}"
    );
    assert!(
        message.contains("20240101000000_init (not applied)"),
        "{message}"
    );
    assert!(
        t.tables().is_empty(),
        "nothing was changed: {:?}",
        t.tables()
    );

    // Applied on staging: production deploys.
    run(&["migrate", "staging"]).code(0);
    if t.engine == Engine::Sqlite {
        dbdeploy_snapshot!(
            t,
            with_staging(t, &staging.url, &["migrate", "production", "--dry-run"])
        )
        .code(0);
    }
    run(&["migrate", "production"]).code(0);
    assert_eq!(t.prisma_rows().len(), 3);

    // A migration applied on staging and edited since: another checksum, refused.
    add_migration(t, "20240104000000_tags", "Tag2");
    add_migration(t, "20240105000000_labels", "Label2");
    run(&["migrate", "staging", "--to", "20240104000000_tags"]).code(0);
    let sql = t.migrations().join("20240104000000_tags/migration.sql");
    let edited = std::fs::read_to_string(&sql)
        .unwrap()
        .replace("PRIMARY KEY", "PRIMARY KEY, note TEXT");
    std::fs::write(&sql, edited).unwrap();
    let r = run(&["migrate", "production", "--json"]);
    r.code(1);
    let message = r.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(
        message.contains("20240104000000_tags (applied with another checksum)"),
        "{message}"
    );
    assert!(
        message.contains("20240105000000_labels (not applied)"),
        "{message}"
    );
    let r = run(&["migrate", "production", "--dry-run", "--json"]);
    r.code(1);
    assert_eq!(r.json()["error"]["code"], "not-promoted");
    if t.engine == Engine::Sqlite {
        dbdeploy_snapshot!(t, with_staging(t, &staging.url, &["migrate", "production"])).code(1);
    }
    assert_eq!(t.prisma_rows().len(), 3, "nothing was changed");

    // Staging unreachable: an error, never a pass.
    let r = crate::common::Run::from(
        with_staging(
            t,
            "postgres://nobody@127.0.0.1:1/nothing",
            &["migrate", "production", "--json"],
        )
        .output()
        .unwrap(),
    );
    r.code(1);
    let doc = r.json();
    assert_eq!(doc["error"]["code"], "promotion-unchecked", "{doc}");
    // Its URL variable missing: the same.
    let r = crate::common::Run::from(
        t.cmd(&["migrate", "production", "--json"])
            .output()
            .unwrap(),
    );
    r.code(1);
    assert_eq!(r.json()["error"]["code"], "promotion-unchecked");
    assert_eq!(t.prisma_rows().len(), 3, "nothing was changed");
});
