//! PostgreSQL: `pg_dump -Fc` to back up; to restore, `pg_restore --clean --if-exists` turns
//! the archive into SQL that `psql --single-transaction` runs after a prologue that drops
//! whatever exists now (objects created after the backup would otherwise survive a restore).
//! One transaction: a restore that fails leaves the database as it was.
//!
//! The tools get the connection through `PG*` environment variables, never argv.

use std::path::Path;
use std::process::Stdio;

use tokio::process::Command;

use super::process::{self, first_installed, version_numbers};
use super::{BackupError, BackupProvider, Written};
use crate::engine::{ColKind, Database, Stmt};
use crate::history::HISTORY_TABLE;

/// The PostgreSQL provider: connection settings for libpq tools.
#[derive(Clone)]
pub struct PgBackup {
    env: Vec<(&'static str, String)>,
}

impl std::fmt::Debug for PgBackup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PgBackup")
    }
}

impl PgBackup {
    /// Turns a `postgres://` URL into libpq environment variables.
    ///
    /// # Errors
    /// When the URL cannot be parsed (it was validated earlier, so this is unexpected).
    pub fn from_url(raw: &str) -> Result<Self, BackupError> {
        let url = super::parse_url(raw)?;
        let decode = super::decode;
        let mut env = Vec::new();
        if let Some(host) = url.host_str().filter(|h| !h.is_empty()) {
            env.push(("PGHOST", host.trim_matches(['[', ']']).to_owned()));
        }
        if let Some(port) = url.port() {
            env.push(("PGPORT", port.to_string()));
        }
        if !url.username().is_empty() {
            env.push(("PGUSER", decode(url.username())));
        }
        if let Some(pw) = url.password() {
            env.push(("PGPASSWORD", decode(pw)));
        }
        let db = url.path().trim_start_matches('/');
        if !db.is_empty() {
            env.push(("PGDATABASE", decode(db)));
        }
        for (k, v) in url.query_pairs() {
            let var = match k.as_ref() {
                "sslmode" => "PGSSLMODE",
                "sslrootcert" => "PGSSLROOTCERT",
                "sslcert" => "PGSSLCERT",
                "sslkey" => "PGSSLKEY",
                "host" => "PGHOST",
                "port" => "PGPORT",
                "user" => "PGUSER",
                "password" => "PGPASSWORD",
                "dbname" => "PGDATABASE",
                "options" => "PGOPTIONS",
                _ => continue,
            };
            env.retain(|(k, _)| *k != var);
            env.push((var, v.into_owned()));
        }
        env.push(("PGAPPNAME", "dbdeploy".into()));
        env.push(("PGCONNECT_TIMEOUT", "10".into()));
        Ok(Self { env })
    }

    fn command(&self, tool: &str) -> Command {
        let mut cmd = Command::new(tool);
        // A service file or pass file of the operator's must not redirect the tool elsewhere.
        for var in ["PGSERVICE", "PGSERVICEFILE", "PGHOSTADDR"] {
            cmd.env_remove(var);
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }
}

async fn server_major<D: Database>(db: &mut D) -> Result<(u32, String), BackupError> {
    let rows = db
        .fetch(&Stmt::raw("SHOW server_version"), &[ColKind::Text])
        .await
        .map_err(|e| BackupError::Failed {
            what: "reading the server version".into(),
            message: e.to_string(),
        })?;
    let v = rows
        .first()
        .and_then(|r| r.first())
        .and_then(|v| v.as_text())
        .unwrap_or_default()
        .to_owned();
    let major = version_numbers(&v).map_or(0, |(m, _)| m);
    Ok((major, v))
}

async fn tool_for(
    tool: &'static str,
    server_major: u32,
    server: &str,
) -> Result<String, BackupError> {
    let needed = format!(
        "install the PostgreSQL {server_major} (or newer) client tools, e.g. `apt install postgresql-client-{server_major}`, and put them first on PATH"
    );
    let Some((_, line)) = first_installed(&[tool]).await else {
        return Err(BackupError::ToolMissing {
            tool: tool.into(),
            needed,
        });
    };
    let found = version_numbers(&line).map_or(0, |(m, _)| m);
    if found < server_major {
        return Err(BackupError::ToolTooOld {
            tool: tool.into(),
            found: line,
            server: format!("PostgreSQL {server}"),
            needed,
        });
    }
    Ok(line)
}

impl BackupProvider for PgBackup {
    fn name(&self) -> &'static str {
        "pg_dump"
    }

