//! A large file as an S3 multipart upload: start it (or pick up the one on record), bring
//! the record of finished parts in line with what S3 holds, send the parts S3 lacks, complete,
//! and check the finished object.
//!
//! What must stay true:
//! - A part counts as finished only once its ETag is recorded in the ledger; a quit or crash
//!   resumes from the ledger, so no finished part is sent twice and none is skipped.
//! - Complete is asked only with every part of the plan recorded.
//! - Parts of all files share one pool of permits; each file has at most one waiter in it
//!   (`turn`), so files take turns and a paused file stops waiting at once.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::{StreamExt, TryStreamExt, stream};

use super::{FileUpload, MAX_PARTS_IN_FLIGHT, transfer};
use crate::{
    CompletedPart, FileMeta, PartPlan, PresignEndpoint, Progress, StreamingUrlBase, UploadError,
    check_presigned_url,
};

/// A part S3 holds: its number, the ETag S3 gave for it, and its length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinishedPart {
    pub number: u32,
    pub etag: String,
    pub size: u64,
}

/// A multipart upload on the store: its key, its uploadId, and the part size its parts are
/// numbered by (kept for its whole life, whatever the setting says later).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MultipartUpload {
    pub key: String,
    pub upload_id: String,
    pub part_size: u64,
}

/// Where one file's multipart upload is recorded, so that it resumes after a quit or a
/// crash. The queue implements it over its store. Each call is one short write.
pub(crate) trait PartLedger: Sync {
    /// A new multipart upload was created for the file.
    fn started(&self, upload: &MultipartUpload) -> Result<(), UploadError>;
    /// The parts recorded as finished.
    fn parts(&self) -> Result<Vec<FinishedPart>, UploadError>;
    fn record(&self, part: &FinishedPart) -> Result<(), UploadError>;
    /// A part S3 no longer holds.
    fn forget(&self, number: u32) -> Result<(), UploadError>;
    /// Every part is sent; complete is about to be asked.
    fn completing(&self) -> Result<(), UploadError>;
}

