//! Faststart end to end: videos made by ffmpeg go up through `reelup upload` to
//! `reelup-server --local`, and what the CDN serves is checked with ffmpeg: a video whose
//! index (`moov`) was at the end comes back with it first and the very same packets
//! (`-f framemd5`); one already first, a fragmented MP4 and a Matroska file come back
//! byte for byte; a truncated MP4 is held with a clear error until it is sent as it is; a
//! profile set to `ask` holds the video until the user chooses; and an interrupted
//! multipart upload of a re-laid video resumes to the same object.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use reelup_core::queue::store::{ItemState, QueueStore};
use reelup_server::LocalOptions;
use reelup_testkit::{Fault, FaultKind, Match};
use reelup_tests::{LocalServer, http, reelup_command, sha256_hex, stack_behind_proxy};

/// Runs ffmpeg (from apt) quietly; panics with its errors.
fn ffmpeg(args: &[&str]) -> Vec<u8> {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error"])
        .args(args)
        .output()
        .expect("ffmpeg is installed (./dev installs it)");
    assert!(
        out.status.success(),
        "ffmpeg {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// A 2-second 320x240 test video with a sine tone, encoded with `codec`; `extra` goes
/// before the output (e.g. `-movflags +faststart`).
fn make_video(dir: &Path, name: &str, codec: &str, extra: &[&str]) -> PathBuf {
    let path = dir.join(name);
    let mut args = vec![
        "-f",
        "lavfi",
        "-i",
        "testsrc2=duration=2:size=320x240:rate=25",
        "-f",
        "lavfi",
        "-i",
        "sine=duration=2",
        "-c:v",
        codec,
        "-c:a",
        "aac",
    ];
    if codec == "libx265" {
        args.extend(["-tag:v", "hvc1", "-x265-params", "log-level=error"]);
    }
    args.extend_from_slice(extra);
    args.extend(["-y", path.to_str().expect("utf8")]);
    ffmpeg(&args);
    path
}

/// Every packet's MD5, as ffmpeg demuxes the file: equal for two files holding the same
/// media, however their boxes are laid out.
fn framemd5(path: &Path) -> String {
    let out = ffmpeg(&[
        "-i",
        path.to_str().expect("utf8"),
        "-map",
        "0",
        "-c",
        "copy",
        "-f",
        "framemd5",
        "-",
    ]);
    let text = String::from_utf8(out).expect("text");
    assert!(
        text.lines().filter(|l| !l.starts_with('#')).count() > 50,
        "{text}"
    );
    text
}

/// The top-level boxes of an ISO-BMFF file: type and size. Written here on its own, so
/// the check does not lean on the code it checks.
fn top_level(bytes: &[u8]) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while at + 8 <= bytes.len() {
        let size32 = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as u64;
        let kind = String::from_utf8_lossy(&bytes[at + 4..at + 8]).into_owned();
        let size = match size32 {
            0 => (bytes.len() - at) as u64,
            1 => u64::from_be_bytes(bytes[at + 8..at + 16].try_into().unwrap()),
            n => n,
        };
        assert!(size >= 8, "box {kind} at {at} has size {size}");
        out.push((kind, size));
        at += size as usize;
    }
    assert_eq!(at, bytes.len(), "boxes cover the file: {out:?}");
    out
}

fn position_of(boxes: &[(String, u64)], kind: &str) -> usize {
    boxes
        .iter()
        .position(|(k, _)| k == kind)
        .unwrap_or_else(|| panic!("no {kind} in {boxes:?}"))
}

fn moov_first(bytes: &[u8]) -> bool {
    let boxes = top_level(bytes);
    position_of(&boxes, "moov") < position_of(&boxes, "mdat")
}

/// `bytes` (a run of boxes) with every `stco` widened to `co64` and the containers on the
/// way sized again. Used on a file whose moov is last, so no offset changes.
fn widen_chunk_offsets(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let size = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        assert!(size >= 8, "plain 32-bit sizes in ffmpeg's moov");
        let kind = &bytes[at + 4..at + 8];
        let payload = &bytes[at + 8..at + size];
        let new_payload = match kind {
            b"moov" | b"trak" | b"mdia" | b"minf" | b"stbl" => widen_chunk_offsets(payload),
            b"stco" => {
                let count = u32::from_be_bytes(payload[4..8].try_into().unwrap()) as usize;
                let mut p = payload[..8].to_vec();
                for i in 0..count {
                    let o = u32::from_be_bytes(payload[8 + 4 * i..12 + 4 * i].try_into().unwrap());
                    p.extend_from_slice(&u64::from(o).to_be_bytes());
                }
                p
            }
            _ => payload.to_vec(),
        };
        let kind: &[u8] = if kind == b"stco" { b"co64" } else { kind };
        out.extend_from_slice(&((new_payload.len() + 8) as u32).to_be_bytes());
        out.extend_from_slice(kind);
        out.extend_from_slice(&new_payload);
        at += size;
    }
    out
}

