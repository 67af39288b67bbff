//! A video's details, end to end: read when `reelup upload` queues a file ffmpeg made,
//! listed by `reelup queue` (text and `--json`), and stored on the object as metadata by
//! the real local stack (`reelup-server --local`, its S3 store).

use std::path::{Path, PathBuf};
use std::process::Command;

use reelup_tests::{LocalServer, http, reelup_command};

fn make_clip(dir: &Path, name: &str) -> PathBuf {
    let out = dir.join(name);
    let status = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args([
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=320x240:rate=25:duration=3",
        ])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:duration=3"])
        .args([
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-shortest",
        ])
        .arg(&out)
        .status()
        .expect("ffmpeg runs (apt install ffmpeg)");
    assert!(status.success(), "ffmpeg made {name}");
    out
}

/// ffprobe's duration of the file, in seconds.
fn ffprobe_seconds(path: &Path) -> f64 {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_format",
            "-show_streams",
            "-of",
            "json",
        ])
        .arg(path)
        .output()
        .expect("ffprobe runs");
    let probe: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    probe["format"]["duration"]
        .as_str()
        .expect("duration")
        .parse()
        .expect("seconds")
}

#[test]
fn details_are_queued_listed_and_stored_on_the_object() {
    let (server, store) = LocalServer::start_with_store_keys();
    let dir = tempfile::tempdir().expect("tempdir");
    let clip = make_clip(dir.path(), "clip.mp4");
    let data = dir.path().join("data");
    let config = dir.path().join("config");
    let run = |args: &[&str]| {
        let out = reelup_command(&config, &data)
            .args(args)
            .env("REELUP_TOKEN", &server.token)
            .output()
            .expect("run reelup");
        assert!(
            out.status.success(),
            "reelup {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf8")
    };
    let endpoint = ["--endpoint", &server.endpoint, "--cdn", &server.cdn];
    let clip_arg = clip.to_str().expect("utf8");
    // Once by POST policy, once (a copy) as a multipart upload: both routes carry them.
    let copy = dir.path().join("copy.mp4");
    std::fs::copy(&clip, &copy).expect("copy");
    let mut upload = vec!["upload", clip_arg, "--json"];
    upload.extend(endpoint);
    let posted: serde_json::Value = serde_json::from_str(run(&upload).trim()).expect("json");
    let mut multipart = vec![
        "upload",
        copy.to_str().expect("utf8"),
        "--json",
        "--multipart-threshold-mib",
        "0",
    ];
    multipart.extend(endpoint);
    let parted: serde_json::Value = serde_json::from_str(run(&multipart).trim()).expect("json");

    // `reelup queue --json` carries them, as read from the container.
    let listed: Vec<serde_json::Value> = run(&["queue", "--json"])
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    assert_eq!(listed.len(), 2);
    let details = &listed[0]["details"];
    let duration_ms = details["duration_ms"].as_u64().expect("duration_ms");
    let seconds = ffprobe_seconds(&clip);
    assert!(
        (duration_ms as f64 - seconds * 1000.0).abs() <= 1.0,
        "{duration_ms} ms, ffprobe {seconds} s"
    );
    assert_eq!(
        details,
        &serde_json::json!({
            "duration_ms": duration_ms,
            "width": 320,
            "height": 240,
            "frame_rate": 25.0,
            "video_codec": "H.264",
            "audio_codec": "AAC",
        })
    );
    assert_eq!(listed[1]["details"], *details, "the copy reads the same");

    // The text listing ends each line with the details, then what was verified.
    let text = run(&["queue"]);
    let first = text.lines().next().expect("a line");
    assert!(
        first.ends_with(
            "\t0:03 · 320x240 · 25 fps · H.264/AAC\tverified: CRC64NVME of the whole file"
        ),
        "{first}"
    );

    // The objects carry them as metadata, straight from the store.
    let duration = format!("{}.{:03}", duration_ms / 1000, duration_ms % 1000);
    for done in [&posted, &parted] {
        let key = done["key"].as_str().expect("key");
        let resp = http().get(store.object_url(key)).send().expect("GET");
        assert_eq!(resp.status(), 200, "{key}");
        let meta = |name: &str| {
            resp.headers()
                .get(format!("x-amz-meta-{name}"))
                .map(|v| v.to_str().expect("ascii").to_owned())
        };
        for (name, value) in [
            ("duration", duration.as_str()),
            ("width", "320"),
            ("height", "240"),
            ("framerate", "25"),
            ("videocodec", "H.264"),
            ("audiocodec", "AAC"),
        ] {
            assert_eq!(meta(name).as_deref(), Some(value), "{key}: {name}");
        }
        assert!(meta("name").is_some(), "the file name is still kept");
    }
}
