use std::path::PathBuf;

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

    #[error("{message}")]
    Queue { message: String },

    #[error(
        "the store holds different bytes than were sent (ETag {got}, expected {expected}); the part is sent again"
    )]
    Integrity { expected: String, got: String },

    #[error("the storage server could not be reached ({reason}); check the network and try again")]
    StorageUnreachable { reason: String },
}

impl UploadError {
    /// A stable, machine-readable name for the UI and `--json` output; never parse messages.
    pub fn code(&self) -> &'static str {
        match self {
            Self::FileNotFound { .. } => "file_not_found",
            Self::FileUnreadable { .. } => "file_unreadable",
            Self::NotAFile { .. } => "not_a_file",
            Self::FileChanged { .. } => "file_changed",
            Self::EndpointUnreachable { .. } => "endpoint_unreachable",
            Self::Unauthorized { .. } => "unauthorized",
            Self::Endpoint { .. } => "endpoint_error",
            Self::Storage { .. } => "storage_error",
            Self::StorageUnreachable { .. } => "storage_unreachable",
            Self::Integrity { .. } => "integrity",
            Self::Queue { .. } => "queue",
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
        _ => "",
    };
    match (message.is_empty(), hint.is_empty()) {
        (true, true) => "no details given".into(),
        (false, true) => message.to_owned(),
        (true, false) => hint.to_owned(),
        (false, false) => format!("{message} ({hint})"),
    }
}
