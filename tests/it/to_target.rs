//! `migrate --to` (issue 11, item 5): what stays pending after the target is said, never
//! hidden behind "up to date".

use crate::common::TestContext;
use crate::engine_test;

engine_test!(
    to_says_what_stays_pending_after_the_target,
    |t: &TestContext| {
        t.fixture("basic");
        let mut names: Vec<String> = std::fs::read_dir(t.migrations())
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| e.path().is_dir())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert!(names.len() >= 3, "{names:?}");
        // Up to the first: the others are named as still pending.
        let run = t.run(&["migrate", "staging", "--to", &names[0], "--json"]);
        run.code(0);
        let message = run.json()["message"].as_str().unwrap().to_owned();
        assert!(
            message.contains("Still pending after the --to target") && message.contains(&names[1]),
            "{message}"
        );
        // The target already applied, later ones pending: not "up to date".
        let run = t.run(&["migrate", "staging", "--to", &names[0], "--json"]);
        run.code(0);
        let message = run.json()["message"].as_str().unwrap().to_owned();
        assert!(!message.contains("up to date"), "{message}");
        assert!(
            message.contains("already applied") && message.contains(&names[2]),
            "{message}"
        );
    }
);
