//! Step 1: offline validation — the migrations folder parses and the flags make sense.
//! Nothing here touches a database.

use crate::config::ConfigError;
use crate::error::Error;
use crate::handler::Handler;
use crate::migration::MigrationSet;
use crate::settings::EnvSettings;

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
