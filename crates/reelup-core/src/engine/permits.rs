//! How many parts may be on the wire at once, across every file of the queue. A small
//! file's one POST counts as a part: the limit bounds every request body on the wire.
//!
//! What must stay true:
//! - At most `limit` parts hold a permit at any moment, also right after the limit was
//!   lowered while parts were running: permits held then are owed, and taken back as they
//!   come home rather than handed out again.
//! - Resizing never spawns a task or needs a runtime: the app changes it from its main
//!   thread.
//! - While held ([`PartPermits::hold`]), no permit is handed out, and `hold` returns only
//!   once every part that had one has finished. A permit taken just as the hold began is
//!   given back, so a hold never returns while a part it did not see is starting.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio_util::sync::CancellationToken;

/// The most parts in flight a queue allows, whatever the setting says.
pub const MAX_PARTS_IN_FLIGHT: usize = 32;

/// A resizable pool of part permits, fair between waiters (tokio's semaphore is FIFO).
pub(crate) struct PartPermits {
    pool: Arc<Semaphore>,
    /// The limit the pool is being brought to.
    limit: AtomicUsize,
    /// Permits still to take back after the limit was lowered.
    owed: AtomicUsize,
    held: watch::Sender<bool>,
    /// Parts holding a permit now. Counted before `held` is looked at again, and `held` is
    /// set before this is read (see `acquire` and `hold`).
    sending: Arc<watch::Sender<usize>>,
}

/// One part's right to be on the wire; counted in [`PartPermits`] until dropped.
pub(crate) struct PartPermit {
    _permit: OwnedSemaphorePermit,
    sending: Arc<watch::Sender<usize>>,
}

impl Drop for PartPermit {
    fn drop(&mut self) {
        self.sending.send_modify(|n| *n -= 1);
    }
}

impl PartPermits {
    /// A pool of `limit` permits, clamped to 1..=[`MAX_PARTS_IN_FLIGHT`].
    pub(crate) fn new(limit: usize) -> Self {
        let limit = limit.clamp(1, MAX_PARTS_IN_FLIGHT);
        Self {
            pool: Arc::new(Semaphore::new(limit)),
            limit: AtomicUsize::new(limit),
            owed: AtomicUsize::new(0),
            held: watch::Sender::new(false),
            sending: Arc::new(watch::Sender::new(0)),
        }
    }

