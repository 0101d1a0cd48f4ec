-- An old baseline, superseded by B2: never run.
CREATE TABLE old_baseline_ran (id INT);
