//! A bandwidth limit shared by every part of every file: a token bucket on tokio's clock
//! (so tests run it on a paused clock, without real sleeps).

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// Bytes per second that all transfers together may send.
#[derive(Debug)]
pub struct BandwidthLimit {
    /// 0 means no limit (a limit can be lifted while transfers run).
    bytes_per_sec: AtomicU64,
    /// When the bytes granted so far have been paid for at the limit. Each request books
    /// the next slot after it, so concurrent senders share the rate instead of each having it.
    paid_until: Mutex<Instant>,
}

impl BandwidthLimit {
    /// `bytes_per_sec` of 0 is taken as 1, not as "stop".
    pub fn new(bytes_per_sec: u64) -> Self {
        Self {
            bytes_per_sec: AtomicU64::new(bytes_per_sec.max(1)),
            paid_until: Mutex::new(Instant::now()),
        }
    }

    /// No limit until [`BandwidthLimit::set`] gives one.
    pub fn unlimited() -> Self {
        Self {
            bytes_per_sec: AtomicU64::new(0),
            paid_until: Mutex::new(Instant::now()),
        }
    }

    /// None when unlimited.
    pub fn bytes_per_sec(&self) -> Option<u64> {
        Some(self.bytes_per_sec.load(Ordering::Relaxed)).filter(|&b| b > 0)
    }

    /// Changes the limit for every transfer, the running ones included.
    pub fn set(&self, bytes_per_sec: Option<u64>) {
        self.bytes_per_sec
            .store(bytes_per_sec.map_or(0, |b| b.max(1)), Ordering::Relaxed);
    }

    /// Waits until `bytes` more may go out. An idle limit saves nothing up: time nobody
    /// used is not spent later as a burst.
    pub async fn take(&self, bytes: u64) {
        let Some(rate) = self.bytes_per_sec() else {
            return;
        };
        let cost = Duration::from_secs_f64(bytes as f64 / rate as f64);
        let ready_at = {
            let mut paid_until = self.paid_until.lock().unwrap_or_else(|e| e.into_inner());
            let start = (*paid_until).max(Instant::now());
            *paid_until = start + cost;
            *paid_until
        };
        tokio::time::sleep_until(ready_at).await;
    }

    /// A rate such as `5000000`, `5MB`, `1.5MiB`: decimal (kB, MB, GB) and binary (KiB, MiB,
    /// GiB) units, any case, an optional `/s`. Whole numbers are exact; a fraction is rounded
    /// to the nearest byte. More than `u64::MAX` bytes per second is refused, not clamped.
    pub fn parse_rate(text: &str) -> Result<u64, String> {
        let t = text.trim();
        let t = t.strip_suffix("/s").unwrap_or(t).trim_end();
        let split = t
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(t.len());
        let (number, unit) = (&t[..split], t[split..].trim());
        let scale: u64 = match unit.to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "kb" => 1_000,
            "mb" => 1_000_000,
            "gb" => 1_000_000_000,
            "kib" => 1 << 10,
            "mib" => 1 << 20,
            "gib" => 1 << 30,
            _ => {
                return Err(format!(
                    "unknown unit {unit:?}; use bytes per second, e.g. 5000000, 5MB or 4MiB"
                ));
            }
        };
        let not_a_rate = || format!("{text:?} is not a rate; use e.g. 5000000, 5MB or 4MiB");
        let too_large = || {
            format!(
                "{text:?} is too large; the most is {} bytes per second",
                u64::MAX
            )
        };
        let bytes = if number.contains('.') {
            let value: f64 = number.parse().map_err(|_| not_a_rate())?;
            let bytes = (value * scale as f64).round();
            // 2^64: `u64::MAX as f64` rounds up to it, and `as u64` would clamp anything above.
            if bytes >= 18_446_744_073_709_551_616.0 {
                return Err(too_large());
            }
            bytes as u64
        } else {
            // Whole numbers stay exact (f64 loses bytes above 2^53).
            let value: u64 =
                number
                    .parse()
                    .map_err(|e: std::num::ParseIntError| match e.kind() {
                        std::num::IntErrorKind::PosOverflow => too_large(),
                        _ => not_a_rate(),
                    })?;
            value.checked_mul(scale).ok_or_else(too_large)?
        };
        if bytes == 0 {
            return Err("the rate must be at least 1 byte per second".into());
        }
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    const MIB: u64 = 1024 * 1024;
    const CHUNK: u64 = 256 * 1024;

    fn secs_since(t: Instant) -> f64 {
        t.elapsed().as_secs_f64()
    }

    #[tokio::test(start_paused = true)]
    async fn ten_mib_at_two_mib_per_sec_takes_five_seconds() {
        let limit = BandwidthLimit::new(2 * MIB);
        let started = Instant::now();
        for _ in 0..(10 * MIB / CHUNK) {
            limit.take(CHUNK).await;
        }
        let took = secs_since(started);
        assert!((4.99..=5.01).contains(&took), "took {took} s");
    }

    #[tokio::test(start_paused = true)]
    async fn the_limit_is_shared_by_concurrent_senders() {
        let limit = Arc::new(BandwidthLimit::new(2 * MIB));
        let started = Instant::now();
        let senders: Vec<_> = (0..4)
            .map(|_| {
                let limit = limit.clone();
                tokio::spawn(async move {
                    for _ in 0..(5 * MIB / CHUNK) {
                        limit.take(CHUNK).await;
                    }
                })
            })
            .collect();
        for s in senders {
            s.await.expect("sender");
        }
        // 4 x 5 MiB at 2 MiB/s together: 10 s, not the 2.5 s each would take alone.
        let took = secs_since(started);
        assert!((9.99..=10.01).contains(&took), "took {took} s");
    }

    #[tokio::test(start_paused = true)]
    async fn idle_time_is_not_saved_up_for_a_burst() {
        let limit = BandwidthLimit::new(MIB);
        tokio::time::sleep(Duration::from_secs(60)).await;
        let started = Instant::now();
        limit.take(MIB).await;
        limit.take(MIB).await;
        let took = secs_since(started);
        assert!((1.99..=2.01).contains(&took), "took {took} s");
    }
}
