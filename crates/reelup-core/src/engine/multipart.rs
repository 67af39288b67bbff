//! A large file as an S3 multipart upload: start it (or pick up the one on record), bring
//! the record of finished parts in line with what S3 holds, send the parts S3 lacks, complete,
//! and check the finished object.
//!
//! What must stay true:
//! - A part counts as finished only once its ETag is recorded in the ledger; a quit or crash
//!   resumes from the ledger, so no finished part is sent twice and none is skipped.
//! - Complete is asked only with every part of the plan recorded.
//! - Every byte is read from disk once: a checksummed part is read into memory, its CRC
//!   taken from that buffer and the buffer sent (and sent again on a retry); an MD5 part is
//!   streamed and hashed as it goes. The whole object's CRC is combined from the parts'.
//! - Parts of all files share one pool of permits; each file has at most one waiter in it
//!   (`turn`), so files take turns and a paused file stops waiting at once.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::{StreamExt, TryStreamExt, stream};

use super::checksum::{Crc64Nvme, Verification};
use super::transfer::PartCheck;
use super::{FileUpload, MAX_PARTS_IN_FLIGHT, Uploaded, transfer};
use crate::{
    CompletedPart, FileMeta, PartPlan, PresignEndpoint, Progress, StreamingUrlBase, UploadError,
    check_presigned_url,
};
use reelup_protocol::{CRC64NVME, CRC64NVME_HEADER};

/// A part S3 holds: its number, the ETag S3 gave for it, and its length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinishedPart {
    pub number: u32,
    pub etag: String,
    pub size: u64,
    /// Its CRC-64/NVME (base64) as the store checked it, for a checksummed upload.
    pub crc64nvme: Option<String>,
    /// Whether its ETag was compared with the MD5 of the bytes sent.
    pub md5_checked: bool,
}

