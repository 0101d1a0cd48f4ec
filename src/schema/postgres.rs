//! PostgreSQL schema introspection from `pg_catalog`: one query per kind of fact across all user
//! schemas, so the cost grows with the number of kinds, not the number of tables.
//!
//! Definitions come from the server's own deparsers (`pg_get_indexdef`, `pg_get_constraintdef`,
//! `pg_get_viewdef`, `pg_get_expr`), which print the same text for the same object whatever
//! its OID or the SQL it was created with.

use super::{Kind, Model, digest, ident, one_line, qualified, query};
use crate::engine::{Database, DbError};

/// User schemas: not the system's. `pg_` names are reserved, which covers `pg_catalog`,
/// `pg_toast*` and the temporary schemas.
const USER_SCHEMA: &str = "n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%'";

/// Whether the object `oid` of catalog `catalog` belongs to an extension (which owns it; its
/// version, not the migrations, decides its shape).
fn not_in_extension(catalog: &str, oid: &str) -> String {
    format!(
        "NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = '{catalog}'::regclass \
         AND e.objid = {oid} AND e.deptype = 'e')"
    )
}

pub(super) async fn read<D: Database>(db: &mut D) -> Result<Model, DbError> {
    let mut m = Model::default();
    schemas(db, &mut m).await?;
    types(db, &mut m).await?;
    relations(db, &mut m).await?;
    columns(db, &mut m).await?;
    inheritance(db, &mut m).await?;
    constraints(db, &mut m).await?;
    indexes(db, &mut m).await?;
    triggers(db, &mut m).await?;
    policies(db, &mut m).await?;
    sequences(db, &mut m).await?;
    functions(db, &mut m).await?;
    Ok(m)
}

async fn schemas<D: Database>(db: &mut D, m: &mut Model) -> Result<(), DbError> {
    let sql = format!(
        "SELECT n.nspname::text FROM pg_namespace n WHERE {USER_SCHEMA} AND {}",
        not_in_extension("pg_namespace", "n.oid")
    );
    for r in query(db, "schemas", &sql, 1).await? {
        m.object(Kind::Schema, ident(r.s(0)));
    }
    // PL/pgSQL comes with every database.
    let sql = "SELECT e.extname::text, n.nspname::text FROM pg_extension e \
               JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname <> 'plpgsql'";
    for r in query(db, "extensions", sql, 2).await? {
        m.object(Kind::Extension, ident(r.s(0)))
            .items
            .push(format!("schema {}", ident(r.s(1))));
    }
    Ok(())
}

async fn types<D: Database>(db: &mut D, m: &mut Model) -> Result<(), DbError> {
    let not_ext = not_in_extension("pg_type", "t.oid");
    let sql = format!(
        "SELECT n.nspname::text, t.typname::text, \
         string_agg(quote_literal(e.enumlabel::text), ', ' ORDER BY e.enumsortorder) \
         FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace \
         JOIN pg_enum e ON e.enumtypid = t.oid \
         WHERE {USER_SCHEMA} AND {not_ext} GROUP BY n.nspname, t.typname"
    );
    for r in query(db, "enum types", &sql, 3).await? {
        m.object(Kind::Enum, qualified(r.s(0), r.s(1)))
            .items
            .push(format!("values {}", r.s(2)));
    }
    let sql = format!(
        "SELECT n.nspname::text, t.typname::text, format_type(t.typbasetype, t.typtypmod), \
         t.typnotnull::text, t.typdefault, \
         (SELECT co.collname::text FROM pg_collation co WHERE co.oid = t.typcollation \
          AND t.typcollation <> (SELECT b.typcollation FROM pg_type b WHERE b.oid = t.typbasetype)) \
         FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace \
         WHERE t.typtype = 'd' AND {USER_SCHEMA} AND {not_ext}"
    );
    for r in query(db, "domains", &sql, 6).await? {
        let mut def = format!("type {}", r.s(2));
        if let Some(coll) = r.opt(5) {
            def.push_str(&format!(" collate {}", ident(coll)));
        }
        if r.yes(3) {
            def.push_str(" not null");
        }
        if let Some(d) = r.opt(4) {
            def.push_str(&format!(" default {d}"));
        }
        m.object(Kind::Domain, qualified(r.s(0), r.s(1)))
            .items
            .push(def);
    }
    let sql = format!(
        "SELECT n.nspname::text, t.typname::text, co.conname::text, \
         pg_get_constraintdef(co.oid, true) \
         FROM pg_constraint co JOIN pg_type t ON t.oid = co.contypid \
         JOIN pg_namespace n ON n.oid = t.typnamespace \
         WHERE co.contype = 'c' AND {USER_SCHEMA}"
    );
    for r in query(db, "domain constraints", &sql, 4).await? {
        if let Some(d) = m.get(Kind::Domain, &qualified(r.s(0), r.s(1))) {
            d.items
                .push(format!("constraint {} {}", ident(r.s(2)), r.s(3)));
        }
    }
    Ok(())
}

