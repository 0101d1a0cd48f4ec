//! `[environments.NAME.fleet]`: an environment that is many databases instead of one. This
//! module reads the table as written and checks it before anything is resolved or touched, so
//! that a fleet with two sources of targets, a duplicate id or a URL of its own fails with
//! exit 2 and a sentence that names the key.

use std::collections::{BTreeMap, HashSet};

use serde::Deserialize;

/// The `[environments.NAME.fleet]` table, as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FleetTable {
    /// The targets, listed in the file.
    pub targets: Option<Vec<TargetEntry>>,
    /// A command that prints one JSON object per line: `{"id", "url" | "url_env", "labels"}`.
    pub targets_command: Option<String>,
    /// A read-only query on the catalog database: columns `id`, `url` or `url_env`, and
    /// optionally `labels` (a JSON object, as text).
    pub targets_query: Option<String>,
    /// The variable that holds the catalog database's URL, for `targets_query`.
    pub catalog_url_env: Option<String>,
    /// How many targets run at once (default 4).
    pub max_parallel: Option<i64>,
    /// How many targets run at once on one server (`host:port`).
    pub max_parallel_per_server: Option<i64>,
    /// How many targets run first, one at a time, or which (a list of ids); a failed canary
    /// stops the fleet (default 0).
    pub canary: Option<CanaryEntry>,
    /// Waves by label (`"tier=free"`), run one after another after the canaries; targets in
    /// no wave run last.
    pub waves: Option<Vec<String>>,
    /// `stop` (default): no target starts after a failure; `continue`: the others still run.
    pub on_error: Option<OnError>,
    /// An empty fleet is an error (exit 2) instead of a success with nothing to do.
    #[serde(default)]
    pub require_targets: bool,
}

/// One target of `targets = [...]`, or one line of `targets_command`'s output.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetEntry {
    /// Unique in the fleet; named like an environment (it names the backup folder too).
    pub id: String,
    /// A literal database URL.
    pub url: Option<String>,
    /// The variable that holds the database URL.
    pub url_env: Option<String>,
    /// Free-form labels, reported with the target.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// `canary = 2` or `canary = ["acme", "beta"]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum CanaryEntry {
    /// The first N targets to run.
    Count(i64),
    /// These targets.
    Ids(Vec<String>),
}

/// What a failed target does to the rest of the fleet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnError {
    /// Targets not started yet stay untouched.
    #[default]
    Stop,
    /// The other targets still run; the failures are reported at the end.
    Continue,
}

/// Where the targets come from.
#[derive(Debug, Clone)]
pub enum TargetSource {
    /// Listed in the file.
    Listed(Vec<TargetEntry>),
    /// Printed by a command (`sh -c`, in the working directory).
    Command(String),
    /// Read by a query from a catalog database.
    Query {
        /// The query.
        sql: String,
        /// The variable holding the catalog's URL.
        catalog_url_env: String,
    },
}

/// A fleet's table, checked.
#[derive(Debug, Clone)]
pub struct FleetSettings {
    /// The environment.
    pub environment: String,
    /// Where its targets come from.
    pub source: TargetSource,
    /// Targets at once.
    pub max_parallel: usize,
    /// Targets at once on one server; `None`: only `max_parallel` limits them.
    pub max_parallel_per_server: Option<usize>,
    /// Targets run first, one at a time: this many of those with pending migrations.
    pub canary: usize,
    /// Targets run first, one at a time, by id (instead of a count).
    pub canary_ids: Option<Vec<String>>,
    /// Waves by label, `(key, value)`, in order.
    pub waves: Vec<(String, String)>,
    /// What a failure does to the rest.
    pub on_error: OnError,
    /// An empty fleet is an error.
    pub require_targets: bool,
}

/// Targets at once when `max_parallel` is not set: few enough for a default PostgreSQL's 100
/// connections to serve several fleets and their applications.
pub const DEFAULT_MAX_PARALLEL: usize = 4;

