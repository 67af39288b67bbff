use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use futures::{StreamExt, TryStreamExt, stream};
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_util::io::ReaderStream;

use crate::presign::root_cause;
use crate::{
    CompletedPart, FileMeta, PartPlan, PresignEndpoint, StreamingUrlBase, UploadError,
    content_type_for, s3_error,
};

const MIB: u64 = 1024 * 1024;

#[derive(Debug, Clone, Copy)]
pub struct UploadOptions {
    /// Files of at least this size go up as multipart; smaller ones by one POST.
    pub multipart_threshold: u64,
    /// Preferred part size; [`PartPlan`] raises it to fit S3's part limit.
    pub part_size: u64,
    /// Parts of one file sent at once. Memory is bounded by this times the part size.
    pub parts_in_flight: usize,
}

impl Default for UploadOptions {
    fn default() -> Self {
        Self {
            multipart_threshold: 16 * MIB,
            part_size: 16 * MIB,
            parts_in_flight: 4,
        }
    }
}

/// Called as bytes go out; callers throttle it for display.
pub type ProgressFn = Arc<dyn Fn(Progress) + Send + Sync>;

/// Bytes of one file sent so far: streamed bytes for a POST, finished parts for multipart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Progress {
    pub sent: u64,
    pub total: u64,
}

/// A finished upload and where viewers stream it from.
#[derive(Debug, Clone, Serialize)]
pub struct UploadedVideo {
    pub file: PathBuf,
    pub key: String,
    pub url: String,
    pub size: u64,
}

/// Sends files to the object store through presigned requests from `E`.
#[derive(Debug)]
pub struct Uploader<E> {
    endpoint: Arc<E>,
    http: reqwest::Client,
    cdn: StreamingUrlBase,
    options: UploadOptions,
}

impl<E> Clone for Uploader<E> {
    fn clone(&self) -> Self {
        Self {
            endpoint: self.endpoint.clone(),
            http: self.http.clone(),
            cdn: self.cdn.clone(),
            options: self.options,
        }
    }
}

/// What identifies the file's contents cheaply; a change between start and finish means
/// the object may mix old and new bytes.
#[derive(Debug, PartialEq, Eq)]
struct Snapshot {
    len: u64,
    modified: Option<SystemTime>,
}

async fn snapshot(path: &Path) -> Result<Snapshot, UploadError> {
    let meta = tokio::fs::metadata(path)
        .await
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => UploadError::FileNotFound {
                path: path.to_owned(),
            },
            _ => UploadError::FileUnreadable {
                path: path.to_owned(),
                source: e,
            },
        })?;
    if meta.is_dir() {
        return Err(UploadError::NotAFile {
            path: path.to_owned(),
        });
    }
    Ok(Snapshot {
        len: meta.len(),
        modified: meta.modified().ok(),
    })
}

async fn open(path: &Path) -> Result<tokio::fs::File, UploadError> {
    tokio::fs::File::open(path)
        .await
        .map_err(|e| UploadError::FileUnreadable {
            path: path.to_owned(),
            source: e,
        })
}

async fn read_range(path: &Path, start: u64, len: u64) -> Result<Vec<u8>, UploadError> {
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
    Ok(buf)
}

fn storage_unreachable(e: reqwest::Error) -> UploadError {
    UploadError::StorageUnreachable {
        reason: root_cause(&e),
    }
}

async fn storage_failure(resp: reqwest::Response) -> UploadError {
    let status = resp.status().as_u16();
    let body = resp.text().await.unwrap_or_default();
    match s3_error::parse(&body) {
        Some((code, message)) => UploadError::Storage {
            status,
            code,
            message,
        },
        None => UploadError::Storage {
            status,
            code: "Unknown".into(),
            message: body.chars().take(200).collect(),
        },
    }
}

