//! The pipeline: every way dbdeploy changes a database runs through [`run`], the only place
//! the order of steps lives.
//!
//! connect → check → [dry run: plan → preview] | lock → plan → approve → backup → apply →
//! verify → unlock → log
//!
//! What varies is the [`Operation`] (deploy, revert, resolve, restore, backup: one module
//! each) and the [`Source`] it works on (a migrations folder read through a format's handler,
//! or an external tool). Connecting, locking, approval, the backup step, the interrupt policy
//! and logging are written once, here and in their step modules, so every operation gets the
//! same safeguards. Each step hands the next a typed value; an operation can only write after
//! [`approve`] has turned its plan into an [`approve::Approved`].

pub mod after;
pub mod apply;
pub mod approve;
pub mod backup;
pub mod connect;
pub mod deploy;
pub mod drift;
pub mod event;
pub mod external;
pub mod facts;
pub mod health;
pub mod lock;
pub mod log;
pub mod pending;
pub mod precheck;
pub mod preview;
pub mod promote;
pub mod resolve;
pub mod restore;
pub mod revert;
pub mod trail;
pub mod validate;
pub mod verify;

use crate::engine::Database;
use crate::error::Error;
use crate::handler::Handler;
use crate::interrupt::{self, Interrupted};
use crate::migration::MigrationSet;
use crate::settings::EnvSettings;
use crate::source::Source;
pub use event::{Event, Outcome, Reporter};
pub use trail::Trail;

/// The flags that shape a run, whatever the operation.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Plan and preview only, on a read-only session, without the lock.
    pub dry_run: bool,
    /// Approve without asking.
    pub yes: bool,
    /// Skip the pre-deploy consistency checks.
    pub skip_health_check: bool,
    /// Change the database without the backup the environment asks for.
    pub skip_backup: bool,
    /// Deploy even though the schema changed since the last deploy.
    pub allow_drift: bool,
    /// A target of a fleet: approved once for the whole fleet, never asked again.
    pub fleet: Option<approve::Delegated>,
}

/// Everything a step may read.
#[derive(Clone, Copy)]
pub struct Ctx<'a> {
    /// The environment.
    pub env: &'a EnvSettings,
    /// What the run works on.
    pub source: &'a Source,
    /// The flags.
    pub options: &'a RunOptions,
    /// A person can answer prompts.
    pub interactive: bool,
    /// Where events go.
    pub reporter: &'a dyn Reporter,
}

impl Ctx<'_> {
    /// Reports how a step ended.
    pub fn step(&self, name: &str, outcome: Outcome, detail: String) {
        self.reporter.event(Event::Step {
            name,
            outcome,
            detail,
        });
    }

    /// Reports something that does not stop the run, and keeps it for the report; once per
    /// run (the plan is made twice).
    pub fn warn(&self, trail: &mut Trail, warning: String) {
        if trail.warnings.contains(&warning) {
            return;
        }
        self.reporter.event(Event::Warning(warning.clone()));
        trail.warnings.push(warning);
    }

    /// The format whose tracking table the run reads; `None` for an external tool.
    #[must_use]
    pub fn handler(&self) -> Option<&'static dyn Handler> {
        self.source.handler()
    }

    /// The migrations on disk, when the source has them.
    #[must_use]
    pub fn set(&self) -> Option<&MigrationSet> {
        self.source.set()
    }

    /// Whether this run takes a backup before it changes anything.
    #[must_use]
    pub fn backup_needed(&self) -> bool {
        self.env.backup_before_migrate && !self.options.skip_backup && !self.options.dry_run
    }
}

