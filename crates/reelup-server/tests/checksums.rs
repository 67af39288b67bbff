//! Reelup's checksum extension, end to end over HTTP against the local stack: the routes
//! sign CRC-64/NVME values in, and the local store (s3s-fs behind reelup-server's checking
//! wrapper) refuses every damaged byte and every wrong value, leaving nothing behind.

use reelup_server::checksum::Crc64Nvme;
use reelup_server::{LocalOptions, LocalStack};
use reqwest::StatusCode;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};

const MIB: usize = 1024 * 1024;
const PART: usize = 5 * MIB;
const STORE_KEY: &str = "REELUPCHECKSUMS";
const STORE_SECRET: &str = "checksums-test-secret-key";

struct Stack {
    stack: LocalStack,
    http: reqwest::Client,
    dir: tempfile::TempDir,
}

/// A file of `len` bytes that is not one repeated byte, so a flipped byte shows.
fn file(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn crc(bytes: &[u8]) -> String {
    Crc64Nvme::of(bytes).to_base64()
}

fn md5_b64(bytes: &[u8]) -> String {
    use md5::Digest;
    b64(&md5::Md5::digest(bytes))
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A multipart upload as the routes handed it out.
struct Upload {
    key: String,
    id: String,
}

impl Stack {
    async fn start() -> Self {
        Self::start_in(tempfile::tempdir().expect("tempdir")).await
    }

    /// A stack keeping its data in `dir`, which may hold an earlier one's. The store's keys
    /// are fixed, since s3s-fs ties an upload to the key that created it.
    async fn start_in(dir: tempfile::TempDir) -> Self {
        let mut opts = LocalOptions::new(dir.path().to_owned());
        opts.store_keys = Some((STORE_KEY.into(), reelup_protocol::Secret::new(STORE_SECRET)));
        let stack = LocalStack::start(opts).await.expect("local stack");
        Self {
            stack,
            http: reqwest::Client::new(),
            dir,
        }
    }

    /// Stops this stack and starts another on the same data.
    async fn restart(self) -> Self {
        self.stack.shutdown().await;
        Self::start_in(self.dir).await
    }

    fn token(&self) -> &str {
        self.stack.token.expose()
    }

    async fn call(&self, req: reqwest::RequestBuilder) -> (StatusCode, Value) {
        let r = req.bearer_auth(self.token()).send().await.expect("request");
        (r.status(), r.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str, query: &[(&str, &str)]) -> (StatusCode, Value) {
        let url = format!("{}{path}", self.stack.endpoint);
        self.call(self.http.get(url).query(query)).await
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let url = format!("{}{path}", self.stack.endpoint);
        self.call(self.http.post(url).json(&body)).await
    }

    async fn create(&self, size: usize, algorithm: Option<&str>) -> (StatusCode, Value) {
        let mut body = json!({
            "filename": "clip.mp4", "type": "video/mp4", "metadata": {},
            "size": size, "partSize": PART,
        });
        if let Some(a) = algorithm {
            body["checksumAlgorithm"] = json!(a);
        }
        self.post("/s3/multipart", body).await
    }

    async fn create_checked(&self, size: usize) -> Upload {
        let (status, body) = self.create(size, Some("CRC64NVME")).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["checksumAlgorithm"], "CRC64NVME", "{body}");
        Upload {
            key: body["key"].as_str().expect("key").to_owned(),
            id: body["uploadId"].as_str().expect("uploadId").to_owned(),
        }
    }

    async fn sign(&self, up: &Upload, n: u32, checksum: Option<&str>) -> (StatusCode, Value) {
        let mut query = vec![("key", up.key.as_str())];
        if let Some(c) = checksum {
            query.push(("checksum", c));
        }
        self.get(&format!("/s3/multipart/{}/{n}", enc(&up.id)), &query)
            .await
    }

    /// PUTs `body` to a signed part URL with `headers`; the status, ETag and S3's error code.
    async fn put(
        &self,
        signed: &Value,
        headers: &[(&str, String)],
        body: Vec<u8>,
    ) -> (StatusCode, String, String) {
        let mut req = self.http.put(signed["url"].as_str().expect("url"));
        for (name, value) in headers {
            req = req.header(*name, value);
        }
        let r = req.body(body).send().await.expect("PUT");
        let status = r.status();
        let etag = r
            .headers()
            .get("etag")
            .map(|v| v.to_str().expect("ascii").to_owned())
            .unwrap_or_default();
        let text = r.text().await.unwrap_or_default();
        let code = reelup_protocol::s3_xml::text_of(&text, "Code")
            .unwrap_or_default()
            .to_owned();
        (status, etag, code)
    }

    /// Signs part `n` with the CRC of `signed_for` and PUTs `sent` with the signed headers.
    async fn put_part(
        &self,
        up: &Upload,
        n: u32,
        signed_for: &[u8],
        sent: Vec<u8>,
    ) -> (StatusCode, String, String) {
        let (status, signed) = self.sign(up, n, Some(&crc(signed_for))).await;
        assert_eq!(status, 200, "{signed}");
        let headers: Vec<(&str, String)> = signed["headers"]
            .as_object()
            .expect("headers")
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str().expect("string").to_owned()))
            .collect();
        self.put(&signed, &headers, sent).await
    }

    async fn complete(&self, up: &Upload, body: Value) -> (StatusCode, Value) {
        self.post(
            &format!(
                "/s3/multipart/{}/complete?key={}",
                enc(&up.id),
                enc(&up.key)
            ),
            body,
        )
        .await
    }

    async fn listed_parts(&self, up: &Upload) -> Vec<Value> {
        let (status, body) = self
            .get(
                &format!("/s3/multipart/{}", enc(&up.id)),
                &[("key", &up.key)],
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body.as_array().expect("list").clone()
    }

    /// Completes `up` from `parts` with the whole file's CRC, which must succeed, and then
    /// the CDN route must serve exactly `whole`.
    async fn completes_to(&self, up: &Upload, parts: &[(u32, String, String)], whole: &[u8]) {
        let (status, done) = self
            .complete(
                up,
                json!({"parts": parts_json(parts), "checksumCRC64NVME": crc(whole)}),
            )
            .await;
        assert_eq!(status, 200, "{done}");
        assert_eq!(self.served(&up.key).await, (StatusCode::OK, whole.to_vec()));
    }

    /// What the CDN route serves at `key`: its status and bytes.
    async fn served(&self, key: &str) -> (StatusCode, Vec<u8>) {
        let r = self
            .http
            .get(format!("{}/{key}", self.stack.cdn))
            .send()
            .await
            .expect("GET");
        (r.status(), r.bytes().await.expect("body").to_vec())
    }

    /// The `x-amz-checksum-crc64nvme` the store's HEAD answers for `key`.
    async fn store_checksum(&self, key: &str) -> Option<String> {
        let store = reelup_server::store::ObjectStore::new(
            self.stack.s3_endpoint.parse().expect("store URL"),
            reelup_server::local::BUCKET,
            reelup_server::local::REGION,
            reelup_server::credentials::SigningKeys::fixed(STORE_KEY, STORE_SECRET),
            true,
            std::time::Duration::from_secs(60),
        )
        .expect("store");
        let r = self
            .http
            .head(store.head_url(key))
            .send()
            .await
            .expect("HEAD");
        assert_eq!(r.status(), 200, "HEAD {key}");
        r.headers()
            .get("x-amz-checksum-crc64nvme")
            .map(|v| v.to_str().expect("ascii").to_owned())
    }

    /// Uploads `whole` in checked parts, all good; returns the upload and each part's ETag.
    async fn upload_parts(&self, whole: &[u8]) -> (Upload, Vec<(u32, String, String)>) {
        let up = self.create_checked(whole.len()).await;
        let mut parts = Vec::new();
        for (i, chunk) in whole.chunks(PART).enumerate() {
            let n = i as u32 + 1;
            let (status, etag, code) = self.put_part(&up, n, chunk, chunk.to_vec()).await;
            assert_eq!(status, 200, "part {n}: {code}");
            parts.push((n, etag, crc(chunk)));
        }
        (up, parts)
    }
}

/// `etag` with its first hex digit changed: the ETag of no part here.
fn other_etag(etag: &str) -> String {
    let hex = etag.trim_matches('"');
    let first = if hex.starts_with('0') { '1' } else { '0' };
    format!("\"{first}{}\"", &hex[1..])
}

fn parts_json(parts: &[(u32, String, String)]) -> Vec<Value> {
    parts
        .iter()
        .map(|(n, etag, crc)| json!({"PartNumber": n, "ETag": etag, "ChecksumCRC64NVME": crc}))
        .collect()
}

/// The CRC-64/NVME of `bytes` as awscrt (the AWS SDKs' own CRC code) computes it.
fn awscrt_crc64nvme(bytes: &[u8]) -> String {
    let python = std::env::var("REELUP_TEST_PYTHON").unwrap_or_else(|_| {
        panic!("REELUP_TEST_PYTHON is not set: run `./dev test`, which installs awscrt in its venv")
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("file");
    std::fs::write(&path, bytes).expect("write");
    let out = std::process::Command::new(python)
        .args([
            "-c",
            "import sys, base64\nfrom awscrt import checksums\n\
             v = checksums.crc64nvme(open(sys.argv[1], 'rb').read())\n\
             print(base64.b64encode(v.to_bytes(8, 'big')).decode())",
        ])
        .arg(&path)
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_owned()
}

#[tokio::test]
async fn a_checked_upload_completes_with_the_whole_files_crc() {
    let s = Stack::start().await;
    let whole = file(PART + MIB + 7);
    let (up, parts) = s.upload_parts(&whole).await;
    let expected = crc(&whole);
    assert_eq!(
        expected,
        awscrt_crc64nvme(&whole),
        "our CRC is the AWS SDKs' CRC"
    );
    let (status, done) = s
        .complete(
            &up,
            json!({"parts": parts_json(&parts), "checksumCRC64NVME": expected}),
        )
        .await;
    assert_eq!(status, 200, "{done}");
    // The store's answer, combined from the parts' CRCs, is the CRC of the whole file.
    assert_eq!(done["checksumCRC64NVME"], expected, "{done}");
    assert_eq!(s.served(&up.key).await, (StatusCode::OK, whole));
    // And the store keeps it: HEAD answers it, as S3 does.
    assert_eq!(
        s.store_checksum(&up.key).await.as_deref(),
        Some(expected.as_str())
    );
}

#[tokio::test]
async fn a_part_with_a_flipped_byte_is_refused_and_not_kept() {
    let s = Stack::start().await;
    let whole = file(PART + 100);
    let up = s.create_checked(whole.len()).await;
    let good = whole[..PART].to_vec();
    let mut damaged = good.clone();
    damaged[PART / 2] ^= 0x01;
    let (status, _, code) = s.put_part(&up, 1, &good, damaged).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::BAD_REQUEST, "BadDigest")
    );
    assert!(s.listed_parts(&up).await.is_empty(), "nothing was kept");

    // A good copy sent first stays when a damaged one follows.
    let (status, etag, _) = s.put_part(&up, 1, &good, good.clone()).await;
    assert_eq!(status, 200);
    let mut damaged = good.clone();
    damaged[0] ^= 0x80;
    let (status, _, code) = s.put_part(&up, 1, &good, damaged).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::BAD_REQUEST, "BadDigest")
    );
    let (status, etag2, _) = s
        .put_part(&up, 2, &whole[PART..], whole[PART..].to_vec())
        .await;
    assert_eq!(status, 200);
    let parts = vec![(1, etag, crc(&good)), (2, etag2, crc(&whole[PART..]))];
    s.completes_to(&up, &parts, &whole).await;
}

