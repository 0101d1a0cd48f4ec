//! Rules for whole statements, the same on every engine except for the lock they name:
//! new tables and indexes, drops, `TRUNCATE`, `UPDATE`/`DELETE` without `WHERE`,
//! `VACUUM FULL`, renames, and the bookkeeping later statements rely on (tables created,
//! tables locked, MySQL's `foreign_key_checks`). `ALTER TABLE` clauses are in `alter`.

use sqlparser::ast::{
    CreateIndex, CreateTable, FromTable, ObjectName, ObjectType, SetExpr, Statement, TableFactor,
    TableWithJoins,
};

use super::alter;
use super::context::{Ctx, Hit, Table};
use super::facts::Work;
use super::finding::{Blocks, Level};
use crate::engine::Dialect;

/// The lock a dialect takes for a statement that replaces or empties a whole table.
pub(crate) fn exclusive(dialect: Dialect) -> (&'static str, Blocks) {
    match dialect {
        Dialect::Postgres => ("ACCESS EXCLUSIVE", Blocks::ReadsAndWrites),
        Dialect::MySql => ("exclusive metadata lock", Blocks::ReadsAndWrites),
        Dialect::Sqlite => ("database write lock", Blocks::Writes),
    }
}

/// The lock a dialect takes while building an index without `CONCURRENTLY`/online DDL.
fn index_lock(dialect: Dialect) -> (&'static str, Blocks) {
    match dialect {
        Dialect::Postgres => ("SHARE", Blocks::Writes),
        Dialect::MySql => ("ALGORITHM=INPLACE, LOCK=NONE", Blocks::Nothing),
        Dialect::Sqlite => ("database write lock", Blocks::Writes),
    }
}

/// Runs the statement rules on one parsed statement (0-based `index` in the script).
pub(crate) fn statement(ctx: &mut Ctx<'_>, stmt: &Statement, index: usize) {
    match stmt {
        Statement::CreateTable(c) => create_table(ctx, c, index),
        Statement::CreateIndex(c) => create_index(ctx, c),
        Statement::AlterTable(a) => alter::alter_table(ctx, a, index),
        Statement::Drop {
            object_type,
            names,
            table,
            cascade,
            ..
        } => drop(ctx, *object_type, names, table.as_ref(), *cascade, index),
        Statement::Truncate(t) => {
            for target in &t.table_names {
                let table = ctx.table(&target.name);
                if table.is_new() {
                    continue;
                }
                let (lock, blocks) = exclusive(ctx.dialect);
                let cascade = if t.cascade.is_some() {
                    ", and CASCADE empties every table that references it"
                } else {
                    ""
                };
                let message = format!(
                    "TRUNCATE deletes every row of {} ({}){cascade}",
                    table.name,
                    table.at.describe()
                );
                ctx.emit(
                    Hit::new("truncate", Level::High, message)
                        .on(&table, Work::Metadata)
                        .lock(lock, blocks)
                        .suggest("back the rows up first (a copy table or an export), or delete what must go with a bounded DELETE ... WHERE in batches"),
                );
                ctx.state.created.insert(table.key);
            }
        }
        Statement::Update(u) if u.selection.is_none() && u.limit.is_none() => {
            if let Some(table) = first_table(ctx, std::slice::from_ref(&u.table)) {
                unbounded_update(ctx, &table, stmt);
            }
        }
        Statement::Delete(d) => {
            let from = match &d.from {
                FromTable::WithFromKeyword(t) | FromTable::WithoutKeyword(t) => t,
            };
            if d.selection.is_none()
                && d.limit.is_none()
                && d.using.is_none()
                && let Some(table) = first_table(ctx, from)
                && !table.is_new()
            {
                let message = format!(
                    "DELETE without WHERE deletes every row of {} ({})",
                    table.name,
                    table.at.describe()
                );
                ctx.emit(
                    Hit::new("unbounded-delete", Level::High, message)
                        .on(&table, Work::DeleteRows)
                        .lock(row_locks(ctx.dialect), Blocks::Nothing)
                        .suggest("add a WHERE clause for the rows that must go, and delete in batches of a few thousand rows"),
                );
                // Later statements of the script find it empty.
                ctx.state.created.insert(table.key);
            }
        }
        Statement::Vacuum(v) if v.full => {
            let table = v.table_name.as_ref().map(|n| ctx.table(n));
            rewrite_maintenance(ctx, table.as_ref(), "vacuum-full", "VACUUM FULL");
        }
        Statement::RenameTable(list) => {
            if ctx.rebuilds.steps.contains(&index) {
                return;
            }
            for r in list {
                let table = ctx.table(&r.old_name);
                if table.is_new() {
                    mark_created(ctx, &r.new_name);
                    continue;
                }
                renaming_table(ctx, &table, &r.new_name.to_string(), None);
            }
        }
        Statement::Insert(insert) => {
            if let Some(source) = &insert.source
                && let SetExpr::Select(select) = source.body.as_ref()
                && let Some(table) = first_table(ctx, &select.from)
            {
                ctx.work(&table, Work::Rewrite);
            }
        }
        Statement::Set(_) => {
            let text = stmt.to_string().to_ascii_uppercase().replace(' ', "");
            if text.contains("FOREIGN_KEY_CHECKS=") {
                ctx.state.foreign_key_checks_off =
                    text.ends_with("=0") || text.ends_with("=OFF") || text.ends_with("=FALSE");
            }
        }
        Statement::Lock(lock) => {
            for t in &lock.tables {
                let key = ctx.table(&t.name).key;
                ctx.state.locked.insert(key);
            }
        }
        Statement::LockTables { .. } => {
            // MySQL's LOCK TABLES list is not exposed field by field in every parser
            // version; the words after LOCK TABLES are the table names and lock types.
            for word in stmt.to_string().split([' ', ',']).skip(2) {
                ctx.state
                    .locked
                    .insert(word.trim_matches('`').to_lowercase());
            }
        }
        _ => {}
    }
}

