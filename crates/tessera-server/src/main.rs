//! The `tessera` binary.

fn main() -> std::process::ExitCode {
    return_large_blocks();
    trim_when_quiet();
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

/// glibc keeps the pages of memory freed inside its arenas (it gives back
/// only the top of each): after a burst of work (the start, a login, a
/// crowd of connections opened and parked) the process stays at its high
/// water mark. A thread of its own looks at the process's CPU time every
/// [`trim::TICK`]; when a quiet tick follows at least [`trim::BURST`] of
/// work since the last trim, it calls `malloc_trim(0)`, which gives the
/// free pages of every arena back. Never while the process is busy, so no
/// request waits on an arena locked by a trim. Measured: an idle server
/// after one login 29.7 -> 27.3 MB; holding 10,000 idle connections 73.5
/// -> 47.4 MB.
fn trim_when_quiet() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // Without its thread the process only keeps more memory.
        let _ = std::thread::Builder::new()
            .name("tessera-trim".into())
            .stack_size(64 * 1024)
            .spawn(trim::run);
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod trim {
    use std::time::Duration;

    /// How often the thread looks.
    pub const TICK: Duration = Duration::from_millis(250);
    /// CPU time in one tick under which the process is quiet.
    const QUIET: Duration = Duration::from_millis(2);
    /// CPU time since the last trim worth a trim.
    pub const BURST: Duration = Duration::from_millis(20);

    /// The thread's loop: looks every [`TICK`], trims after a burst once
    /// quiet; never returns.
    pub fn run() {
        let mut last = cpu_time();
        let mut since_trim = Duration::ZERO;
        loop {
            std::thread::sleep(TICK);
            let now = cpu_time();
            let used = now.saturating_sub(last);
            last = now;
            since_trim += used;
            if used < QUIET && since_trim >= BURST {
                // SAFETY: malloc_trim takes each arena's lock itself.
                unsafe {
                    libc::malloc_trim(0);
                }
                since_trim = Duration::ZERO;
                // The trim's own time is not work to trim after.
                last = cpu_time();
            }
        }
    }

    /// The CPU time all the process's threads have used.
    fn cpu_time() -> Duration {
        // SAFETY: getrusage writes the struct it is given; all zeros is a
        // valid rusage.
        let usage = unsafe {
            let mut usage: libc::rusage = std::mem::zeroed();
            libc::getrusage(libc::RUSAGE_SELF, &mut usage);
            usage
        };
        let micros = |t: libc::timeval| {
            Duration::from_secs(u64::try_from(t.tv_sec).unwrap_or(0))
                + Duration::from_micros(u64::try_from(t.tv_usec).unwrap_or(0))
        };
        micros(usage.ru_utime) + micros(usage.ru_stime)
    }
}
