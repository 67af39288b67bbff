use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Defines [`ErrorCode`] from one list, so the variants, their wire strings and
/// [`ErrorCode::ALL`] cannot drift apart.
macro_rules! error_codes {
    ($($(#[$doc:meta])* $variant:ident = $wire:literal,)*) => {
        /// Every error code Reelup gives out, in one closed set: the app's `IpcError`, the
        /// queue's stored errors and the CLI's `--json` output all carry one of these.
        ///
        /// What must stay true: the wire strings never change. They are stored with failed
        /// items in the queue database and read back by later versions, and the UI and
        /// scripts branch on them. Add codes; do not rename them.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[cfg_attr(feature = "specta", derive(specta::Type))]
        pub enum ErrorCode {
            $($(#[$doc])* #[serde(rename = $wire)] $variant,)*
        }

        impl ErrorCode {
            /// Every code, for parsing stored codes and for tests.
            pub const ALL: &[ErrorCode] = &[$(Self::$variant),*];

            /// The wire string, as serde writes it.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $wire,)*
                }
            }
        }
    };
}

error_codes! {
    // A file to upload.
    FileNotFound = "file_not_found",
    FileUnreadable = "file_unreadable",
    NotAFile = "not_a_file",
    FileChanged = "file_changed",
    Symlink = "symlink",
    /// An MP4/MOV whose boxes do not add up (truncated or corrupt): held until the user
    /// says to upload it as it is.
    Mp4Damaged = "mp4_damaged",
    /// A file whose index is at the end, under a profile set to ask: held until the user
    /// chooses to re-lay it (faststart) or upload it as it is.
    FaststartUndecided = "faststart_undecided",
    // The presign endpoint.
    EndpointUnreachable = "endpoint_unreachable",
    Unauthorized = "unauthorized",
    EndpointError = "endpoint_error",
    InsecureUrl = "insecure_url",
    EndpointChanged = "endpoint_changed",
    TokenRefused = "token_refused",
    NotReelupServer = "not_reelup_server",
    RateLimited = "rate_limited",
    /// The endpoint cannot sign CloudFront links: a plain Companion, or a reelup-server
    /// without a CloudFront key.
    LinksUnavailable = "links_unavailable",
    // The store (S3).
    StorageError = "storage_error",
    StorageUnreachable = "storage_unreachable",
    Integrity = "integrity",
    /// The store no longer holds the multipart upload an item was resuming (completed by a
    /// run that crashed before recording it, aborted, or expired). The engine recovers by
    /// itself; this code is seen only if the upload vanishes again in the same run.
    UploadGone = "upload_gone",
    // The queue database.
    Queue = "queue",
    QueueUnusable = "queue_unusable",
    NoSuchItem = "no_such_item",
    /// Removing an item that is still queued, uploading or paused.
    StillActive = "still_active",
    /// Poster frame bytes that are not a JPEG of an acceptable size.
    PosterInvalid = "poster_invalid",
    // Profiles and the config file.
    ConfigInvalid = "config_invalid",
    ConfigUnreadable = "config_unreadable",
    ConfigUnwritable = "config_unwritable",
    /// A value typed by the user is refused; `IpcError::field` says which, where it is a
    /// profile's.
    InvalidInput = "invalid_input",
    NoProfile = "no_profile",
    ProfileGone = "profile_gone",
    NoCdn = "no_cdn",
    // The OS keyring.
    NoKeyring = "no_keyring",
    KeyringLocked = "keyring_locked",
    KeyringFailed = "keyring_failed",
    /// The profile's stored token was stored for another endpoint than the profile's now:
    /// it is not sent (log in to the new endpoint, or set the endpoint back).
    TokenEndpointMismatch = "token_endpoint_mismatch",
    // Invite links.
    InviteLinkInvalid = "invite_link_invalid",
    InviteInvalid = "invite_invalid",
    InviteExpired = "invite_expired",
    InviteUsed = "invite_used",
    InviteRevoked = "invite_revoked",
    // The desktop: clipboard, browser, login item, updates.
    Clipboard = "clipboard",
    Opener = "opener",
    Autostart = "autostart",
    UpdateSignature = "update_signature",
    UpdateUnreachable = "update_unreachable",
    UpdateManifest = "update_manifest",
    UpdateInstall = "update_install",
    UpdateDisabled = "update_disabled",
    UpdateNone = "update_none",
    /// A code this version does not know (stored by another version), or an error with
    /// none recorded.
    Unknown = "unknown",
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Against its wire string: what `--json` output and stored rows hold, so tests can compare
/// a code with the text a consumer sees.
impl PartialEq<&str> for ErrorCode {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// A code string that is not one of [`ErrorCode`]'s.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown error code {0:?}")]
pub struct UnknownErrorCode(pub String);

impl std::str::FromStr for ErrorCode {
    type Err = UnknownErrorCode;
    fn from_str(s: &str) -> Result<Self, UnknownErrorCode> {
        Self::ALL
            .iter()
            .copied()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| UnknownErrorCode(s.to_owned()))
    }
}

impl From<&crate::endpoint::identity::CheckError> for ErrorCode {
    fn from(e: &crate::endpoint::identity::CheckError) -> Self {
        use crate::endpoint::identity::CheckError;
        match e {
            CheckError::Unreachable { .. } => Self::EndpointUnreachable,
            CheckError::Refused { .. } => Self::TokenRefused,
            CheckError::NotReelupServer { .. } => Self::NotReelupServer,
            CheckError::Unexpected { .. } => Self::EndpointError,
        }
    }
}

/// Why an upload did not finish. Every message names the problem and what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("{}: no such file; check the path", path.display())]
    FileNotFound { path: PathBuf },

    #[error("{}: cannot read the file ({source}); check its permissions", path.display())]
    FileUnreadable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{}: is a directory, not a video file", path.display())]
    NotAFile { path: PathBuf },

    #[error("{}: the file changed while it was uploading; upload it again once it is complete", path.display())]
    FileChanged { path: PathBuf },

    #[error(
        "cannot reach the presign endpoint at {endpoint} ({reason}); check that it is running and the URL is right"
    )]
    EndpointUnreachable { endpoint: String, reason: String },

    #[error(
        "the presign endpoint {endpoint} rejected the token (HTTP 401); set the right token (REELUP_TOKEN)"
    )]
    Unauthorized { endpoint: String },

    #[error("the presign endpoint answered {status} to {route}: {message}")]
    Endpoint {
        route: String,
        status: u16,
        message: String,
    },

    #[error(
        "the storage server refused the upload ({code}, HTTP {status}): {}",
        explain(code, message)
    )]
    Storage {
        status: u16,
        code: String,
        message: String,
        /// Seconds the store asked to wait (Retry-After).
        retry_after: Option<u64>,
    },

    /// The queue database failed while the upload was being handled; its own code
    /// (`queue`, `queue_unusable`, `no_such_item`) goes with it.
    #[error(transparent)]
    Queue(#[from] crate::queue::store::QueueError),

    #[error(
        "the store holds different bytes than were sent (ETag {got}, expected {expected}); the part is sent again"
    )]
    Integrity { expected: String, got: String },

    #[error(
        "the store no longer holds this multipart upload ({said}): it was completed, aborted or expired; the upload starts again"
    )]
    UploadGone {
        /// Who said so, and how (`reelup-server: no_such_upload (HTTP 404)`, `S3:
        /// NoSuchUpload (HTTP 404)`).
        said: String,
    },

    #[error("the storage server could not be reached ({reason}); check the network and try again")]
    StorageUnreachable {
        reason: String,
        /// A connection was made (and then reset, cut or stalled): the store exists and
        /// the network works, so this is passing trouble, retried like any other; not a
        /// store that refused the connection outright.
        connected: bool,
    },

    #[error(
        "the presign endpoint {endpoint} handed back a plain http:// {what} (to {host}); Reelup sends videos to a remote store only over https. Configure the endpoint's store with an https:// URL"
    )]
    InsecureUrl {
        endpoint: String,
        what: &'static str,
        /// Scheme and host only: the whole URL carries a signature.
        host: String,
    },

    #[error(
        "the profile {profile:?}'s endpoint changed from {from} to {to}; this upload was queued for {from} and is held so the profile's token is not sent there. Resume it to upload it to {to}, or cancel it"
    )]
    EndpointChanged {
        profile: String,
        from: String,
        to: String,
    },

    #[error(
        "the profile {profile:?} this upload was queued with no longer exists (or the profiles file cannot be read); add the profile back and resume the upload, or cancel it"
    )]
    ProfileGone { profile: String },

    #[error(
        "the upload for profile {profile:?} is held: the profiles file cannot be used ({problem}); fix the file, then resume the upload"
    )]
    ProfilesUnusable {
        profile: String,
        problem: crate::config::ConfigError,
    },

    #[error(
        "the endpoint {endpoint} cannot sign links: {why}; share the plain streaming URL, or use a reelup-server with a CloudFront key ([cloudfront] in its config)"
    )]
    LinksUnavailable { endpoint: String, why: &'static str },

    #[error(
        "{}: is a symbolic link; files in watched folders are never followed through links, so it is not uploaded. Put the video itself in the folder to upload it",
        path.display()
    )]
    Symlink { path: PathBuf },

    #[error("the poster frame cannot be uploaded: {reason}")]
    PosterInvalid { reason: String },
    #[error(
        "{}: this MP4/MOV is damaged: {problem}. It was not uploaded; a player may not be able to play it. To upload it unchanged anyway, choose \"Upload as is\" in the app, or run `reelup resume <id> --faststart=off` (`reelup queue` shows the id)",
        path.display()
    )]
    Mp4Damaged { path: PathBuf, problem: String },

    #[error(
        "{}: its index (moov) is after the media, so viewers wait for the whole index before it plays; the profile's faststart setting is \"ask\". Choose \"Make it start instantly\" or \"Upload as is\" in the app, or run `reelup resume <id> --faststart=always` (or `--faststart=off`; `reelup queue` shows the id)",
        path.display()
    )]
    FaststartUndecided { path: PathBuf },
}

