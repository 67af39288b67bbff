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

    #[error("the storage server refused the upload ({code}, HTTP {status}): {message}")]
    Storage {
        status: u16,
        code: String,
        message: String,
    },

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
        }
    }
}
