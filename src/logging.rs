//! Logging to stderr through `tracing`, with every registered secret removed from each line.

use std::io::Write;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// Installs the subscriber: `warn` by default, `debug` with `-v`, `trace` with `-vv`;
/// `RUST_LOG` wins when set.
pub fn init(verbose: u8, color: bool) {
    let default = match verbose {
        0 => "warn",
        1 => "ci_doctor=debug,warn",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(RedactingStderr).with_ansi(color).with_target(verbose > 1);

    // With `-vv`, each line starts with the seconds since start, which shows where a slow run
    // waits.
    let _ = if verbose > 1 { builder.with_timer(tracing_subscriber::fmt::time::uptime()).try_init() } else { builder.without_time().try_init() };
}

/// A writer that redacts secrets before they reach stderr.
#[derive(Clone, Copy)]
struct RedactingStderr;

impl<'a> MakeWriter<'a> for RedactingStderr {
    type Writer = LineWriter;

    fn make_writer(&'a self) -> Self::Writer {
        LineWriter { buffer: Vec::new() }
    }
}

/// Collects one event and writes it, redacted, when dropped.
struct LineWriter {
    buffer: Vec<u8>,
}

impl Write for LineWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        let text = crate::secret::redact(&String::from_utf8_lossy(&self.buffer));
        crate::progress::suspend(|| {
            let _ = std::io::stderr().write_all(text.as_bytes());
        });
    }
}