async fn relations<D: Database>(db: &mut D, m: &mut Model) -> Result<(), DbError> {
    let sql = format!(
        "SELECT n.nspname::text, c.relname::text, c.relkind::text, c.relpersistence::text, \
         c.relrowsecurity::text, c.relforcerowsecurity::text, \
         CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END, \
         CASE WHEN c.relkind IN ('v', 'm') THEN pg_get_viewdef(c.oid, true) END, \
         CASE WHEN c.relkind = 'f' THEN (SELECT s.srvname::text FROM pg_foreign_table ft \
           JOIN pg_foreign_server s ON s.oid = ft.ftserver WHERE ft.ftrelid = c.oid) END, \
         array_to_string(c.reloptions, ', ') \
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'c') AND {USER_SCHEMA} AND {}",
        not_in_extension("pg_class", "c.oid")
    );
    for r in query(db, "tables and views", &sql, 10).await? {
        let kind = match r.s(2) {
            "v" => Kind::View,
            "m" => Kind::MatView,
            "f" => Kind::ForeignTable,
            "c" => Kind::Type,
            _ => Kind::Table,
        };
        let obj = m.table(kind, qualified(r.s(0), r.s(1)), r.s(1));
        match r.s(3) {
            "u" => obj.items.push("unlogged".into()),
            "t" => obj.items.push("temporary".into()),
            _ => {}
        }
        if r.yes(4) {
            obj.items.push("row_level_security enabled".into());
        }
        if r.yes(5) {
            obj.items.push("row_level_security forced".into());
        }
        if let Some(key) = r.opt(6) {
            obj.items.push(format!("partition_by {key}"));
        }
        if let Some(def) = r.opt(7) {
            obj.items.push(format!("definition {}", one_line(def)));
        }
        if let Some(server) = r.opt(8) {
            obj.items.push(format!("server {}", ident(server)));
        }
        if let Some(opts) = r.opt(9) {
            obj.items.push(format!("options {opts}"));
        }
    }
    Ok(())
}

async fn columns<D: Database>(db: &mut D, m: &mut Model) -> Result<(), DbError> {
    let sql = format!(
        "SELECT n.nspname::text, c.relname::text, a.attnum::text, a.attname::text, \
         format_type(a.atttypid, a.atttypmod), a.attnotnull::text, \
         pg_get_expr(d.adbin, d.adrelid), a.attidentity::text, a.attgenerated::text, \
         CASE WHEN a.attcollation <> t.typcollation THEN co.collname::text END \
         FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         JOIN pg_type t ON t.oid = a.atttypid \
         LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum \
         LEFT JOIN pg_collation co ON co.oid = a.attcollation \
         WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'f', 'c') \
         AND {USER_SCHEMA}"
    );
    for r in query(db, "columns", &sql, 10).await? {
        let Some(obj) = m.relation(&qualified(r.s(0), r.s(1))) else {
            continue;
        };
        let mut line = format!("column {} {}", ident(r.s(3)), r.s(4));
        if let Some(coll) = r.opt(9) {
            line.push_str(&format!(" collate {}", ident(coll)));
        }
        if r.yes(5) {
            line.push_str(" not null");
        }
        match (r.s(8), r.opt(6)) {
            ("s", Some(expr)) => line.push_str(&format!(" generated always as ({expr}) stored")),
            (_, Some(expr)) => line.push_str(&format!(" default {expr}")),
            _ => {}
        }
        match r.s(7) {
            "a" => line.push_str(" generated always as identity"),
            "d" => line.push_str(" generated by default as identity"),
            _ => {}
        }
        obj.ordered.push((r.num(2), line));
    }
    Ok(())
}