/// One way of changing a database. [`run`] calls these in its fixed order; an operation only
/// says what its plan is, how to show it, and how to carry it out once approved.
#[allow(async_fn_in_trait)]
pub trait Operation {
    /// What approval covers: the work decided under the lock.
    type Plan;
    /// What the operation did, for the report.
    type Done;
    /// The command shown in the start banner (`migrate`, `down`, ...).
    const COMMAND: &'static str;
    /// The operation recorded in the history and the JSON (`deploy-migrations`, ...).
    const OPERATION: &'static str;
    /// The operation of this run: a dry run may be recorded as another.
    fn operation(&self, dry_run: bool) -> &'static str {
        let _ = dry_run;
        Self::OPERATION
    }
    /// Checks before the lock, on the run's session (nothing to check by default).
    async fn check<D: Database>(
        &self,
        cx: &Ctx<'_>,
        db: &mut D,
        trail: &mut Trail,
    ) -> Result<(), Error> {
        let _ = (cx, db, trail);
        Ok(())
    }
    /// Decides what to do: under the lock, or on a read-only session for a dry run.
    async fn plan<D: Database>(
        &self,
        cx: &Ctx<'_>,
        db: &mut D,
        trail: &mut Trail,
    ) -> Result<Self::Plan, Error>;
    /// Whether the plan has nothing to do (the run ends successfully there).
    fn is_empty(&self, plan: &Self::Plan) -> bool {
        let _ = plan;
        false
    }
    /// Shows the plan of a dry run (operations without a dry run show nothing).
    fn preview(&self, cx: &Ctx<'_>, plan: &Self::Plan) {
        let _ = (cx, plan);
    }
    /// What a person reads before `Proceed?`.
    fn summary(&self, cx: &Ctx<'_>, plan: &Self::Plan) -> approve::Summary;
    /// What differs between the plan approved before the lock (`None`: nothing was to be
    /// done then) and the plan made under it; nothing when they are the same.
    fn changes(&self, approved: Option<&Self::Plan>, now: &Self::Plan) -> Vec<String> {
        let _ = now;
        match approved {
            Some(_) => Vec::new(),
            None => vec!["nothing was to be done when approval was asked".into()],
        }
    }
    /// Whether the backup step runs before [`Operation::apply`].
    fn backs_up(&self) -> bool {
        false
    }
    /// Carries out the approved plan.
    async fn apply<D: Database>(
        &self,
        cx: &Ctx<'_>,
        db: &mut D,
        approved: approve::Approved<Self::Plan>,
        trail: &mut Trail,
    ) -> Result<Self::Done, Error>;
    /// Checks the database says what was done (nothing more to check by default).
    async fn verify<D: Database>(
        &self,
        cx: &Ctx<'_>,
        db: &mut D,
        done: &Self::Done,
        trail: &mut Trail,
    ) -> Result<(), Error> {
        let _ = (cx, db, done, trail);
        Ok(())
    }
}

/// How a run ended when it did not fail.
#[derive(Debug)]
pub enum Ended<P, D> {
    /// A dry run: the plan, shown and not carried out.
    Previewed(P),
    /// There was nothing to do.
    NothingToDo(P),
    /// The plan was carried out.
    Done(D),
}

/// A finished run: what every run records, and how this one ended.
pub struct Finished<O: Operation> {
    /// What the run did, also when it failed part-way.
    pub trail: Trail,
    /// How it ended.
    pub result: Result<Ended<O::Plan, O::Done>, Error>,
}

/// Runs `op` on `cx.source` against a database of engine `D`: the one pipeline.
pub async fn run<D: Database, O: Operation>(cx: &Ctx<'_>, op: &O) -> Finished<O> {
    let mut trail = Trail::new();
    // From here on Ctrl-C stops a run that may write at its next safe point, and the run is
    // still logged.
    let _guard = (!cx.options.dry_run).then(interrupt::Guard::new);
    start(
        cx.reporter,
        O::COMMAND,
        cx.env,
        cx.source,
        cx.options.dry_run,
    );
    validate::report(cx, O::COMMAND, &mut trail);
    let mut db: Option<D> = None;
    let mut held: Option<lock::Held> = None;
    let result = steps(cx, op, &mut db, &mut held, &mut trail).await;
    let operation = op.operation(cx.options.dry_run);
    // The lock is released only once the run is recorded: the next deploy's drift check reads
    // the schema this run recorded, and must not see its changes without its record.
    log::conclude(cx, operation, db, held, &mut trail, result.as_ref().err()).await;
    Finished { trail, result }
}

/// The start banner of a command: what runs, against which database, with which tool.
pub fn start(
    reporter: &dyn Reporter,
    command: &str,
    env: &EnvSettings,
    source: &Source,
    dry_run: bool,
) {
    let target = env.target.describe();
    reporter.event(Event::Start {
        command,
        environment: &env.name,
        mode: env.mode,
        target: &target,
        tool: source.tool_name(),
        dry_run,
    });
}

