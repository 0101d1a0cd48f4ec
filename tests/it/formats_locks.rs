//! The sqlx, dbmate and golang-migrate tools' own lock ids, computed here independently: a
//! deploy waits while the tool itself holds its lock.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{Engine, TestContext};
use crate::formats_support::{assert_contains, golang_project, sqlx_project};

/// CRC-32/ISO-HDLC, bit by bit (the tools use Go's and the `crc` crate's table versions).
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = u32::MAX;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    !crc
}

fn database_name(t: &TestContext) -> String {
    url::Url::parse(&t.url)
        .unwrap()
        .path()
        .trim_start_matches('/')
        .to_owned()
}

/// A second session that holds a lock, started with the engine's own client.
struct Holder(Child);

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn hold_lock(t: &TestContext, lock_sql: &str) -> Holder {
    let script = format!(
        "{lock_sql}; SELECT {};",
        match t.engine {
            Engine::Postgres => "pg_sleep(30)",
            _ => "SLEEP(30)",
        }
    );
    let child = match t.engine {
        Engine::Postgres => Command::new("psql")
            .arg(&t.url)
            .args(["-X", "-q", "-c", &script])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn(),
        _ => {
            let u = url::Url::parse(&t.url).unwrap();
            let mut cmd = Command::new("mariadb");
            cmd.arg("-h")
                .arg(u.host_str().unwrap_or("127.0.0.1"))
                .arg("-P")
                .arg(u.port().unwrap_or(3306).to_string())
                .arg("-u")
                .arg(u.username());
            if let Some(pw) = u.password() {
                cmd.arg(format!("-p{pw}"));
            }
            cmd.arg(database_name(t))
                .arg("-e")
                .arg(&script)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
        }
    }
    .expect("start the database client");
    Holder(child)
}

fn wait_until(t: &TestContext, probe: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while t.sql(probe).first().map(String::as_str) != Some("1") {
        assert!(
            Instant::now() < deadline,
            "the lock was never taken: {probe}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// While another session holds a lock, a deploy waits for it and gives up; once that session
/// is gone, the deploy goes through. `release` ends the holding session from the server side
/// (a killed client does not end a session that is sleeping).
fn assert_deploy_waits_for(t: &TestContext, lock_sql: &str, probe: &str, release: impl Fn()) {
    let holder = hold_lock(t, lock_sql);
    wait_until(t, probe);
    let run = t.run(&["migrate", "locked"]);
    run.code(1);
    assert_contains(&run, "waiting for the deploy lock");
    assert!(t.tables().iter().all(|x| x != "users"), "{:?}", t.tables());
    release();
    drop(holder);
    let deadline = Instant::now() + Duration::from_secs(10);
    while t.sql(probe).first().map(String::as_str) == Some("1") {
        assert!(
            Instant::now() < deadline,
            "the lock was never released: {probe}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    t.run(&["migrate", "locked"]).code(0);
}

fn pg_lock_probe(id: i64) -> String {
    format!(
        "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND granted \
         AND ((classid::bigint << 32) | objid::bigint) = {id}"
    )
}

fn pg_release(t: &TestContext, id: i64) {
    t.sql(&format!(
        "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' \
         AND ((classid::bigint << 32) | objid::bigint) = {id}"
    ));
}

fn mariadb_release(t: &TestContext, name: &str) {
    if let Some(id) = t.sql(&format!("SELECT IS_USED_LOCK('{name}')")).first()
        && id != "NULL"
    {
        t.sql(&format!("KILL {id}"));
    }
}

#[test]
fn postgres_deploys_wait_for_the_tools_own_advisory_locks() {
    let Some(t) = TestContext::new(Engine::Postgres, "pg_tool_locks") else {
        return;
    };
    // sqlx: 0x3d32ad9e * crc32(current_database()).
    sqlx_project(&t, "basic");
    let id = 0x3d32_ad9e * i64::from(crc32(database_name(&t).as_bytes()));
    assert_deploy_waits_for(
        &t,
        &format!("SELECT pg_advisory_lock({id})"),
        &pg_lock_probe(id),
        || pg_release(&t, id),
    );

    // golang-migrate: database (as its CLI spells it, from the URL path, and as
    // `WithInstance` reads it), schema and table.
    for (i, spelling) in ["/{db}", "{db}"].into_iter().enumerate() {
        let t = TestContext::new(Engine::Postgres, &format!("pg_tool_locks_gm{i}")).unwrap();
        golang_project(&t, "basic");
        let db = spelling.replace("{db}", &database_name(&t));
        let key = format!("{db}\0public\0schema_migrations");
        let id = i64::from(crc32(key.as_bytes()).wrapping_mul(1_486_364_155));
        assert_deploy_waits_for(
            &t,
            &format!("SELECT pg_advisory_lock({id})"),
            &pg_lock_probe(id),
            || pg_release(&t, id),
        );
    }
}

#[test]
fn mariadb_deploys_wait_for_the_tools_own_named_locks() {
    let Some(t) = TestContext::new(Engine::MariaDb, "maria_tool_locks") else {
        return;
    };
    // The lock names are computed by MariaDB's own CRC32(), independently of dbdeploy.
    sqlx_project(&t, "basic");
    let name = t.sql("SELECT LOWER(HEX(1026731422 * CRC32(DATABASE())))")[0].clone();
    assert_deploy_waits_for(
        &t,
        &format!("SELECT GET_LOCK('{name}', 0)"),
        &format!("SELECT IS_USED_LOCK('{name}') IS NOT NULL"),
        || mariadb_release(&t, &name),
    );

    let t = TestContext::new(Engine::MariaDb, "maria_tool_locks_gm").unwrap();
    golang_project(&t, "basic");
    let name = t.sql(
        "SELECT CAST((CRC32(CONCAT(DATABASE(), ':schema_migrations')) * 1486364155) % 4294967296 AS CHAR)",
    )[0]
    .clone();
    assert_deploy_waits_for(
        &t,
        &format!("SELECT GET_LOCK('{name}', 0)"),
        &format!("SELECT IS_USED_LOCK('{name}') IS NOT NULL"),
        || mariadb_release(&t, &name),
    );
}
