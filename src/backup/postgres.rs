//! PostgreSQL: `pg_dump -Fd -j N` to back up, into a fresh private directory, with the
//! compression of `[backup] compression` (see `pg_options.rs`); backups made by earlier
//! versions are `pg_dump -Fc` files and still restore. To restore, `pg_restore --clean
//! --if-exists` turns either into SQL that `psql --single-transaction` runs after a prologue
//! that drops whatever exists now (objects created after the backup would otherwise survive
//! a restore). One transaction: a restore that fails or is stopped leaves the database as it
//! was. (`pg_restore -j` cannot run in one transaction, and PostgreSQL cannot swap a restored
//! copy in atomically as the MariaDB restore does: see BENCHMARKS.md for the figures.)
//!
//! The tools get the connection through `PG*` environment variables, never argv.

use std::fs::File;
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::process::Command;

use super::pg_options::Compression;
use super::process::{self, Job, first_installed, version_numbers};
use super::{BackupError, BackupProvider, Marker, Names, RestoreInput, Stopped, Written};
use crate::engine::{Database, Stmt};
use crate::history::HISTORY_TABLE;

/// The PostgreSQL provider: connection settings for libpq tools.
#[derive(Clone)]
pub struct PgBackup {
    env: Vec<(&'static str, String)>,
    compression: Compression,
    jobs: u32,
}

/// Bytes of restore script passed from `pg_restore` to `psql` so far (for progress).
static PUMPED: AtomicU64 = AtomicU64::new(0);

/// Bytes of the current restore's script passed to `psql` so far.
#[must_use]
pub fn restored_bytes() -> u64 {
    PUMPED.load(Ordering::Relaxed)
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
        Ok(Self {
            env,
            compression: Compression::Auto,
            jobs: 1,
        })
    }

    /// The same provider with `[backup] compression` and `jobs`.
    #[must_use]
    pub fn with_options(mut self, compression: Compression, jobs: u32) -> Self {
        self.compression = compression;
        self.jobs = jobs.max(1);
        self
    }

    /// The `--compress` value for the installed `pg_dump`.
    async fn compress_arg(&self) -> Result<String, BackupError> {
        let client = first_installed(&["pg_dump"])
            .await
            .and_then(|(_, line)| version_numbers(&line))
            .map_or(0, |(m, _)| m);
        self.compression
            .pg_dump_arg(client)
            .map_err(|message| BackupError::Failed {
                what: "choosing the backup's compression".into(),
                message,
            })
    }

    fn command(&self, tool: &str) -> Command {
        let mut cmd = Command::new(tool);
        crate::settings::hide_other_urls(&mut cmd);
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
    let v = super::scalar_text(db, &Stmt::raw("SHOW server_version"))
        .await
        .map_err(|e| BackupError::Failed {
            what: "reading the server version".into(),
            message: e.to_string(),
        })?
        .unwrap_or_default();
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
    fn names(&self) -> Names {
        Names {
            name: "pg_dump",
            extension: "pgdir",
            directory: true,
        }
    }

    async fn preflight<D: Database>(&self, db: &mut D) -> Result<String, BackupError> {
        let (major, server) = server_major(db).await?;
        let dump = tool_for("pg_dump", major, &server).await?;
        tool_for("pg_restore", major, &server).await?;
        tool_for("psql", major, &server).await?;
        let compress = self.compress_arg().await?;
        Ok(format!(
            "{dump}, -Fd -j {} --compress={compress}",
            self.jobs
        ))
    }

    /// `pg_dump -Fd -j N` into `out`, the fresh private directory the store created (empty:
    /// `pg_dump` accepts it and creates nothing outside it). The tools run in a [`Job`].
    async fn create<D: Database>(
        &self,
        _db: &mut D,
        _id: &str,
        out: &Path,
        _dir: &File,
    ) -> Result<Written, BackupError> {
        let compress = self.compress_arg().await?;
        let mut cmd = self.command("pg_dump");
        cmd.args(["--format=directory", "--no-password"])
            .arg(format!("--jobs={}", self.jobs))
            .arg(format!("--compress={compress}"))
            .arg(format!("--exclude-table=*.{HISTORY_TABLE}"))
            .arg("--file")
            .arg(out);
        process::run(cmd, "pg_dump", Stdio::null()).await?;
        super::dump_dir::digest(out, true).await
    }

    async fn restore<D: Database>(
        &self,
        db: &mut D,
        input: &RestoreInput<'_>,
        marker: &mut Marker,
    ) -> Result<(), Stopped> {
        let applied = self.run_restore(db, input, marker).await;
        let interrupted = crate::interrupt::requested();
        match applied {
            Ok(()) => Ok(()),
            // The marker is removed in the restore's transaction: still there, that
            // transaction did not commit (psql failed or was stopped) and nothing changed.
            Err(e) => match marker.present(db).await {
                Ok(false) if interrupted => Ok(()),
                Ok(_) => Err(Stopped::unchanged(e).interrupted(interrupted)),
                Err(_) => Err(Stopped {
                    state: super::RestoreState::Unknown,
                    ..Stopped::unchanged(e).interrupted(interrupted)
                }),
            },
        }
    }

    fn atomic_restore(&self) -> bool {
        true
    }
}

impl PgBackup {
    /// Loads an archive of [`BackupProvider::create`] into the empty database `database` on
    /// the same server, owned by the connecting user (a rehearsal's copy). A directory-format
    /// archive loads with the backup's parallel jobs: the copy is dropped on any failure, so
    /// it needs no single transaction.
    ///
    /// # Errors
    /// When `pg_restore` fails or is stopped.
    pub async fn load_into(&self, database: &str, archive: &Path) -> Result<(), BackupError> {
        let mut cmd = self.command("pg_restore");
        cmd.env("PGDATABASE", database).args([
            "--no-owner",
            "--no-privileges",
            "--no-password",
            "--exit-on-error",
            "--dbname",
            database,
        ]);
        if archive.is_dir() {
            cmd.arg(format!("--jobs={}", self.jobs));
        } else {
            cmd.arg("--single-transaction");
        }
        cmd.arg(archive);
        process::run(cmd, "pg_restore into the copy", Stdio::null())
            .await
            .map(drop)
    }

