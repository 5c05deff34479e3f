//! The `previewd` binary: the command line itself is [`previewd::cli`].

fn main() -> std::process::ExitCode {
    previewd::cli::main()
}
