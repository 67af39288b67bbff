//! `reelup upload` against `reelup-server --local`: real processes, real HTTP, a store that
//! checks every signature.

use reelup_tests::{LocalServer, fetch_sha256, http, random_file, reelup};

const MIB: usize = 1024 * 1024;

#[test]
fn small_and_large_files_stream_back_byte_identical() {
    let server = LocalServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let (small, small_sha) = random_file(dir.path(), "small clip.mp4", 3 * MIB);
    let (large, large_sha) = random_file(dir.path(), "large.mov", 40 * MIB + 123);

    let out = reelup(
        &[
            "upload",
            small.to_str().expect("utf8"),
            large.to_str().expect("utf8"),
            "--endpoint",
            &server.endpoint,
            "--cdn",
            &server.cdn,
            "--json",
        ],
        &[("REELUP_TOKEN", &server.token)],
    );
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
    assert_eq!(lines.len(), 2, "{stdout}");

    // reelup-server signs CRC-64/NVME checksums: the store checked the small file's whole
    // CRC in its POST, and the large one's every part and the whole object's.
    for (line, path, sha, ext, verified) in [
        (&lines[0], &small, &small_sha, ".mp4", "file_crc64nvme"),
        (&lines[1], &large, &large_sha, ".mov", "object_crc64nvme"),
    ] {
        assert_eq!(line["file"], path.to_str().expect("utf8"));
        assert_eq!(line["verified"], verified, "{line}");
        let key = line["key"].as_str().expect("key");
        assert!(key.ends_with(ext), "key {key} keeps the extension only");
        let url = line["url"].as_str().expect("url");
        assert_eq!(url, format!("{}/{key}", server.cdn));
        assert_eq!(&fetch_sha256(url), sha, "bytes behind {url}");
    }

    // The small file went up by POST policy (plain MD5 ETag), the large one in 3 parts of
    // 16 MiB (S3's multipart ETag ends in -<parts>).
    let etag = |url: &str| {
        http().head(url).send().expect("HEAD").headers()["etag"]
            .to_str()
            .expect("ascii")
            .to_owned()
    };
    assert!(!etag(lines[0]["url"].as_str().expect("url")).contains('-'));
    // And it is S3's rule, MD5 of the parts' MD5s and the count, which the engine checks
    // every finished multipart object against.
    let expected = {
        use md5::{Digest, Md5};
        let bytes = std::fs::read(&large).expect("read");
        let mut all = Md5::new();
        for chunk in bytes.chunks(16 * MIB) {
            all.update(Md5::digest(chunk));
        }
        format!("\"{}-3\"", hex::encode(all.finalize()))
    };
    assert_eq!(etag(lines[1]["url"].as_str().expect("url")), expected);
}

