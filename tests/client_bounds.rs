//! What the upload engine refuses to do for whoever answers as its endpoint or edits its
//! profiles, and what it retries: against real `reelup-server --local` stacks and the
//! signature-checking store, with the fault-injecting proxy where a fault is the point.
//!
//! - A remote endpoint that hands back plain `http://` presigned URLs gets no bytes.
//! - A queued item never sends its profile's token to a host that is no longer the profile's
//!   endpoint; resuming it on purpose sends it to the new one.
//! - A small file (one POST) whose connection is reset, times out or meets a 5xx is retried
//!   like a part, and arrives byte-identical.
//! - Errors stored in the queue never carry a presigned URL's signature.

use std::sync::Arc;
use std::time::Duration;

use reelup_core::config::{Profile, ProfileConfig};
use reelup_core::credentials::{CredentialError, CredentialStore, StoredToken, TokenCache};
use reelup_core::queue::store::{ItemState, QueueStore, Target};
use reelup_core::{
    CompanionClient, CompletedPart, FileMeta, ListedPart, MultipartCompleted, MultipartStart,
    PostPolicy, PresignEndpoint, QueueOptions, RetryPolicy, Secret, SignedPart, UploadError,
    UploadOptions, UploadQueue,
};
use reelup_server::{LocalOptions, LocalStack};
use reelup_testkit::{Fault, FaultKind, FaultProxy, Match};
use reelup_tests::{free_addr, random_file, sha256_hex, stack_behind_proxy};
use reqwest::Method;
use tokio_util::sync::CancellationToken;

const MIB: u64 = 1024 * 1024;

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(2))
        .build()
        .expect("http")
}

fn options() -> QueueOptions {
    QueueOptions {
        upload: UploadOptions {
            multipart_threshold: 5 * MIB,
            part_size: 5 * MIB,
        },
        parts_in_flight: 2,
        retry: RetryPolicy {
            base: Duration::from_millis(50),
            cap: Duration::from_millis(500),
            attempts: 4,
        },
        stall_timeout: Duration::from_secs(2),
        ..QueueOptions::default()
    }
}

async fn run(queue: &Arc<UploadQueue<impl PresignEndpoint>>, ids: Vec<i64>) {
    tokio::time::timeout(
        Duration::from_secs(120),
        queue.run(Some(ids), CancellationToken::new()),
    )
    .await
    .expect("the queue finishes")
    .expect("queue runs");
}

async fn fetch(url: &str) -> Vec<u8> {
    reqwest::get(url)
        .await
        .expect("GET")
        .bytes()
        .await
        .expect("body")
        .to_vec()
}

/// A queue whose presign client is the local stack's, wrapped by `wrap` (the fault under
/// test); its queue file lives in `dir`.
fn queue_through<E: PresignEndpoint>(
    dir: &std::path::Path,
    stack: &LocalStack,
    wrap: impl Fn(CompanionClient) -> E + Send + Sync + 'static,
) -> Arc<UploadQueue<E>> {
    let store = QueueStore::open(&dir.join("queue.sqlite3")).expect("queue");
    let (endpoint, token) = (stack.endpoint.clone(), stack.token.clone());
    let client_http = http();
    UploadQueue::new(
        store,
        move |_: &Target| {
            wrap(CompanionClient::new(
                client_http.clone(),
                &endpoint,
                Some(token.clone()),
            ))
        },
        http(),
        options(),
    )
}

/// Requests that carry (or try to send) a file's bytes: a POST-policy form to the bucket,
/// a part PUT, or anything with a body. The server's own calls to the store (creating the
/// bucket, creating and listing a multipart upload) carry none and are not counted.
fn store_uploads(proxy: &FaultProxy) -> usize {
    proxy
        .requests()
        .iter()
        .filter(|s| {
            let query = s.query.as_deref().unwrap_or_default();
            s.body_bytes > 0
                || (s.method == Method::PUT && query.contains("partNumber="))
                || (s.method == Method::POST && s.path.trim_end_matches('/') == "/reelup")
        })
        .count()
}

/// The presign endpoint the engine believes is remote (the item's target says
/// `https://uploads.example.com`, which is never contacted) while a local stack answers:
/// what a remote endpoint that hands back `http://` URLs looks like to the engine.
struct PosingAsRemote(CompanionClient);

