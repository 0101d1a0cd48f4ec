//! dbmate: `db/migrations/<version>_<name>.sql` files with `-- migrate:up` and
//! `-- migrate:down` sections, and the `schema_migrations(version)` table.
//!
//! Written from amacneil/dbmate `pkg/dbmate/{migration,db}.go` and `pkg/driver/*`, so that
//! `dbmate status` agrees with dbdeploy after a deploy and dbdeploy reads the versions dbmate
//! recorded. dbmate keeps neither a checksum nor a failure record: its table only lists the
//! versions that were applied, and a migration that failed part-way simply stays pending.
//!
//! One deliberate difference: a section marker with leading whitespace (an indented
//! `-- migrate:down`) is taken as the marker, with a warning. dbmate 2 rejects such files and
//! older versions run the down statements as part of up; dbdeploy never does the latter.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::folder::{Script, check_unique, list_files, scripts};
use super::resolve::{self, Action, Checked, Rules};
use super::{Handler, HandlerError, Resolution, ResolveResult, Revert};
use crate::checksum::{crc32_ieee, sha256_hex};
use crate::engine::{ColKind, Dialect, LockKey, LockScope, Stmt, Value};
use crate::migration::{AppliedRecord, Migration, MigrationSet, RecordState, Tx, TxMode};

/// The dbmate format.
#[derive(Debug, Clone, Copy)]
pub struct Dbmate;

const TABLE: &str = "schema_migrations";
/// dbmate takes no lock; dbdeploy's own, so that two dbdeploy runs exclude each other.
const PG_LOCK_ID: i64 = 0x6462_6d61_7465; // "dbmate"

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    Up,
    Down,
}

/// One `-- migrate:up` / `-- migrate:down` line.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Marker {
    section: Section,
    /// 1-based line.
    line: usize,
    /// Byte offset of the line start.
    offset: usize,
    /// It has whitespace (or a byte-order mark) before `--`.
    indented: bool,
    /// `key:value` options after the directive (`transaction:false`).
    options: BTreeMap<String, String>,
}

/// A parsed migration file.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Parsed {
    /// Everything before the down marker: the header comments and the up section.
    up: String,
    /// The down section, marker line included.
    down: Option<String>,
    /// The up section's options.
    options: BTreeMap<String, String>,
    /// Problems dbdeploy works around, with the line they concern.
    warnings: Vec<(usize, String)>,
}

/// Go's `\s` (RE2): ASCII whitespace, vertical tab included.
fn is_go_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\u{0b}' | '\u{0c}' | '\r')
}

/// Matches dbmate's `^--\s*migrate:(up|down)(\s*$|\s+\S+)` on one line (without its newline),
/// also when the line is indented.
fn marker(line: &str, number: usize, offset: usize) -> Option<Marker> {
    let body = line.trim_start_matches(|c| is_go_space(c) || c == '\u{feff}');
    let indented = body.len() != line.len();
    let rest = body.strip_prefix("--")?.trim_start_matches(is_go_space);
    let (section, rest) = if let Some(r) = rest.strip_prefix("migrate:up") {
        (Section::Up, r)
    } else if let Some(r) = rest.strip_prefix("migrate:down") {
        (Section::Down, r)
    } else {
        return None;
    };
    // `-- migrate:upgrade` is a comment, not a marker.
    if !rest.is_empty() && !rest.starts_with(is_go_space) {
        return None;
    }
    let options = rest
        .split(is_go_space)
        .filter_map(|pair| {
            let (k, v) = pair.split_once(':')?;
            // dbmate keeps only well-formed `key:value` pairs.
            (!v.contains(':')).then(|| (k.to_owned(), v.to_owned()))
        })
        .collect();
    Some(Marker {
        section,
        line: number,
        offset,
        indented,
        options,
    })
}

fn section_name(s: Section) -> &'static str {
    match s {
        Section::Up => "-- migrate:up",
        Section::Down => "-- migrate:down",
    }
}

