//! `reelup` killed with SIGKILL mid-upload, again and again, then resumed: the object ends
//! byte-identical and no more than parts-in-flight x part size goes up twice per kill.
//! And two processes on one queue never upload the same item twice.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reelup_core::Fingerprint;
use reelup_core::queue::store::{ItemState, QueueStore, Target};
use reelup_server::{LocalOptions, LocalStack};
use reelup_testkit::{Fault, FaultKind, Match};
use reelup_tests::{random_file, reelup_command, stack_behind_proxy};
use reqwest::Method;

const MIB: u64 = 1024 * 1024;
const PART: u64 = 16 * MIB;
const IN_FLIGHT: u64 = 4;

fn reelup(stack: &LocalStack, data_dir: &Path, args: &[&str]) -> Command {
    // No profiles: never the user's config.
    let mut cmd = reelup_command(&data_dir.join("config"), data_dir);
    cmd.args(args)
        .env("REELUP_TOKEN", stack.token.expose())
        .env("REELUP_ENDPOINT", &stack.endpoint)
        .env("REELUP_CDN", &stack.cdn)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

fn parts_recorded(data_dir: &Path) -> usize {
    QueueStore::open(&data_dir.join("queue.sqlite3"))
        .and_then(|q| {
            let items = q.list()?;
            Ok(match items.first() {
                Some(item) => q.parts(item.id)?.len(),
                None => 0,
            })
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_uploads_resume_and_end_identical() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (stack, proxy) = stack_behind_proxy(LocalOptions::new(dir.path().join("server"))).await;
    let size = 200 * MIB;
    let (video, sha) = random_file(dir.path(), "long take.mp4", size as usize);
    let data = dir.path().join("data");
    // Slow parts, so that kills land while parts are in flight.
    proxy.inject(Fault::always(
        Match::PartUploads,
        FaultKind::Delay(Duration::from_millis(300)),
    ));

    let video_arg = video.to_str().expect("utf8");
    let mut kills = 0;
    for kill_after in [2, 6, 9] {
        let mut child = reelup(&stack, &data, &["upload", video_arg, "--json"])
            .spawn()
            .expect("spawn");
        let started = Instant::now();
        while parts_recorded(&data) < kill_after {
            assert!(started.elapsed() < Duration::from_secs(120), "no progress");
            if child.try_wait().expect("wait").is_some() {
                let out = child.wait_with_output().expect("output");
                panic!(
                    "reelup ended before the kill ({}): {}{}",
                    out.status,
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
        kills += 1;
    }
    proxy.clear();
    let out = tokio::task::spawn_blocking({
        let mut cmd = reelup(&stack, &data, &["resume"]);
        move || cmd.output().expect("resume")
    })
    .await
    .expect("join");
    assert!(
        out.status.success(),
        "resume: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let store = QueueStore::open(&data.join("queue.sqlite3")).expect("queue");
    let items = store.list().expect("list");
    assert_eq!(
        items.len(),
        1,
        "one file, one item, however often it was started"
    );
    assert_eq!(items[0].state, ItemState::Done);
    let url = items[0].url.clone().expect("url");
    assert_eq!(
        reelup_tests::served_sha256(&url).await,
        sha,
        "byte-identical after {kills} kills"
    );

    let sent: u64 = proxy
        .requests()
        .iter()
        .filter(|s| {
            s.method == Method::PUT && s.query.as_deref().is_some_and(|q| q.contains("partNumber"))
        })
        .map(|s| s.body_bytes as u64)
        .sum();
    let bound = size + kills * IN_FLIGHT * PART;
    assert!(sent <= bound, "sent {sent} bytes; at most {bound} allowed");
    assert!(sent >= size);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_never_upload_the_same_item() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (stack, proxy) = stack_behind_proxy(LocalOptions::new(dir.path().join("server"))).await;
    let data = dir.path().join("data");
    let target = Target::new(&stack.endpoint, &stack.cdn);
    {
        let store = QueueStore::open(&data.join("queue.sqlite3")).expect("queue");
        for i in 0..6 {
            let (path, _) = random_file(dir.path(), &format!("clip{i}.mp4"), (20 * MIB) as usize);
            store
                .add(&path, &Fingerprint::of(&path).expect("fp"), &target)
                .expect("add");
        }
    }
    proxy.inject(Fault::always(
        Match::PartUploads,
        FaultKind::Delay(Duration::from_millis(100)),
    ));
    let a = reelup(&stack, &data, &["resume"]).spawn().expect("a");
    let b = reelup(&stack, &data, &["resume"]).spawn().expect("b");
    let (a, b) = tokio::task::spawn_blocking(move || {
        (
            a.wait_with_output().expect("a"),
            b.wait_with_output().expect("b"),
        )
    })
    .await
    .expect("join");
    assert!(a.status.success(), "{}", String::from_utf8_lossy(&a.stderr));
    assert!(b.status.success(), "{}", String::from_utf8_lossy(&b.stderr));

    let store = QueueStore::open(&data.join("queue.sqlite3")).expect("queue");
    assert!(
        store
            .list()
            .expect("list")
            .iter()
            .all(|i| i.state == ItemState::Done)
    );
    let mut puts: HashMap<String, usize> = HashMap::new();
    let mut creates = 0;
    for s in proxy.requests() {
        let q = s.query.clone().unwrap_or_default();
        if s.method == Method::PUT && q.contains("partNumber") {
            *puts.entry(q.clone()).or_default() += 1;
        }
        if s.method == Method::POST && q.contains("uploads") {
            creates += 1;
        }
    }
    assert_eq!(creates, 6, "one multipart upload per item");
    assert_eq!(puts.len(), 6 * 2, "two parts per item");
    assert!(
        puts.values().all(|n| *n == 1),
        "no part was sent twice: {puts:?}"
    );
}
