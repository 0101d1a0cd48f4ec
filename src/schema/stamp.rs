//! Catalog stamps: a short digest of the catalogs a fingerprint is read from, cheap enough to
//! take on every run, so that a schema nobody changed need not be read in full.
//!
//! The contract is one-sided: an equal stamp means the catalogs hold the very same row
//! versions, hence the same schema; a different stamp only means "read it". Anything that
//! changes a stamp without changing the schema (a `GRANT`, a `VACUUM FULL` of a catalog, a
//! temporary table alive in another session) costs one full read, never a missed change.
//!
//! PostgreSQL: every DDL statement writes new catalog row versions, which carry the writing
//! transaction's id (`xmin`), or deletes rows. So per catalog, the number of rows and an
//! order-independent sum of a 64-bit hash of each row's `xmin` change with every change: a
//! committed change replaces rows of earlier transactions by rows of its own, and a change
//! undone by another statement still leaves new row versions. (The row's place, `ctid`, adds
//! nothing: rows of one transaction that one later change could swap do not exist, and a
//! transaction id used again after wraparound only comes back once the old rows read as
//! frozen. Leaving it out makes the stamp a fifth cheaper.) `VACUUM`/`ANALYZE` update
//! statistics in `pg_class` in place (same `xmin`).
//! SQLite: `schema_version` in the file header, which SQLite bumps on every schema change.
//! MySQL/MariaDB: no stamp; the schema is always read in full.

use sha2::{Digest, Sha256};

use super::FORMAT_VERSION;
use crate::engine::{ColKind, Database, DbError, Dialect, Stmt};

/// Version of the stamp queries. A stamp of another version never compares equal, so changing
/// what a stamp covers means raising this.
const VERSION: u32 = 2;

/// The catalogs the PostgreSQL fingerprint reads (also through the deparsers: operator, class
/// and language names), each with a filter that keeps at least every row the fingerprint reads
/// and could change. Rows made by `initdb` (object ids below 16384, `FirstNormalObjectId`) are
/// left out: ordinary DDL never writes them, every object a user creates gets an id of 16384 or
/// more (ids wrap around to 16384, never below), and they are most of the rows, so hashing them
/// was most of the stamp's cost. `pg_namespace` stays whole: `public` is an `initdb` row that
/// `ALTER SCHEMA` may change. Roles are a shared catalog without readable row versions: their
/// names (shown by policies) are taken as text below.
const PG_CATALOGS: &[(&str, &str)] = &[
    ("pg_namespace", ""),
    ("pg_extension", "oid >= 16384"),
    // Extension membership, sequence ownership and identity columns.
    ("pg_depend", "objid >= 16384 AND deptype IN ('e', 'a', 'i')"),
    ("pg_type", "oid >= 16384"),
    ("pg_enum", "oid >= 16384"),
    ("pg_collation", "oid >= 16384"),
    ("pg_class", "oid >= 16384"),
    // System columns (attnum < 0) come and go with their table's `pg_class` row.
    ("pg_attribute", "attrelid >= 16384 AND attnum > 0"),
    ("pg_attrdef", "oid >= 16384"),
    ("pg_constraint", "oid >= 16384"),
    ("pg_index", "indexrelid >= 16384"),
    ("pg_inherits", "inhrelid >= 16384"),
    ("pg_partitioned_table", "partrelid >= 16384"),
    ("pg_foreign_table", "ftrelid >= 16384"),
    ("pg_foreign_server", "oid >= 16384"),
    ("pg_rewrite", "oid >= 16384"),
    ("pg_trigger", "oid >= 16384"),
    ("pg_policy", "oid >= 16384"),
    ("pg_sequence", "seqrelid >= 16384"),
    ("pg_proc", "oid >= 16384"),
    ("pg_language", "oid >= 16384"),
    ("pg_operator", "oid >= 16384"),
    ("pg_opclass", "oid >= 16384"),
    ("pg_am", "oid >= 16384"),
];

/// The schema as a run saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    /// The fingerprint hash.
    pub hash: String,
    /// The fingerprint text, when the schema was read in full (not when the stamp showed it
    /// unchanged since a recorded fingerprint).
    pub text: Option<String>,
    /// The stamp taken just before, `None` where the engine has none.
    pub stamp: Option<String>,
}

impl Observed {
    /// The stamp of `self` is known and equal to `stamp`.
    #[must_use]
    pub fn same_stamp(&self, stamp: Option<&str>) -> bool {
        self.stamp.is_some() && self.stamp.as_deref() == stamp
    }
}

/// Reads the schema in full, unless `earlier` saw it at the very same stamp.
///
/// The stamp is taken before the read: a change made during the read then leaves a stamp
/// that differs from the recorded one next time, never one that matches a schema without it.
///
/// # Errors
/// When the schema cannot be read.
pub async fn observe<D: Database>(
    db: &mut D,
    earlier: Option<&Observed>,
) -> Result<Observed, DbError> {
    let stamp = read_or_none(db).await;
    if let Some(e) = earlier
        && e.same_stamp(stamp.as_deref())
    {
        return Ok(e.clone());
    }
    let s = super::snapshot(db).await?;
    Ok(Observed {
        hash: s.hash,
        text: Some(s.text),
        stamp,
    })
}

