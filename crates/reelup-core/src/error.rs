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
        "{}: is a symbolic link; files in watched folders are never followed through links, so it is not uploaded. Put the video itself in the folder to upload it",
        path.display()
    )]
    Symlink { path: PathBuf },
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
            Self::InsecureUrl { .. } => "insecure_url",
            Self::EndpointChanged { .. } => "endpoint_changed",
            Self::ProfileGone { .. } => "profile_gone",
            Self::Symlink { .. } => "symlink",
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