#[test]
fn failures_are_one_clear_line_and_a_non_zero_exit() {
    let server = LocalServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let (clip, _) = random_file(dir.path(), "clip.mp4", 1024);
    let clip = clip.to_str().expect("utf8");
    let run = |file: &str, endpoint: &str, token: &str| {
        let out = reelup(
            &["upload", file, "--endpoint", endpoint, "--cdn", &server.cdn],
            &[("REELUP_TOKEN", token)],
        );
        assert!(
            !out.status.success(),
            "expected failure for {file} at {endpoint}"
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    };

    let missing = dir.path().join("nope.mp4");
    let err = run(
        missing.to_str().expect("utf8"),
        &server.endpoint,
        &server.token,
    );
    assert!(err.contains("nope.mp4: no such file"), "{err}");

    let err = run(clip, &server.endpoint, "wrong-token");
    assert!(err.contains("rejected the token (HTTP 401)"), "{err}");
    assert!(err.contains("REELUP_TOKEN"), "{err}");
    // Said once: not also as a log line from the engine (the default log level shows
    // warnings) before the CLI's own `reelup:` line.
    assert_eq!(
        err.matches("rejected the token (HTTP 401)").count(),
        1,
        "the refusal is said once: {err}"
    );

    // A port nothing listens on: bind, learn the port, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let err = run(clip, &format!("http://127.0.0.1:{port}"), &server.token);
    assert!(err.contains("cannot reach the presign endpoint"), "{err}");
    // Progress lines may precede it; the error itself is one line.
    let errors: Vec<_> = err.lines().filter(|l| l.starts_with("reelup:")).collect();
    assert_eq!(errors.len(), 1, "one error line: {err}");
    assert!(errors[0].contains("check that it is running"), "{err}");
}

#[test]
fn limit_rate_paces_the_upload_and_takes_units() {
    let server = LocalServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let (clip, sha) = random_file(dir.path(), "paced.mp4", 12 * MIB);
    let clip = clip.to_str().expect("utf8");
    let upload = |rate: &str| {
        reelup(
            &[
                "upload",
                clip,
                "--endpoint",
                &server.endpoint,
                "--cdn",
                &server.cdn,
                "--json",
                "--multipart-threshold-mib",
                "5",
                "--part-size-mib",
                "5",
                "--limit-rate",
                rate,
            ],
            &[("REELUP_TOKEN", &server.token)],
        )
    };

    let started = std::time::Instant::now();
    let out = upload("8MiB");
    let took = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "reelup failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line: serde_json::Value = serde_json::from_str(stdout.trim()).expect("JSON");
    assert_eq!(&fetch_sha256(line["url"].as_str().expect("url")), &sha);
    // 12 MiB at 8 MiB/s: 1.5 s at least, whatever the parts in flight.
    assert!(
        took >= std::time::Duration::from_millis(1450),
        "took {took:?}"
    );

    let out = upload("fast");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--limit-rate"), "{err}");
    assert!(err.contains("5MB or 4MiB"), "{err}");
}

/// A local listener standing in for every proxy: connections made to it are counted and
/// closed at once (so a client that does try gets an error, not a hang).
struct Trap {
    url: String,
    seen: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Trap {
    fn start() -> Self {
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let seen = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let thread = {
            let (seen, stop) = (seen.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((conn, _)) => {
                            seen.fetch_add(1, Ordering::Relaxed);
                            drop(conn);
                        }
                        Err(_) => std::thread::sleep(std::time::Duration::from_millis(10)),
                    }
                }
            })
        };
        Self {
            url,
            seen,
            stop,
            thread: Some(thread),
        }
    }

    fn connections(&self) -> usize {
        self.seen.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Every way reqwest can be told to use a proxy, pointed here.
    fn env(&self) -> Vec<(&'static str, &str)> {
        [
            "HTTP_PROXY",
            "http_proxy",
            "HTTPS_PROXY",
            "https_proxy",
            "ALL_PROXY",
            "all_proxy",
        ]
        .into_iter()
        .map(|k| (k, self.url.as_str()))
        .chain([("NO_PROXY", ""), ("no_proxy", "")])
        .collect()
    }
}

impl Drop for Trap {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// `--endpoint http://<remote>` is refused before anything is sent, with the message a
/// profile gets. No traffic leaves this machine even on a regression: the CLI runs with
/// every proxy variable pointing at a local [`Trap`], where any attempt to reach the remote
/// host would arrive instead (reqwest honours them); it must see no connection at all.
#[test]
fn a_plain_http_endpoint_that_is_not_this_machine_is_refused_before_any_connection() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (clip, _) = random_file(dir.path(), "clip.mp4", 64 * 1024);
    let trap = Trap::start();
    let mut env = trap.env();
    env.push(("REELUP_TOKEN", "a-token-that-must-not-travel-in-the-clear"));

    let out = reelup(
        &[
            "upload",
            clip.to_str().expect("utf8"),
            "--endpoint",
            "http://uploads.example.com",
            "--cdn",
            "https://d1.cloudfront.net",
        ],
        &env,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "refused: {stderr}");
    assert!(
        stderr.contains("--endpoint \"http://uploads.example.com\" is plain http; use https://"),
        "the profiles' message: {stderr}"
    );
    assert_eq!(trap.connections(), 0, "nothing was sent: {stderr}");

