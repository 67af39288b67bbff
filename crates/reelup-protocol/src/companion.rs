//! The wire types of Uppy Companion's S3 routes (`/s3/params`, `/s3/multipart/...`), as the
//! engine sends and reads them and as `reelup-server` answers them. One definition for both
//! sides, so a renamed field breaks the build rather than an upload.
//!
//! What must stay true: every serde name here is Companion's, byte for byte, and each
//! field has the JSON type Companion gives it (a part number is a JSON number, never a
//! string). Reelup's additions are optional, marked "Reelup's extension" below, and
//! ignored by Companion and by Uppy; a client must work against a Companion that sends
//! none of them. The tests at the bottom pin each type's JSON text and parse answers in
//! the shape a real Companion 6 gives (`tests/companion.rs` compares the live servers).
//!
//! | route                                      | request             | answer                |
//! |--------------------------------------------|---------------------|-----------------------|
//! | `GET /s3/params?filename&type&metadata[..]`| query string        | [`PostPolicy`]        |
//! | `POST /s3/multipart`                       | [`CreateMultipart`] | [`MultipartStart`]    |
//! | `GET /s3/multipart/{id}/{n}?key`           |                     | [`SignedPart`]        |
//! | `GET /s3/multipart/{id}/batch?key&partNumbers` |                 | [`SignedPartBatch`]   |
//! | `GET /s3/multipart/{id}?key`               |                     | `Vec<`[`ListedPart`]`>` |
//! | `POST /s3/multipart/{id}/complete?key`     | [`CompleteMultipart`] | [`MultipartCompleted`] |
//! | `DELETE /s3/multipart/{id}?key`            |                     | [`Aborted`]           |
//! | `GET /s3/sts`                              |                     | [`StsCredentials`]    |
//! | `POST /reelup/link` (reelup-server only)   | [`crate::LinkRequest`] | [`crate::LinkResponse`] |
//! | any route, on failure                      |                     | [`ErrorBody`]         |
//!
//! Signed links (reelup-server's extension, see [`crate::reelup_routes`]): a client that
//! wants signed streaming URLs sends `linkLifetimeSecs` (seconds) in the `/s3/params` query
//! or in the complete body; a server that signs answers a CloudFront signed `streamingUrl`
//! with `streamingUrlExpiresAt` (Unix seconds). A server configured to require signed links
//! signs whether or not the client asks. Companion ignores the field and answers neither.
//!
//! Checksums (reelup-server's extension): the client computes a CRC-64/NVME of what it
//! sends and lets the server sign it in, so the store refuses damaged bytes and checks
//! the whole object at complete. Every field is optional both ways; a server that answers
//! none of them (Companion) leaves the client on its MD5/ETag checks.
//! - Multipart: the create body carries `checksumAlgorithm: "CRC64NVME"`; a server that
//!   will check answers the same `checksumAlgorithm` (and creates the S3 upload with
//!   `ChecksumAlgorithm=CRC64NVME`, `ChecksumType=FULL_OBJECT`). Each part is then signed
//!   with `?checksum=<base64 CRC>` in the part route's query; the answer's `headers` list
//!   the signed `x-amz-checksum-crc64nvme`, which the client sends with the part. Complete
//!   lists each part's `ChecksumCRC64NVME` and the whole object's `checksumCRC64NVME`; the
//!   answer's `checksumCRC64NVME` is what the store confirmed for the object.
//! - POST: `/s3/params?...&checksumCRC64NVME=<base64 CRC>` puts an
//!   `x-amz-checksum-crc64nvme` field into the policy (an exact-value condition), which the
//!   client sends with the other fields; the store refuses a file that does not match.
//!
//! CRC values are base64 of the 8-byte big-endian CRC-64/NVME (S3's form).

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

/// The one checksum algorithm of the extension: S3's full-object CRC-64/NVME.
pub const CRC64NVME: &str = "CRC64NVME";
/// The header that carries a part's or an object's CRC-64/NVME (base64, big-endian).
pub const CRC64NVME_HEADER: &str = "x-amz-checksum-crc64nvme";

