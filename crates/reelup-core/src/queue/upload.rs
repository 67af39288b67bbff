//! One run of one item: check the file is the one queued and its profile still points at
//! its endpoint, hand it to the engine (one POST, or multipart with the store as its part
//! ledger), and record where it ended up.

use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;

use super::store::{ItemState, Operation, QueueItem};
use super::{Ended, QueueEvent, UploadQueue, bound};
use crate::engine::progress::ProgressMeter;
use crate::engine::{FileUpload, FinishedPart, MultipartUpload, PartLedger, Retrier};
use crate::{
    FileMeta, Fingerprint, PresignEndpoint, Progress, ProgressFn, StreamingUrlBase, UploadError,
    content_type_for, media::details_metadata,
};

impl<E: PresignEndpoint> UploadQueue<E> {
    pub(super) async fn upload(
        &self,
        item: &QueueItem,
        stop: &CancellationToken,
    ) -> Result<Ended, UploadError> {
        check_unchanged(item).await?;
        // Checked before any request: the token is the profile's, and goes only where the
        // profile points now.
        bound(self.profiles.as_ref(), &item.target)?;
        self.store().apply(item.id, Operation::Start)?;
        self.changed(item.id);
        let endpoint = (self.connect)(&item.target);
        let meta = FileMeta {
            filename: item
                .path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "video".into()),
            content_type: content_type_for(&item.path),
            size: item.size,
            part_size: None,
            metadata: item
                .details
                .as_ref()
                .map(details_metadata)
                .unwrap_or_default(),
        };
        let progress = self.progress_reporter(item.id, item.size, item.confirmed);
        let retry = Retrier::new(self.options.retry, self.options.offline_patience);
        let file = FileUpload {
            endpoint: &endpoint,
            endpoint_url: &item.target.endpoint,
            cdn: &item.target.cdn,
            path: &item.path,
            meta: &meta,
            wire: &self.wire,
            retry: &retry,
            progress: &progress,
            stop,
        };
        let key = if item.size < self.options.upload.multipart_threshold && item.upload_id.is_none()
        {
            file.post().await?
        } else {
            let ledger = ItemLedger {
                queue: self,
                id: item.id,
            };
            file.multipart(&ledger, resumable(item), self.part_size())
                .await?
        };
        let Some(key) = key else {
            return Ok(Ended::Stopped);
        };
        let url = StreamingUrlBase::new(&item.target.cdn).url_for(&key);
        self.store().finish(item.id, &key, &url)?;
        Ok(Ended::Done)
    }

    /// Reports an item's progress as events, at most ten a second.
    fn progress_reporter(&self, id: i64, total: u64, already: u64) -> ProgressFn {
        let events = self.events.clone();
        let meter = Mutex::new(ProgressMeter::new(
            tokio::time::Instant::now(),
            already,
            total,
        ));
        Arc::new(move |p: Progress| {
            let now = tokio::time::Instant::now();
            let rate = meter
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .observe(now, p.sent);
            if let Some(rate) = rate {
                let _ = events.send(QueueEvent::Progress {
                    id,
                    sent: p.sent,
                    total,
                    bytes_per_sec: rate.bytes_per_sec,
                    eta_secs: rate.eta_secs,
                });
            }
        })
    }
}

/// The file must still be the one queued: same fingerprint (size, mtime, sampled content).
async fn check_unchanged(item: &QueueItem) -> Result<(), UploadError> {
    let path = item.path.clone();
    let now = {
        let p = path.clone();
        tokio::task::spawn_blocking(move || Fingerprint::of(&p))
            .await
            .map_err(|e| UploadError::FileUnreadable {
                path: path.clone(),
                source: std::io::Error::other(e),
            })?
    };
    match now {
        Ok(fp) if fp == item.fingerprint => Ok(()),
        Ok(_) => Err(UploadError::FileChanged { path }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(UploadError::FileNotFound { path })
        }
        Err(e) => Err(UploadError::FileUnreadable { path, source: e }),
    }
}

/// The multipart upload the item already has on record, if any.
fn resumable(item: &QueueItem) -> Option<MultipartUpload> {
    match (&item.key, &item.upload_id, item.part_size) {
        (Some(key), Some(upload_id), Some(part_size)) => Some(MultipartUpload {
            key: key.clone(),
            upload_id: upload_id.clone(),
            part_size,
        }),
        _ => None,
    }
}

/// An item's multipart upload, recorded in the queue's store.
struct ItemLedger<'q, E> {
    queue: &'q UploadQueue<E>,
    id: i64,
}

impl<E: PresignEndpoint> PartLedger for ItemLedger<'_, E> {
    fn started(&self, upload: &MultipartUpload) -> Result<(), UploadError> {
        self.queue
            .store()
            .set_multipart(self.id, &upload.key, &upload.upload_id, upload.part_size)
            .map_err(UploadError::from)
    }

    fn parts(&self) -> Result<Vec<FinishedPart>, UploadError> {
        self.queue.store().parts(self.id).map_err(UploadError::from)
    }

    fn record(&self, part: &FinishedPart) -> Result<(), UploadError> {
        self.queue
            .store()
            .record_part(self.id, part)
            .map_err(UploadError::from)
    }

    fn forget(&self, number: u32) -> Result<(), UploadError> {
        self.queue
            .store()
            .remove_part(self.id, number)
            .map_err(UploadError::from)
    }

    fn completing(&self) -> Result<(), UploadError> {
        self.queue
            .store()
            .set_state(self.id, ItemState::Completing, None)?;
        self.queue.changed(self.id);
        Ok(())
    }
}
