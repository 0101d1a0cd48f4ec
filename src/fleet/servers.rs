//! The servers a fleet's targets live on, and whether each can take the fleet. Servers are
//! told apart by the `host:port` of their URLs (SQLite files have none). Before anything
//! runs, each PostgreSQL server is asked how many connections it has free, and a fleet that
//! would need more than that at once is refused: halfway through, a server out of
//! connections fails targets (and the applications on it) one by one instead.

use std::collections::BTreeMap;

use super::targets::FleetTarget;
use crate::config::ConfigError;
use crate::engine::{ConnectOptions, Database, Stmt, Target};
use crate::error::Error;
use crate::settings::EnvSettings;

/// The server a target is on: `host:port` of its URL (the engine's default port when the URL
/// has none); `None` for SQLite.
#[must_use]
pub fn server_of(target: &Target) -> Option<String> {
    let (url, default_port) = match target {
        Target::Postgres { url } => (url, 5432),
        Target::MySql { url } => (url, 3306),
        Target::Sqlite { .. } => return None,
    };
    let u = url::Url::parse(url).ok()?;
    Some(format!(
        "{}:{}",
        u.host_str().unwrap_or("localhost"),
        u.port().unwrap_or(default_port)
    ))
}

/// The sessions one PostgreSQL target holds while it deploys, and what they are: the deploy's
/// own, the one that watches what blocks a waiting migration, and a backup's (`pg_dump -j N`
/// opens N + 1; a backup command is counted as one).
#[must_use]
pub fn sessions_per_target(env: &EnvSettings) -> (usize, String) {
    let mut n = 2;
    let mut what = "the deploy's session, the lock watcher".to_owned();
    if env.backup_before_migrate {
        if env.backup.command.is_some() {
            n += 1;
            what.push_str(", the backup command");
        } else {
            let jobs = env.backup.jobs.max(1) as usize;
            n += jobs + 1;
            what.push_str(&format!(", pg_dump -j {jobs} ({} sessions)", jobs + 1));
        }
    }
    (n, what)
}

/// What a server said about its connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capacity {
    /// `max_connections`.
    pub max: usize,
    /// Kept for superusers (`superuser_reserved_connections`, `reserved_connections`).
    pub reserved: usize,
    /// Client sessions open now, not counting the one that asked.
    pub in_use: usize,
}

impl Capacity {
    /// Connections a new client can still open.
    #[must_use]
    pub fn free(&self) -> usize {
        self.max.saturating_sub(self.reserved + self.in_use)
    }
}

/// The targets at once on one server: the least of the limits and of its targets.
#[must_use]
pub fn at_once(targets: usize, max_parallel: usize, per_server: Option<usize>) -> usize {
    targets
        .min(max_parallel)
        .min(per_server.unwrap_or(usize::MAX))
}

/// Why a server cannot take the fleet, or `None` when it can.
#[must_use]
pub fn refusal(
    server: &str,
    ids: &[&str],
    at_once: usize,
    sessions: (usize, &str),
    capacity: Capacity,
) -> Option<String> {
    let (per, what) = sessions;
    let need = at_once * per;
    let free = capacity.free();
    if need <= free {
        return None;
    }
    let fits = free / per.max(1);
    let shown: Vec<&str> = ids.iter().take(3).copied().collect();
    let more = if ids.len() > 3 {
        format!(" and {} more", ids.len() - 3)
    } else {
        String::new()
    };
    let advice = if fits == 0 {
        "free connections on that server (or raise its max_connections)".to_owned()
    } else {
        format!("set `max_parallel_per_server = {fits}` (or free connections on that server)")
    };
    Some(format!(
        "server {server} (targets {}{more}) cannot take this fleet: {at_once} target(s) at once need {need} connections ({per} each: {what}), and it has {free} free (max_connections {}, {} reserved, {} in use); {advice}; nothing was changed",
        shown.join(", "),
        capacity.max,
        capacity.reserved,
        capacity.in_use
    ))
}

