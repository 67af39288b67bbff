//! The seam between the engine and whoever signs its requests: `reelup-server`, or any
//! server that speaks Uppy Companion's S3 routes.

pub mod identity;

use std::future::Future;

use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use reelup_protocol::{CompleteMultipart, CreateMultipart, ErrorBody, LinkRequest, LinkResponse};

use crate::{
    CompletedPart, FileMeta, ListedPart, MultipartStart, PostPolicy, Secret, SignedPart,
    UploadError,
};
use reelup_protocol::MultipartCompleted;

/// The presign routes the engine needs. Implemented over HTTP by [`CompanionClient`];
/// tests wrap it to inject faults.
pub trait PresignEndpoint: Send + Sync + 'static {
    fn post_policy(
        &self,
        file: &FileMeta,
    ) -> impl Future<Output = Result<PostPolicy, UploadError>> + Send;

    fn create_multipart(
        &self,
        file: &FileMeta,
    ) -> impl Future<Output = Result<MultipartStart, UploadError>> + Send;

    /// A part's URL; with `crc64nvme` (base64), asks for that checksum to be signed in
    /// (reelup-server's extension; see [`reelup_protocol::companion`]).
    fn sign_part(
        &self,
        key: &str,
        upload_id: &str,
        part_number: u32,
        crc64nvme: Option<&str>,
    ) -> impl Future<Output = Result<SignedPart, UploadError>> + Send;

    fn list_parts(
        &self,
        key: &str,
        upload_id: &str,
    ) -> impl Future<Output = Result<Vec<ListedPart>, UploadError>> + Send;

    /// Completes the upload; with `crc64nvme` (base64), the store must match the whole
    /// object's CRC. The answer says what the store confirmed.
    fn complete(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[CompletedPart],
        crc64nvme: Option<&str>,
    ) -> impl Future<Output = Result<MultipartCompleted, UploadError>> + Send;

    fn abort(
        &self,
        key: &str,
        upload_id: &str,
    ) -> impl Future<Output = Result<(), UploadError>> + Send;
}

/// A client of Uppy Companion's S3 routes (`/s3/params`, `/s3/multipart/...`), which
/// `reelup-server` serves too. Sends `Authorization: Bearer <token>` to any endpoint.
#[derive(Debug, Clone)]
pub struct CompanionClient {
    http: reqwest::Client,
    base: String,
    token: Option<Secret>,
}

fn enc(s: &str) -> String {
    utf8_percent_encode(s, NON_ALPHANUMERIC).to_string()
}

impl CompanionClient {
    /// `base` is the endpoint URL without the `/s3` suffix, e.g. `http://127.0.0.1:7300`.
    pub fn new(http: reqwest::Client, base: &str, token: Option<Secret>) -> Self {
        Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            token,
        }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    async fn send<T: serde::de::DeserializeOwned>(
        &self,
        route: &str,
        req: reqwest::RequestBuilder,
    ) -> Result<T, UploadError> {
        let req = match &self.token {
            Some(t) => req.bearer_auth(t.expose()),
            None => req,
        };
        let unreachable = |e: reqwest::Error| UploadError::EndpointUnreachable {
            endpoint: self.base.clone(),
            reason: root_cause(&e.without_url()),
        };
        let resp = req.send().await.map_err(unreachable)?;
        let status = resp.status();
        if status == reqwest::StatusCode::UNAUTHORIZED {
            return Err(UploadError::Unauthorized {
                endpoint: self.base.clone(),
            });
        }
        let body = resp.bytes().await.map_err(unreachable)?;
        if let Some(said) = upload_gone(status, &body) {
            return Err(UploadError::UploadGone { said });
        }
        if !status.is_success() {
            // reelup-server's `{error, message}`, or either of Companion's shapes; else the
            // start of whatever came back (a proxy's HTML page).
            let message = serde_json::from_slice::<ErrorBody>(&body)
                .ok()
                .and_then(|b| b.text().map(str::to_owned))
                .unwrap_or_else(|| String::from_utf8_lossy(&body).chars().take(200).collect());
            return Err(UploadError::Endpoint {
                route: route.to_owned(),
                status: status.as_u16(),
                // A server may quote the store's presigned URL in its message.
                message: crate::redact_urls(&message),
            });
        }
        serde_json::from_slice(&body).map_err(|e| UploadError::Endpoint {
            route: route.to_owned(),
            status: status.as_u16(),
            message: format!("unexpected response ({e}); is this a Companion-compatible endpoint?"),
        })
    }

