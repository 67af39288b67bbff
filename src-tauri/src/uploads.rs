//! Maps engine uploads onto IPC events. Holds the in-memory list the window shows; the
//! bytes are moved by `reelup_core::Uploader`, never here.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reelup_core::{
    CompanionClient, Progress, ProgressFn, StreamingUrlBase, UploadOptions, Uploader,
    collect_videos,
};
use tauri::{AppHandle, Emitter};
use tokio::sync::Semaphore;

use crate::config::Target;
use crate::ipc::{
    AddedFiles, Connection, EVENT_UPLOAD, IpcError, RejectedPath, UploadItem, UploadState,
};

/// Progress events per item are capped at ten a second; state changes always go out.
const PROGRESS_INTERVAL: Duration = Duration::from_millis(100);
/// Files uploading at once; each also sends several parts at once.
const FILES_AT_ONCE: usize = 2;

pub struct Uploads {
    uploader: Option<Uploader<CompanionClient>>,
    connection: Connection,
    items: Mutex<BTreeMap<u64, UploadItem>>,
    next_id: AtomicU64,
    files_at_once: Arc<Semaphore>,
}

impl Uploads {
    pub fn new(target: Result<Target, String>) -> Self {
        let (uploader, connection) = match target {
            Ok(t) => {
                let http = reqwest::Client::builder()
                    .connect_timeout(Duration::from_secs(10))
                    .build()
                    .unwrap_or_default();
                let endpoint = CompanionClient::new(http.clone(), &t.endpoint, t.token);
                let uploader = Uploader::new(
                    endpoint,
                    http,
                    StreamingUrlBase::new(&t.cdn),
                    UploadOptions::default(),
                );
                let connection = Connection {
                    endpoint: Some(t.endpoint),
                    cdn: Some(t.cdn),
                    problem: None,
                };
                (Some(uploader), connection)
            }
            Err(problem) => (
                None,
                Connection {
                    endpoint: None,
                    cdn: None,
                    problem: Some(problem),
                },
            ),
        };
        Self {
            uploader,
            connection,
            items: Mutex::new(BTreeMap::new()),
            next_id: AtomicU64::new(1),
            files_at_once: Arc::new(Semaphore::new(FILES_AT_ONCE)),
        }
    }

    pub fn connection(&self) -> Connection {
        self.connection.clone()
    }

    pub fn list(&self) -> Vec<UploadItem> {
        self.lock().values().cloned().collect()
    }

    /// Uploads that have not finished, for the tray and for close-to-tray.
    pub fn unfinished(&self) -> usize {
        self.lock()
            .values()
            .filter(|i| matches!(i.state, UploadState::Queued | UploadState::Uploading))
            .count()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, UploadItem>> {
        // A panic while holding the lock leaves plain data behind; keep serving it.
        self.items.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Applies `change` to an item and tells the UI.
    fn update(&self, app: &AppHandle, id: u64, change: impl FnOnce(&mut UploadItem)) {
        let item = {
            let mut items = self.lock();
            let Some(item) = items.get_mut(&id) else {
                return;
            };
            change(item);
            item.clone()
        };
        if let Err(e) = app.emit(EVENT_UPLOAD, &item) {
            tracing::warn!(error = %e, "could not emit upload event");
        }
    }

    pub fn add(
        self: &Arc<Self>,
        app: &AppHandle,
        paths: Vec<PathBuf>,
    ) -> Result<AddedFiles, IpcError> {
        let Some(uploader) = self.uploader.clone() else {
            return Err(IpcError {
                code: "not_connected",
                message: self.connection.problem.clone().unwrap_or_default(),
            });
        };
        let (videos, rejected) = collect_videos(&paths);
        let mut added = Vec::with_capacity(videos.len());
        for path in videos {
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            let item = UploadItem {
                id,
                name: path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                path: path.display().to_string(),
                size: std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0),
                sent: 0,
                state: UploadState::Queued,
                url: None,
                error: None,
            };
            self.lock().insert(id, item.clone());
            let _ = app.emit(EVENT_UPLOAD, &item);
            added.push(item);
            tauri::async_runtime::spawn(self.clone().run(app.clone(), uploader.clone(), id, path));
        }
        crate::tray::refresh(app, self.unfinished());
        Ok(AddedFiles {
            added,
            rejected: rejected
                .into_iter()
                .map(|r| RejectedPath {
                    path: r.path.display().to_string(),
                    reason: r.reason,
                })
                .collect(),
        })
    }

    async fn run(
        self: Arc<Self>,
        app: AppHandle,
        uploader: Uploader<CompanionClient>,
        id: u64,
        path: PathBuf,
    ) {
        let Ok(_permit) = self.files_at_once.clone().acquire_owned().await else {
            return;
        };
        self.update(&app, id, |i| i.state = UploadState::Uploading);
        let on_progress: ProgressFn = {
            let (this, app) = (self.clone(), app.clone());
            let last = Mutex::new(Instant::now() - PROGRESS_INTERVAL);
            Arc::new(move |p: Progress| {
                let mut last = last.lock().unwrap_or_else(|e| e.into_inner());
                if p.sent < p.total && last.elapsed() < PROGRESS_INTERVAL {
                    return;
                }
                *last = Instant::now();
                this.update(&app, id, |i| {
                    i.sent = p.sent;
                    i.size = p.total;
                });
            })
        };
        let result = uploader.upload(&path, &on_progress).await;
        self.update(&app, id, |i| match &result {
            Ok(done) => {
                i.state = UploadState::Done;
                i.sent = done.size;
                i.size = done.size;
                i.url = Some(done.url.clone());
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "upload failed");
                i.state = UploadState::Failed;
                i.error = Some(IpcError::from(e));
            }
        });
        crate::tray::refresh(&app, self.unfinished());
    }
}