fn row_locks(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Postgres => "ROW EXCLUSIVE, and a row lock on every row",
        Dialect::MySql => "a row lock on every row",
        Dialect::Sqlite => "database write lock",
    }
}

fn unbounded_update(ctx: &mut Ctx<'_>, table: &Table<'_>, stmt: &Statement) {
    if table.is_new() {
        return;
    }
    let level = table.level(Level::Low, Level::Medium, Level::High);
    let blocks = if ctx.dialect == Dialect::Sqlite {
        Blocks::Writes
    } else {
        Blocks::Nothing
    };
    let message = format!(
        "UPDATE without WHERE changes every row of {} ({}) in one transaction; concurrent writes to those rows wait until it commits",
        table.name,
        table.at.describe()
    );
    ctx.emit(
        Hit::new("unbounded-update", level, message)
            .on(table, Work::UpdateRows)
            .lock(row_locks(ctx.dialect), blocks)
            .suggest("backfill in batches (UPDATE ... WHERE id BETWEEN x AND y, a few thousand rows each, one transaction per batch)")
            .at(stmt),
    );
}

/// The first named table of a FROM list.
fn first_table<'a>(ctx: &Ctx<'a>, from: &[TableWithJoins]) -> Option<Table<'a>> {
    match &from.first()?.relation {
        TableFactor::Table { name, .. } => Some(ctx.table(name)),
        _ => None,
    }
}

fn mark_created(ctx: &mut Ctx<'_>, name: &ObjectName) {
    let key = ctx.table(name).key;
    ctx.state.created.insert(key);
}

fn create_table(ctx: &mut Ctx<'_>, c: &CreateTable, index: usize) {
    let table = ctx.table(&c.name);
    if let Some(query) = &c.query
        && let SetExpr::Select(select) = query.body.as_ref()
        && let Some(source) = first_table(ctx, &select.from)
    {
        ctx.work(&source, Work::Rewrite);
    }
    let columns = c
        .columns
        .iter()
        .map(|col| (col.name.value.clone(), col.data_type.to_string()))
        .collect();
    ctx.state.columns.insert(table.key.clone(), columns);
    // CREATE TABLE IF NOT EXISTS of a table the live database has changes nothing.
    let no_op = c.if_not_exists && table.facts().is_some();
    ctx.state.created.insert(table.key.clone());
    if ctx.rebuilds.steps.contains(&index) || no_op {
        return;
    }
    ctx.emit(Hit::new(
        "create-table",
        Level::Low,
        format!("creates table {}", table.name),
    ));
}

