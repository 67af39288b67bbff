//! CloudFront signed links end to end on the local stack: the presign routes hand out
//! signed streaming URLs, `POST /reelup/link` re-signs links to the caller's own objects
//! only, and the CDN route checks every signature as CloudFront's edge would, refusing each
//! kind of bad link with 403 and a short reason. Expiry is tested by moving the CDN's
//! clock, never by sleeping.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reelup_server::cloudfront::LinkSigner;
use reelup_server::config::UserConfig;
use reelup_server::store::Clock;
use reelup_server::users::{Users, hash_token};
use reelup_server::{LocalOptions, LocalStack};
use reqwest::StatusCode;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};

const ALICE: &str = "rlp_alice_link_token";
const BOB: &str = "rlp_bob_link_token";
const VIDEO: &[u8] = b"\x00\x00\x00\x18ftypmp42 not really a video, but bytes to stream back";

/// A clock the CDN route judges expiry by; tests move it forward.
#[derive(Debug, Default)]
struct TestClock(Mutex<Duration>);

impl TestClock {
    fn advance(&self, by: Duration) {
        *self.0.lock().expect("lock") += by;
    }
}

impl Clock for TestClock {
    fn now(&self) -> SystemTime {
        SystemTime::now() + *self.0.lock().expect("lock")
    }
}

struct Stack {
    stack: LocalStack,
    cdn_clock: Arc<TestClock>,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

fn user(name: &str, token: &str) -> UserConfig {
    UserConfig {
        name: name.into(),
        prefix: None,
        token_sha256: hex::encode(hash_token(token)).into(),
    }
}

async fn start(edit: impl FnOnce(&mut LocalOptions)) -> Stack {
    let dir = tempfile::tempdir().expect("tempdir");
    let cdn_clock = Arc::new(TestClock::default());
    let mut opts = LocalOptions::new(dir.path().to_owned());
    opts.users = Some(Users::from_config(&[
        user("alice", ALICE),
        user("bob", BOB),
    ]));
    opts.cdn_clock = Some(cdn_clock.clone());
    opts.require_signed_links = true;
    edit(&mut opts);
    Stack {
        stack: LocalStack::start(opts).await.expect("local stack"),
        cdn_clock,
        http: reqwest::Client::new(),
        _dir: dir,
    }
}

impl Stack {
    async fn call(
        &self,
        token: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.stack.endpoint))
            .bearer_auth(token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let r = req.send().await.expect("request");
        (r.status(), r.json().await.unwrap_or(Value::Null))
    }

    async fn link(&self, token: &str, body: Value) -> (StatusCode, Value) {
        self.call(token, reqwest::Method::POST, "/reelup/link", Some(body))
            .await
    }

    /// Uploads `VIDEO` through the POST policy path as `token`'s user; the answer's key and
    /// signed streaming URL.
    async fn upload(&self, token: &str) -> (String, Value) {
        let (status, params) = self
            .call(
                token,
                reqwest::Method::GET,
                &format!(
                    "/s3/params?filename=clip.mp4&type=video/mp4&size={}",
                    VIDEO.len()
                ),
                None,
            )
            .await;
        assert_eq!(status, 200, "{params}");
        let mut form = Form::new();
        for (k, v) in params["fields"].as_object().expect("fields") {
            form = form.text(k.clone(), v.as_str().expect("string").to_owned());
        }
        form = form.part("file", Part::bytes(VIDEO.to_vec()).file_name("clip.mp4"));
        let stored = self
            .http
            .post(params["url"].as_str().expect("url"))
            .multipart(form)
            .send()
            .await
            .expect("POST");
        assert!(stored.status().is_success(), "{}", stored.status());
        (
            params["fields"]["key"].as_str().expect("key").to_owned(),
            params,
        )
    }

