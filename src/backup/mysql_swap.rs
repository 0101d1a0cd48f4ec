//! An all-or-nothing MySQL/MariaDB restore. DDL is not transactional there, so a restore that
//! drops the live tables and then loads the dump leaves a half-empty database when the load
//! stops (a DEFINER the user may not set, a full disk, a kill). Instead:
//!
//! 1. the dump is loaded into a scratch schema on the same server — nothing live is touched,
//!    and a dump this user cannot load (DEFINER clauses needing SUPER / SET USER, ...) fails
//!    here, before anything is dropped;
//! 2. one multi-table `RENAME TABLE` moves every live table into a schema of replaced tables
//!    and every restored table into the live schema: a single atomic statement. Triggers
//!    cannot move between schemas with their table, so the live ones are dropped just before
//!    (and put back if the rename fails);
//! 3. views, routines and triggers, which cannot be renamed across schemas, are created in
//!    the live schema from their definitions in the scratch schema — the only non-atomic
//!    part, made of statements this user just ran successfully on the scratch copy. If it
//!    stops, the error says which objects are missing and the replaced tables are kept;
//! 4. the scratch schema and the replaced tables are dropped.
//!
//! A user who may not create schemas gets the in-place restore instead (drop, then load:
//! `mysql_in_place.rs`), after checking the DEFINER clauses of the dump against its
//! privileges, and with the state recorded before the drop. Events are neither dumped nor
//! dropped.

use std::fs::File;
use std::io::{Seek, SeekFrom};
use std::process::Stdio;

use super::mysql::MySqlBackup;
use super::mysql_in_place::in_place;
use super::process;
use super::{BackupError, Marker, RestoreInput, Stopped, scalar_text};
use crate::engine::{ColKind, Database, DbError, Stmt, Value};
use crate::history::HISTORY_TABLE;

pub(super) fn failed(what: &str, e: impl std::fmt::Display) -> BackupError {
    BackupError::Failed {
        what: what.to_owned(),
        message: e.to_string(),
    }
}

/// Runs one statement of DDL (or any statement MySQL will not prepare) as plain text.
pub(super) async fn ddl<D: Database>(db: &mut D, sql: &str) -> Result<(), String> {
    db.run_script(sql).await.map_err(|e| e.message)
}

fn unchanged(what: &str, e: impl std::fmt::Display) -> Stopped {
    Stopped::unchanged(failed(what, e))
}