/// [`read`], with a failure taken as "no stamp": the schema is then read in full.
pub async fn read_or_none<D: Database>(db: &mut D) -> Option<String> {
    read(db)
        .await
        .inspect_err(|e| tracing::debug!("no catalog stamp: {e}"))
        .ok()
        .flatten()
}

/// The stamp of the connection's database, `None` where the engine has none.
///
/// # Errors
/// When the catalog query fails.
pub async fn read<D: Database>(db: &mut D) -> Result<Option<String>, DbError> {
    let dialect = db.dialect();
    let sql = match dialect {
        Dialect::Postgres => postgres_sql(),
        Dialect::Sqlite => SQLITE_SQL.to_owned(),
        Dialect::MySql => return Ok(None),
    };
    let rows = match db.fetch(&Stmt::raw(sql), &[ColKind::Text]).await {
        Ok(rows) => rows,
        Err(DbError::Query {
            message, source, ..
        }) => {
            return Err(DbError::Query {
                context: "cannot read the catalog stamp".into(),
                message,
                source,
            });
        }
        Err(e) => return Err(e),
    };
    let parts = rows
        .first()
        .and_then(|r| r.first())
        .and_then(|v| v.as_text())
        .unwrap_or_default();
    Ok(Some(wrap(dialect, parts)))
}

/// The stamp text: a readable version prefix, then a digest of what the query returned. The
/// fingerprint format is part of the digest: a schema recorded in another format must be read
/// again, not taken as unchanged.
fn wrap(dialect: Dialect, parts: &str) -> String {
    let digest = Sha256::digest(format!("fingerprint v{FORMAT_VERSION}\n{parts}").as_bytes());
    format!(
        "{}-stamp-v{VERSION}:{}",
        dialect.name(),
        crate::checksum::hex(&digest[..16])
    )
}

/// One query: the database's identity, then per catalog `rows:sum-of-hashes`. The database
/// oid and name keep stamps of two databases apart, also when history rows are copied.
fn postgres_sql() -> String {
    let mut parts = vec![
        "current_database()::text".to_owned(),
        "(SELECT oid::text FROM pg_catalog.pg_database WHERE datname = current_database())"
            .to_owned(),
    ];
    for (catalog, filter) in PG_CATALOGS {
        let filter = if filter.is_empty() {
            String::new()
        } else {
            format!(" WHERE {filter}")
        };
        // Older servers set `indisvalid` in place (same row version) in `CREATE INDEX
        // CONCURRENTLY`, and the fingerprint shows an invalid index.
        let row = if *catalog == "pg_index" {
            "xmin::text || indisvalid::text"
        } else {
            "xmin::text"
        };
        parts.push(format!(
            "(SELECT '{catalog} ' || count(*) || ':' || \
             coalesce(sum(hashtextextended({row}, 0)), 0) \
             FROM pg_catalog.{catalog}{filter})"
        ));
    }
    parts.push(
        "(SELECT 'roles ' || coalesce(string_agg(r.oid::text || '=' || r.rolname::text, ',' \
         ORDER BY r.oid), '') FROM pg_catalog.pg_roles r \
         WHERE r.oid IN (SELECT unnest(p.polroles) FROM pg_catalog.pg_policy p))"
            .to_owned(),
    );
    format!("SELECT concat_ws(E'\\n', {})", parts.join(", "))
}

/// `schema_version` changes with every schema change made through SQLite. The rest makes two
/// different files that happen to share a version unlikely to collide.
const SQLITE_SQL: &str = "SELECT (SELECT schema_version FROM pragma_schema_version) || ' ' || \
     count(*) || ' ' || total(rootpage) || ' ' || total(length(sql)) || ' ' || \
     (SELECT page_size FROM pragma_page_size) FROM main.sqlite_master";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stamp_is_short_versioned_and_depends_on_every_part() {
        let a = wrap(Dialect::Postgres, "db\n1\npg_class 10:5");
        let prefix = format!("postgresql-stamp-v{VERSION}:");
        assert!(a.starts_with(&prefix), "{a}");
        assert_eq!(a.len(), prefix.len() + 32);
        assert_eq!(a, wrap(Dialect::Postgres, "db\n1\npg_class 10:5"));
        assert_ne!(a, wrap(Dialect::Postgres, "db\n1\npg_class 10:6"));
        assert_ne!(
            wrap(Dialect::Sqlite, "1 2 3"),
            wrap(Dialect::Postgres, "1 2 3")
        );
    }

    #[test]
    fn the_postgres_query_covers_every_catalog_once() {
        let sql = postgres_sql();
        for (catalog, _) in PG_CATALOGS {
            assert_eq!(
                sql.matches(&format!("'{catalog} '")).count(),
                1,
                "{catalog}"
            );
            assert!(
                sql.contains(&format!("FROM pg_catalog.{catalog}")),
                "{catalog}"
            );
        }
    }
}
