//! The one integration test binary: scenarios against real servers, through the CLI.

mod common;
mod config_errors;
mod external_command;
mod formats_flyway_drizzle_sql;
mod formats_sqlx_dbmate_golang;
mod migrate;
mod safety_net;
mod scenarios;
mod schema_fingerprint;
