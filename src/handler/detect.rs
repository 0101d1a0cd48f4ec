//! Which migration tool a project uses, from its folder layout alone (`dbdeploy init`).
//!
//! Each tool leaves a recognisable shape: Prisma a `migration_lock.toml` and
//! `<name>/migration.sql` folders, drizzle-kit `meta/_journal.json`, dbmate `-- migrate:up`
//! sections, golang-migrate `N_name.up.sql`/`.down.sql` pairs, sqlx `<version>_name.sql`,
//! Flyway `V1__name.sql`. Some shapes are shared (sqlx and golang-migrate both write
//! `<timestamp>_name.up.sql`/`.down.sql`); then the project's build file decides, or the
//! answer is "ambiguous" and the user names the tool. Only well-known folders are looked at,
//! so a stray `.sql` file elsewhere never decides anything.

use std::path::Path;

/// The tools `init` knows, with the folder each uses by default.
pub const TOOLS: &[(&str, &str)] = &[
    ("prisma", "prisma/migrations"),
    ("sqlx", "migrations"),
    ("dbmate", "db/migrations"),
    ("drizzle", "drizzle"),
    ("golang-migrate", "migrations"),
    ("flyway", "db/migration"),
    ("sql", "migrations"),
];

/// The folders looked at, relative to the project.
const CANDIDATES: &[&str] = &[
    "prisma/migrations",
    "drizzle",
    "drizzle/migrations",
    "migrations",
    "db/migrations",
    "db/migration",
    "src/main/resources/db/migration",
    "src/db/migrations",
    "database/migrations",
    "sql",
];

/// One tool found in one folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detection {
    /// The tool's name as written in `migration_tool`.
    pub tool: &'static str,
    /// The folder, relative to the project, with `/` separators.
    pub dir: String,
    /// What gave it away, for the user.
    pub evidence: String,
    /// The database the migrations were written for, when the layout says (Prisma's
    /// `provider`, drizzle's `dialect`): `postgresql`, `mysql` or `sqlite`.
    pub database: Option<&'static str>,
}

/// What detection concluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// One tool in one folder.
    Found(Detection),
    /// Several readings fit; the user has to name the tool.
    Ambiguous(Vec<Detection>),
    /// No known layout.
    Nothing,
}

/// Detects the tool of the project at `root`.
#[must_use]
pub fn detect(root: &Path) -> Outcome {
    let mut found: Vec<Detection> = Vec::new();
    for dir in CANDIDATES {
        let path = root.join(dir);
        if !path.is_dir() {
            continue;
        }
        for d in classify(root, &path, dir) {
            // `drizzle` and `drizzle/migrations` can both hold a journal; keep one per tool.
            if !found.iter().any(|f| f.tool == d.tool && f.dir == d.dir) {
                found.push(d);
            }
        }
    }
    match found.len() {
        0 => Outcome::Nothing,
        1 => Outcome::Found(found.remove(0)),
        _ => Outcome::Ambiguous(found),
    }
}

/// The folder of `tool` in the project, when detection finds one.
#[must_use]
pub fn find(root: &Path, tool: &str) -> Option<Detection> {
    CANDIDATES.iter().find_map(|dir| {
        let path = root.join(dir);
        if !path.is_dir() {
            return None;
        }
        classify(root, &path, dir)
            .into_iter()
            .find(|d| d.tool == tool)
    })
}

fn detection(tool: &'static str, dir: &str, evidence: impl Into<String>) -> Detection {
    Detection {
        tool,
        dir: dir.to_owned(),
        evidence: evidence.into(),
        database: None,
    }
}

fn database(name: &str) -> Option<&'static str> {
    match name {
        "postgresql" | "postgres" | "pg" => Some("postgresql"),
        "mysql" | "singlestore" => Some("mysql"),
        "sqlite" | "turso" => Some("sqlite"),
        _ => None,
    }
}

