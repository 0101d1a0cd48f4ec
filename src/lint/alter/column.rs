//! Added and altered columns: what an added column asks of the server (NOT NULL, defaults
//! evaluated per row, serial and generated columns), type changes and nullability.

use sqlparser::ast::{
    AlterColumnOperation, ColumnDef, ColumnOption, DataType, Expr, GeneratedAs,
    GeneratedExpressionMode, Ident,
};

use super::{Clause, Online, emit_mysql, old_column, renaming_column};
use crate::engine::Dialect;
use crate::lint::context::{Ctx, Hit};
use crate::lint::facts::Work;
use crate::lint::finding::{Blocks, Level};
use crate::lint::types;

const NEW_COLUMN_STEPS: &str = "add a new column of the new type, write both from the application, backfill in batches, switch reads, then drop the old column";

/// What an added column asks of the server.
#[derive(Default)]
pub(super) struct NewColumn<'c> {
    pub(super) not_null: bool,
    pub(super) default: Option<&'c Expr>,
    pub(super) identity: bool,
    pub(super) stored: bool,
    pub(super) serial: bool,
    pub(super) auto_increment: bool,
    pub(super) references: Option<String>,
    pub(super) unique: bool,
}

pub(super) fn new_column(def: &ColumnDef) -> NewColumn<'_> {
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
pub(super) fn called_functions(expr: &Expr) -> Vec<String> {
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
pub(super) fn volatile(expr: &Expr) -> Option<String> {
    called_functions(expr)
        .into_iter()
        .find(|f| !NON_VOLATILE.contains(&f.as_str()))
}

pub(super) fn alter_column(
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
pub(super) fn modify_column(
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
