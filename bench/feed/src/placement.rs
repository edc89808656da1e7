//! Where the driver's threads run. On a machine of two cores or more,
//! bench/feed.sh pins Tessera to one core with `taskset` and tells the
//! driver (`FEED_STORM_CORE`, `FEED_SERVICE_CORE`) to put the storm of
//! revocations beside it and the service under load on another: in a real
//! deployment Tessera and the services that follow its feed do not share a
//! machine, and on two shared cores an unpinned run measures the storm's own
//! CPU (Tessera answering 1,000 revocations a second) rather than what
//! following the feed costs the service. PostgreSQL, shared with the
//! machine, stays where its scheduler puts it.

/// The cores the driver's parts run on; `None` leaves a part unpinned.
#[derive(Debug, Clone, Copy, Default)]
pub struct Placement {
    /// The storm's thread (the core Tessera is pinned to).
    pub storm: Option<usize>,
    /// Every other thread: the service, its load, the followers.
    pub service: Option<usize>,
}

impl Placement {
    /// The placement bench/feed.sh asked for; unpinned without it.
    pub fn from_env() -> Result<Self, String> {
        let core = |name: &str| match std::env::var(name) {
            Err(_) => Ok(None),
            Ok(text) => text
                .parse::<usize>()
                .map(Some)
                .map_err(|_| format!("{name}=`{text}` is not a core number")),
        };
        Ok(Self {
            storm: core("FEED_STORM_CORE")?,
            service: core("FEED_SERVICE_CORE")?,
        })
    }

    /// How the table's header describes it.
    pub fn describe(&self) -> String {
        match (self.storm, self.service) {
            (Some(storm), Some(service)) => format!(
                "Tessera and the storm on core {storm}, the service, its load and the followers on core {service}"
            ),
            _ => "every part unpinned, sharing the machine's cores".to_owned(),
        }
    }
}

/// Pins the calling thread to `core`, if one is given; says so on stderr
/// when the system refuses (the run goes on unpinned).
pub fn pin(core: Option<usize>) {
    if let Some(id) = core
        && !core_affinity::set_for_current(core_affinity::CoreId { id })
    {
        eprintln!("feed_bench: could not pin a thread to core {id}; running unpinned");
    }
}
