//! The progress line: while a probe or a Docker call has been waited on for longer than a
//! moment, one line on stderr names it and counts the seconds.
//!
//! Code that waits registers what it waits for with [`wait`], from any thread (probe sessions
//! run on their own threads inside container namespaces). A [`Display`] thread draws the
//! oldest wait with `indicatif`. It is started only when stderr is a terminal and the report
//! is for people, so pipes, files and machine-readable formats never get any of it.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::cli::Format;

/// How long a wait stays unseen: short probes finish without a line flashing by.
pub const THRESHOLD: Duration = Duration::from_millis(500);

/// Time between two redraws.
const TICK: Duration = Duration::from_millis(100);

/// One registered wait.
struct Pending {
    id: u64,
    what: String,
    since: Instant,
}

fn pending() -> MutexGuard<'static, Vec<Pending>> {
    static PENDING: Mutex<Vec<Pending>> = Mutex::new(Vec::new());
    PENDING.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Locks the bar on screen, if any, so that log lines can be printed above it.
fn current_bar() -> MutexGuard<'static, Option<ProgressBar>> {
    static BAR: Mutex<Option<ProgressBar>> = Mutex::new(None);
    BAR.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A registered wait; dropping it ends the wait.
#[must_use = "the wait ends when this guard is dropped"]
pub struct Wait {
    id: u64,
}

/// Registers a wait for `what`, for example "http://gitlab/ from container `gitlab-runner`".
/// The line reads "waiting for <what> (2.1 s)".
pub fn wait(what: impl Into<String>) -> Wait {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let id = NEXT.fetch_add(1, Ordering::Relaxed);
    pending().push(Pending { id, what: crate::secret::redact(&what.into()), since: Instant::now() });
    Wait { id }
}

impl Drop for Wait {
    fn drop(&mut self) {
        pending().retain(|wait| wait.id != self.id);
    }
}

/// Runs `print`, which writes to stderr, with the progress line cleared first and drawn again
/// after, so that log lines do not mix with it.
pub fn suspend<T>(print: impl FnOnce() -> T) -> T {
    let bar = current_bar().clone();
    match bar {
        Some(bar) => bar.suspend(print),
        None => print(),
    }
}

/// The thread that draws the line; dropping it stops the thread and clears the line.
pub struct Display {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Starts drawing when stderr is a terminal and `format` is for people. Drop the display
/// before writing the report, so that the line is cleared first.
pub fn display(format: Format) -> Option<Display> {
    if !std::io::stderr().is_terminal() || format.is_machine_readable() {
        return None;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let thread = std::thread::Builder::new().name("progress".into()).spawn(move || draw_until(&flag)).ok()?;
    Some(Display { stop, thread: Some(thread) })
}

impl Drop for Display {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

fn draw_until(stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        let line = line_now(Instant::now());
        let mut bar = current_bar();
        match (line, bar.as_ref()) {
            (Some(line), Some(shown)) => shown.set_message(line),
            (Some(line), None) => {
                let new = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
                if let Ok(style) = ProgressStyle::with_template("{spinner} {wide_msg}") {
                    new.set_style(style);
                }
                new.set_message(line);
                *bar = Some(new);
            }
            (None, Some(shown)) => {
                shown.finish_and_clear();
                *bar = None;
            }
            (None, None) => {}
        }
        if let Some(shown) = bar.as_ref() {
            shown.tick();
        }
        drop(bar);
        std::thread::park_timeout(TICK);
    }
    if let Some(shown) = current_bar().take() {
        shown.finish_and_clear();
    }
}

/// Formats the line at `now`: the oldest wait past the threshold, and how many others are
/// pending.
fn line_now(now: Instant) -> Option<String> {
    line_for(&pending(), now)
}

/// Returns the line for `waits` at `now`: the oldest wait past [`THRESHOLD`], and how many more
/// there are.
fn line_for(waits: &[Pending], now: Instant) -> Option<String> {
    let oldest = waits.iter().filter(|wait| now.duration_since(wait.since) >= THRESHOLD).min_by_key(|wait| wait.since)?;
    let mut line = format!("waiting for {} ({:.1} s)", oldest.what, now.duration_since(oldest.since).as_secs_f64());
    let others = waits.len() - 1;
    if others > 0 {
        line.push_str(&format!(" and {others} more"));
    }
    Some(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Other tests of this process register waits too, so the line is judged on a list of its own.
    #[test]
    fn line_names_the_oldest_wait_past_the_threshold() {
        let now = Instant::now();
        let pending = |id, what: &str| Pending { id, what: what.into(), since: now };
        let waits = [pending(0, "http://gitlab.example.test/ from container `unit-test-runner`"), pending(1, "the Docker Engine")];
        assert_eq!(line_for(&waits, now), None, "nothing before the threshold");

        let later = now + Duration::from_millis(2100);
        let line = line_for(&waits, later).expect("a line past the threshold");
        assert!(line.starts_with("waiting for http://gitlab.example.test/ from container `unit-test-runner` (2.1 s)"), "{line}");
        assert!(line.ends_with(" and 1 more"), "the second wait is counted: {line}");
    }

    #[test]
    fn wait_is_registered_until_dropped() {
        let registered = |what: &str| pending().iter().any(|wait| wait.what == what);
        let guard = wait("http://gitlab.example.test/ from container `unit-test-registry`");
        assert!(registered("http://gitlab.example.test/ from container `unit-test-registry`"));
        drop(guard);
        assert!(!registered("http://gitlab.example.test/ from container `unit-test-registry`"));
    }
}
