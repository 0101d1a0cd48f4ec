//! Fleets (issue 15): what limits a fleet's parallelism — connections per server, checked
//! against the server's `max_connections` before anything runs, and lock domains (targets
//! that share one deploy lock run one after another).
#![allow(clippy::disallowed_methods)]

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::common::PgDatabases;
use crate::common::{Engine, TestContext, write_migrations};
use crate::fleet::target;

/// A Prisma migration that holds its session for `seconds`.
fn slow_migration(t: &TestContext, seconds: f64) {
    write_migrations(
        t,
        &[(
            "20240101000000_slow",
            format!("SELECT pg_sleep({seconds});\nCREATE TABLE \"Slow\" (\"id\" INTEGER);\n"),
        )],
    );
}

/// Samples, every 50 ms until stopped, how many of `names` have a session open on the
/// server: the most seen at once.
fn sample_sessions(
    admin: &str,
    names: &[String],
) -> (Arc<AtomicBool>, std::thread::JoinHandle<usize>) {
    let stop = Arc::new(AtomicBool::new(false));
    let list = names
        .iter()
        .map(|n| format!("'{n}'"))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "SELECT count(DISTINCT datname) FROM pg_stat_activity WHERE datname IN ({list}) AND backend_type = 'client backend'"
    );
    let admin = admin.to_owned();
    let flag = Arc::clone(&stop);
    let handle = std::thread::spawn(move || {
        let mut peak = 0;
        while !flag.load(Ordering::Relaxed) {
            let out = Command::new("psql")
                .arg(&admin)
                .args(["-X", "-A", "-t", "-q", "-c", &sql])
                .output()
                .expect("psql");
            let n: usize = String::from_utf8_lossy(&out.stdout)
                .trim()
                .parse()
                .unwrap_or(0);
            peak = peak.max(n);
            std::thread::sleep(Duration::from_millis(50));
        }
        peak
    });
    (stop, handle)
}

fn listed(n: usize) -> String {
    (0..n)
        .map(|i| format!("  {{ id = \"t{i}\", url_env = \"T{i}_URL\" }},\n"))
        .collect()
}

#[test]
fn per_server_concurrency_never_exceeds_its_limit() {
    let Some(t) = TestContext::new(Engine::Postgres, "fleet_per_server") else {
        return;
    };
    let admin = std::env::var("DBDEPLOY_TEST_POSTGRES_URL").expect("set when the context is");
    let dbs = PgDatabases::create(&admin, "dbd_fleet_cap", 5);
    slow_migration(&t, 0.8);
    t.write_config(&format!(
        "[environments.tenants.fleet]\nmax_parallel = 5\nmax_parallel_per_server = 2\ntargets = [\n{}]\n",
        listed(5)
    ));
    let mut cmd = t.cmd(&["migrate", "tenants", "--yes", "--json"]);
    for i in 0..5 {
        cmd.env(format!("T{i}_URL"), dbs.url(i));
    }
    let (stop, sampler) = sample_sessions(&admin, &dbs.names);
    let started = Instant::now();
    let run = crate::common::Run::from(cmd.output().expect("run dbdeploy"));
    let took = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let peak = sampler.join().expect("sampler");
    run.code(0);
    let doc = run.json();
    assert_eq!(doc["result"]["counts"]["success"], 5);
    assert_eq!(doc["result"]["max_parallel_per_server"], 2);
    for i in 0..5 {
        assert_eq!(target(&doc, &format!("t{i}"))["migrations_applied"], 1);
        assert_eq!(dbs.finished(i), "1");
    }
    // Two at a time: the limit was reached and never passed.
    assert_eq!(peak, 2, "databases with a session at once");
    // Five 0.8 s migrations two at a time take three rounds.
    assert!(took >= Duration::from_millis(2400), "{took:?}");
}

#[test]
fn a_fleet_the_server_has_no_connections_for_is_refused_before_anything_runs() {
    let Some(t) = TestContext::new(Engine::Postgres, "fleet_no_room") else {
        return;
    };
    t.fixture("basic");
    let max: usize = t.sql("SHOW max_connections")[0]
        .parse()
        .expect("max_connections");
    // Two sessions per target: more targets at once than half the server's connections.
    let n = max / 2 + 1;
    t.write_config(&format!(
        "[environments.tenants.fleet]\nmax_parallel = 1000\ntargets = [\n{}]\n",
        (0..n)
            .map(|i| format!("  {{ id = \"t{i}\", url_env = \"DATABASE_URL\" }},\n"))
            .collect::<String>()
    ));
    let run = t.run(&["migrate", "tenants", "--yes"]);
    run.code(2);
    let u = url::Url::parse(&t.url).expect("url");
    let server = format!(
        "{}:{}",
        u.host_str().unwrap_or(""),
        u.port().unwrap_or(5432)
    );
    let expected = format!(
        "server {server} (targets t0, t1, t2 and {} more) cannot take this fleet: {n} target(s) at once need {} connections (2 each: the deploy's session, the lock watcher), and it has ",
        n - 3,
        2 * n
    );
    assert!(run.stderr.contains(&expected), "{}", run.all());
    assert!(run.stderr.contains("nothing was changed"), "{}", run.all());
    assert!(t.tables().is_empty(), "{:?}", t.tables());
    // With a limit per server that fits, the same fleet gets as far as its duplicates.
    let config = std::fs::read_to_string(t.path().join("dbdeploy.toml")).expect("config");
    std::fs::write(
        t.path().join("dbdeploy.toml"),
        config.replace(
            "max_parallel = 1000",
            "max_parallel = 1000\nmax_parallel_per_server = 2",
        ),
    )
    .expect("config");
    let run = t.run(&["migrate", "tenants", "--yes"]);
    run.code(2);
    assert!(run.stderr.contains("same database"), "{}", run.all());
}

