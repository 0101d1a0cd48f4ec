//! `dbdeploy backup ENV` (make one now, under the deploy lock so the copy and its manifest
//! agree with the tracking table) and `dbdeploy backups ENV` (list them).

use chrono::Utc;
use serde_json::json;

use super::fail_early;
use crate::backup::{BackupStore, human_bytes};
use crate::cli::GlobalArgs;
use crate::engine::{
    ConnectOptions, Database, Dialect, mysql::MySql, postgres::Postgres, sqlite::Sqlite,
};
use crate::error::{Error, exit};
use crate::output::json::{self, Status};
use crate::output::{Event, Outcome, Printer, Reporter};
use crate::pipeline::backup::Created;
use crate::pipeline::log;
use crate::settings::{EnvSettings, Settings};

struct Chosen {
    env: EnvSettings,
    /// `None` for an external tool.
    handler: Option<&'static dyn crate::handler::Handler>,
}

/// Runs `backup`.
pub async fn create(global: &GlobalArgs, environment: &str, printer: &Printer) -> u8 {
    const OPERATION: &str = "create-backup";
    // The migrations folder is not read: a backup must be possible when it is broken.
    let env = match Settings::load(global).and_then(|s| s.environment(environment)) {
        Ok(env) => env,
        Err(e) => return fail_early(printer, OPERATION, environment, &e.into()),
    };
    let handler = crate::handler::for_tool(env.tool);
    let p = Chosen { env, handler };
    let target = p.env.target.describe();
    printer.event(Event::Start {
        command: "backup",
        environment,
        mode: p.env.mode,
        target: &target,
        tool: crate::handler::tool_name(p.env.tool),
        dry_run: false,
    });
    let result = match p.env.target.dialect() {
        Dialect::Postgres => make::<Postgres>(&p.env, p.handler, printer).await,
        Dialect::MySql => make::<MySql>(&p.env, p.handler, printer).await,
        Dialect::Sqlite => make::<Sqlite>(&p.env, p.handler, printer).await,
    };
    match result {
        Ok(created) => {
            let m = &created.manifest;
            let size = m
                .size_bytes
                .map_or_else(|| "kept by the backup command".to_owned(), human_bytes);
            let message = format!(
                "Backup {} of {environment} written ({size}, {} migration(s) applied). Restore with `dbdeploy rollback {environment} --to {}`.",
                m.id,
                m.migrations.len(),
                m.id
            );
            printer.result(&format!("✓ {message}"));
            if printer.json_mode() {
                printer.json(
                    &json::Document {
                        status: Status::Success,
                        operation: OPERATION,
                        environment,
                        mode: Some(p.env.mode.as_str()),
                        result: json!({
                            "backup_id": m.id,
                            "path": m.file_path(&created.dir),
                            "size_bytes": m.size_bytes,
                            "sha256": m.sha256,
                            "migrations": m.migrations,
                            "schema_fingerprint": m.schema_fingerprint,
                            "duration_ms": m.duration_ms,
                            "pruned": created.pruned,
                        }),
                        message: &message,
                        error: None,
                        recovery: None,
                    }
                    .render(),
                );
            }
            exit::SUCCESS
        }
        Err(e) => fail_early(printer, OPERATION, environment, &e),
    }
}

