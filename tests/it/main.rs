//! The one integration test binary: scenarios against real servers, through the CLI.

mod bad_input;
mod common;
mod concurrency;
mod config_errors;
mod faults;
mod migrate;
mod proptests;
mod safety_net;
mod scenarios;
mod schema_fingerprint;
