//! Flyway's history table: its DDL per database, the rows Flyway writes and how dbdeploy reads
//! them back (`JdbcTableSchemaHistory` and each database's `getRawCreateScript`).

use std::time::Duration;

use super::name::{Name, baseline_name, baseline_version, file_name, name_of};
use super::{BASELINE_MARK, TABLE};
use crate::engine::{ColKind, Dialect, Stmt, Value};
use crate::handler::HandlerError;
use crate::migration::{AppliedRecord, Migration, RecordState};

/// At most `max` characters of `s`, as the columns' lengths allow.
pub(super) fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// The type Flyway records for a baseline migration it ran from a `B` script.
const SQL_BASELINE: &str = "SQL_BASELINE";

/// Every type of a baseline migration's row: SQL and Java ones, and the names Flyway used for
/// them before (`BaselineMigrationType.fromString`).
const BASELINE_TYPES: [&str; 4] = [
    SQL_BASELINE,
    "JDBC_BASELINE",
    "SQL_STATE_SCRIPT",
    "JDBC_STATE_SCRIPT",
];

/// The columns a row starts with, in the table's order: written by every insert and read back
/// by the history query.
const ROW_COLUMNS: [&str; 6] = [
    "installed_rank",
    "version",
    "description",
    "type",
    "script",
    "checksum",
];

/// `columns` quoted for `d`, separated by `, `.
fn column_list(d: Dialect, columns: &[&str]) -> String {
    let quoted: Vec<String> = columns.iter().map(|c| d.quote_ident(c)).collect();
    quoted.join(", ")
}

fn boolean(d: Dialect, v: bool) -> &'static str {
    match (d, v) {
        (Dialect::Postgres, true) => "TRUE",
        (Dialect::Postgres, false) => "FALSE",
        (_, true) => "1",
        (_, false) => "0",
    }
}

/// `INSERT ... SELECT MAX(installed_rank) + 1`, so the rank is computed under the deploy
/// lock by the database, exactly as `calculateInstalledRank` does.
pub(super) fn insert_row(d: Dialect, m: &Migration, success: bool) -> Stmt {
    let (version, description, kind) = match name_of(m) {
        Name::Versioned {
            version,
            description,
        } => (Value::Text(version), description, "SQL"),
        Name::Baseline {
            version,
            description,
        } => (Value::Text(version), description, SQL_BASELINE),
        Name::Repeatable { description } => (Value::Null, description, "SQL"),
        Name::Ignored(_) => (Value::Null, m.name.clone(), "SQL"),
    };
    let script = m.tool_data.clone().unwrap_or_else(|| file_name(m));
    let t = d.quote_ident(TABLE);
    let q = |c: &str| d.quote_ident(c);
    let p = |n| d.placeholder(n);
    let mut args = vec![
        version,
        Value::Text(truncate(&description, 200)),
        Value::Text(truncate(&script, 1000)),
        Value::Int(m.checksum.parse::<i64>().unwrap_or(0)),
    ];
    let installed_by = match d {
        // Flyway's `doGetCurrentUser` for each database.
        Dialect::Postgres => "current_user".to_owned(),
        Dialect::MySql => "SUBSTRING_INDEX(USER(),'@',1)".to_owned(),
        // SQLite has no users (Flyway writes ""); the operator says more.
        Dialect::Sqlite => {
            args.push(Value::Text(truncate(&crate::operator::operator().0, 100)));
            p(5)
        }
    };
    let sql = format!(
        "INSERT INTO {t} ({}, {}, {}, {}) \
         SELECT COALESCE(MAX({}), 0) + 1, {}, {}, '{kind}', {}, {}, {installed_by}, 0, {} FROM {t}",
        column_list(d, &ROW_COLUMNS),
        q("installed_by"),
        q("execution_time"),
        q("success"),
        q("installed_rank"),
        p(1),
        p(2),
        p(3),
        p(4),
        boolean(d, success),
    );
    Stmt::new(sql, args)
}

/// Deletes the failed rows of a migration, as `flyway repair` removes failed entries.
pub(super) fn delete_failed(d: Dialect, name: &str) -> Stmt {
    if let Some(version) = baseline_version(name) {
        let kinds: Vec<String> = BASELINE_TYPES.iter().map(|k| format!("'{k}'")).collect();
        return Stmt::new(
            format!(
                "DELETE FROM {} WHERE {} = {} AND {} = {} AND {} IN ({})",
                d.quote_ident(TABLE),
                d.quote_ident("success"),
                boolean(d, false),
                d.quote_ident("version"),
                d.placeholder(1),
                d.quote_ident("type"),
                kinds.join(", "),
            ),
            vec![Value::Text(version.to_owned())],
        );
    }
    Stmt::new(
        format!(
            "DELETE FROM {} WHERE {} = {} AND ({} = {} OR ({} IS NULL AND {} = {}))",
            d.quote_ident(TABLE),
            d.quote_ident("success"),
            boolean(d, false),
            d.quote_ident("version"),
            d.placeholder(1),
            d.quote_ident("version"),
            d.quote_ident("description"),
            d.placeholder(2),
        ),
        vec![Value::Text(name.to_owned()), Value::Text(name.to_owned())],
    )
}

