//! The `conduit` binary: parse the command line and hand over to the library.

/// mimalloc: glibc kept Argon2's freed 19 MiB blocks in its arenas (581 MiB resident after 40
/// registrations; BENCHMARKS.md, "2026-11-23, issue 2").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc.h, v2 and v3 alike. libmimalloc-sys 0.1.49 names no
/// constant for it (its `extended` module stops at 14 and resumes at 16).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// No transparent huge pages, set from a constructor before the first allocation (RSS after
/// start 27.0 -> 17.7 MiB; BENCHMARKS.md, "2026-11-30, issue 16 (second part)").
/// MIMALLOC_ALLOW_THP=1 keeps them.
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
    // Purge freed memory at once: the delay elapses only when the freeing thread allocates
    // again (idle RSS after seeding 51 -> 31 MiB; BENCHMARKS.md, "2026-11-24, issue 5").
    // MIMALLOC_PURGE_DELAY still overrides this.
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
