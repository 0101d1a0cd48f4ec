//! `dbdeploy rollback ENV [--to BACKUP_ID] [--from-other-database]`: restore a backup of this
//! environment's database (the newest by default) through the pipeline — under the deploy
//! lock, with approval on protected environments — then verify the restore against the
//! manifest. The migrations folder is not needed: a rollback must work
//! when it is broken.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{Needs, execute, setup};
use crate::backup::BackupStore;
use crate::cli::RollbackArgs;
use crate::config::ConfigError;
use crate::error::Error;
use crate::output::{Printer, Recovery, Response, Status};
use crate::pipeline::restore::{Restore, retry_command};
use crate::pipeline::{Ended, RunOptions};
use crate::settings::Settings;

const OPERATION: &str = "rollback";

/// A verified restore.
#[derive(Serialize)]
struct Restored<'a> {
    backup_id: &'a str,
    created_at: DateTime<Utc>,
    migrations: &'a [String],
    schema_fingerprint: &'a str,
    verified: &'a [String],
}

/// The backup a failed restore was about.
#[derive(Serialize)]
struct Attempted<'a> {
    backup_id: Option<&'a str>,
}

/// Runs `rollback`.
pub async fn run(settings: &Settings, args: RollbackArgs, printer: &Printer) -> Response {
    let environment = &args.environment;
    match settings.fleet(environment) {
        Ok(Some(fleet)) => return super::fleet::rollback(settings, &fleet, args, printer).await,
        Ok(None) if args.run.is_some() => {
            let e = ConfigError::Usage(format!(
                "--run undoes a fleet run, and environment `{environment}` is one database: use --to BACKUP_ID (`dbdeploy backups {environment}`)"
            ));
            return Response::failed(OPERATION, environment, e.into());
        }
        Ok(None) => {}
        Err(e) => return Response::failed(OPERATION, environment, e.into()),
    }
    let setup = match setup(settings, environment, Needs::Tracking) {
        Ok(s) => s,
        Err(e) => return Response::failed(OPERATION, environment, e),
    };
    // Replacing a database with another one's backup is never approved by policy alone.
    if args.from_other_database
        && !args.yes
        && !(setup.env.approval_required && settings.interactive)
    {
        return Response::failed(
            OPERATION,
            environment,
            ConfigError::Usage(
                "--from-other-database replaces this database with another database's backup: approve it with --yes".into(),
            )
            .into(),
        );
    }
    let options = RunOptions {
        yes: args.yes,
        ..RunOptions::default()
    };
    let op = Restore {
        store: BackupStore::new(setup.env.backup.dir.clone(), &setup.env.name),
        to: args.to.clone(),
        from_other_database: args.from_other_database,
        chosen: std::sync::OnceLock::new(),
    };
    let finished = execute(&setup, &options, settings.interactive, printer, &op).await;
    let chosen = op.chosen.get();
    let mode = Some(setup.env.mode);
    match (finished.result, chosen) {
        (Ok(Ended::Done(verified)), Some(m)) => {
            let message = if setup.source.handler().is_some() {
                format!(
                    "Restored {} into {environment} and verified it ({} migration(s) applied, as when the backup was taken).",
                    m.id,
                    m.migrations.len()
                )
            } else {
                format!(
                    "Restored {} into {environment} and verified it (the schema is as when the backup was taken).",
                    m.id
                )
            };
            let result = Restored {
                backup_id: &m.id,
                created_at: m.created_at,
                migrations: &m.migrations,
                schema_fingerprint: &m.schema_fingerprint,
                verified: &verified,
            };
            Response::success(OPERATION, environment, mode, message, &result)
        }
        (Ok(_), _) => unreachable!("a restore always has something to do"),
        (Err(e), chosen) => {
            let cancelled = matches!(e, Error::Approval(_));
            let id = chosen.map(|m| m.id.clone());
            let message = match (&id, cancelled) {
                (_, true) => format!("Rollback of {environment} cancelled. Nothing was changed."),
                (Some(id), false) => format!("Rollback of {environment} to {id} failed."),
                (None, false) => format!("Rollback of {environment} failed."),
            };
            let recovery = id.as_ref().map(|id| Recovery {
                backup_id: Some(id.clone()),
                rollback_command: Some(retry_command(environment, id, args.from_other_database)),
                rollback_initiated: !cancelled && finished.trail.touched,
                rollback_status: Some(if finished.trail.touched {
                    "failed"
                } else {
                    "not-attempted"
                }),
                rollback_reason: Some(e.to_string()),
            });
            Response {
                status: if cancelled {
                    Status::Cancelled
                } else {
                    Status::Error
                },
                recovery,
                exit_code: e.exit_code(),
                error: Some(e),
                ..Response::success(
                    OPERATION,
                    environment,
                    mode,
                    message,
                    &Attempted {
                        backup_id: id.as_deref(),
                    },
                )
            }
        }
    }
}
