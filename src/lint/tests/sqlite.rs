//! SQLite rules: rebuilds and what its ALTER TABLE refuses.

use super::*;

/// SQLite: `Post` 5,000 rows with id, title, body; `User` 200 rows with id, name, bio.
fn sqlite() -> Facts {
    Facts {
        server: Server::parse(Sqlite, "3.45.1"),
        tables: Some(BTreeMap::from([
            (
                "Post".to_owned(),
                table(
                    Rows::Exact(5_000),
                    None,
                    &[
                        ("id", "INTEGER", true),
                        ("title", "TEXT", true),
                        ("body", "TEXT", false),
                    ],
                ),
            ),
            (
                "User".to_owned(),
                table(
                    Rows::Exact(200),
                    None,
                    &[
                        ("id", "INTEGER", true),
                        ("name", "TEXT", false),
                        ("bio", "TEXT", false),
                    ],
                ),
            ),
        ])),
    }
}

#[test]
fn sqlite_rebuilds_with_any_naming_are_not_data_loss() {
    let prisma = "PRAGMA foreign_keys=OFF;\nCREATE TABLE \"new_Post\" (\"id\" INTEGER NOT NULL PRIMARY KEY, \"title\" TEXT NOT NULL, \"body\" TEXT);\nINSERT INTO \"new_Post\" (\"id\", \"title\", \"body\") SELECT \"id\", \"title\", \"body\" FROM \"Post\";\nDROP TABLE \"Post\";\nALTER TABLE \"new_Post\" RENAME TO \"Post\";\nPRAGMA foreign_keys=ON;\n";
    let r = lint(prisma, Sqlite, &sqlite());
    assert_eq!(codes(&r), [("table-rebuild", Level::Low)]);
    assert!(r.findings[0].rewrites);
    let renamed_first = "ALTER TABLE Post RENAME TO _Post_old;\nCREATE TABLE Post (id INTEGER PRIMARY KEY, title TEXT NOT NULL, body TEXT);\nINSERT INTO Post SELECT * FROM _Post_old;\nDROP TABLE _Post_old;\n";
    let r = lint(renamed_first, Sqlite, &sqlite());
    assert_eq!(codes(&r), [("table-rebuild", Level::Low)]);
    assert_eq!(r.findings[0].table.as_deref(), Some("Post"));
    let drizzle = "CREATE TABLE `__new_User` (`id` integer PRIMARY KEY, `name` text);\nINSERT INTO `__new_User`(\"id\", \"name\") SELECT \"id\", \"name\" FROM `User`;\nDROP TABLE `User`;\nALTER TABLE `__new_User` RENAME TO `User`;\n";
    let r = lint(drizzle, Sqlite, &sqlite());
    assert_eq!(
        codes(&r),
        [("table-rebuild", Level::Low), ("drop-column", Level::High)],
        "the rebuild does not copy bio"
    );
    assert!(r.findings[1].message.contains("bio"));
    // Without the copy it is a plain drop.
    let r = lint("DROP TABLE \"Post\";", Sqlite, &sqlite());
    assert_eq!(codes(&r), [("drop-table", Level::High)]);
    // Offline, a rebuild is still a rebuild.
    let r = lint(prisma, Sqlite, &Facts::default());
    assert_eq!(codes(&r), [("table-rebuild", Level::Low)]);
}

#[test]
fn sqlite_alter_table_limits() {
    let f = only(
        "ALTER TABLE \"User\" ADD COLUMN \"age\" INTEGER NOT NULL;",
        Sqlite,
        &sqlite(),
    );
    assert_eq!((f.code, f.level), ("adding-required-field", Level::High));
    assert!(f.message.contains("SQLite refuses"));
    let f = only(
        "ALTER TABLE \"User\" ADD COLUMN \"at\" DATETIME DEFAULT CURRENT_TIMESTAMP;",
        Sqlite,
        &sqlite(),
    );
    assert_eq!(f.level, Level::High);
    let f = only(
        "ALTER TABLE \"User\" ADD COLUMN \"age\" INTEGER NOT NULL DEFAULT 0;",
        Sqlite,
        &sqlite(),
    );
    assert_eq!((f.code, f.level), ("adding-column", Level::Low));
    let f = only(
        "ALTER TABLE \"User\" DROP COLUMN \"bio\";",
        Sqlite,
        &sqlite(),
    );
    assert_eq!((f.code, f.rewrites), ("drop-column", true));
    let f = only(
        "ALTER TABLE \"User\" RENAME COLUMN \"name\" TO \"fullName\";",
        Sqlite,
        &sqlite(),
    );
    assert_eq!(f.code, "renaming-column");
}
