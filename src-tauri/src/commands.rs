//! The commands the UI may invoke (named in `ipc.rs`). Each maps onto `Uploads`,
//! `ProfileSettings` or a plugin; none holds upload logic.

use std::path::PathBuf;
use std::sync::Arc;

use reelup_core::ErrorCode;
use reelup_core::media::faststart::Layout;
use tauri::{AppHandle, Runtime, State};
use tauri_plugin_clipboard_manager::ClipboardExt;

use crate::Shell;
use crate::ipc::{
    AcceptedInvite, AddedFiles, AppOptions, Connection, ConnectionCheck, InvitePreview, IpcError,
    ProfileInput, Settings, SignedLink, UpdateStatus, UploadItem, WatchStatus,
};

type Shared<'a> = State<'a, Arc<Shell>>;

#[tauri::command]
#[specta::specta]
pub fn connection(shell: Shared<'_>) -> Connection {
    shell.profiles.connection()
}

/// Runs `work` on a blocking thread: a sync command runs on the main thread, and reading
/// many rows or files there would hold the window still. `doing` names the work for the
/// message should it panic.
async fn off_the_main_thread<T: Send + 'static>(
    doing: &'static str,
    work: impl FnOnce() -> Result<T, IpcError> + Send + 'static,
) -> Result<T, IpcError> {
    tauri::async_runtime::spawn_blocking(work)
        .await
        .map_err(|e| {
            IpcError::new(
                ErrorCode::Unknown,
                format!("{doing} failed ({e}); try again, and restart Reelup if it fails again"),
            )
        })?
}

/// Every upload, newest first.
#[tauri::command]
#[specta::specta]
pub async fn list_uploads(shell: Shared<'_>) -> Result<Vec<UploadItem>, IpcError> {
    let shell = shell.inner().clone();
    off_the_main_thread("listing the uploads", move || shell.uploads.list()).await
}

/// Off the main thread: reading a folder of 1,000 clips takes a while.
#[tauri::command]
pub async fn add_paths(shell: Shared<'_>, paths: Vec<PathBuf>) -> Result<AddedFiles, IpcError> {
    let shell = shell.inner().clone();
    off_the_main_thread("adding the files", move || shell.add(paths)).await
}

/// A poster frame the UI drew from the item's video (a JPEG, at most 2 MiB): checked,
/// uploaded beside the video, and recorded; an `reelup://upload` event follows with its
/// URL. Answers the poster's streaming URL.
#[tauri::command]
#[specta::specta]
pub async fn save_poster(shell: Shared<'_>, id: i64, jpeg: Vec<u8>) -> Result<String, IpcError> {
    Ok(shell.uploads.queue()?.upload_poster(id, jpeg).await?)
}

/// The webview could not draw a frame of item `id` (a codec it cannot decode, say): the
/// item simply has no poster. Logged, so a missing poster can be explained.
#[tauri::command]
#[specta::specta]
pub fn no_poster(id: i64, reason: String) {
    let reason: String = reason.chars().take(200).collect();
    tracing::info!(
        id,
        reason,
        "no poster frame: the webview could not draw one"
    );
}

#[tauri::command]
#[specta::specta]
pub fn pause_upload(shell: Shared<'_>, id: i64) -> Result<(), IpcError> {
    shell.uploads.pause(id)
}

#[tauri::command]
#[specta::specta]
pub fn resume_upload(shell: Shared<'_>, id: i64) -> Result<(), IpcError> {
    shell.uploads.resume(id)
}

/// How a held (or not yet started) upload's bytes go up: re-laid to start instantly
/// (`faststart`), or as they are (`original`, also a damaged MP4 the user sends anyway).
#[tauri::command]
#[specta::specta]
pub async fn choose_layout(shell: Shared<'_>, id: i64, layout: Layout) -> Result<(), IpcError> {
    shell.uploads.choose_layout(id, layout).await
}

#[tauri::command]
#[specta::specta]
pub async fn cancel_upload(shell: Shared<'_>, id: i64) -> Result<(), IpcError> {
    shell.uploads.cancel(id).await
}

#[tauri::command]
#[specta::specta]
pub fn remove_upload<R: Runtime>(
    app: AppHandle<R>,
    shell: Shared<'_>,
    id: i64,
) -> Result<(), IpcError> {
    shell.uploads.remove(&app, id)
}

