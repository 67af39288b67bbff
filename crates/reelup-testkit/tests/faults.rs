//! The fault proxy in front of the real, signature-checking local store: part URLs are
//! presigned for the proxy's address through the presign routes, and uploaded through it.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use md5::{Digest, Md5};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use reelup_server::{LocalOptions, LocalStack};
use reelup_testkit::{Fault, FaultKind, FaultProxy, Match, Seen};
use serde_json::{Value, json};

const MIB: usize = 1024 * 1024;

struct Setup {
    proxy: FaultProxy,
    /// Where the store really listens, behind the proxy.
    store: SocketAddr,
    stack: LocalStack,
    http: reqwest::Client,
    key: String,
    upload_id: String,
    _dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local addr").port()
}

fn client() -> reqwest::Client {
    // No proxy from the environment: everything here is on loopback.
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("reqwest client")
}

fn enc(s: &str) -> String {
    utf8_percent_encode(s, NON_ALPHANUMERIC).to_string()
}

fn md5_hex(data: &[u8]) -> String {
    hex::encode(Md5::digest(data))
}

fn body(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

fn etag(resp: &reqwest::Response) -> String {
    resp.headers()
        .get("etag")
        .expect("an ETag")
        .to_str()
        .expect("ASCII ETag")
        .trim_matches('"')
        .to_owned()
}

/// The local stack behind a fault proxy, with one multipart upload created.
async fn setup() -> Setup {
    let store = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let proxy = FaultProxy::start(store).await.expect("start the proxy");
    let dir = tempfile::tempdir().expect("temp dir");
    let mut opts = LocalOptions::new(dir.path().to_path_buf());
    opts.s3_listen = store;
    opts.store_public_endpoint = Some(proxy.url());
    let stack = LocalStack::start(opts)
        .await
        .expect("start the local stack");
    let http = client();
    let created: Value = http
        .post(format!("{}/s3/multipart", stack.endpoint))
        .bearer_auth(stack.token.expose())
        .json(&json!({"filename": "a.mp4", "type": "video/mp4", "metadata": {}}))
        .send()
        .await
        .expect("create the upload")
        .error_for_status()
        .expect("upload created")
        .json()
        .await
        .expect("JSON");
    let key = created["key"].as_str().expect("key").to_owned();
    let upload_id = created["uploadId"].as_str().expect("uploadId").to_owned();
    assert!(key.starts_with("dev/"), "{key}");
    Setup {
        proxy,
        store,
        stack,
        http,
        key,
        upload_id,
        _dir: dir,
    }
}

impl Setup {
    async fn part_url(&self, part: u32) -> String {
        let signed: Value = self
            .http
            .get(format!(
                "{}/s3/multipart/{}/{part}?key={}",
                self.stack.endpoint,
                enc(&self.upload_id),
                enc(&self.key)
            ))
            .bearer_auth(self.stack.token.expose())
            .send()
            .await
            .expect("sign a part")
            .error_for_status()
            .expect("part signed")
            .json()
            .await
            .expect("JSON");
        let url = signed["url"].as_str().expect("url").to_owned();
        assert!(url.starts_with(&self.proxy.url()), "{url}");
        url
    }

    async fn put(&self, url: &str, data: &[u8]) -> reqwest::Result<reqwest::Response> {
        self.http.put(url).body(data.to_vec()).send().await
    }

    /// The part uploads the proxy saw (not the presign server's own requests to the store).
    fn part_puts(&self) -> Vec<Seen> {
        self.proxy
            .requests()
            .into_iter()
            .filter(|s| {
                s.method == http::Method::PUT
                    && s.query
                        .as_deref()
                        .is_some_and(|q| q.contains("partNumber="))
            })
            .collect()
    }
}

#[tokio::test]
async fn plain_put_through_the_proxy_is_accepted() {
    let s = setup().await;
    let url = s.part_url(1).await;
    let data = body(MIB);
    let resp = s.put(&url, &data).await.expect("PUT");
    assert_eq!(resp.status(), 200, "{:?}", resp.text().await);
    assert_eq!(etag(&resp), md5_hex(&data));
    let seen = s.part_puts();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].body_bytes, data.len());
    assert_eq!(seen[0].status, Some(200));
    assert_eq!(seen[0].fault, None);
    assert!(seen[0].path.ends_with(&s.key), "{seen:?}");

    // The signature is bound to the proxy's address: sent to the store directly (so with
    // another Host), the same URL is refused. So the proxy did forward the Host unchanged.
    let direct = url.replacen(&s.proxy.url(), &format!("http://{}", s.store), 1);
    let resp = s.put(&direct, &data).await.expect("PUT");
    assert_eq!(resp.status(), 403, "{:?}", resp.text().await);

    // The store has it: ListParts through the presign route, which goes through the proxy too.
    let parts: Value = s
        .http
        .get(format!(
            "{}/s3/multipart/{}?key={}",
            s.stack.endpoint,
            enc(&s.upload_id),
            enc(&s.key)
        ))
        .bearer_auth(s.stack.token.expose())
        .send()
        .await
        .expect("list parts")
        .json()
        .await
        .expect("JSON");
    assert_eq!(parts[0]["Size"], data.len(), "{parts}");
}

