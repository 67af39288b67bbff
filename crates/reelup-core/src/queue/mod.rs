//! The durable upload queue: what the app, the CLI and `reelup watch` all run. It claims
//! items, hands each to the engine, records every finished part, and resumes what a quit, a
//! crash or a lost network left behind.
//!
//! | file           | what lives there                                                   |
//! |----------------|--------------------------------------------------------------------|
//! | `mod.rs`       | [`UploadQueue`], the front: add, pause, resume, cancel, settings   |
//! | `state.rs`     | the state machine: which operation may start from which state      |
//! | `scheduler.rs` | claims under a lease, the heartbeat, files at once, outcomes       |
//! | `upload.rs`    | one run of one item: checks, the engine, the store as part ledger  |
//! | `poster.rs`    | poster frames: checked, uploaded beside the video, recorded        |
//! | `store.rs`     | the SQLite store and its schema                                    |

pub mod poster;
mod reconnect;
mod scheduler;
pub mod state;
pub mod store;
mod upload;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::engine::transfer::{DEFAULT_STALL_TIMEOUT, Pacing};
use crate::engine::{BufferPool, MAX_PARTS_IN_FLIGHT, PartPermits, Wire};
use crate::media::faststart::{FaststartSetting, Layout};
use crate::media::read_details;
use crate::queue::store::{
    ItemError, ItemState, NewItem, Operation, QueueError, QueueItem, QueueStore, Target,
};
use crate::{
    BandwidthLimit, Fingerprint, PresignEndpoint, RetryPolicy, UploadError, UploadOptions,
};

#[derive(Debug, Clone, Copy)]
pub struct QueueOptions {
    pub upload: UploadOptions,
    /// Parts in flight across all files (1-32). Parts are streamed from disk, so memory
    /// stays at a few chunks per part in flight, whatever the part size.
    pub parts_in_flight: usize,
    /// Multipart (large) files uploading at once. Small files, one POST each, are not held
    /// to it: they run as many at once as there are part permits (see `scheduler`), since
    /// each POST takes a permit as a part does.
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
    /// The faststart setting for items with no profile (`--endpoint` uploads); an item
    /// with a profile follows the profile's.
    pub faststart: FaststartSetting,
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
            faststart: FaststartSetting::default(),
        }
    }
}

/// What the app and the CLI hear about.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum QueueEvent {
    /// An item changed state (queued, done, failed...).
    Changed { item: Box<QueueItem> },
    /// A batch of files was queued ([`UploadQueue::add_many`], a watched folder's batch):
    /// one event for the batch, so 1,000 files dropped at once do not overrun subscribers
    /// (the channel holds 1,024 events; one that falls behind loses the oldest).
    Added { items: Vec<QueueItem> },
    /// Bytes confirmed so far for an item, with its speed and time left.
    Progress {
        id: i64,
        sent: u64,
        total: u64,
        bytes_per_sec: u64,
        eta_secs: Option<u64>,
    },
    /// An item's poster frame was uploaded; `url` is where it streams from.
    Poster { id: i64, url: String },
    /// An item was found to have no poster, and why (see [`QueueItem::no_poster`]).
    NoPoster { id: i64, why: String },
    /// An uploading item's requests began waiting to try again (`why`, in words: the
    /// server or the network is gone, or the server had trouble), or got through again
    /// (`None`). Not stored: a run that ends (done, failed, paused) ends its wait too.
    Waiting { id: i64, why: Option<String> },
}

/// How one run of one item ended, short of an error.
enum Ended {
    Done,
    /// Paused or canceled from elsewhere, or the whole queue is stopping.
    Stopped,
}

/// Each profile's current target (endpoint, CDN, profile), by profile name; `None` when
/// the profile is gone. See [`crate::config::targets_in`].
pub type ProfileTargets =
    Arc<dyn Fn(&str) -> Result<Option<Target>, crate::config::ConfigError> + Send + Sync>;

