//! Multipart uploads against the local stack, over real HTTP, when things go wrong: the
//! stack killed and started again in the middle of an upload, a client that goes away
//! while its Complete runs, an upload that no longer exists, a slow conditional PUT, and a
//! client that declares a size but no part size.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reelup_server::{LocalOptions, LocalStack};
use reqwest::StatusCode;
use serde_json::{Value, json};

const SERVER: &str = env!("CARGO_BIN_EXE_reelup-server");
const MIB: usize = 1024 * 1024;
const PART: usize = 5 * MIB;

/// Bytes that are not one repeated byte, different for each `seed`, so a part out of
/// place or a stale object shows.
fn file(len: usize, seed: usize) -> Vec<u8> {
    (0..len)
        .map(|i| ((i * 31 + seed * 7) % 251) as u8)
        .collect()
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

/// The presign routes of a local stack, whichever way it runs.
#[derive(Clone)]
struct Routes {
    endpoint: String,
    cdn: String,
    token: String,
    http: reqwest::Client,
}

/// A multipart upload as the routes handed it out.
#[derive(Debug, Clone)]
struct Upload {
    key: String,
    id: String,
}

impl Routes {
    async fn call(&self, req: reqwest::RequestBuilder) -> (StatusCode, Value) {
        let r = req.bearer_auth(&self.token).send().await.expect("request");
        (r.status(), r.json().await.unwrap_or(Value::Null))
    }

    async fn create(&self, body: Value) -> (StatusCode, Value) {
        let url = format!("{}/s3/multipart", self.endpoint);
        self.call(self.http.post(url).json(&body)).await
    }

    async fn create_sized(&self, size: usize) -> Upload {
        let (status, body) = self
            .create(json!({
                "filename": "clip.mp4", "type": "video/mp4", "metadata": {},
                "size": size, "partSize": PART,
            }))
            .await;
        assert_eq!(status, 200, "{body}");
        upload_of(&body)
    }

    async fn sign(&self, up: &Upload, n: usize) -> (StatusCode, Value) {
        let url = format!("{}/s3/multipart/{}/{n}", self.endpoint, enc(&up.id));
        self.call(self.http.get(url).query(&[("key", &up.key)]))
            .await
    }

    /// Signs part `n` and PUTs `bytes` to it: the store's status, ETag and error code.
    async fn put_part(
        &self,
        up: &Upload,
        n: usize,
        bytes: Vec<u8>,
    ) -> (StatusCode, String, String) {
        self.try_put_part(up, n, bytes)
            .await
            .unwrap_or_else(|e| panic!("PUT part {n}: {e}"))
    }

    /// [`Routes::put_part`], or the error of a connection the store closed while the body
    /// was still being sent (it answered before reading a body it refused).
    async fn try_put_part(
        &self,
        up: &Upload,
        n: usize,
        bytes: Vec<u8>,
    ) -> Result<(StatusCode, String, String), reqwest::Error> {
        let (status, signed) = self.sign(up, n).await;
        assert_eq!(status, 200, "signing part {n}: {signed}");
        let r = self
            .http
            .put(signed["url"].as_str().expect("url"))
            .body(bytes)
            .send()
            .await?;
        let status = r.status();
        let etag = r
            .headers()
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let text = r.text().await.unwrap_or_default();
        let code = text
            .split_once("<Code>")
            .and_then(|(_, rest)| rest.split_once("</Code>"))
            .map(|(code, _)| code.to_owned())
            .unwrap_or_default();
        Ok((status, etag, code))
    }

    /// Uploads `data` in parts of [`PART`]; the parts' ETags in order.
    async fn put_parts(&self, up: &Upload, data: &[u8]) -> Vec<String> {
        let mut etags = Vec::new();
        for (i, chunk) in data.chunks(PART).enumerate() {
            let (status, etag, code) = self.put_part(up, i + 1, chunk.to_vec()).await;
            assert_eq!(status, 200, "part {}: {code}", i + 1);
            etags.push(etag);
        }
        etags
    }

    fn complete_request(&self, up: &Upload, etags: &[String]) -> reqwest::RequestBuilder {
        let parts: Vec<Value> = etags
            .iter()
            .enumerate()
            .map(|(i, etag)| json!({"PartNumber": i + 1, "ETag": etag}))
            .collect();
        let url = format!("{}/s3/multipart/{}/complete", self.endpoint, enc(&up.id));
        self.http
            .post(url)
            .query(&[("key", &up.key)])
            .bearer_auth(&self.token)
            .json(&json!({ "parts": parts }))
    }

    async fn complete(&self, up: &Upload, etags: &[String]) -> (StatusCode, Value) {
        let r = self
            .complete_request(up, etags)
            .send()
            .await
            .expect("complete");
        (r.status(), r.json().await.unwrap_or(Value::Null))
    }

    async fn list_parts(&self, up: &Upload) -> (StatusCode, Value) {
        let url = format!("{}/s3/multipart/{}", self.endpoint, enc(&up.id));
        self.call(self.http.get(url).query(&[("key", &up.key)]))
            .await
    }

    /// The object at `key` through the CDN route, or None when there is none.
    async fn object(&self, key: &str) -> Option<Vec<u8>> {
        let r = self
            .http
            .get(format!("{}/{key}", self.cdn))
            .send()
            .await
            .expect("GET object");
        match r.status() {
            StatusCode::OK => Some(r.bytes().await.expect("object body").to_vec()),
            StatusCode::NOT_FOUND => None,
            other => panic!("GET {key}: {other}"),
        }
    }
}

fn upload_of(body: &Value) -> Upload {
    Upload {
        key: body["key"].as_str().expect("key").to_owned(),
        id: body["uploadId"].as_str().expect("uploadId").to_owned(),
    }
}

fn routes_of(stack: &LocalStack) -> Routes {
    Routes {
        endpoint: stack.endpoint.clone(),
        cdn: stack.cdn.clone(),
        token: stack.token.expose().to_owned(),
        http: reqwest::Client::new(),
    }
}

/// A local stack as users run it: the real binary, its store's keys left to it.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Proc {
    fn start(data_dir: &Path, listen: SocketAddr, s3_listen: SocketAddr) -> (Self, Routes) {
        let mut child = Command::new(SERVER)
            .arg("--local")
            .arg("--listen")
            .arg(listen.to_string())
            .arg("--s3-listen")
            .arg(s3_listen.to_string())
            .arg("--data-dir")
            .arg(data_dir)
            .env_remove("REELUP_LOCAL_S3_ACCESS_KEY")
            .env_remove("REELUP_LOCAL_S3_SECRET_KEY")
            .env_remove("REELUP_SERVER_TOKEN")
            .env("REELUP_LOG", "warn,s3s=off")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn reelup-server --local");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("ready line");
        let ready: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("ready line {line:?} is not JSON: {e}"));
        let field = |k: &str| ready[k].as_str().expect(k).to_owned();
        let routes = Routes {
            endpoint: field("endpoint"),
            cdn: field("cdn"),
            token: field("token"),
            http: reqwest::Client::new(),
        };
        (Self(child), routes)
    }
}

fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
}

/// The stack killed (SIGKILL) between two parts and started again on the same data dir and
/// ports: the rest of the upload and its Complete go through, and the object is the file.
/// The store used to draw new keys at each start, and s3s-fs refused (AccessDenied) every
/// part and Complete of an upload made under the old ones.
#[tokio::test]
async fn an_upload_goes_on_after_the_stack_is_killed_and_started_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (listen, s3_listen) = (free_addr(), free_addr());
    let data = file(PART + 1000, 1);
    let (first, routes) = Proc::start(dir.path(), listen, s3_listen);
    let up = routes.create_sized(data.len()).await;
    let (status, etag1, code) = routes.put_part(&up, 1, data[..PART].to_vec()).await;
    assert_eq!(status, 200, "{code}");
    drop(first);

    let (_second, routes) = Proc::start(dir.path(), listen, s3_listen);
    let (status, etag2, code) = routes.put_part(&up, 2, data[PART..].to_vec()).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::OK, ""),
        "part 2 after the restart"
    );
    let (status, body) = routes.complete(&up, &[etag1, etag2]).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        routes.object(&up.key).await == Some(data),
        "the object is not the file"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join(reelup_server::local::STORE_KEYS_FILE))
            .expect("the store's keys are kept in the data dir")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "the store's keys are its owner's only");
    }
}

