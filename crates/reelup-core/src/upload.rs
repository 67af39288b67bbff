use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use futures::{StreamExt, TryStreamExt, stream};
use serde::Serialize;

use crate::transfer::Pacing;
use crate::{
    CompletedPart, FileMeta, PartPlan, PresignEndpoint, StreamingUrlBase, UploadError,
    content_type_for, transfer,
};

const MIB: u64 = 1024 * 1024;

#[derive(Debug, Clone, Copy)]
pub struct UploadOptions {
    /// Files of at least this size go up as multipart; smaller ones by one POST.
    pub multipart_threshold: u64,
    /// Preferred part size; [`PartPlan`] raises it to fit S3's part limit.
    pub part_size: u64,
    /// Parts of one file sent at once. Parts are streamed from disk, so memory does not
    /// grow with the part size.
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
        drop(transfer::open(path).await?);
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
        transfer::post_object(
            &self.http,
            &policy,
            path,
            meta,
            on_progress,
            &Pacing::default(),
        )
        .await?;
        Ok(policy.key().unwrap_or_default().to_owned())
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
                    let len = range.end - range.start;
                    let etag = transfer::put_part(
                        &self.http,
                        &signed.url,
                        path,
                        range.start,
                        len,
                        &Pacing::default(),
                    )
                    .await?;
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
