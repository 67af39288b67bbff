//! The local store's CompleteMultipartUpload and conditional PutObject, done here on
//! s3s-fs 0.14.1's files rather than by s3s-fs, because s3s-fs's own are not safe:
//!
//! - Its Complete deletes the upload's record (`.upload-<id>.json`) first, then joins the
//!   parts into the object, deleting each part once copied. Cancelled or crashed half-way
//!   (the client went away and the request future was dropped, or the process was killed),
//!   it left no object, no upload (every later call AccessDenied) and some parts.
//!   It also refuses gaps in the part numbers after the record is gone (S3 allows them), so
//!   a refused Complete destroyed the upload too.
//! - Its conditional PutObject checks `If-None-Match: *` and then streams the body, so two
//!   conditional writes of one key could both succeed; the fix of taking a lock for the
//!   whole request held it for a whole body, so one slow PUT stalled every invite
//!   redemption.
//!
//! Here a Complete checks everything that can fail before it changes anything, joins the
//! parts into a temporary file, and makes the object appear with one rename; only then is
//! the upload forgotten. Interrupted at any point, the object is either whole or absent and
//! the upload still completable. A conditional PUT streams into a staging object with no
//! lock held; the lock is held only to check that the key is free and rename into place.
//!
//! The file names are s3s-fs 0.14.1's (`src/fs.rs`): `tests/checksums.rs` and
//! `tests/local_uploads.rs` read objects back through s3s-fs, so a change of layout fails
//! them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};

use md5::Digest;
use s3s::dto::*;
use s3s::{S3Result, s3_error};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uuid::Uuid;

use super::part_ledger::PartLedger;
use crate::checksum::Crc64Nvme;

/// S3's smallest part but the last.
const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;
/// Where conditional PUTs stream before their commit: a directory s3s-fs treats as a
/// bucket, which no client can name (a bucket name cannot start with a dot) and
/// ListBuckets skips for the same reason.
pub const STAGING_BUCKET: &str = ".reelup-staging";
/// Marks, in an object's internal record, the multipart upload that made it, so that a
/// Complete interrupted after its commit and repeated finds its own object, not a rival.
const MADE_BY: &str = "reelup_upload_id";

/// What the local store keeps on disk, shared by its requests and by the tasks that finish
/// a Complete whatever becomes of the request that started it.
#[derive(Debug)]
pub struct Disk {
    /// s3s-fs's root.
    pub root: PathBuf,
    pub ledger: PartLedger,
    /// Held only to check a conditional write's key and rename the object into place.
    commit: tokio::sync::Mutex<()>,
    /// One Complete of an upload at a time.
    completing: std::sync::Mutex<HashMap<Uuid, Weak<tokio::sync::Mutex<()>>>>,
}

fn b64(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
}

fn io_error(what: &str, e: &std::io::Error) -> s3s::S3Error {
    tracing::warn!(error = %e, "local store: {what} failed");
    s3_error!(InternalError, "the local store could not {what}: {e}")
}

/// A file removed when dropped unless [`TempFile::keep`] was called: a Complete or PUT
/// that fails or is stopped leaves nothing behind.
pub struct TempFile(Option<PathBuf>);

