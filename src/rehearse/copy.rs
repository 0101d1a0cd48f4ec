//! The copy a rehearsal deploys to: a database of its own on the same server (PostgreSQL,
//! MySQL/MariaDB), named `<database>_rehearse_<8 hex>` so that one left behind by `kill -9`
//! is recognisable, or a file in a private temporary folder (SQLite). It is filled from a fresh
//! dump made with the backup tooling (a consistent snapshot: `pg_dump`, `mysqldump
//! --single-transaction`, `VACUUM INTO`), and dropped by [`Scratch::drop_copy`] whatever
//! happened, interrupts included.
//!
//! Creating and dropping the copy takes a session on the real server that is not read-only
//! (`CREATE DATABASE` cannot run in a read-only transaction); it runs only `CREATE DATABASE`
//! and `DROP DATABASE` of the copy's own name, and, on MySQL, `KILL` of the copy's sessions.

use std::path::{Path, PathBuf};

use crate::backup::{BackupError, BackupProvider, Provider};
use crate::engine::{ColKind, ConnectOptions, Database, Dialect, Stmt, Target, Value};
use crate::error::Error;
use crate::settings::{BackupSettings, EnvSettings};

/// A copy of the real database, and how to drop it.
pub struct Scratch {
    /// Where the copy is.
    pub target: Target,
    /// The database's name on the server (servers only).
    pub name: Option<String>,
    /// The private folder of the dump (and of the SQLite copy and the run's audit line).
    pub dir: tempfile::TempDir,
}

impl Scratch {
    /// Creates an empty copy on the server of `env` (servers), or only its folder (SQLite).
    ///
    /// # Errors
    /// Permissions (`CREATEDB`, `CREATE` privilege), an unreachable server, a temp folder.
    pub async fn create<D: Database>(env: &EnvSettings, real: &mut D) -> Result<Self, Error> {
        let dir = tempfile::Builder::new()
            .prefix("dbdeploy-rehearse-")
            .tempdir()
            .map_err(|e| io_error(&std::env::temp_dir(), "creating a private folder", e))?;
        let (target, name) = match &env.target {
            Target::Sqlite { .. } => (
                Target::Sqlite {
                    path: dir.path().join("copy.db"),
                },
                None,
            ),
            Target::Postgres { url } | Target::MySql { url } => {
                let name = copy_name(&current_database(real).await?);
                let clause = creation_clause(real).await?;
                let mut admin = admin::<D>(env).await?;
                let d = real.dialect();
                let created = admin
                    .execute(&Stmt::raw(format!(
                        "CREATE DATABASE {}{clause}",
                        d.quote_ident(&name)
                    )))
                    .await;
                admin.close().await;
                created.map_err(Error::from)?;
                let mut u = url::Url::parse(url).map_err(|e| BackupError::Failed {
                    what: "naming the copy".into(),
                    message: e.to_string(),
                })?;
                u.set_path(&format!("/{name}"));
                let url = u.to_string();
                let target = match &env.target {
                    Target::Postgres { .. } => Target::Postgres { url },
                    _ => Target::MySql { url },
                };
                (target, Some(name))
            }
        };
        Ok(Self { target, name, dir })
    }

    /// Copies the real database into the copy: a fresh dump, then loaded into the copy.
    ///
    /// # Errors
    /// A missing or failing client tool, a full disk, an interrupt.
    pub async fn fill<D: Database>(&self, env: &EnvSettings, real: &mut D) -> Result<u64, Error> {
        // The engine's own tools whatever `[backup] command` says: the copy must be made here.
        let own = BackupSettings {
            command: None,
            ..env.backup.clone()
        };
        let provider = Provider::for_target(&env.target, &own, &env.name, &env.working_dir)?;
        provider.preflight(real).await?;
        if let Target::Sqlite { path } = &env.target
            && !path.exists()
        {
            // Nothing to copy: the copy starts empty, as the real database would.
            return Ok(0);
        }
        let out = match &self.target {
            Target::Sqlite { path } => path.clone(),
            _ => self
                .dir
                .path()
                .join(format!("dump.{}", provider.extension())),
        };
        // A directory-format dump (PostgreSQL) goes into a fresh private folder, as backups do.
        let file = if provider.names().directory {
            crate::backup::folder::create_private_dir(&out)
                .map_err(|e| io_error(&out, "creating the dump folder", e))?
        } else {
            private_file(&out)?
        };
        if matches!(self.target, Target::Sqlite { .. }) {
            // `VACUUM INTO` writes a new file: it must not exist yet.
            drop(file);
            std::fs::remove_file(&out).map_err(|e| io_error(&out, "preparing the copy", e))?;
            let written = provider.create(real, "rehearsal", &out, &dummy()?).await?;
            return Ok(written.size.unwrap_or(0));
        }
        let written = provider.create(real, "rehearsal", &out, &file).await?;
        drop(file);
        let Some(name) = &self.name else {
            return Ok(0);
        };
        match &env.target {
            Target::Postgres { url } => {
                crate::backup::postgres::PgBackup::from_url(url)?
                    .with_options(env.backup.compression, env.backup.jobs)
                    .load_into(name, &out)
                    .await?;
            }
            Target::MySql { url } => {
                crate::backup::mysql::MySqlBackup::from_url(url)?
                    .load_into(name, &out)
                    .await?;
            }
            Target::Sqlite { .. } => {}
        }
        Ok(written.size.unwrap_or(0))
    }