/// The store's records of each part outlive a restart, as the upload does: the checks at
/// complete still hold, and the listing still carries the parts' ETags.
#[tokio::test]
async fn part_checks_survive_a_restart() {
    let s = Stack::start().await;
    let whole = file(PART + 20);
    let (up, parts) = s.upload_parts(&whole).await;
    let s = s.restart().await;
    let listed = s.listed_parts(&up).await;
    let listed_etags: Vec<&str> = listed
        .iter()
        .map(|p| p["ETag"].as_str().unwrap_or(""))
        .collect();
    let sent_etags: Vec<&str> = parts.iter().map(|p| p.1.as_str()).collect();
    assert_eq!(listed_etags, sent_etags);
    let mut wrong = parts.clone();
    wrong[0].1 = other_etag(&parts[0].1);
    let (status, body) = s
        .complete(
            &up,
            json!({"parts": parts_json(&wrong), "checksumCRC64NVME": crc(&whole)}),
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_part")),
        "{body}"
    );
    let (status, body) = s
        .complete(
            &up,
            json!({"parts": parts_json(&parts), "checksumCRC64NVME": crc(&whole[1..])}),
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("bad_digest")),
        "{body}"
    );
    let (status, done) = s
        .complete(
            &up,
            json!({"parts": parts_json(&parts), "checksumCRC64NVME": crc(&whole)}),
        )
        .await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["checksumCRC64NVME"], crc(&whole));
    // Nothing is left of the upload's records once it is complete.
    let ledger = s.dir.path().join(reelup_server::local::PART_LEDGER_DIR);
    assert_eq!(std::fs::read_dir(&ledger).expect("ledger dir").count(), 0);
}