/// What the engine tells the endpoint about a file. The endpoint picks the key. Not itself
/// on the wire: [`CreateMultipart::for_file`] and the `/s3/params` query are built from it.
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
    /// Object metadata besides `name` (the video's details: `duration`, `width`...), sent
    /// as Companion's `metadata[...]`; the server keeps what its policy allows.
    #[serde(skip)]
    pub metadata: Vec<(String, String)>,
    /// The whole file's CRC-64/NVME (base64), for a POST upload: sent as the `/s3/params`
    /// query's `checksumCRC64NVME` (Reelup's extension).
    #[serde(skip)]
    pub crc64nvme: Option<String>,
}

/// `GET /s3/params`: a presigned POST policy. Send every field, then the file, as
/// multipart/form-data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostPolicy {
    /// Always `"POST"` from Companion and reelup-server.
    pub method: String,
    pub url: String,
    /// S3 only requires that `file` comes after all of them; their own order is free.
    pub fields: BTreeMap<String, String>,
    /// Seconds the policy stays valid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<u64>,
    /// Reelup's extension: where viewers will stream the object, built from its key by
    /// the server's CDN base. Companion sends none; the engine builds it from the profile.
    #[serde(
        rename = "streamingUrl",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub streaming_url: Option<String>,
    /// Reelup's extension: when `streamingUrl` is a signed link, the moment (Unix seconds)
    /// it stops working. Absent for a plain CDN URL.
    #[serde(
        rename = "streamingUrlExpiresAt",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub streaming_url_expires_at: Option<u64>,
}

impl PostPolicy {
    /// The object key; always the endpoint's, never one the client made up.
    pub fn key(&self) -> Option<&str> {
        self.fields.get("key").map(String::as_str)
    }
}

/// `POST /s3/multipart`'s body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreateMultipart {
    /// The file's own name. Companion and reelup-server both require it; a body without
    /// one parses as `""` here so that the server refuses it in its own words.
    #[serde(default)]
    pub filename: String,
    /// The content type. Companion requires it; reelup-server reads a missing one as
    /// `application/octet-stream` (which its allowlist then judges).
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// Uppy sends the whole `file.meta` here, so values are any JSON (numbers, `null`),
    /// not only strings; servers turn them into object metadata.
    #[serde(default)]
    pub metadata: BTreeMap<String, serde_json::Value>,
    /// Reelup's extension: the file's size in bytes, so the server can bound each part
    /// when it signs it. Companion ignores it; a client that leaves it out is held to the
    /// server's size limit at complete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Reelup's extension, only with `size`: the size of every part but the last, so the
    /// server signs each part's exact length into its URL. Companion ignores it.
    #[serde(rename = "partSize", default, skip_serializing_if = "Option::is_none")]
    pub part_size: Option<u64>,
    /// Reelup's extension: the checksum the client will compute for every part and the
    /// whole object ([`CRC64NVME`] only). Companion ignores it.
    #[serde(
        rename = "checksumAlgorithm",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub checksum_algorithm: Option<String>,
}

impl CreateMultipart {
    /// What the engine sends for `file`: its name (also as metadata `name`, which Uppy
    /// sends too and servers keep on the object), its other metadata, type, size and part
    /// size.
    pub fn for_file(file: &FileMeta) -> Self {
        let mut metadata: BTreeMap<String, serde_json::Value> = file
            .metadata
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect();
        metadata.insert(
            "name".to_owned(),
            serde_json::Value::String(file.filename.clone()),
        );
        Self {
            filename: file.filename.clone(),
            content_type: Some(file.content_type.clone()),
            metadata,
            size: Some(file.size),
            part_size: file.part_size,
            checksum_algorithm: Some(CRC64NVME.to_owned()),
        }
    }
}

