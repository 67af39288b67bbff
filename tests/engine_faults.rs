//! The upload engine against the signature-checking store behind a fault-injecting proxy:
//! dropped connections, 5xx, SlowDown with Retry-After, delays, a flipped byte, URLs that
//! expire in flight, and the network going away. Every upload must end byte-identical.

use std::sync::Arc;
use std::time::Duration;

use reelup_core::queue::store::{ItemState, QueueStore, Target};
use reelup_core::{
    CompanionClient, QueueEvent, QueueOptions, RetryPolicy, UploadOptions, UploadQueue,
};
use reelup_server::{LocalOptions, LocalStack};
use reelup_testkit::{Fault, FaultKind, FaultProxy, Match};
use reelup_tests::{random_file, sha256_hex, stack_behind_proxy};
use reqwest::Method;
use tokio_util::sync::CancellationToken;

const MIB: u64 = 1024 * 1024;

struct Rig {
    stack: LocalStack,
    proxy: FaultProxy,
    queue: Arc<UploadQueue<CompanionClient>>,
    target: Target,
    dir: tempfile::TempDir,
}

async fn rig(url_lifetime: Duration) -> Rig {
    rig_with(url_lifetime, |_| {}).await
}

/// A rig whose queue options `tweak` changes from the usual ones.
async fn rig_with(url_lifetime: Duration, tweak: impl FnOnce(&mut QueueOptions)) -> Rig {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut opts = LocalOptions::new(dir.path().join("server"));
    opts.url_lifetime = url_lifetime;
    let (stack, proxy) = stack_behind_proxy(opts).await;
    let store = QueueStore::open(&dir.path().join("queue.sqlite3")).expect("queue");
    let token = stack.token.clone();
    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(2))
        .build()
        .expect("http");
    let connect_http = http.clone();
    let mut options = QueueOptions {
        upload: UploadOptions {
            multipart_threshold: 5 * MIB,
            part_size: 5 * MIB,
        },
        parts_in_flight: 2,
        retry: RetryPolicy {
            base: Duration::from_millis(50),
            cap: Duration::from_secs(2),
            attempts: 6,
        },
        ..QueueOptions::default()
    };
    tweak(&mut options);
    let queue = UploadQueue::new(
        store,
        move |t: &Target| {
            CompanionClient::new(connect_http.clone(), &t.endpoint, Some(token.clone()))
        },
        http,
        options,
    );
    let target = Target::new(&stack.endpoint, &stack.cdn);
    Rig {
        stack,
        proxy,
        queue,
        target,
        dir,
    }
}

impl Rig {
    async fn fetch(&self, url: &str) -> Vec<u8> {
        reqwest::get(url)
            .await
            .expect("GET")
            .bytes()
            .await
            .expect("body")
            .to_vec()
    }

    async fn run(&self, ids: Vec<i64>) {
        tokio::time::timeout(
            Duration::from_secs(120),
            self.queue.run(Some(ids), CancellationToken::new()),
        )
        .await
        .expect("the queue finishes")
        .expect("queue runs");
    }

    /// Asserts the item finished and the CDN serves exactly the bytes with `sha`.
    async fn assert_streams_identical(&self, id: i64, sha: &str) {
        let item = self.queue.get(id).expect("item");
        assert_eq!(item.state, ItemState::Done, "{:?}", item.error);
        let body = self.fetch(item.url.as_deref().expect("url")).await;
        assert_eq!(sha256_hex(&body), sha, "byte-identical");
    }