impl<E: PresignEndpoint> FileUpload<'_, E> {
    /// Starts (or, given `resume`, carries on) the file's multipart upload with parts of
    /// `part_size`, and completes it. The object's key, or `None` if stopped.
    pub(crate) async fn multipart(
        &self,
        ledger: &impl PartLedger,
        resume: Option<MultipartUpload>,
        part_size: u64,
    ) -> Result<Option<String>, UploadError> {
        let upload = match resume {
            Some(upload) => upload,
            None => match self.create(ledger, part_size).await? {
                Some(upload) => upload,
                None => return Ok(None),
            },
        };
        let plan = PartPlan::new(self.meta.size, upload.part_size);
        let Some(done) = self.reconcile(ledger, &upload, &plan).await? else {
            return Ok(None);
        };
        if !self.send_missing(ledger, &upload, &plan, &done).await? {
            return Ok(None);
        }
        ledger.completing()?;
        let parts = completed_parts(ledger, &plan)?;
        let completed = self
            .retry
            .run(self.stop, || {
                self.endpoint
                    .complete(&upload.key, &upload.upload_id, &parts)
            })
            .await?;
        if completed.is_none() {
            return Ok(None);
        }
        self.verify_object(&upload.key, &parts).await?;
        Ok(Some(upload.key))
    }

    /// Creates the multipart upload and records it.
    async fn create(
        &self,
        ledger: &impl PartLedger,
        part_size: u64,
    ) -> Result<Option<MultipartUpload>, UploadError> {
        // Planned before create, so the server can be told the part size and bound each
        // part to it.
        let plan = PartPlan::new(self.meta.size, part_size);
        let meta = FileMeta {
            part_size: Some(plan.part_size()),
            ..self.meta.clone()
        };
        let Some(start) = self
            .retry
            .run(self.stop, || self.endpoint.create_multipart(&meta))
            .await?
        else {
            return Ok(None);
        };
        let upload = MultipartUpload {
            key: start.key,
            upload_id: start.upload_id,
            part_size: plan.part_size(),
        };
        ledger.started(&upload)?;
        Ok(Some(upload))
    }

    /// Brings the ledger in line with what S3 holds: parts S3 has but the ledger missed (a
    /// crash between the two) are kept when S3 gives their ETag; parts the ledger has but S3
    /// lost are forgotten, to be sent again. The finished parts, or `None` if stopped.
    async fn reconcile(
        &self,
        ledger: &impl PartLedger,
        upload: &MultipartUpload,
        plan: &PartPlan,
    ) -> Result<Option<BTreeMap<u32, FinishedPart>>, UploadError> {
        let mut local: BTreeMap<u32, FinishedPart> =
            ledger.parts()?.into_iter().map(|p| (p.number, p)).collect();
        let Some(remote) = self
            .retry
            .run(self.stop, || {
                self.endpoint.list_parts(&upload.key, &upload.upload_id)
            })
            .await?
        else {
            return Ok(None);
        };
        // An empty listing with parts on record may be a store that lists nothing (s3s-fs
        // lists parts without ETags); only drop parts S3 positively lacks.
        if !remote.is_empty() {
            let held: BTreeSet<u32> = remote.iter().map(|p| p.part_number).collect();
            let lost: Vec<u32> = local
                .keys()
                .copied()
                .filter(|n| !held.contains(n))
                .collect();
            for number in lost {
                ledger.forget(number)?;
                local.remove(&number);
            }
        }
        for p in remote {
            let expected = plan.range(p.part_number);
            let whole =
                p.part_number <= plan.part_count() && p.size == expected.end - expected.start;
            if whole && !p.etag.is_empty() && !local.contains_key(&p.part_number) {
                let part = FinishedPart {
                    number: p.part_number,
                    etag: p.etag,
                    size: p.size,
                };
                ledger.record(&part)?;
                local.insert(part.number, part);
            }
        }
        Ok(Some(local))
    }

    /// Sends every part of `plan` not in `done`, up to the shared limit at once. True when
    /// all were sent, false if stopped.
    async fn send_missing(
        &self,
        ledger: &impl PartLedger,
        upload: &MultipartUpload,
        plan: &PartPlan,
        done: &BTreeMap<u32, FinishedPart>,
    ) -> Result<bool, UploadError> {
        let confirmed: u64 = done.values().map(|p| p.size).sum();
        let sent = AtomicU64::new(confirmed);
        (self.progress)(Progress {
            sent: confirmed,
            total: self.meta.size,
        });
        let missing: Vec<_> = plan
            .parts()
            .filter(|(n, _)| !done.contains_key(n))
            .collect();
        let turn = tokio::sync::Mutex::new(());
        let results: Vec<Option<()>> = stream::iter(missing)
            .map(|(number, range)| self.send_part(ledger, upload, number, range, &sent, &turn))
            .buffer_unordered(MAX_PARTS_IN_FLIGHT)
            .try_collect()
            .await?;
        Ok(!self.stop.is_cancelled() && results.iter().all(Option::is_some))
    }

    /// Waits its file's turn for a permit, then signs, sends and records one part.
    async fn send_part(
        &self,
        ledger: &impl PartLedger,
        upload: &MultipartUpload,
        number: u32,
        range: Range<u64>,
        sent: &AtomicU64,
        turn: &tokio::sync::Mutex<()>,
    ) -> Result<Option<()>, UploadError> {
        let permit = {
            let _turn = turn.lock().await;
            self.wire.permits.acquire(self.stop).await
        };
        let Some(_permit) = permit else {
            return Ok(None);
        };
        if self.stop.is_cancelled() {
            return Ok(None);
        }
        let len = range.end - range.start;
        let Some(etag) = self
            .retry
            .run(self.stop, || async {
                let signed = self
                    .endpoint
                    .sign_part(&upload.key, &upload.upload_id, number)
                    .await?;
                check_presigned_url(self.endpoint_url, &signed.url, "part URL")?;
                transfer::put_part(
                    &self.wire.http,
                    &signed.url,
                    self.source,
                    range.start,
                    len,
                    &self.wire.pacing,
                )
                .await
            })
            .await?
        else {
            return Ok(None);
        };
        ledger.record(&FinishedPart {
            number,
            etag,
            size: len,
        })?;
        let now = sent.fetch_add(len, Ordering::Relaxed) + len;
        (self.progress)(Progress {
            sent: now,
            total: self.meta.size,
        });
        Ok(Some(()))
    }

    /// Checks the finished object's ETag, as the CDN reports it, against the one S3
    /// computes for these parts: MD5 of the parts' MD5s, then `-<count>`. Where the CDN
    /// cannot be asked, or the ETag is not of that form (SSE-KMS), the per-part checks
    /// stand alone.
    async fn verify_object(&self, key: &str, parts: &[CompletedPart]) -> Result<(), UploadError> {
        let Some(expected) = multipart_etag(parts) else {
            return Ok(());
        };
        let url = StreamingUrlBase::new(self.cdn).url_for(key);
        let head = self.wire.http.head(&url).timeout(Duration::from_secs(10));
        let got = match head.send().await {
            Ok(resp) if resp.status().is_success() => resp
                .headers()
                .get(reqwest::header::ETAG)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            _ => None,
        };
        match got {
            Some(got) if got.contains('-') && !got.eq_ignore_ascii_case(&expected) => {
                Err(UploadError::Integrity { expected, got })
            }
            _ => Ok(()),
        }
    }
}

