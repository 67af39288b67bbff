//! A folder of small clips through `reelup upload DIR/*` against the real local stack:
//! the files overlap on the wire (more than the two files at once the queue used to run),
//! never more than the parts-in-flight limit, and every one arrives intact.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use reelup_server::LocalOptions;
use reelup_testkit::{Fault, FaultKind, Match};
use reelup_tests::{random_file, reelup_command, sha256_hex, stack_behind_proxy};
use reqwest::Method;

const KIB: usize = 1024;
const FILES: usize = 60;
const IN_FLIGHT: usize = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_files_overlap_within_the_parts_limit_and_arrive_intact() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (stack, proxy) = stack_behind_proxy(LocalOptions::new(dir.path().join("server"))).await;
    // A link with some latency: each upload takes a while on the wire, so files that
    // overlap are seen overlapping (and ones that do not, are not).
    proxy.inject(Fault::always(
        Match::Method(Method::POST),
        FaultKind::Delay(Duration::from_millis(150)),
    ));
    let clips = dir.path().join("clips");
    std::fs::create_dir(&clips).expect("mkdir");
    let files: Vec<_> = (0..FILES)
        // Sizes differ, so a mix-up between files shows in the bytes.
        .map(|i| random_file(&clips, &format!("clip{i:02}.mp4"), 64 * KIB + i * 7 * KIB))
        .collect();

    let data = dir.path().join("data");
    let no_ffmpeg = tempfile::tempdir().expect("empty PATH dir");
    let mut cmd = reelup_command(&data.join("config"), &data);
    cmd.arg("upload")
        .args(files.iter().map(|(path, _)| path))
        .args(["--json", "--parts-in-flight", &IN_FLIGHT.to_string()])
        .env("REELUP_TOKEN", stack.token.expose())
        .env("REELUP_ENDPOINT", &stack.endpoint)
        .env("REELUP_CDN", &stack.cdn)
        // Retries are logged at info: a file sent twice must say why.
        .env("REELUP_LOG", "reelup_core=info")
        // No ffmpeg, so no posters: now and then ffmpeg reads a frame out of random bytes,
        // and that poster's POST would be counted as a file sent twice.
        .env("PATH", no_ffmpeg.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let started = std::time::Instant::now();
    let out = tokio::task::spawn_blocking(move || cmd.output().expect("reelup"))
        .await
        .expect("join");
    // A figure for the record (docs/benchmarks.md), not a check: timings vary by machine.
    eprintln!(
        "{FILES} files at {IN_FLIGHT} parts in flight: {:.2} s",
        started.elapsed().as_secs_f64()
    );
    each_arrived_intact(&out, &files).await;

    let posts: Vec<_> = proxy
        .requests()
        .into_iter()
        .filter(|s| s.method == Method::POST)
        .collect();
    assert_eq!(
        posts.len(),
        FILES,
        "one POST per file, none sent twice; the POSTs:\n{posts:#?}\nreelup logged:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Only uploads go through the proxy (presign requests go to the endpoint).
    let peak = proxy.peak_in_flight();
    assert!(
        peak > 2,
        "at most {peak} uploads were on the wire at once: small files must overlap beyond \
         two files at a time"
    );
    assert!(
        peak <= IN_FLIGHT,
        "{peak} uploads were on the wire at once; the parts-in-flight limit is {IN_FLIGHT}"
    );
}

/// `reelup upload --json` succeeded with one line per file, in the order given, and the
/// bytes behind each streaming URL are the file's.
async fn each_arrived_intact(out: &std::process::Output, files: &[(PathBuf, String)]) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "reelup failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    assert_eq!(lines.len(), files.len(), "{stdout}");
    for (line, (path, sha)) in lines.iter().zip(files) {
        assert_eq!(line["file"], path.to_str().expect("utf8"));
        let url = line["url"].as_str().expect("url");
        let body = reqwest::get(url)
            .await
            .expect("GET")
            .bytes()
            .await
            .expect("body");
        assert_eq!(&sha256_hex(&body), sha, "bytes behind {url}");
    }
}

