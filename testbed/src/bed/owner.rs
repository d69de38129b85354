//! Identity of the process that created a Docker object, so a later bed can
//! tell leftovers of dead processes from objects of a live one.
//!
//! The identity is `<boot id>/<pid>/<start time>`. The boot id distinguishes
//! a pid of an earlier boot, and the start time (field 22 of `/proc/PID/stat`,
//! in clock ticks since boot) distinguishes a reused pid.

use std::sync::OnceLock;

fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|text| text.trim().to_owned())
        .unwrap_or_default()
}

/// Start time of a process in clock ticks since boot, or `None` when the
/// process does not exist.
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may contain spaces,
    // so the fields are counted from the last ')': state is field 3.
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(22 - 3)?.parse().ok()
}

/// Returns the identity of this process.
pub(crate) fn current_owner() -> &'static str {
    static OWNER: OnceLock<String> = OnceLock::new();
    OWNER.get_or_init(|| {
        let pid = std::process::id();
        format!("{}/{}/{}", boot_id(), pid, start_time(pid).unwrap_or(0))
    })
}

/// Returns `true` if the process with this identity is still running. An
/// identity that does not parse counts as dead, because only the test bed
/// writes these labels.
pub(crate) fn owner_is_alive(owner: &str) -> bool {
    let mut parts = owner.split('/');
    let (Some(boot), Some(pid), Some(start), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    if boot != boot_id() {
        return false;
    }
    let (Ok(pid), Ok(start)) = (pid.parse::<u32>(), start.parse::<u64>()) else {
        return false;
    };
    start_time(pid) == Some(start)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn current_process_is_alive() {
        assert!(owner_is_alive(current_owner()));
    }

    #[test]
    fn other_start_time_is_dead() {
        let pid = std::process::id();
        let start = start_time(pid).unwrap();
        assert!(!owner_is_alive(&format!(
            "{}/{pid}/{}",
            boot_id(),
            start + 1
        )));
    }

    #[test]
    fn other_boot_is_dead() {
        let pid = std::process::id();
        let start = start_time(pid).unwrap();
        assert!(!owner_is_alive(&format!("not-this-boot/{pid}/{start}")));
    }

    #[test]
    fn malformed_owner_is_dead() {
        assert!(!owner_is_alive("12345"));
    }
}
