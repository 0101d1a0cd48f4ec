//! Child commands (external tools, health and backup commands, client tools, a fleet's
//! `targets_command`) never see the URL variables of databases they are not about.

use super::Settings;

/// The URL variables no child command of this process sees: other environments' (and, on a
/// fleet, every target's; see [`hide_other_urls`]). Set by the first environment resolved, so
/// that one resolved later (`promote_from`) cannot hide the first one's own variables from it.
static OTHER_URL_VARS: std::sync::RwLock<Option<Vec<String>>> = std::sync::RwLock::new(None);

/// The variables child commands never see, unless an earlier environment set them.
pub(super) fn hide_urls_once(vars: &[String]) {
    let mut hidden = OTHER_URL_VARS
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if hidden.is_none() {
        *hidden = Some(vars.to_vec());
    }
}

/// Adds variables to those child commands never see (a fleet's targets' URL variables).
pub fn hide_more_urls(vars: &[String]) {
    let mut hidden = OTHER_URL_VARS
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let hidden = hidden.get_or_insert_with(Vec::new);
    for var in vars {
        if !hidden.contains(var) {
            hidden.push(var.clone());
        }
    }
}

/// Gives a child command (an external tool, a health or backup command, a client tool) the
/// caller's environment minus other environments' database URLs; the caller adds what the
/// command needs (`DATABASE_URL`, ...). One place, so no spawn site can forget it.
pub fn hide_other_urls(cmd: &mut tokio::process::Command) {
    let hidden = OTHER_URL_VARS
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    for var in hidden.iter().flatten() {
        cmd.env_remove(var);
    }
}

impl Settings {
    /// The variables named by other environments' `url_env` and `direct_url_env`, except those
    /// this environment reads itself.
    pub(super) fn other_url_vars(&self, name: &str) -> Vec<String> {
        // With --url the environment's own variables name another database: hidden too.
        let own: Vec<&String> = if self.url_override.is_some() {
            Vec::new()
        } else {
            self.config
                .environments
                .get(name)
                .map(|e| {
                    [&e.url_env, &e.direct_url_env]
                        .into_iter()
                        .flatten()
                        .collect()
                })
                .unwrap_or_default()
        };
        let mut vars: Vec<String> = self
            .config
            .environments
            .iter()
            .filter(|(other, _)| self.url_override.is_some() || other.as_str() != name)
            .flat_map(|(_, e)| {
                // A fleet's listed targets are other environments' databases too.
                let targets = e
                    .fleet
                    .iter()
                    .flat_map(|f| f.targets.iter().flatten())
                    .filter_map(|t| t.url_env.as_ref());
                [&e.url_env, &e.direct_url_env]
                    .into_iter()
                    .flatten()
                    .chain(targets)
            })
            .filter(|var| !own.contains(var))
            .cloned()
            .collect();
        vars.sort();
        vars.dedup();
        vars
    }
}