impl UploadError {
    /// A stable, machine-readable name for the UI and `--json` output; never parse messages.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::FileNotFound { .. } => ErrorCode::FileNotFound,
            Self::FileUnreadable { .. } => ErrorCode::FileUnreadable,
            Self::NotAFile { .. } => ErrorCode::NotAFile,
            Self::FileChanged { .. } => ErrorCode::FileChanged,
            Self::EndpointUnreachable { .. } => ErrorCode::EndpointUnreachable,
            Self::Unauthorized { .. } => ErrorCode::Unauthorized,
            Self::Endpoint { .. } => ErrorCode::EndpointError,
            Self::Storage { .. } => ErrorCode::StorageError,
            Self::StorageUnreachable { .. } => ErrorCode::StorageUnreachable,
            Self::Integrity { .. } => ErrorCode::Integrity,
            Self::UploadGone { .. } => ErrorCode::UploadGone,
            Self::Queue(e) => e.code(),
            Self::InsecureUrl { .. } => ErrorCode::InsecureUrl,
            Self::EndpointChanged { .. } => ErrorCode::EndpointChanged,
            Self::ProfileGone { .. } => ErrorCode::ProfileGone,
            // The file's own code: `config_invalid` (with its line) or `config_unreadable`.
            Self::ProfilesUnusable { problem, .. } => problem.code(),
            Self::Symlink { .. } => ErrorCode::Symlink,
            Self::LinksUnavailable { .. } => ErrorCode::LinksUnavailable,
            Self::PosterInvalid { .. } => ErrorCode::PosterInvalid,
            Self::Mp4Damaged { .. } => ErrorCode::Mp4Damaged,
            Self::FaststartUndecided { .. } => ErrorCode::FaststartUndecided,
        }
    }
}

