//! Step 1: offline validation — the migrations folder parses and the flags make sense.
//! Nothing here touches a database. The folder is loaded before the pipeline starts (a broken
//! folder is a usage error, exit 2); the step reports what was loaded.

use super::{Ctx, Outcome, Trail};
use crate::config::ConfigError;
use crate::error::Error;
use crate::handler::Handler;
use crate::migration::MigrationSet;
use crate::settings::EnvSettings;
use crate::source::Source;

/// Loads and checks the migrations.
///
/// # Errors
/// A bad folder or file, or `--to` naming a migration that does not exist.
pub fn run(
    env: &EnvSettings,
    handler: &dyn Handler,
    to: Option<&str>,
) -> Result<MigrationSet, Error> {
    let set = handler.load(&env.migrations_dir, env.target.dialect())?;
    if let Some(to) = to
        && set.find(to).is_none()
    {
        return Err(ConfigError::Usage(format!(
            "--to {to}: no such migration in {}",
            set.dir.display()
        ))
        .into());
    }
    Ok(set)
}

/// Reports what was validated: the folder's warnings and its migrations, or the external
/// tool's commands. A run on the tracking table alone (backup, rollback) validated nothing.
pub fn report(cx: &Ctx<'_>, command: &str, trail: &mut Trail) {
    match cx.source {
        Source::Files { set, .. } => {
            for w in &set.warnings {
                cx.warn(trail, w.clone());
            }
            cx.step(
                "validate",
                Outcome::Ok,
                format!(
                    "{} migrations in {}",
                    set.migrations.len(),
                    set.dir.display()
                ),
            );
        }
        Source::External(_) if command == "migrate" => cx.step(
            "validate",
            Outcome::Ok,
            "status_command and apply_command configured".into(),
        ),
        Source::External(_) | Source::Tracking(_) => {}
    }
}
