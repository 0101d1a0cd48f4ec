//! `dbdeploy rollback ENV [--to BACKUP_ID]`: restore a backup (the newest by default) through
//! the pipeline — under the deploy lock, with approval on protected environments — then verify
//! the restore against the manifest. The migrations folder is not needed: a rollback must work
//! when it is broken.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{Needs, execute, setup};
use crate::backup::BackupStore;
use crate::cli::RollbackArgs;
use crate::error::Error;
use crate::output::{Printer, Recovery, Response, Status};
use crate::pipeline::restore::Restore;
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
    backup_id: &'a str,
}

/// Runs `rollback`.
pub async fn run(settings: &Settings, args: RollbackArgs, printer: &Printer) -> Response {
    let environment = &args.environment;
    let setup = match setup(settings, environment, Needs::Tracking) {
        Ok(s) => s,
        Err(e) => return Response::failed(OPERATION, environment, e),
    };
    let store = BackupStore::new(setup.env.backup.dir.clone(), &setup.env.name);
    let manifest = match store.find(args.to.as_deref()) {
        Ok(m) => m,
        Err(e) => return Response::failed(OPERATION, environment, e.into()),
    };
    let options = RunOptions {
        yes: args.yes,
        ..RunOptions::default()
    };
    let op = Restore { manifest, store };
    let finished = execute(&setup, &options, settings.interactive, printer, &op).await;
    let m = &op.manifest;
    let mode = Some(setup.env.mode);
    match finished.result {
        Ok(Ended::Done(verified)) => {
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
        Ok(_) => unreachable!("a restore always has something to do"),
        Err(e) => {
            let cancelled = matches!(e, Error::Approval(_));
            let message = if cancelled {
                format!("Rollback of {environment} cancelled. Nothing was changed.")
            } else {
                format!("Rollback of {environment} to {} failed.", m.id)
            };
            let recovery = Recovery {
                backup_id: Some(m.id.clone()),
                rollback_command: Some(format!("dbdeploy rollback {environment} --to {}", m.id)),
                rollback_initiated: !cancelled,
                rollback_status: Some(if cancelled {
                    "cancelled".to_owned()
                } else {
                    format!("failed: {e}")
                }),
            };
            Response {
                status: if cancelled {
                    Status::Cancelled
                } else {
                    Status::Error
                },
                recovery: Some(recovery),
                exit_code: e.exit_code(),
                error: Some(e),
                ..Response::success(
                    OPERATION,
                    environment,
                    mode,
                    message,
                    &Attempted { backup_id: &m.id },
                )
            }
        }
    }
}
