//! Prisma's `?schema=NAME` URL parameter: dbdeploy deploys to that schema and reads its
//! `_prisma_migrations` there, as `prisma migrate deploy` does, instead of the default schema.

use crate::common::{Engine, Run, TestContext};

fn run_with(t: &TestContext, url: &str, args: &[&str]) -> Run {
    Run::from(
        t.cmd(args)
            .env("DATABASE_URL", url)
            .output()
            .expect("run dbdeploy"),
    )
}

#[test]
fn a_schema_parameter_deploys_into_that_schema_and_nowhere_else() {
    let Some(t) = TestContext::new(Engine::Postgres, "prisma_schema_param") else {
        return;
    };
    t.fixture("basic");
    t.sql("CREATE SCHEMA \"Tenant_A\"");
    let url = format!("{}?schema=Tenant_A", t.url);

    run_with(&t, &url, &["migrate", "dev"]).code(0);
    let tables = |schema: &str| {
        t.sql(&format!(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = '{schema}' ORDER BY 1"
        ))
    };
    assert_eq!(
        tables("Tenant_A"),
        [
            "Comment",
            "Post",
            "User",
            "_dbdeploy_history",
            "_prisma_migrations"
        ]
    );
    assert_eq!(tables("public"), Vec::<String>::new());
    // The same history is read back: up to date, and a second deploy applies nothing.
    run_with(&t, &url, &["status", "dev"]).code(0);
    let again = run_with(&t, &url, &["migrate", "dev", "--json"]);
    again.code(0);
    assert_eq!(again.json()["result"]["migrations_applied"], 0);
    // Without the parameter, the default schema has nothing applied.
    t.run(&["status", "dev"]).code(4);
}

#[test]
fn a_schema_that_does_not_exist_is_an_error_and_creates_nothing() {
    let Some(t) = TestContext::new(Engine::Postgres, "prisma_schema_missing") else {
        return;
    };
    t.fixture("basic");
    let url = format!("{}?schema=nope", t.url);
    let run = run_with(&t, &url, &["migrate", "dev", "--json"]);
    run.code(1);
    let doc = run.json();
    assert!(
        doc["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("`schema=` parameter does not exist"),
        "{doc}"
    );
    assert_eq!(t.tables(), Vec::<String>::new());
}
