//! The settings of a fleet environment (`[environments.NAME.fleet]`) and of each of its
//! targets: the environment's rules with the target's own URL.

use super::{ConfigError, EnvSettings, Settings};

impl Settings {
    /// One target of the fleet of environment `name`: the environment's rules with the
    /// target's URL, and backups in a folder of its own (`[backup] dir`/NAME/ID), since two
    /// targets backed up in the same second would otherwise share a backup id.
    ///
    /// # Errors
    /// Unknown environment, malformed URL.
    pub fn fleet_target(
        &self,
        name: &str,
        id: &str,
        raw_url: &str,
        other_url_vars: Vec<String>,
    ) -> Result<EnvSettings, ConfigError> {
        let env =
            self.config
                .environments
                .get(name)
                .ok_or_else(|| ConfigError::UnknownEnvironment {
                    name: name.to_owned(),
                    path: self.config_path.clone(),
                    known: self.config.environments.keys().cloned().collect(),
                })?;
        self.resolve(name, env, raw_url, Some(id), other_url_vars)
    }

    /// The fleet of environment `name`, checked; `None` when it is one database.
    ///
    /// # Errors
    /// Unknown environment, or a fleet table that breaks a rule (see `fleet::config::check`).
    pub fn fleet(
        &self,
        name: &str,
    ) -> Result<Option<crate::fleet::config::FleetSettings>, ConfigError> {
        let Some(env) = self.config.environments.get(name) else {
            return Ok(None);
        };
        let Some(table) = &env.fleet else {
            return Ok(None);
        };
        if self.url_override.is_some() {
            return Err(ConfigError::Usage(format!(
                "--url names one database, and environment `{name}` is a fleet of databases: drop --url"
            )));
        }
        let own_url = env.url.is_some() || env.url_env.is_some() || env.direct_url_env.is_some();
        crate::fleet::config::check(name, table, own_url)
            .map(Some)
            .map_err(|message| ConfigError::Parse {
                path: self.config_path.clone(),
                message,
            })
    }

    /// The URL of a fleet's target: its literal `url`, or its `url_env` variable (exported,
    /// else from the project's `.env`).
    ///
    /// # Errors
    /// The variable is not set.
    pub fn target_url(
        &self,
        environment: &str,
        target: &crate::fleet::config::TargetEntry,
    ) -> Result<String, ConfigError> {
        let raw = match (&target.url, &target.url_env) {
            (Some(url), _) => url.clone(),
            (None, Some(var)) => {
                self.read_var(var, &format!("{environment}` target `{}", target.id))?
            }
            (None, None) => {
                return Err(ConfigError::Usage(format!(
                    "target `{}` of environment `{environment}` has neither `url` nor `url_env`",
                    target.id
                )));
            }
        };
        crate::redact::register_url(&raw);
        Ok(raw)
    }

    /// The catalog database's URL of a fleet's `targets_query`, from `catalog_url_env`.
    ///
    /// # Errors
    /// The variable is not set.
    pub fn catalog_url(&self, environment: &str, var: &str) -> Result<String, ConfigError> {
        let raw = self.read_var(
            var,
            &format!("{environment}` fleet catalog (`catalog_url_env"),
        )?;
        crate::redact::register_url(&raw);
        Ok(raw)
    }

    /// The variables other environments read their URLs from, for a fleet's child commands.
    #[must_use]
    pub fn url_vars_except(&self, name: &str) -> Vec<String> {
        self.other_url_vars(name)
    }
}
