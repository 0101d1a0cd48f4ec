//! `dbdeploy history ENV`: past runs from the database's `_dbdeploy_history`, newest first.

use serde_json::json;

use super::fail_early;
use crate::cli::{GlobalArgs, HistoryArgs};
use crate::engine::{
    ConnectOptions, Database, Dialect, mysql::MySql, postgres::Postgres, sqlite::Sqlite,
};
use crate::error::{Error, exit};
use crate::output::Printer;
use crate::output::human::paint;
use crate::output::json::{self, Status};
use crate::pipeline::log::{self, PastRun};
use crate::settings::{EnvSettings, Settings};

const OPERATION: &str = "deploy-history";

/// Runs `history`.
pub async fn run(global: &GlobalArgs, args: HistoryArgs, printer: &Printer) -> u8 {
    let environment = &args.environment;
    let env = match Settings::load(global).and_then(|s| s.environment(environment)) {
        Ok(env) => env,
        Err(e) => return fail_early(printer, OPERATION, environment, &e.into()),
    };
    let runs = match env.target.dialect() {
        Dialect::Postgres => read::<Postgres>(&env, args.limit).await,
        Dialect::MySql => read::<MySql>(&env, args.limit).await,
        Dialect::Sqlite => read::<Sqlite>(&env, args.limit).await,
    };
    let runs = match runs {
        Ok(r) => r,
        Err(e) => return fail_early(printer, OPERATION, environment, &e),
    };
    let c = printer.color();
    for r in &runs {
        let mark = match r.status.as_str() {
            "success" => paint(c, "\x1b[32m", "✓"),
            "cancelled" | "interrupted" => paint(c, "\x1b[33m", "!"),
            _ => paint(c, "\x1b[31m", "✗"),
        };
        let what = if r.migrations.is_empty() {
            String::new()
        } else {
            format!(" {}: {}", r.migrations.len(), r.migrations.join(", "))
        };
        let extra = [
            r.backup_id.as_ref().map(|b| format!("backup {b}")),
            r.rollback_status.as_ref().map(|s| format!("rollback {s}")),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(", ");
        printer.line(&format!(
            "{mark} {}  {:<18} {:<9} {}ms  {}@{}{what}{}",
            r.started_at,
            r.operation,
            r.status,
            r.duration_ms,
            r.user,
            r.host,
            if extra.is_empty() {
                String::new()
            } else {
                format!("  ({extra})")
            }
        ));
        if let Some(e) = &r.error {
            printer.line(&format!("    {}", paint(c, "\x1b[2m", e)));
        }
    }
    let message = if runs.is_empty() {
        format!("No runs recorded in {environment} yet.")
    } else {
        format!("{} run(s) of {environment}, newest first", runs.len())
    };
    printer.result(&message);
    if printer.json_mode() {
        printer.json(
            &json::Document {
                status: Status::Success,
                operation: OPERATION,
                environment,
                mode: Some(env.mode.as_str()),
                result: json!({ "runs": runs }),
                message: &message,
                error: None,
                recovery: None,
            }
            .render(),
        );
    }
    exit::SUCCESS
}

async fn read<D: Database>(env: &EnvSettings, limit: usize) -> Result<Vec<PastRun>, Error> {
    let opts = ConnectOptions {
        wait: env.connect_wait,
        lock_wait: env.lock_timeout,
        read_only: true,
    };
    let mut db = D::connect(&env.target, opts).await?;
    let runs = log::read_runs(&mut db, limit).await;
    db.close().await;
    Ok(runs?)
}