#[tokio::test]
async fn a_checksum_header_other_than_the_signed_one_is_refused() {
    let s = Stack::start().await;
    let body = file(100);
    let up = s.create_checked(body.len()).await;
    let (status, signed) = s.sign(&up, 1, Some(&crc(&body))).await;
    assert_eq!(status, 200, "{signed}");
    assert_eq!(
        signed["headers"],
        json!({"x-amz-checksum-crc64nvme": crc(&body)})
    );
    // Another CRC (one that fits the bytes sent): the signature no longer matches.
    let mut other = body.clone();
    other[0] ^= 1;
    let (status, _, code) = s
        .put(
            &signed,
            &[("x-amz-checksum-crc64nvme", crc(&other))],
            other.clone(),
        )
        .await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::FORBIDDEN, "SignatureDoesNotMatch")
    );
    // Without the signed header at all: refused too.
    let (status, _, _) = s.put(&signed, &[], body.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(s.listed_parts(&up).await.is_empty());
}

#[tokio::test]
async fn a_wrong_whole_object_checksum_is_refused_and_no_object_appears() {
    let s = Stack::start().await;
    let whole = file(PART + 10);
    let (up, parts) = s.upload_parts(&whole).await;
    let mut other = whole.clone();
    other[PART + 3] ^= 0x10;
    let (status, body) = s
        .complete(
            &up,
            json!({"parts": parts_json(&parts), "checksumCRC64NVME": crc(&other)}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "bad_digest", "{body}");
    assert_eq!(s.served(&up.key).await.0, StatusCode::NOT_FOUND);
    // The upload is still open: the right checksum completes it.
    s.completes_to(&up, &parts, &whole).await;
}

#[tokio::test]
async fn a_wrong_etag_or_part_checksum_at_complete_is_an_invalid_part() {
    let s = Stack::start().await;
    let whole = file(PART + 10);
    let (up, parts) = s.upload_parts(&whole).await;
    let mut wrong_etag = parts.clone();
    wrong_etag[1].1 = other_etag(&parts[1].1);
    let mut wrong_crc = parts.clone();
    wrong_crc[0].2 = crc(b"not the part");
    for wrong in [wrong_etag, wrong_crc] {
        let (status, body) = s
            .complete(
                &up,
                json!({"parts": parts_json(&wrong), "checksumCRC64NVME": crc(&whole)}),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(body["error"], "invalid_part", "{body}");
        // The store's words name the part that did not match.
        let message = body["message"].as_str().expect("message");
        assert!(
            message.contains("part 1") || message.contains("part 2"),
            "{message}"
        );
        assert_eq!(s.served(&up.key).await.0, StatusCode::NOT_FOUND);
    }
    // The same holds for an upload without checksums: a wrong ETag is refused.
    let (status, created) = s.create(100, None).await;
    assert_eq!(status, 200, "{created}");
    assert_eq!(created.get("checksumAlgorithm"), None, "{created}");
    let plain = Upload {
        key: created["key"].as_str().expect("key").to_owned(),
        id: created["uploadId"].as_str().expect("id").to_owned(),
    };
    let (status, signed) = s.sign(&plain, 1, None).await;
    assert_eq!(status, 200);
    assert_eq!(signed.get("headers"), None, "{signed}");
    let (status, etag, _) = s.put(&signed, &[], file(100)).await;
    assert_eq!(status, 200);
    let (status, body) = s
        .complete(
            &plain,
            json!({"parts": [{"PartNumber": 1, "ETag": other_etag(&etag)}]}),
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_part")),
        "{body}"
    );
    let (status, done) = s
        .complete(&plain, json!({"parts": [{"PartNumber": 1, "ETag": etag}]}))
        .await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done.get("checksumCRC64NVME"), None, "{done}");
}

#[tokio::test]
async fn a_part_whose_content_md5_differs_is_a_bad_digest() {
    let s = Stack::start().await;
    let (status, created) = s.create(100, None).await;
    assert_eq!(status, 200, "{created}");
    let up = Upload {
        key: created["key"].as_str().expect("key").to_owned(),
        id: created["uploadId"].as_str().expect("id").to_owned(),
    };
    let body = file(100);
    let (_, signed) = s.sign(&up, 1, None).await;
    let mut damaged = body.clone();
    damaged[99] ^= 4;
    let (status, _, code) = s
        .put(&signed, &[("content-md5", md5_b64(&body))], damaged)
        .await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::BAD_REQUEST, "BadDigest")
    );
    assert!(s.listed_parts(&up).await.is_empty(), "nothing was kept");
    // Not base64 of 16 bytes: S3's InvalidDigest.
    let (status, _, code) = s
        .put(&signed, &[("content-md5", b64(b"short"))], body.clone())
        .await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::BAD_REQUEST, "InvalidDigest")
    );
    let (status, etag, _) = s
        .put(&signed, &[("content-md5", md5_b64(&body))], body.clone())
        .await;
    assert_eq!(status, 200);
    use md5::Digest;
    assert_eq!(
        etag,
        format!("\"{}\"", hex::encode(md5::Md5::digest(&body)))
    );
}

