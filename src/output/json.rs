//! The one JSON document of `--json` (SPEC section 4): `status`, `operation`, `environment`,
//! `mode`, `result`, `message`, and on error `error` and `recovery`.

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
    crate::redact::scrub_json(&mut doc);
    doc
}
