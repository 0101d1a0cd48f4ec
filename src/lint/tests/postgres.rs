//! PostgreSQL rules: required fields, rewrites, indexes, type changes, constraints, SET NOT
//! NULL, renames, drops and data changes.

use super::*;

#[test]
fn adding_a_required_field() {
    let f = only(
        "ALTER TABLE users ADD COLUMN tenant bigint NOT NULL;",
        Postgres,
        &pg(),
    );
    assert_eq!((f.code, f.level), ("adding-required-field", Level::High));
    assert!(f.message.contains("fails"), "{}", f.message);
    assert!(!f.suggestion.is_empty());
    let offline = only(
        "ALTER TABLE users ADD COLUMN tenant bigint NOT NULL;",
        Postgres,
        &Facts::default(),
    );
    assert_eq!(offline.level, Level::Medium);
    assert!(
        offline.message.contains("size unknown"),
        "{}",
        offline.message
    );
    let with_default = only(
        "ALTER TABLE users ADD COLUMN tenant bigint NOT NULL DEFAULT 0;",
        Postgres,
        &pg(),
    );
    assert_eq!(
        (with_default.code, with_default.level),
        ("adding-column", Level::Low)
    );
    assert!(!with_default.rewrites);
}

#[test]
fn volatile_defaults_and_serial_columns_rewrite() {
    let f = only(
        "ALTER TABLE orders ADD COLUMN public_id uuid NOT NULL DEFAULT gen_random_uuid();",
        Postgres,
        &pg(),
    );
    assert_eq!(
        (f.code, f.level),
        ("adding-field-with-default", Level::High)
    );
    assert!(f.rewrites && f.estimated_seconds.unwrap() > 1.0);
    assert_eq!(f.lock.as_deref(), Some("ACCESS EXCLUSIVE"));
    assert_eq!(f.blocks, Blocks::ReadsAndWrites);
    let f = only(
        "ALTER TABLE orders ADD COLUMN seq bigserial;",
        Postgres,
        &pg(),
    );
    assert_eq!((f.code, f.level), ("adding-serial-field", Level::High));
    let f = only(
        "ALTER TABLE countries ADD COLUMN id2 bigint GENERATED ALWAYS AS IDENTITY;",
        Postgres,
        &pg(),
    );
    assert_eq!((f.code, f.level), ("adding-serial-field", Level::Low));
    let f = only(
        "ALTER TABLE orders ADD COLUMN at timestamptz DEFAULT now();",
        Postgres,
        &pg(),
    );
    assert_eq!(f.code, "adding-column");
    // Before PostgreSQL 11 every default rewrites.
    let mut old = pg();
    old.server = Server::parse(Postgres, "10.23");
    let f = only(
        "ALTER TABLE orders ADD COLUMN c int DEFAULT 0;",
        Postgres,
        &old,
    );
    assert_eq!(f.code, "adding-field-with-default");
}

#[test]
fn index_rules_by_size_and_concurrency() {
    let f = only(
        "CREATE INDEX orders_note ON orders (note);",
        Postgres,
        &pg(),
    );
    assert_eq!(
        (f.code, f.level, f.blocks),
        ("create-index", Level::Medium, Blocks::Writes)
    );
    assert!(f.suggestion.contains("CONCURRENTLY"));
    let f = only("CREATE INDEX c_name ON countries (name);", Postgres, &pg());
    assert_eq!(f.level, Level::Low);
    let f = only(
        "CREATE INDEX CONCURRENTLY o_note ON orders (note);",
        Postgres,
        &pg(),
    );
    assert_eq!((f.level, f.blocks), (Level::Low, Blocks::Nothing));
    let f = only("DROP INDEX orders_user_id_idx;", Postgres, &pg());
    assert_eq!((f.code, f.level), ("drop-index", Level::High));
    assert_eq!(f.table.as_deref(), Some("orders"));
    assert_eq!(f.lock.as_deref(), Some("ACCESS EXCLUSIVE"));
    // The parser does not read DROP INDEX CONCURRENTLY: keyword fallback, marked.
    let f = only(
        "DROP INDEX CONCURRENTLY IF EXISTS orders_user_id_idx;",
        Postgres,
        &pg(),
    );
    assert_eq!(
        (f.code, f.parsed, f.blocks),
        ("drop-index", false, Blocks::Nothing)
    );
    // An index on a table created by the same script is no risk.
    let r = lint(
        "CREATE TABLE t (a int);\nCREATE INDEX t_a ON t (a);\nDROP INDEX t_a;",
        Postgres,
        &pg(),
    );
    assert_eq!(codes(&r), [("create-table", Level::Low)]);
    // CREATE INDEX IF NOT EXISTS of an index the table has is a no-op.
    let r = lint(
        "CREATE INDEX IF NOT EXISTS orders_user_id_idx ON orders (user_id);",
        Postgres,
        &pg(),
    );
    assert!(r.findings.is_empty());
}