/// `POST /s3/multipart`'s answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MultipartStart {
    pub key: String,
    #[serde(rename = "uploadId")]
    pub upload_id: String,
    /// Companion 6 sends it; older Companions did not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket: Option<String>,
    /// Reelup's extension: present when the server signs part checksums and checks the
    /// whole object's at complete for this upload; Companion sends none.
    #[serde(
        rename = "checksumAlgorithm",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub checksum_algorithm: Option<String>,
    /// Reelup's extension: the size of every part but the last, whose exact length the
    /// server signs into each part URL. The client's own `partSize`, or, when it declared
    /// only `size`, the one the server chose for it (S3's 5 MiB, or larger for a file
    /// that would need over 10,000 parts); parts of any other length are refused.
    /// Companion sends none.
    #[serde(rename = "partSize", default, skip_serializing_if = "Option::is_none")]
    pub part_size: Option<u64>,
}

/// `GET /s3/multipart/{uploadId}/{partNumber}`'s answer: one presigned part URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedPart {
    pub url: String,
    /// Seconds the URL stays valid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<u64>,
    /// Headers signed into the URL that the request must carry, as Uppy's `signPart`
    /// result has them. reelup-server lists the part's `x-amz-checksum-crc64nvme` here when
    /// it was asked to sign one (Reelup's extension); Companion sends none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<BTreeMap<String, String>>,
}

/// `GET /s3/multipart/{uploadId}/batch?partNumbers=1,2`'s answer, as Uppy asks for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedPartBatch {
    /// Part number to URL. JSON object keys are strings (`"1"`); serde_json writes and
    /// reads the numbers as such, in numeric order.
    #[serde(rename = "presignedUrls")]
    pub presigned_urls: BTreeMap<u32, String>,
}

/// One element of `GET /s3/multipart/{uploadId}`'s answer: a part the store holds. The
/// names are S3's `ListParts` ones, which Companion passes on as the SDK returns them
/// (with more fields, such as checksums, which are ignored here).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
pub struct ListedPart {
    /// A JSON number.
    #[serde(rename = "PartNumber")]
    pub part_number: u32,
    /// Empty when the store's listing has none (Companion over s3s-fs sends none): the
    /// engine then trusts only its own record of the part, never the listing's.
    #[serde(rename = "ETag", default)]
    pub etag: String,
    #[serde(rename = "Size", default)]
    pub size: u64,
    /// When the store received the part, as S3 gives it (ISO 8601). Not read by the
    /// engine; sent because Companion sends it.
    #[serde(
        rename = "LastModified",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub last_modified: Option<String>,
}

/// One part of [`CompleteMultipart`].
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
pub struct CompletedPart {
    /// A JSON number: Companion rejects a string here.
    #[serde(rename = "PartNumber")]
    pub part_number: u32,
    #[serde(rename = "ETag")]
    pub etag: String,
    /// Reelup's extension: the part's CRC-64/NVME (base64), as signed into its URL.
    #[serde(
        rename = "ChecksumCRC64NVME",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub checksum_crc64nvme: Option<String>,
}

/// `POST /s3/multipart/{uploadId}/complete`'s body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompleteMultipart {
    pub parts: Vec<CompletedPart>,
    /// Reelup's extension: ask for a signed `streamingUrl` valid this many seconds.
    /// Companion ignores it.
    #[serde(
        rename = "linkLifetimeSecs",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub link_lifetime_secs: Option<u64>,
    /// Reelup's extension: the whole object's CRC-64/NVME (base64), which the store must
    /// match at complete. Companion ignores it.
    #[serde(
        rename = "checksumCRC64NVME",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub checksum_crc64nvme: Option<String>,
}

/// `POST /s3/multipart/{uploadId}/complete`'s answer. Every field is optional because
/// Companion passes on what the store returned, and some stores return no `Location`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MultipartCompleted {
    /// The object's URL at the store (the bucket is private: not one to share).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket: Option<String>,
    /// Reelup's extension: where viewers will stream the object. Companion sends none.
    #[serde(
        rename = "streamingUrl",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub streaming_url: Option<String>,
    /// Reelup's extension: when `streamingUrl` is a signed link, the moment (Unix seconds)
    /// it stops working. Absent for a plain CDN URL.
    #[serde(
        rename = "streamingUrlExpiresAt",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub streaming_url_expires_at: Option<u64>,
    /// Reelup's extension: the whole object's CRC-64/NVME as the store confirmed it at
    /// complete. Companion sends none.
    #[serde(
        rename = "checksumCRC64NVME",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub checksum_crc64nvme: Option<String>,
}

