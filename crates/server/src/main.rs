//! The `conduit` binary: parse the command line and hand over to the library.

fn main() -> std::process::ExitCode {
    conduit_server::cli::main()
}
