//! What the live database knows that the SQL text does not: the server's product and version,
//! and for each table its size, columns and indexes. The linter turns these into levels and
//! estimated durations; without them (offline lint) every size is "unknown", never "0 rows".

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::engine::Dialect;

/// Everything the linter may know about the target database. `Facts::default()` is the
/// offline case: no server version, no table known.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Facts {
    /// The server, when connected.
    #[serde(default)]
    pub server: Option<Server>,
    /// The tables of the live database by name as the catalog spells it (`users`, `"User"` is
    /// `User`; a schema-qualified key `app.users` is also looked up). `None` when offline.
    /// When `Some`, a table missing from the map does not exist yet, so it is empty when a
    /// migration reaches it.
    #[serde(default)]
    pub tables: Option<BTreeMap<String, TableFacts>>,
}

/// The database server product and version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Server {
    /// Which server.
    pub product: Product,
    /// Its version, `(major, minor, patch)`.
    pub version: (u32, u32, u32),
}

/// A database server product; MySQL and MariaDB differ in their online-DDL abilities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Product {
    /// PostgreSQL.
    Postgres,
    /// Oracle MySQL.
    MySql,
    /// MariaDB.
    MariaDb,
    /// SQLite.
    Sqlite,
}

/// What is known of one table.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableFacts {
    /// Its row count, when known.
    #[serde(default)]
    pub rows: Rows,
    /// The size of its data on disk in bytes (PostgreSQL `pg_relation_size`, MySQL
    /// `data_length`), used when the row count is unknown.
    #[serde(default)]
    pub bytes: Option<u64>,
    /// Its columns by name.
    #[serde(default)]
    pub columns: BTreeMap<String, ColumnFacts>,
    /// The names of its indexes.
    #[serde(default)]
    pub indexes: Vec<String>,
}

/// A table's row count and where it comes from. PostgreSQL reports `reltuples = -1` for a
/// table never analysed: that is `Unknown`, not 0.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Rows {
    /// No statistics and not counted.
    #[default]
    Unknown,
    /// From the planner's statistics.
    Estimated(u64),
    /// Counted.
    Exact(u64),
}

impl Rows {
    /// The count, exact or estimated.
    #[must_use]
    pub fn count(self) -> Option<u64> {
        match self {
            Rows::Unknown => None,
            Rows::Estimated(n) | Rows::Exact(n) => Some(n),
        }
    }
}

/// One column of a live table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnFacts {
    /// Its type as the catalog prints it (`character varying(20)`, `varchar(20)`, `int(11)`).
    pub data_type: String,
    /// Declared `NOT NULL`.
    #[serde(default)]
    pub not_null: bool,
}

impl Server {
    /// Reads a server's version string (`SELECT version()` or `server_version`): `15.4`,
    /// `PostgreSQL 15.4 (Debian ...)`, `8.0.36`, `10.11.6-MariaDB-0+deb12u1`, `3.45.1`.
    #[must_use]
    pub fn parse(dialect: Dialect, version: &str) -> Option<Server> {
        let product = match dialect {
            Dialect::Postgres => Product::Postgres,
            Dialect::Sqlite => Product::Sqlite,
            Dialect::MySql if version.to_ascii_lowercase().contains("mariadb") => Product::MariaDb,
            Dialect::MySql => Product::MySql,
        };
        let start = version.find(|c: char| c.is_ascii_digit())?;
        let mut parts = version[start..]
            .split(|c: char| !c.is_ascii_digit())
            .take(3)
            .map(|p| p.parse::<u32>().ok());
        let major = parts.next().flatten()?;
        let minor = parts.next().flatten().unwrap_or(0);
        let patch = parts.next().flatten().unwrap_or(0);
        Some(Server {
            product,
            version: (major, minor, patch),
        })
    }

    /// True when this is `product` at `version` or later.
    #[must_use]
    pub fn at_least(self, product: Product, version: (u32, u32, u32)) -> bool {
        self.product == product && self.version >= version
    }
}

/// How big a table is, for levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Size {
    /// Created by this script or absent from the live database: empty when reached.
    New,
    /// Known and below the large-table thresholds.
    Small,
    /// Known and above them.
    Large,
    /// Offline, or live without statistics nor a size.
    Unknown,
}

/// Rows from which a table counts as large: a rewrite takes about a second there.
pub(crate) const LARGE_ROWS: u64 = 100_000;
/// Bytes from which a table whose row count is unknown counts as large.
pub(crate) const LARGE_BYTES: u64 = 64 * 1024 * 1024;

/// What the statement does to a table's rows, for the estimate. Rates measured on this
/// project's development machine (2 cores, PostgreSQL 15 and MariaDB 10.11, a 200,000-row
/// 23 MB table, cached): orders of magnitude, not promises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Work {
    /// Catalog change only.
    Metadata,
    /// Reads every row (validating a constraint, `SET NOT NULL`).
    Scan,
    /// Sorts every row into a new index.
    IndexBuild,
    /// Copies every row into a new file, rebuilding the indexes.
    Rewrite,
    /// Updates every row.
    UpdateRows,
    /// Deletes every row.
    DeleteRows,
}

