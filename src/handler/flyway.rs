//! Flyway-style files: `V<version>__<description>.sql`, `R__<description>.sql`, and the
//! `flyway_schema_history` table.
//!
//! Written from flyway's `ResourceNameParser.java` (names), `MigrationVersion.java` (version
//! order), `ChecksumCalculator.java` (CRC-32 per line), `JdbcTableSchemaHistory.java` (rows,
//! ranks, repair) and the per-database `getRawCreateScript` (DDL), so that `flyway info`
//! agrees with dbdeploy after a deploy and dbdeploy understands history Flyway wrote.
//!
//! Migrations are named as Flyway names them in its own messages: versioned ones by version
//! (`1.2`), repeatable ones by description (`refresh views`).

use std::cmp::Ordering;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::folder::{check_folder, entries, read_script};
use super::resolve::{Action, Checked, Rules};
use super::{Handler, HandlerError, ResolveResult};
use crate::engine::{ColKind, Dialect, LockKey, LockScope, Stmt, Value};
use crate::migration::{AppliedRecord, Migration, MigrationSet, RecordState, TxMode};

/// The Flyway format.
#[derive(Debug, Clone, Copy)]
pub struct Flyway;

const TABLE: &str = "flyway_schema_history";

/// Flyway's advisory-lock base, the bytes of "Flyway" (`PostgreSQLAdvisoryLockTemplate`).
const LOCK_MAGIC: i64 = 0x466C_7977_6179;

/// Flyway adds `table.toString().hashCode()` to its lock base; the table is schema-qualified,
/// so this matches Flyway when the history table is in `public`, the default schema.
const PG_LOCK_ID: i64 = LOCK_MAGIC + java_hash("\"public\".\"flyway_schema_history\"") as i64;

/// Marks a `BASELINE` row until [`Handler::reconcile`] expands it; no file name yields it.
const BASELINE_MARK: &str = "<< Flyway Baseline >> ";

/// `String.hashCode()` of an ASCII string.
const fn java_hash(s: &str) -> i32 {
    let b = s.as_bytes();
    let mut h: i32 = 0;
    let mut i = 0;
    while i < b.len() {
        h = h.wrapping_mul(31).wrapping_add(b[i] as i32);
        i += 1;
    }
    h
}

/// What a file name says.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Name {
    /// `V<version>__<description>.sql`.
    Versioned {
        /// As Flyway records it: the text with `_` turned into `.`.
        version: String,
        /// `_` turned into spaces.
        description: String,
    },
    /// `R__<description>.sql`.
    Repeatable {
        /// `_` turned into spaces.
        description: String,
    },
    /// A callback (`beforeMigrate.sql`, ...), an undo script or a file Flyway ignores.
    Ignored(&'static str),
}

/// Parses a file name the way `ResourceNameParser` does with the default prefixes `V`, `R`
/// and separator `__`. A name that starts like a migration but is malformed is an error
/// (Flyway would skip it silently unless `validateMigrationNaming` is on).
fn parse_name(file: &str) -> Result<Name, String> {
    let Some(stem) = file.strip_suffix(".sql") else {
        return Ok(Name::Ignored("not a .sql file"));
    };
    let callback = ["before", "after"].iter().any(|p| {
        stem.strip_prefix(p)
            .is_some_and(|r| r.starts_with(char::is_uppercase))
    }) || stem.starts_with("createSchema");
    if callback {
        return Ok(Name::Ignored(
            "a Flyway callback, which dbdeploy does not run",
        ));
    }
    let example =
        "name it V<version>__<description>.sql (e.g. V1_2__add_users.sql) or R__<description>.sql";
    if let Some(rest) = stem.strip_prefix('V') {
        let Some((version, description)) = rest.split_once("__") else {
            return Err(format!(
                "looks like a versioned migration but has no `__` between version and description; {example}"
            ));
        };
        let version = version.replace('_', ".");
        if version.is_empty()
            || version
                .split('.')
                .any(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(format!(
                "has version `{version}`, which is not digits separated by `.` or `_`; {example}"
            ));
        }
        return Ok(Name::Versioned {
            version,
            description: description.replace('_', " "),
        });
    }
    if let Some(rest) = stem.strip_prefix('R') {
        let Some(description) = rest.strip_prefix("__") else {
            return Err(format!(
                "looks like a repeatable migration but does not start with `R__`; {example}"
            ));
        };
        return Ok(Name::Repeatable {
            description: description.replace('_', " "),
        });
    }
    if stem.starts_with('U') {
        return Ok(Name::Ignored(
            "an undo migration, which dbdeploy does not run",
        ));
    }
    Ok(Name::Ignored("not a Flyway migration name"))
}