#[tokio::test]
async fn a_post_whose_file_differs_from_its_policy_checksum_is_refused() {
    let s = Stack::start().await;
    let body = file(1000);
    let (status, params) = s
        .get(
            "/s3/params",
            &[
                ("filename", "clip.mp4"),
                ("type", "video/mp4"),
                ("checksumCRC64NVME", &crc(&body)),
            ],
        )
        .await;
    assert_eq!(status, 200, "{params}");
    assert_eq!(params["fields"]["x-amz-checksum-crc64nvme"], crc(&body));
    let key = params["fields"]["key"].as_str().expect("key").to_owned();
    let post = |file: Vec<u8>, crc_field: Option<String>| {
        let mut form = Form::new();
        for (k, v) in params["fields"].as_object().expect("fields") {
            let mut v = v.as_str().expect("string").to_owned();
            if k == "x-amz-checksum-crc64nvme"
                && let Some(c) = &crc_field
            {
                v.clone_from(c);
            }
            form = form.text(k.clone(), v);
        }
        form = form.part("file", Part::bytes(file).file_name("clip.mp4"));
        s.http
            .post(params["url"].as_str().expect("url"))
            .multipart(form)
            .send()
    };
    let mut damaged = body.clone();
    damaged[500] ^= 0x40;
    let r = post(damaged.clone(), None).await.expect("POST");
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.expect("text").contains("BadDigest"));
    assert_eq!(
        s.served(&key).await.0,
        StatusCode::NOT_FOUND,
        "nothing kept"
    );
    // The damaged file's own CRC in place of the policy's: the policy refuses it.
    let r = post(damaged.clone(), Some(crc(&damaged)))
        .await
        .expect("POST");
    let status = r.status();
    let text = r.text().await.expect("text");
    // s3s answers a failed condition with 400 InvalidPolicyDocument (S3: 403).
    assert!(status.is_client_error(), "{status}");
    assert!(text.contains("x-amz-checksum-crc64nvme"), "{text:.500}");
    assert_eq!(
        s.served(&key).await.0,
        StatusCode::NOT_FOUND,
        "nothing kept"
    );
    let r = post(body.clone(), None).await.expect("POST");
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(s.served(&key).await, (StatusCode::OK, body));
}

