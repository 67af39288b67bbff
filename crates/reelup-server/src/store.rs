//! The server's own calls to the object store (create, list, complete, abort a multipart
//! upload) and the presigned URLs it hands out. Query signing is rusty-s3's.

use std::time::Duration;

use std::sync::Arc;
use std::time::SystemTime;

use rusty_s3::actions::{CreateMultipartUpload, ListParts, S3Action};

use reelup_protocol::s3_xml::{elements, text_of};
use rusty_s3::{Bucket, UrlStyle};
use url::Url;

use reelup_protocol::companion::{CRC64NVME, CRC64NVME_HEADER};

use crate::checksum::Crc64Nvme;
use crate::credentials::SigningKeys;

/// The time signatures are made at. A seam so that tests can sign in the past and get
/// policies and URLs that have already expired.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> SystemTime;
}

#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A failure talking to the object store, as S3 reported it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "the object store could not be reached ({0}): it is down, or the server's endpoint setting is wrong"
    )]
    Unreachable(String),
    #[error("the object store answered {status} {code}: {message}")]
    S3 {
        status: u16,
        code: String,
        message: String,
    },
    #[error("the object store sent a response that is not S3 XML: {0}")]
    Malformed(String),
}

/// What went wrong in a request to the store, without the request's URL: every URL the
/// server sends to the store is presigned (`X-Amz-Credential`, `X-Amz-Signature`, and with
/// temporary credentials `X-Amz-Security-Token`), and reqwest's errors quote it whole. The
/// causes are kept, since "connection refused" is what an operator needs to read.
pub fn without_secrets(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(&e);
    while let Some(c) = cause {
        let more = c.to_string();
        // hyper repeats its cause in its own text; say each thing once.
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = c.source();
    }
    text
}

/// One part as complete lists it to the store.
#[derive(Debug, Clone)]
pub struct CompletePart {
    pub number: u32,
    pub etag: String,
    /// The part's CRC-64/NVME, for a checksummed upload.
    pub crc64nvme: Option<Crc64Nvme>,
}

/// S3's request headers for checksums ("Checking object integrity in Amazon S3").
pub const CHECKSUM_ALGORITHM_HEADER: &str = "x-amz-checksum-algorithm";
pub const CHECKSUM_TYPE_HEADER: &str = "x-amz-checksum-type";
pub const FULL_OBJECT: &str = "FULL_OBJECT";
/// Asks HEAD and GET for the object's stored checksum.
const CHECKSUM_MODE_HEADER: &str = "x-amz-checksum-mode";

/// What HEAD says of an object.
#[derive(Debug, Clone)]
pub struct ObjectHead {
    pub size: u64,
    /// As the store gave it, quotes and all.
    pub etag: String,
    /// Its whole-object CRC-64/NVME (base64), when the store keeps one.
    pub crc64nvme: Option<String>,
}

/// One part S3 holds for an unfinished multipart upload.
#[derive(Debug, Clone)]
pub struct StoredPart {
    pub number: u32,
    pub etag: String,
    pub size: u64,
    pub last_modified: String,
}

#[derive(Debug, Clone)]
pub struct ObjectStore {
    bucket: Bucket,
    keys: SigningKeys,
    clock: Arc<dyn Clock>,
    http: reqwest::Client,
    /// How long a presigned URL stays valid.
    pub url_lifetime: Duration,
}

/// How long the server's own requests to the store stay signed for; they are sent at once.
const OWN_REQUEST_LIFETIME: Duration = Duration::from_secs(60);

/// The five predefined XML entities back to their characters (store messages quote ETags).
fn xml_unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