/// A version's parts as digit strings without leading zeros and without trailing zero parts,
/// so that `1.0` equals `1` and `1.02` equals `1.2`, as `MigrationVersion` compares them.
fn canonical(version: &str) -> Vec<&str> {
    let mut parts: Vec<&str> = version
        .split('.')
        .map(|p| {
            let t = p.trim_start_matches('0');
            if t.is_empty() { "0" } else { t }
        })
        .collect();
    while parts.len() > 1 && parts.last() == Some(&"0") {
        parts.pop();
    }
    parts
}

/// Numeric order of versions of any length (`1.12.2` < `1.12.10`).
fn compare_versions(a: &str, b: &str) -> Ordering {
    let (a, b) = (canonical(a), canonical(b));
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or("0");
        let y = b.get(i).copied().unwrap_or("0");
        let o = x.len().cmp(&y.len()).then_with(|| x.cmp(y));
        if o != Ordering::Equal {
            return o;
        }
    }
    Ordering::Equal
}

/// Flyway's checksum: CRC-32 over the UTF-8 bytes of each line without its terminator (so
/// `\n`, `\r\n` and `\r` files agree), a leading byte-order mark removed, as a signed 32-bit
/// integer — `ChecksumCalculator` feeding `BufferedReader.readLine()` into `java.util.zip.CRC32`.
/// CRC-32 because that is the `checksum INTEGER` column Flyway fills and `flyway validate`
/// compares; dbdeploy writes the same number so that either tool can validate the other's rows.
#[must_use]
pub fn checksum(text: &str) -> i32 {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut crc = crc32fast::Hasher::new();
    for line in text.split(['\n', '\r']) {
        crc.update(line.as_bytes());
    }
    #[allow(
        clippy::cast_possible_wrap,
        reason = "Java stores (int) crc.getValue()"
    )]
    let signed = crc.finalize() as i32;
    signed
}

/// Whether Flyway's own per-script settings turn the transaction off: a `<file>.conf` next to
/// the script, or a `-- flyway:executeInTransaction=false` comment line.
fn opt_out(path: &Path, sql: &str) -> Result<Option<String>, HandlerError> {
    let key_off = |line: &str| {
        line.split_once('=').is_some_and(|(k, v)| {
            k.trim() == "executeInTransaction" && v.trim().eq_ignore_ascii_case("false")
        })
    };
    let mut conf = path.as_os_str().to_owned();
    conf.push(".conf");
    let conf = PathBuf::from(conf);
    if conf.is_file() {
        let text = read_script(&conf)?;
        if text.lines().any(key_off) {
            return Ok(Some(format!(
                "{} sets executeInTransaction=false",
                conf.file_name()
                    .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
            )));
        }
    }
    let inline = sql.lines().any(|l| {
        l.trim()
            .strip_prefix("--")
            .and_then(|c| c.trim().strip_prefix("flyway:"))
            .is_some_and(key_off)
    });
    if inline {
        return Ok(Some(
            "the script sets `-- flyway:executeInTransaction=false`".into(),
        ));
    }
    Ok(super::dbdeploy_opt_out(sql))
}

/// Every `.sql` file under `dir`, recursively, as (path relative to `dir`, path), sorted.
fn scan(dir: &Path, rel: &str, out: &mut Vec<(String, PathBuf)>) -> Result<(), HandlerError> {
    for (name, path, is_dir) in entries(dir)? {
        let rel_name = if rel.is_empty() {
            name.clone()
        } else {
            format!("{rel}/{name}")
        };
        if is_dir {
            scan(&path, &rel_name, out)?;
        } else {
            out.push((rel_name, path));
        }
    }
    Ok(())
}

