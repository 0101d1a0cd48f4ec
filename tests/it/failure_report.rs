//! What a failed migration reports (issue 11, item 8): the failing statement's number and line
//! in the file, also when the script went to the server as one message, and a hint that says
//! what a file managing its own transaction really left on each engine.

use serde_json::Value;

use crate::common::{Engine, TestContext, write_migrations};
use crate::engine_test;

/// The entry of the failed migration in a `migrate --json` document.
fn failed(doc: &Value) -> &Value {
    doc["result"]["migrations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["status"] == "failed")
        .unwrap_or_else(|| panic!("no failed migration in {doc}"))
}

engine_test!(
    a_failed_statement_has_its_number_and_line,
    |t: &TestContext| {
        // A unique violation: the server gives no position for it.
        write_migrations(
            t,
            &[(
                "20240101000000_dup",
                "-- CreateTable\nCREATE TABLE a (n INTEGER PRIMARY KEY);\n\nINSERT INTO a VALUES (1);\nINSERT INTO a\n  VALUES (1);\n"
                    .into(),
            )],
        );
        let run = t.run(&["migrate", "dev", "--json"]);
        run.code(1);
        let doc = run.json();
        let m = failed(&doc);
        assert_eq!(m["statement"], 3, "{doc}");
        assert_eq!(m["line"], 5, "{doc}");
        // The human report prints the same message after `error:`.
        let message = doc["error"]["message"].as_str().unwrap();
        assert!(message.contains("at statement 3 (line 5)"), "{doc}");
        assert!(
            run.stderr.contains("at statement 3 (line 5)"),
            "{}",
            run.stderr
        );
    }
);

#[test]
fn a_syntax_error_on_postgres_has_its_number_and_line() {
    crate::common::run_on(Engine::Postgres, "syntax_line", |t: &TestContext| {
        write_migrations(
            t,
            &[(
                "20240101000000_typo",
                "CREATE TABLE a (n INTEGER);\nINSERT INTO a VALUES (1);\n\nSELEC 1;\n".into(),
            )],
        );
        let run = t.run(&["migrate", "dev", "--json"]);
        run.code(1);
        let doc = run.json();
        let m = failed(&doc);
        assert_eq!(m["statement"], 3, "{doc}");
        assert_eq!(m["line"], 4, "{doc}");
    });
}

engine_test!(
    the_hint_after_a_file_with_its_own_transaction_says_what_was_rolled_back,
    |t: &TestContext| {
        write_migrations(
            t,
            &[
                ("20240101000000_kept", "CREATE TABLE kept (n INTEGER);\n".into()),
                (
                    "20240102000000_own",
                    "CREATE TABLE before_tx (n INTEGER);\nBEGIN;\nCREATE TABLE inside (n INTEGER);\nINSERT INTO kept VALUES (1);\nINSERT INTO missing VALUES (1);\nCOMMIT;\n"
                        .into(),
                ),
            ],
        );
        let run = t.run(&["migrate", "dev", "--json"]);
        run.code(1);
        let doc = run.json();
        assert_eq!(failed(&doc)["statement"], 5, "{doc}");
        let hints = doc["error"]["hints"].to_string();
        let tables = t.tables();
        let kept = t.sql("SELECT COUNT(*) FROM kept");
        let has = |name: &str| tables.iter().any(|x| x == name);
        match t.engine {
            Engine::Postgres => {
                // One message: the statements before BEGIN joined its transaction.
                assert!(!has("before_tx") && !has("inside"), "{tables:?}");
                assert_eq!(kept, ["0"]);
                assert!(
                    hints.contains("nothing of `20240102000000_own` stays applied"),
                    "{hints}"
                );
                assert!(hints.contains("statements 1, 3 and 4"), "{hints}");
            }
            Engine::Sqlite => {
                assert!(has("before_tx") && !has("inside"), "{tables:?}");
                assert_eq!(kept, ["0"]);
                assert!(hints.contains("statement 1 stays applied"), "{hints}");
                assert!(
                    hints.contains("statements 3 and 4 were rolled back"),
                    "{hints}"
                );
            }
            Engine::MariaDb => {
                // CREATE TABLE commits at once, ending the transaction: nothing is undone.
                assert!(has("before_tx") && has("inside"), "{tables:?}");
                assert_eq!(kept, ["1"]);
                assert!(
                    hints.contains("statements 1, 3 and 4 stay applied"),
                    "{hints}"
                );
            }
        }
        assert!(!hints.contains("could not be rolled back"), "{hints}");
    }
);