/// Checks a fleet table: exactly one source of targets, sane numbers, valid and unique ids
/// among listed targets. `own_url` says whether the environment also sets a URL of its own.
///
/// # Errors
/// The sentence that says what is wrong, for a configuration error.
pub fn check(
    environment: &str,
    table: &FleetTable,
    own_url: bool,
) -> Result<FleetSettings, String> {
    let key = |k: &str| format!("`[environments.{environment}.fleet] {k}`");
    if own_url {
        return Err(format!(
            "environment `{environment}` has a fleet and a URL of its own (`url`, `url_env` or `direct_url_env`): a fleet's databases are its targets; remove the environment's URL"
        ));
    }
    let sources = [
        ("targets", table.targets.is_some()),
        ("targets_command", table.targets_command.is_some()),
        ("targets_query", table.targets_query.is_some()),
    ];
    let set: Vec<String> = sources
        .iter()
        .filter(|(_, on)| *on)
        .map(|(k, _)| key(k))
        .collect();
    if set.len() > 1 {
        return Err(format!(
            "{} are all set: a fleet has exactly one source of targets",
            set.join(" and ")
        ));
    }
    if table.targets_query.is_some() != table.catalog_url_env.is_some() {
        return Err(format!(
            "{} and {} go together: the query runs on the catalog database that the variable names",
            key("targets_query"),
            key("catalog_url_env")
        ));
    }
    let source = match (&table.targets, &table.targets_command) {
        (Some(_), Some(_)) => unreachable!("refused above"),
        (None, None) if table.targets_query.is_some() => {
            let sql = table.targets_query.clone().unwrap_or_default();
            if sql.trim().is_empty() {
                return Err(format!("{} is empty", key("targets_query")));
            }
            TargetSource::Query {
                sql,
                catalog_url_env: table.catalog_url_env.clone().unwrap_or_default(),
            }
        }
        (None, None) => {
            return Err(format!(
                "the fleet of environment `{environment}` has no targets: set {} (a list of {{ id, url_env, labels }}), {} or {}",
                key("targets"),
                key("targets_command"),
                key("targets_query")
            ));
        }
        (Some(list), None) => {
            for t in list {
                check_entry(t).map_err(|e| format!("{}: {e}", key("targets")))?;
            }
            check_unique(list.iter().map(|t| t.id.as_str()))
                .map_err(|e| format!("{}: {e}", key("targets")))?;
            TargetSource::Listed(list.clone())
        }
        (None, Some(command)) if command.trim().is_empty() => {
            return Err(format!("{} is empty", key("targets_command")));
        }
        (None, Some(command)) => TargetSource::Command(command.clone()),
    };
    let max_parallel = match table.max_parallel {
        None => DEFAULT_MAX_PARALLEL,
        Some(n) => usize::try_from(n)
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| format!("{} = {n} must be between 1 and 1000", key("max_parallel")))?,
    };
    let max_parallel_per_server = match table.max_parallel_per_server {
        None => None,
        Some(n) => Some(
            usize::try_from(n)
                .ok()
                .filter(|n| (1..=1000).contains(n))
                .ok_or_else(|| {
                    format!(
                        "{} = {n} must be between 1 and 1000",
                        key("max_parallel_per_server")
                    )
                })?,
        ),
    };
    let (canary, canary_ids) = match &table.canary {
        None => (0, None),
        Some(CanaryEntry::Count(n)) => (
            usize::try_from(*n)
                .map_err(|_| format!("{} = {n} must be 0 or more", key("canary")))?,
            None,
        ),
        Some(CanaryEntry::Ids(ids)) => {
            check_unique(ids.iter().map(String::as_str))
                .map_err(|e| format!("{}: {e}", key("canary")))?;
            (ids.len(), Some(ids.clone()))
        }
    };
    let mut waves = Vec::new();
    for w in table.waves.iter().flatten() {
        match w.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => {
                waves.push((k.trim().to_owned(), v.trim().to_owned()));
            }
            _ => {
                return Err(format!(
                    "{}: `{w}` is not a label (write `key=value`, e.g. \"tier=free\")",
                    key("waves")
                ));
            }
        }
    }
    Ok(FleetSettings {
        environment: environment.to_owned(),
        source,
        max_parallel,
        max_parallel_per_server,
        canary,
        canary_ids,
        waves,
        on_error: table.on_error.unwrap_or_default(),
        require_targets: table.require_targets,
    })
}