fn create_index(ctx: &mut Ctx<'_>, c: &CreateIndex) {
    let table = ctx.table(&c.table_name);
    let name = c.name.as_ref().map(super::rebuild::key).unwrap_or_default();
    if let Some(facts) = table.facts()
        && c.if_not_exists
        && facts.indexes.iter().any(|i| i.eq_ignore_ascii_case(&name))
    {
        return;
    }
    if !name.is_empty() {
        ctx.state.created_indexes.insert(name);
    }
    if table.is_new() {
        ctx.work(&table, Work::IndexBuild);
        return;
    }
    let text = c.to_string().to_ascii_uppercase();
    let what = if c.unique {
        "a unique index"
    } else {
        "an index"
    };
    let size = table.at.describe();
    let hit = match ctx.dialect {
        Dialect::Postgres if c.concurrently => Hit::new(
            "create-index",
            Level::Low,
            format!(
                "builds {what} on {} ({size}) concurrently: reads and writes go on; it cannot run in a transaction and leaves an INVALID index behind if it fails",
                table.name
            ),
        )
        .lock("SHARE UPDATE EXCLUSIVE", Blocks::Nothing),
        Dialect::MySql if !text.contains("FULLTEXT") && !text.contains("SPATIAL") => {
            let (lock, blocks) = index_lock(ctx.dialect);
            Hit::new(
                "create-index",
                Level::Low,
                format!(
                    "builds {what} on {} ({size}) online (in place, concurrent reads and writes allowed)",
                    table.name
                ),
            )
            .lock(lock, blocks)
        }
        Dialect::MySql => Hit::new(
            "create-index",
            table.level(Level::Low, Level::Medium, Level::Medium),
            format!(
                "builds a FULLTEXT/SPATIAL index on {} ({size}): writes wait until it is built",
                table.name
            ),
        )
        .lock("ALGORITHM=INPLACE, LOCK=SHARED", Blocks::Writes),
        _ => {
            let (lock, blocks) = index_lock(ctx.dialect);
            let mut hit = Hit::new(
                "create-index",
                table.level(Level::Low, Level::Medium, Level::Medium),
                format!(
                    "builds {what} on {} ({size}) while blocking writes to it",
                    table.name
                ),
            )
            .lock(lock, blocks);
            if ctx.dialect == Dialect::Postgres {
                hit = hit.suggest(
                    "CREATE INDEX CONCURRENTLY (outside a transaction): reads and writes go on while it builds",
                );
            }
            hit
        }
    };
    ctx.emit(hit.on(&table, Work::IndexBuild));
}

fn drop(
    ctx: &mut Ctx<'_>,
    object_type: ObjectType,
    names: &[ObjectName],
    on: Option<&ObjectName>,
    cascade: bool,
    index: usize,
) {
    match object_type {
        ObjectType::Table => {
            if let Some(rebuild) = ctx.rebuilds.by_drop.get(&index).cloned() {
                alter::table_rebuild(ctx, &rebuild);
                return;
            }
            for name in names {
                let table = ctx.table(name);
                if table.is_new() {
                    continue;
                }
                let (lock, blocks) = exclusive(ctx.dialect);
                let message = format!(
                    "drops table {} and all its rows ({}){}",
                    table.name,
                    table.at.describe(),
                    if cascade {
                        ", and with CASCADE every view and foreign key that depends on it"
                    } else {
                        ""
                    }
                );
                ctx.emit(
                    Hit::new("drop-table", Level::High, message)
                        .on(&table, Work::Metadata)
                        .lock(lock, blocks)
                        .suggest("stop using the table in the application first; keep a backup or rename it (e.g. to x_deprecated) and drop it in a later release"),
                );
            }
        }
        ObjectType::Index => {
            for name in names {
                let index_name = super::rebuild::key(name);
                if ctx.state.created_indexes.contains(&index_name) {
                    continue;
                }
                let table = on
                    .map(|t| ctx.table(t))
                    .or_else(|| ctx.index_owner(&index_name));
                drop_index(ctx, &name.to_string(), table.as_ref(), false);
            }
        }
        ObjectType::Schema | ObjectType::Database => {
            for name in names {
                ctx.emit(Hit::new(
                    "drop-schema",
                    Level::High,
                    format!("drops {name} and every table in it"),
                ));
            }
        }
        ObjectType::View
        | ObjectType::MaterializedView
        | ObjectType::Sequence
        | ObjectType::Type => {
            for name in names {
                ctx.emit(Hit::new(
                    "drop-object",
                    Level::Low,
                    format!(
                        "drops {} {name}: queries of the running application that use it fail",
                        format!("{object_type:?}").to_lowercase()
                    ),
                ));
            }
        }
        _ => {}
    }
}

