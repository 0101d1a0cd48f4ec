//! Fleets (issue 15): targets read from a catalog database with `targets_query`.
#![allow(clippy::disallowed_methods)]

use crate::common::sqlite_basic;
use crate::fleet::{sqlite, sqlite_rows, target};

#[test]
fn targets_from_a_sqlite_catalog_query() {
    let t = sqlite_basic("fleet_query");
    std::fs::create_dir_all(t.path().join("tenants")).expect("mkdir");
    let catalog = t.path().join("catalog.db");
    let file = |id: &str| {
        format!(
            "sqlite://{}",
            t.path().join(format!("tenants/{id}.db")).display()
        )
    };
    sqlite(
        &catalog,
        &format!(
            "CREATE TABLE tenants (id TEXT, url TEXT, labels TEXT, active INTEGER);\n\
             INSERT INTO tenants VALUES ('acme', '{}', '{{\"tier\": \"enterprise\"}}', 1),\n\
             ('beta', '{}', NULL, 1), ('gone', '{}', NULL, 0);",
            file("acme"),
            file("beta"),
            file("gone")
        ),
    );
    t.write_config(
        "[environments.tenants.fleet]\n\
         targets_query = \"SELECT id, url, labels FROM tenants WHERE active = 1 ORDER BY id\"\n\
         catalog_url_env = \"CATALOG_URL\"\n",
    );
    let cmd = |args: &[&str]| {
        let mut c = t.cmd(args);
        c.env("CATALOG_URL", format!("sqlite://{}", catalog.display()));
        crate::common::Run::from(c.output().expect("run dbdeploy"))
    };
    let run = cmd(&["migrate", "tenants", "--yes", "--json"]);
    run.code(0);
    let doc = run.json();
    assert_eq!(doc["result"]["counts"]["total"], 2);
    assert_eq!(target(&doc, "acme")["labels"]["tier"], "enterprise");
    assert_eq!(target(&doc, "beta")["migrations_applied"], 3);
    for id in ["acme", "beta"] {
        assert_eq!(
            sqlite_rows(&t.path().join(format!("tenants/{id}.db"))),
            Some(3)
        );
    }
    assert!(!t.path().join("tenants/gone.db").exists());
    // The catalog was only read.
    assert_eq!(sqlite(&catalog, "SELECT count(*) FROM tenants"), "3");

    // A bad row is named by number and column, and its URL is never shown.
    sqlite(
        &catalog,
        "UPDATE tenants SET labels = 'tier=free', url = 'postgres://u:hunter22@db/x' WHERE id = 'beta'",
    );
    let bad = cmd(&["status", "tenants"]);
    bad.code(2);
    assert!(
        bad.stderr.contains(
            "targets_query`: row 2 (id `beta`): column `labels` is not a JSON object of strings"
        ),
        "{}",
        bad.all()
    );
    assert!(!bad.all().contains("hunter22"), "{}", bad.all());
    // A query without the columns a target needs says which.
    let config = std::fs::read_to_string(t.path().join("dbdeploy.toml")).expect("config");
    std::fs::write(
        t.path().join("dbdeploy.toml"),
        config.replace("SELECT id, url, labels", "SELECT id AS name, url"),
    )
    .expect("config");
    let cols = cmd(&["status", "tenants"]);
    cols.code(2);
    assert!(
        cols.stderr
            .contains("needs the columns `id` and `url` or `url_env`"),
        "{}",
        cols.all()
    );
    // Without the variable, nothing is read.
    let unset = t.run(&["status", "tenants"]);
    unset.code(2);
    assert!(unset.stderr.contains("CATALOG_URL"), "{}", unset.all());
}