    /// `pg_restore --clean` turns the archive (read from the checked handle) into SQL that
    /// `psql --single-transaction` runs after the prologue; the transaction ends by removing
    /// the restore's marker, so the marker is gone exactly when the restore committed.
    async fn run_restore<D: Database>(
        &self,
        db: &mut D,
        input: &RestoreInput<'_>,
        marker: &Marker,
    ) -> Result<(), BackupError> {
        let failed = |what: &str, e: &dyn std::fmt::Display| BackupError::Failed {
            what: what.to_owned(),
            message: e.to_string(),
        };
        let Some(file) = input.file else {
            return Err(failed("pg_restore", &"the backup has no data file"));
        };
        // pg_restore's script empties search_path: the marker's table is named with its schema.
        let schema = super::scalar_text(db, &Stmt::raw("SELECT current_schema()::text"))
            .await
            .map_err(|e| failed("reading the current schema", &e))?
            .unwrap_or_else(|| "public".into());
        let clear = marker.clear_sql(db.dialect()).replacen(
            "DELETE FROM ",
            &format!("DELETE FROM {}.", quote_ident(&schema)),
            1,
        );
        let directory = file
            .metadata()
            .map_err(|e| failed("reading the backup file", &e))?
            .is_dir();
        let job = Job::start("pg_restore")?;
        let mut script = self.command("pg_restore");
        script.args(["--clean", "--if-exists", "--no-password", "--file=-"]);
        if directory {
            // Checked by `open_verified` just before, in a private directory of ours.
            script
                .arg("--format=directory")
                .arg(&input.path)
                .stdin(Stdio::null());
        } else {
            // A one-file archive of an earlier version: the checked handle itself.
            let mut archive = file
                .try_clone()
                .map_err(|e| failed("reading the backup file", &e))?;
            std::io::Seek::seek(&mut archive, std::io::SeekFrom::Start(0))
                .map_err(|e| failed("reading the backup file", &e))?;
            script.stdin(Stdio::from(archive));
        }
        script.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut producer = job.spawn(&mut script, "pg_restore")?;
        let producer_said = process::collect(producer.stderr.take());
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
            "--command",
            &clear,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut consumer = job.spawn(&mut psql, "psql")?;
        let consumer_said = process::collect(consumer.stderr.take());
        let consumer_out = process::collect(consumer.stdout.take());
        let mut from = producer.stdout.take().expect("stdout is piped");
        let mut to = consumer.stdin.take().expect("stdin is piped");
        // dbdeploy carries the script from pg_restore to psql, so that psql only sees the end
        // of its input (and commits) when pg_restore produced the whole script: a pg_restore
        // that fails or is stopped half-way gets psql stopped before it can commit.
        PUMPED.store(0, Ordering::Relaxed);
        let pumped = tokio::select! {
            biased;
            () = crate::interrupt::wait() => None,
            copied = pump(&mut from, &mut to) => Some(copied),
        };
        let pumped = match pumped {
            Some(Ok(_)) => Ok(()),
            Some(Err(e)) => Err(failed("passing pg_restore's script to psql", &e)),
            None => Err(process::stopped("pg_restore")),
        };
        if let Err(e) = pumped {
            job.stop(&mut [&mut producer, &mut consumer]).await;
            return Err(e);
        }
        let Some(produced) = job.wait(&mut producer).await else {
            job.stop(&mut [&mut consumer]).await;
            return Err(process::stopped("pg_restore"));
        };
        let produced = produced.map_err(|e| failed("pg_restore", &e))?;
        if !produced.success() {
            job.stop(&mut [&mut consumer]).await;
            return process::check(
                produced,
                "pg_restore",
                producer_said.await.unwrap_or_default(),
            )
            .map(drop);
        }
        drop(to);
        let Some(status) = job.wait(&mut consumer).await else {
            return Err(process::stopped("psql"));
        };
        let status = status.map_err(|e| failed("psql", &e))?;
        job.finish().await;
        let mut said = consumer_said.await.unwrap_or_default();
        said.push_str(&consumer_out.await.unwrap_or_default());
        process::check(status, "restoring with psql", said).map(drop)
    }
}

/// Copies the script, counting bytes for progress.
async fn pump(
    from: &mut tokio::process::ChildStdout,
    to: &mut tokio::process::ChildStdin,
) -> std::io::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = from.read(&mut buf).await?;
        if n == 0 {
            return to.flush().await;
        }
        to.write_all(&buf[..n]).await?;
        PUMPED.fetch_add(n as u64, Ordering::Relaxed);
    }
}

fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
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
