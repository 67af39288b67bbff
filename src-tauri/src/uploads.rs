//! Maps the engine's durable queue onto IPC events, the tray and notifications. The bytes,
//! the retries and the resume all happen in `reelup_core::UploadQueue`; this file only
//! translates.
//!
//! What must stay true: the UI gets one `reelup://progress` batch per tick however many
//! uploads move (1,000 items must not mean 1,000 events a tick), and the tray is touched at
//! most once per tick: its menu rebuilt only when its links changed (a folder of small
//! clips finishes several a second; each rebuild is a whole menu sent to the desktop), its
//! status line when its text changed, never per event. Adding files (a drop, a second
//! launch, `add_paths`) never runs on the main thread: reading 1,000 files would freeze
//! the window.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reelup_core::ErrorCode;
use reelup_core::credentials::TokenCache;
use reelup_core::media::faststart::Layout;
use reelup_core::queue::store::{ItemState, QueueItem, QueueStore, Target, default_queue_path};
use reelup_core::{CompanionClient, QueueEvent, QueueOptions, UploadQueue, collect_videos};
use tauri::{AppHandle, Runtime};
use tokio_util::sync::CancellationToken;

use crate::ipc::{
    self, AddedFiles, IpcError, ProgressBatch, ProgressTick, RejectedPath, RemovedItem, UploadItem,
    UploadState, UploadWaiting, UploadsAdded,
};
use crate::summary::{Batch, Counted, TrayStatus, tray_status};

pub type Queue = UploadQueue<CompanionClient>;

/// How often progress is sent to the UI and the tray, batched.
const PROGRESS_TICK: Duration = Duration::from_millis(250);
/// How many streaming URLs the tray menu offers.
pub const RECENT_LINKS: usize = 5;

/// A finished upload the tray can copy the link of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecentLink {
    pub name: String,
    pub url: String,
}

pub struct Uploads {
    queue: Result<Arc<Queue>, String>,
    stop: CancellationToken,
    /// Unfinished, paused and failed items, for the tray.
    counted: Mutex<HashMap<i64, Counted>>,
    /// Each item's last state seen, so a repeated announcement is not counted twice.
    last_state: Mutex<HashMap<i64, ItemState>>,
    recent: Mutex<VecDeque<RecentLink>>,
    batch: Mutex<Batch>,
    pending: Mutex<HashMap<i64, ProgressTick>>,
    /// The tray needs its status line looked at, and its menu rebuilt, at the next tick.
    tray_dirty: AtomicBool,
    links_dirty: AtomicBool,
}

fn ipc_state(state: ItemState) -> UploadState {
    match state {
        ItemState::Queued => UploadState::Queued,
        ItemState::Uploading | ItemState::Completing => UploadState::Uploading,
        ItemState::Paused => UploadState::Paused,
        ItemState::Done => UploadState::Done,
        ItemState::Failed => UploadState::Failed,
        ItemState::Canceled => UploadState::Canceled,
    }
}

