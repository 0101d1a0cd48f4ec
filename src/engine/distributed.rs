//! Distributed SQL servers that speak PostgreSQL's wire protocol but break what dbdeploy
//! relies on. CockroachDB's advisory-lock functions are stubs or missing, it commits before
//! each DDL by default from v25.1 (`autocommit_before_ddl`), says `13.0.0` for
//! `server_version`, cannot be dumped by `pg_dump` and has virtual catalogs. YugabyteDB up to
//! 2024.2 is PostgreSQL 11.2 underneath and refuses advisory locks unless a flag enables them,
//! and its DDL is not transactional the way PostgreSQL's is. Deploying there with a lock that
//! does not lock or a transaction that is not one would be a wrong answer, so both are
//! recognised from `SELECT version()` and refused; `docs/distributed-sql.md` says what support
//! would take.

/// A recognised distributed SQL server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Distributed {
    /// The product and its version, as the server reports it (`CockroachDB v24.1.2`).
    pub server: String,
    /// What breaks, in one sentence.
    pub reason: &'static str,
}

/// The distributed server behind a `SELECT version()` text, when it is one.
#[must_use]
pub fn recognise(version: &str) -> Option<Distributed> {
    let text = version.trim();
    if let Some(rest) = text.strip_prefix("CockroachDB") {
        let release = rest
            .split_whitespace()
            .find(|w| w.starts_with('v'))
            .unwrap_or("(unknown version)");
        return Some(Distributed {
            server: format!("CockroachDB {release}"),
            reason: "its advisory locks do not exclude concurrent deploys, DDL commits on its own (autocommit_before_ddl), and pg_dump cannot back it up",
        });
    }
    // `PostgreSQL 11.2-YB-2.20.1.0-b0 on x86_64-pc-linux-gnu, ...`
    let first = text.split_whitespace().nth(1).unwrap_or("");
    if let Some((_, yb)) = first.split_once("-YB-") {
        let release = yb.split('-').next().unwrap_or(yb);
        return Some(Distributed {
            server: format!("YugabyteDB {release}"),
            reason: "advisory locks are refused unless enabled by a server flag, and its DDL is not transactional as PostgreSQL's is",
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cockroachdb_is_recognised_from_its_version_text() {
        for (text, server) in [
            (
                "CockroachDB CCL v23.2.4 (x86_64-pc-linux-gnu, built 2024/04/01 13:39:20, go1.21.8 X:nocoverageredesign)",
                "CockroachDB v23.2.4",
            ),
            (
                "CockroachDB CCL v25.1.0 (aarch64-unknown-linux-gnu, built 2025/02/13 18:20:03, go1.22.8 X:nocoverageredesign)",
                "CockroachDB v25.1.0",
            ),
            ("CockroachDB OSS v21.1.0", "CockroachDB v21.1.0"),
        ] {
            let d = recognise(text).expect(text);
            assert_eq!(d.server, server);
            assert!(d.reason.contains("advisory locks"));
        }
    }

    #[test]
    fn yugabytedb_is_recognised_from_its_version_text() {
        for (text, server) in [
            (
                "PostgreSQL 11.2-YB-2.20.1.0-b0 on x86_64-pc-linux-gnu, compiled by clang version 16.0.6, 64-bit",
                "YugabyteDB 2.20.1.0",
            ),
            (
                "PostgreSQL 11.2-YB-2024.2.0.0-b0 on x86_64-pc-linux-gnu, compiled by clang version 17.0.6, 64-bit",
                "YugabyteDB 2024.2.0.0",
            ),
            (
                "PostgreSQL 15.2-YB-2025.1.0.0-b0 on x86_64-pc-linux-gnu, compiled by clang version 17.0.6, 64-bit",
                "YugabyteDB 2025.1.0.0",
            ),
        ] {
            assert_eq!(recognise(text).expect(text).server, server);
        }
    }

    #[test]
    fn postgresql_and_its_distributions_are_not_refused() {
        for text in [
            "PostgreSQL 15.19 (Debian 15.19-0+deb12u1) on x86_64-pc-linux-gnu, compiled by gcc (Debian 12.2.0-14+deb12u1) 12.2.0, 64-bit",
            "PostgreSQL 16.4 on aarch64-unknown-linux-gnu, compiled by gcc (GCC) 12.4.0, 64-bit",
            "PostgreSQL 17.2 (Ubuntu 17.2-1.pgdg24.04+1) on x86_64-pc-linux-gnu",
            "",
        ] {
            assert_eq!(recognise(text), None, "{text}");
        }
    }
}
