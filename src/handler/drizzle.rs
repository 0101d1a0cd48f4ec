//! drizzle-kit 0.x: `meta/_journal.json`, `<tag>.sql` split at `--> statement-breakpoint`, and
//! the `__drizzle_migrations` table (`drizzle` schema on PostgreSQL).
//!
//! Written from drizzle-orm's `migrator.ts` (journal, hash) and the `migrate` of
//! `pg-core/dialect.ts`, `mysql-core/dialect.ts` and `sqlite-core/dialect.ts` (DDL, rows).
//! drizzle applies every journal entry whose `when` is newer than the newest `created_at`
//! and silently skips older ones; dbdeploy matches rows to entries by `created_at` and
//! reports back-dated entries instead of skipping them. drizzle's table cannot say that a
//! migration started and did not finish, so dbdeploy notes that in `_dbdeploy_unfinished`.

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::folder::{check_folder, list_files, read_script};
use super::resolve::{Action, Checked, Rules};
use super::{Handler, HandlerError, ResolveResult, unfinished};
use crate::checksum::sha256_hex;
use crate::engine::{ColKind, Dialect, LockKey, LockScope, Stmt, Value};
use crate::migration::{AppliedRecord, Migration, MigrationSet, RecordState, Records, Tx};

/// The drizzle-kit format.
#[derive(Debug, Clone, Copy)]
pub struct Drizzle;

const TABLE: &str = "__drizzle_migrations";
const SCHEMA: &str = "drizzle";
const JOURNAL: &str = "meta/_journal.json";
const TOOL: &str = "drizzle";

/// Where drizzle splits a script into the statements it sends one by one.
const BREAKPOINT: &str = "--> statement-breakpoint";
/// What a breakpoint becomes in the script dbdeploy runs: a statement end, and a comment that
/// every dialect reads as one (MySQL needs a space after `--`, so `-->` is not a comment there).
const BREAK: &str = ";/* --> statement-breakpoint */";

#[derive(serde::Deserialize)]
struct Journal {
    dialect: Option<String>,
    entries: Vec<Entry>,
}

#[derive(serde::Deserialize)]
struct Entry {
    when: i64,
    tag: String,
}

/// The hash drizzle records: SHA-256 of the file as read, byte for byte (a BOM and CRLF line
/// endings included), in lowercase hex. SHA-256 because drizzle-orm's `readMigrationFiles`
/// hashes with it and writes it to `hash`; that is what the released drizzle-orm 0.x writes
/// (checked against drizzle-orm 0.45.4 by `tests/compat`). Unreleased drizzle-orm sources
/// normalise CRLF to LF first, which [`Handler::checksum_matches`] accepts too.
#[must_use]
pub fn hash(text: &str) -> String {
    sha256_hex(text.as_bytes())
}

/// The name history rows get before [`Handler::reconcile`] matches them to journal entries.
fn row_name(created_at: &str) -> String {
    format!("created_at={created_at}")
}

fn qualified(d: Dialect) -> String {
    match d {
        Dialect::Postgres => format!("{}.{}", d.quote_ident(SCHEMA), d.quote_ident(TABLE)),
        _ => d.quote_ident(TABLE),
    }
}

/// `created_at` as an integer string whatever the column stored (SQLite `numeric` may hand a
/// whole number back as `1700000000000.0`).
fn normalize_when(raw: &str) -> String {
    let raw = raw.trim();
    match raw.parse::<f64>() {
        #[allow(clippy::cast_possible_truncation, reason = "checked to be whole")]
        Ok(f) if f.fract() == 0.0 && !raw.bytes().all(|b| b.is_ascii_digit()) => {
            format!("{}", f as i64)
        }
        _ => raw.to_owned(),
    }
}

