//! Fleets (issue 15): the order targets run in — canaries by id, waves by label — and CI
//! shards of one fleet with their merged report.
#![allow(clippy::disallowed_methods)]

use crate::common::{TestContext, sqlite_basic};
use crate::fleet::{one_bad_tenant, run, target};

/// Five SQLite tenants: two free (`f2` is the one [`one_bad_tenant`] breaks), two
/// enterprise, one without a tier.
fn tiered_fleet(t: &TestContext, extra: &str) {
    std::fs::create_dir_all(t.path().join("tenants")).expect("mkdir");
    let target = |id: &str, tier: Option<&str>| {
        let labels = tier.map_or(String::new(), |tier| {
            format!(", labels = {{ tier = \"{tier}\" }}")
        });
        format!("  {{ id = \"{id}\", url = \"sqlite://tenants/{id}.db\"{labels} }},\n")
    };
    t.write_config(&format!(
        "[environments.tenants.fleet]\nmax_parallel = 1\n{extra}\ntargets = [\n{}{}{}{}{}]\n",
        target("e1", Some("enterprise")),
        target("f1", Some("free")),
        target("n1", None),
        target("f2", Some("free")),
        target("e2", Some("enterprise")),
    ));
}

/// The ids of the targets' finished lines, in the order they finished.
fn finished(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter(|l| l.starts_with("✓ ") || l.starts_with("✗ "))
        .filter_map(|l| l.split_whitespace().nth(1).map(str::to_owned))
        .filter(|id| id.len() == 2)
        .collect()
}

#[test]
fn a_canary_by_id_then_waves_by_label_and_a_failed_wave_stops_the_later_ones() {
    let t = sqlite_basic("fleet_waves");
    tiered_fleet(
        &t,
        "canary = [\"e2\"]\nwaves = [\"tier=free\", \"tier=enterprise\"]\non_error = \"stop\"",
    );
    one_bad_tenant(&t, "f2");
    let r = run(
        &t,
        "tenants/none.db",
        &["migrate", "tenants", "--yes", "--json"],
    );
    r.code(1);
    // e2 first (the canary), then the free wave, where f2 fails: the enterprise wave (e1) and
    // the targets in no wave (n1) never start.
    assert_eq!(finished(&r.stderr), ["e2", "f1", "f2"], "{}", r.all());
    let doc = r.json();
    for (id, status) in [
        ("e2", "success"),
        ("f1", "success"),
        ("f2", "failed"),
        ("e1", "not_started"),
        ("n1", "not_started"),
    ] {
        assert_eq!(target(&doc, id)["status"], status, "{id}");
    }
    assert_eq!(doc["result"]["canary"], 1);
    assert!(
        r.stderr
            .contains("canary e2 · waves tier=free, tier=enterprise"),
        "{}",
        r.all()
    );

    // With on_error = "continue" every wave runs, and the targets in no wave run last.
    tiered_fleet(
        &t,
        "waves = [\"tier=enterprise\", \"tier=free\"]\non_error = \"continue\"",
    );
    let r = run(
        &t,
        "tenants/none.db",
        &["migrate", "tenants", "--yes", "--json"],
    );
    r.code(1);
    assert_eq!(finished(&r.stderr), ["e1", "f2", "n1"], "{}", r.all());
    assert_eq!(target(&r.json(), "n1")["status"], "success");
}

#[test]
fn a_canary_that_is_not_a_target_is_refused() {
    let t = sqlite_basic("fleet_canary_ids");
    tiered_fleet(&t, "canary = [\"nobody\"]");
    let r = t.run(&["migrate", "tenants", "--yes"]);
    r.code(2);
    assert!(
        r.stderr
            .contains("canary` names `nobody`, which is not a target"),
        "{}",
        r.all()
    );
    assert!(!t.path().join("tenants/e1.db").exists());
    tiered_fleet(&t, "waves = [\"free\"]");
    let r = t.run(&["migrate", "tenants", "--yes"]);
    r.code(2);
    assert!(r.stderr.contains("is not a label"), "{}", r.all());
}

/// A SQLite fleet of `n` tenants, `s0` … `s{n-1}`.
fn numbered_fleet(t: &TestContext, n: usize) {
    std::fs::create_dir_all(t.path().join("tenants")).expect("mkdir");
    let targets: String = (0..n)
        .map(|i| format!("  {{ id = \"s{i}\", url = \"sqlite://tenants/s{i}.db\" }},\n"))
        .collect();
    t.write_config(&format!(
        "[environments.tenants.fleet]\ntargets = [\n{targets}]\n"
    ));
}

