//! Table rebuilds: the way SQLite changes what `ALTER TABLE` cannot (and some tools do on every
//! engine). The rows are copied into a new table, the old one dropped, and the new one takes
//! its name, in either order:
//!
//! - `CREATE TABLE n; INSERT INTO n SELECT ... FROM t; DROP TABLE t; ALTER TABLE n RENAME TO t`
//!   (Prisma's `new_t`, drizzle's `__new_t`, Django's `new__t`, or any other name), or
//! - `ALTER TABLE t RENAME TO old; CREATE TABLE t; INSERT INTO t SELECT ... FROM old; DROP TABLE old`.
//!
//! The `DROP TABLE` of such a script loses no rows, so it is reported as a rebuild, not as a
//! dropped table; only the columns the copy does not read are lost. The whole script is read
//! before any rule runs, since the rename that completes a rebuild comes after the drop.

use std::collections::{HashMap, HashSet};

use sqlparser::ast::{
    AlterTableOperation, ObjectName, ObjectType, RenameTableNameKind, SelectItem, SetExpr,
    Statement, TableFactor,
};

/// One recognised rebuild, keyed by the statement that drops the old table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rebuild {
    /// The name the table has before and after (its live name).
    pub table: String,
    /// The other table used for the copy.
    pub via: String,
    /// Words the copy's `SELECT` list mentions (lowercased), `None` for `SELECT *`: a column
    /// of the old table not among them is not copied.
    pub read: Option<HashSet<String>>,
}

/// The rebuilds of a script.
#[derive(Debug, Default)]
pub(crate) struct Rebuilds {
    /// By the 0-based index of the `DROP TABLE` statement.
    pub by_drop: HashMap<usize, Rebuild>,
    /// Statements (0-based) that are steps of a rebuild: their own findings (a rename, a new
    /// table) are not reported.
    pub steps: HashSet<usize>,
}

struct Copy {
    at: usize,
    into: String,
    from: String,
    read: Option<HashSet<String>>,
}

/// Finds the rebuilds among a script's parsed statements (`None` where one did not parse).
pub(crate) fn find(statements: &[Option<&Statement>]) -> Rebuilds {
    let mut copies = Vec::new();
    let mut renames = Vec::new();
    let mut drops = Vec::new();
    let mut creates = HashMap::new();
    for (at, stmt) in statements.iter().enumerate() {
        match stmt {
            Some(Statement::Insert(insert)) => {
                if let (sqlparser::ast::TableObject::TableName(into), Some(source)) =
                    (&insert.table, &insert.source)
                    && let SetExpr::Select(select) = source.body.as_ref()
                    && select.selection.is_none()
                    && let [from] = select.from.as_slice()
                    && from.joins.is_empty()
                    && let TableFactor::Table { name, .. } = &from.relation
                {
                    copies.push(Copy {
                        at,
                        into: key(into),
                        from: key(name),
                        read: read_words(&select.projection),
                    });
                }
            }
            Some(Statement::AlterTable(alter)) => {
                for op in &alter.operations {
                    if let AlterTableOperation::RenameTable { table_name } = op {
                        let (RenameTableNameKind::As(to) | RenameTableNameKind::To(to)) =
                            table_name;
                        renames.push((at, key(&alter.name), key(to), display(&alter.name)));
                    }
                }
            }
            Some(Statement::RenameTable(list)) => {
                for r in list {
                    renames.push((at, key(&r.old_name), key(&r.new_name), display(&r.old_name)));
                }
            }
            Some(Statement::Drop {
                object_type: ObjectType::Table,
                names,
                ..
            }) => {
                for n in names {
                    drops.push((at, key(n), display(n)));
                }
            }
            Some(Statement::CreateTable(c)) => {
                creates.entry(key(&c.name)).or_insert(at);
            }
            _ => {}
        }
    }
    let mut out = Rebuilds::default();
    for (at, dropped, dropped_display) in drops {
        for copy in copies.iter().filter(|c| c.at < at && c.from == dropped) {
            // New table renamed to the old name afterwards.
            let after = renames
                .iter()
                .find(|r| r.0 > at && r.1 == copy.into && r.2 == dropped);
            // Old table renamed away first, its name taken by the new table.
            let before = renames
                .iter()
                .find(|r| r.0 < copy.at && r.1 == copy.into && r.2 == dropped);
            let (table, via, rename) = match (after, before) {
                (Some(r), _) => (dropped_display.clone(), r.3.clone(), r.0),
                (None, Some(r)) => (r.3.clone(), dropped_display.clone(), r.0),
                (None, None) => continue,
            };
            out.steps.insert(rename);
            out.steps.insert(copy.at);
            if let Some(&c) = creates.get(&copy.into) {
                out.steps.insert(c);
            }
            out.by_drop.insert(
                at,
                Rebuild {
                    table,
                    via,
                    read: copy.read.clone(),
                },
            );
            break;
        }
    }
    out
}

/// The lowercased last part of a name.
pub(crate) fn key(name: &ObjectName) -> String {
    name.0
        .last()
        .map(|p| {
            p.as_ident()
                .map_or_else(|| p.to_string(), |i| i.value.clone())
        })
        .unwrap_or_default()
        .to_lowercase()
}

fn display(name: &ObjectName) -> String {
    name.0
        .iter()
        .map(|p| {
            p.as_ident()
                .map_or_else(|| p.to_string(), |i| i.value.clone())
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// The words of a `SELECT` list, lowercased and unquoted; `None` when it has a `*`.
fn read_words(items: &[SelectItem]) -> Option<HashSet<String>> {
    let mut words = HashSet::new();
    for item in items {
        match item {
            SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..) => return None,
            other => {
                let text = other.to_string();
                words.extend(
                    text.split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '$'))
                        .filter(|w| !w.is_empty())
                        .map(str::to_lowercase),
                );
            }
        }
    }
    Some(words)
}
