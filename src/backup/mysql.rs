//! MySQL and MariaDB: `mysqldump --single-transaction --routines --triggers` (or
//! `mariadb-dump`) to back up, `mysql` to restore (see `mysql_swap` for how a restore is made
//! all-or-nothing where the server allows it).
//!
//! The password reaches the tools in their environment (`MYSQL_PWD`), never argv or a file.

use std::fs::File;
use std::path::Path;

use tokio::process::Command;

use super::process::{self, first_installed};
use super::{BackupError, BackupProvider, Marker, Names, RestoreInput, Stopped, Written};
use crate::engine::Database;
use crate::history::HISTORY_TABLE;

/// The MySQL/MariaDB provider: connection settings for the client tools.
#[derive(Clone)]
pub struct MySqlBackup {
    host: Option<String>,
    port: Option<u16>,
    user: Option<String>,
    password: Option<String>,
    pub(super) database: String,
    socket: Option<String>,
}

impl std::fmt::Debug for MySqlBackup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MySqlBackup")
    }
}

const DUMP_TOOLS: &[&str] = &["mariadb-dump", "mysqldump"];
const CLIENT_TOOLS: &[&str] = &["mariadb", "mysql"];

fn needed() -> String {
    "install the MySQL or MariaDB client tools (e.g. `apt install mariadb-client` or `apt install mysql-client`)".into()
}

impl MySqlBackup {
    /// Reads the connection settings from a `mysql://` URL.
    ///
    /// # Errors
    /// When the URL has no database name.
    pub fn from_url(raw: &str) -> Result<Self, BackupError> {
        let url = super::parse_url(raw)?;
        let decode = super::decode;
        let database = decode(url.path().trim_start_matches('/'));
        if database.is_empty() {
            return Err(BackupError::Failed {
                what: "preparing the MySQL backup".into(),
                message: "the database URL names no database; add it after the host (mysql://USER@HOST/DATABASE)".into(),
            });
        }
        let socket = url
            .query_pairs()
            .find(|(k, _)| k == "socket")
            .map(|(_, v)| v.into_owned());
        Ok(Self {
            host: url
                .host_str()
                .map(|h| h.trim_matches(['[', ']']).to_owned()),
            port: url.port(),
            user: (!url.username().is_empty()).then(|| decode(url.username())),
            password: url.password().map(decode),
            database,
            socket,
        })
    }

    /// A client tool with the connection settings. The password goes in the tool's own
    /// environment (`MYSQL_PWD`), readable only by this user: no options file is written, so
    /// none can be left behind by a killed run.
    pub(super) fn command(&self, tool: &str) -> Command {
        let mut cmd = Command::new(tool);
        crate::settings::hide_other_urls(&mut cmd);
        cmd.env_remove("MYSQL_PWD");
        if let Some(h) = &self.host {
            cmd.arg(format!("--host={h}"));
        }
        if let Some(p) = self.port {
            cmd.arg(format!("--port={p}"));
        }
        if let Some(s) = &self.socket {
            cmd.arg(format!("--socket={s}"));
        }
        if let Some(u) = &self.user {
            cmd.arg(format!("--user={u}"));
        }
        if let Some(p) = &self.password {
            cmd.env("MYSQL_PWD", p);
        }
        cmd
    }

    /// Loads a dump of [`BackupProvider::create`] into the empty schema `database` on the same
    /// server (a rehearsal's copy).
    ///
    /// # Errors
    /// When the client fails or is stopped.
    pub async fn load_into(&self, database: &str, dump: &Path) -> Result<(), BackupError> {
        let client = Self::client().await?;
        let input = File::open(dump).map_err(|e| BackupError::Io {
            path: dump.to_owned(),
            what: "reading the dump".into(),
            source: Some(e),
        })?;
        let mut cmd = self.command(client);
        cmd.arg("--binary-mode")
            .arg(format!("--database={database}"));
        process::run(cmd, "loading the copy", std::process::Stdio::from(input))
            .await
            .map(drop)
    }

    /// The first client program installed (`mariadb` or `mysql`).
    pub(super) async fn client() -> Result<&'static str, BackupError> {
        Ok(installed(CLIENT_TOOLS, "mysql").await?.0)
    }
}

/// The first of `tools` installed, with its version line.
async fn installed(
    tools: &[&'static str],
    named: &str,
) -> Result<(&'static str, String), BackupError> {
    first_installed(tools)
        .await
        .ok_or_else(|| BackupError::ToolMissing {
            tool: named.into(),
            needed: needed(),
        })
}

impl BackupProvider for MySqlBackup {
    fn names(&self) -> Names {
        Names {
            name: "mysqldump",
            extension: "sql",
            directory: false,
        }
    }

    async fn preflight<D: Database>(&self, _db: &mut D) -> Result<String, BackupError> {
        let (_, dump) = installed(DUMP_TOOLS, "mysqldump").await?;
        Self::client().await?;
        Ok(dump)
    }

    async fn create<D: Database>(
        &self,
        _db: &mut D,
        _id: &str,
        out: &Path,
        file: &File,
    ) -> Result<Written, BackupError> {
        let (tool, _) = installed(DUMP_TOOLS, "mysqldump").await?;
        let mut cmd = self.command(tool);
        cmd.args([
            "--single-transaction",
            "--routines",
            "--triggers",
            "--hex-blob",
            "--no-tablespaces",
            "--skip-dump-date",
        ])
        .arg(format!("--ignore-table={}.{HISTORY_TABLE}", self.database))
        .arg("--")
        .arg(&self.database);
        process::dump_to_file(cmd, tool, out, file).await
    }

    async fn restore<D: Database>(
        &self,
        db: &mut D,
        input: &RestoreInput<'_>,
        marker: &mut Marker,
    ) -> Result<(), Stopped> {
        super::mysql_swap::restore(self, db, input, marker).await
    }

    fn atomic_restore(&self) -> bool {
        false
    }
}
