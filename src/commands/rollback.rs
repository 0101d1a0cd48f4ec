//! `dbdeploy rollback ENV [--to BACKUP_ID]`: restore a backup (the newest by default) under the
//! deploy lock, with approval on protected environments, then verify the restore against the
//! manifest. The migrations folder is not needed: a rollback must work when it is broken.

use chrono::Utc;
use serde_json::json;

use super::fail_early;
use crate::backup::{BackupStore, Manifest, human_bytes};
use crate::cli::{GlobalArgs, RollbackArgs};
use crate::engine::{
    ConnectOptions, Database, Dialect, mysql::MySql, postgres::Postgres, sqlite::Sqlite,
};
use crate::error::{Error, exit};
use crate::handler::{self, Handler};
use crate::output::json::{self, Status};
use crate::output::{Event, Outcome, Printer, Reporter};
use crate::pipeline::{approve, log, read_records, rollback};
use crate::settings::{EnvSettings, Settings};

const OPERATION: &str = "rollback";

/// Runs `rollback`.
pub async fn run(global: &GlobalArgs, args: RollbackArgs, printer: &Printer) -> u8 {
    let environment = &args.environment;
    let loaded = Settings::load(global).and_then(|s| {
        let env = s.environment(environment)?;
        Ok((s.interactive, env))
    });
    let (interactive, env) = match loaded {
        Ok(x) => x,
        Err(e) => return fail_early(printer, OPERATION, environment, &e.into()),
    };
    let handler = handler::for_tool(env.tool);
    let store = BackupStore::new(env.backup.dir.clone(), &env.name);
    let manifest = match store.find(args.to.as_deref()) {
        Ok(m) => m,
        Err(e) => return fail_early(printer, OPERATION, environment, &e.into()),
    };
    let target = env.target.describe();
    printer.event(Event::Start {
        command: "rollback",
        environment,
        mode: env.mode,
        target: &target,
        tool: handler::tool_name(env.tool),
        dry_run: false,
    });
    let session = Session {
        env: &env,
        handler,
        store: &store,
        manifest: &manifest,
        yes: args.yes,
        interactive,
        printer,
    };
    let result = match env.target.dialect() {
        Dialect::Postgres => session.run::<Postgres>().await,
        Dialect::MySql => session.run::<MySql>().await,
        Dialect::Sqlite => session.run::<Sqlite>().await,
    };
    match result {
        Ok(verified) => {
            let message = if handler.is_some() {
                format!(
                    "Restored {} into {environment} and verified it ({} migration(s) applied, as when the backup was taken).",
                    manifest.id,
                    manifest.migrations.len()
                )
            } else {
                format!(
                    "Restored {} into {environment} and verified it (the schema is as when the backup was taken).",
                    manifest.id
                )
            };
            printer.result(&format!("✓ {message}"));
            if printer.json_mode() {
                printer.json(
                    &json::Document {
                        status: Status::Success,
                        operation: OPERATION,
                        environment,
                        mode: Some(env.mode.as_str()),
                        result: json!({
                            "backup_id": manifest.id,
                            "created_at": manifest.created_at,
                            "migrations": manifest.migrations,
                            "schema_fingerprint": manifest.schema_fingerprint,
                            "verified": verified,
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
        Err(e) => {
            let cancelled = matches!(e, Error::Approval(_));
            printer.error(&e);
            let message = if cancelled {
                format!("Rollback of {environment} cancelled. Nothing was changed.")
            } else {
                format!("Rollback of {environment} to {} failed.", manifest.id)
            };
            printer.result(&format!("✗ {message}"));
            if printer.json_mode() {
                printer.json(
                    &json::Document {
                        status: if cancelled { Status::Cancelled } else { Status::Error },
                        operation: OPERATION,
                        environment,
                        mode: Some(env.mode.as_str()),
                        result: json!({ "backup_id": manifest.id }),
                        message: &message,
                        error: Some(&e),
                        recovery: Some(json!({
                            "backup_id": manifest.id,
                            "rollback_command": format!("dbdeploy rollback {environment} --to {}", manifest.id),
                            "rollback_initiated": !cancelled,
                            "rollback_status": if cancelled { "cancelled".to_owned() } else { format!("failed: {e}") },
                        })),
                    }
                    .render(),
                );
            }
            e.exit_code()
        }
    }
}

struct Session<'a> {
    env: &'a EnvSettings,
    /// `None` for an external tool.
    handler: Option<&'static dyn Handler>,
    store: &'a BackupStore,
    manifest: &'a Manifest,
    yes: bool,
    interactive: bool,
    printer: &'a Printer,
}

impl Session<'_> {
    async fn run<D: Database>(&self) -> Result<Vec<String>, Error> {
        let started_at = Utc::now();
        let opts = ConnectOptions {
            wait: self.env.connect_wait,
            lock_wait: self.env.lock_timeout,
            read_only: false,
        };
        let mut db = D::connect(&self.env.target, opts).await?;
        let keys =
            handler::take_deploy_locks(&mut db, self.env.tool, self.env.lock_timeout).await?;
        let result = self.locked(&mut db).await;
        for w in crate::engine::unlock_all(&mut db, &keys).await {
            self.printer.event(Event::Warning(w));
        }
        let cancelled = matches!(result, Err(Error::Approval(_)));
        if !cancelled {
            // Before the schema is read (see `prepare_history`); a failure is reported below.
            let _ = log::prepare_history(&mut db).await;
        }
        let schema = if result.is_ok() || matches!(result, Err(Error::Backup(_))) {
            crate::schema::stamp::observe(&mut db, None).await.ok()
        } else {
            None
        };
        let status = match &result {
            Ok(_) => "succeeded".to_owned(),
            Err(e) => format!("failed: {e}"),
        };
        let record = log::RunRecord {
            run_id: &uuid::Uuid::new_v4().to_string(),
            environment: &self.env.name,
            operation: OPERATION,
            status: match &result {
                Ok(_) => "success",
                Err(_) if cancelled => "cancelled",
                Err(_) => "error",
            },
            migrations: self.manifest.migrations.clone(),
            started_at,
            finished_at: Utc::now(),
            error: result.as_ref().err(),
            target: self.env.target.describe(),
            schema: schema.as_ref(),
            backup_id: Some(&self.manifest.id),
            rollback_status: Some(&status),
        };
        if !cancelled && let Err(w) = log::insert_history(&mut db, &record).await {
            self.printer.event(Event::Warning(w));
        }
        if let Err(w) = log::write_audit(&self.env.audit_file, &record) {
            self.printer.event(Event::Warning(w));
        }
        db.close().await;
        result
    }

    async fn locked<D: Database>(&self, db: &mut D) -> Result<Vec<String>, Error> {
        let m = self.manifest;
        self.store.verify_file(m).await?;
        self.printer.event(Event::Step {
            name: "backup",
            outcome: Outcome::Ok,
            detail: format!(
                "{} ({}, taken {}): sha256 matches its manifest",
                m.id,
                m.size_bytes
                    .map_or_else(|| "size unknown".to_owned(), human_bytes),
                m.created_at.format("%Y-%m-%d %H:%M:%S UTC")
            ),
        });
        let now_applied = read_records(db, self.handler)
            .await?
            .into_iter()
            .filter(|r| r.state == crate::migration::RecordState::Applied)
            .count();
        let policy = approve::ApprovalPolicy {
            required: self.env.approval_required,
            yes: self.yes,
            interactive: self.interactive,
        };
        if policy.required && !policy.yes && policy.interactive {
            self.printer.event(Event::Warning(format!(
                "environment `{}` is protected: its database will be replaced by backup {}",
                self.env.name, m.id
            )));
            // An external tool's history is its own: there is nothing to count.
            if self.handler.is_some() {
                self.printer.event(Event::Note(format!(
                    "now: {now_applied} migration(s) applied; after: {} (last: {})",
                    m.migrations.len(),
                    m.migrations.last().map_or("none", String::as_str)
                )));
            }
            self.printer.event(Event::Note(
                "every change made since the backup (schema and data) will be lost".into(),
            ));
        }
        approve::approve(Vec::new(), policy, &self.env.name).await?;
        self.printer.event(Event::Step {
            name: "approve",
            outcome: Outcome::Ok,
            detail: if !policy.required {
                "not required".into()
            } else if policy.yes {
                "--yes".into()
            } else {
                "confirmed".into()
            },
        });
        let started = std::time::Instant::now();
        let restored = rollback::restore(db, self.env, self.handler, m, true).await?;
        self.printer.event(Event::Step {
            name: "restore",
            outcome: Outcome::Ok,
            detail: format!(
                "{} restored in {}",
                m.id,
                crate::output::human::duration(started.elapsed())
            ),
        });
        for v in &restored.verified {
            self.printer.event(Event::Step {
                name: "verify",
                outcome: Outcome::Ok,
                detail: v.clone(),
            });
        }
        Ok(restored.verified)
    }
}
