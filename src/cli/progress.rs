//! Progress of a long command on stderr. On a terminal: indicatif's bar with
//! rate and ETA. Elsewhere (a CI log, `docker logs`, a file) a bar's redraws
//! are escape codes or nothing at all, so: a plain line every 5 s and one at
//! the end, e.g. `replay: 120000/1000000 events, 31000/s, ETA 28s`.
//!
//! The lines go straight to stderr, not through the logger: `RUST_LOG=warn`
//! must not hide how far a replay is.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// Time between two plain lines.
const LINE_EVERY: Duration = Duration::from_secs(5);

pub struct Progress {
    label: &'static str,
    unit: &'static str,
    total: Option<u64>,
    started: Instant,
    position: AtomicU64,
    output: Output,
}

enum Output {
    Bar(ProgressBar),
    /// When the last line was printed.
    Lines(Mutex<Instant>),
}

impl Progress {
    /// Progress towards `total` (None: unknown, shown as a count and a rate)
    /// of `unit`s (plural: "events", "keys", "requests").
    pub fn new(label: &'static str, unit: &'static str, total: Option<u64>) -> Progress {
        let started = Instant::now();
        let output = if std::io::stderr().is_terminal() {
            Output::Bar(bar(label, unit, total))
        } else {
            Output::Lines(Mutex::new(started))
        };
        Progress {
            label,
            unit,
            total,
            started,
            position: AtomicU64::new(0),
            output,
        }
    }

    /// How many are done so far.
    pub fn set_position(&self, n: u64) {
        self.position.store(n, Ordering::Relaxed);
        self.show(n);
    }

    pub fn inc(&self, n: u64) {
        let now = self.position.fetch_add(n, Ordering::Relaxed) + n;
        self.show(now);
    }

    fn show(&self, n: u64) {
        match &self.output {
            Output::Bar(bar) => bar.set_position(n),
            Output::Lines(last) => {
                let Ok(mut last) = last.lock() else { return };
                if last.elapsed() >= LINE_EVERY {
                    *last = Instant::now();
                    eprintln!("{}", self.line(n, false));
                }
            }
        }
    }

    /// Clears the bar, or prints the final line.
    pub fn finish(&self) {
        match &self.output {
            Output::Bar(bar) => bar.finish_and_clear(),
            Output::Lines(_) => {
                eprintln!("{}", self.line(self.position.load(Ordering::Relaxed), true))
            }
        }
    }

    /// `label: done/total unit, rate/s, ETA t` (or `, done in t` at the end).
    fn line(&self, n: u64, finished: bool) -> String {
        let elapsed = self.started.elapsed();
        let rate = n as f64 / elapsed.as_secs_f64().max(0.001);
        let mut line = match self.total {
            Some(total) => format!("{}: {n}/{total} {}, {rate:.0}/s", self.label, self.unit),
            None => format!("{}: {n} {}, {rate:.0}/s", self.label, self.unit),
        };
        if finished {
            line.push_str(&format!(", done in {}", short(elapsed)));
        } else if let Some(total) = self.total.filter(|_| rate > 0.0) {
            let left = total.saturating_sub(n) as f64 / rate;
            line.push_str(&format!(", ETA {}", short(Duration::from_secs_f64(left))));
        }
        line
    }
}

fn bar(label: &str, unit: &str, total: Option<u64>) -> ProgressBar {
    let template = match total {
        Some(_) => format!(
            "{{spinner}} {label} [{{bar:40}}] {{pos}}/{{len}} {unit} ({{per_sec}}, ETA {{eta}})"
        ),
        None => format!("{{spinner}} {label} {{pos}} {unit} ({{per_sec}}, {{elapsed}})"),
    };
    let bar = match total {
        Some(total) => ProgressBar::new(total),
        None => ProgressBar::new_spinner(),
    };
    bar.set_style(
        ProgressStyle::with_template(&template)
            .map(|s| s.progress_chars("=> "))
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    // A spinner turns only when something moves; keep it turning while a
    // long batch runs.
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// `850ms`, `28s`, `4m05s`, `2h03m`.
fn short(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0 => format!("{}ms", d.as_millis()),
        1..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(total: Option<u64>) -> Progress {
        Progress {
            label: "replay",
            unit: "events",
            total,
            started: Instant::now() - Duration::from_secs(10),
            position: AtomicU64::new(0),
            output: Output::Lines(Mutex::new(Instant::now())),
        }
    }

    #[test]
    fn plain_lines_show_rate_and_eta() {
        let p = lines(Some(1_000));
        p.set_position(100);
        assert_eq!(
            p.line(100, false),
            "replay: 100/1000 events, 10/s, ETA 1m30s"
        );
        assert!(p
            .line(100, true)
            .starts_with("replay: 100/1000 events, 10/s, done in 10s"));
        let p = lines(None);
        p.inc(50);
        p.inc(50);
        assert_eq!(p.line(100, false), "replay: 100 events, 10/s");
    }

    #[test]
    fn durations_are_short() {
        assert_eq!(short(Duration::from_millis(850)), "850ms");
        assert_eq!(short(Duration::from_secs(28)), "28s");
        assert_eq!(short(Duration::from_secs(245)), "4m05s");
        assert_eq!(short(Duration::from_secs(7380)), "2h03m");
    }
}
