//! A crash never strands an upload. `reelup` is killed with SIGKILL at each phase of an
//! upload (before anything was sent, while Complete is on its way, after the store completed
//! but before the answer came back, after a small file was stored), or the store loses the
//! multipart upload behind its back; `reelup resume` then ends with the item done and the
//! object byte-identical, sending again only what it must.
//!
//! The local stack runs with its store behind a fault proxy, which holds or loses answers
//! so that each kill lands where it is meant to, without timing guesses.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use reelup_core::queue::store::{ItemState, QueueItem, QueueStore};
use reelup_server::{LocalOptions, LocalStack};
use reelup_testkit::{Fault, FaultKind, FaultProxy, Match, Seen};
use reelup_tests::{random_file, reelup_command, sha256_hex, stack_behind_proxy};
use reqwest::Method;

const MIB: usize = 1024 * 1024;

/// `reelup` on the stack with no profile, in parts of 5 MiB from 5 MiB up, and without
/// ffmpeg (no posters: every POST to the store is a video's).
fn reelup(stack: &LocalStack, data_dir: &Path, no_ffmpeg: &Path, args: &[&str]) -> Command {
    let mut cmd = reelup_command(&data_dir.join("config"), data_dir);
    cmd.args(args)
        .args(["--multipart-threshold-mib", "5", "--part-size-mib", "5"])
        .env("REELUP_TOKEN", stack.token.expose())
        .env("REELUP_ENDPOINT", &stack.endpoint)
        .env("REELUP_CDN", &stack.cdn)
        .env("REELUP_LOG", "reelup_core=info")
        .env("PATH", no_ffmpeg)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

async fn output(mut cmd: Command) -> Output {
    tokio::task::spawn_blocking(move || cmd.output().expect("run reelup"))
        .await
        .expect("join")
}

fn the_item(data_dir: &Path) -> Option<QueueItem> {
    let store = QueueStore::open(&data_dir.join("queue.sqlite3")).ok()?;
    store.list().ok()?.into_iter().next()
}

/// Waits until `seen` holds for a request the proxy saw; the child must still be running.
async fn until_proxy_saw(
    proxy: &FaultProxy,
    child: &mut Child,
    what: &str,
    seen: impl Fn(&Seen) -> bool,
) {
    let started = Instant::now();
    while !proxy.requests().iter().any(&seen) {
        if let Some(status) = child.try_wait().expect("wait") {
            panic!("reelup ended ({status}) before {what}");
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "never saw {what}: {:#?}",
            proxy.requests()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn kill(mut child: Child) {
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
}

/// `reelup resume`, then the one item is done and its URL serves exactly the file.
async fn resume_ends_identical(
    stack: &LocalStack,
    data: &Path,
    no_ffmpeg: &Path,
    sha: &str,
) -> QueueItem {
    let out = output(reelup(stack, data, no_ffmpeg, &["resume"])).await;
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "resume failed: {said}");
    let item = the_item(data).expect("the item");
    assert_eq!(
        item.state,
        ItemState::Done,
        "after resume: {item:?}\n{said}"
    );
    let url = item.url.clone().expect("a done item has its URL");
    assert_eq!(
        reelup_tests::served_sha256(&url).await,
        sha,
        "byte-identical at {url}"
    );
    item
}

fn count(proxy: &FaultProxy, what: impl Fn(&Seen) -> bool) -> usize {
    proxy.requests().iter().filter(|s| what(s)).count()
}

fn is_part(s: &Seen) -> bool {
    s.method == Method::PUT
        && s.query
            .as_deref()
            .is_some_and(|q| q.contains("partNumber="))
}

fn is_create(s: &Seen) -> bool {
    // `?uploads` (rusty-s3 signs it as `uploads=1`).
    s.method == Method::POST
        && s.query.as_deref().is_some_and(|q| {
            q.split('&')
                .any(|p| p == "uploads" || p.starts_with("uploads="))
        })
}

fn is_complete(s: &Seen) -> bool {
    s.method == Method::POST && s.query.as_deref().is_some_and(|q| q.contains("uploadId="))
}

struct Setup {
    dir: tempfile::TempDir,
    stack: LocalStack,
    proxy: FaultProxy,
    no_ffmpeg: tempfile::TempDir,
}

impl Setup {
    async fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let (stack, proxy) = stack_behind_proxy(LocalOptions::new(dir.path().join("server"))).await;
        Self {
            dir,
            stack,
            proxy,
            no_ffmpeg: tempfile::tempdir().expect("an empty PATH"),
        }
    }

    fn data(&self) -> std::path::PathBuf {
        self.dir.path().join("data")
    }

    fn spawn_upload(&self, video: &Path) -> Child {
        let mut cmd = reelup(
            &self.stack,
            &self.data(),
            self.no_ffmpeg.path(),
            &["upload", video.to_str().expect("utf8"), "--json"],
        );
        cmd.spawn().expect("spawn reelup upload")
    }

    async fn resume(&self, sha: &str) -> QueueItem {
        resume_ends_identical(&self.stack, &self.data(), self.no_ffmpeg.path(), sha).await
    }
}

/// The store completed the upload, but its answer never reached the client, which was
/// then killed. The store holds the object and no longer the upload (S3 then answers
/// `NoSuchUpload` to everything about it): resume finds the object is the file and is
/// done, with no part sent again and no new upload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_after_the_store_completed_is_done_on_resume_with_nothing_sent_again() {
    let s = Setup::new().await;
    let (video, sha) = random_file(s.dir.path(), "take.mp4", 12 * MIB);
    s.proxy
        .inject(Fault::once(Match::Completes, FaultKind::LoseAnswer));
    let mut child = s.spawn_upload(&video);
    until_proxy_saw(&s.proxy, &mut child, "the store completing", |r| {
        r.fault == Some(FaultKind::LoseAnswer) && r.upstream_status == Some(200)
    })
    .await;
    assert_eq!(
        the_item(&s.data()).expect("item").state,
        ItemState::Completing
    );
    kill(child);
    let parts_before = count(&s.proxy, is_part);
    assert_eq!(parts_before, 3, "12 MiB in parts of 5 MiB");

    let item = s.resume(&sha).await;
    assert_eq!(
        count(&s.proxy, is_part),
        parts_before,
        "no part is sent again"
    );
    assert_eq!(
        count(&s.proxy, is_create),
        1,
        "no new upload: {:#?}",
        s.proxy.requests()
    );
    assert!(item.error.is_none(), "{item:?}");
}

/// Killed while Complete is on its way to the store (held by the proxy): whether the
/// server then finishes it or never starts it, resume ends with the object.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_while_complete_is_on_its_way_is_done_on_resume() {
    let s = Setup::new().await;
    let (video, sha) = random_file(s.dir.path(), "take.mp4", 12 * MIB);
    s.proxy.inject(Fault::once(
        Match::Completes,
        FaultKind::Delay(Duration::from_millis(1500)),
    ));
    let mut child = s.spawn_upload(&video);
    until_proxy_saw(&s.proxy, &mut child, "Complete held", |r| {
        is_complete(r) && r.status.is_none()
    })
    .await;
    kill(child);
    s.resume(&sha).await;
    assert_eq!(count(&s.proxy, is_part), 3, "no part is sent again");
}

