//! Added constraints: foreign keys, CHECKs, unique and primary keys, and MySQL's inline
//! indexes.

use sqlparser::ast::TableConstraint;

use super::{Clause, Online, emit_mysql};
use crate::engine::Dialect;
use crate::lint::context::{Ctx, Hit};
use crate::lint::facts::Work;
use crate::lint::finding::{Blocks, Level};

pub(super) fn foreign_key(
    ctx: &mut Ctx<'_>,
    clause: &Clause<'_, '_>,
    referenced: &str,
    at: &impl sqlparser::ast::Spanned,
) {
    let table = clause.table;
    let (name, size) = (&table.name, table.at.describe());
    if ctx.dialect == Dialect::MySql {
        let off = ctx.state.foreign_key_checks_off;
        let online = if off { Online::METADATA } else { Online::COPY };
        let level = if off {
            Level::Low
        } else {
            table.level(Level::Low, Level::Medium, Level::High)
        };
        let hit = Hit::new(
            "adding-foreign-key-constraint",
            level,
            if off {
                format!("adds a foreign key from {name} to {referenced} in place (foreign_key_checks = 0: existing rows are not checked)")
            } else {
                format!("adds a foreign key from {name} ({size}) to {referenced}: with foreign_key_checks on, the table is copied (ALGORITHM=COPY) while writes wait")
            },
        )
        .suggest("SET foreign_key_checks = 0 for the ALTER (it then runs in place), after checking the existing rows with a query")
        .at(at);
        emit_mysql(ctx, clause, online, hit);
        return;
    }
    let hit = Hit::new(
        "adding-foreign-key-constraint",
        table.level(Level::Low, Level::Medium, Level::Medium),
        format!("adds a foreign key from {name} ({size}) to {referenced} and checks every row while writes to both tables wait (SHARE ROW EXCLUSIVE)"),
    )
    .on(table, Work::Scan)
    .lock("SHARE ROW EXCLUSIVE", Blocks::Writes)
    .suggest("ADD CONSTRAINT ... FOREIGN KEY ... NOT VALID, then ALTER TABLE ... VALIDATE CONSTRAINT in a separate statement (it does not block writes)")
    .at(at);
    ctx.emit(hit);
}

pub(super) fn unique(
    ctx: &mut Ctx<'_>,
    clause: &Clause<'_, '_>,
    code: &'static str,
    what: &str,
    at: &impl sqlparser::ast::Spanned,
) {
    let table = clause.table;
    let (name, size) = (&table.name, table.at.describe());
    if ctx.dialect == Dialect::MySql {
        let online = if code == "adding-primary-key" {
            Online::REBUILD
        } else {
            Online::METADATA
        };
        let hit = Hit::new(
            code,
            if code == "adding-primary-key" {
                table.level(Level::Medium, Level::Medium, Level::High)
            } else {
                Level::Low
            },
            format!("adds {what} to {name} ({size}) online (writes go on); it fails if existing rows hold duplicates"),
        )
        .at(at);
        let online = Online {
            rebuild: online.rebuild,
            ..online
        };
        let mut hit = hit;
        hit.scans = true;
        emit_mysql(ctx, clause, online, hit);
        return;
    }
    let hit = Hit::new(
        code,
        table.level(Level::Medium, Level::Medium, Level::High),
        format!("adds {what} to {name} ({size}): its index is built under ACCESS EXCLUSIVE (reads and writes wait), and it fails if existing rows hold duplicates"),
    )
    .on(table, Work::IndexBuild)
    .lock("ACCESS EXCLUSIVE", Blocks::ReadsAndWrites)
    .suggest(format!("CREATE UNIQUE INDEX CONCURRENTLY first, then ALTER TABLE {name} ADD CONSTRAINT ... {} USING INDEX", if code == "adding-primary-key" { "PRIMARY KEY" } else { "UNIQUE" }))
    .at(at);
    ctx.emit(hit);
}

pub(super) fn add_constraint(
    ctx: &mut Ctx<'_>,
    clause: &Clause<'_, '_>,
    constraint: &TableConstraint,
    not_valid: bool,
) {
    let table = clause.table;
    let (name, size) = (&table.name, table.at.describe());
    match constraint {
        TableConstraint::ForeignKey(fk) if !not_valid => {
            foreign_key(ctx, clause, &fk.foreign_table.to_string(), constraint);
        }
        TableConstraint::Check(check) => {
            let expr = check.expr.to_string();
            let not_null_of = expr
                .strip_suffix(" IS NOT NULL")
                .map(|c| c.trim_matches(['(', ')', '"', '`']).to_lowercase());
            if let Some(column) = &not_null_of {
                let pair = (table.key.clone(), column.clone());
                if not_valid {
                    if let Some(n) = &check.name {
                        ctx.state
                            .not_null_checks
                            .insert(n.value.to_lowercase(), pair);
                    }
                } else {
                    ctx.state.validated_not_null.insert(pair);
                }
            }
            if not_valid {
                return;
            }
            let hit = Hit::new(
                "adding-check-constraint",
                table.level(Level::Low, Level::Medium, Level::High),
                format!("adds CHECK ({expr}) to {name} ({size}): every row is checked while the table is locked, and it fails if a row breaks it"),
            )
            .at(constraint);
            if ctx.dialect == Dialect::MySql {
                emit_mysql(ctx, clause, Online::COPY, hit.suggest("check the existing rows with a query first; MySQL validates every row while copying the table"));
            } else {
                ctx.emit(
                    hit.on(table, Work::Scan)
                        .lock("ACCESS EXCLUSIVE", Blocks::ReadsAndWrites)
                        .suggest("ADD CONSTRAINT ... CHECK (...) NOT VALID, then VALIDATE CONSTRAINT in a separate statement (it does not block reads or writes)"),
                );
            }
        }
        TableConstraint::Unique(_) => {
            unique(
                ctx,
                clause,
                "adding-unique-constraint",
                "a unique constraint",
                constraint,
            );
        }
        TableConstraint::PrimaryKey(_) => {
            unique(
                ctx,
                clause,
                "adding-primary-key",
                "a primary key",
                constraint,
            );
        }
        TableConstraint::Exclude(_) => {
            unique(
                ctx,
                clause,
                "adding-unique-constraint",
                "an exclusion constraint",
                constraint,
            );
        }
        TableConstraint::Index(_) => {
            let hit = Hit::new(
                "create-index",
                Level::Low,
                format!("builds an index on {name} ({size}) online (in place, writes go on)"),
            )
            .at(constraint);
            let mut hit = hit;
            hit.scans = true;
            emit_mysql(ctx, clause, Online::METADATA, hit);
        }
        TableConstraint::FulltextOrSpatial(_) => {
            let hit = Hit::new(
                "create-index",
                table.level(Level::Low, Level::Medium, Level::Medium),
                format!("builds a FULLTEXT/SPATIAL index on {name} ({size}): writes wait until it is built"),
            )
            .at(constraint);
            emit_mysql(
                ctx,
                clause,
                Online {
                    dml: false,
                    ..Online::REBUILD
                },
                hit,
            );
        }
        _ => {}
    }
}
