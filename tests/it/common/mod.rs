//! The test harness: a temporary project per test, a database per test on each engine, the
//! dbdeploy binary, and the engines' own command-line clients to look at the result — so
//! assertions never go through the code under test.
#![allow(clippy::disallowed_methods, clippy::print_stderr, dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

mod inspect;
pub mod json_schema;
mod pg_databases;
pub mod snapshot;
pub mod terminal;

pub use inspect::{
    audit_lines, checksum, has_table, health_check, migration_names, sqlite_basic, write_migrations,
};
pub use pg_databases::PgDatabases;

/// The engines every scenario runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
    MariaDb,
}

impl Engine {
    /// Prisma's provider name, which is also the fixture prefix.
    pub fn provider(self) -> &'static str {
        match self {
            Engine::Sqlite => "sqlite",
            Engine::Postgres => "postgresql",
            Engine::MariaDb => "mysql",
        }
    }

    fn server_var(self) -> Option<&'static str> {
        match self {
            Engine::Sqlite => None,
            Engine::Postgres => Some("DBDEPLOY_TEST_POSTGRES_URL"),
            Engine::MariaDb => Some("DBDEPLOY_TEST_MARIADB_URL"),
        }
    }

    /// Quotes an identifier the engine's way, for SQL written in tests.
    pub fn q(self, ident: &str) -> String {
        match self {
            Engine::MariaDb => format!("`{ident}`"),
            _ => format!("\"{ident}\""),
        }
    }
}

/// Runs a scenario on SQLite, PostgreSQL and MariaDB; a server whose URL is not set is skipped
/// locally and fails under `DBDEPLOY_REQUIRE_SERVICES=1` or `CI=true`.
#[macro_export]
macro_rules! engine_test {
    ($name:ident, $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            #[test]
            fn sqlite() {
                $crate::common::run_on($crate::common::Engine::Sqlite, stringify!($name), $body);
            }
            #[test]
            fn postgres() {
                $crate::common::run_on($crate::common::Engine::Postgres, stringify!($name), $body);
            }
            #[test]
            fn mariadb() {
                $crate::common::run_on($crate::common::Engine::MariaDb, stringify!($name), $body);
            }
        }
    };
}

/// Creates the context for `engine` (or skips) and runs `body`.
pub fn run_on(engine: Engine, test: &str, body: impl FnOnce(&TestContext)) {
    if let Some(t) = TestContext::new(engine, test) {
        body(&t);
    }
}