async fn inheritance<D: Database>(db: &mut D, m: &mut Model) -> Result<(), DbError> {
    let sql = format!(
        "SELECT n.nspname::text, c.relname::text, pn.nspname::text, p.relname::text, \
         pg_get_expr(c.relpartbound, c.oid) \
         FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         JOIN pg_class p ON p.oid = i.inhparent JOIN pg_namespace pn ON pn.oid = p.relnamespace \
         WHERE c.relkind IN ('r', 'p', 'f') AND {USER_SCHEMA}"
    );
    for r in query(db, "inheritance", &sql, 5).await? {
        let parent = qualified(r.s(2), r.s(3));
        let Some(obj) = m.relation(&qualified(r.s(0), r.s(1))) else {
            continue;
        };
        obj.items.push(match r.opt(4) {
            Some(bound) => format!("partition_of {parent} {bound}"),
            None => format!("inherits {parent}"),
        });
    }
    Ok(())
}

async fn constraints<D: Database>(db: &mut D, m: &mut Model) -> Result<(), DbError> {
    // NOT NULL constraints (contype 'n', PostgreSQL 18) are the columns' `not null`.
    let sql = format!(
        "SELECT n.nspname::text, c.relname::text, co.conname::text, \
         pg_get_constraintdef(co.oid, true) \
         FROM pg_constraint co JOIN pg_class c ON c.oid = co.conrelid \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE co.contype IN ('p', 'u', 'f', 'c', 'x') AND {USER_SCHEMA}"
    );
    for r in query(db, "constraints", &sql, 4).await? {
        if let Some(obj) = m.relation(&qualified(r.s(0), r.s(1))) {
            obj.items
                .push(format!("constraint {} {}", ident(r.s(2)), r.s(3)));
        }
    }
    Ok(())
}

async fn indexes<D: Database>(db: &mut D, m: &mut Model) -> Result<(), DbError> {
    // Indexes that implement a primary key, unique or exclusion constraint are that constraint.
    let sql = format!(
        "SELECT n.nspname::text, c.relname::text, i.relname::text, \
         pg_get_indexdef(x.indexrelid), x.indisunique::text, x.indisvalid::text \
         FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid \
         JOIN pg_class c ON c.oid = x.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE {USER_SCHEMA} AND NOT EXISTS (SELECT 1 FROM pg_constraint k \
           WHERE k.conindid = x.indexrelid AND k.conrelid = x.indrelid \
           AND k.contype IN ('p', 'u', 'x'))"
    );
    for r in query(db, "indexes", &sql, 6).await? {
        let Some(obj) = m.relation(&qualified(r.s(0), r.s(1))) else {
            continue;
        };
        let def = r.s(3);
        // `CREATE [UNIQUE] INDEX name ON table USING method (columns) ...`: keep from the method.
        let body = def.split_once(" USING ").map_or(def, |(_, rest)| rest);
        let unique = if r.yes(4) { "unique " } else { "" };
        let invalid = if r.yes(5) { "" } else { " invalid" };
        obj.items
            .push(format!("index {} {unique}{body}{invalid}", ident(r.s(2))));
    }
    Ok(())
}

async fn triggers<D: Database>(db: &mut D, m: &mut Model) -> Result<(), DbError> {
    let sql = format!(
        "SELECT n.nspname::text, c.relname::text, t.tgname::text, \
         pg_get_triggerdef(t.oid, true), t.tgenabled::text, quote_ident(t.tgname::text) \
         FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE NOT t.tgisinternal AND {USER_SCHEMA}"
    );
    for r in query(db, "triggers", &sql, 6).await? {
        let Some(obj) = m.relation(&qualified(r.s(0), r.s(1))) else {
            continue;
        };
        let def = r.s(3);
        let body = ["CREATE TRIGGER ", "CREATE CONSTRAINT TRIGGER "]
            .iter()
            .find_map(|p| def.strip_prefix(p))
            .and_then(|rest| rest.strip_prefix(r.s(5)))
            .map_or(def, str::trim_start);
        let disabled = if r.s(4) == "D" { " (disabled)" } else { "" };
        obj.items
            .push(format!("trigger {} {body}{disabled}", ident(r.s(2))));
    }
    Ok(())
}

