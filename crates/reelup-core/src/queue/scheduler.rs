//! Who uploads what, when: claiming items under a lease, a heartbeat that renews it (and
//! notices a pause or cancel from another process), how many files run at once, and
//! recording how each run ended.
//!
//! What must stay true:
//! - An item is uploaded by at most one process at a time: its claim is a lease in the
//!   store, renewed every [`HEARTBEAT`] and lost after [`LEASE`] without renewal (a crashed
//!   process's items are taken over once their lease runs out, or at once when its owner is
//!   known dead).
//! - Every run ends with its outcome in the store and the claim released.
//! - Bytes on the wire are bounded by the parts-in-flight limit alone: a small file's POST
//!   takes one permit from the pool parts take theirs from (`engine::permits`). So the
//!   number of files running is not what bounds the link, and small files are not held to
//!   `files_at_once`: a folder of 1,000 clips has as many POSTs in flight as there are
//!   permits, while a file's presign request, its check and its layout overlap others'
//!   transfers.
//! - Files running at once stay bounded, whatever the queue's length: at most the permit
//!   limit plus [`READY_AHEAD`] (each running file holds a lease, a heartbeat, an open
//!   file), and at most `files_at_once` of them multipart, so a few large files finish
//!   rather than many creep along together (each holds its uploadId, its parts recorded).
//!   Small files behind a large one that waits for its turn go ahead of it.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::store::{Claim, ItemState, QueueError, QueueItem};
use super::{Ended, UploadQueue, item_error};
use crate::PresignEndpoint;

/// How long a claim on an item lasts without being renewed, and how often it is renewed.
pub(crate) const LEASE: Duration = Duration::from_secs(30);
pub(crate) const HEARTBEAT: Duration = Duration::from_secs(2);
/// Files claimed beyond the permit limit: being checked, looked at and signed while the
/// others send, so a permit coming free finds the next file ready.
const READY_AHEAD: usize = 2;
/// How often an idle [`UploadQueue::serve`] looks for work another process released.
const IDLE_POLL: Duration = Duration::from_secs(5);

impl<E: PresignEndpoint> UploadQueue<E> {
    /// Runs the queue until `stop`: uploads what is there, then waits for more (an add,
    /// a resume, or every few seconds for work another process released).
    pub async fn serve(self: &Arc<Self>, stop: CancellationToken) {
        // Uploads that failed for want of a server go on once it answers: looked at
        // after a run or while idle, at most once per IDLE_POLL, so an endpoint that
        // answers a probe but still fails uploads cannot spin the loop.
        let mut next_probe = tokio::time::Instant::now();
        while !stop.is_cancelled() {
            if let Err(e) = self.run(None, stop.child_token()).await {
                tracing::error!(error = %e, "the upload queue failed");
            }
            if tokio::time::Instant::now() >= next_probe {
                next_probe = tokio::time::Instant::now() + IDLE_POLL;
                if self.resume_reachable().await > 0 {
                    continue;
                }
            }
            tokio::select! {
                () = self.work.notified() => {},
                () = tokio::time::sleep(IDLE_POLL) => {},
                () = stop.cancelled() => {},
            }
        }
    }

    /// Uploads claimable items (only `only`, when given) until none is left to claim and
    /// none is running, or until `stop`. Returns how many items this call worked on.
    pub async fn run(
        self: &Arc<Self>,
        only: Option<Vec<i64>>,
        stop: CancellationToken,
    ) -> Result<usize, QueueError> {
        let mut running = tokio::task::JoinSet::new();
        // Multipart files running, counted down by their task however it ends.
        let large = Arc::new(AtomicUsize::new(0));
        let mut worked = 0;
        while !stop.is_cancelled() {
            // Read each time round: the permit limit changes with the settings.
            let window = self.wire.permits.limit() + READY_AHEAD;
            let claimed = if running.len() < window {
                let large_full = large.load(Ordering::SeqCst) >= self.options.files_at_once.max(1);
                let claim = Claim {
                    only: only.as_deref(),
                    below: large_full.then_some(self.options.upload.multipart_threshold),
                };
                self.store().claim(&self.owner, LEASE, &claim)?
            } else {
                None
            };
            if let Some(item) = claimed {
                worked += 1;
                let slot = self.goes_multipart(&item).then(|| LargeSlot::take(&large));
                let (this, stop) = (self.clone(), stop.child_token());
                running.spawn(async move {
                    this.work(item, stop).await;
                    drop(slot);
                });
                continue;
            }
            if running.is_empty() {
                break;
            }
            // Wait for a running item to end (it frees a place, and may free others), or
            // for new work (an add, a resume) while there is room.
            tokio::select! {
                _ = running.join_next() => {},
                () = self.work.notified(), if running.len() < window => {},
                () = stop.cancelled() => break,
            }
        }
        while running.join_next().await.is_some() {}
        // Idle: part buffers go back to the system (an app left open holds none).
        self.wire.buffers.clear();
        Ok(worked)
    }

    /// Whether an item will go up as multipart: the scheduler's guess from its size (a
    /// re-laid file may come out a little longer or shorter; the engine decides on the
    /// stream's own length, and either way the permits bound what is on the wire).
    fn goes_multipart(&self, item: &QueueItem) -> bool {
        item.upload_id.is_some() || item.size >= self.options.upload.multipart_threshold
    }

    /// One item, from claim to release: heartbeat, upload, outcome recorded.
    async fn work(self: Arc<Self>, item: QueueItem, stop: CancellationToken) {
        let id = item.id;
        self.running().insert(id, stop.clone());
        let heartbeat = tokio::spawn(self.clone().heartbeat(id, stop.clone()));
        let result = self.upload(&item, &stop).await;
        heartbeat.abort();
        self.running().remove(&id);
        let store_result = {
            let store = self.store();
            match &result {
                Ok(Ended::Done) => Ok(()),
                Ok(Ended::Stopped) => store.release(id, &self.owner),
                Err(e) => {
                    // Debug, not warn: the failure is the item's stored error, which each
                    // front end reports once in its own way (the CLI's `reelup:` line, the
                    // app's log and window); a warning here printed it twice more.
                    let error = crate::redact_urls(&e.to_string());
                    tracing::debug!(id, path = %item.path.display(), %error, "upload failed");
                    store
                        .set_state(id, ItemState::Failed, Some(&item_error(e)))
                        .and_then(|()| store.release(id, &self.owner))
                }
            }
        };
        if let Err(e) = store_result {
            tracing::error!(id, error = %e, "could not record the outcome in the queue");
        }
        self.changed(id);
    }

    /// Renews the item's lease until the run ends; stops the run when the item was paused
    /// or canceled elsewhere, or the lease could not be renewed.
    async fn heartbeat(self: Arc<Self>, id: i64, stop: CancellationToken) {
        loop {
            tokio::time::sleep(HEARTBEAT).await;
            let state = self.store().renew(id, &self.owner, LEASE);
            if matches!(state, Ok(ItemState::Paused | ItemState::Canceled) | Err(_)) {
                stop.cancel();
                return;
            }
        }
    }
}

/// One of the `files_at_once` places for a multipart file, given back when dropped (also
/// when its task panics).
struct LargeSlot(Arc<AtomicUsize>);

impl LargeSlot {
    fn take(count: &Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Ordering::SeqCst);
        Self(count.clone())
    }
}

impl Drop for LargeSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}
