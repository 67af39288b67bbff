//! When to try again, and how long to wait: the policy, the classification of errors, and
//! the retry loop every request of an upload runs in.
//!
//! Time is tokio's (`tokio::time::{sleep, Instant}`), so the loop is tested on a paused
//! clock, and the jitter comes from the loop's own RNG, so a test can seed it.
//!
//! What must stay true:
//! - While the network is gone (after this run reached the endpoint or store once), the
//!   loop waits without spending attempts, for up to the offline patience.
//! - An endpoint never reached in this run fails at once: a wrong URL or a server that is
//!   down, not a dropped connection.
//! - A stop (pause, cancel, quit) ends any wait at once.

use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::UploadError;

#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub base: Duration,
    pub cap: Duration,
    /// Attempts for one request before the item fails (retryably).
    pub attempts: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            base: Duration::from_millis(200),
            cap: Duration::from_secs(20),
            attempts: 10,
        }
    }
}

impl RetryPolicy {
    /// Exponential backoff with full jitter: a random wait up to `base * 2^attempt`, capped.
    /// A server's Retry-After wins when it asks for longer.
    pub fn delay(&self, attempt: u32, retry_after: Option<u64>, rng: &mut impl Rng) -> Duration {
        let ceiling = self
            .base
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.cap);
        let jittered = Duration::from_secs_f64(rng.random::<f64>() * ceiling.as_secs_f64());
        match retry_after {
            Some(secs) => jittered.max(Duration::from_secs(secs)),
            None => jittered,
        }
    }
}

/// Hears when a file's requests start waiting to try again (with the failure that made
/// them wait) and when one gets through after that (`None`): what lets a window say
/// "waiting for the server" instead of a speed that stopped moving.
pub(crate) type WaitObserver = Box<dyn Fn(Option<&UploadError>) + Send + Sync>;

/// One file's retry loop: the policy, how long to wait out a lost network, whether this run
/// reached anything yet, and the jitter's RNG.
pub(crate) struct Retrier {
    policy: RetryPolicy,
    offline_patience: Duration,
    /// Whether any request of this run got through; see `QueueOptions::offline_patience`.
    reached: AtomicBool,
    rng: Mutex<StdRng>,
    observer: Option<WaitObserver>,
    /// Whether the observer was last told of a wait (it hears each change once).
    waiting: AtomicBool,
}

impl Retrier {
    pub(crate) fn new(policy: RetryPolicy, offline_patience: Duration) -> Self {
        Self::with_rng(policy, offline_patience, StdRng::from_rng(&mut rand::rng()))
    }

    pub(crate) fn with_rng(policy: RetryPolicy, offline_patience: Duration, rng: StdRng) -> Self {
        Self {
            policy,
            offline_patience,
            reached: AtomicBool::new(false),
            rng: Mutex::new(rng),
            observer: None,
            waiting: AtomicBool::new(false),
        }
    }

    /// Tells `observer` when this file starts waiting and when it gets through again.
    pub(crate) fn observed(mut self, observer: WaitObserver) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Tells the observer of a change of waiting: `Some` failure when one begins, `None`
    /// when a request gets through after one. Several requests share a file's loop (parts
    /// in flight): any one getting through ends the wait.
    fn tell(&self, failure: Option<&UploadError>) {
        let Some(observer) = &self.observer else {
            return;
        };
        if self.waiting.swap(failure.is_some(), Ordering::Relaxed) != failure.is_some() {
            observer(failure);
        }
    }

    fn delay(&self, attempt: u32, retry_after: Option<u64>) -> Duration {
        let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
        self.policy.delay(attempt, retry_after, &mut *rng)
    }

    /// Runs `op` until it succeeds, fails for good, or `stop` fires (`Ok(None)`): backoff
    /// with full jitter, Retry-After honoured, a lost network waited out.
    pub(crate) async fn run<T, F, Fut>(
        &self,
        stop: &CancellationToken,
        mut op: F,
    ) -> Result<Option<T>, UploadError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, UploadError>>,
    {
        let mut attempt = 0;
        let mut offline = Offline::default();
        loop {
            let result = tokio::select! {
                r = op() => r,
                () = stop.cancelled() => return Ok(None),
            };
            let e = match result {
                Ok(v) => {
                    self.reached.store(true, Ordering::Relaxed);
                    self.tell(None);
                    return Ok(Some(v));
                }
                Err(e) => e,
            };
            if let UploadError::StorageUnreachable {
                connected: true, ..
            } = &e
            {
                // A connection was made, then reset or cut: the store is there; this is
                // passing trouble, waited out like a lost network, not a wrong URL.
                self.reached.store(true, Ordering::Relaxed);
            }
            let wait = match self.next_wait(&e, attempt, &mut offline) {
                Next::Wait(wait) => wait,
                Next::Retry(wait) => {
                    attempt += 1;
                    tracing::info!(error = %e, attempt, wait_ms = wait.as_millis() as u64, "retrying");
                    wait
                }
                Next::Fail => return Err(e),
            };
            self.tell(Some(&e));
            tokio::select! {
                () = tokio::time::sleep(wait) => {},
                () = stop.cancelled() => return Ok(None),
            }
        }
    }

