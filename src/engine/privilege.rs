//! Telling a refused privilege from other database errors, on each server, so that "cannot
//! read" is reported as such — never as "empty" or "pending" — naming the privilege and the
//! table where the server's error allows it.

use super::{Cause, DbError};

/// What a server refused, as far as its error says.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Denied {
    /// `SELECT`, `INSERT`, ..., when named.
    privilege: Option<String>,
    /// The table, when the refusal is about one.
    table: Option<String>,
    /// Another object (`schema x`, `database y`), when the refusal is about one.
    object: Option<String>,
    /// The server's own message.
    message: String,
}

/// The refused privilege in `err`, when it is one.
pub(super) fn denied(err: &sqlx::Error) -> Option<Denied> {
    let sqlx::Error::Database(db) = err else {
        return None;
    };
    let message = db.message().to_owned();
    if let Some(pg) = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
        return (pg.code() == "42501").then(|| postgres(message));
    }
    if let Some(my) = db.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>() {
        return matches!(my.number(), 1142 | 1143 | 1044 | 1227 | 1370).then(|| mysql(message));
    }
    None
}

/// `permission denied for table t`, `permission denied for schema s`, `must be owner of table t`.
fn postgres(message: String) -> Denied {
    let rest = message
        .strip_prefix("permission denied for ")
        .or_else(|| message.strip_prefix("must be owner of "));
    let mut d = Denied {
        message: message.clone(),
        ..Denied::default()
    };
    if message.starts_with("must be owner") {
        d.privilege = Some("ownership".into());
    }
    if let Some((kind, name)) = rest.and_then(|r| r.split_once(' ')) {
        if matches!(kind, "table" | "relation" | "view") {
            d.table = Some(name.to_owned());
        } else {
            d.object = Some(format!("{kind} `{name}`"));
        }
    }
    d
}

/// `SELECT command denied to user 'u'@'h' for table `db`.`t``, `... for column 'c' in table
/// 't'`, `Access denied for user 'u'@'h' to database 'd'`, `Access denied; you need (at least
/// one of) the SUPER privilege(s) for this operation`.
fn mysql(message: String) -> Denied {
    let mut d = Denied {
        message: message.clone(),
        ..Denied::default()
    };
    if let Some((privilege, _)) = message.split_once(" command denied") {
        d.privilege = Some(privilege.trim().to_owned());
    }
    if let Some(i) = message.rfind(" table ") {
        let quoted = &message[i + " table ".len()..];
        let last = quoted.rsplit('.').next().unwrap_or(quoted);
        d.table = Some(last.trim_matches(['`', '\'', '"']).to_owned());
    } else if let Some((_, db)) = message.split_once(" to database ") {
        d.object = Some(format!("database `{}`", db.trim_matches(['`', '\''])));
    } else if let Some((_, p)) = message.split_once("the ") {
        d.privilege = p.split(' ').next().map(str::to_owned);
    }
    d
}

impl Denied {
    /// The error, with the privilege `sql` needs when the server did not name it.
    pub(super) fn into_error(mut self, sql: Option<&str>, source: Option<Cause>) -> DbError {
        if self.privilege.is_none() {
            self.privilege = sql.and_then(of_statement).map(str::to_owned);
        }
        let what = match (&self.privilege, &self.table, &self.object) {
            (Some(p), Some(t), _) => format!("no {p} privilege on table `{t}`"),
            (Some(p), None, Some(o)) => format!("no {p} privilege on {o}"),
            (None, Some(t), _) => format!("no privilege on table `{t}` for this statement"),
            _ => crate::redact::scrub(&self.message).into_owned(),
        };
        DbError::PermissionDenied {
            what,
            privilege: self.privilege,
            table: self.table,
            source,
        }
    }

    /// A refusal about `table`, now that the privilege is known.
    pub(super) fn rephrase(
        privilege: &str,
        table: Option<String>,
        what: String,
        source: Option<Cause>,
    ) -> DbError {
        match table {
            Some(t) => Denied {
                privilege: Some(privilege.to_owned()),
                table: Some(t),
                ..Denied::default()
            }
            .into_error(None, source),
            None => DbError::PermissionDenied {
                what,
                privilege: None,
                table: None,
                source,
            },
        }
    }
}

/// The table privilege a statement needs, from its first word.
pub(super) fn of_statement(sql: &str) -> Option<&'static str> {
    let first = crate::sql::split::normalized(sql);
    let word = first.split([' ', '(']).next().unwrap_or("");
    Some(match word.to_ascii_uppercase().as_str() {
        "SELECT" | "WITH" | "TABLE" => "SELECT",
        "INSERT" => "INSERT",
        "UPDATE" => "UPDATE",
        "DELETE" => "DELETE",
        "TRUNCATE" => "TRUNCATE",
        "CREATE" => "CREATE",
        "ALTER" => "ALTER",
        "DROP" => "DROP",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn what(d: Denied, sql: Option<&str>) -> String {
        d.into_error(sql, None).to_string()
    }

    #[test]
    fn postgres_names_the_table_and_the_statement_the_privilege() {
        let d = postgres("permission denied for table _prisma_migrations".into());
        assert_eq!(d.table.as_deref(), Some("_prisma_migrations"));
        assert_eq!(
            what(d, Some("SELECT id FROM \"_prisma_migrations\"")),
            "permission denied: no SELECT privilege on table `_prisma_migrations`"
        );
        let d = postgres("permission denied for schema drizzle".into());
        assert_eq!(
            what(d, Some("CREATE TABLE x ()")),
            "permission denied: no CREATE privilege on schema `drizzle`"
        );
    }

    #[test]
    fn mysql_names_the_privilege_and_the_table() {
        let d = mysql(
            "SELECT command denied to user 'np'@'127.0.0.1' for table `app`.`_prisma_migrations`"
                .into(),
        );
        assert_eq!(
            what(d, None),
            "permission denied: no SELECT privilege on table `_prisma_migrations`"
        );
        let d = mysql(
            "SELECT command denied to user 'np'@'localhost' for column 'id' in table 'users'"
                .into(),
        );
        assert_eq!(d.table.as_deref(), Some("users"));
        let d = mysql("Access denied for user 'np'@'%' to database 'app'".into());
        assert_eq!(
            what(d, Some("CREATE TABLE t (n INT)")),
            "permission denied: no CREATE privilege on database `app`"
        );
        let d = mysql(
            "Access denied; you need (at least one of) the SUPER privilege(s) for this operation"
                .into(),
        );
        assert_eq!(d.privilege.as_deref(), Some("SUPER"));
    }
}