/// Splits a migration into its sections, with dbmate's rules: one up section first, only
/// comments and blank lines before it, at most one down section after it.
fn parse(text: &str) -> Result<Parsed, (Option<usize>, String)> {
    let mut markers = Vec::new();
    let mut offset = 0;
    let mut code_before_up = None;
    for (i, raw) in text.split_inclusive('\n').enumerate() {
        let line = raw.trim_end_matches(['\n', '\r']);
        if let Some(m) = marker(line, i + 1, offset) {
            markers.push(m);
        } else if markers.is_empty() && code_before_up.is_none() {
            let t = line.trim_matches(|c| is_go_space(c) || c == '\u{feff}');
            if !t.is_empty() && !t.starts_with("--") {
                code_before_up = Some(i + 1);
            }
        }
        offset += raw.len();
    }
    let mut ups = markers.iter().filter(|m| m.section == Section::Up);
    let Some(up) = ups.next() else {
        return Err((
            None,
            "has no `-- migrate:up` line: dbmate migrations start their up section with `-- migrate:up` at the start of a line".into(),
        ));
    };
    if let Some(second) = ups.next() {
        return Err((
            Some(second.line),
            "has a second `-- migrate:up` section: dbmate runs only one up section per file; split it into separate migrations".into(),
        ));
    }
    let mut downs = markers.iter().filter(|m| m.section == Section::Down);
    let down = downs.next();
    if let Some(second) = downs.next() {
        return Err((
            Some(second.line),
            "has a second `-- migrate:down` section: dbmate allows one; merge them".into(),
        ));
    }
    if let Some(d) = down
        && d.offset < up.offset
    {
        return Err((
            Some(d.line),
            "has `-- migrate:down` before `-- migrate:up`: dbmate requires the up section first"
                .into(),
        ));
    }
    if let Some(line) = code_before_up {
        return Err((
            Some(line),
            "has SQL before `-- migrate:up`, which dbmate refuses: move it below the `-- migrate:up` line".into(),
        ));
    }
    let mut warnings = Vec::new();
    for m in [Some(up), down]
        .into_iter()
        .flatten()
        .filter(|m| m.indented)
    {
        let what = section_name(m.section);
        let consequence = match m.section {
            Section::Down => {
                "dbdeploy takes it as the down marker and does not run what follows on deploy, but dbmate 2 rejects the file and older dbmate versions run the down statements as part of the up migration"
            }
            Section::Up => "dbdeploy takes it as the up marker, but dbmate does not",
        };
        warnings.push((
            m.line,
            format!("`{what}` is indented; {consequence}: remove the indentation"),
        ));
    }
    if down.is_none() {
        warnings.push((
            up.line,
            "has no `-- migrate:down` section; dbmate 2 rejects migrations without one (add `-- migrate:down`, even if empty)".into(),
        ));
    }
    let end = down.map_or(text.len(), |d| d.offset);
    Ok(Parsed {
        up: text[..end].to_owned(),
        down: down.map(|d| text[d.offset..].to_owned()),
        options: up.options.clone(),
        warnings,
    })
}

/// dbmate keeps no checksum; this one is dbdeploy's own, for its history: SHA-256 of the
/// whole file, both sections, so that an edited down section counts as a change too.
fn checksum(text: &str) -> String {
    sha256_hex(text.as_bytes())
}

/// dbmate's version: the leading digits of a `^(\d+).*\.sql$` file name.
fn file_version(name: &str) -> Option<&str> {
    let digits = name.bytes().take_while(u8::is_ascii_digit).count();
    (digits > 0 && name.ends_with(".sql")).then(|| &name[..digits])
}

