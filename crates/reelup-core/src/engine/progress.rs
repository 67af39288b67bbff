//! Progress maths for one file: when to report, and the speed and time left to show.
//! Pure: the caller says what time it is, so tests pick the instants.

use std::time::Duration;

use tokio::time::Instant;

/// Reports per file are capped at ten a second.
pub(crate) const REPORT_INTERVAL: Duration = Duration::from_millis(100);

/// A report worth sending: bytes confirmed, speed over this run, seconds left at it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rate {
    pub bytes_per_sec: u64,
    pub eta_secs: Option<u64>,
}

/// Tracks one run of one file. Bytes confirmed before the run (`already`, a resume) do not
/// count towards its speed.
#[derive(Debug)]
pub(crate) struct ProgressMeter {
    started: Instant,
    last: Option<Instant>,
    already: u64,
    total: u64,
}

impl ProgressMeter {
    pub(crate) fn new(now: Instant, already: u64, total: u64) -> Self {
        Self {
            started: now,
            last: None,
            already,
            total,
        }
    }

    /// The report for `sent` bytes at `now`, or `None` when one went out less than
    /// [`REPORT_INTERVAL`] ago (the last byte is always reported).
    pub(crate) fn observe(&mut self, now: Instant, sent: u64) -> Option<Rate> {
        let due = self
            .last
            .is_none_or(|last| now.duration_since(last) >= REPORT_INTERVAL);
        if sent < self.total && !due {
            return None;
        }
        self.last = Some(now);
        let elapsed = now.duration_since(self.started).as_secs_f64().max(0.001);
        let bytes_per_sec = (sent.saturating_sub(self.already) as f64 / elapsed) as u64;
        let eta_secs = (bytes_per_sec > 0).then(|| self.total.saturating_sub(sent) / bytes_per_sec);
        Some(Rate {
            bytes_per_sec,
            eta_secs,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_at_most_ten_a_second_and_always_the_end() {
        let t0 = Instant::now();
        let mut meter = ProgressMeter::new(t0, 0, 1000);
        assert!(meter.observe(t0, 10).is_some(), "the first report goes out");
        assert!(meter.observe(t0 + Duration::from_millis(50), 20).is_none());
        assert!(meter.observe(t0 + Duration::from_millis(100), 30).is_some());
        assert!(
            meter
                .observe(t0 + Duration::from_millis(101), 1000)
                .is_some(),
            "the last byte"
        );
    }

    #[test]
    fn speed_counts_this_run_only_and_gives_the_time_left() {
        let t0 = Instant::now();
        // 600 of 1000 bytes were sent before a restart; 200 more in 2 s now.
        let mut meter = ProgressMeter::new(t0, 600, 1000);
        let rate = meter.observe(t0 + Duration::from_secs(2), 800).unwrap();
        assert_eq!(rate.bytes_per_sec, 100);
        assert_eq!(rate.eta_secs, Some(2));
        let mut stalled = ProgressMeter::new(t0, 600, 1000);
        let rate = stalled.observe(t0 + Duration::from_secs(2), 600).unwrap();
        assert_eq!((rate.bytes_per_sec, rate.eta_secs), (0, None));
    }
}
