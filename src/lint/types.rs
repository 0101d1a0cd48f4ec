//! Column types compared across spellings (`character varying(20)` is `VARCHAR(20)`), to tell
//! a type change that rewrites the table from one the server does in its catalog only:
//! PostgreSQL's binary-coercible changes, and MySQL's in-place `VARCHAR` extension.

/// A column type reduced to a canonical name and its numeric arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Type {
    /// Canonical lowercase name (`varchar`, `int8`, `numeric`, `timestamptz`, ...), with `[]`
    /// for arrays.
    pub name: String,
    /// Its arguments: length, precision and scale.
    pub args: Vec<u32>,
}

/// Reads a type as written in SQL or printed by a catalog.
pub(crate) fn parse(text: &str) -> Type {
    let lower = text.trim().to_ascii_lowercase();
    let (array, lower) = match lower.strip_suffix("[]") {
        Some(inner) => (true, inner.trim().to_owned()),
        None => (false, lower),
    };
    let (head, args) = match lower.split_once('(') {
        Some((head, rest)) => {
            let (inside, tail) = rest.split_once(')').unwrap_or((rest, ""));
            let args = inside
                .split(',')
                .filter_map(|a| a.trim().parse::<u32>().ok())
                .collect();
            (format!("{} {}", head.trim(), tail.trim()), args)
        }
        None => (lower.clone(), Vec::new()),
    };
    let words: Vec<&str> = head
        .split_whitespace()
        .map(|w| w.trim_matches('"'))
        .collect();
    let joined = words.join(" ");
    let name = match joined.as_str() {
        "int" | "integer" | "int4" | "serial" | "serial4" => "int4",
        "bigint" | "int8" | "bigserial" | "serial8" => "int8",
        "smallint" | "int2" | "smallserial" | "serial2" => "int2",
        "character varying" | "varchar" | "nvarchar" => "varchar",
        "character" | "char" | "bpchar" | "nchar" => "bpchar",
        "decimal" | "numeric" => "numeric",
        "timestamp" | "timestamp without time zone" => "timestamp",
        "timestamptz" | "timestamp with time zone" => "timestamptz",
        "time" | "time without time zone" => "time",
        "timetz" | "time with time zone" => "timetz",
        "bool" | "boolean" => "bool",
        "float8" | "double precision" | "double" => "float8",
        "float4" | "real" | "float" => "float4",
        "bit varying" | "varbit" => "varbit",
        other => other,
    };
    let mut name = name.to_owned();
    if array {
        name.push_str("[]");
    }
    // MySQL prints display widths (`int(11)`) that change nothing.
    let args = if matches!(
        name.as_str(),
        "int4" | "int8" | "int2" | "tinyint" | "mediumint"
    ) {
        Vec::new()
    } else {
        args
    };
    Type { name, args }
}

/// True when PostgreSQL changes `from` into `to` in its catalog only, without rewriting the
/// table or rebuilding its indexes (`varchar(n)` to `varchar(m >= n)`, `varchar` or `text`;
/// `numeric(p, s)` to `numeric(q >= p, s)`; `varbit(n)` to a longer one; `cidr` to `inet`).
pub(crate) fn pg_binary_coercible(from: &Type, to: &Type) -> bool {
    if from == to {
        return true;
    }
    let widens = |a: &[u32], b: &[u32]| match (a.first(), b.first()) {
        (_, None) => true,
        (Some(x), Some(y)) => y >= x,
        (None, Some(_)) => false,
    };
    match (from.name.as_str(), to.name.as_str()) {
        ("varchar", "varchar") | ("varbit", "varbit") => widens(&from.args, &to.args),
        ("varchar" | "text", "text") | ("text", "varchar") => to.args.is_empty(),
        ("numeric", "numeric") => {
            to.args.is_empty()
                || (widens(&from.args, &to.args) && from.args.get(1) == to.args.get(1))
        }
        ("cidr", "inet") => true,
        _ => false,
    }
}

/// True when MySQL/MariaDB can extend `from` to `to` in place without copying the table:
/// a longer `VARCHAR` whose length prefix stays one byte (under 256 bytes) or stays two,
/// counted at 4 bytes a character (utf8mb4, the default since MySQL 8.0).
pub(crate) fn mysql_inplace_extension(from: &Type, to: &Type) -> bool {
    if from == to {
        return true;
    }
    if from.name != "varchar" || to.name != "varchar" {
        return false;
    }
    match (from.args.first(), to.args.first()) {
        (Some(&a), Some(&b)) => b >= a && ((a * 4 < 256) == (b * 4 < 256)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_compare_equal() {
        assert_eq!(parse("character varying(20)"), parse("VARCHAR(20)"));
        assert_eq!(parse("timestamp(3) without time zone").name, "timestamp");
        assert_eq!(parse("TIMESTAMP WITH TIME ZONE").name, "timestamptz");
        assert_eq!(parse("int(11)"), parse("INTEGER"));
        assert_eq!(parse("text[]").name, "text[]");
        assert_eq!(parse("numeric(10, 2)").args, [10, 2]);
    }

    #[test]
    fn postgres_binary_coercible_changes() {
        let ok = |a: &str, b: &str| pg_binary_coercible(&parse(a), &parse(b));
        assert!(ok("varchar(20)", "varchar(50)"));
        assert!(ok("character varying(20)", "text"));
        assert!(ok("varchar(20)", "varchar"));
        assert!(ok("text", "varchar"));
        assert!(ok("numeric(10,2)", "numeric(12,2)"));
        assert!(ok("numeric(10,2)", "numeric"));
        assert!(ok("cidr", "inet"));
        assert!(!ok("varchar(50)", "varchar(20)"));
        assert!(!ok("text", "varchar(20)"));
        assert!(!ok("int", "bigint"));
        assert!(!ok("numeric(10,2)", "numeric(12,4)"));
        assert!(!ok("timestamp", "timestamptz"));
        assert!(!ok("char(10)", "text"));
    }

    #[test]
    fn mysql_varchar_extension_within_the_length_prefix() {
        let ok = |a: &str, b: &str| mysql_inplace_extension(&parse(a), &parse(b));
        assert!(ok("varchar(50)", "varchar(60)"));
        assert!(ok("varchar(100)", "varchar(255)"));
        assert!(!ok("varchar(50)", "varchar(100)"));
        assert!(!ok("varchar(60)", "varchar(50)"));
        assert!(!ok("int", "bigint"));
    }
}