/// After its client goes away (the request dropped at many points while it runs), a
/// Complete has either made the whole object or left the upload to be completed again;
/// never neither. It used to be stopped half-way: s3s-fs had already forgotten the upload
/// and deleted some parts, and no object was made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_complete_whose_client_goes_away_finishes_or_can_be_done_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let stack = LocalStack::start(LocalOptions::new(dir.path().to_owned()))
        .await
        .expect("stack");
    let routes = routes_of(&stack);
    const PARTS: usize = 6;
    let data = file(PARTS * PART, 2);

    // How long one Complete takes here, to cut the others off all through it.
    let up = routes.create_sized(data.len()).await;
    let etags = routes.put_parts(&up, &data).await;
    let started = Instant::now();
    let (status, body) = routes.complete(&up, &etags).await;
    assert_eq!(status, 200, "{body}");
    let took = started.elapsed();

    let mut outcomes = Vec::new();
    for step in 0..10u32 {
        let cut_after = took * step / 8;
        let up = routes.create_sized(data.len()).await;
        let etags = routes.put_parts(&up, &data).await;
        let cut = routes
            .complete_request(&up, &etags)
            .timeout(cut_after.max(Duration::from_millis(1)))
            .send()
            .await;
        let finished = matches!(&cut, Ok(r) if r.status() == 200);
        // Completing again: done if the first one finished, else it finishes now. Either
        // way the object must be the file.
        let (status, body) = routes.complete(&up, &etags).await;
        let again = match (status.as_u16(), body["error"].as_str()) {
            (200, _) => "completed again",
            (404, Some("no_such_upload")) => "already completed",
            _ => panic!(
                "cut off after {cut_after:?} (of {took:?}; the first answered {:?}): completing again answered {status} {body}",
                cut.as_ref().map(reqwest::Response::status)
            ),
        };
        assert!(
            routes.object(&up.key).await.as_deref() == Some(&data[..]),
            "cut off after {cut_after:?} ({again}): the object is missing or not the file"
        );
        outcomes.push((cut_after, finished, again));
    }
    eprintln!("{outcomes:?}");
    stack.shutdown().await;
}