#[tokio::test]
async fn hostile_checksum_values_get_clear_refusals() {
    let s = Stack::start().await;
    // Long enough to be absurd, short enough for a URL the HTTP client will send.
    let huge = "A".repeat(4000);
    let bad_values = [
        ("", "0 characters"),
        ("AAAAAAAAAAA", "11 characters"),
        ("AAAAAAAAAA==", "not base64 of 8 bytes"),
        ("AAAAAAAAAAB=", "not base64 of 8 bytes"),
        ("!!!!!!!!!!!=", "not base64 of 8 bytes"),
        ("AAAAAAAAAAAAAAAA", "16 characters"),
        (huge.as_str(), "4000 characters"),
    ];
    // The create route: only CRC64NVME.
    for algorithm in ["CRC32", "crc64nvme", "", "SHA256"] {
        let (status, body) = s.create(100, Some(algorithm)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{algorithm}: {body}");
        assert!(
            body["message"]
                .as_str()
                .expect("message")
                .contains("\"CRC64NVME\""),
            "{body}"
        );
    }
    let (status, body) = s
        .post(
            "/s3/multipart",
            json!({"filename": "a.mp4", "type": "video/mp4", "checksumAlgorithm": 7}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    let up = s.create_checked(PART + 1).await;
    // The part route.
    for (value, says) in &bad_values {
        let (status, body) = s.sign(&up, 1, Some(value)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{value:.20}: {body}");
        let message = body["message"].as_str().expect("message");
        assert!(message.starts_with("checksum: "), "{message}");
        assert!(message.contains(says), "{says}: {message}");
        assert!(message.len() < 300, "no long value echoed: {message}");
    }
    // A checked upload's part needs its checksum; the batch route signs none.
    let (status, body) = s.sign(&up, 1, None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["message"]
            .as_str()
            .expect("message")
            .contains("?checksum="),
        "{body}"
    );
    let (status, body) = s
        .get(
            &format!("/s3/multipart/{}/batch", enc(&up.id)),
            &[("key", &up.key), ("partNumbers", "1,2")],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    // A plain upload takes no part checksum.
    let (_, created) = s.create(100, None).await;
    let plain = Upload {
        key: created["key"].as_str().expect("key").to_owned(),
        id: created["uploadId"].as_str().expect("id").to_owned(),
    };
    let (status, body) = s.sign(&plain, 1, Some(&crc(b"x"))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = s
        .complete(
            &plain,
            json!({"parts": [{"PartNumber": 1, "ETag": "e"}], "checksumCRC64NVME": crc(b"x")}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    // Complete: the whole object's checksum is required, and checked for form.
    let part = file(PART + 1);
    let (status, etag, _) = s
        .put_part(&up, 1, &part[..PART], part[..PART].to_vec())
        .await;
    assert_eq!(status, 200);
    let listed = json!([{"PartNumber": 1, "ETag": etag}]);
    let (status, body) = s.complete(&up, json!({"parts": listed})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["message"]
            .as_str()
            .expect("message")
            .contains("checksumCRC64NVME"),
        "{body}"
    );
    for (value, says) in &bad_values {
        let (status, body) = s
            .complete(&up, json!({"parts": listed, "checksumCRC64NVME": value}))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{value:.20}: {body}");
        assert!(
            body["message"].as_str().expect("message").contains(says),
            "{body}"
        );
        let (status, body) = s
            .complete(
                &up,
                json!({"parts": [{"PartNumber": 1, "ETag": etag, "ChecksumCRC64NVME": value}],
                       "checksumCRC64NVME": crc(&part)}),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{value:.20}: {body}");
        assert!(
            body["message"].as_str().expect("message").contains(says),
            "{body}"
        );
    }
    // The POST route.
    for (value, says) in &bad_values {
        let (status, body) = s
            .get(
                "/s3/params",
                &[
                    ("filename", "a.mp4"),
                    ("type", "video/mp4"),
                    ("checksumCRC64NVME", value),
                ],
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{value:.20}: {body}");
        let message = body["message"].as_str().expect("message");
        assert!(message.starts_with("checksumCRC64NVME: "), "{message}");
        assert!(message.contains(says), "{message}");
    }
    assert_eq!(s.served(&up.key).await.0, StatusCode::NOT_FOUND);
}

/// The AWS SDK's own uploads (boto3, as aws-cli sends them: its default CRC32 for single
/// PUTs and each part, as headers or as aws-chunked trailers) pass the local store's checks
/// byte-identical, and a part whose CRC32 is wrong, in a header or in a trailer, is refused.
#[tokio::test]
async fn the_aws_sdks_checksummed_uploads_pass_and_a_wrong_one_is_refused() {
    let python = std::env::var("REELUP_TEST_PYTHON").unwrap_or_else(|_| {
        panic!("REELUP_TEST_PYTHON is not set: run `./dev test`, which installs boto3 in its venv")
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let mut opts = LocalOptions::new(dir.path().to_owned());
    opts.store_keys = Some((
        "REELUPTESTSDK".into(),
        reelup_protocol::Secret::new("sdk-secret-key"),
    ));
    let stack = LocalStack::start(opts).await.expect("local stack");
    let small = dir.path().join("small.bin");
    let large = dir.path().join("large.bin");
    std::fs::write(&small, file(1000)).expect("write");
    std::fs::write(&large, file(12 * MIB + 3)).expect("write");
    let script = r#"
import sys, boto3, botocore.config, botocore.exceptions
from boto3.s3.transfer import TransferConfig
endpoint, small, large, where = sys.argv[1:5]
if where == "trailer":
    # botocore sends checksums as aws-chunked trailers only over TLS; the local store is
    # plain HTTP, so it is told this is TLS for that one decision.
    import types, botocore.httpchecksum
    botocore.httpchecksum.urlparse = lambda url: types.SimpleNamespace(scheme="https")
s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
    aws_access_key_id="REELUPTESTSDK", aws_secret_access_key="sdk-secret-key",
    config=botocore.config.Config(s3={"addressing_style": "path"},
        request_checksum_calculation="when_supported"))
cfg = TransferConfig(multipart_threshold=5 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024)
for path, key in ((small, "sdk/small.bin"), (large, "sdk/large.bin")):
    s3.upload_file(path, "reelup", key, Config=cfg)
    got = s3.get_object(Bucket="reelup", Key=key)["Body"].read()
    assert got == open(path, "rb").read(), key
up = s3.create_multipart_upload(Bucket="reelup", Key="sdk/wrong.bin", ChecksumAlgorithm="CRC32")
if where == "trailer":
    # The SDK's own CRC32 made to lie: the trailer it sends after the body is wrong.
    import botocore.httpchecksum as hc
    for cls in (hc.Crc32Checksum, hc.CrtCrc32Checksum):
        cls.digest = lambda self: b"\x00\x00\x00\x00"
    try:
        s3.upload_part(Bucket="reelup", Key="sdk/wrong.bin", UploadId=up["UploadId"],
            PartNumber=2, Body=b"other bytes", ChecksumAlgorithm="CRC32")
        print("trailer accepted")
    except botocore.exceptions.ClientError as e:
        print(e.response["Error"]["Code"], end=" ")
try:
    s3.upload_part(Bucket="reelup", Key="sdk/wrong.bin", UploadId=up["UploadId"], PartNumber=1,
        Body=b"some bytes", ChecksumCRC32="AAAAAA==")
    print("accepted")
except botocore.exceptions.ClientError as e:
    print(e.response["Error"]["Code"])
"#;
    for checksums_in in ["header", "trailer"] {
        let out = tokio::process::Command::new(&python)
            .args(["-c", script, &stack.s3_endpoint])
            .arg(&small)
            .arg(&large)
            .arg(checksums_in)
            .output()
            .await
            .expect("python runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{checksums_in}: {stderr:.3000}");
        let expected = if checksums_in == "trailer" {
            "BadDigest BadDigest"
        } else {
            "BadDigest"
        };
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), expected);
    }
}