/// A multipart upload on the store: its key, its uploadId, and the part size its parts are
/// numbered by (kept for its whole life, whatever the setting says later).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MultipartUpload {
    pub key: String,
    pub upload_id: String,
    pub part_size: u64,
    /// Whether the endpoint signs each part's CRC-64/NVME and checks the whole object's
    /// (reelup-server's extension); else parts are checked by their MD5 ETags.
    pub checksummed: bool,
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
    ///
    /// An upload the store no longer holds (a run that crashed after Complete but before
    /// the queue recorded it; a store that lost it) is not a dead end: if the object is
    /// there, made of exactly the recorded parts, the upload is done; otherwise a new
    /// multipart upload starts, once a run.
    pub(crate) async fn multipart(
        &self,
        ledger: &impl PartLedger,
        resume: Option<MultipartUpload>,
        part_size: u64,
    ) -> Result<Option<Uploaded>, UploadError> {
        let mut upload = match resume {
            Some(upload) => upload,
            None => match self.create(ledger, part_size).await? {
                Some(upload) => upload,
                None => return Ok(None),
            },
        };
        let mut started_again = false;
        loop {
            let gone = match self.send_and_complete(ledger, &upload).await {
                Err(e) if e.is_upload_gone() => e,
                other => return other,
            };
            if let Some(done) = self.completed_before(ledger, &upload).await? {
                tracing::info!(key = %upload.key, "the multipart upload was completed by an earlier run");
                return Ok(Some(done));
            }
            // Vanishing again within one run is not the crash this recovers from: said, not
            // looped on.
            if started_again {
                return Err(gone);
            }
            started_again = true;
            tracing::warn!(key = %upload.key, error = %gone, "the multipart upload is gone and its object is not there; starting a new upload");
            upload = match self.create(ledger, part_size).await? {
                Some(upload) => upload,
                None => return Ok(None),
            };
        }
    }

    /// Brings the ledger in line with the store, sends the missing parts, completes and
    /// checks the object.
    async fn send_and_complete(
        &self,
        ledger: &impl PartLedger,
        upload: &MultipartUpload,
    ) -> Result<Option<Uploaded>, UploadError> {
        let plan = PartPlan::new(self.meta.size, upload.part_size);
        let Some(done) = self.reconcile(ledger, upload, &plan).await? else {
            return Ok(None);
        };
        if !self.send_missing(ledger, upload, &plan, &done).await? {
            return Ok(None);
        }
        ledger.completing()?;
        let recorded = ledger.parts()?;
        let parts = completed_parts(&recorded, &plan)?;
        let whole = if upload.checksummed {
            Some(whole_crc(&recorded)?.to_base64())
        } else {
            None
        };
        let Some(completed) = self
            .retry
            .run(self.stop, || {
                self.endpoint
                    .complete(&upload.key, &upload.upload_id, &parts, whole.as_deref())
            })
            .await?
        else {
            return Ok(None);
        };
        self.completed(upload, &recorded, &parts, whole, completed)
            .await
            .map(Some)
    }

    /// What a Complete's answer proves: the store's whole-object CRC must be ours; without
    /// one, the object's ETag is compared with the parts'.
    async fn completed(
        &self,
        upload: &MultipartUpload,
        recorded: &[FinishedPart],
        parts: &[CompletedPart],
        whole: Option<String>,
        completed: reelup_protocol::MultipartCompleted,
    ) -> Result<Uploaded, UploadError> {
        let verified = match (&whole, completed.checksum_crc64nvme) {
            (Some(ours), Some(theirs)) if *ours == theirs => Verification::ObjectCrc64nvme,
            (Some(ours), Some(theirs)) => {
                return Err(UploadError::Integrity {
                    expected: format!("CRC64NVME {ours}"),
                    got: format!("CRC64NVME {theirs}"),
                });
            }
            (Some(_), None) => Verification::PartsCrc64nvme,
            (None, _) => {
                self.verify_object(&upload.key, parts).await?;
                parts_verification(recorded)
            }
        };
        Ok(Uploaded {
            key: upload.key.clone(),
            verified,
        })
    }

    /// After the store said `upload` is gone: whether an earlier run completed it. Only an
    /// upload with every part on record was ever completed (Complete is asked with no
    /// fewer). Complete is asked again, since reelup-server answers a repeated Complete
    /// from the object itself (its size and whole-object CRC); where the endpoint cannot
    /// (Companion: S3 answers `NoSuchUpload`), the object's size and ETag, read through the
    /// CDN, must be those of exactly the recorded parts.
    async fn completed_before(
        &self,
        ledger: &impl PartLedger,
        upload: &MultipartUpload,
    ) -> Result<Option<Uploaded>, UploadError> {
        let plan = PartPlan::new(self.meta.size, upload.part_size);
        let recorded = ledger.parts()?;
        let Ok(parts) = completed_parts(&recorded, &plan) else {
            return Ok(None);
        };
        let whole = if upload.checksummed {
            match whole_crc(&recorded) {
                Ok(crc) => Some(crc.to_base64()),
                Err(_) => return Ok(None),
            }
        } else {
            None
        };
        let again = self
            .retry
            .run(self.stop, || {
                self.endpoint
                    .complete(&upload.key, &upload.upload_id, &parts, whole.as_deref())
            })
            .await;
        match again {
            Ok(Some(completed)) => {
                return self
                    .completed(upload, &recorded, &parts, whole, completed)
                    .await
                    .map(Some);
            }
            Ok(None) => return Ok(None),
            Err(e) if e.is_upload_gone() => {}
            Err(e) => return Err(e),
        }
        if self.object_is(&upload.key, &parts).await {
            return Ok(Some(Uploaded {
                key: upload.key.clone(),
                verified: if upload.checksummed {
                    Verification::PartsCrc64nvme
                } else {
                    parts_verification(&recorded)
                },
            }));
        }
        Ok(None)
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
        // The create body always offers CRC-64/NVME; only an endpoint that answers it back
        // signs part checksums.
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
            checksummed: start.checksum_algorithm.as_deref() == Some(CRC64NVME),
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
        // A checksummed upload's parts each need their CRC on record (a ledger written by
        // an older Reelup has none): those are sent again.
        if upload.checksummed {
            let unchecked: Vec<u32> = local
                .values()
                .filter(|p| p.crc64nvme.is_none())
                .map(|p| p.number)
                .collect();
            for number in unchecked {
                ledger.forget(number)?;
                local.remove(&number);
            }
        }
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
            // A checksummed upload needs each part's CRC for the whole object's: a part the
            // ledger missed is sent again rather than read a second time.
            if whole
                && !p.etag.is_empty()
                && !local.contains_key(&p.part_number)
                && !upload.checksummed
            {
                let part = FinishedPart {
                    number: p.part_number,
                    etag: p.etag,
                    size: p.size,
                    crc64nvme: None,
                    // The ETag is the store's own; nothing of ours was compared with it.
                    md5_checked: false,
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
        // Bytes confirmed, plus those of parts on their way (counted as they go out, and
        // taken back when an attempt fails): what progress shows.
        let sent = Arc::new(AtomicU64::new(confirmed));
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
        sent: &Arc<AtomicU64>,
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
        // Read once, outside the retries: a part sent again is sent from the same buffer.
        let check = if upload.checksummed {
            let (bytes, crc) =
                transfer::read_range(self.source, range.start, len, &self.wire.buffers).await?;
            PartCheck::Crc64(bytes, crc)
        } else {
            PartCheck::Md5
        };
        let crc64nvme = match &check {
            PartCheck::Crc64(_, crc) => Some(crc.to_base64()),
            PartCheck::Md5 => None,
        };
        // This part's bytes counted as gone out in the current attempt: taken back from
        // `sent` when the attempt fails, so progress never counts a byte twice.
        let on_way = Arc::new(AtomicU64::new(0));
        let total = self.meta.size;
        let take_back = || {
            let back = on_way.swap(0, Ordering::Relaxed);
            if back > 0 {
                let now = sent.fetch_sub(back, Ordering::Relaxed) - back;
                (self.progress)(Progress { sent: now, total });
            }
        };
        let outcome = self
            .retry
            .run(self.stop, || async {
                take_back();
                let signed = self
                    .endpoint
                    .sign_part(&upload.key, &upload.upload_id, number, crc64nvme.as_deref())
                    .await?;
                check_presigned_url(self.endpoint_url, &signed.url, "part URL")?;
                if let Some(crc) = &crc64nvme {
                    let signed_crc = signed.headers.as_ref().and_then(|h| h.get(CRC64NVME_HEADER));
                    if signed_crc != Some(crc) {
                        return Err(UploadError::Endpoint {
                            route: "GET /s3/multipart/{uploadId}/{partNumber}".into(),
                            status: 200,
                            message: format!(
                                "the endpoint agreed to sign part checksums but did not sign part {number}'s; check that reelup-server is up to date"
                            ),
                        });
                    }
                }
                let on_wire: transfer::OnWire = {
                    let (sent, on_way, progress) =
                        (sent.clone(), on_way.clone(), self.progress.clone());
                    Arc::new(move |n| {
                        on_way.fetch_add(n, Ordering::Relaxed);
                        let now = sent.fetch_add(n, Ordering::Relaxed) + n;
                        progress(Progress { sent: now, total });
                    })
                };
                transfer::put_part(
                    &self.wire.http,
                    &signed.url,
                    self.source,
                    (range.start, len),
                    &check,
                    &self.wire.pacing,
                    on_wire,
                )
                .await
            })
            .await;
        let outcome = match outcome {
            Ok(Some(done)) => done,
            Ok(None) => {
                take_back();
                return Ok(None);
            }
            Err(e) => {
                take_back();
                return Err(e);
            }
        };
        let (etag, md5_checked) = outcome;
        drop(check);
        ledger.record(&FinishedPart {
            number,
            etag,
            size: len,
            crc64nvme,
            md5_checked,
        })?;
        // The part's bytes move from "on the way" to confirmed: whatever of it was not yet
        // counted is counted now.
        let back = on_way.swap(0, Ordering::Relaxed);
        let now = if len >= back {
            sent.fetch_add(len - back, Ordering::Relaxed) + (len - back)
        } else {
            sent.fetch_sub(back - len, Ordering::Relaxed) - (back - len)
        };
        (self.progress)(Progress { sent: now, total });
        Ok(Some(()))
    }

    /// Whether the object at `key`, as the CDN reports it, is made of exactly `parts`: this
    /// file's size, and the ETag S3 gives an object of those parts. False when the CDN
    /// cannot say (unreachable, signed links required, an ETag of another form).
    async fn object_is(&self, key: &str, parts: &[CompletedPart]) -> bool {
        let Some(expected) = multipart_etag(parts) else {
            return false;
        };
        let url = StreamingUrlBase::new(self.cdn).url_for(key);
        let head = self.wire.http.head(&url).timeout(Duration::from_secs(10));
        let Ok(resp) = head.send().await else {
            return false;
        };
        let header = |name| {
            resp.headers()
                .get(name)
                .and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok())
        };
        // The header itself: reqwest's `content_length()` is the body's, none for a HEAD.
        let size = header(reqwest::header::CONTENT_LENGTH).and_then(|v| v.parse::<u64>().ok());
        let etag = header(reqwest::header::ETAG);
        resp.status().is_success()
            && size == Some(self.meta.size)
            && etag.is_some_and(|e| e.eq_ignore_ascii_case(&expected))
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

/// What the recorded parts' own checks add up to, for an upload checked part by part.
fn parts_verification(recorded: &[FinishedPart]) -> Verification {
    if recorded.iter().all(|p| p.md5_checked) {
        Verification::PartsMd5
    } else {
        Verification::Unverified
    }
}

/// The parts to complete with, from the ledger; every part of `plan` must be there.
fn completed_parts(
    recorded: &[FinishedPart],
    plan: &PartPlan,
) -> Result<Vec<CompletedPart>, UploadError> {
    let parts: Vec<CompletedPart> = recorded
        .iter()
        .map(|p| CompletedPart {
            part_number: p.number,
            etag: p.etag.clone(),
            checksum_crc64nvme: p.crc64nvme.clone(),
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

/// The whole object's CRC-64/NVME, combined in part order from the parts' own (the ledger
/// lists them by number).
fn whole_crc(recorded: &[FinishedPart]) -> Result<Crc64Nvme, UploadError> {
    recorded.iter().try_fold(Crc64Nvme::EMPTY, |whole, p| {
        let crc = p
            .crc64nvme
            .as_deref()
            .and_then(|c| Crc64Nvme::from_base64(c, p.size))
            .ok_or_else(|| UploadError::Endpoint {
                route: "queue".into(),
                status: 0,
                message: format!(
                    "part {} has no checksum on record; the upload resumes and sends it again",
                    p.number
                ),
            })?;
        Ok(whole.then(crc))
    })
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
