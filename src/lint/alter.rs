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

use sqlparser::ast::{
    AlterColumnOperation, AlterTable, AlterTableAlgorithm, AlterTableOperation, ColumnDef,
    ColumnOption, DataType, Expr, GeneratedAs, GeneratedExpressionMode, Ident, RenameTableNameKind,
    TableConstraint,
};

use super::context::{Ctx, Hit, Table};
use super::facts::{Product, Work};
use super::finding::{Blocks, Level};
use super::rebuild::Rebuild;
use super::rules;
use super::types;
use crate::engine::Dialect;

const NOT_NULL_STEPS: &str = "add the column nullable (or with a constant DEFAULT), backfill it in batches, then add CHECK (col IS NOT NULL) NOT VALID, VALIDATE CONSTRAINT, and SET NOT NULL";
const NEW_COLUMN_STEPS: &str = "add a new column of the new type, write both from the application, backfill in batches, switch reads, then drop the old column";

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

struct Clause<'t, 'a> {
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

/// What an added column asks of the server.
#[derive(Default)]
struct NewColumn<'c> {
    not_null: bool,
    default: Option<&'c Expr>,
    identity: bool,
    stored: bool,
    serial: bool,
    auto_increment: bool,
    references: Option<String>,
    unique: bool,
}

fn new_column(def: &ColumnDef) -> NewColumn<'_> {
    let mut c = NewColumn::default();
    let ty = def.data_type.to_string().to_ascii_lowercase();
    c.serial = matches!(
        ty.as_str(),
        "serial" | "bigserial" | "smallserial" | "serial2" | "serial4" | "serial8"
    );
    for opt in &def.options {
        match &opt.option {
            ColumnOption::NotNull => c.not_null = true,
            ColumnOption::PrimaryKey(_) => {
                c.not_null = true;
                c.unique = true;
            }
            ColumnOption::Unique(_) => c.unique = true,
            ColumnOption::Default(e) => c.default = Some(e),
            ColumnOption::ForeignKey(fk) => c.references = Some(fk.foreign_table.to_string()),
            ColumnOption::Generated {
                generated_as,
                generation_expr,
                generation_expr_mode,
                ..
            } => match generation_expr {
                None => c.identity = true,
                Some(_) => {
                    c.stored = matches!(generated_as, GeneratedAs::ExpStored)
                        || matches!(generation_expr_mode, Some(GeneratedExpressionMode::Stored))
                }
            },
            ColumnOption::Identity(_) => c.identity = true,
            ColumnOption::DialectSpecific(tokens)
                if tokens
                    .iter()
                    .any(|t| t.to_string().eq_ignore_ascii_case("AUTO_INCREMENT")) =>
            {
                c.auto_increment = true;
            }
            _ => {}
        }
    }
    c
}

/// Functions whose value does not change from row to row within a statement: a default using
/// only these is evaluated once and, from PostgreSQL 11, kept in the catalog (no rewrite).
const NON_VOLATILE: &[&str] = &[
    "now",
    "current_timestamp",
    "current_date",
    "current_time",
    "localtimestamp",
    "localtime",
    "transaction_timestamp",
    "statement_timestamp",
    "cast",
    "lower",
    "upper",
    "coalesce",
    "nullif",
    "greatest",
    "least",
    "concat",
    "jsonb_build_object",
    "json_build_object",
    "jsonb_build_array",
    "json_build_array",
    "array",
    "make_interval",
    "to_timestamp",
    "to_date",
    "current_user",
    "session_user",
    "current_setting",
    // Type names read as calls in casts such as '0'::numeric(10, 2).
    "varchar",
    "numeric",
    "decimal",
    "char",
    "character",
    "timestamp",
    "timestamptz",
    "time",
    "bit",
    "varbit",
    "interval",
];

/// The names of the functions an expression calls, lowercased, outside string literals.
fn called_functions(expr: &Expr) -> Vec<String> {
    let text = expr.to_string();
    let mut out = Vec::new();
    let mut word = String::new();
    let mut in_string = false;
    for c in text.chars() {
        if in_string {
            in_string = c != '\'';
            continue;
        }
        match c {
            '\'' => {
                in_string = true;
                word.clear();
            }
            '(' if !word.is_empty() => {
                let name = word.rsplit('.').next().unwrap_or(&word);
                out.push(name.trim_matches('"').to_lowercase());
                word.clear();
            }
            c if c.is_alphanumeric() || matches!(c, '_' | '.' | '"') => word.push(c),
            ' ' => {}
            _ => word.clear(),
        }
        if c == ' ' && !word.is_empty() {
            // `f (x)` is a call too, but `x AS (...)` is not: keep the word only up to '('.
            word.clear();
        }
    }
    out
}

