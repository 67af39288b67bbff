//! The profiles' watch folders, run by `reelup_core::watch::uploads` for as long as the app
//! runs, restarted whenever the settings change.

use std::sync::{Arc, Mutex};

use reelup_core::watch::FolderState;
use reelup_core::watch::uploads::{FolderTarget, WatchReport, watch_into_queue};
use tauri::{AppHandle, Runtime};
use tokio_util::sync::CancellationToken;

use crate::ipc::{self, Notice, WatchState, WatchStatus, WatchStatuses};
use crate::uploads::Queue;

/// Each watched folder with the name of its profile.
type WatchedFolders = Vec<(String, FolderTarget)>;

#[derive(Default)]
pub struct Watching {
    stop: Mutex<Option<CancellationToken>>,
    /// What is being watched, so a settings change that leaves the folders alone (a
    /// token, an app option) does not walk every folder again. Cleared when the watcher
    /// fails, so saving the same settings again retries. Held for a whole restart, so two
    /// at once cannot leave a watcher running that nothing stops.
    watched: Arc<Mutex<Option<WatchedFolders>>>,
    statuses: Arc<Mutex<Vec<WatchStatus>>>,
}

fn status_of(state: &FolderState) -> (WatchState, Option<String>) {
    match state {
        FolderState::Watching => (WatchState::Watching, None),
        FolderState::Missing { message } => (WatchState::Missing, Some(message.clone())),
        FolderState::Unreadable { message } => (WatchState::Unreadable, Some(message.clone())),
    }
}

impl Watching {
    pub fn statuses(&self) -> Vec<WatchStatus> {
        self.statuses
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Stops the folders being watched and starts `folders` (profile name, folder); does
    /// nothing when they are the ones being watched.
    pub fn restart<R: Runtime>(
        &self,
        app: &AppHandle<R>,
        queue: Arc<Queue>,
        folders: WatchedFolders,
    ) {
        let mut watched = self.watched.lock().unwrap_or_else(|e| e.into_inner());
        if watched.as_ref() == Some(&folders) {
            return;
        }
        *watched = Some(folders.clone());
        if let Some(old) = self.stop.lock().unwrap_or_else(|e| e.into_inner()).take() {
            old.cancel();
        }
        {
            let mut statuses = self.statuses.lock().unwrap_or_else(|e| e.into_inner());
            // Until the watcher reports, a folder is shown as watched if it is there.
            *statuses = folders
                .iter()
                .map(|(profile, f)| WatchStatus {
                    profile: profile.clone(),
                    path: f.folder.path.display().to_string(),
                    state: if f.folder.path.is_dir() {
                        WatchState::Watching
                    } else {
                        WatchState::Missing
                    },
                    message: None,
                })
                .collect();
            ipc::emit(app, WatchStatuses(statuses.clone()));
        }
        if folders.is_empty() {
            return;
        }
        let stop = CancellationToken::new();
        *self.stop.lock().unwrap_or_else(|e| e.into_inner()) = Some(stop.clone());
        let (tx, mut reports) = tokio::sync::mpsc::channel(256);
        let targets = folders.iter().map(|(_, f)| f.clone()).collect();
        {
            let (app, watched) = (app.clone(), self.watched.clone());
            tauri::async_runtime::spawn(async move {
                if let Err(e) = watch_into_queue(queue, targets, tx, stop).await {
                    *watched.lock().unwrap_or_else(|e| e.into_inner()) = None;
                    ipc::emit(
                        &app,
                        Notice {
                            message: e.to_string(),
                        },
                    );
                }
            });
        }
        let (statuses, app) = (self.statuses.clone(), app.clone());
        tauri::async_runtime::spawn(async move {
            while let Some(report) = reports.recv().await {
                match report {
                    WatchReport::Folder { folder, state } => {
                        let (state, message) = status_of(&state);
                        let mut all = statuses.lock().unwrap_or_else(|e| e.into_inner());
                        for s in all
                            .iter_mut()
                            .filter(|s| s.path == folder.display().to_string())
                        {
                            s.state = state;
                            s.message = message.clone();
                        }
                        ipc::emit(&app, WatchStatuses(all.clone()));
                    }
                    WatchReport::NotQueued { path, message }
                    | WatchReport::MoveFailed { path, message } => {
                        ipc::emit(
                            &app,
                            Notice {
                                message: format!("{}: {message}", path.display()),
                            },
                        );
                    }
                    WatchReport::Queued { .. } | WatchReport::Moved { .. } => {}
                }
            }
        });
    }
}
