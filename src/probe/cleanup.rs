//! Removal of probe containers when ci-doctor is interrupted or panics.
//!
//! Every probe container is registered here while it exists. On SIGINT, SIGTERM or a panic,
//! [`remove_all`] deletes them with plain blocking requests to the Docker socket, because the
//! async runtime may be the very thing that is being torn down.

use std::io::{Read, Write};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// The Docker endpoint and the probe containers that exist right now.
#[derive(Default)]
struct Registry {
    endpoint: String,
    containers: Vec<String>,
}

fn registry() -> &'static Mutex<Registry> {
    static REGISTRY: OnceLock<Mutex<Registry>> = OnceLock::new();
    REGISTRY.get_or_init(|| Mutex::new(Registry::default()))
}

/// Records that probe container `name` exists on `endpoint`.
pub fn register(endpoint: &str, name: &str) {
    let mut registry = registry().lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    registry.endpoint = endpoint.to_string();
    registry.containers.push(name.to_string());
}

/// Records that probe container `name` is gone.
pub fn unregister(name: &str) {
    let mut registry = registry().lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    registry.containers.retain(|known| known != name);
}

/// Force-removes every registered probe container; returns how many requests succeeded.
pub fn remove_all() -> usize {
    let (endpoint, names) = {
        let mut registry = registry().lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        (registry.endpoint.clone(), std::mem::take(&mut registry.containers))
    };
    names.iter().filter(|name| delete(&endpoint, name).is_ok()).count()
}

/// `DELETE /containers/<name>?force=true` over the endpoint, without a runtime.
fn delete(endpoint: &str, name: &str) -> std::io::Result<()> {
    let request = format!("DELETE /containers/{name}?force=true HTTP/1.0\r\nHost: docker\r\n\r\n");
    let mut answer = [0u8; 64];
    if let Some(path) = endpoint.strip_prefix("unix://") {
        let mut stream = std::os::unix::net::UnixStream::connect(path)?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        stream.write_all(request.as_bytes())?;
        let _ = stream.read(&mut answer)?;
    } else if let Some(address) = endpoint.strip_prefix("tcp://").or_else(|| endpoint.strip_prefix("http://")) {
        let mut stream = std::net::TcpStream::connect(address.trim_end_matches('/'))?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        stream.write_all(request.as_bytes())?;
        let _ = stream.read(&mut answer)?;
    }
    Ok(())
}

/// Removes probe containers before the default panic message, so a panic leaves none behind.
pub fn install_panic_hook() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        remove_all();
        default(info);
    }));
}

/// A fault injected by the tests through `CI_DOCTOR_TEST_FAULT`; debug builds only, so that a
/// release binary never reads it.
pub fn test_fault(point: &str) -> bool {
    cfg!(debug_assertions) && std::env::var("CI_DOCTOR_TEST_FAULT").is_ok_and(|fault| fault == point)
}
