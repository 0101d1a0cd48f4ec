//! Whose tracking table a database holds. When the configured tool's table is missing, a
//! database that holds another known tool's table is kept by that tool (or by a first deploy
//! with it that failed): reading it as empty would report a wrong state, so it is named
//! instead. One catalog query looks for every other format's table at once.

use super::Handler;
use crate::engine::{ColKind, Dialect, Stmt, Value};

/// Every format dbdeploy knows, as listed in `migration_tool` (`command` has no table).
pub const ALL: [&dyn Handler; 7] = [
    &super::prisma::Prisma,
    &super::sqlx::Sqlx,
    &super::dbmate::Dbmate,
    &super::drizzle::Drizzle,
    &super::golang_migrate::GolangMigrate,
    &super::flyway::Flyway,
    &super::plain::PlainSql,
];

/// Where a format keeps its tracking table on `dialect`: its schema when that is not the
/// connection's own (`""` then), and its name.
fn place(h: &dyn Handler, dialect: Dialect) -> (&'static str, &'static str) {
    (h.table_schema(dialect).unwrap_or(""), h.table())
}

/// The places of every other format's table than `configured`'s, each once (dbmate and
/// golang-migrate share `schema_migrations`).
fn other_places(configured: &dyn Handler, dialect: Dialect) -> Vec<(&'static str, &'static str)> {
    let own = place(configured, dialect);
    let mut places: Vec<(&str, &str)> = Vec::new();
    for h in ALL {
        let p = place(h, dialect);
        if p != own && !places.contains(&p) {
            places.push(p);
        }
    }
    places
}

/// The query listing which of the other formats' tables exist, as rows of (schema, or `""`
/// for the connection's own, table); read with [`found`].
#[must_use]
pub fn others_query(configured: &dyn Handler, dialect: Dialect) -> (Stmt, Vec<ColKind>) {
    let places = other_places(configured, dialect);
    let mut args: Vec<Value> = Vec::new();
    let mut bind = |v: &str| {
        args.push(Value::Text(v.to_owned()));
        dialect.placeholder(args.len())
    };
    let own: Vec<String> = places
        .iter()
        .filter(|(s, _)| s.is_empty())
        .map(|(_, t)| bind(t))
        .collect();
    let own = own.join(", ");
    let sql = match dialect {
        // From the catalogs without a privilege test: another tool's table counts whoever may
        // read it.
        Dialect::Postgres => {
            let mut places_sql = vec![format!(
                "(n.nspname = current_schema() AND c.relname::text IN ({own}))"
            )];
            for (schema, table) in places.iter().filter(|(s, _)| !s.is_empty()) {
                places_sql.push(format!(
                    "(n.nspname = {} AND c.relname::text = {})",
                    bind(schema),
                    bind(table)
                ));
            }
            format!(
                "SELECT CASE WHEN n.nspname = current_schema() THEN '' ELSE n.nspname::text END, \
                 c.relname::text FROM pg_catalog.pg_class c \
                 JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
                 WHERE c.relkind IN ('r', 'p') AND ({}) ORDER BY 2",
                places_sql.join(" OR ")
            )
        }
        Dialect::MySql => format!(
            "SELECT '', CAST(table_name AS CHAR) FROM information_schema.tables \
             WHERE table_schema = DATABASE() AND table_type = 'BASE TABLE' \
             AND table_name IN ({own}) ORDER BY 2"
        ),
        Dialect::Sqlite => format!(
            "SELECT '', name FROM sqlite_master WHERE type = 'table' AND name IN ({own}) ORDER BY 2"
        ),
    };
    (Stmt::new(sql, args), vec![ColKind::Text, ColKind::Text])
}

/// A table of another format found by [`others_query`].
pub struct Found {
    /// The formats whose table has this place (two for `schema_migrations`).
    pub candidates: Vec<&'static dyn Handler>,
    /// The table as written in SQL for `dialect`, schema-qualified when it has its own schema.
    pub sql_name: String,
    /// The table as shown to people.
    pub shown: String,
}

