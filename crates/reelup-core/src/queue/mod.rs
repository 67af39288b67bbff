//! The upload engine over the durable queue: claims items, uploads them part by part with
//! retries, records every finished part, and resumes what a quit, a crash or a lost network
//! left behind. The app, the CLI and `reelup watch` all run this.

pub mod state;
pub mod store;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt, stream};
use serde::Serialize;
use tokio::sync::{Semaphore, broadcast};
use tokio_util::sync::CancellationToken;

use crate::engine::transfer::{DEFAULT_STALL_TIMEOUT, Pacing};
use crate::queue::store::{
    ItemError, ItemState, Operation, QueueError, QueueItem, QueueStore, StoredPart, Target,
};
use crate::{
    BandwidthLimit, CompletedPart, FileMeta, Fingerprint, PartPlan, PresignEndpoint, Progress,
    ProgressFn, RetryPolicy, StreamingUrlBase, UploadError, UploadOptions, content_type_for,
    engine::transfer,
};

/// How long a claim on an item lasts without being renewed, and how often it is renewed.
const LEASE: Duration = Duration::from_secs(30);
const HEARTBEAT: Duration = Duration::from_secs(2);
/// Progress events per item are capped at ten a second.
const PROGRESS_INTERVAL: Duration = Duration::from_millis(100);

#[derive(Debug, Clone, Copy)]
pub struct QueueOptions {
    pub upload: UploadOptions,
    /// Parts in flight across all files (1-32). Parts are streamed from disk, so memory
    /// stays at a few chunks per part in flight, whatever the part size.
    pub parts_in_flight: usize,
    /// Files uploading at once.
    pub files_at_once: usize,
    pub retry: RetryPolicy,
    /// How long to wait for a network that went away mid-upload before the item fails
    /// (retryably). An endpoint never reached in this run fails at once instead: that is a
    /// wrong URL or a server that is down, not a dropped connection.
    pub offline_patience: Duration,
    /// A transfer that neither sends more of its body nor gets an answer for this long is
    /// cut and retried: stalled, not slow.
    pub stall_timeout: Duration,
    /// Bytes per second for all transfers of all files together; `None` for no limit.
    pub bandwidth_limit: Option<u64>,
}

impl Default for QueueOptions {
    fn default() -> Self {
        Self {
            upload: UploadOptions::default(),
            parts_in_flight: 4,
            files_at_once: 2,
            retry: RetryPolicy::default(),
            offline_patience: Duration::from_secs(15 * 60),
            stall_timeout: DEFAULT_STALL_TIMEOUT,
            bandwidth_limit: None,
        }
    }
}

/// What the app and the CLI hear about.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum QueueEvent {
    /// An item changed state (queued, done, failed...).
    Changed { item: Box<QueueItem> },
    /// Bytes confirmed so far for an item, with its speed and time left.
    Progress {
        id: i64,
        sent: u64,
        total: u64,
        bytes_per_sec: u64,
        eta_secs: Option<u64>,
    },
}

/// How one run of one item ended, short of an error.
enum Ended {
    Done,
    /// Paused or canceled from elsewhere, or the whole queue is stopping.
    Stopped,
}

/// Each profile's current target (endpoint, CDN, profile), by profile name; `None` when
/// the profile is gone. See [`crate::config::targets_in`].
pub type ProfileTargets = Arc<dyn Fn(&str) -> Option<Target> + Send + Sync>;

/// The most parts in flight a queue allows, whatever the setting says.
pub const MAX_PARTS_IN_FLIGHT: usize = 32;

pub struct UploadQueue<E> {
    store: Mutex<QueueStore>,
    connect: Box<dyn Fn(&Target) -> E + Send + Sync>,
    http: reqwest::Client,
    options: QueueOptions,
    parts: Arc<Semaphore>,
    /// The parts-in-flight setting the semaphore is being brought to.
    parts_target: std::sync::atomic::AtomicUsize,
    /// Permits still to take back after the setting was lowered.
    parts_owed: std::sync::atomic::AtomicUsize,
    /// Set while the queue is held at a part boundary (an update about to install): no part
    /// starts, parts on the wire finish. See [`UploadQueue::hold_at_part_boundary`].
    held: tokio::sync::watch::Sender<bool>,
    /// Parts on the wire now. Counted before `held` is looked at again, and `held` is set
    /// before this is read, so a hold never returns while a part it did not see is starting.
    parts_sending: Arc<tokio::sync::watch::Sender<usize>>,
    /// The part size for multipart uploads started from now on; one already started keeps
    /// the size it was planned with (its parts on S3 are numbered by it).
    part_size: std::sync::atomic::AtomicU64,
    /// Woken when there may be new work (an add or a resume), for [`UploadQueue::serve`].
    work: Arc<tokio::sync::Notify>,
    /// One for the whole queue, so the bandwidth limit is shared by every transfer.
    pacing: Pacing,
    owner: String,
    events: broadcast::Sender<QueueEvent>,
    /// Items this process is uploading, so a pause or cancel here stops them at once
    /// (another process's is noticed at its next heartbeat).
    running: Mutex<std::collections::HashMap<i64, CancellationToken>>,
    /// Where each profile points now. An item queued under a profile is sent only while the
    /// profile still points at the item's endpoint, since the token is the profile's.
    profiles: Option<ProfileTargets>,
}