/// Stopped by Ctrl-C before anything was changed.
fn stopped(cx: &Ctx<'_>) -> Error {
    Box::new(Interrupted::before_any_change(&cx.env.name, 0)).into()
}

async fn steps<D: Database, O: Operation>(
    cx: &Ctx<'_>,
    op: &O,
    slot: &mut Option<D>,
    held: &mut Option<lock::Held>,
    trail: &mut Trail,
) -> Result<Ended<O::Plan, O::Done>, Error> {
    let read_only = cx.options.dry_run;
    let db = interrupt::unless_interrupted(connect::connect::<D>(
        cx,
        read_only,
        O::COMMAND == "migrate",
        trail,
    ))
    .await
    .ok_or_else(|| stopped(cx))??;
    let db = slot.insert(db);
    interrupt::unless_interrupted(op.check(cx, db, trail))
        .await
        .ok_or_else(|| stopped(cx))??;
    if cx.options.dry_run {
        let plan = op.plan(cx, db, trail).await?;
        if op.is_empty(&plan) {
            return Ok(Ended::NothingToDo(plan));
        }
        op.preview(cx, &plan);
        return Ok(Ended::Previewed(plan));
    }
    // Planned and approved before the lock, so that nobody is shut out while a person reads
    // the summary; then planned again under it, and carried out only if nothing changed.
    let approved = approved_unlocked(cx, op, db, trail).await?;
    *held = Some(lock::take(cx, db).await?);
    trail.locked = true;
    // A half-restored database is not what its tracking table says: only a restore may run.
    if O::COMMAND != "rollback" {
        crate::backup::marker::refuse_unfinished(db).await?;
    }
    precheck::reset_if_approved(cx, db, trail).await?;
    // Made again under the lock; only what went wrong is reported the second time.
    let relay = event::Problems(cx.reporter);
    let replan = Ctx {
        reporter: &relay,
        ..*cx
    };
    let plan = op.plan(&replan, db, trail).await?;
    let empty = op.is_empty(&plan);
    let approved = match approve::recheck(cx, approved, plan, empty, |a, b| op.changes(a, b))? {
        Ok(approved) => approved,
        Err(nothing) => return Ok(Ended::NothingToDo(nothing)),
    };
    locked(cx, op, db, approved, trail).await
}

/// The plan without the lock, and its approval when it has something to do.
async fn approved_unlocked<D: Database, O: Operation>(
    cx: &Ctx<'_>,
    op: &O,
    db: &mut D,
    trail: &mut Trail,
) -> Result<Option<approve::Approved<O::Plan>>, Error> {
    let plan = op.plan(cx, db, trail).await?;
    if op.is_empty(&plan) {
        return Ok(None);
    }
    if interrupt::requested() {
        return Err(trail.interrupted(cx, trail.planned));
    }
    let summary = op.summary(cx, &plan);
    Ok(Some(approve::approve(cx, summary, plan).await?))
}

/// The steps that run while the deploy lock is held, once the plan made under it is approved.
async fn locked<D: Database, O: Operation>(
    cx: &Ctx<'_>,
    op: &O,
    db: &mut D,
    approved: approve::Approved<O::Plan>,
    trail: &mut Trail,
) -> Result<Ended<O::Plan, O::Done>, Error> {
    // A reset has taken the backup already.
    if op.backs_up() && trail.backup.is_none() {
        match backup::step(cx, db, &trail.run_id).await {
            Ok(status) => trail.backup = Some(status),
            // Ctrl-C also reaches the dump tool run from a terminal; its failure is the interrupt.
            Err(_) if interrupt::requested() => return Err(trail.interrupted(cx, trail.planned)),
            Err(e) => return Err(e),
        }
    }
    if interrupt::requested() {
        return Err(trail.interrupted(cx, trail.planned));
    }
    let done = op.apply(cx, db, approved, trail).await?;
    if interrupt::requested() {
        return Err(trail.interrupted(cx, 0));
    }
    op.verify(cx, db, &done, trail).await?;
    Ok(Ended::Done(done))
}