    /// What to do after `e`, the `attempt`th failure counted against the policy.
    fn next_wait(&self, e: &UploadError, attempt: u32, offline: &mut Offline) -> Next {
        let reached = self.reached.load(Ordering::Relaxed);
        if e.is_offline() {
            // Never reached in this run: say so now rather than after minutes of retries.
            if !reached {
                return Next::Fail;
            }
            if !offline.outlasted(self.offline_patience) {
                // Probing, not failing: the next attempt is the probe.
                offline.waits += 1;
                let wait = self
                    .delay(offline.waits.min(6), None)
                    .max(Duration::from_millis(250));
                tracing::info!(error = %e, wait_ms = wait.as_millis() as u64, "network unreachable; waiting");
                return Next::Wait(wait);
            }
            // Out of patience: from here on the network's failures spend attempts.
        }
        if !e.is_retryable() || attempt + 1 >= self.policy.attempts {
            return Next::Fail;
        }
        if e.is_expired_url() {
            return Next::Retry(Duration::ZERO);
        }
        Next::Retry(self.delay(attempt, e.retry_after()))
    }
}

/// The network has been gone since `since`, and was probed `waits` times.
#[derive(Default)]
struct Offline {
    since: Option<Instant>,
    waits: u32,
}

impl Offline {
    /// Starts the patience clock on the first call; true once it has run out.
    fn outlasted(&mut self, patience: Duration) -> bool {
        match self.since {
            None => {
                self.since = Some(Instant::now());
                false
            }
            Some(since) => since.elapsed() >= patience,
        }
    }
}

enum Next {
    /// Wait out a lost network; no attempt spent.
    Wait(Duration),
    /// Try again after this long; one attempt spent.
    Retry(Duration),
    Fail,
}

