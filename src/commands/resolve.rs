//! `dbdeploy resolve ENV --applied NAME | --rolled-back NAME`: Prisma's `migrate resolve`,
//! under the deploy lock, with approval on protected environments, logged like a deploy.

use chrono::Utc;
use serde_json::json;

use super::{fail_early, prepare_for};
use crate::cli::{GlobalArgs, ResolveArgs};
use crate::engine::{
    ConnectOptions, Database, Dialect, Stmt, mysql::MySql, postgres::Postgres, sqlite::Sqlite,
};
use crate::error::{Error, exit};
use crate::handler::Resolution;
use crate::output::json::{self, Status};
use crate::output::{Event, Outcome, Printer, Reporter};
use crate::pipeline::{Context, RunOptions, approve, log, read_history};

const OPERATION: &str = "resolve-migration";

/// Runs `resolve`.
pub async fn run(global: &GlobalArgs, args: ResolveArgs, printer: &Printer) -> u8 {
    let (name, resolution) = match (args.applied, args.rolled_back) {
        (Some(n), None) => (n, Resolution::Applied),
        (None, Some(n)) => (n, Resolution::RolledBack),
        _ => unreachable!("clap requires exactly one of --applied and --rolled-back"),
    };
    let p = match prepare_for("`dbdeploy resolve`", global, &args.environment, None) {
        Ok(p) => p,
        Err(e) => return fail_early(printer, OPERATION, &args.environment, &e),
    };
    // A file name is accepted for the migration it holds.
    let name = p.set.find(&name).map_or(name, |m| m.name.clone());
    let options = RunOptions {
        yes: args.yes,
        ..RunOptions::default()
    };
    let ctx = Context {
        env: &p.env,
        handler: p.handler,
        set: &p.set,
        options: &options,
        interactive: p.settings.interactive,
        reporter: printer,
    };
    let target = p.env.target.describe();
    printer.event(Event::Start {
        command: "resolve",
        environment: &p.env.name,
        mode: p.env.mode,
        target: &target,
        tool: p.handler.name(),
        dry_run: false,
    });
    let result = match p.env.target.dialect() {
        Dialect::Postgres => resolve::<Postgres>(&ctx, &name, resolution).await,
        Dialect::MySql => resolve::<MySql>(&ctx, &name, resolution).await,
        Dialect::Sqlite => resolve::<Sqlite>(&ctx, &name, resolution).await,
    };
    match result {
        Ok(()) => {
            let what = match resolution {
                Resolution::Applied => "applied",
                Resolution::RolledBack => "rolled back",
            };
            let message = format!("Migration `{name}` marked as {what} in {}.", p.env.name);
            printer.result(&format!("✓ {message}"));
            if printer.json_mode() {
                printer.json(
                    &json::Document {
                        status: Status::Success,
                        operation: OPERATION,
                        environment: &p.env.name,
                        mode: Some(p.env.mode.as_str()),
                        result: json!({"migration": name, "resolution": what}),
                        message: &message,
                        error: None,
                        recovery: None,
                    }
                    .render(),
                );
            }
            exit::SUCCESS
        }
        Err(e) => fail_early(printer, OPERATION, &p.env.name, &e),
    }
}

async fn resolve<D: Database>(
    ctx: &Context<'_>,
    name: &str,
    resolution: Resolution,
) -> Result<(), Error> {
    let started_at = Utc::now();
    let opts = ConnectOptions {
        wait: ctx.env.connect_wait,
        lock_wait: ctx.env.lock_timeout,
        read_only: false,
    };
    let mut db = D::connect(&ctx.env.target, opts).await?;
    let keys = ctx.handler.lock_keys(&db.lock_scope().await?);
    let keys = crate::engine::lock_all(&mut db, &keys, ctx.env.lock_timeout).await?;
    let result = locked(ctx, &mut db, name, resolution).await;
    let _ = crate::engine::unlock_all(&mut db, &keys).await;
    let record = log::RunRecord {
        run_id: &uuid::Uuid::new_v4().to_string(),
        environment: &ctx.env.name,
        operation: OPERATION,
        status: match &result {
            Ok(()) => "success",
            Err(Error::Approval(_)) => "cancelled",
            Err(_) => "error",
        },
        migrations: vec![name.to_owned()],
        started_at,
        finished_at: Utc::now(),
        error: result.as_ref().err(),
        target: ctx.env.target.describe(),
        schema: None,
        backup_id: None,
        rollback_status: None,
    };
    if result.is_ok()
        && let Err(w) = log::write_history(&mut db, &record).await
    {
        ctx.reporter.event(Event::Warning(w));
    }
    if let Err(w) = log::write_audit(&ctx.env.audit_file, &record) {
        ctx.reporter.event(Event::Warning(w));
    }
    db.close().await;
    result
}

async fn locked<D: Database>(
    ctx: &Context<'_>,
    db: &mut D,
    name: &str,
    resolution: Resolution,
) -> Result<(), Error> {
    let dialect = db.dialect();
    let records = read_history(db, ctx.handler).await?;
    let exists = records.is_some();
    let records = ctx.handler.interpret_history(
        ctx.set,
        ctx.handler.reconcile(ctx.set, records.unwrap_or_default()),
    );
    let local = ctx.set.migrations.iter().find(|m| m.name == name);
    let stmts = ctx
        .handler
        .resolve(dialect, &records, local, name, resolution, Utc::now())?;
    let policy = approve::ApprovalPolicy {
        required: ctx.env.approval_required,
        yes: ctx.options.yes,
        interactive: ctx.interactive,
    };
    approve::approve(Vec::new(), policy, &ctx.env.name).await?;
    if !exists {
        // Baselining a database that has no history yet, as `prisma migrate resolve` does.
        for stmt in ctx.handler.create_table(dialect) {
            db.execute(&stmt).await?;
        }
    }
    db.execute(&Stmt::raw("BEGIN")).await?;
    for stmt in &stmts {
        if let Err(e) = db.execute(stmt).await {
            let _ = db.execute(&Stmt::raw("ROLLBACK")).await;
            return Err(e.into());
        }
    }
    db.execute(&Stmt::raw("COMMIT")).await?;
    ctx.reporter.event(Event::Step {
        name: "resolve",
        outcome: Outcome::Ok,
        detail: format!("{} row(s) written to {}", stmts.len(), ctx.handler.table()),
    });
    Ok(())
}
