//! `dbdeploy lint [ENV]`: the lint's findings (see `lint`) for the pending migrations of ENV,
//! against what its live database knows (table sizes, columns, indexes, server version), or
//! without ENV for every migration, offline (sizes unknown). The same findings as a dry run's
//! preview and the approval summary. Read-only, no lock. Exit 0 when no finding reaches
//! `[lint] fail_on` (default `high`), 5 when one does.

use serde::Serialize;

use super::{Needs, Setup, setup};
use crate::config::ConfigError;
use crate::engine::{Database, Dialect};
use crate::error::{Error, exit};
use crate::handler::Handler;
use crate::lint::{AllowedBy, Blocks, Facts, Level};
use crate::migration::MigrationSet;
use crate::output::{Printer, Response};
use crate::pipeline::preview::{self, MigrationPreview};
use crate::pipeline::{Ctx, Trail};
use crate::settings::{EnvSettings, LintSettings, Settings};
use crate::source::Source;

const OPERATION: &str = "lint-migrations";

/// One finding, with the migration and file it is in.
#[derive(Serialize)]
struct Row<'a> {
    migration: &'a str,
    file: &'a str,
    line: usize,
    code: &'a str,
    level: Level,
    message: &'a str,
    table: Option<&'a str>,
    lock: Option<&'a str>,
    blocks: Blocks,
    rewrites: bool,
    scans: bool,
    estimated_seconds: Option<f64>,
    suggestion: &'a str,
    parsed: bool,
}

/// A finding let through, with who let it through and why.
#[derive(Serialize)]
struct Allowed<'a> {
    migration: &'a str,
    file: &'a str,
    line: usize,
    code: &'a str,
    level: Level,
    message: &'a str,
    allowed_by: AllowedBy,
    reason: &'a str,
}

#[derive(Serialize)]
struct LintResult<'a> {
    /// Linted against a live database (ENV given) or offline.
    live: bool,
    migrations_linted: usize,
    findings: Vec<Row<'a>>,
    allowed: Vec<Allowed<'a>>,
    fail_on: Option<Level>,
    exit_code: u8,
}

/// Runs `lint`.
pub async fn run(settings: &Settings, environment: Option<&str>, printer: &Printer) -> Response {
    let name = environment.unwrap_or_default();
    let previews = match environment {
        Some(env) => live(settings, env, printer).await,
        None => offline(settings),
    };
    let (mut previews, lint, mode) = match previews {
        Ok(x) => x,
        Err(e) => return Response::failed(OPERATION, name, e),
    };
    // Files as the project names them, for editors and CI annotations.
    for p in &mut previews {
        if let Ok(rel) = std::path::Path::new(&p.file).strip_prefix(&settings.working_dir) {
            p.file = rel.display().to_string();
        }
    }
    crate::output::findings::lint(printer, &previews);
    let findings: Vec<Row<'_>> = previews
        .iter()
        .flat_map(|p| {
            p.risks.iter().map(|f| Row {
                migration: &p.name,
                file: &p.file,
                line: f.line,
                code: f.code,
                level: f.level,
                message: &f.message,
                table: f.table.as_deref(),
                lock: f.lock.as_deref(),
                blocks: f.blocks,
                rewrites: f.rewrites,
                scans: f.scans,
                estimated_seconds: f.estimated_seconds,
                suggestion: &f.suggestion,
                parsed: f.parsed,
            })
        })
        .collect();
    let allowed: Vec<Allowed<'_>> = previews
        .iter()
        .flat_map(|p| {
            p.allowed.iter().map(|s| Allowed {
                migration: &p.name,
                file: &p.file,
                line: s.finding.line,
                code: s.finding.code,
                level: s.finding.level,
                message: &s.finding.message,
                allowed_by: s.allowed_by,
                reason: &s.reason,
            })
        })
        .collect();
    let failing = lint
        .fail_on
        .map_or(0, |l| findings.iter().filter(|f| f.level >= l).count());
    let code = if failing > 0 {
        exit::INCONSISTENT
    } else {
        exit::SUCCESS
    };
    let scope = if environment.is_some() {
        format!("{} pending migration(s) of {name}", previews.len())
    } else {
        format!("{} migration(s), offline", previews.len())
    };
    let allowed_note = if allowed.is_empty() {
        String::new()
    } else {
        format!(", {} allowed", allowed.len())
    };
    let message = match lint.fail_on {
        Some(level) if failing > 0 => format!(
            "{} finding(s) in {scope}{allowed_note}; {failing} at or above `[lint] fail_on = \"{level}\"`",
            findings.len()
        ),
        _ => format!("{} finding(s) in {scope}{allowed_note}", findings.len()),
    };
    let result = LintResult {
        live: environment.is_some(),
        migrations_linted: previews.len(),
        findings,
        allowed,
        fail_on: lint.fail_on,
        exit_code: code,
    };
    let mut response = Response::success(OPERATION, name, mode, message, &result);
    if code != exit::SUCCESS {
        response.line = crate::output::Line::Plain;
    }
    response.exit_code = code;
    response
}

