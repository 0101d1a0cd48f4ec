//! Reading a Flyway folder: every script below it, named, checksummed the way Flyway does
//! and ordered versions first, then repeatable migrations.

use std::cmp::Ordering;
use std::path::{Path, PathBuf};

use super::name::{Name, baseline_name, compare_versions, parse_name};
use crate::engine::Dialect;
use crate::handler::HandlerError;
use crate::handler::folder::{check_folder, entries, read_script};
use crate::migration::{Migration, MigrationSet, Tx};

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
    Ok(crate::handler::dbdeploy_opt_out(sql))
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

/// Reads, validates and orders the migrations of `dir` for an engine of `dialect`.
pub(super) fn load(dir: &Path, dialect: Dialect) -> Result<MigrationSet, HandlerError> {
    check_folder(dir)?;
    let mut files = Vec::new();
    scan(dir, "", &mut files)?;
    let mut warnings = Vec::new();
    // (version, whether a baseline migration, the migration).
    let mut versioned: Vec<(String, bool, Migration)> = Vec::new();
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
            Name::Baseline { version, .. } => baseline_name(version),
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
        let transaction = Tx::from_script(dialect, opt_out(&path, &sql)?);
        let migration = Migration::new(name, path, checksum(&text).to_string(), transaction, sql)
            .with_tool_data(rel);
        match parsed {
            Name::Versioned { version, .. } => versioned.push((version, false, migration)),
            Name::Baseline { version, .. } => versioned.push((version, true, migration)),
            _ => repeatable.push(migration),
        }
    }
    // By version, a baseline migration after the versioned one of its version, as
    // `MigrationInfoImpl.compareTo` orders them; Flyway keys migrations by version and type.
    versioned.sort_by(|(a, ab, _), (b, bb, _)| compare_versions(a, b).then(ab.cmp(bb)));
    for pair in versioned.windows(2) {
        let ((va, ka, a), (vb, kb, b)) = (&pair[0], &pair[1]);
        if compare_versions(va, vb) == Ordering::Equal && ka == kb {
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
        .find(|r| versioned.iter().any(|(_, _, v)| v.name == r.name))
    {
        return Err(HandlerError::file(
            &r.path,
            format!(
                "has the description `{}`, which is also a version of this folder; dbdeploy names migrations by version or description, so rename it",
                r.name
            ),
        ));
    }
    let mut migrations: Vec<Migration> = versioned.into_iter().map(|(_, _, m)| m).collect();
    // Flyway applies pending repeatable migrations after every versioned one.
    migrations.extend(repeatable);
    Ok(MigrationSet::new(dir, migrations, warnings))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handler::Handler;
    use crate::handler::flyway::Flyway;

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

        std::fs::write(dir.path().join("B1_2__base.sql"), "SELECT 1;").unwrap();
        let set = Flyway.load(dir.path(), Dialect::Postgres).unwrap();
        let got: Vec<_> = set.migrations.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(got, ["1.1", "1.2", "B1.2", "1.10", "a view"]);
        // The same version twice (of the same kind) is an error.
        for again in ["B1.2.0__again.sql", "V1.1.0__again.sql"] {
            std::fs::write(dir.path().join(again), "SELECT 1;").unwrap();
            let err = Flyway
                .load(dir.path(), Dialect::Postgres)
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("more than one migration with version"),
                "{err}"
            );
            std::fs::remove_file(dir.path().join(again)).unwrap();
        }
    }
}
