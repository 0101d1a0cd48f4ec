//! Which migration tool a project uses, from its folder layout alone (`dbdeploy init`).
//!
//! Each tool leaves a recognisable shape: Prisma a `migration_lock.toml` and
//! `<name>/migration.sql` folders, drizzle-kit `meta/_journal.json`, dbmate `-- migrate:up`
//! sections, golang-migrate `N_name.up.sql`/`.down.sql` pairs, sqlx `<version>_name.sql`
//! (and reversible pairs, in the same folder), Flyway `V1__name.sql`. Some shapes are shared
//! (both sqlx and golang-migrate read `<version>_name.up.sql`/`.down.sql` pairs); then the
//! project's build file decides (sqlx in Cargo.toml, golang-migrate in go.mod), or the answer
//! is "ambiguous" and the user names the tool: a tool is never guessed. Only well-known folders are looked at,
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
    if versions.len() == sql.len()
        && let Some(found) = sqlx_or_golang_migrate(root, dir, &sql, &versions)
    {
        return found;
    }
    vec![detection("sql", dir, format!("{dir}: plain .sql files"))]
}

/// sqlx or golang-migrate, for a folder of `<version>_<description>` files; `None` when it is
/// neither. sqlx reads plain `<v>_<d>.sql` files and reversible `.up.sql`/`.down.sql` pairs,
/// mixed in one folder; golang-migrate reads only up/down files (and skips any other). Where
/// both could read the folder, the build file decides; otherwise the user is asked.
fn sqlx_or_golang_migrate(
    root: &Path,
    dir: &str,
    sql: &[&str],
    versions: &[&str],
) -> Option<Vec<Detection>> {
    let is_up_down = |n: &&&str| n.ends_with(".up.sql") || n.ends_with(".down.sql");
    let up_down = sql.iter().any(|n| is_up_down(&n));
    let plain = sql.iter().any(|n| !is_up_down(&n));
    let cargo = cargo_uses_sqlx(root);
    let go = go_mod_uses_golang_migrate(root);
    let with = |evidence: String| {
        let mut e = evidence;
        if cargo {
            e.push_str(", and sqlx in Cargo.toml");
        }
        if go {
            e.push_str(", and golang-migrate in go.mod");
        }
        e
    };
    let sqlx = |evidence: String| detection("sqlx", dir, with(evidence));
    let golang = |evidence: String| detection("golang-migrate", dir, with(evidence));
    if up_down && plain {
        let mixed = format!(
            "{dir}: plain <version>_<description>.sql files and .up.sql/.down.sql pairs together, which only sqlx reads"
        );
        if go && !cargo {
            let skipped = format!(
                "{dir}: .up.sql/.down.sql pairs (golang-migrate would skip the plain .sql files)"
            );
            return Some(vec![sqlx(mixed), golang(skipped)]);
        }
        return Some(vec![sqlx(mixed)]);
    }
    if up_down {
        let pairs = format!("{dir}: <version>_<name>.up.sql/.down.sql pairs");
        return Some(match (cargo, go) {
            (true, false) => vec![sqlx(pairs)],
            (false, true) => vec![golang(pairs)],
            // `migrate create -seq` numbers 000001, 000002, ...; sqlx numbers otherwise.
            (false, false) if versions.iter().all(|v| v.len() == 6 && v.starts_with('0')) => {
                vec![golang(format!(
                    "{pairs} numbered as `migrate create -seq` numbers them"
                ))]
            }
            _ => vec![sqlx(pairs.clone()), golang(pairs)],
        });
    }
    // Plain files only: golang-migrate reads none of them.
    let timestamps = versions.iter().all(|v| v.len() == 14);
    (cargo || timestamps).then(|| vec![sqlx(format!("{dir}: <version>_<description>.sql files"))])
}

/// Whether the project's Cargo.toml depends on sqlx (in any dependency table, renamed or not).
fn cargo_uses_sqlx(root: &Path) -> bool {
    let Some(doc) = std::fs::read_to_string(root.join("Cargo.toml"))
        .ok()
        .and_then(|t| t.parse::<toml::Table>().ok())
    else {
        return false;
    };
    let lists_sqlx = |deps: Option<&toml::Value>| {
        deps.and_then(toml::Value::as_table).is_some_and(|deps| {
            deps.iter().any(|(name, spec)| {
                name == "sqlx" || spec.get("package").and_then(toml::Value::as_str) == Some("sqlx")
            })
        })
    };
    let in_table = |t: &toml::Table| {
        ["dependencies", "dev-dependencies", "build-dependencies"]
            .iter()
            .any(|k| lists_sqlx(t.get(*k)))
    };
    in_table(&doc)
        || lists_sqlx(doc.get("workspace").and_then(|w| w.get("dependencies")))
        || doc
            .get("target")
            .and_then(toml::Value::as_table)
            .is_some_and(|targets| {
                targets
                    .values()
                    .filter_map(toml::Value::as_table)
                    .any(in_table)
            })
}

/// Whether the project's go.mod requires golang-migrate.
fn go_mod_uses_golang_migrate(root: &Path) -> bool {
    std::fs::read_to_string(root.join("go.mod")).is_ok_and(|t| {
        t.lines().any(|l| {
            let code = l.split("//").next().unwrap_or("");
            code.contains("github.com/golang-migrate/migrate")
        })
    })
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
        with_go.push((
            "go.mod",
            "module example.com/app\n\nrequire github.com/golang-migrate/migrate/v4 v4.17.0\n",
        ));
        assert_eq!(found(&with_go).0, "golang-migrate");
        // A go.mod without golang-migrate, or a Cargo.toml without sqlx, decides nothing.
        let mut other_go = pairs.to_vec();
        other_go.push(("go.mod", "module example.com/app\n"));
        other_go.push(("Cargo.toml", "[package]\nname = \"sqlx-demo\"\n"));
        assert!(matches!(
            detect(project(&other_go).path()),
            Outcome::Ambiguous(_)
        ));
    }

    #[test]
    fn plain_files_beside_up_down_pairs_are_sqlx() {
        let files = [
            ("migrations/1_users.sql", ""),
            ("migrations/2_posts.up.sql", ""),
            ("migrations/2_posts.down.sql", ""),
            ("migrations/10_post_views.sql", ""),
        ];
        assert_eq!(found(&files).0, "sqlx");
        // Short versions in pairs alone fit both tools: ask.
        let pairs = [
            ("migrations/1_users.up.sql", ""),
            ("migrations/1_users.down.sql", ""),
        ];
        assert!(matches!(
            detect(project(&pairs).path()),
            Outcome::Ambiguous(_)
        ));
        let mut renamed = pairs.to_vec();
        renamed.push((
            "Cargo.toml",
            "[target.'cfg(unix)'.dependencies]\ndb = { package = \"sqlx\", version = \"0.8\" }\n",
        ));
        assert_eq!(found(&renamed).0, "sqlx");
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
