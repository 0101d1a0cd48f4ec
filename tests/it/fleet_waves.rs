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
