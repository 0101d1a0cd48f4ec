//! The MySQL/MariaDB restore for a user who may not create schemas (so no scratch schema and
//! swap, see `mysql_swap.rs`): the dump's DEFINER clauses are checked against the user's
//! privileges before anything is dropped, the state is recorded, then what exists is dropped
//! and the dump loaded in place.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};

use super::mysql::MySqlBackup;
use super::mysql_swap::{Objects, ddl, failed, load, q};
use super::{BackupError, Marker, Stopped, scalar_int, scalar_text};
use crate::engine::{Database, Stmt};

/// The restore for a user who may not create schemas: drop what exists, then load. Checks
/// first that the dump's DEFINER clauses are ones this user may set, and records the state
/// before the drop.
pub(super) async fn in_place<D: Database>(
    client: &MySqlBackup,
    tool: &str,
    db: &mut D,
    file: &File,
    marker: &mut Marker,
) -> Result<(), Stopped> {
    let definers = definers(file).map_err(Stopped::unchanged)?;
    if !definers.is_empty() {
        may_set_definers(db, &definers)
            .await
            .map_err(Stopped::unchanged)?;
    }
    let live = Objects::of(db, &client.database)
        .await
        .map_err(|e| Stopped::unchanged(failed("reading the live objects", e)))?;
    let mut dropped: Vec<String> = Vec::new();
    let listed = |dropped: &[String]| {
        if dropped.is_empty() {
            "nothing".to_owned()
        } else {
            dropped.join(", ")
        }
    };
    marker
        .update(
            db,
            "restoring in place (this user may not create a scratch schema): the live tables, views and routines were being dropped and the backup loaded; the database may be partly restored",
        )
        .await
        .map_err(|e| Stopped::unchanged(failed("recording the restore", e)))?;
    let _ = db.execute(&Stmt::raw("SET FOREIGN_KEY_CHECKS = 0")).await;
    let mut drops: Vec<(String, String)> = live
        .views
        .iter()
        .map(|v| ("VIEW".to_owned(), v.clone()))
        .chain(live.tables.iter().map(|t| ("TABLE".to_owned(), t.clone())))
        .chain(live.routines.iter().cloned())
        .collect();
    drops.sort_by_key(|(k, _)| k != "VIEW");
    for (kind, name) in drops {
        let sql = format!("DROP {kind} IF EXISTS {}", q(&name));
        if let Err(e) = ddl(db, &sql).await {
            let _ = db.execute(&Stmt::raw("SET FOREIGN_KEY_CHECKS = 1")).await;
            let detail = format!("dropped before the stop: {}", listed(&dropped));
            return Err(if dropped.is_empty() {
                Stopped::unchanged(failed("emptying the database before the restore", e))
            } else {
                Stopped::partial(
                    detail,
                    failed("emptying the database before the restore", e),
                )
            });
        }
        dropped.push(format!("{} `{name}`", kind.to_ascii_lowercase()));
    }
    let _ = db.execute(&Stmt::raw("SET FOREIGN_KEY_CHECKS = 1")).await;
    load(client, tool, &client.database, file)
        .await
        .map_err(|e| {
            Stopped::partial(
                format!(
                    "everything was dropped ({}) and loading the backup stopped part-way",
                    listed(&dropped)
                ),
                e,
            )
            .interrupted(crate::interrupt::requested())
        })
}

/// The `user@host` of every `DEFINER=` clause in the dump, streamed (dumps can be large).
fn definers(file: &File) -> Result<Vec<String>, BackupError> {
    let io = |e: std::io::Error| failed("reading the backup file", e);
    let mut input = file.try_clone().map_err(io)?;
    input.seek(SeekFrom::Start(0)).map_err(io)?;
    const KEY: &[u8] = b"DEFINER=";
    let mut found: Vec<String> = Vec::new();
    let mut carry: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = input.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        carry.extend_from_slice(&buf[..n]);
        let mut i = 0;
        while let Some(at) = find(&carry[i..], KEY) {
            let start = i + at + KEY.len();
            // `user`@`host`: a clause cut by the end of the chunk is read again with the
            // next one (the last 512 bytes are kept).
            if let Some(value) = definer_at(&carry[start..(start + 400).min(carry.len())])
                && !found.contains(&value)
            {
                found.push(value);
            }
            i = start;
        }
        let keep_from = carry.len().saturating_sub(512);
        carry.drain(..keep_from);
    }
    input.seek(SeekFrom::Start(0)).map_err(io)?;
    Ok(found)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Reads `` `user`@`host` `` (backquotes doubled inside) at the start of `b`.
fn definer_at(b: &[u8]) -> Option<String> {
    fn quoted(b: &[u8]) -> Option<(String, usize)> {
        if b.first() != Some(&b'`') {
            return None;
        }
        let mut out = Vec::new();
        let mut i = 1;
        while i < b.len() {
            if b[i] == b'`' {
                if b.get(i + 1) == Some(&b'`') {
                    out.push(b'`');
                    i += 2;
                    continue;
                }
                return Some((String::from_utf8_lossy(&out).into_owned(), i + 1));
            }
            out.push(b[i]);
            i += 1;
        }
        None
    }
    let (user, n) = quoted(b)?;
    if b.get(n) != Some(&b'@') {
        return None;
    }
    let (host, _) = quoted(&b[n + 1..])?;
    Some(format!("{user}@{host}"))
}

/// Refuses, before anything is dropped, a dump whose DEFINER clauses name another user when
/// this one may not set them (SUPER, MariaDB's SET USER, MySQL's SET_USER_ID or
/// SET_ANY_DEFINER).
async fn may_set_definers<D: Database>(db: &mut D, definers: &[String]) -> Result<(), BackupError> {
    let what = "checking the privileges the backup needs";
    let me = scalar_text(db, &Stmt::raw("SELECT CURRENT_USER()"))
        .await
        .map_err(|e| failed(what, e))?
        .unwrap_or_default();
    let others: Vec<&String> = definers.iter().filter(|d| **d != me).collect();
    if others.is_empty() {
        return Ok(());
    }
    let privileged = scalar_int(
        db,
        &Stmt::raw(
            "SELECT COUNT(*) FROM information_schema.USER_PRIVILEGES WHERE PRIVILEGE_TYPE IN ('SUPER', 'SET USER', 'SET_USER_ID', 'SET_ANY_DEFINER')",
        ),
    )
    .await
    .map_err(|e| failed(what, e))?
    .unwrap_or(0)
        > 0;
    if privileged {
        return Ok(());
    }
    Err(failed(
        what,
        format!(
            "the backup creates objects with DEFINER {}, and `{me}` may not set another definer (it needs SUPER, SET USER on MariaDB or SET_USER_ID on MySQL); nothing was dropped. Restore as a user with that privilege, or let this user create schemas (the restore then runs through a scratch schema)",
            others
                .iter()
                .map(|d| format!("`{d}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn definers_are_read_from_dump_text() {
        assert_eq!(
            definer_at(b"`root`@`localhost`*/ trigger").as_deref(),
            Some("root@localhost")
        );
        assert_eq!(definer_at(b"`a``b`@`%` x").as_deref(), Some("a`b@%"));
        assert_eq!(definer_at(b"CURRENT_USER"), None);
        let mut f = tempfile::tempfile().unwrap();
        std::io::Write::write_all(
            &mut f,
            b"/*!50017 DEFINER=`root`@`localhost`*/ ... CREATE DEFINER=`app`@`%` PROCEDURE p() ... DEFINER=`root`@`localhost`",
        )
        .unwrap();
        assert_eq!(definers(&f).unwrap(), vec!["root@localhost", "app@%"]);
    }
}
