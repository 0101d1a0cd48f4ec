//! The one JSON document of `--json` (SPEC section 4): `schema_version`, `status`,
//! `operation`, `environment`, `mode`, `result`, `message`, and on error `error` and
//! `recovery`. `docs/json.md` documents each operation's keys and `docs/schemas/` holds the JSON
//! Schema every document the test suite produces is validated against.

use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use super::Response;

/// `success`, `error` or `cancelled`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Done.
    Success,
    /// Failed.
    Error,
    /// Declined or refused.
    Cancelled,
}

impl Status {
    /// The word in the document.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Success => "success",
            Status::Error => "error",
            Status::Cancelled => "cancelled",
        }
    }
}

/// The document of one command run.
#[must_use]
pub fn document(r: &Response) -> Value {
    let mut doc = json!({
        "schema_version": SCHEMA_VERSION,
        "status": r.status.as_str(),
        "operation": r.operation,
        "environment": r.environment,
        "mode": r.mode.map(crate::config::Mode::as_str),
        "result": r.result,
        "message": r.message,
    });
    if let Some(err) = &r.error {
        doc["error"] = json!({
            "code": err.code(),
            "class": err.class(),
            "message": err.to_string(),
            "causes": err.causes(),
            "hints": err.hints(),
        });
        let mut recovery = super::to_value(&r.recovery.clone().unwrap_or_default());
        recovery["suggestions"] = json!(err.hints());
        doc["recovery"] = recovery;
    }
    normalize_timestamps(&mut doc);
    crate::redact::scrub_json(&mut doc);
    doc
}

/// The version of the documents' shape: raised when a key is removed or changes meaning (new
/// keys may appear without it).
pub const SCHEMA_VERSION: u32 = 1;

/// Every `*_at` value in one format, RFC 3339 in UTC with milliseconds, whichever engine or
/// tool wrote it (tracking tables keep their own text forms; a time without a zone is UTC,
/// as every tool dbdeploy writes for records it).
fn normalize_timestamps(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                match v {
                    Value::String(s) if key.ends_with("_at") => {
                        if let Some(t) = parse_timestamp(s) {
                            *s = t.to_rfc3339_opts(SecondsFormat::Millis, true);
                        }
                    }
                    _ => normalize_timestamps(v),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(normalize_timestamps),
        _ => {}
    }
}

fn parse_timestamp(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.to_utc());
    }
    for format in ["%Y-%m-%d %H:%M:%S%.f%#z", "%Y-%m-%dT%H:%M:%S%.f%#z"] {
        if let Ok(t) = DateTime::parse_from_str(s, format) {
            return Some(t.to_utc());
        }
    }
    for format in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, format) {
            return Some(t.and_utc());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_from_every_engine_come_out_in_one_format() {
        for (given, expected) in [
            ("2026-12-03 18:10:28.488", "2026-12-03T18:10:28.488Z"),
            ("2026-12-03 18:10:28", "2026-12-03T18:10:28.000Z"),
            ("2026-12-03 19:10:28.488+01", "2026-12-03T18:10:28.488Z"),
            (
                "2026-12-03 18:10:28.488123+00:00",
                "2026-12-03T18:10:28.488Z",
            ),
            ("2026-12-03T18:10:28.756273610Z", "2026-12-03T18:10:28.756Z"),
            ("2026-12-03T18:10:28.488Z", "2026-12-03T18:10:28.488Z"),
        ] {
            let mut doc = json!({"applied": [{"finished_at": given}]});
            normalize_timestamps(&mut doc);
            assert_eq!(doc["applied"][0]["finished_at"], expected, "{given}");
        }
    }

    #[test]
    fn other_values_are_left_alone() {
        let mut doc = json!({"created_at": "yesterday", "name": "2026-12-03 18:10:28", "n_at": 3});
        let before = doc.clone();
        normalize_timestamps(&mut doc);
        assert_eq!(doc, before);
    }
}
