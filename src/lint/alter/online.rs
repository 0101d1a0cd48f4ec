//! MySQL/MariaDB online DDL: which algorithm (INSTANT, INPLACE with or without a rebuild,
//! COPY) the server runs a clause with, by product and version, and the failure of an
//! `ALGORITHM=` it cannot honour.

use sqlparser::ast::AlterTableAlgorithm;

use super::Clause;
use crate::lint::context::{Ctx, Hit};
use crate::lint::facts::{Product, Work};
use crate::lint::finding::{Blocks, Level};

/// How MySQL/MariaDB runs one clause.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Online {
    pub(super) algorithm: AlterTableAlgorithm,
    pub(super) rebuild: bool,
    /// Concurrent writes allowed (`LOCK=NONE`).
    pub(super) dml: bool,
}

impl Online {
    pub(super) const INSTANT: Online = Online {
        algorithm: AlterTableAlgorithm::Instant,
        rebuild: false,
        dml: true,
    };
    pub(super) const METADATA: Online = Online {
        algorithm: AlterTableAlgorithm::Inplace,
        rebuild: false,
        dml: true,
    };
    pub(super) const REBUILD: Online = Online {
        algorithm: AlterTableAlgorithm::Inplace,
        rebuild: true,
        dml: true,
    };
    pub(super) const COPY: Online = Online {
        algorithm: AlterTableAlgorithm::Copy,
        rebuild: true,
        dml: false,
    };

    pub(super) fn lock(self) -> String {
        let algorithm = match self.algorithm {
            AlterTableAlgorithm::Instant => "INSTANT",
            AlterTableAlgorithm::Inplace => "INPLACE",
            AlterTableAlgorithm::Copy => "COPY",
            AlterTableAlgorithm::Default => "DEFAULT",
        };
        if self.algorithm == AlterTableAlgorithm::Instant {
            format!("ALGORITHM={algorithm}")
        } else {
            format!(
                "ALGORITHM={algorithm}, LOCK={}",
                if self.dml { "NONE" } else { "SHARED" }
            )
        }
    }

    pub(super) fn blocks(self) -> Blocks {
        if self.dml {
            Blocks::Nothing
        } else {
            Blocks::Writes
        }
    }

    pub(super) fn work(self) -> Work {
        if self.rebuild {
            Work::Rewrite
        } else {
            Work::Metadata
        }
    }

    pub(super) fn rank(algorithm: AlterTableAlgorithm) -> u8 {
        match algorithm {
            AlterTableAlgorithm::Instant => 3,
            AlterTableAlgorithm::Inplace => 2,
            AlterTableAlgorithm::Copy => 1,
            AlterTableAlgorithm::Default => 0,
        }
    }
}

/// Whether the MySQL/MariaDB server adds (`drop: false`) or drops a column instantly:
/// `Some(true)`/`Some(false)` when the version is known, `None` when not.
pub(super) fn mysql_instant_column(ctx: &Ctx<'_>, drop: bool, positioned: bool) -> Option<bool> {
    let server = ctx.facts.server?;
    Some(match server.product {
        Product::MySql if drop || positioned => server.version >= (8, 0, 29),
        Product::MySql => server.version >= (8, 0, 12),
        Product::MariaDb if drop || positioned => server.version >= (10, 4, 0),
        Product::MariaDb => server.version >= (10, 3, 2),
        _ => false,
    })
}

/// The online-DDL line for an added or dropped column.
pub(super) fn column_online(ctx: &Ctx<'_>, drop: bool, positioned: bool) -> (Online, String) {
    match mysql_instant_column(ctx, drop, positioned) {
        Some(true) => (Online::INSTANT, "instant (catalog only)".to_owned()),
        Some(false) => (
            Online::REBUILD,
            "rebuilt in place (concurrent writes allowed, the table is copied)".to_owned(),
        ),
        None => (
            Online::REBUILD,
            format!(
                "instant on {}, otherwise rebuilt in place",
                if drop || positioned {
                    "MySQL 8.0.29+ and MariaDB 10.4+"
                } else {
                    "MySQL 8.0.12+ and MariaDB 10.3.2+"
                }
            ),
        ),
    }
}

/// Emits a MySQL clause's finding with its online-DDL lock, and the failure of a requested
/// `ALGORITHM=` the server cannot honour for it.
pub(super) fn emit_mysql(ctx: &mut Ctx<'_>, clause: &Clause<'_, '_>, online: Online, hit: Hit) {
    let hit = hit
        .on(clause.table, online.work())
        .lock(online.lock(), online.blocks());
    if let Some(requested) = clause.requested
        && requested != AlterTableAlgorithm::Default
        && Online::rank(requested) > Online::rank(online.algorithm)
        && ctx.facts.server.is_some()
    {
        let mut fail = Hit::new(
            "mysql-algorithm-unsupported",
            Level::High,
            format!(
                "fails: the server cannot run this clause ({}) with the requested algorithm ({})",
                hit.code,
                Online {
                    algorithm: requested,
                    ..online
                }
                .lock()
            ),
        )
        .suggest("remove the ALGORITHM clause or split the statement; see the clause's own finding for what the server does");
        fail.line = hit.line;
        fail.table.clone_from(&hit.table);
        ctx.emit(fail);
    }
    ctx.emit(hit);
}