/// `url` with `search_path` set to `schema`, as libpq's `options` carries it.
fn in_schema(url: &str, schema: &str) -> String {
    format!("{url}?options=-c%20search_path%3D{schema}")
}

#[test]
fn schemas_of_one_database_under_one_advisory_lock_run_one_after_another() {
    let Some(t) = TestContext::new(Engine::Postgres, "fleet_schemas") else {
        return;
    };
    slow_migration(&t, 1.0);
    for s in ["tenant_a", "tenant_b", "tenant_c"] {
        t.sql(&format!("CREATE SCHEMA {s}"));
    }
    // Prisma's advisory lock id is the same for every schema of a database.
    t.write_config(
        "[environments.tenants.fleet]\nmax_parallel = 3\ntargets = [\n\
         { id = \"a\", url_env = \"A_URL\" },\n{ id = \"b\", url_env = \"B_URL\" },\n\
         { id = \"c\", url_env = \"C_URL\" },\n]\n",
    );
    let cmd = |args: &[&str]| {
        let mut c = t.cmd(args);
        c.env("A_URL", in_schema(&t.url, "tenant_a"))
            .env("B_URL", in_schema(&t.url, "tenant_b"))
            .env("C_URL", in_schema(&t.url, "tenant_c"));
        c
    };
    let db = url::Url::parse(&t.url).expect("url").path()[1..].to_owned();
    let admin = std::env::var("DBDEPLOY_TEST_POSTGRES_URL").expect("set when the context is");
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    let sql = format!(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = '{db}' AND state = 'active' AND query LIKE '%pg_sleep(%'"
    );
    let sampler = std::thread::spawn(move || {
        let mut peak = 0usize;
        while !flag.load(Ordering::Relaxed) {
            let out = Command::new("psql")
                .arg(&admin)
                .args(["-X", "-A", "-t", "-q", "-c", &sql])
                .output()
                .expect("psql");
            peak = peak.max(
                String::from_utf8_lossy(&out.stdout)
                    .trim()
                    .parse()
                    .unwrap_or(0),
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        peak
    });
    let run = crate::common::Run::from(
        cmd(&["migrate", "tenants", "--yes", "--json"])
            .output()
            .expect("run dbdeploy"),
    );
    stop.store(true, Ordering::Relaxed);
    let peak = sampler.join().expect("sampler");
    run.code(0);
    let doc = run.json();
    assert_eq!(doc["result"]["counts"]["success"], 3);
    assert_eq!(peak, 1, "migrations running at once in one database");
    // None of them started before the one ahead had let go of the lock: none waited for it
    // (the last of three started together would wait two migrations' time).
    for id in ["a", "b", "c"] {
        let took = target(&doc, id)["duration_seconds"]
            .as_f64()
            .expect("seconds");
        assert!((1.0..1.9).contains(&took), "{id} took {took} s");
    }
    // Each schema holds its own table and its own history; none waited out a lock timeout.
    for s in ["tenant_a", "tenant_b", "tenant_c"] {
        assert_eq!(
            t.sql(&format!(
                "SELECT count(*) FROM {s}._prisma_migrations WHERE finished_at IS NOT NULL"
            )),
            vec!["1"]
        );
        assert_eq!(
            t.sql(&format!("SELECT count(*) FROM {s}.\"Slow\"")),
            vec!["0"]
        );
    }
    assert!(!t.tables().contains(&"_prisma_migrations".to_owned()));
    // One lock domain is one shard's: the three schemas go to the same job.
    let sizes: Vec<usize> = (1..=2)
        .map(|i| {
            let shard = format!("{i}/2");
            let r = crate::common::Run::from(
                cmd(&["status", "tenants", "--json", "--shard", &shard])
                    .output()
                    .expect("run dbdeploy"),
            );
            r.code(0);
            r.json()["result"]["targets"].as_array().map_or(0, Vec::len)
        })
        .collect();
    assert!(sizes == [3, 0] || sizes == [0, 3], "{sizes:?}");
    // The same schema twice is one target under two names.
    let mut dup = cmd(&["migrate", "tenants", "--yes"]);
    dup.env("C_URL", in_schema(&t.url, "tenant_a"));
    let dup = crate::common::Run::from(dup.output().expect("run dbdeploy"));
    dup.code(2);
    assert!(
        dup.stderr.contains("targets `a` and `c`") && dup.stderr.contains("schema `tenant_a`"),
        "{}",
        dup.all()
    );
}
