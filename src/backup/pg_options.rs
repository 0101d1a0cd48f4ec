//! `[backup] compression` and `jobs`: how `pg_dump` compresses a directory-format dump and
//! how many tables it dumps at once. `pg_dump -Fc`'s default (gzip level 6 on one core) is
//! most of a backup's time; level 1 on a client before 16, LZ4 from 16 on, costs a fraction
//! of it for a somewhat larger dump.

use std::fmt;
use std::str::FromStr;

/// A compression method for `pg_dump --compress`, with an optional level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    /// The fastest the client offers: LZ4 on `pg_dump` 16 or newer, gzip level 1 before.
    #[default]
    Auto,
    /// No compression.
    None,
    /// gzip, at a level 1–9 (`pg_dump`'s default level when `None`).
    Gzip(Option<u8>),
    /// LZ4 (`pg_dump` 16 or newer), at a level 1–12.
    Lz4(Option<u8>),
    /// Zstandard (`pg_dump` 16 or newer), at a level 1–22.
    Zstd(Option<u8>),
}

/// What the setting accepts, for error messages.
pub const ACCEPTED: &str = "\"auto\" (the default), \"none\", \"gzip\", \"gzip:1\" … \"gzip:9\", \"lz4\", \"lz4:1\" … \"lz4:12\", \"zstd\" or \"zstd:1\" … \"zstd:22\" (lz4 and zstd need pg_dump 16 or newer)";

impl FromStr for Compression {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("`[backup] compression = {s:?}` is not a compression: use {ACCEPTED}");
        let (method, level) = match s.split_once(':') {
            Some((m, l)) => (m, Some(l)),
            None => (s, None),
        };
        let level = |max: u8| -> Result<Option<u8>, String> {
            match level {
                None => Ok(None),
                Some(l) => match l.parse::<u8>() {
                    Ok(n) if (1..=max).contains(&n) => Ok(Some(n)),
                    _ => Err(bad()),
                },
            }
        };
        match method {
            "auto" if level(0)?.is_none() => Ok(Self::Auto),
            "none" if level(0)?.is_none() => Ok(Self::None),
            "gzip" => Ok(Self::Gzip(level(9)?)),
            "lz4" => Ok(Self::Lz4(level(12)?)),
            "zstd" => Ok(Self::Zstd(level(22)?)),
            _ => Err(bad()),
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let with = |f: &mut fmt::Formatter<'_>, m: &str, l: &Option<u8>| match l {
            Some(l) => write!(f, "{m}:{l}"),
            None => f.write_str(m),
        };
        match self {
            Self::Auto => f.write_str("auto"),
            Self::None => f.write_str("none"),
            Self::Gzip(l) => with(f, "gzip", l),
            Self::Lz4(l) => with(f, "lz4", l),
            Self::Zstd(l) => with(f, "zstd", l),
        }
    }
}

impl Compression {
    /// The `--compress` value for a `pg_dump` of major version `client`, or why this client
    /// cannot do it.
    ///
    /// # Errors
    /// LZ4 or Zstandard asked of a client older than 16.
    pub fn pg_dump_arg(self, client: u32) -> Result<String, String> {
        let modern = client >= 16;
        Ok(match self {
            Self::Auto if modern => "lz4".into(),
            Self::Auto => "1".into(),
            Self::None => "0".into(),
            Self::Gzip(None) => {
                if modern {
                    "gzip".into()
                } else {
                    "6".into()
                }
            }
            Self::Gzip(Some(l)) if modern => format!("gzip:{l}"),
            Self::Gzip(Some(l)) => l.to_string(),
            Self::Lz4(_) | Self::Zstd(_) if !modern => {
                return Err(format!(
                    "`[backup] compression = \"{self}\"` needs pg_dump 16 or newer, and this pg_dump is {client}: install a newer client, or use \"auto\" or \"gzip:1\""
                ));
            }
            Self::Lz4(None) => "lz4".into(),
            Self::Zstd(None) => "zstd".into(),
            Self::Lz4(Some(l)) => format!("lz4:{l}"),
            Self::Zstd(Some(l)) => format!("zstd:{l}"),
        })
    }
}

/// The most parallel jobs `[backup] jobs` accepts: each is a connection to the server.
pub const MAX_JOBS: i64 = 32;

/// Parallel jobs when `[backup] jobs` is not set: the cores, at most 4 (each job is a server
/// connection and a server backend working too).
#[must_use]
pub fn default_jobs() -> u32 {
    std::thread::available_parallelism()
        .map_or(1, |n| u32::try_from(n.get()).unwrap_or(1))
        .clamp(1, 4)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compression_is_chosen_from_the_client_version() {
        let c = |s: &str| s.parse::<Compression>().unwrap();
        assert_eq!(c("auto").pg_dump_arg(15).unwrap(), "1");
        assert_eq!(c("auto").pg_dump_arg(16).unwrap(), "lz4");
        assert_eq!(c("none").pg_dump_arg(15).unwrap(), "0");
        assert_eq!(c("gzip").pg_dump_arg(15).unwrap(), "6");
        assert_eq!(c("gzip:3").pg_dump_arg(15).unwrap(), "3");
        assert_eq!(c("gzip:3").pg_dump_arg(17).unwrap(), "gzip:3");
        assert_eq!(c("zstd:5").pg_dump_arg(16).unwrap(), "zstd:5");
        assert!(
            c("lz4")
                .pg_dump_arg(15)
                .unwrap_err()
                .contains("16 or newer")
        );
        for bad in [
            "", "gzip:0", "gzip:10", "lz4:13", "zstd:x", "brotli", "auto:1", "GZIP",
        ] {
            assert!(bad.parse::<Compression>().is_err(), "{bad}");
        }
        assert_eq!(c("zstd:22").to_string(), "zstd:22");
    }
}