pub struct UploadQueue<E> {
    store: Mutex<QueueStore>,
    connect: Box<dyn Fn(&Target) -> E + Send + Sync>,
    options: QueueOptions,
    /// The HTTP client, bandwidth limit and part permits every upload shares.
    wire: Wire,
    /// The part size for multipart uploads started from now on; one already started keeps
    /// the size it was planned with (its parts on S3 are numbered by it).
    part_size: AtomicU64,
    /// Woken when there may be new work (an add or a resume), for [`UploadQueue::serve`].
    work: Arc<tokio::sync::Notify>,
    owner: String,
    events: broadcast::Sender<QueueEvent>,
    /// Items this process is uploading, so a pause or cancel here stops them at once
    /// (another process's is noticed at its next heartbeat).
    running: Mutex<HashMap<i64, CancellationToken>>,
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
        // A file that will not load says nothing about the profile: its own error, never
        // "gone", and never a guess at where the token may go.
        Err(problem) => Err(UploadError::ProfilesUnusable {
            profile: profile.clone(),
            problem,
        }),
        Ok(None) => Err(UploadError::ProfileGone {
            profile: profile.clone(),
        }),
        Ok(Some(now)) if now.endpoint != target.endpoint => Err(UploadError::EndpointChanged {
            profile: profile.clone(),
            from: target.endpoint.clone(),
            to: now.endpoint,
        }),
        Ok(Some(_)) => Ok(()),
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
                    Ok(()) => tokens.token(target.profile.as_deref(), &target.endpoint),
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
        let limit = BandwidthLimit::unlimited();
        limit.set(options.bandwidth_limit);
        Arc::new(Self {
            store: Mutex::new(store),
            connect: Box::new(connect),
            wire: Wire {
                http,
                pacing: Pacing {
                    stall_timeout: options.stall_timeout,
                    limit: Some(Arc::new(limit)),
                },
                permits: PartPermits::new(options.parts_in_flight),
                // As many free buffers as parts may be in flight: enough to reuse one for
                // every part of a steady upload, and never more memory than twice the
                // parts in flight hold.
                buffers: BufferPool::new(options.parts_in_flight.clamp(1, MAX_PARTS_IN_FLIGHT)),
            },
            part_size: AtomicU64::new(options.upload.part_size),
            work: Arc::new(tokio::sync::Notify::new()),
            options,
            owner: crate::queue::store::this_owner(),
            events,
            running: Mutex::new(HashMap::new()),
            profiles,
        })
    }

    pub fn subscribe(&self) -> broadcast::Receiver<QueueEvent> {
        self.events.subscribe()
    }

    fn store(&self) -> MutexGuard<'_, QueueStore> {
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn running(&self) -> MutexGuard<'_, HashMap<i64, CancellationToken>> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn part_size(&self) -> u64 {
        self.part_size.load(Ordering::SeqCst)
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
        self.add_many(&[path.to_owned()], target)?
            .pop()
            .expect("one result per path")
    }

    /// Queues many files for `target`: each file's fingerprint and video details are read
    /// first (on a few threads, with no lock held), then every item goes into the store in
    /// one transaction, and subscribers hear one [`QueueEvent::Added`]. It blocks while it
    /// reads: the app calls it off its main thread. One result per path, in order (a file
    /// that cannot be read fails alone); the outer error is the store's, for all of them.
    /// The same unchanged file is never queued twice.
    pub fn add_many(
        &self,
        paths: &[PathBuf],
        target: &Target,
    ) -> Result<Vec<Result<i64, UploadError>>, QueueError> {
        let read = read_files(paths, |path| {
            Fingerprint::of(path).map_err(|e| match e.kind() {
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
            })
        });
        let new: Vec<NewItem<'_>> = read
            .iter()
            .filter_map(|r| r.as_ref().ok())
            .map(|f| f.new_item(target))
            .collect();
        let mut ids = self.store().add_many(&new)?.into_iter();
        let results: Vec<Result<i64, UploadError>> = read
            .into_iter()
            .map(|r| r.map(|_| ids.next().expect("one id per file read")))
            .collect();
        self.announce(results.iter().filter_map(|r| r.as_ref().ok().copied()));
        Ok(results)
    }

    /// Tells subscribers about new items in one event, and wakes the scheduler.
    fn announce(&self, ids: impl Iterator<Item = i64>) {
        let items: Vec<QueueItem> = {
            let store = self.store();
            ids.filter_map(|id| store.get(id).ok()).collect()
        };
        if !items.is_empty() {
            let _ = self.events.send(QueueEvent::Added { items });
            self.work.notify_one();
        }
    }

    /// Queues a file a watched folder reported, unless the same content was taken in from
    /// a watched folder before (under any name, in any earlier run). None: already known.
    pub fn add_watched(&self, path: &Path, target: &Target) -> Result<Option<i64>, UploadError> {
        self.add_watched_many(&[(path.to_owned(), target.clone())])?
            .pop()
            .expect("one result per file")
    }

    /// Queues files watched folders reported (each with its folder's target), as
    /// [`UploadQueue::add_watched`] does for one, with the new items in one transaction and
    /// one [`QueueEvent::Added`]: a folder of 1,000 clips settling at once is one commit.
    /// One result per file, in order; the outer error is the store's, for all of them.
    pub fn add_watched_many(
        &self,
        files: &[(PathBuf, Target)],
    ) -> Result<Vec<Result<Option<i64>, UploadError>>, QueueError> {
        // Looked at first, without reading: links, non-files, and files already taken in
        // at this path with this size and time (the cheap check that spares hashing every
        // file of a big folder at each start).
        let mut checked: Vec<Result<Option<PathBuf>, UploadError>> = Vec::new();
        {
            let store = self.store();
            for (path, _) in files {
                checked.push(watched_candidate(&store, path));
            }
        }
        let to_read: Vec<PathBuf> = checked
            .iter()
            .filter_map(|c| c.as_ref().ok().and_then(Option::clone))
            .collect();
        let mut read = read_files(&to_read, |path| {
            Fingerprint::of(path).map_err(|e| UploadError::FileUnreadable {
                path: path.to_owned(),
                source: e,
            })
        })
        .into_iter();
        // Per file: an error, known (None), or read (Some) with its target.
        let mut outcome: Vec<Result<Option<(ReadFile, &Target)>, UploadError>> = Vec::new();
        for (c, (_, target)) in checked.into_iter().zip(files) {
            outcome.push(match c {
                Err(e) => Err(e),
                Ok(None) => Ok(None),
                Ok(Some(_)) => read
                    .next()
                    .expect("one read per candidate")
                    .map(|f| Some((f, target))),
            });
        }
        let new: Vec<NewItem<'_>> = outcome
            .iter()
            .filter_map(|o| o.as_ref().ok().and_then(Option::as_ref))
            .map(|(f, target)| f.new_item(target))
            .collect();
        let mut ids = self.store().add_watched_many(&new)?.into_iter();
        let results: Vec<Result<Option<i64>, UploadError>> = outcome
            .into_iter()
            .map(|o| {
                o.map(|read| read.and_then(|_| ids.next().expect("one result per file stored")))
            })
            .collect();
        self.announce(
            results
                .iter()
                .filter_map(|r| r.as_ref().ok().copied().flatten()),
        );
        Ok(results)
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
        if let Some(limit) = &self.wire.pacing.limit {
            limit.set(bytes_per_sec);
        }
    }

    /// Changes how many parts may be in flight. Lowering it takes effect as parts finish.
    pub fn set_parts_in_flight(&self, n: usize) {
        self.wire.permits.resize(n);
    }

    /// Changes the part size of multipart uploads that start from now on.
    pub fn set_part_size(&self, bytes: u64) {
        self.part_size.store(bytes, Ordering::SeqCst);
    }

    /// Stops the queue at a part boundary: from now on no part starts, and this returns once
    /// the parts already on the wire have finished (each one's ETag recorded), so what was
    /// sent is not sent again. A small file's POST holds a permit too, so one on the wire
    /// is waited for as a part is.
    /// Used before an update installs and the app restarts; the durable queue carries on
    /// from the last finished part on the next start. [`UploadQueue::release_hold`] undoes
    /// it (an update that failed to install).
    pub async fn hold_at_part_boundary(&self) {
        self.wire.permits.hold().await;
    }

    /// Lets parts start again after [`UploadQueue::hold_at_part_boundary`].
    pub fn release_hold(&self) {
        self.wire.permits.release_hold();
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

    /// Puts back in line every failed item whose failure may pass (the network, the
    /// server's trouble, bytes damaged on the way); one that failed for good (a changed
    /// file, a refused token) waits for the user to see to it. Paused items stay paused.
    pub fn retry_failed(&self) -> Result<usize, QueueError> {
        let mut n = 0;
        for id in self.ids_in(&[ItemState::Failed])? {
            if self.get(id)?.error.is_some_and(|e| e.retryable) {
                n += usize::from(self.resume(id)?);
            }
        }
        Ok(n)
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
        if let Some(token) = self.running().get(&id) {
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
        let Ok(Some(now)) = profiles(profile) else {
            // Gone, or the file will not load: the item stays bound, and fails again with
            // `profile_gone` or the file's error.
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

    /// Decides how an item's bytes go up: re-laid with the index first (`Faststart`), or as
    /// they are (`Original`): the answer to an item held for a choice (a profile set to
    /// ask, or a damaged MP4 to upload anyway), or `--faststart` given for it. A held item
    /// is put back in line. False when the item is being uploaded or is finished (its
    /// layout is then fixed). A multipart upload begun with the other layout is aborted and
    /// starts over: its parts are of other bytes.
    pub async fn choose_layout(&self, id: i64, layout: Layout) -> Result<bool, UploadError> {
        use crate::queue::store::ItemState::{Failed, Paused, Queued};
        let item = self.store().get(id)?;
        if ![Queued, Paused, Failed].contains(&item.state) {
            return Ok(false);
        }
        if item.layout != Some(layout)
            && let (Some(key), Some(upload_id)) = (&item.key, &item.upload_id)
        {
            let endpoint = (self.connect)(&item.target);
            if let Err(e) = endpoint.abort(key, upload_id).await {
                tracing::warn!(id, error = %e, "could not abort the multipart upload");
            }
            self.store().clear_multipart(id)?;
        }
        self.store()
            .set_media(id, item.index_position, Some(layout))?;
        if item.state == Failed {
            self.resume(id)?;
        } else {
            self.changed(id);
        }
        Ok(true)
    }

    /// Cancels an item and aborts its multipart upload on S3, so nothing is left behind.
    pub async fn cancel(&self, id: i64) -> Result<bool, UploadError> {
        let item = self.store().get(id)?;
        let moved = self.store().apply(id, Operation::Cancel)?;
        self.stop_running(id);
        if moved {
            if let (Some(key), Some(upload_id)) = (&item.key, &item.upload_id) {
                let endpoint = (self.connect)(&item.target);
                if let Err(e) = endpoint.abort(key, upload_id).await {
                    tracing::warn!(id, error = %e, "could not abort the multipart upload");
                }
            }
            self.store().clear_multipart(id)?;
        }
        self.changed(id);
        Ok(moved)
    }

    /// The ids of items in `states`, oldest first (no item's row is read).
    pub fn ids_in(&self, states: &[ItemState]) -> Result<Vec<i64>, QueueError> {
        self.store().ids_in(states)
    }

    /// Calls `each` with every item, oldest first, one at a time: a listing of the whole
    /// queue that does not hold it all in memory.
    pub fn for_each_item(&self, each: impl FnMut(QueueItem)) -> Result<(), QueueError> {
        self.store().for_each_item(each)
    }
}

/// A file read for queueing: its absolute path, fingerprint and video details.
struct ReadFile {
    path: PathBuf,
    fingerprint: Fingerprint,
    details: Option<crate::VideoDetails>,
}

impl ReadFile {
    fn new_item<'a>(&'a self, target: &'a Target) -> NewItem<'a> {
        NewItem {
            path: &self.path,
            fingerprint: &self.fingerprint,
            details: self.details.as_ref(),
            target,
        }
    }
}

/// How many threads read files for queueing at once: reading is mostly waiting for the
/// disk (a sample at each end of the file, the container's index), so a few overlap well
/// even on two cores; more would only queue on the disk.
const READERS: usize = 4;

/// Each file's fingerprint and (read beside it, while the file is at hand: a seek from box
/// to box and the index, see `media::details`) its video details, in the order given. The
/// details are in the store before the item can be claimed, and go up as object metadata.
fn read_files(
    paths: &[PathBuf],
    fingerprint: impl Fn(&Path) -> Result<Fingerprint, UploadError> + Sync,
) -> Vec<Result<ReadFile, UploadError>> {
    let read_one = |path: &PathBuf| {
        let fp = fingerprint(path)?;
        let path = std::path::absolute(path).unwrap_or_else(|_| path.clone());
        let details = read_details(&path);
        Ok(ReadFile {
            path,
            fingerprint: fp,
            details,
        })
    };
    if paths.len() < 2 {
        return paths.iter().map(read_one).collect();
    }
    let per_thread = paths.len().div_ceil(READERS);
    std::thread::scope(|scope| {
        let readers: Vec<_> = paths
            .chunks(per_thread)
            .map(|chunk| scope.spawn(|| chunk.iter().map(read_one).collect::<Vec<_>>()))
            .collect();
        readers
            .into_iter()
            .flat_map(|r| r.join().expect("a reader thread panicked"))
            .collect()
    })
}

/// A reported file, looked at without reading it: an error for a link or a non-file,
/// None when it was already taken in at this path with this size and mtime, else its
/// absolute path, to be read.
fn watched_candidate(store: &QueueStore, path: &Path) -> Result<Option<PathBuf>, UploadError> {
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
    if store.watched_unchanged(&path, meta.len(), mtime_ns)? {
        return Ok(None);
    }
    Ok(Some(path))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::*;

    fn queue(dir: &Path) -> Arc<UploadQueue<crate::CompanionClient>> {
        let store = QueueStore::open(&dir.join("queue.sqlite3")).expect("open");
        let http = reqwest::Client::new();
        // Never asked: adding sends nothing.
        UploadQueue::new(
            store,
            |t: &Target| crate::CompanionClient::new(reqwest::Client::new(), &t.endpoint, None),
            http,
            QueueOptions::default(),
        )
    }

    fn target() -> Target {
        Target::new("http://127.0.0.1:9", "http://127.0.0.1:9/cdn")
    }

    /// A folder of clips is one commit and one event, not two commits and an event per
    /// file; a file that cannot be read fails alone.
    #[test]
    fn adding_many_files_is_one_transaction_and_one_event() {
        let dir = tempfile::tempdir().expect("tempdir");
        let queue = queue(dir.path());
        let mut paths: Vec<PathBuf> = (0..40)
            .map(|i| {
                let path = dir.path().join(format!("clip{i}.mp4"));
                std::fs::write(&path, vec![i as u8; 1000 + i]).expect("write");
                path
            })
            .collect();
        paths.insert(7, dir.path().join("gone.mp4"));
        let mut events = queue.subscribe();
        let commits = queue.store().count_commits();

        let results = queue.add_many(&paths, &target()).expect("added");
        assert_eq!(commits.load(Ordering::SeqCst), 1, "one transaction");
        assert_eq!(results.len(), 41);
        assert!(matches!(
            &results[7],
            Err(UploadError::FileNotFound { path }) if path.ends_with("gone.mp4")
        ));
        let ids: Vec<i64> = results
            .iter()
            .filter_map(|r| r.as_ref().ok().copied())
            .collect();
        assert_eq!(ids.len(), 40);
        // In the order given, each file its own item.
        for (id, path) in ids.iter().zip(paths.iter().filter(|p| p.exists())) {
            assert_eq!(&queue.get(*id).expect("get").path, path);
        }
        match events.try_recv().expect("an event") {
            QueueEvent::Added { items } => {
                assert_eq!(items.iter().map(|i| i.id).collect::<Vec<_>>(), ids);
                assert!(items.iter().all(|i| i.state == ItemState::Queued));
            }
            other => panic!("expected one Added event, got {other:?}"),
        }
        assert!(events.try_recv().is_err(), "one event for the batch");

        // The same unchanged files again: their items, not new ones, still one commit.
        let again = queue.add_many(&paths[..3], &target()).expect("again");
        assert_eq!(commits.load(Ordering::SeqCst), 2);
        assert_eq!(
            again
                .into_iter()
                .map(|r| r.expect("id"))
                .collect::<Vec<_>>(),
            ids[..3]
        );
        assert_eq!(queue.ids_in(&[ItemState::Queued]).expect("ids"), ids);
    }

    /// A watched folder's batch: links refused, content taken in before skipped, the rest
    /// in one transaction.
    #[test]
    fn a_watched_batch_is_one_transaction() {
        let dir = tempfile::tempdir().expect("tempdir");
        let queue = queue(dir.path());
        let a = dir.path().join("a.mp4");
        let b = dir.path().join("b.mp4");
        let same_as_a = dir.path().join("a copy.mp4");
        std::fs::write(&a, b"first clip").expect("write");
        std::fs::write(&b, b"second clip").expect("write");
        std::fs::copy(&a, &same_as_a).expect("copy");
        let link = dir.path().join("link.mp4");
        #[cfg(unix)]
        std::os::unix::fs::symlink(&a, &link).expect("symlink");
        #[cfg(not(unix))]
        std::fs::write(&link, b"not a link here").expect("write");
        let commits = queue.store().count_commits();
        let files: Vec<(PathBuf, Target)> = [&a, &b, &link]
            .into_iter()
            .map(|p| (p.clone(), target()))
            .collect();

        let results = queue.add_watched_many(&files).expect("added");
        assert_eq!(commits.load(Ordering::SeqCst), 1, "one transaction");
        assert!(matches!(results[0], Ok(Some(_))));
        assert!(matches!(results[1], Ok(Some(_))));
        #[cfg(unix)]
        assert!(matches!(results[2], Err(UploadError::Symlink { .. })));

        // The same content under another name is known; so is a file seen unchanged.
        let results = queue
            .add_watched_many(&[(same_as_a, target()), (b, target())])
            .expect("again");
        assert!(matches!(results[0], Ok(None)), "{results:?}");
        assert!(matches!(results[1], Ok(None)), "{results:?}");
    }
}
