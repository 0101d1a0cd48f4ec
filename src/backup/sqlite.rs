//! SQLite: `VACUUM INTO` writes a consistent, compact copy while the database is in use.
//!
//! A restore does not swap files: an application that has the database open would keep
//! writing to the old, unlinked file. Instead the backup is attached and copied into the live
//! file in one transaction (schema objects in their original order, then every row, then
//! `sqlite_sequence` and `user_version`), so a failed restore changes nothing.

use std::fs::File;
use std::path::Path;

use super::{BackupError, BackupProvider, Marker, Names, RestoreInput, Stopped, Written};
use crate::engine::{ColKind, Database, Stmt, Value};
use crate::history::HISTORY_TABLE;

/// The SQLite provider.
#[derive(Debug, Clone, Copy)]
pub struct SqliteBackup;

const ALIAS: &str = "dbdeploy_backup";

fn failed(what: &str, e: impl std::fmt::Display) -> BackupError {
    BackupError::Failed {
        what: what.to_owned(),
        message: e.to_string(),
    }
}

fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

async fn strings<D: Database>(
    db: &mut D,
    sql: &str,
    what: &str,
) -> Result<Vec<Vec<String>>, BackupError> {
    let rows = db
        .fetch(
            &Stmt::raw(sql),
            &[ColKind::Text, ColKind::Text, ColKind::Text],
        )
        .await
        .map_err(|e| failed(what, e))?;
    Ok(rows
        .into_iter()
        .map(|r| {
            r.into_iter()
                .map(|v| match v {
                    Value::Text(s) => s,
                    Value::Int(i) => i.to_string(),
                    _ => String::new(),
                })
                .collect()
        })
        .collect())
}

impl BackupProvider for SqliteBackup {
    fn names(&self) -> Names {
        Names {
            name: "sqlite",
            extension: "sqlite",
            directory: false,
        }
    }

    async fn preflight<D: Database>(&self, _db: &mut D) -> Result<String, BackupError> {
        Ok("SQLite VACUUM INTO".into())
    }

    async fn create<D: Database>(
        &self,
        db: &mut D,
        _id: &str,
        out: &Path,
        _file: &File,
    ) -> Result<Written, BackupError> {
        let path = out.to_str().ok_or_else(|| BackupError::Io {
            path: out.to_owned(),
            what: "the backup path is not valid UTF-8".into(),
            source: None,
        })?;
        db.execute(&Stmt::new(
            "VACUUM INTO ?",
            vec![Value::Text(path.to_owned())],
        ))
        .await
        .map_err(|e| failed("VACUUM INTO", e))?;
        // SQLite wrote by path, in a folder only this user can change; read back what is
        // there now, never through a link.
        super::process::hash_file(out).await
    }

    async fn restore<D: Database>(
        &self,
        db: &mut D,
        input: &RestoreInput<'_>,
        marker: &mut Marker,
    ) -> Result<(), Stopped> {
        // One transaction on this connection: whatever fails, nothing changed.
        attach_and_copy(db, &input.path, &marker.clear_sql(db.dialect()))
            .await
            .map_err(Stopped::unchanged)
    }

    fn atomic_restore(&self) -> bool {
        true
    }
}

async fn attach_and_copy<D: Database>(
    db: &mut D,
    file: &Path,
    clear_marker: &str,
) -> Result<(), BackupError> {
    let path = file.to_str().ok_or_else(|| BackupError::Io {
        path: file.to_owned(),
        what: "the backup path is not valid UTF-8".into(),
        source: None,
    })?;
    let fk = super::scalar_int(db, &Stmt::raw("PRAGMA foreign_keys"))
        .await
        .map_err(|e| failed("reading PRAGMA foreign_keys", e))?
        .unwrap_or(0);
    // Foreign keys are checked once, on the complete copy, not row by row while tables are
    // half filled; the pragma only takes effect outside a transaction.
    db.execute(&Stmt::raw("PRAGMA foreign_keys = OFF"))
        .await
        .map_err(|e| failed("PRAGMA foreign_keys", e))?;
    db.execute(&Stmt::new(
        format!("ATTACH DATABASE ? AS {ALIAS}"),
        vec![Value::Text(path.to_owned())],
    ))
    .await
    .map_err(|e| failed("attaching the backup", e))?;
    let copied = copy_in(db, clear_marker).await;
    let _ = db
        .execute(&Stmt::raw(format!("DETACH DATABASE {ALIAS}")))
        .await;
    let _ = db
        .execute(&Stmt::raw(format!("PRAGMA foreign_keys = {fk}")))
        .await;
    copied
}