/// `DELETE /s3/multipart/{uploadId}`'s answer: `{}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Aborted {}

/// `GET /s3/sts`'s answer: temporary credentials for the bucket. The engine does not use
/// this route; reelup-server answers it in Companion's shape for Uppy's `getTemporarySecurityCredentials`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StsCredentials {
    pub credentials: AwsCredentials,
    pub bucket: String,
    pub region: String,
}

/// The `credentials` of [`StsCredentials`], named as STS names them.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AwsCredentials {
    #[serde(rename = "AccessKeyId")]
    pub access_key_id: String,
    #[serde(rename = "SecretAccessKey", with = "crate::secret::as_string")]
    pub secret_access_key: crate::Secret,
    #[serde(rename = "SessionToken", with = "crate::secret::as_string")]
    pub session_token: crate::Secret,
    /// ISO 8601.
    #[serde(rename = "Expiration")]
    pub expiration: String,
}

impl std::fmt::Debug for AwsCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &self.secret_access_key)
            .field("session_token", &self.session_token)
            .field("expiration", &self.expiration)
            .finish()
    }
}

/// A refusal, from any route: reelup-server sends `{"error": code, "message": text}` with
/// a stable code (`forbidden`, `too_large`, `invite_used`, ...) that clients match on,
/// never the text. Companion sends `{"error": text}` from its S3 routes and
/// `{"message": text}` from its error handler, so both fields default to `""` when read,
/// and an `error` that is not a string is read as its JSON text.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    #[serde(default, deserialize_with = "any_as_text")]
    pub error: String,
    #[serde(default, deserialize_with = "any_as_text")]
    pub message: String,
}

impl ErrorBody {
    pub fn new(error: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            error: error.into(),
            message: message.into(),
        }
    }

    /// What to tell a person: the message, else the error, else `None`.
    pub fn text(&self) -> Option<&str> {
        [self.message.as_str(), self.error.as_str()]
            .into_iter()
            .find(|s| !s.is_empty())
    }
}