    /// `POST /reelup/link`: a CloudFront signed link to an object of the token's user, from
    /// a reelup-server that holds a CloudFront key. A plain Companion has no such route, so
    /// for that flavour nothing is sent and the answer is [`UploadError::LinksUnavailable`];
    /// so it is for a reelup-server without a key (501).
    pub async fn sign_link(
        &self,
        flavour: crate::config::Flavour,
        request: &LinkRequest,
    ) -> Result<LinkResponse, UploadError> {
        if flavour == crate::config::Flavour::Companion {
            return Err(UploadError::LinksUnavailable {
                endpoint: self.base.clone(),
                why: "Uppy Companion has no route for signed links",
            });
        }
        let url = format!("{}/reelup/link", self.base);
        match self
            .send("POST /reelup/link", self.http.post(url).json(request))
            .await
        {
            Err(UploadError::Endpoint { status: 501, .. }) => Err(UploadError::LinksUnavailable {
                endpoint: self.base.clone(),
                why: "its config holds no CloudFront key",
            }),
            other => other,
        }
    }

    fn multipart_url(&self, upload_id: &str, rest: &str, key: &str) -> String {
        format!(
            "{}/s3/multipart/{}{}?key={}",
            self.base,
            enc(upload_id),
            rest,
            enc(key)
        )
    }
}

/// Refuses a presigned URL (`what`: "POST policy URL", "part URL") that would send a video
/// over plain http to somewhere other than this machine: a remote endpoint must hand back
/// https URLs. Only an endpoint on this machine (the local stack, a dev server) may hand back
/// http ones. `endpoint` is the presign endpoint the item was queued for.
pub fn check_presigned_url(
    endpoint: &str,
    url: &str,
    what: &'static str,
) -> Result<(), UploadError> {
    let parsed = url::Url::parse(url).map_err(|e| UploadError::Endpoint {
        route: what.into(),
        status: 200,
        message: format!("the {what} is not a URL ({e})"),
    })?;
    if parsed.scheme() == "https" {
        return Ok(());
    }
    let endpoint_local = url::Url::parse(endpoint).is_ok_and(|e| crate::config::is_loopback(&e));
    if parsed.scheme() == "http" && endpoint_local {
        return Ok(());
    }
    Err(UploadError::InsecureUrl {
        endpoint: endpoint.to_owned(),
        what,
        host: format!("{}://{}", parsed.scheme(), parsed.host_str().unwrap_or("")),
    })
}

/// Whether an error answer says the multipart upload no longer exists, and who said so:
/// reelup-server answers 404 `{"error": "no_such_upload"}`; Uppy Companion passes S3's
/// `NoSuchUpload` on as a 500 whose `error` is the AWS SDK's exception (outside production;
/// in production it says only "Something went wrong", and the engine learns no more).
/// Codes, not messages, are compared.
fn upload_gone(status: reqwest::StatusCode, body: &[u8]) -> Option<String> {
    if status.is_success() {
        return None;
    }
    let answer: serde_json::Value = serde_json::from_slice(body).ok()?;
    match answer.get("error")? {
        serde_json::Value::String(code) if status == 404 && code == "no_such_upload" => {
            Some(format!(
                "the endpoint answered no_such_upload, HTTP {}",
                status.as_u16()
            ))
        }
        serde_json::Value::Object(sdk) => {
            let name = sdk
                .get("name")
                .or_else(|| sdk.get("Code"))
                .and_then(serde_json::Value::as_str)?;
            (name == "NoSuchUpload").then(|| {
                format!(
                    "the endpoint passed on S3's NoSuchUpload, HTTP {}",
                    status.as_u16()
                )
            })
        }
        _ => None,
    }
}

/// The innermost error text, e.g. "Connection refused (os error 111)" rather than
/// reqwest's "error sending request".
pub(crate) fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

impl PresignEndpoint for CompanionClient {
    async fn post_policy(&self, file: &FileMeta) -> Result<PostPolicy, UploadError> {
        let url = format!("{}/s3/params", self.base);
        let size = file.size.to_string();
        let mut query = vec![
            ("filename".to_owned(), file.filename.clone()),
            ("type".to_owned(), file.content_type.clone()),
            ("metadata[name]".to_owned(), file.filename.clone()),
            ("size".to_owned(), size),
        ];
        // Reelup's extension: Companion ignores it and answers no checksum field.
        if let Some(crc) = &file.crc64nvme {
            query.push(("checksumCRC64NVME".to_owned(), crc.clone()));
        }
        query.extend(
            file.metadata
                .iter()
                .filter(|(name, _)| name != "name")
                .map(|(name, value)| (format!("metadata[{name}]"), value.clone())),
        );
        let req = self.http.get(url).query(&query);
        let policy: PostPolicy = self.send("GET /s3/params", req).await?;
        if policy.key().is_none() {
            return Err(UploadError::Endpoint {
                route: "GET /s3/params".into(),
                status: 200,
                message: "the POST policy has no key field".into(),
            });
        }
        Ok(policy)
    }

    async fn create_multipart(&self, file: &FileMeta) -> Result<MultipartStart, UploadError> {
        let url = format!("{}/s3/multipart", self.base);
        // `size` and `partSize` are reelup-server's extension; Companion ignores them.
        let body = CreateMultipart::for_file(file);
        self.send("POST /s3/multipart", self.http.post(url).json(&body))
            .await
    }

