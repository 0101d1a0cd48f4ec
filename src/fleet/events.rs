//! `migrate ENV --events`: one JSON line per fleet and target event, written and flushed as it
//! happens. The `--json` document comes only at the end; a CI runner killed mid-fleet has
//! these lines instead (which targets were planned, started, finished and how). Lines go to
//! stdout, or to stderr when stdout carries the `--json` document. Schema:
//! `docs/schemas/fleet-event.schema.json`.

use std::io::Write;

use chrono::{SecondsFormat, Utc};
use serde::Serialize;

use super::report::{Counts, TargetReport};

/// Where event lines go; `off` writes nothing.
#[derive(Debug)]
pub struct Events {
    sink: Option<Sink>,
    run_id: Option<String>,
    environment: String,
}

#[derive(Debug, Clone, Copy)]
enum Sink {
    Stdout,
    Stderr,
}

/// What happened, with what each kind says.
#[derive(Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
enum Kind<'a> {
    FleetStarted {
        targets: usize,
        dry_run: bool,
    },
    TargetPlanned {
        target: &'a str,
        pending: &'a [String],
        error: Option<&'a str>,
    },
    TargetStarted {
        target: &'a str,
    },
    TargetFinished {
        target: &'a str,
        status: &'static str,
        migrations_applied: usize,
        duration_seconds: f64,
        error: Option<&'a str>,
        backup_id: Option<&'a str>,
    },
    FleetFinished {
        status: &'static str,
        exit_code: u8,
        counts: Counts,
    },
}

/// One line: the envelope every event shares, then the event.
#[derive(Serialize)]
struct Line<'a> {
    schema_version: u32,
    time: String,
    environment: &'a str,
    run_id: Option<&'a str>,
    #[serde(flatten)]
    kind: Kind<'a>,
}

impl Events {
    /// No events (`--events` not given).
    #[must_use]
    pub fn off(environment: &str) -> Self {
        Self {
            sink: None,
            run_id: None,
            environment: environment.to_owned(),
        }
    }

    /// Events on stdout, or on stderr when stdout carries the `--json` document.
    #[must_use]
    pub fn on(environment: &str, json: bool, run_id: Option<&str>) -> Self {
        Self {
            sink: Some(if json { Sink::Stderr } else { Sink::Stdout }),
            run_id: run_id.map(str::to_owned),
            environment: environment.to_owned(),
        }
    }

    /// The fleet starts: how many targets it has.
    pub fn fleet_started(&self, targets: usize, dry_run: bool) {
        self.emit(Kind::FleetStarted { targets, dry_run });
    }

    /// A target's read-only plan: what is pending on it, or why it could not be planned.
    pub fn planned(&self, target: &str, pending: &[String], error: Option<&str>) {
        self.emit(Kind::TargetPlanned {
            target,
            pending,
            error,
        });
    }

    /// A target's run starts.
    pub fn started(&self, target: &str) {
        self.emit(Kind::TargetStarted { target });
    }

    /// A target's run ended.
    pub fn finished(&self, r: &TargetReport) {
        self.emit(Kind::TargetFinished {
            target: &r.id,
            status: r.status.as_str(),
            migrations_applied: r.migrations_applied,
            duration_seconds: crate::pipeline::trail::round_seconds(r.duration_seconds),
            error: r.error.as_deref(),
            backup_id: r.backup_id.as_deref(),
        });
    }

    /// The fleet ended, with the exit code the process ends with.
    pub fn fleet_finished(&self, counts: Counts, exit_code: u8) {
        let status = match exit_code {
            crate::error::exit::SUCCESS => "success",
            crate::error::exit::CANCELLED => "cancelled",
            _ => "error",
        };
        self.emit(Kind::FleetFinished {
            status,
            exit_code,
            counts,
        });
    }

    fn emit(&self, kind: Kind<'_>) {
        let Some(sink) = self.sink else { return };
        let line = Line {
            schema_version: 1,
            time: Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
            environment: &self.environment,
            run_id: self.run_id.as_deref(),
            kind,
        };
        // Scrubbed like every other output: a target's error may quote a URL.
        let mut value = serde_json::to_value(&line).unwrap_or_default();
        crate::redact::scrub_json(&mut value);
        let text = format!("{}\n", crate::redact::scrub(&value.to_string()));
        // One write, flushed at once: the line must be out before the next step can kill us.
        // A closed pipe loses the record, not the deploy.
        let _ = match sink {
            Sink::Stdout => {
                let mut out = std::io::stdout().lock();
                out.write_all(text.as_bytes()).and_then(|()| out.flush())
            }
            Sink::Stderr => {
                let mut out = std::io::stderr().lock();
                out.write_all(text.as_bytes()).and_then(|()| out.flush())
            }
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_the_envelope_and_its_event() {
        let line = Line {
            schema_version: 1,
            time: "t".into(),
            environment: "tenants",
            run_id: Some("r"),
            kind: Kind::TargetStarted { target: "acme" },
        };
        assert_eq!(
            serde_json::to_string(&line).unwrap(),
            r#"{"schema_version":1,"time":"t","environment":"tenants","run_id":"r","event":"target_started","target":"acme"}"#
        );
    }
}
