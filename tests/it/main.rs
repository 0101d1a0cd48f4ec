//! The one integration test binary: scenarios against real servers, through the CLI.

mod approval;
mod bad_input;
mod common;
mod concurrency;
mod config_errors;
mod ddl_lock;
mod drift_stamp;
mod error_causes;
mod external_command;
mod failure_report;
mod faults;
mod first_deploy;
mod formats_flyway_drizzle_sql;
mod formats_sqlx_dbmate_golang;
mod migrate;
mod permissions;
mod proptests;
mod safety_net;
mod scenarios;
mod schema_fingerprint;
mod session_state;
mod snapshots;