#[tokio::test]
async fn drop_mid_body_cuts_the_connection() {
    let s = setup().await;
    let url = s.part_url(1).await;
    let data = body(8 * MIB);
    s.proxy.inject(Fault::once(
        Match::PartUploads,
        FaultKind::DropMidBody {
            after_bytes: 256 * 1024,
        },
    ));
    let err = s.put(&url, &data).await.expect_err("the connection is cut");
    assert!(err.status().is_none(), "{err:?}");
    assert!(
        err.is_request() || err.is_body() || err.is_connect(),
        "{err:?}"
    );
    let seen = s.part_puts();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(
        seen[0].fault,
        Some(FaultKind::DropMidBody {
            after_bytes: 256 * 1024
        })
    );
    assert_eq!(seen[0].status, None);
    assert!(
        (256 * 1024..data.len()).contains(&seen[0].body_bytes),
        "{seen:?}"
    );

    // The same URL works once the fault is used up.
    let resp = s.put(&url, &data).await.expect("PUT");
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn status_fault_answers_an_s3_error_without_forwarding() {
    let s = setup().await;
    let url = s.part_url(1).await;
    s.proxy.inject(Fault::once(
        Match::PartNumber(1),
        FaultKind::Status {
            code: 503,
            s3_code: "SlowDown",
        },
    ));
    let resp = s.put(&url, &body(MIB)).await.expect("PUT");
    assert_eq!(resp.status(), 503);
    let xml = resp.text().await.expect("body");
    assert!(
        xml.contains("<Error><Code>SlowDown</Code><Message>"),
        "{xml}"
    );
    assert_eq!(s.part_puts()[0].status, Some(503));
    assert_eq!(s.part_puts()[0].body_bytes, MIB);
}

#[tokio::test]
async fn a_fault_for_one_time_applies_once() {
    let s = setup().await;
    let url = s.part_url(1).await;
    s.proxy.inject(Fault::once(
        Match::PartUploads,
        FaultKind::Status {
            code: 500,
            s3_code: "InternalError",
        },
    ));
    let data = body(MIB);
    assert_eq!(s.put(&url, &data).await.expect("PUT").status(), 500);
    assert_eq!(s.put(&url, &data).await.expect("PUT").status(), 200);
    assert_eq!(s.put(&url, &data).await.expect("PUT").status(), 200);
    let statuses: Vec<_> = s.part_puts().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [Some(500), Some(200), Some(200)]);

    // `times` and clear().
    s.proxy.inject(Fault::times(
        Match::Any,
        FaultKind::Status {
            code: 500,
            s3_code: "InternalError",
        },
        2,
    ));
    assert_eq!(s.put(&url, &data).await.expect("PUT").status(), 500);
    assert_eq!(s.put(&url, &data).await.expect("PUT").status(), 500);
    assert_eq!(s.put(&url, &data).await.expect("PUT").status(), 200);
    s.proxy
        .inject(Fault::always(Match::Any, FaultKind::OkWithErrorBody));
    s.proxy.clear();
    assert_eq!(s.put(&url, &data).await.expect("PUT").status(), 200);
}

