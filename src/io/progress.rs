//! Progress of a long read: a live line on a terminal (count, rate, ETA), log lines otherwise.
use std::io::{IsTerminal, Write};
use std::time::Instant;

/// A progress line on a terminal (rows, rows/s, ETA), plain log lines every 10 s otherwise.
pub struct Progress {
    /// What is counted ("rows", "events").
    what: &'static str,
    start: Instant,
    last: Instant,
    tty: bool,
}

impl Progress {
    pub fn new(what: &'static str) -> Self {
        let now = Instant::now();
        Progress {
            what,
            start: now,
            last: now,
            tty: std::io::stderr().is_terminal(),
        }
    }

    pub fn update(&mut self, rows: u64, fraction: Option<f64>) {
        let every = if self.tty { 0.2 } else { 10.0 };
        if self.last.elapsed().as_secs_f64() < every {
            return;
        }
        self.last = Instant::now();
        let secs = self.start.elapsed().as_secs_f64();
        let rate = rows as f64 / secs.max(1e-9);
        let eta = fraction
            .filter(|f| *f > 0.0)
            .map(|f| {
                format!(
                    ", {:.0}% done, ETA {:.0} s",
                    100.0 * f,
                    secs * (1.0 - f) / f
                )
            })
            .unwrap_or_default();
        let what = self.what;
        if self.tty {
            eprint!("\r{rows} {what}, {rate:.0} {what}/s{eta}    ");
            let _ = std::io::stderr().flush();
        } else {
            tracing::info!("{rows} {what}, {rate:.0} {what}/s{eta}");
        }
    }

    pub fn finish(&self) {
        if self.tty && self.start.elapsed().as_secs_f64() >= 0.2 {
            eprintln!();
        }
    }
}