#[test]
fn never_analysed_table_is_sized_from_its_bytes() {
    let f = only(
        "CREATE INDEX audit_at ON audit_log (created_at);",
        Postgres,
        &pg(),
    );
    assert_eq!(f.level, Level::Medium);
    assert!(f.message.contains("never analysed"), "{}", f.message);
    assert!(
        f.estimated_seconds.unwrap() > 1.0,
        "{:?}",
        f.estimated_seconds
    );
    assert!(!f.message.contains("0 rows"));
}

#[test]
fn column_type_changes() {
    let f = only(
        "ALTER TABLE users ALTER COLUMN name TYPE varchar(50);",
        Postgres,
        &pg(),
    );
    assert_eq!(
        (f.code, f.level, f.rewrites),
        ("changing-column-type", Level::High, true)
    );
    let f = only(
        "ALTER TABLE users ALTER COLUMN name TYPE varchar(200);",
        Postgres,
        &pg(),
    );
    assert_eq!((f.level, f.rewrites), (Level::Low, false));
    let f = only(
        "ALTER TABLE users ALTER COLUMN email SET DATA TYPE text;",
        Postgres,
        &pg(),
    );
    assert_eq!(f.level, Level::Low);
    let f = only(
        "ALTER TABLE users ALTER COLUMN id TYPE bigint USING id::bigint;",
        Postgres,
        &pg(),
    );
    assert_eq!(f.level, Level::High);
    // A column named `type` is not a type change.
    let r = lint(
        "ALTER TABLE users ALTER COLUMN type SET DEFAULT 'x';\nALTER TABLE users ADD COLUMN \"type\" text;",
        Postgres,
        &pg(),
    );
    assert_eq!(codes(&r), [("adding-column", Level::Low)]);
    // The old type from earlier in the script counts too.
    let r = lint(
        "CREATE TABLE t (a varchar(10));\nALTER TABLE t ALTER COLUMN a TYPE text;",
        Postgres,
        &Facts::default(),
    );
    assert_eq!(codes(&r), [("create-table", Level::Low)]);
}

#[test]
fn constraints_without_not_valid() {
    let f = only(
        "ALTER TABLE orders ADD CONSTRAINT fk FOREIGN KEY (user_id) REFERENCES users (id);",
        Postgres,
        &pg(),
    );
    assert_eq!(
        (f.code, f.blocks),
        ("adding-foreign-key-constraint", Blocks::Writes)
    );
    assert_eq!(f.lock.as_deref(), Some("SHARE ROW EXCLUSIVE"));
    assert!(f.suggestion.contains("NOT VALID"));
    let r = lint(
        "ALTER TABLE orders ADD CONSTRAINT fk FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID;\nALTER TABLE orders VALIDATE CONSTRAINT fk;",
        Postgres,
        &pg(),
    );
    assert!(r.findings.is_empty(), "{:?}", r.findings);
    let f = only(
        "ALTER TABLE orders ADD CONSTRAINT pos CHECK (total >= 0);",
        Postgres,
        &pg(),
    );
    assert_eq!((f.code, f.level), ("adding-check-constraint", Level::High));
    let f = only(
        "ALTER TABLE users ADD CONSTRAINT u UNIQUE (name);",
        Postgres,
        &pg(),
    );
    assert_eq!((f.code, f.level), ("adding-unique-constraint", Level::High));
    assert!(f.suggestion.contains("USING INDEX"));
    let r = lint(
        "ALTER TABLE users ADD CONSTRAINT u UNIQUE USING INDEX users_name_idx;",
        Postgres,
        &pg(),
    );
    assert!(r.findings.is_empty());
    let r = lint(
        "ALTER TABLE users DROP CONSTRAINT users_pkey, ADD PRIMARY KEY (id, email);",
        Postgres,
        &pg(),
    );
    assert_eq!(
        codes(&r),
        [
            ("dropping-primary-key", Level::Medium),
            ("adding-primary-key", Level::High)
        ]
    );
}

