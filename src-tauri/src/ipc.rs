//! Everything the UI sees: command payloads, event payloads and the one error shape.
//! `ui/src/bindings.ts` is generated from these types and the commands (`crate::bindings`);
//! a test fails when it is stale, and `./dev bindings` writes it again.

use reelup_core::ErrorCode;
use reelup_core::config::ProfileField;
pub use reelup_core::engine::Verification;
pub use reelup_core::media::faststart::{FaststartSetting, IndexPosition, Layout};
use serde::{Deserialize, Serialize};
use specta::Type;
use tauri::{AppHandle, Emitter, Runtime};
use tauri_specta::Event;

/// Emits `payload` as its event (each payload type is one event; its name is the type's
/// `#[tauri_specta(event_name)]`, which the generated bindings listen on). A window that is
/// gone is no reason to stop: failures are ignored, as Tauri's own `emit` callers do.
pub fn emit<R: Runtime, E: Event + Serialize + Clone>(app: &AppHandle<R>, payload: E) {
    let _ = app.emit(E::NAME, payload);
}

/// Something the user should read but need not act on at once, e.g. a dropped file that
/// is not a video.
#[derive(Debug, Clone, Serialize, Type, Event)]
#[tauri_specta(event_name = "reelup://notice")]
pub struct Notice {
    pub message: String,
}

/// The single error shape at the IPC boundary: the UI branches on `code` and `field`, and
/// shows `message`; it never reads meaning out of the message.
#[derive(Debug, Clone, Serialize, Type, thiserror::Error)]
#[serde(rename_all = "camelCase")]
#[error("{message}")]
pub struct IpcError {
    pub code: ErrorCode,
    pub message: String,
    /// The profile setting the error is about (a refused save), for Settings to mark.
    pub field: Option<ProfileField>,
}

impl IpcError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            field: None,
        }
    }
}

impl From<reelup_core::config::ConfigError> for IpcError {
    fn from(e: reelup_core::config::ConfigError) -> Self {
        Self {
            code: e.code(),
            field: e.field(),
            message: e.to_string(),
        }
    }
}

impl From<reelup_core::credentials::CredentialError> for IpcError {
    fn from(e: reelup_core::credentials::CredentialError) -> Self {
        Self::new(e.code(), e.to_string())
    }
}

impl From<reelup_core::credentials::invite::InviteError> for IpcError {
    fn from(e: reelup_core::credentials::invite::InviteError) -> Self {
        use reelup_core::credentials::invite::InviteError;
        let field = match &e {
            InviteError::Config(c) => c.field(),
            _ => None,
        };
        Self {
            code: e.code(),
            field,
            message: e.to_string(),
        }
    }
}

impl From<reelup_core::UploadError> for IpcError {
    fn from(e: reelup_core::UploadError) -> Self {
        Self::new(e.code(), reelup_core::redact_urls(&e.to_string()))
    }
}

impl From<reelup_core::queue::store::QueueError> for IpcError {
    fn from(e: reelup_core::queue::store::QueueError) -> Self {
        Self::new(e.code(), e.to_string())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Type)]
#[serde(rename_all = "lowercase")]
pub enum UploadState {
    Queued,
    Uploading,
    Paused,
    Done,
    Failed,
    Canceled,
}

/// Uploads added together (a drop, a folder, a watched batch), in one event: a folder of
/// 1,000 clips is one message to the UI and one render, not 1,000 of each.
#[derive(Debug, Clone, Serialize, Type, Event)]
#[tauri_specta(event_name = "reelup://uploads-added")]
pub struct UploadsAdded {
    pub items: Vec<UploadItem>,
}

/// One upload; also the event sent whenever one changes state (queued, paused, done...).
#[derive(Debug, Clone, Serialize, Type, Event)]
#[tauri_specta(event_name = "reelup://upload")]
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
    /// For a failed upload, whether retrying can help (the network, the server's trouble);
    /// one failed for good (a changed file, a refused token) is not offered a retry.
    pub retryable: bool,
    /// The profile it goes to (None for items queued before profiles existed).
    pub profile: Option<String>,
    /// The object key, once the endpoint has named it.
    pub key: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds; set when done.
    pub finished_at: Option<i64>,
    /// The poster frame's streaming URL, once uploaded. This event is sent again when it is
    /// set, so History shows the poster as soon as it is there.
    pub poster_url: Option<String>,
    /// Why a finished upload has no poster, in words, when something stopped one being
    /// drawn (the file at its path is no longer the one queued); this event is sent again
    /// when it is found.
    pub no_poster: Option<String>,
    /// Duration, picture size, frame rate and codecs; None when the file's container could
    /// not be read.
    pub details: Option<VideoDetails>,
    /// Where the video keeps its index (`moov`), once looked at.
    pub index_position: Option<IndexPosition>,
    /// Whether it goes (went) up as it is or re-laid to start instantly; None until
    /// decided.
    pub layout: Option<Layout>,
    /// What was compared for a finished upload (a checksum the store checked, or ETags),
    /// and the same in words for History: "verified: CRC64NVME of the whole file".
    pub verified: Option<Verification>,
    pub verified_text: Option<String>,
}

