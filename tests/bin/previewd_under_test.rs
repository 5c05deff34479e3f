//! The `previewd` command built inside this package, so that its integration tests and benches
//! can run the real server out of process: Cargo hands them the path of this package's binaries
//! only (`CARGO_BIN_EXE_previewd-under-test`; see `harness/external.rs`).

fn main() -> std::process::ExitCode {
    previewd::cli::main()
}
