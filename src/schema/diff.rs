//! Comparing two snapshot texts: a unified diff for people who read the details, and a change
//! list (`public.users: column nickname added`) for one-line drift messages.
//!
//! The change list compares the two texts object by object rather than walking diff hunks:
//! a line-diff may pair a removed table's lines with a similar neighbour's, which would blame
//! the wrong object.

use std::collections::BTreeMap;
use std::fmt;

use similar::TextDiff;

/// A unified diff from `old` to `new` under the given labels; empty when the texts are equal.
#[must_use]
pub fn diff(old: &str, new: &str, old_label: &str, new_label: &str) -> String {
    if old == new {
        return String::new();
    }
    TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(old_label, new_label)
        .to_string()
}

/// How an object or one of its facts differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// Only in the new text.
    Added,
    /// Only in the old text.
    Removed,
    /// In both, with a different definition.
    Changed,
}

impl ChangeKind {
    fn word(self) -> &'static str {
        match self {
            ChangeKind::Added => "added",
            ChangeKind::Removed => "removed",
            ChangeKind::Changed => "changed",
        }
    }
}

/// One difference between two snapshots, shown as `object: what how`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The object's kind (`table`, `view`, `sequence`...).
    pub kind: String,
    /// The object's name as in the text (`public.users`, `users`).
    pub object: String,
    /// The fact that differs (`column nickname`, `index users_email_key`), or `None` when the
    /// whole object was added or removed.
    pub item: Option<String>,
    /// How it differs.
    pub change: ChangeKind,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = self.item.as_deref().unwrap_or(&self.kind);
        write!(f, "{}: {what} {}", self.object, self.change.word())
    }
}

/// Facts whose second word is a name, so that a changed definition reads as one change.
const NAMED_FACTS: &[&str] = &[
    "column",
    "index",
    "constraint",
    "trigger",
    "policy",
    "parameter",
];

/// Facts that are whole lines (unnamed constraints): one can be added beside another.
const LINE_FACTS: &[&str] = &["unique", "check", "foreign_key"];

/// What identifies a fact within its object.
fn fact_key(fact: &str) -> String {
    let first = fact.split(' ').next().unwrap_or(fact);
    if LINE_FACTS.contains(&first) {
        return fact.to_owned();
    }
    if NAMED_FACTS.contains(&first) {
        let rest = &fact[first.len()..].trim_start();
        return format!("{first} {}", first_token(rest));
    }
    first.to_owned()
}

/// The leading name of `text`: a double-quoted identifier (quotes doubled inside) or a word.
fn first_token(text: &str) -> &str {
    if let Some(body) = text.strip_prefix('"') {
        let mut i = 0;
        let b = body.as_bytes();
        while i < b.len() {
            if b[i] == b'"' {
                if b.get(i + 1) == Some(&b'"') {
                    i += 2;
                    continue;
                }
                return &text[..i + 2];
            }
            i += 1;
        }
        return text;
    }
    text.split(' ').next().unwrap_or(text)
}

/// A parsed snapshot: header line -> fact key -> fact lines, in text order.
type Parsed<'a> = Vec<(&'a str, BTreeMap<String, Vec<&'a str>>)>;

fn parse(text: &str) -> Parsed<'_> {
    let mut out: Parsed<'_> = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        if let Some(fact) = line.strip_prefix("  ") {
            if let Some((_, facts)) = out.last_mut() {
                facts.entry(fact_key(fact)).or_default().push(fact);
            }
        } else {
            out.push((line, BTreeMap::new()));
        }
    }
    out
}

fn header_parts(header: &str) -> (String, String) {
    match header.split_once(' ') {
        Some((kind, name)) => (kind.to_owned(), name.to_owned()),
        None => (header.to_owned(), String::new()),
    }
}

/// Every difference from `old` to `new`, object by object: objects in the order of the new
/// text (removed ones where they stood in the old), facts in key order.
#[must_use]
pub fn changes(old: &str, new: &str) -> Vec<Change> {
    let old = parse(old);
    let new = parse(new);
    let old_by_header: BTreeMap<&str, &BTreeMap<String, Vec<&str>>> =
        old.iter().map(|(h, f)| (*h, f)).collect();
    let new_headers: BTreeMap<&str, ()> = new.iter().map(|(h, _)| (*h, ())).collect();
    let mut out = Vec::new();
    let object_change = |header: &str, change| {
        let (kind, object) = header_parts(header);
        Change {
            kind,
            object,
            item: None,
            change,
        }
    };
    for (header, new_facts) in &new {
        let Some(old_facts) = old_by_header.get(header) else {
            out.push(object_change(header, ChangeKind::Added));
            continue;
        };
        let (kind, object) = header_parts(header);
        let keys: std::collections::BTreeSet<&String> =
            old_facts.keys().chain(new_facts.keys()).collect();
        for key in keys {
            let change = match (old_facts.get(key), new_facts.get(key)) {
                (None, Some(_)) => ChangeKind::Added,
                (Some(_), None) => ChangeKind::Removed,
                (Some(a), Some(b)) if a != b => ChangeKind::Changed,
                _ => continue,
            };
            out.push(Change {
                kind: kind.clone(),
                object: object.clone(),
                item: Some(key.clone()),
                change,
            });
        }
    }
    // Removed objects go after the rest; their place in the new text does not exist.
    for (header, _) in &old {
        if !new_headers.contains_key(header) {
            out.push(object_change(header, ChangeKind::Removed));
        }
    }
    out
}