/// A string as itself, `null` as `""`, anything else as its JSON text.
fn any_as_text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) => s,
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn text<T: Serialize>(value: &T) -> String {
        serde_json::to_string(value).expect("serialises")
    }

    fn parse<T: serde::de::DeserializeOwned>(text: &str) -> T {
        serde_json::from_str(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn post_policy_wire_form() {
        let policy = PostPolicy {
            method: "POST".into(),
            url: "https://b.s3.amazonaws.com".into(),
            fields: BTreeMap::from([
                ("key".into(), "alice/k.mp4".into()),
                ("Policy".into(), "eyJ9".into()),
            ]),
            expires: Some(900),
            streaming_url: Some("https://cdn.example.com/alice/k.mp4".into()),
            streaming_url_expires_at: None,
        };
        assert_eq!(
            text(&policy),
            r#"{"method":"POST","url":"https://b.s3.amazonaws.com","fields":{"Policy":"eyJ9","key":"alice/k.mp4"},"expires":900,"streamingUrl":"https://cdn.example.com/alice/k.mp4"}"#
        );
        assert_eq!(parse::<PostPolicy>(&text(&policy)), policy);
        assert_eq!(policy.key(), Some("alice/k.mp4"));
        // The extension is left out, not sent as null, when there is none.
        let plain = PostPolicy {
            streaming_url: None,
            expires: None,
            ..policy
        };
        assert!(!text(&plain).contains("streamingUrl"), "{}", text(&plain));
        assert!(!text(&plain).contains("expires"), "{}", text(&plain));
    }

    /// Companion 6's `getUploadParameters` answer (v4 POST fields, no streamingUrl).
    #[test]
    fn a_companion_post_policy_parses() {
        let policy: PostPolicy = parse(
            r#"{"method":"POST","url":"http://127.0.0.1:9000/reelup","fields":{"bucket":"reelup","X-Amz-Algorithm":"AWS4-HMAC-SHA256","X-Amz-Credential":"AK/20250101/us-east-1/s3/aws4_request","X-Amz-Date":"20250101T000000Z","key":"5f1c-a.mp4","Policy":"eyJleHBpcmF0aW9uIjoi","X-Amz-Signature":"ab12","content-type":"video/mp4","success_action_status":"201","x-amz-meta-name":"a.mp4"},"expires":800}"#,
        );
        assert_eq!(policy.key(), Some("5f1c-a.mp4"));
        assert_eq!(policy.expires, Some(800));
        assert_eq!(policy.streaming_url, None);
        assert_eq!(policy.fields.len(), 10);
    }

    #[test]
    fn create_multipart_wire_form() {
        let file = FileMeta {
            filename: "clip.mp4".into(),
            content_type: "video/mp4".into(),
            size: 12_582_913,
            part_size: Some(5_242_880),
            metadata: Vec::new(),
            crc64nvme: None,
        };
        assert_eq!(
            text(&CreateMultipart::for_file(&file)),
            r#"{"filename":"clip.mp4","type":"video/mp4","metadata":{"name":"clip.mp4"},"size":12582913,"partSize":5242880,"checksumAlgorithm":"CRC64NVME"}"#
        );
        // The video's details go beside the name; the name is always the file's own.
        let with_details = FileMeta {
            metadata: vec![
                ("width".into(), "320".into()),
                ("name".into(), "not the file name".into()),
                ("videocodec".into(), "H.264".into()),
            ],
            ..file.clone()
        };
        assert_eq!(
            text(&CreateMultipart::for_file(&with_details)),
            r#"{"filename":"clip.mp4","type":"video/mp4","metadata":{"name":"clip.mp4","videocodec":"H.264","width":"320"},"size":12582913,"partSize":5242880,"checksumAlgorithm":"CRC64NVME"}"#
        );
        let no_part_size = FileMeta {
            part_size: None,
            ..file
        };
        assert_eq!(
            text(&CreateMultipart::for_file(&no_part_size)),
            r#"{"filename":"clip.mp4","type":"video/mp4","metadata":{"name":"clip.mp4"},"size":12582913,"checksumAlgorithm":"CRC64NVME"}"#
        );
    }

    /// What Uppy's AwsS3 plugin sends to Companion: no reelup extensions, `file.meta` with
    /// values that are not strings.
    #[test]
    fn an_uppy_create_body_parses() {
        let body: CreateMultipart = parse(
            r#"{"filename":"a.mp4","type":"video/mp4","metadata":{"name":"a.mp4","type":"video/mp4","relativePath":null,"size":42}}"#,
        );
        assert_eq!(body.filename, "a.mp4");
        assert_eq!(body.content_type.as_deref(), Some("video/mp4"));
        assert_eq!(body.metadata["relativePath"], json!(null));
        assert_eq!(body.metadata["size"], json!(42));
        assert_eq!((body.size, body.part_size), (None, None));
        assert_eq!(body.checksum_algorithm, None);
        // Nothing required is enforced by parsing: the server refuses in its own words.
        let empty: CreateMultipart = parse("{}");
        assert_eq!((empty.filename.as_str(), empty.content_type), ("", None));
    }

    #[test]
    fn multipart_start_wire_form() {
        let start = MultipartStart {
            key: "alice/k.mp4".into(),
            upload_id: "u1.tag".into(),
            bucket: Some("b".into()),
            checksum_algorithm: None,
            part_size: None,
        };
        assert_eq!(
            text(&start),
            r#"{"key":"alice/k.mp4","uploadId":"u1.tag","bucket":"b"}"#
        );
        let checked = MultipartStart {
            checksum_algorithm: Some(CRC64NVME.into()),
            part_size: Some(5_242_880),
            ..start
        };
        assert!(
            text(&checked).ends_with(r#","checksumAlgorithm":"CRC64NVME","partSize":5242880}"#),
            "{}",
            text(&checked)
        );
        // Companion before 5 sent no bucket.
        let old: MultipartStart = parse(r#"{"key":"k","uploadId":"u"}"#);
        assert_eq!((old.key.as_str(), old.bucket), ("k", None));
    }

    #[test]
    fn signed_part_wire_forms() {
        let one = SignedPart {
            url: "https://s3/b/k?partNumber=1".into(),
            expires: Some(900),
            headers: None,
        };
        assert_eq!(
            text(&one),
            r#"{"url":"https://s3/b/k?partNumber=1","expires":900}"#
        );
        let with_checksum = SignedPart {
            headers: Some(BTreeMap::from([(
                CRC64NVME_HEADER.into(),
                "AAAAAAAAAAA=".into(),
            )])),
            ..one
        };
        assert_eq!(
            text(&with_checksum),
            r#"{"url":"https://s3/b/k?partNumber=1","expires":900,"headers":{"x-amz-checksum-crc64nvme":"AAAAAAAAAAA="}}"#
        );
        let batch = SignedPartBatch {
            presigned_urls: BTreeMap::from([(10, "u10".into()), (2, "u2".into())]),
        };
        assert_eq!(text(&batch), r#"{"presignedUrls":{"2":"u2","10":"u10"}}"#);
        let theirs: SignedPartBatch = parse(r#"{"presignedUrls":{"1":"a","2":"b"}}"#);
        assert_eq!(theirs.presigned_urls[&2], "b");
        assert!(serde_json::from_str::<SignedPartBatch>(r#"{"presignedUrls":{"x":"a"}}"#).is_err());
    }

    #[test]
    fn listed_part_wire_form() {
        let part = ListedPart {
            part_number: 3,
            etag: "\"abc\"".into(),
            size: 5_242_880,
            last_modified: Some("2025-01-01T00:00:00.000Z".into()),
        };
        assert_eq!(
            text(&part),
            r#"{"PartNumber":3,"ETag":"\"abc\"","Size":5242880,"LastModified":"2025-01-01T00:00:00.000Z"}"#
        );
        // Companion 6 passes on the SDK's part, checksums and all.
        let theirs: Vec<ListedPart> = parse(
            r#"[{"PartNumber":1,"LastModified":"2025-01-01T00:00:00.000Z","ETag":"\"e1\"","Size":5242880,"ChecksumCRC32":"AAAA"}]"#,
        );
        assert_eq!(theirs[0].part_number, 1);
        assert_eq!(theirs[0].etag, "\"e1\"");
        // Companion over a store whose listing has no ETags (s3s-fs): still a listing.
        let bare: Vec<ListedPart> = parse(r#"[{"PartNumber":2,"Size":7}]"#);
        assert_eq!((bare[0].part_number, bare[0].etag.as_str()), (2, ""));
        // A string part number is not Companion's protocol.
        assert!(serde_json::from_str::<ListedPart>(r#"{"PartNumber":"1","ETag":"e"}"#).is_err());
    }

    #[test]
    fn complete_wire_forms() {
        let body = CompleteMultipart {
            parts: vec![
                CompletedPart {
                    part_number: 1,
                    etag: "\"e1\"".into(),
                    checksum_crc64nvme: None,
                },
                CompletedPart {
                    part_number: 2,
                    etag: "\"e2\"".into(),
                    checksum_crc64nvme: None,
                },
            ],
            link_lifetime_secs: None,
            checksum_crc64nvme: None,
        };
        assert_eq!(
            text(&body),
            r#"{"parts":[{"PartNumber":1,"ETag":"\"e1\""},{"PartNumber":2,"ETag":"\"e2\""}]}"#
        );
        assert!(
            serde_json::from_str::<CompleteMultipart>(
                r#"{"parts":[{"PartNumber":"1","ETag":"e"}]}"#
            )
            .is_err(),
            "a string part number is refused, as Companion refuses it"
        );
        let done = MultipartCompleted {
            location: Some("https://b.s3.amazonaws.com/alice/k.mp4".into()),
            key: Some("alice/k.mp4".into()),
            bucket: Some("b".into()),
            streaming_url: Some("https://cdn/alice/k.mp4".into()),
            streaming_url_expires_at: None,
            checksum_crc64nvme: None,
        };
        assert_eq!(
            text(&done),
            r#"{"location":"https://b.s3.amazonaws.com/alice/k.mp4","key":"alice/k.mp4","bucket":"b","streamingUrl":"https://cdn/alice/k.mp4"}"#
        );
        // Signed links: the lifetime asked at complete, the expiry answered.
        let asked = CompleteMultipart {
            link_lifetime_secs: Some(3600),
            ..body
        };
        assert!(
            text(&asked).ends_with(r#","linkLifetimeSecs":3600}"#),
            "{}",
            text(&asked)
        );
        let signed = MultipartCompleted {
            streaming_url_expires_at: Some(1_900_000_000),
            ..done
        };
        assert!(text(&signed).ends_with(r#","streamingUrlExpiresAt":1900000000}"#));
        // Checksums: each part's and the whole object's, asked and confirmed.
        let mut checked = asked.clone();
        checked.parts[0].checksum_crc64nvme = Some("AAAAAAAAAAE=".into());
        checked.checksum_crc64nvme = Some("AAAAAAAAAAI=".into());
        assert_eq!(
            text(&checked),
            r#"{"parts":[{"PartNumber":1,"ETag":"\"e1\"","ChecksumCRC64NVME":"AAAAAAAAAAE="},{"PartNumber":2,"ETag":"\"e2\""}],"linkLifetimeSecs":3600,"checksumCRC64NVME":"AAAAAAAAAAI="}"#
        );
        let confirmed: MultipartCompleted =
            parse(r#"{"key":"k","checksumCRC64NVME":"AAAAAAAAAAI="}"#);
        assert_eq!(
            confirmed.checksum_crc64nvme.as_deref(),
            Some("AAAAAAAAAAI=")
        );
        // Companion with a store that returns no Location.
        let theirs: MultipartCompleted = parse(r#"{"key":"k","bucket":"b"}"#);
        assert_eq!((theirs.location, theirs.streaming_url), (None, None));
        assert_eq!(text(&Aborted {}), "{}");
        let _: Aborted = parse("{}");
    }

    #[test]
    fn sts_wire_form_and_redaction() {
        let sts = StsCredentials {
            credentials: AwsCredentials {
                access_key_id: "ASIA1".into(),
                secret_access_key: crate::Secret::new("sk-2"),
                session_token: crate::Secret::new("st-3"),
                expiration: "2025-01-01T01:00:00Z".into(),
            },
            bucket: "b".into(),
            region: "eu-west-1".into(),
        };
        assert_eq!(
            text(&sts),
            r#"{"credentials":{"AccessKeyId":"ASIA1","SecretAccessKey":"sk-2","SessionToken":"st-3","Expiration":"2025-01-01T01:00:00Z"},"bucket":"b","region":"eu-west-1"}"#
        );
        assert_eq!(parse::<StsCredentials>(&text(&sts)), sts);
        let debug = format!("{sts:?}");
        assert!(
            !debug.contains("sk-2") && !debug.contains("st-3"),
            "{debug}"
        );
    }

    #[test]
    fn error_body_wire_form_and_companions_errors() {
        assert_eq!(
            text(&ErrorBody::new("too_large", "the file is 9 bytes")),
            r#"{"error":"too_large","message":"the file is 9 bytes"}"#
        );
        // Companion's S3 routes: `{error: text}`.
        let s3: ErrorBody = parse(r#"{"error":"s3: content type must be a string"}"#);
        assert_eq!(s3.text(), Some("s3: content type must be a string"));
        // Companion's error handler: `{message}`; an error that is not a string.
        let handler: ErrorBody = parse(r#"{"message":"Something went wrong","error":null}"#);
        assert_eq!(handler.text(), Some("Something went wrong"));
        let odd: ErrorBody = parse(r#"{"error":{"code":7}}"#);
        assert_eq!(odd.text(), Some(r#"{"code":7}"#));
        assert_eq!(parse::<ErrorBody>("{}").text(), None);
    }
}
