//! The SQL dialect of each engine: what formats, the script splitter and the engines need to
//! shape SQL text (placeholders, identifier quoting, names for messages). It is about SQL, not
//! about connections, so it lives with the other SQL text utilities; `crate::engine`
//! re-exports it.

/// The SQL dialect of an engine; formats use it to shape their tracking-table SQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// PostgreSQL (and compatible servers).
    Postgres,
    /// MySQL and MariaDB.
    MySql,
    /// SQLite.
    Sqlite,
}

impl Dialect {
    /// A short lowercase engine name for output.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Dialect::Postgres => "postgresql",
            Dialect::MySql => "mysql",
            Dialect::Sqlite => "sqlite",
        }
    }

    /// The server family's name for messages.
    #[must_use]
    pub fn server_name(self) -> &'static str {
        match self {
            Dialect::Postgres => "PostgreSQL",
            Dialect::MySql => "MySQL/MariaDB",
            Dialect::Sqlite => "SQLite",
        }
    }

    /// The bind placeholder for the `n`th (1-based) parameter.
    #[must_use]
    pub fn placeholder(self, n: usize) -> String {
        match self {
            Dialect::Postgres => format!("${n}"),
            Dialect::MySql | Dialect::Sqlite => "?".to_owned(),
        }
    }

    /// Quotes an identifier for this dialect; identifiers never reach SQL any other way.
    #[must_use]
    pub fn quote_ident(self, ident: &str) -> String {
        match self {
            Dialect::MySql => format!("`{}`", ident.replace('`', "``")),
            Dialect::Postgres | Dialect::Sqlite => format!("\"{}\"", ident.replace('"', "\"\"")),
        }
    }
}
