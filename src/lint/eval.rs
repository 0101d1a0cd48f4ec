//! The labelled set in `migrations-fixtures/lint/<engine>/<risky|safe>/*.sql`, linted with the
//! facts of `migrations-fixtures/lint/facts.toml`. A case counts as flagged when a finding
//! reaches medium. One test holds precision and recall above a floor; an ignored one prints
//! the per-case table that `scripts/lint-eval.sh` compares with squawk.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{Facts, Level, check};
use crate::engine::Dialect;

struct Case {
    /// `postgresql/risky/01-name.sql`.
    name: String,
    dialect: Dialect,
    risky: bool,
    path: PathBuf,
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations-fixtures/lint")
}

fn cases() -> Vec<Case> {
    let mut out = Vec::new();
    for (folder, dialect) in [
        ("postgresql", Dialect::Postgres),
        ("mysql", Dialect::MySql),
        ("sqlite", Dialect::Sqlite),
    ] {
        for label in ["risky", "safe"] {
            let dir = root().join(folder).join(label);
            let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
                .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
                .map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|x| x == "sql"))
                .collect();
            files.sort();
            for path in files {
                let file = path.file_name().unwrap().to_string_lossy().into_owned();
                out.push(Case {
                    name: format!("{folder}/{label}/{file}"),
                    dialect,
                    risky: label == "risky",
                    path,
                });
            }
        }
    }
    out
}

fn facts() -> BTreeMap<String, Facts> {
    let text = std::fs::read_to_string(root().join("facts.toml")).unwrap();
    toml::from_str(&text).unwrap()
}

struct Outcome {
    case: Case,
    flagged: bool,
    codes: Vec<String>,
}

fn run() -> Vec<Outcome> {
    let facts = facts();
    cases()
        .into_iter()
        .map(|case| {
            let folder = case.name.split('/').next().unwrap().to_owned();
            let sql = std::fs::read_to_string(&case.path).unwrap();
            let report = check(&sql, case.dialect, &facts[&folder], &[]);
            let flagged = report.max_level() >= Some(Level::Medium);
            let codes = report
                .findings
                .iter()
                .map(|f| format!("{}:{}", f.code, f.level))
                .collect();
            Outcome {
                case,
                flagged,
                codes,
            }
        })
        .collect()
}

/// (true positives, false positives, false negatives, true negatives).
fn confusion<'a>(outcomes: impl Iterator<Item = &'a Outcome>) -> (u32, u32, u32, u32) {
    outcomes.fold((0, 0, 0, 0), |(tp, fp, fn_, tn), o| {
        match (o.case.risky, o.flagged) {
            (true, true) => (tp + 1, fp, fn_, tn),
            (false, true) => (tp, fp + 1, fn_, tn),
            (true, false) => (tp, fp, fn_ + 1, tn),
            (false, false) => (tp, fp, fn_, tn + 1),
        }
    })
}

#[test]
fn labelled_set_precision_and_recall() {
    let outcomes = run();
    assert!(outcomes.len() >= 40, "{} cases", outcomes.len());
    let (tp, fp, fn_, _) = confusion(outcomes.iter());
    let precision = f64::from(tp) / f64::from(tp + fp);
    let recall = f64::from(tp) / f64::from(tp + fn_);
    let misses: Vec<&str> = outcomes
        .iter()
        .filter(|o| o.case.risky != o.flagged)
        .map(|o| o.case.name.as_str())
        .collect();
    assert!(
        precision >= 0.95 && recall >= 0.9,
        "precision {precision:.2}, recall {recall:.2}; wrong: {misses:?}"
    );
}

/// Prints one `EVAL` line per case for `scripts/lint-eval.sh`:
/// `EVAL <tab> case <tab> risky|safe <tab> flagged 0|1 <tab> codes`.
#[test]
#[ignore = "prints the per-case table for scripts/lint-eval.sh"]
#[allow(clippy::print_stdout, reason = "the output is the point")]
fn labelled_set_table() {
    for o in run() {
        println!(
            "EVAL\t{}\t{}\t{}\t{}",
            o.case.name,
            if o.case.risky { "risky" } else { "safe" },
            u8::from(o.flagged),
            o.codes.join(" ")
        );
    }
}