/// The readings of one folder, most specific layout first; empty when it is none of them.
fn classify(root: &Path, path: &Path, dir: &str) -> Vec<Detection> {
    let journal = path.join("meta/_journal.json");
    if journal.is_file() {
        let dialect = std::fs::read_to_string(&journal)
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|v| v["dialect"].as_str().and_then(database));
        return vec![Detection {
            database: dialect,
            ..detection("drizzle", dir, format!("{dir}/meta/_journal.json"))
        }];
    }
    let entries: Vec<(String, bool)> = std::fs::read_dir(path)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter_map(|e| {
                    let is_dir = e.path().is_dir();
                    e.file_name().into_string().ok().map(|n| (n, is_dir))
                })
                .collect()
        })
        .unwrap_or_default();
    let lock = path.join("migration_lock.toml");
    let prisma_dirs = entries
        .iter()
        .any(|(n, is_dir)| *is_dir && path.join(n).join("migration.sql").is_file());
    if lock.is_file() || prisma_dirs {
        let provider = std::fs::read_to_string(&lock)
            .ok()
            .and_then(|t| t.parse::<toml::Table>().ok())
            .and_then(|t| t.get("provider")?.as_str().and_then(database));
        return vec![Detection {
            database: provider,
            ..detection("prisma", dir, format!("{dir}/<name>/migration.sql folders"))
        }];
    }
    let sql: Vec<&str> = entries
        .iter()
        .filter(|(n, is_dir)| !is_dir && n.ends_with(".sql"))
        .map(|(n, _)| n.as_str())
        .collect();
    if sql.is_empty() {
        return Vec::new();
    }
    let dbmate = sql.iter().any(|n| {
        std::fs::read_to_string(path.join(n)).is_ok_and(|t| {
            t.lines().any(|l| {
                l.strip_prefix("--")
                    .is_some_and(|r| r.trim_start().starts_with("migrate:up"))
            })
        })
    });
    if dbmate {
        return vec![detection(
            "dbmate",
            dir,
            format!("{dir}: files with `-- migrate:up` sections"),
        )];
    }
    if sql.iter().any(|n| is_flyway(n)) {
        return vec![detection(
            "flyway",
            dir,
            format!("{dir}: V<version>__<description>.sql files"),
        )];
    }
    let versions: Vec<&str> = sql
        .iter()
        .filter_map(|n| {
            let digits = n.split('_').next()?;
            (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())).then_some(digits)
        })
        .collect();
    let up_down = sql
        .iter()
        .any(|n| n.ends_with(".up.sql") || n.ends_with(".down.sql"));
    let numbered = versions.len() == sql.len();
    let timestamps = numbered && versions.iter().all(|v| v.len() == 14);
    let uses = |file: &str, needle: &str| {
        std::fs::read_to_string(root.join(file)).is_ok_and(|t| t.contains(needle))
    };
    if numbered && up_down {
        let pairs = format!("{dir}: <version>_<name>.up.sql/.down.sql pairs");
        if !timestamps {
            return vec![detection("golang-migrate", dir, pairs)];
        }
        // Both tools write `<yyyymmddhhmmss>_name.up.sql` by default: the build file decides.
        if uses("Cargo.toml", "sqlx") {
            return vec![detection(
                "sqlx",
                dir,
                format!("{pairs}, and sqlx in Cargo.toml"),
            )];
        }
        if root.join("go.mod").is_file() {
            return vec![detection(
                "golang-migrate",
                dir,
                format!("{pairs}, and a go.mod"),
            )];
        }
        return vec![
            detection("sqlx", dir, pairs.clone()),
            detection("golang-migrate", dir, pairs),
        ];
    }
    if numbered && (timestamps || uses("Cargo.toml", "sqlx")) {
        return vec![detection(
            "sqlx",
            dir,
            format!("{dir}: <version>_<description>.sql files"),
        )];
    }
    vec![detection("sql", dir, format!("{dir}: plain .sql files"))]
}

