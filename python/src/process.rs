//! The tokio runtime of this process: one worker thread, started by the
//! first verification that needs it (never at import or construction, so a
//! server that imports the application and then forks, as gunicorn
//! `--preload` does, forks no thread), and again in a forked child, whose
//! copy of the parent's runtime has no threads behind it.

use std::sync::{Mutex, PoisonError};
use tokio::runtime::{Handle, Runtime};

/// The runtime and the process it was started in.
static RUNTIME: Mutex<Option<(u32, &'static Runtime)>> = Mutex::new(None);

/// The runtime of the calling process, started if this process has none.
pub fn runtime() -> Result<Handle, String> {
    let pid = std::process::id();
    let mut slot = RUNTIME.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((owner, runtime)) = *slot
        && owner == pid
    {
        return Ok(runtime.handle().clone());
    }
    // A runtime inherited through fork() is left alone: its threads do not
    // exist here, and dropping it would wait for them. It is leaked, as the
    // process's own one is: both live until the process ends, and their
    // threads (which never touch Python) end with it.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("tessera-verify")
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the follower's thread: {e}"))?;
    let runtime: &'static Runtime = Box::leak(Box::new(runtime));
    *slot = Some((pid, runtime));
    Ok(runtime.handle().clone())
}