impl Handler for Dbmate {
    fn name(&self) -> &'static str {
        "dbmate"
    }

    fn default_dir(&self) -> &'static str {
        "db/migrations"
    }

    fn load(&self, dir: &Path, dialect: Dialect) -> Result<MigrationSet, HandlerError> {
        let mut migrations = Vec::new();
        let mut warnings = Vec::new();
        // Sorted by file name, as dbmate orders them.
        let files = list_files(dir)?;
        for script in scripts(files, |name, _| Ok(file_version(name).map(str::to_owned))) {
            let Script {
                key: version,
                path,
                text,
            } = script?;
            let parsed = parse(&text)
                .map_err(|(line, reason)| HandlerError::file_at(&path, line, reason))?;
            for (line, w) in parsed.warnings {
                warnings.push(format!("{}:{line}: {w}", path.display()));
            }
            let opt_out = (parsed.options.get("transaction").map(String::as_str) == Some("false"))
                .then(|| {
                    "its `-- migrate:up` line says `transaction:false`, dbmate's opt-out".to_owned()
                });
            let transaction = Tx::from_script(dialect, opt_out);
            migrations.push(
                Migration::new(version, path, checksum(&text), transaction, parsed.up)
                    .with_down(parsed.down),
            );
        }
        check_unique(&migrations)?;
        Ok(MigrationSet::new(dir, migrations, warnings))
    }

    fn table(&self) -> &'static str {
        TABLE
    }

    fn lock_keys(&self, scope: &LockScope) -> Vec<LockKey> {
        // PostgreSQL advisory locks are per database already; MySQL's `GET_LOCK` names are
        // server-wide, so the database goes into the name (hashed: names are at most 64 chars).
        vec![LockKey {
            postgres: PG_LOCK_ID,
            mysql: format!(
                "dbdeploy_dbmate_{:08x}",
                crc32_ieee(scope.database.as_bytes())
            ),
        }]
    }

    fn check_table(&self, columns: &[String]) -> Result<(), HandlerError> {
        let has = |c: &str| columns.iter().any(|x| x == c);
        if has("dirty") {
            return Err(HandlerError::Table {
                table: TABLE,
                reason: "has a `dirty` column: it is golang-migrate's table (version, dirty), not dbmate's: \
                         this database is tracked by golang-migrate; set `migration_tool = \"golang-migrate\"` \
                         in dbdeploy.toml, or point the environment at another database"
                    .into(),
            });
        }
        if !has("version") {
            return Err(HandlerError::Table {
                table: TABLE,
                reason: format!(
                    "has no `version` column: it is not dbmate's table (columns found: {}); point the environment at another database",
                    columns.join(", ")
                ),
            });
        }
        Ok(())
    }

    fn create_table(&self, dialect: Dialect) -> Vec<Stmt> {
        // The DDL of dbmate's `CreateMigrationsTable`, per driver. On PostgreSQL the column
        // has no length: `dbmate migrate` (2.36) creates `character varying` unbounded.
        let sql = match dialect {
            Dialect::Postgres => {
                "create table if not exists schema_migrations (version varchar primary key)"
            }
            Dialect::MySql => {
                "create table if not exists `schema_migrations` (version varchar(128) primary key)"
            }
            Dialect::Sqlite => {
                "create table if not exists \"schema_migrations\" (version varchar(128) primary key)"
            }
        };
        vec![Stmt::raw(sql)]
    }

    fn select_history(&self, dialect: Dialect) -> (Stmt, Vec<ColKind>) {
        let sql = format!(
            "SELECT version FROM {} ORDER BY version",
            dialect.quote_ident(TABLE)
        );
        (Stmt::raw(sql), vec![ColKind::Text])
    }

    fn parse_history(&self, rows: Vec<Vec<Value>>) -> Result<Vec<AppliedRecord>, HandlerError> {
        rows.into_iter()
            .map(|row| {
                let name =
                    row.first()
                        .and_then(Value::as_text)
                        .ok_or_else(|| HandlerError::History {
                            table: TABLE,
                            reason: "a row has no version".into(),
                        })?;
                Ok(AppliedRecord {
                    name: name.to_owned(),
                    checksum: None,
                    state: RecordState::Applied,
                    started_at: None,
                    finished_at: None,
                    logs: None,
                })
            })
            .collect()
    }

    fn checksum_matches(&self, _migration: &Migration, _recorded: &str) -> bool {
        // dbmate records no checksum, so nothing recorded can disagree with the file.
        true
    }

    fn records_failures(&self) -> bool {
        false
    }

    fn record_started(
        &self,
        _dialect: Dialect,
        migration: &Migration,
        _now: DateTime<Utc>,
    ) -> (String, Vec<Stmt>) {
        // dbmate inserts the version after the up section ran; a row written first would make
        // a migration that dies part-way look applied.
        (migration.name.clone(), Vec::new())
    }

    fn record_finished(
        &self,
        dialect: Dialect,
        row_id: &str,
        _now: DateTime<Utc>,
        _elapsed: Duration,
    ) -> Vec<Stmt> {
        vec![insert(dialect, row_id)]
    }

    fn record_failed(&self, _dialect: Dialect, _row_id: &str, _logs: &str) -> Vec<Stmt> {
        Vec::new()
    }

    fn revert(
        &self,
        dialect: Dialect,
        migration: &Migration,
        _previous: Option<&Migration>,
    ) -> Option<Revert> {
        let sql = migration.down.clone()?;
        // The down section's own options, on its marker line.
        let transaction_false = sql
            .lines()
            .next()
            .and_then(|first| marker(first, 1, 0))
            .is_some_and(|m| m.options.get("transaction").map(String::as_str) == Some("false"));
        let opt_out = transaction_false.then(|| {
            "its `-- migrate:down` line says `transaction:false`, dbmate's opt-out".to_owned()
        });
        Some(Revert {
            transaction: TxMode::analyze(&sql, dialect, opt_out),
            sql,
            before: Vec::new(),
            // As `dbmate rollback`: the version is deleted after the down section ran.
            after: vec![Stmt::new(
                format!(
                    "DELETE FROM {} WHERE version = {}",
                    dialect.quote_ident(TABLE),
                    dialect.placeholder(1)
                ),
                vec![Value::Text(migration.name.clone())],
            )],
        })
    }

    fn resolve_rules(&self) -> Rules {
        Rules {
            naming: "name it by its version (the digits the file name starts with)",
            // dbmate's table lists applied versions only: a row is the answer, whether or not
            // the file is still there, and nothing is ever failed.
            first: |request, recorded| match request.resolution {
                Resolution::RolledBack if recorded.exists => Err(HandlerError::Resolve(format!(
                    "migration `{}` is recorded as applied, not failed: dbmate records no failed migrations (to revert it, run its down section with `dbmate rollback`)",
                    request.name
                ))),
                Resolution::RolledBack => Err(HandlerError::Resolve(format!(
                    "migration `{}` cannot be marked rolled back: dbmate records no failed migrations, so it is simply pending and runs again at the next deploy",
                    request.name
                ))),
                Resolution::Applied if recorded.exists => {
                    Err(resolve::already_applied(request.name))
                }
                Resolution::Applied => Ok(()),
            },
            ..Rules::DEFAULT
        }
    }

    fn resolve_rows(&self, dialect: Dialect, to: &Checked<'_>) -> ResolveResult {
        // Only `--applied` gets here: `first` refuses every `--rolled-back`.
        Ok(match to.action {
            Action::Apply(_) => vec![insert(dialect, to.name)],
            Action::RollBack => Vec::new(),
        })
    }
}

