//! Keeps database URLs and passwords out of every byte dbdeploy writes.
//!
//! Driver errors, TOML snippets and child-process output can all echo a URL back; rather than
//! trusting each call site, every writer (terminal, JSON, audit log, history table) passes its
//! text through [`scrub`], which knows the secrets of the URLs this process has resolved and
//! masks any `scheme://user:password@` it sees.

use std::borrow::Cow;
use std::sync::{Mutex, PoisonError};

static SECRETS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Remembers the secret parts of a database URL so that [`scrub`] removes them from any text.
pub fn register_url(raw: &str) {
    let mut secrets = SECRETS.lock().unwrap_or_else(PoisonError::into_inner);
    let mut add = |s: &str| {
        // Very short passwords would mask unrelated words; the URL masking still covers them.
        if s.len() >= 3 && !secrets.iter().any(|known| known == s) {
            secrets.push(s.to_owned());
        }
    };
    match url::Url::parse(raw) {
        Ok(url) => {
            if let Some(password) = url.password() {
                add(raw);
                add(password);
                if let Ok(decoded) = percent_decode(password) {
                    add(&decoded);
                }
            }
        }
        // Unparseable: it may still hold a password somewhere, so hide all of it.
        Err(_) => add(raw),
    }
    // Longest first, so a password that contains another secret is masked whole.
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
}

/// Remembers a secret that is not a URL (a `.env` value such as an API token) so that [`scrub`]
/// removes it from any text.
pub fn register_secret(secret: &str) {
    let secret = secret.trim();
    // Shorter values (`1`, `on`, `dev`) would mask unrelated words.
    if secret.len() < 6 {
        return;
    }
    let mut secrets = SECRETS.lock().unwrap_or_else(PoisonError::into_inner);
    if !secrets.iter().any(|known| known == secret) {
        secrets.push(secret.to_owned());
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    }
}

fn percent_decode(s: &str) -> Result<String, std::str::Utf8Error> {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .map(std::borrow::Cow::into_owned)
}

/// Scrubs every string of a JSON value, keys included, before it is serialised: scrubbing the
/// serialised text would miss a password whose `"` or `\` the serialiser escaped.
pub fn scrub_json(value: &mut serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::String(s) => {
            if let Cow::Owned(clean) = scrub(s) {
                *s = clean;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(scrub_json),
        Value::Object(map) => {
            let entries = std::mem::take(map);
            for (key, mut item) in entries {
                scrub_json(&mut item);
                map.insert(scrub(&key).into_owned(), item);
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// A writer for diagnostics (`-vv`, `DBDEPLOY_LOG`) that scrubs what it writes: driver and
/// library log lines can carry a URL too.
#[derive(Debug, Clone, Copy, Default)]
pub struct ScrubbedStderr;

impl std::io::Write for ScrubbedStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        std::io::stderr()
            .lock()
            .write_all(scrub(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().lock().flush()
    }
}

/// Returns `text` with every known secret replaced by `***` and every URL password masked.
pub fn scrub(text: &str) -> Cow<'_, str> {
    let secrets = SECRETS.lock().unwrap_or_else(PoisonError::into_inner);
    let mut out = Cow::Borrowed(text);
    for secret in secrets.iter() {
        if out.contains(secret.as_str()) {
            out = Cow::Owned(out.replace(secret.as_str(), "***"));
        }
    }
    drop(secrets);
    match mask_userinfo(&out) {
        Some(masked) => Cow::Owned(masked),
        None => out,
    }
}

/// Masks the password of anything shaped like `scheme://user:password@host`.
fn mask_userinfo(text: &str) -> Option<String> {
    if !text.contains("://") {
        return None;
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut changed = false;
    while let Some(pos) = rest.find("://") {
        let (head, tail) = rest.split_at(pos + 3);
        out.push_str(head);
        let end = tail
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '`' | '<' | '>'))
            .unwrap_or(tail.len());
        let token = &tail[..end];
        match (token.rfind('@'), token.find(':')) {
            (Some(at), Some(colon)) if colon < at => {
                out.push_str(&token[..colon]);
                out.push_str(":***");
                out.push_str(&token[at..]);
                changed = true;
            }
            _ => out.push_str(token),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    changed.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_password_in_any_url() {
        let s = "error connecting to postgres://alice:s3cr%40t@db:5432/app: refused";
        assert_eq!(
            scrub(s),
            "error connecting to postgres://alice:***@db:5432/app: refused"
        );
    }

    #[test]
    fn masks_registered_password_even_outside_a_url() {
        register_url("mysql://bob:Very-Secret-Pw@localhost/db");
        assert_eq!(
            scrub("password Very-Secret-Pw was rejected"),
            "password *** was rejected"
        );
    }

    #[test]
    fn masks_percent_decoded_password() {
        register_url("postgres://u:p%40ss%3Aw0rd@h/db");
        assert_eq!(scrub("auth failed for p@ss:w0rd"), "auth failed for ***");
    }

    #[test]
    fn urls_without_a_password_stay_readable() {
        register_url("postgres://app@db.internal:5432/shop");
        assert_eq!(
            scrub("connected to postgres://app@db.internal:5432/shop"),
            "connected to postgres://app@db.internal:5432/shop"
        );
    }

    #[test]
    fn leaves_plain_text_alone() {
        assert!(matches!(scrub("nothing to hide"), Cow::Borrowed(_)));
        assert_eq!(scrub("sqlite://dev.db"), "sqlite://dev.db");
    }
}
