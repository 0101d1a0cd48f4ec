//! Who runs dbdeploy and from where: recorded with every run (history row, audit line) and, for
//! Flyway, in `installed_by`. Its own module because formats, the history store and the audit
//! log all need it and none of them should depend on another for it.

/// The user name and host name recorded with every run.
#[must_use]
pub fn operator() -> (String, String) {
    let user = whoami::username();
    let host = whoami::fallible::hostname().unwrap_or_else(|_| "unknown".into());
    (user, host)
}
