//! One run of one item: check the file is the one queued and its profile still points at
//! its endpoint, hand it to the engine (one POST, or multipart with the store as its part
//! ledger), and record where it ended up.

use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;

use super::store::{ItemState, Operation, QueueItem};
use super::{Ended, QueueEvent, UploadQueue, bound};
use crate::engine::progress::ProgressMeter;
use crate::engine::{FileUpload, FinishedPart, MultipartUpload, PartLedger, Retrier, Source};
use crate::media::faststart::{self, FaststartSetting, IndexPosition, Layout, Mp4Problem};
use crate::{
    FileMeta, Fingerprint, PresignEndpoint, Progress, ProgressFn, StreamingUrlBase, UploadError,
    content_type_for, media::details_metadata,
};

/// What an uploading item is waiting for, in a creator's words (the detail is in the log).
pub fn waiting_words(failure: &UploadError) -> String {
    if failure.is_offline() {
        "Waiting for the server: it cannot be reached (it is down, or the network is); \
         this goes on by itself when it is back"
            .into()
    } else {
        "Waiting for the server: it had trouble and is asked again shortly".into()
    }
}

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
        let source = self.prepare(item).await?;
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
            // The stream's size: a re-laid file may be a little longer or shorter.
            size: source.len(),
            part_size: None,
            metadata: item
                .details
                .as_ref()
                .map(details_metadata)
                .unwrap_or_default(),
            crc64nvme: None,
        };
        let progress = self.progress_reporter(item.id, source.len(), item.confirmed);
        let events = self.events.clone();
        let id = item.id;
        let retry = Retrier::new(self.options.retry, self.options.offline_patience).observed(
            Box::new(move |failure| {
                let _ = events.send(QueueEvent::Waiting {
                    id,
                    why: failure.map(waiting_words),
                });
            }),
        );
        let file = FileUpload {
            endpoint: &endpoint,
            endpoint_url: &item.target.endpoint,
            cdn: &item.target.cdn,
            source: &source,
            meta: &meta,
            wire: &self.wire,
            retry: &retry,
            progress: &progress,
            stop,
        };
        let key =
            if source.len() < self.options.upload.multipart_threshold && item.upload_id.is_none() {
                file.post().await?
            } else {
                let ledger = ItemLedger {
                    queue: self,
                    id: item.id,
                };
                file.multipart(&ledger, resumable(item), self.part_size())
                    .await?
            };
        let Some(uploaded) = key else {
            return Ok(Ended::Stopped);
        };
        let url = StreamingUrlBase::new(&item.target.cdn).url_for(&uploaded.key);
        self.store()
            .finish(item.id, &uploaded.key, &url, uploaded.verified)?;
        Ok(Ended::Done)
    }

    /// The bytes to send: where the file keeps its index is looked at, and the layout
    /// decided once (by the user's choice on the item, else the profile's setting) and
    /// recorded before the first byte, so a resumed upload sends the same bytes. The layout
    /// is rebuilt from the file on every run: it is the same for the same file.
    async fn prepare(&self, item: &QueueItem) -> Result<Source, UploadError> {
        let setting = self.faststart_setting(&item.target);
        let wanted = item.layout.unwrap_or(match setting {
            FaststartSetting::Off => Layout::Original,
            FaststartSetting::Ask | FaststartSetting::Always => Layout::Faststart,
        });
        let path = item.path.clone();
        let prepared = tokio::task::spawn_blocking(move || faststart::prepare(&path, wanted))
            .await
            .map_err(|e| UploadError::FileUnreadable {
                path: item.path.clone(),
                source: std::io::Error::other(e),
            })?;
        let prepared = match prepared {
            Ok(p) => p,
            Err(Mp4Problem::Io(e)) => {
                return Err(UploadError::FileUnreadable {
                    path: item.path.clone(),
                    source: e,
                });
            }
            Err(problem) => {
                self.store()
                    .set_media(item.id, Some(IndexPosition::Damaged), item.layout)?;
                return Err(UploadError::Mp4Damaged {
                    path: item.path.clone(),
                    problem: problem.to_string(),
                });
            }
        };
        if item.layout.is_none()
            && setting == FaststartSetting::Ask
            && prepared.layout == Layout::Faststart
        {
            self.store()
                .set_media(item.id, Some(prepared.position), None)?;
            return Err(UploadError::FaststartUndecided {
                path: item.path.clone(),
            });
        }
        // A file chosen for faststart whose index is already first (or that is no MP4)
        // goes up as it is, and its layout says so.
        self.store()
            .set_media(item.id, Some(prepared.position), Some(prepared.layout))?;
        Ok(prepared.source)
    }

    /// The faststart setting of an item's profile as it is now; the queue's own for items
    /// with no profile.
    fn faststart_setting(&self, target: &crate::queue::store::Target) -> FaststartSetting {
        match (&self.profiles, &target.profile) {
            (Some(profiles), Some(name)) => profiles(name)
                .ok()
                .flatten()
                .map(|t| t.faststart)
                .unwrap_or(self.options.faststart),
            _ => self.options.faststart,
        }
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
            checksummed: item.checksummed,
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
            .set_multipart(self.id, upload)
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
