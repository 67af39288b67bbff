//! Signed updates (tauri-plugin-updater). Packages built by `./dev package` carry the
//! update key's public half and the feed's address; builds from source have neither and
//! never look for updates. A package is installed only if its minisign signature verifies
//! against that key and was made for the version the feed announces (no downgrade by a
//! tampered feed), and only after the user agreed.

use std::sync::Arc;
use std::sync::Mutex;

use tauri::{AppHandle, Manager, Runtime};
use tauri_plugin_updater::{Error as UpdaterError, Update, UpdaterExt};

use crate::Shell;
use reelup_core::ErrorCode;

use crate::ipc::{AvailableUpdate, IpcError, UpdateStatus};

/// The release found by the last check, kept so "Install" installs what the user saw.
#[derive(Default)]
pub struct Updates {
    found: Mutex<Option<Update>>,
}

/// Whether this build was packaged with an update channel (`plugins.updater` in the
/// bundled config): the plugin is registered only then.
pub fn configured(config: &tauri::Config) -> bool {
    config.plugins.0.contains_key("updater")
}

fn enabled<R: Runtime>(app: &AppHandle<R>) -> bool {
    configured(app.config())
}

pub fn status<R: Runtime>(app: &AppHandle<R>) -> UpdateStatus {
    let found = app
        .try_state::<Updates>()
        .and_then(|u| u.found.lock().unwrap_or_else(|e| e.into_inner()).clone());
    UpdateStatus {
        version: app.package_info().version.to_string(),
        updates_enabled: enabled(app),
        available: found.map(|u| AvailableUpdate {
            version: u.version,
            notes: u.body,
        }),
    }
}

/// Maps the updater's errors onto codes the UI branches on, with what to do next.
fn update_error(e: UpdaterError) -> IpcError {
    match e {
        UpdaterError::Minisign(_)
        | UpdaterError::Base64(_)
        | UpdaterError::SignatureUtf8(_)
        | UpdaterError::SignedVersionMismatch { .. } => IpcError::new(
            ErrorCode::UpdateSignature,
            format!(
                "The update was refused: its signature does not match Reelup's update key \
                 ({e}). Nothing was installed and this version keeps running; tell whoever \
                 publishes your Reelup updates."
            ),
        ),
        UpdaterError::Reqwest(_) | UpdaterError::Network(_) => IpcError::new(
            ErrorCode::UpdateUnreachable,
            format!("Could not reach the update server ({e}); check the network and try again."),
        ),
        UpdaterError::ReleaseNotFound
        | UpdaterError::Serialization(_)
        | UpdaterError::Semver(_)
        | UpdaterError::TargetNotFound(_)
        | UpdaterError::TargetsNotFound(_)
        | UpdaterError::UrlParse(_) => IpcError::new(
            ErrorCode::UpdateManifest,
            format!("The update feed could not be read ({e}); nothing was installed."),
        ),
        other => IpcError::new(
            ErrorCode::UpdateInstall,
            format!(
                "The update could not be installed ({other}); this version keeps running \
                 and uploads carry on."
            ),
        ),
    }
}

fn not_enabled() -> IpcError {
    IpcError::new(
        ErrorCode::UpdateDisabled,
        "This build has no update channel (it was built from source); install a Reelup \
         package to get updates.",
    )
}

/// Asks the feed for a newer release. Found or not, the status is returned (and emitted
/// when there is one, so every window and the tray hear of it).
pub async fn check<R: Runtime>(app: &AppHandle<R>) -> Result<UpdateStatus, IpcError> {
    if !enabled(app) {
        return Err(not_enabled());
    }
    let updater = app.updater().map_err(update_error)?;
    let found = updater.check().await.map_err(update_error)?;
    let announce = found.is_some();
    if let Some(state) = app.try_state::<Updates>() {
        *state.found.lock().unwrap_or_else(|e| e.into_inner()) = found;
    }
    let status = status(app);
    if announce {
        crate::ipc::emit(app, status.clone());
    }
    Ok(status)
}

/// Downloads and verifies the release found by the last check while uploads go on, then
/// holds the queue at a part boundary, installs, and restarts as the new version (which
/// carries on from the last finished part). If anything fails, nothing is installed and
/// uploads go on.
pub async fn install<R: Runtime>(app: &AppHandle<R>) -> Result<(), IpcError> {
    let update = app
        .try_state::<Updates>()
        .and_then(|u| u.found.lock().unwrap_or_else(|e| e.into_inner()).clone())
        .ok_or_else(|| {
            IpcError::new(
                ErrorCode::UpdateNone,
                "There is no update to install; check for updates first.",
            )
        })?;
    tracing::info!(version = %update.version, "downloading update");
    // `download` verifies the signature before handing the bytes back.
    let bytes = update
        .download(|_, _| {}, || {})
        .await
        .map_err(update_error)?;
    let queue = app.state::<Arc<Shell>>().uploads.queue().ok().cloned();
    if let Some(queue) = &queue {
        tracing::info!("update verified: holding uploads at a part boundary");
        queue.hold_at_part_boundary().await;
    }
    let installed = {
        let update = update.clone();
        tauri::async_runtime::spawn_blocking(move || update.install(bytes))
            .await
            .map_err(|e| IpcError::new(ErrorCode::UpdateInstall, e.to_string()))?
    };
    if let Err(e) = installed {
        if let Some(queue) = &queue {
            queue.release_hold();
        }
        tracing::warn!(error = %e, "update not installed");
        return Err(update_error(e));
    }
    tracing::info!(version = %update.version, "update installed: restarting");
    app.restart();
}

/// The check on start: quietly, a few seconds in, so it never competes with the first
/// paint or the queue's start. A failure is only logged; Settings can check again.
pub fn check_soon<R: Runtime>(app: &AppHandle<R>) {
    if !enabled(app) {
        return;
    }
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_secs(3)).await;
        match check(&app).await {
            Ok(s) => match s.available {
                Some(a) => {
                    tracing::info!(version = %a.version, "an update is available");
                    crate::notify(
                        &app,
                        "Reelup update available",
                        &format!("Version {} is ready to install from Settings.", a.version),
                    );
                }
                None => tracing::info!("Reelup is up to date"),
            },
            Err(e) => tracing::info!(error = %e.message, "update check failed"),
        }
    });
}