/// Killed before anything reached the store: resume uploads it all, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_before_create_uploads_on_resume() {
    let s = Setup::new().await;
    let (video, sha) = random_file(s.dir.path(), "take.mp4", 12 * MIB);
    // The create is held until the kill: nothing is created at the store.
    s.proxy.inject(Fault::once(
        Match::PathContains("/".into()),
        FaultKind::Stall,
    ));
    let mut child = s.spawn_upload(&video);
    until_proxy_saw(&s.proxy, &mut child, "the create held", |r| {
        r.fault == Some(FaultKind::Stall)
    })
    .await;
    kill(child);
    s.resume(&sha).await;
}

/// The store lost the multipart upload (aborted behind the client's back, as a lifecycle
/// rule or an operator would) after some of its parts were sent. Resume sees it is gone,
/// finds no object, and starts a new upload: every part is sent again, to a new key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_the_store_lost_starts_again_and_ends_identical() {
    let s = Setup::new().await;
    let (video, sha) = random_file(s.dir.path(), "take.mp4", 12 * MIB);
    // Part 3 is held, so the client is killed with parts 1 and 2 recorded.
    s.proxy
        .inject(Fault::once(Match::PartNumber(3), FaultKind::Stall));
    let mut child = s.spawn_upload(&video);
    let data = s.data();
    let started = Instant::now();
    loop {
        let recorded = QueueStore::open(&data.join("queue.sqlite3"))
            .and_then(|q| {
                Ok(q.list()?
                    .first()
                    .map(|i| q.parts(i.id))
                    .transpose()?
                    .unwrap_or_default()
                    .len())
            })
            .unwrap_or(0);
        if recorded >= 2 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "parts 1 and 2 never recorded"
        );
        assert!(
            child.try_wait().expect("wait").is_none(),
            "reelup ended early"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    kill(child);
    s.proxy.clear();
    let lost = the_item(&data).expect("item");
    let (key, upload_id) = (
        lost.key.clone().expect("key"),
        lost.upload_id.clone().expect("uploadId"),
    );
    let mut url = reqwest::Url::parse(&s.stack.endpoint).expect("endpoint URL");
    url.path_segments_mut()
        .expect("a base")
        .pop_if_empty()
        .extend(["s3", "multipart", upload_id.as_str()]);
    url.query_pairs_mut().append_pair("key", &key);
    let aborted = reqwest::Client::new()
        .delete(url)
        .bearer_auth(s.stack.token.expose())
        .send()
        .await
        .expect("abort");
    assert!(aborted.status().is_success(), "abort: {}", aborted.status());

    let item = s.resume(&sha).await;
    assert_ne!(
        item.key.as_deref(),
        Some(key.as_str()),
        "a new upload, under a new key"
    );
    assert_eq!(
        count(&s.proxy, is_create),
        2,
        "one new upload: {:#?}",
        s.proxy.requests()
    );
}