fn get(url: &str) -> Vec<u8> {
    let resp = http().get(url).send().expect("GET");
    assert_eq!(resp.status(), 200, "GET {url}");
    resp.bytes().expect("body").to_vec()
}

fn json_lines(out: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect()
}

/// `reelup` with its own config and data dirs, pointed at `server`.
struct Cli<'a> {
    server: &'a LocalServer,
    dir: &'a Path,
}

impl Cli<'_> {
    fn run(&self, args: &[&str]) -> Output {
        let mut cmd = reelup_command(&self.dir.join("config"), &self.dir.join("data"));
        cmd.args(args).env("REELUP_TOKEN", &self.server.token);
        cmd.output().expect("run reelup")
    }

    fn upload(&self, files: &[&Path], extra: &[&str]) -> Output {
        let mut args = vec![
            "upload",
            "--endpoint",
            &self.server.endpoint,
            "--cdn",
            &self.server.cdn,
            "--json",
        ];
        args.extend(files.iter().map(|f| f.to_str().expect("utf8")));
        args.extend_from_slice(extra);
        self.run(&args)
    }

    fn queue(&self) -> Vec<serde_json::Value> {
        let out = self.run(&["queue", "--json"]);
        assert!(out.status.success());
        json_lines(&out)
    }
}

