//! Sending bytes to the object store with a presigned request, and reading what it says.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine;
use bytes::Bytes;
use futures::StreamExt;
use md5::{Digest, Md5};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_util::io::ReaderStream;

use crate::presign::root_cause;
use crate::{FileMeta, PostPolicy, Progress, ProgressFn, UploadError, s3_error};

pub(crate) fn storage_unreachable(e: reqwest::Error) -> UploadError {
    UploadError::StorageUnreachable {
        reason: if e.is_timeout() {
            "no answer in time".into()
        } else {
            root_cause(&e)
        },
    }
}

pub(crate) async fn storage_failure(resp: reqwest::Response) -> UploadError {
    let status = resp.status().as_u16();
    let retry_after = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let body = resp.text().await.unwrap_or_default();
    let (code, message) = s3_error::parse(&body)
        .unwrap_or_else(|| ("Unknown".into(), body.chars().take(200).collect()));
    UploadError::Storage {
        status,
        code,
        message,
        retry_after,
    }
}

pub(crate) async fn open(path: &Path) -> Result<tokio::fs::File, UploadError> {
    tokio::fs::File::open(path)
        .await
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => UploadError::FileNotFound {
                path: path.to_owned(),
            },
            _ => UploadError::FileUnreadable {
                path: path.to_owned(),
                source: e,
            },
        })
}

/// Reads `len` bytes at `start`; a file that has become shorter has changed.
pub(crate) async fn read_range(path: &Path, start: u64, len: u64) -> Result<Bytes, UploadError> {
    let unreadable = |e| UploadError::FileUnreadable {
        path: path.to_owned(),
        source: e,
    };
    let mut file = open(path).await?;
    file.seek(std::io::SeekFrom::Start(start))
        .await
        .map_err(unreadable)?;
    let mut buf = vec![0; len as usize];
    file.read_exact(&mut buf).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            UploadError::FileChanged {
                path: path.to_owned(),
            }
        } else {
            unreadable(e)
        }
    })?;
    Ok(Bytes::from(buf))
}

/// S3's ETag for bytes it stored in one piece: their MD5, quoted.
pub(crate) fn md5_etag(md5: &[u8]) -> String {
    format!("\"{}\"", hex::encode(md5))
}

/// PUTs one part to a presigned URL with its Content-MD5, so the store refuses bytes that
/// changed on the way (BadDigest), and checks the ETag it answers against the same MD5.
/// Returns the ETag.
pub(crate) async fn put_part(
    http: &reqwest::Client,
    url: &str,
    bytes: Bytes,
    timeout: std::time::Duration,
) -> Result<String, UploadError> {
    let md5 = Md5::digest(&bytes);
    let resp = http
        .put(url)
        .header(
            "content-md5",
            base64::engine::general_purpose::STANDARD.encode(md5),
        )
        .timeout(timeout)
        .body(bytes)
        .send()
        .await
        .map_err(storage_unreachable)?;
    if !resp.status().is_success() {
        return Err(storage_failure(resp).await);
    }
    let etag = resp
        .headers()
        .get(reqwest::header::ETAG)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .ok_or_else(|| UploadError::Storage {
            status: resp.status().as_u16(),
            code: "MissingETag".into(),
            message: "the store accepted a part but sent no ETag; if it is behind a proxy or \
                      CORS, expose the ETag header"
                .into(),
            retry_after: None,
        })?;
    let expected = md5_etag(&md5);
    // An ETag that is an MD5 must be ours; stores with SSE-KMS send other ETags, which
    // cannot be checked this way (Content-MD5 still guards the transfer).
    let looks_like_md5 = etag.trim_matches('"').len() == 32
        && etag
            .trim_matches('"')
            .chars()
            .all(|c| c.is_ascii_hexdigit());
    if looks_like_md5 && !etag.eq_ignore_ascii_case(&expected) {
        return Err(UploadError::Integrity {
            expected,
            got: etag,
        });
    }
    Ok(etag)
}

/// Sends a whole file with a presigned POST policy: every field, then the file.
pub(crate) async fn post_object(
    http: &reqwest::Client,
    policy: &PostPolicy,
    path: &Path,
    meta: &FileMeta,
    on_progress: &ProgressFn,
) -> Result<(), UploadError> {
    let mut form = reqwest::multipart::Form::new();
    for (name, value) in &policy.fields {
        form = form.text(name.clone(), value.clone());
    }
    let total = meta.size;
    let sent = Arc::new(AtomicU64::new(0));
    let body = {
        let (sent, report) = (sent.clone(), on_progress.clone());
        ReaderStream::with_capacity(open(path).await?, 256 * 1024).inspect(move |chunk| {
            if let Ok(chunk) = chunk {
                let now =
                    sent.fetch_add(chunk.len() as u64, Ordering::Relaxed) + chunk.len() as u64;
                report(Progress { sent: now, total });
            }
        })
    };
    let part =
        reqwest::multipart::Part::stream_with_length(reqwest::Body::wrap_stream(body), meta.size)
            .file_name(meta.filename.clone())
            .mime_str(&meta.content_type)
            .map_err(storage_unreachable)?;
    // S3 ignores every field after `file`, so it goes last.
    form = form.part("file", part);
    let resp = http
        .post(&policy.url)
        .multipart(form)
        .send()
        .await
        .map_err(storage_unreachable)?;
    if !resp.status().is_success() {
        return Err(storage_failure(resp).await);
    }
    if sent.load(Ordering::Relaxed) != meta.size {
        return Err(UploadError::FileChanged {
            path: path.to_owned(),
        });
    }
    Ok(())
}