/// A default PostgreSQL evaluates per row (so it must write every row): any function not
/// known to be stable or immutable.
fn volatile(expr: &Expr) -> Option<String> {
    called_functions(expr)
        .into_iter()
        .find(|f| !NON_VOLATILE.contains(&f.as_str()))
}

/// How MySQL/MariaDB runs one clause.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Online {
    algorithm: AlterTableAlgorithm,
    rebuild: bool,
    /// Concurrent writes allowed (`LOCK=NONE`).
    dml: bool,
}

impl Online {
    const INSTANT: Online = Online {
        algorithm: AlterTableAlgorithm::Instant,
        rebuild: false,
        dml: true,
    };
    const METADATA: Online = Online {
        algorithm: AlterTableAlgorithm::Inplace,
        rebuild: false,
        dml: true,
    };
    const REBUILD: Online = Online {
        algorithm: AlterTableAlgorithm::Inplace,
        rebuild: true,
        dml: true,
    };
    const COPY: Online = Online {
        algorithm: AlterTableAlgorithm::Copy,
        rebuild: true,
        dml: false,
    };

    fn lock(self) -> String {
        let algorithm = match self.algorithm {
            AlterTableAlgorithm::Instant => "INSTANT",
            AlterTableAlgorithm::Inplace => "INPLACE",
            AlterTableAlgorithm::Copy => "COPY",
            AlterTableAlgorithm::Default => "DEFAULT",
        };
        if self.algorithm == AlterTableAlgorithm::Instant {
            format!("ALGORITHM={algorithm}")
        } else {
            format!(
                "ALGORITHM={algorithm}, LOCK={}",
                if self.dml { "NONE" } else { "SHARED" }
            )
        }
    }

    fn blocks(self) -> Blocks {
        if self.dml {
            Blocks::Nothing
        } else {
            Blocks::Writes
        }
    }

    fn work(self) -> Work {
        if self.rebuild {
            Work::Rewrite
        } else {
            Work::Metadata
        }
    }

    fn rank(algorithm: AlterTableAlgorithm) -> u8 {
        match algorithm {
            AlterTableAlgorithm::Instant => 3,
            AlterTableAlgorithm::Inplace => 2,
            AlterTableAlgorithm::Copy => 1,
            AlterTableAlgorithm::Default => 0,
        }
    }
}

/// Whether the MySQL/MariaDB server adds (`drop: false`) or drops a column instantly:
/// `Some(true)`/`Some(false)` when the version is known, `None` when not.
fn mysql_instant_column(ctx: &Ctx<'_>, drop: bool, positioned: bool) -> Option<bool> {
    let server = ctx.facts.server?;
    Some(match server.product {
        Product::MySql if drop || positioned => server.version >= (8, 0, 29),
        Product::MySql => server.version >= (8, 0, 12),
        Product::MariaDb if drop || positioned => server.version >= (10, 4, 0),
        Product::MariaDb => server.version >= (10, 3, 2),
        _ => false,
    })
}

/// The online-DDL line for an added or dropped column.
fn column_online(ctx: &Ctx<'_>, drop: bool, positioned: bool) -> (Online, String) {
    match mysql_instant_column(ctx, drop, positioned) {
        Some(true) => (Online::INSTANT, "instant (catalog only)".to_owned()),
        Some(false) => (
            Online::REBUILD,
            "rebuilt in place (concurrent writes allowed, the table is copied)".to_owned(),
        ),
        None => (
            Online::REBUILD,
            format!(
                "instant on {}, otherwise rebuilt in place",
                if drop || positioned {
                    "MySQL 8.0.29+ and MariaDB 10.4+"
                } else {
                    "MySQL 8.0.12+ and MariaDB 10.3.2+"
                }
            ),
        ),
    }
}

