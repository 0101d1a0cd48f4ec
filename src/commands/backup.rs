//! `dbdeploy backup ENV` (make one now, through the pipeline: under the deploy lock, so the
//! copy and its manifest agree with the tracking table) and `dbdeploy backups ENV` (list them).

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{Needs, execute, setup};
use crate::backup::{BackupStore, DatabaseIdentity, Manifest, human_bytes, identity};
use crate::engine::{ConnectOptions, Database, Target};
use crate::error::Error;
use crate::output::{Line, Printer, Response, listing};
use crate::pipeline::backup::BackupNow;
use crate::pipeline::{Ended, RunOptions};
use crate::pipeline::{Event, Reporter};
use crate::settings::{EnvSettings, Settings};

/// A backup that was made.
#[derive(Serialize)]
struct Made<'a> {
    backup_id: &'a str,
    path: Option<std::path::PathBuf>,
    size_bytes: Option<u64>,
    sha256: Option<&'a str>,
    migrations: &'a [String],
    schema_fingerprint: &'a str,
    duration_ms: u64,
    pruned: &'a [String],
}

/// Runs `backup`.
pub async fn create(settings: &Settings, environment: &str, printer: &Printer) -> Response {
    const OPERATION: &str = "create-backup";
    // The migrations folder is not read: a backup must be possible when it is broken.
    let setup = match setup(settings, environment, Needs::Tracking) {
        Ok(s) => s,
        Err(e) => return Response::failed(OPERATION, environment, e),
    };
    let finished = execute(
        &setup,
        &RunOptions::default(),
        settings.interactive,
        printer,
        &BackupNow,
    )
    .await;
    let created = match finished.result {
        Ok(Ended::Done(created)) => created,
        Ok(_) => unreachable!("a backup always has something to do"),
        Err(e) => return Response::failed(OPERATION, environment, e),
    };
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
    let result = Made {
        backup_id: &m.id,
        path: m.file_path(&created.dir),
        size_bytes: m.size_bytes,
        sha256: m.sha256.as_deref(),
        migrations: &m.migrations,
        schema_fingerprint: &m.schema_fingerprint,
        duration_ms: m.duration_ms,
        pruned: &created.pruned,
    };
    Response::success(
        OPERATION,
        environment,
        Some(setup.env.mode),
        message,
        &result,
    )
}

/// One backup of the listing.
#[derive(Serialize)]
struct Listed<'a> {
    id: &'a str,
    created_at: DateTime<Utc>,
    age_seconds: i64,
    size_bytes: Option<u64>,
    path: Option<std::path::PathBuf>,
    sha256: Option<&'a str>,
    engine: &'a str,
    provider: &'a str,
    migrations: &'a [String],
    schema_fingerprint: &'a str,
    reason: &'a str,
}

/// The listing.
#[derive(Serialize)]
struct Listing<'a> {
    dir: &'a std::path::Path,
    /// The database whose backups are listed.
    database: &'a DatabaseIdentity,
    backups: Vec<Listed<'a>>,
    /// Backups of other databases or environments in the same folder (not listed).
    other_backups: usize,
    /// Manifests refused as untrusted or unreadable.
    refused: Vec<Refused<'a>>,
}

/// A manifest that was not used, and why.
#[derive(Serialize)]
struct Refused<'a> {
    file: &'a str,
    reason: &'a str,
}

/// Runs `backups`: only this environment's database's backups (reading its identity needs a
/// connection to a server; a SQLite file's is its path).
pub async fn list(settings: &Settings, environment: &str, printer: &Printer) -> Response {
    const OPERATION: &str = "list-backups";
    let env = match settings.environment(environment) {
        Ok(env) => env,
        Err(e) => return Response::failed(OPERATION, environment, e.into()),
    };
    let database = match crate::with_database!(env.target, D => identity_of::<D>(&env).await) {
        Ok(d) => d,
        Err(e) => return Response::failed(OPERATION, environment, e),
    };
    let store = BackupStore::new(env.backup.dir.clone(), &env.name);
    let all = match store.list(&database) {
        Ok(all) => all,
        Err(e) => return Response::failed(OPERATION, environment, e.into()),
    };
    let now = Utc::now();
    let newest_first: Vec<&Manifest> = all.mine.iter().rev().collect();
    listing::backups(printer, environment, &store.dir, &newest_first, now);
    let result = Listing {
        dir: &store.dir,
        database: &database,
        backups: newest_first
            .iter()
            .map(|m| Listed {
                id: &m.id,
                created_at: m.created_at,
                age_seconds: (now - m.created_at).num_seconds(),
                size_bytes: m.size_bytes,
                path: m.file_path(&store.dir),
                sha256: m.sha256.as_deref(),
                engine: &m.engine,
                provider: &m.provider,
                migrations: &m.migrations,
                schema_fingerprint: &m.schema_fingerprint,
                reason: &m.reason,
            })
            .collect(),
        other_backups: all.others,
        refused: all
            .refused
            .iter()
            .map(|(file, reason)| Refused { file, reason })
            .collect(),
    };
    let mut message = format!("{} backup(s) of {environment}", all.mine.len());
    if all.others > 0 {
        message.push_str(&format!(
            " ({} of other databases or environments in the folder not shown)",
            all.others
        ));
    }
    for (file, reason) in &all.refused {
        printer.event(Event::Warning(format!("ignored {file}: {reason}")));
    }
    Response {
        line: Line::Plain,
        ..Response::success(OPERATION, environment, Some(env.mode), message, &result)
    }
}

/// The identity of the environment's database, connecting to a server (read-only) when needed.
async fn identity_of<D: Database>(env: &EnvSettings) -> Result<DatabaseIdentity, Error> {
    if let Target::Sqlite { path } = &env.target {
        return Ok(identity::sqlite(path));
    }
    let options = ConnectOptions {
        wait: env.connect_wait,
        lock_wait: env.lock_timeout,
        read_only: true,
    };
    let mut db = D::connect(&env.target, options).await?;
    let read = identity::read(&mut db, &env.target).await;
    db.close().await;
    Ok(read?)
}
