//! MySQL and MariaDB schema introspection from `information_schema`, limited to the connection's
//! database (`DATABASE()`): one query per kind of fact.
//!
//! Left out on purpose: `AUTO_INCREMENT` counters, row counts, sizes and other statistics, and
//! definers (who created a view or routine is not its shape, and differs after a restore by
//! another account).

use std::collections::BTreeMap;

use super::{Kind, Model, digest, ident, one_line, query};
use crate::engine::{Database, DbError};

/// Every column is cast to text: numeric catalog columns would not decode as text otherwise.
fn text(col: &str) -> String {
    format!("CAST({col} AS CHAR)")
}

fn select(cols: &[&str], rest: &str) -> String {
    let cols: Vec<String> = cols.iter().map(|c| text(c)).collect();
    format!("SELECT {} {rest}", cols.join(", "))
}

pub(super) async fn read<D: Database>(db: &mut D) -> Result<Model, DbError> {
    let mut m = Model::default();
    let database = query(db, "current database", "SELECT DATABASE()", 1)
        .await?
        .first()
        .map(|r| r.s(0).to_owned())
        .unwrap_or_default();
    tables(db, &mut m).await?;
    columns(db, &mut m).await?;
    indexes(db, &mut m).await?;
    foreign_keys(db, &mut m, &database).await?;
    checks(db, &mut m).await?;
    views(db, &mut m, &database).await?;
    triggers(db, &mut m).await?;
    routines(db, &mut m).await?;
    Ok(m)
}

async fn tables<D: Database>(db: &mut D, m: &mut Model) -> Result<(), DbError> {
    let sql = select(
        &[
            "table_name",
            "table_type",
            "engine",
            "table_collation",
            "create_options",
        ],
        "FROM information_schema.TABLES WHERE table_schema = DATABASE()",
    );
    for r in query(db, "tables", &sql, 5).await? {
        let (name, bare) = (ident(r.s(0)), r.s(0));
        let obj = match r.s(1) {
            "VIEW" => m.table(Kind::View, name, bare),
            "SEQUENCE" => m.table(Kind::Sequence, name, bare),
            "SYSTEM VERSIONED" => {
                let t = m.table(Kind::Table, name, bare);
                t.items.push("system_versioned".into());
                t
            }
            _ => m.table(Kind::Table, name, bare),
        };
        if let Some(engine) = r.opt(2) {
            obj.items.push(format!("engine {engine}"));
        }
        if let Some(coll) = r.opt(3) {
            obj.items.push(format!("collation {coll}"));
        }
        if let Some(opts) = r.opt(4) {
            obj.items.push(format!("options {opts}"));
        }
    }
    Ok(())
}

async fn columns<D: Database>(db: &mut D, m: &mut Model) -> Result<(), DbError> {
    let sql = select(
        &[
            "table_name",
            "ordinal_position",
            "column_name",
            "column_type",
            "is_nullable",
            "column_default",
            "extra",
            "collation_name",
            "generation_expression",
        ],
        "FROM information_schema.COLUMNS WHERE table_schema = DATABASE()",
    );
    for r in query(db, "columns", &sql, 9).await? {
        // A view's columns follow from its definition.
        let Some(obj) = m.get(Kind::Table, &ident(r.s(0))) else {
            continue;
        };
        let mut line = format!("column {} {}", ident(r.s(2)), r.s(3));
        if let Some(coll) = r.opt(7) {
            line.push_str(&format!(" collate {coll}"));
        }
        if r.s(4) == "NO" {
            line.push_str(" not null");
        }
        if let Some(d) = r.opt(5) {
            line.push_str(&format!(" default {d}"));
        }
        if let Some(expr) = r.opt(8) {
            line.push_str(&format!(" as ({expr})"));
        }
        if let Some(extra) = r.opt(6) {
            line.push_str(&format!(" {}", extra.to_ascii_lowercase()));
        }
        obj.ordered.push((r.num(1), line));
    }
    Ok(())
}

