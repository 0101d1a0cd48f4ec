//! `dbdeploy status ENV`: where every migration stands. Read-only, no lock.
//! Exit 0 up to date, 4 pending, 5 failed/modified/missing.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use serde_json::json;

use super::{PreparedExternal, Project, fail_early, load};
use crate::cli::GlobalArgs;
use crate::engine::{Database, Dialect, mysql::MySql, postgres::Postgres, sqlite::Sqlite};
use crate::error::{Error, exit};
use crate::migration::Migration;
use crate::output::human::paint;
use crate::output::json::{self, Status};
use crate::output::{Event, Printer, Reporter};
use crate::pipeline::{Context, RunOptions, health, log, pending, read_history};

const OPERATION: &str = "migration-status";

/// Runs `status`.
pub async fn run(global: &GlobalArgs, environment: &str, printer: &Printer) -> u8 {
    let p = match load(global, environment, None) {
        Ok(Project::Files(p)) => *p,
        Ok(Project::External(p)) => return external(&p, printer).await,
        Err(e) => return fail_early(printer, OPERATION, environment, &e),
    };
    let options = RunOptions {
        dry_run: true,
        ..RunOptions::default()
    };
    let ctx = Context {
        env: &p.env,
        handler: p.handler,
        set: &p.set,
        options: &options,
        interactive: false,
        reporter: printer,
    };
    let target = p.env.target.describe();
    printer.event(Event::Start {
        command: "status",
        environment,
        mode: p.env.mode,
        target: &target,
        tool: p.handler.name(),
        dry_run: false,
    });
    let result = match p.env.target.dialect() {
        Dialect::Postgres => show::<Postgres>(&ctx, printer).await,
        Dialect::MySql => show::<MySql>(&ctx, printer).await,
        Dialect::Sqlite => show::<Sqlite>(&ctx, printer).await,
    };
    match result {
        Ok(code) => code,
        Err(e) => fail_early(printer, OPERATION, environment, &e),
    }
}