fn file_name(m: &Migration) -> String {
    m.path
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
}

/// The parsed name of a loaded migration (its file name was valid when it was loaded).
fn name_of(m: &Migration) -> Name {
    parse_name(&file_name(m)).unwrap_or(Name::Ignored("unparsable"))
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// The columns a row starts with, in the table's order: written by every insert and read back
/// by the history query.
const ROW_COLUMNS: [&str; 6] = [
    "installed_rank",
    "version",
    "description",
    "type",
    "script",
    "checksum",
];

/// `columns` quoted for `d`, separated by `, `.
fn column_list(d: Dialect, columns: &[&str]) -> String {
    let quoted: Vec<String> = columns.iter().map(|c| d.quote_ident(c)).collect();
    quoted.join(", ")
}

fn boolean(d: Dialect, v: bool) -> &'static str {
    match (d, v) {
        (Dialect::Postgres, true) => "TRUE",
        (Dialect::Postgres, false) => "FALSE",
        (_, true) => "1",
        (_, false) => "0",
    }
}

impl Flyway {
    /// `INSERT ... SELECT MAX(installed_rank) + 1`, so the rank is computed under the deploy
    /// lock by the database, exactly as `calculateInstalledRank` does.
    fn insert_row(d: Dialect, m: &Migration, success: bool) -> Stmt {
        let (version, description) = match name_of(m) {
            Name::Versioned {
                version,
                description,
            } => (Value::Text(version), description),
            Name::Repeatable { description } => (Value::Null, description),
            Name::Ignored(_) => (Value::Null, m.name.clone()),
        };
        let script = m.tool_data.clone().unwrap_or_else(|| file_name(m));
        let t = d.quote_ident(TABLE);
        let q = |c: &str| d.quote_ident(c);
        let p = |n| d.placeholder(n);
        let mut args = vec![
            version,
            Value::Text(truncate(&description, 200)),
            Value::Text(truncate(&script, 1000)),
            Value::Int(m.checksum.parse::<i64>().unwrap_or(0)),
        ];
        let installed_by = match d {
            // Flyway's `doGetCurrentUser` for each database.
            Dialect::Postgres => "current_user".to_owned(),
            Dialect::MySql => "SUBSTRING_INDEX(USER(),'@',1)".to_owned(),
            // SQLite has no users (Flyway writes ""); the operator says more.
            Dialect::Sqlite => {
                args.push(Value::Text(truncate(&crate::operator::operator().0, 100)));
                p(5)
            }
        };
        let sql = format!(
            "INSERT INTO {t} ({}, {}, {}, {}) \
             SELECT COALESCE(MAX({}), 0) + 1, {}, {}, 'SQL', {}, {}, {installed_by}, 0, {} FROM {t}",
            column_list(d, &ROW_COLUMNS),
            q("installed_by"),
            q("execution_time"),
            q("success"),
            q("installed_rank"),
            p(1),
            p(2),
            p(3),
            p(4),
            boolean(d, success),
        );
        Stmt::new(sql, args)
    }

    /// Deletes the failed rows of a migration, as `flyway repair` removes failed entries.
    fn delete_failed(d: Dialect, name: &str) -> Stmt {
        Stmt::new(
            format!(
                "DELETE FROM {} WHERE {} = {} AND ({} = {} OR ({} IS NULL AND {} = {}))",
                d.quote_ident(TABLE),
                d.quote_ident("success"),
                boolean(d, false),
                d.quote_ident("version"),
                d.placeholder(1),
                d.quote_ident("version"),
                d.quote_ident("description"),
                d.placeholder(2),
            ),
            vec![Value::Text(name.to_owned()), Value::Text(name.to_owned())],
        )
    }
}