fn ok(out: &Output) {
    assert!(
        out.status.success(),
        "reelup failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn videos_with_the_index_last_go_up_with_it_first_and_the_same_frames() {
    let server = LocalServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let h264 = make_video(d, "obs recording.mp4", "libx264", &[]);
    let hevc = make_video(d, "phone.mp4", "libx265", &[]);
    let mov = make_video(d, "editor.mov", "libx264", &["-f", "mov"]);
    // ffmpeg writes co64 only past 4 GiB: widen a small file's tables by hand, with moov
    // last so no offset moves, and check ffmpeg reads it the same.
    let co64 = d.join("wide.mp4");
    {
        let bytes = std::fs::read(&h264).expect("read");
        let boxes = top_level(&bytes);
        let moov = position_of(&boxes, "moov");
        assert_eq!(moov, boxes.len() - 1, "ffmpeg writes moov last: {boxes:?}");
        let moov_start = (bytes.len() as u64 - boxes[moov].1) as usize;
        let mut wide = bytes[..moov_start].to_vec();
        wide.extend(widen_chunk_offsets(&bytes[moov_start..]));
        assert!(wide.windows(4).any(|w| w == b"co64"));
        std::fs::write(&co64, &wide).expect("write");
        assert_eq!(
            framemd5(&co64),
            framemd5(&h264),
            "ffmpeg reads the co64 file"
        );
    }
    let files = [&h264, &hevc, &mov, &co64];
    for f in files {
        assert!(!moov_first(&std::fs::read(f).expect("read")), "{f:?}");
    }
    let before: Vec<String> = files
        .iter()
        .map(|f| sha256_hex(&std::fs::read(f).expect("read")))
        .collect();
    let cli = Cli {
        server: &server,
        dir: d,
    };

    let out = cli.upload(&files.map(PathBuf::as_path), &[]);
    ok(&out);
    let lines = json_lines(&out);
    assert_eq!(lines.len(), files.len());
    for ((line, file), sha) in lines.iter().zip(files).zip(&before) {
        assert_eq!(line["index_position"], "moov_after_mdat", "{line}");
        assert_eq!(line["layout"], "faststart", "{line}");
        let object = get(line["url"].as_str().expect("url"));
        assert!(moov_first(&object), "{file:?}: {:?}", top_level(&object));
        let fetched = d.join(format!(
            "fetched-{}",
            file.file_name().unwrap().to_string_lossy()
        ));
        std::fs::write(&fetched, &object).expect("write");
        assert_eq!(
            framemd5(&fetched),
            framemd5(file),
            "{file:?}: the same packets"
        );
        assert_eq!(
            &sha256_hex(&std::fs::read(file).expect("read")),
            sha,
            "{file:?} on disk is untouched"
        );
        if file == &co64 {
            assert!(object.windows(4).any(|w| w == b"co64"), "co64 stays co64");
        }
    }
    // The queue says it too.
    let queue = cli.queue();
    assert!(
        queue
            .iter()
            .all(|i| i["index_position"] == "moov_after_mdat" && i["layout"] == "faststart"),
        "{queue:?}"
    );
    let listing = String::from_utf8_lossy(&cli.run(&["queue"]).stdout).into_owned();
    assert_eq!(
        listing.matches("starts instantly (re-laid)").count(),
        files.len(),
        "{listing}"
    );
}

#[test]
fn index_first_fragmented_and_other_containers_go_up_unchanged() {
    let server = LocalServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let first = make_video(d, "ready.mp4", "libx264", &["-movflags", "+faststart"]);
    let frag = make_video(
        d,
        "fragmented.mp4",
        "libx264",
        &["-movflags", "frag_keyframe+empty_moov"],
    );
    let mkv = make_video(d, "capture.mkv", "libx264", &[]);
    let plain = make_video(d, "plain.mp4", "libx264", &[]);
    let cli = Cli {
        server: &server,
        dir: d,
    };

    // `--faststart=off` uploads even a file with its index last as it is.
    let out = cli.upload(&[&first, &frag, &mkv], &[]);
    ok(&out);
    let off = cli.upload(&[&plain], &["--faststart=off"]);
    ok(&off);
    let lines: Vec<_> = json_lines(&out)
        .into_iter()
        .chain(json_lines(&off))
        .collect();
    for (line, (file, position)) in lines.iter().zip([
        (&first, "moov_first"),
        (&frag, "fragmented"),
        (&mkv, "not_mp4"),
        (&plain, "moov_after_mdat"),
    ]) {
        assert_eq!(line["index_position"], position, "{line}");
        assert_eq!(line["layout"], "original", "{line}");
        let object = get(line["url"].as_str().expect("url"));
        assert_eq!(
            sha256_hex(&object),
            sha256_hex(&std::fs::read(file).expect("read")),
            "{file:?} goes up byte for byte"
        );
    }
}

#[test]
fn a_truncated_mp4_is_held_until_it_is_sent_as_it_is() {
    let server = LocalServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let whole = std::fs::read(make_video(d, "whole.mp4", "libx264", &[])).expect("read");
    // A recording cut off mid-media: mdat runs past the end, and moov never came.
    let cut = d.join("cut off.mp4");
    std::fs::write(&cut, &whole[..whole.len() * 6 / 10]).expect("write");
    let cli = Cli {
        server: &server,
        dir: d,
    };

    let out = cli.upload(&[&cut], &[]);
    assert!(!out.status.success(), "a damaged MP4 is not uploaded");
    let line = &json_lines(&out)[0];
    assert_eq!(line["error"], "mp4_damaged", "{line}");
    let message = line["message"].as_str().expect("message");
    assert!(
        message.contains("'mdat'")
            && message.contains("cut off")
            && message.contains("--faststart=off"),
        "{message}"
    );
    let queue = cli.queue();
    assert_eq!(queue[0]["state"], "failed");
    assert_eq!(queue[0]["index_position"], "damaged");
    assert_eq!(queue[0]["key"], serde_json::Value::Null, "nothing went up");

    // The user says to send it anyway.
    let id = queue[0]["id"].to_string();
    ok(&cli.run(&["resume", &id, "--faststart=off"]));
    let queue = cli.queue();
    assert_eq!(queue[0]["state"], "done", "{queue:?}");
    assert_eq!(queue[0]["layout"], "original");
    let object = get(queue[0]["url"].as_str().expect("url"));
    assert_eq!(
        sha256_hex(&object),
        sha256_hex(&std::fs::read(&cut).unwrap())
    );
}

#[test]
fn a_profile_set_to_ask_holds_the_video_until_the_user_chooses() {
    let server = LocalServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let video = make_video(d, "take.mp4", "libx264", &[]);
    let ready = make_video(d, "ready.mp4", "libx264", &["-movflags", "+faststart"]);
    let cli = Cli {
        server: &server,
        dir: d,
    };
    ok(&cli.run(&[
        "profile",
        "add",
        "studio",
        "--endpoint",
        &server.endpoint,
        "--cdn",
        &server.cdn,
        "--faststart",
        "ask",
    ]));
    let show = cli.run(&["profile", "show"]);
    assert!(String::from_utf8_lossy(&show.stdout).contains("faststart:       ask"));

    let out = cli.run(&[
        "upload",
        "--json",
        video.to_str().unwrap(),
        ready.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let lines = json_lines(&out);
    // The one with its index first has nothing to ask about.
    let done: Vec<_> = lines.iter().filter(|l| l["url"].is_string()).collect();
    assert_eq!(done.len(), 1, "{lines:?}");
    assert_eq!(done[0]["layout"], "original");
    let held: Vec<_> = lines.iter().filter(|l| l["error"].is_string()).collect();
    assert_eq!(held[0]["error"], "faststart_undecided", "{lines:?}");
    let message = held[0]["message"].as_str().unwrap();
    assert!(message.contains("--faststart=always"), "{message}");
    let item = cli
        .queue()
        .into_iter()
        .find(|i| i["path"] == video.to_str().unwrap())
        .expect("held item");
    assert_eq!(item["index_position"], "moov_after_mdat");
    assert_eq!(item["layout"], serde_json::Value::Null, "not decided");
    let listing = String::from_utf8_lossy(&cli.run(&["queue"]).stdout).into_owned();
    assert!(
        listing.contains("viewers wait for the whole index"),
        "{listing}"
    );

    ok(&cli.run(&["resume", &item["id"].to_string(), "--faststart=always"]));
    let item = cli
        .queue()
        .into_iter()
        .find(|i| i["path"] == video.to_str().unwrap())
        .expect("item");
    assert_eq!(item["state"], "done");
    assert_eq!(item["layout"], "faststart");
    let object = get(item["url"].as_str().unwrap());
    assert!(moov_first(&object));
    let fetched = d.join("fetched.mp4");
    std::fs::write(&fetched, &object).unwrap();
    assert_eq!(framemd5(&fetched), framemd5(&video));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_faststart_multipart_upload_resumes_to_the_same_frames() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let (stack, proxy) = stack_behind_proxy(LocalOptions::new(d.join("server"))).await;
    // About 27 MB: six parts of 5 MiB. Noise keeps the lossless encoder from shrinking it.
    let video = d.join("long take.mp4");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=duration=3:size=640x360:rate=25",
        "-f",
        "lavfi",
        "-i",
        "sine=duration=3",
        "-vf",
        "noise=alls=60:allf=t+u",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-qp",
        "0",
        "-c:a",
        "aac",
        "-y",
        video.to_str().unwrap(),
    ]);
    let size = std::fs::metadata(&video).unwrap().len();
    assert!(size > 20_000_000, "{size}");
    let data = d.join("data");
    let reelup = |args: &[&str]| {
        let mut cmd = reelup_command(&d.join("config"), &data);
        cmd.args(args)
            .env("REELUP_TOKEN", stack.token.expose())
            .env("REELUP_ENDPOINT", &stack.endpoint)
            .env("REELUP_CDN", &stack.cdn)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    };
    let parts_recorded = || {
        QueueStore::open(&data.join("queue.sqlite3"))
            .and_then(|q| {
                Ok(match q.list()?.first() {
                    Some(item) => q.parts(item.id)?.len(),
                    None => 0,
                })
            })
            .unwrap_or(0)
    };
    proxy.inject(Fault::always(
        Match::PartUploads,
        FaultKind::Delay(Duration::from_millis(400)),
    ));
    let mut child = reelup(&[
        "upload",
        video.to_str().unwrap(),
        "--multipart-threshold-mib",
        "5",
        "--part-size-mib",
        "5",
        "--parts-in-flight",
        "2",
    ])
    .spawn()
    .expect("spawn");
    let started = Instant::now();
    while parts_recorded() < 2 {
        assert!(started.elapsed() < Duration::from_secs(120), "no progress");
        assert!(
            child.try_wait().expect("wait").is_none(),
            "ended before the kill"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
    let store = QueueStore::open(&data.join("queue.sqlite3")).expect("queue");
    let item = store.list().expect("list").remove(0);
    assert!(item.upload_id.is_some(), "a multipart upload was under way");
    assert_eq!(
        item.layout,
        Some(reelup_core::media::faststart::Layout::Faststart)
    );
    drop(store);

    proxy.clear();
    let out = tokio::task::spawn_blocking({
        let mut cmd = reelup(&["resume"]);
        move || cmd.output().expect("resume")
    })
    .await
    .expect("join");
    ok(&out);
    let store = QueueStore::open(&data.join("queue.sqlite3")).expect("queue");
    let item = store.list().expect("list").remove(0);
    assert_eq!(item.state, ItemState::Done);
    let object = tokio::task::spawn_blocking(move || get(&item.url.expect("url")))
        .await
        .expect("join");
    assert!(moov_first(&object), "{:?}", top_level(&object));
    let fetched = d.join("fetched.mp4");
    std::fs::write(&fetched, &object).unwrap();
    assert_eq!(framemd5(&fetched), framemd5(&video));
    // The parts sent before the kill were kept: no more than those in flight went twice.
    let sent: u64 = proxy
        .requests()
        .iter()
        .filter(|s| {
            s.method == reqwest::Method::PUT
                && s.query.as_deref().is_some_and(|q| q.contains("partNumber"))
        })
        .map(|s| s.body_bytes as u64)
        .sum();
    let bound = object.len() as u64 + 2 * 5 * 1024 * 1024;
    assert!(
        sent >= object.len() as u64 && sent <= bound,
        "sent {sent}, object {}",
        object.len()
    );
}