/// The parts to complete with, from the ledger; every part of `plan` must be there.
fn completed_parts(
    ledger: &impl PartLedger,
    plan: &PartPlan,
) -> Result<Vec<CompletedPart>, UploadError> {
    let parts: Vec<CompletedPart> = ledger
        .parts()?
        .into_iter()
        .map(|p| CompletedPart {
            part_number: p.number,
            etag: p.etag,
            checksum_crc64nvme: None,
        })
        .collect();
    if parts.len() as u32 != plan.part_count() {
        return Err(UploadError::Endpoint {
            route: "queue".into(),
            status: 0,
            message: format!(
                "{} of {} parts recorded; the upload resumes",
                parts.len(),
                plan.part_count()
            ),
        });
    }
    Ok(parts)
}

/// S3's ETag for an object made of `parts`, when every part's ETag is a plain MD5.
fn multipart_etag(parts: &[CompletedPart]) -> Option<String> {
    use md5::{Digest, Md5};
    let mut all = Md5::new();
    for p in parts {
        let mut md5 = [0u8; 16];
        hex::decode_to_slice(p.etag.trim_matches('"'), &mut md5).ok()?;
        all.update(md5);
    }
    Some(format!(
        "\"{}-{}\"",
        hex::encode(all.finalize()),
        parts.len()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipart_etag_is_md5_of_part_md5s_and_count() {
        // Two parts whose MD5s are known: md5("a") and md5("b").
        let parts = vec![
            CompletedPart {
                part_number: 1,
                etag: "\"0cc175b9c0f1b6a831c399e269772661\"".into(),
                checksum_crc64nvme: None,
            },
            CompletedPart {
                part_number: 2,
                etag: "92eb5ffee6ae2fec3ad71c777531578f".into(),
                checksum_crc64nvme: None,
            },
        ];
        // md5(md5("a") || md5("b")), computed independently with Python's hashlib.
        assert_eq!(
            multipart_etag(&parts).as_deref(),
            Some("\"96e024ba2074fe77e8e965ba43a704be-2\"")
        );
        let kms = vec![CompletedPart {
            part_number: 1,
            etag: "not-an-md5".into(),
            checksum_crc64nvme: None,
        }];
        assert_eq!(multipart_etag(&kms), None);
    }
}