#[tokio::test]
async fn flip_byte_corrupts_what_the_store_keeps() {
    let s = setup().await;
    let url = s.part_url(1).await;
    let data = body(MIB);
    s.proxy.inject(Fault::once(
        Match::PartUploads,
        FaultKind::FlipByte { at: 12_345 },
    ));
    let resp = s.put(&url, &data).await.expect("PUT");
    assert_eq!(resp.status(), 200, "the signature does not cover the body");
    let stored = etag(&resp);
    assert_ne!(stored, md5_hex(&data));
    let mut flipped = data.clone();
    flipped[12_345] ^= 1;
    assert_eq!(stored, md5_hex(&flipped));
}

#[tokio::test]
async fn network_down_fails_fast_and_recovers() {
    let s = setup().await;
    let url = s.part_url(1).await;
    let data = body(MIB);
    // A pooled connection exists now; going down must cut it too.
    assert_eq!(s.put(&url, &data).await.expect("PUT").status(), 200);
    s.proxy.set_down(true);
    for _ in 0..3 {
        let started = Instant::now();
        let err = s.put(&url, &data).await.expect_err("network is down");
        assert!(err.status().is_none(), "{err:?}");
        assert!(started.elapsed() < Duration::from_secs(2), "{err:?}");
    }
    s.proxy.set_down(false);
    assert_eq!(s.put(&url, &data).await.expect("PUT").status(), 200);
}

#[tokio::test]
async fn going_down_cuts_a_request_in_flight() {
    let s = setup().await;
    let url = s.part_url(1).await;
    s.proxy
        .inject(Fault::once(Match::PartUploads, FaultKind::Stall));
    let put = s.put(&url, b"stalled");
    let down = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        s.proxy.set_down(true);
    };
    let (res, ()) = tokio::join!(put, down);
    res.expect_err("cut when the network went down");
}

#[tokio::test]
async fn retry_after_and_ok_with_error_body() {
    let s = setup().await;
    let url = s.part_url(1).await;
    let data = body(64 * 1024);
    s.proxy.inject(Fault::once(
        Match::Any,
        FaultKind::RetryAfter {
            code: 429,
            seconds: 7,
        },
    ));
    let resp = s.put(&url, &data).await.expect("PUT");
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "7");

    s.proxy
        .inject(Fault::once(Match::Any, FaultKind::OkWithErrorBody));
    let resp = s.put(&url, &data).await.expect("PUT");
    assert_eq!(resp.status(), 200);
    let xml = resp.text().await.expect("body");
    assert!(xml.contains("<Error><Code>InternalError</Code>"), "{xml}");
}

#[tokio::test]
async fn delay_and_stall() {
    let s = setup().await;
    let url = s.part_url(1).await;
    let data = body(64 * 1024);
    s.proxy.inject(Fault::once(
        Match::PartUploads,
        FaultKind::Delay(Duration::from_millis(400)),
    ));
    let started = Instant::now();
    let resp = s.put(&url, &data).await.expect("PUT");
    assert_eq!(resp.status(), 200);
    assert!(started.elapsed() >= Duration::from_millis(400));

    s.proxy
        .inject(Fault::once(Match::PartUploads, FaultKind::Stall));
    let err = s
        .http
        .put(&url)
        .body(data.clone())
        .timeout(Duration::from_millis(500))
        .send()
        .await
        .expect_err("never answered");
    assert!(err.is_timeout(), "{err:?}");
    let last = s.part_puts().pop().expect("seen");
    assert_eq!(last.fault, Some(FaultKind::Stall));
    assert_eq!(last.status, None);
    assert_eq!(last.body_bytes, data.len());
}

#[tokio::test]
async fn upstream_unreachable_is_502() {
    let proxy = FaultProxy::start(SocketAddr::from(([127, 0, 0, 1], free_port())))
        .await
        .expect("start");
    let resp = client()
        .get(format!("{}/reelup/x", proxy.url()))
        .send()
        .await
        .expect("GET");
    assert_eq!(resp.status(), 502);
    assert_eq!(proxy.requests()[0].status, Some(502));
}

#[tokio::test]
async fn dropping_the_proxy_closes_its_listener() {
    let proxy = FaultProxy::start(SocketAddr::from(([127, 0, 0, 1], free_port())))
        .await
        .expect("start");
    let addr = proxy.addr();
    drop(proxy);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let connected = tokio::net::TcpStream::connect(addr).await;
    assert!(connected.is_err(), "still listening on {addr}");
}