fn check_dialect(journal: &Journal, path: &Path, dialect: Dialect) -> Result<(), HandlerError> {
    let Some(declared) = journal.dialect.as_deref() else {
        return Ok(());
    };
    let matches = match declared {
        "postgresql" | "pg" => dialect == Dialect::Postgres,
        "mysql" | "singlestore" => dialect == Dialect::MySql,
        "sqlite" | "turso" => dialect == Dialect::Sqlite,
        _ => true,
    };
    if matches {
        return Ok(());
    }
    Err(HandlerError::file(
        path,
        format!(
            "says dialect \"{declared}\" but the target database is {}; these migrations were generated for another database (point the environment at a {declared} database, or regenerate the migrations)",
            dialect.name()
        ),
    ))
}

fn parse_row_id(row_id: &str) -> (i64, &str, &str) {
    let mut it = row_id.splitn(3, ' ');
    let when = it.next().and_then(|w| w.parse().ok()).unwrap_or(0);
    let hash = it.next().unwrap_or("");
    let tag = it.next().unwrap_or("");
    (when, hash, tag)
}

impl Drizzle {
    fn insert_row(d: Dialect, hash: &str, when: i64) -> Stmt {
        Stmt::new(
            format!(
                "INSERT INTO {} ({}, {}) VALUES ({}, {})",
                qualified(d),
                d.quote_ident("hash"),
                d.quote_ident("created_at"),
                d.placeholder(1),
                d.placeholder(2)
            ),
            vec![Value::Text(hash.to_owned()), Value::Int(when)],
        )
    }

    fn when(m: &Migration) -> i64 {
        m.tool_data
            .as_deref()
            .and_then(|w| w.parse().ok())
            .unwrap_or(0)
    }
}