#[test]
fn set_not_null_and_the_validated_check() {
    let f = only(
        "ALTER TABLE users ALTER COLUMN name SET NOT NULL;",
        Postgres,
        &pg(),
    );
    assert_eq!(
        (f.code, f.level, f.scans),
        ("set-not-null", Level::High, true)
    );
    let r = lint(
        "ALTER TABLE users ADD CONSTRAINT name_nn CHECK (name IS NOT NULL) NOT VALID;\nALTER TABLE users VALIDATE CONSTRAINT name_nn;\nALTER TABLE users ALTER COLUMN name SET NOT NULL;",
        Postgres,
        &pg(),
    );
    assert_eq!(codes(&r), [("set-not-null", Level::Low)]);
}

#[test]
fn renames_drops_and_data_changes() {
    let f = only(
        "ALTER TABLE users RENAME COLUMN name TO full_name;",
        Postgres,
        &pg(),
    );
    assert_eq!((f.code, f.level), ("renaming-column", Level::Medium));
    let f = only("ALTER TABLE orders RENAME TO purchases;", Postgres, &pg());
    assert_eq!(f.code, "renaming-table");
    let f = only("DROP TABLE countries;", Postgres, &pg());
    assert_eq!((f.code, f.level), ("drop-table", Level::High));
    assert!(f.message.contains("250 rows"), "{}", f.message);
    let f = only("ALTER TABLE users DROP COLUMN type;", Postgres, &pg());
    assert_eq!((f.code, f.level), ("drop-column", Level::High));
    let f = only(
        "ALTER TABLE users DROP CONSTRAINT users_email_key;",
        Postgres,
        &pg(),
    );
    assert_eq!((f.code, f.level), ("drop-constraint", Level::Low));
    let f = only("UPDATE orders SET note = '';", Postgres, &pg());
    assert_eq!((f.code, f.level), ("unbounded-update", Level::High));
    assert!(f.estimated_seconds.unwrap() > 10.0);
    let f = only("UPDATE countries SET name = upper(name);", Postgres, &pg());
    assert_eq!(f.level, Level::Low);
    assert!(
        lint(
            "UPDATE orders SET note = '' WHERE id < 1000;",
            Postgres,
            &pg()
        )
        .findings
        .is_empty()
    );
    let f = only("DELETE FROM users;", Postgres, &pg());
    assert_eq!((f.code, f.level), ("unbounded-delete", Level::High));
    // A table the script emptied takes a NOT NULL column (langfuse's organizations migration).
    let r = lint(
        "DELETE FROM users;\nALTER TABLE users ADD COLUMN org_id text NOT NULL;",
        Postgres,
        &pg(),
    );
    assert_eq!(codes(&r), [("unbounded-delete", Level::High)]);
    let f = only("TRUNCATE audit_log;", Postgres, &pg());
    assert_eq!((f.code, f.level), ("truncate", Level::High));
    let f = only("VACUUM FULL orders;", Postgres, &pg());
    assert_eq!(
        (f.code, f.level, f.rewrites),
        ("vacuum-full", Level::High, true)
    );
    let f = only("CLUSTER users USING users_pkey;", Postgres, &pg());
    assert_eq!((f.code, f.level, f.parsed), ("cluster", Level::High, false));
    let f = only("DROP SCHEMA legacy CASCADE;", Postgres, &pg());
    assert_eq!(f.code, "drop-schema");
}
