//! `dbdeploy rehearse ENV`: the pending migrations applied to a copy of ENV's database, with
//! the real pipeline (the [`Deploy`] operation against the copy's target), to measure them and
//! to find the one that fails before production does.
//!
//! The real database is only read: one read-only session for the history and the copy's
//! settings, the dump tool's snapshot, and a session that creates and drops the copy's own
//! database. No deploy lock is taken on it. The copy is dropped whatever happens — a failure,
//! an error, Ctrl-C or SIGTERM (the run holds an interrupt guard from start to end, and an
//! interrupt abandons a migration still running on the copy: dropping the copy ends it).

pub mod copy;
pub mod estimates;
pub mod record;

use std::time::{Duration, Instant};

use crate::engine::Database;
use crate::error::Error;
use crate::handler::Handler;
use crate::interrupt;
use crate::migration::MigrationSet;
use crate::pipeline::deploy::Deploy;
use crate::pipeline::event::duration;
use crate::pipeline::{Ctx, Ended, Outcome, Reporter, RunOptions, Trail};
use crate::settings::EnvSettings;
use crate::source::Source;
use copy::Scratch;
use record::{Measured, Record};

/// One migration applied on the copy.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Applied {
    /// Its name.
    pub name: String,
    /// How long it took on the copy.
    #[serde(
        rename = "duration_seconds",
        serialize_with = "crate::pipeline::trail::seconds"
    )]
    pub duration: Duration,
    /// Whether it ran in one transaction.
    pub atomic: bool,
}

/// The migration that failed on the copy.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Failed {
    /// Its name.
    pub migration: String,
    /// The database's error.
    pub error: String,
    /// The failing statement's number, when known.
    pub statement: Option<usize>,
    /// Its line, when known.
    pub line: Option<usize>,
}

/// What the copy was.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CopyInfo {
    /// `fresh-dump`.
    pub source: &'static str,
    /// The dump's size.
    pub size_bytes: u64,
    /// How long copying took.
    #[serde(
        rename = "duration_seconds",
        serialize_with = "crate::pipeline::trail::seconds"
    )]
    pub duration: Duration,
    /// The copy's database name (servers).
    pub database: Option<String>,
    /// Whether it was dropped.
    pub dropped: bool,
}

/// How a rehearsal ended.
#[derive(Debug)]
pub struct Rehearsal {
    /// The pending migrations of the real database.
    pub pending: Vec<String>,
    /// Those applied on the copy, in order.
    pub applied: Vec<Applied>,
    /// The one that failed.
    pub failed: Option<Failed>,
    /// The copy, when one was made.
    pub copy: Option<CopyInfo>,
    /// Where the durations were recorded.
    pub recorded: Option<std::path::PathBuf>,
    /// Why the run stopped before every pending migration was tried (an error on the copy,
    /// an interrupt, a copy that could not be dropped).
    pub error: Option<Error>,
}

/// Rehearses the pending migrations of `env` on a copy of its database.
pub async fn run<D: Database>(
    env: &EnvSettings,
    handler: &'static dyn Handler,
    set: &MigrationSet,
    source: &Source,
    reporter: &dyn Reporter,
) -> Rehearsal {
    let _guard = interrupt::Guard::new();
    crate::pipeline::start(reporter, "rehearse", env, source, false);
    let cx = Ctx::read_only(env, source, reporter);
    let mut out = Rehearsal {
        pending: Vec::new(),
        applied: Vec::new(),
        failed: None,
        copy: None,
        recorded: None,
        error: None,
    };
    let mut real: D = match interrupt::unless_interrupted(crate::pipeline::connect::connect(
        &cx,
        true,
        false,
        &mut Trail::new(),
    ))
    .await
    {
        Some(Ok(db)) => db,
        Some(Err(e)) => return out.stopped(e),
        None => return out.stopped(stopped(env)),
    };
    let prepared = prepare(&cx, &mut real, handler, set).await;
    let (identity, pending) = match prepared {
        Ok(p) => p,
        Err(e) => {
            real.close().await;
            return out.stopped(e);
        }
    };
    out.pending = pending;
    if out.pending.is_empty() {
        real.close().await;
        return out;
    }
    let started = Instant::now();
    let scratch = match Scratch::create(env, &mut real).await {
        Ok(s) => s,
        Err(e) => {
            cx.step("copy", Outcome::Failed, e.to_string());
            real.close().await;
            return out.stopped(e);
        }
    };
    // Said before it starts: a large database takes minutes to dump and load.
    reporter.event(crate::pipeline::Event::Note(format!(
        "copying the database (a fresh dump) to {} ...",
        scratch.target.describe()
    )));
    let filled = scratch.fill(env, &mut real).await;
    real.close().await;
    let mut info = CopyInfo {
        source: "fresh-dump",
        size_bytes: 0,
        duration: started.elapsed(),
        database: scratch.name.clone(),
        dropped: false,
    };
    let deployed = match filled {
        Ok(size) if !interrupt::requested() => {
            info.size_bytes = size;
            cx.step(
                "copy",
                Outcome::Ok,
                format!(
                    "{} copied to {} in {}",
                    crate::backup::human_bytes(size),
                    scratch.target.describe(),
                    duration(info.duration)
                ),
            );
            on_copy::<D>(env, source, &scratch, reporter).await
        }
        Ok(_) => Err(stopped(env)),
        Err(e) => {
            cx.step("copy", Outcome::Failed, e.to_string());
            Err(if interrupt::requested() {
                stopped(env)
            } else {
                e
            })
        }
    };
    // Dropped whatever happened; a second interrupt ends the process at once, as anywhere.
    let dropped = scratch.drop_copy::<D>(env).await;
    info.dropped = dropped.is_ok();
    match &dropped {
        Ok(()) => cx.step("drop copy", Outcome::Ok, "the copy was dropped".into()),
        Err(e) => cx.step(
            "drop copy",
            Outcome::Failed,
            format!(
                "{e}; drop {} by hand",
                scratch
                    .name
                    .as_deref()
                    .map_or_else(|| "the copy".to_owned(), |n| format!("database `{n}`"))
            ),
        ),
    }
    drop(scratch);
    out.copy = Some(info);
    match deployed {
        Ok(Deployed {
            applied,
            failed,
            error,
        }) => {
            out.applied = applied;
            out.failed = failed;
            out.error = error;
        }
        Err(e) => out.error = Some(e),
    }
    if let Err(e) = dropped
        && out.error.is_none()
    {
        out.error = Some(e);
    }
    if !out.applied.is_empty() {
        out.recorded = remember(&cx, set, identity, &out.applied);
    }
    out
}

