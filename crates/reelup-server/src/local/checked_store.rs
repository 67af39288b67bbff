//! The local store, checking what S3 checks and s3s-fs 0.14.1 does not.
//!
//! s3s-fs on its own (read from its source, pinned by `tests/store_checksums.rs`):
//! - PutObject (and POST, which s3s turns into it) compares Content-MD5 and
//!   `x-amz-checksum-*` with the body, but only after the object is renamed into place:
//!   the request fails with BadDigest and the damaged object stays.
//! - UploadPart ignores Content-MD5 and every checksum header.
//! - CreateMultipartUpload ignores the checksum algorithm and type.
//! - CompleteMultipartUpload checks neither the listed ETags nor any checksum.
//!
//! - UploadPart and CompleteMultipartUpload answer AccessDenied (403) for an upload that
//!   is gone or was made with other store keys, and ListParts lists nothing (200); S3
//!   answers NoSuchUpload (404).
//! - CompleteMultipartUpload is not atomic, and a conditional PutObject is not either
//!   ([`super::commit`] says how and what is done instead).
//!
//! [`CheckedStore`] delegates every other call to s3s-fs and adds, as S3 does:
//! - UploadPart and PutObject: Content-MD5 and `x-amz-checksum-{crc32,crc32c,sha1,sha256,
//!   crc64nvme}` (headers or aws-chunked trailers) are checked as the body streams
//!   ([`super::verified_body`]); a mismatch is BadDigest and nothing is written.
//! - UploadPart: the part's ETag, size and CRC-64/NVME are recorded
//!   ([`super::part_ledger`]); CreateMultipartUpload records the checksum algorithm.
//! - UploadPart, ListParts, CompleteMultipartUpload and AbortMultipartUpload of an upload
//!   the store does not hold: NoSuchUpload (404).
//! - CompleteMultipartUpload, done here ([`super::commit`]), all or nothing, in a task
//!   that a client going away cannot stop; `If-None-Match: *` is PreconditionFailed (412)
//!   when an object is at the key. Before anything is joined: a listed ETag that is not the
//!   stored part's is InvalidPart, a listed part CRC-64/NVME that is not the stored one is
//!   InvalidPart, and a declared whole-object `x-amz-checksum-crc64nvme` that differs from
//!   the parts' CRCs combined is BadDigest. A CRC64NVME upload's answer carries
//!   `ChecksumCRC64NVME` and `ChecksumType: FULL_OBJECT`, and HeadObject and GetObject
//!   return that checksum afterwards. No part is read again.
//! - PutObject with `If-None-Match: *`: streamed under a staging name with no lock held,
//!   then moved into place if the key is still free, PreconditionFailed (412) if not.
//! - ListParts: each part's ETag (and CRC-64/NVME for a CRC64NVME upload), which s3s-fs
//!   leaves out.

use std::sync::Arc;

use s3s::dto::*;
use s3s::{S3, S3Request, S3Response, S3Result, s3_error};
use uuid::Uuid;

use super::commit::{Disk, STAGING_BUCKET};
use super::part_ledger::{PartLedger, PartRecord, UploadRecord};
use super::verified_body::{self, VerifiedBody};
use crate::checksum::Crc64Nvme;

pub struct CheckedStore {
    inner: s3s_fs::FileSystem,
    /// s3s-fs's files, the part records, and the locks of Complete and conditional writes;
    /// shared with the tasks that finish a Complete.
    disk: Arc<Disk>,
}

impl CheckedStore {
    pub fn new(inner: s3s_fs::FileSystem, root: &std::path::Path, ledger: PartLedger) -> Self {
        Self {
            inner,
            disk: Arc::new(Disk::new(root, ledger)),
        }
    }
}

impl std::fmt::Debug for CheckedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckedStore").finish_non_exhaustive()
    }
}

fn ledger_error(e: std::io::Error) -> s3s::S3Error {
    tracing::warn!(error = %e, "local store: the part ledger failed");
    s3_error!(
        InternalError,
        "the local store could not keep its part records: {e}"
    )
}

/// Content-MD5 as S3 reads it: base64 of 16 bytes, else InvalidDigest.
fn content_md5(text: Option<&str>) -> S3Result<Option<[u8; 16]>> {
    use base64::Engine;
    let Some(text) = text else { return Ok(None) };
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .ok()
        .and_then(|b| <[u8; 16]>::try_from(b).ok())
        .map(Some)
        .ok_or_else(|| s3_error!(InvalidDigest, "The Content-MD5 you specified was invalid."))
}

