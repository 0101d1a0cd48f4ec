//! `dbdeploy resolve`: the checks every format makes before it marks a failed migration rolled
//! back or applied, written once so that they are made in the same order and worded the same
//! way whatever the tool. A format supplies its wording and any checks of its own as
//! [`Rules`], and writes its rows once [`check`] let the request through.

use chrono::{DateTime, Utc};

use super::{HandlerError, Resolution};
use crate::migration::{AppliedRecord, Migration, RecordState};

/// A `resolve` request.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// What the tracking table records, one record per migration where the table keeps less
    /// (after [`super::Handler::interpret_history`]).
    pub records: &'a [AppliedRecord],
    /// The migration of that name in the folder.
    pub local: Option<&'a Migration>,
    /// The migration named on the command line.
    pub name: &'a str,
    /// What to mark it.
    pub resolution: Resolution,
    /// The time the rows record.
    pub now: DateTime<Utc>,
}

/// What the tracking table records of the migration named in a request.
#[derive(Debug, Clone, Copy)]
pub struct Recorded<'a> {
    /// A record of it is failed.
    pub failed: bool,
    /// Its last applied record.
    pub applied: Option<&'a AppliedRecord>,
    /// It has a record, whatever its state.
    pub exists: bool,
}

impl<'a> Recorded<'a> {
    /// The records named `name`.
    #[must_use]
    pub fn of(records: &'a [AppliedRecord], name: &str) -> Self {
        let mine = || records.iter().filter(move |r| r.name == name);
        Self {
            failed: mine().any(|r| r.state == RecordState::Failed),
            applied: mine().rev().find(|r| r.state == RecordState::Applied),
            exists: mine().next().is_some(),
        }
    }
}

/// How a format words the shared checks, and what it adds to them.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    /// The state `--rolled-back` needs, as the format calls it (`a failed state`).
    pub failed_state: &'static str,
    /// Where `--applied` looks for the migration (`the migrations folder`).
    pub place: &'static str,
    /// How migrations are named there: the hint when none has the name given.
    pub naming: &'static str,
    /// Whether what is recorded already counts as applied, which refuses `--applied`.
    pub already_applied: fn(&Migration, &Recorded<'_>) -> bool,
    /// The format's own checks, made before the shared ones.
    pub first: fn(&Request<'_>, &Recorded<'_>) -> Result<(), HandlerError>,
}

impl Rules {
    /// The wording of most formats: failed rows block, an applied row is applied.
    pub const DEFAULT: Self = Self {
        failed_state: "a failed state",
        place: "the migrations folder",
        naming: "check the name",
        already_applied: |_, recorded| recorded.applied.is_some(),
        first: |_, _| Ok(()),
    };
}

/// What a request that passed the checks asks for.
#[derive(Debug, Clone, Copy)]
pub enum Action<'a> {
    /// Mark the failed migration rolled back, so that it runs again.
    RollBack,
    /// Record the migration of the folder as applied.
    Apply(&'a Migration),
}

/// A request that passed the checks.
#[derive(Debug, Clone, Copy)]
pub struct Checked<'a> {
    /// The migration named on the command line.
    pub name: &'a str,
    /// Every record of the tracking table, as in the request.
    pub records: &'a [AppliedRecord],
    /// The records of this migration.
    pub recorded: Recorded<'a>,
    /// The time the rows record.
    pub now: DateTime<Utc>,
    /// What to do.
    pub action: Action<'a>,
}