impl Work {
    /// (rows per second, bytes per second).
    fn rates(self) -> Option<(f64, f64)> {
        const MB: f64 = 1024.0 * 1024.0;
        match self {
            Work::Metadata => None,
            Work::Scan => Some((2_000_000.0, 200.0 * MB)),
            Work::IndexBuild => Some((300_000.0, 30.0 * MB)),
            Work::Rewrite => Some((120_000.0, 14.0 * MB)),
            Work::UpdateRows => Some((40_000.0, 5.0 * MB)),
            Work::DeleteRows => Some((150_000.0, 18.0 * MB)),
        }
    }
}

/// Seconds a catalog-only change takes once it has its lock.
const METADATA_SECONDS: f64 = 0.001;

/// What the linter knows of one table at one point of the script.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TableSize<'a> {
    pub size: Size,
    pub facts: Option<&'a TableFacts>,
}

impl TableSize<'_> {
    /// Estimated seconds for `work` on this table; `None` when its size is unknown.
    pub fn seconds(&self, work: Work) -> Option<f64> {
        let Some((per_row, per_byte)) = work.rates() else {
            return Some(METADATA_SECONDS);
        };
        if self.size == Size::New {
            return Some(METADATA_SECONDS);
        }
        let facts = self.facts?;
        #[allow(clippy::cast_precision_loss, reason = "an estimate")]
        let secs = match (facts.rows.count(), facts.bytes) {
            (Some(rows), _) => rows as f64 / per_row,
            (None, Some(bytes)) => bytes as f64 / per_byte,
            (None, None) => return None,
        };
        Some(((secs + METADATA_SECONDS) * 1000.0).round() / 1000.0)
    }

    /// The size in words for messages: `200,000 rows`, `about 120 MB (never analysed)`.
    pub fn describe(&self) -> String {
        match (self.size, self.facts) {
            (Size::New, _) => "a table this migration creates (empty)".to_owned(),
            (_, Some(f)) => match (f.rows, f.bytes) {
                (Rows::Exact(n), _) => format!("{} rows", thousands(n)),
                (Rows::Estimated(n), _) => format!("about {} rows", thousands(n)),
                (Rows::Unknown, Some(b)) => {
                    format!(
                        "{} MB, row count unknown (never analysed)",
                        b / (1024 * 1024)
                    )
                }
                (Rows::Unknown, None) => "size unknown".to_owned(),
            },
            (_, None) => "size unknown".to_owned(),
        }
    }
}

/// Classifies a table's known size.
pub(crate) fn classify(facts: &TableFacts) -> Size {
    match (facts.rows.count(), facts.bytes) {
        (Some(n), _) if n >= LARGE_ROWS => Size::Large,
        (Some(_), _) => Size::Small,
        (None, Some(b)) if b >= LARGE_BYTES => Size::Large,
        (None, Some(_)) => Size::Small,
        (None, None) => Size::Unknown,
    }
}

/// `1234567` as `1,234,567`.
pub(crate) fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_server_versions() {
        let s = Server::parse(Dialect::MySql, "10.11.6-MariaDB-0+deb12u1").unwrap();
        assert_eq!(s.product, Product::MariaDb);
        assert_eq!(s.version, (10, 11, 6));
        let s = Server::parse(Dialect::MySql, "8.0.36").unwrap();
        assert!(s.at_least(Product::MySql, (8, 0, 12)));
        assert!(!s.at_least(Product::MariaDb, (10, 3, 2)));
        let s = Server::parse(Dialect::Postgres, "PostgreSQL 15.4 (Debian 15.4-1)").unwrap();
        assert_eq!(s.version, (15, 4, 0));
        assert_eq!(Server::parse(Dialect::Postgres, "unknown"), None);
    }

    #[test]
    fn an_unanalysed_table_is_sized_from_its_bytes_never_as_empty() {
        let facts = TableFacts {
            rows: Rows::Unknown,
            bytes: Some(120 * 1024 * 1024),
            ..TableFacts::default()
        };
        assert_eq!(classify(&facts), Size::Large);
        let t = TableSize {
            size: classify(&facts),
            facts: Some(&facts),
        };
        assert!(t.seconds(Work::Rewrite).unwrap() > 5.0);
        assert!(t.describe().contains("never analysed"), "{}", t.describe());
        let unknown = TableFacts::default();
        let t = TableSize {
            size: classify(&unknown),
            facts: Some(&unknown),
        };
        assert_eq!(t.seconds(Work::Rewrite), None);
        assert_eq!(t.describe(), "size unknown");
    }

    #[test]
    fn formats_thousands() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(200_000), "200,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }
}
