//! `ALTER TABLE`, one finding per clause: what each clause locks, whether it rewrites or scans
//! the table, and whether it can fail on existing rows, for each engine:
//!
//! - PostgreSQL: which clauses take `ACCESS EXCLUSIVE` for a rewrite or a full scan (volatile
//!   defaults, serial and identity columns, type changes that are not binary-coercible,
//!   `SET NOT NULL` without a validated check, constraints without `NOT VALID`, unique and
//!   primary keys built under the lock).
//! - MySQL/MariaDB: online DDL, i.e. whether the server runs the clause `INSTANT`, `INPLACE`
//!   (with or without a rebuild) or `COPY` (writes blocked), by product and version.
//! - SQLite: what `ALTER TABLE` refuses, and what a table rebuild (see `rebuild`) loses.

//!
//! Here: the walk over the clauses and the rules for each kind of clause; added and altered
//! columns in `column`, constraints in `constraint`, MySQL's online-DDL algorithms in
//! `online`, and SQLite in `sqlite`.

mod column;
mod constraint;
mod online;
mod sqlite;

use sqlparser::ast::{
    AlterTable, AlterTableAlgorithm, AlterTableOperation, Ident, RenameTableNameKind,
    TableConstraint,
};

use super::context::{Ctx, Hit, Table};
use super::facts::Work;
use super::finding::{Blocks, Level};
use super::rules;
use crate::engine::Dialect;
use column::{alter_column, modify_column, new_column, volatile};
use constraint::{add_constraint, foreign_key, unique};
use online::{Online, column_online, emit_mysql};
use sqlite::sqlite_clause;
pub(crate) use sqlite::table_rebuild;

const NOT_NULL_STEPS: &str = "add the column nullable (or with a constant DEFAULT), backfill it in batches, then add CHECK (col IS NOT NULL) NOT VALID, VALIDATE CONSTRAINT, and SET NOT NULL";

/// Runs the rules on each clause of an `ALTER TABLE` (0-based `index` in the script).
pub(crate) fn alter_table(ctx: &mut Ctx<'_>, alter: &AlterTable, index: usize) {
    let table = ctx.table(&alter.name);
    let requested = alter.operations.iter().find_map(|op| match op {
        AlterTableOperation::Algorithm { algorithm, .. } => Some(*algorithm),
        _ => None,
    });
    let drops_primary_key = alter
        .operations
        .iter()
        .any(|op| matches!(op, AlterTableOperation::DropPrimaryKey { .. }));
    let adds_primary_key = alter.operations.iter().any(|op| {
        matches!(
            op,
            AlterTableOperation::AddConstraint {
                constraint: TableConstraint::PrimaryKey(_),
                ..
            }
        )
    });
    for op in &alter.operations {
        if let AlterTableOperation::RenameTable { table_name } = op {
            let (RenameTableNameKind::As(to) | RenameTableNameKind::To(to)) = table_name;
            if ctx.rebuilds.steps.contains(&index) {
                continue;
            }
            if table.is_new() {
                let key = ctx.table(to).key;
                ctx.state.created.insert(key);
                continue;
            }
            let line = Hit::new("", Level::Low, "").at(to).line;
            rules::renaming_table(ctx, &table, &to.to_string(), line);
            continue;
        }
        if table.is_new() {
            track_new_table(ctx, &table, op);
            continue;
        }
        let clause = Clause {
            table: &table,
            requested,
            pk_swap: drops_primary_key && adds_primary_key,
        };
        match ctx.dialect {
            Dialect::Sqlite => sqlite_clause(ctx, &clause, op),
            Dialect::Postgres | Dialect::MySql => clause_rules(ctx, &clause, op),
        }
    }
}

pub(super) struct Clause<'t, 'a> {
    table: &'t Table<'a>,
    /// MySQL `ALGORITHM=` given in the statement.
    requested: Option<AlterTableAlgorithm>,
    /// MySQL: `DROP PRIMARY KEY, ADD PRIMARY KEY (...)` in one statement (in place).
    pk_swap: bool,
}

/// Columns and checks added to a table the script created: nothing to lock or scan, but later
/// statements need them.
fn track_new_table(ctx: &mut Ctx<'_>, table: &Table<'_>, op: &AlterTableOperation) {
    if let AlterTableOperation::AddColumn { column_def, .. } = op {
        ctx.state
            .columns
            .entry(table.key.clone())
            .or_default()
            .push((
                column_def.name.value.clone(),
                column_def.data_type.to_string(),
            ));
    }
}

