//! Lock domains: targets that share a deploy lock. A target's deploy takes its format's
//! locks (`Handler::lock_keys`), and two targets whose locks meet would only wait for each
//! other, holding a connection meanwhile, and fail with a lock timeout when the wait is
//! long. MySQL's `GET_LOCK` names are server-wide, so every database on one server shares
//! Prisma's `prisma_migrate` (and Flyway's and dbdeploy's own fixed names), while dbmate,
//! sqlx and golang-migrate put the database into the name. PostgreSQL's advisory locks are
//! per database, so only schemas of one database can share one: Prisma's, sqlx's, dbmate's
//! and Flyway's keys ignore the schema, golang-migrate's hashes it in. SQLite files lock
//! themselves. Targets whose keys meet form one domain, and the scheduler runs a domain's
//! targets one after another; a `--shard` keeps a domain in one shard.
//!
//! The keys are computed from each target's URL (host and port, database, and the schema of
//! its `search_path`), without connecting, so that a shard of a CI matrix can be chosen
//! before any server is reached.

use std::collections::BTreeMap;

use crate::engine::{LockKey, LockScope, Target};
use crate::handler::Handler;

/// The lock scope a target's URL names: the database (the path, else the user, as
/// PostgreSQL and MySQL default it) and the first schema of its `search_path`.
#[must_use]
pub fn scope_of(target: &Target) -> Option<LockScope> {
    let (Target::Postgres { url } | Target::MySql { url }) = target else {
        return None;
    };
    let u = url::Url::parse(url).ok()?;
    let path = u.path().trim_start_matches('/');
    let database = if path.is_empty() {
        u.username().to_owned()
    } else {
        percent(path)
    };
    let mut schema = None;
    if let Target::Postgres { .. } = target {
        for (k, v) in u.query_pairs() {
            let found = match k.as_ref() {
                "options" => search_path_in(&v),
                "options[search_path]" | "schema" => Some(first_schema(&v)),
                _ => None,
            };
            if found.is_some() {
                schema = found;
            }
        }
    }
    Some(LockScope { database, schema })
}

fn percent(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map_or_else(|| s.to_owned(), |(_, v)| v.into_owned())
}

/// `-c search_path=a,b` (or `--search_path=a`) in libpq's `options`: `a`.
fn search_path_in(options: &str) -> Option<String> {
    let mut words = options.split_whitespace();
    while let Some(w) = words.next() {
        let setting = match w {
            "-c" => words.next().unwrap_or(""),
            w => w
                .strip_prefix("-c")
                .or_else(|| w.strip_prefix("--"))
                .unwrap_or(""),
        };
        if let Some(v) = setting.strip_prefix("search_path=") {
            return Some(first_schema(v));
        }
    }
    None
}

fn first_schema(path: &str) -> String {
    path.split(',')
        .next()
        .unwrap_or("")
        .trim()
        .trim_matches('"')
        .to_owned()
}

/// The locks a target's deploy takes, named so that equal names are one lock: the server and
/// database for PostgreSQL's per-database advisory locks, the server for MySQL's named locks.
#[must_use]
pub fn lock_names(target: &Target, handler: Option<&dyn Handler>) -> Vec<String> {
    let (Some(server), Some(scope)) = (super::servers::server_of(target), scope_of(target)) else {
        return Vec::new();
    };
    let keys: Vec<LockKey> = match handler {
        Some(h) => h.lock_keys(&scope),
        None => vec![crate::handler::dbdeploy_lock()],
    };
    keys.iter()
        .map(|k| match target {
            Target::Postgres { .. } => {
                format!(
                    "postgresql {server}/{} advisory {}",
                    scope.database, k.postgres
                )
            }
            _ => format!("mysql {server} GET_LOCK {}", k.mysql),
        })
        .collect()
}

