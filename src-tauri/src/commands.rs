//! The commands the UI may invoke. Each is a one-line mapping onto `Uploads`.

use std::sync::Arc;

use tauri::{AppHandle, State};
use tauri_plugin_clipboard_manager::ClipboardExt;

use crate::ipc::{Connection, IpcError, UploadItem};
use crate::uploads::Uploads;

#[tauri::command]
pub fn connection(uploads: State<'_, Arc<Uploads>>) -> Connection {
    uploads.connection()
}

#[tauri::command]
pub fn list_uploads(uploads: State<'_, Arc<Uploads>>) -> Vec<UploadItem> {
    uploads.list()
}

#[tauri::command]
pub fn copy_text(app: AppHandle, text: String) -> Result<(), IpcError> {
    app.clipboard().write_text(text).map_err(|e| IpcError {
        code: "clipboard".into(),
        message: format!("could not copy to the clipboard: {e}"),
    })
}