/// `DROP INDEX`, from the parser or from keyword matching (`DROP INDEX CONCURRENTLY`).
pub(crate) fn drop_index(
    ctx: &mut Ctx<'_>,
    index: &str,
    table: Option<&Table<'_>>,
    concurrently: bool,
) {
    if table.is_some_and(Table::is_new) {
        return;
    }
    let on = table.map_or_else(String::new, |t| {
        format!(" on {} ({})", t.name, t.at.describe())
    });
    let mut hit = Hit::new(
        "drop-index",
        Level::High,
        format!(
            "drops index {index}{on}: queries that used it may become slow scans, and a unique index stops guarding uniqueness"
        ),
    );
    if let Some(t) = table {
        hit = hit.on(t, Work::Metadata);
    }
    hit = match ctx.dialect {
        Dialect::Postgres if concurrently => hit
            .lock("SHARE UPDATE EXCLUSIVE", Blocks::Nothing)
            .suggest("check with pg_stat_user_indexes (idx_scan) that nothing uses it before dropping it"),
        Dialect::Postgres => hit
            .lock("ACCESS EXCLUSIVE", Blocks::ReadsAndWrites)
            .suggest("DROP INDEX CONCURRENTLY (outside a transaction), after checking with pg_stat_user_indexes that nothing uses it"),
        Dialect::MySql => hit
            .lock("ALGORITHM=INPLACE, LOCK=NONE", Blocks::Nothing)
            .suggest("make the index INVISIBLE first (MySQL 8.0) or IGNORED (MariaDB 10.6), watch the queries, then drop it"),
        Dialect::Sqlite => hit.lock("database write lock", Blocks::Writes),
    };
    ctx.emit(hit);
}

/// `VACUUM FULL`, `CLUSTER`: the table is copied under `ACCESS EXCLUSIVE`.
pub(crate) fn rewrite_maintenance(
    ctx: &mut Ctx<'_>,
    table: Option<&Table<'_>>,
    code: &'static str,
    what: &str,
) {
    let (level, subject) = match table {
        Some(t) if t.is_new() => return,
        Some(t) => (
            t.level(Level::Low, Level::Medium, Level::High),
            format!("{} ({})", t.name, t.at.describe()),
        ),
        None => (Level::High, "every table of the database".to_owned()),
    };
    let mut hit = Hit::new(
        code,
        level,
        format!("{what} rewrites {subject} while blocking reads and writes"),
    )
    .lock("ACCESS EXCLUSIVE", Blocks::ReadsAndWrites)
    .suggest("use pg_repack or pg_squeeze, which rebuild the table online, or run it in a maintenance window");
    hit.rewrites = true;
    hit.scans = true;
    if let Some(t) = table {
        hit = hit.on(t, Work::Rewrite);
    } else {
        hit.seconds = None;
    }
    ctx.emit(hit);
}

/// A table renamed while the running application still uses the old name.
pub(crate) fn renaming_table(ctx: &mut Ctx<'_>, table: &Table<'_>, to: &str, at: Option<usize>) {
    let (lock, blocks) = exclusive(ctx.dialect);
    let mut hit = Hit::new(
        "renaming-table",
        Level::Medium,
        format!(
            "renames table {} to {to}: the running application's queries of {} fail until it is redeployed",
            table.name, table.name
        ),
    )
    .on(table, Work::Metadata)
    .lock(lock, blocks)
    .suggest(format!(
        "rename in two releases: after the rename create a view under the old name (CREATE VIEW {} AS SELECT * FROM {to}) until no deployed code uses it",
        table.name
    ));
    hit.line = at;
    ctx.emit(hit);
}
