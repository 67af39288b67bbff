//! Maps the engine's durable queue onto IPC events. The bytes, the retries and the
//! resume all happen in `reelup_core::UploadQueue`; this file only translates.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use reelup_core::queue_store::{ItemState, QueueItem, QueueStore, Target, default_queue_path};
use reelup_core::{
    CompanionClient, QueueEvent, QueueOptions, UploadError, UploadQueue, collect_videos,
};
use tauri::{AppHandle, Emitter};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::config;
use crate::ipc::{
    AddedFiles, Connection, EVENT_UPLOAD, IpcError, RejectedPath, UploadItem, UploadState,
};

/// How often the queue looks for work it was not told about (items another process
/// released, or retryable ones).
const IDLE_POLL: Duration = Duration::from_secs(5);

pub struct Uploads {
    queue: Option<Arc<UploadQueue<CompanionClient>>>,
    target: Option<Target>,
    connection: Connection,
    work: Arc<Notify>,
    stop: CancellationToken,
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

fn ipc_item(item: &QueueItem, sent: Option<u64>) -> UploadItem {
    UploadItem {
        id: item.id,
        name: item
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        path: item.path.display().to_string(),
        size: item.size,
        sent: sent.unwrap_or(item.confirmed),
        state: ipc_state(item.state),
        url: item.url.clone(),
        error: item.error.as_ref().map(|e| IpcError {
            code: e.code.clone(),
            message: e.message.clone(),
        }),
    }
}

impl Uploads {
    pub fn new() -> Self {
        let stop = CancellationToken::new();
        let target = config::from_env();
        let opened = target.and_then(|t| {
            let store = QueueStore::open(&default_queue_path()).map_err(|e| e.to_string())?;
            if let Some(aside) = &store.moved_aside {
                tracing::error!(moved_to = %aside.display(), "the upload queue was damaged and moved aside");
            }
            Ok((t, store))
        });
        match opened {
            Ok((t, store)) => {
                let http = reqwest::Client::builder()
                    .connect_timeout(Duration::from_secs(10))
                    .build()
                    .unwrap_or_default();
                let (connect_http, token) = (http.clone(), t.token.clone());
                let queue = UploadQueue::new(
                    store,
                    move |target: &Target| {
                        CompanionClient::new(connect_http.clone(), &target.endpoint, token.clone())
                    },
                    http,
                    QueueOptions::default(),
                );
                Self {
                    queue: Some(queue),
                    target: Some(Target {
                        endpoint: t.endpoint.clone(),
                        cdn: t.cdn.clone(),
                    }),
                    connection: Connection {
                        endpoint: Some(t.endpoint),
                        cdn: Some(t.cdn),
                        problem: None,
                    },
                    work: Arc::new(Notify::new()),
                    stop,
                }
            }
            Err(problem) => Self {
                queue: None,
                target: None,
                connection: Connection {
                    endpoint: None,
                    cdn: None,
                    problem: Some(problem),
                },
                work: Arc::new(Notify::new()),
                stop,
            },
        }
    }

    /// Runs the queue for as long as the app runs, and forwards its events to the UI.
    pub fn start(&self, app: &AppHandle) {
        let Some(queue) = self.queue.clone() else {
            return;
        };
        let mut events = queue.subscribe();
        let forward = app.clone();
        let forwarding_queue = queue.clone();
        tauri::async_runtime::spawn(async move {
            while let Ok(event) = events.recv().await {
                match event {
                    // A state change carries the item; the tray follows state, not bytes, so
                    // it is refreshed here only and never on the progress path.
                    QueueEvent::Changed { item } => {
                        let _ = forward.emit(EVENT_UPLOAD, ipc_item(&item, None));
                        crate::tray::refresh(&forward, count_unfinished(&forwarding_queue));
                    }
                    QueueEvent::Progress { id, sent, .. } => {
                        if let Ok(item) = forwarding_queue.get(id) {
                            let _ = forward.emit(EVENT_UPLOAD, ipc_item(&item, Some(sent)));
                        }
                    }
                }
            }
        });
        let (work, stop) = (self.work.clone(), self.stop.clone());
        tauri::async_runtime::spawn(async move {
            while !stop.is_cancelled() {
                if let Err(e) = queue.run(None, stop.child_token()).await {
                    tracing::error!(error = %e, "the upload queue failed");
                }
                tokio::select! {
                    () = work.notified() => {},
                    () = tokio::time::sleep(IDLE_POLL) => {},
                    () = stop.cancelled() => {},
                }
            }
        });
    }

    pub fn connection(&self) -> Connection {
        self.connection.clone()
    }

    pub fn list(&self) -> Vec<UploadItem> {
        self.queue
            .as_ref()
            .and_then(|q| q.list().ok())
            .unwrap_or_default()
            .iter()
            .map(|i| ipc_item(i, None))
            .collect()
    }

    /// Uploads not yet finished, for the tray and for close-to-tray.
    pub fn unfinished(&self) -> usize {
        self.queue.as_deref().map_or(0, count_unfinished)
    }

    pub fn add(&self, paths: Vec<PathBuf>) -> Result<AddedFiles, IpcError> {
        let (Some(queue), Some(target)) = (&self.queue, &self.target) else {
            return Err(IpcError {
                code: "not_connected".into(),
                message: self.connection.problem.clone().unwrap_or_default(),
            });
        };
        let (videos, rejected) = collect_videos(&paths);
        let mut rejected: Vec<RejectedPath> = rejected
            .into_iter()
            .map(|r| RejectedPath {
                path: r.path.display().to_string(),
                reason: r.reason,
            })
            .collect();
        let mut added = Vec::new();
        for path in videos {
            match queue.add(&path, target).and_then(|id| {
                queue.get(id).map_err(|e| UploadError::Queue {
                    message: e.to_string(),
                })
            }) {
                Ok(item) => added.push(ipc_item(&item, None)),
                Err(e) => rejected.push(RejectedPath {
                    path: path.display().to_string(),
                    reason: e.to_string(),
                }),
            }
        }
        self.work.notify_one();
        Ok(AddedFiles { added, rejected })
    }
}

impl Drop for Uploads {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

fn count_unfinished(queue: &UploadQueue<CompanionClient>) -> usize {
    queue
        .ids_in(&[
            ItemState::Queued,
            ItemState::Uploading,
            ItemState::Completing,
        ])
        .map_or(0, |ids| ids.len())
}