pub fn item_name(item: &QueueItem) -> String {
    item.path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

pub fn ipc_item(item: &QueueItem) -> UploadItem {
    UploadItem {
        id: item.id,
        name: item_name(item),
        path: item.path.display().to_string(),
        size: item.size,
        sent: if item.state == ItemState::Done {
            item.size
        } else {
            item.confirmed
        },
        state: ipc_state(item.state),
        url: item.url.clone(),
        error: item
            .error
            .as_ref()
            .map(|e| IpcError::new(e.code, e.message.clone())),
        retryable: item.error.as_ref().is_some_and(|e| e.retryable),
        profile: item.target.profile.clone(),
        key: item.key.clone(),
        created_at: item.created_at,
        finished_at: item.finished_at,
        details: item.details.as_ref().map(Into::into),
        poster_url: item.poster_url.clone(),
        no_poster: item.no_poster.clone(),
        index_position: item.index_position,
        layout: item.layout,
        verified: item.verified,
        verified_text: item.verified.map(|v| v.describe().to_owned()),
    }
}

fn counted(item: &QueueItem) -> Option<Counted> {
    matches!(
        item.state,
        ItemState::Queued
            | ItemState::Uploading
            | ItemState::Completing
            | ItemState::Paused
            | ItemState::Failed
    )
    .then_some(Counted {
        state: item.state,
        sent: item.confirmed,
        total: item.size,
        bytes_per_sec: 0,
        // A new state is a new run (or none): whatever it waited on is over.
        waiting: false,
    })
}

impl Uploads {
    /// Opens the queue; `tokens` gives each item's presign client its profile's token. Its
    /// tuning is the default until `Shell` applies the profile's, before it serves.
    /// `profiles` says where each profile points now: an item goes only to its profile's
    /// current endpoint.
    pub fn open(
        queue_path: Option<PathBuf>,
        tokens: Arc<TokenCache>,
        profiles: reelup_core::ProfileTargets,
    ) -> Self {
        let path = queue_path.unwrap_or_else(default_queue_path);
        let queue = QueueStore::open(&path)
            .map_err(|e| e.to_string())
            .and_then(|store| {
                if let Some(aside) = &store.moved_aside {
                    tracing::error!(moved_to = %aside.display(), "the upload queue was damaged and moved aside");
                }
                UploadQueue::for_companion(store, tokens, profiles, QueueOptions::default())
                    .map_err(|e| format!("cannot set up HTTP: {e}"))
            });
        let this = Self {
            queue,
            stop: CancellationToken::new(),
            counted: Mutex::default(),
            last_state: Mutex::default(),
            recent: Mutex::default(),
            batch: Mutex::default(),
            pending: Mutex::default(),
            tray_dirty: AtomicBool::new(false),
            links_dirty: AtomicBool::new(false),
        };
        if let Ok(queue) = &this.queue
            && let Ok(items) = queue.list()
        {
            let mut counted_items = this.counted.lock().unwrap_or_else(|e| e.into_inner());
            let mut last = this.last_state.lock().unwrap_or_else(|e| e.into_inner());
            let mut recent = this.recent.lock().unwrap_or_else(|e| e.into_inner());
            let mut done: Vec<&QueueItem> = items
                .iter()
                .filter(|i| i.state == ItemState::Done)
                .collect();
            done.sort_by_key(|i| (i.finished_at, i.id));
            for item in done.iter().rev().take(RECENT_LINKS) {
                if let Some(url) = &item.url {
                    recent.push_back(RecentLink {
                        name: item_name(item),
                        url: url.clone(),
                    });
                }
            }
            for item in &items {
                last.insert(item.id, item.state);
                if let Some(c) = counted(item) {
                    counted_items.insert(item.id, c);
                }
            }
        }
        this
    }

    pub fn queue(&self) -> Result<&Arc<Queue>, IpcError> {
        self.queue
            .as_ref()
            .map_err(|e| IpcError::new(ErrorCode::QueueUnusable, e.clone()))
    }

    /// Runs the queue for as long as the app runs, and forwards its events.
    pub fn start<R: Runtime>(self: &Arc<Self>, app: &AppHandle<R>) {
        let Ok(queue) = self.queue.clone() else {
            return;
        };
        let mut events = queue.subscribe();
        {
            let (this, app, queue) = (self.clone(), app.clone(), queue.clone());
            tauri::async_runtime::spawn(async move {
                loop {
                    match events.recv().await {
                        Ok(QueueEvent::Changed { item }) => this.changed(&app, &item),
                        Ok(QueueEvent::Added { items }) => this.added(&app, &items),
                        // Only the item's view changes: no state moved, nothing to count.
                        Ok(QueueEvent::Poster { id, .. } | QueueEvent::NoPoster { id, .. }) => {
                            if let Ok(item) = queue.get(id) {
                                ipc::emit(&app, ipc_item(&item));
                            }
                        }
                        Ok(QueueEvent::Waiting { id, why }) => this.waiting(&app, id, why),
                        Ok(QueueEvent::Progress {
                            id,
                            sent,
                            total,
                            bytes_per_sec,
                            eta_secs,
                        }) => this.moved(ProgressTick {
                            id,
                            sent,
                            total,
                            bytes_per_sec,
                            eta_secs,
                        }),
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(_) => return,
                    }
                }
            });
        }
        {
            let (this, app, stop) = (self.clone(), app.clone(), self.stop.clone());
            tauri::async_runtime::spawn(async move {
                let mut tick = tokio::time::interval(PROGRESS_TICK);
                loop {
                    tokio::select! {
                        _ = tick.tick() => this.flush(&app),
                        () = stop.cancelled() => return,
                    }
                }
            });
        }
        let stop = self.stop.clone();
        tauri::async_runtime::spawn(async move { queue.serve(stop).await });
    }

    fn changed<R: Runtime>(&self, app: &AppHandle<R>, item: &QueueItem) {
        ipc::emit(app, ipc_item(item));
        self.note(item);
        self.notify_when_finished(app);
    }

    /// A batch of new items (a drop, a watched folder): shown in one event, each counted,
    /// and the notification looked at once.
    fn added<R: Runtime>(&self, app: &AppHandle<R>, items: &[QueueItem]) {
        ipc::emit(
            app,
            UploadsAdded {
                items: items.iter().map(ipc_item).collect(),
            },
        );
        for item in items {
            self.note(item);
        }
        self.notify_when_finished(app);
    }

    /// Counts an item's new state for the tray (drawn at the next tick) and its summary.
    fn note(&self, item: &QueueItem) {
        let before = self
            .last_state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(item.id, item.state);
        let is_new_state = before != Some(item.state);
        // The app's one record of a failure in its log (the engine leaves reporting to
        // each front end, so the CLI can say it once).
        if is_new_state
            && item.state == ItemState::Failed
            && let Some(e) = &item.error
        {
            tracing::warn!(id = item.id, path = %item.path.display(), code = %e.code, error = %e.message, "upload failed");
        }
        {
            let mut counted_items = self.counted.lock().unwrap_or_else(|e| e.into_inner());
            match counted(item) {
                Some(c) => {
                    counted_items.insert(item.id, c);
                }
                None => {
                    counted_items.remove(&item.id);
                }
            }
        }
        if is_new_state {
            if item.state == ItemState::Done
                && let Some(url) = &item.url
            {
                let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
                recent.push_front(RecentLink {
                    name: item_name(item),
                    url: url.clone(),
                });
                recent.truncate(RECENT_LINKS);
                self.links_dirty.store(true, Ordering::SeqCst);
            }
            self.batch
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .record(&item_name(item), item.state);
        }
        self.tray_dirty.store(true, Ordering::SeqCst);
    }

    /// The "uploads done" notification, once the batch it sums up has finished.
    fn notify_when_finished<R: Runtime>(&self, app: &AppHandle<R>) {
        let running = self.active();
        let summary = self
            .batch
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .finish(running);
        if let Some((title, body)) = summary {
            crate::notify(app, &title, &body);
        }
    }

    /// An item began (or stopped) waiting for the server: its row and the tray say so at
    /// once, and its speed is no longer shown as if it were moving.
    fn waiting<R: Runtime>(&self, app: &AppHandle<R>, id: i64, why: Option<String>) {
        if let Some(c) = self
            .counted
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(&id)
        {
            c.waiting = why.is_some();
            if c.waiting {
                c.bytes_per_sec = 0;
            }
        }
        self.tray_dirty.store(true, Ordering::SeqCst);
        ipc::emit(app, UploadWaiting { id, why });
    }

    fn moved(&self, tick: ProgressTick) {
        if let Some(c) = self
            .counted
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(&tick.id)
        {
            c.sent = tick.sent;
            c.bytes_per_sec = tick.bytes_per_sec;
        }
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(tick.id, tick);
    }

    /// One batch of everything that moved since the last tick, and the tray brought up to
    /// date once.
    fn flush<R: Runtime>(&self, app: &AppHandle<R>) {
        let items: Vec<ProgressTick> = {
            let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            pending.drain().map(|(_, t)| t).collect()
        };
        let moved = !items.is_empty();
        if moved {
            ipc::emit(app, ProgressBatch { items });
        }
        let links = self.links_dirty.swap(false, Ordering::SeqCst);
        if self.tray_dirty.swap(false, Ordering::SeqCst) || moved || links {
            crate::tray::update(app, &self.status(), links.then(|| self.recent_links()));
        }
    }

    pub fn status(&self) -> TrayStatus {
        tray_status(&self.counted.lock().unwrap_or_else(|e| e.into_inner()))
    }

    pub fn recent_links(&self) -> Vec<RecentLink> {
        self.recent
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned()
            .collect()
    }

    /// Items queued or uploading: what keeps the app busy.
    pub fn active(&self) -> usize {
        self.counted
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .filter(|c| {
                matches!(
                    c.state,
                    ItemState::Queued | ItemState::Uploading | ItemState::Completing
                )
            })
            .count()
    }

    /// Every item, newest first: the queue and the history both come from here.
    pub fn list(&self) -> Result<Vec<UploadItem>, IpcError> {
        let mut items: Vec<UploadItem> = self.queue()?.list()?.iter().map(ipc_item).collect();
        items.reverse();
        Ok(items)
    }

    /// Adds files and folders (a folder adds the videos inside) for `target`, in one
    /// transaction. Reads every file (its fingerprint and details): never call it on the
    /// main thread.
    pub fn add(
        &self,
        paths: Vec<PathBuf>,
        target: Result<Target, IpcError>,
    ) -> Result<AddedFiles, IpcError> {
        let queue = self.queue()?;
        let target = target?;
        let (videos, rejected) = collect_videos(&paths);
        let mut rejected: Vec<RejectedPath> = rejected
            .into_iter()
            .map(|r| RejectedPath {
                path: r.path.display().to_string(),
                reason: r.reason,
            })
            .collect();
        let mut added = Vec::new();
        let results = queue.add_many(&videos, &target)?;
        for (path, result) in videos.iter().zip(results) {
            match result
                .map_err(|e| e.to_string())
                .and_then(|id| queue.get(id).map_err(|e| e.to_string()))
            {
                Ok(item) => added.push(ipc_item(&item)),
                Err(reason) => rejected.push(RejectedPath {
                    path: path.display().to_string(),
                    reason,
                }),
            }
        }
        Ok(AddedFiles { added, rejected })
    }

    pub fn pause(&self, id: i64) -> Result<(), IpcError> {
        self.queue()?.pause(id)?;
        Ok(())
    }

    pub fn resume(&self, id: i64) -> Result<(), IpcError> {
        self.queue()?.resume(id)?;
        Ok(())
    }

    pub async fn choose_layout(&self, id: i64, layout: Layout) -> Result<(), IpcError> {
        self.queue()?.choose_layout(id, layout).await?;
        Ok(())
    }

    pub async fn cancel(&self, id: i64) -> Result<(), IpcError> {
        self.queue()?.cancel(id).await?;
        Ok(())
    }

    pub fn remove<R: Runtime>(&self, app: &AppHandle<R>, id: i64) -> Result<(), IpcError> {
        if !self.queue()?.remove(id)? {
            return Err(IpcError::new(
                ErrorCode::StillActive,
                "only finished, failed or canceled uploads can be removed; pause or cancel it first",
            ));
        }
        self.counted
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
        ipc::emit(app, RemovedItem { id });
        self.tray_dirty.store(true, Ordering::SeqCst);
        Ok(())
    }

    pub fn pause_all(&self) -> Result<(), IpcError> {
        self.queue()?.pause_all()?;
        Ok(())
    }

    pub fn resume_all(&self) -> Result<(), IpcError> {
        self.queue()?.resume_all()?;
        Ok(())
    }

    /// "Retry all": the failed uploads that retrying can help; answers how many.
    pub fn retry_all(&self) -> Result<u32, IpcError> {
        Ok(self.queue()?.retry_failed()? as u32)
    }
}

impl Drop for Uploads {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