fn insert(dialect: Dialect, version: &str) -> Stmt {
    Stmt::new(
        format!(
            "INSERT INTO {} (version) VALUES ({})",
            dialect.quote_ident(TABLE),
            dialect.placeholder(1)
        ),
        vec![Value::Text(version.to_owned())],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("migrations-fixtures/dbmate")
            .join(name)
    }

    #[test]
    fn sections_split_at_the_markers() {
        let p =
            parse("-- migrate:up\nCREATE TABLE a (id int);\n\n-- migrate:down\nDROP TABLE a;\n")
                .unwrap();
        assert_eq!(p.up, "-- migrate:up\nCREATE TABLE a (id int);\n\n");
        assert_eq!(p.down.as_deref(), Some("-- migrate:down\nDROP TABLE a;\n"));
        assert!(p.warnings.is_empty());
        assert!(p.options.is_empty());
    }

    #[test]
    fn options_follow_the_up_marker() {
        let p = parse("-- migrate:up transaction:false\r\nVACUUM;\r\n-- migrate:down\r\n").unwrap();
        assert_eq!(
            p.options.get("transaction").map(String::as_str),
            Some("false")
        );
        assert_eq!(p.up, "-- migrate:up transaction:false\r\nVACUUM;\r\n");
    }

    #[test]
    fn markers_need_a_word_boundary() {
        assert!(marker("-- migrate:upgrade the table", 1, 0).is_none());
        assert!(marker("--migrate:up", 1, 0).is_some());
        assert!(marker("-- migrate:down   ", 1, 0).is_some());
        assert!(marker("SELECT 1; -- migrate:down", 1, 0).is_none());
    }

    #[test]
    fn an_indented_down_marker_is_a_marker_with_a_warning() {
        let text = "-- migrate:up\nCREATE TABLE a (id int);\n    -- migrate:down\nDROP TABLE a;\n";
        let p = parse(text).unwrap();
        assert!(
            !p.up.contains("DROP TABLE"),
            "down statements leaked into up: {}",
            p.up
        );
        assert_eq!(
            p.down.as_deref(),
            Some("    -- migrate:down\nDROP TABLE a;\n")
        );
        assert_eq!(p.warnings.len(), 1);
        assert_eq!(p.warnings[0].0, 3);
        assert!(p.warnings[0].1.contains("indented"), "{:?}", p.warnings);
    }

    #[test]
    fn comments_may_precede_the_up_marker_but_sql_may_not() {
        assert!(
            parse("-- header\n\n  -- more\n-- migrate:up\nSELECT 1;\n-- migrate:down\n").is_ok()
        );
        let (line, reason) =
            parse("CREATE TYPE t AS ENUM ('a');\n-- migrate:up\nSELECT 1;\n-- migrate:down\n")
                .unwrap_err();
        assert_eq!(line, Some(1));
        assert!(reason.contains("before `-- migrate:up`"), "{reason}");
    }

    #[test]
    fn malformed_files_are_refused_with_the_line() {
        assert!(
            parse("CREATE TABLE a (id int);\n")
                .unwrap_err()
                .1
                .contains("no `-- migrate:up`")
        );
        assert_eq!(
            parse("-- migrate:down\nDROP TABLE a;\n-- migrate:up\n")
                .unwrap_err()
                .0,
            Some(1)
        );
        assert_eq!(
            parse("-- migrate:up\nA;\n-- migrate:up\nB;\n-- migrate:down\n")
                .unwrap_err()
                .0,
            Some(3)
        );
    }

    #[test]
    fn a_missing_down_section_is_a_warning() {
        let p = parse("-- migrate:up\nSELECT 1;\n").unwrap();
        assert_eq!(p.down, None);
        assert!(p.warnings[0].1.contains("no `-- migrate:down`"));
    }

    #[test]
    fn versions_are_the_leading_digits_and_files_sort_by_name() {
        assert_eq!(
            file_version("20240101120000_init.sql"),
            Some("20240101120000")
        );
        assert_eq!(file_version("001.sql"), Some("001"));
        assert_eq!(file_version("init.sql"), None);
        assert_eq!(file_version("1_init.sql.bak"), None);
        let set = Dbmate.load(&fixture("basic"), Dialect::Sqlite).unwrap();
        let names: Vec<_> = set.migrations.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "20240101000000",
                "20240102000000",
                "20240103000000",
                "20240104000000",
                "20240105000000",
                "20240106000000"
            ]
        );
        // The fixture's indented `-- migrate:down` is reported with file and line.
        assert!(
            set.warnings
                .iter()
                .any(|w| w.contains("20240102000000_posts.sql:8") && w.contains("indented")),
            "{:?}",
            set.warnings
        );
        let posts = &set.migrations[1];
        assert!(!posts.sql.contains("DROP TABLE"), "{}", posts.sql);
        assert!(posts.down.as_deref().unwrap().contains("DROP TABLE posts"));
    }

    #[test]
    fn duplicate_versions_are_refused() {
        let err = Dbmate
            .load(&fixture("duplicate-version"), Dialect::Sqlite)
            .unwrap_err()
            .to_string();
        assert!(err.contains("20240101000000_a.sql"), "{err}");
        assert!(err.contains("20240101000000_b.sql"), "{err}");
    }
}