async fn policies<D: Database>(db: &mut D, m: &mut Model) -> Result<(), DbError> {
    let sql = "SELECT schemaname::text, tablename::text, policyname::text, permissive, \
               cmd, array_to_string(roles, ', '), qual, with_check FROM pg_policies";
    for r in query(db, "row-level security policies", sql, 8).await? {
        let Some(obj) = m.relation(&qualified(r.s(0), r.s(1))) else {
            continue;
        };
        let mut line = format!(
            "policy {} {} for {} to {}",
            ident(r.s(2)),
            r.s(3).to_ascii_lowercase(),
            r.s(4),
            r.s(5)
        );
        if let Some(q) = r.opt(6) {
            line.push_str(&format!(" using ({q})"));
        }
        if let Some(c) = r.opt(7) {
            line.push_str(&format!(" with check ({c})"));
        }
        obj.items.push(line);
    }
    Ok(())
}

async fn sequences<D: Database>(db: &mut D, m: &mut Model) -> Result<(), DbError> {
    // Only the definition: the current value changes with every insert.
    let sql = format!(
        "SELECT n.nspname::text, c.relname::text, format_type(s.seqtypid, NULL), \
         s.seqstart::text, s.seqincrement::text, s.seqmin::text, s.seqmax::text, \
         s.seqcache::text, s.seqcycle::text, d.deptype::text, \
         tn.nspname::text, tc.relname::text, ta.attname::text \
         FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         LEFT JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid \
           AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i') \
         LEFT JOIN pg_class tc ON tc.oid = d.refobjid \
         LEFT JOIN pg_namespace tn ON tn.oid = tc.relnamespace \
         LEFT JOIN pg_attribute ta ON ta.attrelid = d.refobjid AND ta.attnum = d.refobjsubid \
         WHERE {USER_SCHEMA} AND {}",
        not_in_extension("pg_class", "c.oid")
    );
    for r in query(db, "sequences", &sql, 13).await? {
        let obj = m.object(Kind::Sequence, qualified(r.s(0), r.s(1)));
        let cycle = if r.yes(8) { "cycle" } else { "no cycle" };
        obj.items.push(format!(
            "options as {} start {} increment {} minvalue {} maxvalue {} cache {} {cycle}",
            r.s(2),
            r.s(3),
            r.s(4),
            r.s(5),
            r.s(6),
            r.s(7)
        ));
        if let (Some(schema), Some(table)) = (r.opt(10), r.opt(11)) {
            let owner = format!("{}.{}", qualified(schema, table), ident(r.s(12)));
            let how = if r.s(9) == "i" {
                "identity"
            } else {
                "owned_by"
            };
            obj.items.push(format!("{how} {owner}"));
            // A sequence that serves an excluded table goes with it.
            obj.table = Some(table.to_owned());
        }
    }
    Ok(())
}

async fn functions<D: Database>(db: &mut D, m: &mut Model) -> Result<(), DbError> {
    let sql = format!(
        "SELECT n.nspname::text, p.proname::text, pg_get_function_identity_arguments(p.oid), \
         p.prokind::text, pg_get_function_result(p.oid), \
         CASE WHEN p.prokind <> 'a' THEN pg_get_functiondef(p.oid) END \
         FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace \
         WHERE {USER_SCHEMA} AND {}",
        not_in_extension("pg_proc", "p.oid")
    );
    for r in query(db, "functions", &sql, 6).await? {
        let kind = match r.s(3) {
            "p" => Kind::Procedure,
            "a" => Kind::Aggregate,
            _ => Kind::Function,
        };
        let name = format!("{}({})", qualified(r.s(0), r.s(1)), r.s(2));
        let obj = m.object(kind, name);
        if let Some(ret) = r.opt(4) {
            obj.items.push(format!("returns {ret}"));
        }
        // Bodies can be long; a digest is enough to tell that one changed.
        if let Some(def) = r.opt(5) {
            obj.items.push(format!("definition {}", digest(def)));
        }
    }
    Ok(())
}
