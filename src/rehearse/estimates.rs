//! Measured durations instead of guesses: a dry run or an approval summary that follows a
//! recent rehearsal of the same database and the same migration files shows what the
//! rehearsal measured (see [`super::record`]).

use chrono::Utc;

use crate::engine::Database;
use crate::migration::Migration;
use crate::pipeline::preview::MigrationPreview;
use crate::pipeline::{Ctx, Event, Trail};

/// Replaces the estimates of `previews` (those of `pending`, in order) with the durations a
/// recent rehearsal measured; returns the line that says so, when any was replaced.
pub async fn measured<D: Database>(
    cx: &Ctx<'_>,
    db: &mut D,
    pending: &[&Migration],
    previews: &mut [MigrationPreview],
    trail: &mut Trail,
) -> Option<String> {
    if cx.env.scratch {
        return None;
    }
    let record = match super::record::load(&cx.env.working_dir, &cx.env.name) {
        Ok(Some(r)) => r,
        Ok(None) => return None,
        Err(reason) => {
            let path = super::record::path(&cx.env.working_dir, &cx.env.name);
            cx.warn(
                trail,
                format!(
                    "ignored the rehearsal record {}: {reason}; the estimates are guesses",
                    path.display()
                ),
            );
            return None;
        }
    };
    let identity = crate::backup::identity::read(db, &cx.env.target)
        .await
        .ok()?;
    let now = Utc::now();
    if let Some(why) = record.stale(&identity, now) {
        cx.reporter.event(Event::Note(format!(
            "the last rehearsal's durations are not used ({why}); run `dbdeploy rehearse {}` to measure",
            cx.env.name
        )));
        return None;
    }
    let mut replaced = 0;
    for (m, p) in pending.iter().zip(previews.iter_mut()) {
        if let Some(seconds) = record.duration_of(m) {
            p.estimated_duration_seconds = seconds;
            replaced += 1;
        }
    }
    if replaced == 0 {
        return None;
    }
    let age =
        crate::pipeline::event::duration((now - record.rehearsed_at).to_std().unwrap_or_default());
    let others = if replaced < pending.len() {
        " (the others are guesses)"
    } else {
        ""
    };
    Some(format!(
        "estimates: {replaced} of {} migration(s) measured by `dbdeploy rehearse` on a copy of this database {age} ago{others}",
        pending.len()
    ))
}