impl PresignEndpoint for PosingAsRemote {
    async fn post_policy(&self, file: &FileMeta) -> Result<PostPolicy, UploadError> {
        self.0.post_policy(file).await
    }
    async fn create_multipart(&self, file: &FileMeta) -> Result<MultipartStart, UploadError> {
        self.0.create_multipart(file).await
    }
    async fn sign_part(
        &self,
        key: &str,
        id: &str,
        n: u32,
        crc: Option<&str>,
    ) -> Result<SignedPart, UploadError> {
        self.0.sign_part(key, id, n, crc).await
    }
    async fn list_parts(&self, key: &str, id: &str) -> Result<Vec<ListedPart>, UploadError> {
        self.0.list_parts(key, id).await
    }
    async fn complete(
        &self,
        key: &str,
        id: &str,
        p: &[CompletedPart],
        crc: Option<&str>,
    ) -> Result<MultipartCompleted, UploadError> {
        self.0.complete(key, id, p, crc).await
    }
    async fn abort(&self, key: &str, id: &str) -> Result<(), UploadError> {
        self.0.abort(key, id).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_endpoint_handing_back_http_urls_gets_no_bytes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (stack, proxy) = stack_behind_proxy(LocalOptions::new(dir.path().join("server"))).await;
    let queue = queue_through(dir.path(), &stack, PosingAsRemote);
    let target = Target::new("https://uploads.example.com", "https://d1.cloudfront.net");
    let (small, _) = random_file(dir.path(), "small.mp4", 200 * 1024);
    let (large, _) = random_file(dir.path(), "large.mp4", (6 * MIB) as usize);
    let small_id = queue.add(&small, &target).expect("add");
    let large_id = queue.add(&large, &target).expect("add");
    run(&queue, vec![small_id, large_id]).await;

    for (id, what) in [(small_id, "POST policy URL"), (large_id, "part URL")] {
        let item = queue.get(id).expect("item");
        assert_eq!(item.state, ItemState::Failed);
        let error = item.error.expect("an error");
        assert_eq!(error.code, "insecure_url", "{error:?}");
        assert!(!error.retryable);
        assert!(
            error.message.contains(what)
                && error.message.contains("http://127.0.0.1")
                && error.message.contains("https"),
            "says what was refused and why: {}",
            error.message
        );
        assert!(!error.message.contains("X-Amz"), "{}", error.message);
    }
    assert_eq!(
        store_uploads(&proxy),
        0,
        "no byte went to the store: {:?}",
        proxy.requests()
    );
}

/// reelup-server, but its complete answers a whole-object CRC other than the one the
/// client combined from its parts: what a store that joined other bytes would say.
struct OtherWholeCrc(CompanionClient);

impl PresignEndpoint for OtherWholeCrc {
    async fn post_policy(&self, file: &FileMeta) -> Result<PostPolicy, UploadError> {
        self.0.post_policy(file).await
    }
    async fn create_multipart(&self, file: &FileMeta) -> Result<MultipartStart, UploadError> {
        self.0.create_multipart(file).await
    }
    async fn sign_part(
        &self,
        key: &str,
        id: &str,
        n: u32,
        crc: Option<&str>,
    ) -> Result<SignedPart, UploadError> {
        self.0.sign_part(key, id, n, crc).await
    }
    async fn list_parts(&self, key: &str, id: &str) -> Result<Vec<ListedPart>, UploadError> {
        self.0.list_parts(key, id).await
    }
    async fn complete(
        &self,
        key: &str,
        id: &str,
        p: &[CompletedPart],
        crc: Option<&str>,
    ) -> Result<MultipartCompleted, UploadError> {
        let mut done = self.0.complete(key, id, p, crc).await?;
        done.checksum_crc64nvme = Some("AAAAAAAAAAE=".into());
        Ok(done)
    }
    async fn abort(&self, key: &str, id: &str) -> Result<(), UploadError> {
        self.0.abort(key, id).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_object_crc_other_than_the_parts_combined_fails_the_upload() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (stack, _proxy) = stack_behind_proxy(LocalOptions::new(dir.path().join("server"))).await;
    let queue = queue_through(dir.path(), &stack, OtherWholeCrc);
    let target = Target::new(&stack.endpoint, &stack.cdn);
    let (large, _) = random_file(dir.path(), "large.mp4", (11 * MIB) as usize);
    let id = queue.add(&large, &target).expect("add");
    run(&queue, vec![id]).await;
    let item = queue.get(id).expect("item");
    assert_eq!(item.state, ItemState::Failed);
    let error = item.error.expect("an error");
    assert_eq!(error.code, "integrity", "{error:?}");
    assert!(error.message.contains("CRC64NVME"), "{}", error.message);
    assert_eq!(item.verified, None, "nothing is claimed verified");
}

/// Tokens in memory: this test is about where they go, not the keyring.
struct Tokens(String);

impl CredentialStore for Tokens {
    // A bare token (as stored before tokens were bound): bound to whichever endpoint asks
    // first, which is what this test needs, since both servers take the same token.
    fn get(&self, _profile: &str) -> Result<Option<StoredToken>, CredentialError> {
        Ok(Some(StoredToken {
            endpoint: None,
            token: Secret::new(self.0.clone()),
        }))
    }
    fn set(&self, _profile: &str, _token: &StoredToken) -> Result<(), CredentialError> {
        Ok(())
    }
    fn delete(&self, _profile: &str) -> Result<bool, CredentialError> {
        Ok(false)
    }
}

fn save_profile(config_path: &std::path::Path, endpoint: &str) {
    let mut config = ProfileConfig::load(config_path).expect("config");
    config
        .save_profile(None, Profile::new("work", endpoint))
        .expect("save profile");
}

/// The profile `work` points at server A (behind a proxy that counts what reaches it); an
/// item is queued for it; then the profile is edited to point at server B. Both servers
/// accept the same token, so a token sent to the old host would be accepted there: this is
/// the attack (a profile moved away from a host that should no longer get its token).
/// The item must not reach A at all, must fail saying what changed, and a deliberate resume
/// must upload it to B.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_item_does_not_take_its_profile_token_to_the_old_endpoint() {
    let dir = tempfile::tempdir().expect("tempdir");
    let token = Secret::new("one-token-both-servers-accept".to_owned());
    let mut a_opts = LocalOptions::new(dir.path().join("a"));
    a_opts.listen = free_addr();
    a_opts.token = Some(token.clone());
    let a_listen = a_opts.listen;
    let a = LocalStack::start(a_opts).await.expect("server A");
    let a_front = FaultProxy::start(a_listen)
        .await
        .expect("proxy in front of A");
    let mut b_opts = LocalOptions::new(dir.path().join("b"));
    b_opts.token = Some(token.clone());
    let b = LocalStack::start(b_opts).await.expect("server B");

