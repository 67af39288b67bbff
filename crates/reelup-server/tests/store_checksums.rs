//! What s3s-fs 0.14.1 (the local store's engine, pinned) checks on its own, called in
//! process without reelup-server's checking wrapper. These pin its gaps: the day one of
//! them fails, s3s-fs has started checking that itself and `src/local/checked_store.rs`
//! (and docs/deployment.md's "Checksums") can be revisited.

use md5::Digest;
use reelup_server::checksum::Crc64Nvme;
use s3s::service::{S3Service, S3ServiceBuilder};

struct BareStore {
    service: S3Service,
    _dir: tempfile::TempDir,
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

impl BareStore {
    async fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let fs = s3s_fs::FileSystem::new(dir.path()).expect("s3s-fs");
        let s = Self {
            service: S3ServiceBuilder::new(fs).build(),
            _dir: dir,
        };
        let (status, body) = s.call("PUT", "/bucket", &[], Vec::new()).await;
        assert_eq!(status, 200, "{body}");
        s
    }

    /// An anonymous request (no auth is set up); the status and the body as text.
    async fn call(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, String)],
        body: Vec<u8>,
    ) -> (u16, String) {
        let mut req = http::Request::builder()
            .method(method)
            .uri(format!("http://127.0.0.1{path}"))
            .header("host", "127.0.0.1")
            .header("content-length", body.len());
        for (name, value) in headers {
            req = req.header(*name, value);
        }
        let req = req.body(s3s::Body::from(body)).expect("request");
        let resp = self.service.call(req).await.expect("answer");
        let status = resp.status().as_u16();
        let body = http_body_util::BodyExt::collect(resp.into_body())
            .await
            .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
            .unwrap_or_default();
        (status, body)
    }

    async fn create(&self, key: &str) -> String {
        let (status, body) = self
            .call(
                "POST",
                &format!("/bucket/{key}?uploads"),
                &[
                    ("x-amz-checksum-algorithm", "CRC64NVME".into()),
                    ("x-amz-checksum-type", "FULL_OBJECT".into()),
                ],
                Vec::new(),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        // Create ignores the algorithm: its answer does not echo it, as S3's does.
        assert!(!body.contains("CRC64NVME"), "{body}");
        reelup_protocol::s3_xml::text_of(&body, "UploadId")
            .expect("UploadId")
            .to_owned()
    }
}

#[tokio::test]
async fn put_object_checks_digests_but_keeps_the_damaged_object() {
    let s = BareStore::new().await;
    let good = b"the bytes that were sent".to_vec();
    let mut damaged = good.clone();
    damaged[3] ^= 1;
    for (key, header) in [
        ("md5", ("content-md5", b64(&md5::Md5::digest(&good)))),
        (
            "crc",
            ("x-amz-checksum-crc64nvme", Crc64Nvme::of(&good).to_base64()),
        ),
    ] {
        let (status, body) = s
            .call("PUT", &format!("/bucket/{key}"), &[header], damaged.clone())
            .await;
        assert_eq!(status, 400, "{body}");
        assert!(body.contains("BadDigest"), "{body}");
        // Refused, yet stored: s3s-fs renames the file into place before comparing.
        let (status, stored) = s
            .call("GET", &format!("/bucket/{key}"), &[], Vec::new())
            .await;
        assert_eq!((status, stored.into_bytes()), (200, damaged.clone()));
    }
}

#[tokio::test]
async fn upload_part_and_complete_check_nothing() {
    let s = BareStore::new().await;
    let id = s.create("k").await;
    let good = b"part one".to_vec();
    let mut damaged = good.clone();
    damaged[0] ^= 1;
    let (status, body) = s
        .call(
            "PUT",
            &format!("/bucket/k?partNumber=1&uploadId={id}"),
            &[
                ("content-md5", b64(&md5::Md5::digest(&good))),
                ("x-amz-checksum-crc64nvme", Crc64Nvme::of(&good).to_base64()),
            ],
            damaged.clone(),
        )
        .await;
    assert_eq!(status, 200, "a damaged part is taken: {body}");
    // Complete with an ETag that is no part's and a whole-object CRC that is wrong.
    let xml = "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber>\
               <ETag>\"00000000000000000000000000000000\"</ETag>\
               <ChecksumCRC64NVME>AAAAAAAAAAA=</ChecksumCRC64NVME></Part>\
               </CompleteMultipartUpload>";
    let (status, body) = s
        .call(
            "POST",
            &format!("/bucket/k?uploadId={id}"),
            &[
                ("x-amz-checksum-crc64nvme", "AAAAAAAAAAA=".into()),
                ("x-amz-checksum-type", "FULL_OBJECT".into()),
            ],
            xml.as_bytes().to_vec(),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(!body.contains("<Error>"), "completed: {body}");
    let (_, stored) = s.call("GET", "/bucket/k", &[], Vec::new()).await;
    assert_eq!(stored.into_bytes(), damaged);
}
