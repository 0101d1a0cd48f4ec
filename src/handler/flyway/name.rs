//! Flyway's file names and versions: what `ResourceNameParser` makes of a name with the
//! default prefixes and separator, and the order `MigrationVersion` gives versions.

use std::cmp::Ordering;

use crate::migration::Migration;

/// What a file name says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Name {
    /// `V<version>__<description>.sql`.
    Versioned {
        /// As Flyway records it: the text with `_` turned into `.`.
        version: String,
        /// `_` turned into spaces.
        description: String,
    },
    /// `B<version>__<description>.sql`: a baseline migration, the schema as of its version in
    /// one script. Flyway runs the latest one on an empty database instead of the versioned
    /// migrations up to its version, and ignores them all once the database has history.
    Baseline {
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

impl Name {
    /// The version of a versioned or baseline migration.
    pub(super) fn version(&self) -> Option<&str> {
        match self {
            Name::Versioned { version, .. } | Name::Baseline { version, .. } => Some(version),
            Name::Repeatable { .. } | Name::Ignored(_) => None,
        }
    }
}

/// What dbdeploy calls a baseline migration: `B` and its version, so that it is told from the
/// versioned migration of the same version (Flyway keys them by version and type).
pub(super) fn baseline_name(version: &str) -> String {
    format!("B{version}")
}

/// The version of a migration named by [`baseline_name`].
pub(super) fn baseline_version(name: &str) -> Option<&str> {
    name.strip_prefix('B').filter(|v| is_version(v))
}

/// Whether `text` is a version as Flyway records it: digits separated by `.`.
pub(super) fn is_version(text: &str) -> bool {
    !text.is_empty()
        && text
            .split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// The version and description after a `V` or `B` prefix.
fn versioned(rest: &str, kind: &str, example: &str) -> Result<(String, String), String> {
    let Some((version, description)) = rest.split_once("__") else {
        return Err(format!(
            "looks like a {kind} migration but has no `__` between version and description; {example}"
        ));
    };
    let version = version.replace('_', ".");
    if !is_version(&version) {
        return Err(format!(
            "has version `{version}`, which is not digits separated by `.` or `_`; {example}"
        ));
    }
    Ok((version, description.replace('_', " ")))
}

/// Parses a file name the way `ResourceNameParser` does with the default prefixes `V`, `B`,
/// `R` and separator `__`. A name that starts like a migration but is malformed is an error
/// (Flyway would skip it silently unless `validateMigrationNaming` is on).
pub(super) fn parse_name(file: &str) -> Result<Name, String> {
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
    let example = "name it V<version>__<description>.sql (e.g. V1_2__add_users.sql), \
         B<version>__<description>.sql (a baseline migration) or R__<description>.sql";
    if let Some(rest) = stem.strip_prefix('V') {
        let (version, description) = versioned(rest, "versioned", example)?;
        return Ok(Name::Versioned {
            version,
            description,
        });
    }
    // `B` and a version; other names that start with `B` (`Backfill.sql`) are not Flyway's.
    if let Some(rest) = stem
        .strip_prefix('B')
        .filter(|r| r.starts_with(|c: char| c.is_ascii_digit() || c == '_'))
    {
        let (version, description) = versioned(rest, "baseline", example)?;
        return Ok(Name::Baseline {
            version,
            description,
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
pub(super) fn compare_versions(a: &str, b: &str) -> Ordering {
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

/// The file name of a loaded migration.
pub(super) fn file_name(m: &Migration) -> String {
    m.path
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
}

/// The parsed name of a loaded migration (its file name was valid when it was loaded).
pub(super) fn name_of(m: &Migration) -> Name {
    parse_name(&file_name(m)).unwrap_or(Name::Ignored("unparsable"))
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
        assert_eq!(
            parse_name("B2_1__baseline_schema.sql").unwrap(),
            Name::Baseline {
                version: "2.1".into(),
                description: "baseline schema".into()
            }
        );
        assert!(matches!(parse_name("Backfill.sql"), Ok(Name::Ignored(_))));
        assert_eq!(baseline_name("2.1"), "B2.1");
        assert_eq!(baseline_version("B2.1"), Some("2.1"));
        assert_eq!(baseline_version("Backfill"), None);
        assert_eq!(baseline_version("2.1"), None);
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
            "B1_add.sql",
            "B1.x__a.sql",
            "B__a.sql",
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
}