impl Rehearsal {
    fn stopped(mut self, e: Error) -> Self {
        self.error = Some(e);
        self
    }

    /// Whether every pending migration applied on the copy.
    #[must_use]
    pub fn succeeded(&self) -> bool {
        self.error.is_none() && self.failed.is_none() && self.applied.len() == self.pending.len()
    }
}

fn stopped(env: &EnvSettings) -> Error {
    Box::new(interrupt::Interrupted::before_any_change(&env.name, 0)).into()
}

/// The real database's identity and pending migrations, from its history as it is now.
async fn prepare<D: Database>(
    cx: &Ctx<'_>,
    real: &mut D,
    handler: &dyn Handler,
    set: &MigrationSet,
) -> Result<(crate::backup::DatabaseIdentity, Vec<String>), Error> {
    crate::backup::marker::refuse_unfinished(real).await?;
    let records = crate::pipeline::verify::read_history(real, handler)
        .await?
        .unwrap_or_default();
    let plan = crate::pipeline::pending::plan(set, &records, handler);
    let pending: Vec<String> = plan.pending.iter().map(|m| m.name.clone()).collect();
    cx.step(
        "pending",
        Outcome::Ok,
        if pending.is_empty() {
            format!(
                "no pending migrations ({} applied): nothing to rehearse",
                plan.applied.len()
            )
        } else {
            format!("{} pending, {} applied", pending.len(), plan.applied.len())
        },
    );
    let identity = crate::backup::identity::read(real, &cx.env.target).await?;
    Ok((identity, pending))
}

/// What the deploy on the copy did.
struct Deployed {
    applied: Vec<Applied>,
    failed: Option<Failed>,
    error: Option<Error>,
}

/// The real pipeline's deploy, against the copy; abandoned at once on an interrupt (the copy
/// is dropped next, which ends what still runs there).
async fn on_copy<D: Database>(
    env: &EnvSettings,
    source: &Source,
    scratch: &Scratch,
    reporter: &dyn Reporter,
) -> Result<Deployed, Error> {
    let copy_env = env.scratch(
        scratch.target.clone(),
        scratch.dir.path().join("audit.jsonl"),
    );
    let options = RunOptions {
        yes: true,
        ..RunOptions::default()
    };
    let cx = Ctx {
        env: &copy_env,
        source,
        options: &options,
        interactive: false,
        reporter,
    };
    let deploy = Deploy::default();
    let run = crate::pipeline::run::<D, Deploy>(&cx, &deploy);
    let Some(finished) = interrupt::unless_interrupted(run).await else {
        return Err(stopped(env));
    };
    let applied = finished
        .trail
        .changed
        .iter()
        .map(|c| Applied {
            name: c.name.clone(),
            duration: c.duration,
            atomic: c.atomic,
        })
        .collect();
    Ok(match finished.result {
        Ok(Ended::Done(()) | Ended::NothingToDo(_) | Ended::Previewed(_)) => Deployed {
            applied,
            failed: None,
            error: None,
        },
        Err(Error::Apply(e)) => Deployed {
            applied,
            failed: Some(Failed {
                migration: e.failed.migration.clone(),
                error: e.failed.message.clone(),
                statement: e.failed.statement,
                line: e.failed.line,
            }),
            error: None,
        },
        Err(e) => Deployed {
            applied,
            failed: None,
            error: Some(e),
        },
    })
}

/// Keeps the measured durations for the next dry run; a failure to write them is a warning.
fn remember(
    cx: &Ctx<'_>,
    set: &MigrationSet,
    identity: crate::backup::DatabaseIdentity,
    applied: &[Applied],
) -> Option<std::path::PathBuf> {
    let measured = applied
        .iter()
        .filter_map(|a| {
            let m = set.migrations.iter().find(|m| m.name == a.name)?;
            Some(Measured {
                name: a.name.clone(),
                checksum: m.checksum.clone(),
                duration_seconds: crate::pipeline::trail::round_seconds(a.duration),
            })
        })
        .collect();
    let record = Record::new(&cx.env.name, identity, measured);
    match record::save(&cx.env.working_dir, &record) {
        Ok(path) => Some(path),
        Err(e) => {
            cx.reporter.event(crate::pipeline::Event::Warning(format!(
                "the measured durations were not kept for the next dry run: {e}"
            )));
            None
        }
    }
}
