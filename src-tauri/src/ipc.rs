//! Everything the UI sees: command names, command payloads, event payloads and the one
//! error shape. `ui/src/ipc.ts` mirrors this file; change both together.

use serde::{Deserialize, Serialize};

/// Emitted whenever an upload changes state (queued, paused, done...), with the whole item.
pub const EVENT_UPLOAD: &str = "reelup://upload";

/// Emitted at most a few times a second with the bytes of every upload that moved since
/// the last batch: with 1,000 items the UI gets one event, not a thousand.
pub const EVENT_PROGRESS: &str = "reelup://progress";

/// Emitted when an item leaves the queue and history (removed by the user).
pub const EVENT_REMOVED: &str = "reelup://removed";

/// Emitted for something the user should read but need not act on at once, e.g. a
/// dropped file that is not a video.
pub const EVENT_NOTICE: &str = "reelup://notice";

/// Emitted when the settings change (from this window, the CLI editing the config, or a
/// config problem found), with the whole `Settings`.
pub const EVENT_SETTINGS: &str = "reelup://settings";

/// Emitted when where new uploads go changes (the default profile), with the `Connection`.
pub const EVENT_CONNECTION: &str = "reelup://connection";

/// Emitted when a watched folder's state changes, with every folder's `WatchStatus`.
pub const EVENT_WATCH: &str = "reelup://watch";

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

impl IpcError {
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
        }
    }
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
    /// The streaming URL, once done.
    pub url: Option<String>,
    pub error: Option<IpcError>,
    /// The profile it goes to (None for items queued before profiles existed).
    pub profile: Option<String>,
    /// The object key, once the endpoint has named it.
    pub key: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds; set when done.
    pub finished_at: Option<i64>,
}

/// One upload's movement, inside a `ProgressBatch`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProgressTick {
    pub id: i64,
    pub sent: u64,
    pub total: u64,
    pub bytes_per_sec: u64,
    pub eta_secs: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProgressBatch {
    pub items: Vec<ProgressTick>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RemovedItem {
    pub id: i64,
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

/// Where new uploads go (the default profile), or why they cannot go anywhere yet.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Connection {
    pub profile: Option<String>,
    pub endpoint: Option<String>,
    pub cdn: Option<String>,
    pub problem: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Flavour {
    ReelupServer,
    Companion,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AfterUpload {
    Leave,
    Move,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WatchFolder {
    pub path: String,
    pub recursive: bool,
    pub after_upload: AfterUpload,
    /// Extensions (no dot) to pick up; empty is every video type. Settings has no field for
    /// it, but must hand it back as it came, or saving any profile field would drop it.
    #[serde(default)]
    pub extensions: Vec<String>,
    /// Seconds a file's size and mtime must stay still; absent (a folder added in the UI)
    /// is the engine's default.
    #[serde(default)]
    pub stable_secs: Option<u64>,
}

/// A profile as the settings form edits it. Never carries the token.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProfileInput {
    pub name: String,
    pub endpoint: String,
    pub flavour: Flavour,
    pub cdn: Option<String>,
    pub parts_in_flight: u16,
    /// Bytes per second for all uploads of this profile together; None is unlimited.
    pub bandwidth_limit: Option<u64>,
    pub part_size_mib: u64,
    pub watch: Vec<WatchFolder>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProfileView {
    #[serde(flatten)]
    pub profile: ProfileInput,
    /// Whether the keyring holds a token for it. The token itself never reaches the UI.
    pub has_token: bool,
    pub is_default: bool,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Settings {
    /// The profiles file, to show the user where it is.
    pub config_path: String,
    /// A mistake in the profiles file (file, line and fix); the app runs on without it.
    pub problem: Option<String>,
    pub profiles: Vec<ProfileView>,
    pub default_profile: Option<String>,
    pub close_to_tray: bool,
    pub start_at_login: bool,
    /// Why tokens cannot be stored here (no keyring), if so.
    pub keyring_problem: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionCheck {
    pub ok: bool,
    pub message: String,
    /// Who the token belongs to and their key prefix, where the endpoint says (`/whoami`).
    pub user: Option<String>,
    pub prefix: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WatchState {
    Watching,
    Missing,
    Unreadable,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WatchStatus {
    pub profile: String,
    pub path: String,
    pub state: WatchState,
    pub message: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppOptions {
    pub close_to_tray: bool,
    pub start_at_login: bool,
}

/// Emitted when a check finds a newer signed release, with the `UpdateStatus`.
pub const EVENT_UPDATE: &str = "reelup://update";

/// Emitted when an invite link is opened (from a browser, a chat, or the command line),
/// with its `InvitePreview`. Nothing is connected until the user agrees in Settings.
pub const EVENT_INVITE: &str = "reelup://invite";

/// This build's version and its update channel.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateStatus {
    pub version: String,
    /// False for builds from source: only packages carry an update key and a feed.
    pub updates_enabled: bool,
    /// A newer release whose manifest was read; its package is verified when downloaded.
    pub available: Option<AvailableUpdate>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AvailableUpdate {
    pub version: String,
    pub notes: Option<String>,
}

/// What an invite link would connect to, shown for the user to agree to before anything
/// is redeemed. Never carries the one-time code.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InvitePreview {
    /// The link itself, to hand back to `accept_invite` once the user agrees.
    pub link: String,
    pub endpoint: String,
    pub cdn: String,
    pub profile: String,
    /// Whether a profile of that name exists already (its endpoint and CDN would change).
    pub replaces: bool,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AcceptedInvite {
    pub profile: String,
    pub user: String,
    pub check: ConnectionCheck,
}
