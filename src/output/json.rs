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

/// The document of one command run (SPEC section 4).
#[derive(Debug)]
pub struct Document<'a> {
    /// `success`, `error` or `cancelled`.
    pub status: Status,
    /// `deploy-migrations`, `preview-migrations`, ...
    pub operation: &'a str,
    /// The environment name.
    pub environment: &'a str,
    /// `dev` or `deploy`, once known.
    pub mode: Option<&'a str>,
    /// The command's result.
    pub result: Value,
    /// One sentence for people.
    pub message: &'a str,
    /// The error, on failure; it also yields `recovery`.
    pub error: Option<&'a Error>,
    /// Backup and rollback facts for `recovery`, when the command knows them.
    pub recovery: Option<Value>,
}

impl Document<'_> {
    /// Renders the document: `status`, `operation`, `environment`, `mode`, `result`,
    /// `message`, and on error `error` and `recovery`.
    #[must_use]
    pub fn render(self) -> Value {
        let mut doc = json!({
            "status": self.status.as_str(),
            "operation": self.operation,
            "environment": self.environment,
            "mode": self.mode,
            "result": self.result,
            "message": self.message,
        });
        if let Some(err) = self.error {
            doc["error"] = json!({
                "code": err.code(),
                "class": err.class(),
                "message": err.to_string(),
                "hints": err.hints(),
            });
            let mut recovery = self.recovery.unwrap_or_else(|| {
                json!({
                    "backup_id": null,
                    "rollback_command": null,
                    "rollback_initiated": false,
                    "rollback_status": null,
                })
            });
            recovery["suggestions"] = json!(err.hints());
            doc["recovery"] = recovery;
        }
        doc
    }
}