/// Emits a MySQL clause's finding with its online-DDL lock, and the failure of a requested
/// `ALGORITHM=` the server cannot honour for it.
fn emit_mysql(ctx: &mut Ctx<'_>, clause: &Clause<'_, '_>, online: Online, hit: Hit) {
    let hit = hit
        .on(clause.table, online.work())
        .lock(online.lock(), online.blocks());
    if let Some(requested) = clause.requested
        && requested != AlterTableAlgorithm::Default
        && Online::rank(requested) > Online::rank(online.algorithm)
        && ctx.facts.server.is_some()
    {
        let mut fail = Hit::new(
            "mysql-algorithm-unsupported",
            Level::High,
            format!(
                "fails: the server cannot run this clause ({}) with the requested algorithm ({})",
                hit.code,
                Online {
                    algorithm: requested,
                    ..online
                }
                .lock()
            ),
        )
        .suggest("remove the ALGORITHM clause or split the statement; see the clause's own finding for what the server does");
        fail.line = hit.line;
        fail.table.clone_from(&hit.table);
        ctx.emit(fail);
    }
    ctx.emit(hit);
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

fn renaming_column(ctx: &mut Ctx<'_>, clause: &Clause<'_, '_>, old: &Ident, new: &Ident) {
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
fn old_column(ctx: &Ctx<'_>, table: &Table<'_>, column: &str) -> Option<(String, Option<bool>)> {
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

fn alter_column(
    ctx: &mut Ctx<'_>,
    clause: &Clause<'_, '_>,
    column: &Ident,
    op: &AlterColumnOperation,
) {
    let table = clause.table;
    let name = &table.name;
    let size = table.at.describe();
    let col = &column.value;
    match op {
        AlterColumnOperation::SetNotNull => {
            let checked = ctx.pg_at_least(12)
                && ctx
                    .state
                    .validated_not_null
                    .contains(&(table.key.clone(), col.to_lowercase()));
            let hit = if checked {
                Hit::new(
                    "set-not-null",
                    Level::Low,
                    format!("sets {col} of {name} NOT NULL using the validated CHECK (IS NOT NULL): no scan"),
                )
                .on(table, Work::Metadata)
            } else {
                Hit::new(
                    "set-not-null",
                    table.level(Level::Medium, Level::Medium, Level::High),
                    format!("sets {col} of {name} ({size}) NOT NULL: every row is scanned under ACCESS EXCLUSIVE, and it fails if any row holds NULL"),
                )
                .on(table, Work::Scan)
                .suggest("ADD CONSTRAINT c CHECK (col IS NOT NULL) NOT VALID; VALIDATE CONSTRAINT c; then SET NOT NULL (PostgreSQL 12+ skips the scan) and drop the check")
            };
            ctx.emit(
                hit.lock("ACCESS EXCLUSIVE", Blocks::ReadsAndWrites)
                    .at_ident(column),
            );
        }
        AlterColumnOperation::DropNotNull => {
            let hit = Hit::new(
                "drop-not-null",
                Level::Low,
                format!("makes {col} of {name} nullable: code that reads it must expect NULL"),
            )
            .at_ident(column);
            if ctx.dialect == Dialect::MySql {
                emit_mysql(ctx, clause, Online::REBUILD, hit);
            } else {
                ctx.emit(
                    hit.on(table, Work::Metadata)
                        .lock("ACCESS EXCLUSIVE", Blocks::ReadsAndWrites),
                );
            }
        }
        AlterColumnOperation::SetDataType {
            data_type, using, ..
        } => {
            let to = types::parse(&data_type.to_string());
            let from = old_column(ctx, table, col).map(|(t, _)| types::parse(&t));
            let coercible = using.is_none()
                && from
                    .as_ref()
                    .is_some_and(|f| types::pg_binary_coercible(f, &to));
            let hit = if coercible {
                Hit::new(
                    "changing-column-type",
                    Level::Low,
                    format!("changes {col} of {name} to {data_type}: binary-coercible, so only the catalog changes (no rewrite)"),
                )
                .on(table, Work::Metadata)
            } else {
                let why = match &from {
                    Some(f) => format!("from {} ", f.name),
                    None => String::new(),
                };
                let mut hit = Hit::new(
                    "changing-column-type",
                    Level::High,
                    format!("changes {col} of {name} ({size}) {why}to {data_type}: the table and its indexes are rewritten under ACCESS EXCLUSIVE, and it fails if a value does not convert"),
                )
                .on(table, Work::Rewrite)
                .suggest(NEW_COLUMN_STEPS);
                hit.rewrites = true;
                hit
            };
            ctx.emit(
                hit.lock("ACCESS EXCLUSIVE", Blocks::ReadsAndWrites)
                    .at_ident(column),
            );
        }
        _ => {}
    }
}

/// MySQL `MODIFY`/`CHANGE`: the whole column definition is restated; what the server does
/// depends on what differs from the live column.
fn modify_column(
    ctx: &mut Ctx<'_>,
    clause: &Clause<'_, '_>,
    old: &Ident,
    new: &Ident,
    data_type: &DataType,
    options: &[ColumnOption],
) {
    let table = clause.table;
    let name = &table.name;
    let size = table.at.describe();
    let not_null = options
        .iter()
        .any(|o| matches!(o, ColumnOption::NotNull | ColumnOption::PrimaryKey(_)));
    let to = types::parse(&data_type.to_string());
    let before = old_column(ctx, table, &old.value);
    let renamed = !old.value.eq_ignore_ascii_case(&new.value);
    if renamed {
        renaming_column(ctx, clause, old, new);
    }
    let col = &old.value;
    match before {
        Some((ty, was_not_null)) if types::parse(&ty) == to => match (was_not_null, not_null) {
            (Some(false), true) => {
                let hit = Hit::new(
                        "set-not-null",
                        table.level(Level::Medium, Level::Medium, Level::Medium),
                        format!("makes {col} of {name} ({size}) NOT NULL: rebuilt in place (writes go on); fails if any row holds NULL"),
                    )
                    .suggest("backfill the NULLs in batches first")
                    .at_ident(old);
                emit_mysql(ctx, clause, Online::REBUILD, hit);
            }
            (Some(true), false) => {
                let hit = Hit::new(
                    "drop-not-null",
                    Level::Low,
                    format!("makes {col} of {name} nullable: rebuilt in place (writes go on)"),
                )
                .at_ident(old);
                emit_mysql(ctx, clause, Online::REBUILD, hit);
            }
            _ => {}
        },
        Some((ty, _)) if types::mysql_inplace_extension(&types::parse(&ty), &to) => {
            let hit = Hit::new(
                "changing-column-type",
                Level::Low,
                format!("lengthens {col} of {name} from {ty} to {data_type}: in place, catalog only (the length prefix keeps its size)"),
            )
            .at_ident(old);
            emit_mysql(ctx, clause, Online::METADATA, hit);
        }
        before => {
            let from = before.map_or_else(String::new, |(t, _)| format!("from {t} "));
            let hit = Hit::new(
                "changing-column-type",
                Level::High,
                format!("changes {col} of {name} ({size}) {from}to {data_type}: the table is copied (ALGORITHM=COPY) while writes wait, and values that do not convert fail or are truncated"),
            )
            .suggest(NEW_COLUMN_STEPS)
            .at_ident(old);
            emit_mysql(ctx, clause, Online::COPY, hit);
        }
    }
}

fn foreign_key(
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

fn unique(
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

fn add_constraint(
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

/// SQLite: `ALTER TABLE` can only add, drop and rename columns and rename the table.
fn sqlite_clause(ctx: &mut Ctx<'_>, clause: &Clause<'_, '_>, op: &AlterTableOperation) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use sqlparser::dialect::PostgreSqlDialect;
    use sqlparser::parser::Parser;

    fn expr(sql: &str) -> Expr {
        Parser::new(&PostgreSqlDialect {})
            .try_with_sql(sql)
            .unwrap()
            .parse_expr()
            .unwrap()
    }

    #[test]
    fn volatile_defaults() {
        assert_eq!(
            volatile(&expr("gen_random_uuid()")).as_deref(),
            Some("gen_random_uuid")
        );
        assert_eq!(
            volatile(&expr("nextval('s'::regclass)")).as_deref(),
            Some("nextval")
        );
        assert_eq!(volatile(&expr("now()")), None);
        assert_eq!(volatile(&expr("CURRENT_TIMESTAMP")), None);
        assert_eq!(volatile(&expr("'{}'::jsonb")), None);
        assert_eq!(volatile(&expr("'random()'")), None);
        assert_eq!(volatile(&expr("'0'::numeric(10, 2)")), None);
        assert_eq!(volatile(&expr("my_func()")).as_deref(), Some("my_func"));
    }
}