#[tauri::command]
#[specta::specta]
pub fn pause_all(shell: Shared<'_>) -> Result<(), IpcError> {
    shell.uploads.pause_all()
}

#[tauri::command]
#[specta::specta]
pub fn resume_all(shell: Shared<'_>) -> Result<(), IpcError> {
    shell.uploads.resume_all()
}

/// Retries every failed upload that retrying can help; answers how many went back in line.
#[tauri::command]
#[specta::specta]
pub fn retry_all(shell: Shared<'_>) -> Result<u32, IpcError> {
    shell.uploads.retry_all()
}

/// A new CloudFront signed link to finished upload `id`, from its profile's reelup-server
/// (History's "Copy link"); `links_unavailable` when the endpoint cannot sign.
#[tauri::command]
#[specta::specta]
pub async fn sign_link(shell: Shared<'_>, id: i64) -> Result<SignedLink, IpcError> {
    let item = shell.uploads.queue()?.get(id)?;
    let (Some(key), Some(profile)) = (item.key, item.target.profile) else {
        return Err(IpcError::new(
            ErrorCode::NoSuchItem,
            format!("upload {id} has no finished object of a profile to link to"),
        ));
    };
    // The poster sits under the same CDN base as the video: its key is what follows it.
    let poster_key = item.poster_url.as_deref().and_then(|url| {
        url.strip_prefix(item.target.cdn.trim_end_matches('/'))
            .and_then(|rest| rest.strip_prefix('/'))
            .map(str::to_owned)
    });
    shell.profiles.sign_link(&profile, key, poster_key).await
}

#[tauri::command]
#[specta::specta]
pub fn copy_text<R: Runtime>(app: AppHandle<R>, text: String) -> Result<(), IpcError> {
    app.clipboard().write_text(text).map_err(|e| {
        IpcError::new(
            ErrorCode::Clipboard,
            format!("could not copy to the clipboard: {e}"),
        )
    })
}

/// Only web links: the UI must not be able to open files or run programs through this.
#[tauri::command]
#[specta::specta]
pub fn open_url<R: Runtime>(app: AppHandle<R>, url: String) -> Result<(), IpcError> {
    use tauri_plugin_opener::OpenerExt;
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return Err(IpcError::new(
            ErrorCode::InvalidInput,
            "only http(s) links can be opened",
        ));
    }
    app.opener().open_url(url, None::<&str>).map_err(|e| {
        IpcError::new(
            ErrorCode::Opener,
            format!("could not open the browser: {e}"),
        )
    })
}

#[tauri::command]
#[specta::specta]
pub fn get_settings(shell: Shared<'_>) -> Settings {
    shell.profiles.settings()
}

#[tauri::command]
#[specta::specta]
pub fn save_profile<R: Runtime>(
    app: AppHandle<R>,
    shell: Shared<'_>,
    previous_name: Option<String>,
    profile: ProfileInput,
) -> Result<Settings, IpcError> {
    shell.profiles.save_profile(previous_name, profile)?;
    Ok(shell.settings_changed(&app))
}

#[tauri::command]
#[specta::specta]
pub fn remove_profile<R: Runtime>(
    app: AppHandle<R>,
    shell: Shared<'_>,
    name: String,
) -> Result<Settings, IpcError> {
    shell.profiles.remove_profile(&name)?;
    Ok(shell.settings_changed(&app))
}

#[tauri::command]
#[specta::specta]
pub fn set_default_profile<R: Runtime>(
    app: AppHandle<R>,
    shell: Shared<'_>,
    name: String,
) -> Result<Settings, IpcError> {
    shell.profiles.set_default(&name)?;
    Ok(shell.settings_changed(&app))
}

#[tauri::command]
#[specta::specta]
pub fn set_token<R: Runtime>(
    app: AppHandle<R>,
    shell: Shared<'_>,
    profile: String,
    token: String,
) -> Result<Settings, IpcError> {
    shell.profiles.set_token(&profile, &token)?;
    Ok(shell.settings_changed(&app))
}

#[tauri::command]
#[specta::specta]
pub fn clear_token<R: Runtime>(
    app: AppHandle<R>,
    shell: Shared<'_>,
    profile: String,
) -> Result<Settings, IpcError> {
    shell.profiles.clear_token(&profile)?;
    Ok(shell.settings_changed(&app))
}

