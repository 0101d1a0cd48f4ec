//! `dbdeploy resolve ENV --applied NAME | --rolled-back NAME`: Prisma's `migrate resolve` for
//! every format — the rows the tool itself would write to clear (or accept) a failed
//! migration, written in one transaction through the same pipeline as a deploy (lock,
//! approval on protected environments, log).

use chrono::Utc;

use super::approve::{Approved, Summary};
use super::{Ctx, Operation, Outcome, Trail};
use crate::engine::{Database, Stmt};
use crate::error::Error;
use crate::handler::Resolution;
use crate::source::Source;

/// Mark the failed migration `name` as applied or rolled back.
#[derive(Debug)]
pub struct Resolve {
    /// The migration.
    pub name: String,
    /// How it is to be marked.
    pub resolution: Resolution,
}

/// The rows to write, and whether the tracking table must be created first (baselining a
/// database that has no history yet, as `prisma migrate resolve` does).
#[derive(Debug)]
pub struct ResolvePlan {
    /// The tracking-table statements.
    pub statements: Vec<Stmt>,
    /// The tracking table does not exist yet.
    pub create_table: bool,
}

impl Operation for Resolve {
    type Plan = ResolvePlan;
    type Done = ();

    const COMMAND: &'static str = "resolve";
    const OPERATION: &'static str = "resolve-migration";

    async fn plan<D: Database>(
        &self,
        cx: &Ctx<'_>,
        db: &mut D,
        trail: &mut Trail,
    ) -> Result<ResolvePlan, Error> {
        let Source::Files { handler, set } = cx.source else {
            unreachable!("a resolve runs on a migrations folder");
        };
        trail.changes_schema = false;
        trail.recorded = Some(vec![self.name.clone()]);
        let records = super::verify::read_history(db, *handler).await?;
        let create_table = records.is_none();
        let records = handler.interpret_history(
            set,
            handler.reconcile(set, records.unwrap_or_default().into()),
        );
        let local = set.migrations.iter().find(|m| m.name == self.name);
        let statements = handler.resolve(
            db.dialect(),
            &records,
            local,
            &self.name,
            self.resolution,
            Utc::now(),
        )?;
        Ok(ResolvePlan {
            statements,
            create_table,
        })
    }

    fn summary(&self, cx: &Ctx<'_>, _plan: &ResolvePlan) -> Summary {
        let what = match self.resolution {
            Resolution::Applied => "applied",
            Resolution::RolledBack => "rolled back",
        };
        Summary::Ask {
            headline: format!(
                "environment `{}` is protected: migration `{}` will be marked as {what}",
                cx.env.name, self.name
            ),
            notes: Vec::new(),
        }
    }

    async fn apply<D: Database>(
        &self,
        cx: &Ctx<'_>,
        db: &mut D,
        approved: Approved<ResolvePlan>,
        trail: &mut Trail,
    ) -> Result<(), Error> {
        let handler = cx.handler().expect("a resolve runs on a migrations folder");
        let plan = approved.into_plan();
        trail.touched = true;
        if plan.create_table {
            for stmt in handler.create_table(db.dialect()) {
                db.execute(&stmt).await?;
            }
        }
        db.execute(&Stmt::raw("BEGIN")).await?;
        for stmt in &plan.statements {
            if let Err(e) = db.execute(stmt).await {
                let _ = db.execute(&Stmt::raw("ROLLBACK")).await;
                return Err(e.into());
            }
        }
        db.execute(&Stmt::raw("COMMIT")).await?;
        cx.step(
            "resolve",
            Outcome::Ok,
            format!(
                "{} row(s) written to {}",
                plan.statements.len(),
                handler.table()
            ),
        );
        Ok(())
    }
}
