//! What the format tests share: a project made from a fixture (`project` for sqlx, dbmate
//! and golang-migrate with their environments; `configure` for the others), the columns of a
//! table as the engine describes them, the names in a JSON result, and output assertions.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::{Engine, Run, TestContext, copy_dir};

/// Writes `dbdeploy.toml` for `tool` with the migrations in `dir`, and copies
/// `migrations-fixtures/<tool>/<fixture>` there.
pub(crate) fn project(t: &TestContext, tool: &str, dir: &str, fixture: &str) -> PathBuf {
    let text = format!(
        "[project]\nmigration_tool = \"{tool}\"\nmigrations_dir = \"{dir}\"\n\n\
         [environments.dev]\nurl_env = \"DATABASE_URL\"\n\n\
         [environments.staging]\nurl_env = \"DATABASE_URL\"\nconnect_timeout_seconds = 1\n\n\
         [environments.locked]\nurl_env = \"DATABASE_URL\"\nlock_timeout_seconds = 1\n\n\
         [environments.production]\nurl_env = \"DATABASE_URL\"\nprotected = true\n"
    );
    std::fs::write(t.path().join("dbdeploy.toml"), text).expect("write config");
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations-fixtures")
        .join(tool)
        .join(fixture);
    assert!(src.is_dir(), "no fixture {}", src.display());
    let dst = t.path().join(dir);
    let _ = std::fs::remove_dir_all(&dst);
    copy_dir(&src, &dst);
    dst
}

/// A sqlx project with `migrations-fixtures/sqlx/<fixture>` in `migrations/`.
pub(crate) fn sqlx_project(t: &TestContext, fixture: &str) -> PathBuf {
    project(t, "sqlx", "migrations", fixture)
}

pub(crate) fn dbmate_project(t: &TestContext, fixture: &str) -> PathBuf {
    project(t, "dbmate", "db/migrations", fixture)
}

pub(crate) fn golang_project(t: &TestContext, fixture: &str) -> PathBuf {
    project(t, "golang-migrate", "migrations", fixture)
}

/// `name|type` of each column of `table`, in table order, as the engine describes it.
pub(crate) fn columns(t: &TestContext, table: &str) -> Vec<String> {
    t.sql(&match t.engine {
        Engine::Postgres => format!(
            "SELECT column_name, data_type FROM information_schema.columns \
             WHERE table_schema = 'public' AND table_name = '{table}' ORDER BY ordinal_position"
        ),
        Engine::MariaDb => format!(
            "SELECT column_name, column_type FROM information_schema.columns \
             WHERE table_schema = DATABASE() AND table_name = '{table}' ORDER BY ordinal_position"
        ),
        Engine::Sqlite => {
            format!("SELECT name, type FROM pragma_table_info('{table}') ORDER BY cid")
        }
    })
}

/// SQL for a boolean literal the engine's client accepts.
pub(crate) fn sql_bool(t: &TestContext, value: bool) -> &'static str {
    match (t.engine, value) {
        (Engine::Sqlite, true) => "1",
        (Engine::Sqlite, false) => "0",
        (_, true) => "true",
        (_, false) => "false",
    }
}

#[track_caller]
pub(crate) fn assert_contains(run: &Run, needle: &str) {
    assert!(
        run.all().contains(needle),
        "expected {needle:?} in the output\n{}",
        run.all()
    );
}

pub(crate) fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations-fixtures")
}

/// Copies `migrations-fixtures/<fixture>` to `<project>/<dir>` and configures `tool` there.
pub(crate) fn configure(t: &TestContext, tool: &str, dir: &str, fixture: &str) {
    let dst = t.path().join(dir);
    let _ = std::fs::remove_dir_all(&dst);
    copy_dir(&fixtures().join(fixture), &dst);
    std::fs::write(
        t.path().join("dbdeploy.toml"),
        format!(
            "[project]\nmigration_tool = \"{tool}\"\nmigrations_dir = \"{dir}\"\n\n\
             [environments.dev]\nurl_env = \"DATABASE_URL\"\n\n\
             [environments.production]\nurl_env = \"DATABASE_URL\"\nprotected = true\n"
        ),
    )
    .expect("write config");
}

pub(crate) fn names(doc: &Value, key: &str) -> Vec<String> {
    let list = doc["result"][key]
        .as_array()
        .unwrap_or_else(|| panic!("no result.{key} in {doc}"));
    list.iter()
        .map(|m| {
            m.as_str()
                .or_else(|| m["name"].as_str())
                .expect("a name")
                .to_owned()
        })
        .collect()
}

pub(crate) fn applied_names(run: &Run) -> Vec<String> {
    names(&run.json(), "migrations")
}

pub(crate) fn write(t: &TestContext, rel: &str, text: &str) {
    let path = t.path().join(rel);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, text).expect("write");
}

pub(crate) fn count(t: &TestContext, table: &str) -> String {
    t.sql(&format!("SELECT COUNT(*) FROM {table}")).join("")
}