#[tauri::command]
#[specta::specta]
pub async fn test_connection(
    shell: Shared<'_>,
    profile: String,
) -> Result<ConnectionCheck, IpcError> {
    shell.profiles.test_connection(&profile).await
}

#[tauri::command]
#[specta::specta]
pub async fn pick_folder<R: Runtime>(app: AppHandle<R>) -> Option<String> {
    use tauri_plugin_dialog::DialogExt;
    app.dialog()
        .file()
        .set_title("Choose a folder to watch")
        .blocking_pick_folder()
        .and_then(|p| p.into_path().ok())
        .map(|p| p.display().to_string())
}

/// "Add videos" (`folder`: "Add a folder"): the system's picker, and what was picked queued
/// for the default profile as a drop is. Nothing picked adds nothing.
#[tauri::command]
#[specta::specta]
pub async fn pick_videos<R: Runtime>(
    app: AppHandle<R>,
    shell: Shared<'_>,
    folder: bool,
) -> Result<AddedFiles, IpcError> {
    use tauri_plugin_dialog::DialogExt;
    let dialog = app.dialog().file();
    let picked = if folder {
        dialog
            .set_title("Add a folder of videos")
            .blocking_pick_folder()
            .into_iter()
            .collect()
    } else {
        dialog
            .set_title("Add videos")
            .add_filter("Videos", reelup_core::VIDEO_EXTENSIONS)
            .blocking_pick_files()
            .unwrap_or_default()
    };
    let paths: Vec<PathBuf> = picked
        .into_iter()
        .filter_map(|p| p.into_path().ok())
        .collect();
    let shell = shell.inner().clone();
    off_the_main_thread("adding the files", move || shell.add(paths)).await
}

#[tauri::command]
#[specta::specta]
pub fn set_app_options<R: Runtime>(
    app: AppHandle<R>,
    shell: Shared<'_>,
    options: AppOptions,
) -> Result<Settings, IpcError> {
    crate::set_start_at_login(&app, options.start_at_login)?;
    shell.profiles.set_app(options)?;
    Ok(shell.settings_changed(&app))
}

#[tauri::command]
#[specta::specta]
pub fn watch_status(shell: Shared<'_>) -> Vec<WatchStatus> {
    shell.watching.statuses()
}

/// The tray menu's texts as they are now (the appindicator cannot be read from outside on
/// every desktop; the end-to-end test reads the menu through this).
// Async, so it runs off the main thread that the menu calls wait for.
#[tauri::command]
pub async fn tray_menu<R: Runtime>(app: AppHandle<R>) -> Vec<String> {
    crate::tray::menu_texts(&app)
}

#[tauri::command]
#[specta::specta]
pub fn update_status<R: Runtime>(app: AppHandle<R>) -> UpdateStatus {
    crate::updates::status(&app)
}

#[tauri::command]
#[specta::specta]
pub async fn check_update<R: Runtime>(app: AppHandle<R>) -> Result<UpdateStatus, IpcError> {
    crate::updates::check(&app).await
}

/// Installs the release the last check found, with the user's consent (this call is it),
/// and restarts as the new version.
#[tauri::command]
#[specta::specta]
pub async fn install_update<R: Runtime>(app: AppHandle<R>) -> Result<(), IpcError> {
    crate::updates::install(&app).await
}

/// Reads an invite link without redeeming it, for the user to agree to.
#[tauri::command]
#[specta::specta]
pub fn inspect_invite(shell: Shared<'_>, link: String) -> Result<InvitePreview, IpcError> {
    crate::invites::preview(&shell.profiles, &link)
}

/// Redeems the link's one-time code (the user agreed in Settings) and sets up its profile.
#[tauri::command]
#[specta::specta]
pub async fn accept_invite<R: Runtime>(
    app: AppHandle<R>,
    shell: Shared<'_>,
    link: String,
) -> Result<AcceptedInvite, IpcError> {
    let accepted = crate::invites::accept(&shell.profiles, &link).await?;
    shell.settings_changed(&app);
    Ok(accepted)
}

#[tauri::command]
#[specta::specta]
pub fn take_opened_invite<R: Runtime>(app: AppHandle<R>) -> Option<InvitePreview> {
    crate::invites::take_opened(&app)
}
