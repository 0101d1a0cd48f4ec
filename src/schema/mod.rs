//! Schema fingerprints: the live schema as a canonical text, and its hash.
//!
//! Drift detection, backup manifests and rollback verification need to know whether two schemas
//! are the same, and when they are not, *what* differs. So the schema is read from the catalogs
//! into a sorted, human-readable text, one fact per line, so that a unified diff of two snapshots
//! reads as a change list. The text holds structure only: never rows, counters, statistics or
//! object ids, which change without anyone changing the schema.
//!
//! Layout: an object header at column 0 (`table public.users`), then its facts indented by two
//! spaces (`  column id integer not null`). Columns keep their ordinal order, which is part of
//! the schema; every other list is sorted, so creation order never shows.

mod diff;
mod mysql;
mod postgres;
mod sqlite;
pub mod stamp;

use std::collections::{BTreeMap, HashMap};

use sha2::{Digest, Sha256};

pub use diff::{Change, ChangeKind, changes, diff, summary};

use crate::engine::{ColKind, Database, DbError, Dialect, Stmt, Value};

/// Tables left out of every snapshot: dbdeploy writes `_dbdeploy_history` during every run, so
/// including it would make each deploy look like drift. The migration tools' own tracking tables
/// stay in: their structure is part of what a deploy manages.
pub const EXCLUDED_TABLES: &[&str] = &[crate::history::HISTORY_TABLE];

/// Version of the text format. Snapshots of different versions are not comparable; a reader
/// that finds another version should re-record rather than report drift.
pub const FORMAT_VERSION: u32 = 1;

/// A schema fingerprint: the canonical text and its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The canonical text, one fact per line, ending in a newline.
    pub text: String,
    /// Lowercase hex SHA-256 of `text`.
    pub hash: String,
}

impl Snapshot {
    /// Wraps a canonical text with its hash.
    #[must_use]
    pub fn from_text(text: String) -> Self {
        let hash = crate::checksum::hex(&Sha256::digest(text.as_bytes()));
        Self { text, hash }
    }
}

/// The format version a snapshot text was written in, from its first line; `None` when the
/// text is not a snapshot.
#[must_use]
pub fn format_version(text: &str) -> Option<u32> {
    text.lines()
        .next()?
        .strip_prefix("# dbdeploy schema fingerprint v")?
        .split(' ')
        .next()?
        .parse()
        .ok()
}

/// Reads the schema of the connection's database into a [`Snapshot`].
///
/// PostgreSQL: every schema that is not the system's own (`pg_catalog`, `information_schema`,
/// `pg_toast*`, temporary schemas), leaving out objects that belong to extensions.
/// MySQL/MariaDB: the connection's database (`DATABASE()`). SQLite: the `main` database.
/// [`EXCLUDED_TABLES`] are left out everywhere.
///
/// # Errors
/// When a catalog query fails; the error says which part of the schema was being read.
pub async fn snapshot<D: Database>(db: &mut D) -> Result<Snapshot, DbError> {
    let dialect = db.dialect();
    let model = match dialect {
        Dialect::Postgres => postgres::read(db).await?,
        Dialect::MySql => mysql::read(db).await?,
        Dialect::Sqlite => sqlite::read(db).await?,
    };
    Ok(Snapshot::from_text(model.render(dialect)))
}

/// What kind of object a header line introduces; the order here is the order of the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Schema,
    Extension,
    Enum,
    Domain,
    Type,
    Sequence,
    Table,
    ForeignTable,
    View,
    MatView,
    Function,
    Procedure,
    Aggregate,
}

impl Kind {
    /// The header word: one word, so that a header splits into kind and name at the first space.
    fn word(self) -> &'static str {
        match self {
            Kind::Schema => "schema",
            Kind::Extension => "extension",
            Kind::Enum => "enum",
            Kind::Domain => "domain",
            Kind::Type => "type",
            Kind::Sequence => "sequence",
            Kind::Table => "table",
            Kind::ForeignTable => "foreign_table",
            Kind::View => "view",
            Kind::MatView => "materialized_view",
            Kind::Function => "function",
            Kind::Procedure => "procedure",
            Kind::Aggregate => "aggregate",
        }
    }
}

/// One object being assembled from catalog rows.
#[derive(Debug, Default)]
struct Object {
    /// Facts whose order is part of the schema (columns), with their position.
    ordered: Vec<(i64, String)>,
    /// Every other fact; sorted when rendered.
    items: Vec<String>,
    /// The unqualified table name this object is or belongs to, for [`EXCLUDED_TABLES`].
    table: Option<String>,
}

/// The schema as objects keyed by kind and display name.
#[derive(Debug, Default)]
struct Model {
    objects: BTreeMap<(Kind, String), Object>,
    /// Kind of each table-like object by name (they share one namespace), for fast lookups.
    relations: HashMap<String, Kind>,
}

impl Model {
    /// The object, created when new.
    fn object(&mut self, kind: Kind, name: String) -> &mut Object {
        self.objects.entry((kind, name)).or_default()
    }

    /// A table-like object, remembering its bare name for the exclusion list.
    fn table(&mut self, kind: Kind, name: String, bare: &str) -> &mut Object {
        self.relations.insert(name.clone(), kind);
        let obj = self.object(kind, name);
        obj.table = Some(bare.to_owned());
        obj
    }

    /// The object when it was read; facts of objects left out (extension members, system
    /// tables) have nowhere to go and are dropped.
    fn get(&mut self, kind: Kind, name: &str) -> Option<&mut Object> {
        self.objects.get_mut(&(kind, name.to_owned()))
    }

    /// The table-like object of that name, whatever its kind.
    fn relation(&mut self, name: &str) -> Option<&mut Object> {
        let kind = *self.relations.get(name)?;
        self.get(kind, name)
    }