/// A video's details as read from its container (`reelup_core::VideoDetails`, mirrored
/// field by field so the IPC shape changes only here).
#[derive(Debug, Clone, PartialEq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct VideoDetails {
    pub duration_ms: Option<u64>,
    pub width: u32,
    pub height: u32,
    /// Frames per second, rounded to 3 decimals (29.97).
    pub frame_rate: Option<f64>,
    /// "H.264", "HEVC", "AV1", "VP9"...
    pub video_codec: String,
    /// "AAC", "Opus"...; None without audio.
    pub audio_codec: Option<String>,
}

impl From<&reelup_core::VideoDetails> for VideoDetails {
    fn from(d: &reelup_core::VideoDetails) -> Self {
        Self {
            duration_ms: d.duration_ms,
            width: d.width,
            height: d.height,
            frame_rate: d.frame_rate,
            video_codec: d.video_codec.clone(),
            audio_codec: d.audio_codec.clone(),
        }
    }
}

/// One upload's movement, inside a `ProgressBatch`.
#[derive(Debug, Clone, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct ProgressTick {
    pub id: i64,
    pub sent: u64,
    pub total: u64,
    pub bytes_per_sec: u64,
    pub eta_secs: Option<u64>,
}

/// Sent at most a few times a second with the bytes of every upload that moved since the
/// last batch: with 1,000 items the UI gets one event, not a thousand.
#[derive(Debug, Clone, Serialize, Type, Event)]
#[tauri_specta(event_name = "reelup://progress")]
#[serde(rename_all = "camelCase")]
pub struct ProgressBatch {
    pub items: Vec<ProgressTick>,
}

/// Sent when an uploading item's requests begin waiting to try again (`why`: the server
/// cannot be reached, or had trouble), and again with `None` when they get through. Its
/// row says so instead of a speed that stopped moving; a run that ends ends the wait.
#[derive(Debug, Clone, Serialize, Type, Event)]
#[tauri_specta(event_name = "reelup://waiting")]
#[serde(rename_all = "camelCase")]
pub struct UploadWaiting {
    pub id: i64,
    pub why: Option<String>,
}

/// Sent when an item leaves the queue and history (removed by the user).
#[derive(Debug, Clone, Serialize, Type, Event)]
#[tauri_specta(event_name = "reelup://removed")]
#[serde(rename_all = "camelCase")]
pub struct RemovedItem {
    pub id: i64,
}

/// A dropped path that is not going up, and why.
#[derive(Debug, Clone, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct RejectedPath {
    pub path: String,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct AddedFiles {
    pub added: Vec<UploadItem>,
    pub rejected: Vec<RejectedPath>,
}

/// Where new uploads go (the default profile), or why they cannot go anywhere yet; also
/// sent when that changes.
#[derive(Debug, Clone, Serialize, Type, Event)]
#[tauri_specta(event_name = "reelup://connection")]
#[serde(rename_all = "camelCase")]
pub struct Connection {
    pub profile: Option<String>,
    pub endpoint: Option<String>,
    pub cdn: Option<String>,
    pub problem: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Type)]
#[serde(rename_all = "kebab-case")]
pub enum Flavour {
    ReelupServer,
    Companion,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Type)]
#[serde(rename_all = "lowercase")]
pub enum AfterUpload {
    Leave,
    Move,
}

#[derive(Debug, Clone, Serialize, Deserialize, Type)]
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
#[derive(Debug, Clone, Serialize, Deserialize, Type)]
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
    /// Videos whose index is at the end: re-laid always, asked about, or left (off).
    #[serde(default)]
    pub faststart: FaststartSetting,
    /// Ask for CloudFront signed links valid this many seconds; None for plain links.
    #[serde(default)]
    pub link_lifetime_secs: Option<u64>,
}