impl TempFile {
    fn keep(mut self) {
        self.0 = None;
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

impl Disk {
    pub fn new(root: &Path, ledger: PartLedger) -> Self {
        Self {
            root: root.to_owned(),
            ledger,
            commit: tokio::sync::Mutex::new(()),
            completing: std::sync::Mutex::new(HashMap::new()),
        }
    }

    fn upload_record(&self, id: Uuid) -> PathBuf {
        self.root.join(format!(".upload-{id}.json"))
    }

    fn part_file(&self, id: Uuid, part: i32) -> PathBuf {
        self.root.join(format!(".upload_id-{id}.part-{part}"))
    }

    /// An object's file; None for a key s3s-fs would resolve outside its bucket.
    pub fn object_file(&self, bucket: &str, key: &str) -> Option<PathBuf> {
        let relative = Path::new(key);
        let plain = relative
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)));
        (plain && !key.is_empty()).then(|| self.root.join(bucket).join(relative))
    }

    fn metadata_file(&self, bucket: &str, key: &str, upload: Option<Uuid>) -> PathBuf {
        let upload = upload.map(|u| format!(".upload-{u}")).unwrap_or_default();
        self.root.join(format!(
            ".bucket-{}.object-{}{upload}.metadata.json",
            b64(bucket),
            b64(key)
        ))
    }

    fn internal_file(&self, bucket: &str, key: &str) -> PathBuf {
        self.root.join(format!(
            ".bucket-{}.object-{}.internal.json",
            b64(bucket),
            b64(key)
        ))
    }

    /// A temporary name in s3s-fs's pattern, which s3s-fs deletes at start if left behind.
    fn temp_name(&self) -> PathBuf {
        self.root
            .join(format!(".tmp.reelup-{}.internal.part", Uuid::new_v4()))
    }

    /// Whether the upload is one the store holds. S3 answers NoSuchUpload (404) for one it
    /// does not: completed, aborted or never made. s3s-fs answered AccessDenied (403) for
    /// a part or Complete and an empty list for ListParts.
    pub async fn upload_exists(&self, id: &str) -> S3Result<Uuid> {
        let no_such = || {
            s3_error!(
                NoSuchUpload,
                "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed."
            )
        };
        let id = Uuid::parse_str(id).map_err(|_| no_such())?;
        match tokio::fs::try_exists(self.upload_record(id)).await {
            Ok(true) => Ok(id),
            Ok(false) => Err(no_such()),
            Err(e) => Err(io_error("read an upload's record", &e)),
        }
    }

    /// The upload, once no Complete of it is running, and a guard that keeps others from
    /// starting: a Complete, or a ListParts that must not see its parts half deleted.
    pub async fn settled(
        &self,
        upload_id: &str,
    ) -> S3Result<(Uuid, tokio::sync::OwnedMutexGuard<()>)> {
        let id = self.upload_exists(upload_id).await?;
        let guard = self.upload_lock(id).lock_owned().await;
        // A Complete that ran meanwhile may have finished the upload.
        self.upload_exists(upload_id).await?;
        Ok((id, guard))
    }

    fn upload_lock(&self, id: Uuid) -> Arc<tokio::sync::Mutex<()>> {
        let mut map = self.completing.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, lock| lock.strong_count() > 0);
        if let Some(lock) = map.get(&id).and_then(Weak::upgrade) {
            return lock;
        }
        let lock = Arc::new(tokio::sync::Mutex::new(()));
        map.insert(id, Arc::downgrade(&lock));
        lock
    }

    /// The multipart upload that made the object at `bucket`/`key`, if a Complete did.
    async fn made_by(&self, bucket: &str, key: &str) -> Option<Uuid> {
        let bytes = tokio::fs::read(self.internal_file(bucket, key))
            .await
            .ok()?;
        let info: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(&bytes).ok()?;
        info.get(MADE_BY)
            .and_then(|v| v.as_str())
            .and_then(|s| Uuid::parse_str(s).ok())
    }

    async fn write_atomically(&self, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
        let tmp = TempFile(Some(self.temp_name()));
        let tmp_path = tmp.0.clone().expect("set");
        tokio::fs::write(&tmp_path, bytes).await?;
        tokio::fs::rename(&tmp_path, path).await?;
        tmp.keep();
        Ok(())
    }

    /// CompleteMultipartUpload, checked as S3 checks it, all or nothing. Callers run it in
    /// a task of its own, so that a client going away cannot stop it half-way.
    ///
    /// `whole`: the parts' combined CRC-64/NVME, kept as the object's checksum when
    /// `full_object`.
    pub async fn complete(
        self: Arc<Self>,
        input: CompleteMultipartUploadInput,
        whole: Option<Crc64Nvme>,
        full_object: bool,
    ) -> S3Result<CompleteMultipartUploadOutput> {
        let (id, _one_at_a_time) = self.settled(&input.upload_id).await?;
        let (bucket, key) = (input.bucket.as_str(), input.key.as_str());
        let object = self.object_file(bucket, key).ok_or_else(|| {
            s3_error!(
                InvalidArgument,
                "the key {key:?} is not one the local store can hold"
            )
        })?;
        if input.if_match.is_some() {
            return Err(s3_error!(
                NotImplemented,
                "the local store takes If-None-Match: * at Complete, not If-Match"
            ));
        }
        let if_none_match = match &input.if_none_match {
            None => false,
            Some(c) if c.is_any() => true,
            Some(_) => {
                return Err(s3_error!(
                    NotImplemented,
                    "If-None-Match takes only * on a write"
                ));
            }
        };
        let listed: Vec<i32> = input
            .multipart_upload
            .as_ref()
            .and_then(|m| m.parts.as_deref())
            .unwrap_or_default()
            .iter()
            .map(|p| {
                p.part_number
                    .ok_or_else(|| s3_error!(InvalidRequest, "a listed part has no PartNumber"))
            })
            .collect::<S3Result<_>>()?;
        if listed.is_empty() {
            return Err(s3_error!(
                InvalidRequest,
                "You must specify at least one part"
            ));
        }
        if listed.windows(2).any(|w| w[0] >= w[1]) {
            return Err(s3_error!(
                InvalidPartOrder,
                "The list of parts was not in ascending order. Parts must be ordered by part number."
            ));
        }
        // Every check that can fail comes before anything is changed.
        let mut sizes = Vec::with_capacity(listed.len());
        for &number in &listed {
            let size = match tokio::fs::metadata(self.part_file(id, number)).await {
                Ok(m) => m.len(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(s3_error!(
                        InvalidPart,
                        "One or more of the specified parts could not be found. The part may not have been uploaded. (part {number})"
                    ));
                }
                Err(e) => return Err(io_error("read a part", &e)),
            };
            sizes.push(size);
        }
        if let Some(i) = sizes[..sizes.len() - 1]
            .iter()
            .position(|s| *s < MIN_PART_SIZE)
        {
            return Err(s3_error!(
                EntityTooSmall,
                "Your proposed upload is smaller than the minimum allowed object size. (part {} is {} bytes; every part but the last must be at least {MIN_PART_SIZE})",
                listed[i],
                sizes[i]
            ));
        }
        let mine = |made: Option<Uuid>| made == Some(id);
        if if_none_match
            && tokio::fs::try_exists(&object).await.unwrap_or(false)
            && !mine(self.made_by(bucket, key).await)
        {
            return Err(precondition_failed());
        }

        // The parts joined into a temporary file; nothing is visible yet.
        let joined = TempFile(Some(self.temp_name()));
        let joined_path = joined.0.clone().expect("set");
        let mut part_md5s = md5::Md5::new();
        {
            let mut out = tokio::fs::File::create(&joined_path)
                .await
                .map_err(|e| io_error("create the object", &e))?;
            let mut buf = vec![0u8; 256 * 1024];
            for &number in &listed {
                let mut part = tokio::fs::File::open(self.part_file(id, number))
                    .await
                    .map_err(|e| io_error("read a part", &e))?;
                let mut md5 = md5::Md5::new();
                loop {
                    let n = part
                        .read(&mut buf)
                        .await
                        .map_err(|e| io_error("read a part", &e))?;
                    if n == 0 {
                        break;
                    }
                    md5.update(&buf[..n]);
                    out.write_all(&buf[..n])
                        .await
                        .map_err(|e| io_error("write the object", &e))?;
                }
                part_md5s.update(md5.finalize());
            }
            // On disk before it is renamed into place: "completed" must survive a crash.
            out.sync_all()
                .await
                .map_err(|e| io_error("write the object", &e))?;
        }
        let e_tag = format!("{}-{}", hex::encode(part_md5s.finalize()), listed.len());

        let mut info = serde_json::Map::new();
        info.insert("e_tag".into(), e_tag.clone().into());
        if let (true, Some(crc)) = (full_object, whole) {
            info.insert("checksum_crc64nvme".into(), crc.to_base64().into());
        }
        info.insert(MADE_BY.into(), id.to_string().into());
        let info = serde_json::to_vec(&info).map_err(|e| s3_error!(InternalError, "{e}"))?;
        {
            let _commit = self.commit.lock().await;
            if if_none_match
                && tokio::fs::try_exists(&object).await.unwrap_or(false)
                && !mine(self.made_by(bucket, key).await)
            {
                return Err(precondition_failed());
            }
            // The object's attributes first, so that it never appears without them.
            let attributes = tokio::fs::read(self.metadata_file(bucket, key, Some(id))).await;
            let attributes = match attributes {
                Ok(bytes) => Some(bytes),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => return Err(io_error("read the upload's attributes", &e)),
            };
            let object_meta = self.metadata_file(bucket, key, None);
            match attributes {
                Some(bytes) => self.write_atomically(&object_meta, &bytes).await,
                None => match tokio::fs::remove_file(&object_meta).await {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
                    _ => Ok(()),
                },
            }
            .map_err(|e| io_error("keep the object's attributes", &e))?;
            self.write_atomically(&self.internal_file(bucket, key), &info)
                .await
                .map_err(|e| io_error("keep the object's ETag", &e))?;
            if let Some(dir) = object.parent() {
                tokio::fs::create_dir_all(dir)
                    .await
                    .map_err(|e| io_error("create the object's folder", &e))?;
            }
            // The commit: before it there is no new object, after it the whole one.
            tokio::fs::rename(&joined_path, &object)
                .await
                .map_err(|e| io_error("put the object in place", &e))?;
            joined.keep();
        }

        // The upload is forgotten only now; stopped before this, a Complete repeated finds
        // the upload and its parts, and makes the same object again.
        let forget = async {
            tokio::fs::remove_file(self.upload_record(id)).await?;
            let _ = tokio::fs::remove_file(self.metadata_file(bucket, key, Some(id))).await;
            let prefix = format!(".upload_id-{id}.part-");
            let mut entries = tokio::fs::read_dir(&self.root).await?;
            while let Some(entry) = entries.next_entry().await? {
                if entry
                    .file_name()
                    .to_str()
                    .is_some_and(|n| n.starts_with(&prefix))
                {
                    let _ = tokio::fs::remove_file(entry.path()).await;
                }
            }
            self.ledger.forget(id).await
        };
        if let Err(e) = forget.await {
            tracing::warn!(error = %e, "local store: could not drop a completed upload's parts");
        }
        let mut output = CompleteMultipartUploadOutput {
            bucket: Some(input.bucket.clone()),
            key: Some(input.key.clone()),
            e_tag: Some(ETag::Strong(e_tag)),
            ..Default::default()
        };
        if let (true, Some(crc)) = (full_object, whole) {
            output.checksum_crc64nvme = Some(crc.to_base64());
            output.checksum_type = Some(ChecksumType::from_static(ChecksumType::FULL_OBJECT));
        }
        Ok(output)
    }

    /// Moves a staged object (written by s3s-fs under [`STAGING_BUCKET`]) to `bucket`/`key`
    /// if no object is there: the check and the renames under the commit lock, which is
    /// held for no body. The staged files are gone afterwards either way.
    pub async fn commit_staged(&self, staged: &str, bucket: &str, key: &str) -> S3Result<()> {
        let _cleanup = self.discard_on_drop(staged);
        let staged_object = self.root.join(STAGING_BUCKET).join(staged);
        let object = self.object_file(bucket, key).ok_or_else(|| {
            s3_error!(
                InvalidArgument,
                "the key {key:?} is not one the local store can hold"
            )
        })?;
        let _commit = self.commit.lock().await;
        if tokio::fs::try_exists(&object).await.unwrap_or(false) {
            return Err(precondition_failed());
        }
        let moves = [
            (
                self.metadata_file(STAGING_BUCKET, staged, None),
                self.metadata_file(bucket, key, None),
            ),
            (
                self.internal_file(STAGING_BUCKET, staged),
                self.internal_file(bucket, key),
            ),
        ];
        for (from, to) in moves {
            match tokio::fs::rename(&from, &to).await {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(io_error("keep the object's attributes", &e));
                }
                _ => {}
            }
        }
        if let Some(dir) = object.parent() {
            tokio::fs::create_dir_all(dir)
                .await
                .map_err(|e| io_error("create the object's folder", &e))?;
        }
        tokio::fs::rename(&staged_object, &object)
            .await
            .map_err(|e| io_error("put the object in place", &e))?;
        Ok(())
    }
}

impl Disk {
    /// Guards that delete what s3s-fs wrote for the staged object `staged`, whatever
    /// became of its request.
    pub fn discard_on_drop(&self, staged: &str) -> Vec<TempFile> {
        [
            self.root.join(STAGING_BUCKET).join(staged),
            self.metadata_file(STAGING_BUCKET, staged, None),
            self.internal_file(STAGING_BUCKET, staged),
        ]
        .into_iter()
        .map(|p| TempFile(Some(p)))
        .collect()
    }
}

fn precondition_failed() -> s3s::S3Error {
    s3_error!(
        PreconditionFailed,
        "At least one of the pre-conditions you specified did not hold (If-None-Match: *: an object exists at this key)"
    )
}
