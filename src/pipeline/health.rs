//! The named health checks — connectivity, tracking table, failed migrations, checksums,
//! missing files, schema drift, disk space, backup tools, application command — one
//! implementation shared by `dbdeploy health` and the steps before and after a deploy
//! (`pipeline/precheck.rs`, `pipeline/after.rs`). Each check reports passed / failed / warning
//! / skipped with a reason.

use std::time::Duration;

use serde::Serialize;

use super::{Event, Outcome};
use crate::backup::{BackupError, BackupProvider, RollbackOutcome};
use crate::engine::{Database, Target};
use crate::handler::Handler;
use crate::migration::{AppliedRecord, MigrationSet};
use crate::pipeline::pending::DriftError;
use crate::settings::EnvSettings;

/// Tables dbdeploy itself owns, ignored when deciding whether a schema is empty.
pub const OWN_TABLES: &[&str] = &[
    crate::history::HISTORY_TABLE,
    crate::handler::unfinished::TABLE,
];

/// How long the application check command may run.
const APP_CHECK_TIMEOUT: Duration = Duration::from_secs(120);

/// The result of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckStatus {
    /// It passed.
    Passed,
    /// It failed.
    Failed,
    /// It passed with something worth attention.
    Warning,
    /// It did not run, for the stated reason.
    Skipped,
}

/// One named check.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// `connectivity`, `tracking_table`, ...
    pub name: &'static str,
    /// What happened.
    pub status: CheckStatus,
    /// Why, in one line.
    pub detail: String,
}

impl Check {
    /// A check with its outcome.
    pub fn new(name: &'static str, status: CheckStatus, detail: impl Into<String>) -> Self {
        Self {
            name,
            status,
            detail: detail.into(),
        }
    }

    /// The check as a progress line.
    pub fn report(&self, reporter: &dyn super::Reporter) {
        let outcome = match self.status {
            CheckStatus::Passed => Outcome::Ok,
            CheckStatus::Failed => Outcome::Failed,
            CheckStatus::Warning => Outcome::Warning,
            CheckStatus::Skipped => Outcome::Skipped,
        };
        reporter.event(Event::Step {
            name: self.name,
            outcome,
            detail: self.detail.clone(),
        });
    }
}

/// The health check after the deploy failed.
#[derive(Debug, thiserror::Error)]
#[error("the health check after the deploy failed: {check}: {detail}")]
pub struct HealthAfterError {
    /// The environment.
    pub environment: String,
    /// The failed check.
    pub check: String,
    /// Why.
    pub detail: String,
    /// What the automatic restore did.
    pub rollback: Option<RollbackOutcome>,
}

impl HealthAfterError {
    /// What to do.
    #[must_use]
    pub fn hints(&self) -> Vec<String> {
        let env = &self.environment;
        RollbackOutcome::hints(
            self.rollback.as_ref(),
            env,
            format!(
                "find out why `{}` failed, then run `dbdeploy migrate {env}` again",
                self.check
            ),
            |id| {
                match id {
                Some(id) => vec![
                    "the migrations are applied".into(),
                    format!(
                        "to return to the state before this deploy: `dbdeploy rollback {env} --to {id}`"
                    ),
                ],
                None => vec![
                    "the migrations are applied and there is no backup from this run; fix forward with a new migration, or restore your own backup".into(),
                ],
            }
            },
        )
    }
}

/// How many tables a "not empty" message names.
const TABLES_SHOWN: usize = 5;

/// Some tables of the schema that are not dbdeploy's own: none when it is empty, else the
/// first few by name for the message, without listing thousands of tables on every run.
///
/// # Errors
/// A database error listing them.
pub async fn foreign_tables<D: Database>(
    db: &mut D,
) -> Result<Vec<String>, crate::engine::DbError> {
    // Enough rows that, with dbdeploy's own tables among them, a few others remain.
    let tables = db.some_user_tables(TABLES_SHOWN + OWN_TABLES.len()).await?;
    Ok(tables
        .into_iter()
        .filter(|t| !OWN_TABLES.contains(&t.as_str()))
        .take(TABLES_SHOWN)
        .collect())
}

/// The checks on the tracking table against the files: present, none failed, unchanged, none
/// missing. Returns the checks and the drift they amount to, if any.
pub fn history_checks(
    environment: &str,
    handler: &dyn Handler,
    set: &MigrationSet,
    tables: &[String],
    records: Option<&[AppliedRecord]>,
) -> (Vec<Check>, Option<DriftError>) {
    let table = handler.table();
    let Some(records) = records else {
        let skipped = |name| Check::new(name, CheckStatus::Skipped, format!("no `{table}` table"));
        if tables.is_empty() {
            return (
                vec![
                    Check::new(
                        "tracking_table",
                        CheckStatus::Passed,
                        format!("no `{table}` yet: empty database (first deploy)"),
                    ),
                    skipped("failed_migrations"),
                    skipped("checksums"),
                    skipped("missing_files"),
                ],
                None,
            );
        }
        let drift = DriftError::NotEmpty {
            environment: environment.to_owned(),
            table,
            tables: tables.iter().take(TABLES_SHOWN).cloned().collect(),
        };
        return (
            vec![
                Check::new("tracking_table", CheckStatus::Failed, drift.to_string()),
                skipped("failed_migrations"),
                skipped("checksums"),
                skipped("missing_files"),
            ],
            Some(drift),
        );
    };
    let plan = super::pending::plan(set, records, handler);
    let mut checks = vec![Check::new(
        "tracking_table",
        CheckStatus::Passed,
        format!("`{table}`: {} applied", plan.applied.len()),
    )];
    // A check passes when its list is empty, and names what is listed when not.
    let listed = |name: &'static str, list: &[String], passed: &str, problem: &str| {
        if list.is_empty() {
            Check::new(name, CheckStatus::Passed, passed)
        } else {
            Check::new(
                name,
                CheckStatus::Failed,
                format!("{problem}: {}", list.join(", ")),
            )
        }
    };
    let failed: Vec<String> = plan.failed.iter().map(|(n, _)| n.clone()).collect();
    checks.push(listed(
        "failed_migrations",
        &failed,
        "none failed",
        "not finished (failed, or being applied right now)",
    ));
    checks.push(listed(
        "checksums",
        &plan.modified,
        "applied migrations unchanged on disk",
        "edited after being applied",
    ));
    checks.push(listed(
        "missing_files",
        &plan.missing,
        "every applied migration is on disk",
        "applied but missing on disk",
    ));
    (checks, plan.drift(environment))
}