/// The `uploadId` of a part upload's query.
fn upload_id(query: &str) -> Option<&str> {
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix("uploadId="))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_files_keep_to_files_at_once_while_small_ones_go_ahead() {
    const MIB: usize = 1024 * 1024;
    let dir = tempfile::tempdir().expect("tempdir");
    let (stack, proxy) = stack_behind_proxy(LocalOptions::new(dir.path().join("server"))).await;
    proxy.inject(Fault::always(
        Match::Any,
        FaultKind::Delay(Duration::from_millis(100)),
    ));
    let clips = dir.path().join("clips");
    std::fs::create_dir(&clips).expect("mkdir");
    // Queued first: four files of three 5 MiB parts each, then twelve small ones.
    let mut files: Vec<_> = (0..4)
        .map(|i| random_file(&clips, &format!("large{i}.mp4"), 11 * MIB + i))
        .collect();
    files.extend((0..12).map(|i| random_file(&clips, &format!("small{i:02}.mp4"), 100 * KIB + i)));

    let data = dir.path().join("data");
    // No ffmpeg, so no posters: a poster ffmpeg now and then reads out of random bytes
    // would be one more POST on the wire than the files this test counts.
    let no_ffmpeg = tempfile::tempdir().expect("empty PATH dir");
    let mut cmd = reelup_command(&data.join("config"), &data);
    cmd.arg("upload")
        .args(files.iter().map(|(path, _)| path))
        .args([
            "--json",
            "--parts-in-flight",
            &IN_FLIGHT.to_string(),
            "--multipart-threshold-mib",
            "5",
            "--part-size-mib",
            "5",
        ])
        .env("REELUP_TOKEN", stack.token.expose())
        .env("REELUP_ENDPOINT", &stack.endpoint)
        .env("REELUP_CDN", &stack.cdn)
        .env("PATH", no_ffmpeg.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("reelup");
    // Multipart uploads with a part on the wire at once, sampled while it runs: a sample
    // can miss a moment, never invent one.
    let mut most_at_once = 0;
    // Request bodies on the wire at once (parts and POSTs), sampled the same way.
    let mut most_bodies = 0;
    while child.try_wait().expect("wait").is_none() {
        let seen = proxy.requests();
        let bodies = seen
            .iter()
            .filter(|s| s.status.is_none())
            .filter(|s| {
                (s.method == Method::POST && s.query.is_none())
                    || (s.method == Method::PUT && s.query.as_deref().and_then(upload_id).is_some())
            })
            .count();
        most_bodies = most_bodies.max(bodies);
        let mut uploading: Vec<String> = seen
            .iter()
            .filter(|s| s.status.is_none() && s.method == Method::PUT)
            .filter_map(|s| s.query.as_deref().and_then(upload_id).map(str::to_owned))
            .collect();
        uploading.sort();
        uploading.dedup();
        most_at_once = most_at_once.max(uploading.len());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let out = child.wait_with_output().expect("output");
    each_arrived_intact(&out, &files).await;

    assert!(
        (1..=2).contains(&most_at_once),
        "{most_at_once} multipart files were sending parts at once; files_at_once is 2"
    );
    assert!(
        most_bodies <= IN_FLIGHT,
        "{most_bodies} parts and POSTs were on the wire at once; the limit is {IN_FLIGHT}"
    );
    // The small files did not wait for every large one to start: the first small POST
    // (a form upload, no query) came before the third multipart upload was created.
    let log = proxy.requests();
    let first_small = log
        .iter()
        .position(|s| s.method == Method::POST && s.query.is_none())
        .expect("small files went by POST");
    let third_create = log
        .iter()
        .enumerate()
        .filter(|(_, s)| {
            s.method == Method::POST && s.query.as_deref().is_some_and(|q| q.contains("uploads"))
        })
        .nth(2)
        .map(|(i, _)| i)
        .expect("four multipart uploads");
    assert!(
        first_small < third_create,
        "small files waited behind the large ones (first POST at {first_small}, third \
         create at {third_create})"
    );
}