async fn show<D: Database>(ctx: &Context<'_>, printer: &Printer) -> Result<u8, Error> {
    let (mut db, _) = health::connect::<D>(ctx, true).await?;
    let records = read_history(&mut db, ctx.handler).await;
    let deployed = log::deployed_migrations(&mut db).await;
    db.close().await;
    let records = records?;
    let table_exists = records.is_some();
    let records = records.unwrap_or_default();
    let mut plan = pending::plan(ctx.set, &records, ctx.handler);
    plan.unreachable = ctx.handler.unreachable(ctx.set, &records, &deployed?);
    let c = printer.color();
    let by_name: HashMap<&str, &Migration> = ctx
        .set
        .migrations
        .iter()
        .map(|m| (m.name.as_str(), m))
        .collect();
    // Formats that track versions (sqlx, dbmate, golang-migrate) name migrations by number;
    // the file name says what each one is.
    let label = |name: &str| -> String {
        let file = by_name
            .get(name)
            .filter(|m| !m.path.iter().any(|part| part == name))
            .and_then(|m| m.path.file_name())
            .map(|f| f.to_string_lossy().into_owned());
        match file {
            // `1_users.sql` already shows the version `1`.
            Some(f)
                if f.strip_prefix(name)
                    .is_some_and(|rest| rest.starts_with(|ch: char| !ch.is_ascii_digit())) =>
            {
                f
            }
            Some(f) => format!("{name}  {}", paint(c, "\x1b[2m", &f)),
            None => name.to_owned(),
        }
    };
    // The whole listing is written at once: thousands of lines, one write.
    let mut out = String::new();
    let mut line = |text: std::fmt::Arguments<'_>| {
        let _ = out.write_fmt(text);
        out.push('\n');
    };
    let section = |title: &str, n: usize| paint(c, "\x1b[1m", &format!("{title} ({n})"));
    line(format_args!("{}", section("Applied", plan.applied.len())));
    let tick = paint(c, "\x1b[32m", "✓");
    for (name, at) in &plan.applied {
        line(format_args!(
            "  {tick} {}  {}",
            label(name),
            paint(c, "\x1b[2m", at.as_deref().unwrap_or(""))
        ));
    }
    line(format_args!("{}", section("Pending", plan.pending.len())));
    let out_of_order: HashSet<&str> = plan.out_of_order.iter().map(String::as_str).collect();
    for m in &plan.pending {
        let ooo = if out_of_order.contains(m.name.as_str()) {
            "  (out of order)"
        } else {
            ""
        };
        line(format_args!("  · {}{ooo}", label(&m.name)));
    }
    let cross = paint(c, "\x1b[31m", "✗");
    for (title, names) in [
        ("Modified since applied", &plan.modified),
        ("Missing from disk", &plan.missing),
        (
            "Never applied, below the current version",
            &plan.unreachable,
        ),
    ] {
        if !names.is_empty() {
            line(format_args!("{}", section(title, names.len())));
            for n in names {
                line(format_args!("  {cross} {}", label(n)));
            }
        }
    }
    if !plan.failed.is_empty() {
        line(format_args!("{}", section("Failed", plan.failed.len())));
        for (name, logs) in &plan.failed {
            line(format_args!("  {cross} {}", label(name)));
            if let Some(logs) = logs.as_deref().filter(|l| !l.is_empty()) {
                for log_line in logs.lines().take(6) {
                    line(format_args!("      {}", paint(c, "\x1b[2m", log_line)));
                }
            }
        }
    }
    printer.lines(&out);

    let env = &ctx.env.name;
    let (code, message) = if let Some(drift) = plan.drift(env) {
        let err = Error::from(drift);
        printer.error(&err);
        (exit::INCONSISTENT, err.to_string())
    } else if !plan.pending.is_empty() {
        (
            exit::PENDING,
            format!(
                "{} pending migration(s); run `dbdeploy migrate {env}`",
                plan.pending.len()
            ),
        )
    } else {
        (exit::SUCCESS, format!("{env} is up to date"))
    };
    printer.result(&message);
    if printer.json_mode() {
        let result = json!({
            "tracking_table_exists": table_exists,
            "applied": plan.applied.iter().map(|(n, at)| json!({"name": n, "finished_at": at})).collect::<Vec<_>>(),
            "pending": plan.pending.iter().map(|m| &m.name).collect::<Vec<_>>(),
            "failed": plan.failed.iter().map(|(n, logs)| json!({"name": n, "logs": logs})).collect::<Vec<_>>(),
            "modified": plan.modified,
            "missing": plan.missing,
            "unreachable": plan.unreachable,
            "out_of_order": plan.out_of_order,
            "exit_code": code,
        });
        printer.json(
            &json::Document {
                status: Status::Success,
                operation: OPERATION,
                environment: env,
                mode: Some(ctx.env.mode.as_str()),
                result,
                message: &message,
                error: None,
                recovery: None,
            }
            .render(),
        );
    }
    Ok(code)
}

/// `status` for an external tool: what its `status_command` reports pending. Applied migrations
/// are in the tool's own history, which its own status command shows.
async fn external(p: &PreparedExternal, printer: &Printer) -> u8 {
    let env = &p.env.name;
    let target = p.env.target.describe();
    printer.event(Event::Start {
        command: "status",
        environment: env,
        mode: p.env.mode,
        target: &target,
        tool: crate::external::NAME,
        dry_run: false,
    });
    let pending = match crate::external::pending(&p.tool, &p.env).await {
        Ok(pending) => pending,
        Err(e) => return fail_early(printer, OPERATION, env, &e.into()),
    };
    let c = printer.color();
    printer.line(&paint(
        c,
        "\x1b[1m",
        &format!("Pending, as status_command reports ({})", pending.len()),
    ));
    for name in &pending {
        printer.line(&format!("  · {name}"));
    }
    let (code, message) = if pending.is_empty() {
        (exit::SUCCESS, format!("{env} is up to date"))
    } else {
        (
            exit::PENDING,
            format!(
                "{} pending migration(s); run `dbdeploy migrate {env}`",
                pending.len()
            ),
        )
    };
    printer.result(&message);
    if printer.json_mode() {
        printer.json(
            &json::Document {
                status: Status::Success,
                operation: OPERATION,
                environment: env,
                mode: Some(p.env.mode.as_str()),
                result: json!({
                    "source": "status_command",
                    "pending": pending,
                    "exit_code": code,
                }),
                message: &message,
                error: None,
                recovery: None,
            }
            .render(),
        );
    }
    code
}