fn services_required() -> bool {
    std::env::var("DBDEPLOY_REQUIRE_SERVICES").is_ok_and(|v| v == "1")
        || std::env::var("CI").is_ok_and(|v| v == "true")
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A server connection for tests: admin URL, and the per-test database.
#[derive(Debug)]
struct Server {
    admin: url::Url,
    db_name: String,
}

/// One test's world: a project folder, a database, the binary.
pub struct TestContext {
    pub engine: Engine,
    pub dir: tempfile::TempDir,
    server: Option<Server>,
    /// The URL dbdeploy gets through `DATABASE_URL`.
    pub url: String,
}

impl TestContext {
    /// A fresh project and an empty database, or `None` when the server is not configured.
    pub fn new(engine: Engine, test: &str) -> Option<Self> {
        let dir = tempfile::Builder::new()
            .prefix("dbdeploy-it-")
            .tempdir()
            .expect("temp dir");
        let (server, url) = match engine.server_var() {
            None => (
                None,
                format!("sqlite://{}", dir.path().join("test.db").display()),
            ),
            Some(var) => {
                let Ok(admin) = std::env::var(var) else {
                    assert!(
                        !services_required(),
                        "{var} is not set but DBDEPLOY_REQUIRE_SERVICES/CI requires {engine:?}"
                    );
                    eprintln!("skipping {test} on {engine:?}: {var} is not set");
                    return None;
                };
                let admin = url::Url::parse(&admin).expect("test server URL");
                let n = COUNTER.fetch_add(1, Ordering::Relaxed);
                let db_name = format!(
                    "dbd_{}_{}_{}",
                    &test[..test.len().min(40)],
                    std::process::id(),
                    n
                );
                let server = Server {
                    admin: admin.clone(),
                    db_name: db_name.clone(),
                };
                let mut url = admin;
                url.set_path(&format!("/{db_name}"));
                (Some(server), url.to_string())
            }
        };
        let t = Self {
            engine,
            dir,
            server,
            url,
        };
        if let Some(s) = &t.server {
            t.admin_sql(&format!("CREATE DATABASE {}", engine.q(&s.db_name)));
        }
        t.write_config("");
        Some(t)
    }

    /// The project folder.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The migrations folder of the project.
    pub fn migrations(&self) -> PathBuf {
        self.path().join("prisma/migrations")
    }

    /// Copies `migrations-fixtures/prisma/<provider>-<case>` into the project.
    pub fn fixture(&self, case: &str) -> &Self {
        self.fixture_named(&format!("{}-{case}", self.engine.provider()))
    }

    /// Copies `migrations-fixtures/prisma/<name>` into the project.
    pub fn fixture_named(&self, name: &str) -> &Self {
        let src = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("migrations-fixtures/prisma")
            .join(name);
        assert!(src.is_dir(), "no fixture {}", src.display());
        let _ = std::fs::remove_dir_all(self.migrations());
        copy_dir(&src, &self.migrations());
        self
    }

    /// Writes `dbdeploy.toml` with `dev`, `staging` and a protected `production`, plus `extra`.
    pub fn write_config(&self, extra: &str) {
        let text = format!(
            "[project]\nmigration_tool = \"prisma\"\nmigrations_dir = \"prisma/migrations\"\n\n\
             [environments.dev]\nurl_env = \"DATABASE_URL\"\n\n\
             [environments.staging]\nurl_env = \"DATABASE_URL\"\nconnect_timeout_seconds = 1\n\n\
             [environments.production]\nurl_env = \"DATABASE_URL\"\nprotected = true\nlock_timeout_seconds = 30\n\n{extra}"
        );
        std::fs::write(self.path().join("dbdeploy.toml"), text).expect("write config");
    }

    /// A command for the binary, in the project, with `DATABASE_URL` set and no terminal.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_dbdeploy"));
        cmd.arg("-C")
            .arg(self.path())
            .args(args)
            .env("DATABASE_URL", &self.url)
            .env("NO_COLOR", "1")
            .env_remove("DBDEPLOY_LOG")
            .stdin(Stdio::null());
        cmd
    }

    /// Runs the binary and captures everything.
    pub fn run(&self, args: &[&str]) -> Run {
        Run::from(self.cmd(args).output().expect("run dbdeploy"))
    }

    /// Runs a query with the engine's own client; rows of `|`-separated text.
    pub fn sql(&self, sql: &str) -> Vec<String> {
        let out = match self.engine {
            Engine::Sqlite => {
                let db = self.path().join("test.db");
                Command::new("sqlite3").arg(&db).arg(sql).output()
            }
            Engine::Postgres => Command::new("psql")
                .arg(&self.url)
                .args(["-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql])
                .output(),
            Engine::MariaDb => self
                .mariadb_cmd(Some(&self.server.as_ref().unwrap().db_name))
                .arg("-e")
                .arg(sql)
                .output(),
        }
        .expect("run database client");
        assert!(
            out.status.success(),
            "query failed: {sql}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.replace('\t', "|"))
            .filter(|l| !l.is_empty())
            .collect()
    }

    /// The tables of the test database, sorted.
    pub fn tables(&self) -> Vec<String> {
        let mut t = match self.engine {
            Engine::Sqlite => {
                if !self.path().join("test.db").exists() {
                    return Vec::new();
                }
                self.sql("SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'")
            }
            Engine::Postgres => self.sql(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'",
            ),
            Engine::MariaDb => self.sql(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE()",
            ),
        };
        t.sort();
        t
    }

    /// `migration_name|checksum|finished?|rolled_back?|applied_steps_count|logs?` per row, by start.
    pub fn prisma_rows(&self) -> Vec<String> {
        self.sql(
            "SELECT migration_name, checksum, \
             CASE WHEN finished_at IS NULL THEN 'unfinished' ELSE 'finished' END, \
             CASE WHEN rolled_back_at IS NULL THEN '-' ELSE 'rolled_back' END, \
             applied_steps_count, CASE WHEN logs IS NULL THEN '-' ELSE 'logs' END \
             FROM _prisma_migrations ORDER BY started_at, migration_name",
        )
    }

    fn admin_sql(&self, sql: &str) {
        let out = match self.engine {
            Engine::Sqlite => return,
            Engine::Postgres => Command::new("psql")
                .arg(self.server.as_ref().unwrap().admin.as_str())
                .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql])
                .output(),
            Engine::MariaDb => self.mariadb_cmd(None).arg("-e").arg(sql).output(),
        }
        .expect("run admin query");
        assert!(
            out.status.success(),
            "admin query failed: {sql}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn mariadb_cmd(&self, db: Option<&str>) -> Command {
        let admin = &self.server.as_ref().unwrap().admin;
        let mut cmd = Command::new("mariadb");
        cmd.arg("-h")
            .arg(admin.host_str().unwrap_or("127.0.0.1"))
            .arg("-P")
            .arg(admin.port().unwrap_or(3306).to_string())
            .arg("-u")
            .arg(admin.username())
            .args(["-N", "-B"]);
        if let Some(pw) = admin.password() {
            cmd.arg(format!("-p{pw}"));
        }
        if let Some(db) = db {
            cmd.arg(db);
        }
        cmd
    }

    /// The URL of the test database with a different password (for redaction tests).
    pub fn url_with_password(&self, password: &str) -> String {
        let mut u = url::Url::parse(&self.url).expect("url");
        let _ = u.set_password(Some(password));
        u.to_string()
    }
}

impl Drop for TestContext {
    fn drop(&mut self) {
        if let Some(s) = &self.server {
            let sql = match self.engine {
                Engine::Postgres => format!(
                    "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                    self.engine.q(&s.db_name)
                ),
                _ => format!("DROP DATABASE IF EXISTS {}", self.engine.q(&s.db_name)),
            };
            if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.admin_sql(&sql)))
                .is_err()
            {
                eprintln!("could not drop test database {}", s.db_name);
            }
        }
    }
}

/// A finished run of the binary.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    #[track_caller]
    fn from(o: Output) -> Self {
        let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
        json_schema::check(&stdout);
        Self {
            code: o.status.code().unwrap_or(-1),
            stdout,
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Run {
    /// Asserts the exit code, showing the output when it differs.
    #[track_caller]
    pub fn code(&self, expected: i32) -> &Self {
        assert_eq!(
            self.code, expected,
            "unexpected exit code\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        self
    }

    /// stdout and stderr together.
    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }

    /// stdout parsed as the one JSON document.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not one JSON document ({e}):\n{}\n--- stderr\n{}",
                self.stdout, self.stderr
            )
        })
    }
}

/// sha256 of a file, lowercase hex (what Prisma records).
pub fn sha256_file(path: &Path) -> String {
    use sha2::Digest;
    let bytes = std::fs::read(path).expect("read file");
    sha2::Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Copies a folder tree.
pub fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).expect("mkdir");
    for entry in std::fs::read_dir(src).expect("read fixture") {
        let entry = entry.expect("entry");
        let to = dst.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &to);
        } else {
            std::fs::copy(entry.path(), &to).expect("copy");
        }
    }
}