pub(super) fn q(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

fn lit(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
}

/// Restores `input` into the connection's schema.
///
/// # Errors
/// What stopped it and the state it left.
pub async fn restore<D: Database>(
    client: &MySqlBackup,
    db: &mut D,
    input: &RestoreInput<'_>,
    marker: &mut Marker,
) -> Result<(), Stopped> {
    let tool = MySqlBackup::client().await.map_err(Stopped::unchanged)?;
    let Some(file) = input.file else {
        return Err(Stopped::unchanged(failed(
            "restoring the backup",
            "the backup has no data file",
        )));
    };
    let live = client.database.clone();
    let names = Names::new(&live);
    drop_leftovers(db, &names).await;
    let create = format!(
        "CREATE DATABASE {} CHARACTER SET = {} COLLATE = {}",
        q(&names.scratch),
        charset(db, "DEFAULT_CHARACTER_SET_NAME").await,
        charset(db, "DEFAULT_COLLATION_NAME").await
    );
    match ddl(db, &create).await {
        Ok(()) => {
            let swap = Swap {
                client,
                tool,
                live: &live,
                names: &names,
            };
            let result = swap.run(db, file, marker).await;
            if result.is_err() {
                let _ = ddl(
                    db,
                    &format!("DROP DATABASE IF EXISTS {}", q(&names.scratch)),
                )
                .await;
            }
            result
        }
        Err(e) if e.to_string().to_ascii_lowercase().contains("denied") => {
            in_place(client, tool, db, file, marker).await
        }
        Err(e) => Err(Stopped::unchanged(failed(
            "creating a scratch schema for the restore",
            e,
        ))),
    }
}

/// The schemas of one restore: named after the live schema (a digest, so any name fits in
/// 64 characters) and the moment, so that leftovers of a killed restore of this schema can
/// be found and the text replacement below can never match anything else.
struct Names {
    scratch: String,
    replaced: String,
    prefix: String,
}

impl Names {
    fn new(live: &str) -> Self {
        use sha2::{Digest, Sha256};
        let digest = crate::checksum::hex(&Sha256::digest(live.as_bytes()));
        let prefix = format!("_dbd_new_{}_", &digest[..10]);
        let tag = uuid::Uuid::new_v4().simple().to_string();
        Self {
            scratch: format!("{prefix}{}", &tag[..12]),
            replaced: format!("_dbd_old_{}_{}", &digest[..10], &tag[..12]),
            prefix,
        }
    }
}

async fn charset<D: Database>(db: &mut D, column: &str) -> String {
    let sql =
        format!("SELECT {column} FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = DATABASE()");
    match scalar_text(db, &Stmt::raw(sql)).await {
        Ok(Some(s)) if s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') => s,
        _ => "DEFAULT".into(),
    }
}

/// Drops scratch schemas of this live schema that a killed restore left (the deploy lock is
/// held, so none is in use). Schemas of replaced tables are kept: they may be all that is
/// left of the data, and the unfinished-restore record names them.
async fn drop_leftovers<D: Database>(db: &mut D, names: &Names) {
    let pattern = format!("{}%", names.prefix.replace('_', "\\_"));
    let Ok(rows) = db
        .fetch(
            &Stmt::new(
                "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE ?",
                vec![Value::Text(pattern)],
            ),
            &[ColKind::Text],
        )
        .await
    else {
        return;
    };
    for name in rows
        .iter()
        .filter_map(|r| r.first().and_then(Value::as_text))
    {
        let _ = ddl(db, &format!("DROP DATABASE IF EXISTS {}", q(name))).await;
    }
}

/// Loads the dump into `schema` with the client tool.
pub(super) async fn load(
    client: &MySqlBackup,
    tool: &str,
    schema: &str,
    file: &File,
) -> Result<(), BackupError> {
    let io = |e: std::io::Error| failed("reading the backup file", e);
    let mut input = file.try_clone().map_err(io)?;
    input.seek(SeekFrom::Start(0)).map_err(io)?;
    let mut cmd = client.command(tool);
    cmd.arg("--binary-mode").arg(schema);
    process::run(cmd, tool, Stdio::from(input)).await.map(drop)
}

/// The objects of a schema, dbdeploy's history table aside.
#[derive(Debug, Default)]
pub(super) struct Objects {
    pub(super) tables: Vec<String>,
    pub(super) views: Vec<String>,
    pub(super) triggers: Vec<String>,
    /// (`PROCEDURE` or `FUNCTION`, name).
    pub(super) routines: Vec<(String, String)>,
}

impl Objects {
    pub(super) async fn of<D: Database>(db: &mut D, schema: &str) -> Result<Self, DbError> {
        let pairs = |sql: &str| Stmt::new(sql.to_owned(), vec![Value::Text(schema.to_owned())]);
        let text = |r: &Vec<Value>, i: usize| {
            r.get(i)
                .and_then(Value::as_text)
                .unwrap_or_default()
                .to_owned()
        };
        let mut objects = Self::default();
        for r in db
            .fetch(
                &pairs("SELECT TABLE_TYPE, TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME"),
                &[ColKind::Text, ColKind::Text],
            )
            .await?
        {
            let name = text(&r, 1);
            if name == HISTORY_TABLE {
                continue;
            }
            if text(&r, 0) == "VIEW" {
                objects.views.push(name);
            } else {
                objects.tables.push(name);
            }
        }
        for r in db
            .fetch(
                &pairs("SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ? ORDER BY TRIGGER_NAME"),
                &[ColKind::Text],
            )
            .await?
        {
            objects.triggers.push(text(&r, 0));
        }
        for r in db
            .fetch(
                &pairs("SELECT ROUTINE_TYPE, ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ? ORDER BY ROUTINE_NAME"),
                &[ColKind::Text, ColKind::Text],
            )
            .await?
        {
            objects.routines.push((text(&r, 0), text(&r, 1)));
        }
        Ok(objects)
    }
}

/// A statement that creates an object, with the `sql_mode` it was created under.
struct Definition {
    what: String,
    sql: String,
    sql_mode: Option<String>,
}

/// `SHOW CREATE kind schema.name`: the definition at `column`, the sql_mode at `mode`.
async fn show_create<D: Database>(
    db: &mut D,
    kind: &str,
    schema: &str,
    name: &str,
    column: usize,
    mode: Option<usize>,
) -> Result<Definition, DbError> {
    let cols = vec![ColKind::Text; column + 1];
    let rows = db
        .fetch(
            &Stmt::raw(format!("SHOW CREATE {kind} {}.{}", q(schema), q(name))),
            &cols,
        )
        .await?;
    let row = rows.into_iter().next().unwrap_or_default();
    let text = |i: usize| row.get(i).and_then(Value::as_text).map(str::to_owned);
    Ok(Definition {
        what: format!("{} `{name}`", kind.to_ascii_lowercase()),
        sql: text(column).unwrap_or_default(),
        sql_mode: mode.and_then(text),
    })
}

/// Runs definitions in the connection's schema, each under its own sql_mode; views that
/// read other views are retried until no more succeed. Returns what could not be created.
async fn create_all<D: Database>(db: &mut D, defs: Vec<Definition>) -> Vec<(String, String)> {
    let original = scalar_text(db, &Stmt::raw("SELECT @@SESSION.sql_mode"))
        .await
        .ok()
        .flatten();
    let mut pending = defs;
    loop {
        let mut failures = Vec::new();
        let before = pending.len();
        for def in pending {
            if let Some(mode) = &def.sql_mode {
                let _ = ddl(db, &format!("SET SESSION sql_mode = {}", lit(mode))).await;
            }
            if let Err(e) = ddl(db, &def.sql).await {
                failures.push((def, e.to_string()));
            }
        }
        if failures.is_empty() || failures.len() == before {
            if let Some(mode) = &original {
                let _ = ddl(db, &format!("SET SESSION sql_mode = {}", lit(mode))).await;
            }
            return failures.into_iter().map(|(d, e)| (d.what, e)).collect();
        }
        pending = failures.into_iter().map(|(d, _)| d).collect();
    }
}

/// The all-or-nothing restore through a scratch schema.
struct Swap<'a> {
    client: &'a MySqlBackup,
    tool: &'a str,
    live: &'a str,
    names: &'a Names,
}

