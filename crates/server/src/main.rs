//! The `conduit` binary: parse the command line and hand over to the library.

/// mimalloc instead of glibc malloc: Argon2 allocates 19 MiB per hash, and glibc keeps such
/// blocks in per-thread arenas after they are freed (resident memory grew to ~600 MiB after
/// 40 registrations); mimalloc returns them to the OS, so memory falls back after a burst.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    conduit_server::cli::main()
}