/// Parts, ListParts and Complete of an upload that is gone (aborted, or completed) answer
/// S3's NoSuchUpload, which the routes pass on as 404 `no_such_upload`: the client learns
/// the upload is gone, not that its credentials are wrong. The one exception: Complete of
/// a completed upload with exactly its parts is answered from the object, as the first
/// Complete was. The local store used to answer
/// AccessDenied for a part, an empty list for ListParts, and the routes "part 1 was never
/// uploaded" for Complete.
#[tokio::test]
async fn a_vanished_upload_is_no_such_upload_everywhere() {
    let dir = tempfile::tempdir().expect("tempdir");
    let stack = LocalStack::start(LocalOptions::new(dir.path().to_owned()))
        .await
        .expect("stack");
    let routes = routes_of(&stack);
    let data = file(PART + 10, 3);

    let aborted = routes.create_sized(data.len()).await;
    let etags = routes.put_parts(&aborted, &data[..PART]).await;
    let url = format!("{}/s3/multipart/{}", routes.endpoint, enc(&aborted.id));
    let (status, body) = routes
        .call(routes.http.delete(url).query(&[("key", &aborted.key)]))
        .await;
    assert_eq!(status, 200, "abort: {body}");

    let completed = routes.create_sized(data.len()).await;
    let done = routes.put_parts(&completed, &data).await;
    let (status, body) = routes.complete(&completed, &done).await;
    assert_eq!(status, 200, "{body}");

    for (what, up, etags) in [
        ("aborted", &aborted, &etags),
        ("completed", &completed, &done),
    ] {
        let (status, _, code) = routes.put_part(up, 2, data[PART..].to_vec()).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::NOT_FOUND, "NoSuchUpload"),
            "a part of the {what} upload"
        );
        let (status, body) = routes.list_parts(up).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::NOT_FOUND, Some("no_such_upload")),
            "ListParts of the {what} upload: {body}"
        );
        if what == "completed" {
            // Asked again with its own parts (an answer lost to a crash), Complete is
            // answered from the object, as the first was; with other parts it is gone.
            let (status, body) = routes.complete(up, etags).await;
            assert_eq!(status, 200, "Complete repeated with the same parts: {body}");
            assert_eq!(body["key"].as_str(), Some(up.key.as_str()), "{body}");
            let (status, body) = routes.complete(up, &etags[..1]).await;
            assert_eq!(
                (status, body["error"].as_str()),
                (StatusCode::NOT_FOUND, Some("no_such_upload")),
                "Complete of the completed upload with other parts: {body}"
            );
        } else {
            let (status, body) = routes.complete(up, etags).await;
            assert_eq!(
                (status, body["error"].as_str()),
                (StatusCode::NOT_FOUND, Some("no_such_upload")),
                "Complete of the {what} upload: {body}"
            );
        }
    }
    assert!(routes.object(&aborted.key).await.is_none());
    assert!(routes.object(&completed.key).await.as_deref() == Some(&data[..]));
    stack.shutdown().await;
}