type Linted = (
    Vec<MigrationPreview>,
    LintSettings,
    Option<crate::config::Mode>,
);

/// The pending migrations of `environment`, against its live database.
async fn live(settings: &Settings, environment: &str, printer: &Printer) -> Result<Linted, Error> {
    let setup = setup(settings, environment, Needs::FilesOnly { command: "lint" })?;
    let Setup { env, source } = &setup;
    crate::pipeline::start(printer, "lint", env, source, false);
    let Source::Files { handler, set } = source else {
        unreachable!("lint reads the migrations folder")
    };
    let previews = crate::with_database!(env.target, D => pending::<D>(env, source, *handler, set, printer).await)?;
    Ok((previews, env.lint.clone(), Some(env.mode)))
}

async fn pending<D: Database>(
    env: &EnvSettings,
    source: &Source,
    handler: &dyn Handler,
    set: &MigrationSet,
    printer: &Printer,
) -> Result<Vec<MigrationPreview>, Error> {
    let cx = Ctx::read_only(env, source, printer);
    let mut trail = Trail::new();
    let mut db: D = crate::pipeline::connect::connect(&cx, true, false, &mut trail).await?;
    let result = async {
        let records = crate::pipeline::verify::read_history(&mut db, handler)
            .await?
            .unwrap_or_default();
        let plan = crate::pipeline::pending::plan(set, &records, handler);
        let facts = crate::pipeline::facts::read(&mut db).await?;
        let (dialect, transactional) = (db.dialect(), db.transactional_ddl());
        Ok::<_, Error>(
            plan.pending
                .iter()
                .map(|m| preview::preview(m, dialect, transactional, &facts, &env.lint))
                .collect(),
        )
    }
    .await;
    db.close().await;
    result
}

/// Every migration of the folder, offline.
fn offline(settings: &Settings) -> Result<Linted, Error> {
    let tool = settings.config.project.migration_tool;
    let Some(handler) = crate::handler::for_tool(tool) else {
        return Err(ConfigError::Usage(
            "`dbdeploy lint` reads SQL migration files; with `migration_tool = \"command\"` the tool's migrations are code".into(),
        )
        .into());
    };
    let dir = settings
        .config
        .project
        .migrations_dir
        .clone()
        .unwrap_or_else(|| handler.default_dir().into());
    let dir = crate::settings::absolute(&settings.working_dir, &dir);
    let dialect = offline_dialect(settings, tool.as_str())?;
    let set = handler.load(&dir, dialect)?;
    let lint = settings.lint()?;
    let facts = Facts::default();
    let previews = set
        .migrations
        .iter()
        .map(|m| preview::preview(m, dialect, dialect != Dialect::MySql, &facts, &lint))
        .collect();
    Ok((previews, lint, None))
}

/// The SQL dialect of the migrations without a database: what the folder says it was
/// generated for (Prisma's `provider`, drizzle's `dialect`), else the engine every
/// environment whose URL can be read points at.
fn offline_dialect(settings: &Settings, tool: &str) -> Result<Dialect, Error> {
    let detected = crate::handler::detect::find(&settings.working_dir, tool)
        .and_then(|d| d.database)
        .map(|db| match db {
            "mysql" => Dialect::MySql,
            "sqlite" => Dialect::Sqlite,
            _ => Dialect::Postgres,
        });
    if let Some(d) = detected {
        return Ok(d);
    }
    let dialects: Vec<Dialect> = settings
        .config
        .environments
        .keys()
        .filter_map(|name| settings.environment(name).ok())
        .map(|env| env.target.dialect())
        .collect();
    match dialects.first() {
        Some(first) if dialects.iter().all(|d| d == first) => Ok(*first),
        _ => Err(ConfigError::Usage(
            "`dbdeploy lint` without an environment cannot tell which SQL dialect the migrations are written in (the environments point at different engines, or none can be read); name an environment: `dbdeploy lint ENV`".into(),
        )
        .into()),
    }
}
