//! `--shard I/N`: a CI matrix splits one fleet into N jobs. Each target goes to the shard
//! that the SHA-256 of its id picks (of its lock domain when it shares one, so that targets
//! that would wait for each other's lock stay in one job), which every job computes alike
//! without talking to the others; the union of the shards is the fleet, each target once.
//! A report carries the fleet's fingerprint (its environment, every target's id and the
//! migrations) so that `fleet merge` only combines shards of one run of one fleet.

use sha2::{Digest, Sha256};

/// The shard (1-based, of `count`) that `key` belongs to.
#[must_use]
pub fn of(key: &str, count: u32) -> u32 {
    let digest = Sha256::digest(key.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    (u64::from_be_bytes(first) % u64::from(count.max(1))) as u32 + 1
}

/// What names a fleet and the migrations it deploys: the same for every shard of one run.
#[must_use]
pub fn fingerprint<'a>(
    environment: &str,
    ids: impl IntoIterator<Item = &'a str>,
    migrations: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> String {
    let mut ids: Vec<&str> = ids.into_iter().collect();
    ids.sort_unstable();
    let mut h = Sha256::new();
    h.update(environment.as_bytes());
    for id in ids {
        h.update(b"\n");
        h.update(id.as_bytes());
    }
    h.update(b"\n--");
    for (name, checksum) in migrations {
        h.update(b"\n");
        h.update(name.as_bytes());
        h.update(b" ");
        h.update(checksum.as_bytes());
    }
    let hex: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    hex[..16].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_has_one_shard_and_they_spread() {
        let mut seen = [0usize; 4];
        for i in 0..400 {
            let s = of(&format!("tenant-{i}"), 4);
            assert!((1..=4).contains(&s));
            assert_eq!(s, of(&format!("tenant-{i}"), 4));
            seen[(s - 1) as usize] += 1;
        }
        assert!(seen.iter().all(|&n| n > 60), "{seen:?}");
        assert_eq!(of("x", 1), 1);
    }

    #[test]
    fn the_fingerprint_ignores_order_but_not_content() {
        let a = fingerprint("t", ["a", "b"], [("m1", "c1")]);
        assert_eq!(a, fingerprint("t", ["b", "a"], [("m1", "c1")]));
        assert_ne!(a, fingerprint("t", ["a", "b", "c"], [("m1", "c1")]));
        assert_ne!(a, fingerprint("t", ["a", "b"], [("m1", "c2")]));
        assert_ne!(a, fingerprint("u", ["a", "b"], [("m1", "c1")]));
    }
}