/// The tables the rows of [`others_query`] name, with the formats that may own each.
#[must_use]
pub fn found(configured: &dyn Handler, dialect: Dialect, rows: &[Vec<Value>]) -> Vec<Found> {
    let own = place(configured, dialect);
    rows.iter()
        .filter_map(|row| {
            let schema = row.first().and_then(Value::as_text).unwrap_or("");
            let table = row.get(1).and_then(Value::as_text)?;
            let candidates: Vec<&'static dyn Handler> = ALL
                .into_iter()
                .filter(|h| {
                    let (s, t) = place(*h, dialect);
                    (s, t) != own && s == schema && t.eq_ignore_ascii_case(table)
                })
                .collect();
            if candidates.is_empty() {
                return None;
            }
            let (sql_name, shown) = if schema.is_empty() {
                (dialect.quote_ident(table), table.to_owned())
            } else {
                (
                    format!(
                        "{}.{}",
                        dialect.quote_ident(schema),
                        dialect.quote_ident(table)
                    ),
                    format!("{schema}.{table}"),
                )
            };
            Some(Found {
                candidates,
                sql_name,
                shown,
            })
        })
        .collect()
}

/// Of the formats that share a table's name, the one whose table has these columns
/// (lowercase), as each format's [`Handler::check_table`] tells.
#[must_use]
pub fn owner(
    candidates: &[&'static dyn Handler],
    columns: &[String],
) -> Option<&'static dyn Handler> {
    candidates
        .iter()
        .copied()
        .find(|h| h.check_table(columns).is_ok())
}

/// The statement that counts a found table's rows, for saying whether it records anything.
#[must_use]
pub fn count_rows(found: &Found) -> (Stmt, Vec<ColKind>) {
    (
        Stmt::raw(format!("SELECT COUNT(*) FROM {}", found.sql_name)),
        vec![ColKind::Int],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handler::{dbmate, drizzle, golang_migrate, prisma, sqlx};

    #[test]
    fn the_query_looks_for_every_other_table_once() {
        let (stmt, _) = others_query(&dbmate::Dbmate, Dialect::Sqlite);
        let names: Vec<&str> = stmt.args.iter().filter_map(Value::as_text).collect();
        assert_eq!(
            names,
            [
                "_prisma_migrations",
                "_sqlx_migrations",
                "__drizzle_migrations",
                "flyway_schema_history",
                "_dbdeploy_migrations"
            ]
        );
        // On PostgreSQL drizzle's table is looked for in its own schema.
        let (stmt, _) = others_query(&prisma::Prisma, Dialect::Postgres);
        assert!(
            stmt.sql.contains("n.nspname = $5 AND c.relname::text = $6"),
            "{}",
            stmt.sql
        );
        let names: Vec<&str> = stmt.args.iter().filter_map(Value::as_text).collect();
        assert_eq!(
            names,
            [
                "_sqlx_migrations",
                "schema_migrations",
                "flyway_schema_history",
                "_dbdeploy_migrations",
                "drizzle",
                "__drizzle_migrations"
            ]
        );
    }

    #[test]
    fn a_shared_table_name_is_told_apart_by_its_columns() {
        let rows = vec![vec![
            Value::Text(String::new()),
            Value::Text("schema_migrations".into()),
        ]];
        let tables = found(&sqlx::Sqlx, Dialect::Sqlite, &rows);
        assert_eq!(tables.len(), 1);
        let c = &tables[0].candidates;
        assert_eq!(c.len(), 2);
        let cols = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            owner(c, &cols(&["version", "dirty"])).map(|h| h.name()),
            Some(golang_migrate::GolangMigrate.name())
        );
        assert_eq!(
            owner(c, &cols(&["version"])).map(|h| h.name()),
            Some(dbmate::Dbmate.name())
        );
        assert_eq!(owner(c, &cols(&["id", "name"])).map(|h| h.name()), None);
        // drizzle's schema-qualified table.
        let rows = vec![vec![
            Value::Text("drizzle".into()),
            Value::Text("__drizzle_migrations".into()),
        ]];
        let tables = found(&prisma::Prisma, Dialect::Postgres, &rows);
        let names: Vec<&str> = tables[0].candidates.iter().map(|h| h.name()).collect();
        assert_eq!(names, [drizzle::Drizzle.name()]);
        assert_eq!(tables[0].sql_name, "\"drizzle\".\"__drizzle_migrations\"");
        assert_eq!(tables[0].shown, "drizzle.__drizzle_migrations");
    }
}