/// PostgreSQL and MySQL/MariaDB clause rules.
#[allow(
    clippy::too_many_lines,
    reason = "one arm per clause kind reads best together"
)]
fn clause_rules(ctx: &mut Ctx<'_>, clause: &Clause<'_, '_>, op: &AlterTableOperation) {
    let table = clause.table;
    let my = ctx.dialect == Dialect::MySql;
    let size = table.at.describe();
    let name = &table.name;
    let exclusive = |hit: Hit, work: Work| {
        hit.on(table, work)
            .lock("ACCESS EXCLUSIVE", Blocks::ReadsAndWrites)
    };
    match op {
        AlterTableOperation::AddColumn {
            column_def,
            column_position,
            ..
        } => {
            let col = new_column(column_def);
            let cname = &column_def.name.value;
            if my {
                let (mut online, how) = column_online(ctx, false, column_position.is_some());
                if col.auto_increment {
                    online = Online {
                        dml: false,
                        ..Online::REBUILD
                    };
                } else if col.stored {
                    online = Online::COPY;
                } else if col.unique {
                    online = Online::REBUILD;
                }
                let (code, level, message, suggestion) = if col.not_null
                    && col.default.is_none()
                    && !col.auto_increment
                {
                    (
                        "adding-required-field",
                        Level::Medium,
                        format!(
                            "adds NOT NULL column {cname} without a default to {name} ({size}): existing rows get the type's implicit default (0, ''), and inserts from the running application that omit it fail in strict mode"
                        ),
                        NOT_NULL_STEPS.to_owned(),
                    )
                } else {
                    let level = if online.rebuild {
                        table.level(Level::Low, Level::Low, Level::Medium)
                    } else {
                        Level::Low
                    };
                    let level = if online.dml {
                        level
                    } else {
                        table.level(Level::Low, Level::Medium, Level::High)
                    };
                    (
                        "adding-column",
                        level,
                        format!(
                            "adds column {cname} to {name} ({size}): {}",
                            if online == Online::INSTANT || online.dml {
                                how
                            } else {
                                "writes wait while the table is copied".to_owned()
                            }
                        ),
                        String::new(),
                    )
                };
                let hit = Hit::new(code, level, message)
                    .suggest(suggestion)
                    .at(column_def);
                emit_mysql(ctx, clause, online, hit);
                return;
            }
            if col.serial || col.identity || col.stored {
                let (code, what) = if col.stored {
                    ("adding-stored-generated-field", "a stored generated column")
                } else {
                    ("adding-serial-field", "a serial or identity column")
                };
                let hit = Hit::new(
                    code,
                    table.level(Level::Low, Level::Medium, Level::High),
                    format!("adds {what} {cname} to {name} ({size}): every row is written with its value, rewriting the table under ACCESS EXCLUSIVE"),
                )
                .suggest("add a nullable column without a default, fill it in batches (from a sequence for ids), then attach the default or identity and SET NOT NULL via a validated CHECK")
                .at(column_def);
                let mut hit = exclusive(hit, Work::Rewrite);
                hit.rewrites = true;
                ctx.emit(hit);
            } else if let Some(default) = col.default
                && let Some(func) = volatile(default).or_else(|| {
                    (!ctx.pg_at_least(11)).then(|| "any default before PostgreSQL 11".to_owned())
                })
            {
                let hit = Hit::new(
                    "adding-field-with-default",
                    table.level(Level::Low, Level::Medium, Level::High),
                    format!("adds column {cname} to {name} ({size}) with a default evaluated per row ({func}): the table is rewritten under ACCESS EXCLUSIVE"),
                )
                .suggest("add the column without a default, SET DEFAULT afterwards (it applies to new rows), and backfill existing rows in batches")
                .at(column_def);
                ctx.emit(exclusive(hit, Work::Rewrite));
            } else if col.not_null && col.default.is_none() {
                let rows = table.facts().and_then(|f| f.rows.count());
                let (level, outcome) = match rows {
                    Some(0) => (Level::Low, "the table is empty, so it succeeds".to_owned()),
                    Some(_) => (
                        Level::High,
                        "it fails because existing rows would hold NULL".to_owned(),
                    ),
                    None => (
                        Level::Medium,
                        "it fails if the table has any row".to_owned(),
                    ),
                };
                let hit = Hit::new(
                    "adding-required-field",
                    level,
                    format!("adds NOT NULL column {cname} without a default to {name} ({size}): {outcome}"),
                )
                .suggest(NOT_NULL_STEPS)
                .at(column_def);
                ctx.emit(exclusive(hit, Work::Metadata));
            } else {
                let hit = Hit::new(
                    "adding-column",
                    Level::Low,
                    format!(
                        "adds {} column {cname} to {name}: a catalog change, no rewrite",
                        if col.not_null { "NOT NULL" } else { "nullable" }
                    ),
                )
                .at(column_def);
                ctx.emit(exclusive(hit, Work::Metadata));
            }
            if let Some(referenced) = &col.references {
                foreign_key(ctx, clause, referenced, column_def);
            }
            if col.unique {
                unique(
                    ctx,
                    clause,
                    "adding-unique-constraint",
                    "a unique constraint",
                    column_def,
                );
            }
        }
        AlterTableOperation::DropColumn { column_names, .. } => {
            for column in column_names {
                let hit = Hit::new(
                    "drop-column",
                    Level::High,
                    format!("drops column {} of {name} ({size}) and its data", column.value),
                )
                .suggest("stop reading and writing the column in the application and deploy that first; back the data up if it may be needed, then drop it in a later migration")
                .at_ident(column);
                if my {
                    let (online, _) = column_online(ctx, true, false);
                    emit_mysql(ctx, clause, online, hit);
                } else {
                    ctx.emit(exclusive(hit, Work::Metadata));
                }
            }
        }
        AlterTableOperation::AlterColumn { column_name, op } => {
            alter_column(ctx, clause, column_name, op);
        }
        AlterTableOperation::ModifyColumn {
            col_name,
            data_type,
            options,
            ..
        } => modify_column(ctx, clause, col_name, col_name, data_type, options),
        AlterTableOperation::ChangeColumn {
            old_name,
            new_name,
            data_type,
            options,
            ..
        } => modify_column(ctx, clause, old_name, new_name, data_type, options),
        AlterTableOperation::AddConstraint {
            constraint,
            not_valid,
        } => add_constraint(ctx, clause, constraint, *not_valid),
        AlterTableOperation::DropConstraint { name: c, .. } => {
            let pkey = c.value.to_lowercase().ends_with("_pkey");
            let hit = if pkey {
                Hit::new(
                    "dropping-primary-key",
                    Level::Medium,
                    format!("drops the primary key {} of {name}: rows are no longer guaranteed unique, and replication or ORMs that need a key break", c.value),
                )
            } else {
                Hit::new(
                    "drop-constraint",
                    Level::Low,
                    format!("drops constraint {} of {name}: the rule it enforced is no longer checked", c.value),
                )
            }
            .at_ident(c);
            if my {
                emit_mysql(ctx, clause, Online::METADATA, hit);
            } else {
                ctx.emit(exclusive(hit, Work::Metadata));
            }
        }
        AlterTableOperation::DropPrimaryKey { .. } => {
            let online = if clause.pk_swap {
                Online::REBUILD
            } else {
                Online::COPY
            };
            let hit = Hit::new(
                "dropping-primary-key",
                if clause.pk_swap {
                    Level::Medium
                } else {
                    table.level(Level::Medium, Level::High, Level::High)
                },
                format!("drops the primary key of {name} ({size}): {}", if clause.pk_swap { "replaced in the same statement, the table is rebuilt in place" } else { "InnoDB copies the table to a hidden key while writes wait" }),
            )
            .suggest("replace the key in one statement (DROP PRIMARY KEY, ADD PRIMARY KEY (...)), which runs in place");
            emit_mysql(ctx, clause, online, hit);
        }
        AlterTableOperation::DropForeignKey { name: fk, .. } => {
            let hit = Hit::new(
                "drop-constraint",
                Level::Low,
                format!(
                    "drops foreign key {} of {name}: references are no longer checked",
                    fk.value
                ),
            )
            .at_ident(fk);
            emit_mysql(ctx, clause, Online::METADATA, hit);
        }
        AlterTableOperation::DropIndex { name: index } => {
            rules::drop_index(ctx, &index.value, Some(table), false);
        }
        AlterTableOperation::RenameColumn {
            old_column_name,
            new_column_name,
        } => renaming_column(ctx, clause, old_column_name, new_column_name),
        AlterTableOperation::ValidateConstraint { name: c } => {
            if let Some(pair) = ctx
                .state
                .not_null_checks
                .get(&c.value.to_lowercase())
                .cloned()
            {
                ctx.state.validated_not_null.insert(pair);
            }
            ctx.work(table, Work::Scan);
        }
        AlterTableOperation::SetLogged | AlterTableOperation::SetUnlogged => {
            let hit = Hit::new(
                "table-rewrite",
                table.level(Level::Low, Level::Medium, Level::High),
                format!("SET LOGGED/UNLOGGED rewrites {name} ({size}) under ACCESS EXCLUSIVE"),
            );
            ctx.emit(exclusive(hit, Work::Rewrite));
        }
        _ => {}
    }
}