fn item_error(e: &UploadError) -> ItemError {
    ItemError {
        code: e.code(),
        // The last guard: whatever an error quotes, no presigned URL's query reaches the
        // queue (and from it the UI, `reelup queue --json` and support requests).
        message: crate::redact_urls(&e.to_string()),
        retryable: e.is_retryable(),
    }
}

/// Whether `target` may be sent its profile's token: it has no profile (its token is
/// REELUP_TOKEN, given for it), or the profile still points at its endpoint.
fn bound(profiles: Option<&ProfileTargets>, target: &Target) -> Result<(), UploadError> {
    let (Some(profiles), Some(profile)) = (profiles, &target.profile) else {
        return Ok(());
    };
    match profiles(profile) {
        None => Err(UploadError::ProfileGone {
            profile: profile.clone(),
        }),
        Some(now) if now.endpoint != target.endpoint => Err(UploadError::EndpointChanged {
            profile: profile.clone(),
            from: target.endpoint.clone(),
            to: now.endpoint,
        }),
        Some(_) => Ok(()),
    }
}

impl UploadQueue<crate::CompanionClient> {
    /// The queue as the app and the CLI run it: each item's presign client speaks
    /// Companion's S3 routes to the item's endpoint, with its profile's token, but only
    /// while `profiles` says the profile still points there (otherwise with no token: a
    /// profile's token never goes to a host that is not its endpoint).
    pub fn for_companion(
        store: QueueStore,
        tokens: Arc<crate::credentials::TokenCache>,
        profiles: ProfileTargets,
        options: QueueOptions,
    ) -> Result<Arc<Self>, reqwest::Error> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .build()?;
        let connect_http = http.clone();
        let connect_profiles = profiles.clone();
        Ok(Self::with_profiles(
            store,
            move |target: &Target| {
                let token = match bound(Some(&connect_profiles), target) {
                    Ok(()) => tokens.token(target.profile.as_deref()),
                    Err(e) => {
                        tracing::warn!(error = %e, "sending no token");
                        None
                    }
                };
                crate::CompanionClient::new(connect_http.clone(), &target.endpoint, token)
            },
            http,
            options,
            Some(profiles),
        ))
    }
}

impl<E: PresignEndpoint> UploadQueue<E> {
    /// `connect` makes the presign client for an item's target (endpoint and token).
    pub fn new(
        store: QueueStore,
        connect: impl Fn(&Target) -> E + Send + Sync + 'static,
        http: reqwest::Client,
        options: QueueOptions,
    ) -> Arc<Self> {
        Self::with_profiles(store, connect, http, options, None)
    }

    /// Like [`UploadQueue::new`], with items bound to their profile's endpoint: an item
    /// whose profile now points elsewhere (or is gone) is not sent, and fails with
    /// `endpoint_changed` (`profile_gone`) until it is resumed on purpose.
    pub fn with_profiles(
        store: QueueStore,
        connect: impl Fn(&Target) -> E + Send + Sync + 'static,
        http: reqwest::Client,
        options: QueueOptions,
        profiles: Option<ProfileTargets>,
    ) -> Arc<Self> {
        let (events, _) = broadcast::channel(1024);
        Arc::new(Self {
            store: Mutex::new(store),
            connect: Box::new(connect),
            http,
            parts: Arc::new(Semaphore::new(
                options.parts_in_flight.clamp(1, MAX_PARTS_IN_FLIGHT),
            )),
            parts_target: std::sync::atomic::AtomicUsize::new(
                options.parts_in_flight.clamp(1, MAX_PARTS_IN_FLIGHT),
            ),
            parts_owed: std::sync::atomic::AtomicUsize::new(0),
            held: tokio::sync::watch::Sender::new(false),
            parts_sending: Arc::new(tokio::sync::watch::Sender::new(0)),
            part_size: std::sync::atomic::AtomicU64::new(options.upload.part_size),
            pacing: Pacing {
                stall_timeout: options.stall_timeout,
                limit: Some(Arc::new({
                    let limit = BandwidthLimit::unlimited();
                    limit.set(options.bandwidth_limit);
                    limit
                })),
            },
            work: Arc::new(tokio::sync::Notify::new()),
            options,
            owner: crate::queue::store::this_owner(),
            events,
            running: Mutex::new(std::collections::HashMap::new()),
            profiles,
        })
    }