impl Swap<'_> {
    async fn run<D: Database>(
        &self,
        db: &mut D,
        file: &File,
        marker: &mut Marker,
    ) -> Result<(), Stopped> {
        let scratch = &self.names.scratch;
        let interrupted = || crate::interrupt::requested();
        marker
            .update(
                db,
                &format!(
                    "nothing was changed yet: the backup was being loaded into the scratch schema `{scratch}`"
                ),
            )
            .await
            .map_err(|e| Stopped::unchanged(failed("recording the restore", e)))?;
        load(self.client, self.tool, scratch, file)
            .await
            .map_err(|e| Stopped::unchanged(e).interrupted(interrupted()))?;
        if interrupted() {
            return Err(Stopped::unchanged(process::stopped("the restore")).interrupted(true));
        }
        let new = Objects::of(db, scratch)
            .await
            .map_err(|e| unchanged("reading the restored objects", e))?;
        let old = Objects::of(db, self.live)
            .await
            .map_err(|e| unchanged("reading the live objects", e))?;
        let mut defs = Vec::new();
        for v in &new.views {
            let mut d = show_create(db, "VIEW", scratch, v, 1, None)
                .await
                .map_err(|e| unchanged("reading a restored view", e))?;
            // The view was created in the scratch schema: its references name it.
            d.sql = d.sql.replace(&format!("{}.", q(scratch)), "");
            defs.push(d);
        }
        for (kind, name) in &new.routines {
            defs.push(
                show_create(db, kind, scratch, name, 2, Some(1))
                    .await
                    .map_err(|e| unchanged("reading a restored routine", e))?,
            );
        }
        for t in &new.triggers {
            defs.push(
                show_create(db, "TRIGGER", scratch, t, 2, Some(1))
                    .await
                    .map_err(|e| unchanged("reading a restored trigger", e))?,
            );
        }
        let mut live_triggers = Vec::new();
        for t in &old.triggers {
            live_triggers.push(
                show_create(db, "TRIGGER", self.live, t, 2, Some(1))
                    .await
                    .map_err(|e| unchanged("reading a live trigger", e))?,
            );
        }
        // Triggers cannot move between schemas: those of the scratch copy are recreated
        // from `defs`, the live ones from `live_triggers` if the swap fails.
        for t in &new.triggers {
            ddl(db, &format!("DROP TRIGGER {}.{}", q(scratch), q(t)))
                .await
                .map_err(|e| unchanged("preparing the restored tables", e))?;
        }
        ddl(db, &format!("CREATE DATABASE {}", q(&self.names.replaced)))
            .await
            .map_err(|e| unchanged("creating the schema for the replaced tables", e))?;
        let kept = format!("schema `{}`", self.names.replaced);
        marker
            .update(
                db,
                &format!(
                    "the live triggers were being dropped and the tables swapped in one RENAME TABLE; if it did not run, the tables are unchanged and only triggers ({}) may be missing; if it ran, the replaced tables are kept in {kept}",
                    if old.triggers.is_empty() { "none".to_owned() } else { old.triggers.join(", ") }
                ),
            )
            .await
            .map_err(|e| unchanged("recording the restore", e))?;
        for t in &old.triggers {
            if let Err(e) = ddl(db, &format!("DROP TRIGGER {}.{}", q(self.live), q(t))).await {
                return Err(self
                    .put_back(db, live_triggers, failed("dropping a live trigger", e))
                    .await);
            }
        }
        let renames: Vec<String> = old
            .tables
            .iter()
            .map(|t| {
                format!(
                    "{}.{} TO {}.{}",
                    q(self.live),
                    q(t),
                    q(&self.names.replaced),
                    q(t)
                )
            })
            .chain(
                new.tables
                    .iter()
                    .map(|t| format!("{}.{} TO {}.{}", q(scratch), q(t), q(self.live), q(t))),
            )
            .collect();
        if !renames.is_empty()
            && let Err(e) = ddl(db, &format!("RENAME TABLE {}", renames.join(", "))).await
        {
            return Err(self
                .put_back(db, live_triggers, failed("swapping the tables", e))
                .await);
        }
        marker
            .update(
                db,
                &format!(
                    "the backup's tables are in place, but its views, routines and triggers were being created (the live ones are being dropped); the replaced tables are kept in {kept}"
                ),
            )
            .await
            .map_err(|e| Stopped {
                kept: Some(kept.clone()),
                ..Stopped::partial(
                    "the backup's tables are in place; its views, routines and triggers were not created yet".into(),
                    failed("recording the restore", e),
                )
            })?;
        let mut missing = Vec::new();
        for v in &old.views {
            if let Err(e) = ddl(
                db,
                &format!("DROP VIEW IF EXISTS {}.{}", q(self.live), q(v)),
            )
            .await
            {
                missing.push((format!("dropping view `{v}`"), e.to_string()));
            }
        }
        for (kind, name) in &old.routines {
            if let Err(e) = ddl(
                db,
                &format!("DROP {kind} IF EXISTS {}.{}", q(self.live), q(name)),
            )
            .await
            {
                missing.push((
                    format!("dropping {} `{name}`", kind.to_ascii_lowercase()),
                    e.to_string(),
                ));
            }
        }
        missing.extend(create_all(db, defs).await);
        if !missing.is_empty() {
            let names: Vec<&str> = missing.iter().map(|(w, _)| w.as_str()).collect();
            let cause = failed("creating views, routines and triggers", &missing[0].1);
            return Err(Stopped {
                kept: Some(kept),
                ..Stopped::partial(
                    format!(
                        "the backup's tables are in place, but these steps failed: {}",
                        names.join(", ")
                    ),
                    cause,
                )
            });
        }
        for schema in [scratch, &self.names.replaced] {
            let _ = ddl(db, &format!("DROP DATABASE IF EXISTS {}", q(schema))).await;
        }
        Ok(())
    }

    /// After a failed swap: the live tables did not move; puts their triggers back.
    async fn put_back<D: Database>(
        &self,
        db: &mut D,
        live_triggers: Vec<Definition>,
        cause: BackupError,
    ) -> Stopped {
        let _ = ddl(
            db,
            &format!("DROP DATABASE IF EXISTS {}", q(&self.names.replaced)),
        )
        .await;
        let lost = create_all(db, live_triggers).await;
        if lost.is_empty() {
            Stopped::unchanged(cause)
        } else {
            let names: Vec<&str> = lost.iter().map(|(w, _)| w.as_str()).collect();
            Stopped::partial(
                format!(
                    "the tables are unchanged, but these live triggers were dropped and could not be created again: {}",
                    names.join(", ")
                ),
                cause,
            )
        }
    }
}