    // The same for the CDN, whose streaming URLs would be http.
    let out = reelup(
        &[
            "upload",
            clip.to_str().expect("utf8"),
            "--endpoint",
            "https://uploads.example.com",
            "--cdn",
            "http://cdn.example.com",
        ],
        &env,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "refused: {stderr}");
    assert!(
        stderr.contains("--cdn \"http://cdn.example.com\" is plain http"),
        "{stderr}"
    );
    assert_eq!(trap.connections(), 0, "nothing was sent: {stderr}");
}

/// Loopback keeps plain http: the local stack is http.
#[test]
fn a_plain_http_endpoint_on_this_machine_is_allowed() {
    let server = LocalServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let (clip, sha) = random_file(dir.path(), "local.mp4", 100 * 1024);
    assert!(server.endpoint.starts_with("http://127.0.0.1:"));
    let out = reelup(
        &[
            "upload",
            clip.to_str().expect("utf8"),
            "--endpoint",
            &server.endpoint,
            "--cdn",
            &server.cdn,
            "--json",
        ],
        &[("REELUP_TOKEN", &server.token)],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON line");
    assert_eq!(fetch_sha256(line["url"].as_str().expect("url")), sha);
}

/// An H.264 video made by ffmpeg: `seconds` of the test pattern at `width` x `height`.
fn h264_video(
    dir: &std::path::Path,
    name: &str,
    width: u32,
    height: u32,
    seconds: f32,
) -> std::path::PathBuf {
    let path = dir.join(name);
    let out = std::process::Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-f", "lavfi", "-i"])
        .arg(format!(
            "testsrc2=size={width}x{height}:rate=25:duration={seconds}"
        ))
        .args(["-c:v", "libx264", "-pix_fmt", "yuv420p", "-y"])
        .arg(&path)
        .output()
        .expect("ffmpeg (apt install ffmpeg)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    path
}

/// Width and height of the first video stream of an image or video, as ffprobe reads it.
fn probe_size(path: &std::path::Path) -> (u32, u32, String) {
    let out = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=width,height,codec_name",
            "-of",
            "csv=p=0",
        ])
        .arg(path)
        .output()
        .expect("ffprobe");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut fields = text.trim().split(',');
    let codec = fields.next().expect("codec").to_owned();
    let w = fields.next().expect("width").parse().expect("number");
    let h = fields.next().expect("height").parse().expect("number");
    (w, h, codec)
}

#[test]
fn each_video_gets_a_poster_beside_it_made_with_ffmpeg() {
    let server = LocalServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let wide = h264_video(dir.path(), "wide take.mp4", 1280, 720, 3.0);
    // Shorter than the 1 s the frame is taken at, and narrower than a poster.
    let short = h264_video(dir.path(), "-short.mp4", 320, 240, 0.5);
    let data = tempfile::tempdir().expect("data dir");
    let data_dir = data.path().to_str().expect("utf8");
    let out = reelup(
        &[
            "upload",
            wide.to_str().expect("utf8"),
            short.to_str().expect("utf8"),
            "--endpoint",
            &server.endpoint,
            "--cdn",
            &server.cdn,
            "--json",
        ],
        &[
            ("REELUP_TOKEN", &server.token),
            ("REELUP_DATA_DIR", data_dir),
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}\n{stdout}");
    assert!(!stderr.contains("poster"), "no poster trouble: {stderr}");
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect();
    for (line, width, height) in [(&lines[0], 640, 360), (&lines[1], 320, 240)] {
        let key = line["key"].as_str().expect("key");
        let poster = line["poster"].as_str().expect("a poster URL");
        let prefix = &key[..key.rfind('/').expect("a user prefix") + 1];
        let poster_key = poster
            .strip_prefix(&format!("{}/", server.cdn))
            .expect("served by the same CDN");
        assert!(
            poster_key.starts_with(prefix) && poster_key.ends_with(".jpg"),
            "{poster_key} beside {key}"
        );
        let resp = http().get(poster).send().expect("GET poster");
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["content-type"], "image/jpeg");
        let bytes = resp.bytes().expect("body");
        assert_eq!(&bytes[..3], &[0xFF, 0xD8, 0xFF], "a JPEG");
        let file = dir.path().join("poster.jpg");
        std::fs::write(&file, &bytes).expect("write");
        assert_eq!(probe_size(&file), (width, height, "mjpeg".to_owned()));
    }
    // `reelup queue --json` carries it too.
    let out = reelup(&["queue", "--json"], &[("REELUP_DATA_DIR", data_dir)]);
    let queue = String::from_utf8_lossy(&out.stdout);
    assert!(
        queue.contains(lines[0]["poster"].as_str().expect("poster")),
        "{queue}"
    );
}

