//! A database user without rights on the tables gets "permission denied" from every command,
//! never "empty database" or "pending" (issue 11, item 5): PostgreSQL and MariaDB, with a user
//! made for the test that can connect but has no table privileges.

use std::sync::atomic::{AtomicU32, Ordering};

use crate::common::{Engine, Run, TestContext, run_on};

static USERS: AtomicU32 = AtomicU32::new(0);

/// A login that can connect to the test database and use none of its tables; dropped with
/// the guard.
struct Powerless<'a> {
    t: &'a TestContext,
    name: String,
    url: String,
}

impl<'a> Powerless<'a> {
    fn new(t: &'a TestContext) -> Self {
        let name = format!(
            "np_{}_{}",
            std::process::id(),
            USERS.fetch_add(1, Ordering::Relaxed)
        );
        match t.engine {
            Engine::Postgres => {
                t.sql(&format!("CREATE ROLE {name} LOGIN"));
            }
            Engine::MariaDb => {
                // A user needs some right on a database to connect to it; creating routines
                // is not a right on any table.
                let db = url::Url::parse(&t.url).unwrap().path()[1..].to_owned();
                t.sql(&format!("CREATE USER '{name}'@'%'"));
                t.sql(&format!("GRANT CREATE ROUTINE ON `{db}`.* TO '{name}'@'%'"));
            }
            Engine::Sqlite => unreachable!("SQLite has no users"),
        }
        let mut url = url::Url::parse(&t.url).unwrap();
        url.set_username(&name).unwrap();
        let _ = url.set_password(None);
        Self {
            t,
            name,
            url: url.to_string(),
        }
    }

    fn run(&self, args: &[&str]) -> Run {
        Run::from(
            self.t
                .cmd(args)
                .env("DATABASE_URL", &self.url)
                .output()
                .expect("run dbdeploy"),
        )
    }
}

impl Drop for Powerless<'_> {
    fn drop(&mut self) {
        let sql = match self.t.engine {
            Engine::Postgres => format!("DROP ROLE IF EXISTS {}", self.name),
            _ => format!("DROP USER IF EXISTS '{}'@'%'", self.name),
        };
        self.t.sql(&sql);
    }
}

/// Runs `body` on PostgreSQL and MariaDB.
fn on_servers(test: &str, body: impl Fn(&TestContext)) {
    run_on(Engine::Postgres, test, &body);
    run_on(Engine::MariaDb, test, &body);
}

/// Exit 1, `permission-denied`, naming the privilege and the table — or, on MariaDB, the
/// database whose tables the user cannot list (`health` and `migrate` list them first).
#[track_caller]
fn assert_denied(run: &Run, engine: Engine, table: &str) {
    run.code(1);
    let doc = run.json();
    let err = &doc["error"];
    assert_eq!(err["code"], "permission-denied", "{doc}");
    let message = err["message"].as_str().unwrap();
    // dbdeploy reads its own history first (an unfinished restore blocks every command), so
    // the first table refused may be `_dbdeploy_history`.
    assert!(
        message.contains(table)
            || message.contains("_dbdeploy_history")
            || (engine == Engine::MariaDb && message.contains("database")),
        "{doc}"
    );
    assert!(message.contains("SELECT"), "the privilege is named: {doc}");
    let hints = err["hints"].to_string();
    assert!(hints.contains("GRANT"), "{doc}");
}

#[test]
fn a_user_without_rights_on_the_tracking_table_gets_permission_denied_everywhere() {
    on_servers("no_rights", |t| {
        t.fixture("basic");
        t.run(&["migrate", "dev"]).code(0);
        let user = Powerless::new(t);
        for command in ["status", "health", "migrate"] {
            let run = user.run(&[command, "staging", "--json"]);
            assert_denied(&run, t.engine, "_prisma_migrations");
        }
        let run = user.run(&["migrate", "staging"]);
        assert!(
            !run.all().contains("already exists"),
            "the table was taken for absent: {}",
            run.all()
        );
        assert_eq!(t.prisma_rows().len(), 3, "nothing changed");
    });
}

#[test]
fn tables_a_user_cannot_use_do_not_make_an_empty_database() {
    on_servers("hidden_tables", |t| {
        let q = t.engine.q("customers");
        t.sql(&format!("CREATE TABLE {q} (id INTEGER)"));
        t.fixture("basic");
        let user = Powerless::new(t);
        let run = user.run(&["health", "staging", "--json"]);
        assert!(
            !run.all().contains("empty database"),
            "a database with tables called empty: {}",
            run.all()
        );
        assert_ne!(run.code, 0, "{}", run.all());
        match t.engine {
            // The catalogs list every table, rights or not: the database is not empty.
            Engine::Postgres => {
                run.code(5);
                assert!(run.all().contains("customers"), "{}", run.all());
            }
            // MariaDB lists only tables the user has rights on: the listing cannot be trusted.
            _ => {
                run.code(1);
                assert_eq!(run.json()["error"]["code"], "permission-denied");
            }
        }
        if t.engine == Engine::MariaDb {
            let run = user.run(&["status", "staging", "--json"]);
            assert_denied(&run, t.engine, "_prisma_migrations");
        }
    });
}