async fn indexes<D: Database>(db: &mut D, m: &mut Model) -> Result<(), DbError> {
    let sql = select(
        &[
            "table_name",
            "index_name",
            "non_unique",
            "seq_in_index",
            "column_name",
            "sub_part",
            "collation",
            "index_type",
        ],
        "FROM information_schema.STATISTICS WHERE table_schema = DATABASE()",
    );
    struct Index {
        unique: bool,
        method: String,
        cols: Vec<(i64, String)>,
    }
    let mut found: BTreeMap<(String, String), Index> = BTreeMap::new();
    for r in query(db, "indexes", &sql, 8).await? {
        let entry = found
            .entry((r.s(0).to_owned(), r.s(1).to_owned()))
            .or_insert_with(|| Index {
                unique: r.s(2) == "0",
                method: r.s(7).to_ascii_lowercase(),
                cols: Vec::new(),
            });
        let mut col = ident(r.s(4));
        if let Some(len) = r.opt(5) {
            col.push_str(&format!("({len})"));
        }
        if r.s(6) == "D" {
            col.push_str(" desc");
        }
        entry.cols.push((r.num(3), col));
    }
    for (
        (table, index),
        Index {
            unique,
            method,
            mut cols,
        },
    ) in found
    {
        let Some(obj) = m.relation(&ident(&table)) else {
            continue;
        };
        cols.sort();
        let cols: Vec<String> = cols.into_iter().map(|(_, c)| c).collect();
        let cols = cols.join(", ");
        if index == "PRIMARY" {
            obj.items.push(format!("primary_key ({cols})"));
        } else {
            let unique = if unique { "unique " } else { "" };
            obj.items.push(format!(
                "index {} {unique}{} ({cols})",
                ident(&index),
                method
            ));
        }
    }
    Ok(())
}

async fn foreign_keys<D: Database>(
    db: &mut D,
    m: &mut Model,
    database: &str,
) -> Result<(), DbError> {
    let sql = select(
        &[
            "k.table_name",
            "k.constraint_name",
            "k.ordinal_position",
            "k.column_name",
            "k.referenced_table_schema",
            "k.referenced_table_name",
            "k.referenced_column_name",
            "r.update_rule",
            "r.delete_rule",
        ],
        "FROM information_schema.KEY_COLUMN_USAGE k \
         JOIN information_schema.REFERENTIAL_CONSTRAINTS r \
           ON r.constraint_schema = k.constraint_schema \
           AND r.constraint_name = k.constraint_name AND r.table_name = k.table_name \
         WHERE k.table_schema = DATABASE() AND k.referenced_table_name IS NOT NULL",
    );
    struct Fk {
        cols: Vec<(i64, String, String)>,
        target: String,
        update: String,
        delete: String,
    }
    let mut found: BTreeMap<(String, String), Fk> = BTreeMap::new();
    for r in query(db, "foreign keys", &sql, 9).await? {
        let target = if r.s(4) == database {
            ident(r.s(5))
        } else {
            format!("{}.{}", ident(r.s(4)), ident(r.s(5)))
        };
        found
            .entry((r.s(0).to_owned(), r.s(1).to_owned()))
            .or_insert_with(|| Fk {
                cols: Vec::new(),
                target,
                update: r.s(7).to_owned(),
                delete: r.s(8).to_owned(),
            })
            .cols
            .push((r.num(2), ident(r.s(3)), ident(r.s(6))));
    }
    for ((table, name), mut fk) in found {
        let Some(obj) = m.relation(&ident(&table)) else {
            continue;
        };
        fk.cols.sort();
        let from: Vec<&str> = fk.cols.iter().map(|c| c.1.as_str()).collect();
        let to: Vec<&str> = fk.cols.iter().map(|c| c.2.as_str()).collect();
        obj.items.push(format!(
            "constraint {} foreign_key ({}) references {} ({}) on update {} on delete {}",
            ident(&name),
            from.join(", "),
            fk.target,
            to.join(", "),
            fk.update,
            fk.delete
        ));
    }
    Ok(())
}

async fn checks<D: Database>(db: &mut D, m: &mut Model) -> Result<(), DbError> {
    // MariaDB names checks per table and lists the table; MySQL names them per schema and
    // lists the table only in TABLE_CONSTRAINTS.
    let mariadb = select(
        &["table_name", "constraint_name", "check_clause"],
        "FROM information_schema.CHECK_CONSTRAINTS WHERE constraint_schema = DATABASE()",
    );
    let rows = match query(db, "check constraints", &mariadb, 3).await {
        Ok(rows) => rows,
        Err(_) => {
            let mysql = select(
                &["tc.table_name", "tc.constraint_name", "cc.check_clause"],
                "FROM information_schema.TABLE_CONSTRAINTS tc \
                 JOIN information_schema.CHECK_CONSTRAINTS cc \
                   ON cc.constraint_schema = tc.constraint_schema \
                   AND cc.constraint_name = tc.constraint_name \
                 WHERE tc.table_schema = DATABASE() AND tc.constraint_type = 'CHECK'",
            );
            query(db, "check constraints", &mysql, 3).await?
        }
    };
    for r in rows {
        if let Some(obj) = m.relation(&ident(r.s(0))) {
            obj.items
                .push(format!("constraint {} check ({})", ident(r.s(1)), r.s(2)));
        }
    }
    Ok(())
}