fn is_flyway(name: &str) -> bool {
    let Some(stem) = name.strip_suffix(".sql") else {
        return false;
    };
    if stem.starts_with("R__") {
        return true;
    }
    stem.strip_prefix('V')
        .and_then(|r| r.split_once("__"))
        .is_some_and(|(v, _)| {
            !v.is_empty()
                && v.starts_with(|c: char| c.is_ascii_digit())
                && v.bytes()
                    .all(|b| b.is_ascii_digit() || b == b'.' || b == b'_')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (f, body) in files {
            let path = dir.path().join(f);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, body).unwrap();
        }
        dir
    }

    fn found(files: &[(&str, &str)]) -> (&'static str, String, Option<&'static str>) {
        match detect(project(files).path()) {
            Outcome::Found(d) => (d.tool, d.dir, d.database),
            other => panic!("{files:?}: {other:?}"),
        }
    }

    #[test]
    fn each_layout_is_recognised() {
        assert_eq!(
            found(&[
                (
                    "prisma/migrations/migration_lock.toml",
                    "provider = \"postgresql\"\n"
                ),
                (
                    "prisma/migrations/20240101000000_init/migration.sql",
                    "SELECT 1;"
                ),
            ]),
            ("prisma", "prisma/migrations".into(), Some("postgresql"))
        );
        assert_eq!(
            found(&[
                (
                    "drizzle/meta/_journal.json",
                    "{\"dialect\":\"mysql\",\"entries\":[]}"
                ),
                ("drizzle/0000_x.sql", "SELECT 1;"),
            ]),
            ("drizzle", "drizzle".into(), Some("mysql"))
        );
        assert_eq!(
            found(&[(
                "db/migrations/20240101000000_users.sql",
                "-- migrate:up\nSELECT 1;\n-- migrate:down\n"
            )]),
            ("dbmate", "db/migrations".into(), None)
        );
        assert_eq!(
            found(&[
                ("migrations/000001_users.up.sql", ""),
                ("migrations/000001_users.down.sql", ""),
            ]),
            ("golang-migrate", "migrations".into(), None)
        );
        assert_eq!(
            found(&[("migrations/20240101120000_users.sql", "")]),
            ("sqlx", "migrations".into(), None)
        );
        assert_eq!(
            found(&[
                ("db/migration/V1_1__users.sql", ""),
                ("db/migration/R__views.sql", "")
            ]),
            ("flyway", "db/migration".into(), None)
        );
        assert_eq!(
            found(&[("sql/create users.sql", ""), ("sql/seed.sql", "")]),
            ("sql", "sql".into(), None)
        );
    }

    #[test]
    fn timestamped_up_down_pairs_need_a_build_file_to_decide() {
        let pairs = [
            ("migrations/20240101120000_users.up.sql", ""),
            ("migrations/20240101120000_users.down.sql", ""),
        ];
        let dir = project(&pairs);
        match detect(dir.path()) {
            Outcome::Ambiguous(ds) => {
                let tools: Vec<_> = ds.iter().map(|d| d.tool).collect();
                assert_eq!(tools, ["sqlx", "golang-migrate"]);
            }
            other => panic!("{other:?}"),
        }
        let mut with_cargo = pairs.to_vec();
        with_cargo.push(("Cargo.toml", "[dependencies]\nsqlx = \"0.8\"\n"));
        assert_eq!(found(&with_cargo).0, "sqlx");
        let mut with_go = pairs.to_vec();
        with_go.push(("go.mod", "module example.com/app\n"));
        assert_eq!(found(&with_go).0, "golang-migrate");
    }

    #[test]
    fn two_tools_in_two_folders_are_ambiguous_and_nothing_is_nothing() {
        let dir = project(&[
            ("prisma/migrations/20240101000000_init/migration.sql", ""),
            ("db/migration/V1__x.sql", ""),
        ]);
        assert!(matches!(detect(dir.path()), Outcome::Ambiguous(ds) if ds.len() == 2));
        assert_eq!(
            find(dir.path(), "flyway").map(|d| d.dir),
            Some("db/migration".into())
        );
        let empty = project(&[("README.md", "hello")]);
        assert_eq!(detect(empty.path()), Outcome::Nothing);
    }
}