/// Refuses a fleet that would need more connections at once than a PostgreSQL server has
/// free. Each server is asked once, on a read-only session of its first reachable target; a
/// server that cannot be reached is not checked (its targets fail on their own).
///
/// # Errors
/// A configuration error (exit 2) naming the server, what is needed and what is free.
pub async fn check(
    targets: &[FleetTarget],
    max_parallel: usize,
    per_server: Option<usize>,
) -> Result<(), Error> {
    let mut by_server: BTreeMap<String, Vec<&FleetTarget>> = BTreeMap::new();
    for t in targets {
        if let (Target::Postgres { .. }, Some(server)) = (&t.env.target, server_of(&t.env.target)) {
            by_server.entry(server).or_default().push(t);
        }
    }
    for (server, on) in by_server {
        let n = at_once(on.len(), max_parallel, per_server);
        let (per, what) = sessions_per_target(&on[0].env);
        let mut capacity = None;
        for t in &on {
            if let Ok(c) = read_capacity(&t.env).await {
                capacity = Some(c);
                break;
            }
        }
        let Some(capacity) = capacity else { continue };
        let ids: Vec<&str> = on.iter().map(|t| t.id.as_str()).collect();
        if let Some(why) = refusal(&server, &ids, n, (per, &what), capacity) {
            return Err(ConfigError::Usage(why).into());
        }
    }
    Ok(())
}

async fn read_capacity(env: &EnvSettings) -> Result<Capacity, Error> {
    type D = crate::engine::postgres::Postgres;
    let opts = ConnectOptions {
        wait: env.connect_wait,
        read_only: true,
        lock_wait: env.lock_timeout,
    };
    let mut db = D::connect(&env.target, opts).await?;
    // `reserved_connections` exists from PostgreSQL 16 (missing_ok: NULL before).
    let said = crate::backup::scalar_text(
        &mut db,
        &Stmt::raw(
            "SELECT concat_ws(' ', current_setting('max_connections'), \
             current_setting('superuser_reserved_connections')::int \
               + COALESCE(NULLIF(current_setting('reserved_connections', true), '')::int, 0), \
             (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend') - 1)",
        ),
    )
    .await;
    db.close().await;
    let said = said?.unwrap_or_default();
    let n: Vec<usize> = said.split(' ').filter_map(|x| x.parse().ok()).collect();
    match n[..] {
        [max, reserved, in_use] => Ok(Capacity {
            max,
            reserved,
            in_use,
        }),
        _ => Err(ConfigError::Usage("the server did not say its max_connections".into()).into()),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn servers_are_host_and_port() {
        let t = |u: &str| Target::parse(u, Path::new("/w")).unwrap();
        assert_eq!(
            server_of(&t("postgres://u:pw@db.example.com/a")).as_deref(),
            Some("db.example.com:5432")
        );
        assert_eq!(
            server_of(&t("postgres://u@db.example.com:6543/b")).as_deref(),
            Some("db.example.com:6543")
        );
        assert_eq!(
            server_of(&t("mariadb://root@10.0.0.1/c")).as_deref(),
            Some("10.0.0.1:3306")
        );
        assert_eq!(server_of(&t("sqlite://x.db")), None);
    }

    #[test]
    fn a_server_without_room_is_refused_with_what_would_fit() {
        let cap = Capacity {
            max: 100,
            reserved: 3,
            in_use: 90,
        };
        assert_eq!(cap.free(), 7);
        assert_eq!(at_once(10, 8, Some(4)), 4);
        assert_eq!(at_once(2, 8, None), 2);
        assert!(refusal("h:5432", &["a"], 3, (2, "x"), cap).is_none());
        let why = refusal("h:5432", &["a", "b", "c", "d", "e"], 4, (2, "x"), cap).unwrap();
        assert!(why.contains("need 8 connections"), "{why}");
        assert!(why.contains("7 free"), "{why}");
        assert!(why.contains("`max_parallel_per_server = 3`"), "{why}");
        assert!(why.contains("a, b, c and 2 more"), "{why}");
        let full = Capacity { in_use: 97, ..cap };
        let why = refusal("h:5432", &["a"], 1, (2, "x"), full).unwrap();
        assert!(why.contains("free connections"), "{why}");
    }
}