    let config_path = dir.path().join("config/config.toml");
    std::fs::create_dir_all(config_path.parent().expect("dir")).expect("mkdir");
    save_profile(&config_path, &a_front.url());

    let store = QueueStore::open(&dir.path().join("queue.sqlite3")).expect("queue");
    let tokens = Arc::new(TokenCache::new(Arc::new(Tokens(token.expose().to_owned()))));
    let queue = UploadQueue::for_companion(
        store,
        tokens,
        reelup_core::config::targets_in(config_path.clone()),
        options(),
    )
    .expect("queue");
    let config = ProfileConfig::load(&config_path).expect("config");
    let target = config
        .get("work")
        .expect("profile")
        .target()
        .expect("target");
    let (small, small_sha) = random_file(dir.path(), "small.mp4", 300 * 1024);
    let (large, large_sha) = random_file(dir.path(), "large.mp4", (7 * MIB) as usize);
    let small_id = queue.add(&small, &target).expect("add");
    let large_id = queue.add(&large, &target).expect("add");

    // The profile moves to B before the queue runs (a restart of the app, a resume).
    save_profile(&config_path, &b.endpoint);
    run(&queue, vec![small_id, large_id]).await;
    for id in [small_id, large_id] {
        let item = queue.get(id).expect("item");
        assert_eq!(item.state, ItemState::Failed, "held, not sent");
        let error = item.error.expect("an error");
        assert_eq!(error.code, "endpoint_changed", "{error:?}");
        assert!(!error.retryable, "held until resumed on purpose");
        assert!(
            error.message.contains(&a_front.url())
                && error.message.contains(&b.endpoint)
                && error.message.contains("Resume"),
            "{}",
            error.message
        );
    }
    assert!(
        a_front.requests().is_empty(),
        "nothing reached the old endpoint: {:?}",
        a_front.requests()
    );