    /// Drops the copy (the folder goes when `self` is dropped): sessions still on it are ended
    /// first, so that a migration still running there cannot keep it alive.
    ///
    /// # Errors
    /// When the server refuses; the message names the database to drop by hand.
    pub async fn drop_copy<D: Database>(&self, env: &EnvSettings) -> Result<(), Error> {
        let Some(name) = &self.name else {
            return Ok(());
        };
        let mut admin = admin::<D>(env).await?;
        let d = admin.dialect();
        let quoted = d.quote_ident(name);
        let result = match d {
            Dialect::Postgres => {
                admin
                    .execute(&Stmt::raw(format!(
                        "DROP DATABASE IF EXISTS {quoted} WITH (FORCE)"
                    )))
                    .await
            }
            _ => {
                let sessions = admin
                    .fetch(
                        &Stmt::new(
                            "SELECT ID FROM information_schema.PROCESSLIST WHERE DB = ? AND ID <> CONNECTION_ID()",
                            vec![Value::Text(name.clone())],
                        ),
                        &[ColKind::Int],
                    )
                    .await
                    .unwrap_or_default();
                for id in sessions.iter().filter_map(|r| r.first()?.as_int()) {
                    // Gone already is fine: what matters is that it is not running.
                    let _ = admin.execute(&Stmt::raw(format!("KILL {id}"))).await;
                }
                admin
                    .execute(&Stmt::raw(format!("DROP DATABASE IF EXISTS {quoted}")))
                    .await
            }
        };
        admin.close().await;
        result.map(drop).map_err(Error::from)
    }
}

/// A session on the real server for creating and dropping the copy.
async fn admin<D: Database>(env: &EnvSettings) -> Result<D, Error> {
    let opts = ConnectOptions {
        wait: env.connect_wait,
        read_only: false,
        lock_wait: env.lock_timeout,
    };
    Ok(D::connect(&env.target, opts).await?)
}

/// `<database>_rehearse_<8 hex>`, within the engines' 63/64-character limits and with only
/// the characters that need no quoting anywhere.
fn copy_name(database: &str) -> String {
    let base: String = database
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .take(40)
        .collect();
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("{base}_rehearse_{}", &id[..8])
}

/// Whether `name` is a rehearsal copy's name (for tests and for finding leftovers).
#[must_use]
pub fn is_copy_name(name: &str) -> bool {
    name.rsplit_once("_rehearse_")
        .is_some_and(|(_, id)| id.len() == 8 && id.chars().all(|c| c.is_ascii_hexdigit()))
}

async fn current_database<D: Database>(db: &mut D) -> Result<String, Error> {
    let sql = match db.dialect() {
        Dialect::Postgres => "SELECT current_database()::text",
        _ => "SELECT DATABASE()",
    };
    Ok(crate::backup::scalar_text(db, &Stmt::raw(sql))
        .await?
        .unwrap_or_default())
}

/// The real database's encoding and collation, so that the copy sorts and compares as it does
/// (migrations that add unique indexes depend on it).
async fn creation_clause<D: Database>(db: &mut D) -> Result<String, Error> {
    let (sql, cols) = match db.dialect() {
        Dialect::Postgres => (
            "SELECT pg_encoding_to_char(encoding)::text, datcollate::text, datctype::text FROM pg_database WHERE datname = current_database()",
            3,
        ),
        _ => (
            "SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = DATABASE()",
            2,
        ),
    };
    let rows = db
        .fetch(&Stmt::raw(sql), &vec![ColKind::Text; cols])
        .await?;
    let Some(row) = rows.first() else {
        return Ok(String::new());
    };
    let text = |i: usize| {
        row.get(i)
            .and_then(Value::as_text)
            .filter(|v| {
                !v.is_empty()
                    && v.chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '@'))
            })
            .map(str::to_owned)
    };
    Ok(match db.dialect() {
        Dialect::Postgres => match (text(0), text(1), text(2)) {
            (Some(enc), Some(collate), Some(ctype)) => format!(
                " TEMPLATE template0 ENCODING '{enc}' LC_COLLATE '{collate}' LC_CTYPE '{ctype}'"
            ),
            _ => " TEMPLATE template0".to_owned(),
        },
        _ => match (text(0), text(1)) {
            (Some(charset), Some(collation)) => {
                format!(" CHARACTER SET {charset} COLLATE {collation}")
            }
            _ => String::new(),
        },
    })
}

/// A new file only this user can read.
fn private_file(path: &Path) -> Result<std::fs::File, Error> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| io_error(path, "creating the dump file", e))
}

/// `VACUUM INTO` writes by path; the provider's file argument is not used.
fn dummy() -> Result<std::fs::File, Error> {
    tempfile::tempfile()
        .map_err(|e| io_error(&std::env::temp_dir(), "creating a temporary file", e))
}

fn io_error(path: &Path, what: &str, e: std::io::Error) -> Error {
    BackupError::Io {
        path: PathBuf::from(path),
        what: what.to_owned(),
        source: Some(e),
    }
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_names_are_recognisable_and_short_enough() {
        let name = copy_name(&"a-very-long.database name ".repeat(5));
        assert!(name.len() <= 63, "{name}");
        assert!(is_copy_name(&name), "{name}");
        assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
        assert!(!is_copy_name("shop_rehearse_plan"));
        assert!(!is_copy_name("shop"));
    }
}