    fn extension(&self) -> &'static str {
        "dump"
    }

    async fn preflight<D: Database>(&self, db: &mut D) -> Result<String, BackupError> {
        let (major, server) = server_major(db).await?;
        let dump = tool_for("pg_dump", major, &server).await?;
        tool_for("pg_restore", major, &server).await?;
        tool_for("psql", major, &server).await?;
        Ok(dump)
    }

    async fn create<D: Database>(
        &self,
        _db: &mut D,
        _id: &str,
        out: &Path,
    ) -> Result<Written, BackupError> {
        let mut cmd = self.command("pg_dump");
        cmd.args(["--format=custom", "--no-password"])
            .arg(format!("--exclude-table=*.{HISTORY_TABLE}"));
        process::dump_to_file(cmd, "pg_dump", out).await
    }

    async fn restore<D: Database>(
        &self,
        _db: &mut D,
        _id: &str,
        file: &Path,
    ) -> Result<(), BackupError> {
        let mut script = self.command("pg_restore");
        script
            .args(["--clean", "--if-exists", "--no-password", "--file=-"])
            .arg(file)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut producer = script.spawn().map_err(|e| BackupError::Failed {
            what: "pg_restore".into(),
            message: format!("cannot start: {e}"),
        })?;
        let sql: Stdio = producer
            .stdout
            .take()
            .expect("stdout is piped")
            .try_into()
            .map_err(|e: std::io::Error| BackupError::Failed {
                what: "pg_restore".into(),
                message: e.to_string(),
            })?;
        let mut psql = self.command("psql");
        psql.args([
            "--no-psqlrc",
            "--quiet",
            "--no-password",
            "--set=ON_ERROR_STOP=1",
            "--single-transaction",
            "--command",
            &prologue(),
            "--file=-",
        ]);
        let applied = process::run(psql, "restoring with psql", sql).await;
        let produced = producer.wait_with_output().await;
        applied?;
        match produced {
            Ok(out) if out.status.success() => Ok(()),
            Ok(out) => Err(BackupError::Failed {
                what: "pg_restore".into(),
                message: crate::redact::scrub(String::from_utf8_lossy(&out.stderr).trim())
                    .into_owned(),
            }),
            Err(e) => Err(BackupError::Failed {
                what: "pg_restore".into(),
                message: e.to_string(),
            }),
        }
    }

    fn atomic_restore(&self) -> bool {
        true
    }
}

/// Drops every object that is not part of an extension, in every user schema except dbdeploy's
/// history table, so that the restore leaves exactly what the backup holds. Schemas other
/// than `public` go whole; `public` is kept (its owner and grants are the database's).
fn prologue() -> String {
    format!(
        r#"SET client_min_messages = warning;
DO $dbdeploy$
DECLARE r record;
BEGIN
  FOR r IN SELECT n.nspname FROM pg_namespace n
           WHERE n.nspname NOT IN ('public', 'information_schema') AND n.nspname NOT LIKE 'pg\_%'
             AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_namespace'::regclass AND d.objid = n.oid AND d.deptype = 'e')
  LOOP
    EXECUTE format('DROP SCHEMA IF EXISTS %I CASCADE', r.nspname);
  END LOOP;
  FOR r IN SELECT c.relname, c.relkind FROM pg_class c
           WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
             AND c.relname <> '{HISTORY_TABLE}'
             AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
  LOOP
    EXECUTE format('DROP %s IF EXISTS public.%I CASCADE',
      CASE r.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'f' THEN 'FOREIGN TABLE'
                     WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END, r.relname);
  END LOOP;
  FOR r IN SELECT t.typname, t.typtype FROM pg_type t
           WHERE t.typnamespace = 'public'::regnamespace AND t.typtype IN ('e', 'd', 'r', 'm')
             AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_type'::regclass AND d.objid = t.oid AND d.deptype = 'e')
  LOOP
    EXECUTE format('DROP %s IF EXISTS public.%I CASCADE', CASE r.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END, r.typname);
  END LOOP;
  FOR r IN SELECT p.oid::regprocedure::text AS sig, p.prokind FROM pg_proc p
           WHERE p.pronamespace = 'public'::regnamespace
             AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')
  LOOP
    EXECUTE format('DROP %s IF EXISTS %s CASCADE',
      CASE r.prokind WHEN 'p' THEN 'PROCEDURE' WHEN 'a' THEN 'AGGREGATE' ELSE 'FUNCTION' END, r.sig);
  END LOOP;
END
$dbdeploy$;"#
    )
}
