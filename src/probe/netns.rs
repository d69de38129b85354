//! Runs work inside a container's network namespace.
//!
//! `setns` changes the namespace of the calling thread only, so each probe session gets a
//! dedicated OS thread with its own single-threaded runtime. Sockets opened there belong to
//! the container's network: its loopback, its interfaces, Docker's embedded DNS at
//! 127.0.0.11. The thread ends with the session, taking the namespace change with it.

use std::fs::File;

use nix::sched::{CloneFlags, setns};
use tokio::sync::oneshot;

/// Runs `task` in the network namespace of process `pid` and returns its output.
pub async fn run_in_namespace<T, F, Fut>(pid: u32, task: F) -> Result<T, String>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T>,
    T: Send + 'static,
{
    let (sender, receiver) = oneshot::channel();
    let spawned = std::thread::Builder::new().name(format!("netns-{pid}")).spawn(move || {
        let result = enter(pid).and_then(|()| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|error| format!("failed to start a runtime in the namespace: {error}"))?;
            Ok(runtime.block_on(task()))
        });
        let _ = sender.send(result);
    });
    if let Err(error) = spawned {
        return Err(format!("failed to start a probe thread: {error}"));
    }
    receiver.await.unwrap_or_else(|_| Err("the probe thread stopped without an answer".into()))
}

fn enter(pid: u32) -> Result<(), String> {
    let path = format!("/proc/{pid}/ns/net");
    let file = File::open(&path).map_err(|error| format!("failed to open `{path}`: {error}"))?;
    setns(&file, CloneFlags::CLONE_NEWNET).map_err(|error| format!("failed to enter the network namespace of process {pid}: {error}"))
}

/// Returns `Ok` when this process may enter the network namespace of `pid`: it can open the
/// namespace file and `setns` succeeds.
pub fn can_enter(pid: u32) -> Result<(), String> {
    let path = format!("/proc/{pid}/ns/net");
    File::open(&path).map_err(|error| format!("cannot open `{path}` ({error})"))?;
    if !nix::unistd::geteuid().is_root() {
        return Err("entering another network namespace needs root".into());
    }
    // Root is not always enough: in a container without `CAP_SYS_ADMIN`, `setns` fails with
    // EPERM. Try it on a throw-away thread, whose namespace change ends with the thread.
    std::thread::Builder::new()
        .name(format!("netns-check-{pid}"))
        .spawn(move || enter(pid))
        .map_err(|error| format!("failed to start a probe thread: {error}"))?
        .join()
        .unwrap_or_else(|_| Err("the probe thread stopped without an answer".into()))
}