impl Handler for Drizzle {
    fn name(&self) -> &'static str {
        "drizzle"
    }

    fn default_dir(&self) -> &'static str {
        "drizzle"
    }

    fn load(&self, dir: &Path, dialect: Dialect) -> Result<MigrationSet, HandlerError> {
        check_folder(dir)?;
        let journal_path = dir.join(JOURNAL);
        if !journal_path.is_file() {
            return Err(HandlerError::file(
                journal_path,
                "is missing: drizzle-kit writes it next to the migrations (is `migrations_dir` the `out` folder of drizzle.config?)",
            ));
        }
        let text = read_script(&journal_path)?;
        let journal: Journal = serde_json::from_str(&text).map_err(|e| {
            HandlerError::file_at(
                &journal_path,
                e.line(),
                format!("is not a drizzle-kit journal: {e}"),
            )
        })?;
        check_dialect(&journal, &journal_path, dialect)?;

        let mut migrations: Vec<Migration> = Vec::with_capacity(journal.entries.len());
        for entry in &journal.entries {
            if let Some(other) = migrations.iter().find(|m| m.name == entry.tag) {
                return Err(HandlerError::file(
                    &journal_path,
                    format!("lists `{}` twice ({})", entry.tag, other.path.display()),
                ));
            }
            if let Some(other) = migrations.iter().find(|m| Self::when(m) == entry.when) {
                return Err(HandlerError::file(
                    &journal_path,
                    format!(
                        "gives `{}` and `{}` the same `when` ({}); drizzle tells migrations apart by it, so give one a new `when`",
                        other.name, entry.tag, entry.when
                    ),
                ));
            }
            let path = dir.join(format!("{}.sql", entry.tag));
            if !path.is_file() {
                return Err(HandlerError::file(
                    path,
                    format!(
                        "is missing: {JOURNAL} lists `{}`; restore the file or remove the entry with `drizzle-kit drop`",
                        entry.tag
                    ),
                ));
            }
            let raw = read_script(&path)?;
            let body = raw.strip_prefix('\u{feff}').unwrap_or(&raw);
            let sql = body.replace(BREAKPOINT, BREAK);
            let transaction = Tx::from_script(dialect, super::dbdeploy_opt_out(&sql));
            migrations.push(
                Migration::new(entry.tag.clone(), path, hash(&raw), transaction, sql)
                    .with_tool_data(entry.when.to_string()),
            );
        }

        let mut warnings = Vec::new();
        for (file, _) in list_files(dir)? {
            if let Some(tag) = file.strip_suffix(".sql")
                && !migrations.iter().any(|m| m.name == tag)
            {
                warnings.push(format!(
                    "{file} is not in {JOURNAL}, so neither drizzle nor dbdeploy applies it (create custom migrations with `drizzle-kit generate --custom`)"
                ));
            }
        }
        Ok(MigrationSet::new(dir, migrations, warnings))
    }

    fn table(&self) -> &'static str {
        TABLE
    }

    fn table_schema(&self, dialect: Dialect) -> Option<&'static str> {
        (dialect == Dialect::Postgres).then_some(SCHEMA)
    }

    fn companion(&self, dialect: Dialect) -> Option<(&'static str, Stmt)> {
        Some((unfinished::TABLE, unfinished::select(dialect, TOOL)))
    }

    fn lock_keys(&self, _scope: &LockScope) -> Vec<LockKey> {
        // drizzle takes no lock; dbdeploy deploys still exclude each other.
        vec![super::dbdeploy_lock()]
    }

    fn create_table(&self, dialect: Dialect) -> Vec<Stmt> {
        match dialect {
            Dialect::Postgres => vec![
                Stmt::raw(r#"CREATE SCHEMA IF NOT EXISTS "drizzle""#),
                Stmt::raw(
                    r#"CREATE TABLE IF NOT EXISTS "drizzle"."__drizzle_migrations" (
				id SERIAL PRIMARY KEY,
				hash text NOT NULL,
				created_at bigint
			)"#,
                ),
            ],
            Dialect::MySql => vec![Stmt::raw(
                "create table if not exists `__drizzle_migrations` (
				id serial primary key,
				hash text not null,
				created_at bigint
			)",
            )],
            Dialect::Sqlite => vec![Stmt::raw(
                r#"CREATE TABLE IF NOT EXISTS "__drizzle_migrations" (
				id SERIAL PRIMARY KEY,
				hash text NOT NULL,
				created_at numeric
			)"#,
            )],
        }
    }

    fn select_history(&self, dialect: Dialect) -> (Stmt, Vec<ColKind>) {
        let text = if dialect == Dialect::MySql {
            "char"
        } else {
            "text"
        };
        let sql = format!(
            "SELECT CAST('applied' AS {text}), hash, CAST(created_at AS {text}), \
             CAST(NULL AS {text}), CAST(NULL AS {text}) FROM {} ORDER BY created_at, id",
            qualified(dialect)
        );
        (Stmt::raw(sql), vec![ColKind::Text; 5])
    }

    fn parse_history(&self, rows: Vec<Vec<Value>>) -> Result<Vec<AppliedRecord>, HandlerError> {
        rows.into_iter()
            .map(|row| {
                let text = |i: usize| row.get(i).and_then(Value::as_text).map(str::to_owned);
                let unfinished = text(0).as_deref() == Some("unfinished");
                if unfinished {
                    let name = text(2).ok_or_else(|| HandlerError::History {
                        table: unfinished::TABLE,
                        reason: "a row has no name".into(),
                    })?;
                    return Ok(AppliedRecord {
                        name,
                        checksum: text(1),
                        state: RecordState::Failed,
                        started_at: text(4),
                        finished_at: None,
                        logs: text(3).or_else(|| {
                            Some("started outside a transaction and never finished".into())
                        }),
                    });
                }
                let created_at = text(2).map_or_else(|| "NULL".to_owned(), |c| normalize_when(&c));
                Ok(AppliedRecord {
                    name: row_name(&created_at),
                    checksum: text(1),
                    state: RecordState::Applied,
                    started_at: None,
                    finished_at: None,
                    logs: None,
                })
            })
            .collect()
    }

    fn reconcile<'r>(&self, set: &MigrationSet, records: Records<'r>) -> Records<'r> {
        // One map, not a search of the folder per row: quadratic at thousands of migrations.
        // The first migration with a given `when` wins, as the search did.
        let mut by_row: std::collections::HashMap<String, &str> = std::collections::HashMap::new();
        for m in &set.migrations {
            if let Some(when) = m.tool_data.as_deref() {
                by_row.entry(row_name(when)).or_insert(m.name.as_str());
            }
        }
        records
            .into_owned()
            .into_iter()
            .map(|mut r| {
                if let Some(name) = by_row.get(&r.name) {
                    (*name).clone_into(&mut r.name);
                }
                r
            })
            .collect()
    }

    fn checksum_matches(&self, migration: &Migration, recorded: &str) -> bool {
        if recorded.eq_ignore_ascii_case(&migration.checksum) {
            return true;
        }
        // Rebuild the file from the script dbdeploy runs, and also accept the hash of its
        // LF-normalised text (what drizzle-orm sources that normalise line endings write).
        let body = migration.sql.replace(BREAK, BREAKPOINT);
        let lf = body.replace("\r\n", "\n");
        [
            format!("\u{feff}{body}"),
            lf.clone(),
            format!("\u{feff}{lf}"),
            body,
        ]
        .iter()
        .any(|raw| recorded.eq_ignore_ascii_case(&sha256_hex(raw.as_bytes())))
    }

    fn sorts_before(&self, a: &Migration, b: &Migration) -> bool {
        Self::when(a) < Self::when(b)
    }

    fn drop_tracking(&self, dialect: Dialect) -> Vec<Stmt> {
        match dialect {
            // The reset empties the connection's schema; drizzle's has to go too, or the
            // emptied database would still look migrated.
            Dialect::Postgres => vec![Stmt::raw(r#"DROP SCHEMA IF EXISTS "drizzle" CASCADE"#)],
            _ => Vec::new(),
        }
    }

    fn record_started(
        &self,
        dialect: Dialect,
        migration: &Migration,
        _now: DateTime<Utc>,
    ) -> (String, Vec<Stmt>) {
        let row_id = format!(
            "{} {} {}",
            Self::when(migration),
            migration.checksum,
            migration.name
        );
        let stmts = unfinished::started(dialect, TOOL, &migration.name, &migration.checksum);
        (row_id, stmts)
    }

    fn record_finished(
        &self,
        dialect: Dialect,
        row_id: &str,
        _now: DateTime<Utc>,
        _elapsed: Duration,
    ) -> Vec<Stmt> {
        let (when, hash, tag) = parse_row_id(row_id);
        // drizzle's row first: should the note's removal not happen, the migration shows as
        // applied and failed, which `resolve --applied` settles, never as not applied.
        vec![
            Self::insert_row(dialect, hash, when),
            unfinished::finished(dialect, TOOL, tag),
        ]
    }

    fn record_failed(&self, dialect: Dialect, row_id: &str, logs: &str) -> Vec<Stmt> {
        let (_, _, tag) = parse_row_id(row_id);
        vec![unfinished::failed(dialect, TOOL, tag, logs)]
    }

    fn resolve_rules(&self) -> Rules {
        Rules {
            place: JOURNAL,
            naming: "check the name (the journal's `tag`)",
            // drizzle's row is written before the note is removed, so an applied migration
            // can still be noted as unfinished: that one may be resolved.
            already_applied: |_, recorded| recorded.applied.is_some() && !recorded.failed,
            ..Rules::DEFAULT
        }
    }

    fn resolve_rows(&self, dialect: Dialect, to: &Checked<'_>) -> ResolveResult {
        let mut stmts = Vec::new();
        if let Action::Apply(local) = to.action
            && to.recorded.applied.is_none()
        {
            stmts.push(Self::insert_row(
                dialect,
                &local.checksum,
                Self::when(local),
            ));
        }
        if to.recorded.failed {
            stmts.push(unfinished::finished(dialect, TOOL, to.name));
        }
        Ok(stmts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::migration::TxMode;

    fn set(entries: &[(&str, i64)]) -> MigrationSet {
        MigrationSet {
            dir: "drizzle".into(),
            migrations: entries
                .iter()
                .map(|(tag, when)| {
                    let sql = format!("SELECT 1{BREAK}\nSELECT 2;");
                    let checksum = hash(&format!("SELECT 1{BREAKPOINT}\nSELECT 2;"));
                    Migration::new(*tag, format!("{tag}.sql"), checksum, TxMode::Wrapped, sql)
                        .with_tool_data(when.to_string())
                })
                .collect(),
            warnings: Vec::new(),
        }
    }

    fn applied(created_at: &str, hash: &str) -> Vec<Value> {
        vec![
            Value::Text("applied".into()),
            Value::Text(hash.into()),
            Value::Text(created_at.into()),
            Value::Null,
            Value::Null,
        ]
    }

    // Expected values from `printf '...' | sha256sum`.
    #[test]
    fn hash_is_sha256_of_the_file_as_is() {
        let lf = "CREATE TABLE \"users\" (\n\t\"id\" serial PRIMARY KEY\n);\n";
        assert_eq!(
            hash(lf),
            "31423a0bc1efa0f706cf17c9b29aa231cd273ecb1cf0c0b5671609d056cfc5f0"
        );
        // drizzle-orm 0.45.4 hashes CRLF files with their CRs (tests/compat).
        assert_eq!(
            hash(&lf.replace('\n', "\r\n")),
            "295decb9da4a5b0ed1abd4a60dfc83520e1152066f8c9d55eca85a04b1641ebd"
        );
    }

    #[test]
    fn rows_are_matched_to_journal_entries_by_created_at() {
        let s = set(&[
            ("0000_init", 1_700_000_000_000),
            ("0001_posts", 1_700_000_100_000),
        ]);
        let records = Drizzle
            .parse_history(vec![
                applied("1700000000000", &s.migrations[0].checksum),
                applied("1699999999999.0", "x"),
            ])
            .unwrap();
        let records = Drizzle.reconcile(&s, records.into());
        let names: Vec<_> = records.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["0000_init", "created_at=1699999999999"]);
    }

    #[test]
    fn the_lf_normalised_hash_of_a_crlf_file_matches_too() {
        let s = set(&[("0000_init", 1)]);
        let mut m = s.migrations[0].clone();
        m.sql = m.sql.replace('\n', "\r\n");
        let raw_crlf = format!("SELECT 1{BREAKPOINT}\r\nSELECT 2;");
        m.checksum = hash(&raw_crlf);
        assert!(Drizzle.checksum_matches(&m, &sha256_hex(raw_crlf.as_bytes())));
        let lf = raw_crlf.replace("\r\n", "\n");
        assert!(Drizzle.checksum_matches(&m, &sha256_hex(lf.as_bytes())));
        assert!(!Drizzle.checksum_matches(&m, &hash("SELECT 3;")));
    }

    #[test]
    fn breakpoints_become_statement_ends_every_dialect_can_run() {
        let script = format!("CREATE TABLE a (id INT)\n{BREAKPOINT}\nCREATE TABLE b (id INT);");
        let sql = script.replace(BREAKPOINT, BREAK);
        for d in [Dialect::Postgres, Dialect::MySql, Dialect::Sqlite] {
            let stmts: Vec<_> = crate::sql::split::split(&sql, d)
                .iter()
                .map(|s| s.text)
                .collect();
            assert_eq!(
                stmts,
                ["CREATE TABLE a (id INT)", "CREATE TABLE b (id INT)"],
                "{d:?}"
            );
        }
    }

    #[test]
    fn back_dated_entries_sort_before_newer_ones() {
        let s = set(&[("0000_a", 300), ("0001_b", 100)]);
        assert!(Drizzle.sorts_before(&s.migrations[1], &s.migrations[0]));
    }
}
