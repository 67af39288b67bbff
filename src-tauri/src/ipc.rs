//! Everything the UI sees: command payloads, event payloads and the one error shape.
//! `ui/src/ipc.ts` mirrors this file; change both together.

use serde::Serialize;

/// Emitted whenever an upload changes; the UI keys rows by `id`.
pub const EVENT_UPLOAD: &str = "reelup://upload";

/// Emitted for something the user should read but need not act on at once, e.g. a
/// dropped file that is not a video.
pub const EVENT_NOTICE: &str = "reelup://notice";

#[derive(Debug, Clone, Serialize)]
pub struct Notice {
    pub message: String,
}

/// The single error shape at the IPC boundary: the UI branches on `code`, shows `message`.
#[derive(Debug, Clone, Serialize, thiserror::Error)]
#[error("{message}")]
pub struct IpcError {
    pub code: String,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum UploadState {
    Queued,
    Uploading,
    Paused,
    Done,
    Failed,
    Canceled,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UploadItem {
    pub id: i64,
    pub name: String,
    pub path: String,
    pub size: u64,
    pub sent: u64,
    pub state: UploadState,
    pub url: Option<String>,
    pub error: Option<IpcError>,
}

/// A dropped path that is not going up, and why.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RejectedPath {
    pub path: String,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AddedFiles {
    pub added: Vec<UploadItem>,
    pub rejected: Vec<RejectedPath>,
}

/// Where uploads go, or why they cannot go anywhere yet.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Connection {
    pub endpoint: Option<String>,
    pub cdn: Option<String>,
    pub problem: Option<String>,
}
