//! MySQL/MariaDB rules: online DDL by server version.

use super::*;

/// MariaDB 10.11: `users` 200,000 rows, `orders` 2,000,000.
fn mariadb(version: &str) -> Facts {
    Facts {
        server: Server::parse(MySql, version),
        tables: Some(BTreeMap::from([
            (
                "users".to_owned(),
                table(
                    Rows::Estimated(200_000),
                    Some(40 << 20),
                    &[
                        ("name", "varchar(100)", false),
                        ("status", "varchar(20)", false),
                    ],
                ),
            ),
            (
                "orders".to_owned(),
                table(
                    Rows::Estimated(2_000_000),
                    Some(400 << 20),
                    &[
                        ("note", "varchar(50)", false),
                        ("total", "decimal(10,2)", true),
                    ],
                ),
            ),
        ])),
    }
}

#[test]
fn mysql_online_ddl_by_version() {
    let f = only(
        "ALTER TABLE orders ADD COLUMN c int;",
        MySql,
        &mariadb("10.11.6-MariaDB"),
    );
    assert_eq!((f.code, f.level), ("adding-column", Level::Low));
    assert_eq!(f.lock.as_deref(), Some("ALGORITHM=INSTANT"));
    let f = only(
        "ALTER TABLE orders ADD COLUMN c int;",
        MySql,
        &mariadb("10.2.44-MariaDB"),
    );
    assert_eq!(f.lock.as_deref(), Some("ALGORITHM=INPLACE, LOCK=NONE"));
    assert!(f.rewrites);
    let f = only(
        "ALTER TABLE orders ADD COLUMN c int FIRST;",
        MySql,
        &mariadb("8.0.20"),
    );
    assert!(
        f.rewrites,
        "positioned columns are instant from 8.0.29 only"
    );
    let f = only(
        "ALTER TABLE orders ADD COLUMN c int FIRST;",
        MySql,
        &mariadb("8.0.36"),
    );
    assert!(!f.rewrites);
    let r = lint(
        "ALTER TABLE orders ADD COLUMN c int, ALGORITHM=INSTANT;",
        MySql,
        &mariadb("10.2.44-MariaDB"),
    );
    assert_eq!(codes(&r)[0], ("mysql-algorithm-unsupported", Level::High));
    let f = only(
        "ALTER TABLE orders MODIFY note varchar(60);",
        MySql,
        &mariadb("10.11.6-MariaDB"),
    );
    assert_eq!((f.code, f.level), ("changing-column-type", Level::Low));
    let f = only(
        "ALTER TABLE orders MODIFY note varchar(500);",
        MySql,
        &mariadb("10.11.6-MariaDB"),
    );
    assert_eq!(
        (f.code, f.level, f.blocks),
        ("changing-column-type", Level::High, Blocks::Writes)
    );
    assert_eq!(f.lock.as_deref(), Some("ALGORITHM=COPY, LOCK=SHARED"));
    let f = only(
        "ALTER TABLE orders ADD CONSTRAINT fk FOREIGN KEY (user_id) REFERENCES users (id);",
        MySql,
        &mariadb("10.11.6-MariaDB"),
    );
    assert_eq!(
        (f.code, f.level),
        ("adding-foreign-key-constraint", Level::High)
    );
    let r = lint(
        "SET foreign_key_checks = 0;\nALTER TABLE orders ADD CONSTRAINT fk FOREIGN KEY (user_id) REFERENCES users (id);",
        MySql,
        &mariadb("10.11.6-MariaDB"),
    );
    assert_eq!(codes(&r), [("adding-foreign-key-constraint", Level::Low)]);
    let f = only(
        "ALTER TABLE users ADD INDEX idx_name (name);",
        MySql,
        &mariadb("10.11.6-MariaDB"),
    );
    assert_eq!(
        (f.code, f.level, f.blocks),
        ("create-index", Level::Low, Blocks::Nothing)
    );
    let f = only(
        "ALTER TABLE orders DROP PRIMARY KEY;",
        MySql,
        &mariadb("10.11.6-MariaDB"),
    );
    assert_eq!((f.code, f.level), ("dropping-primary-key", Level::High));
    let f = only(
        "RENAME TABLE orders TO purchases;",
        MySql,
        &mariadb("10.11.6-MariaDB"),
    );
    assert_eq!(f.code, "renaming-table");
    let f = only("OPTIMIZE TABLE orders;", MySql, &mariadb("10.11.6-MariaDB"));
    assert_eq!((f.code, f.parsed), ("table-rewrite", false));
}

#[test]
fn drizzle_mysql_breakpoints_do_not_hide_statements() {
    let sql = "CREATE TABLE `t` (`a` int);\n--> statement-breakpoint\nDROP TABLE `users`;\n";
    let r = lint(sql, MySql, &mariadb("10.11.6-MariaDB"));
    assert_eq!(
        codes(&r),
        [("create-table", Level::Low), ("drop-table", Level::High)]
    );
    assert_eq!(r.findings[1].line, 3);
    assert!(r.statements.iter().all(|s| s.parsed));
}