impl Handler for Flyway {
    fn name(&self) -> &'static str {
        "flyway"
    }

    fn default_dir(&self) -> &'static str {
        "db/migration"
    }

    fn load(&self, dir: &Path, dialect: Dialect) -> Result<MigrationSet, HandlerError> {
        check_folder(dir)?;
        let mut files = Vec::new();
        scan(dir, "", &mut files)?;
        let mut warnings = Vec::new();
        let mut versioned: Vec<(String, Migration)> = Vec::new();
        let mut repeatable: Vec<Migration> = Vec::new();
        for (rel, path) in files {
            let file = path
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
            let parsed = parse_name(&file).map_err(|reason| HandlerError::file(&path, reason))?;
            let name = match &parsed {
                Name::Ignored(why) => {
                    let conf = file.ends_with(".sql.conf");
                    if file.ends_with(".sql") && !conf {
                        warnings.push(format!("{rel} is ignored: {why}"));
                    }
                    continue;
                }
                Name::Versioned { version, .. } => version.clone(),
                Name::Repeatable { description } => description.clone(),
            };
            let text = read_script(&path)?;
            // Flyway reads scripts through a BOM-stripping reader.
            let sql = text.strip_prefix('\u{feff}').unwrap_or(&text).to_owned();
            if sql.contains("${") {
                warnings.push(format!(
                    "{rel} contains `${{...}}`: Flyway would replace placeholders there, dbdeploy runs the text as written"
                ));
            }
            let transaction = TxMode::analyze(&sql, dialect, opt_out(&path, &sql)?);
            let migration =
                Migration::new(name, path, checksum(&text).to_string(), transaction, sql)
                    .with_tool_data(rel);
            match parsed {
                Name::Versioned { version, .. } => versioned.push((version, migration)),
                _ => repeatable.push(migration),
            }
        }
        versioned.sort_by(|(a, _), (b, _)| compare_versions(a, b));
        for pair in versioned.windows(2) {
            let ((va, a), (vb, b)) = (&pair[0], &pair[1]);
            if compare_versions(va, vb) == Ordering::Equal {
                return Err(HandlerError::file(
                    &b.path,
                    format!(
                        "has version {vb}, the same as {} (Flyway: found more than one migration with version {va}); give one of them a new version",
                        a.path.display()
                    ),
                ));
            }
        }
        repeatable.sort_by(|a, b| a.name.cmp(&b.name));
        for pair in repeatable.windows(2) {
            if pair[0].name == pair[1].name {
                return Err(HandlerError::file(
                    &pair[1].path,
                    format!(
                        "has the description `{}`, the same as {}; repeatable migrations are identified by description",
                        pair[1].name,
                        pair[0].path.display()
                    ),
                ));
            }
        }
        if let Some(r) = repeatable
            .iter()
            .find(|r| versioned.iter().any(|(_, v)| v.name == r.name))
        {
            return Err(HandlerError::file(
                &r.path,
                format!(
                    "has the description `{}`, which is also a version of this folder; dbdeploy names migrations by version or description, so rename it",
                    r.name
                ),
            ));
        }
        let mut migrations: Vec<Migration> = versioned.into_iter().map(|(_, m)| m).collect();
        // Flyway applies pending repeatable migrations after every versioned one.
        migrations.extend(repeatable);
        Ok(MigrationSet::new(dir, migrations, warnings))
    }

    fn table(&self) -> &'static str {
        TABLE
    }

    fn lock_keys(&self, _scope: &LockScope) -> Vec<LockKey> {
        vec![LockKey {
            postgres: PG_LOCK_ID,
            // Flyway's MySQL lock name hashes the database name, which a handler cannot know.
            mysql: "dbdeploy_flyway".into(),
        }]
    }

    fn create_table(&self, dialect: Dialect) -> Vec<Stmt> {
        match dialect {
            Dialect::Postgres => vec![
                Stmt::raw(
                    r#"CREATE TABLE "flyway_schema_history" (
    "installed_rank" INT NOT NULL,
    "version" VARCHAR(50),
    "description" VARCHAR(200) NOT NULL,
    "type" VARCHAR(20) NOT NULL,
    "script" VARCHAR(1000) NOT NULL,
    "checksum" INTEGER,
    "installed_by" VARCHAR(100) NOT NULL,
    "installed_on" TIMESTAMP NOT NULL DEFAULT now(),
    "execution_time" INTEGER NOT NULL,
    "success" BOOLEAN NOT NULL
)"#,
                ),
                Stmt::raw(
                    r#"ALTER TABLE "flyway_schema_history" ADD CONSTRAINT "flyway_schema_history_pk" PRIMARY KEY ("installed_rank")"#,
                ),
                Stmt::raw(
                    r#"CREATE INDEX "flyway_schema_history_s_idx" ON "flyway_schema_history" ("success")"#,
                ),
            ],
            Dialect::MySql => vec![
                Stmt::raw(
                    "CREATE TABLE `flyway_schema_history` (
    `installed_rank` INT NOT NULL,
    `version` VARCHAR(50),
    `description` VARCHAR(200) NOT NULL,
    `type` VARCHAR(20) NOT NULL,
    `script` VARCHAR(1000) NOT NULL,
    `checksum` INT,
    `installed_by` VARCHAR(100) NOT NULL,
    `installed_on` TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    `execution_time` INT NOT NULL,
    `success` BOOL NOT NULL,
    CONSTRAINT `flyway_schema_history_pk` PRIMARY KEY (`installed_rank`)
) ENGINE=InnoDB",
                ),
                Stmt::raw(
                    "CREATE INDEX `flyway_schema_history_s_idx` ON `flyway_schema_history` (`success`)",
                ),
            ],
            Dialect::Sqlite => vec![
                Stmt::raw(
                    r#"CREATE TABLE "flyway_schema_history" (
    "installed_rank" INT NOT NULL PRIMARY KEY,
    "version" VARCHAR(50),
    "description" VARCHAR(200) NOT NULL,
    "type" VARCHAR(20) NOT NULL,
    "script" VARCHAR(1000) NOT NULL,
    "checksum" INT,
    "installed_by" VARCHAR(100) NOT NULL,
    "installed_on" TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f','now')),
    "execution_time" INT NOT NULL,
    "success" BOOLEAN NOT NULL
)"#,
                ),
                Stmt::raw(
                    r#"CREATE INDEX "flyway_schema_history_s_idx" ON "flyway_schema_history" ("success")"#,
                ),
            ],
        }
    }

    fn select_history(&self, dialect: Dialect) -> (Stmt, Vec<ColKind>) {
        let q = |c: &str| dialect.quote_ident(c);
        let installed_on = match dialect {
            Dialect::Postgres => "to_char(\"installed_on\", 'YYYY-MM-DD HH24:MI:SS')".to_owned(),
            Dialect::MySql => "DATE_FORMAT(`installed_on`, '%Y-%m-%d %H:%i:%s')".to_owned(),
            Dialect::Sqlite => "CAST(\"installed_on\" AS TEXT)".to_owned(),
        };
        let sql = format!(
            "SELECT {}, {installed_on}, {} FROM {} ORDER BY {}",
            column_list(dialect, &ROW_COLUMNS),
            q("success"),
            q(TABLE),
            q("installed_rank"),
        );
        let cols = vec![
            ColKind::Int,
            ColKind::Text,
            ColKind::Text,
            ColKind::Text,
            ColKind::Text,
            ColKind::Int,
            ColKind::Text,
            ColKind::Int,
        ];
        (Stmt::raw(sql), cols)
    }

    fn parse_history(&self, rows: Vec<Vec<Value>>) -> Result<Vec<AppliedRecord>, HandlerError> {
        let mut records: Vec<AppliedRecord> = Vec::new();
        for row in rows {
            let text = |i: usize| row.get(i).and_then(Value::as_text).map(str::to_owned);
            let kind = text(3).unwrap_or_default();
            let version = text(1);
            let description = text(2).unwrap_or_default();
            let installed_on = text(6);
            let name = version.clone().unwrap_or_else(|| description.clone());
            match kind.as_str() {
                // The marker of schemas Flyway created; not a migration.
                "SCHEMA" => continue,
                "BASELINE" => {
                    let Some(v) = version else {
                        return Err(HandlerError::History {
                            table: TABLE,
                            reason: "a BASELINE row has no version".into(),
                        });
                    };
                    records.push(AppliedRecord {
                        name: format!("{BASELINE_MARK}{v}"),
                        checksum: None,
                        state: RecordState::Applied,
                        started_at: installed_on.clone(),
                        finished_at: installed_on,
                        logs: None,
                    });
                    continue;
                }
                // `repair` marks missing migrations deleted; an undo takes a version back.
                k if k == "DELETE" || k.starts_with("UNDO") => {
                    records.retain(|r| r.name != name);
                    continue;
                }
                _ => {}
            }
            let success = row.get(7).and_then(Value::as_int).unwrap_or(0) != 0;
            records.push(AppliedRecord {
                name,
                checksum: row
                    .get(5)
                    .and_then(Value::as_int)
                    .map(|c| c.to_string()),
                state: if success {
                    RecordState::Applied
                } else {
                    RecordState::Failed
                },
                started_at: installed_on.clone(),
                finished_at: installed_on,
                logs: (!success).then(|| {
                    format!(
                        "recorded as failed in {TABLE} (success = false); `flyway repair` or `dbdeploy resolve` clears it"
                    )
                }),
            });
        }
        Ok(records)
    }

    fn reconcile(&self, set: &MigrationSet, records: Vec<AppliedRecord>) -> Vec<AppliedRecord> {
        let mut out: Vec<AppliedRecord> = Vec::with_capacity(records.len());
        for r in records {
            let Some(baseline) = r.name.strip_prefix(BASELINE_MARK) else {
                out.push(r);
                continue;
            };
            // Below the baseline counts as applied: the database already had those changes.
            for m in &set.migrations {
                let below = matches!(name_of(m), Name::Versioned { ref version, .. }
                    if compare_versions(version, baseline) != Ordering::Greater);
                if below {
                    out.push(AppliedRecord {
                        name: m.name.clone(),
                        checksum: None,
                        ..r.clone()
                    });
                }
            }
        }
        out
    }

    fn checksum_matches(&self, migration: &Migration, recorded: &str) -> bool {
        match (
            migration.checksum.parse::<i64>(),
            recorded.trim().parse::<i64>(),
        ) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        }
    }

    fn failed_hint(&self) -> Option<&'static str> {
        Some(
            "the row has success = false in flyway_schema_history, Flyway's failed state: `dbdeploy resolve --rolled-back` deletes it as `flyway repair` does",
        )
    }

    fn is_repeatable(&self, migration: &Migration) -> bool {
        matches!(name_of(migration), Name::Repeatable { .. })
    }

    fn sorts_before(&self, a: &Migration, b: &Migration) -> bool {
        match (name_of(a), name_of(b)) {
            (Name::Versioned { version: x, .. }, Name::Versioned { version: y, .. }) => {
                compare_versions(&x, &y) == Ordering::Less
            }
            (Name::Versioned { .. }, _) => true,
            (_, Name::Versioned { .. }) => false,
            _ => a.name < b.name,
        }
    }

    fn record_started(
        &self,
        dialect: Dialect,
        migration: &Migration,
        _now: DateTime<Utc>,
    ) -> (String, Vec<Stmt>) {
        // The row starts as failed and becomes successful in `record_finished`: in a
        // transaction nobody sees the difference, outside one a failure stays recorded
        // exactly as Flyway records one on databases without transactional DDL.
        let script = migration
            .tool_data
            .clone()
            .unwrap_or_else(|| file_name(migration));
        (
            truncate(&script, 1000),
            vec![Self::insert_row(dialect, migration, false)],
        )
    }

    fn record_finished(
        &self,
        dialect: Dialect,
        row_id: &str,
        _now: DateTime<Utc>,
        elapsed: Duration,
    ) -> Vec<Stmt> {
        let ms = i64::try_from(elapsed.as_millis())
            .unwrap_or(i64::MAX)
            .min(i64::from(i32::MAX));
        let q = |c: &str| dialect.quote_ident(c);
        vec![Stmt::new(
            format!(
                "UPDATE {} SET {} = {}, {} = {} WHERE {} = {} AND {} = {}",
                q(TABLE),
                q("success"),
                boolean(dialect, true),
                q("execution_time"),
                dialect.placeholder(1),
                q("script"),
                dialect.placeholder(2),
                q("success"),
                boolean(dialect, false),
            ),
            vec![Value::Int(ms), Value::Text(row_id.to_owned())],
        )]
    }

    fn record_failed(&self, _dialect: Dialect, _row_id: &str, _logs: &str) -> Vec<Stmt> {
        // The row written before the script already says `success = false`; Flyway's table
        // has no column for the error text.
        Vec::new()
    }

    fn resolve_rules(&self) -> Rules {
        Rules {
            naming: "check the name (versioned migrations are named by version, e.g. `1.2`, repeatable ones by description)",
            // A repeatable migration is applied again whenever it changed since its last run.
            already_applied: |local, recorded| {
                if Flyway.is_repeatable(local) {
                    recorded
                        .applied
                        .and_then(|r| r.checksum.as_deref())
                        .is_some_and(|c| Flyway.checksum_matches(local, c))
                } else {
                    recorded.applied.is_some()
                }
            },
            ..Rules::DEFAULT
        }
    }

    fn resolve_rows(&self, dialect: Dialect, to: &Checked<'_>) -> ResolveResult {
        let mut stmts = Vec::new();
        if to.recorded.failed {
            stmts.push(Self::delete_failed(dialect, to.name));
        }
        if let Action::Apply(local) = to.action {
            stmts.push(Self::insert_row(dialect, local, true));
        }
        Ok(stmts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn versioned(v: &str, d: &str) -> Name {
        Name::Versioned {
            version: v.into(),
            description: d.into(),
        }
    }

    #[test]
    fn names_parse_as_flyway_does() {
        assert_eq!(
            parse_name("V1_2__add_users.sql").unwrap(),
            versioned("1.2", "add users")
        );
        assert_eq!(
            parse_name("V1.12.10__x_y.sql").unwrap(),
            versioned("1.12.10", "x y")
        );
        assert_eq!(parse_name("V3__.sql").unwrap(), versioned("3", ""));
        assert_eq!(
            parse_name("V20240101120000__with spaces.sql").unwrap(),
            versioned("20240101120000", "with spaces")
        );
        assert_eq!(
            parse_name("R__refresh_views.sql").unwrap(),
            Name::Repeatable {
                description: "refresh views".into()
            }
        );
        assert!(matches!(
            parse_name("afterMigrate.sql"),
            Ok(Name::Ignored(_))
        ));
        assert!(matches!(parse_name("U1__undo.sql"), Ok(Name::Ignored(_))));
        assert!(matches!(parse_name("README.md"), Ok(Name::Ignored(_))));
        assert!(matches!(parse_name("notes.sql"), Ok(Name::Ignored(_))));
    }

    #[test]
    fn malformed_migration_names_are_errors() {
        for bad in [
            "V1_add.sql",
            "V1.x__a.sql",
            "V__a.sql",
            "V1..2__a.sql",
            "R1__a.sql",
            "Rfoo.sql",
        ] {
            let err = parse_name(bad).unwrap_err();
            assert!(
                err.contains("V<version>__<description>.sql"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn versions_order_numerically_part_by_part() {
        let mut v = vec!["1.12.10", "1.2", "1.12.2", "10", "2", "1.12", "1.1.1"];
        v.sort_by(|a, b| compare_versions(a, b));
        assert_eq!(v, ["1.1.1", "1.2", "1.12", "1.12.2", "1.12.10", "2", "10"]);
        assert_eq!(compare_versions("1.0", "1"), Ordering::Equal);
        assert_eq!(compare_versions("1.02", "1.2"), Ordering::Equal);
        assert_eq!(compare_versions("001", "1"), Ordering::Equal);
        assert_eq!(
            compare_versions("99999999999999999999999.1", "99999999999999999999999.0.1"),
            Ordering::Greater
        );
    }

    // Expected values computed independently with Python:
    //   zlib.crc32(b"".join(text.splitlines())) as a signed 32-bit int.
    #[test]
    fn checksum_is_crc32_of_the_lines_as_signed_int() {
        assert_eq!(checksum(""), 0);
        assert_eq!(checksum("CREATE TABLE t (id INT);"), 1_556_295_178);
        let lf = "CREATE TABLE users (\n    id INT PRIMARY KEY\n);\n";
        assert_eq!(checksum(lf), -1_564_980_220);
        assert_eq!(checksum(&lf.replace('\n', "\r\n")), -1_564_980_220);
        assert_eq!(checksum(&lf.replace('\n', "\r")), -1_564_980_220);
        assert_eq!(checksum(&format!("\u{feff}{lf}")), -1_564_980_220);
        // Lines are concatenated without separators, so blank lines do not count.
        assert_eq!(checksum("a\n\n\nb"), checksum("ab"));
        assert_eq!(checksum("SELECT 'é';"), 1_526_126_742);
    }

    #[test]
    fn lock_id_is_flyways_for_the_public_schema() {
        // 77431708279161 + "\"public\".\"flyway_schema_history\"".hashCode() (Java), by Python.
        assert_eq!(PG_LOCK_ID, 77_433_833_903_597);
    }

    fn row(
        rank: i64,
        version: Option<&str>,
        desc: &str,
        kind: &str,
        checksum: Option<i64>,
        success: bool,
    ) -> Vec<Value> {
        vec![
            Value::Int(rank),
            version.map_or(Value::Null, |v| Value::Text(v.into())),
            Value::Text(desc.into()),
            Value::Text(kind.into()),
            Value::Text(format!("V{}__{desc}.sql", version.unwrap_or(""))),
            checksum.map_or(Value::Null, Value::Int),
            Value::Text("2024-01-01 00:00:00".into()),
            Value::Int(i64::from(success)),
        ]
    }

    #[test]
    fn history_flyway_wrote_is_understood() {
        let dir = tempfile::tempdir().unwrap();
        for f in ["V1__a.sql", "V2__b.sql", "V3__c.sql", "R__views.sql"] {
            std::fs::write(dir.path().join(f), "SELECT 1;").unwrap();
        }
        let set = Flyway.load(dir.path(), Dialect::Postgres).unwrap();
        let records = Flyway
            .parse_history(vec![
                row(
                    0,
                    None,
                    "<< Flyway Schema Creation >>",
                    "SCHEMA",
                    None,
                    true,
                ),
                row(
                    1,
                    Some("2"),
                    "<< Flyway Baseline >>",
                    "BASELINE",
                    None,
                    true,
                ),
                row(2, Some("3"), "c", "SQL", Some(7), true),
                row(3, Some("9"), "gone", "SQL", Some(8), true),
                row(4, Some("9"), "gone", "DELETE", None, true),
                row(5, None, "views", "SQL", Some(9), false),
            ])
            .unwrap();
        let records = Flyway.reconcile(&set, records);
        let seen: Vec<_> = records
            .iter()
            .map(|r| (r.name.as_str(), r.state, r.checksum.as_deref()))
            .collect();
        assert_eq!(
            seen,
            [
                ("1", RecordState::Applied, None),
                ("2", RecordState::Applied, None),
                ("3", RecordState::Applied, Some("7")),
                ("views", RecordState::Failed, Some("9")),
            ]
        );
    }

    #[test]
    fn folder_loads_versions_then_repeatables_and_rejects_duplicates() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        for f in [
            "V1_2__b.sql",
            "R__a_view.sql",
            "sub/V1_10__c.sql",
            "V1_1__a.sql",
            "afterMigrate.sql",
            "notes.txt",
        ] {
            std::fs::write(dir.path().join(f), "SELECT 1;").unwrap();
        }
        let set = Flyway.load(dir.path(), Dialect::Postgres).unwrap();
        let got: Vec<_> = set
            .migrations
            .iter()
            .map(|m| (m.name.as_str(), m.tool_data.as_deref().unwrap_or("")))
            .collect();
        assert_eq!(
            got,
            [
                ("1.1", "V1_1__a.sql"),
                ("1.2", "V1_2__b.sql"),
                ("1.10", "sub/V1_10__c.sql"),
                ("a view", "R__a_view.sql"),
            ]
        );
        assert_eq!(set.warnings.len(), 1, "{:?}", set.warnings);
        assert!(set.warnings[0].contains("afterMigrate.sql"));

        std::fs::write(dir.path().join("V1.1.0__again.sql"), "SELECT 1;").unwrap();
        let err = Flyway
            .load(dir.path(), Dialect::Postgres)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("more than one migration with version"),
            "{err}"
        );
    }
}