    fn part_puts(&self) -> Vec<reelup_testkit::Seen> {
        self.proxy
            .requests()
            .into_iter()
            .filter(|s| {
                s.method == Method::PUT
                    && s.query.as_deref().is_some_and(|q| q.contains("partNumber"))
            })
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_survive_drops_errors_delays_and_flipped_bytes() {
    let r = rig(Duration::from_secs(900)).await;
    let (path, sha) = random_file(r.dir.path(), "faulty.mp4", (23 * MIB) as usize);
    let p = &r.proxy;
    p.inject(Fault::once(
        Match::PartNumber(1),
        FaultKind::FlipByte { at: 12_345 },
    ));
    p.inject(Fault::once(
        Match::PartNumber(2),
        FaultKind::DropMidBody {
            after_bytes: MIB as usize,
        },
    ));
    p.inject(Fault::once(
        Match::PartNumber(3),
        FaultKind::Status {
            code: 500,
            s3_code: "InternalError",
        },
    ));
    p.inject(Fault::once(
        Match::PartNumber(4),
        FaultKind::RetryAfter {
            code: 503,
            seconds: 1,
        },
    ));
    p.inject(Fault::once(
        Match::PartNumber(5),
        FaultKind::Delay(Duration::from_millis(700)),
    ));

    let id = r.queue.add(&path, &r.target).expect("add");
    r.run(vec![id]).await;
    r.assert_streams_identical(id, &sha).await;

    let puts = r.part_puts();
    let faulted: Vec<_> = puts.iter().filter(|s| s.fault.is_some()).collect();
    assert_eq!(faulted.len(), 5, "every fault hit once: {faulted:?}");
    // The flipped part was refused by the store (its CRC-64/NVME, signed into the URL, did
    // not match: BadDigest) and sent again; 5 parts, 4 faults that forced a resend, so at
    // least 9 PUTs.
    let flipped = faulted
        .iter()
        .find(|s| matches!(s.fault, Some(FaultKind::FlipByte { .. })))
        .expect("the flipped part");
    assert_eq!(flipped.status, Some(400), "{flipped:?}");
    assert!(puts.len() >= 9, "{} part PUTs", puts.len());
    let item = r.queue.get(id).expect("item");
    assert_eq!(
        item.verified,
        Some(reelup_core::Verification::ObjectCrc64nvme),
        "the store checked every part's CRC and the whole object's"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn part_urls_that_expire_in_flight_are_signed_again() {
    let r = rig(Duration::from_secs(2)).await;
    let (path, sha) = random_file(r.dir.path(), "slow.mp4", (11 * MIB) as usize);
    // Held at the proxy past the URL's lifetime: the store sees an expired signature.
    r.proxy.inject(Fault::once(
        Match::PartNumber(2),
        FaultKind::Delay(Duration::from_secs(3)),
    ));
    let id = r.queue.add(&path, &r.target).expect("add");
    r.run(vec![id]).await;
    r.assert_streams_identical(id, &sha).await;
    let expired = r
        .part_puts()
        .into_iter()
        .filter(|s| {
            s.query
                .as_deref()
                .is_some_and(|q| q.contains("partNumber=2"))
        })
        .count();
    assert!(
        expired >= 2,
        "part 2 was refused once and sent again with a fresh URL"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_part_is_cut_and_sent_again() {
    let stall_timeout = Duration::from_secs(2);
    let r = rig_with(Duration::from_secs(900), |o| {
        o.stall_timeout = stall_timeout
    })
    .await;
    let (path, sha) = random_file(r.dir.path(), "stalled.mp4", (12 * MIB) as usize);
    // The proxy takes part 2's whole body, then never answers.
    r.proxy
        .inject(Fault::once(Match::PartNumber(2), FaultKind::Stall));
    let started = std::time::Instant::now();
    let id = r.queue.add(&path, &r.target).expect("add");
    r.run(vec![id]).await;
    r.assert_streams_identical(id, &sha).await;
    let part2: Vec<_> = r
        .part_puts()
        .into_iter()
        .filter(|s| {
            s.query
                .as_deref()
                .is_some_and(|q| q.contains("partNumber=2"))
        })
        .collect();
    assert!(part2.len() >= 2, "stalled once, then sent again: {part2:?}");
    assert_eq!(part2[0].fault, Some(FaultKind::Stall));
    assert_eq!(part2[0].status, None, "the stalled PUT got no answer");
    assert_eq!(part2.last().and_then(|s| s.status), Some(200));
    let took = started.elapsed();
    assert!(
        took >= stall_timeout && took < Duration::from_secs(20),
        "cut after the {stall_timeout:?} stall timeout, took {took:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bandwidth_limit_paces_all_parts_together() {
    let r = rig_with(Duration::from_secs(900), |o| {
        o.bandwidth_limit = Some(8 * MIB);
    })
    .await;
    let (path, sha) = random_file(r.dir.path(), "limited.mp4", (12 * MIB) as usize);
    let started = std::time::Instant::now();
    let id = r.queue.add(&path, &r.target).expect("add");
    r.run(vec![id]).await;
    let took = started.elapsed();
    r.assert_streams_identical(id, &sha).await;
    // 12 MiB at 8 MiB/s is 1.5 s however many parts are in flight; unlimited it is far less.
    assert!(took >= Duration::from_millis(1450), "took {took:?}");
}

/// Runs the queue on `ids` while `during` watches the proxy every 20 ms (and may change
/// the queue's settings); gives up after 60 s.
async fn run_watching(r: &Rig, ids: Vec<i64>, mut during: impl FnMut(&Rig)) {
    let run = tokio::spawn({
        let queue = r.queue.clone();
        async move { queue.run(Some(ids), CancellationToken::new()).await }
    });
    tokio::time::timeout(Duration::from_secs(60), async {
        while !run.is_finished() {
            during(r);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the queue finishes");
    run.await.expect("join").expect("queue runs");
}

/// A rig sending one part at a time, each held at the proxy for `hold`, so the parts in
/// flight and their order can be seen there.
async fn one_part_at_a_time(hold: Duration) -> Rig {
    let r = rig_with(Duration::from_secs(900), |o| o.parts_in_flight = 1).await;
    r.proxy
        .inject(Fault::always(Match::PartUploads, FaultKind::Delay(hold)));
    r
}

fn in_flight(r: &Rig) -> usize {
    r.part_puts().iter().filter(|s| s.status.is_none()).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parts_in_flight_and_part_size_change_on_a_running_queue() {
    let r = one_part_at_a_time(Duration::from_millis(700)).await;
    // Planned at 5 MiB parts, one at a time.
    let (first, first_sha) = random_file(r.dir.path(), "first.mp4", (15 * MIB) as usize);
    let first_id = r.queue.add(&first, &r.target).expect("add");
    let (mut raised, mut most) = (false, 0);
    run_watching(&r, vec![first_id], |r| {
        let now = in_flight(r);
        if !raised && now == 1 {
            // While its first part is in flight: more at once, and bigger parts.
            r.queue.set_parts_in_flight(3);
            r.queue.set_part_size(6 * MIB);
            raised = true;
        }
        most = most.max(now);
    })
    .await;
    r.assert_streams_identical(first_id, &first_sha).await;
    assert!(raised);
    assert_eq!(most, 3, "raised from 1 to 3 parts in flight mid-file");
    let sizes: Vec<usize> = r.part_puts().iter().map(|s| s.body_bytes).collect();
    assert_eq!(
        sizes,
        vec![(5 * MIB) as usize; 3],
        "a started upload keeps the part size it was planned with"
    );

    // A file added afterwards is planned with the new size.
    let (second, second_sha) = random_file(r.dir.path(), "second.mp4", (12 * MIB) as usize);
    let second_id = r.queue.add(&second, &r.target).expect("add");
    run_watching(&r, vec![second_id], |_| {}).await;
    r.assert_streams_identical(second_id, &second_sha).await;
    let sizes: Vec<usize> = r.part_puts()[3..].iter().map(|s| s.body_bytes).collect();
    assert_eq!(sizes, vec![(6 * MIB) as usize; 2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_take_turns_for_parts() {
    let r = one_part_at_a_time(Duration::from_millis(300)).await;
    let (a, a_sha) = random_file(r.dir.path(), "a.mp4", (20 * MIB) as usize);
    let (b, b_sha) = random_file(r.dir.path(), "b.mp4", (20 * MIB) as usize);
    let a_id = r.queue.add(&a, &r.target).expect("add");
    let b_id = r.queue.add(&b, &r.target).expect("add");
    run_watching(&r, vec![a_id, b_id], |_| {}).await;
    r.assert_streams_identical(a_id, &a_sha).await;
    r.assert_streams_identical(b_id, &b_sha).await;
    // One part at a time for both: the files alternate instead of one going first whole.
    let keys: Vec<String> = r.part_puts().into_iter().map(|s| s.path).collect();
    assert_eq!(keys.len(), 8, "{keys:?}");
    let first_of_second = keys.iter().position(|k| k != &keys[0]).expect("two keys");
    let last_of_first = keys.iter().rposition(|k| k == &keys[0]).expect("key");
    assert!(
        first_of_second < last_of_first,
        "the second file waited for the whole first one: {keys:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_network_is_waited_out_not_failed() {
    let r = rig(Duration::from_secs(900)).await;
    let (path, sha) = random_file(r.dir.path(), "offline.mp4", (26 * MIB) as usize);
    let mut events = r.queue.subscribe();
    let id = r.queue.add(&path, &r.target).expect("add");
    let queue = r.queue.clone();
    // Slow parts down so the outage lands mid-upload.
    r.proxy.inject(Fault::always(
        Match::PartUploads,
        FaultKind::Delay(Duration::from_millis(150)),
    ));
    let running =
        tokio::spawn(async move { queue.run(Some(vec![id]), CancellationToken::new()).await });
    loop {
        match events.recv().await.expect("events") {
            QueueEvent::Progress { sent, .. } if sent >= 5 * MIB => break,
            _ => {}
        }
    }
    r.proxy.set_down(true);
    // The item says it waits, and why (what the app's row and tray show).
    let why = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            if let QueueEvent::Waiting {
                id: w,
                why: Some(why),
            } = events.recv().await.expect("events")
                && w == id
            {
                return why;
            }
        }
    })
    .await
    .expect("the item said it waits");
    assert!(why.contains("cannot be reached"), "{why}");
    assert!(
        !running.is_finished(),
        "still waiting for the network, not failed"
    );
    r.proxy.set_down(false);
    // Through again: the wait ends before the item is done.
    let ended = tokio::time::timeout(Duration::from_secs(120), async {
        loop {
            match events.recv().await.expect("events") {
                QueueEvent::Waiting { id: w, why: None } if w == id => return true,
                QueueEvent::Changed { item } if item.id == id && item.state == ItemState::Done => {
                    return false;
                }
                _ => {}
            }
        }
    })
    .await
    .expect("the upload went on");
    assert!(ended, "the wait was said to end before the upload finished");
    tokio::time::timeout(Duration::from_secs(120), running)
        .await
        .expect("finishes once the network is back")
        .expect("task")
        .expect("queue");
    r.assert_streams_identical(id, &sha).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_deleted_and_empty_files_get_clear_outcomes() {
    let r = rig(Duration::from_secs(900)).await;
    let (changed, _) = random_file(r.dir.path(), "changed.mp4", (12 * MIB) as usize);
    let (deleted, _) = random_file(r.dir.path(), "deleted.mp4", 1000);
    let empty = r.dir.path().join("empty.mp4");
    std::fs::write(&empty, b"").expect("write");
    let ids: Vec<i64> = [&changed, &deleted, &empty]
        .iter()
        .map(|p| r.queue.add(p, &r.target).expect("add"))
        .collect();
    // The recording went on after it was queued; the other file went away.
    std::fs::write(&changed, vec![9u8; (13 * MIB) as usize]).expect("rewrite");
    std::fs::remove_file(&deleted).expect("remove");
    r.run(ids.clone()).await;

    let changed = r.queue.get(ids[0]).expect("item");
    assert_eq!(changed.state, ItemState::Failed);
    let e = changed.error.expect("error");
    assert_eq!(e.code, "file_changed");
    assert!(!e.retryable && e.message.contains("changed"), "{e:?}");

    let deleted = r.queue.get(ids[1]).expect("item");
    assert_eq!(deleted.error.expect("error").code, "file_not_found");

    let empty = r.queue.get(ids[2]).expect("item");
    assert_eq!(empty.state, ItemState::Done, "{:?}", empty.error);
    assert!(r.fetch(empty.url.as_deref().expect("url")).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_keeps_parts_resume_finishes_cancel_aborts() {
    let r = rig(Duration::from_secs(900)).await;
    let (path, sha) = random_file(r.dir.path(), "paused.mp4", (31 * MIB) as usize);
    r.proxy.inject(Fault::always(
        Match::PartUploads,
        FaultKind::Delay(Duration::from_millis(400)),
    ));
    let mut events = r.queue.subscribe();
    let id = r.queue.add(&path, &r.target).expect("add");
    let queue = r.queue.clone();
    let running =
        tokio::spawn(async move { queue.run(Some(vec![id]), CancellationToken::new()).await });
    // Two parts confirmed (progress counts bytes still on their way too, so it is the
    // store's confirmed count that says which parts are kept).
    loop {
        if let QueueEvent::Progress { .. } = events.recv().await.expect("events")
            && r.queue.get(id).expect("item").confirmed >= 10 * MIB
        {
            break;
        }
    }
    assert!(r.queue.pause(id).expect("pause"));
    tokio::time::timeout(Duration::from_secs(30), running)
        .await
        .expect("run ends on pause")
        .expect("task")
        .expect("queue");
    let paused = r.queue.get(id).expect("item");
    assert_eq!(paused.state, ItemState::Paused);
    assert!(paused.confirmed >= 10 * MIB, "finished parts are kept");
    let puts_before = r.part_puts().len();

    assert!(r.queue.resume(id).expect("resume"));
    r.proxy.clear();
    r.run(vec![id]).await;
    r.assert_streams_identical(id, &sha).await;
    assert!(
        r.part_puts().len() - puts_before <= 7 - 2,
        "kept parts were not sent again"
    );

    // Cancel aborts the multipart upload on S3.
    let (other, _) = random_file(r.dir.path(), "canceled.mp4", (12 * MIB) as usize);
    let id2 = r.queue.add(&other, &r.target).expect("add");
    r.proxy
        .inject(Fault::always(Match::PartNumber(3), FaultKind::Stall));
    let queue = r.queue.clone();
    let running =
        tokio::spawn(async move { queue.run(Some(vec![id2]), CancellationToken::new()).await });
    let mut upload_id = None;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        upload_id = r.queue.get(id2).expect("item").upload_id;
        if upload_id.is_some() {
            break;
        }
    }
    assert!(upload_id.is_some(), "the multipart upload started");
    assert!(r.queue.cancel(id2).await.expect("cancel"));
    tokio::time::timeout(Duration::from_secs(30), running)
        .await
        .expect("run ends on cancel")
        .expect("task")
        .expect("queue");
    let canceled = r.queue.get(id2).expect("item");
    assert_eq!(canceled.state, ItemState::Canceled);
    assert!(canceled.upload_id.is_none());
    let aborts = r
        .proxy
        .requests()
        .into_iter()
        .filter(|s| {
            s.method == Method::DELETE && s.query.as_deref().is_some_and(|q| q.contains("uploadId"))
        })
        .count();
    assert_eq!(aborts, 1, "the multipart upload was aborted on S3");
    drop(r.stack);
}

/// Before an update installs, the app holds the queue at a part boundary: the hold returns
/// once the part on the wire has finished and been recorded, no part starts while held, and
/// after release (an install that failed) the file finishes byte-identical.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hold_lets_the_part_on_the_wire_finish_and_starts_no_other() {
    let r = one_part_at_a_time(Duration::from_millis(800)).await;
    let (file, sha) = random_file(r.dir.path(), "held.mp4", (15 * MIB) as usize);
    let id = r.queue.add(&file, &r.target).expect("add");
    let run = tokio::spawn({
        let queue = r.queue.clone();
        async move { queue.run(Some(vec![id]), CancellationToken::new()).await }
    });
    tokio::time::timeout(Duration::from_secs(30), async {
        while in_flight(&r) == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("a part goes on the wire");

    tokio::time::timeout(Duration::from_secs(30), r.queue.hold_at_part_boundary())
        .await
        .expect("the hold returns once the part on the wire is done");
    let puts = r.part_puts();
    assert_eq!(puts.len(), 1, "only the part that was on the wire was sent");
    assert_eq!(puts[0].status, Some(200), "and it finished, not cut");
    let item = r.queue.get(id).expect("item");
    assert_eq!(
        item.confirmed,
        5 * MIB,
        "its ETag is recorded before the hold returns"
    );

    // Held: the next part does not start (it would be on the wire within milliseconds).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        r.part_puts().len(),
        1,
        "a part started while the queue was held"
    );

    r.queue.release_hold();
    tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("the queue finishes after release")
        .expect("join")
        .expect("queue runs");
    r.assert_streams_identical(id, &sha).await;
    assert_eq!(r.part_puts().len(), 3, "no part was sent twice");
}

/// The item `id` as it reaches `state`, within a minute (Err: it did not).
async fn until_state(
    events: &mut tokio::sync::broadcast::Receiver<QueueEvent>,
    id: i64,
    state: ItemState,
) -> Result<reelup_core::queue::store::QueueItem, tokio::time::error::Elapsed> {
    tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            if let QueueEvent::Changed { item } = events.recv().await.expect("events")
                && item.id == id
                && item.state == state
            {
                return *item;
            }
        }
    })
    .await
}

/// A file added while its server is down fails at once (a wrong URL is said at once); a
/// serving queue (the app, `reelup watch`) puts it back in line by itself once the server
/// answers again, on the same address, and it finishes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_added_while_the_server_is_down_goes_up_once_it_is_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut opts = LocalOptions::new(dir.path().join("server"));
    opts.listen = "127.0.0.1:0".parse().expect("addr");
    let stack = LocalStack::start(opts.clone()).await.expect("stack");
    // Started again later on the very ports it took now.
    let port_of = |url: &str| -> std::net::SocketAddr {
        url.trim_start_matches("http://")
            .split('/')
            .next()
            .expect("host")
            .parse()
            .expect("address")
    };
    opts.listen = port_of(&stack.endpoint);
    opts.s3_listen = port_of(&stack.s3_endpoint);
    let target = Target::new(&stack.endpoint, &stack.cdn);
    let token = stack.token.clone();
    let http = reqwest::Client::new();
    let queue = UploadQueue::new(
        QueueStore::open(&dir.path().join("queue.sqlite3")).expect("queue"),
        move |t: &Target| CompanionClient::new(http.clone(), &t.endpoint, Some(token.clone())),
        reqwest::Client::new(),
        QueueOptions::default(),
    );
    stack.shutdown().await;

    let (path, sha) = random_file(dir.path(), "while-down.mp4", 300_000);
    let mut events = queue.subscribe();
    let id = queue.add(&path, &target).expect("add");
    let stop = CancellationToken::new();
    let serving = {
        let (queue, stop) = (queue.clone(), stop.clone());
        tokio::spawn(async move { queue.serve(stop).await })
    };
    let failed = until_state(&mut events, id, ItemState::Failed)
        .await
        .expect("failed at once while down");
    assert_eq!(
        failed.error.as_ref().map(|e| e.code),
        Some(reelup_core::ErrorCode::EndpointUnreachable)
    );
    let stack = LocalStack::start(opts).await.expect("the stack again");
    until_state(&mut events, id, ItemState::Done)
        .await
        .expect("went up by itself once the server answered");
    stop.cancel();
    serving.await.expect("serve ends");
    let url = queue.get(id).expect("item").url.expect("url");
    assert_eq!(
        reelup_tests::served_sha256(&url).await,
        sha,
        "byte-identical"
    );
    stack.shutdown().await;
}

/// Progress moves as bytes go out, not a whole part at a time: with one 5 MiB part in
/// flight at 2 MB/s, several reports come while the first part is on its way. A part cut
/// mid-body takes back what it had counted, so progress never passes the file's size and
/// ends exactly at it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_moves_as_bytes_go_out_and_a_failed_part_takes_its_bytes_back() {
    let r = rig_with(Duration::from_secs(900), |o| o.parts_in_flight = 1).await;
    r.queue.set_bandwidth_limit(Some(2_000_000));
    let (path, sha) = random_file(r.dir.path(), "smooth.mp4", (10 * MIB) as usize);
    // The second part's first attempt is cut after 1 MiB.
    r.proxy.inject(Fault::once(
        Match::PartNumber(2),
        FaultKind::DropMidBody {
            after_bytes: MIB as usize,
        },
    ));
    let mut events = r.queue.subscribe();
    let id = r.queue.add(&path, &r.target).expect("add");
    let queue = r.queue.clone();
    let running =
        tokio::spawn(async move { queue.run(Some(vec![id]), CancellationToken::new()).await });
    let mut seen = Vec::new();
    tokio::time::timeout(Duration::from_secs(120), async {
        loop {
            match events.recv().await {
                Ok(QueueEvent::Progress { id: p, sent, .. }) if p == id => seen.push(sent),
                Ok(QueueEvent::Changed { item })
                    if item.id == id
                        && matches!(item.state, ItemState::Done | ItemState::Failed) =>
                {
                    return;
                }
                Ok(_) => {}
                Err(e) => panic!("events: {e}"),
            }
        }
    })
    .await
    .expect("the upload ends");
    running.await.expect("task").expect("queue");
    r.assert_streams_identical(id, &sha).await;
    let within_first_part = seen.iter().filter(|s| **s > 0 && **s < 5 * MIB).count();
    assert!(
        within_first_part >= 3,
        "progress moved only {within_first_part} times during the first part: {seen:?}"
    );
    assert!(
        seen.iter().all(|s| *s <= 10 * MIB),
        "never past the size: {seen:?}"
    );
    assert!(
        seen.windows(2).any(|w| w[1] < w[0]),
        "the cut part's bytes were taken back: {seen:?}"
    );
    assert_eq!(seen.last(), Some(&(10 * MIB)));
}