/// One target: a valid id and exactly one of `url` and `url_env`.
///
/// # Errors
/// What is wrong, naming the target.
pub fn check_entry(t: &TargetEntry) -> Result<(), String> {
    crate::settings::check_environment_name(&t.id)
        .map_err(|rule| format!("target id `{}` is not allowed: {rule}", t.id))?;
    match (&t.url, &t.url_env) {
        (Some(_), None) => Ok(()),
        (None, Some(var)) if !var.trim().is_empty() => Ok(()),
        _ => Err(format!(
            "target `{}` must set exactly one of `url` and `url_env`",
            t.id
        )),
    }
}

/// Target ids are unique: reports and re-runs name targets by id.
///
/// # Errors
/// The first id seen twice.
pub fn check_unique<'a>(ids: impl IntoIterator<Item = &'a str>) -> Result<(), String> {
    let mut seen = HashSet::new();
    for id in ids {
        if !seen.insert(id) {
            return Err(format!("target id `{id}` appears more than once"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> Result<FleetSettings, String> {
        let t: FleetTable = toml::from_str(text).map_err(|e| e.to_string())?;
        check("tenants", &t, false)
    }

    #[test]
    fn listed_targets_with_defaults() {
        let f = table(
            r#"targets = [ { id = "acme", url_env = "ACME_URL", labels = { tier = "x" } },
                           { id = "beta", url = "sqlite://beta.db" } ]"#,
        )
        .unwrap();
        assert_eq!(f.max_parallel, DEFAULT_MAX_PARALLEL);
        assert_eq!(f.canary, 0);
        assert_eq!(f.on_error, OnError::Stop);
        let TargetSource::Listed(list) = f.source else {
            panic!("listed")
        };
        assert_eq!(list[0].labels["tier"], "x");
    }

    #[test]
    fn exactly_one_source() {
        let both = table("targets = []\ntargets_command = \"x\"").unwrap_err();
        assert!(both.contains("exactly one source"), "{both}");
        let q = table("targets_query = \"select 1\"").unwrap_err();
        assert!(q.contains("go together"), "{q}");
        let f =
            table("targets_query = \"select id, url from t\"\ncatalog_url_env = \"CAT\"").unwrap();
        assert!(matches!(f.source, TargetSource::Query { .. }));
        let none = table("max_parallel = 2").unwrap_err();
        assert!(none.contains("has no targets"), "{none}");
    }

    #[test]
    fn ids_are_valid_and_unique() {
        let dup = table(
            r#"targets = [ { id = "a", url = "sqlite://a.db" }, { id = "a", url = "sqlite://b.db" } ]"#,
        )
        .unwrap_err();
        assert!(dup.contains("more than once"), "{dup}");
        let bad = table(r#"targets = [ { id = "../x", url = "sqlite://a.db" } ]"#).unwrap_err();
        assert!(bad.contains("not allowed"), "{bad}");
        let two = table(r#"targets = [ { id = "a", url = "sqlite://a.db", url_env = "A" } ]"#)
            .unwrap_err();
        assert!(two.contains("exactly one of"), "{two}");
    }

    #[test]
    fn numbers_and_own_url() {
        assert!(table("targets = []\nmax_parallel = 0").is_err());
        assert!(table("targets = []\ncanary = -1").is_err());
        assert!(table("targets = []\nmax_parallel_per_server = 0").is_err());
        let f = table("targets = []\nmax_parallel_per_server = 3").unwrap();
        assert_eq!(f.max_parallel_per_server, Some(3));
        let f =
            table("targets = []\ncanary = [\"a\", \"b\"]\nwaves = [\"tier=free\", \"tier = big\"]")
                .unwrap();
        assert_eq!((f.canary, f.canary_ids.unwrap().len()), (2, 2));
        assert_eq!(f.waves[1], ("tier".to_owned(), "big".to_owned()));
        assert!(
            table("targets = []\nwaves = [\"free\"]")
                .unwrap_err()
                .contains("key=value")
        );
        assert!(table("targets = []\ncanary = [\"a\", \"a\"]").is_err());
        assert!(table("targets = []\ncanary = \"a\"").is_err());
        let f = table("targets = []\non_error = \"continue\"\ncanary = 2").unwrap();
        assert_eq!((f.on_error, f.canary), (OnError::Continue, 2));
        let t: FleetTable = toml::from_str("targets = []").unwrap();
        assert!(
            check("tenants", &t, true)
                .unwrap_err()
                .contains("URL of its own")
        );
    }
}