impl UploadError {
    /// Worth trying again: the network, the store's or the endpoint's passing trouble, or
    /// bytes damaged on the way. Not: a missing file, a wrong token, a refused policy.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::EndpointUnreachable { .. } | Self::StorageUnreachable { .. } => true,
            Self::Integrity { .. } => true,
            Self::Endpoint { status, .. } => *status >= 500 || *status == 429 || *status == 408,
            Self::Storage { status, code, .. } => {
                *status >= 500
                    || *status == 429
                    || *status == 408
                    || code == "BadDigest"
                    || code == "RequestTimeout"
                    || code == "InternalError"
                    || code == "SlowDown"
                    || self.is_expired_url()
            }
            _ => false,
        }
    }

    /// The store no longer holds the multipart upload: said by the endpoint
    /// ([`UploadError::UploadGone`]) or by the store itself to a part's PUT (S3's
    /// `NoSuchUpload`, 404). Not retried as it is: the engine checks whether the object was
    /// completed, else starts a new upload.
    pub fn is_upload_gone(&self) -> bool {
        match self {
            Self::UploadGone { .. } => true,
            Self::Storage { code, .. } => code == "NoSuchUpload",
            _ => false,
        }
    }

    /// A presigned URL or policy that ran out; a freshly signed one will do.
    pub fn is_expired_url(&self) -> bool {
        match self {
            Self::Storage {
                status: 400 | 403,
                code,
                message,
                ..
            } => code.contains("Expired") || message.to_ascii_lowercase().contains("expired"),
            _ => false,
        }
    }

    /// The connection itself failed (refused, reset, timed out, no route): from the
    /// client's side a lost network and a vanished server look the same, so the queue waits
    /// these out (up to its patience) instead of spending attempts.
    pub fn is_offline(&self) -> bool {
        matches!(
            self,
            Self::EndpointUnreachable { .. } | Self::StorageUnreachable { .. }
        )
    }

    pub fn retry_after(&self) -> Option<u64> {
        match self {
            Self::Storage { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn storage(status: u16, code: &str, message: &str) -> UploadError {
        UploadError::Storage {
            status,
            code: code.into(),
            message: message.into(),
            retry_after: None,
        }
    }

    #[test]
    fn backoff_grows_is_jittered_and_capped() {
        let p = RetryPolicy::default();
        let mut rng = StdRng::seed_from_u64(1);
        let waits: Vec<Duration> = (0..20).map(|a| p.delay(a, None, &mut rng)).collect();
        for (attempt, d) in waits.iter().enumerate() {
            assert!(*d <= p.cap);
            assert!(*d <= p.base * 2u32.pow((attempt as u32).min(16)));
        }
        let distinct: std::collections::BTreeSet<_> = waits.iter().collect();
        assert!(distinct.len() > 15, "jittered: {waits:?}");
        assert!(
            p.delay(0, Some(3), &mut rng) >= Duration::from_secs(3),
            "Retry-After wins"
        );
    }

    const OFFLINE: fn() -> UploadError = || UploadError::StorageUnreachable {
        reason: "Network is unreachable (os error 101)".into(),
        connected: false,
    };

    /// Runs the loop over `outcomes` (then success), on the paused clock; returns the result,
    /// how many calls were made and the virtual time it took.
    async fn drive(
        retrier: &Retrier,
        stop: &CancellationToken,
        outcomes: Vec<UploadError>,
    ) -> (Result<Option<u32>, UploadError>, u32, Duration) {
        let started = Instant::now();
        let outcomes = Mutex::new(outcomes.into_iter());
        let calls = std::sync::atomic::AtomicU32::new(0);
        let result = retrier
            .run(stop, || {
                let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
                let next = outcomes.lock().unwrap().next();
                async move { next.map_or(Ok(n), Err) }
            })
            .await;
        (result, calls.into_inner(), started.elapsed())
    }

    fn retrier(patience: Duration) -> Retrier {
        Retrier::with_rng(RetryPolicy::default(), patience, StdRng::seed_from_u64(7))
    }

    #[tokio::test(start_paused = true)]
    async fn retries_wait_exactly_the_jittered_backoff() {
        let stop = CancellationToken::new();
        let (result, calls, took) = drive(
            &retrier(Duration::ZERO),
            &stop,
            vec![
                storage(503, "SlowDown", ""),
                storage(500, "InternalError", ""),
            ],
        )
        .await;
        assert_eq!(result.unwrap(), Some(3));
        assert_eq!(calls, 3);
        // The same seed gives the same two waits.
        let mut rng = StdRng::seed_from_u64(7);
        let p = RetryPolicy::default();
        let expected = p.delay(0, None, &mut rng) + p.delay(1, None, &mut rng);
        // The timer's granularity is a millisecond: each sleep ends on the next one.
        assert!(
            took >= expected && took <= expected + Duration::from_millis(2),
            "{took:?} vs {expected:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_observer_hears_each_wait_begin_and_end_once() {
        let stop = CancellationToken::new();
        let heard = Arc::new(Mutex::new(Vec::new()));
        let log = heard.clone();
        let retrier = retrier(Duration::from_secs(60)).observed(Box::new(move |failure| {
            log.lock()
                .unwrap()
                .push(failure.map(|e| e.code().as_str().to_owned()));
        }));
        // Reached once, so a lost network is waited out (not failed at once).
        drive(&retrier, &stop, vec![]).await.0.unwrap();
        assert!(heard.lock().unwrap().is_empty(), "no wait, nothing said");
        // Two failures in a row are one wait; the success after them ends it.
        let (result, ..) = drive(&retrier, &stop, vec![OFFLINE(), OFFLINE()]).await;
        assert!(result.unwrap().is_some());
        let (result, ..) = drive(&retrier, &stop, vec![storage(503, "SlowDown", "")]).await;
        assert!(result.unwrap().is_some());
        let code = |e: UploadError| Some(e.code().as_str().to_owned());
        assert_eq!(
            *heard.lock().unwrap(),
            vec![
                code(OFFLINE()),
                None,
                code(storage(503, "SlowDown", "")),
                None
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_is_honoured_and_an_expired_url_is_re_signed_at_once() {
        let stop = CancellationToken::new();
        let mut busy = storage(503, "SlowDown", "");
        if let UploadError::Storage { retry_after, .. } = &mut busy {
            *retry_after = Some(7);
        }
        let (result, _, took) = drive(&retrier(Duration::ZERO), &stop, vec![busy]).await;
        assert!(result.is_ok());
        assert!(took >= Duration::from_secs(7), "{took:?}");
        let expired = storage(403, "AccessDenied", "Request has expired");
        let (result, calls, took) = drive(&retrier(Duration::ZERO), &stop, vec![expired]).await;
        assert_eq!((result.unwrap(), calls, took), (Some(2), 2, Duration::ZERO));
    }

    #[tokio::test(start_paused = true)]
    async fn attempts_run_out_and_what_is_not_retryable_fails_at_once() {
        let stop = CancellationToken::new();
        let p = RetryPolicy::default();
        let busy = (0..p.attempts + 5)
            .map(|_| storage(503, "SlowDown", ""))
            .collect();
        let (result, calls, _) = drive(&retrier(Duration::ZERO), &stop, busy).await;
        assert!(matches!(
            result,
            Err(UploadError::Storage { status: 503, .. })
        ));
        assert_eq!(calls, p.attempts);
        let denied = vec![storage(403, "SignatureDoesNotMatch", "")];
        let (result, calls, took) = drive(&retrier(Duration::ZERO), &stop, denied).await;
        assert!(result.is_err());
        assert_eq!((calls, took), (1, Duration::ZERO));
    }

    #[tokio::test(start_paused = true)]
    async fn a_never_reached_endpoint_fails_at_once() {
        let stop = CancellationToken::new();
        let (result, calls, took) =
            drive(&retrier(Duration::from_secs(900)), &stop, vec![OFFLINE()]).await;
        assert!(result.unwrap_err().is_offline());
        assert_eq!((calls, took), (1, Duration::ZERO));
    }

    #[tokio::test(start_paused = true)]
    async fn a_lost_network_is_waited_out_for_the_patience_without_spending_attempts() {
        let stop = CancellationToken::new();
        let patience = Duration::from_secs(15 * 60);
        let retrier = retrier(patience);
        // Reached once: the network went away mid-upload.
        assert!(drive(&retrier, &stop, vec![]).await.0.is_ok());
        // Back after a few minutes: far more probes than attempts, and no failure.
        let probes = (0..40).map(|_| OFFLINE()).collect();
        let (result, calls, took) = drive(&retrier, &stop, probes).await;
        assert_eq!(result.unwrap(), Some(41));
        assert!(took < patience, "{took:?}");
        // Gone for good: fails once the patience and then the attempts have run out.
        let forever = (0..10_000).map(|_| OFFLINE()).collect();
        let (result, calls_forever, took) = drive(&retrier, &stop, forever).await;
        assert!(result.unwrap_err().is_offline());
        assert!(took >= patience, "{took:?}");
        assert!(took < patience + Duration::from_secs(5 * 60), "{took:?}");
        assert!(calls_forever > calls, "{calls_forever} probes");
    }

    #[tokio::test(start_paused = true)]
    async fn a_stop_ends_a_wait_at_once() {
        let stop = CancellationToken::new();
        let retrier = retrier(Duration::ZERO);
        let mut busy = storage(503, "SlowDown", "");
        if let UploadError::Storage { retry_after, .. } = &mut busy {
            *retry_after = Some(3600);
        }
        let run = drive(&retrier, &stop, vec![busy]);
        let stopper = async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            stop.cancel();
        };
        let ((result, calls, took), ()) = tokio::join!(run, stopper);
        assert_eq!(result.unwrap(), None);
        assert_eq!((calls, took), (1, Duration::from_secs(1)));
    }

    #[test]
    fn classifies_what_deserves_another_try() {
        assert!(storage(503, "SlowDown", "").is_retryable());
        assert!(storage(500, "InternalError", "").is_retryable());
        assert!(storage(400, "BadDigest", "").is_retryable());
        assert!(storage(403, "AccessDenied", "Request has expired").is_expired_url());
        assert!(!storage(403, "SignatureDoesNotMatch", "").is_retryable());
        assert!(!storage(400, "EntityTooLarge", "").is_retryable());
        assert!(
            !UploadError::Unauthorized {
                endpoint: "e".into()
            }
            .is_retryable()
        );
        let offline = UploadError::StorageUnreachable {
            reason: "Connection refused (os error 111)".into(),
            connected: false,
        };
        assert!(offline.is_retryable() && offline.is_offline());
    }
}