/// Per target, the lock domain it shares with others (the least of the domain's lock names),
/// or `None` when no other target takes any of its locks.
#[must_use]
pub fn domains(locks: &[Vec<String>]) -> Vec<Option<String>> {
    // Union-find over the targets, joined by the lock names they have in common.
    let mut parent: Vec<usize> = (0..locks.len()).collect();
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    let mut first_with: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, names) in locks.iter().enumerate() {
        for name in names {
            match first_with.get(name.as_str()) {
                Some(&j) => {
                    let (a, b) = (root(&mut parent, i), root(&mut parent, j));
                    parent[a] = b;
                }
                None => {
                    first_with.insert(name, i);
                }
            }
        }
    }
    let mut members: BTreeMap<usize, (usize, &str)> = BTreeMap::new();
    for (i, names) in locks.iter().enumerate() {
        let r = root(&mut parent, i);
        let least = names.iter().map(String::as_str).min().unwrap_or("");
        let e = members.entry(r).or_insert((0, least));
        e.0 += 1;
        if least < e.1 {
            e.1 = least;
        }
    }
    (0..locks.len())
        .map(|i| {
            let (n, name) = members[&root(&mut parent, i)];
            (n > 1).then(|| name.to_owned())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::MigrationTool;

    fn t(url: &str) -> Target {
        Target::parse(url, Path::new("/w")).unwrap()
    }

    fn of(urls: &[&str], format: &str) -> Vec<Option<String>> {
        let tool = match format {
            "prisma" => MigrationTool::Prisma,
            "dbmate" => MigrationTool::Dbmate,
            _ => MigrationTool::GolangMigrate,
        };
        let h = crate::handler::for_tool(tool);
        let locks: Vec<Vec<String>> = urls.iter().map(|u| lock_names(&t(u), h)).collect();
        domains(&locks)
    }

    #[test]
    fn the_schema_comes_from_the_search_path() {
        let s = |u: &str| scope_of(&t(u)).unwrap();
        assert_eq!(s("postgres://u@h/app").schema, None);
        assert_eq!(s("postgres://u@h/app").database, "app");
        assert_eq!(s("postgres://u@h").database, "u");
        assert_eq!(
            s("postgres://u@h/app?options=-c%20search_path%3Dtenant_a,public").schema,
            Some("tenant_a".into())
        );
        assert_eq!(
            s("postgres://u@h/app?options[search_path]=b").schema,
            Some("b".into())
        );
        assert_eq!(s("postgres://u@h/app?schema=c").schema, Some("c".into()));
    }

    #[test]
    fn prisma_schemas_of_one_database_share_a_domain_databases_do_not() {
        let d = of(
            &[
                "postgres://u@h/app?options=-c%20search_path%3Da",
                "postgres://u@h/app?options=-c%20search_path%3Db",
                "postgres://u@h/other",
                "postgres://u@h:5433/app",
            ],
            "prisma",
        );
        assert!(d[0].is_some());
        assert_eq!(d[0], d[1]);
        assert_eq!((&d[2], &d[3]), (&None, &None));
    }

    #[test]
    fn golang_migrate_schemas_run_apart() {
        let d = of(
            &[
                "postgres://u@h/app?options=-c%20search_path%3Da",
                "postgres://u@h/app?options=-c%20search_path%3Db",
            ],
            "golang-migrate",
        );
        assert_eq!(d, vec![None, None]);
    }

    #[test]
    fn prisma_on_mysql_shares_one_server_wide_lock_dbmate_does_not() {
        let urls = [
            "mysql://root@h/a",
            "mysql://root@h/b",
            "mysql://root@other/c",
        ];
        let d = of(&urls, "prisma");
        assert!(d[0].is_some());
        assert_eq!(d[0], d[1]);
        assert_eq!(d[2], None);
        assert_eq!(of(&urls, "dbmate"), vec![None, None, None]);
        assert_eq!(
            of(&["sqlite://a.db", "sqlite://a.db"], "prisma"),
            vec![None, None]
        );
    }
}