    // Resumed on purpose: re-targeted to the profile's endpoint now.
    assert!(queue.resume(small_id).expect("resume"));
    assert!(queue.resume(large_id).expect("resume"));
    run(&queue, vec![small_id, large_id]).await;
    for (id, sha) in [(small_id, &small_sha), (large_id, &large_sha)] {
        let item = queue.get(id).expect("item");
        assert_eq!(item.state, ItemState::Done, "{:?}", item.error);
        assert_eq!(item.target.endpoint, b.endpoint);
        let url = item.url.expect("url");
        assert!(url.starts_with(&b.cdn), "{url} is B's");
        assert_eq!(&sha256_hex(&fetch(&url).await), sha, "byte-identical");
    }
    assert!(a_front.requests().is_empty(), "{:?}", a_front.requests());
    drop(a);
}

/// The profiles file gets a mistake while an item of profile `work` waits (a hand edit
/// half done). The item is held with the file's own error, naming the file and the line,
/// not `profile_gone`; once the file is fixed, a resume uploads it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_profiles_file_holds_an_item_with_its_own_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let stack = LocalStack::start(LocalOptions::new(dir.path().join("server")))
        .await
        .expect("stack");
    let config_path = dir.path().join("config/config.toml");
    std::fs::create_dir_all(config_path.parent().expect("dir")).expect("mkdir");
    save_profile(&config_path, &stack.endpoint);
    let good = std::fs::read_to_string(&config_path).expect("config");
    let store = QueueStore::open(&dir.path().join("queue.sqlite3")).expect("queue");
    let tokens = Arc::new(TokenCache::new(Arc::new(Tokens(
        stack.token.expose().to_owned(),
    ))));
    let queue = UploadQueue::for_companion(
        store,
        tokens,
        reelup_core::config::targets_in(config_path.clone()),
        options(),
    )
    .expect("queue");
    let target = ProfileConfig::load(&config_path)
        .expect("config")
        .get("work")
        .expect("profile")
        .target()
        .expect("target");
    let (video, sha) = random_file(dir.path(), "clip.mp4", 300 * 1024);
    let id = queue.add(&video, &target).expect("add");

    let lines = good.lines().count();
    std::fs::write(&config_path, format!("{good}parts-in-flight = \"four\"\n")).expect("break");
    run(&queue, vec![id]).await;
    let item = queue.get(id).expect("item");
    assert_eq!(item.state, ItemState::Failed);
    let error = item.error.expect("an error");
    assert_eq!(error.code, "config_invalid", "{error:?}");
    let at = format!("{}:{}", config_path.display(), lines + 1);
    assert!(
        error.message.contains(&at) && error.message.contains("resume"),
        "names the file and line ({at}) and what to do: {}",
        error.message
    );

    std::fs::write(&config_path, &good).expect("fix");
    assert!(queue.resume(id).expect("resume"));
    run(&queue, vec![id]).await;
    let item = queue.get(id).expect("item");
    assert_eq!(item.state, ItemState::Done, "{:?}", item.error);
    assert_eq!(
        &sha256_hex(&fetch(item.url.as_deref().expect("url")).await),
        &sha
    );
}

/// Resets, a stall and a 5xx on small files' single POST: each is retried (with a fresh
/// policy), like a part, and every file arrives byte-identical. Today's code failed a
/// small file at its first reset (`storage_unreachable`, never retried).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_files_whose_post_is_reset_cut_or_refused_are_retried() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (stack, proxy) = stack_behind_proxy(LocalOptions::new(dir.path().join("server"))).await;
    let store = QueueStore::open(&dir.path().join("queue.sqlite3")).expect("queue");
    let (endpoint, token) = (stack.endpoint.clone(), stack.token.clone());
    let client_http = http();
    let queue = UploadQueue::new(
        store,
        move |_: &Target| CompanionClient::new(client_http.clone(), &endpoint, Some(token.clone())),
        http(),
        options(),
    );
    let target = Target::new(&stack.endpoint, &stack.cdn);
    const FILES: usize = 4;
    let mut files = Vec::new();
    // The first connection of every small file is reset partway through its body.
    for i in 0..FILES {
        let (path, sha) = random_file(dir.path(), &format!("short {i}.mp4"), 150 * 1024 + i);
        proxy.inject(Fault::once(
            Match::Method(Method::POST),
            FaultKind::DropMidBody { after_bytes: 1000 },
        ));
        let id = queue.add(&path, &target).expect("add");
        run(&queue, vec![id]).await;
        files.push((id, sha));
    }
    // One more meets a stall (cut by the stall timeout), then a 503.
    let (path, sha) = random_file(dir.path(), "stalled.mp4", 90 * 1024);
    proxy.inject(Fault::once(Match::Method(Method::POST), FaultKind::Stall));
    proxy.inject(Fault::once(
        Match::Method(Method::POST),
        FaultKind::Status {
            code: 503,
            s3_code: "SlowDown",
        },
    ));
    let id = queue.add(&path, &target).expect("add");
    run(&queue, vec![id]).await;
    files.push((id, sha));

    for (id, sha) in &files {
        let item = queue.get(*id).expect("item");
        assert_eq!(item.state, ItemState::Done, "{:?}", item.error);
        let body = fetch(item.url.as_deref().expect("url")).await;
        assert_eq!(&sha256_hex(&body), sha, "byte-identical");
    }
    let posts: Vec<_> = proxy
        .requests()
        .into_iter()
        .filter(|s| s.method == Method::POST)
        .collect();
    let faulted = posts.iter().filter(|s| s.fault.is_some()).count();
    assert_eq!(faulted, FILES + 2, "every fault was met: {posts:?}");
    assert_eq!(posts.len(), 2 * FILES + 3, "each fault cost one retry");
}