    /// Changes the limit. Raising it applies at once; lowering it takes free permits away
    /// at once and the rest as running parts finish.
    pub(crate) fn resize(&self, limit: usize) {
        let new = limit.clamp(1, MAX_PARTS_IN_FLIGHT);
        let old = self.limit.swap(new, Ordering::SeqCst);
        if new > old {
            // Forgive what is still owed first, then hand out the rest.
            let owed = self
                .owed
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |o| {
                    Some(o.saturating_sub(new - old))
                })
                .unwrap_or(0);
            self.pool.add_permits((new - old).saturating_sub(owed));
        } else if new < old {
            let gone = self.pool.forget_permits(old - new);
            self.owed.fetch_add(old - new - gone, Ordering::SeqCst);
        }
    }

    /// The limit now (what the pool is being brought to, after a resize).
    pub(crate) fn limit(&self) -> usize {
        self.limit.load(Ordering::SeqCst)
    }

    /// Parts holding a permit now.
    #[cfg(test)]
    fn sending(&self) -> usize {
        *self.sending.borrow()
    }

    /// A permit for one part, or `None` once `stop` fires (a paused or canceled file must
    /// not wait its turn to find out). Waits while the pool is held.
    pub(crate) async fn acquire(&self, stop: &CancellationToken) -> Option<PartPermit> {
        loop {
            let mut held = self.held.subscribe();
            tokio::select! {
                unheld = held.wait_for(|h| !*h) => { unheld.ok()?; }
                () = stop.cancelled() => return None,
            }
            let permit = tokio::select! {
                permit = self.pooled() => permit?,
                () = stop.cancelled() => return None,
            };
            self.sending.send_modify(|n| *n += 1);
            let permit = PartPermit {
                _permit: permit,
                sending: self.sending.clone(),
            };
            if !*self.held.borrow() {
                return Some(permit);
            }
        }
    }

    /// A permit from the pool, paying back what a lowered limit is owed first.
    async fn pooled(&self) -> Option<OwnedSemaphorePermit> {
        loop {
            let permit = self.pool.clone().acquire_owned().await.ok()?;
            let owed = self
                .owed
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |o| o.checked_sub(1));
            if owed.is_err() {
                return Some(permit);
            }
            permit.forget();
        }
    }

    /// Stops handing out permits, and returns once every part holding one has finished.
    pub(crate) async fn hold(&self) {
        self.held.send_replace(true);
        let mut sending = self.sending.subscribe();
        let _ = sending.wait_for(|n| *n == 0).await;
    }

    /// Hands out permits again after [`PartPermits::hold`].
    pub(crate) fn release_hold(&self) {
        self.held.send_replace(false);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// Takes permits until none is handed out within a (virtual) second.
    async fn drain(pool: &PartPermits, stop: &CancellationToken) -> Vec<PartPermit> {
        let mut got = Vec::new();
        while let Ok(Some(p)) =
            tokio::time::timeout(Duration::from_secs(1), pool.acquire(stop)).await
        {
            got.push(p);
        }
        got
    }

    #[tokio::test(start_paused = true)]
    async fn hands_out_at_most_the_limit_and_clamps_it() {
        let stop = CancellationToken::new();
        let pool = PartPermits::new(3);
        let held = drain(&pool, &stop).await;
        assert_eq!(held.len(), 3);
        assert_eq!(pool.sending(), 3);
        drop(held);
        assert_eq!(pool.sending(), 0);
        assert_eq!(drain(&PartPermits::new(0), &stop).await.len(), 1);
        assert_eq!(
            drain(&PartPermits::new(1000), &stop).await.len(),
            MAX_PARTS_IN_FLIGHT
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_lowered_limit_takes_back_running_permits_as_they_finish() {
        let stop = CancellationToken::new();
        let pool = PartPermits::new(4);
        let mut running = drain(&pool, &stop).await;
        pool.resize(2);
        // Two finish: both are owed, so none is handed out.
        running.truncate(2);
        assert!(drain(&pool, &stop).await.is_empty());
        // One more finishes: the limit is 2 and 1 runs, so one is handed out.
        running.truncate(1);
        let more = drain(&pool, &stop).await;
        assert_eq!(more.len(), 1);
        assert_eq!(pool.sending(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_raised_limit_forgives_what_is_owed_first() {
        let stop = CancellationToken::new();
        let pool = PartPermits::new(4);
        let running = drain(&pool, &stop).await;
        pool.resize(1); // 3 owed
        pool.resize(3); // 2 forgiven: 1 still owed
        drop(running);
        assert_eq!(drain(&pool, &stop).await.len(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiter_stops_waiting_when_told_to() {
        let stop = CancellationToken::new();
        let pool = PartPermits::new(1);
        let _only = pool.acquire(&stop).await.expect("free");
        let waiter = pool.acquire(&stop);
        stop.cancel();
        assert!(waiter.await.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_hold_waits_for_running_parts_and_starts_none() {
        let stop = CancellationToken::new();
        let pool = Arc::new(PartPermits::new(2));
        let running = pool.acquire(&stop).await.expect("free");
        let hold = tokio::spawn({
            let pool = pool.clone();
            async move { pool.hold().await }
        });
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(!hold.is_finished(), "a part is still on the wire");
        assert!(
            drain(&pool, &stop).await.is_empty(),
            "a held pool hands out nothing, though a permit is free"
        );
        drop(running);
        hold.await.expect("hold returns once the part finished");
        pool.release_hold();
        assert_eq!(drain(&pool, &stop).await.len(), 2);
    }
}