/// The changes on one line for a drift message, at most `limit` of them named:
/// `public.users: column nickname added; public.posts: index x removed (and 3 more)`.
/// Empty when nothing differs.
#[must_use]
pub fn summary(old: &str, new: &str, limit: usize) -> String {
    let all = changes(old, new);
    let shown: Vec<String> = all
        .iter()
        .take(limit.max(1))
        .map(ToString::to_string)
        .collect();
    let mut line = shown.join("; ");
    if all.len() > shown.len() {
        line.push_str(&format!(" (and {} more)", all.len() - shown.len()));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD: &str = "# dbdeploy schema fingerprint v1 postgresql\n\
        schema public\n\
        table public.posts\n\
        \x20 column id integer not null\n\
        \x20 column title text\n\
        \x20 index posts_title_idx btree (title)\n\
        table public.users\n\
        \x20 column id integer not null\n\
        \x20 column email text not null\n\
        \x20 constraint users_pkey PRIMARY KEY (id)\n\
        view public.recent\n\
        \x20 definition SELECT 1\n";

    fn strings(old: &str, new: &str) -> Vec<String> {
        changes(old, new).iter().map(ToString::to_string).collect()
    }

    #[test]
    fn equal_texts_have_no_diff_and_no_changes() {
        assert_eq!(diff(OLD, OLD, "a", "b"), "");
        assert!(changes(OLD, OLD).is_empty());
        assert_eq!(summary(OLD, OLD, 3), "");
    }

    #[test]
    fn an_added_column_is_named_with_its_table() {
        let new = OLD.replace(
            "  column email text not null\n",
            "  column email text not null\n  column nickname text\n",
        );
        assert_eq!(strings(OLD, &new), ["public.users: column nickname added"]);
        let d = diff(OLD, &new, "recorded", "live");
        assert!(d.starts_with("--- recorded\n+++ live\n@@ "), "{d}");
        assert!(d.contains("\n+  column nickname text\n"), "{d}");
        assert!(
            d.contains("\n   column email text not null\n"),
            "context: {d}"
        );
    }

    #[test]
    fn removed_and_changed_facts_are_told_apart() {
        let new = OLD
            .replace("  index posts_title_idx btree (title)\n", "")
            .replace("column title text", "column title varchar(10)")
            .replace("definition SELECT 1", "definition SELECT 2");
        assert_eq!(
            strings(OLD, &new),
            [
                "public.posts: column title changed",
                "public.posts: index posts_title_idx removed",
                "public.recent: definition changed",
            ]
        );
    }

    #[test]
    fn whole_objects_added_and_removed() {
        let new = OLD.replace("view public.recent\n  definition SELECT 1\n", "")
            + "table public.tags\n  column id integer\n";
        assert_eq!(
            strings(OLD, &new),
            ["public.tags: table added", "public.recent: view removed"]
        );
    }

    #[test]
    fn unnamed_constraints_count_one_by_one() {
        let old = "table t\n  unique (a)\n";
        let new = "table t\n  unique (a)\n  unique (b)\n  check (a > 0)\n";
        assert_eq!(
            strings(old, new),
            ["t: check (a > 0) added", "t: unique (b) added"]
        );
    }

    #[test]
    fn quoted_names_stay_whole() {
        let old = "table \"my t\"\n  column \"a b\" text\n";
        let new = "table \"my t\"\n  column \"a b\" integer\n";
        assert_eq!(strings(old, new), ["\"my t\": column \"a b\" changed"]);
        assert_eq!(first_token("\"a\"\"b\" x"), "\"a\"\"b\"");
        assert_eq!(first_token("\"open"), "\"open");
    }

    #[test]
    fn summary_names_the_first_changes_and_counts_the_rest() {
        let new = OLD
            .replace("  column title text\n", "")
            .replace("  column email text not null\n", "")
            .replace("definition SELECT 1", "definition SELECT 2");
        assert_eq!(
            summary(OLD, &new, 2),
            "public.posts: column title removed; public.users: column email removed (and 1 more)"
        );
        assert_eq!(
            summary(OLD, &new, 10),
            "public.posts: column title removed; public.users: column email removed; \
             public.recent: definition changed"
        );
    }
}