    /// The CDN's answer to `url`: status and body text.
    async fn fetch(&self, url: &str) -> (StatusCode, String) {
        let r = self.http.get(url).send().await.expect("GET");
        (r.status(), r.text().await.unwrap_or_default())
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

#[tokio::test]
async fn the_post_policy_path_hands_out_a_signed_link_that_plays_with_ranges() {
    let s = start(|_| {}).await;
    let (key, params) = s.upload(ALICE).await;
    let url = params["streamingUrl"].as_str().expect("streamingUrl");
    let expires_at = params["streamingUrlExpiresAt"].as_u64().expect("expiry");
    // The default lifetime (a day), from now.
    assert!(
        (unix_now() + 86_300..=unix_now() + 86_400).contains(&expires_at),
        "{expires_at}"
    );
    assert!(
        url.starts_with(&format!(
            "{}/{key}?Expires={expires_at}&Signature=",
            s.stack.cdn
        )),
        "{url}"
    );
    assert!(url.ends_with("&Key-Pair-Id=KREELUPLOCAL"), "{url}");

    let (status, body) = s.fetch(url).await;
    assert_eq!((status, body.as_bytes()), (StatusCode::OK, VIDEO));
    // Browsers play with Range requests: the signed URL serves them.
    let ranged = s
        .http
        .get(url)
        .header("Range", "bytes=4-7")
        .send()
        .await
        .expect("GET");
    assert_eq!(ranged.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(&ranged.bytes().await.expect("body")[..], b"ftyp");

    // Unsigned: refused, with a plain reason.
    let (status, body) = s.fetch(&format!("{}/{key}", s.stack.cdn)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body.contains("needs a signed link"), "{body}");
}

#[tokio::test]
async fn the_multipart_complete_answers_a_signed_link_for_the_lifetime_asked() {
    let s = start(|_| {}).await;
    let (status, created) = s
        .call(
            ALICE,
            reqwest::Method::POST,
            "/s3/multipart",
            Some(json!({"filename": "clip.mp4", "type": "video/mp4", "metadata": {}})),
        )
        .await;
    assert_eq!(status, 200, "{created}");
    let key = created["key"].as_str().expect("key");
    let id = created["uploadId"].as_str().expect("id");
    let q = |p: &str| format!("/s3/multipart/{}{p}?key={}", urlencode(id), urlencode(key));
    let (_, part) = s.call(ALICE, reqwest::Method::GET, &q("/1"), None).await;
    let put = s
        .http
        .put(part["url"].as_str().expect("url"))
        .body(VIDEO.to_vec())
        .send()
        .await
        .expect("PUT");
    let etag = put.headers()["etag"].to_str().expect("etag").to_owned();
    let (status, done) = s
        .call(
            ALICE,
            reqwest::Method::POST,
            &q("/complete"),
            Some(json!({"parts": [{"PartNumber": 1, "ETag": etag}], "linkLifetimeSecs": 600})),
        )
        .await;
    assert_eq!(status, 200, "{done}");
    let expires_at = done["streamingUrlExpiresAt"].as_u64().expect("expiry");
    assert!(
        (unix_now() + 590..=unix_now() + 600).contains(&expires_at),
        "{done}"
    );
    let url = done["streamingUrl"].as_str().expect("url");
    assert_eq!(
        done["location"].as_str(),
        Some(url),
        "Companion clients read location"
    );
    assert_eq!(s.fetch(url).await.0, StatusCode::OK);
    s.cdn_clock.advance(Duration::from_secs(601));
    let (status, body) = s.fetch(url).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body.contains("expired"), "{body}");
}

#[tokio::test]
async fn links_are_resigned_for_the_callers_own_objects_only() {
    let s = start(|_| {}).await;
    let (key, _) = s.upload(ALICE).await;

    let (status, link) = s
        .link(ALICE, json!({"key": key, "lifetimeSecs": 3600}))
        .await;
    assert_eq!(status, 200, "{link}");
    let expires_at = link["expiresAt"].as_u64().expect("expiresAt");
    assert!((unix_now() + 3590..=unix_now() + 3600).contains(&expires_at));
    assert_eq!(
        s.fetch(link["url"].as_str().expect("url")).await.0,
        StatusCode::OK
    );

    // Another user's key: refused, and nothing signed.
    let (status, body) = s.link(BOB, json!({"key": key})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"], "forbidden");
    assert!(body.get("url").is_none());
    // A key of the caller's shape that holds nothing.
    let missing = "alice/00000000-0000-4000-8000-000000000000.mp4";
    let (status, body) = s.link(ALICE, json!({"key": missing})).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("no_such_object")),
        "{body}"
    );
    // Lifetimes outside the bounds, with the bounds in the answer.
    for lifetime in [5, 31 * 86_400] {
        let (status, body) = s
            .link(ALICE, json!({"key": key, "lifetimeSecs": lifetime}))
            .await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("bad_lifetime")),
            "{body}"
        );
        assert!(
            body["message"]
                .as_str()
                .expect("message")
                .contains("60 s to 2592000 s"),
            "{body}"
        );
    }
    let (status, body) = s
        .link(ALICE, json!({"key": key, "ipRange": "10.0.0.0/8"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["message"]
            .as_str()
            .expect("message")
            .contains("custom"),
        "{body}"
    );
    let (status, body) = s
        .link(
            ALICE,
            json!({"key": key, "policy": "custom", "ipRange": "10.1.2.3/8"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["message"]
            .as_str()
            .expect("message")
            .contains("10.0.0.0/8"),
        "{body}"
    );
    // No token: the route is behind the token like every signing route.
    let r = s
        .http
        .post(format!("{}/reelup/link", s.stack.endpoint))
        .json(&json!({"key": key}))
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_cdn_refuses_every_kind_of_bad_link() {
    let s = start(|_| {}).await;
    let (key, _) = s.upload(ALICE).await;
    let (other_key, _) = s.upload(ALICE).await;
    let (status, link) = s.link(ALICE, json!({"key": key})).await;
    assert_eq!(status, 200, "{link}");
    let good = link["url"].as_str().expect("url").to_owned();
    assert_eq!(s.fetch(&good).await.0, StatusCode::OK);

    let refused = |url: String, reason: &'static str| {
        let s = &s;
        async move {
            let (status, body) = s.fetch(&url).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{url}: {body}");
            assert!(body.contains(reason), "{url}: {body}");
            assert!(body.len() < 200, "a short plain reason: {body}");
        }
    };
    // A changed key: the signature was for another address.
    refused(good.replace(&key, &other_key), "signature does not match").await;
    // A later expiry written in.
    let expires = good
        .split("Expires=")
        .nth(1)
        .and_then(|r| r.split('&').next())
        .expect("Expires");
    refused(
        good.replace(
            &format!("Expires={expires}"),
            &format!("Expires={}", expires.parse::<u64>().expect("n") + 3600),
        ),
        "signature does not match",
    )
    .await;
    // Another Key-Pair-Id.
    refused(
        good.replace("Key-Pair-Id=KREELUPLOCAL", "Key-Pair-Id=KOTHER"),
        "Key-Pair-Id",
    )
    .await;
    // Signed by another key under the trusted ID.
    let intruder = LinkSigner::generate_p256("KREELUPLOCAL").expect("key");
    let cdn_url = format!("{}/{key}", s.stack.cdn);
    refused(
        intruder.sign_canned(&cdn_url, unix_now() + 3600).url,
        "signature does not match",
    )
    .await;
    // Missing pieces.
    refused(
        good.split("&Key-Pair-Id")
            .next()
            .expect("prefix")
            .to_owned(),
        "incomplete",
    )
    .await;

    // Custom policies: a tampered Policy, an address outside the range, one inside.
    let (status, custom) = s
        .link(
            ALICE,
            json!({"key": key, "policy": "custom", "ipRange": "127.0.0.0/8"}),
        )
        .await;
    assert_eq!(status, 200, "{custom}");
    let custom = custom["url"].as_str().expect("url").to_owned();
    assert!(custom.contains("?Policy="), "{custom}");
    assert_eq!(
        s.fetch(&custom).await.0,
        StatusCode::OK,
        "127.0.0.1 is in 127.0.0.0/8"
    );
    let policy = custom
        .split("Policy=")
        .nth(1)
        .and_then(|r| r.split('&').next())
        .expect("Policy");
    let mut json = reelup_server::cloudfront::from_url_safe_base64(policy).expect("base64");
    let text = String::from_utf8(json.clone()).expect("utf-8");
    json = text.replace("127.0.0.0/8", "0.0.0.0/0").into_bytes();
    let tampered = reelup_server::cloudfront::url_safe_base64(&json);
    refused(
        custom.replace(policy, &tampered),
        "signature does not match",
    )
    .await;
    let (_, far) = s
        .link(
            ALICE,
            json!({"key": key, "policy": "custom", "ipRange": "203.0.113.0/24"}),
        )
        .await;
    refused(
        far["url"].as_str().expect("url").to_owned(),
        "network address",
    )
    .await;
    // Expired: the CDN's clock moves past the canned link's expiry.
    s.cdn_clock.advance(Duration::from_secs(25 * 3600));
    refused(good, "expired").await;
}

#[tokio::test]
async fn an_rsa_2048_key_signs_and_verifies_end_to_end() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pem = dir.path().join("rsa.pem");
    let made = std::process::Command::new("openssl")
        .args(["genrsa", "-out"])
        .arg(&pem)
        .arg("2048")
        .output()
        .expect("openssl runs");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let text = std::fs::read_to_string(&pem).expect("pem");
    let signer = LinkSigner::from_pem("KRSATEST", &text).expect("RSA-2048 key");
    assert_eq!(signer.algorithm(), "RSA-2048");
    let s = start(|o| o.link_signer = Some(signer)).await;
    let (key, params) = s.upload(ALICE).await;
    let url = params["streamingUrl"].as_str().expect("url");
    assert!(url.ends_with("&Key-Pair-Id=KRSATEST"), "{url}");
    assert_eq!(s.fetch(url).await.0, StatusCode::OK);
    let (_, custom) = s.link(ALICE, json!({"key": key, "policy": "custom"})).await;
    assert_eq!(
        s.fetch(custom["url"].as_str().expect("url")).await.0,
        StatusCode::OK
    );
    assert_eq!(
        s.fetch(&url.replace(&key, "alice/x")).await.0,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn without_required_links_unsigned_urls_pass_but_signed_ones_are_still_checked() {
    let s = start(|o| o.require_signed_links = false).await;
    let (key, params) = s.upload(ALICE).await;
    // The client asked for nothing: a plain URL, as before signed links.
    assert_eq!(
        params["streamingUrl"].as_str(),
        Some(format!("{}/{key}", s.stack.cdn).as_str())
    );
    assert!(params.get("streamingUrlExpiresAt").is_none());
    assert_eq!(
        s.fetch(&format!("{}/{key}", s.stack.cdn)).await.0,
        StatusCode::OK
    );
    let (_, link) = s.link(ALICE, json!({"key": key, "lifetimeSecs": 60})).await;
    let url = link["url"].as_str().expect("url");
    assert_eq!(s.fetch(url).await.0, StatusCode::OK);
    s.cdn_clock.advance(Duration::from_secs(61));
    assert_eq!(s.fetch(url).await.0, StatusCode::FORBIDDEN);
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