/// A signed link to a finished upload, fresh from the profile's reelup-server.
#[derive(Debug, Clone, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct SignedLink {
    pub url: String,
    /// Unix seconds when the link stops working.
    pub expires_at: u64,
    /// The poster frame's link, signed alike (a CDN that requires signed links refuses an
    /// unsigned poster too); None when the upload has no poster.
    pub poster_url: Option<String>,
}

#[derive(Debug, Clone, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct ProfileView {
    #[serde(flatten)]
    pub profile: ProfileInput,
    /// Whether the keyring holds a token for it. The token itself never reaches the UI.
    pub has_token: bool,
    pub is_default: bool,
}

/// Everything Settings shows; also sent when any of it changes (from this window, the CLI
/// editing the config, or a config problem found).
#[derive(Debug, Clone, Serialize, Type, Event)]
#[tauri_specta(event_name = "reelup://settings")]
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

#[derive(Debug, Clone, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionCheck {
    pub ok: bool,
    pub message: String,
    /// Who the token belongs to and their key prefix, where the endpoint says (`/whoami`).
    pub user: Option<String>,
    pub prefix: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Type)]
#[serde(rename_all = "lowercase")]
pub enum WatchState {
    Watching,
    Missing,
    Unreadable,
}

#[derive(Debug, Clone, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct WatchStatus {
    pub profile: String,
    pub path: String,
    pub state: WatchState,
    pub message: Option<String>,
}

/// Every watched folder's state, sent when one of them changes.
#[derive(Debug, Clone, Serialize, Type, Event)]
#[tauri_specta(event_name = "reelup://watch")]
pub struct WatchStatuses(pub Vec<WatchStatus>);

#[derive(Debug, Clone, Serialize, Deserialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct AppOptions {
    pub close_to_tray: bool,
    pub start_at_login: bool,
}

/// This build's version and its update channel; sent when a check finds a newer signed
/// release.
#[derive(Debug, Clone, Serialize, Type, Event)]
#[tauri_specta(event_name = "reelup://update")]
#[serde(rename_all = "camelCase")]
pub struct UpdateStatus {
    pub version: String,
    /// False for builds from source: only packages carry an update key and a feed.
    pub updates_enabled: bool,
    /// A newer release whose manifest was read; its package is verified when downloaded.
    pub available: Option<AvailableUpdate>,
}

#[derive(Debug, Clone, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct AvailableUpdate {
    pub version: String,
    pub notes: Option<String>,
}

/// What an invite link would connect to, shown for the user to agree to before anything
/// is redeemed. Sent when an invite link is opened (from a browser, a chat, or the command
/// line); nothing is connected until the user agrees.
// Deserialize: only so tests can read what the command answered back into this type.
#[derive(Clone, Serialize, Deserialize, Type, Event)]
#[tauri_specta(event_name = "reelup://invite")]
#[serde(rename_all = "camelCase")]
pub struct InvitePreview {
    /// The link itself, to hand back to `accept_invite` once the user agrees. It holds the
    /// one-time code, so `Debug` leaves it out.
    pub link: String,
    pub endpoint: String,
    /// Where the endpoint connects, as the panel shows it: the host on its own (an
    /// internationalised name as punycode), with the port when not the default.
    pub host: String,
    pub cdn: String,
    /// The CDN's host, as `host`.
    pub cdn_host: String,
    pub profile: String,
    /// Whether a profile of that name exists already (its endpoint and CDN would change).
    pub replaces: bool,
    /// The existing profile's host now, when it `replaces` one.
    pub previous_host: Option<String>,
    /// The existing profile's watch folders: once accepted, they upload to `host`.
    pub watch_folders: Vec<String>,
}

/// By hand, so that the link's one-time code never reaches a log or a panic message.
impl std::fmt::Debug for InvitePreview {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InvitePreview")
            .field("link", &"***")
            .field("endpoint", &self.endpoint)
            .field("host", &self.host)
            .field("cdn", &self.cdn)
            .field("cdn_host", &self.cdn_host)
            .field("profile", &self.profile)
            .field("replaces", &self.replaces)
            .field("previous_host", &self.previous_host)
            .field("watch_folders", &self.watch_folders)
            .finish()
    }
}

#[derive(Debug, Clone, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct AcceptedInvite {
    pub profile: String,
    pub user: String,
    pub check: ConnectionCheck,
}