async fn copy_in<D: Database>(db: &mut D, clear_marker: &str) -> Result<(), BackupError> {
    let what = "restoring the SQLite backup";
    db.execute(&Stmt::raw("BEGIN IMMEDIATE"))
        .await
        .map_err(|e| failed(what, e))?;
    let mut result = copy_in_transaction(db).await;
    if result.is_ok() {
        // The restore's marker goes with the restore: both commit, or neither.
        result = db
            .execute(&Stmt::raw(clear_marker))
            .await
            .map(drop)
            .map_err(|e| failed(what, e));
    }
    match result {
        Ok(()) => db
            .execute(&Stmt::raw("COMMIT"))
            .await
            .map(drop)
            .map_err(|e| failed(what, e)),
        Err(e) => {
            let _ = db.execute(&Stmt::raw("ROLLBACK")).await;
            Err(e)
        }
    }
}

async fn copy_in_transaction<D: Database>(db: &mut D) -> Result<(), BackupError> {
    let what = "restoring the SQLite backup";
    let skip = format!("name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name <> '{HISTORY_TABLE}'");
    // Drop what is there now: views and triggers first, then tables (their indexes go with them).
    let live = strings(
        db,
        &format!(
            "SELECT type, name, '' FROM main.sqlite_schema WHERE {skip} AND type IN ('view', 'trigger', 'table') \
             ORDER BY CASE type WHEN 'view' THEN 0 WHEN 'trigger' THEN 1 ELSE 2 END"
        ),
        what,
    )
    .await?;
    for row in &live {
        let kind = match row[0].as_str() {
            "view" => "VIEW",
            "trigger" => "TRIGGER",
            _ => "TABLE",
        };
        db.execute(&Stmt::raw(format!(
            "DROP {kind} IF EXISTS main.{}",
            quote(&row[1])
        )))
        .await
        .map_err(|e| failed(what, e))?;
    }
    // Recreate tables, copy rows, then indexes, triggers and views, in the backup's order.
    let objects = strings(
        db,
        &format!(
            "SELECT type, name, sql FROM {ALIAS}.sqlite_schema WHERE {skip} AND sql IS NOT NULL ORDER BY rowid"
        ),
        what,
    )
    .await?;
    for row in objects.iter().filter(|r| r[0] == "table") {
        db.execute(&Stmt::raw(row[2].clone()))
            .await
            .map_err(|e| failed(what, e))?;
        let cols = strings(
            db,
            &format!(
                "SELECT name, '', '' FROM pragma_table_xinfo({}, '{ALIAS}') WHERE hidden IN (0, 1)",
                sql_string(&row[1])
            ),
            what,
        )
        .await?;
        if cols.is_empty() {
            continue;
        }
        let list = cols
            .iter()
            .map(|c| quote(&c[0]))
            .collect::<Vec<_>>()
            .join(", ");
        let t = quote(&row[1]);
        db.execute(&Stmt::raw(format!(
            "INSERT INTO main.{t} ({list}) SELECT {list} FROM {ALIAS}.{t}"
        )))
        .await
        .map_err(|e| failed(what, e))?;
    }
    let has_seq = |schema: &str| {
        format!("SELECT 'x', '', '' FROM {schema}.sqlite_schema WHERE name = 'sqlite_sequence'")
    };
    if !strings(db, &has_seq("main"), what).await?.is_empty() {
        db.execute(&Stmt::raw("DELETE FROM main.sqlite_sequence"))
            .await
            .map_err(|e| failed(what, e))?;
        if !strings(db, &has_seq(ALIAS), what).await?.is_empty() {
            db.execute(&Stmt::raw(format!(
                "INSERT INTO main.sqlite_sequence (name, seq) SELECT name, seq FROM {ALIAS}.sqlite_sequence"
            )))
            .await
            .map_err(|e| failed(what, e))?;
        }
    }
    for row in objects.iter().filter(|r| r[0] != "table") {
        db.execute(&Stmt::raw(row[2].clone()))
            .await
            .map_err(|e| failed(what, e))?;
    }
    let version = super::scalar_int(db, &Stmt::raw(format!("PRAGMA {ALIAS}.user_version")))
        .await
        .map_err(|e| failed(what, e))?
        .unwrap_or(0);
    db.execute(&Stmt::raw(format!("PRAGMA main.user_version = {version}")))
        .await
        .map_err(|e| failed(what, e))?;
    let violations = strings(
        db,
        "SELECT \"table\", '', '' FROM pragma_foreign_key_check",
        what,
    )
    .await?;
    if let Some(v) = violations.first() {
        return Err(failed(
            what,
            format!(
                "the restored data violates a foreign key of table `{}`",
                v[0]
            ),
        ));
    }
    Ok(())
}

fn sql_string(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}