async fn views<D: Database>(db: &mut D, m: &mut Model, database: &str) -> Result<(), DbError> {
    let sql = select(
        &[
            "table_name",
            "view_definition",
            "check_option",
            "security_type",
        ],
        "FROM information_schema.VIEWS WHERE table_schema = DATABASE()",
    );
    // The server qualifies every name with the database's; without it the text of two copies
    // of one schema (a restore under another name) compares equal.
    let own = format!("`{}`.", database.replace('`', "``"));
    for r in query(db, "views", &sql, 4).await? {
        let Some(obj) = m.get(Kind::View, &ident(r.s(0))) else {
            continue;
        };
        obj.items.push(format!(
            "definition {}",
            one_line(&r.s(1).replace(&own, ""))
        ));
        if let Some(check) = r.opt(2).filter(|c| *c != "NONE") {
            obj.items.push(format!("check_option {check}"));
        }
        if let Some(security) = r.opt(3) {
            obj.items.push(format!("security {security}"));
        }
    }
    Ok(())
}

async fn triggers<D: Database>(db: &mut D, m: &mut Model) -> Result<(), DbError> {
    let sql = select(
        &[
            "event_object_table",
            "trigger_name",
            "action_timing",
            "event_manipulation",
            "action_order",
            "action_statement",
        ],
        "FROM information_schema.TRIGGERS WHERE trigger_schema = DATABASE()",
    );
    for r in query(db, "triggers", &sql, 6).await? {
        let Some(obj) = m.relation(&ident(r.s(0))) else {
            continue;
        };
        obj.items.push(format!(
            "trigger {} {} {} order {} {}",
            ident(r.s(1)),
            r.s(2),
            r.s(3),
            r.s(4),
            one_line(r.s(5))
        ));
    }
    Ok(())
}

async fn routines<D: Database>(db: &mut D, m: &mut Model) -> Result<(), DbError> {
    let sql = select(
        &[
            "routine_name",
            "routine_type",
            "dtd_identifier",
            "routine_definition",
            "is_deterministic",
            "sql_data_access",
            "security_type",
        ],
        "FROM information_schema.ROUTINES WHERE routine_schema = DATABASE()",
    );
    for r in query(db, "routines", &sql, 7).await? {
        let kind = if r.s(1) == "PROCEDURE" {
            Kind::Procedure
        } else {
            Kind::Function
        };
        let obj = m.object(kind, ident(r.s(0)));
        if let Some(ret) = r.opt(2) {
            obj.items.push(format!("returns {ret}"));
        }
        let deterministic = if r.s(4) == "YES" {
            "deterministic"
        } else {
            "not deterministic"
        };
        obj.items.push(format!(
            "characteristics {deterministic} {} security {}",
            r.s(5).to_ascii_lowercase(),
            r.s(6).to_ascii_lowercase()
        ));
        if let Some(body) = r.opt(3) {
            obj.items.push(format!("definition {}", digest(body)));
        }
    }
    let sql = select(
        &[
            "specific_name",
            "routine_type",
            "ordinal_position",
            "parameter_mode",
            "parameter_name",
            "dtd_identifier",
        ],
        "FROM information_schema.PARAMETERS WHERE specific_schema = DATABASE() \
         AND ordinal_position > 0",
    );
    for r in query(db, "routine parameters", &sql, 6).await? {
        let kind = if r.s(1) == "PROCEDURE" {
            Kind::Procedure
        } else {
            Kind::Function
        };
        let Some(obj) = m.get(kind, &ident(r.s(0))) else {
            continue;
        };
        let mode = r.opt(3).map(|mo| format!("{mo} ")).unwrap_or_default();
        obj.ordered.push((
            r.num(2),
            format!("parameter {} {mode}{}", ident(r.s(4)), r.s(5)),
        ));
    }
    Ok(())
}
