//! Every `--json` document the suite sees is checked against the JSON Schema of its operation
//! in `docs/schemas/` (issue 14): a key that is added, renamed or retyped without the schema
//! (and `docs/json.md`) fails the test that produced it.
//!
//! `DBDEPLOY_TEST_JSON_DUMP=DIR` also writes every document to DIR, the input of
//! `scripts/json-schemas.py`, which drafts the schemas from what the suite saw.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use serde_json::Value;

fn schema_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/schemas")
}

fn validators() -> &'static HashMap<String, jsonschema::Validator> {
    static VALIDATORS: OnceLock<HashMap<String, jsonschema::Validator>> = OnceLock::new();
    VALIDATORS.get_or_init(|| {
        let mut all = HashMap::new();
        for entry in std::fs::read_dir(schema_dir()).expect("docs/schemas") {
            let path = entry.unwrap().path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            let Some(operation) = name.strip_suffix(".schema.json") else {
                continue;
            };
            let schema: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let validator = jsonschema::validator_for(&schema)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            all.insert(operation.to_owned(), validator);
        }
        all
    })
}

/// Checks `stdout` when it is a dbdeploy JSON document; anything else is left to the test.
#[track_caller]
pub fn check(stdout: &str) {
    let Ok(doc) = serde_json::from_str::<Value>(stdout) else {
        return;
    };
    if doc.get("schema_version").is_none() {
        return;
    }
    if dump(&doc) {
        return;
    }
    let operation = doc["operation"].as_str().unwrap_or_default();
    let Some(validator) = validators().get(operation) else {
        panic!(
            "operation `{operation}` has no schema in docs/schemas/{operation}.schema.json:\n{doc:#}"
        );
    };
    let errors: Vec<String> = validator
        .iter_errors(&doc)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "the `{operation}` document does not match docs/schemas/{operation}.schema.json:\n{}\n{doc:#}",
        errors.join("\n")
    );
}

/// Writes `doc` to the dump folder when one is asked for (the schemas are being redrafted,
/// so they are not checked).
fn dump(doc: &Value) -> bool {
    static N: AtomicU32 = AtomicU32::new(0);
    let Some(dir) = std::env::var_os("DBDEPLOY_TEST_JSON_DUMP") else {
        return false;
    };
    let dir = PathBuf::from(dir);
    let _ = std::fs::create_dir_all(&dir);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let name = format!(
        "{}-{}-{n}.json",
        doc["operation"].as_str().unwrap_or("unknown"),
        std::process::id()
    );
    let _ = std::fs::write(dir.join(name), doc.to_string());
    true
}
