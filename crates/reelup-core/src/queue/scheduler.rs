//! Who uploads what, when: claiming items under a lease, a heartbeat that renews it (and
//! notices a pause or cancel from another process), files at once, and recording how each
//! run ended.
//!
//! What must stay true:
//! - An item is uploaded by at most one process at a time: its claim is a lease in the
//!   store, renewed every [`HEARTBEAT`] and lost after [`LEASE`] without renewal (a crashed
//!   process's items are taken over once their lease runs out, or at once when its owner is
//!   known dead).
//! - Every run ends with its outcome in the store and the claim released.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::store::{ItemState, QueueError, QueueItem};
use super::{Ended, UploadQueue, item_error};
use crate::PresignEndpoint;

/// How long a claim on an item lasts without being renewed, and how often it is renewed.
pub(crate) const LEASE: Duration = Duration::from_secs(30);
pub(crate) const HEARTBEAT: Duration = Duration::from_secs(2);
/// How often an idle [`UploadQueue::serve`] looks for work another process released.
const IDLE_POLL: Duration = Duration::from_secs(5);

impl<E: PresignEndpoint> UploadQueue<E> {
    /// Runs the queue until `stop`: uploads what is there, then waits for more (an add,
    /// a resume, or every few seconds for work another process released).
    pub async fn serve(self: &Arc<Self>, stop: CancellationToken) {
        while !stop.is_cancelled() {
            if let Err(e) = self.run(None, stop.child_token()).await {
                tracing::error!(error = %e, "the upload queue failed");
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
        let files = Arc::new(Semaphore::new(self.options.files_at_once.max(1)));
        let mut running = tokio::task::JoinSet::new();
        let mut worked = 0;
        while !stop.is_cancelled() {
            let permit = tokio::select! {
                p = files.clone().acquire_owned() => p.expect("never closed"),
                () = stop.cancelled() => break,
            };
            let claimed = self
                .store()
                .claim_next(&self.owner, LEASE, only.as_deref())?;
            if let Some(item) = claimed {
                worked += 1;
                let (this, stop) = (self.clone(), stop.child_token());
                running.spawn(async move {
                    this.work(item, stop).await;
                    drop(permit);
                });
                continue;
            }
            drop(permit);
            if running.is_empty() {
                break;
            }
            // Wait for a running item to end; it may free others (or new ones may have
            // been queued meanwhile).
            tokio::select! {
                _ = running.join_next() => {},
                () = stop.cancelled() => break,
            }
        }
        while running.join_next().await.is_some() {}
        Ok(worked)
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