/// A store that refuses the connection before any byte moved is a wrong URL or a store
/// that is down: that still fails at once, not after minutes of retries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_refuses_the_connection_still_fails_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (stack, proxy) = stack_behind_proxy(LocalOptions::new(dir.path().join("server"))).await;
    // The proxy's port, with nothing listening: connection refused.
    drop(proxy);
    let store = QueueStore::open(&dir.path().join("queue.sqlite3")).expect("queue");
    let (endpoint, token) = (stack.endpoint.clone(), stack.token.clone());
    let client_http = http();
    let queue = UploadQueue::new(
        store,
        move |_: &Target| CompanionClient::new(client_http.clone(), &endpoint, Some(token.clone())),
        http(),
        options(),
    );
    let target = Target::new(&stack.endpoint, &stack.cdn);
    let (path, _) = random_file(dir.path(), "nowhere.mp4", 100 * 1024);
    let id = queue.add(&path, &target).expect("add");
    let started = std::time::Instant::now();
    run(&queue, vec![id]).await;
    let item = queue.get(id).expect("item");
    assert_eq!(item.state, ItemState::Failed);
    assert_eq!(
        item.error.as_ref().map(|e| e.code.as_str()),
        Some("storage_unreachable")
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "at once, not after waiting: {:?}",
        started.elapsed()
    );
}

/// A signing server that quotes the store's presigned URL in its error (as reelup-server's
/// 502 did: `storage_error: error sending request for url (...X-Amz-Signature=...)`): the
/// part fails, and what the queue stores says why without the signature.
struct LeakyErrors(CompanionClient);

impl PresignEndpoint for LeakyErrors {
    async fn post_policy(&self, file: &FileMeta) -> Result<PostPolicy, UploadError> {
        self.0.post_policy(file).await
    }
    async fn create_multipart(&self, file: &FileMeta) -> Result<MultipartStart, UploadError> {
        self.0.create_multipart(file).await
    }
    async fn sign_part(
        &self,
        key: &str,
        id: &str,
        n: u32,
        crc: Option<&str>,
    ) -> Result<SignedPart, UploadError> {
        // A real presigned URL, quoted whole as a server's reqwest error would.
        let signed = self.0.sign_part(key, id, n, crc).await?;
        Err(UploadError::Endpoint {
            route: "GET /s3/multipart/{uploadId}/{partNumber}".into(),
            status: 502,
            message: format!(
                "storage_error: error sending request for url ({}): connection reset",
                signed.url
            ),
        })
    }
    async fn list_parts(&self, key: &str, id: &str) -> Result<Vec<ListedPart>, UploadError> {
        self.0.list_parts(key, id).await
    }
    async fn complete(
        &self,
        key: &str,
        id: &str,
        p: &[CompletedPart],
        crc: Option<&str>,
    ) -> Result<MultipartCompleted, UploadError> {
        self.0.complete(key, id, p, crc).await
    }
    async fn abort(&self, key: &str, id: &str) -> Result<(), UploadError> {
        self.0.abort(key, id).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_parts_stored_error_carries_no_signature() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (stack, _proxy) = stack_behind_proxy(LocalOptions::new(dir.path().join("server"))).await;
    let queue = queue_through(dir.path(), &stack, LeakyErrors);
    let target = Target::new(&stack.endpoint, &stack.cdn);
    let (path, _) = random_file(dir.path(), "large.mp4", (6 * MIB) as usize);
    let id = queue.add(&path, &target).expect("add");
    run(&queue, vec![id]).await;
    let item = queue.get(id).expect("item");
    assert_eq!(item.state, ItemState::Failed);
    let error = item.error.expect("an error");
    assert_eq!(error.code, "endpoint_error");
    assert!(
        error.message.contains("storage_error") && error.message.contains("connection reset"),
        "still says what went wrong: {}",
        error.message
    );
    for secret in [
        "X-Amz-Signature",
        "X-Amz-Credential",
        "X-Amz-Security-Token",
    ] {
        assert!(!error.message.contains(secret), "{}", error.message);
    }
}