#[test]
fn without_ffmpeg_uploads_go_on_with_no_posters() {
    let server = LocalServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, _) = random_file(dir.path(), "a.mp4", 1000);
    let (b, _) = random_file(dir.path(), "b.mp4", 1000);
    let empty_path = tempfile::tempdir().expect("empty PATH dir");
    let out = reelup(
        &[
            "upload",
            a.to_str().expect("utf8"),
            b.to_str().expect("utf8"),
            "--endpoint",
            &server.endpoint,
            "--cdn",
            &server.cdn,
            "--json",
        ],
        &[
            ("REELUP_TOKEN", &server.token),
            ("PATH", empty_path.path().to_str().expect("utf8")),
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(
        stderr.matches("no posters: ffmpeg not found").count(),
        1,
        "said once: {stderr}"
    );
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let line: serde_json::Value = serde_json::from_str(line).expect("JSON");
        assert!(
            line["url"].is_string() && line["poster"].is_null(),
            "{line}"
        );
    }
}

/// ffmpeg picks a demuxer by content, and some open other files named inside the input. A
/// "clip.mp4" dropped into a watched folder that is really an HLS playlist (or an ffconcat
/// list) naming a video elsewhere on the machine must not have that video's frame made into
/// a public poster. The file itself is still uploaded as it is; a real Matroska video
/// beside it still gets its poster.
#[test]
fn a_file_that_names_another_video_gets_no_poster_from_it() {
    let server = LocalServer::start();
    let elsewhere = tempfile::tempdir().expect("tempdir");
    let private = h264_video(elsewhere.path(), "private.ts", 320, 240, 2.0);
    let private = private.to_str().expect("utf8");
    let dir = tempfile::tempdir().expect("tempdir");
    let playlist = dir.path().join("clip.mp4");
    std::fs::write(
        &playlist,
        format!(
            "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n#EXTINF:2.0,\n\
             {private}\n#EXT-X-ENDLIST\n"
        ),
    )
    .expect("write");
    // ffconcat refuses absolute paths unless told otherwise; a relative one it follows.
    std::fs::copy(private, dir.path().join("near.ts")).expect("copy");
    let near = dir.path().join("near.mp4");
    std::fs::write(&near, "ffconcat version 1.0\nfile near.ts\n").expect("write");
    let real = h264_video(dir.path(), "real.mkv", 320, 240, 2.0);

    let files = [&playlist, &near, &real];
    let mut args = vec!["upload"];
    args.extend(files.iter().map(|f| f.to_str().expect("utf8")));
    args.extend([
        "--endpoint",
        &server.endpoint,
        "--cdn",
        &server.cdn,
        "--json",
    ]);
    let out = reelup(&args, &[("REELUP_TOKEN", &server.token)]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}\n{stdout}");
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect();
    assert_eq!(lines.len(), files.len(), "{stdout}");
    for (line, file) in lines.iter().zip(files) {
        assert_eq!(line["file"], file.to_str().expect("utf8"));
        assert_eq!(
            fetch_sha256(line["url"].as_str().expect("url")),
            reelup_tests::sha256_hex(&std::fs::read(file).expect("read")),
            "uploaded as it is: {line}"
        );
    }
    for line in &lines[..2] {
        assert!(
            line["poster"].is_null(),
            "a poster from another file: {line}"
        );
    }
    for name in ["clip.mp4", "near.mp4"] {
        assert!(
            stderr.contains(&format!("{name}: no poster: ffmpeg could not draw a frame (the file's content is not MP4/MOV, Matroska/WebM, AVI or MXF, whatever its name)")),
            "{stderr}"
        );
    }
    assert!(lines[2]["poster"].is_string(), "{}", lines[2]);
}
