//! The one JSON document of `--json` (SPEC section 4).

use serde_json::{Value, json};

use crate::error::Error;

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
    fn as_str(self) -> &'static str {
        match self {
            Status::Success => "success",
            Status::Error => "error",
            Status::Cancelled => "cancelled",
        }
    }
}

/// Builds the document: `status`, `operation`, `environment`, `mode`, `result`, `message`,
/// and on error `error` and `recovery`.
#[must_use]
pub fn document(
    status: Status,
    operation: &str,
    environment: &str,
    mode: Option<&str>,
    result: Value,
    message: &str,
    error: Option<&Error>,
    recovery: Option<Value>,
) -> Value {
    let mut doc = json!({
        "status": status.as_str(),
        "operation": operation,
        "environment": environment,
        "mode": mode,
        "result": result,
        "message": message,
    });
    if let Some(err) = error {
        doc["error"] = json!({
            "code": err.code(),
            "class": err.class(),
            "message": err.to_string(),
            "hints": err.hints(),
        });
    }
    if let Some(recovery) = recovery {
        doc["recovery"] = recovery;
    }
    doc
}
