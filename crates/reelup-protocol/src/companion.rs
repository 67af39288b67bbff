//! The wire types of Uppy Companion's S3 routes (`/s3/params`, `/s3/multipart/...`), as the
//! engine sends and reads them and as `reelup-server` answers them. One definition for both
//! sides, so a renamed field breaks the build rather than an upload.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What the engine tells the endpoint about a file. The endpoint picks the key.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FileMeta {
    pub filename: String,
    #[serde(rename = "type")]
    pub content_type: String,
    #[serde(skip)]
    pub size: u64,
    /// The part size a multipart upload will use, declared at create with `size` so the
    /// server can bound each part when it signs it.
    #[serde(skip)]
    pub part_size: Option<u64>,
}

/// A presigned POST policy: send every field, then the file, as multipart/form-data.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PostPolicy {
    pub method: String,
    pub url: String,
    /// Kept in the endpoint's order; S3 only requires that `file` comes last.
    pub fields: BTreeMap<String, String>,
    #[serde(default)]
    pub expires: Option<u64>,
}

impl PostPolicy {
    /// The object key; always the endpoint's, never one the client made up.
    pub fn key(&self) -> Option<&str> {
        self.fields.get("key").map(String::as_str)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MultipartStart {
    pub key: String,
    #[serde(rename = "uploadId")]
    pub upload_id: String,
    #[serde(default)]
    pub bucket: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SignedPart {
    pub url: String,
    #[serde(default)]
    pub expires: Option<u64>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
pub struct ListedPart {
    #[serde(rename = "PartNumber")]
    pub part_number: u32,
    #[serde(rename = "ETag")]
    pub etag: String,
    #[serde(rename = "Size", default)]
    pub size: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
pub struct CompletedPart {
    /// A JSON number: Companion rejects a string here.
    #[serde(rename = "PartNumber")]
    pub part_number: u32,
    #[serde(rename = "ETag")]
    pub etag: String,
}
