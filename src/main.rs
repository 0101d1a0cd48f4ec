//! The `dbdeploy` binary: parse the command line and hand over to the library,
//! so every behaviour stays testable from `lib.rs`.

fn main() -> std::process::ExitCode {
    dbdeploy::main()
}