impl ObjectStore {
    pub fn new(
        endpoint: Url,
        bucket: &str,
        region: &str,
        keys: SigningKeys,
        path_style: bool,
        url_lifetime: Duration,
    ) -> Result<Self, rusty_s3::BucketError> {
        let style = if path_style {
            UrlStyle::Path
        } else {
            UrlStyle::VirtualHost
        };
        Ok(Self {
            bucket: Bucket::new(endpoint, style, bucket.to_owned(), region.to_owned())?,
            keys,
            clock: Arc::new(SystemClock),
            // Bounds on the server's own calls, so that a store that stops answering
            // cannot hold requests (and their connections) open: connecting, and each wait
            // for more bytes, which also ends a stalled CDN stream.
            http: reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(10))
                .read_timeout(Duration::from_secs(120))
                .build()
                .unwrap_or_default(),
            url_lifetime,
        })
    }

    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    pub fn clock(&self) -> &dyn Clock {
        self.clock.as_ref()
    }

    pub fn keys(&self) -> &SigningKeys {
        &self.keys
    }

    fn now(&self) -> jiff::Timestamp {
        jiff::Timestamp::try_from(self.clock.now()).unwrap_or_else(|_| jiff::Timestamp::now())
    }

    pub fn bucket_name(&self) -> &str {
        self.bucket.name()
    }

    pub fn region(&self) -> &str {
        self.bucket.region()
    }

    /// Where browsers and the engine POST small files.
    pub fn bucket_url(&self) -> Url {
        self.bucket.base_url().clone()
    }

    /// A presigned UploadPart URL. With `content_length`, the length is a signed header:
    /// the store refuses the part unless it is exactly that long. With `crc64nvme`, so is
    /// the part's `x-amz-checksum-crc64nvme`: the request must carry exactly that value,
    /// and the store refuses a body whose CRC differs (BadDigest).
    pub fn part_url(
        &self,
        key: &str,
        upload_id: &str,
        part_number: u16,
        content_length: Option<u64>,
        crc64nvme: Option<Crc64Nvme>,
    ) -> Url {
        let keys = self.keys.current();
        let mut action = self
            .bucket
            .upload_part(Some(&keys.s3), key, part_number, upload_id);
        if let Some(len) = content_length {
            action
                .headers_mut()
                .insert("content-length", len.to_string());
        }
        if let Some(crc) = crc64nvme {
            action
                .headers_mut()
                .insert(CRC64NVME_HEADER, crc.to_base64());
        }
        action.sign_with_time(self.url_lifetime, &self.now())
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    pub fn head_url(&self, key: &str) -> Url {
        let keys = self.keys.current();
        self.bucket
            .head_object(Some(&keys.s3), key)
            .sign(OWN_REQUEST_LIFETIME)
    }

    pub fn get_url(&self, key: &str) -> Url {
        let keys = self.keys.current();
        self.bucket
            .get_object(Some(&keys.s3), key)
            .sign(OWN_REQUEST_LIFETIME)
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Result<String, StoreError> {
        let resp = req
            .send()
            .await
            .map_err(|e| StoreError::Unreachable(without_secrets(e)))?;
        let status = resp.status();
        let body = resp
            .text()
            .await
            .map_err(|e| StoreError::Unreachable(without_secrets(e)))?;
        // S3 can answer 200 and still carry an <Error> (CompleteMultipartUpload does).
        if !status.is_success() || body.contains("<Error>") {
            return Err(StoreError::S3 {
                status: status.as_u16(),
                code: text_of(&body, "Code").unwrap_or_default().to_owned(),
                message: xml_unescape(text_of(&body, "Message").unwrap_or_default()),
            });
        }
        Ok(body)
    }

    /// Creates the bucket unless it exists already.
    pub async fn ensure_bucket(&self) -> Result<(), StoreError> {
        let keys = self.keys.current();
        let url = self
            .bucket
            .create_bucket(&keys.s3)
            .sign(OWN_REQUEST_LIFETIME);
        match self.send(self.http.put(url)).await {
            Ok(_) => Ok(()),
            Err(StoreError::S3 { code, .. })
                if code == "BucketAlreadyOwnedByYou" || code == "BucketAlreadyExists" =>
            {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Creates a multipart upload. With `crc64nvme`, the store is told that every part and
    /// the whole object carry a CRC-64/NVME, combined into a full-object checksum
    /// (`ChecksumAlgorithm=CRC64NVME`, `ChecksumType=FULL_OBJECT`).
    pub async fn create_multipart(
        &self,
        key: &str,
        content_type: &str,
        metadata: &[(String, String)],
        crc64nvme: bool,
    ) -> Result<String, StoreError> {
        let keys = self.keys.current();
        let mut action = CreateMultipartUpload::new(&self.bucket, Some(&keys.s3), key);
        // Signed headers: the store must see exactly these values.
        let mut headers = vec![("content-type".to_owned(), content_type.to_owned())];
        for (name, value) in metadata {
            headers.push((format!("x-amz-meta-{name}"), value.clone()));
        }
        if crc64nvme {
            headers.push((CHECKSUM_ALGORITHM_HEADER.to_owned(), CRC64NVME.to_owned()));
            headers.push((CHECKSUM_TYPE_HEADER.to_owned(), FULL_OBJECT.to_owned()));
        }
        for (name, value) in &headers {
            action.headers_mut().insert(name.clone(), value.clone());
        }
        let url = action.sign(OWN_REQUEST_LIFETIME);
        let mut req = self.http.post(url);
        for (name, value) in &headers {
            req = req.header(name, value);
        }
        let body = self.send(req).await?;
        let parsed = CreateMultipartUpload::parse_response(&body)
            .map_err(|e| StoreError::Malformed(e.to_string()))?;
        Ok(parsed.upload_id().to_owned())
    }

    /// Every part S3 holds for the upload, across all pages.
    pub async fn list_parts(
        &self,
        key: &str,
        upload_id: &str,
    ) -> Result<Vec<StoredPart>, StoreError> {
        let keys = self.keys.current();
        let mut parts = Vec::new();
        let mut marker = None;
        loop {
            let mut action = ListParts::new(&self.bucket, Some(&keys.s3), key, upload_id);
            if let Some(m) = marker {
                action.set_part_number_marker(m);
            }
            let body = self
                .send(self.http.get(action.sign(OWN_REQUEST_LIFETIME)))
                .await?;
            // Parsed leniently: some S3-compatible stores (s3s-fs) leave out ETag,
            // MaxParts and IsTruncated, which rusty-s3's strict parser requires.
            for part in elements(&body, "Part") {
                let Some(number) = text_of(part, "PartNumber").and_then(|n| n.parse().ok()) else {
                    continue;
                };
                parts.push(StoredPart {
                    number,
                    etag: text_of(part, "ETag")
                        .unwrap_or_default()
                        .replace("&quot;", "\""),
                    size: text_of(part, "Size")
                        .and_then(|n| n.parse().ok())
                        .unwrap_or(0),
                    last_modified: text_of(part, "LastModified").unwrap_or_default().to_owned(),
                });
            }
            let truncated = text_of(&body, "IsTruncated") == Some("true");
            match text_of(&body, "NextPartNumberMarker").and_then(|n| n.parse().ok()) {
                Some(next) if truncated => marker = Some(next),
                _ => break,
            }
        }
        Ok(parts)
    }

    /// Completes with the client's own part numbers (rusty-s3's body would renumber them
    /// and has no checksums). With `whole`, the whole object's CRC-64/NVME goes in signed
    /// headers for the store to check, and what the store answers for it is returned.
    ///
    /// Sent with `If-None-Match: *` (signed): the store makes the object only if none is at
    /// the key (S3: 412 PreconditionFailed, or 409 ConditionalRequestConflict when another
    /// write of the key races it), so a Complete never replaces an object already handed
    /// out. A store that does not implement conditional writes (501 NotImplemented) is
    /// asked again without, and the log says so.
    pub async fn complete(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[CompletePart],
        whole: Option<Crc64Nvme>,
    ) -> Result<Option<String>, StoreError> {
        match self.complete_with(key, upload_id, parts, whole, true).await {
            Err(StoreError::S3 { status: 501, .. }) => {
                tracing::warn!(
                    "the object store does not implement If-None-Match on CompleteMultipartUpload; completing without it, so a completed object could be replaced"
                );
                self.complete_with(key, upload_id, parts, whole, false)
                    .await
            }
            other => other,
        }
    }

    async fn complete_with(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[CompletePart],
        whole: Option<Crc64Nvme>,
        create_only: bool,
    ) -> Result<Option<String>, StoreError> {
        let keys = self.keys.current();
        let mut action = self.bucket.complete_multipart_upload(
            Some(&keys.s3),
            key,
            upload_id,
            std::iter::empty(),
        );
        let mut headers: Vec<(&str, String)> = match whole {
            Some(crc) => vec![
                (CRC64NVME_HEADER, crc.to_base64()),
                (CHECKSUM_TYPE_HEADER, FULL_OBJECT.to_owned()),
            ],
            None => Vec::new(),
        };
        if create_only {
            headers.push(("if-none-match", "*".to_owned()));
        }
        for (name, value) in &headers {
            action.headers_mut().insert(*name, value.clone());
        }
        let url = action.sign(OWN_REQUEST_LIFETIME);
        let mut body = String::from("<CompleteMultipartUpload>");
        for part in parts {
            let etag = part.etag.trim_matches('"');
            body.push_str(&format!(
                "<Part><PartNumber>{}</PartNumber><ETag>\"{}\"</ETag>",
                part.number,
                xml_escape(etag)
            ));
            if let Some(crc) = part.crc64nvme {
                // Base64 needs no escaping.
                body.push_str(&format!(
                    "<ChecksumCRC64NVME>{}</ChecksumCRC64NVME>",
                    crc.to_base64()
                ));
            }
            body.push_str("</Part>");
        }
        body.push_str("</CompleteMultipartUpload>");
        let mut req = self.http.post(url).body(body);
        for (name, value) in &headers {
            req = req.header(*name, value);
        }
        let answer = self.send(req).await?;
        Ok(text_of(&answer, "ChecksumCRC64NVME").map(str::to_owned))
    }

    /// Writes `body` at `key` only if nothing is there yet (`If-None-Match: *`, signed, so
    /// nothing on the way can drop it). `Ok(false)`: the key exists, or another writer won a
    /// race for it (S3 answers 412, or 409 when two conditional writes overlap).
    pub async fn put_if_absent(&self, key: &str, body: Vec<u8>) -> Result<bool, StoreError> {
        let keys = self.keys.current();
        let mut action = self.bucket.put_object(Some(&keys.s3), key);
        action.headers_mut().insert("if-none-match", "*");
        let url = action.sign(OWN_REQUEST_LIFETIME);
        let req = self
            .http
            .put(url)
            .header(reqwest::header::IF_NONE_MATCH, "*")
            .body(body);
        match self.send(req).await {
            Ok(_) => Ok(true),
            Err(StoreError::S3 {
                status: 412 | 409, ..
            }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Whether `key` holds an object: `Some(false)` when the store says it does not,
    /// `None` when the store will not say (403: the identity has no `s3:GetObject`, which
    /// uploads never need).
    pub async fn exists(&self, key: &str) -> Result<Option<bool>, StoreError> {
        let resp = self
            .http
            .head(self.head_url(key))
            .send()
            .await
            .map_err(|e| StoreError::Unreachable(without_secrets(e)))?;
        match resp.status().as_u16() {
            200..=299 => Ok(Some(true)),
            404 => Ok(Some(false)),
            403 => Ok(None),
            status => Err(StoreError::S3 {
                status,
                code: String::new(),
                message: "HEAD of the object failed".into(),
            }),
        }
    }

    /// What the store says of the object at `key`: its size, ETag and whole-object
    /// CRC-64/NVME (asked for with `x-amz-checksum-mode: ENABLED`, signed). `None` when
    /// there is no object, or the store will not say (403: no `s3:GetObject`).
    pub async fn head(&self, key: &str) -> Result<Option<ObjectHead>, StoreError> {
        let keys = self.keys.current();
        let mut action = self.bucket.head_object(Some(&keys.s3), key);
        action.headers_mut().insert(CHECKSUM_MODE_HEADER, "ENABLED");
        let url = action.sign(OWN_REQUEST_LIFETIME);
        let resp = self
            .http
            .head(url)
            .header(CHECKSUM_MODE_HEADER, "ENABLED")
            .send()
            .await
            .map_err(|e| StoreError::Unreachable(without_secrets(e)))?;
        let status = resp.status().as_u16();
        if matches!(status, 403 | 404) {
            return Ok(None);
        }
        if !resp.status().is_success() {
            return Err(StoreError::S3 {
                status,
                code: String::new(),
                message: "HEAD of the object failed".into(),
            });
        }
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        // The header itself: a HEAD has no body for reqwest to measure.
        let Some(size) = header("content-length").and_then(|v| v.parse().ok()) else {
            return Ok(None);
        };
        Ok(Some(ObjectHead {
            size,
            etag: header("etag").unwrap_or_default(),
            crc64nvme: header(CRC64NVME_HEADER),
        }))
    }

    pub async fn abort(&self, key: &str, upload_id: &str) -> Result<(), StoreError> {
        let keys = self.keys.current();
        let url = self
            .bucket
            .abort_multipart_upload(Some(&keys.s3), key, upload_id)
            .sign(OWN_REQUEST_LIFETIME);
        self.send(self.http.delete(url)).await?;
        Ok(())
    }
}
