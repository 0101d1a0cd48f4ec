//! SQLite: what its `ALTER TABLE` refuses, and what a table rebuild (see `rebuild`) loses.

use sqlparser::ast::AlterTableOperation;

use super::column::{called_functions, new_column};
use super::{Clause, renaming_column};
use crate::engine::Dialect;
use crate::lint::context::{Ctx, Hit};
use crate::lint::facts::Work;
use crate::lint::finding::{Blocks, Level};
use crate::lint::rebuild::Rebuild;

/// SQLite: `ALTER TABLE` can only add, drop and rename columns and rename the table.
pub(super) fn sqlite_clause(ctx: &mut Ctx<'_>, clause: &Clause<'_, '_>, op: &AlterTableOperation) {
    let table = clause.table;
    let (name, size) = (&table.name, table.at.describe());
    let lock = |hit: Hit, work: Work| {
        hit.on(table, work)
            .lock("database write lock", Blocks::Writes)
    };
    match op {
        AlterTableOperation::AddColumn { column_def, .. } => {
            let col = new_column(column_def);
            let cname = &column_def.name.value;
            let non_constant = col.default.is_some_and(|d| {
                !called_functions(d).is_empty()
                    || d.to_string().to_ascii_uppercase().starts_with("CURRENT_")
            });
            let refused = if col.not_null && col.default.is_none() {
                Some("a NOT NULL column needs a non-NULL default")
            } else if col.unique {
                Some("a UNIQUE or PRIMARY KEY column cannot be added")
            } else if non_constant {
                Some("a column's default must be constant")
            } else if col.stored {
                Some("a STORED generated column cannot be added")
            } else {
                None
            };
            let hit = match refused {
                Some(why) => Hit::new(
                    "adding-required-field",
                    Level::High,
                    format!("fails: SQLite refuses ALTER TABLE {name} ADD COLUMN {cname} ({why})"),
                )
                .suggest("add the column with a constant DEFAULT, or rebuild the table (create the new shape, copy the rows, drop, rename)"),
                None => Hit::new(
                    "adding-column",
                    Level::Low,
                    format!("adds column {cname} to {name}: a schema change only, no rewrite"),
                ),
            };
            ctx.emit(lock(hit.at(column_def), Work::Metadata));
        }
        AlterTableOperation::DropColumn { column_names, .. } => {
            for column in column_names {
                let hit = Hit::new(
                    "drop-column",
                    Level::High,
                    format!("drops column {} of {name} ({size}) and its data; SQLite rewrites the table", column.value),
                )
                .suggest("stop using the column in the application and deploy that first; back the data up if it may be needed")
                .at_ident(column);
                let mut hit = lock(hit, Work::Rewrite);
                hit.rewrites = true;
                ctx.emit(hit);
            }
        }
        AlterTableOperation::RenameColumn {
            old_column_name,
            new_column_name,
        } => renaming_column(ctx, clause, old_column_name, new_column_name),
        _ => {
            ctx.emit(
                Hit::new(
                    "sqlite-unsupported-alter",
                    Level::High,
                    format!("fails: SQLite's ALTER TABLE cannot do this to {name}"),
                )
                .suggest("rebuild the table: create the new shape, copy the rows with INSERT ... SELECT, drop the old table, rename the new one")
                .at(op),
            );
        }
    }
}

/// The `DROP TABLE` of a rebuild: rows were copied first, so only uncopied columns are lost.
pub(crate) fn table_rebuild(ctx: &mut Ctx<'_>, rebuild: &Rebuild) {
    let live = ctx.live_table_str(&rebuild.table);
    let size = live.at.describe();
    let name = &rebuild.table;
    let old_columns: Vec<String> = match live.facts() {
        Some(f) => f.columns.keys().cloned().collect(),
        None => ctx
            .state
            .columns
            .get(&live.key)
            .map(|c| c.iter().map(|(n, _)| n.clone()).collect())
            .unwrap_or_default(),
    };
    let locked = ctx.state.locked.contains(&live.key)
        || ctx.state.locked.contains(&rebuild.via.to_lowercase());
    let (level, lock, blocks, note) = match ctx.dialect {
        Dialect::Sqlite => (
            live.level(Level::Low, Level::Low, Level::High),
            "database write lock",
            Blocks::Writes,
            "writes wait while the rows are copied",
        ),
        _ if locked => (
            live.level(Level::Low, Level::Medium, Level::High),
            "ACCESS EXCLUSIVE (LOCK TABLE)",
            Blocks::ReadsAndWrites,
            "the table is locked first, so no write is lost",
        ),
        _ => (
            live.level(Level::Medium, Level::Medium, Level::High),
            "ACCESS SHARE during the copy",
            Blocks::Nothing,
            "rows written by the application between the copy and the drop are lost unless the table is locked first",
        ),
    };
    let mut hit = Hit::new(
        "table-rebuild",
        level,
        format!("rebuilds {name} ({size}) through {}: its rows are copied before the old table is dropped; {note}", rebuild.via),
    )
    .on(&live, Work::Rewrite)
    .lock(lock, blocks);
    hit.rewrites = true;
    if ctx.dialect != Dialect::Sqlite && !locked {
        hit = hit.suggest("LOCK TABLE the old table at the start of the transaction, or use ALTER TABLE where the engine supports the change");
    }
    ctx.emit(hit);
    if let Some(read) = &rebuild.read {
        for column in old_columns
            .iter()
            .filter(|c| !read.contains(&c.to_lowercase()))
        {
            ctx.emit(
                Hit::new(
                    "drop-column",
                    Level::High,
                    format!("the rebuild of {name} does not copy column {column}: its data is lost"),
                )
                .on(&live, Work::Metadata)
                .suggest("stop using the column in the application and deploy that first; back the data up if it may be needed"),
            );
        }
    }
}