fn ids(doc: &serde_json::Value) -> Vec<String> {
    doc["result"]["targets"]
        .as_array()
        .expect("targets")
        .iter()
        .map(|t| t["id"].as_str().expect("id").to_owned())
        .collect()
}

#[test]
fn shards_cover_the_fleet_once_and_merge_checks_them() {
    let t = sqlite_basic("fleet_shards");
    numbered_fleet(&t, 9);
    let mut all = Vec::new();
    for i in 1..=3 {
        let shard = format!("{i}/3");
        let r = t.run(&["migrate", "tenants", "--yes", "--json", "--shard", &shard]);
        r.code(0);
        let doc = r.json();
        assert_eq!(doc["result"]["shard"], shard.as_str());
        assert_eq!(doc["result"]["fleet_targets"], 9);
        all.extend(ids(&doc));
        std::fs::write(t.path().join(format!("r{i}.json")), &r.stdout).expect("write report");
        // status reads the same shard.
        let status = t.run(&["status", "tenants", "--json", "--shard", &shard]);
        status.code(0);
        assert_eq!(ids(&status.json()), ids(&doc), "shard {shard}");
    }
    all.sort();
    let expected: Vec<String> = {
        let mut e: Vec<String> = (0..9).map(|i| format!("s{i}")).collect();
        e.sort();
        e
    };
    assert_eq!(all, expected, "every target in exactly one shard");
    for i in 0..9 {
        assert!(t.path().join(format!("tenants/s{i}.db")).exists(), "s{i}");
    }

    // Paths are the caller's: absolute here, as the tests do not run in the project folder.
    let at = |name: &str| t.path().join(name).display().to_string();
    let (r1, r2, r3) = (at("r1.json"), at("r2.json"), at("r3.json"));
    let merged = t.run(&["fleet", "merge", &r1, &r2, &r3, "--json"]);
    merged.code(0);
    let doc = merged.json();
    assert_eq!(doc["operation"], "fleet-merge");
    assert_eq!(doc["environment"], "tenants");
    assert_eq!(doc["result"]["counts"]["success"], 9);
    assert_eq!(
        doc["result"]["shards"],
        serde_json::json!(["1/3", "2/3", "3/3"])
    );
    assert_eq!(ids(&doc), expected);

    let missing = t.run(&["fleet", "merge", &r1, &r3]);
    missing.code(2);
    assert!(
        missing
            .stderr
            .contains("shard(s) 2/3 of fleet `tenants` are missing"),
        "{}",
        missing.all()
    );
    let twice = t.run(&["fleet", "merge", &r1, &r2, &r3, &r2]);
    twice.code(2);
    assert!(
        twice.stderr.contains("shard 2/3 is given twice"),
        "{}",
        twice.all()
    );

    // Another fleet (a target more) is not a shard of this run.
    numbered_fleet(&t, 10);
    let r = t.run(&["migrate", "tenants", "--yes", "--json", "--shard", "2/3"]);
    std::fs::write(t.path().join("other.json"), &r.stdout).expect("write report");
    let mixed = t.run(&["fleet", "merge", &r1, &at("other.json"), &r3]);
    mixed.code(2);
    assert!(
        mixed
            .stderr
            .contains("are not shards of one run of one fleet"),
        "{}",
        mixed.all()
    );
}

#[test]
fn a_shard_that_is_not_i_of_n_is_a_usage_error() {
    let t = sqlite_basic("fleet_bad_shard");
    numbered_fleet(&t, 2);
    for bad in ["0/0", "3/2", "x", "1/0", "0/3"] {
        let r = t.run(&["migrate", "tenants", "--yes", "--shard", bad]);
        r.code(2);
        assert!(r.stderr.contains("is not a shard"), "{bad}: {}", r.all());
        t.run(&["status", "tenants", "--shard", bad]).code(2);
    }
    assert!(!t.path().join("tenants/s0.db").exists());
    let one = t.run(&["migrate", "dev", "--yes", "--shard", "1/2"]);
    one.code(2);
    assert!(one.stderr.contains("is one database"), "{}", one.all());
}
