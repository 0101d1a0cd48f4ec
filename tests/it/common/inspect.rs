//! What the scenarios read back after a run, and the small project set-ups many of them share:
//! one copy of each, so every module checks the audit log, checksums and tables the same way.

use std::path::Path;

use serde_json::Value;

use super::{Engine, TestContext, sha256_file};

/// A SQLite project with the `basic` Prisma fixture: the usual ground for database-free checks.
pub fn sqlite_basic(test: &str) -> TestContext {
    let t = TestContext::new(Engine::Sqlite, test).expect("sqlite needs no server");
    t.fixture("basic");
    t
}

/// Writes a Prisma migrations folder: one folder per migration with its `migration.sql`.
pub fn write_migrations(t: &TestContext, migrations: &[(&str, String)]) {
    let _ = std::fs::remove_dir_all(t.migrations());
    for (name, sql) in migrations {
        let dir = t.migrations().join(name);
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(dir.join("migration.sql"), sql).expect("write migration");
    }
}

/// The checksum dbdeploy (and Prisma) record for a migration of the project.
pub fn checksum(t: &TestContext, name: &str) -> String {
    sha256_file(&t.migrations().join(name).join("migration.sql"))
}

/// Whether the test database has a table of that name.
pub fn has_table(t: &TestContext, table: &str) -> bool {
    t.tables().iter().any(|x| x == table)
}

/// The lines of the project's audit log, parsed.
pub fn audit_lines(dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join(".dbdeploy/audit.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("audit line is not JSON ({e}): {l}"))
        })
        .collect()
}

/// The `name` of every entry of `result.migrations`.
pub fn migration_names(doc: &Value) -> Vec<String> {
    doc["result"]["migrations"]
        .as_array()
        .unwrap_or_else(|| panic!("no result.migrations in {doc}"))
        .iter()
        .map(|m| m["name"].as_str().expect("migration name").to_owned())
        .collect()
}

/// The check called `name` in `result.checks` of a `health --json` document.
#[track_caller]
pub fn health_check<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc["result"]["checks"]
        .as_array()
        .unwrap_or_else(|| panic!("no result.checks in {doc}"))
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no {name} check in {doc}"))
}
