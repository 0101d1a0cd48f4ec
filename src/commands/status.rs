//! `dbdeploy status ENV`: where every migration stands. Read-only, no lock.
//! Exit 0 up to date, 4 pending, 5 failed/modified/missing.

use serde_json::json;

use super::{PreparedExternal, Project, fail_early, load};
use crate::cli::GlobalArgs;
use crate::engine::{Database, Dialect, mysql::MySql, postgres::Postgres, sqlite::Sqlite};
use crate::error::{Error, exit};
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
    // Formats that track versions (sqlx, dbmate, golang-migrate) name migrations by number;
    // the file name says what each one is.
    let label = |name: &str| -> String {
        let file = ctx
            .set
            .migrations
            .iter()
            .find(|m| m.name == name)
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
    let section =
        |title: &str, n: usize| printer.line(&paint(c, "\x1b[1m", &format!("{title} ({n})")));
    section("Applied", plan.applied.len());
    for (name, at) in &plan.applied {
        printer.line(&format!(
            "  {} {}  {}",
            paint(c, "\x1b[32m", "✓"),
            label(name),
            paint(c, "\x1b[2m", at.as_deref().unwrap_or(""))
        ));
    }
    section("Pending", plan.pending.len());
    for m in &plan.pending {
        let ooo = if plan.out_of_order.contains(&m.name) {
            "  (out of order)"
        } else {
            ""
        };
        printer.line(&format!("  · {}{ooo}", label(&m.name)));
    }
    for (title, names) in [
        ("Modified since applied", &plan.modified),
        ("Missing from disk", &plan.missing),
        (
            "Never applied, below the current version",
            &plan.unreachable,
        ),
    ] {
        if !names.is_empty() {
            section(title, names.len());
            for n in names {
                printer.line(&format!("  {} {}", paint(c, "\x1b[31m", "✗"), label(n)));
            }
        }
    }
    if !plan.failed.is_empty() {
        section("Failed", plan.failed.len());
        for (name, logs) in &plan.failed {
            printer.line(&format!("  {} {}", paint(c, "\x1b[31m", "✗"), label(name)));
            if let Some(logs) = logs.as_deref().filter(|l| !l.is_empty()) {
                for line in logs.lines().take(6) {
                    printer.line(&format!("      {}", paint(c, "\x1b[2m", line)));
                }
            }
        }
    }

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