/// The DDL that creates the table exactly as Flyway does on `dialect`.
pub(super) fn create_table(dialect: Dialect) -> Vec<Stmt> {
    match dialect {
        Dialect::Postgres => vec![
            Stmt::raw(
                r#"CREATE TABLE "flyway_schema_history" (
"installed_rank" INT NOT NULL,
"version" VARCHAR(50),
"description" VARCHAR(200) NOT NULL,
"type" VARCHAR(20) NOT NULL,
"script" VARCHAR(1000) NOT NULL,
"checksum" INTEGER,
"installed_by" VARCHAR(100) NOT NULL,
"installed_on" TIMESTAMP NOT NULL DEFAULT now(),
"execution_time" INTEGER NOT NULL,
"success" BOOLEAN NOT NULL
)"#,
            ),
            Stmt::raw(
                r#"ALTER TABLE "flyway_schema_history" ADD CONSTRAINT "flyway_schema_history_pk" PRIMARY KEY ("installed_rank")"#,
            ),
            Stmt::raw(
                r#"CREATE INDEX "flyway_schema_history_s_idx" ON "flyway_schema_history" ("success")"#,
            ),
        ],
        Dialect::MySql => vec![
            Stmt::raw(
                "CREATE TABLE `flyway_schema_history` (
`installed_rank` INT NOT NULL,
`version` VARCHAR(50),
`description` VARCHAR(200) NOT NULL,
`type` VARCHAR(20) NOT NULL,
`script` VARCHAR(1000) NOT NULL,
`checksum` INT,
`installed_by` VARCHAR(100) NOT NULL,
`installed_on` TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
`execution_time` INT NOT NULL,
`success` BOOL NOT NULL,
CONSTRAINT `flyway_schema_history_pk` PRIMARY KEY (`installed_rank`)
) ENGINE=InnoDB",
            ),
            Stmt::raw(
                "CREATE INDEX `flyway_schema_history_s_idx` ON `flyway_schema_history` (`success`)",
            ),
        ],
        Dialect::Sqlite => vec![
            Stmt::raw(
                r#"CREATE TABLE "flyway_schema_history" (
"installed_rank" INT NOT NULL PRIMARY KEY,
"version" VARCHAR(50),
"description" VARCHAR(200) NOT NULL,
"type" VARCHAR(20) NOT NULL,
"script" VARCHAR(1000) NOT NULL,
"checksum" INT,
"installed_by" VARCHAR(100) NOT NULL,
"installed_on" TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f','now')),
"execution_time" INT NOT NULL,
"success" BOOLEAN NOT NULL
)"#,
            ),
            Stmt::raw(
                r#"CREATE INDEX "flyway_schema_history_s_idx" ON "flyway_schema_history" ("success")"#,
            ),
        ],
    }
}

/// The query that reads the table, and how to decode its columns.
pub(super) fn select_history(dialect: Dialect) -> (Stmt, Vec<ColKind>) {
    let q = |c: &str| dialect.quote_ident(c);
    let installed_on = match dialect {
        Dialect::Postgres => "to_char(\"installed_on\", 'YYYY-MM-DD HH24:MI:SS')".to_owned(),
        Dialect::MySql => "DATE_FORMAT(`installed_on`, '%Y-%m-%d %H:%i:%s')".to_owned(),
        Dialect::Sqlite => "CAST(\"installed_on\" AS TEXT)".to_owned(),
    };
    let sql = format!(
        "SELECT {}, {installed_on}, {} FROM {} ORDER BY {}",
        column_list(dialect, &ROW_COLUMNS),
        q("success"),
        q(TABLE),
        q("installed_rank"),
    );
    let cols = vec![
        ColKind::Int,
        ColKind::Text,
        ColKind::Text,
        ColKind::Text,
        ColKind::Text,
        ColKind::Int,
        ColKind::Text,
        ColKind::Int,
    ];
    (Stmt::raw(sql), cols)
}