/// S3's terse error codes, said plainly, with what to do.
fn explain(code: &str, message: &str) -> String {
    let hint = match code {
        "SignatureDoesNotMatch" => {
            "the presign endpoint signed for different credentials or a different request; check its AWS keys and region"
        }
        "RequestTimeTooSkewed" => "this computer's clock is off; turn on automatic time (NTP)",
        "AccessDenied" => "the signing identity may not write here; check its IAM policy",
        "ExpiredToken" => {
            "the endpoint's temporary AWS credentials ran out; it should refresh them"
        }
        "EntityTooLarge" => "the file is larger than the server allows",
        "InvalidPolicyDocument" => "the upload did not match the signed policy",
        "NoSuchUpload" => {
            "the multipart upload is gone (completed, aborted or expired); it starts again"
        }
        _ => "",
    };
    match (message.is_empty(), hint.is_empty()) {
        (true, true) => "no details given".into(),
        (false, true) => message.to_owned(),
        (true, false) => hint.to_owned(),
        (false, false) => format!("{message} ({hint})"),
    }
}

/// `text` with the query string of every URL in it cut off. Presigned URLs carry their
/// credential and signature in the query (`X-Amz-Credential`, `X-Amz-Signature`,
/// `X-Amz-Security-Token`), and error texts (reqwest's, a server's, a store's) quote URLs
/// whole; nothing stored in the queue or written to a log may carry them.
pub fn redact_urls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = find_url(rest) {
        let (before, url) = rest.split_at(start);
        out.push_str(before);
        let end = url
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | ')' | '`'))
            .unwrap_or(url.len());
        let (url, after) = url.split_at(end);
        match url.find('?') {
            Some(q) => {
                out.push_str(&url[..q]);
                out.push_str("?[redacted]");
            }
            None => out.push_str(url),
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

/// Where the next `http://` or `https://` starts, case-insensitively.
fn find_url(text: &str) -> Option<usize> {
    let lower = text.to_ascii_lowercase();
    [lower.find("http://"), lower.find("https://")]
        .into_iter()
        .flatten()
        .min()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips_through_its_wire_string() {
        for &code in ErrorCode::ALL {
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
            assert_eq!(serde_json::from_str::<ErrorCode>(&json).unwrap(), code);
            assert_eq!(code.as_str().parse::<ErrorCode>(), Ok(code));
        }
        // Codes stored by earlier versions read back as they were.
        assert_eq!("storage_error".parse(), Ok(ErrorCode::StorageError));
        assert_eq!(
            "no_such_code".parse::<ErrorCode>(),
            Err(UnknownErrorCode("no_such_code".into()))
        );
    }

    #[test]
    fn query_strings_of_urls_are_cut() {
        let text = "error sending request for url (https://s3.example.com/b/k?partNumber=1&X-Amz-Signature=abc): reset; \
                    also HTTP://h/x?X-Amz-Credential=AK and http://plain/path";
        let out = redact_urls(text);
        assert!(!out.contains("X-Amz"), "{out}");
        assert!(!out.contains("partNumber"), "{out}");
        assert!(
            out.contains("https://s3.example.com/b/k?[redacted]): reset"),
            "{out}"
        );
        assert!(out.contains("http://plain/path"), "{out}");
        assert_eq!(redact_urls("no urls here"), "no urls here");
    }
}
