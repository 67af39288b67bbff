//! The server's own calls to the object store (create, list, complete, abort a multipart
//! upload) and the presigned URLs it hands out. Query signing is rusty-s3's.

use std::time::Duration;

use rusty_s3::actions::{CreateMultipartUpload, ListParts, S3Action};
use rusty_s3::{Bucket, Credentials, UrlStyle};
use url::Url;

/// A failure talking to the object store, as S3 reported it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the object store could not be reached: {0}")]
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
    creds: Credentials,
    http: reqwest::Client,
    /// How long a presigned URL stays valid.
    pub url_lifetime: Duration,
}

/// How long the server's own requests to the store stay signed for; they are sent at once.
const OWN_REQUEST_LIFETIME: Duration = Duration::from_secs(60);

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
        access_key: &str,
        secret_key: &str,
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
            creds: Credentials::new(access_key, secret_key),
            http: reqwest::Client::new(),
            url_lifetime,
        })
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

    pub fn part_url(&self, key: &str, upload_id: &str, part_number: u16) -> Url {
        self.bucket
            .upload_part(Some(&self.creds), key, part_number, upload_id)
            .sign(self.url_lifetime)
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    pub fn head_url(&self, key: &str) -> Url {
        self.bucket
            .head_object(Some(&self.creds), key)
            .sign(OWN_REQUEST_LIFETIME)
    }

    pub fn get_url(&self, key: &str) -> Url {
        self.bucket
            .get_object(Some(&self.creds), key)
            .sign(OWN_REQUEST_LIFETIME)
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Result<String, StoreError> {
        let resp = req
            .send()
            .await
            .map_err(|e| StoreError::Unreachable(e.to_string()))?;
        let status = resp.status();
        let body = resp
            .text()
            .await
            .map_err(|e| StoreError::Unreachable(e.to_string()))?;
        // S3 can answer 200 and still carry an <Error> (CompleteMultipartUpload does).
        if !status.is_success() || body.contains("<Error>") {
            let field = |tag: &str| {
                body.split(&format!("<{tag}>"))
                    .nth(1)
                    .and_then(|rest| rest.split(&format!("</{tag}>")).next())
                    .unwrap_or_default()
                    .to_owned()
            };
            return Err(StoreError::S3 {
                status: status.as_u16(),
                code: field("Code"),
                message: field("Message"),
            });
        }
        Ok(body)
    }

    /// Creates the bucket unless it exists already.
    pub async fn ensure_bucket(&self) -> Result<(), StoreError> {
        let url = self
            .bucket
            .create_bucket(&self.creds)
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

    pub async fn create_multipart(
        &self,
        key: &str,
        content_type: &str,
        metadata: &[(String, String)],
    ) -> Result<String, StoreError> {
        let mut action = CreateMultipartUpload::new(&self.bucket, Some(&self.creds), key);
        // Signed headers: the store must see exactly these values.
        action
            .headers_mut()
            .insert("content-type", content_type.to_owned());
        for (name, value) in metadata {
            action
                .headers_mut()
                .insert(format!("x-amz-meta-{name}"), value.clone());
        }
        let url = action.sign(OWN_REQUEST_LIFETIME);
        let mut req = self.http.post(url).header("content-type", content_type);
        for (name, value) in metadata {
            req = req.header(format!("x-amz-meta-{name}"), value);
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
        let mut parts = Vec::new();
        let mut marker = None;
        loop {
            let mut action = ListParts::new(&self.bucket, Some(&self.creds), key, upload_id);
            if let Some(m) = marker {
                action.set_part_number_marker(m);
            }
            let body = self
                .send(self.http.get(action.sign(OWN_REQUEST_LIFETIME)))
                .await?;
            let page = ListParts::parse_response(&body)
                .map_err(|e| StoreError::Malformed(e.to_string()))?;
            parts.extend(page.parts.iter().map(|p| StoredPart {
                number: u32::from(p.number),
                etag: p.etag.clone(),
                size: p.size,
                last_modified: p.last_modified.clone(),
            }));
            match page.next_part_number_marker {
                Some(next) if page.parts.len() == usize::from(page.max_parts) => {
                    marker = Some(next)
                }
                _ => break,
            }
        }
        Ok(parts)
    }

    /// Completes with the client's own part numbers (rusty-s3's body would renumber them).
    pub async fn complete(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[(u32, String)],
    ) -> Result<(), StoreError> {
        let url = self
            .bucket
            .complete_multipart_upload(Some(&self.creds), key, upload_id, std::iter::empty())
            .sign(OWN_REQUEST_LIFETIME);
        let mut body = String::from("<CompleteMultipartUpload>");
        for (number, etag) in parts {
            let etag = etag.trim_matches('"');
            body.push_str(&format!(
                "<Part><PartNumber>{number}</PartNumber><ETag>\"{}\"</ETag></Part>",
                xml_escape(etag)
            ));
        }
        body.push_str("</CompleteMultipartUpload>");
        self.send(self.http.post(url).body(body)).await?;
        Ok(())
    }

    pub async fn abort(&self, key: &str, upload_id: &str) -> Result<(), StoreError> {
        let url = self
            .bucket
            .abort_multipart_upload(Some(&self.creds), key, upload_id)
            .sign(OWN_REQUEST_LIFETIME);
        self.send(self.http.delete(url)).await?;
        Ok(())
    }
}