/// Free space: the SQLite file's file system, and the backup folder against the expected size.
pub async fn disk_space<D: Database>(
    db: &mut D,
    env: &EnvSettings,
    backup_needed: bool,
) -> (Vec<Check>, Option<BackupError>) {
    let mut checks = Vec::new();
    let sqlite = matches!(env.target, Target::Sqlite { .. });
    // Only the SQLite file check and the backup check use the size, and on PostgreSQL it
    // costs a walk over every file of the database.
    let size = if sqlite || backup_needed {
        super::backup::expected_size(db, env).await
    } else {
        None
    };
    if let Target::Sqlite { path } = &env.target {
        checks.push(match (available(path), size) {
            (Some(free), Some(size)) if free < size => Check::new(
                "disk_space",
                CheckStatus::Warning,
                format!(
                    "{} free next to the database file ({}): a migration that rewrites a table may not fit",
                    crate::backup::human_bytes(free),
                    crate::backup::human_bytes(size)
                ),
            ),
            (Some(free), _) => Check::new(
                "disk_space",
                CheckStatus::Passed,
                format!(
                    "{} free next to the database file",
                    crate::backup::human_bytes(free)
                ),
            ),
            (None, _) => Check::new(
                "disk_space",
                CheckStatus::Skipped,
                "free space next to the database file cannot be read",
            ),
        });
    }
    if !backup_needed {
        checks.push(Check::new(
            "backup_space",
            CheckStatus::Skipped,
            "no backup required",
        ));
        return (checks, None);
    }
    let mut err = None;
    checks.push(match (available(&env.backup.dir), size) {
        (Some(free), Some(size)) if free < size => {
            let e = BackupError::NoSpace {
                dir: env.backup.dir.clone(),
                free,
                needed: size,
            };
            let c = Check::new("backup_space", CheckStatus::Failed, e.to_string());
            err = Some(e);
            c
        }
        (Some(free), Some(size)) => Check::new(
            "backup_space",
            CheckStatus::Passed,
            format!(
                "{} free for a backup of about {}",
                crate::backup::human_bytes(free),
                crate::backup::human_bytes(size)
            ),
        ),
        _ => Check::new(
            "backup_space",
            CheckStatus::Skipped,
            "the database size or the free space cannot be read",
        ),
    });
    (checks, err)
}

/// Free bytes on the file system that holds `path` (or its nearest existing parent).
fn available(path: &std::path::Path) -> Option<u64> {
    let mut p = path;
    loop {
        if p.exists() {
            return fs4::available_space(p).ok();
        }
        p = p.parent()?;
    }
}

/// The backup provider's tools, when a backup will be needed.
pub async fn backup_tools<D: Database>(
    db: &mut D,
    env: &EnvSettings,
    backup_needed: bool,
) -> (Check, Option<BackupError>) {
    if !backup_needed {
        return (
            Check::new("backup_tools", CheckStatus::Skipped, "no backup required"),
            None,
        );
    }
    let result = match super::backup::provider(env) {
        Ok((provider, _)) => provider.preflight(db).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(tool) => (Check::new("backup_tools", CheckStatus::Passed, tool), None),
        Err(e) => (
            Check::new("backup_tools", CheckStatus::Failed, e.to_string()),
            Some(e),
        ),
    }
}

/// Runs the environment's `health_command`.
pub async fn app_check(env: &EnvSettings) -> Check {
    let Some(command) = &env.health_command else {
        return Check::new(
            "health_command",
            CheckStatus::Skipped,
            "no health_command configured",
        );
    };
    let mut cmd = tokio::process::Command::new("sh");
    crate::settings::hide_other_urls(&mut cmd);
    cmd.arg("-c")
        .arg(command)
        .current_dir(&env.working_dir)
        .env("DATABASE_URL", env.target.url_for_tools())
        .env("DBDEPLOY_ENVIRONMENT", &env.name);
    let run = crate::backup::process::run(cmd, "health_command", std::process::Stdio::null());
    match tokio::time::timeout(APP_CHECK_TIMEOUT, run).await {
        Ok(Ok(_)) => Check::new("health_command", CheckStatus::Passed, "exited 0"),
        Ok(Err(e)) => Check::new("health_command", CheckStatus::Failed, e.to_string()),
        Err(_) => Check::new(
            "health_command",
            CheckStatus::Failed,
            format!("did not finish within {} s", APP_CHECK_TIMEOUT.as_secs()),
        ),
    }
}