    pub fn subscribe(&self) -> broadcast::Receiver<QueueEvent> {
        self.events.subscribe()
    }

    fn store(&self) -> std::sync::MutexGuard<'_, QueueStore> {
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn changed(&self, id: i64) {
        if let Ok(item) = self.store().get(id) {
            let _ = self.events.send(QueueEvent::Changed {
                item: Box::new(item),
            });
        }
    }

    /// Queues a file for `target`. The same unchanged file is never queued twice.
    pub fn add(&self, path: &Path, target: &Target) -> Result<i64, UploadError> {
        let fp = Fingerprint::of(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => UploadError::FileNotFound {
                path: path.to_owned(),
            },
            std::io::ErrorKind::IsADirectory => UploadError::NotAFile {
                path: path.to_owned(),
            },
            _ => UploadError::FileUnreadable {
                path: path.to_owned(),
                source: e,
            },
        })?;
        let path = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
        let id = self
            .store()
            .add(&path, &fp, target)
            .map_err(queue_failure)?;
        self.changed(id);
        self.work.notify_one();
        Ok(id)
    }

    /// Queues a file a watched folder reported, unless the same content was taken in from
    /// a watched folder before (under any name, in any earlier run). None: already known.
    pub fn add_watched(&self, path: &Path, target: &Target) -> Result<Option<i64>, UploadError> {
        let path = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
        // Not followed: a link planted in a shared folder could point anywhere (a key file,
        // a credentials file). The watcher says so too; this holds for any caller.
        let meta = std::fs::symlink_metadata(&path).map_err(|e| UploadError::FileUnreadable {
            path: path.clone(),
            source: e,
        })?;
        if meta.file_type().is_symlink() {
            return Err(UploadError::Symlink { path });
        }
        if !meta.is_file() {
            return Err(UploadError::NotAFile { path });
        }
        let mtime_ns = meta
            .modified()
            .ok()
            .and_then(|m| m.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos() as i64);
        if self
            .store()
            .watched_unchanged(&path, meta.len(), mtime_ns)
            .map_err(queue_failure)?
        {
            return Ok(None);
        }
        let fp = Fingerprint::of(&path).map_err(|e| UploadError::FileUnreadable {
            path: path.clone(),
            source: e,
        })?;
        let id = self
            .store()
            .add_watched(&path, &fp, target)
            .map_err(queue_failure)?;
        if let Some(id) = id {
            self.changed(id);
            self.work.notify_one();
        }
        Ok(id)
    }

    /// Forgets a finished, failed or canceled item. Returns false for an active one.
    pub fn remove(&self, id: i64) -> Result<bool, QueueError> {
        self.store().remove(id)
    }

    /// Records where a finished item's file went (the after-upload move).
    pub fn set_path(&self, id: i64, path: &Path) -> Result<(), QueueError> {
        self.store().set_path(id, path)?;
        self.changed(id);
        Ok(())
    }

    /// Changes the bandwidth limit of every transfer, running ones included.
    pub fn set_bandwidth_limit(&self, bytes_per_sec: Option<u64>) {
        if let Some(limit) = &self.pacing.limit {
            limit.set(bytes_per_sec);
        }
    }

    /// Changes how many parts may be in flight. Lowering it takes effect as parts finish.
    pub fn set_parts_in_flight(&self, n: usize) {
        let n = n.clamp(1, MAX_PARTS_IN_FLIGHT);
        let old = self
            .parts_target
            .swap(n, std::sync::atomic::Ordering::SeqCst);
        if n > old {
            // Forgive what is still owed first, then hand out the rest.
            let owed = self
                .parts_owed
                .fetch_update(
                    std::sync::atomic::Ordering::SeqCst,
                    std::sync::atomic::Ordering::SeqCst,
                    |o| Some(o.saturating_sub(n - old)),
                )
                .unwrap_or(0);
            self.parts.add_permits((n - old).saturating_sub(owed));
        } else if n < old {
            // Free permits go at once; those held by running parts are owed and taken back
            // as they come home (`part_permit`). No task is spawned: this may be called
            // from a thread with no runtime (the app's main thread).
            let gone = self.parts.forget_permits(old - n);
            self.parts_owed
                .fetch_add(old - n - gone, std::sync::atomic::Ordering::SeqCst);
        }
    }

    /// Changes the part size of multipart uploads that start from now on.
    pub fn set_part_size(&self, bytes: u64) {
        self.part_size
            .store(bytes, std::sync::atomic::Ordering::SeqCst);
    }

    /// A permit to send one part, honouring a parts-in-flight setting lowered meanwhile.
    async fn part_permit(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        loop {
            let permit = self.parts.clone().acquire_owned().await.ok()?;
            let owed = self.parts_owed.fetch_update(
                std::sync::atomic::Ordering::SeqCst,
                std::sync::atomic::Ordering::SeqCst,
                |o| o.checked_sub(1),
            );
            if owed.is_err() {
                return Some(permit);
            }
            permit.forget();
        }
    }

    /// A permit to send one part, or None once `stop` fires (a paused or canceled file
    /// must not wait its turn to find out). While the queue is held, no permit is handed
    /// out; one taken just as the hold began is given back.
    async fn part_permit_unless(&self, stop: &CancellationToken) -> Option<PartPermit> {
        loop {
            let mut held = self.held.subscribe();
            tokio::select! {
                unheld = held.wait_for(|h| !*h) => { unheld.ok()?; }
                () = stop.cancelled() => return None,
            }
            let permit = tokio::select! {
                permit = self.part_permit() => permit?,
                () = stop.cancelled() => return None,
            };
            let sending = PartPermit::new(permit, self.parts_sending.clone());
            if !*self.held.borrow() {
                return Some(sending);
            }
        }
    }

    /// Stops the queue at a part boundary: from now on no part starts, and this returns once
    /// the parts already on the wire have finished (each one's ETag recorded), so what was
    /// sent is not sent again. Small files mid-POST are not waited for: they start over.
    /// Used before an update installs and the app restarts; the durable queue carries on
    /// from the last finished part on the next start. [`UploadQueue::release_hold`] undoes
    /// it (an update that failed to install).
    pub async fn hold_at_part_boundary(&self) {
        self.held.send_replace(true);
        let mut sending = self.parts_sending.subscribe();
        let _ = sending.wait_for(|n| *n == 0).await;
    }

    /// Lets parts start again after [`UploadQueue::hold_at_part_boundary`].
    pub fn release_hold(&self) {
        self.held.send_replace(false);
    }

    /// Pauses everything not yet finished; returns how many items it paused.
    pub fn pause_all(&self) -> Result<usize, QueueError> {
        let ids = self.ids_in(Operation::Pause.starts_from())?;
        let mut n = 0;
        for id in ids {
            n += usize::from(self.pause(id)?);
        }
        Ok(n)
    }

    /// Puts every paused and failed item back in line.
    pub fn resume_all(&self) -> Result<usize, QueueError> {
        let ids = self.ids_in(Operation::Resume.starts_from())?;
        let mut n = 0;
        for id in ids {
            n += usize::from(self.resume(id)?);
        }
        Ok(n)
    }

    /// Runs the queue until `stop`: uploads what is there, then waits for more (an add,
    /// a resume, or every few seconds for work another process released).
    pub async fn serve(self: &Arc<Self>, stop: CancellationToken) {
        const IDLE_POLL: Duration = Duration::from_secs(5);
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

    pub fn list(&self) -> Result<Vec<QueueItem>, QueueError> {
        self.store().list()
    }

    pub fn get(&self, id: i64) -> Result<QueueItem, QueueError> {
        self.store().get(id)
    }

    pub fn pause(&self, id: i64) -> Result<bool, QueueError> {
        let moved = self.store().apply(id, Operation::Pause)?;
        self.stop_running(id);
        self.changed(id);
        Ok(moved)
    }

    fn stop_running(&self, id: i64) {
        if let Some(token) = self
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
        {
            token.cancel();
        }
    }

    /// Puts a paused item, or one that failed, back in line; finished parts are kept.
    ///
    /// A resume is on purpose: an item whose profile now points at another endpoint is
    /// re-targeted to the profile's current endpoint and CDN (its multipart upload, which
    /// lives on the old endpoint's store, starts over there).
    pub fn resume(&self, id: i64) -> Result<bool, QueueError> {
        self.retarget(id)?;
        let moved = self.store().apply(id, Operation::Resume)?;
        self.changed(id);
        self.work.notify_one();
        Ok(moved)
    }

    /// Points a paused or failed item at its profile's current target, if that moved.
    fn retarget(&self, id: i64) -> Result<(), QueueError> {
        let Some(profiles) = &self.profiles else {
            return Ok(());
        };
        let item = self.store().get(id)?;
        if !Operation::Resume.allows(item.state) {
            return Ok(());
        }
        let Some(profile) = &item.target.profile else {
            return Ok(());
        };
        let Some(now) = profiles(profile) else {
            // Gone: the item stays bound, and fails again with `profile_gone`.
            return Ok(());
        };
        if now.endpoint != item.target.endpoint {
            tracing::info!(
                id,
                from = %item.target.endpoint,
                to = %now.endpoint,
                "resumed on purpose: the upload goes to the profile's new endpoint"
            );
            let store = self.store();
            store.set_target(id, &now)?;
            store.clear_multipart(id)?;
        }
        Ok(())
    }

    /// Cancels an item and aborts its multipart upload on S3, so nothing is left behind.
    pub async fn cancel(&self, id: i64) -> Result<bool, UploadError> {
        let item = self.store().get(id).map_err(queue_failure)?;
        let moved = self
            .store()
            .apply(id, Operation::Cancel)
            .map_err(queue_failure)?;
        self.stop_running(id);
        if moved {
            if let (Some(key), Some(upload_id)) = (&item.key, &item.upload_id) {
                let endpoint = (self.connect)(&item.target);
                if let Err(e) = endpoint.abort(key, upload_id).await {
                    tracing::warn!(id, error = %e, "could not abort the multipart upload");
                }
            }
            self.store().clear_multipart(id).map_err(queue_failure)?;
        }
        self.changed(id);
        Ok(moved)
    }

    pub fn ids_in(&self, states: &[ItemState]) -> Result<Vec<i64>, QueueError> {
        Ok(self
            .store()
            .list()?
            .into_iter()
            .filter(|i| states.contains(&i.state))
            .map(|i| i.id)
            .collect())
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
        loop {
            if stop.is_cancelled() {
                break;
            }
            let permit = tokio::select! {
                p = files.clone().acquire_owned() => p.expect("never closed"),
                () = stop.cancelled() => break,
            };
            let claimed = self
                .store
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .claim_next(&self.owner, LEASE, only.as_deref())?;
            match claimed {
                Some(item) => {
                    worked += 1;
                    let this = self.clone();
                    let stop = stop.child_token();
                    running.spawn(async move {
                        this.work(item, stop).await;
                        drop(permit);
                    });
                }
                None => {
                    drop(permit);
                    if running.is_empty() {
                        break;
                    }
                    // Wait for a running item to end; it may free others (or new ones may
                    // have been queued meanwhile).
                    tokio::select! {
                        _ = running.join_next() => {},
                        () = stop.cancelled() => break,
                    }
                }
            }
        }
        while running.join_next().await.is_some() {}
        Ok(worked)
    }

    /// One item, from claim to release: heartbeat, upload, outcome recorded.
    async fn work(self: Arc<Self>, item: QueueItem, stop: CancellationToken) {
        let id = item.id;
        self.running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, stop.clone());
        let heartbeat = {
            let (this, stop) = (self.clone(), stop.clone());
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(HEARTBEAT).await;
                    let state = this.store().renew(id, &this.owner, LEASE);
                    if matches!(state, Ok(ItemState::Paused | ItemState::Canceled) | Err(_)) {
                        stop.cancel();
                        return;
                    }
                }
            })
        };
        let result = self.upload(&item, &stop).await;
        heartbeat.abort();
        self.running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
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

    async fn upload(
        &self,
        item: &QueueItem,
        stop: &CancellationToken,
    ) -> Result<Ended, UploadError> {
        let path = item.path.clone();
        let now = {
            let p = path.clone();
            tokio::task::spawn_blocking(move || Fingerprint::of(&p))
                .await
                .map_err(|e| UploadError::FileUnreadable {
                    path: path.clone(),
                    source: std::io::Error::other(e),
                })?
        };
        match now {
            Ok(fp) if fp == item.fingerprint => {}
            Ok(_) => return Err(UploadError::FileChanged { path }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(UploadError::FileNotFound { path });
            }
            Err(e) => return Err(UploadError::FileUnreadable { path, source: e }),
        }
        // Checked before any request: the token is the profile's, and goes only where the
        // profile points now.
        bound(self.profiles.as_ref(), &item.target)?;
        self.store()
            .apply(item.id, Operation::Start)
            .map_err(queue_failure)?;
        self.changed(item.id);
        let endpoint = (self.connect)(&item.target);
        let meta = FileMeta {
            filename: path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "video".into()),
            content_type: content_type_for(&path),
            size: item.size,
            part_size: None,
        };
        let progress = self.progress_reporter(item.id, item.size, item.confirmed);
        let reached = AtomicBool::new(false);
        let ctx = Ctx {
            endpoint: &endpoint,
            item,
            meta: &meta,
            progress: &progress,
            stop,
            reached: &reached,
        };
        let key = if item.size < self.options.upload.multipart_threshold && item.upload_id.is_none()
        {
            match self.post(&ctx).await? {
                Some(key) => key,
                None => return Ok(Ended::Stopped),
            }
        } else {
            match self.multipart(&ctx).await? {
                Some(key) => key,
                None => return Ok(Ended::Stopped),
            }
        };
        let url = StreamingUrlBase::new(&item.target.cdn).url_for(&key);
        self.store()
            .finish(item.id, &key, &url)
            .map_err(queue_failure)?;
        Ok(Ended::Done)
    }

    fn progress_reporter(&self, id: i64, total: u64, already: u64) -> ProgressFn {
        let events = self.events.clone();
        let state = Mutex::new((Instant::now(), Instant::now() - PROGRESS_INTERVAL, already));
        Arc::new(move |p: Progress| {
            let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
            let (started, last, base) = *s;
            if p.sent < p.total && last.elapsed() < PROGRESS_INTERVAL {
                return;
            }
            s.1 = Instant::now();
            let elapsed = started.elapsed().as_secs_f64().max(0.001);
            let bytes_per_sec = (p.sent.saturating_sub(base) as f64 / elapsed) as u64;
            let eta_secs =
                (bytes_per_sec > 0).then(|| total.saturating_sub(p.sent) / bytes_per_sec);
            let _ = events.send(QueueEvent::Progress {
                id,
                sent: p.sent,
                total,
                bytes_per_sec,
                eta_secs,
            });
        })
    }

    /// Runs `op` with the retry policy: backoff with full jitter, Retry-After honoured, and
    /// while the network is gone, waiting without spending attempts. `None` if stopped.
    async fn retrying<T, F, Fut>(
        &self,
        stop: &CancellationToken,
        reached: &AtomicBool,
        mut op: F,
    ) -> Result<Option<T>, UploadError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, UploadError>>,
    {
        let policy = self.options.retry;
        let mut attempt = 0;
        let mut offline_waits = 0u32;
        let mut offline_since: Option<Instant> = None;
        loop {
            let result = tokio::select! {
                r = op() => r,
                () = stop.cancelled() => return Ok(None),
            };
            if let Err(UploadError::StorageUnreachable {
                connected: true, ..
            }) = &result
            {
                // A connection was made, then reset or cut: the store is there; this is
                // passing trouble, waited out like a lost network, not a wrong URL.
                reached.store(true, Ordering::Relaxed);
            }
            match result {
                Ok(v) => {
                    reached.store(true, Ordering::Relaxed);
                    return Ok(Some(v));
                }
                Err(e)
                    if e.is_offline()
                        && reached.load(Ordering::Relaxed)
                        && offline_since
                            .is_none_or(|t| t.elapsed() < self.options.offline_patience) =>
                {
                    offline_since.get_or_insert_with(Instant::now);
                    // Probing, not failing: the next attempt is the probe.
                    offline_waits += 1;
                    let wait = policy
                        .delay(offline_waits.min(6), None)
                        .max(Duration::from_millis(250));
                    tracing::info!(error = %e, wait_ms = wait.as_millis() as u64, "network unreachable; waiting");
                    tokio::select! {
                        () = tokio::time::sleep(wait) => {},
                        () = stop.cancelled() => return Ok(None),
                    }
                }
                // Never reached in this run: a wrong URL or a server that is down. Say so
                // now rather than after minutes of retries.
                Err(e) if e.is_offline() && !reached.load(Ordering::Relaxed) => return Err(e),
                Err(e) if e.is_retryable() && attempt + 1 < policy.attempts => {
                    let wait = if e.is_expired_url() {
                        Duration::ZERO
                    } else {
                        policy.delay(attempt, e.retry_after())
                    };
                    attempt += 1;
                    tracing::info!(error = %e, attempt, wait_ms = wait.as_millis() as u64, "retrying");
                    tokio::select! {
                        () = tokio::time::sleep(wait) => {},
                        () = stop.cancelled() => return Ok(None),
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn post(&self, ctx: &Ctx<'_, E>) -> Result<Option<String>, UploadError> {
        let Ctx {
            endpoint,
            item,
            meta,
            progress,
            stop,
            reached,
        } = *ctx;
        self.retrying(stop, reached, || async {
            // A fresh policy per attempt: an expired one is the commonest reason to retry.
            let policy = endpoint.post_policy(meta).await?;
            crate::check_presigned_url(&item.target.endpoint, &policy.url, "POST policy URL")?;
            transfer::post_object(
                &self.http,
                &policy,
                &item.path,
                meta,
                progress,
                &self.pacing,
            )
            .await?;
            Ok(policy.key().unwrap_or_default().to_owned())
        })
        .await
    }

    /// Starts or resumes the item's multipart upload, sends the parts S3 lacks, completes.
    async fn multipart(&self, ctx: &Ctx<'_, E>) -> Result<Option<String>, UploadError> {
        let Ctx {
            endpoint,
            item,
            meta,
            progress,
            stop,
            reached,
        } = *ctx;
        let id = item.id;
        let (key, upload_id, part_size) = match (&item.key, &item.upload_id, item.part_size) {
            (Some(k), Some(u), Some(ps)) => (k.clone(), u.clone(), ps),
            _ => {
                // Planned before create, so the server can be told the part size and bound
                // each part to it.
                let part_size = self.part_size.load(std::sync::atomic::Ordering::SeqCst);
                let plan = PartPlan::new(item.size, part_size);
                let meta = FileMeta {
                    part_size: Some(plan.part_size()),
                    ..meta.clone()
                };
                let Some(start) = self
                    .retrying(stop, reached, || endpoint.create_multipart(&meta))
                    .await?
                else {
                    return Ok(None);
                };
                self.store()
                    .set_multipart(id, &start.key, &start.upload_id, plan.part_size())
                    .map_err(queue_failure)?;
                (start.key, start.upload_id, plan.part_size())
            }
        };
        let plan = PartPlan::new(item.size, part_size);
        let Some(done) = self.reconcile(ctx, &key, &upload_id, &plan).await? else {
            return Ok(None);
        };
        let confirmed: u64 = done.values().map(|p| p.size).sum();
        let sent = Arc::new(std::sync::atomic::AtomicU64::new(confirmed));
        progress(Progress {
            sent: confirmed,
            total: item.size,
        });

        let missing: Vec<_> = plan
            .parts()
            .filter(|(n, _)| !done.contains_key(n))
            .collect();
        // The shared semaphore is what limits parts in flight. A file's parts line up for
        // it one at a time (`turn`), so each file has at most one waiter there: files take
        // turns (the semaphore is fair), a raised setting applies at once, and a paused or
        // canceled file stops waiting.
        let turn = tokio::sync::Mutex::new(());
        let sent_parts: Vec<Option<StoredPart>> = stream::iter(missing)
            .map(|(number, range)| {
                let (key, upload_id, sent, turn) = (&key, &upload_id, sent.clone(), &turn);
                async move {
                    let permit = {
                        let _turn = turn.lock().await;
                        self.part_permit_unless(stop).await
                    };
                    let Some(_permit) = permit else {
                        return Ok(None);
                    };
                    if stop.is_cancelled() {
                        return Ok(None);
                    }
                    let len = range.end - range.start;
                    let etag = self
                        .retrying(stop, reached, || async {
                            let signed = endpoint.sign_part(key, upload_id, number).await?;
                            crate::check_presigned_url(
                                &item.target.endpoint,
                                &signed.url,
                                "part URL",
                            )?;
                            transfer::put_part(
                                &self.http,
                                &signed.url,
                                &item.path,
                                range.start,
                                len,
                                &self.pacing,
                            )
                            .await
                        })
                        .await?;
                    let Some(etag) = etag else { return Ok(None) };
                    let part = StoredPart {
                        number,
                        etag,
                        size: len,
                    };
                    self.store().record_part(id, &part).map_err(queue_failure)?;
                    let now = sent.fetch_add(len, std::sync::atomic::Ordering::Relaxed) + len;
                    progress(Progress {
                        sent: now,
                        total: item.size,
                    });
                    Ok::<_, UploadError>(Some(part))
                }
            })
            .buffer_unordered(MAX_PARTS_IN_FLIGHT)
            .try_collect()
            .await?;
        if stop.is_cancelled() || sent_parts.iter().any(Option::is_none) {
            return Ok(None);
        }

        self.store()
            .set_state(id, ItemState::Completing, None)
            .map_err(queue_failure)?;
        self.changed(id);
        let parts: Vec<CompletedPart> = self
            .store()
            .parts(id)
            .map_err(queue_failure)?
            .into_iter()
            .map(|p| CompletedPart {
                part_number: p.number,
                etag: p.etag,
            })
            .collect();
        if parts.len() as u32 != plan.part_count() {
            return Err(UploadError::Endpoint {
                route: "queue".into(),
                status: 0,
                message: format!(
                    "{} of {} parts recorded; the upload resumes",
                    parts.len(),
                    plan.part_count()
                ),
            });
        }
        let completed = self
            .retrying(stop, reached, || {
                endpoint.complete(&key, &upload_id, &parts)
            })
            .await?;
        if completed.is_some() {
            self.verify_object(&item.target, &key, &parts).await?;
        }
        Ok(completed.map(|()| key))
    }

    /// Checks the finished object's ETag, as the CDN reports it, against the one S3 computes
    /// for these parts: MD5 of the parts' MD5s, then `-<count>`. Where the CDN cannot be
    /// asked, or the ETag is not of that form (SSE-KMS), the per-part checks stand alone.
    async fn verify_object(
        &self,
        target: &Target,
        key: &str,
        parts: &[CompletedPart],
    ) -> Result<(), UploadError> {
        let Some(expected) = multipart_etag(parts) else {
            return Ok(());
        };
        let url = StreamingUrlBase::new(&target.cdn).url_for(key);
        let got = match self
            .http
            .head(&url)
            .timeout(Duration::from_secs(10))
            .send()
            .await
        {
            Ok(resp) if resp.status().is_success() => resp
                .headers()
                .get(reqwest::header::ETAG)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            _ => None,
        };
        match got {
            Some(got) if got.contains('-') && !got.eq_ignore_ascii_case(&expected) => {
                Err(UploadError::Integrity { expected, got })
            }
            _ => Ok(()),
        }
    }

    /// Brings the queue's record of finished parts in line with what S3 holds: parts S3
    /// has but the queue missed (a crash between the two) are kept when S3 gives their
    /// ETag; parts the queue has but S3 lost are sent again.
    async fn reconcile(
        &self,
        ctx: &Ctx<'_, E>,
        key: &str,
        upload_id: &str,
        plan: &PartPlan,
    ) -> Result<Option<BTreeMap<u32, StoredPart>>, UploadError> {
        let Ctx {
            endpoint,
            item,
            stop,
            reached,
            ..
        } = *ctx;
        let id = item.id;
        let mut local: BTreeMap<u32, StoredPart> = self
            .store()
            .parts(id)
            .map_err(queue_failure)?
            .into_iter()
            .map(|p| (p.number, p))
            .collect();
        let Some(remote) = self
            .retrying(stop, reached, || endpoint.list_parts(key, upload_id))
            .await?
        else {
            return Ok(None);
        };
        let remote_numbers: BTreeSet<u32> = remote.iter().map(|p| p.part_number).collect();
        // An empty listing with parts on record may be a store that lists nothing
        // (s3s-fs lists parts without ETags); only drop parts S3 positively lacks.
        if !remote.is_empty() {
            for number in local.keys().copied().collect::<Vec<_>>() {
                if !remote_numbers.contains(&number) {
                    self.store()
                        .remove_part(id, number)
                        .map_err(queue_failure)?;
                    local.remove(&number);
                }
            }
        }
        for p in remote {
            let expected = plan.range(p.part_number);
            let whole =
                p.part_number <= plan.part_count() && p.size == expected.end - expected.start;
            if whole && !p.etag.is_empty() && !local.contains_key(&p.part_number) {
                let part = StoredPart {
                    number: p.part_number,
                    etag: p.etag,
                    size: p.size,
                };
                self.store().record_part(id, &part).map_err(queue_failure)?;
                local.insert(part.number, part);
            }
        }
        Ok(Some(local))
    }
}

/// S3's ETag for an object made of `parts`, when every part's ETag is a plain MD5.
fn multipart_etag(parts: &[CompletedPart]) -> Option<String> {
    use md5::{Digest, Md5};
    let mut all = Md5::new();
    for p in parts {
        let mut md5 = [0u8; 16];
        hex::decode_to_slice(p.etag.trim_matches('"'), &mut md5).ok()?;
        all.update(md5);
    }
    Some(format!(
        "\"{}-{}\"",
        hex::encode(all.finalize()),
        parts.len()
    ))
}

/// What one upload run of one item carries around.
struct Ctx<'a, E> {
    endpoint: &'a E,
    item: &'a QueueItem,
    meta: &'a FileMeta,
    progress: &'a ProgressFn,
    stop: &'a CancellationToken,
    /// Whether any request of this run got through; see `QueueOptions::offline_patience`.
    reached: &'a AtomicBool,
}

impl<E> Clone for Ctx<'_, E> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<E> Copy for Ctx<'_, E> {}

fn queue_failure(e: QueueError) -> UploadError {
    UploadError::Queue(e)
}

/// A part's permit, counted in `parts_sending` for as long as the part is on the wire.
struct PartPermit {
    _permit: tokio::sync::OwnedSemaphorePermit,
    sending: Arc<tokio::sync::watch::Sender<usize>>,
}

impl PartPermit {
    fn new(
        permit: tokio::sync::OwnedSemaphorePermit,
        sending: Arc<tokio::sync::watch::Sender<usize>>,
    ) -> Self {
        sending.send_modify(|n| *n += 1);
        Self {
            _permit: permit,
            sending,
        }
    }
}

impl Drop for PartPermit {
    fn drop(&mut self) {
        self.sending.send_modify(|n| *n -= 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipart_etag_is_md5_of_part_md5s_and_count() {
        // Two parts whose MD5s are known: md5("a") and md5("b").
        let parts = vec![
            CompletedPart {
                part_number: 1,
                etag: "\"0cc175b9c0f1b6a831c399e269772661\"".into(),
            },
            CompletedPart {
                part_number: 2,
                etag: "92eb5ffee6ae2fec3ad71c777531578f".into(),
            },
        ];
        // md5(md5("a") || md5("b")), computed independently with Python's hashlib.
        assert_eq!(
            multipart_etag(&parts).as_deref(),
            Some("\"96e024ba2074fe77e8e965ba43a704be-2\"")
        );
        let kms = vec![CompletedPart {
            part_number: 1,
            etag: "not-an-md5".into(),
        }];
        assert_eq!(multipart_etag(&kms), None);
    }
}
