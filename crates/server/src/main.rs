//! The `conduit` binary: parse the command line and hand over to the library.

/// mimalloc instead of glibc malloc: Argon2 allocates 19 MiB per hash, and glibc keeps such
/// blocks in per-thread arenas after they are freed (resident memory grew to ~600 MiB after
/// 40 registrations); mimalloc returns them to the OS, so memory falls back after a burst.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc.h (v2 and v3); libmimalloc-sys names no constant for it.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// No transparent huge pages: mimalloc asks for them on its arena (`madvise`), and each touched
/// 2 MiB of it then became resident at once (idle RSS straight after start: 27 MiB with them,
/// 18 MiB without; BENCHMARKS.md, the framework ceiling). The process opts out before anything
/// is allocated, from a constructor run before `main` (in `main`, the runtime's first pages were
/// already huge). MIMALLOC_ALLOW_THP=1 keeps them.
#[cfg(target_os = "linux")]
#[used]
#[allow(unsafe_code)]
#[unsafe(link_section = ".init_array")]
static NO_HUGE_PAGES: extern "C" fn() = no_huge_pages;

#[cfg(target_os = "linux")]
extern "C" fn no_huge_pages() {
    if std::env::var_os("MIMALLOC_ALLOW_THP").is_none_or(|v| v == "0") {
        // SAFETY: PR_SET_THP_DISABLE takes plain integers and changes only how later page
        // faults of this process are served.
        #[allow(unsafe_code)]
        unsafe {
            libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0)
        };
    }
}

fn main() -> std::process::ExitCode {
    // Give freed memory back at once rather than after mimalloc's purge delay, which only
    // elapses when the freeing thread allocates again: an idle server otherwise keeps what its
    // last burst freed (idle RSS after seeding 300 articles: 51 MiB before, 31 MiB after, with
    // no measurable cost in throughput). MIMALLOC_PURGE_DELAY still overrides this.
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets one global option before any other thread exists; mimalloc reads it
        // atomically on each purge.
        #[allow(unsafe_code)]
        unsafe {
            libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0)
        };
    }
    conduit_server::cli::main()
}