/// Makes the checks, in the order every format makes them: the format's own first; then,
/// for `--rolled-back`, that a record of the migration is failed; for `--applied`, that the
/// folder has it and that it is not applied already.
///
/// # Errors
/// [`HandlerError::Resolve`] saying which check failed.
pub fn check<'a>(rules: &Rules, request: Request<'a>) -> Result<Checked<'a>, HandlerError> {
    let name = request.name;
    let recorded = Recorded::of(request.records, name);
    (rules.first)(&request, &recorded)?;
    let action = match request.resolution {
        Resolution::RolledBack if !recorded.failed => {
            return Err(HandlerError::Resolve(format!(
                "migration `{name}` cannot be marked rolled back because it is not in {}",
                rules.failed_state
            )));
        }
        Resolution::RolledBack => Action::RollBack,
        Resolution::Applied => {
            let Some(local) = request.local else {
                return Err(HandlerError::Resolve(format!(
                    "migration `{name}` is not in {}; {}",
                    rules.place, rules.naming
                )));
            };
            if (rules.already_applied)(local, &recorded) {
                return Err(already_applied(name));
            }
            Action::Apply(local)
        }
    };
    Ok(Checked {
        name,
        records: request.records,
        recorded,
        now: request.now,
        action,
    })
}

/// The refusal of `--applied` for a migration that is recorded as applied.
#[must_use]
pub fn already_applied(name: &str) -> HandlerError {
    HandlerError::Resolve(format!("migration `{name}` is already recorded as applied"))
}

/// The version a format that names migrations by an integer version (sqlx, golang-migrate)
/// reads from `name`; `how` tells where the version is found.
///
/// # Errors
/// When `name` is not an integer.
pub fn version(name: &str, tool: &str, how: &str) -> Result<i64, HandlerError> {
    name.parse().map_err(|_| {
        HandlerError::Resolve(format!(
            "`{name}` is not a {tool} version: name migrations by their version number ({how})"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::migration::TxMode;

    fn record(name: &str, state: RecordState) -> AppliedRecord {
        AppliedRecord {
            name: name.into(),
            checksum: None,
            state,
            started_at: None,
            finished_at: None,
            logs: None,
        }
    }

    fn request<'a>(
        records: &'a [AppliedRecord],
        local: Option<&'a Migration>,
        resolution: Resolution,
    ) -> Request<'a> {
        Request {
            records,
            local,
            name: "2",
            resolution,
            now: Utc::now(),
        }
    }

    #[test]
    fn the_shared_checks_come_in_order_with_the_format_wording() {
        let m = Migration::new(
            "2",
            "2_b.sql",
            String::new(),
            TxMode::Wrapped,
            String::new(),
        );
        let rules = Rules {
            failed_state: "a failed (dirty) state",
            naming: "check the version",
            ..Rules::DEFAULT
        };
        let failed = [
            record("1", RecordState::Applied),
            record("2", RecordState::Failed),
        ];
        let err = |r: Request<'_>| check(&rules, r).unwrap_err().to_string();
        assert_eq!(
            err(request(&failed[..1], None, Resolution::RolledBack)),
            "migration `2` cannot be marked rolled back because it is not in a failed (dirty) state"
        );
        assert_eq!(
            err(request(&failed, None, Resolution::Applied)),
            "migration `2` is not in the migrations folder; check the version"
        );
        let applied = [record("2", RecordState::Applied)];
        assert_eq!(
            err(request(&applied, Some(&m), Resolution::Applied)),
            "migration `2` is already recorded as applied"
        );
        let ok = check(&rules, request(&failed, Some(&m), Resolution::Applied)).unwrap();
        assert!(matches!(ok.action, Action::Apply(_)));
        assert!(ok.recorded.failed && ok.recorded.exists && ok.recorded.applied.is_none());
        let ok = check(&rules, request(&failed, None, Resolution::RolledBack)).unwrap();
        assert!(matches!(ok.action, Action::RollBack));
    }

    #[test]
    fn versions_must_be_integers() {
        assert_eq!(version("0042", "sqlx", "e.g. 1").unwrap(), 42);
        let err = version("1_a", "sqlx", "e.g. 1").unwrap_err().to_string();
        assert_eq!(
            err,
            "`1_a` is not a sqlx version: name migrations by their version number (e.g. 1)"
        );
    }
}