/// The checksum names an `x-amz-trailer` header announces.
fn trailer_names(headers: &http::HeaderMap) -> Vec<String> {
    headers
        .get_all("x-amz-trailer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|name| name.trim().to_ascii_lowercase())
        .collect()
}

/// Wraps `body` so that it checks what the request declares; the [`verified_body::Outcome`]
/// says how it ended.
fn verified(
    body: Option<StreamingBlob>,
    declared: verified_body::Declared,
    trailers: Option<s3s::TrailingHeaders>,
) -> (Option<StreamingBlob>, verified_body::Outcome) {
    match body {
        Some(body) => {
            let (body, outcome) = VerifiedBody::new(body, declared, trailers);
            (Some(StreamingBlob::new(body)), outcome)
        }
        None => (None, verified_body::Outcome::default()),
    }
}

/// s3s-fs's error for a body the check refused is an InternalError wrapping the stream's
/// error; the client gets S3's BadDigest instead.
fn refused_or(e: s3s::S3Error, outcome: &verified_body::Outcome) -> s3s::S3Error {
    match outcome.verdict().and_then(|v| v.mismatch) {
        Some(why) => s3_error!(BadDigest, "{why}"),
        None => e,
    }
}

fn trimmed(etag: &str) -> &str {
    etag.trim_matches('"')
}

#[async_trait::async_trait]
impl S3 for CheckedStore {
    async fn put_object(
        &self,
        mut req: S3Request<PutObjectInput>,
    ) -> S3Result<S3Response<PutObjectOutput>> {
        let input = &mut req.input;
        let declared = verified_body::Declared {
            md5: content_md5(input.content_md5.as_deref())?,
            checksums: Checksum {
                checksum_crc32: input.checksum_crc32.clone(),
                checksum_crc32c: input.checksum_crc32c.clone(),
                checksum_sha1: input.checksum_sha1.clone(),
                checksum_sha256: input.checksum_sha256.clone(),
                checksum_crc64nvme: input.checksum_crc64nvme.clone(),
                checksum_type: None,
            },
            trailer: trailer_names(&req.headers),
        };
        // Checked here, as the body streams; s3s-fs would hash it a second time.
        input.content_md5 = None;
        let (body, outcome) = verified(input.body.take(), declared, req.trailing_headers.clone());
        req.input.body = body;
        let create_only = match &req.input.if_none_match {
            None => false,
            Some(c) if c.is_any() => true,
            Some(_) => {
                return Err(s3_error!(
                    NotImplemented,
                    "If-None-Match takes only * on a write"
                ));
            }
        };
        if !create_only {
            return self
                .inner
                .put_object(req)
                .await
                .map_err(|e| refused_or(e, &outcome));
        }
        // If-None-Match: *, atomic as on S3 but with no lock held while the body streams:
        // refused at once when the key is taken, else written under a staging name and
        // moved into place under the commit lock if the key is still free then.
        let (bucket, key) = (req.input.bucket.clone(), req.input.key.clone());
        let object = self.disk.object_file(&bucket, &key).ok_or_else(|| {
            s3_error!(
                InvalidArgument,
                "the key {key:?} is not one the local store can hold"
            )
        })?;
        if tokio::fs::try_exists(&object).await.unwrap_or(false) {
            return Err(s3_error!(
                PreconditionFailed,
                "At least one of the pre-conditions you specified did not hold (If-None-Match: *: an object exists at this key)"
            ));
        }
        let staged = Uuid::new_v4().to_string();
        let discard = self.disk.discard_on_drop(&staged);
        req.input.bucket = STAGING_BUCKET.to_owned();
        req.input.key.clone_from(&staged);
        req.input.if_none_match = None;
        let resp = self
            .inner
            .put_object(req)
            .await
            .map_err(|e| refused_or(e, &outcome))?;
        self.disk.commit_staged(&staged, &bucket, &key).await?;
        drop(discard);
        Ok(resp)
    }

    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        let algorithm = req.input.checksum_algorithm.clone();
        let checksum_type = req.input.checksum_type.clone();
        let mut resp = self.inner.create_multipart_upload(req).await?;
        if algorithm.is_some() || checksum_type.is_some() {
            let id = resp
                .output
                .upload_id
                .as_deref()
                .and_then(|id| Uuid::parse_str(id).ok())
                .ok_or_else(|| s3_error!(InternalError, "s3s-fs made no uploadId"))?;
            let record = UploadRecord {
                algorithm: algorithm.as_ref().map(|a| a.as_str().to_owned()),
                checksum_type: checksum_type.as_ref().map(|t| t.as_str().to_owned()),
            };
            self.disk
                .ledger
                .record_upload(id, &record)
                .await
                .map_err(ledger_error)?;
            resp.output.checksum_algorithm = algorithm;
            resp.output.checksum_type = checksum_type;
        }
        Ok(resp)
    }

    async fn upload_part(
        &self,
        mut req: S3Request<UploadPartInput>,
    ) -> S3Result<S3Response<UploadPartOutput>> {
        // S3 answers NoSuchUpload for an upload it does not hold; s3s-fs, AccessDenied.
        let id = self.disk.upload_exists(&req.input.upload_id).await?;
        let input = &mut req.input;
        let part = input.part_number;
        let declared = verified_body::Declared {
            md5: content_md5(input.content_md5.as_deref())?,
            checksums: Checksum {
                checksum_crc32: input.checksum_crc32.clone(),
                checksum_crc32c: input.checksum_crc32c.clone(),
                checksum_sha1: input.checksum_sha1.clone(),
                checksum_sha256: input.checksum_sha256.clone(),
                checksum_crc64nvme: input.checksum_crc64nvme.clone(),
                checksum_type: None,
            },
            trailer: trailer_names(&req.headers),
        };
        let (body, outcome) = verified(input.body.take(), declared, req.trailing_headers.clone());
        req.input.body = body;
        let mut resp = self
            .inner
            .upload_part(req)
            .await
            .map_err(|e| refused_or(e, &outcome))?;
        let verdict = outcome
            .verdict()
            .ok_or_else(|| s3_error!(InternalError, "the part's body was not read to its end"))?;
        if let Some(etag) = resp.output.e_tag.as_ref() {
            let record = PartRecord {
                etag: trimmed(etag.value()).to_owned(),
                size: verdict.size,
                crc64nvme: verdict.crc64nvme.0,
            };
            self.disk
                .ledger
                .record_part(id, part, &record)
                .await
                .map_err(ledger_error)?;
        }
        // S3 answers the checksums it checked.
        let o = &mut resp.output;
        o.checksum_crc32 = verdict.checksums.checksum_crc32;
        o.checksum_crc32c = verdict.checksums.checksum_crc32c;
        o.checksum_sha1 = verdict.checksums.checksum_sha1;
        o.checksum_sha256 = verdict.checksums.checksum_sha256;
        o.checksum_crc64nvme = verdict.checksums.checksum_crc64nvme;
        Ok(resp)
    }

    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        let id = self.disk.upload_exists(&req.input.upload_id).await?;
        let upload = self.disk.ledger.upload(id).await.map_err(ledger_error)?;
        let listed = req
            .input
            .multipart_upload
            .as_ref()
            .and_then(|m| m.parts.as_deref())
            .unwrap_or_default();
        // The parts' CRCs combined in the order listed (the order they are joined in);
        // None once a part has no record (stored before this wrapper kept them).
        let mut whole: Option<Crc64Nvme> = None;
        let mut all_recorded = true;
        for part in listed {
            let Some(number) = part.part_number else {
                continue;
            };
            let Some(stored) = self
                .disk
                .ledger
                .part(id, number)
                .await
                .map_err(ledger_error)?
            else {
                all_recorded = false;
                continue;
            };
            if let Some(etag) = &part.e_tag
                && trimmed(etag.value()) != stored.etag
            {
                return Err(s3_error!(
                    InvalidPart,
                    "One or more of the specified parts could not be found. The part may not have been uploaded, or the specified entity tag may not have matched the part's entity tag. (part {number}: listed ETag {:?}, stored \"{}\")",
                    etag.value(),
                    stored.etag
                ));
            }
            if let Some(listed_crc) = &part.checksum_crc64nvme
                && *listed_crc != stored.crc().to_base64()
            {
                return Err(s3_error!(
                    InvalidPart,
                    "part {number}'s ChecksumCRC64NVME {listed_crc} is not the stored part's ({})",
                    stored.crc().to_base64()
                ));
            }
            whole = Some(match whole {
                None => stored.crc(),
                Some(so_far) => so_far.then(stored.crc(), stored.size),
            });
        }
        let whole = whole.filter(|_| all_recorded);
        if let Some(declared) = &req.input.checksum_crc64nvme {
            let Some(computed) = whole else {
                return Err(s3_error!(
                    InvalidRequest,
                    "a part of this upload was stored without its checksum; upload it again"
                ));
            };
            if *declared != computed.to_base64() {
                return Err(s3_error!(
                    BadDigest,
                    "the x-amz-checksum-crc64nvme you specified ({declared}) did not match the parts' combined checksum ({})",
                    computed.to_base64()
                ));
            }
        }
        let full_object = upload
            .as_ref()
            .and_then(|u| u.algorithm.as_deref())
            .is_some_and(|a| a == ChecksumAlgorithm::CRC64NVME)
            || req.input.checksum_crc64nvme.is_some();
        // In a task of its own: when the client goes away, s3s drops this request's
        // future, and a Complete must then still finish (or not start), never stop half-way.
        let output = tokio::spawn(self.disk.clone().complete(req.input, whole, full_object))
            .await
            .map_err(|e| s3_error!(InternalError, "the local store's Complete failed: {e}"))??;
        Ok(S3Response::new(output))
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        // Not while a Complete of it runs: that one finishes first, and this one then
        // finds no upload.
        let (id, _settled) = self.disk.settled(&req.input.upload_id).await?;
        let resp = self.inner.abort_multipart_upload(req).await?;
        if let Err(e) = self.disk.ledger.forget(id).await {
            tracing::warn!(error = %e, "local store: could not drop an aborted upload's part records");
        }
        Ok(resp)
    }

    // Everything else s3s-fs implements, unchanged.

    async fn create_bucket(
        &self,
        req: S3Request<CreateBucketInput>,
    ) -> S3Result<S3Response<CreateBucketOutput>> {
        self.inner.create_bucket(req).await
    }

    async fn copy_object(
        &self,
        req: S3Request<CopyObjectInput>,
    ) -> S3Result<S3Response<CopyObjectOutput>> {
        self.inner.copy_object(req).await
    }

    async fn delete_bucket(
        &self,
        req: S3Request<DeleteBucketInput>,
    ) -> S3Result<S3Response<DeleteBucketOutput>> {
        self.inner.delete_bucket(req).await
    }

    async fn delete_object(
        &self,
        req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        self.inner.delete_object(req).await
    }

    async fn delete_objects(
        &self,
        req: S3Request<DeleteObjectsInput>,
    ) -> S3Result<S3Response<DeleteObjectsOutput>> {
        self.inner.delete_objects(req).await
    }

    async fn get_bucket_location(
        &self,
        req: S3Request<GetBucketLocationInput>,
    ) -> S3Result<S3Response<GetBucketLocationOutput>> {
        self.inner.get_bucket_location(req).await
    }

    async fn get_object(
        &self,
        req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        self.inner.get_object(req).await
    }

    async fn head_bucket(
        &self,
        req: S3Request<HeadBucketInput>,
    ) -> S3Result<S3Response<HeadBucketOutput>> {
        self.inner.head_bucket(req).await
    }

    async fn head_object(
        &self,
        req: S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        self.inner.head_object(req).await
    }

    async fn list_buckets(
        &self,
        req: S3Request<ListBucketsInput>,
    ) -> S3Result<S3Response<ListBucketsOutput>> {
        self.inner.list_buckets(req).await
    }

    async fn list_objects(
        &self,
        req: S3Request<ListObjectsInput>,
    ) -> S3Result<S3Response<ListObjectsOutput>> {
        self.inner.list_objects(req).await
    }

    async fn list_objects_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        self.inner.list_objects_v2(req).await
    }

    async fn upload_part_copy(
        &self,
        req: S3Request<UploadPartCopyInput>,
    ) -> S3Result<S3Response<UploadPartCopyOutput>> {
        // A copied part gets no record: complete checks no ETag for it, and an upload
        // with one cannot declare a whole-object checksum (InvalidRequest).
        self.inner.upload_part_copy(req).await
    }

    /// s3s-fs lists parts without ETags or checksums; S3 lists both, so they are added
    /// from the records.
    async fn list_parts(
        &self,
        req: S3Request<ListPartsInput>,
    ) -> S3Result<S3Response<ListPartsOutput>> {
        // s3s-fs lists no parts (200) for an upload it does not hold; S3 says NoSuchUpload.
        let (id, _settled) = self.disk.settled(&req.input.upload_id).await?;
        let mut resp = self.inner.list_parts(req).await?;
        let crc64nvme = self
            .disk
            .ledger
            .upload(id)
            .await
            .map_err(ledger_error)?
            .and_then(|u| u.algorithm)
            .is_some_and(|a| a == ChecksumAlgorithm::CRC64NVME);
        // S3 lists parts by number; s3s-fs lists them in its directory's order, which varies.
        if let Some(parts) = resp.output.parts.as_mut() {
            parts.sort_by_key(|p| p.part_number);
        }
        for part in resp.output.parts.iter_mut().flatten() {
            let Some(number) = part.part_number else {
                continue;
            };
            if let Some(stored) = self
                .disk
                .ledger
                .part(id, number)
                .await
                .map_err(ledger_error)?
            {
                part.e_tag = Some(ETag::Strong(stored.etag.clone()));
                if crc64nvme {
                    part.checksum_crc64nvme = Some(stored.crc().to_base64());
                }
            }
        }
        Ok(resp)
    }
}
