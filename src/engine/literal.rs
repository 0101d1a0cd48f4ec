//! dbdeploy's own statements written out with their values in place of the placeholders, so
//! that several can travel in one PostgreSQL simple-query message (which takes no
//! parameters): a migration's tracking rows, its `COMMIT` and the session reset are one round
//! trip instead of three.
//!
//! Only statements dbdeploy builds itself are rendered, never a user's script. Text becomes an
//! escape-string literal when it holds a backslash, so that its meaning does not depend on the
//! server's `standard_conforming_strings`; quotes are doubled either way.

use std::fmt::Write as _;

use super::{Stmt, Value};

/// `stmt` with each `$n` outside quotes replaced by the literal of its value; `None` when a
/// placeholder has no value (a bug in the caller, reported by running it the usual way).
#[must_use]
pub fn postgres(stmt: &Stmt) -> Option<String> {
    let sql = &stmt.sql;
    let mut out = String::with_capacity(sql.len() + 64);
    let mut chars = sql.char_indices().peekable();
    let mut quote: Option<char> = None;
    while let Some((i, c)) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '$') if chars.peek().is_some_and(|(_, d)| d.is_ascii_digit()) => {
                let start = i + 1;
                let mut end = start;
                while let Some(&(j, d)) = chars.peek() {
                    if !d.is_ascii_digit() {
                        break;
                    }
                    end = j + d.len_utf8();
                    chars.next();
                }
                let n: usize = sql[start..end].parse().ok()?;
                let value = stmt.args.get(n.checked_sub(1)?)?;
                push_literal(&mut out, value);
                continue;
            }
            (None, _) => {}
        }
        out.push(c);
    }
    Some(out)
}

fn push_literal(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("NULL"),
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Bool(b) => out.push_str(if *b { "TRUE" } else { "FALSE" }),
        Value::Text(s) => push_text(out, s),
        Value::Bytes(b) => {
            out.push_str("decode('");
            for byte in b {
                let _ = write!(out, "{byte:02x}");
            }
            out.push_str("', 'hex')");
        }
        // The same instant the driver would bind as `timestamptz`, to the microsecond.
        Value::Timestamp(t) => {
            let _ = write!(out, "'{}'::timestamptz", t.format("%Y-%m-%dT%H:%M:%S%.6fZ"));
        }
    }
}

fn push_text(out: &mut String, s: &str) {
    if s.contains('\\') {
        out.push_str("E'");
        for c in s.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\'' => out.push_str("''"),
                c => out.push(c),
            }
        }
    } else {
        out.push('\'');
        for c in s.chars() {
            if c == '\'' {
                out.push_str("''");
            } else {
                out.push(c);
            }
        }
    }
    out.push('\'');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stmt(sql: &str, args: Vec<Value>) -> Stmt {
        Stmt::new(sql, args)
    }

    #[test]
    fn values_take_the_placeholders_places() {
        let t = chrono::DateTime::parse_from_rfc3339("2026-12-04T01:02:03.456789Z")
            .unwrap()
            .to_utc();
        let s = stmt(
            "INSERT INTO \"t$1\" (a, b, c, d, e, f, g, h, i, j) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) -- '$1'",
            vec![
                Value::Text("it's".into()),
                Value::Int(-42),
                Value::Null,
                Value::Bool(true),
                Value::Bytes(vec![0, 255]),
                Value::Timestamp(t),
                Value::Text("a\\b'c".into()),
                Value::Int(8),
                Value::Int(9),
                Value::Text("ten".into()),
            ],
        );
        assert_eq!(
            postgres(&s).unwrap(),
            "INSERT INTO \"t$1\" (a, b, c, d, e, f, g, h, i, j) VALUES ('it''s', -42, NULL, TRUE, \
             decode('00ff', 'hex'), '2026-12-04T01:02:03.456789Z'::timestamptz, E'a\\\\b''c', 8, 9, \
             'ten') -- '$1'"
        );
    }

    #[test]
    fn a_placeholder_without_a_value_is_not_rendered() {
        assert_eq!(postgres(&stmt("SELECT $2", vec![Value::Int(1)])), None);
        assert_eq!(postgres(&stmt("SELECT $0", vec![Value::Int(1)])), None);
    }
}
