//! A small file in one presigned POST.
//!
//! The file is read into memory once, and its CRC-64/NVME taken from that buffer before
//! the policy is asked for: an endpoint with reelup-server's checksum extension puts it
//! into the policy, and the store refuses a file that does not match. Elsewhere the MD5 of
//! the same buffer is compared with the ETag the store answers.

use md5::{Digest, Md5};

use super::checksum::{Verification, etag_is_md5, is_md5_etag};
use super::{FileUpload, Uploaded, transfer};
use crate::{FileMeta, PresignEndpoint, UploadError, check_presigned_url};
use reelup_protocol::CRC64NVME_HEADER;

impl<E: PresignEndpoint> FileUpload<'_, E> {
    /// Sends the file with a POST policy; the object's key and what was verified, or
    /// `None` if stopped.
    pub(crate) async fn post(&self) -> Result<Option<Uploaded>, UploadError> {
        // One permit from the pool parts use, held across retries as a part holds its own:
        // the parts-in-flight limit bounds POSTs and parts together (and the memory their
        // buffers take), however many small files the scheduler runs at once.
        let Some(_permit) = self.wire.permits.acquire(self.stop).await else {
            return Ok(None);
        };
        // A missing or unreadable file is said before any request.
        drop(transfer::open(self.source.path()).await?);
        let (bytes, crc) =
            transfer::read_range(self.source, 0, self.meta.size, &self.wire.buffers).await?;
        let crc = crc.to_base64();
        let meta = FileMeta {
            crc64nvme: Some(crc.clone()),
            ..self.meta.clone()
        };
        self.retry
            .run(self.stop, || async {
                // A fresh policy per attempt: an expired one is the commonest reason to retry.
                let policy = self.endpoint.post_policy(&meta).await?;
                check_presigned_url(self.endpoint_url, &policy.url, "POST policy URL")?;
                let checked_by_store = policy.fields.get(CRC64NVME_HEADER) == Some(&crc);
                let etag = transfer::post_object(
                    &self.wire.http,
                    &policy,
                    bytes.clone(),
                    &meta,
                    self.progress,
                    &self.wire.pacing,
                )
                .await?;
                let verified = if checked_by_store {
                    Verification::FileCrc64nvme
                } else {
                    match etag.filter(|e| is_md5_etag(e)) {
                        None => Verification::Unverified,
                        Some(etag) => {
                            let sent = md5_of(bytes.clone(), self.source.path()).await?;
                            if !etag_is_md5(&etag, &sent) {
                                // Retried: the POST goes again and replaces the object.
                                return Err(UploadError::Integrity {
                                    expected: transfer::md5_etag(&sent),
                                    got: etag,
                                });
                            }
                            Verification::FileMd5
                        }
                    }
                };
                Ok(Uploaded {
                    key: policy.key().unwrap_or_default().to_owned(),
                    verified,
                })
            })
            .await
    }
}

/// The MD5 of bytes in memory, off the async threads. A hashing task that died is said as
/// such, not passed off as a mismatch.
async fn md5_of(bytes: bytes::Bytes, path: &std::path::Path) -> Result<[u8; 16], UploadError> {
    tokio::task::spawn_blocking(move || Md5::digest(&bytes).into())
        .await
        .map_err(|e| UploadError::FileUnreadable {
            path: path.to_owned(),
            source: std::io::Error::other(e),
        })
}
