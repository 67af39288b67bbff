//! Watch folders feeding the upload queue: what `reelup watch` and the app both run.
//!
//! What must stay true: a reported file is queued through [`UploadQueue::add_watched`], so
//! the same content never goes up twice; a finished file is moved into `uploaded/` only when
//! its folder asks for it, and only once (the move itself announces the item again, from
//! inside `uploaded/`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{
    FolderState, FolderWatcher, UPLOADED_DIR, WatchError, WatchEvent, WatchSpec, move_to_uploaded,
};
use crate::config::{AfterUpload, WatchFolder};
use crate::queue::store::{ItemState, QueueItem, Target};
use crate::{PresignEndpoint, QueueEvent, UploadQueue};

/// A folder and where its files go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FolderTarget {
    pub folder: WatchFolder,
    pub target: Target,
}

/// What happened, for the CLI to print and the app to show.
#[derive(Debug, Clone)]
pub enum WatchReport {
    Folder { folder: PathBuf, state: FolderState },
    Queued { id: i64, path: PathBuf },
    NotQueued { path: PathBuf, message: String },
    Moved { id: i64, to: PathBuf },
    MoveFailed { path: PathBuf, message: String },
}

fn spec(w: &WatchFolder) -> WatchSpec {
    WatchSpec {
        folder: w.path.clone(),
        recursive: w.recursive,
        extensions: w.extensions.clone(),
        stable_for: Duration::from_secs(w.stable_secs.max(1)),
    }
}

/// Watches `folders` until `stop`, queueing what they report; the queue itself is run
/// elsewhere (`UploadQueue::serve`).
pub async fn watch_into_queue<E: PresignEndpoint + 'static>(
    queue: Arc<UploadQueue<E>>,
    folders: Vec<FolderTarget>,
    reports: mpsc::Sender<WatchReport>,
    stop: CancellationToken,
) -> Result<(), WatchError> {
    let (tx, mut rx) = mpsc::channel(256);
    let watcher = FolderWatcher::start(
        folders.iter().map(|f| spec(&f.folder)).collect(),
        tx,
        stop.clone(),
    )?;
    let mut queue_events = queue.subscribe();
    loop {
        let reported = tokio::select! {
            () = stop.cancelled() => break,
            event = rx.recv() => match event {
                Some(event) => {
                    // Whatever else the watcher has reported by now goes in the same batch:
                    // a folder of 1,000 clips settling at once is read off the runtime's
                    // threads and queued in one transaction.
                    let mut batch = vec![event];
                    while batch.len() < WATCH_BATCH
                        && let Ok(more) = rx.try_recv()
                    {
                        batch.push(more);
                    }
                    on_watch_events(&queue, &folders, batch).await
                }
                None => break,
            },
            event = queue_events.recv() => match event {
                Ok(QueueEvent::Changed { item }) if item.state == ItemState::Done => {
                    after_upload(&queue, &folders, &item).into_iter().collect()
                }
                // Lagging behind a burst of progress events loses nothing that matters here.
                _ => Vec::new(),
            },
        };
        for report in reported {
            let _ = reports.send(report).await;
        }
    }
    watcher.shutdown().await;
    Ok(())
}

/// The most watcher events queued in one transaction.
const WATCH_BATCH: usize = 1024;

/// Queues the files folders reported (in one batch, read off the runtime's threads), and
/// passes on what else the watcher said.
async fn on_watch_events<E: PresignEndpoint + 'static>(
    queue: &Arc<UploadQueue<E>>,
    folders: &[FolderTarget],
    events: Vec<WatchEvent>,
) -> Vec<WatchReport> {
    let mut reports = Vec::new();
    let mut ready = Vec::new();
    for event in events {
        match event {
            WatchEvent::Ready { folder, path } => {
                if let Some(home) = folders.iter().find(|f| f.folder.path == folder) {
                    ready.push((path, home.target.clone()));
                }
            }
            WatchEvent::Refused { path, message, .. } => {
                reports.push(WatchReport::NotQueued { path, message });
            }
            WatchEvent::Folder { folder, state } => {
                reports.push(WatchReport::Folder { folder, state });
            }
        }
    }
    if ready.is_empty() {
        return reports;
    }
    let paths: Vec<PathBuf> = ready.iter().map(|(p, _)| p.clone()).collect();
    let added = {
        let queue = queue.clone();
        tokio::task::spawn_blocking(move || queue.add_watched_many(&ready)).await
    };
    let results: Vec<Result<Option<i64>, String>> = match added {
        Ok(Ok(results)) => results
            .into_iter()
            .map(|r| r.map_err(|e| e.to_string()))
            .collect(),
        // The store failed (or the reading thread died): no file of the batch is queued,
        // and each says why.
        Ok(Err(e)) => vec![Err(e.to_string()); paths.len()],
        Err(e) => vec![Err(format!("could not be read for queueing: {e}")); paths.len()],
    };
    for (path, result) in paths.into_iter().zip(results) {
        match result {
            Ok(Some(id)) => reports.push(WatchReport::Queued { id, path }),
            // Already queued or uploaded: the same content never goes up twice.
            Ok(None) => {}
            Err(message) => reports.push(WatchReport::NotQueued { path, message }),
        }
    }
    reports
}

/// Moves an uploaded file into its folder's `uploaded/` if the folder asks for that and the
/// file is not there already (the move announces the item again, from inside `uploaded/`).
fn after_upload<E: PresignEndpoint>(
    queue: &UploadQueue<E>,
    folders: &[FolderTarget],
    item: &QueueItem,
) -> Option<WatchReport> {
    let home = folders.iter().find(|f| {
        f.folder.after_upload == AfterUpload::Move
            && item.path.starts_with(&f.folder.path)
            && !item.path.starts_with(f.folder.path.join(UPLOADED_DIR))
    })?;
    let report = match move_to_uploaded(&home.folder.path, &item.path) {
        Ok(to) => {
            if let Err(e) = queue.set_path(item.id, &to) {
                tracing::warn!(error = %e, "could not record where the file moved");
            }
            WatchReport::Moved { id: item.id, to }
        }
        Err(e) => WatchReport::MoveFailed {
            path: item.path.clone(),
            message: format!("uploaded, but could not move it into {UPLOADED_DIR}/: {e}"),
        },
    };
    Some(report)
}