pub(super) fn renaming_column(
    ctx: &mut Ctx<'_>,
    clause: &Clause<'_, '_>,
    old: &Ident,
    new: &Ident,
) {
    let name = &clause.table.name;
    let hit = Hit::new(
        "renaming-column",
        Level::Medium,
        format!(
            "renames column {} of {name} to {}: the running application's queries of {} fail until it is redeployed",
            old.value, new.value, old.value
        ),
    )
    .suggest("add the new column, write both, backfill, switch reads, then drop the old one in a later release")
    .at_ident(old);
    if ctx.dialect == Dialect::MySql {
        emit_mysql(ctx, clause, Online::METADATA, hit);
    } else {
        let (lock, blocks) = rules::exclusive(ctx.dialect);
        ctx.emit(hit.on(clause.table, Work::Metadata).lock(lock, blocks));
    }
}

/// The type a column has before this statement: from the script or the live catalog.
pub(super) fn old_column(
    ctx: &Ctx<'_>,
    table: &Table<'_>,
    column: &str,
) -> Option<(String, Option<bool>)> {
    if let Some(cols) = ctx.state.columns.get(&table.key)
        && let Some((_, ty)) = cols.iter().find(|(c, _)| c.eq_ignore_ascii_case(column))
    {
        return Some((ty.clone(), None));
    }
    let facts = table.facts()?;
    facts
        .columns
        .iter()
        .find(|(c, _)| c.eq_ignore_ascii_case(column))
        .map(|(_, c)| (c.data_type.clone(), Some(c.not_null)))
}