impl<E: PresignEndpoint> Uploader<E> {
    pub fn new(
        endpoint: E,
        http: reqwest::Client,
        cdn: StreamingUrlBase,
        options: UploadOptions,
    ) -> Self {
        Self {
            endpoint: Arc::new(endpoint),
            http,
            cdn,
            options,
        }
    }

    pub fn streaming_url(&self, key: &str) -> String {
        self.cdn.url_for(key)
    }

    /// Uploads one file and returns its streaming URL.
    pub async fn upload(
        &self,
        path: &Path,
        on_progress: &ProgressFn,
    ) -> Result<UploadedVideo, UploadError> {
        let before = snapshot(path).await?;
        // Opening now turns a permission problem into a clear error before any request.
        drop(open(path).await?);
        let filename = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "video".into());
        let meta = FileMeta {
            filename,
            content_type: content_type_for(path),
            size: before.len,
        };
        on_progress(Progress {
            sent: 0,
            total: before.len,
        });
        let key = if before.len < self.options.multipart_threshold {
            self.upload_post(path, &meta, on_progress).await?
        } else {
            self.upload_multipart(path, &meta, on_progress).await?
        };
        if snapshot(path).await? != before {
            return Err(UploadError::FileChanged {
                path: path.to_owned(),
            });
        }
        Ok(UploadedVideo {
            file: path.to_owned(),
            url: self.cdn.url_for(&key),
            key,
            size: before.len,
        })
    }

    async fn upload_post(
        &self,
        path: &Path,
        meta: &FileMeta,
        on_progress: &ProgressFn,
    ) -> Result<String, UploadError> {
        let policy = self.endpoint.post_policy(meta).await?;
        let key = policy.key().unwrap_or_default().to_owned();
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
        let part = reqwest::multipart::Part::stream_with_length(
            reqwest::Body::wrap_stream(body),
            meta.size,
        )
        .file_name(meta.filename.clone())
        .mime_str(&meta.content_type)
        .map_err(storage_unreachable)?;
        // S3 ignores every field after `file`, so it goes last.
        form = form.part("file", part);
        let resp = self
            .http
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
        Ok(key)
    }

    async fn upload_multipart(
        &self,
        path: &Path,
        meta: &FileMeta,
        on_progress: &ProgressFn,
    ) -> Result<String, UploadError> {
        let start = self.endpoint.create_multipart(meta).await?;
        let plan = PartPlan::new(meta.size, self.options.part_size);
        let sent = AtomicU64::new(0);
        let result: Result<Vec<CompletedPart>, UploadError> = stream::iter(plan.parts())
            .map(|(number, range)| {
                let (key, upload_id, sent) = (&start.key, &start.upload_id, &sent);
                async move {
                    let signed = self.endpoint.sign_part(key, upload_id, number).await?;
                    let bytes = read_range(path, range.start, range.end - range.start).await?;
                    let len = bytes.len() as u64;
                    let resp = self
                        .http
                        .put(&signed.url)
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
                            message: "the store accepted a part but sent no ETag; \
                                      if it is behind a proxy or CORS, expose the ETag header"
                                .into(),
                        })?;
                    let now = sent.fetch_add(len, Ordering::Relaxed) + len;
                    on_progress(Progress {
                        sent: now,
                        total: meta.size,
                    });
                    Ok(CompletedPart {
                        part_number: number,
                        etag,
                    })
                }
            })
            .buffer_unordered(self.options.parts_in_flight.max(1))
            .try_collect()
            .await;
        let mut parts = match result {
            Ok(parts) => parts,
            Err(e) => {
                // Nothing records finished parts yet, so an unfinished upload would only
                // cost storage until a lifecycle rule removes it.
                if let Err(abort) = self.endpoint.abort(&start.key, &start.upload_id).await {
                    tracing::warn!(error = %abort, "could not abort the multipart upload");
                }
                return Err(e);
            }
        };
        parts.sort_by_key(|p| p.part_number);
        self.endpoint
            .complete(&start.key, &start.upload_id, &parts)
            .await?;
        Ok(start.key)
    }
}