/// Turns the rows of [`select_history`] into records; `BASELINE` rows become markers that
/// [`super::baseline::reconcile`] expands.
pub(super) fn parse_history(rows: Vec<Vec<Value>>) -> Result<Vec<AppliedRecord>, HandlerError> {
    let mut records: Vec<AppliedRecord> = Vec::new();
    for row in rows {
        let text = |i: usize| row.get(i).and_then(Value::as_text).map(str::to_owned);
        let kind = text(3).unwrap_or_default();
        let version = text(1);
        let description = text(2).unwrap_or_default();
        let installed_on = text(6);
        let name = version.clone().unwrap_or_else(|| description.clone());
        match kind.as_str() {
            // The marker of schemas Flyway created; not a migration.
            "SCHEMA" => continue,
            "BASELINE" => {
                let v = version.ok_or_else(|| no_version(&kind))?;
                records.push(baseline_mark(&v, installed_on));
                continue;
            }
            // A baseline migration: the schema as of its version, in one script. Flyway does
            // not validate its checksum (only versions above the applied baseline are).
            k if BASELINE_TYPES.contains(&k) => {
                let v = version.ok_or_else(|| no_version(&kind))?;
                let success = row.get(7).and_then(Value::as_int).unwrap_or(0) != 0;
                if success {
                    records.push(baseline_mark(&v, installed_on.clone()));
                }
                records.push(AppliedRecord {
                    checksum: None,
                    ..record(baseline_name(&v), None, success, installed_on)
                });
                continue;
            }
            // `repair` marks missing migrations deleted; an undo takes a version back.
            k if k == "DELETE" || k.starts_with("UNDO") => {
                let baseline = baseline_name(&name);
                records.retain(|r| r.name != name && r.name != baseline);
                continue;
            }
            _ => {}
        }
        let success = row.get(7).and_then(Value::as_int).unwrap_or(0) != 0;
        let checksum = row.get(5).and_then(Value::as_int);
        records.push(record(name, checksum, success, installed_on));
    }
    Ok(records)
}

/// The record of one migration's row.
fn record(
    name: String,
    checksum: Option<i64>,
    success: bool,
    installed_on: Option<String>,
) -> AppliedRecord {
    AppliedRecord {
        name,
        checksum: checksum.map(|c| c.to_string()),
        state: if success {
            RecordState::Applied
        } else {
            RecordState::Failed
        },
        started_at: installed_on.clone(),
        finished_at: installed_on,
        logs: (!success).then(|| {
            format!(
                "recorded as failed in {TABLE} (success = false); `flyway repair` or `dbdeploy resolve` clears it"
            )
        }),
    }
}

/// The marker of a baseline at `version`, which [`super::baseline::reconcile`] expands into the
/// versions it stands for.
fn baseline_mark(version: &str, installed_on: Option<String>) -> AppliedRecord {
    AppliedRecord {
        checksum: None,
        ..record(
            format!("{BASELINE_MARK}{version}"),
            None,
            true,
            installed_on,
        )
    }
}

fn no_version(kind: &str) -> HandlerError {
    HandlerError::History {
        table: TABLE,
        reason: format!("a {kind} row has no version"),
    }
}

/// Marks the row a migration started as successful, with its execution time.
pub(super) fn record_finished(dialect: Dialect, row_id: &str, elapsed: Duration) -> Vec<Stmt> {
    let ms = i64::try_from(elapsed.as_millis())
        .unwrap_or(i64::MAX)
        .min(i64::from(i32::MAX));
    let q = |c: &str| dialect.quote_ident(c);
    vec![Stmt::new(
        format!(
            "UPDATE {} SET {} = {}, {} = {} WHERE {} = {} AND {} = {}",
            q(TABLE),
            q("success"),
            boolean(dialect, true),
            q("execution_time"),
            dialect.placeholder(1),
            q("script"),
            dialect.placeholder(2),
            q("success"),
            boolean(dialect, false),
        ),
        vec![Value::Int(ms), Value::Text(row_id.to_owned())],
    )]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handler::Handler;
    use crate::handler::flyway::Flyway;

    fn row(
        rank: i64,
        version: Option<&str>,
        desc: &str,
        kind: &str,
        checksum: Option<i64>,
        success: bool,
    ) -> Vec<Value> {
        vec![
            Value::Int(rank),
            version.map_or(Value::Null, |v| Value::Text(v.into())),
            Value::Text(desc.into()),
            Value::Text(kind.into()),
            Value::Text(format!("V{}__{desc}.sql", version.unwrap_or(""))),
            checksum.map_or(Value::Null, Value::Int),
            Value::Text("2024-01-01 00:00:00".into()),
            Value::Int(i64::from(success)),
        ]
    }

    #[test]
    fn history_flyway_wrote_is_understood() {
        let dir = tempfile::tempdir().unwrap();
        for f in ["V1__a.sql", "V2__b.sql", "V3__c.sql", "R__views.sql"] {
            std::fs::write(dir.path().join(f), "SELECT 1;").unwrap();
        }
        let set = Flyway.load(dir.path(), Dialect::Postgres).unwrap();
        let records = Flyway
            .parse_history(vec![
                row(
                    0,
                    None,
                    "<< Flyway Schema Creation >>",
                    "SCHEMA",
                    None,
                    true,
                ),
                row(
                    1,
                    Some("2"),
                    "<< Flyway Baseline >>",
                    "BASELINE",
                    None,
                    true,
                ),
                row(2, Some("3"), "c", "SQL", Some(7), true),
                row(3, Some("9"), "gone", "SQL", Some(8), true),
                row(4, Some("9"), "gone", "DELETE", None, true),
                row(5, None, "views", "SQL", Some(9), false),
            ])
            .unwrap();
        let records = Flyway.reconcile(&set, records.into());
        assert_eq!(
            super::super::states(&records),
            [
                ("1", RecordState::Applied, None),
                ("2", RecordState::Applied, None),
                ("3", RecordState::Applied, Some("7")),
                ("views", RecordState::Failed, Some("9")),
            ]
        );
    }
}