/// A PUT to the store with `If-None-Match: *` whose body never ends does not hold up an
/// invite redemption (itself a conditional write to the store). The store used to take one
/// lock for every request with that header, for the whole body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_conditional_put_does_not_stall_an_invite_redemption() {
    let dir = tempfile::tempdir().expect("tempdir");
    let stack = LocalStack::start(LocalOptions::new(dir.path().to_owned()))
        .await
        .expect("stack");
    let routes = routes_of(&stack);
    let link = url::Url::parse(stack.invite.as_deref().expect("an invite link")).expect("link");
    let code = link
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .expect("code");

    let up = routes.create_sized(PART).await;
    let (status, signed) = routes.sign(&up, 1).await;
    assert_eq!(status, 200, "{signed}");
    let (tx, rx) = futures::channel::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(1);
    let mut tx = tx;
    tx.try_send(Ok(vec![7u8; 1024])).expect("first chunk");
    let slow = routes
        .http
        .put(signed["url"].as_str().expect("url"))
        .header("if-none-match", "*")
        .header("content-length", PART.to_string())
        .body(reqwest::Body::wrap_stream(rx));
    let slow = tokio::spawn(slow.send());

    // The store has begun writing the part (s3s-fs's temporary file is there): the PUT
    // is past whatever lock it would take, and its body will not end.
    let s3_root = dir.path().join("s3");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !std::fs::read_dir(&s3_root)
        .expect("store root")
        .filter_map(Result::ok)
        .any(|e| e.file_name().to_string_lossy().starts_with(".tmp."))
    {
        assert!(
            Instant::now() < deadline,
            "the slow PUT never reached the store"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let redeemed = routes
        .http
        .post(format!("{}/invites/redeem", routes.endpoint))
        .json(&json!({ "code": code }))
        .timeout(Duration::from_secs(20))
        .send()
        .await
        .expect("the redemption is answered while the slow PUT goes on");
    assert_eq!(redeemed.status(), 200);
    assert!(!slow.is_finished(), "the slow PUT is still going on");
    slow.abort();
    drop(tx);
    stack.shutdown().await;
}

/// A client that declares its file's size but no part size gets one (`partSize` in the
/// create answer), and every part URL is signed with its exact length: the store refuses
/// a part of any other length, as it does for a client that declared both. Part URLs used
/// to carry no length then, and an 8 MiB part was taken for a 1-byte upload.
#[tokio::test]
async fn a_declared_size_bounds_every_part() {
    let dir = tempfile::tempdir().expect("tempdir");
    let stack = LocalStack::start(LocalOptions::new(dir.path().to_owned()))
        .await
        .expect("stack");
    let routes = routes_of(&stack);

    let (status, body) = routes
        .create(json!({"filename": "tiny.mp4", "type": "video/mp4", "size": 1}))
        .await;
    assert_eq!(status, 200, "{body}");
    let tiny = upload_of(&body);
    // Refused in words, or by closing the connection before reading the body; either way
    // the store holds no such part.
    if let Ok((status, _, code)) = routes.try_put_part(&tiny, 1, vec![0u8; 8 * MIB]).await {
        assert!(
            status.is_client_error(),
            "an 8 MiB part of a 1-byte upload was answered {status} {code}"
        );
    }
    let (status, listed) = routes.list_parts(&tiny).await;
    assert_eq!((status, listed), (StatusCode::OK, json!([])));
    assert_eq!(body["partSize"], json!(PART), "{body}");
    let (status, body) = routes.sign(&tiny, 2).await;
    assert_eq!(status, 400, "part 2 of a 1-byte upload: {body}");
    let (status, etag, code) = routes.put_part(&tiny, 1, vec![9u8]).await;
    assert_eq!(status, 200, "{code}");
    let (status, body) = routes.complete(&tiny, &[etag]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(routes.object(&tiny.key).await, Some(vec![9u8]));

    // A larger file: parts of the derived size, the last one the rest, nothing else.
    let data = file(PART + 3, 4);
    let (status, body) = routes
        .create(json!({"filename": "clip.mp4", "type": "video/mp4", "size": data.len()}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["partSize"], json!(PART), "{body}");
    let up = upload_of(&body);
    let (status, _, code) = routes.put_part(&up, 2, data[PART - 1..].to_vec()).await;
    assert!(
        status.is_client_error(),
        "a 4-byte last part: {status} {code}"
    );
    let etags = routes.put_parts(&up, &data).await;
    let (status, body) = routes.complete(&up, &etags).await;
    assert_eq!(status, 200, "{body}");
    assert!(routes.object(&up.key).await.as_deref() == Some(&data[..]));
    stack.shutdown().await;
}

/// A Complete never replaces an object already at its key: the routes send it with
/// `If-None-Match: *`, the local store answers 412 as S3 does, and the client is told
/// `object_exists` (409); the object stays as it was. Completes used to be unconditional,
/// and the store replaced whatever was there.
#[tokio::test]
async fn a_complete_never_replaces_an_object() {
    const STORE_KEY: &str = "REELUPNOREPLACE";
    const STORE_SECRET: &str = "no-replace-test-store-secret";
    let dir = tempfile::tempdir().expect("tempdir");
    let mut opts = LocalOptions::new(dir.path().to_owned());
    opts.store_keys = Some((STORE_KEY.into(), reelup_protocol::Secret::new(STORE_SECRET)));
    let stack = LocalStack::start(opts).await.expect("stack");
    let routes = routes_of(&stack);
    // The store as another writer with its keys sees it.
    let store = reelup_server::store::ObjectStore::new(
        stack.s3_endpoint.parse().expect("store URL"),
        reelup_server::local::BUCKET,
        reelup_server::local::REGION,
        reelup_server::credentials::SigningKeys::fixed(STORE_KEY, STORE_SECRET),
        true,
        Duration::from_secs(300),
    )
    .expect("store");

    let data = file(1000, 5);
    let up = routes.create_sized(data.len()).await;
    let etags = routes.put_parts(&up, &data).await;
    assert!(
        store
            .put_if_absent(&up.key, b"already here".to_vec())
            .await
            .expect("PUT"),
        "the key was free"
    );
    let (status, body) = routes.complete(&up, &etags).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::CONFLICT, Some("object_exists")),
        "{body}"
    );
    assert_eq!(
        routes.object(&up.key).await.as_deref(),
        Some(&b"already here"[..])
    );
    stack.shutdown().await;
}