async fn make<D: Database>(
    env: &EnvSettings,
    handler: Option<&'static dyn crate::handler::Handler>,
    printer: &Printer,
) -> Result<Created, Error> {
    let started_at = Utc::now();
    let opts = ConnectOptions {
        wait: env.connect_wait,
        lock_wait: env.lock_timeout,
        read_only: false,
    };
    let mut db = D::connect(&env.target, opts).await?;
    let keys = crate::handler::take_deploy_locks(&mut db, env.tool, env.lock_timeout).await?;
    let result = crate::pipeline::backup::create(&mut db, env, handler, "manual")
        .await
        .map_err(Error::from);
    for w in crate::engine::unlock_all(&mut db, &keys).await {
        printer.event(Event::Warning(w));
    }
    let run_id = uuid::Uuid::new_v4().to_string();
    let record = log::RunRecord {
        run_id: &run_id,
        environment: &env.name,
        operation: "create-backup",
        status: if result.is_ok() { "success" } else { "error" },
        migrations: Vec::new(),
        started_at,
        finished_at: Utc::now(),
        error: result.as_ref().err(),
        target: env.target.describe(),
        schema: None,
        backup_id: result.as_ref().ok().map(|c| c.manifest.id.as_str()),
        rollback_status: None,
    };
    if let Err(w) = log::write_history(&mut db, &record).await {
        printer.event(Event::Warning(w));
    }
    if let Err(w) = log::write_audit(&env.audit_file, &record) {
        printer.event(Event::Warning(w));
    }
    db.close().await;
    match result {
        Ok(c) => {
            printer.event(Event::Step {
                name: "backup",
                outcome: Outcome::Ok,
                detail: format!("{} in {}", c.manifest.id, c.dir.display()),
            });
            Ok(c)
        }
        Err(e) => Err(e),
    }
}

/// Runs `backups`.
pub fn list(global: &GlobalArgs, environment: &str, printer: &Printer) -> u8 {
    const OPERATION: &str = "list-backups";
    let env = match Settings::load(global).and_then(|s| s.environment(environment)) {
        Ok(env) => env,
        Err(e) => return fail_early(printer, OPERATION, environment, &e.into()),
    };
    let store = BackupStore::new(env.backup.dir.clone(), &env.name);
    let all = match store.list() {
        Ok(all) => all,
        Err(e) => return fail_early(printer, OPERATION, environment, &e.into()),
    };
    let now = Utc::now();
    if all.is_empty() {
        printer.line(&format!(
            "No backups of {environment} in {} yet; make one with `dbdeploy backup {environment}`.",
            store.dir.display()
        ));
    } else {
        printer.line(&format!(
            "{:<28} {:>10} {:>10}  {}",
            "ID", "AGE", "SIZE", "MIGRATIONS"
        ));
    }
    for m in all.iter().rev() {
        let age = age(now - m.created_at);
        let size = m.size_bytes.map_or_else(|| "-".to_owned(), human_bytes);
        let last = m.migrations.last().map_or("none", String::as_str);
        printer.line(&format!(
            "{:<28} {age:>10} {size:>10}  {} (last: {last})",
            m.id,
            m.migrations.len()
        ));
    }
    let message = format!("{} backup(s) of {environment}", all.len());
    printer.result(&message);
    if printer.json_mode() {
        let backups: Vec<_> = all
            .iter()
            .rev()
            .map(|m| {
                json!({
                    "id": m.id,
                    "created_at": m.created_at,
                    "age_seconds": (now - m.created_at).num_seconds(),
                    "size_bytes": m.size_bytes,
                    "path": m.file_path(&store.dir),
                    "sha256": m.sha256,
                    "engine": m.engine,
                    "provider": m.provider,
                    "migrations": m.migrations,
                    "schema_fingerprint": m.schema_fingerprint,
                    "reason": m.reason,
                })
            })
            .collect();
        printer.json(
            &json::Document {
                status: Status::Success,
                operation: OPERATION,
                environment,
                mode: Some(env.mode.as_str()),
                result: json!({ "dir": store.dir, "backups": backups }),
                message: &message,
                error: None,
                recovery: None,
            }
            .render(),
        );
    }
    exit::SUCCESS
}

/// A short age: `42s`, `5m`, `3h`, `2d`.
fn age(d: chrono::TimeDelta) -> String {
    let s = d.num_seconds().max(0);
    match s {
        0..60 => format!("{s}s ago"),
        60..3600 => format!("{}m ago", s / 60),
        3600..86_400 => format!("{}h ago", s / 3600),
        _ => format!("{}d ago", s / 86_400),
    }
}
