//! Wall-clock time and progress display for long campaigns (`raftsim fuzz`).
//!
//! This is the one place in the library that reads the wall clock (a repository hook rejects
//! `Instant::now` anywhere else on the simulation side). Wall time here never decides anything
//! a run does: it only feeds the progress display, events per second, and the campaign's
//! `--time-budget` (which decides how many seeds are *started*, never what a seed does).
//!
//! Two displays, both on stderr so stdout stays the report:
//! - an indicatif bar when stderr is a terminal and the caller asked for it;
//! - otherwise a plain status line at most every [`PLAIN_INTERVAL_S`] seconds, printed when a
//!   seed finishes: `fuzz: 1200/2000 seeds, 3 failures, 4.1M events/s`.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Seconds between two plain status lines.
pub const PLAIN_INTERVAL_S: f64 = 5.0;

/// A stopwatch started at construction.
#[derive(Debug, Clone, Copy)]
pub struct Stopwatch {
    start: Instant,
}

impl Stopwatch {
    /// Start now.
    pub fn start() -> Stopwatch {
        Stopwatch {
            start: Instant::now(),
        }
    }

    /// Seconds since the start.
    pub fn elapsed_s(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }
}

/// Whether stderr is a terminal (where a progress bar makes sense).
pub fn stderr_is_terminal() -> bool {
    std::io::stderr().is_terminal()
}

/// Which display to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// An indicatif bar on stderr.
    Bar,
    /// A plain line on stderr every few seconds.
    Plain,
    /// Nothing.
    Off,
}

impl Mode {
    /// The bar if stderr is a terminal and `bar_wanted`, else plain lines.
    pub fn choose(bar_wanted: bool) -> Mode {
        if bar_wanted && stderr_is_terminal() {
            Mode::Bar
        } else {
            Mode::Plain
        }
    }
}

/// Progress of one campaign phase: `total` seeds, counted as they finish on any thread.
pub struct Progress {
    label: &'static str,
    total: u64,
    watch: Stopwatch,
    done: AtomicU64,
    failures: AtomicU64,
    events: AtomicU64,
    bar: Option<ProgressBar>,
    plain: bool,
    /// Elapsed seconds at the last plain line.
    last_plain_s: Mutex<f64>,
}

impl Progress {
    /// Start a phase named `label` of `total` seeds; the stopwatch starts now.
    pub fn new(label: &'static str, total: u64, display: Mode) -> Progress {
        let bar = (display == Mode::Bar).then(|| {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template(
                "{prefix}: [{elapsed_precise}] {bar:40} {pos}/{len} seeds {msg} (eta {eta})",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            bar.set_prefix(label);
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Progress {
            label,
            total,
            watch: Stopwatch::start(),
            done: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            events: AtomicU64::new(0),
            bar,
            plain: display == Mode::Plain,
            last_plain_s: Mutex::new(0.0),
        }
    }

    /// Seconds since the phase started.
    pub fn elapsed_s(&self) -> f64 {
        self.watch.elapsed_s()
    }

    /// Whether `budget_s` seconds (if any) are spent.
    pub fn budget_spent(&self, budget_s: Option<f64>) -> bool {
        budget_s.is_some_and(|b| self.elapsed_s() >= b)
    }

    /// One seed finished with `events` events; `failed` if it found a failure.
    pub fn seed_done(&self, events: u64, failed: bool) {
        let done = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        let failures = self
            .failures
            .fetch_add(u64::from(failed), Ordering::Relaxed)
            + u64::from(failed);
        let events = self.events.fetch_add(events, Ordering::Relaxed) + events;
        let elapsed = self.elapsed_s();
        let rate = per_second(events, elapsed);
        if let Some(bar) = &self.bar {
            bar.set_position(done);
            bar.set_message(format!(
                "{failures} failures, {} events/s",
                human_count(rate)
            ));
        } else if self.plain {
            let mut last = self.last_plain_s.lock().unwrap_or_else(|e| e.into_inner());
            if elapsed - *last >= PLAIN_INTERVAL_S {
                *last = elapsed;
                eprintln!(
                    "{}: {done}/{} seeds, {failures} failures, {} events/s",
                    self.label,
                    self.total,
                    human_count(rate)
                );
            }
        }
    }

    /// Print a line on stderr without garbling the bar (a failure as it is found).
    pub fn note(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.println(line),
            None if self.plain => eprintln!("{line}"),
            None => {}
        }
    }

    /// End the display (the bar disappears; plain lines need no ending).
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// `count / seconds`, 0 when no time passed.
pub fn per_second(count: u64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        count as f64 / seconds
    } else {
        0.0
    }
}

/// A count for people: `950`, `12.3k`, `4.1M`, `2.0G`.
pub fn human_count(x: f64) -> String {
    if x >= 1e9 {
        format!("{:.1}G", x / 1e9)
    } else if x >= 1e6 {
        format!("{:.1}M", x / 1e6)
    } else if x >= 1e3 {
        format!("{:.1}k", x / 1e3)
    } else {
        format!("{x:.0}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_counts() {
        assert_eq!(human_count(950.0), "950");
        assert_eq!(human_count(12_345.0), "12.3k");
        assert_eq!(human_count(4_100_000.0), "4.1M");
        assert_eq!(per_second(10, 0.0), 0.0);
    }

    #[test]
    fn counts_seeds_from_many_threads() {
        let p = Progress::new("test", 8, Mode::Off);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    p.seed_done(10, false);
                    p.seed_done(5, true);
                });
            }
        });
        assert_eq!(p.done.load(Ordering::Relaxed), 8);
        assert_eq!(p.failures.load(Ordering::Relaxed), 4);
        assert_eq!(p.events.load(Ordering::Relaxed), 60);
        assert!(!p.budget_spent(None));
        assert!(p.budget_spent(Some(0.0)));
        p.finish();
    }
}
