//! Database URLs: which engine, where, and a description that is safe to print.

use std::path::{Path, PathBuf};

use super::Dialect;

/// A parsed database URL. `Debug` and [`Target::describe`] never show a password.
#[derive(Clone)]
pub enum Target {
    /// A PostgreSQL server.
    Postgres {
        /// The URL as sqlx expects it.
        url: String,
    },
    /// A MySQL or MariaDB server.
    MySql {
        /// The URL as sqlx expects it (`mariadb://` rewritten to `mysql://`).
        url: String,
    },
    /// A SQLite file.
    Sqlite {
        /// Absolute path of the database file.
        path: PathBuf,
    },
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl Target {
    /// Parses a URL; relative SQLite paths resolve from `working_dir`.
    ///
    /// # Errors
    /// A reason (never containing the URL) when the scheme is unknown or the URL malformed.
    pub fn parse(raw: &str, working_dir: &Path) -> Result<Self, String> {
        let raw = raw.trim();
        let Some((scheme, rest)) = raw.split_once(':') else {
            return Err(
                "it has no scheme; expected postgres://, mysql://, mariadb:// or sqlite://".into(),
            );
        };
        match scheme.to_ascii_lowercase().as_str() {
            "postgres" | "postgresql" => {
                let parsed = parse_server_url(raw)?;
                raw.parse::<sqlx::postgres::PgConnectOptions>()
                    .map_err(|e| crate::redact::scrub(&e.to_string()).into_owned())?;
                drop(parsed);
                Ok(Target::Postgres {
                    url: raw.to_owned(),
                })
            }
            "mysql" | "mariadb" => {
                let mut parsed = parse_server_url(raw)?;
                parsed
                    .set_scheme("mysql")
                    .map_err(|()| "cannot use the mariadb:// scheme".to_owned())?;
                let url = if scheme.eq_ignore_ascii_case("mysql") {
                    raw.to_owned()
                } else {
                    format!("mysql:{rest}")
                };
                url.parse::<sqlx::mysql::MySqlConnectOptions>()
                    .map_err(|e| crate::redact::scrub(&e.to_string()).into_owned())?;
                Ok(Target::MySql { url })
            }
            "sqlite" | "file" => {
                let path = sqlite_path(rest)?;
                let path = if path.is_absolute() {
                    path
                } else {
                    working_dir.join(path)
                };
                Ok(Target::Sqlite { path })
            }
            other => Err(format!(
                "unknown scheme `{other}`; expected postgres://, mysql://, mariadb:// or sqlite://"
            )),
        }
    }

    /// The dialect of this engine.
    #[must_use]
    pub fn dialect(&self) -> Dialect {
        match self {
            Target::Postgres { .. } => Dialect::Postgres,
            Target::MySql { .. } => Dialect::MySql,
            Target::Sqlite { .. } => Dialect::Sqlite,
        }
    }

    /// The URL handed to external commands (in their environment only): as configured for
    /// servers, `sqlite://` with the absolute path for SQLite.
    #[must_use]
    pub fn url_for_tools(&self) -> String {
        match self {
            Target::Postgres { url } | Target::MySql { url } => url.clone(),
            Target::Sqlite { path } => format!("sqlite://{}", path.display()),
        }
    }

    /// A description safe for output: scheme, user, host, port and database, never the password.
    #[must_use]
    pub fn describe(&self) -> String {
        match self {
            Target::Postgres { url } | Target::MySql { url } => match url::Url::parse(url) {
                Ok(u) => {
                    let user = if u.username().is_empty() {
                        String::new()
                    } else {
                        format!("{}@", u.username())
                    };
                    let port = u.port().map(|p| format!(":{p}")).unwrap_or_default();
                    format!(
                        "{}://{user}{}{port}{}",
                        u.scheme(),
                        u.host_str().unwrap_or(""),
                        u.path()
                    )
                }
                Err(_) => format!("{} database", self.dialect().name()),
            },
            Target::Sqlite { path } => format!("sqlite://{}", path.display()),
        }
    }
}

fn parse_server_url(raw: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(raw).map_err(|e| format!("it is not a valid URL ({e})"))?;
    if url.host_str().is_none_or(str::is_empty) {
        return Err("it has no host name".into());
    }
    Ok(url)
}

/// `sqlite://relative/path`, `sqlite:///absolute/path`, Prisma's `file:./dev.db`; query strings
/// (`?mode=...`) are not supported and are rejected rather than silently ignored.
fn sqlite_path(rest: &str) -> Result<PathBuf, String> {
    let path = rest.strip_prefix("//").unwrap_or(rest);
    if path.contains('?') {
        return Err("SQLite URLs with query parameters are not supported".into());
    }
    if path.is_empty() {
        return Err("the SQLite URL has no file path".into());
    }
    Ok(PathBuf::from(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &str) -> Result<Target, String> {
        Target::parse(raw, Path::new("/work"))
    }

    #[test]
    fn sqlite_paths_resolve_from_the_working_directory() {
        let Target::Sqlite { path } = parse("sqlite://.dbdeploy/dev.db").unwrap() else {
            panic!()
        };
        assert_eq!(path, Path::new("/work/.dbdeploy/dev.db"));
        let Target::Sqlite { path } = parse("sqlite:///tmp/x.db").unwrap() else {
            panic!()
        };
        assert_eq!(path, Path::new("/tmp/x.db"));
        let Target::Sqlite { path } = parse("file:./dev.db").unwrap() else {
            panic!()
        };
        assert_eq!(path, Path::new("/work/./dev.db"));
    }

    #[test]
    fn describe_never_shows_the_password() {
        let t = parse("postgres://app:hunter2@db.example.com:6543/shop").unwrap();
        assert_eq!(t.describe(), "postgres://app@db.example.com:6543/shop");
        assert!(!format!("{t:?}").contains("hunter2"));
        let t = parse("mariadb://root:pw@127.0.0.1/app").unwrap();
        assert_eq!(t.dialect(), Dialect::MySql);
        assert!(!t.describe().contains("pw@"));
    }

    #[test]
    fn malformed_urls_are_rejected_without_echoing_them() {
        for bad in [
            "nonsense",
            "oracle://u:secretpw@h/db",
            "postgres://u:secretpw@:5432/db",
            "postgres://u:secretpw@h:notaport/db",
        ] {
            let err = parse(bad).unwrap_err();
            assert!(!err.contains("secretpw"), "{err}");
        }
    }
}
