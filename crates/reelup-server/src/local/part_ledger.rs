//! What the local store remembers about each unfinished multipart upload that s3s-fs does
//! not: the checksum algorithm it was created with, and each part's ETag, size and
//! CRC-64/NVME as they were received. One small JSON file per upload and per part, in a
//! folder beside s3s-fs's root (not inside it, where s3s-fs would list a folder as a
//! bucket), so uploads in progress keep their checks across a restart. Written to a
//! temporary name and renamed, so a crash never leaves half a record.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::checksum::Crc64Nvme;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadRecord {
    /// `x-amz-checksum-algorithm` at create (`CRC64NVME`, `CRC32`...).
    pub algorithm: Option<String>,
    /// `x-amz-checksum-type` at create (`FULL_OBJECT`, `COMPOSITE`).
    pub checksum_type: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartRecord {
    /// The part's ETag as the store answered it (hex MD5, no quotes).
    pub etag: String,
    pub size: u64,
    /// The part's CRC-64/NVME.
    pub crc64nvme: u64,
}

impl PartRecord {
    pub fn crc(&self) -> Crc64Nvme {
        Crc64Nvme(self.crc64nvme)
    }
}

#[derive(Debug)]
pub struct PartLedger {
    dir: PathBuf,
}

impl PartLedger {
    pub fn open(dir: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        Ok(Self {
            dir: dir.to_owned(),
        })
    }

    fn upload_path(&self, id: Uuid) -> PathBuf {
        self.dir.join(format!("{id}.upload.json"))
    }

    fn part_path(&self, id: Uuid, part: i32) -> PathBuf {
        self.dir.join(format!("{id}.part-{part}.json"))
    }

    async fn write<T: Serialize>(&self, path: &Path, value: &T) -> std::io::Result<()> {
        let tmp = path.with_extension(format!("tmp-{}", Uuid::new_v4()));
        tokio::fs::write(&tmp, serde_json::to_vec(value)?).await?;
        let renamed = tokio::fs::rename(&tmp, path).await;
        if renamed.is_err() {
            let _ = tokio::fs::remove_file(&tmp).await;
        }
        renamed
    }

    async fn read<T: for<'de> Deserialize<'de>>(path: &Path) -> std::io::Result<Option<T>> {
        match tokio::fs::read(path).await {
            Ok(bytes) => Ok(Some(serde_json::from_slice(&bytes)?)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub async fn record_upload(&self, id: Uuid, record: &UploadRecord) -> std::io::Result<()> {
        self.write(&self.upload_path(id), record).await
    }

    pub async fn upload(&self, id: Uuid) -> std::io::Result<Option<UploadRecord>> {
        Self::read(&self.upload_path(id)).await
    }

    pub async fn record_part(
        &self,
        id: Uuid,
        part: i32,
        record: &PartRecord,
    ) -> std::io::Result<()> {
        self.write(&self.part_path(id, part), record).await
    }

    pub async fn part(&self, id: Uuid, part: i32) -> std::io::Result<Option<PartRecord>> {
        Self::read(&self.part_path(id, part)).await
    }

    /// Drops everything about an upload, once it is completed or aborted.
    pub async fn forget(&self, id: Uuid) -> std::io::Result<()> {
        let prefix = format!("{id}.");
        let mut entries = tokio::fs::read_dir(&self.dir).await?;
        while let Some(entry) = entries.next_entry().await? {
            if entry
                .file_name()
                .to_str()
                .is_some_and(|n| n.starts_with(&prefix))
            {
                let _ = tokio::fs::remove_file(entry.path()).await;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn records_survive_reopening_and_are_forgotten_per_upload() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let part = PartRecord {
            etag: "abc".into(),
            size: 5,
            crc64nvme: 7,
        };
        {
            let ledger = PartLedger::open(dir.path()).expect("open");
            let upload = UploadRecord {
                algorithm: Some("CRC64NVME".into()),
                checksum_type: Some("FULL_OBJECT".into()),
            };
            ledger.record_upload(a, &upload).await.expect("upload");
            ledger.record_part(a, 1, &part).await.expect("part");
            ledger.record_part(b, 1, &part).await.expect("part");
        }
        let ledger = PartLedger::open(dir.path()).expect("reopen");
        assert_eq!(ledger.part(a, 1).await.expect("read"), Some(part.clone()));
        assert_eq!(ledger.part(a, 2).await.expect("read"), None);
        assert!(ledger.upload(a).await.expect("read").is_some());
        ledger.forget(a).await.expect("forget");
        assert_eq!(ledger.part(a, 1).await.expect("read"), None);
        assert_eq!(ledger.upload(a).await.expect("read"), None);
        assert_eq!(ledger.part(b, 1).await.expect("read"), Some(part));
        let left: Vec<_> = std::fs::read_dir(dir.path()).expect("dir").collect();
        assert_eq!(left.len(), 1, "only b's part is left, no temporary files");
    }
}