    fn render(self, dialect: Dialect) -> String {
        let mut out = format!(
            "# dbdeploy schema fingerprint v{FORMAT_VERSION} {}\n",
            dialect.name()
        );
        for ((kind, name), mut obj) in self.objects {
            if obj
                .table
                .as_deref()
                .is_some_and(|t| EXCLUDED_TABLES.contains(&t))
            {
                continue;
            }
            out.push_str(kind.word());
            out.push(' ');
            out.push_str(&name);
            out.push('\n');
            obj.ordered.sort();
            obj.items.sort();
            obj.items.dedup();
            for line in obj.ordered.iter().map(|(_, l)| l).chain(&obj.items) {
                out.push_str("  ");
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    }
}

/// An identifier as shown in the text: bare when it is a plain word, double-quoted otherwise,
/// so that names with spaces or dots stay one unambiguous token.
fn ident(name: &str) -> String {
    let plain = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$');
    if plain {
        name.to_owned()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

/// `schema.name`, each part shown by [`ident`].
fn qualified(schema: &str, name: &str) -> String {
    format!("{}.{}", ident(schema), ident(name))
}

/// SQL text on one line: comments dropped and whitespace runs collapsed, strings untouched, so
/// that a definition is one fact and reformatting by the server's version never shows.
fn one_line(sql: &str) -> String {
    let text = crate::sql::split::normalized(sql.trim());
    // `pg_get_viewdef` ends its text with `;`, SQLite's stored text does not.
    text.trim_end_matches([';', ' ']).to_owned()
}

/// A short digest for long definitions (routine bodies): enough to tell that one changed.
fn digest(text: &str) -> String {
    format!(
        "sha256:{}",
        crate::checksum::hex(&Sha256::digest(text.as_bytes())[..8])
    )
}

/// A catalog row read as text; every query casts its columns to text.
struct Row(Vec<Value>);

impl Row {
    /// The column's text; NULL reads as empty.
    fn s(&self, i: usize) -> &str {
        self.0.get(i).and_then(Value::as_text).unwrap_or("")
    }

    /// The column's text, `None` for NULL or empty.
    fn opt(&self, i: usize) -> Option<&str> {
        Some(self.s(i)).filter(|s| !s.is_empty())
    }

    /// The column as a number (positions); 0 when it is not one.
    fn num(&self, i: usize) -> i64 {
        self.s(i).trim().parse().unwrap_or(0)
    }

    /// Whether the column says yes in any engine's spelling.
    fn yes(&self, i: usize) -> bool {
        matches!(
            self.s(i).to_ascii_lowercase().as_str(),
            "true" | "t" | "1" | "yes"
        )
    }
}

/// Runs a catalog query whose `cols` columns are all text; `what` names the part of the schema
/// in the error.
async fn query<D: Database>(
    db: &mut D,
    what: &str,
    sql: &str,
    cols: usize,
) -> Result<Vec<Row>, DbError> {
    let kinds = vec![ColKind::Text; cols];
    match db.fetch(&Stmt::raw(sql), &kinds).await {
        Ok(rows) => Ok(rows.into_iter().map(Row).collect()),
        Err(DbError::Query {
            message, source, ..
        }) => Err(DbError::Query {
            context: format!("cannot read the schema ({what})"),
            message,
            source,
        }),
        Err(other) => Err(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_bare_only_when_plain() {
        assert_eq!(ident("users"), "users");
        assert_eq!(ident("User_1"), "User_1");
        assert_eq!(ident("my table"), "\"my table\"");
        assert_eq!(ident("1st"), "\"1st\"");
        assert_eq!(ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(ident(""), "\"\"");
        assert_eq!(qualified("public", "a.b"), "public.\"a.b\"");
    }

    #[test]
    fn render_keeps_column_order_sorts_the_rest_and_skips_excluded_tables() {
        let mut m = Model::default();
        let t = m.table(Kind::Table, "public.b".into(), "b");
        t.ordered.push((2, "column z text".into()));
        t.ordered.push((1, "column y text".into()));
        t.items.push("index b_z (z)".into());
        t.items.push("constraint b_pkey PRIMARY KEY (y)".into());
        m.table(Kind::Table, "public.a".into(), "a");
        m.object(Kind::Schema, "public".into());
        m.table(
            Kind::Table,
            "public._dbdeploy_history".into(),
            "_dbdeploy_history",
        )
        .ordered
        .push((1, "column run_id text".into()));
        assert_eq!(
            m.render(Dialect::Postgres),
            "# dbdeploy schema fingerprint v1 postgresql\n\
             schema public\n\
             table public.a\n\
             table public.b\n\
             \x20 column y text\n\
             \x20 column z text\n\
             \x20 constraint b_pkey PRIMARY KEY (y)\n\
             \x20 index b_z (z)\n"
        );
    }

    #[test]
    fn the_format_version_is_read_from_the_first_line() {
        let text = Model::default().render(Dialect::Sqlite);
        assert_eq!(text, "# dbdeploy schema fingerprint v1 sqlite\n");
        assert_eq!(format_version(&text), Some(FORMAT_VERSION));
        assert_eq!(format_version("table t\n"), None);
        assert_eq!(format_version(""), None);
    }

    #[test]
    fn the_hash_is_the_sha256_of_the_text() {
        let s = Snapshot::from_text("abc".into());
        assert_eq!(
            s.hash,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn sql_is_shown_on_one_line() {
        assert_eq!(
            one_line(" SELECT a,\n\t  b -- note\n FROM t WHERE x = 'a  b'\n"),
            "SELECT a, b FROM t WHERE x = 'a  b'"
        );
        assert_eq!(one_line("SELECT 1;\n"), "SELECT 1");
    }
}
