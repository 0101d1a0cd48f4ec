//! MySQL and MariaDB: `mysqldump --single-transaction --routines --triggers` (or
//! `mariadb-dump`) to back up, `mysql` to restore. MySQL cannot drop and recreate tables in a
//! transaction, so a restore first drops what exists now (tables created after the backup
//! would otherwise survive it) and is not atomic: a failed restore is reported as such.
//!
//! The password reaches the tools in a 0600 options file, never argv.

use std::io::Write;
use std::path::Path;
use std::process::Stdio;

use tokio::process::Command;

use super::process::{self, first_installed};
use super::{BackupError, BackupProvider, Written};
use crate::engine::{ColKind, Database, Stmt, Value};
use crate::history::HISTORY_TABLE;

/// The MySQL/MariaDB provider: connection settings for the client tools.
#[derive(Clone)]
pub struct MySqlBackup {
    host: Option<String>,
    port: Option<u16>,
    user: Option<String>,
    password: Option<String>,
    database: String,
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

    /// A `[client]` options file (0600, deleted on drop) with the credentials.
    fn options_file(&self) -> Result<tempfile::NamedTempFile, BackupError> {
        let io = |e: std::io::Error| BackupError::Io {
            path: std::env::temp_dir(),
            what: "cannot write the client options file".into(),
            source: Some(e),
        };
        // tempfile creates files readable by the owner only.
        let mut f = tempfile::Builder::new()
            .prefix("dbdeploy-my-")
            .suffix(".cnf")
            .tempfile()
            .map_err(io)?;
        let mut text = String::from("[client]\n");
        let esc = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
        if let Some(h) = &self.host {
            text.push_str(&format!("host=\"{}\"\n", esc(h)));
        }
        if let Some(p) = self.port {
            text.push_str(&format!("port={p}\n"));
        }
        if let Some(s) = &self.socket {
            text.push_str(&format!("socket=\"{}\"\n", esc(s)));
        }
        if let Some(u) = &self.user {
            text.push_str(&format!("user=\"{}\"\n", esc(u)));
        }
        if let Some(p) = &self.password {
            text.push_str(&format!("password=\"{}\"\n", esc(p)));
        }
        f.write_all(text.as_bytes()).map_err(io)?;
        f.flush().map_err(io)?;
        Ok(f)
    }

    fn command(tool: &str, options: &tempfile::NamedTempFile) -> Command {
        let mut cmd = Command::new(tool);
        // Must be the first argument for the client to accept it.
        cmd.arg(format!(
            "--defaults-extra-file={}",
            options.path().display()
        ));
        cmd.env_remove("MYSQL_PWD");
        cmd
    }
}

impl BackupProvider for MySqlBackup {
    fn name(&self) -> &'static str {
        "mysqldump"
    }

    fn extension(&self) -> &'static str {
        "sql"
    }

    async fn preflight<D: Database>(&self, _db: &mut D) -> Result<String, BackupError> {
        let Some((_, dump)) = first_installed(DUMP_TOOLS).await else {
            return Err(BackupError::ToolMissing {
                tool: "mysqldump".into(),
                needed: needed(),
            });
        };
        if first_installed(CLIENT_TOOLS).await.is_none() {
            return Err(BackupError::ToolMissing {
                tool: "mysql".into(),
                needed: needed(),
            });
        }
        Ok(dump)
    }

    async fn create<D: Database>(
        &self,
        _db: &mut D,
        _id: &str,
        out: &Path,
    ) -> Result<Written, BackupError> {
        let (tool, _) =
            first_installed(DUMP_TOOLS)
                .await
                .ok_or_else(|| BackupError::ToolMissing {
                    tool: "mysqldump".into(),
                    needed: needed(),
                })?;
        let options = self.options_file()?;
        let mut cmd = Self::command(tool, &options);
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
        process::dump_to_file(cmd, tool, out).await
    }

    async fn restore<D: Database>(
        &self,
        db: &mut D,
        _id: &str,
        file: &Path,
    ) -> Result<(), BackupError> {
        let (tool, _) =
            first_installed(CLIENT_TOOLS)
                .await
                .ok_or_else(|| BackupError::ToolMissing {
                    tool: "mysql".into(),
                    needed: needed(),
                })?;
        drop_everything(db).await?;
        let options = self.options_file()?;
        let input = std::fs::File::open(file).map_err(|e| BackupError::Io {
            path: file.to_owned(),
            what: "cannot read it".into(),
            source: Some(e),
        })?;
        let mut cmd = Self::command(tool, &options);
        cmd.arg("--binary-mode").arg(&self.database);
        process::run(cmd, tool, Stdio::from(input)).await.map(drop)
    }

    fn atomic_restore(&self) -> bool {
        false
    }
}

async fn drop_everything<D: Database>(db: &mut D) -> Result<(), BackupError> {
    let what = "emptying the database before the restore";
    let failed = |e: crate::engine::DbError| BackupError::Failed {
        what: what.into(),
        message: e.to_string(),
    };
    let rows = db
        .fetch(
            &Stmt::raw(format!(
                "SELECT CASE table_type WHEN 'VIEW' THEN 'VIEW' ELSE 'TABLE' END, table_name \
                 FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name <> '{HISTORY_TABLE}' \
                 UNION ALL SELECT routine_type, routine_name FROM information_schema.routines WHERE routine_schema = DATABASE() \
                 UNION ALL SELECT 'EVENT', event_name FROM information_schema.events WHERE event_schema = DATABASE()"
            )),
            &[ColKind::Text, ColKind::Text],
        )
        .await
        .map_err(failed)?;
    db.execute(&Stmt::raw("SET FOREIGN_KEY_CHECKS = 0"))
        .await
        .map_err(failed)?;
    let mut result = Ok(());
    // Views first: dropping a table a view reads is allowed, but keeps the order obvious.
    let mut objects: Vec<(String, String)> = rows
        .into_iter()
        .filter_map(|r| match (r.first(), r.get(1)) {
            (Some(Value::Text(k)), Some(Value::Text(n))) => Some((k.clone(), n.clone())),
            _ => None,
        })
        .collect();
    objects.sort_by_key(|(k, _)| k != "VIEW");
    for (kind, name) in objects {
        let sql = format!("DROP {kind} IF EXISTS `{}`", name.replace('`', "``"));
        if let Err(e) = db.execute(&Stmt::raw(sql)).await {
            result = Err(failed(e));
            break;
        }
    }
    let _ = db.execute(&Stmt::raw("SET FOREIGN_KEY_CHECKS = 1")).await;
    result
}
