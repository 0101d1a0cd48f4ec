//! Which database a backup was taken from, so that a backup is only ever restored into that
//! database, and listing and retention only ever see that database's backups (two projects
//! may share one `[backup] dir` and both call an environment `production`).
//!
//! - PostgreSQL: the cluster's `system_identifier` (`pg_control_system()`, fixed at `initdb`,
//!   kept by physical replicas and restarts) and the database name.
//! - MySQL: `@@server_uuid` (generated on first start, kept in `auto.cnf`) and the schema.
//! - MariaDB has no `server_uuid`; `@@server_uid` is its stable server id (a digest of the
//!   host's hardware address and the port, the same after a restart, different for another
//!   server). `@@server_id` is no identity: it is 1 on every server nobody configured for
//!   replication. Where neither variable exists, the host name and port stand in.
//! - SQLite: the database file's canonical path.
//!
//! A database dropped and created again under the same name on the same server is the same
//! database here: the identity says where the data lives, not which incarnation it is.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::BackupError;
use crate::engine::{Database, Stmt, Target};

/// The database a backup belongs to. Never holds a URL, user or password.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatabaseIdentity {
    /// `postgresql`, `mysql` or `sqlite`.
    pub engine: String,
    /// The server's identity (`system_identifier 7715…`, `server_uuid …`, `server_uid …`);
    /// none for SQLite.
    pub server: Option<String>,
    /// The database (PostgreSQL), the schema (MySQL) or the canonical file path (SQLite).
    pub database: String,
}

impl std::fmt::Display for DatabaseIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.engine.as_str(), &self.server) {
            ("sqlite", _) => write!(f, "SQLite file {}", self.database),
            ("postgresql", Some(s)) => {
                write!(f, "database `{}` on PostgreSQL server {s}", self.database)
            }
            (_, Some(s)) => write!(f, "schema `{}` on MySQL/MariaDB server {s}", self.database),
            (engine, None) => write!(f, "{engine} database `{}`", self.database),
        }
    }
}

/// The identity of a SQLite file: its canonical path (the file need not exist yet).
#[must_use]
pub fn sqlite(path: &Path) -> DatabaseIdentity {
    let canonical = std::fs::canonicalize(path).unwrap_or_else(|_| {
        match (path.parent().map(std::fs::canonicalize), path.file_name()) {
            (Some(Ok(dir)), Some(name)) => dir.join(name),
            _ => path.to_owned(),
        }
    });
    DatabaseIdentity {
        engine: "sqlite".into(),
        server: None,
        database: canonical.display().to_string(),
    }
}

/// Reads the identity of the database `db` is connected to.
///
/// # Errors
/// When the server will not say (the error names what was read).
pub async fn read<D: Database>(
    db: &mut D,
    target: &Target,
) -> Result<DatabaseIdentity, BackupError> {
    let failed = |what: &str, e: &dyn std::fmt::Display| BackupError::Failed {
        what: format!("reading the database's identity ({what})"),
        message: e.to_string(),
    };
    match target {
        Target::Sqlite { path } => Ok(sqlite(path)),
        Target::Postgres { .. } => {
            let id = text(
                db,
                "SELECT system_identifier::text FROM pg_control_system()",
            )
            .await
            .map_err(|e| failed("pg_control_system()", &e))?;
            let name = text(db, "SELECT current_database()::text")
                .await
                .map_err(|e| failed("current_database()", &e))?;
            Ok(DatabaseIdentity {
                engine: "postgresql".into(),
                server: Some(format!("system_identifier {id}")),
                database: name,
            })
        }
        Target::MySql { .. } => {
            let server = match text(db, "SELECT @@server_uuid").await {
                Ok(uuid) => format!("server_uuid {uuid}"),
                Err(_) => match text(db, "SELECT @@server_uid").await {
                    Ok(uid) => format!("server_uid {uid}"),
                    Err(_) => {
                        let host = text(db, "SELECT CONCAT(@@hostname, ':', @@port)")
                            .await
                            .map_err(|e| failed("@@hostname, @@port", &e))?;
                        format!("host {host}")
                    }
                },
            };
            let name = text(db, "SELECT DATABASE()")
                .await
                .map_err(|e| failed("DATABASE()", &e))?;
            Ok(DatabaseIdentity {
                engine: "mysql".into(),
                server: Some(server),
                database: name,
            })
        }
    }
}

async fn text<D: Database>(db: &mut D, sql: &str) -> Result<String, crate::engine::DbError> {
    Ok(super::scalar_text(db, &Stmt::raw(sql))
        .await?
        .unwrap_or_default())
}
