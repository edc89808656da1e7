//! The `tessera` binary.

fn main() -> std::process::ExitCode {
    return_large_blocks();
    tessera_server::cli::main()
}

/// Blocks of 1 MiB and more (Argon2's 19 MiB working memory) are mapped
/// for themselves and unmapped when freed. Left to itself, glibc raises
/// that threshold to the size of the first such block freed, so that every
/// later login's memory comes from an arena and stays there: an idle
/// server would hold the memory of the last logins it served.
fn return_large_blocks() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; it is called before
    // any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}