/// A small file (one POST) stored, its answer lost, the client killed: resume ends with
/// the item done and the object whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_after_a_small_file_was_stored_is_done_on_resume() {
    let s = Setup::new().await;
    let (video, sha) = random_file(s.dir.path(), "clip.mp4", MIB);
    s.proxy.inject(Fault::once(
        Match::Method(Method::POST),
        FaultKind::LoseAnswer,
    ));
    let mut child = s.spawn_upload(&video);
    until_proxy_saw(&s.proxy, &mut child, "the POST stored", |r| {
        r.fault == Some(FaultKind::LoseAnswer) && r.upstream_status.is_some_and(|s| s < 300)
    })
    .await;
    kill(child);
    s.resume(&sha).await;
}

/// `reelup-server --local` as a user runs it (a child process), on a fixed address so it
/// can be started again where clients expect it; its store on a new free port each time.
struct Server {
    child: Child,
    token: String,
    endpoint: String,
    cdn: String,
}

impl Server {
    fn start(data_dir: &Path, listen: std::net::SocketAddr) -> Self {
        use std::io::BufRead;
        let mut child = Command::new(reelup_tests::bin("reelup-server"))
            .args(["--local", "--listen", &listen.to_string(), "--data-dir"])
            .arg(data_dir)
            .env("REELUP_LOG", "warn,s3s=off")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn reelup-server");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("ready line");
        let ready: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("ready line {line:?}: {e}"));
        let field = |k: &str| ready[k].as_str().expect("field").to_owned();
        Self {
            token: field("token"),
            endpoint: field("endpoint"),
            cdn: field("cdn"),
            child,
        }
    }

    fn stop(mut self, signal: &str) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill")
            .args(["-s", signal, &pid])
            .status()
            .expect("kill");
        assert!(sent.success());
        self.child.wait().expect("reap the server");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The local stack stopped (`signal`) once `when` holds for the item, then started again on
/// the same data dir and address while `reelup upload` keeps running: the upload carries on
/// and ends byte-identical, with no failure.
async fn stack_restarted_mid_upload(signal: &str, when: fn(&QueueItem, usize) -> bool) {
    let dir = tempfile::tempdir().expect("tempdir");
    let no_ffmpeg = tempfile::tempdir().expect("an empty PATH");
    let server_dir = dir.path().join("server");
    let listen = reelup_tests::free_addr();
    let server = Server::start(&server_dir, listen);
    let (video, sha) = random_file(dir.path(), "take.mp4", 12 * MIB);
    let data = dir.path().join("data");
    let mut cmd = reelup_command(&data.join("config"), &data);
    cmd.args(["upload", video.to_str().expect("utf8"), "--json"])
        // About 3 s for the whole file: time to stop the stack in each phase.
        .args([
            "--multipart-threshold-mib",
            "5",
            "--part-size-mib",
            "5",
            "--limit-rate",
            "4MB",
        ])
        .env("REELUP_TOKEN", &server.token)
        .env("REELUP_ENDPOINT", &server.endpoint)
        .env("REELUP_CDN", &server.cdn)
        .env("REELUP_LOG", "reelup_core=info")
        .env("PATH", no_ffmpeg.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn reelup upload");
    let started = Instant::now();
    loop {
        let store = QueueStore::open(&data.join("queue.sqlite3"));
        let seen = store.ok().and_then(|q| {
            let item = q.list().ok()?.into_iter().next()?;
            let parts = q.parts(item.id).ok()?.len();
            Some((item, parts))
        });
        if let Some((item, parts)) = seen
            && when(&item, parts)
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the phase never came"
        );
        assert!(
            child.try_wait().expect("wait").is_none(),
            "reelup ended before the stop"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    server.stop(signal);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let server = Server::start(&server_dir, listen);
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().expect("reelup"))
        .await
        .expect("join");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "upload across a restart ({signal}): {said}"
    );
    let item = the_item(&data).expect("item");
    assert_eq!(item.state, ItemState::Done, "{item:?}\n{said}");
    let body = reqwest::get(item.url.as_deref().expect("url"))
        .await
        .expect("GET")
        .bytes()
        .await
        .expect("body");
    assert_eq!(sha256_hex(&body), sha, "byte-identical");
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_stack_killed_during_parts_and_restarted() {
    stack_restarted_mid_upload("KILL", |_, parts| parts >= 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_stack_stopped_while_completing_and_restarted() {
    stack_restarted_mid_upload("TERM", |item, _| item.state == ItemState::Completing).await;
}