    async fn sign_part(
        &self,
        key: &str,
        upload_id: &str,
        part_number: u32,
        crc64nvme: Option<&str>,
    ) -> Result<SignedPart, UploadError> {
        let url = self.multipart_url(upload_id, &format!("/{part_number}"), key);
        let mut req = self.http.get(url);
        if let Some(crc) = crc64nvme {
            req = req.query(&[("checksum", crc)]);
        }
        self.send("GET /s3/multipart/{uploadId}/{partNumber}", req)
            .await
    }

    async fn list_parts(&self, key: &str, upload_id: &str) -> Result<Vec<ListedPart>, UploadError> {
        let url = self.multipart_url(upload_id, "", key);
        self.send("GET /s3/multipart/{uploadId}", self.http.get(url))
            .await
    }

    async fn complete(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[CompletedPart],
        crc64nvme: Option<&str>,
    ) -> Result<MultipartCompleted, UploadError> {
        let url = self.multipart_url(upload_id, "/complete", key);
        let body = CompleteMultipart {
            parts: parts.to_vec(),
            link_lifetime_secs: None,
            checksum_crc64nvme: crc64nvme.map(str::to_owned),
        };
        // Only the confirmed checksum is read from the answer: the key is already known
        // and the streaming URL is built from the profile. Any JSON is accepted, so an
        // endpoint that completed the upload is never called failed over a field it
        // shapes differently.
        let answer: serde_json::Value = self
            .send(
                "POST /s3/multipart/{uploadId}/complete",
                self.http.post(url).json(&body),
            )
            .await?;
        Ok(serde_json::from_value(answer).unwrap_or_default())
    }

    async fn abort(&self, key: &str, upload_id: &str) -> Result<(), UploadError> {
        let url = self.multipart_url(upload_id, "", key);
        // `{}` from Companion and reelup-server (`Aborted`); like complete's, only
        // required to be JSON.
        let _: serde::de::IgnoredAny = self
            .send("DELETE /s3/multipart/{uploadId}", self.http.delete(url))
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_vanished_upload_is_known_by_its_code_from_either_server() {
        use reqwest::StatusCode;
        let reelup = br#"{"error":"no_such_upload","message":"no such multipart upload"}"#;
        assert!(upload_gone(StatusCode::NOT_FOUND, reelup).is_some());
        // Companion 6 outside production: the AWS SDK v3 exception as `error`.
        let companion = br#"{"message":"The specified upload does not exist.","error":{"name":"NoSuchUpload","$fault":"client","$metadata":{"httpStatusCode":404},"Code":"NoSuchUpload"},"requestId":"x"}"#;
        assert!(upload_gone(StatusCode::INTERNAL_SERVER_ERROR, companion).is_some());
        // Only the code counts: the same words in a message, another code, a 404 of
        // another kind, and Companion in production say nothing of the kind.
        for (status, body) in [
            (
                StatusCode::NOT_FOUND,
                &br#"{"error":"not_found","message":"NoSuchUpload"}"#[..],
            ),
            (
                StatusCode::BAD_REQUEST,
                &br#"{"error":"no_such_upload"}"#[..],
            ),
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                &br#"{"message":"Something went wrong","requestId":"x"}"#[..],
            ),
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                &br#"{"error":{"name":"AccessDenied"}}"#[..],
            ),
            (StatusCode::NOT_FOUND, &b"<html>NoSuchUpload</html>"[..]),
        ] {
            assert_eq!(
                upload_gone(status, body),
                None,
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn presigned_urls_are_https_unless_the_endpoint_is_this_machine() {
        let signed = "http://store.example.com/b/k?X-Amz-Signature=abc";
        let err = check_presigned_url("https://uploads.example.com", signed, "part URL")
            .expect_err("http from a remote endpoint");
        assert_eq!(err.code(), "insecure_url");
        let text = err.to_string();
        assert!(text.contains("http://store.example.com"), "{text}");
        assert!(!text.contains("X-Amz-Signature"), "{text}");
        assert!(
            check_presigned_url(
                "https://uploads.example.com",
                "https://s3.example.com/b/k?x=1",
                "part URL"
            )
            .is_ok()
        );
        for local in [
            "http://127.0.0.1:7300",
            "http://localhost:7300",
            "http://[::1]:7300",
        ] {
            assert!(check_presigned_url(local, "http://127.0.0.1:7301/b/k?x", "part URL").is_ok());
        }
        // Not http or https at all.
        assert!(
            check_presigned_url("http://127.0.0.1:7300", "file:///etc/passwd", "part URL").is_err()
        );
        assert!(
            check_presigned_url("https://uploads.example.com", "ftp://h/x", "part URL").is_err()
        );
    }
}
